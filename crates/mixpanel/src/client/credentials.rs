//! Credentials for `/import`, read from the environment or from files.
//!
//! Secrets live in [`Secret`], whose `Debug`/`Display` print `***`; nothing in
//! this crate logs or formats a credential.

use std::path::Path;

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
#[non_exhaustive]
pub enum Credentials {
    /// Basic auth `username:secret` plus `?project_id=` (recommended).
    ServiceAccount {
        username: String,
        secret: Secret,
        project_id: String,
    },
    /// Basic auth with the token as username and an empty password. A project
    /// token is public in Mixpanel's model (it is embedded in web pages).
    ProjectToken(Secret),
    /// None: for runs that send nothing (a dry run). Mixpanel refuses any
    /// request made with it.
    None,
}

/// Why credentials could not be read. Never holds a secret's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    #[error(
        "no Mixpanel credentials: set MIXPANEL_SERVICE_ACCOUNT_USERNAME, MIXPANEL_SERVICE_ACCOUNT_SECRET and MIXPANEL_PROJECT_ID, or MIXPANEL_PROJECT_TOKEN (each also as *_FILE)"
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
    #[error("{0} holds more than one line; a credential file holds the value alone")]
    Multiline(&'static str),
    #[error("both {0} and {1} are set; set one of them")]
    Ambiguous(&'static str, &'static str),
}

/// The variables credentials come from, each with its `*_FILE` twin.
const VARS: [(&str, &str); 4] = [
    (
        "MIXPANEL_SERVICE_ACCOUNT_USERNAME",
        "MIXPANEL_SERVICE_ACCOUNT_USERNAME_FILE",
    ),
    (
        "MIXPANEL_SERVICE_ACCOUNT_SECRET",
        "MIXPANEL_SERVICE_ACCOUNT_SECRET_FILE",
    ),
    ("MIXPANEL_PROJECT_ID", "MIXPANEL_PROJECT_ID_FILE"),
    ("MIXPANEL_PROJECT_TOKEN", "MIXPANEL_PROJECT_TOKEN_FILE"),
];

/// Reads `var`, or the file its `*_FILE` twin names; both set is an error,
/// not a silent choice. Used for every credential-like variable (the relay
/// token too), so they all follow the same rules.
pub fn read_variable(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    file_var: &'static str,
) -> Result<Option<String>, CredentialsError> {
    match (lookup(var), lookup(file_var)) {
        (Some(_), Some(_)) => Err(CredentialsError::Ambiguous(var, file_var)),
        (Some(value), None) if value.is_empty() => Err(CredentialsError::Empty(var)),
        (Some(value), None) => Ok(Some(value)),
        (None, Some(path)) => {
            let text = read_secret_file(Path::new(&path), file_var).map_err(|e| match e {
                FileError::Io(source) => CredentialsError::File {
                    var: file_var,
                    path: path.clone(),
                    source,
                },
                FileError::Multiline => CredentialsError::Multiline(file_var),
            })?;
            if text.is_empty() {
                return Err(CredentialsError::Empty(file_var));
            }
            Ok(Some(text))
        }
        (None, None) => Ok(None),
    }
}

enum FileError {
    Io(std::io::Error),
    Multiline,
}

/// The file's text with one trailing newline (`\n` or `\r\n`) trimmed; any
/// other line break means the file is not what it should be.
fn read_secret_file(path: &Path, _var: &str) -> Result<String, FileError> {
    let text = std::fs::read_to_string(path).map_err(FileError::Io)?;
    let value = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if value.contains(['\n', '\r']) {
        return Err(FileError::Multiline);
    }
    Ok(value.to_owned())
}

impl Credentials {
    /// Reads `MIXPANEL_SERVICE_ACCOUNT_USERNAME`, `MIXPANEL_SERVICE_ACCOUNT_SECRET`,
    /// `MIXPANEL_PROJECT_ID` (service account, preferred) or
    /// `MIXPANEL_PROJECT_TOKEN`. Each variable may instead be given as
    /// `<NAME>_FILE`, a path whose contents (one trailing newline trimmed)
    /// are used.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Credentials::from_env`] over any variable lookup (testable).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        let [username, secret, project_id, token] =
            VARS.map(|(var, file_var)| read_variable(&lookup, var, file_var));
        let (username, secret, project_id, token) = (username?, secret?, project_id?, token?);
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
        match token {
            Some(token) => Ok(Credentials::ProjectToken(Secret(token))),
            None => Err(CredentialsError::Missing),
        }
    }

    /// [`Credentials::from_env`] with `project_id` standing in for
    /// `MIXPANEL_PROJECT_ID` when given; with no credentials in the
    /// environment, `token` (a project token given some other way, such as
    /// a flag) authenticates.
    pub fn from_env_or(
        project_id: Option<&str>,
        token: Option<&str>,
    ) -> Result<Self, CredentialsError> {
        let found = Self::from_lookup(|name| match name {
            "MIXPANEL_PROJECT_ID" if project_id.is_some() => project_id.map(str::to_owned),
            "MIXPANEL_PROJECT_TOKEN" if token.is_some() => None,
            other => std::env::var(other).ok(),
        });
        match (found, token) {
            (Err(CredentialsError::Missing), Some(token)) => {
                Ok(Credentials::ProjectToken(Secret::new(token)))
            }
            (found, _) => found,
        }
    }

    /// What kind of credentials these are, for messages (never the secret).
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::ServiceAccount { .. } => "service account",
            Credentials::ProjectToken(_) => "project token",
            Credentials::None => "none found",
        }
    }

    pub(crate) fn authorization(&self) -> Secret {
        use base64::Engine as _;
        let pair = match self {
            Credentials::ServiceAccount {
                username, secret, ..
            } => format!("{username}:{}", secret.expose()),
            Credentials::ProjectToken(token) => format!("{}:", token.expose()),
            Credentials::None => ":".to_owned(),
        };
        Secret(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    /// Every secret string in these credentials (for redaction checks).
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Credentials::ServiceAccount { secret, .. } => vec![secret.expose()],
            Credentials::ProjectToken(token) => vec![token.expose()],
            Credentials::None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn secret_is_redacted() {
        let c = Credentials::ServiceAccount {
            username: "sa".into(),
            secret: Secret::new("hunter2"),
            project_id: "1".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(format!("{}", Secret::new("x")), "***");
        assert_eq!(c.kind(), "service account");
    }

    #[test]
    fn credentials_from_lookup() {
        assert!(matches!(
            Credentials::from_lookup(env(vec![])),
            Err(CredentialsError::Missing)
        ));
        assert_eq!(
            Credentials::from_lookup(env(vec![("MIXPANEL_PROJECT_TOKEN", "tok".into())])).unwrap(),
            Credentials::ProjectToken(Secret::new("tok"))
        );
        assert!(matches!(
            Credentials::from_lookup(env(vec![("MIXPANEL_SERVICE_ACCOUNT_USERNAME", "u".into())])),
            Err(CredentialsError::Incomplete(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        let path = path.to_string_lossy().into_owned();
        let c = Credentials::from_lookup(env(vec![
            ("MIXPANEL_SERVICE_ACCOUNT_USERNAME", "u".into()),
            ("MIXPANEL_SERVICE_ACCOUNT_SECRET_FILE", path.clone()),
            ("MIXPANEL_PROJECT_ID", "42".into()),
        ]))
        .unwrap();
        assert_eq!(c.secrets(), vec!["s3cret"]);
        let err = Credentials::from_lookup(env(vec![(
            "MIXPANEL_PROJECT_TOKEN_FILE",
            "/nonexistent/x".into(),
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("MIXPANEL_PROJECT_TOKEN_FILE"));
    }

    #[test]
    fn a_file_with_a_second_line_is_refused_and_both_sources_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\nsecond line\n").unwrap();
        let path = path.to_string_lossy().into_owned();
        let err =
            Credentials::from_lookup(env(vec![("MIXPANEL_PROJECT_TOKEN_FILE", path.clone())]))
                .unwrap_err();
        assert!(matches!(err, CredentialsError::Multiline(_)), "{err}");
        assert!(!err.to_string().contains("s3cret"));
        std::fs::write(&path, "tok\r\n").unwrap();
        assert_eq!(
            Credentials::from_lookup(env(vec![("MIXPANEL_PROJECT_TOKEN_FILE", path.clone())]))
                .unwrap(),
            Credentials::ProjectToken(Secret::new("tok"))
        );
        let err = Credentials::from_lookup(env(vec![
            ("MIXPANEL_PROJECT_TOKEN", "a".into()),
            ("MIXPANEL_PROJECT_TOKEN_FILE", path),
        ]))
        .unwrap_err();
        assert!(matches!(err, CredentialsError::Ambiguous(..)), "{err}");
    }
}
