//! Bucket inputs: Braze Currents exports read straight from Amazon S3
//! (`s3://BUCKET/PREFIX`, feature `s3`), Google Cloud Storage
//! (`gs://BUCKET/PREFIX`, feature `gcs`) and Azure Blob Storage
//! (`az://CONTAINER/PREFIX`, feature `azure`), through the `object_store`
//! crate. Without a cloud feature (feature `bucket` alone) bring your own
//! [`object_store::ObjectStore`] ([`Bucket::with_store`]).
//!
//! * [`Bucket`]: a client configured from the cloud's standard environment
//!   variables and default credential chain; lists every key under the
//!   prefix (recursively: Braze says its naming may change) and reads each
//!   object as a stream, opened when a worker starts it.
//! * [`CurrentsKey`]: Braze's two key layouts parsed into connector, event
//!   type and hour; any other key is counted `not_a_currents_key`.
//! * [`Select`]: `since` / `until` hours, event type patterns, a [`Shard`].
//! * [`State`]: what was fully accounted for, by key, size and ETag, in the
//!   embedded [`crate::store::Store`]; a rerun reads only new or changed
//!   objects.
//! * [`Inputs`] and [`Round`]: local paths and bucket URLs together, listed
//!   once or every interval (watch), each object recorded in the state when
//!   the pipeline reports it resolved.
//!
//! Listing a bucket into [`crate::Sources`] by hand:
//!
//! ```no_run
//! use currents_pipeline::bucket::{Bucket, Select};
//! use currents_pipeline::{NdjsonSink, Pipeline, PipelineOptions, Sources};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Credentials and endpoint from AWS_* (or the instance's role).
//! let bucket = Bucket::from_env(&"s3://my-braze-exports/currents".parse()?)?;
//! let mut select = Select::default();
//! select.since = Some("2025-04-01-00".parse()?);
//! let mut sources = Sources::new();
//! for object in bucket.list()? {
//!     match select.reason(&object.key, object.currents.as_ref()) {
//!         Some(reason) => sources.ignore(object.url, reason),
//!         None => sources.push(bucket.source(&object)),
//!     }
//! }
//! let mut sink = NdjsonSink::new(std::io::stdout().lock());
//! let report = Pipeline::new(PipelineOptions::default()).run(&sources, &mut sink)?;
//! println!("{} objects, {} records", report.files, report.read);
//! # Ok(()) }
//! ```
//!
//! The same with a state, filters and a watch ([`Inputs`]):
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use currents_pipeline::bucket::{BucketError, Inputs, State};
//! use currents_pipeline::{NdjsonSink, PipelineOptions, Quiet};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let inputs = Inputs::new(&["s3://my-braze-exports/currents"])?
//!     .with_state(State::open("currents-state".as_ref())?)
//!     .with_watch(Duration::from_secs(300));
//! let stop = inputs.cancel_token(); // finish_sources() from a signal handler
//! inputs.run(|round| {
//!     let mut sink = NdjsonSink::new(std::io::stdout().lock());
//!     let report = round
//!         .pipeline(PipelineOptions::default(), Arc::new(Quiet))
//!         .run(round.sources(), &mut sink)
//!         .map_err(|e| BucketError::Run(Box::new(e)))?;
//!     eprintln!("round {}: {} records", round.number(), report.read);
//!     Ok::<_, BucketError>(())
//! })?;
//! # let _ = stop;
//! # Ok(()) }
//! ```

mod config;
mod inputs;
mod key;
mod read;
mod select;
mod state;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use inputs::{Inputs, Round};
pub use key::{CurrentsKey, Hour, Layout};
pub use object_store;
pub use select::{Glob, Select, Shard};
pub use state::{State, StateEntry};

use crate::source::{Source, SourceError};
use crate::store::StoreError;

/// Why bucket inputs cannot be listed or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BucketError {
    #[error(
        "not a bucket URL: {0:?} (expected s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX)"
    )]
    BadUrl(String),
    #[error("{url}: this build has no {scheme} support (currents-pipeline feature `{feature}`)")]
    NotEnabled {
        url: String,
        scheme: &'static str,
        feature: &'static str,
    },
    /// The client could not be set up (a bad variable, missing settings).
    /// Secrets are masked in `message`.
    #[error("cannot set up the client for {url}: {message}")]
    Config { url: String, message: String },
    /// Listing failed (access denied, no such bucket, network). Secrets are
    /// masked in `message`.
    #[error("cannot list {url}: {message}")]
    List {
        url: String,
        kind: ObjectErrorKind,
        message: String,
    },
    #[error("not an hour: {0:?} (expected YYYY-MM-DD-HH or an RFC 3339 date-time)")]
    BadHour(String),
    #[error("not a shard: {0:?} (expected K/N with 0 <= K < N)")]
    BadShard(String),
    #[error("cannot start the bucket client: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    State(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A round's own error ([`Inputs::run`] callers may use it).
    #[error(transparent)]
    Run(Box<dyn std::error::Error + Send + Sync>),
}

/// What kind of failure the object store reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectErrorKind {
    NotFound,
    /// Credentials missing, wrong or not allowed.
    Denied,
    Other,
}

impl ObjectErrorKind {
    fn of(error: &object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { .. } => ObjectErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => ObjectErrorKind::Denied,
            _ => ObjectErrorKind::Other,
        }
    }
}

/// Masks `secrets` and URL query strings (SAS tokens, signatures) in an
/// error message from a client.
pub(crate) fn redact(message: &str, secrets: &[String]) -> String {
    let mut text = message.to_owned();
    for secret in secrets {
        text = text.replace(secret.as_str(), "***");
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("://") {
        // Copy up to the end of the URL's path, drop its query.
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == ')' || c == '\'')
            .map_or(rest.len(), |e| at + e);
        let url = &rest[..end];
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str("?***");
            }
            None => out.push_str(url),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Which cloud a [`BucketUrl`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `s3://` (feature `s3`).
    S3,
    /// `gs://` (feature `gcs`).
    Gcs,
    /// `az://` (feature `azure`).
    Azure,
}

impl Scheme {
    pub fn prefix(&self) -> &'static str {
        match self {
            Scheme::S3 => "s3://",
            Scheme::Gcs => "gs://",
            Scheme::Azure => "az://",
        }
    }

    pub(crate) fn names(&self) -> (&'static str, &'static str) {
        match self {
            Scheme::S3 => ("Amazon S3", "s3"),
            Scheme::Gcs => ("Google Cloud Storage", "gcs"),
            Scheme::Azure => ("Azure Blob Storage", "azure"),
        }
    }
}

/// `s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX` or `az://CONTAINER/PREFIX`.
/// The prefix is a folder: `s3://b/currents` lists `currents/…`. It may be
/// empty (the whole bucket).
///
/// ```
/// use currents_pipeline::bucket::{BucketUrl, Scheme};
/// let url: BucketUrl = "gs://exports/braze/currents/".parse().unwrap();
/// assert_eq!(url.scheme(), Scheme::Gcs);
/// assert_eq!((url.bucket(), url.prefix()), ("exports", "braze/currents"));
/// assert_eq!(url.to_string(), "gs://exports/braze/currents");
/// assert!(BucketUrl::is_bucket_url("az://c") && !BucketUrl::is_bucket_url("data/s3:/x"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketUrl {
    scheme: Scheme,
    bucket: String,
    prefix: String,
}

impl BucketUrl {
    /// Starts with `s3://`, `gs://` or `az://`.
    pub fn is_bucket_url(text: &str) -> bool {
        [Scheme::S3, Scheme::Gcs, Scheme::Azure]
            .iter()
            .any(|s| text.starts_with(s.prefix()))
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Without leading or trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The URL of the object at `key`: what sources, dead letters and the
    /// state call it.
    pub fn object_url(&self, key: &str) -> String {
        format!("{}{}/{key}", self.scheme.prefix(), self.bucket)
    }
}

impl FromStr for BucketUrl {
    type Err = BucketError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BucketError::BadUrl(text.to_owned());
        let scheme = [Scheme::S3, Scheme::Gcs, Scheme::Azure]
            .into_iter()
            .find(|s| text.starts_with(s.prefix()))
            .ok_or_else(bad)?;
        let rest = &text[scheme.prefix().len()..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        if bucket.is_empty()
            || bucket.contains(['?', '#', '@', ' '])
            || object_store::path::Path::parse(prefix).is_err()
        {
            return Err(bad());
        }
        Ok(BucketUrl {
            scheme,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for BucketUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.scheme.prefix(), self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Object {
    /// `s3://bucket/key`: the source's name.
    pub url: String,
    /// Its key in the bucket.
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub version: Option<String>,
    /// Unix time in milliseconds.
    pub last_modified_ms: Option<i64>,
    /// What the key says, when it is a Currents key.
    pub currents: Option<CurrentsKey>,
}

/// A bucket (and prefix) with its client: lists keys and reads objects.
/// Owns a small tokio runtime for the client; objects are read through
/// blocking [`std::io::Read`] streams on it, one per pipeline worker.
#[derive(Clone)]
pub struct Bucket {
    url: BucketUrl,
    store: Arc<dyn object_store::ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    /// Masked in client error messages.
    secrets: Arc<[String]>,
}

/// Shows the URL only: the client's settings hold credentials.
impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket")
            .field("url", &self.url.to_string())
            .finish_non_exhaustive()
    }
}

impl Bucket {
    /// A client for `url` from the cloud's standard environment variables
    /// and default credential chain (see the README's "Bucket inputs").
    pub fn from_env(url: &BucketUrl) -> Result<Self, BucketError> {
        let env = config::process_env();
        let secrets: Arc<[String]> = config::secret_values(&env).into();
        let store = config::open(url, &env)?;
        let mut bucket = Self::with_store(url.clone(), store)?;
        bucket.secrets = secrets;
        Ok(bucket)
    }

    /// `url` served by `store` (any [`object_store::ObjectStore`]: an
    /// in-memory store in tests, a client configured your own way).
    pub fn with_store(
        url: BucketUrl,
        store: Arc<dyn object_store::ObjectStore>,
    ) -> Result<Self, BucketError> {
        // Two threads drive the connections; reads block the pipeline's
        // own worker threads, not these.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("currents-bucket")
            .enable_all()
            .build()
            .map_err(BucketError::Runtime)?;
        Ok(Bucket {
            url,
            store,
            runtime: Arc::new(runtime),
            secrets: Arc::from(Vec::new()),
        })
    }

    pub fn url(&self) -> &BucketUrl {
        &self.url
    }

    /// Every object under the prefix, recursively, in key order.
    pub fn list(&self) -> Result<Vec<Object>, BucketError> {
        let mut objects = Vec::new();
        self.for_each(|object| objects.push(object))?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Every object under the prefix as the listing pages arrive (so a
    /// caller that keeps few of them keeps little in memory).
    pub fn for_each(&self, mut f: impl FnMut(Object)) -> Result<(), BucketError> {
        use futures_util::StreamExt;
        let prefix = match self.url.prefix.as_str() {
            "" => None,
            prefix => Some(
                object_store::path::Path::parse(prefix)
                    .map_err(|_| BucketError::BadUrl(self.url.to_string()))?,
            ),
        };
        let store = Arc::clone(&self.store);
        self.runtime.block_on(async {
            let mut listing = store.list(prefix.as_ref());
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| BucketError::List {
                    url: self.url.to_string(),
                    kind: ObjectErrorKind::of(&e),
                    message: redact(&e.to_string(), &self.secrets),
                })?;
                let key = meta.location.as_ref().to_owned();
                f(Object {
                    url: self.url.object_url(&key),
                    currents: CurrentsKey::parse(&key),
                    key,
                    size: meta.size,
                    etag: meta.e_tag,
                    version: meta.version,
                    last_modified_ms: Some(meta.last_modified.timestamp_millis()),
                });
            }
            Ok(())
        })
    }

    /// The object as a source named by its URL, its size known from the
    /// listing. Nothing is fetched until a worker opens it.
    pub fn source(&self, object: &Object) -> Source {
        let mut readers = read::ObjectOpen::listing(self, std::slice::from_ref(object));
        let reader = readers.remove(0);
        Source::custom(&object.url, reader)
    }

    /// The objects as sources in listing order, each with the flag its
    /// reader raises when the transfer fails (so the object is not recorded
    /// done). Opening one starts the next ones' requests.
    pub(crate) fn tracked_sources(
        &self,
        objects: &[Object],
    ) -> Vec<(Source, Arc<std::sync::atomic::AtomicBool>)> {
        read::ObjectOpen::listing(self, objects)
            .into_iter()
            .zip(objects)
            .map(|(reader, object)| {
                let failed = reader.failed();
                (Source::custom(&object.url, reader), failed)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url: BucketUrl = "s3://b".parse().unwrap();
        assert_eq!((url.bucket(), url.prefix()), ("b", ""));
        assert_eq!(url.object_url("k/x.avro"), "s3://b/k/x.avro");
        let url: BucketUrl = "az://container/a/b".parse().unwrap();
        assert_eq!(url.scheme(), Scheme::Azure);
        assert_eq!(url.to_string(), "az://container/a/b");
        for bad in [
            "s3://",
            "s3:///x",
            "http://b/x",
            "s3://b/a//b",
            "b/x",
            "s3://a?b/x",
        ] {
            assert!(bad.parse::<BucketUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction() {
        let secrets = vec!["s3cr3t".to_owned()];
        assert_eq!(
            redact(
                "error sending request for url (https://acct.blob.core.windows.net/c/k?sig=abc&se=1): s3cr3t denied",
                &secrets
            ),
            "error sending request for url (https://acct.blob.core.windows.net/c/k?***): *** denied"
        );
    }
}
