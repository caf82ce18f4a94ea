//! The `mixpanel-mock` binary and its environment settings.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::{TIMEOUT, event, events, import};

/// Kills the server however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `env` and returns it with the port it printed.
fn start(env: &[(&str, &str)]) -> (Running, u16) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mixpanel-mock"));
    command
        .env_remove("MOCK_SERVICE_ACCOUNT")
        .env_remove("MOCK_TOKEN")
        .env_remove("MOCK_DISCARD")
        .env_remove("MOCK_MAX_EVENTS")
        .env_remove("MOCK_RETRY_AFTER")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Running(command.spawn().unwrap());
    let stdout = child.0.stdout.take().unwrap();
    // Read the port on a thread so a silent binary cannot hang the test.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(TIMEOUT).expect("the port on stdout");
    let port = line.trim().parse().expect("a port number");
    (child, port)
}

#[test]
fn env_sets_the_event_limit() {
    let (_server, port) = start(&[("MOCK_MAX_EVENTS", "2")]);
    assert_eq!(import(port, &events(2)).unwrap().status, 200);
    let reply = import(port, &events(3)).unwrap();
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.json()["error"],
        "request exceeds max limit of 2 events"
    );
}

#[test]
fn defaults_without_env() {
    let (_server, port) = start(&[]);
    let reply = import(port, &[event("a-1")]).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("retry-after"), None);
}

#[test]
fn a_bad_setting_is_an_error() {
    let status = Command::new(env!("CARGO_BIN_EXE_mixpanel-mock"))
        .env("MOCK_MAX_EVENTS", "many")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

#[test]
fn retry_after_goes_with_the_lexicon_rate_limit() {
    let (_server, port) = start(&[
        ("MOCK_SERVICE_ACCOUNT", "sa.user:sa-secret:12345"),
        ("MOCK_RETRY_AFTER", "4"),
    ]);
    let auth = common::basic("sa.user", "sa-secret");
    let get = || {
        common::send(
            port,
            "GET",
            "/api/app/projects/12345/schemas",
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap()
    };
    for _ in 0..5 {
        let reply = get();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("retry-after"), None);
    }
    let reply = get();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("4"));
}
