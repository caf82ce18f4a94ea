//! **Test support only.** A loopback HTTP/1.1 server speaking Mixpanel's
//! `POST /import` protocol (strict mode), with fault injection. It binds
//! `127.0.0.1` only and stops when the [`MockServer`] handle is dropped.
//!
//! What it does, per request:
//!
//! 1. a queued [`Fault`] if any (status, dropped connection), after the
//!    configured delay;
//! 2. auth: Basic with the configured service account (+ `project_id` query
//!    parameter) or project token (empty password) → else 401
//!    `{"code":401,"error":"Invalid credentials","status":"Unauthorized"}`;
//! 3. body: `Content-Encoding: gzip` is inflated; `application/x-ndjson` or a
//!    JSON array; more than `max_events` events or `max_bytes` uncompressed →
//!    413; unparseable → 400 without `failed_records`;
//! 4. strict validation of every event (required `event`,
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

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

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
    pub max_events: usize,
    pub max_bytes: usize,
    /// "Now" for the time rules (epoch seconds); `None`: the system clock.
    pub now: Option<i64>,
    /// Key of the insert id in `failed_records` (`insert_id` or `$insert_id`).
    pub failed_insert_id_key: &'static str,
    /// Keep every imported event (and count insert ids) for
    /// [`MockServer::events`] and [`MockServer::insert_id_counts`]. Off for
    /// benchmarks: events are still parsed and validated, then counted only.
    pub keep_events: bool,
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

/// A fault to inject into the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (429, 500, 503…) and Mixpanel's body for it.
    Status(u16),
    /// Read the request head, then close the connection without a response.
    Drop,
}

/// One handled request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    pub status: u16,
    pub events: usize,
    pub bytes: usize,
    pub gzip: bool,
    pub content_type: String,
    pub query: String,
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
}

struct Shared {
    config: Mutex<MockConfig>,
    data: Mutex<Data>,
    delay_ms: AtomicU64,
    stop: AtomicBool,
    connections: Mutex<Vec<TcpStream>>,
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
            .spawn(move || accept_loop(&listener, &accept_shared))?;
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

    /// All requests handled so far.
    pub fn requests(&self) -> Vec<RequestLog> {
        lock(&self.shared.data).log.clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.shared.data).log.len()
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
        for c in lock(&self.shared.connections).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if let Ok(clone) = stream.try_clone() {
            let mut conns = lock(&shared.connections);
            conns.retain(|c| c.peer_addr().is_ok());
            conns.push(clone);
        }
        let shared = Arc::clone(shared);
        let _ = std::thread::Builder::new()
            .name("mixpanel-mock-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, &shared);
            });
    }
}

struct Request {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the request head; `None` on a clean EOF.
fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut head)?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
    }
}

/// Method, path, query and headers of a request head.
type Head = (String, String, String, Vec<(String, String)>);

fn parse_head(head: &[u8]) -> io::Result<Head> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad request head",
            ));
        }
    }
    let method = req.method.unwrap_or("").to_owned();
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok((method, path.to_owned(), query.to_owned(), headers))
}

fn read_body(
    reader: &mut BufReader<TcpStream>,
    headers: &[(String, String)],
) -> io::Result<Vec<u8>> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    }
    let len = get("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let received = Instant::now();
        let (method, path, query, headers) = parse_head(&head)?;
        let fault = lock(&shared.data).faults.pop_front();
        if fault == Some(Fault::Drop) {
            // Mid-request: the head is read, the body is not, no response.
            lock(&shared.data).log.push(RequestLog {
                status: 0,
                events: 0,
                bytes: 0,
                gzip: false,
                content_type: String::new(),
                query,
                received,
                answered: Instant::now(),
            });
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
        let body = read_body(&mut reader, &headers)?;
        let request = Request {
            path,
            query,
            headers,
            body,
        };
        let delay = shared.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let (status, response) = if method != "POST" || request.path != "/import" {
            (
                404,
                json!({"code":404,"error":"not found","status":"Not Found"}),
            )
        } else {
            handle_import(shared, &request, fault, received)
        };
        let text = response.to_string();
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            413 => "Request Entity Too Large",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let out = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{text}",
            text.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        writer.write_all(out.as_bytes())?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn is_placeholder(id: &str) -> bool {
    PLACEHOLDER_IDS.iter().any(|p| p.eq_ignore_ascii_case(id))
}

fn authorized(config: &MockConfig, request: &Request) -> bool {
    use base64::Engine as _;
    let Some(auth) = request.header("authorization") else {
        return false;
    };
    let Some(encoded) = auth.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(pair) = String::from_utf8(decoded) else {
        return false;
    };
    let (user, password) = pair.split_once(':').unwrap_or((&pair, ""));
    let project_id = request
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("project_id="));
    if let Some((u, s, p)) = &config.auth.service_account
        && user == u
        && password == s
        && project_id == Some(p.as_str())
    {
        return true;
    }
    if let Some(token) = &config.auth.token
        && user == token
        && password.is_empty()
    {
        return true;
    }
    false
}

fn status_body(status: u16) -> Value {
    match status {
        429 => {
            json!({"code":429,"error":"Project exceeded rate limits. Please retry the request with exponential backoff.","status":"Too Many Requests"})
        }
        401 => json!({"code":401,"error":"Invalid credentials","status":"Unauthorized"}),
        403 => json!({"code":403,"error":"Forbidden","status":"Forbidden"}),
        s => json!({"code":s,"error":"injected failure","status":"Error"}),
    }
}

fn handle_import(
    shared: &Shared,
    request: &Request,
    fault: Option<Fault>,
    received: Instant,
) -> (u16, Value) {
    let config = lock(&shared.config).clone();
    let gzip = request
        .header("content-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let content_type = request.header("content-type").unwrap_or("").to_owned();
    let mut log = RequestLog {
        status: 0,
        events: 0,
        bytes: 0,
        gzip,
        content_type: content_type.clone(),
        query: request.query.clone(),
        received,
        answered: received,
    };
    let finish = |mut log: RequestLog, status: u16, body: Value| {
        log.status = status;
        log.answered = Instant::now();
        lock(&shared.data).log.push(log);
        (status, body)
    };
    if let Some(Fault::Status(status)) = fault {
        return finish(log, status, status_body(status));
    }
    if !authorized(&config, request) {
        return finish(log, 401, status_body(401));
    }
    let body = if gzip {
        let mut out = Vec::new();
        let decoder = flate2::read::GzDecoder::new(&request.body[..]);
        // Stop inflating just past the limit.
        if let Err(e) = decoder
            .take(config.max_bytes as u64 + 1)
            .read_to_end(&mut out)
        {
            return finish(
                log,
                400,
                json!({"code":400,"error":format!("invalid gzip body: {e}"),"status":"Bad Request"}),
            );
        }
        out
    } else {
        request.body.clone()
    };
    log.bytes = body.len();
    if body.len() > config.max_bytes {
        return finish(
            log,
            413,
            json!({"code":413,"error":format!("request exceeds max limit of {} bytes", config.max_bytes),"status":"Request Entity Too Large"}),
        );
    }
    // Kept events are parsed whole; otherwise only what the rules look at.
    let parse = |bytes: &[u8]| -> Result<(Parts, Option<Value>), String> {
        if config.keep_events {
            let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            Ok((Parts::of(&value), Some(value)))
        } else {
            let parts = serde::de::DeserializeSeed::deserialize(
                PartsSeed,
                &mut serde_json::Deserializer::from_slice(bytes),
            );
            let parts = parts.map_err(|e| e.to_string())?;
            Ok((parts, None))
        }
    };
    let events: Result<Vec<(Parts, Option<Value>)>, String> =
        if content_type.starts_with("application/x-ndjson") {
            body.split(|&b| b == b'\n')
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
                .map(parse)
                .collect()
        } else {
            serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(&body)
                .map_err(|e| e.to_string())
                .and_then(|items| {
                    items
                        .iter()
                        .map(|raw| parse(raw.get().as_bytes()))
                        .collect()
                })
        };
    let events = match events {
        Ok(e) => e,
        Err(e) => {
            return finish(
                log,
                400,
                json!({"code":400,"error":format!("unable to parse body: {e}"),"status":"Bad Request"}),
            );
        }
    };
    log.events = events.len();
    if events.len() > config.max_events {
        return finish(
            log,
            413,
            json!({"code":413,"error":format!("request exceeds max limit of {} events", config.max_events),"status":"Request Entity Too Large"}),
        );
    }
    let now = config.now.unwrap_or_else(now_secs);
    let mut data = lock(&shared.data);
    let mut failed = Vec::new();
    let mut imported = 0u64;
    for (index, (parts, event)) in events.into_iter().enumerate() {
        let insert_id = parts.insert_id.clone().unwrap_or_default();
        let problem = check(&parts, now).or_else(|| {
            data.reject_ids
                .contains(&insert_id)
                .then(|| ("properties", "rejected by test configuration".to_owned()))
        });
        match problem {
            Some((field, message)) => {
                let mut record = serde_json::Map::new();
                record.insert("index".into(), index.into());
                record.insert(config.failed_insert_id_key.into(), insert_id.into());
                record.insert("field".into(), field.into());
                record.insert("message".into(), message.into());
                failed.push(Value::Object(record));
            }
            None => {
                imported += 1;
                if let Some(event) = event {
                    *data.insert_ids.entry(insert_id).or_default() += 1;
                    data.events.push(event);
                }
            }
        }
    }
    drop(data);
    if failed.is_empty() {
        finish(
            log,
            200,
            json!({"code":200,"num_records_imported":imported,"status":"OK"}),
        )
    } else {
        finish(
            log,
            400,
            json!({"code":400,"error":"some data points in the request failed validation","status":"Bad Request","num_records_imported":imported,"failed_records":failed}),
        )
    }
}

/// Strict-mode checks of one event: `(field, message)` of the first failure.
/// What the strict-mode rules look at in one event.
#[derive(Debug, Default, PartialEq)]
struct Parts {
    object: bool,
    unexpected_key: bool,
    /// `event` is a non-empty string.
    named: bool,
    properties: Option<Props>,
    /// `properties.$insert_id` when it is a string.
    insert_id: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
struct Props {
    len: usize,
    /// `time` when it is an integer.
    time: Option<i64>,
    /// `distinct_id`: absent, a string, or something else (`Err`).
    distinct_id: Option<Result<String, ()>>,
}

impl Parts {
    fn of(event: &Value) -> Parts {
        let Some(object) = event.as_object() else {
            return Parts::default();
        };
        let properties = object.get("properties").and_then(Value::as_object);
        Parts {
            object: true,
            unexpected_key: object.keys().any(|k| k != "event" && k != "properties"),
            named: object
                .get("event")
                .and_then(Value::as_str)
                .is_some_and(|name| !name.is_empty()),
            properties: properties.map(|p| Props {
                len: p.len(),
                time: p.get("time").and_then(Value::as_i64),
                distinct_id: p.get("distinct_id").map(|id| match id {
                    Value::String(id) => Ok(id.clone()),
                    _ => Err(()),
                }),
            }),
            insert_id: properties
                .and_then(|p| p.get("$insert_id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// Reads [`Parts`] straight from JSON, skipping every other value.
struct PartsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for PartsSeed {
    type Value = Parts;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Parts, D::Error> {
        d.deserialize_any(PartsVisitor)
    }
}

struct PartsVisitor;

/// Any non-object JSON value is "not an object" ([`Parts::default`]).
macro_rules! not_an_object {
    ($($name:ident: $ty:ty),*) => {$(
        fn $name<E: serde::de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    )*};
}

impl<'de> serde::de::Visitor<'de> for PartsVisitor {
    type Value = Parts;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    not_an_object!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: serde::de::Error>(self) -> Result<Parts, E> {
        Ok(Parts::default())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Parts, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Parts::default())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Parts, A::Error> {
        let mut parts = Parts {
            object: true,
            ..Parts::default()
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "event" => {
                    let name: Value = map.next_value()?;
                    parts.named = name.as_str().is_some_and(|n| !n.is_empty());
                }
                "properties" => {
                    let (props, insert_id) = map.next_value_seed(PropsSeed)?;
                    parts.properties = props;
                    parts.insert_id = insert_id;
                }
                _ => {
                    parts.unexpected_key = true;
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(parts)
    }
}

struct PropsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for PropsSeed {
    type Value = (Option<Props>, Option<String>);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(PropsSeed)
    }
}

impl<'de> serde::de::Visitor<'de> for PropsSeed {
    type Value = (Option<Props>, Option<String>);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    not_an_object!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Default::default())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Default::default())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut props = Props::default();
        let mut insert_id = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            props.len += 1;
            match key.as_ref() {
                "time" => props.time = map.next_value::<Value>()?.as_i64(),
                "distinct_id" => {
                    props.distinct_id = Some(match map.next_value::<Value>()? {
                        Value::String(id) => Ok(id),
                        _ => Err(()),
                    })
                }
                "$insert_id" => insert_id = map.next_value::<Value>()?.as_str().map(str::to_owned),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok((Some(props), insert_id))
    }
}

/// Strict-mode checks of one event: `(field, message)` of the first failure.
fn check(parts: &Parts, now: i64) -> Option<(&'static str, String)> {
    if !parts.object {
        return Some(("event", "event must be an object".into()));
    }
    if parts.unexpected_key {
        return Some(("event", "unexpected top-level key".into()));
    }
    if !parts.named {
        return Some(("event", "'event' must be a non-empty string".into()));
    }
    let Some(properties) = &parts.properties else {
        return Some(("properties", "'properties' must be an object".into()));
    };
    if properties.len >= 255 {
        return Some(("properties", "too many properties".into()));
    }
    match properties.time {
        None => return Some(("properties.time", "'properties.time' is required".into())),
        Some(t) => {
            let secs = if t >= 100_000_000_000 { t / 1000 } else { t };
            if secs < 31_536_000 {
                return Some((
                    "properties.time",
                    "'properties.time' is invalid: must be specified as seconds since epoch after 1971".into(),
                ));
            }
            if secs > now + 3600 {
                return Some((
                    "properties.time",
                    "'properties.time' is more than 1 hour in the future".into(),
                ));
            }
        }
    }
    match &properties.distinct_id {
        Some(Ok(id)) if is_placeholder(id) => {
            return Some((
                "properties.distinct_id",
                format!("'properties.distinct_id' is invalid: {id:?} is a placeholder"),
            ));
        }
        Some(Ok(_)) => {}
        Some(Err(())) => {
            return Some((
                "properties.distinct_id",
                "'properties.distinct_id' must be a string".into(),
            ));
        }
        None => {
            return Some((
                "properties.distinct_id",
                "'properties.distinct_id' is required".into(),
            ));
        }
    }
    match parts.insert_id.as_deref() {
        None => Some((
            "properties.$insert_id",
            "'properties.$insert_id' is required".into(),
        )),
        Some(id)
            if id.is_empty()
                || id.len() > 36
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                || is_placeholder(id) =>
        {
            Some((
                "properties.$insert_id",
                "'properties.$insert_id' must be at most 36 alphanumeric or '-' characters".into(),
            ))
        }
        Some(_) => None,
    }
}

/// [`check`] of a whole event value.
#[cfg(test)]
fn validate(event: &Value, now: i64) -> Option<(&'static str, String)> {
    check(&Parts::of(event), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_parts_match_parts_of_the_value() {
        let cases = [
            json!({"event": "E", "properties": {"time": 1_700_000_000, "distinct_id": "u", "$insert_id": "a-1", "x": [1, {"y": null}]}}),
            json!({"event": "", "properties": {"time": 1.5, "distinct_id": 7, "$insert_id": 3}}),
            json!({"event": "E", "properties": [1, 2], "extra": true}),
            json!({"event": null, "properties": "text"}),
            json!({"properties": {}}),
            json!([1, 2, 3]),
            json!("event"),
            json!(null),
            json!({"event": "E", "properties": {"distinct_id": "0", "time": -5}}),
        ];
        for case in cases {
            let text = case.to_string();
            let streamed = serde::de::DeserializeSeed::deserialize(
                PartsSeed,
                &mut serde_json::Deserializer::from_str(&text),
            )
            .unwrap();
            assert_eq!(streamed, Parts::of(&case), "{text}");
        }
    }

    #[test]
    fn validates_strict_fields() {
        let now = 1_768_435_200;
        let good =
            json!({"event":"e","properties":{"time":now,"distinct_id":"u","$insert_id":"abc-1"}});
        assert_eq!(validate(&good, now), None);
        let ms = json!({"event":"e","properties":{"time":now*1000,"distinct_id":"u","$insert_id":"abc-1"}});
        assert_eq!(validate(&ms, now), None);
        let bad = json!({"event":"e","properties":{"time":now,"distinct_id":"null","$insert_id":"abc-1"}});
        assert_eq!(validate(&bad, now).unwrap().0, "properties.distinct_id");
        let bad = json!({"event":"e","properties":{"time":now + 4000,"distinct_id":"u","$insert_id":"abc-1"}});
        assert_eq!(validate(&bad, now).unwrap().0, "properties.time");
        let bad =
            json!({"event":"e","properties":{"time":now,"distinct_id":"u","$insert_id":"a_b"}});
        assert_eq!(validate(&bad, now).unwrap().0, "properties.$insert_id");
    }
}
