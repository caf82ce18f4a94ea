//! `currents export` against the loopback Mixpanel mock, over real HTTP.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use mixpanel_mock::{MockConfig, MockServer};
use serde_json::{Value, json};

const USER: &str = "svc-user.currents-test";
const SECRET: &str = "sa-SECRET-5f1e2d3c4b";
const PROJECT: &str = "4242";
const TOKEN: &str = "tok-TOKEN-9a8b7c6d5e";

/// Millisecond retry delays (hidden flags).
const FAST: [&str; 5] = ["--retry-ms", "1", "5", "0", "1"];

#[derive(Clone, Copy)]
enum Auth<'a> {
    /// Service account from the environment, project id as `--project-id`.
    ServiceAccount {
        secret: &'a str,
    },
    /// Service account entirely from the environment.
    ServiceAccountEnv,
    /// `MIXPANEL_PROJECT_TOKEN` only.
    Token(&'a str),
    None,
}

struct Run {
    output: Output,
    summary: Option<Value>,
    dead_letter: Vec<Value>,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    fn stderr(&self) -> String {
        stderr_of(&self.output)
    }
    fn summary(&self) -> &Value {
        self.summary
            .as_ref()
            .unwrap_or_else(|| panic!("no summary written: {}", self.stderr()))
    }
}

/// The stderr of an export never shows a secret.
fn assert_no_secrets(stderr: &str) {
    for secret in [SECRET, TOKEN, "wrong-SECRET-0000"] {
        assert!(!stderr.contains(secret), "stderr shows a secret:\n{stderr}");
    }
    assert_no_panic(stderr.as_bytes());
    // Logs on a redirected stderr carry no colour escapes.
    assert!(
        !stderr.contains('\x1b'),
        "escape codes on stderr:\n{stderr:?}"
    );
}

fn command(server: Option<&MockServer>, dir: &Path, auth: Auth<'_>) -> assert_cmd::Command {
    let mut cmd = currents();
    cmd.current_dir(dir).arg("export").args(FAST);
    if let Some(server) = server {
        cmd.arg("--api-base").arg(server.base_url());
    }
    cmd.arg("--dead-letter")
        .arg(dir.join("dead-letter.ndjson"))
        .arg("--summary-json")
        .arg(dir.join("summary.json"));
    match auth {
        Auth::ServiceAccount { secret } => {
            cmd.env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
                .env("MIXPANEL_SERVICE_ACCOUNT_SECRET", secret)
                .args(["--project-id", PROJECT]);
        }
        Auth::ServiceAccountEnv => {
            cmd.env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
                .env("MIXPANEL_SERVICE_ACCOUNT_SECRET", SECRET)
                .env("MIXPANEL_PROJECT_ID", PROJECT);
        }
        Auth::Token(token) => {
            cmd.env("MIXPANEL_PROJECT_TOKEN", token);
        }
        Auth::None => {}
    }
    cmd
}

fn finish(dir: &Path, output: Output) -> Run {
    assert_no_secrets(&stderr_of(&output));
    let summary_path = dir.join("summary.json");
    let summary = summary_path.exists().then(|| {
        let s = read_summary(&summary_path);
        std::fs::remove_file(&summary_path).unwrap();
        s
    });
    let dead_letter = std::fs::read(dir.join("dead-letter.ndjson"))
        .map(|bytes| ndjson(&bytes))
        .unwrap_or_default();
    Run {
        output,
        summary,
        dead_letter,
    }
}

fn export(
    server: &MockServer,
    dir: &Path,
    auth: Auth<'_>,
    inputs: &[PathBuf],
    extra: &[&str],
) -> Run {
    let output = command(Some(server), dir, auth)
        .args(inputs)
        .args(extra)
        .output()
        .unwrap();
    finish(dir, output)
}

fn service_account() -> MockServer {
    MockServer::start(MockConfig::with_service_account(USER, SECRET, PROJECT)).unwrap()
}

/// `$insert_id`s of `currents map` over `inputs`.
fn mapped_insert_ids(inputs: &[PathBuf]) -> BTreeSet<String> {
    let output = currents()
        .args(["map", "-q"])
        .args(inputs)
        .output()
        .unwrap();
    ndjson(&output.stdout)
        .iter()
        .map(|e| e["properties"]["$insert_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every mapped event reached the server exactly once.
fn assert_each_once(server: &MockServer, expected: &BTreeSet<String>) {
    let counts = server.insert_id_counts();
    let got: BTreeSet<String> = counts.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(missing.is_empty(), "missing on the server: {missing:?}");
    assert!(extra.is_empty(), "unexpected on the server: {extra:?}");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "imported more than once: {twice:?}");
}

fn sample_export_summary() -> Value {
    summary(json!({
        "read": SAMPLE_READ,
        "mapped": SAMPLE_MAPPED,
        "imported": SAMPLE_MAPPED,
        "skipped": {"no_external_user_id": SAMPLE_SKIPPED},
        "files": SAMPLE_FILES,
        "bytes": SAMPLE_BYTES,
        "ignored": {SAMPLE_IGNORED: 1},
    }))
}

/// `read = imported + skipped + rejected + dead_lettered`.
fn assert_balanced(s: &Value) {
    assert_eq!(
        s["read"].as_u64().unwrap(),
        s["imported"].as_u64().unwrap()
            + total(&s["skipped"])
            + total(&s["rejected"])
            + s["dead_lettered"].as_u64().unwrap(),
        "{s}"
    );
    assert_eq!(
        s["dead_lettered"].as_u64().unwrap(),
        total(&s["dead_lettered_reasons"]),
        "{s}"
    );
}

#[test]
fn export_sample_data_with_a_service_account() {
    let server = service_account();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [sample_data()];
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &inputs,
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(run.summary(), &sample_export_summary());
    assert_balanced(run.summary());
    assert!(run.dead_letter.is_empty());
    assert!(run.output.stdout.is_empty());
    assert!(
        run.stderr().contains("imported       374"),
        "{}",
        run.stderr()
    );
    assert_each_once(&server, &mapped_insert_ids(&inputs));
    // What the server got is what `map` writes.
    let requests = server.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.status, 200);
        assert!(r.gzip);
        assert!(r.content_type.starts_with("application/x-ndjson"), "{r:?}");
        assert!(r.query.contains(&format!("project_id={PROJECT}")), "{r:?}");
    }
}

#[test]
fn export_with_service_account_from_the_environment_in_small_batches() {
    let server = service_account();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [sample_data()];
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccountEnv,
        &inputs,
        &[
            "--batch-events",
            "50",
            "--concurrency",
            "3",
            "--no-gzip",
            "--json-array",
        ],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(run.summary(), &sample_export_summary());
    assert_each_once(&server, &mapped_insert_ids(&inputs));
    let requests = server.requests();
    assert_eq!(requests.len(), 374_usize.div_ceil(50));
    for r in &requests {
        assert!(r.events <= 50 && !r.gzip, "{r:?}");
        assert!(r.content_type.starts_with("application/json"), "{r:?}");
    }
}

#[test]
fn export_with_a_project_token() {
    let server = MockServer::start(MockConfig::with_token(TOKEN)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [sample_data()];
    let run = export(&server, tmp.path(), Auth::Token(TOKEN), &inputs, &[]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(run.summary(), &sample_export_summary());
    assert_each_once(&server, &mapped_insert_ids(&inputs));
    for r in server.requests() {
        assert!(!r.query.contains("project_id"), "{r:?}");
    }
}

#[test]
fn export_retries_429_500_and_dropped_connections() {
    let server = service_account();
    server.fail_next(3, 429);
    server.fail_next(2, 500);
    server.fail_next(1, 503);
    server.drop_next(2);
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [sample_data()];
    let started = Instant::now();
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &inputs,
        &["--batch-events", "100", "--concurrency", "2"],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(server.pending_faults(), 0);
    assert_eq!(run.summary(), &sample_export_summary());
    assert!(run.dead_letter.is_empty());
    assert_each_once(&server, &mapped_insert_ids(&inputs));
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&500),
        "{statuses:?}"
    );
}

#[test]
fn export_dead_letters_a_partial_400() {
    partial_400(false);
}

#[test]
fn export_dead_letter_input_keeps_every_input() {
    partial_400(true);
}

/// Refused events land in the dead letter; their `input` only with
/// `--dead-letter-input` (by default they are found by `source`).
fn partial_400(keep_input: bool) {
    let server = service_account();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [sample_data()];
    let all = mapped_insert_ids(&inputs);
    let refused: BTreeSet<String> = all.iter().step_by(50).cloned().collect();
    assert!(refused.len() >= 5);
    server.reject_insert_ids(refused.iter().cloned());
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &inputs,
        if keep_input {
            &["--batch-events", "100", "--dead-letter-input"]
        } else {
            &["--batch-events", "100"]
        },
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    let s = run.summary();
    assert_balanced(s);
    let n = refused.len() as u64;
    assert_eq!(s["imported"].as_u64().unwrap(), SAMPLE_MAPPED - n, "{s}");
    assert_eq!(s["dead_lettered"].as_u64().unwrap(), n, "{s}");
    assert_eq!(s["read"], SAMPLE_READ);
    assert_eq!(s["skipped"], json!({"no_external_user_id": SAMPLE_SKIPPED}));
    // The dead letter holds exactly the refused events, with reasons.
    assert_eq!(run.dead_letter.len() as u64, n);
    let dead: BTreeSet<String> = run
        .dead_letter
        .iter()
        .map(|line| {
            assert!(
                line["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{line}"
            );
            assert!(line["detail"].is_string(), "{line}");
            assert!(line["source"]["file"].is_string(), "{line}");
            assert!(line["source"]["record"].is_u64(), "{line}");
            if keep_input {
                assert!(line["input"].is_object(), "{line}");
            } else {
                assert!(line["input"].is_null(), "{line}");
            }
            line["mixpanel"]["properties"]["$insert_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(dead, refused);
    let imported: BTreeSet<String> = server.insert_id_counts().keys().cloned().collect();
    assert!(imported.is_disjoint(&refused));
    assert_eq!(imported.len() as u64, SAMPLE_MAPPED - n);
    assert!(run.stderr().contains("dead-lettered"), "{}", run.stderr());
}

#[test]
fn export_rejects_invalid_events_before_sending() {
    let server = service_account();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.ndjson");
    let open = ndjson_record("users.messages.email.Open");
    let ms = r#"{"event_type":"users.messages.carrierpigeon.Send","id":"0f0e0d0c-0b0a-4908-8706-050403020101","external_user_id":"user-00042","time":1768435400123}"#;
    let text = format!("{open}\n{ms}\n{{broken\n");
    std::fs::write(&input, &text).unwrap();
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &[input],
        &[],
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    let s = run.summary();
    assert_balanced(s);
    assert_eq!(s["imported"], 1, "{s}");
    assert_eq!(s["read"], 3, "{s}");
    assert_eq!(s["rejected"]["time_in_milliseconds"], 1, "{s}");
    assert_eq!(s["rejected"]["malformed_json"], 1, "{s}");
    assert_eq!(server.accepted_count(), 1);
    let reasons: Vec<&str> = run
        .dead_letter
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"time_in_milliseconds"), "{reasons:?}");
    // Rejected before sending: its input record is in the dead letter by default.
    let rejected = run
        .dead_letter
        .iter()
        .find(|l| l["reason"] == "time_in_milliseconds")
        .unwrap();
    assert_eq!(
        rejected["input"]["time"], 1_768_435_400_123_i64,
        "{rejected}"
    );
    assert_eq!(rejected["source"]["line"], 2, "{rejected}");
}

#[test]
fn export_with_wrong_credentials_stops_quickly() {
    let server = service_account();
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // Default (slow) retry delays: a 401 must not be retried at all.
    let output = currents()
        .current_dir(tmp.path())
        .arg("export")
        .arg(sample_data())
        .arg("--api-base")
        .arg(server.base_url())
        .args(["--project-id", PROJECT])
        .env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
        .env("MIXPANEL_SERVICE_ACCOUNT_SECRET", "wrong-SECRET-0000")
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = stderr_of(&output);
    assert_no_secrets(&stderr);
    assert!(
        stderr.contains("error: Mixpanel refused the credentials"),
        "{stderr}"
    );
    assert!(stderr.contains("401"), "{stderr}");
    assert_eq!(server.accepted_count(), 0);
    // No retries: at most one request per worker.
    assert!(server.request_count() <= 10, "{}", server.request_count());

    // A wrong token likewise; the summary still accounts for every record.
    let token_server = MockServer::start(MockConfig::with_token(TOKEN)).unwrap();
    let run = export(
        &token_server,
        tmp.path(),
        Auth::Token("wrong-SECRET-0000"),
        &[sample_data()],
        &[],
    );
    assert_eq!(run.output.status.code(), Some(1), "{:?}", run.output);
    assert!(stderr_of(&run.output).contains("refused the credentials"));
    let summary = run
        .summary
        .expect("the summary is written even when the export stops");
    assert_eq!(summary["imported"], 0);
    assert_eq!(summary["read"], 476);
    assert!(summary["unresolved"].as_u64().unwrap_or(0) > 0, "{summary}");
    // The stderr summary shows them too, not only the JSON.
    let unresolved = format!("{:<14} {}", "unresolved", summary["unresolved"]);
    assert!(
        stderr_of(&run.output).contains(&unresolved),
        "{}",
        stderr_of(&run.output)
    );
    assert_eq!(
        summary["read"].as_u64(),
        Some(
            summary["imported"].as_u64().unwrap_or(0)
                + total(&summary["skipped"])
                + total(&summary["rejected"])
                + summary["dead_lettered"].as_u64().unwrap_or(0)
                + summary["unresolved"].as_u64().unwrap_or(0)
        ),
        "{summary}"
    );
}

#[test]
fn export_without_credentials_is_fatal() {
    let server = service_account();
    let tmp = tempfile::tempdir().unwrap();
    let output = command(Some(&server), tmp.path(), Auth::None)
        .arg(sample_data())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: no Mixpanel credentials"),
        "{stderr}"
    );
    for var in [
        "MIXPANEL_SERVICE_ACCOUNT_USERNAME",
        "MIXPANEL_SERVICE_ACCOUNT_SECRET",
        "MIXPANEL_PROJECT_ID",
        "MIXPANEL_PROJECT_TOKEN",
    ] {
        assert!(stderr.contains(var), "{stderr}");
    }
    assert_eq!(server.request_count(), 0);
    // A service account without a project id.
    let output = command(Some(&server), tmp.path(), Auth::None)
        .arg(sample_data())
        .env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
        .env("MIXPANEL_SERVICE_ACCOUNT_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("MIXPANEL_PROJECT_ID"), "{stderr}");
    assert_no_secrets(&stderr);
    assert_eq!(server.request_count(), 0);
}

#[test]
fn export_dry_run_sends_nothing() {
    let server = service_account();
    let tmp = tempfile::tempdir().unwrap();
    // No credentials needed either.
    let run = export(
        &server,
        tmp.path(),
        Auth::None,
        &[sample_data()],
        &["--dry-run"],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(server.request_count(), 0);
    let mut expected = sample_export_summary();
    expected["imported"] = json!(0);
    assert_eq!(run.summary(), &expected);
    assert!(
        run.stderr()
            .contains("dry run: would send 374 event(s) in 1 request(s)"),
        "{}",
        run.stderr()
    );
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &[sample_data()],
        &["--dry-run", "--batch-events", "100"],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert!(run.stderr().contains("in 4 request(s)"), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("credentials: service account; nothing sent"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains(SECRET));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn export_resumes_from_a_checkpoint_after_a_prefix() {
    let server = service_account();
    let tmp = tempfile::tempdir().unwrap();
    let checkpoint = tmp.path().join("checkpoint.json");
    let cp = checkpoint.to_str().unwrap();
    // First run: only the Avro part of the export.
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &[sample_data().join("avro")],
        &["--checkpoint", cp],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let first = run.summary()["imported"].as_u64().unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(saved["sources"].as_object().unwrap().len(), 94, "{saved}");
    // Second run: everything; the Avro records are not sent again.
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &[sample_data()],
        &["--checkpoint", cp],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let s = run.summary();
    assert_balanced(s);
    assert_eq!(s["read"], SAMPLE_READ);
    assert_eq!(
        s["imported"].as_u64().unwrap(),
        SAMPLE_MAPPED - first,
        "{s}"
    );
    assert_eq!(s["skipped"]["before_checkpoint"], 94 * 3, "{s}");
    assert_each_once(&server, &mapped_insert_ids(&[sample_data()]));
    // A third run sends nothing new.
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &[sample_data()],
        &["--checkpoint", cp],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(run.summary()["imported"], 0);
    assert_eq!(run.summary()["skipped"]["before_checkpoint"], SAMPLE_READ);
    assert_each_once(&server, &mapped_insert_ids(&[sample_data()]));
}

#[test]
fn export_resumes_after_a_run_stopped_by_the_server() {
    let server = service_account();
    server.set_delay(Duration::from_millis(15));
    let tmp = tempfile::tempdir().unwrap();
    let checkpoint = tmp.path().join("checkpoint.json");
    let cp = checkpoint.to_str().unwrap();
    let args = [
        "--checkpoint",
        cp,
        "--batch-events",
        "20",
        "--concurrency",
        "1",
    ];
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_currents"));
    cmd.current_dir(tmp.path())
        .arg("export")
        .args(FAST)
        .arg("--api-base")
        .arg(server.base_url())
        .args(["--project-id", PROJECT])
        .arg("--dead-letter")
        .arg(tmp.path().join("dead-letter.ndjson"))
        .arg("--summary-json")
        .arg(tmp.path().join("summary.json"))
        .args(args)
        .arg(sample_data())
        .env_remove("MIXPANEL_PROJECT_TOKEN")
        .env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
        .env("MIXPANEL_SERVICE_ACCOUNT_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // After a few requests the credentials are revoked: the export stops.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.request_count() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.configure(|c| c.auth.service_account = None);
    let output = child.wait_with_output().unwrap();
    let run = finish(tmp.path(), output);
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    assert!(
        run.stderr().contains("refused the credentials"),
        "{}",
        run.stderr()
    );
    let partial = server.insert_id_counts().len() as u64;
    assert!(partial > 0 && partial < SAMPLE_MAPPED, "{partial}");
    assert!(checkpoint.exists());

    // Credentials back; the rerun completes the export.
    server.configure(|c| {
        c.auth.service_account = Some((USER.into(), SECRET.into(), PROJECT.into()));
    });
    server.set_delay(Duration::ZERO);
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &[sample_data()],
        &args,
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let s = run.summary();
    assert_balanced(s);
    assert!(
        s["skipped"]["before_checkpoint"].as_u64().unwrap() > 0,
        "{s}"
    );
    // None missing; the checkpoint kept resends to the batches in flight.
    let expected = mapped_insert_ids(&[sample_data()]);
    let counts = server.insert_id_counts();
    let got: BTreeSet<String> = counts.keys().cloned().collect();
    assert_eq!(got, expected);
    let resent = counts.values().filter(|n| **n > 1).count();
    assert!(resent <= 20, "{resent} events imported twice");
}

/// The base64 `user:secret` pair of Basic auth, without a base64 dependency.
fn basic_pair(user: &str, secret: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{secret}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn export_logs_never_show_the_authorization_header() {
    let server = service_account();
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_data().join("ndjson");
    let pair = basic_pair(USER, SECRET);
    assert_eq!(
        pair,
        "c3ZjLXVzZXIuY3VycmVudHMtdGVzdDpzYS1TRUNSRVQtNWYxZTJkM2M0Yg=="
    );
    let cases: [(&[&str], Option<&str>); 5] = [
        (&[], None),
        (&["-v"], None),
        (&["-vv"], None),
        (&[], Some("trace")),
        (&[], Some("ureq_proto::util=trace,ureq=trace,trace")),
    ];
    for (flags, rust_log) in cases {
        let mut cmd = command(
            Some(&server),
            tmp.path(),
            Auth::ServiceAccount { secret: SECRET },
        );
        cmd.args(flags).arg(&input);
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let run = finish(tmp.path(), cmd.output().unwrap());
        assert_eq!(
            run.code(),
            Some(0),
            "{flags:?} {rust_log:?}: {}",
            run.stderr()
        );
        let stderr = run.stderr();
        assert!(!stderr.contains(&pair), "{flags:?} {rust_log:?}:\n{stderr}");
        // The wire dump prints bytes in hex next to their text.
        assert!(
            !stderr.to_ascii_lowercase().contains("authoriza"),
            "{flags:?} {rust_log:?}:\n{stderr}"
        );
        if flags.is_empty() && rust_log.is_none() {
            // The default level: the summary only, no client chatter.
            assert!(!stderr.contains("DEBUG"), "{stderr}");
            assert!(!stderr.contains("TRACE"), "{stderr}");
        }
    }
}

#[test]
fn export_reads_credentials_from_files() {
    let tmp = tempfile::tempdir().unwrap();
    let secret_file = tmp.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let input = sample_data().join("ndjson");

    let server = service_account();
    let output = command(Some(&server), tmp.path(), Auth::None)
        .arg(&input)
        .env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
        .env("MIXPANEL_SERVICE_ACCOUNT_SECRET_FILE", &secret_file)
        .env("MIXPANEL_PROJECT_ID", PROJECT)
        .output()
        .unwrap();
    let run = finish(tmp.path(), output);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(run.summary()["imported"], 95);

    let server = MockServer::start(MockConfig::with_token(TOKEN)).unwrap();
    let output = command(Some(&server), tmp.path(), Auth::None)
        .arg(&input)
        .env("MIXPANEL_PROJECT_TOKEN_FILE", &token_file)
        .output()
        .unwrap();
    let run = finish(tmp.path(), output);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(server.accepted_count(), 95);

    // A credentials file that cannot be read: fatal, named, nothing sent.
    let missing = tmp.path().join("no-such-secret");
    let output = command(Some(&server), tmp.path(), Auth::None)
        .arg(&input)
        .env("MIXPANEL_PROJECT_TOKEN_FILE", &missing)
        .output()
        .unwrap();
    let run = finish(tmp.path(), output);
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    assert!(
        run.stderr().contains("MIXPANEL_PROJECT_TOKEN_FILE"),
        "{}",
        run.stderr()
    );
    assert_eq!(server.accepted_count(), 95);
}

// ---- Delivery believes only what it can verify (each test failed before its fix) ----

/// The email Open records of the demo NDJSON, as a small input.
fn opens(dir: &Path, n: usize) -> PathBuf {
    let open = ndjson_record("users.messages.email.Open");
    let mut text = String::new();
    for i in 0..n {
        let id = format!("0b5a1c2e-aaaa-4bbb-8ccc-{i:012}");
        text.push_str(&with(&open, "id", json!(id)));
        text.push('\n');
    }
    let path = dir.join("opens.ndjson");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_200_that_does_not_confirm_is_never_counted_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let input = opens(tmp.path(), 30);
    // A body that is not JSON, every time: retried, then dead-lettered.
    let server = service_account();
    server.push_faults(
        mixpanel_mock::Fault::Body {
            status: 200,
            body: "<html>ok</html>",
        },
        100,
    );
    let auth = Auth::ServiceAccount { secret: SECRET };
    let run = export(
        &server,
        tmp.path(),
        auth,
        std::slice::from_ref(&input),
        &["--max-attempts", "3"],
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    let s = run.summary();
    assert_eq!(s["imported"], 0, "{s}");
    assert_eq!(
        s["dead_lettered_reasons"],
        json!({"unconfirmed": 30}),
        "{s}"
    );
    assert_eq!(run.dead_letter.len(), 30);
    assert!(run.dead_letter.iter().all(|l| l["reason"] == "unconfirmed"));
    // A server that imports fewer than it was sent: sent again until it confirms.
    let server = service_account();
    server.push_faults(mixpanel_mock::Fault::ShortImport { missing: 5 }, 1);
    let run = export(&server, tmp.path(), auth, &[input], &[]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(run.summary()["imported"], 30);
    assert_eq!(
        server.insert_id_counts().len(),
        30,
        "every event on the server"
    );
}

#[test]
fn a_400_that_cannot_place_its_refusals_is_not_counted_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let input = opens(tmp.path(), 20);
    let server = service_account();
    server.push_faults(mixpanel_mock::Fault::BadFailedRecords, 1);
    let run = export(
        &server,
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
        &[input],
        &[],
    );
    // The refused records could not be placed: the batch went again and was
    // confirmed the second time, so every event is on the server.
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(run.summary()["imported"], 20);
    assert_eq!(server.insert_id_counts().len(), 20);
    assert_eq!(server.request_count(), 2);
}

#[test]
fn a_checkpoint_for_other_content_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = service_account();
    let auth = Auth::ServiceAccount { secret: SECRET };
    let checkpoint = tmp.path().join("cp.json");
    let cp = checkpoint.to_str().unwrap();
    let input = opens(tmp.path(), 10);
    let run = export(
        &server,
        tmp.path(),
        auth,
        std::slice::from_ref(&input),
        &["--checkpoint", cp],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    // Another file at the same path.
    let open = ndjson_record("users.messages.email.Open");
    std::fs::write(&input, format!("{open}\n")).unwrap();
    let requests = server.request_count();
    let run = export(
        &server,
        tmp.path(),
        auth,
        std::slice::from_ref(&input),
        &["--checkpoint", cp],
    );
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    let stderr = run.stderr();
    assert!(stderr.contains("written for other content"), "{stderr}");
    assert!(stderr.contains("Delete the checkpoint"), "{stderr}");
    assert_eq!(server.request_count(), requests, "nothing sent");
    // Other data on standard input.
    std::fs::remove_file(&checkpoint).unwrap();
    let stdin_run = |text: String| {
        let output = command(Some(&server), tmp.path(), auth)
            .args(["--checkpoint", cp])
            .write_stdin(text)
            .output()
            .unwrap();
        finish(tmp.path(), output)
    };
    let first = std::fs::read_to_string(opens(tmp.path(), 3)).unwrap();
    assert_eq!(stdin_run(first).code(), Some(0));
    let run = stdin_run(format!("{open}\n"));
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    assert!(run.stderr().contains("<stdin>"), "{}", run.stderr());
}

#[test]
fn a_checkpoint_of_another_version_or_kind_is_refused_quickly() {
    let tmp = tempfile::tempdir().unwrap();
    let server = service_account();
    let auth = Auth::ServiceAccount { secret: SECRET };
    let input = opens(tmp.path(), 3);
    let old = tmp.path().join("old.json");
    std::fs::write(&old, r#"{"version":1,"files":{"x":3}}"#).unwrap();
    let started = Instant::now();
    for (cp, message) in [
        (old.to_str().unwrap(), "has version 1"),
        ("/dev/zero", "not a regular file"),
    ] {
        let run = export(
            &server,
            tmp.path(),
            auth,
            std::slice::from_ref(&input),
            &["--checkpoint", cp],
        );
        assert_eq!(run.code(), Some(1), "{}", run.stderr());
        assert!(run.stderr().contains(message), "{}", run.stderr());
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn a_location_that_cannot_be_written_fails_before_anything_is_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let server = service_account();
    let input = opens(tmp.path(), 3);
    let missing = tmp.path().join("no/such/dir/file");
    for flag in ["--dead-letter", "--checkpoint"] {
        let output = currents()
            .current_dir(tmp.path())
            .arg("export")
            .arg(&input)
            .arg("--api-base")
            .arg(server.base_url())
            .args(["--project-id", PROJECT])
            .env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
            .env("MIXPANEL_SERVICE_ACCOUNT_SECRET", SECRET)
            .arg(flag)
            .arg(&missing)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{flag}: {output:?}");
        assert!(stderr_of(&output).contains("no/such/dir"), "{output:?}");
    }
    assert_eq!(server.request_count(), 0);
}

#[test]
fn usage_errors_exit_2_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let input = opens(tmp.path(), 1);
    let started = Instant::now();
    for args in [
        &["--api-base", "127.0.0.1:9"][..],
        &["--api-base", "ftp://example.com"],
        &["--batch-events", "0"],
        &["--batch-events", "2001"],
        &["--request-timeout", "0"],
    ] {
        let output = currents()
            .current_dir(tmp.path())
            .arg("export")
            .arg(&input)
            .args(args)
            .env("MIXPANEL_PROJECT_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn records_that_fail_to_decode_get_a_dead_letter_line_and_runs_are_told_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let server = service_account();
    let auth = Auth::ServiceAccount { secret: SECRET };
    let open = ndjson_record("users.messages.email.Open");
    let old = with(&open, "time", json!(1000));
    let input = tmp.path().join("mixed.ndjson");
    std::fs::write(&input, format!("{open}\n{{not json\n{old}\n[1,2]\n")).unwrap();
    for round in 1..=2 {
        let run = export(&server, tmp.path(), auth, std::slice::from_ref(&input), &[]);
        assert_eq!(run.code(), Some(3), "{}", run.stderr());
        let s = run.summary();
        assert_eq!(total(&s["rejected"]), 3, "{s}");
        // One line per rejected record per run, each with its run's id.
        assert_eq!(run.dead_letter.len(), 3 * round);
        let runs: BTreeSet<&str> = run
            .dead_letter
            .iter()
            .filter_map(|l| l["run_id"].as_str())
            .collect();
        assert_eq!(runs.len(), round, "{:?}", run.dead_letter);
        let lines: BTreeSet<u64> = run.dead_letter[3 * (round - 1)..]
            .iter()
            .map(|l| l["source"]["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, BTreeSet::from([2, 3, 4]));
    }
}

#[test]
fn replay_sends_the_retryable_and_leaves_permanent_rejections() {
    let tmp = tempfile::tempdir().unwrap();
    let auth = Auth::ServiceAccount { secret: SECRET };
    let input = opens(tmp.path(), 12);
    let open = ndjson_record("users.messages.email.Open");
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str(&with(&open, "time", json!(1000)));
    text.push('\n');
    std::fs::write(&input, text).unwrap();
    // Mixpanel unavailable: the 12 events run out of attempts.
    let down = service_account();
    down.fail_next(1000, 503);
    let run = export(&down, tmp.path(), auth, &[input], &["--max-attempts", "2"]);
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert_eq!(run.dead_letter.len(), 13);
    // Replayed against a working Mixpanel.
    let server = service_account();
    let replayed = tmp.path().join("again.ndjson");
    let output = currents()
        .current_dir(tmp.path())
        .arg("replay")
        .arg(tmp.path().join("dead-letter.ndjson"))
        .arg("--dead-letter")
        .arg(&replayed)
        .arg("--api-base")
        .arg(server.base_url())
        .args(["--project-id", PROJECT])
        .arg("--summary-json")
        .arg(tmp.path().join("replay.json"))
        .env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
        .env("MIXPANEL_SERVICE_ACCOUNT_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let s = read_summary(&tmp.path().join("replay.json"));
    assert_eq!(s["imported"], 12, "{s}");
    assert_eq!(s["skipped"], json!({"not_retryable": 1}), "{s}");
    assert_eq!(server.insert_id_counts().len(), 12);
    assert!(!replayed.exists(), "nothing failed again");
    // Writing failures into one of its own inputs is refused, before
    // anything is sent or written.
    let dl = tmp.path().join("dead-letter.ndjson");
    let (before, requests) = (std::fs::read(&dl).unwrap(), server.request_count());
    let output = currents()
        .arg("replay")
        .arg(&dl)
        .arg("--dead-letter")
        .arg(tmp.path().join(".").join("dead-letter.ndjson"))
        .arg("--api-base")
        .arg(server.base_url())
        .args(["--project-id", PROJECT])
        .env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
        .env("MIXPANEL_SERVICE_ACCOUNT_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr_of(&output).contains("the dead letter is the input"),
        "{output:?}"
    );
    assert_eq!(std::fs::read(&dl).unwrap(), before);
    assert_eq!(server.request_count(), requests, "nothing more was sent");
}

#[test]
fn events_are_not_geolocated_to_the_exporter_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let input = opens(tmp.path(), 2);
    let auth = Auth::ServiceAccount { secret: SECRET };
    let server = service_account();
    export(&server, tmp.path(), auth, std::slice::from_ref(&input), &[]);
    assert!(server.requests().iter().all(|r| r.query.ends_with("&ip=0")));
    let server = service_account();
    export(&server, tmp.path(), auth, &[input], &["--geolocate"]);
    assert!(server.requests().iter().all(|r| !r.query.contains("ip=0")));
}

#[test]
fn credentials_given_twice_or_in_a_file_of_several_lines_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = opens(tmp.path(), 1);
    let server = service_account();
    let file = tmp.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let both = command(
        Some(&server),
        tmp.path(),
        Auth::ServiceAccount { secret: SECRET },
    )
    .arg(&input)
    .env("MIXPANEL_SERVICE_ACCOUNT_SECRET_FILE", &file)
    .output()
    .unwrap();
    assert_eq!(both.status.code(), Some(1), "{both:?}");
    assert!(
        stderr_of(&both).contains("both MIXPANEL_SERVICE_ACCOUNT_SECRET and"),
        "{both:?}"
    );
    std::fs::write(&file, format!("{SECRET}\nextra\n")).unwrap();
    let output = command(Some(&server), tmp.path(), Auth::None)
        .arg(&input)
        .env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", USER)
        .env("MIXPANEL_SERVICE_ACCOUNT_SECRET_FILE", &file)
        .args(["--project-id", PROJECT])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr_of(&output).contains("more than one line"),
        "{output:?}"
    );
    for output in [&both, &output] {
        assert_no_secrets(&stderr_of(output));
    }
    assert_eq!(server.request_count(), 0);
}

#[test]
fn a_dry_run_says_where_it_would_send_and_writes_the_would_be_dead_letter() {
    let tmp = tempfile::tempdir().unwrap();
    let input = opens(tmp.path(), 5);
    let open = ndjson_record("users.messages.email.Open");
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str(&with(&open, "time", json!(1000)));
    text.push('\n');
    std::fs::write(&input, text).unwrap();
    let summary = tmp.path().join("dry.json");
    let output = currents()
        .current_dir(tmp.path())
        .args(["export", "--dry-run", "--region", "eu"])
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary)
        .env("MIXPANEL_PROJECT_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("https://api-eu.mixpanel.com/import"),
        "{stderr}"
    );
    assert!(stderr.contains("credentials: project token"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
    let s = read_summary_raw(&summary);
    assert_eq!(s["dry_run"]["region"], "eu");
    assert_eq!(s["dry_run"]["credentials"], "project token");
    assert_eq!(s["batches"], 1);
    assert!(s["batch_bytes"].as_u64().unwrap() > 1000);
    let dead = ndjson(&std::fs::read(tmp.path().join("currents-dead-letter.ndjson")).unwrap());
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["reason"], "time_before_1971");
}
