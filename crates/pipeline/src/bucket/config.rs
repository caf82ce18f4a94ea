//! Each cloud's client from its standard environment variables. The
//! variables are taken as a list (the process environment in use, a fixed
//! list in tests), so what a variable does is tested without touching the
//! environment. Builders hold secrets: they are never printed.

#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
use std::sync::Arc;

#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
use object_store::{ClientOptions, ObjectStore};

#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
use super::{BucketError, BucketUrl, redact};

/// The client for `url`'s cloud, when this build has it.
pub(crate) fn open(
    url: &super::BucketUrl,
    env: &[(String, String)],
) -> Result<std::sync::Arc<dyn object_store::ObjectStore>, super::BucketError> {
    match url.scheme() {
        #[cfg(feature = "s3")]
        super::Scheme::S3 => s3(url, env),
        #[cfg(feature = "gcs")]
        super::Scheme::Gcs => gcs(url, env),
        #[cfg(feature = "azure")]
        super::Scheme::Azure => azure(url, env),
        #[allow(unreachable_patterns)]
        scheme => {
            let _ = env;
            let (scheme, feature) = scheme.names();
            Err(super::BucketError::NotEnabled {
                url: url.to_string(),
                scheme,
                feature,
            })
        }
    }
}

/// The process environment, as UTF-8 pairs.
pub(crate) fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Values of variables that hold secrets, to be masked in error messages.
pub(crate) fn secret_values(env: &[(String, String)]) -> Vec<String> {
    env.iter()
        .filter(|(name, value)| {
            let cloud = ["AWS_", "AZURE_", "GOOGLE_", "AZURITE_"]
                .iter()
                .any(|p| name.starts_with(p));
            let secret = [
                "SECRET",
                "TOKEN",
                "KEY",
                "SAS",
                "PASSWORD",
                "CONNECTION_STRING",
            ]
            .iter()
            .any(|w| name.contains(w))
                && !name.ends_with("KEY_ID")
                && !name.ends_with("_FILE");
            cloud && secret && value.len() >= 4
        })
        .map(|(_, value)| value.clone())
        .collect()
}

/// Timeouts for streaming reads: no limit on a whole request (an object
/// is read as fast as the pipeline takes it, which may be slow when
/// Mixpanel pushes back), but a connection that sends nothing for a minute
/// while being read fails.
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_timeout_disabled()
        .with_connect_timeout(std::time::Duration::from_secs(10))
        .with_read_timeout(std::time::Duration::from_secs(60))
}

#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
fn config_error(url: &BucketUrl, error: object_store::Error, secrets: &[String]) -> BucketError {
    BucketError::Config {
        url: url.to_string(),
        message: redact(&error.to_string(), secrets),
    }
}

/// `AWS_*` as `AmazonS3Builder::from_env` reads them (access key, secret,
/// session token, `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`
/// / `AWS_ENDPOINT` / `AWS_ENDPOINT_URL_S3`, `AWS_ALLOW_HTTP`, web identity,
/// container and instance credentials), plus the shared files a profile
/// names when no keys are set (`AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`,
/// `AWS_CONFIG_FILE`, by default in `~/.aws/`).
#[cfg(feature = "s3")]
pub(crate) fn s3_builder(
    bucket: &str,
    env: &[(String, String)],
) -> object_store::aws::AmazonS3Builder {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let mut builder = AmazonS3Builder::new().with_client_options(client_options());
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let home = var("HOME").unwrap_or_default();
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let has_keys = var("AWS_ACCESS_KEY_ID").is_some();
    if !has_keys {
        let file = var("AWS_SHARED_CREDENTIALS_FILE")
            .unwrap_or_else(|| format!("{home}/.aws/credentials"));
        let section = ini_section(&file, &profile);
        for (key, config) in [
            ("aws_access_key_id", AmazonS3ConfigKey::AccessKeyId),
            ("aws_secret_access_key", AmazonS3ConfigKey::SecretAccessKey),
            ("aws_session_token", AmazonS3ConfigKey::Token),
        ] {
            if let Some((_, value)) = section.iter().find(|(k, _)| k == key) {
                builder = builder.with_config(config, value);
            }
        }
    }
    if var("AWS_REGION").is_none() && var("AWS_DEFAULT_REGION").is_none() {
        let file = var("AWS_CONFIG_FILE").unwrap_or_else(|| format!("{home}/.aws/config"));
        let name = match profile.as_str() {
            "default" => "default".to_owned(),
            other => format!("profile {other}"),
        };
        if let Some((_, region)) = ini_section(&file, &name)
            .into_iter()
            .find(|(k, _)| k == "region")
        {
            builder = builder.with_config(AmazonS3ConfigKey::Region, region);
        }
    }
    for (name, value) in env {
        if name.starts_with("AWS_")
            && let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
        {
            builder = builder.with_config(key, value);
        }
    }
    builder.with_bucket_name(bucket)
}

/// The `key = value` lines of section `[name]` of an INI file (missing
/// file or section: none).
#[cfg(feature = "s3")]
fn ini_section(path: &str, name: &str) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut inside = false;
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.trim() == name;
        } else if inside && let Some((key, value)) = line.split_once('=') {
            lines.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    lines
}

#[cfg(feature = "s3")]
pub(crate) fn s3(
    url: &BucketUrl,
    env: &[(String, String)],
) -> Result<Arc<dyn ObjectStore>, BucketError> {
    let secrets = secret_values(env);
    let store = s3_builder(url.bucket(), env)
        .build()
        .map_err(|e| config_error(url, e, &secrets))?;
    Ok(Arc::new(store))
}

/// `GOOGLE_*` and `SERVICE_ACCOUNT` as `GoogleCloudStorageBuilder::from_env`
/// reads them (`GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_SERVICE_ACCOUNT_PATH` /
/// `GOOGLE_APPLICATION_CREDENTIALS` files, `GOOGLE_SERVICE_ACCOUNT_KEY`
/// JSON, `GOOGLE_BASE_URL`, `GOOGLE_BEARER_TOKEN`; else application default
/// credentials and the metadata server), plus `STORAGE_EMULATOR_HOST`, the
/// Google client libraries' emulator switch: requests go there, unsigned,
/// over plain HTTP.
#[cfg(feature = "gcs")]
pub(crate) fn gcs_builder(
    bucket: &str,
    env: &[(String, String)],
) -> object_store::gcp::GoogleCloudStorageBuilder {
    use object_store::ClientConfigKey;
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    let mut builder = GoogleCloudStorageBuilder::new().with_client_options(client_options());
    for (name, value) in env {
        if name == "SERVICE_ACCOUNT" {
            builder = builder.with_config(GoogleConfigKey::ServiceAccount, value);
        } else if name.starts_with("GOOGLE_")
            && let Ok(key) = name.to_ascii_lowercase().parse::<GoogleConfigKey>()
        {
            builder = builder.with_config(key, value);
        }
    }
    if let Some((_, host)) = env.iter().find(|(k, _)| k == "STORAGE_EMULATOR_HOST") {
        let base = match host.contains("://") {
            true => host.trim_end_matches('/').to_owned(),
            false => format!("http://{}", host.trim_end_matches('/')),
        };
        builder = builder
            .with_config(GoogleConfigKey::BaseUrl, base)
            .with_config(GoogleConfigKey::SkipSignature, "true")
            .with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), "true");
    }
    builder.with_bucket_name(bucket)
}

#[cfg(feature = "gcs")]
pub(crate) fn gcs(
    url: &BucketUrl,
    env: &[(String, String)],
) -> Result<Arc<dyn ObjectStore>, BucketError> {
    let secrets = secret_values(env);
    let store = gcs_builder(url.bucket(), env)
        .build()
        .map_err(|e| config_error(url, e, &secrets))?;
    Ok(Arc::new(store))
}

/// `AZURE_*` as `MicrosoftAzureBuilder::from_env` reads them
/// (`AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`,
/// `AZURE_STORAGE_SAS_KEY`, `AZURE_STORAGE_TOKEN`, `AZURE_CLIENT_ID` /
/// `AZURE_CLIENT_SECRET` / `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`,
/// `AZURE_STORAGE_ENDPOINT`, `AZURE_STORAGE_USE_EMULATOR` with
/// `AZURITE_BLOB_STORAGE_URL`; else managed identity), plus
/// `AZURE_STORAGE_CONNECTION_STRING` (`AccountName`, `AccountKey`,
/// `BlobEndpoint`, `UseDevelopmentStorage=true`), which the variables above
/// override.
#[cfg(feature = "azure")]
pub(crate) fn azure_builder(
    container: &str,
    env: &[(String, String)],
) -> object_store::azure::MicrosoftAzureBuilder {
    use object_store::ClientConfigKey;
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    let mut builder = MicrosoftAzureBuilder::new().with_client_options(client_options());
    if let Some((_, text)) = env
        .iter()
        .find(|(k, _)| k == "AZURE_STORAGE_CONNECTION_STRING")
    {
        for part in text.split(';') {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim();
            builder = match key.trim() {
                "AccountName" => builder.with_config(AzureConfigKey::AccountName, value),
                "AccountKey" => builder.with_config(AzureConfigKey::AccessKey, value),
                "SharedAccessSignature" => builder.with_config(AzureConfigKey::SasKey, value),
                "BlobEndpoint" => {
                    let http = value.starts_with("http://");
                    builder
                        .with_config(AzureConfigKey::Endpoint, value)
                        .with_config(
                            AzureConfigKey::Client(ClientConfigKey::AllowHttp),
                            http.to_string(),
                        )
                }
                "UseDevelopmentStorage" if value.eq_ignore_ascii_case("true") => {
                    builder.with_config(AzureConfigKey::UseEmulator, "true")
                }
                _ => builder,
            };
        }
    }
    for (name, value) in env {
        if name.starts_with("AZURE_")
            && let Ok(key) = name.to_ascii_lowercase().parse::<AzureConfigKey>()
        {
            builder = builder.with_config(key, value);
        }
    }
    if let Some((_, endpoint)) = env.iter().find(|(k, _)| k == "MSI_ENDPOINT") {
        builder = builder.with_msi_endpoint(endpoint);
    }
    builder.with_container_name(container)
}

#[cfg(feature = "azure")]
pub(crate) fn azure(
    url: &BucketUrl,
    env: &[(String, String)],
) -> Result<Arc<dyn ObjectStore>, BucketError> {
    let secrets = secret_values(env);
    let store = azure_builder(url.bucket(), env)
        .build()
        .map_err(|e| config_error(url, e, &secrets))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn secrets_are_found_by_name() {
        let vars = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_SESSION_TOKEN", "session-token"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "azure-key"),
            ("AWS_REGION", "eu-west-1"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(
            secret_values(&vars),
            ["very-secret", "session-token", "azure-key"]
        );
    }

    #[cfg(feature = "s3")]
    #[test]
    fn s3_reads_the_standard_variables() {
        use object_store::aws::AmazonS3ConfigKey as K;
        let dir = tempfile::tempdir().unwrap();
        let vars = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_SESSION_TOKEN", "session-token"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ALLOW_HTTP", "true"),
            ("HOME", dir.path().to_str().unwrap()),
        ]);
        let b = s3_builder("braze", &vars);
        assert_eq!(b.get_config_value(&K::Bucket).as_deref(), Some("braze"));
        assert_eq!(b.get_config_value(&K::Region).as_deref(), Some("eu-west-1"));
        assert_eq!(
            b.get_config_value(&K::Endpoint).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            b.get_config_value(&K::Token).as_deref(),
            Some("session-token")
        );
        assert_eq!(
            b.get_config_value(&K::Client(object_store::ClientConfigKey::AllowHttp))
                .as_deref(),
            Some("true")
        );
        // AWS_REGION wins over AWS_DEFAULT_REGION; AWS_ENDPOINT works too.
        let vars = env(&[
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT", "https://s3.example.test"),
        ]);
        let b = s3_builder("braze", &vars);
        assert_eq!(b.get_config_value(&K::Region).as_deref(), Some("us-west-2"));
        assert_eq!(
            b.get_config_value(&K::Endpoint).as_deref(),
            Some("https://s3.example.test")
        );
        // Keys and region from a named profile's shared files.
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = A\naws_secret_access_key = B\n[ci]\naws_access_key_id = CI-KEY\naws_secret_access_key = CI-SECRET\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".aws/config"),
            "[profile ci]\nregion = ap-south-1\n",
        )
        .unwrap();
        let vars = env(&[
            ("HOME", dir.path().to_str().unwrap()),
            ("AWS_PROFILE", "ci"),
        ]);
        let b = s3_builder("braze", &vars);
        assert_eq!(
            b.get_config_value(&K::AccessKeyId).as_deref(),
            Some("CI-KEY")
        );
        assert_eq!(
            b.get_config_value(&K::SecretAccessKey).as_deref(),
            Some("CI-SECRET")
        );
        assert_eq!(
            b.get_config_value(&K::Region).as_deref(),
            Some("ap-south-1")
        );
    }

    #[cfg(feature = "gcs")]
    #[test]
    fn gcs_reads_the_emulator_switch() {
        use object_store::gcp::GoogleConfigKey as K;
        let b = gcs_builder(
            "braze",
            &env(&[("STORAGE_EMULATOR_HOST", "127.0.0.1:9023")]),
        );
        assert_eq!(b.get_config_value(&K::Bucket).as_deref(), Some("braze"));
        assert_eq!(
            b.get_config_value(&K::BaseUrl).as_deref(),
            Some("http://127.0.0.1:9023")
        );
        assert_eq!(
            b.get_config_value(&K::SkipSignature).as_deref(),
            Some("true")
        );
        let b = gcs_builder("braze", &env(&[("GOOGLE_SERVICE_ACCOUNT", "/etc/sa.json")]));
        assert_eq!(
            b.get_config_value(&K::ServiceAccount).as_deref(),
            Some("/etc/sa.json")
        );
    }

    #[cfg(feature = "azure")]
    #[test]
    fn azure_reads_variables_and_connection_strings() {
        use object_store::azure::AzureConfigKey as K;
        let b = azure_builder(
            "braze",
            &env(&[
                ("AZURE_STORAGE_USE_EMULATOR", "true"),
                ("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1"),
            ]),
        );
        assert_eq!(
            b.get_config_value(&K::ContainerName).as_deref(),
            Some("braze")
        );
        assert_eq!(b.get_config_value(&K::UseEmulator).as_deref(), Some("true"));
        let b = azure_builder(
            "braze",
            &env(&[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/acct;",
            )]),
        );
        assert_eq!(b.get_config_value(&K::AccountName).as_deref(), Some("acct"));
        assert_eq!(b.get_config_value(&K::AccessKey).as_deref(), Some("a2V5"));
        assert_eq!(
            b.get_config_value(&K::Endpoint).as_deref(),
            Some("http://127.0.0.1:10000/acct")
        );
    }
}
