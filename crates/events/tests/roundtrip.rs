//! Every event type written with our encoders (Avro with every codec and
//! small blocks, Custom HTTP JSON, NDJSON, gzip) reads back equal.

use std::io::Write;

use currents_events::decode::decode_all;
use currents_events::decode::{DecodeOptions, Format};
use currents_events::sample::{Fill, sample_event, sample_fields};
use currents_events::{
    Codec, EVENT_TYPES, Event, EventTypeInfo, to_http_batch, to_http_json, write_avro, write_ndjson,
};

const N: u64 = 7;

fn samples(info: &EventTypeInfo, fill: Fill) -> Vec<Event<'static>> {
    (0..N).map(|n| sample_event(info, n, fill)).collect()
}

/// What an Avro file holds of `sample_event`: only the writer-schema fields.
fn avro_expected(info: &EventTypeInfo, n: u64, fill: Fill) -> Event<'static> {
    let mut fields = sample_fields(info, n, fill);
    if info.avro {
        fields.retain(|name, _| info.field(name).is_some_and(|f| f.avro));
    }
    Event::from_map(
        info.event_type,
        serde::de::value::MapDeserializer::new(fields.into_iter()),
    )
    .map_err(|e: serde_json::Error| e)
    .expect("sample fits")
}

fn decode(input: &[u8], format: Option<Format>) -> Vec<Event<'static>> {
    let options = DecodeOptions::default().with_format(format);
    let (events, errors, stats) = decode_all("test", input, options);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(stats.records(), events.len() as u64);
    assert!(
        stats.unknown_fields.is_empty(),
        "{:?}",
        stats.unknown_fields
    );
    events.into_iter().map(|d| *d.event).collect()
}

#[test]
fn avro_round_trip_every_type_every_codec() {
    for info in EVENT_TYPES {
        for fill in [Fill::All, Fill::Required] {
            let events = samples(info, fill);
            let expected: Vec<Event> = (0..N).map(|n| avro_expected(info, n, fill)).collect();
            for codec in Codec::ALL {
                let file = write_avro(Vec::new(), info, &events, codec, 3).unwrap();
                let back = decode(&file, None);
                assert_eq!(back, expected, "{} {codec:?} {fill:?}", info.event_type);
            }
        }
    }
}

#[test]
fn avro_locations_count_blocks_and_records() {
    let info = &EVENT_TYPES[0];
    let events = samples(info, Fill::All);
    let file = write_avro(Vec::new(), info, &events, Codec::Null, 3).unwrap();
    let (decoded, _, stats) = decode_all("x.avro", &file, DecodeOptions::default());
    assert_eq!(stats.format, Some(Format::Avro));
    let indexes: Vec<u64> = decoded.iter().map(|d| d.location.index).collect();
    assert_eq!(indexes, (0..N).collect::<Vec<_>>());
    let offsets: Vec<u64> = decoded.iter().filter_map(|d| d.location.offset).collect();
    assert_eq!(offsets[0], offsets[2]);
    assert!(offsets[3] > offsets[2] && offsets[6] > offsets[5]);
}

#[test]
fn http_json_round_trip_every_type() {
    for info in EVENT_TYPES {
        for fill in [Fill::All, Fill::Required] {
            let events = samples(info, fill);
            // A batch body, pretty-printed and compact.
            let batch = to_http_batch(&events);
            assert_eq!(
                decode(
                    serde_json::to_string_pretty(&batch).unwrap().as_bytes(),
                    None
                ),
                events
            );
            assert_eq!(
                decode(batch.to_string().as_bytes(), None),
                events,
                "{}",
                info.event_type
            );
            // A single event object.
            let one = serde_json::to_string_pretty(&to_http_json(&events[0])).unwrap();
            assert_eq!(decode(one.as_bytes(), None), events[..1]);
            // HTTP-shaped NDJSON.
            let mut lines = String::new();
            for event in &events {
                lines.push_str(&to_http_json(event).to_string());
                lines.push('\n');
            }
            assert_eq!(decode(lines.as_bytes(), None), events);
        }
    }
}

#[test]
fn ndjson_round_trip_every_type() {
    for info in EVENT_TYPES {
        for fill in [Fill::All, Fill::Required] {
            let events = samples(info, fill);
            let text = write_ndjson(Vec::new(), &events).unwrap();
            assert_eq!(decode(&text, None), events, "{}", info.event_type);
            assert_eq!(decode(&text, Some(Format::Ndjson)), events);
        }
    }
    // Mixed types in one file, and the fallback path (event_type not first).
    let all: Vec<Event> = currents_events::sample::sample_all(3).collect();
    let text = write_ndjson(Vec::new(), &all).unwrap();
    assert_eq!(decode(&text, None), all);
    let mut reordered = String::new();
    for event in &all {
        let mut value = serde_json::to_value(event).unwrap();
        value["event_type"] = event.event_type().into();
        reordered.push_str(&value.to_string()); // keys sorted: event_type is not first
        reordered.push_str("\r\n\n");
    }
    assert_eq!(decode(reordered.as_bytes(), None), all);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_inputs() {
    let info = currents_events::event_type_info("users.messages.email.Open").unwrap();
    let events = samples(info, Fill::Required);
    let ndjson = write_ndjson(Vec::new(), &events).unwrap();
    assert_eq!(decode(&gzip(&ndjson), None), events);
    // Two gzip members concatenated.
    let mut two = gzip(&ndjson[..ndjson.len() / 2 + 1]);
    let split = ndjson[..ndjson.len() / 2 + 1].len();
    two.extend(gzip(&ndjson[split..]));
    assert_eq!(decode(&two, None), events);
    let avro = write_avro(Vec::new(), info, &events, Codec::Deflate, 2).unwrap();
    assert_eq!(decode(&gzip(&avro), None), events);
    // Through a real .gz file and open_path.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.avro.gz");
    std::fs::write(&path, gzip(&avro)).unwrap();
    let reader = currents_events::decode::open_path(&path, DecodeOptions::default()).unwrap();
    assert_eq!(reader.source(), path.display().to_string());
    let back: Vec<Event> = reader.map(|r| *r.unwrap().event).collect();
    assert_eq!(back, events);
}
