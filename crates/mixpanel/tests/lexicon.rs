//! The Lexicon push against the loopback mock: merging uploads within the
//! API's request and entity limits.

use std::time::{Duration, Instant};

use currents_mixpanel::lexicon::{LexiconOptions, PushConfig, entries, push};
use currents_mixpanel::{ApiBase, Credentials, Secret};
use mixpanel_mock::{MockConfig, MockServer};

fn config(server: &MockServer) -> PushConfig {
    let mut config = PushConfig::new(Credentials::ServiceAccount {
        username: "sa".into(),
        secret: Secret::new("sa-secret"),
        project_id: "77".into(),
    });
    config.api_base = Some(ApiBase::parse(&server.base_url()).unwrap());
    config
}

#[test]
fn a_push_stays_within_the_limits_and_merges() {
    let window = Duration::from_millis(400);
    let mut mock = MockConfig::with_service_account("sa", "sa-secret", "77");
    mock.lexicon_window = window;
    let server = MockServer::start(mock).unwrap();
    let lexicon = entries(&LexiconOptions::default());
    let mut config = config(&server);
    // Small requests, so the 5-per-window limit is what paces them.
    config.max_entities = 300;
    config.window = window;
    let started = Instant::now();
    let report = push(&lexicon.entries, &config).unwrap();
    assert_eq!(report.entries as usize, lexicon.entries.len());
    assert!(report.requests > 5, "{report:?}");
    assert_eq!(
        server.lexicon_requests() as u64,
        report.requests,
        "no request refused"
    );
    assert!(
        started.elapsed() >= window,
        "paced over more than one window"
    );
    let stored = server.lexicon();
    assert_eq!(stored.len(), lexicon.entries.len());
    // Pushing again merges: nothing is deleted, and a schema another tool
    // added stays.
    let report = push(&lexicon.entries[..1], &config).unwrap();
    assert_eq!(report.deleted, 0);
    assert_eq!(server.lexicon().len(), lexicon.entries.len());
}

#[test]
fn a_project_token_cannot_push() {
    let server = MockServer::start(MockConfig::with_token("t")).unwrap();
    let mut config = config(&server);
    config.credentials = Credentials::ProjectToken(Secret::new("t"));
    let lexicon = entries(&LexiconOptions::default());
    assert!(push(&lexicon.entries, &config).is_err());
    assert_eq!(server.lexicon_requests(), 0);
}
