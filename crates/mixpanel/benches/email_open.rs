//! Micro-benchmarks of one event type, `users.messages.email.Open`, one
//! stage at a time: decode (a Custom HTTP NDJSON line → typed event), map
//! (typed event → Mixpanel JSON bytes through the generated mapper),
//! prepare (map + head capture into a `PreparedEvent`), and the generic
//! alternative (parse → `serde_json::Value` → rename/drop → serialize).
//!
//! `cargo bench -p currents-mixpanel --bench email_open`

use std::sync::LazyLock;

use currents_events::decode::{DecodeOptions, Format, Reader};
use currents_events::sample::{Fill, sample_event};
use currents_events::{Event, event_type_info, to_http_json};
use currents_mixpanel::{JsonEventWriter, MapOptions, MapToMixpanel, Preparer};
use divan::counter::{BytesCount, ItemsCount};
use serde_json::{Map, Value};

const N: usize = 1000;

static EVENTS: LazyLock<Vec<Event>> = LazyLock::new(|| {
    let info = event_type_info("users.messages.email.Open").expect("known type");
    (0..N as u64)
        .map(|n| sample_event(info, n, Fill::All))
        .collect()
});

static NDJSON: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for event in EVENTS.iter() {
        serde_json::to_writer(&mut out, &to_http_json(event)).expect("write");
        out.push(b'\n');
    }
    out
});

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 30)]
fn decode(bencher: divan::Bencher) {
    let input: &[u8] = &NDJSON;
    bencher
        .counter(ItemsCount::new(N))
        .counter(BytesCount::new(input.len()))
        .bench(|| {
            let options = DecodeOptions::default().with_format(Some(Format::Ndjson));
            Reader::new("bench", input, options)
                .filter(Result::is_ok)
                .count()
        });
}

#[divan::bench(sample_count = 30)]
fn map_to_json(bencher: divan::Bencher) {
    let options = MapOptions::default();
    let mut writer = JsonEventWriter::new();
    bencher.counter(ItemsCount::new(N)).bench_local(|| {
        let mut bytes = 0;
        for event in EVENTS.iter() {
            writer.clear();
            let _ = event.map_into(&options, &mut writer);
            bytes += writer.finish().len();
        }
        bytes
    });
}

#[divan::bench(sample_count = 30)]
fn prepare(bencher: divan::Bencher) {
    let mut preparer = Preparer::new(MapOptions::default());
    bencher.counter(ItemsCount::new(N)).bench_local(|| {
        let mut bytes = 0;
        for event in EVENTS.iter() {
            if let Ok(mapped) = preparer.map(event) {
                bytes += mapped.json.len();
            }
        }
        bytes
    });
}

#[divan::bench(sample_count = 30)]
fn decode_map_serialize(bencher: divan::Bencher) {
    let input: &[u8] = &NDJSON;
    bencher
        .counter(ItemsCount::new(N))
        .counter(BytesCount::new(input.len()))
        .bench_local(|| {
            let mut out = Vec::with_capacity(input.len());
            let options = DecodeOptions::default().with_format(Some(Format::Ndjson));
            let mut preparer = Preparer::new(MapOptions::default());
            for decoded in Reader::new("bench", input, options).flatten() {
                if let Ok(mapped) = preparer.map(&decoded.event) {
                    out.extend_from_slice(mapped.json);
                    out.push(b'\n');
                }
            }
            out.len()
        });
}

/// The same mapping through `serde_json::Value` (no generated types).
#[divan::bench(sample_count = 30)]
fn generic_value_mapper(bencher: divan::Bencher) {
    let input: &[u8] = &NDJSON;
    bencher
        .counter(ItemsCount::new(N))
        .counter(BytesCount::new(input.len()))
        .bench(|| {
            let mut out = Vec::with_capacity(input.len());
            for line in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let Ok(Value::Object(mut top)) = serde_json::from_slice::<Value>(line) else {
                    continue;
                };
                let mut flat = Map::new();
                for nested in ["user", "properties"] {
                    if let Some(Value::Object(inner)) = top.remove(nested) {
                        flat.extend(inner);
                    }
                }
                flat.extend(top);
                let Some(distinct_id) = flat.remove("external_user_id") else {
                    continue;
                };
                let mut props = Map::new();
                props.insert("distinct_id".into(), distinct_id);
                props.insert(
                    "$insert_id".into(),
                    flat.remove("id").unwrap_or(Value::Null),
                );
                props.insert("time".into(), flat.remove("time").unwrap_or(Value::Null));
                props.insert("$partner_id".into(), "braze".into());
                flat.remove("event_type");
                for (key, value) in flat {
                    match key.as_str() {
                        "user_id" | "timezone" => {}
                        "device_model" => {
                            props.insert("$device".into(), value);
                        }
                        _ => {
                            props.insert(key, value);
                        }
                    }
                }
                let event = serde_json::json!({"event": "Email Open", "properties": props});
                serde_json::to_writer(&mut out, &event).expect("write");
                out.push(b'\n');
            }
            out.len()
        });
}
