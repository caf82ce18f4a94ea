//! `currents serve`: the relay over real HTTP on loopback, the mock as
//! Mixpanel, real crashes (SIGKILL) for the durability claims.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mixpanel_mock::{MockConfig, MockServer};
use serde_json::{Value, json};

const TOKEN: &str = "relay-TOKEN-7e6d5c4b";
const MIXPANEL: &str = "mp-token";

/// A running `currents serve`.
struct Relay {
    child: Child,
    url: String,
}

impl Relay {
    fn start(dir: &Path, mixpanel: &str, extra: &[&str]) -> Relay {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("currents"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--api-base", mixpanel])
            .args(["--retry-ms", "20", "100", "0", "5"])
            .args(extra)
            .env("CURRENTS_RELAY_TOKEN", TOKEN)
            .env("MIXPANEL_PROJECT_TOKEN", MIXPANEL)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no address: {line}"))
            .to_owned();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                assert!(!line.contains(TOKEN), "the token in the logs: {line}");
            }
        });
        Relay {
            child,
            url: format!("http://{addr}"),
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit code.
    fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }

    fn metric(&self, name: &str) -> f64 {
        let text = get(&format!("{}/metrics", self.url)).1;
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

fn get(url: &str) -> (u16, String) {
    let mut response = agent().get(url).call().unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Posts `body`; `(status, Retry-After)`, or `None` when the connection failed.
fn post(url: &str, token: Option<&str>, body: &[u8], gzip: bool) -> Option<(u16, Option<String>)> {
    let mut request = agent()
        .post(&format!("{url}/currents"))
        .header("Braze-Currents-Version", "1")
        .header("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    if gzip {
        request = request.header("Content-Encoding", "gzip");
    }
    let response = request.send(body).ok()?;
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Some((response.status().as_u16(), retry))
}

/// `n` Email Open events with ids from `from`, as Braze posts them.
fn batch(from: usize, n: usize) -> Vec<u8> {
    let open: Value = serde_json::from_str(&ndjson_record("users.messages.email.Open")).unwrap();
    let events: Vec<Value> = (from..from + n)
        .map(|i| {
            let mut e = open.clone();
            e["id"] = json!(format!("0b5a1c2e-aaaa-4bbb-8ccc-{i:012}"));
            e
        })
        .collect();
    serde_json::to_vec(&json!({ "events": events })).unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mock() -> MockServer {
    MockServer::start(MockConfig::with_token(MIXPANEL)).unwrap()
}

#[test]
fn auth_credential_checks_shapes_limits_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let server = mock();
    let relay = Relay::start(dir.path(), &server.base_url(), &["--max-body-mib", "1"]);
    let url = &relay.url;
    // Missing or wrong token: 401, also for Braze's empty credential checks.
    for token in [None, Some("wrong")] {
        assert_eq!(post(url, token, &batch(0, 2), false).unwrap().0, 401);
        assert_eq!(post(url, token, b"", false).unwrap().0, 401);
        assert_eq!(post(url, token, br#"{"events":[]}"#, false).unwrap().0, 401);
    }
    // The right token: credential checks pass, nothing is stored.
    assert_eq!(post(url, Some(TOKEN), b"", false).unwrap().0, 200);
    assert_eq!(
        post(url, Some(TOKEN), br#"{"events":[]}"#, false)
            .unwrap()
            .0,
        200
    );
    // Not Braze's shape: 400.
    for body in [&b"not json"[..], br#"{"data":[]}"#, b"[1,2]"] {
        assert_eq!(
            post(url, Some(TOKEN), body, false).unwrap().0,
            400,
            "{body:?}"
        );
    }
    // Over the size limit: 413 (Braze sends smaller batches).
    let big = batch(100, 2000);
    assert!(big.len() > 1 << 20);
    assert_eq!(post(url, Some(TOKEN), &big, false).unwrap().0, 413);
    // gzip, and a batch holding one event that is not an event: stored,
    // the bad one dead-lettered, the others imported.
    let mut body: Value = serde_json::from_slice(&batch(0, 5)).unwrap();
    body["events"]
        .as_array_mut()
        .unwrap()
        .push(json!({"not": "an event"}));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        post(url, Some(TOKEN), &gz.finish().unwrap(), true)
            .unwrap()
            .0,
        200
    );
    wait_until("5 imported", || server.insert_id_counts().len() == 5);
    wait_until("an empty queue", || {
        relay.metric("currents_queue_events") == 0.0
    });
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.ndjson")).unwrap();
    let lines = ndjson(dead.as_bytes());
    assert_eq!(lines.len(), 1, "{dead}");
    assert_eq!(lines[0]["reason"], "not_an_event");
    assert_eq!(
        relay.metric("currents_rejected_requests_total{reason=\"unauthorized\"}"),
        6.0
    );
    assert_eq!(get(&format!("{url}/healthz")).0, 200);
    assert_eq!(get(&format!("{url}/readyz")).0, 200);
    // A second relay on the same data dir is refused.
    let second = serve_once(
        dir.path(),
        &[("CURRENTS_RELAY_TOKEN", Some(TOKEN.as_ref()))],
    );
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr_of(&second).contains("in use"),
        "{}",
        stderr_of(&second)
    );
    assert_eq!(relay.terminate(), Some(0));
}

#[test]
fn sigkill_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = mock();
    // A slow Mixpanel: batches pile up in the queue when the crash comes.
    server.set_delay(Duration::from_millis(400));
    let relay = Relay::start(dir.path(), &server.base_url(), &[]);
    let url = relay.url.clone();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url_cell = std::sync::Arc::new(std::sync::Mutex::new(url));
    let senders: Vec<_> = (0..4)
        .map(|s| {
            let (acknowledged, stop, url) = (acknowledged.clone(), stop.clone(), url_cell.clone());
            std::thread::spawn(move || {
                for k in 0..40 {
                    let from = (s * 40 + k) * 100;
                    let body = batch(from, 100);
                    // As Braze does: resend until a 2xx.
                    loop {
                        let target = url.lock().unwrap().clone();
                        if let Some((200, _)) = post(&target, Some(TOKEN), &body, false) {
                            acknowledged.lock().unwrap().insert(from);
                            break;
                        }
                        if stop.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
        })
        .collect();
    wait_until("some acknowledgements", || {
        acknowledged.lock().unwrap().len() >= 20
    });
    relay.kill();
    std::thread::sleep(Duration::from_millis(300));
    let restarted = Relay::start(dir.path(), &server.base_url(), &[]);
    *url_cell.lock().unwrap() = restarted.url.clone();
    for sender in senders {
        sender.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    server.set_delay(Duration::ZERO);
    let expected: BTreeSet<String> = acknowledged
        .lock()
        .unwrap()
        .iter()
        .flat_map(|&from| (from..from + 100).map(|i| format!("0b5a1c2e-aaaa-4bbb-8ccc-{i:012}")))
        .collect();
    assert_eq!(
        expected.len(),
        16_000,
        "every batch acknowledged in the end"
    );
    wait_until("every acknowledged event at Mixpanel", || {
        let got: BTreeSet<String> = server.insert_id_counts().into_keys().collect();
        expected.is_subset(&got)
    });
    wait_until("an empty queue", || {
        restarted.metric("currents_queue_events") == 0.0
    });
    assert_eq!(restarted.terminate(), Some(0));
}

#[test]
fn an_outage_fills_the_budget_then_the_queue_drains() {
    let dir = tempfile::tempdir().unwrap();
    // Mixpanel answers 503 ...
    let server = mock();
    server.fail_next(100_000, 503);
    let port = server.port();
    let relay = Relay::start(dir.path(), &server.base_url(), &["--queue-budget-mib", "1"]);
    let mut accepted = 0;
    let mut from = 0;
    let refused = loop {
        let body = batch(from, 100);
        match post(&relay.url, Some(TOKEN), &body, false).unwrap() {
            (200, _) => {
                accepted += 1;
                from += 100;
            }
            other => break other,
        }
        assert!(accepted < 100, "the budget must stop acknowledgements");
    };
    // Over the budget: never a 2xx for a batch that is not stored.
    assert_eq!(refused.0, 429);
    assert_eq!(refused.1.as_deref(), Some("30"));
    assert_eq!(get(&format!("{}/readyz", relay.url)).0, 503);
    assert!(accepted >= 5, "{accepted}");
    // ... then refuses connections ...
    drop(server);
    std::thread::sleep(Duration::from_millis(500));
    // ... then is back: the queue drains to zero.
    let server = MockServer::start_on(MockConfig::with_token(MIXPANEL), port).unwrap();
    wait_until("an empty queue", || {
        relay.metric("currents_queue_events") == 0.0
    });
    assert_eq!(server.insert_id_counts().len(), accepted * 100);
    assert_eq!(
        post(&relay.url, Some(TOKEN), &batch(from, 100), false)
            .unwrap()
            .0,
        200
    );
    assert_eq!(relay.terminate(), Some(0));
}

#[test]
fn serve_without_a_bearer_token_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let unset = [
        ("CURRENTS_RELAY_TOKEN", None),
        ("CURRENTS_RELAY_TOKEN_FILE", None),
    ];
    let output = serve_once(dir.path(), &unset);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr_of(&output).contains("set CURRENTS_RELAY_TOKEN"),
        "{}",
        stderr_of(&output)
    );
    // Both the variable and its file: ambiguous, refused.
    let token_file = dir.path().join("token");
    let both = [
        ("CURRENTS_RELAY_TOKEN", Some(TOKEN.as_ref())),
        ("CURRENTS_RELAY_TOKEN_FILE", Some(token_file.as_os_str())),
    ];
    let output = serve_once(dir.path(), &both);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(!stderr_of(&output).contains(TOKEN));
}

/// `currents serve` on `dir` that is expected to exit at once, with these
/// variables set (or removed, for `None`) and the Mixpanel token set.
fn serve_once(dir: &Path, vars: &[(&str, Option<&std::ffi::OsStr>)]) -> std::process::Output {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("currents"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("MIXPANEL_PROJECT_TOKEN", MIXPANEL);
    for (var, value) in vars {
        match value {
            Some(value) => command.env(var, value),
            None => command.env_remove(var),
        };
    }
    command.output().unwrap()
}
