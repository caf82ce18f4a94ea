//! The bad-input corpus in `tests/corpus/`: small damaged inputs with the
//! exact outcome expected for each (error kind, count, location, records
//! decoded around the damage). The files are generated deterministically by
//! [`cases`]; after changing it, rewrite them with
//!
//! ```sh
//! cargo test -p currents-tests --test bad_input_corpus -- --ignored write_corpus
//! ```
//!
//! and `corpus_files_are_up_to_date` checks that the committed files match.
//! Also here: the memory limit on one enormous line (generated lazily, never
//! written to disk).

use std::io::{Read, Write};
use std::path::PathBuf;

use currents_events::decode::{
    DecodeOptions, DecodeStats, Decoded, ErrorKind, Format, RecordError, decode_all,
};
use currents_events::sample::{BASE_TIME, Fill, sample_event, sample_fields};
use currents_events::{
    Codec, EVENT_TYPES, Event, EventTypeInfo, event_type_info, to_flat_json, write_avro,
};
use currents_mixpanel::{MapOptions, Preparer, Rejection, Validator};
use serde_json::{Value, json};

const NOW: i64 = BASE_TIME;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn custom() -> &'static EventTypeInfo {
    event_type_info("users.behaviors.CustomEvent").unwrap()
}

/// A type whose `time` is a long (so a millisecond value decodes).
fn long_time_type() -> &'static EventTypeInfo {
    EVENT_TYPES
        .iter()
        .find(|i| i.rust_name == "WhatsAppSend")
        .unwrap()
}

fn events(info: &EventTypeInfo, n: u64) -> Vec<Event<'static>> {
    (0..n).map(|i| sample_event(info, i, Fill::All)).collect()
}

fn line(
    info: &EventTypeInfo,
    n: u64,
    change: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let mut fields = sample_fields(info, n, Fill::All);
    change(&mut fields);
    let mut object = serde_json::Map::new();
    object.insert("event_type".into(), info.event_type.into());
    object.extend(fields);
    Value::Object(object).to_string()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    out.write_all(bytes).unwrap();
    out.finish().unwrap()
}

/// Offsets where each of the `n` one-record blocks of `write_avro(.., 1)` starts.
fn block_starts(info: &EventTypeInfo, all: &[Event], codec: Codec) -> Vec<usize> {
    (0..all.len())
        .map(|k| {
            write_avro(Vec::new(), info, &all[..k], codec, 1)
                .unwrap()
                .len()
        })
        .collect()
}

/// Every corpus file: name and bytes.
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let info = custom();
    let five = events(info, 5);
    let null_avro = write_avro(Vec::new(), info, &five, Codec::Null, 1).unwrap();
    let starts = block_starts(info, &five, Codec::Null);
    let mut out = Vec::new();

    out.push(("empty.json", Vec::new()));
    out.push(("empty.avro", Vec::new()));

    // Cut in the middle of the 4th block.
    let deflate = write_avro(Vec::new(), info, &five, Codec::Deflate, 1).unwrap();
    let d_starts = block_starts(info, &five, Codec::Deflate);
    out.push(("truncated.avro", deflate[..d_starts[3] + 5].to_vec()));
    // Cut inside the header.
    out.push(("truncated-header.avro", null_avro[..40].to_vec()));

    // The 2nd block's sync marker damaged: that block is lost, reading goes on.
    let mut bad_sync = null_avro.clone();
    bad_sync[starts[2] - 1] ^= 0xff;
    out.push(("corrupt-sync.avro", bad_sync));

    // Garbage in the middle of a snappy block: its CRC no longer matches.
    let mut snappy = write_avro(Vec::new(), info, &five, Codec::Snappy, 1).unwrap();
    let s_starts = block_starts(info, &five, Codec::Snappy);
    let mid = (s_starts[1] + s_starts[2]) / 2;
    snappy[mid] ^= 0x55;
    out.push(("corrupt-snappy.avro", snappy));

    let mut magic = null_avro.clone();
    magic[..4].copy_from_slice(b"Obj\x02");
    out.push(("wrong-magic.avro", magic));

    // The codec value follows its key and a one-byte length.
    let codec_at = null_avro
        .windows(10)
        .position(|w| w == b"avro.codec")
        .unwrap()
        + 11;
    assert_eq!(&null_avro[codec_at..codec_at + 4], b"null");
    let mut codec = null_avro.clone();
    codec[codec_at..codec_at + 4].copy_from_slice(b"lz4x");
    out.push(("wrong-codec.avro", codec));

    // Invalid UTF-8 in the `name` string of the first of two records.
    let two = events(info, 2);
    let mut utf8 = write_avro(Vec::new(), info, &two, Codec::Null, 2).unwrap();
    let name = match &two[0] {
        Event::CustomEvent(e) => e.name.clone(),
        _ => unreachable!(),
    };
    let at = utf8
        .windows(name.len())
        .position(|w| w == name.as_bytes())
        .unwrap();
    utf8[at] = 0xff;
    utf8[at + 1] = 0xfe;
    out.push(("invalid-utf8.avro", utf8));

    let mut ndjson = format!("{}\n", line(info, 0, |_| {})).into_bytes();
    let bad = line(info, 1, |f| {
        f.insert("name".into(), "BROKEN".into());
    });
    let at = bad.find("BROKEN").unwrap();
    let mut bad = bad.into_bytes();
    bad[at] = 0xff;
    ndjson.extend_from_slice(&bad);
    ndjson.push(b'\n');
    ndjson.extend_from_slice(format!("{}\n", line(info, 2, |_| {})).as_bytes());
    out.push(("invalid-utf8.ndjson", ndjson));

    let first = line(info, 0, |_| {});
    let dup = first.replacen("\"id\":", "\"id\":\"first\",\"id\":", 1);
    out.push((
        "duplicate-key.ndjson",
        format!("{dup}\n{}\n", line(info, 1, |_| {})).into_bytes(),
    ));

    out.push((
        "int-out-of-range.ndjson",
        format!(
            "{}\n{}\n",
            line(info, 0, |f| {
                // Past i64: no field can hold it.
                f.insert("time".into(), json!(u64::MAX));
            }),
            line(info, 1, |_| {})
        )
        .into_bytes(),
    ));

    // Beyond the Avro `int` range of `time` (2100-01-01): decoded, and left
    // to the /import time rules.
    out.push((
        "time-beyond-int.ndjson",
        format!(
            "{}\n",
            line(info, 0, |f| {
                f.insert("time".into(), json!(4_102_444_800_u64));
            })
        )
        .into_bytes(),
    ));

    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!({ "a": deep });
    }
    out.push((
        "deep-properties.ndjson",
        format!(
            "{}\n",
            line(info, 0, |f| {
                f.insert("properties".into(), deep.to_string().into());
            })
        )
        .into_bytes(),
    ));

    let long = long_time_type();
    out.push((
        "time-in-milliseconds.ndjson",
        format!(
            "{}\n",
            line(long, 0, |f| {
                f.insert("time".into(), json!(BASE_TIME * 1000 + 123));
            })
        )
        .into_bytes(),
    ));

    // 5 MB in one string field, gzip-compressed on disk (a few KB).
    let huge = line(info, 0, |f| {
        f.insert("name".into(), "x".repeat(5 << 20).into());
    });
    out.push((
        "huge-string.ndjson.gz",
        gzip(format!("{huge}\n").as_bytes()),
    ));
    out
}

#[test]
#[ignore = "rewrites tests/corpus/"]
fn write_corpus() {
    std::fs::create_dir_all(dir()).unwrap();
    for (name, bytes) in cases() {
        std::fs::write(dir().join(name), bytes).unwrap();
    }
}

#[test]
fn corpus_files_are_up_to_date() {
    for (name, bytes) in cases() {
        let on_disk = std::fs::read(dir().join(name))
            .unwrap_or_else(|e| panic!("tests/corpus/{name}: {e} (run write_corpus)"));
        assert!(
            on_disk == bytes,
            "tests/corpus/{name} is stale (run write_corpus)"
        );
    }
}

fn read(name: &str) -> (Vec<Decoded<'static>>, Vec<RecordError>, DecodeStats) {
    let bytes = std::fs::read(dir().join(name)).unwrap();
    let (events, errors, stats) = decode_all(name, &bytes, DecodeOptions::default());
    assert_eq!(
        stats.records(),
        stats.decoded + stats.skipped_unknown + stats.failed_records
    );
    assert_eq!(stats.decoded, events.len() as u64);
    assert_eq!(stats.error_count(), errors.len() as u64);
    (events, errors, stats)
}

/// (kind, records lost, line, offset, index) of an error.
type Outcome = (ErrorKind, u64, Option<u64>, Option<u64>, u64);

fn summary(errors: &[RecordError]) -> Vec<Outcome> {
    errors
        .iter()
        .map(|e| {
            (
                e.kind,
                e.records,
                e.location.line,
                e.location.offset,
                e.location.index,
            )
        })
        .collect()
}

#[test]
fn empty_files() {
    for name in ["empty.json", "empty.avro"] {
        let (events, errors, _) = read(name);
        assert!(events.is_empty());
        assert_eq!(
            summary(&errors),
            [(ErrorKind::Empty, 0, None, Some(0), 0)],
            "{name}"
        );
    }
}

#[test]
fn damaged_avro() {
    let info = custom();
    let five = events(info, 5);
    let d = block_starts(info, &five, Codec::Deflate);
    let (ev, errors, _) = read("truncated.avro");
    assert_eq!(ev.len(), 3);
    assert_eq!(
        summary(&errors),
        [(ErrorKind::Truncated, 1, None, Some(d[3] as u64), 3)]
    );

    let (ev, errors, _) = read("truncated-header.avro");
    assert!(ev.is_empty());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::Truncated);

    let n = block_starts(info, &five, Codec::Null);
    let (ev, errors, stats) = read("corrupt-sync.avro");
    assert_eq!(ev.len(), 4, "the blocks after the damaged marker are read");
    assert_eq!(
        summary(&errors),
        [(ErrorKind::BadSync, 1, None, Some(n[1] as u64), 1)]
    );
    assert_eq!(stats.records(), 5);
    assert_eq!(
        ev.iter().map(|d| d.location.index).collect::<Vec<_>>(),
        [0, 2, 3, 4]
    );

    let s = block_starts(info, &five, Codec::Snappy);
    let (ev, errors, _) = read("corrupt-snappy.avro");
    assert_eq!(ev.len(), 4);
    assert_eq!(errors.len(), 1);
    assert!(matches!(
        errors[0].kind,
        ErrorKind::BadChecksum | ErrorKind::BadCompression
    ));
    assert_eq!(
        (errors[0].records, errors[0].location.offset),
        (1, Some(s[1] as u64))
    );

    let (ev, errors, _) = read("wrong-magic.avro");
    assert!(ev.is_empty());
    assert_eq!(
        summary(&errors),
        [(ErrorKind::UnknownFormat, 0, None, Some(0), 0)]
    );
    let bytes = std::fs::read(dir().join("wrong-magic.avro")).unwrap();
    let forced = DecodeOptions::default().with_format(Some(Format::Avro));
    let (_, errors, _) = decode_all("m", &bytes, forced);
    assert_eq!(
        summary(&errors),
        [(ErrorKind::BadHeader, 0, None, Some(0), 0)]
    );
    assert!(errors[0].message.contains("bad magic"));

    let (ev, errors, _) = read("wrong-codec.avro");
    assert!(ev.is_empty());
    assert_eq!(
        summary(&errors),
        [(ErrorKind::BadHeader, 0, None, Some(0), 0)]
    );
    assert!(
        errors[0].message.contains("unsupported codec `lz4x`"),
        "{}",
        errors[0].message
    );

    let (ev, errors, _) = read("invalid-utf8.avro");
    assert_eq!(ev.len(), 1, "the record after the bad string still decodes");
    assert_eq!(ev[0].location.index, 1);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].kind, errors[0].records, errors[0].location.index),
        (ErrorKind::InvalidField, 1, 0)
    );
    assert!(errors[0].message.contains("UTF-8"), "{}", errors[0].message);
}

/// Regression (bad-input corpus): with `event_type` not the first key (the
/// collected path, as in Custom HTTP bodies), a repeated key was silently
/// accepted, last value winning, while the streaming path rejected it.
#[test]
fn duplicate_keys_are_rejected_on_both_json_paths() {
    let info = custom();
    let base = line(info, 0, |_| {});
    let streaming = to_flat_json(&sample_event(info, 0, Fill::All));
    let nested = serde_json::to_string(&currents_events::to_http_json(&sample_event(
        info,
        0,
        Fill::All,
    )))
    .unwrap();
    for (what, text) in [
        (
            "streaming",
            streaming.replacen("\"id\":", "\"id\":\"x\",\"id\":", 1),
        ),
        (
            "collected",
            base.replacen("\"id\":", "\"id\":\"x\",\"id\":", 1),
        ),
        (
            "http user",
            nested.replacen("\"user\":{", "\"user\":{\"user_id\":\"x\",", 1),
        ),
    ] {
        let (ev, errors, _) = decode_all(what, text.as_bytes(), DecodeOptions::default());
        assert!(ev.is_empty(), "{what}: {text}");
        assert_eq!(errors.len(), 1, "{what}");
        assert_eq!(errors[0].kind, ErrorKind::InvalidField, "{what}");
        assert!(
            errors[0].message.contains("duplicate field"),
            "{what}: {}",
            errors[0].message
        );
    }
}

#[test]
fn damaged_json() {
    let (ev, errors, _) = read("invalid-utf8.ndjson");
    assert_eq!(
        ev.iter().map(|d| d.location.line).collect::<Vec<_>>(),
        [Some(1), Some(3)]
    );
    assert_eq!(
        summary(&errors),
        [(ErrorKind::BadJson, 1, Some(2), None, 1)]
    );

    let (ev, errors, _) = read("duplicate-key.ndjson");
    assert_eq!(ev.len(), 1);
    assert_eq!(
        summary(&errors),
        [(ErrorKind::InvalidField, 1, Some(1), None, 0)]
    );
    assert!(
        errors[0].message.contains("duplicate field `id`"),
        "{}",
        errors[0].message
    );

    let (ev, errors, _) = read("int-out-of-range.ndjson");
    assert_eq!(ev.len(), 1);
    assert_eq!(
        summary(&errors),
        [(ErrorKind::InvalidField, 1, Some(1), None, 0)]
    );
    assert!(errors[0].message.contains("time"), "{}", errors[0].message);
}

#[test]
fn a_time_beyond_the_int_range_is_a_time_rejection() {
    let (ev, errors, _) = read("time-beyond-int.ndjson");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(ev[0].event.time(), 4_102_444_800);
    assert_eq!(validate(&ev[0].event), Err(Rejection::TimeInFuture));
}

fn validate(event: &Event) -> Result<(), Rejection> {
    let mut preparer = Preparer::new(MapOptions::default());
    let mapped = preparer.map(event).expect("has a user");
    Validator::at(NOW).validate(&mapped, NOW)
}

#[test]
fn decoded_then_rejected_by_pre_validation() {
    let (ev, errors, _) = read("deep-properties.ndjson");
    assert!(errors.is_empty());
    assert_eq!(ev.len(), 1);
    assert_eq!(validate(&ev[0].event), Err(Rejection::NestingTooDeep));

    let (ev, errors, _) = read("time-in-milliseconds.ndjson");
    assert!(errors.is_empty());
    assert_eq!(validate(&ev[0].event), Err(Rejection::TimeInMilliseconds));
}

#[test]
fn huge_string_decodes() {
    let (ev, errors, _) = read("huge-string.ndjson.gz");
    assert!(errors.is_empty(), "{errors:?}");
    match &*ev[0].event {
        Event::CustomEvent(e) => assert_eq!(e.name.len(), 5 << 20),
        other => panic!("{other:?}"),
    }
}

/// A reader of `{"event_type":…,"name":"xxx…(size bytes)…"}\n` followed by
/// one normal line, generated on the fly.
struct EnormousLine {
    head: Vec<u8>,
    size: u64,
    tail: Vec<u8>,
    pos: u64,
}

impl Read for EnormousLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let (h, s) = (self.head.len() as u64, self.size);
        let total = h + s + self.tail.len() as u64;
        let mut n = 0;
        while n < buf.len() && self.pos < total {
            let p = self.pos;
            let chunk: &[u8] = if p < h {
                &self.head[p as usize..]
            } else if p < h + s {
                let left = (h + s - p).min((buf.len() - n) as u64) as usize;
                buf[n..n + left].fill(b'x');
                n += left;
                self.pos += left as u64;
                continue;
            } else {
                &self.tail[(p - h - s) as usize..]
            };
            let take = chunk.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&chunk[..take]);
            n += take;
            self.pos += take as u64;
        }
        Ok(n)
    }
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn an_enormous_line_is_rejected_without_holding_it() {
    let info = custom();
    let head = format!(
        "{{\"event_type\":\"{}\",\"id\":\"big\",\"name\":\"",
        info.event_type
    );
    let tail = format!(
        "\"}}\n{}\n",
        to_flat_json(&sample_event(info, 1, Fill::All))
    );
    const SIZE: u64 = 300 << 20;
    for format in [Some(Format::Ndjson), None] {
        let before = vm_hwm_kb();
        let input = EnormousLine {
            head: head.clone().into_bytes(),
            size: SIZE,
            tail: tail.clone().into_bytes(),
            pos: 0,
        };
        let options = DecodeOptions::default().with_format(format);
        assert_eq!(options.max_record_bytes, 64 << 20);
        let mut reader = currents_events::decode::Reader::new("lazy", input, options);
        let first = reader.next().unwrap().unwrap_err();
        assert_eq!(
            (first.kind, first.records, first.location.index),
            (ErrorKind::TooLarge, 1, 0)
        );
        assert!(
            first.message.contains("exceeds the limit"),
            "{}",
            first.message
        );
        let second = reader.next().unwrap().unwrap();
        assert_eq!(*second.event, sample_event(info, 1, Fill::All));
        assert_eq!(second.location.index, 1);
        assert!(reader.next().is_none());
        // At most one record's worth (the 64 MiB limit) is ever held.
        if let (Some(before), Some(after)) = (before, vm_hwm_kb()) {
            let grew_mb = after.saturating_sub(before) / 1024;
            assert!(
                grew_mb < 200,
                "{format:?}: peak memory grew by {grew_mb} MB"
            );
        }
    }
}
