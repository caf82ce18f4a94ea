//! Blocking HTTP client for `POST {base}/import?strict=1[&project_id=…]`
//! (ureq + rustls/ring). One [`Client`] is shared by all worker threads.
//!
//! Secrets live in [`Secret`], whose `Debug`/`Display` print `***`; nothing in
//! this module logs or formats a credential, and request errors never include
//! the URL's userinfo (credentials travel in the `Authorization` header only).
//!
//! **Logging caveat for binaries:** ureq logs through the `log` crate, and at
//! `TRACE` it dumps the wire unredacted (the `Authorization` header
//! included). A binary that bridges `log` into `tracing` (or installs a `log`
//! logger) must cap the `ureq` and `ureq_proto` targets at `DEBUG` or lower.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// A credential. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Basic auth `username:secret` plus `?project_id=` (recommended).
    ServiceAccount {
        username: String,
        secret: Secret,
        project_id: String,
    },
    /// Basic auth with the token as username and an empty password.
    ProjectToken(Secret),
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no Mixpanel credentials: set MIXPANEL_SERVICE_ACCOUNT_USERNAME, MIXPANEL_SERVICE_ACCOUNT_SECRET and MIXPANEL_PROJECT_ID, or MIXPANEL_PROJECT_TOKEN (each secret also as *_FILE)"
    )]
    Missing,
    #[error("incomplete service account: {0} is not set")]
    Incomplete(&'static str),
    #[error("{var}: cannot read {path}: {source}")]
    File {
        var: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is empty")]
    Empty(&'static str),
}

impl Credentials {
    /// Reads `MIXPANEL_SERVICE_ACCOUNT_USERNAME`, `MIXPANEL_SERVICE_ACCOUNT_SECRET`,
    /// `MIXPANEL_PROJECT_ID` (service account, preferred) or
    /// `MIXPANEL_PROJECT_TOKEN`. Each variable may instead be given as
    /// `<NAME>_FILE`, a path whose contents (trailing newline trimmed) are used.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Credentials::from_env`] over any variable lookup (testable).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        let get = |var: &'static str| -> Result<Option<String>, CredentialsError> {
            if let Some(v) = lookup(var) {
                if v.is_empty() {
                    return Err(CredentialsError::Empty(var));
                }
                return Ok(Some(v));
            }
            let file_var = match var {
                "MIXPANEL_SERVICE_ACCOUNT_USERNAME" => "MIXPANEL_SERVICE_ACCOUNT_USERNAME_FILE",
                "MIXPANEL_SERVICE_ACCOUNT_SECRET" => "MIXPANEL_SERVICE_ACCOUNT_SECRET_FILE",
                "MIXPANEL_PROJECT_ID" => "MIXPANEL_PROJECT_ID_FILE",
                _ => "MIXPANEL_PROJECT_TOKEN_FILE",
            };
            match lookup(file_var) {
                None => Ok(None),
                Some(path) => {
                    let text = read_secret_file(Path::new(&path)).map_err(|source| {
                        CredentialsError::File {
                            var: file_var,
                            path: path.clone(),
                            source,
                        }
                    })?;
                    if text.is_empty() {
                        return Err(CredentialsError::Empty(file_var));
                    }
                    Ok(Some(text))
                }
            }
        };
        let username = get("MIXPANEL_SERVICE_ACCOUNT_USERNAME")?;
        let secret = get("MIXPANEL_SERVICE_ACCOUNT_SECRET")?;
        let project_id = get("MIXPANEL_PROJECT_ID")?;
        if username.is_some() || secret.is_some() {
            let username = username.ok_or(CredentialsError::Incomplete(
                "MIXPANEL_SERVICE_ACCOUNT_USERNAME",
            ))?;
            let secret = secret.ok_or(CredentialsError::Incomplete(
                "MIXPANEL_SERVICE_ACCOUNT_SECRET",
            ))?;
            let project_id =
                project_id.ok_or(CredentialsError::Incomplete("MIXPANEL_PROJECT_ID"))?;
            return Ok(Credentials::ServiceAccount {
                username,
                secret: Secret(secret),
                project_id,
            });
        }
        match get("MIXPANEL_PROJECT_TOKEN")? {
            Some(token) => Ok(Credentials::ProjectToken(Secret(token))),
            None => Err(CredentialsError::Missing),
        }
    }

    fn authorization(&self) -> String {
        use base64::Engine as _;
        let pair = match self {
            Credentials::ServiceAccount {
                username, secret, ..
            } => format!("{username}:{}", secret.expose()),
            Credentials::ProjectToken(token) => format!("{}:", token.expose()),
        };
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// Every secret string in these credentials (for redaction checks).
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Credentials::ServiceAccount { secret, .. } => vec![secret.expose()],
            Credentials::ProjectToken(token) => vec![token.expose()],
        }
    }
}

fn read_secret_file(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// Data-residency region of the project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Region {
    #[default]
    Us,
    Eu,
    India,
}

impl Region {
    pub const fn api_base(self) -> &'static str {
        match self {
            Region::Us => "https://api.mixpanel.com",
            Region::Eu => "https://api-eu.mixpanel.com",
            Region::India => "https://api-in.mixpanel.com",
        }
    }
}

impl std::str::FromStr for Region {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "us" => Ok(Region::Us),
            "eu" => Ok(Region::Eu),
            "in" | "india" => Ok(Region::India),
            other => Err(format!("unknown Mixpanel region {other:?} (us, eu, in)")),
        }
    }
}

/// Body encoding of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-ndjson`: one event per line.
    #[default]
    Ndjson,
    /// `application/json`: a JSON array.
    JsonArray,
}

impl BodyFormat {
    pub const fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Ndjson => "application/x-ndjson",
            BodyFormat::JsonArray => "application/json",
        }
    }
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub credentials: Credentials,
    pub region: Region,
    /// Overrides the region's host, e.g. `http://127.0.0.1:PORT` in tests.
    pub api_base: Option<String>,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl ClientConfig {
    pub fn new(credentials: Credentials) -> Self {
        ClientConfig {
            credentials,
            region: Region::Us,
            api_base: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// What came back from one request.
#[derive(Debug, Clone)]
pub struct ImportResponse {
    pub status: u16,
    pub body: ImportBody,
    /// The body text (at most 4 KiB kept), for error details.
    pub text: String,
}

/// The parsed `/import` response body (all fields optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImportBody {
    pub code: Option<u16>,
    pub status: Option<String>,
    pub error: Option<String>,
    pub num_records_imported: Option<u64>,
    pub failed_records: Option<Vec<FailedRecord>>,
}

/// One entry of `failed_records`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FailedRecord {
    pub index: Option<usize>,
    #[serde(alias = "$insert_id")]
    pub insert_id: Option<String>,
    pub field: Option<String>,
    pub message: Option<String>,
}

/// A request that got no HTTP response.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

/// Sends `/import` requests.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    authorization: Secret,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: &ClientConfig) -> Self {
        let base = config
            .api_base
            .as_deref()
            .unwrap_or(config.region.api_base())
            .trim_end_matches('/');
        let mut url = format!("{base}/import?strict=1");
        if let Credentials::ServiceAccount { project_id, .. } = &config.credentials {
            url.push_str("&project_id=");
            url.push_str(&percent_encode(project_id));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.timeout))
            .user_agent(concat!("currents-mixpanel/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            agent,
            url,
            authorization: Secret(config.credentials.authorization()),
        }
    }

    /// The request URL (no credentials in it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts one body. `gzip` says whether `body` is gzip-compressed.
    pub fn post(
        &self,
        body: &[u8],
        format: BodyFormat,
        gzip: bool,
    ) -> Result<ImportResponse, TransportError> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Authorization", self.authorization.expose())
            .header("Content-Type", format.content_type())
            .header("Accept", "application/json");
        if gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        let mut response = request.send(body).map_err(transport_error)?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(transport_error)?;
        Ok(parse_import_response(status, &text))
    }
}

/// Most of a response body kept in [`ImportResponse::text`].
pub const MAX_RESPONSE_TEXT: usize = 4096;

/// Turns a status and body text into an [`ImportResponse`]: the body parsed
/// leniently ([`ImportBody::parse`]) and at most [`MAX_RESPONSE_TEXT`] bytes
/// of the text kept (cut at a character boundary). Never fails.
pub fn parse_import_response(status: u16, body: &str) -> ImportResponse {
    let mut cut = body.len().min(MAX_RESPONSE_TEXT);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    ImportResponse {
        status,
        body: ImportBody::parse(body),
        text: body[..cut].to_owned(),
    }
}

impl ImportBody {
    /// Parses a response body field by field: a field with an unexpected
    /// value (a `code` out of range, an `index` that is not a count, both
    /// `insert_id` and `$insert_id` in one record…) is ignored on its own
    /// instead of discarding the whole body, so `failed_records` survive
    /// whatever else is odd. A body that is not a JSON object gives
    /// [`ImportBody::default`].
    pub fn parse(text: &str) -> ImportBody {
        use serde_json::Value;
        if let Ok(body) = serde_json::from_str::<ImportBody>(text) {
            return body;
        }
        // Only when the strict parse fails: a `Value` can't hold every body
        // the strict parse accepts (numbers beyond f64 in ignored keys).
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
            return ImportBody::default();
        };
        fn field<T: serde::de::DeserializeOwned>(
            map: &serde_json::Map<String, Value>,
            key: &str,
        ) -> Option<T> {
            T::deserialize(map.get(key)?).ok()
        }
        let failed_records = match map.get("failed_records") {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| match item {
                        Value::Object(record) => FailedRecord {
                            index: field(record, "index"),
                            insert_id: field(record, "$insert_id")
                                .or_else(|| field(record, "insert_id")),
                            field: field(record, "field"),
                            message: field(record, "message"),
                        },
                        _ => FailedRecord::default(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        ImportBody {
            code: field(&map, "code"),
            status: field(&map, "status"),
            error: field(&map, "error"),
            num_records_imported: field(&map, "num_records_imported"),
            failed_records,
        }
    }
}

fn transport_error(error: ureq::Error) -> TransportError {
    // ureq errors carry no credentials (they travel in a header we set), but
    // keep only the error's own text.
    TransportError(error.to_string())
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let c = Credentials::ServiceAccount {
            username: "sa".into(),
            secret: Secret::new("hunter2"),
            project_id: "1".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(format!("{}", Secret::new("x")), "***");
        let client = Client::new(&ClientConfig::new(c));
        assert!(!format!("{client:?}").contains("hunter2"));
        assert_eq!(
            client.url(),
            "https://api.mixpanel.com/import?strict=1&project_id=1"
        );
    }

    #[test]
    fn credentials_from_lookup() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(matches!(
            Credentials::from_lookup(env(&[])),
            Err(CredentialsError::Missing)
        ));
        assert_eq!(
            Credentials::from_lookup(env(&[("MIXPANEL_PROJECT_TOKEN", "tok")])).unwrap(),
            Credentials::ProjectToken(Secret::new("tok"))
        );
        assert!(matches!(
            Credentials::from_lookup(env(&[("MIXPANEL_SERVICE_ACCOUNT_USERNAME", "u")])),
            Err(CredentialsError::Incomplete(_))
        ));
        let dir = std::env::temp_dir().join(format!("mp-cred-{}", std::process::id()));
        std::fs::write(&dir, "s3cret\n").unwrap();
        let path: &'static str = Box::leak(dir.to_string_lossy().into_owned().into_boxed_str());
        let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
            ("MIXPANEL_SERVICE_ACCOUNT_USERNAME", "u"),
            ("MIXPANEL_SERVICE_ACCOUNT_SECRET_FILE", path),
            ("MIXPANEL_PROJECT_ID", "42"),
        ]));
        let c = Credentials::from_lookup(env(pairs)).unwrap();
        std::fs::remove_file(&dir).ok();
        assert_eq!(c.secrets(), vec!["s3cret"]);
        let err =
            Credentials::from_lookup(env(&[("MIXPANEL_PROJECT_TOKEN_FILE", "/nonexistent/x")]))
                .unwrap_err();
        assert!(err.to_string().contains("MIXPANEL_PROJECT_TOKEN_FILE"));
    }

    #[test]
    fn response_parsing_keeps_failed_records_when_other_fields_are_odd() {
        // Regression (found writing the fuzz_response oracle): the strict parse dropped
        // the whole body, and with it `failed_records`, over one odd field,
        // so a partial 400 dead-lettered the entire batch.
        let body = r#"{"code":70000,"status":7,"num_records_imported":-1,"failed_records":[{"index":1,"$insert_id":"a","insert_id":"b","field":"f","message":"m"},{"index":-3,"insert_id":"c"},"junk"]}"#;
        assert!(serde_json::from_str::<ImportBody>(body).is_err());
        let response = parse_import_response(400, body);
        assert_eq!(response.status, 400);
        assert_eq!(response.body.code, None);
        assert_eq!(response.body.status, None);
        assert_eq!(response.body.num_records_imported, None);
        let failed = response.body.failed_records.unwrap();
        assert_eq!(failed.len(), 3);
        assert_eq!(failed[0].index, Some(1));
        assert_eq!(failed[0].insert_id.as_deref(), Some("a"));
        assert_eq!(failed[0].message.as_deref(), Some("m"));
        assert_eq!(failed[1].index, None);
        assert_eq!(failed[1].insert_id.as_deref(), Some("c"));
        assert!(failed[2].insert_id.is_none() && failed[2].index.is_none());
    }

    #[test]
    fn response_text_is_cut_at_a_char_boundary() {
        let body = format!("{}é{}", "x".repeat(MAX_RESPONSE_TEXT - 1), "y".repeat(10));
        let response = parse_import_response(500, &body);
        assert_eq!(response.text, "x".repeat(MAX_RESPONSE_TEXT - 1));
        assert_eq!(response.body.code, None);
        assert_eq!(parse_import_response(200, "").text, "");
        assert!(
            parse_import_response(200, "[1]")
                .body
                .failed_records
                .is_none()
        );
    }

    #[test]
    fn failed_record_accepts_both_insert_id_keys() {
        let body: ImportBody = serde_json::from_str(
            r#"{"code":400,"failed_records":[{"index":1,"$insert_id":"a","field":"f","message":"m"},{"index":2,"insert_id":"b"}]}"#,
        )
        .unwrap();
        let f = body.failed_records.unwrap();
        assert_eq!(f[0].insert_id.as_deref(), Some("a"));
        assert_eq!(f[1].insert_id.as_deref(), Some("b"));
    }
}
