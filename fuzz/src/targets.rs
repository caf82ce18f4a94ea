//! The four targets. Each asserts its invariants and returns a signature of
//! what happened (error kinds, counts), so the stable driver can keep inputs
//! that behave differently.

use std::hash::{Hash, Hasher};

use currents_events::decode::{DecodeOptions, Format, Reader, UnknownTypes};
use currents_events::{EVENT_TYPES, Event, event_type_info, sample};
use currents_mixpanel::{
    ImportBody, MAX_RESPONSE_TEXT, MapOptions, Preparer, Profile, Validator, parse_import_response,
    to_value,
};

/// A fixed "now" for validation: 2026-01-15T00:00:00Z.
pub const NOW: i64 = sample::BASE_TIME;

fn hasher() -> std::collections::hash_map::DefaultHasher {
    std::collections::hash_map::DefaultHasher::new()
}

/// Reads `data` to the end and checks the accounting: every item's record
/// index equals the records accounted before it, the stats match what was
/// yielded, `records() == decoded + skipped_unknown + failed_records`, and
/// the reader stays finished. Decoded events are mapped and validated too.
fn read_all(data: &[u8], options: DecodeOptions, roundtrip_json: bool) -> u64 {
    let mut h = hasher();
    // Which outcomes occurred (bit 0: an event, then one bit per error kind).
    let mut seen: u32 = 0;
    let skip = options.unknown_types == UnknownTypes::Skip;
    let mut reader = Reader::new("fuzz", data, options);
    let (mut decoded, mut errors, mut lost) = (0u64, 0u64, 0u64);
    let mut preparer = Preparer::new(MapOptions::default());
    let validator = Validator::default();
    for item in reader.by_ref() {
        match item {
            Ok(d) => {
                if !skip {
                    assert_eq!(
                        d.location.index,
                        decoded + lost,
                        "record index of a decoded event"
                    );
                }
                decoded += 1;
                seen |= 1;
                map_and_check(&d.event, &mut preparer, &validator);
                if roundtrip_json {
                    json_roundtrip(&d.event);
                }
            }
            Err(e) => {
                if !skip {
                    assert_eq!(e.location.index, decoded + lost, "record index of an error");
                }
                errors += 1;
                lost += e.records;
                let _ = e.to_string();
                seen |= 2 << (e.kind as u32);
                if e.records > 1 {
                    seen |= 1 << 31;
                }
            }
        }
        assert!(decoded + errors < 10_000_000, "reader does not end");
    }
    let stats = reader.stats().clone();
    assert_eq!(stats.decoded, decoded);
    assert_eq!(stats.error_count(), errors);
    assert_eq!(stats.failed_records, lost);
    assert_eq!(
        stats.records(),
        stats.decoded + stats.skipped_unknown + stats.failed_records
    );
    if !skip {
        assert_eq!(stats.skipped_unknown, 0);
    }
    assert!(reader.next().is_none(), "reader yields after its end");
    stats.format.hash(&mut h);
    seen.hash(&mut h);
    (stats.skipped_unknown > 0, !stats.unknown_fields.is_empty()).hash(&mut h);
    h.finish()
}

/// Maps an event (both profiles), twice: the same output both times; the
/// prepared event's JSON parses and agrees with the value mapping; pre-
/// validation either accepts it or names a rule.
fn map_and_check(event: &Event, preparer: &mut Preparer, validator: &Validator) {
    for profile in [Profile::Braze, Profile::Full] {
        let options = MapOptions::default().with_profile(profile);
        let a = to_value(event, &options);
        let b = to_value(event, &options);
        assert_eq!(a, b, "mapping is deterministic");
        if profile == Profile::Braze {
            let prepared = preparer.map(event);
            assert_eq!(prepared.is_ok(), a.is_ok());
            if let (Ok(prepared), Ok(value)) = (prepared, a) {
                let parsed: serde_json::Value =
                    serde_json::from_slice(prepared.json).expect("prepared JSON parses");
                assert_eq!(
                    parsed["event"],
                    serde_json::Value::String(value.event.clone())
                );
                assert_eq!(
                    prepared.head.insert_id.as_deref(),
                    value.properties.get("$insert_id").and_then(|v| v.as_str())
                );
                let _ = validator.validate(&prepared, NOW);
            }
        }
    }
}

/// Flat NDJSON of a decoded event decodes to the same event.
fn json_roundtrip(event: &Event) {
    let line = currents_events::to_flat_json(event);
    let options = DecodeOptions::default().with_format(Some(Format::Ndjson));
    let mut reader = Reader::new("roundtrip", line.as_bytes(), options);
    match reader.next() {
        Some(Ok(again)) => assert_eq!(&*again.event, event, "flat JSON round trip of {line}"),
        other => panic!("flat JSON of a decoded event does not decode: {other:?}\n{line}"),
    }
}

fn options(data: &[u8], format: Option<Format>) -> DecodeOptions {
    let tail = data.last().copied().unwrap_or(0);
    DecodeOptions::default()
        .with_format(format)
        .with_unknown_types(if tail & 1 == 1 {
            UnknownTypes::Skip
        } else {
            UnknownTypes::Map
        })
        // Small limits now and then, so the size checks run too.
        .with_max_record_bytes(if tail & 6 == 6 { 300 } else { 1 << 20 })
}

/// The Avro container reader (format forced, and detected).
pub fn avro(data: &[u8]) -> u64 {
    let mut h = hasher();
    read_all(data, options(data, Some(Format::Avro)), false).hash(&mut h);
    if data.starts_with(b"Obj\x01") {
        read_all(data, options(data, None), false).hash(&mut h);
    }
    h.finish()
}

/// The Custom HTTP / NDJSON reader: detected format, then each JSON format
/// forced. Decoded events must survive a flat-JSON round trip, and the fast
/// JSON path must agree with serde_json on the whole input and on each line.
pub fn json(data: &[u8]) -> u64 {
    // The fast JSON path reads exactly what serde_json reads, or declines.
    currents_events::decode::fuzzing::check_fast_json(data);
    for line in data.split(|&b| b == b'\n') {
        currents_events::decode::fuzzing::check_fast_json(line);
    }
    let mut h = hasher();
    for format in [None, Some(Format::Ndjson), Some(Format::HttpJson)] {
        read_all(data, options(data, format), true).hash(&mut h);
    }
    h.finish()
}

/// Custom-event `properties` expansion: a CustomEvent whose `properties`
/// text is the input, mapped and validated.
pub fn properties(data: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(data).into_owned();
    let info = event_type_info("users.behaviors.CustomEvent").expect("CustomEvent is known");
    let mut fields = sample::sample_fields(info, 1, sample::Fill::All);
    fields.insert("properties".into(), serde_json::Value::String(text.clone()));
    let event = Event::from_map(
        info.event_type,
        serde::de::value::MapDeserializer::new(fields.into_iter()),
    )
    .unwrap_or_else(|e: serde_json::Error| panic!("CustomEvent with any properties text: {e}"));
    let mut preparer = Preparer::new(MapOptions::default());
    map_and_check(&event, &mut preparer, &Validator::default());
    let mapped = to_value(&event, &MapOptions::default()).expect("sample has a user");
    let mut h = hasher();
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) {
        Ok(object) => {
            for (key, value) in &object {
                let property = format!("[Custom event property] {key}");
                assert_eq!(mapped.properties.get(&property), Some(value), "{property}");
            }
            object.len().min(8).hash(&mut h);
        }
        Err(_) => {
            assert_eq!(
                mapped.properties.get("properties"),
                Some(&serde_json::Value::String(text.clone()))
            );
            1000.hash(&mut h);
        }
    }
    let prepared = preparer.map(&event).expect("sample has a user");
    Validator::default()
        .validate(&prepared, NOW)
        .err()
        .hash(&mut h);
    let _ = EVENT_TYPES.len();
    h.finish()
}

/// The `/import` response parser: a status from the first two bytes, the
/// rest as body text. Never panics; the kept text is a char-boundary prefix
/// of at most 4 KiB; when the strict serde parse succeeds, the lenient one
/// agrees with it.
pub fn response(data: &[u8]) -> u64 {
    let (status, body) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) % 600, rest),
        _ => (200, data),
    };
    let body = String::from_utf8_lossy(body);
    let response = parse_import_response(status, &body);
    assert_eq!(response.status, status);
    assert!(response.text.len() <= MAX_RESPONSE_TEXT);
    assert!(body.starts_with(&response.text));
    assert!(response.text.len() == body.len() || response.text.len() + 4 > MAX_RESPONSE_TEXT);
    if let Ok(strict) = serde_json::from_str::<ImportBody>(&body) {
        let lenient = &response.body;
        assert_eq!(lenient.code, strict.code);
        assert_eq!(lenient.status, strict.status);
        assert_eq!(lenient.error, strict.error);
        assert_eq!(lenient.num_records_imported, strict.num_records_imported);
        let (l, s) = (
            lenient.failed_records.as_deref().unwrap_or_default(),
            strict.failed_records.as_deref().unwrap_or_default(),
        );
        assert_eq!(l.len(), s.len());
        for (l, s) in l.iter().zip(s) {
            assert_eq!(l.index, s.index);
            assert_eq!(l.insert_id, s.insert_id);
            assert_eq!(l.field, s.field);
            assert_eq!(l.message, s.message);
        }
    }
    let mut h = hasher();
    response.body.code.is_some().hash(&mut h);
    response
        .body
        .failed_records
        .as_ref()
        .map(|f| f.len().min(4))
        .hash(&mut h);
    response.body.error.is_some().hash(&mut h);
    h.finish()
}
