//! End-to-end delivery over real HTTP on 127.0.0.1 against `mixpanel-mock`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use currents_mixpanel::{
    BodyFormat, Checkpoint, ClientConfig, Credentials, DeadLetterWriter, ExportConfig, ExportError,
    Exporter, FatalError, MixpanelEvent, PreparedEvent, Secret, Source,
};
use mixpanel_mock::{Fault, MockConfig, MockServer};

#[test]
fn all_types_exact_accounting() {
    let server = mock();
    let dead = SharedBuf::default();
    let events = inputs(6);
    let run = run(config(&server, &dead), &events, 0);
    check_complete(&run, &dead, &server);
    let report = run.report();
    assert_eq!(run.read, events.len() as u64);
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
    assert_eq!(report.retries, 0);
    assert_eq!(report.requests, report.batches);
    let requests = server.requests();
    assert!(requests.iter().all(|r| r.gzip
        && r.content_type == "application/x-ndjson"
        && r.query == "strict=1"
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
    let mut config = config(&server, &dead);
    config.client.credentials = Credentials::ServiceAccount {
        username: "sa.user".into(),
        secret: Secret::new("sa-secret"),
        project_id: "12345".into(),
    };
    config.format = BodyFormat::JsonArray;
    config.gzip = false;
    let run = run(config, &inputs(2), 0);
    check_complete(&run, &dead, &server);
    assert!(server.requests().iter().all(|r| !r.gzip
        && r.content_type == "application/json"
        && r.query == "strict=1&project_id=12345"
        && r.status == 200));
}

#[test]
fn batches_respect_the_byte_limit() {
    let server = mock();
    let dead = SharedBuf::default();
    let mut config = config(&server, &dead);
    config.batch.max_events = 2000;
    config.batch.max_bytes = 8_000;
    let run = run(config, &inputs(2), 0);
    check_complete(&run, &dead, &server);
    let requests = server.requests();
    assert!(requests.len() > 5);
    assert!(requests.iter().all(|r| r.bytes <= 8_000), "{requests:?}");
    assert_eq!(run.report().splits, 0);
}

#[test]
fn burst_of_429_is_retried_and_slows_all_workers() {
    let server = mock();
    server.fail_next(3, 429);
    let dead = SharedBuf::default();
    let mut config = config(&server, &dead);
    config.batch.max_events = 10;
    config.retry.base_delay = Duration::from_millis(800);
    config.retry.max_delay = Duration::from_millis(800);
    config.retry.jitter_max = Duration::ZERO;
    let run = run(config, &inputs(2), 0);
    check_complete(&run, &dead, &server);
    let report = run.report();
    assert_eq!(report.retries, 3);
    assert!(report.dead_lettered.is_empty());
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
    let run = run(config(&server, &dead), &inputs(3), 0);
    check_complete(&run, &dead, &server);
    assert_eq!(run.report().retries, 5);
    assert!(run.report().dead_lettered.is_empty());
}

#[test]
fn retries_are_bounded_then_dead_lettered() {
    let server = mock();
    server.fail_next(1000, 503);
    let dead = SharedBuf::default();
    let mut config = config(&server, &dead);
    config.retry.max_attempts = 3;
    let run = run(config, &inputs(1), 0);
    check_complete(&run, &dead, &server);
    let report = run.report();
    assert_eq!(report.imported, 0);
    let exhausted = report.dead_lettered["retries_exhausted"];
    assert_eq!(exhausted, report.submitted - report.rejected_total());
    assert_eq!(report.requests, report.batches * 3);
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
    let run = run(config(&server, &dead), &inputs(3), 0);
    check_complete(&run, &dead, &server);
    assert!(run.report().retries >= 3, "{:#?}", run.report());
    assert_eq!(server.pending_faults(), 0);
    assert!(run.report().dead_lettered.is_empty());
}

#[test]
fn oversized_batch_gets_413_and_is_split() {
    let server = mock();
    server.configure(|c| c.max_bytes = 12_000);
    let dead = SharedBuf::default();
    let mut config = config(&server, &dead);
    config.batch.max_events = 200;
    let events = inputs(3);
    let mut exporter = Exporter::new(config).unwrap();
    let (read, mut ids) = export_with(&mut exporter, &events, 0);
    // One event larger than the server's limit on its own.
    let mut big = MixpanelEvent {
        event: "Big".into(),
        properties: Default::default(),
    };
    big.properties.insert("distinct_id".into(), "user-1".into());
    big.properties
        .insert("$insert_id".into(), "big-event-0001".into());
    big.properties.insert("time".into(), NOW.into());
    for i in 0..60 {
        big.properties
            .insert(format!("p{i}"), "x".repeat(250).into());
    }
    ids.insert("big-event-0001".into());
    let source = Source::new(FILE, events.len() as u64).with_line(events.len() as u64 + 1);
    let input = serde_json::value::to_raw_value(&serde_json::json!({"id": "big"})).unwrap();
    exporter
        .submit(PreparedEvent::from_value(&big, source, Some(input)))
        .unwrap();
    let run = Run {
        result: exporter.finish(),
        read: read + 1,
        submitted_ids: ids,
    };
    check_complete(&run, &dead, &server);
    let report = run.report();
    assert!(report.splits > 0, "{report:#?}");
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
        let mut preparer = currents_mixpanel::Preparer::new(Default::default());
        let bad: Vec<String> = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| preparer.prepare(e, Source::new(FILE, i as u64), false).ok())
            .filter_map(|p| p.insert_id().map(str::to_owned))
            .step_by(13)
            .collect();
        server.reject_insert_ids(bad.clone());
        let run = run(config(&server, &dead), &events, 0);
        check_complete(&run, &dead, &server);
        let report = run.report();
        let rejected_here = report.dead_lettered["mixpanel_rejected_record"];
        assert!(rejected_here > 0 && rejected_here <= bad.len() as u64);
        assert_eq!(report.retries, 0, "400s are not retried");
        assert_eq!(report.requests, report.batches);
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
    let run = run(config(&server, &dead), &inputs(1), 0);
    check_complete(&run, &dead, &server);
    let report = run.report();
    assert!(report.dead_lettered["mixpanel_rejected_batch"] > 0);
    assert_eq!(report.retries, 0);
}

#[test]
fn unauthorized_stops_quickly_without_retries() {
    let server = mock();
    let dead = SharedBuf::default();
    let mut config = config(&server, &dead);
    config.client.credentials = Credentials::ProjectToken(Secret::new("wrong-token"));
    config.retry.base_delay = Duration::from_secs(5);
    let started = Instant::now();
    let run = run(config, &inputs(20), 0);
    assert!(started.elapsed() < Duration::from_secs(3));
    match &run.result {
        Err(ExportError::Failed {
            error: FatalError::Unauthorized { status, message },
            report,
        }) => {
            assert_eq!(*status, 401);
            assert_eq!(message, "Invalid credentials");
            assert_eq!(report.retries, 0);
            assert_eq!(report.imported, 0);
            assert!(report.is_balanced());
            assert!(report.unresolved > 0);
            assert!(report.requests <= 4, "{report:#?}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(server.requests().iter().all(|r| r.status == 401));
    assert!(run.read < inputs(20).len() as u64, "reading stopped early");
    assert_eq!(run.read, run.report().read());
    let text = run.result.unwrap_err().to_string();
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
    let mut config = config(&server, &dead);
    config.concurrency = 1;
    let run = run(config, &inputs(3), 0);
    match &run.result {
        Err(ExportError::Failed {
            error: FatalError::Unauthorized { status: 403, .. },
            report,
        }) => {
            assert!(report.is_balanced());
            assert_eq!(report.retries, 0);
            assert_eq!(report.read(), run.read);
        }
        other => panic!("expected 403, got {other:?}"),
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
    let mut config1 = config(&server, &dead);
    config1.concurrency = 2;
    config1.batch.max_events = 20;
    config1.checkpoint = Some(checkpoint.clone());
    let mut exporter = Exporter::new(config1).unwrap();
    let cancel = exporter.cancel_handle();
    let started = Instant::now();
    let (read1, mut all_ids) = std::thread::scope(|scope| {
        let server = &server;
        let watcher = scope.spawn(move || {
            while server.request_count() < 4 && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(2));
            }
            cancel.cancel();
        });
        let read = export_with(&mut exporter, &events, 0);
        watcher.join().unwrap();
        read
    });
    let report1 = exporter.finish().unwrap();
    assert!(report1.interrupted);
    assert_eq!(report1.read(), read1);
    assert!(report1.is_balanced(), "{report1:#?}");
    assert!(report1.unresolved > 0, "{report1:#?}");
    assert!(read1 <= events.len() as u64);
    let position = Checkpoint::load(&checkpoint).unwrap().position(FILE);
    assert!(position > 0 && position < events.len() as u64, "{position}");
    let after_first = server.insert_id_counts();

    // Run 2: from the checkpoint.
    let mut config2 = config(&server, &dead);
    config2.checkpoint = Some(checkpoint.clone());
    let mut exporter = Exporter::new(config2).unwrap();
    assert_eq!(exporter.checkpoint_position(FILE), position);
    let (read2, ids2) = export_with(&mut exporter, &events, position);
    let report2 = exporter.finish().unwrap();
    assert!(!report2.interrupted);
    assert!(report2.is_balanced());
    assert_eq!(report2.unresolved, 0);
    assert_eq!(read2, events.len() as u64 - position);
    assert_eq!(
        Checkpoint::load(&checkpoint).unwrap().position(FILE),
        events.len() as u64
    );
    all_ids.extend(ids2);

    // No gaps: every valid event is on the server (by $insert_id) or in the
    // dead letter as rejected.
    let counts = server.insert_id_counts();
    let dead_ids: std::collections::BTreeSet<String> = dead
        .lines()
        .iter()
        .map(|l| {
            l["mixpanel"]["properties"]["$insert_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for id in &all_ids {
        assert!(
            counts.contains_key(id) ^ dead_ids.contains(id),
            "{id} missing or in both"
        );
    }
    // Everything before the checkpoint was already resolved in run 1.
    let mut preparer = currents_mixpanel::Preparer::new(Default::default());
    for (i, e) in events.iter().enumerate().take(position as usize) {
        if let Ok(p) = preparer.prepare(e, Source::new(FILE, i as u64), false) {
            let id = p.insert_id().unwrap();
            assert!(
                after_first.contains_key(id) || dead_ids.contains(id),
                "{id}"
            );
        }
    }
    // Resent at most what was in flight or queued at the interruption.
    let duplicates: u64 = counts.values().map(|c| c - 1).sum();
    assert!(duplicates <= report1.unresolved + 40, "{duplicates}");
}

#[test]
fn dead_letter_file_and_checkpoint_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let server = mock();
    let mut client = ClientConfig::new(Credentials::ProjectToken(Secret::new(TOKEN)));
    client.api_base = Some(server.base_url());
    let dl_path = dir.path().join("dead.ndjson");
    let mut config = ExportConfig::new(client, DeadLetterWriter::append(&dl_path).unwrap());
    config.now = Some(NOW);
    config.checkpoint = Some(dir.path().join("cp.json"));
    let events = inputs(1);
    let mut exporter = Exporter::new(config).unwrap();
    export_with(&mut exporter, &events, 0);
    let report = exporter.finish().unwrap();
    assert!(report.is_balanced());
    let text = std::fs::read_to_string(&dl_path).unwrap();
    assert_eq!(text.lines().count() as u64, report.rejected_total());
    let cp = Checkpoint::load(&dir.path().join("cp.json")).unwrap();
    assert_eq!(cp.position(FILE), events.len() as u64);
}
