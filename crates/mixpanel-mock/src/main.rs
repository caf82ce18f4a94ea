//! `mixpanel-mock [PORT]`: runs the loopback `/import` server (127.0.0.1 only)
//! until killed. Credentials come from `MOCK_TOKEN` (default `test-token`) or
//! `MOCK_SERVICE_ACCOUNT` = `username:secret:project_id`. Prints the port.
//! `MOCK_DISCARD=1` validates and counts events without keeping them (for
//! benchmarks: memory stays flat however many events arrive).

use mixpanel_mock::{MockAuth, MockConfig, MockServer};

fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let auth = MockAuth {
        service_account: std::env::var("MOCK_SERVICE_ACCOUNT").ok().and_then(|v| {
            let mut parts = v.splitn(3, ':');
            Some((
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
            ))
        }),
        token: Some(std::env::var("MOCK_TOKEN").unwrap_or_else(|_| "test-token".into())),
    };
    let config = MockConfig {
        auth,
        keep_events: std::env::var_os("MOCK_DISCARD").is_none_or(|v| v != "1"),
        ..MockConfig::default()
    };
    let server = MockServer::start_on(config, port)?;
    println!("{}", server.port());
    loop {
        std::thread::park();
    }
}
