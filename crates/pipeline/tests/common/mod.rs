//! Shared helpers: sample inputs, a pipeline exporting to the loopback mock,
//! and the accounting checks every run must pass.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use currents_events::sample::{BASE_TIME, Fill, sample_fields};
use currents_events::{EVENT_TYPES, Event};
use currents_mixpanel::{
    ApiBase, ClientConfig, Credentials, ExportConfig, MapOptions, Preparer, Secret, Validator,
};
use currents_pipeline::{
    DeadLetter, ImportSink, KeepInput, Pipeline, PipelineOptions, Report, RunError, Sink, Source,
    Sources,
};
use mixpanel_mock::{MockConfig, MockServer};
use serde_json::Value;

/// "Now" for both sides: a day after the sample base time.
pub const NOW: i64 = BASE_TIME + 86_400;
pub const TOKEN: &str = "test-project-token";
pub const FILE: &str = "currents/events-0001.ndjson";

/// `rounds` × every event type. Every 7th record has no external id
/// (skipped); a few are broken on purpose to hit pre-validation.
pub fn inputs(rounds: u64) -> Vec<Event<'static>> {
    let mut out = Vec::new();
    for n in 0..rounds {
        for (i, info) in EVENT_TYPES.iter().enumerate() {
            let k = n * EVENT_TYPES.len() as u64 + i as u64;
            let mut fields = sample_fields(info, n, Fill::All);
            if k % 7 == 3 {
                fields.remove("external_user_id");
            }
            if fields.contains_key("external_user_id") {
                match k % 97 {
                    11 => {
                        fields.insert("time".into(), (NOW + 7200).into());
                    }
                    23 => {
                        fields.insert("time".into(), 1000.into());
                    }
                    41 => {
                        fields.insert("external_user_id".into(), "undefined".into());
                    }
                    _ => {}
                }
            }
            let event = Event::from_map(
                info.event_type,
                serde::de::value::MapDeserializer::new(fields.into_iter()),
            )
            .unwrap_or_else(|e: serde_json::Error| panic!("{}: {e}", info.event_type));
            out.push(event);
        }
    }
    out
}

/// The events as one NDJSON source named [`FILE`].
pub fn source(events: &[Event]) -> Sources {
    std::iter::once(Source::bytes(FILE, ndjson(events))).collect()
}

pub fn ndjson(events: &[Event]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for event in events {
        bytes.extend_from_slice(currents_events::to_flat_json(event).as_bytes());
        bytes.push(b'\n');
    }
    bytes
}

/// A `Write` shared with the test.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("dead letter line is JSON"))
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub fn mock() -> MockServer {
    let mut config = MockConfig::with_token(TOKEN);
    config.now = Some(NOW);
    MockServer::start(config).unwrap()
}

/// Fast test settings: ms backoff, small batches, 4 workers.
pub fn config(server: &MockServer) -> ExportConfig {
    let mut client = ClientConfig::new(Credentials::ProjectToken(Secret::new(TOKEN)));
    client.api_base = Some(ApiBase::parse(&server.base_url()).unwrap());
    client.timeout = Duration::from_secs(10);
    let mut config = ExportConfig::new(client);
    config.concurrency = 4;
    config.batch.max_events = 50;
    config.retry.base_delay = Duration::from_millis(1);
    config.retry.max_delay = Duration::from_millis(8);
    config.retry.jitter_min = Duration::from_millis(0);
    config.retry.jitter_max = Duration::from_millis(2);
    config.retry.max_attempts = 6;
    config
}

/// Pipeline options of the tests: "now" fixed, every input kept for the
/// dead letter.
pub fn options() -> PipelineOptions {
    let mut options = PipelineOptions::default();
    options.validator = Validator::at(NOW);
    options.keep_input = KeepInput::All;
    options
}

/// What one run produced.
pub struct Run {
    pub result: Result<Report, RunError>,
    /// Insert ids of the valid, mapped events (what the sink is handed).
    pub submitted_ids: BTreeSet<String>,
}

impl Run {
    pub fn report(&self) -> &Report {
        match &self.result {
            Ok(r) => r,
            Err(e) => &e.report,
        }
    }

    pub fn delivery(&self) -> &currents_mixpanel::DeliveryReport {
        self.report().delivery.as_ref().expect("an /import run")
    }
}

/// Insert ids of the events that map and pass pre-validation.
pub fn valid_ids(events: &[Event]) -> BTreeSet<String> {
    let mut preparer = Preparer::new(MapOptions::default());
    let validator = Validator::at(NOW);
    events
        .iter()
        .filter_map(|e| {
            let mapped = preparer.map(e).ok()?;
            validator.validate(&mapped, NOW).ok()?;
            mapped.insert_id().map(str::to_owned)
        })
        .collect()
}

/// Exports `events` through a pipeline into the mock.
pub fn run(config: ExportConfig, dead: &SharedBuf, events: &[Event]) -> Run {
    run_with(config, dead, events, None, |_| {})
}

/// [`run`], with a checkpoint and a hook that sees the sink before the run
/// (to cancel it from another thread).
pub fn run_with(
    config: ExportConfig,
    dead: &SharedBuf,
    events: &[Event],
    checkpoint: Option<&Path>,
    before: impl FnOnce(&ImportSink),
) -> Run {
    let mut sink = ImportSink::new(config);
    before(&sink);
    let mut pipeline = Pipeline::new(options()).dead_letter(DeadLetter::new(dead.clone()));
    if let Some(path) = checkpoint {
        pipeline = pipeline.checkpoint(path);
    }
    let result = pipeline.run(&source(events), &mut sink as &mut dyn Sink);
    Run {
        result,
        submitted_ids: valid_ids(events),
    }
}

fn count_reasons(lines: &[Value]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in lines {
        *out.entry(l["reason"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    out
}

/// The invariants of a completed run: every record in one bucket, one
/// dead-letter line per rejected/dead-lettered record with matching
/// reasons, and every valid event either accepted by the server exactly
/// once or in the dead letter (never both).
pub fn check_complete(run: &Run, dead: &SharedBuf, server: &MockServer) {
    let report = run.report();
    assert!(report.is_balanced(), "{report:#?}");
    assert_eq!(report.unresolved, 0, "{report:#?}");
    let delivery = run.delivery();
    assert!(delivery.is_balanced(), "{delivery:#?}");
    assert_eq!(delivery.imported, report.imported);
    let lines = dead.lines();
    let mut expected = report.rejected.clone();
    for (k, v) in &report.dead_lettered {
        *expected.entry(k.clone()).or_default() += v;
    }
    assert_eq!(count_reasons(&lines), expected);
    let dead_ids: BTreeSet<String> = lines
        .iter()
        .map(|l| {
            l["mixpanel"]["properties"]["$insert_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let counts = server.insert_id_counts();
    for id in &run.submitted_ids {
        let accepted = counts.get(id).copied().unwrap_or(0);
        let in_dead = dead_ids.contains(id);
        assert!(
            (accepted >= 1 && !in_dead) || (accepted == 0 && in_dead),
            "{id}: accepted {accepted}×, dead letter {in_dead}"
        );
    }
    assert_eq!(counts.len() as u64, report.imported);
    let run_id = &report.run_id;
    for line in &lines {
        assert!(line["input"].is_object(), "{line}");
        assert_eq!(line["source"]["file"], FILE);
        assert!(line["source"]["line"].is_u64());
        assert!(line["detail"].is_string());
        assert_eq!(&line["run_id"], run_id);
    }
}
