//! `mixpanel-mock [PORT]`: runs the loopback server (`/import` and the
//! Lexicon Schemas API, 127.0.0.1 only) until killed, and prints its port.
//!
//! Settings come from the environment:
//!
//! - `MOCK_TOKEN`: the project token (default `test-token`);
//! - `MOCK_SERVICE_ACCOUNT` = `username:secret:project_id`: a service account
//!   (needed for the Lexicon endpoint);
//! - `MOCK_DISCARD=1`: validate and count events without keeping them (for
//!   benchmarks: memory stays flat however many events arrive);
//! - `MOCK_MAX_EVENTS` = `N`: an `/import` batch of more than `N` events gets
//!   413 (default 2000);
//! - `MOCK_RETRY_AFTER` = `SECONDS`: sent as `Retry-After` with 429/503
//!   faults and the Lexicon rate-limit 429.
//!
//! An unreadable number is an error rather than silently the default.

use std::io;
use std::str::FromStr;

use mixpanel_mock::{MockAuth, MockConfig, MockServer};

/// The parsed value of env `name`, if set.
fn number<T: FromStr>(name: &str) -> io::Result<Option<T>> {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}={text:?} is not a number"),
            )
        }),
        Err(_) => Ok(None),
    }
}

fn main() -> io::Result<()> {
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
    let defaults = MockConfig::default();
    let config = MockConfig {
        auth,
        keep_events: std::env::var_os("MOCK_DISCARD").is_none_or(|v| v != "1"),
        max_events: number("MOCK_MAX_EVENTS")?.unwrap_or(defaults.max_events),
        retry_after: number("MOCK_RETRY_AFTER")?,
        ..defaults
    };
    let server = MockServer::start_on(config, port)?;
    println!("{}", server.port());
    loop {
        std::thread::park();
    }
}
