//! Blocking HTTP client for `POST {base}/import?strict=1[&project_id=…][&ip=0]`
//! (ureq + rustls/ring). One [`Client`] is shared by all worker threads.
//!
//! Request errors never include the URL's userinfo (credentials travel in
//! the `Authorization` header only).
//!
//! **Logging caveat for binaries:** ureq logs through the `log` crate, and at
//! `TRACE` it dumps the wire unredacted (the `Authorization` header
//! included). A binary that bridges `log` into `tracing` (or installs a `log`
//! logger) must cap the `ureq` and `ureq_proto` targets at `DEBUG` or lower.

mod credentials;
mod response;

use std::time::{Duration, SystemTime};

pub use credentials::{Credentials, CredentialsError, Secret, read_variable};
pub use response::{
    FailedRecord, ImportBody, ImportResponse, MAX_RESPONSE_TEXT, parse_import_response,
};

/// Data-residency region of the project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Region {
    #[default]
    Us,
    Eu,
    India,
}

impl Region {
    /// The ingestion host of the region.
    pub const fn api_base(self) -> &'static str {
        match self {
            Region::Us => "https://api.mixpanel.com",
            Region::Eu => "https://api-eu.mixpanel.com",
            Region::India => "https://api-in.mixpanel.com",
        }
    }

    /// The host of the region's app APIs (Lexicon).
    pub const fn app_base(self) -> &'static str {
        match self {
            Region::Us => "https://mixpanel.com",
            Region::Eu => "https://eu.mixpanel.com",
            Region::India => "https://in.mixpanel.com",
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
            Region::India => "in",
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

/// A base URL to send to instead of the region's host: `http` or `https`,
/// a host, an optional port and path; no credentials, query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase(String);

/// Why a base URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an http(s) base URL ({reason}): {url:?}")]
pub struct InvalidApiBase {
    pub url: String,
    pub reason: &'static str,
}

impl ApiBase {
    /// Checks `url` at once, so a typo is a usage error rather than a run
    /// that retries for minutes and dead-letters everything.
    ///
    /// ```
    /// use currents_mixpanel::ApiBase;
    /// assert!(ApiBase::parse("http://127.0.0.1:8080").is_ok());
    /// assert!(ApiBase::parse("127.0.0.1:8080").is_err());
    /// assert!(ApiBase::parse("ftp://example.com").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self, InvalidApiBase> {
        let refuse = |reason| InvalidApiBase {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| refuse("it must start with http:// or https://"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(refuse("no host"));
        }
        if authority.contains('@') {
            return Err(refuse("credentials belong in the environment, not the URL"));
        }
        if rest.contains(['?', '#']) {
            return Err(refuse("no query or fragment"));
        }
        if rest.contains(char::is_whitespace) {
            return Err(refuse("whitespace"));
        }
        Ok(ApiBase(url.trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Body encoding of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct ClientConfig {
    pub credentials: Credentials,
    pub region: Region,
    /// Overrides the region's host, e.g. `http://127.0.0.1:PORT` in tests.
    pub api_base: Option<ApiBase>,
    /// Whole-request timeout (default 60 s).
    pub timeout: Duration,
    /// Let Mixpanel geolocate events from the sending IP. Off by default:
    /// events have no `ip` of their own, so Mixpanel would place every one of
    /// them at the machine running the export; requests carry `ip=0`.
    pub geolocate: bool,
}

impl ClientConfig {
    pub fn new(credentials: Credentials) -> Self {
        ClientConfig {
            credentials,
            region: Region::Us,
            api_base: None,
            timeout: Duration::from_secs(60),
            geolocate: false,
        }
    }

    /// The base URL requests go to.
    pub fn base(&self) -> &str {
        self.api_base
            .as_ref()
            .map_or(self.region.api_base(), ApiBase::as_str)
    }
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
        let mut url = format!("{}/import?strict=1", config.base());
        if let Credentials::ServiceAccount { project_id, .. } = &config.credentials {
            url.push_str("&project_id=");
            url.push_str(&percent_encode(project_id));
        }
        if !config.geolocate {
            url.push_str("&ip=0");
        }
        Client {
            agent: agent(config.timeout),
            url,
            authorization: config.credentials.authorization(),
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
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| response::parse_retry_after(v, SystemTime::now()));
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(transport_error)?;
        let mut parsed = parse_import_response(status, &text);
        parsed.retry_after = retry_after;
        Ok(parsed)
    }
}

/// The HTTP agent every client of this crate uses.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(concat!("currents-mixpanel/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

pub(crate) fn transport_error(error: ureq::Error) -> TransportError {
    // ureq errors carry no credentials (they travel in a header we set), but
    // keep only the error's own text.
    TransportError(error.to_string())
}

pub(crate) fn percent_encode(s: &str) -> String {
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
    fn urls_carry_no_secret_and_turn_geolocation_off() {
        let c = Credentials::ServiceAccount {
            username: "sa".into(),
            secret: Secret::new("hunter2"),
            project_id: "1".into(),
        };
        let mut config = ClientConfig::new(c);
        let client = Client::new(&config);
        assert!(!format!("{client:?}").contains("hunter2"));
        assert_eq!(
            client.url(),
            "https://api.mixpanel.com/import?strict=1&project_id=1&ip=0"
        );
        config.geolocate = true;
        config.api_base = Some(ApiBase::parse("http://127.0.0.1:9/").unwrap());
        assert_eq!(
            Client::new(&config).url(),
            "http://127.0.0.1:9/import?strict=1&project_id=1"
        );
    }

    #[test]
    fn base_urls_are_checked() {
        for bad in [
            "",
            "api.mixpanel.com",
            "file:///tmp",
            "http://",
            "http://u:p@host",
            "http://host/?x=1",
            "https://ho st",
        ] {
            assert!(ApiBase::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ApiBase::parse("https://api-eu.mixpanel.com/")
                .unwrap()
                .as_str(),
            "https://api-eu.mixpanel.com"
        );
    }
}
