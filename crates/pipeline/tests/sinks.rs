//! Events reach a sink in runs of NDJSON lines (`Sink::accept_lines`): an
//! NDJSON sink writing a run at once writes what it would write event by
//! event, and a sink failing inside a run leaves exactly the events it did
//! not take unresolved.

mod common;

use common::*;
use currents_pipeline::{
    Accepted, InvalidEvents, NdjsonSink, Pipeline, RecordRef, Report, Sink, SinkError, SinkReport,
    Source, Sources,
};

/// An NDJSON sink that only has `accept`: `accept_lines` is the trait's
/// default, one event at a time.
struct OneByOne(NdjsonSink<Vec<u8>>);

impl Sink for OneByOne {
    fn accept(&mut self, json: &[u8], record: RecordRef) -> Result<Accepted, SinkError> {
        self.0.accept(json, record)
    }

    fn finish(&mut self) -> Result<SinkReport, SinkError> {
        self.0.finish()
    }
}

/// Takes `left` events, then fails as a full disk would.
struct FailsAfter {
    left: usize,
    taken: Vec<Vec<u8>>,
}

impl Sink for FailsAfter {
    fn accept(&mut self, json: &[u8], _record: RecordRef) -> Result<Accepted, SinkError> {
        if self.left == 0 {
            return Err(std::io::Error::other("no space left").into());
        }
        self.left -= 1;
        self.taken.push(json.to_vec());
        Ok(Accepted::Written)
    }

    fn finish(&mut self) -> Result<SinkReport, SinkError> {
        Ok(SinkReport::default())
    }
}

/// The events, with a line that is no event and a line that is not JSON
/// among them (failed records between the mapped ones).
fn input() -> Vec<u8> {
    let mut bytes = ndjson(&inputs(3));
    let middle = bytes.len() / 2;
    let cut = middle + bytes[middle..].iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes.splice(
        cut..cut,
        b"{\"not\": \"an event\"}\nnot json\n".iter().copied(),
    );
    bytes
}

/// The run's report, and why it stopped when it did not finish.
fn run(sink: &mut dyn Sink, threads: usize, invalid: InvalidEvents) -> (Report, Option<String>) {
    let sources: Sources = std::iter::once(Source::bytes(FILE, input())).collect();
    let mut options = options();
    options.threads = threads;
    options.invalid = invalid;
    match Pipeline::new(options).run(&sources, sink) {
        Ok(report) => (report, None),
        Err(error) => (*error.report, Some(error.cause.to_string())),
    }
}

fn without_timing(report: &Report) -> serde_json::Value {
    let mut json = report.to_json();
    if let Some(object) = json.as_object_mut() {
        object.retain(|key, _| !key.contains("second") && !key.contains("elapsed"));
    }
    json
}

#[test]
fn lines_written_a_run_at_once_are_the_lines_written_one_by_one() {
    for invalid in [InvalidEvents::Reject, InvalidEvents::Keep] {
        for threads in [1, 2] {
            let mut at_once = NdjsonSink::new(Vec::new());
            let (report, stop) = run(&mut at_once, threads, invalid);
            assert_eq!(stop, None);
            let mut one_by_one = OneByOne(NdjsonSink::new(Vec::new()));
            let (expected, _) = run(&mut one_by_one, threads, invalid);
            let label = format!("{invalid:?}, {threads} workers");
            assert_eq!(
                without_timing(&report),
                without_timing(&expected),
                "{label}"
            );
            let (written, expected_bytes) = (at_once.into_inner(), one_by_one.0.into_inner());
            assert!(written == expected_bytes, "{label}: output differs");
            // Every line is one event, and only written events are there.
            let lines = written.split(|&b| b == b'\n').filter(|l| !l.is_empty());
            for line in lines.clone() {
                let event: serde_json::Value = serde_json::from_slice(line).unwrap();
                assert!(event["properties"]["$insert_id"].is_string(), "{label}");
            }
            assert_eq!(lines.count() as u64, report.written, "{label}");
            if invalid == InvalidEvents::Reject {
                assert!(report.rejected_total() > 0, "{label}: {report:#?}");
            }
            assert!(!report.errors.is_empty(), "{label}: {report:#?}");
        }
    }
}

#[test]
fn a_sink_failing_inside_a_run_leaves_the_events_it_did_not_take_unresolved() {
    let mut sink = FailsAfter {
        left: 5,
        taken: Vec::new(),
    };
    let (report, stop) = run(&mut sink, 1, InvalidEvents::Reject);
    assert_eq!(sink.taken.len(), 5);
    assert_eq!(report.written, 5, "{report:#?}");
    assert!(report.unresolved > 0, "{report:#?}");
    assert!(
        stop.as_ref().is_some_and(|s| s.contains("no space left")),
        "{stop:?}"
    );
    // Every record read is in exactly one bucket.
    assert!(report.is_balanced(), "{report:#?}");
    for json in &sink.taken {
        serde_json::from_slice::<serde_json::Value>(json).unwrap();
    }
}
