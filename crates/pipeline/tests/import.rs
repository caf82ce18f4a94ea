//! End-to-end delivery over real HTTP on 127.0.0.1 against `mixpanel-mock`:
//! the pipeline with an `/import` sink, its dead letter and checkpoint.

mod common;

use std::time::{Duration, Instant};

use common::*;
use currents_mixpanel::{BodyFormat, Credentials, FatalError, Secret};
use currents_pipeline::{DeadLetter, ImportSink, Pipeline, Source, Sources, StopCause};
use mixpanel_mock::{Fault, MockConfig, MockServer};

#[test]
fn all_types_exact_accounting() {
    let server = mock();
    let dead = SharedBuf::default();
    let events = inputs(6);
    let run = run(config(&server), &dead, &events);
    check_complete(&run, &dead, &server);
    let report = run.report();
    assert_eq!(report.read, events.len() as u64);
    assert!(report.skipped["no_external_user_id"] > 0);
    for reason in [
        "time_in_future",
        "time_before_1971",
        "placeholder_distinct_id",
    ] {
        assert!(
            report.rejected.get(reason).copied().unwrap_or(0) > 0,
            "{reason}: {report:#?}"
        );
    }
    assert!(report.dead_lettered.is_empty(), "{report:#?}");
    assert!(report.imported > 400);
    let delivery = run.delivery();
    assert_eq!(delivery.retries, 0);
    assert_eq!(delivery.requests, delivery.batches);
    // Every type is counted on its own, and balances.
    assert_eq!(
        report.by_event_type.len(),
        currents_events::EVENT_TYPES.len()
    );
    let requests = server.requests();
    assert!(requests.iter().all(|r| r.gzip
        && r.content_type == "application/x-ndjson"
        && r.query == "strict=1&ip=0"
        && r.events <= 50));
    // Every type that has an external id arrives.
    let names: std::collections::BTreeSet<String> = server
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.len() > 80, "{}", names.len());
}

#[test]
fn json_array_body_without_gzip_and_service_account() {
    let mut mc = MockConfig::with_service_account("sa.user", "sa-secret", "12345");
    mc.now = Some(NOW);
    let server = MockServer::start(mc).unwrap();
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.client.credentials = Credentials::ServiceAccount {
        username: "sa.user".into(),
        secret: Secret::new("sa-secret"),
        project_id: "12345".into(),
    };
    config.format = BodyFormat::JsonArray;
    config.gzip = false;
    let run = run(config, &dead, &inputs(2));
    check_complete(&run, &dead, &server);
    assert!(server.requests().iter().all(|r| !r.gzip
        && r.content_type == "application/json"
        && r.query == "strict=1&project_id=12345&ip=0"
        && r.status == 200));
}

#[test]
fn batches_respect_the_byte_limit() {
    let server = mock();
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.batch.max_events = 2000;
    config.batch.max_bytes = 8_000;
    let run = run(config, &dead, &inputs(2));
    check_complete(&run, &dead, &server);
    let requests = server.requests();
    assert!(requests.len() > 5);
    assert!(requests.iter().all(|r| r.bytes <= 8_000), "{requests:?}");
    assert_eq!(run.delivery().splits, 0);
}

#[test]
fn burst_of_429_is_retried_and_slows_all_workers() {
    let server = mock();
    server.fail_next(3, 429);
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.batch.max_events = 10;
    config.retry.base_delay = Duration::from_millis(800);
    config.retry.max_delay = Duration::from_millis(800);
    config.retry.jitter_max = Duration::ZERO;
    let run = run(config, &dead, &inputs(2));
    check_complete(&run, &dead, &server);
    assert_eq!(run.delivery().retries, 3);
    assert!(run.report().dead_lettered.is_empty());
    // Once the last 429 is answered, no worker starts a request during the
    // backoff window (150 ms of slack for the client to read the 429).
    let requests = server.requests();
    let last_429 = requests
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| r.answered)
        .max()
        .unwrap();
    let during: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.received > last_429 + Duration::from_millis(150)
                && r.received < last_429 + Duration::from_millis(650)
        })
        .collect();
    assert!(
        during.is_empty(),
        "requests during the shared backoff: {during:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.status == 200 && r.received > last_429 + Duration::from_millis(650)),
        "work resumes after the backoff"
    );
}

#[test]
fn intermittent_5xx_are_retried() {
    let server = mock();
    for fault in [500, 503, 500, 502, 503] {
        server.push_faults(Fault::Status(fault), 1);
    }
    let dead = SharedBuf::default();
    let run = run(config(&server), &dead, &inputs(3));
    check_complete(&run, &dead, &server);
    assert_eq!(run.delivery().retries, 5);
    assert!(run.report().dead_lettered.is_empty());
}

#[test]
fn retries_are_bounded_then_dead_lettered() {
    let server = mock();
    server.fail_next(1000, 503);
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.retry.max_attempts = 3;
    let run = run(config, &dead, &inputs(1));
    check_complete(&run, &dead, &server);
    let report = run.report();
    assert_eq!(report.imported, 0);
    let exhausted = report.dead_lettered["retries_exhausted"];
    assert_eq!(exhausted, report.mapped);
    let delivery = run.delivery();
    assert_eq!(delivery.requests, delivery.batches * 3);
    let line = &dead.lines()[0];
    let detail = dead
        .lines()
        .iter()
        .find(|l| l["reason"] == "retries_exhausted")
        .map(|l| l["detail"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(detail.contains("HTTP 503"), "{detail} {line}");
}

#[test]
fn connection_reset_mid_request_is_retried() {
    let server = mock();
    server.drop_next(3);
    let dead = SharedBuf::default();
    let run = run(config(&server), &dead, &inputs(3));
    check_complete(&run, &dead, &server);
    assert!(run.delivery().retries >= 3, "{:#?}", run.report());
    assert_eq!(server.pending_faults(), 0);
    assert!(run.report().dead_lettered.is_empty());
}

#[test]
fn oversized_batch_gets_413_and_is_split() {
    let server = mock();
    server.configure(|c| c.max_bytes = 12_000);
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.batch.max_events = 200;
    let mut events = inputs(3);
    // One event larger than the server's limit on its own.
    let mut big = currents_events::sample::sample_fields(
        currents_events::event_type_info("users.behaviors.CustomEvent").unwrap(),
        1,
        currents_events::sample::Fill::All,
    );
    big.insert("id".into(), "big-event-0001".into());
    let props: serde_json::Map<String, serde_json::Value> = (0..60)
        .map(|i| (format!("p{i}"), "x".repeat(190).into()))
        .collect();
    big.insert(
        "properties".into(),
        serde_json::Value::Object(props).to_string().into(),
    );
    let big = currents_events::Event::from_map(
        "users.behaviors.CustomEvent",
        serde::de::value::MapDeserializer::new(big.into_iter()),
    )
    .map_err(|e: serde_json::Error| e)
    .unwrap();
    events.push(big);
    let run = run(config, &dead, &events);
    check_complete(&run, &dead, &server);
    let report = run.report();
    assert!(run.delivery().splits > 0, "{report:#?}");
    assert_eq!(report.dead_lettered["payload_too_large"], 1, "{report:#?}");
    assert!(server.requests().iter().any(|r| r.status == 413));
}

#[test]
fn partial_400_dead_letters_only_the_failed_records() {
    for key in ["insert_id", "$insert_id"] {
        let server = mock();
        server.configure(|c| c.failed_insert_id_key = key);
        let dead = SharedBuf::default();
        let events = inputs(2);
        // Pick a few ids to fail.
        let bad: Vec<String> = valid_ids(&events).into_iter().step_by(13).collect();
        server.reject_insert_ids(bad.clone());
        let run = run(config(&server), &dead, &events);
        check_complete(&run, &dead, &server);
        let report = run.report();
        let rejected_here = report.dead_lettered["mixpanel_rejected_record"];
        assert_eq!(rejected_here, bad.len() as u64);
        assert_eq!(run.delivery().retries, 0, "400s are not retried");
        assert_eq!(run.delivery().requests, run.delivery().batches);
        let line = dead
            .lines()
            .into_iter()
            .find(|l| l["reason"] == "mixpanel_rejected_record")
            .unwrap();
        assert!(
            line["detail"]
                .as_str()
                .unwrap()
                .contains("rejected by test configuration")
        );
        assert!(
            bad.contains(
                &line["mixpanel"]["properties"]["$insert_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            )
        );
    }
}

#[test]
fn whole_batch_400_is_dead_lettered() {
    let server = mock();
    server.fail_next(1, 400);
    let dead = SharedBuf::default();
    let run = run(config(&server), &dead, &inputs(1));
    check_complete(&run, &dead, &server);
    let report = run.report();
    assert!(report.dead_lettered["mixpanel_rejected_batch"] > 0);
    assert_eq!(run.delivery().retries, 0);
}

#[test]
fn unauthorized_stops_quickly_without_retries() {
    let server = mock();
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.client.credentials = Credentials::ProjectToken(Secret::new("wrong-token"));
    config.retry.base_delay = Duration::from_secs(5);
    let started = Instant::now();
    let events = inputs(20);
    let run = run(config, &dead, &events);
    assert!(started.elapsed() < Duration::from_secs(3));
    let error = run.result.as_ref().unwrap_err();
    match &error.cause {
        StopCause::Delivery(FatalError::Unauthorized { status, message }) => {
            assert_eq!(*status, 401);
            assert_eq!(message, "Invalid credentials");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let report = run.report();
    let delivery = run.delivery();
    assert_eq!(delivery.retries, 0);
    assert_eq!(report.imported, 0);
    // Whatever was read is in a bucket: the stop left it unresolved.
    assert!(report.is_balanced(), "{report:#?}");
    assert!(report.unresolved > 0);
    assert!(delivery.requests <= 4, "{delivery:#?}");
    assert!(server.requests().iter().all(|r| r.status == 401));
    assert!(report.read < events.len() as u64, "reading stopped early");
    let text = error.to_string();
    assert!(
        text.contains("401") && !text.contains("wrong-token"),
        "{text}"
    );
}

#[test]
fn forbidden_is_fatal_too() {
    let server = mock();
    server.fail_next(1, 403);
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.concurrency = 1;
    let run = run(config, &dead, &inputs(3));
    match &run.result {
        Err(error) => {
            assert!(matches!(
                error.cause,
                StopCause::Delivery(FatalError::Unauthorized { status: 403, .. })
            ));
            assert!(error.report.is_balanced(), "{:#?}", error.report);
            assert_eq!(run.delivery().retries, 0);
        }
        other => panic!("expected 403, got {:?}", other.as_ref().map(|r| r.read)),
    }
}

#[test]
fn resume_after_interruption_has_no_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("checkpoint.json");
    let server = mock();
    server.set_delay(Duration::from_millis(15));
    let events = inputs(8);
    let dead = SharedBuf::default();

    // Run 1: cancelled once the server has seen 4 requests.
    let mut config1 = config(&server);
    config1.concurrency = 2;
    config1.batch.max_events = 20;
    let started = Instant::now();
    let run1 = std::thread::scope(|scope| {
        let server = &server;
        let cancel = config1.cancel.clone();
        scope.spawn(move || {
            while server.request_count() < 4 && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(2));
            }
            cancel.cancel();
        });
        run_with(config1, &dead, &events, Some(&checkpoint), |_| {})
    });
    let report1 = run1.report();
    assert!(run1.delivery().interrupted);
    assert!(report1.is_balanced(), "{report1:#?}");
    assert!(report1.unresolved > 0, "{report1:#?}");
    let position = checkpoint_position(&checkpoint);
    assert!(position > 0 && position < events.len() as u64, "{position}");
    let after_first = server.insert_id_counts();
    let lines_after_first = dead.lines().len();

    // Run 2: from the checkpoint.
    let run2 = run_with(config(&server), &dead, &events, Some(&checkpoint), |_| {});
    let report2 = run2.report();
    assert!(run2.result.is_ok(), "{:?}", run2.result.as_ref().err());
    assert!(report2.is_balanced());
    assert_eq!(report2.unresolved, 0);
    assert_eq!(report2.skipped["before_checkpoint"], position);
    assert_eq!(checkpoint_position(&checkpoint), events.len() as u64);

    // No gaps: every valid event is on the server (by $insert_id) or in the
    // dead letter; run 2 wrote lines only for what it resolved itself.
    let counts = server.insert_id_counts();
    let lines = dead.lines();
    let dead_ids: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|l| {
            l["mixpanel"]["properties"]["$insert_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for id in &run2.submitted_ids {
        assert!(
            counts.contains_key(id) ^ dead_ids.contains(id),
            "{id} missing or in both"
        );
    }
    assert_eq!(
        lines.len() - lines_after_first,
        (report2.rejected_total() + report2.dead_lettered_total()) as usize
    );
    let runs: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["run_id"].as_str()).collect();
    assert!(runs.len() <= 2 && runs.contains(report2.run_id.as_str()));
    // Everything before the checkpoint was already resolved in run 1.
    let first_ids = valid_ids(&events[..position as usize]);
    for id in &first_ids {
        assert!(
            after_first.contains_key(id) || dead_ids.contains(id),
            "{id}"
        );
    }
    // Resent at most what was in flight or queued at the interruption.
    let duplicates: u64 = counts.values().map(|c| c - 1).sum();
    assert!(duplicates <= report1.unresolved + 40, "{duplicates}");
}

fn checkpoint_position(path: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["sources"][FILE]["records"].as_u64().unwrap()
}

#[test]
fn dead_letter_file_and_checkpoint_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let server = mock();
    let dl_path = dir.path().join("dead.ndjson");
    let events = inputs(1);
    let mut sink = ImportSink::new(config(&server));
    let report = Pipeline::new(options())
        .dead_letter(DeadLetter::append(&dl_path).unwrap())
        .checkpoint(dir.path().join("cp.json"))
        .run(&source(&events), &mut sink)
        .unwrap();
    assert!(report.is_balanced());
    let text = std::fs::read_to_string(&dl_path).unwrap();
    assert_eq!(text.lines().count() as u64, report.rejected_total());
    assert_eq!(
        checkpoint_position(&dir.path().join("cp.json")),
        events.len() as u64
    );
    let _ = (Source::stdin, Sources::new);
}

#[test]
fn retry_after_is_honoured_by_every_worker() {
    let server = mock();
    server.push_faults(
        Fault::RetryAfter {
            status: 503,
            seconds: 1,
        },
        1,
    );
    let dead = SharedBuf::default();
    let run = run(config(&server), &dead, &inputs(2));
    check_complete(&run, &dead, &server);
    let requests = server.requests();
    let refused = requests.iter().find(|r| r.status == 503).unwrap().answered;
    // The backoff alone is milliseconds; the server asked for a second
    // (150 ms of slack for requests already on their way).
    let soon: Vec<_> = requests
        .iter()
        .filter(|r| {
            r.received > refused + Duration::from_millis(150)
                && r.received < refused + Duration::from_millis(900)
        })
        .collect();
    assert!(soon.is_empty(), "requests before Retry-After: {soon:?}");
}

#[test]
fn a_413_limit_is_learned() {
    let server = mock();
    server.configure(|c| c.max_events = 40);
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.batch.max_events = 2000;
    let events = inputs(20);
    let run = run(config, &dead, &events);
    check_complete(&run, &dead, &server);
    let sent = run.report().mapped;
    let minimal = sent.div_ceil(40);
    let accepted = server.requests().iter().filter(|r| r.status == 200).count() as u64;
    assert!(
        accepted as f64 <= 1.5 * minimal as f64,
        "{accepted} accepted requests for {sent} events, {minimal} needed"
    );
    assert!(run.delivery().splits <= 6, "{:#?}", run.delivery());
}

/// Collects the sources reported fully accounted for.
#[derive(Default)]
struct Resolved(std::sync::Mutex<Vec<String>>);

impl currents_pipeline::Observer for Resolved {
    fn source_resolved(&self, _index: usize, name: &str) {
        self.0.lock().unwrap().push(name.to_owned());
    }
}

#[test]
fn a_source_is_reported_resolved_once_every_record_has_its_outcome() {
    let events = inputs(2);
    let (a, b) = events.split_at(100);
    let sources: Sources = [Source::bytes("a", ndjson(a)), Source::bytes("b", ndjson(b))]
        .into_iter()
        .collect();
    let server = mock();
    let observer = std::sync::Arc::new(Resolved::default());
    let report = Pipeline::new(options())
        .observer(observer.clone())
        .run(&sources, &mut ImportSink::new(config(&server)))
        .unwrap();
    assert!(report.is_balanced());
    let mut seen = observer.0.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["a", "b"]);
    // A run stopped by a 401 leaves its sources unresolved: none reported.
    let server = mock();
    server.fail_next(1000, 401);
    let observer = std::sync::Arc::new(Resolved::default());
    let result = Pipeline::new(options())
        .observer(observer.clone())
        .run(&sources, &mut ImportSink::new(config(&server)));
    assert!(result.is_err());
    assert!(observer.0.lock().unwrap().is_empty());
}

/// The most requests the mock had in flight at once among `requests`.
fn most_in_flight(requests: &[mixpanel_mock::RequestLog]) -> usize {
    let mut edges: Vec<(Instant, i32)> = requests
        .iter()
        .flat_map(|r| [(r.received, 1), (r.answered, -1)])
        .collect();
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn a_429_storm_halves_the_requests_in_flight() {
    let server = mock();
    server.set_delay(Duration::from_millis(40));
    server.fail_next(6, 429);
    let dead = SharedBuf::default();
    let mut config = config(&server);
    config.concurrency = 8;
    config.batch.max_events = 10;
    let run = run(config, &dead, &inputs(8));
    check_complete(&run, &dead, &server);
    let requests = server.requests();
    let storm_end = requests
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| r.answered)
        .max()
        .unwrap();
    let after: Vec<_> = requests
        .iter()
        .filter(|r| r.received > storm_end + Duration::from_millis(20))
        .cloned()
        .collect();
    // The storm (one wave of 429s) halves the 8 in flight (the next eight
    // requests: 4, and at most one more as the limit probes up) ...
    let first = &after[..after.len().min(8)];
    let early = most_in_flight(first);
    assert!(early <= 5, "{early} in flight after the storm");
    // ... then the limit probes back up.
    let later = most_in_flight(&after);
    assert!(later >= 5, "{later} at most later");
}

#[test]
fn the_send_rate_is_capped() {
    let events = inputs(4);
    let bytes: usize = ndjson(&events).len();
    for (cap, slow) in [(None, false), (Some(60 * 150_000), true)] {
        let server = mock();
        let dead = SharedBuf::default();
        let mut config = config(&server);
        config.max_bytes_per_minute = cap;
        let started = Instant::now();
        let run = run(config, &dead, &events);
        check_complete(&run, &dead, &server);
        let elapsed = started.elapsed();
        let sent = run.delivery().bytes_sent;
        if slow {
            // The first second's worth goes at once, the rest at 150 kB/s.
            let floor = (sent as f64 / 150_000.0 - 1.0) * 0.8;
            assert!(
                floor > 0.3 && elapsed.as_secs_f64() >= floor,
                "{elapsed:?} for {sent} of {bytes} bytes"
            );
        } else {
            assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        }
    }
}

#[test]
fn a_dead_letter_that_is_one_of_the_inputs_is_refused_before_anything_is_sent() {
    let server = mock();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.ndjson");
    std::fs::write(&input, ndjson(&inputs(1))).unwrap();
    let sources = Sources::from_paths(&[&input]).unwrap();
    // The same file by another spelling of its path.
    let dead_letter = DeadLetter::append(&tmp.path().join(".").join("events.ndjson")).unwrap();
    let mut sink = ImportSink::new(config(&server));
    let error = Pipeline::new(options())
        .dead_letter(dead_letter)
        .run(&sources, &mut sink)
        .unwrap_err();
    assert!(
        matches!(error.cause, StopCause::DeadLetterIsInput(_)),
        "{error}"
    );
    assert_eq!(error.report.read, 0);
    assert_eq!(server.request_count(), 0);
    assert_eq!(std::fs::read(&input).unwrap(), ndjson(&inputs(1)));
}
