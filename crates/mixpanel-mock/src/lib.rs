//! **Test support only.** A loopback HTTP/1.1 server speaking Mixpanel's
//! `POST /import` protocol (strict mode) and the Lexicon Schemas API, with
//! fault injection. It binds `127.0.0.1` only and stops when the
//! [`MockServer`] handle is dropped.
//!
//! # `POST /import`
//!
//! What it does, per request:
//!
//! 1. a queued [`Fault`] if any (see below), after the configured delay;
//! 2. auth: Basic with the configured service account (+ `project_id` query
//!    parameter) or project token (empty password) → else 401
//!    `{"code":401,"error":"Invalid credentials","status":"Unauthorized"}`;
//! 3. body: `Content-Encoding: gzip` is inflated; `application/x-ndjson` or a
//!    JSON array; unparseable → 400 without `failed_records`;
//! 4. limits (the limits a client learns from a 413): more than
//!    [`MockConfig::max_bytes`] uncompressed → 413
//!    `{"code":413,"error":"request exceeds max limit of N bytes","status":"Request Entity Too Large"}`;
//!    more than [`MockConfig::max_events`] events → 413 with
//!    `"request exceeds max limit of N events"`; nothing is imported;
//! 5. strict validation of every event (required `event`,
//!    `properties.time`, `properties.distinct_id`, `properties.$insert_id`;
//!    time after 1971 and at most 1 h ahead, seconds or milliseconds;
//!    `$insert_id` ≤ 36 bytes of `[A-Za-z0-9-]`; placeholder ids; < 255
//!    properties) plus the insert ids configured to fail
//!    ([`MockServer::reject_insert_ids`]) → 200
//!    `{"code":200,"num_records_imported":N,"status":"OK"}` or a partial 400
//!    with `failed_records[{index, insert_id, field, message}]`.
//!
//! Accepted events are recorded: [`MockServer::events`] (every raw accept,
//! duplicates included) and [`MockServer::insert_id_counts`] (dedup view).
//!
//! # Faults
//!
//! [`MockServer::push_faults`] queues faults; each request to a known
//! endpoint (`/import` or the Lexicon endpoint; not a 404) takes the next one:
//!
//! - [`Fault::Status`]`(s)`: answer `s` with Mixpanel's body for it (before
//!   auth); with [`MockConfig::retry_after`] set, a 429 or 503 also carries
//!   `Retry-After`;
//! - [`Fault::RetryAfter`]` { status, seconds }`: the same, always with
//!   `Retry-After: seconds`;
//! - [`Fault::Body`]` { status, body }`: answer `status` with that raw text
//!   (labelled `application/json`, as a broken server would);
//! - [`Fault::Drop`]: read the request head, then close the connection
//!   without an answer;
//! - [`Fault::ShortImport`]` { missing }` (`/import` only): only the first
//!   `n - missing` events are validated and imported; the answer admits only
//!   those, as a server that silently loses the end of a batch;
//! - [`Fault::BadFailedRecords`] (`/import` only): the last two events are
//!   refused and reported as `failed_records` with indexes `n + 5` and `-1`
//!   and no insert id, so the client cannot tell which ones they were.
//!
//! `/import`-only faults are spent without effect on Lexicon requests.
//!
//! # Lexicon Schemas API
//!
//! `POST /api/app/projects/{projectId}/schemas` with
//! `{"entries":[{"entityType":"event"|"profile","name":…,"schemaJson":{…}}],"truncate":false}`
//! → 200 `{"results":{"added":n,"deleted":m},"status":"ok"}` (`n`: the
//! request's entries, new or replacing), and `GET` on the same path →
//! `{"results":[…entries…],"status":"ok"}`.
//!
//! - auth: Basic with the service account (username:secret) only; a project
//!   token or anything else → 401; a `projectId` other than the service
//!   account's → 403;
//! - body: gzip accepted as for `/import`; over 8 MiB uncompressed → 413;
//!   malformed (not the shape above, an unknown `entityType`, an empty name,
//!   a `schemaJson` that is not an object) → 400, nothing stored;
//! - limits, within a rolling [`MockConfig::lexicon_window`] (60 s) for the
//!   whole server: 5 requests (`GET` or `POST`), then 429
//!   `{"error":"rate limited","status":"error"}`; 4,000 entries in total,
//!   then 429 for an upload that would pass it. Only admitted requests
//!   count: those refused (401, 403, 413, 400 or 429) do not. The 429
//!   carries `Retry-After` when [`MockConfig::retry_after`] is set.
//!   [`MockConfig::lexicon_rate_limit`] turns both limits off;
//! - merging: each entry replaces the stored schema of its
//!   `(entityType, name)`, others are kept; `truncate: true` deletes every
//!   stored schema first (counted in `deleted`).
//!
//! Stored schemas: [`MockServer::lexicon`]; requests:
//! [`MockServer::lexicon_requests`].
//!
//! Any other method or path → 404. Every request is logged
//! ([`MockServer::requests`]).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

mod http;
mod import;
mod lexicon;
mod serve;

/// Placeholder ids refused as `distinct_id` / `$insert_id` (case-insensitive).
/// Written out here on purpose rather than imported from `currents-mixpanel`:
/// the mock plays Mixpanel, so a mistake in the client's list must not be
/// mirrored by the server it is tested against.
pub const PLACEHOLDER_IDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "<nil>",
    "undefined",
    "unknown",
    "0",
    "-1",
    "true",
    "false",
    "[]",
    "{}",
];

/// Who may import.
#[derive(Debug, Clone, Default)]
pub struct MockAuth {
    /// `(username, secret, project_id)`.
    pub service_account: Option<(String, String, String)>,
    pub token: Option<String>,
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct MockConfig {
    pub auth: MockAuth,
    /// More events than this in one `/import` request → 413.
    pub max_events: usize,
    /// More uncompressed bytes than this in one `/import` request → 413.
    pub max_bytes: usize,
    /// "Now" for the time rules (epoch seconds); `None`: the system clock.
    pub now: Option<i64>,
    /// Key of the insert id in `failed_records` (`insert_id` or `$insert_id`).
    pub failed_insert_id_key: &'static str,
    /// Keep every imported event (and count insert ids) for
    /// [`MockServer::events`] and [`MockServer::insert_id_counts`]. Off for
    /// benchmarks: events are still parsed and validated, then counted only.
    pub keep_events: bool,
    /// `Retry-After` seconds sent with every [`Fault::Status`] of 429 or 503
    /// and with the Lexicon rate-limit 429.
    pub retry_after: Option<u64>,
    /// Enforce the Lexicon per-window limits (5 requests, 4,000 entries).
    pub lexicon_rate_limit: bool,
    /// The rolling window of the Lexicon limits; shorter in tests that wait
    /// for it to pass.
    pub lexicon_window: Duration,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            auth: MockAuth::default(),
            max_events: 2000,
            max_bytes: 10 * 1024 * 1024,
            now: None,
            failed_insert_id_key: "insert_id",
            keep_events: true,
            retry_after: None,
            lexicon_rate_limit: true,
            lexicon_window: Duration::from_secs(60),
        }
    }
}

impl MockConfig {
    pub fn with_token(token: &str) -> Self {
        MockConfig {
            auth: MockAuth {
                service_account: None,
                token: Some(token.to_owned()),
            },
            ..MockConfig::default()
        }
    }

    pub fn with_service_account(username: &str, secret: &str, project_id: &str) -> Self {
        MockConfig {
            auth: MockAuth {
                service_account: Some((username.into(), secret.into(), project_id.into())),
                token: None,
            },
            ..MockConfig::default()
        }
    }
}

/// A fault to inject into one request (see the crate docs for the order of
/// events). New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status (429, 500, 503…) and Mixpanel's body for it.
    Status(u16),
    /// Read the request head, then close the connection without a response.
    Drop,
    /// Answer with this status and this raw body (e.g. `"not json"`),
    /// importing nothing.
    Body { status: u16, body: &'static str },
    /// `/import`: validate and import only the first `n - missing` events of
    /// the batch and answer as if that were all of it.
    ShortImport { missing: usize },
    /// `/import`: refuse the last two events, reporting them with
    /// `failed_records` indexes `n + 5` and `-1` and no insert id; the other
    /// events are handled normally.
    BadFailedRecords,
    /// Answer `status` (429, 503) with Mixpanel's body and
    /// `Retry-After: seconds`.
    RetryAfter { status: u16, seconds: u64 },
}

/// One handled request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    /// `0` when the connection was dropped ([`Fault::Drop`]).
    pub status: u16,
    /// Events in an `/import` batch, entries in a Lexicon upload.
    pub events: usize,
    /// Uncompressed body bytes (0 when the body was not looked at).
    pub bytes: usize,
    pub gzip: bool,
    pub content_type: String,
    pub query: String,
    pub method: String,
    /// Without the query.
    pub path: String,
    /// The fault this request took, if any.
    pub fault: Option<Fault>,
    /// When the request head was read.
    pub received: Instant,
    /// When the response was ready (just before it was written).
    pub answered: Instant,
}

#[derive(Default)]
struct Data {
    faults: VecDeque<Fault>,
    reject_ids: HashSet<String>,
    events: Vec<Value>,
    insert_ids: BTreeMap<String, u64>,
    log: Vec<RequestLog>,
    lexicon: lexicon::Lexicon,
}

struct Shared {
    config: Mutex<MockConfig>,
    data: Mutex<Data>,
    delay_ms: AtomicU64,
    stop: AtomicBool,
    /// Open connections, by accept number.
    connections: Mutex<Vec<(u64, TcpStream)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running server. Dropping it stops the server.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// Binds `127.0.0.1:0` and serves in background threads.
    pub fn start(config: MockConfig) -> io::Result<Self> {
        Self::start_on(config, 0)
    }

    /// Binds `127.0.0.1:port` (0: any free port).
    pub fn start_on(config: MockConfig, port: u16) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            data: Mutex::new(Data::default()),
            delay_ms: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("mixpanel-mock-accept".into())
            .spawn(move || serve::accept_loop(&listener, &accept_shared))?;
        Ok(MockServer {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`, to use as the client's API base.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues `n` copies of `fault` for the next requests.
    pub fn push_faults(&self, fault: Fault, n: usize) {
        let mut data = lock(&self.shared.data);
        for _ in 0..n {
            data.faults.push_back(fault);
        }
    }

    /// The next `n` requests get `status` (429, 500, 503…).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.push_faults(Fault::Status(status), n);
    }

    /// The next `n` requests lose their connection mid-request.
    pub fn drop_next(&self, n: usize) {
        self.push_faults(Fault::Drop, n);
    }

    /// Faults still queued.
    pub fn pending_faults(&self) -> usize {
        lock(&self.shared.data).faults.len()
    }

    /// Delay before every response.
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Events with these insert ids fail validation (partial 400) from now on.
    pub fn reject_insert_ids<I: IntoIterator<Item = S>, S: Into<String>>(&self, ids: I) {
        lock(&self.shared.data)
            .reject_ids
            .extend(ids.into_iter().map(Into::into));
    }

    /// Changes the settings (e.g. the byte limit) of the running server.
    pub fn configure(&self, f: impl FnOnce(&mut MockConfig)) {
        f(&mut lock(&self.shared.config));
    }

    /// Every accepted event, in order, duplicates included.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.shared.data).events.clone()
    }

    /// Raw accepts.
    pub fn accepted_count(&self) -> usize {
        lock(&self.shared.data).events.len()
    }

    /// Accepts per `$insert_id` (the dedup view).
    pub fn insert_id_counts(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.data).insert_ids.clone()
    }

    /// All requests handled so far, whatever their path.
    pub fn requests(&self) -> Vec<RequestLog> {
        lock(&self.shared.data).log.clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.shared.data).log.len()
    }

    /// The stored Lexicon schemas: `(entityType, name)` → `schemaJson`.
    pub fn lexicon(&self) -> BTreeMap<(String, String), Value> {
        lock(&self.shared.data).lexicon.schemas.clone()
    }

    /// Requests to the Lexicon endpoint so far, whatever their outcome.
    pub fn lexicon_requests(&self) -> usize {
        lock(&self.shared.data).lexicon.requests
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for (_, c) in lock(&self.shared.connections).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}
