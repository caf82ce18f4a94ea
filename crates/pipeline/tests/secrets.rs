//! Credentials never appear in logs (all tracing levels), errors, `Debug`
//! output or the dead letter. Own test binary: it installs a global tracing
//! subscriber that captures every thread's output.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use currents_mixpanel::{Credentials, Secret};
use mixpanel_mock::{MockConfig, MockServer};

const SA_SECRET: &str = "sa-SECRET-d1e2f3a4b5";
const BAD_TOKEN: &str = "tok-SECRET-a9b8c7d6e5";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secrets_never_leak() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let mut seen = Vec::<String>::new();

    // 1. Service account with retries, a dropped connection and a partial 400.
    let mut mc = MockConfig::with_service_account("sa.user", SA_SECRET, "777");
    mc.now = Some(NOW);
    let server = MockServer::start(mc).unwrap();
    server.fail_next(2, 429);
    server.drop_next(1);
    server.fail_next(1, 500);
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.client.credentials = Credentials::ServiceAccount {
        username: "sa.user".into(),
        secret: Secret::new(SA_SECRET),
        project_id: "777".into(),
    };
    seen.push(format!("{config:?}"));
    seen.push(format!("{:?}", config.client));
    let events = inputs(2);
    let run1 = run(config, &dead, &events);
    check_complete(&run1, &dead, &server);
    assert!(run1.delivery().retries >= 4);
    seen.push(format!("{:?}", run1.result.as_ref().map(|r| r.read)));
    seen.push(format!("{:?}", run1.report()));
    seen.push(dead.text());

    // 2. A wrong token: 401.
    let server2 = MockServer::start(MockConfig::with_token(TOKEN)).unwrap();
    let dead2 = SharedBuf::default();
    let mut config = common::config(&server2);
    config.client.credentials = Credentials::ProjectToken(Secret::new(BAD_TOKEN));
    seen.push(format!("{config:?}"));
    let run2 = run(config, &dead2, &events);
    let err = run2.result.unwrap_err();
    assert!(matches!(
        err.cause,
        currents_pipeline::StopCause::Delivery(_)
    ));
    seen.push(err.to_string());
    seen.push(format!("{err:?}"));
    seen.push(dead2.text());

    // 3. Credential errors and types.
    let token = Credentials::ProjectToken(Secret::new(BAD_TOKEN));
    seen.push(format!("{token:?}"));
    seen.push(format!("{}", Secret::new(SA_SECRET)));

    std::thread::sleep(Duration::from_millis(50));
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying"), "capture works: {logs}");
    assert!(logs.contains("refused the credentials"), "{logs}");
    seen.push(logs);

    let b64 = base64::engine::general_purpose::STANDARD;
    let forbidden = [
        SA_SECRET.to_owned(),
        BAD_TOKEN.to_owned(),
        b64.encode(format!("sa.user:{SA_SECRET}")),
        b64.encode(format!("{BAD_TOKEN}:")),
    ];
    for text in &seen {
        for secret in &forbidden {
            assert!(
                !text.contains(secret.as_str()),
                "leak of {secret} in:\n{text}"
            );
        }
    }
}
