//! Shared helpers: sample inputs, an exporter against the loopback mock, and
//! the accounting checks every run must pass.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use currents_events::sample::{BASE_TIME, Fill, sample_fields};
use currents_events::{EVENT_TYPES, Event};
use currents_mixpanel::{
    ClientConfig, Credentials, DeadLetterWriter, DeliveryReport, ExportConfig, ExportError,
    Exporter, MapOptions, Preparer, RetryPolicy, Secret, Source,
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
pub fn config(server: &MockServer, dead: &SharedBuf) -> ExportConfig {
    let mut client = ClientConfig::new(Credentials::ProjectToken(Secret::new(TOKEN)));
    client.api_base = Some(server.base_url());
    client.timeout = Duration::from_secs(10);
    let mut config = ExportConfig::new(client, DeadLetterWriter::new(dead.clone()));
    config.concurrency = 4;
    config.batch.max_events = 50;
    config.retry = RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(8),
        jitter_min: Duration::from_millis(0),
        jitter_max: Duration::from_millis(2),
        max_attempts: 6,
    };
    config.now = Some(NOW);
    config
}

/// What one run produced.
pub struct Run {
    pub result: Result<DeliveryReport, ExportError>,
    /// Records read (handed to submit or skip).
    pub read: u64,
    /// Insert ids of all submitted events.
    pub submitted_ids: BTreeSet<String>,
}

impl Run {
    pub fn report(&self) -> &DeliveryReport {
        match &self.result {
            Ok(r) => r,
            Err(ExportError::Failed { report, .. }) => report,
            Err(e) => panic!("export failed: {e}"),
        }
    }
}

/// Maps `events[start..]` into `exporter` (submit or skip); stops reading
/// once the exporter says it stopped. Returns records read and insert ids.
pub fn export_with(
    exporter: &mut Exporter,
    events: &[Event],
    start: u64,
) -> (u64, BTreeSet<String>) {
    let mut preparer = Preparer::new(MapOptions::default());
    let mut read = 0;
    let mut ids = BTreeSet::new();
    for (i, event) in events.iter().enumerate().skip(start as usize) {
        let source = Source::new(FILE, i as u64).with_line(i as u64 + 1);
        read += 1;
        match preparer.prepare(event, source.clone(), true) {
            Ok(prepared) => {
                ids.insert(prepared.insert_id().unwrap().to_owned());
                if exporter.submit(prepared).is_err() {
                    break;
                }
            }
            Err(skip) => exporter.skip(source, skip.reason()),
        }
    }
    (read, ids)
}

pub fn run(config: ExportConfig, events: &[Event], start: u64) -> Run {
    let mut exporter = Exporter::new(config).unwrap();
    let (read, submitted_ids) = export_with(&mut exporter, events, start);
    Run {
        result: exporter.finish(),
        read,
        submitted_ids,
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

/// The invariants of a completed run:
/// `read = imported + skipped + rejected + dead_lettered`, one dead-letter
/// line per rejected/dead-lettered event with matching reasons, and every
/// submitted event either accepted by the server exactly once or in the dead
/// letter (never both).
pub fn check_complete(run: &Run, dead: &SharedBuf, server: &MockServer) {
    let report = run.report();
    assert!(report.is_balanced(), "{report:#?}");
    assert_eq!(report.unresolved, 0, "{report:#?}");
    assert_eq!(
        run.read,
        report.imported
            + report.skipped_total()
            + report.rejected_total()
            + report.dead_lettered_total(),
        "{report:#?}"
    );
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
            (accepted == 1 && !in_dead) || (accepted == 0 && in_dead),
            "{id}: accepted {accepted}×, dead letter {in_dead}"
        );
    }
    assert_eq!(server.accepted_count() as u64, report.imported);
    for line in &lines {
        assert!(line["input"].is_object(), "{line}");
        assert_eq!(line["source"]["file"], FILE);
        assert!(line["source"]["line"].is_u64());
        assert!(line["detail"].is_string());
    }
}
