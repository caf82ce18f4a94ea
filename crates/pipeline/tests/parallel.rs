//! A single source read by several workers (NDJSON in line-aligned chunks,
//! Avro in pieces of whole blocks, Custom HTTP in pieces of whole
//! documents) settles exactly as
//! when read on one thread: the same output bytes and the same report
//! (buckets, errors with their kinds and locations), damaged input included.

use currents_events::sample::{Fill, sample_event};
use currents_events::{
    AvroWriter, Codec, avro_schema, event_type_info, to_http_batch, to_http_json,
};
use currents_pipeline::{NdjsonSink, Pipeline, PipelineOptions, Source, Sources};

fn run(bytes: &[u8], threads: usize) -> (Vec<u8>, String) {
    run_with(bytes, threads, PipelineOptions::default())
}

fn run_with(bytes: &[u8], threads: usize, mut options: PipelineOptions) -> (Vec<u8>, String) {
    let mut sources = Sources::new();
    sources.push(Source::bytes("input", bytes.to_vec()));
    options.threads = threads;
    let mut sink = NdjsonSink::new(Vec::new());
    let report = match Pipeline::new(options).run(&sources, &mut sink) {
        Ok(report) => report,
        Err(error) => *error.report,
    };
    let mut report = report.to_json();
    // Wall-clock figures differ from run to run.
    if let Some(object) = report.as_object_mut() {
        object.retain(|key, _| !key.contains("second") && !key.contains("elapsed"));
    }
    (sink.into_inner(), report.to_string())
}

/// Sequential and parallel runs agree on `bytes`.
fn agree(label: &str, bytes: &[u8]) {
    let (output, report) = run(bytes, 1);
    assert!(!report.is_empty());
    for threads in [2, 3] {
        let (parallel_output, parallel_report) = run(bytes, threads);
        assert_eq!(
            report, parallel_report,
            "{label}: report with {threads} workers"
        );
        assert!(
            output == parallel_output,
            "{label}: output with {threads} workers differs"
        );
    }
}

/// As [`agree`], but for the bytes read: a parallel run has read ahead of
/// where reading in order stopped.
fn agree_but_bytes(label: &str, bytes: &[u8]) {
    let without_bytes = |report: &str| {
        let mut report: serde_json::Value = serde_json::from_str(report).unwrap();
        let read = report.as_object_mut().unwrap().remove("bytes");
        assert!(read.is_some(), "{label}: no bytes in the report");
        report
    };
    let (output, report) = run(bytes, 1);
    for threads in [2, 3] {
        let (parallel_output, parallel_report) = run(bytes, threads);
        assert_eq!(
            without_bytes(&report),
            without_bytes(&parallel_report),
            "{label}: report with {threads} workers"
        );
        assert!(
            output == parallel_output,
            "{label}: output with {threads} workers differs"
        );
    }
}

fn events(n: u64) -> Vec<currents_events::Event<'static>> {
    let types = [
        "users.messages.email.Open",
        "users.messages.email.Click",
        "users.behaviors.CustomEvent",
    ];
    (0..n)
        .map(|i| {
            let info = event_type_info(types[(i % 3) as usize]).unwrap();
            sample_event(info, i, Fill::All)
        })
        .collect()
}

fn avro(codec: Codec, n: u64, per_block: usize) -> (Vec<u8>, [u8; 16]) {
    let info = event_type_info("users.messages.email.Open").unwrap();
    let mut writer = AvroWriter::new(Vec::new(), &avro_schema(info), codec, per_block).unwrap();
    let sync = writer.sync_marker();
    for i in 0..n {
        writer
            .write_event(&sample_event(info, i, Fill::All))
            .unwrap();
    }
    (writer.finish().unwrap(), sync)
}

/// Offsets just after each sync marker: the first is the end of the header,
/// the others the ends of blocks.
fn block_starts(file: &[u8], sync: &[u8; 16]) -> Vec<usize> {
    file.windows(16)
        .enumerate()
        .filter(|(_, w)| *w == sync)
        .map(|(i, _)| i + 16)
        .collect()
}

#[test]
fn avro_blocks_in_parallel_settle_as_read_in_order() {
    for codec in [Codec::Deflate, Codec::Null] {
        let (file, sync) = avro(codec, 3000, 40);
        let starts = block_starts(&file, &sync);
        assert!(starts.len() > 60, "{} blocks", starts.len());
        let label = |what: &str| format!("{codec:?}: {what}");
        agree(&label("whole file"), &file);

        // Damage inside a block's data.
        let mut damaged = file.clone();
        let at = (starts[10] + starts[11]) / 2;
        damaged[at] ^= 0x5a;
        damaged[at + 1] ^= 0xa5;
        agree(&label("damaged block data"), &damaged);

        // A damaged sync marker: resynchronisation (offsets in messages).
        let mut bad_sync = file.clone();
        bad_sync[starts[20] - 3] ^= 0xff;
        agree(&label("damaged sync marker"), &bad_sync);

        // A negative block count, then both damages together.
        let mut bad_count = file.clone();
        bad_count[starts[30]] = 0x01;
        agree(&label("bad block header"), &bad_count);
        bad_count[at] ^= 0x5a;
        bad_count[starts[20] - 3] ^= 0xff;
        agree(&label("several damages"), &bad_count);

        // Cut in the middle of a block, and garbage after the last one.
        agree(&label("truncated"), &file[..(starts[40] + starts[41]) / 2]);
        let mut trailing = file.clone();
        trailing.extend_from_slice(b"not a block");
        agree(&label("trailing bytes"), &trailing);
        agree(&label("header only"), &file[..starts[0]]);
    }
}

#[test]
fn ndjson_and_http_in_parallel_settle_as_read_in_order() {
    let events = events(3000);
    let mut ndjson = Vec::new();
    for (i, event) in events.iter().enumerate() {
        ndjson.extend_from_slice(&serde_json::to_vec(&to_http_json(event)).unwrap());
        ndjson.push(b'\n');
        match i % 500 {
            7 => ndjson.extend_from_slice(b"{\"event_type\": broken\n"),
            8 => ndjson.extend_from_slice(b"\n   \n"),
            9 => ndjson
                .extend_from_slice(b"{\"event_type\":\"users.messages.email.Open\",\"id\":5}\n"),
            _ => {}
        }
    }
    agree("ndjson", &ndjson);

    let mut http = Vec::new();
    for batch in events.chunks(100) {
        http.extend_from_slice(&serde_json::to_vec(&to_http_batch(batch)).unwrap());
        http.push(b'\n');
    }
    agree("http bodies", &http);
    // An element with escapes, floats and a duplicate key in the middle.
    let text = String::from_utf8(http.clone()).unwrap();
    let damaged = text.replacen(
        "{\"event_type\"",
        "{\"x\":\"\\u00e9\\n\",\"y\":1.5e3,\"event_type\"",
        7,
    );
    let damaged = damaged.replacen("\"id\":", "\"id\":\"dup\",\"id\":", 3);
    agree("http bodies with odd elements", damaged.as_bytes());
    agree("http body cut short", &http[..http.len() / 2 + 17]);
}

/// NDJSON chunks that start with the gzip magic (a worker must not read
/// them as compressed) and lines over the record limit (skipped by the
/// reader thread while it counts them), among good lines.
#[test]
fn ndjson_chunks_that_look_gzipped_or_hold_long_lines_settle_as_read_in_order() {
    let events = events(2000);
    let line = |event| {
        let mut line = serde_json::to_vec(&to_http_json(event)).unwrap();
        line.push(b'\n');
        line
    };
    let mut ndjson = Vec::new();
    for (i, event) in events.iter().enumerate() {
        ndjson.extend_from_slice(&line(event));
        if i == 700 {
            // 600 KiB of short lines that all start with the magic, more
            // than a chunk: some chunk starts with one, whatever the cuts.
            for _ in 0..60_000 {
                ndjson.extend_from_slice(b"\x1f\x8b junk\n");
            }
        }
        if i % 600 == 5 {
            let mut long = b"{\"event_type\":\"users.messages.email.Open\",\"pad\":\"".to_vec();
            long.resize(long.len() + 300 * 1024, b'p');
            long.extend_from_slice(b"\"}\n");
            ndjson.extend_from_slice(&long);
        }
    }
    let mut options = PipelineOptions::default();
    options.decode.max_record_bytes = 200 * 1024;
    let (output, report) = run_with(&ndjson, 1, options.clone());
    assert!(report.contains("too_large"), "{report}");
    for threads in [2, 3] {
        let (parallel_output, parallel_report) = run_with(&ndjson, threads, options.clone());
        assert_eq!(report, parallel_report, "report with {threads} workers");
        assert!(
            output == parallel_output,
            "output with {threads} workers differs"
        );
    }
}

/// Bodies one after another, most on one line each, with the shapes the
/// Custom HTTP decoder takes (batches, arrays, single events, whitespace
/// and newlines anywhere between tokens).
fn http_documents(events: &[currents_events::Event<'static>]) -> Vec<u8> {
    let mut http = Vec::new();
    for (i, batch) in events.chunks(50).enumerate() {
        match i % 4 {
            0 | 1 => {
                http.extend_from_slice(&serde_json::to_vec(&to_http_batch(batch)).unwrap());
                http.push(b'\n');
            }
            2 => {
                // Pretty-printed: newlines inside the document.
                let array: Vec<_> = batch.iter().map(to_http_json).collect();
                http.extend_from_slice(&serde_json::to_vec_pretty(&array).unwrap());
                http.extend_from_slice(b"\r\n\t ");
            }
            _ => {
                for event in batch {
                    http.extend_from_slice(&serde_json::to_vec(&to_http_json(event)).unwrap());
                    http.push(b' ');
                }
            }
        }
    }
    http
}

#[test]
fn http_documents_in_parallel_settle_as_read_in_order() {
    let events = events(3000);
    let http = http_documents(&events);
    agree("http documents", &http);
    let third = http.len() / 3;
    let at = |from: usize| from + http[from..].iter().position(|&b| b == b'\n').unwrap() + 1;
    // Garbage between documents in the middle: the rest is read in order.
    let mut garbage = http.clone();
    garbage.splice(at(third)..at(third), b"oops ".iter().copied());
    agree("http with garbage between documents", &garbage);
    // A document out of shape in the middle (a missing comma): the source
    // ends there, as read in order, though the pieces after it were decoded.
    let text = String::from_utf8(http.clone()).unwrap();
    let (head, tail) = text.split_at(at(third));
    let broken = format!("{head}{}", tail.replacen("},{", "} {", 1));
    agree_but_bytes("http with a document out of shape", broken.as_bytes());
}

/// Damage anywhere (a stray quote, backslash or bracket, a cut, garbage)
/// still settles as read in order: the pieces start where reading in order
/// is between documents, or the rest is read in order.
#[test]
fn damaged_http_documents_in_parallel_settle_as_read_in_order() {
    let http = http_documents(&events(900));
    let tokens: [&[u8]; 9] = [b"\"", b"\\", b"{", b"}", b"[", b"]", b"\n", b"oops", b","];
    // A fixed sequence of positions (xorshift), so a failure repeats.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |below: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % below as u64) as usize
    };
    for round in 0..24 {
        let mut damaged = http.clone();
        for _ in 0..=round % 3 {
            let at = next(damaged.len());
            let token = tokens[next(tokens.len())];
            damaged.splice(at..at, token.iter().copied());
        }
        if round % 5 == 4 {
            damaged.truncate(next(damaged.len()));
        }
        agree_but_bytes(&format!("http damaged, round {round}"), &damaged);
    }
    // A backslash outside a string, before a key's quote: not an escape to
    // the decoder, so not to the scan either.
    let text = String::from_utf8(http).unwrap();
    let (head, tail) = text.split_at(text.len() / 4);
    let stray = format!("{head}{}", tail.replacen(",\"", ",\\\"", 1));
    agree_but_bytes("http with a stray backslash", stray.as_bytes());
}
