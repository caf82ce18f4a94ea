//! Property tests: decode(encode(e)) == e for generated events of every
//! glossary type, in Avro (every codec), flat NDJSON and Custom HTTP JSON.

#[path = "proptest_strategy.rs"]
mod strategy;

use currents_events::decode::{DecodeOptions, decode_all};
use currents_events::{
    Codec, EVENT_TYPES, Event, to_http_batch, to_http_json, write_avro, write_ndjson,
};
use proptest::prelude::*;
use strategy::{ANY, Shape, one_of_each};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

/// Compares event by event, so a failure shows one pair, not 97.
fn same(got: &[Event], want: &[Event]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        prop_assert_eq!(g, w, "{}", w.event_type());
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Vec<Event<'static>> {
    let (events, errors, stats) = decode_all("prop", bytes, DecodeOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(stats.records(), events.len() as u64);
    events.into_iter().map(|d| *d.event).collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn avro_roundtrip_every_codec(events in one_of_each(Shape { avro_only: true, canonical_json_text: false }), codec in 0..4usize, per_block in 1..3usize) {
        let codec = Codec::ALL[codec];
        for (event, info) in events.iter().zip(EVENT_TYPES) {
            let pair = [event.clone(), event.clone()];
            let bytes = write_avro(Vec::new(), info, &pair, codec, per_block).unwrap();
            let back = decode(&bytes);
            prop_assert_eq!(&back[..], &pair[..], "{} {:?}", info.event_type, codec);
        }
    }

    #[test]
    fn ndjson_roundtrip(events in one_of_each(ANY)) {
        let bytes = write_ndjson(Vec::new(), &events).unwrap();
        same(&decode(&bytes), &events)?;
    }

    #[test]
    fn http_roundtrip(events in one_of_each(Shape { avro_only: false, canonical_json_text: true })) {
        // A batch body, and the same events one Custom HTTP object per line.
        let batch = to_http_batch(&events).to_string();
        same(&decode(batch.as_bytes()), &events)?;
        let lines: String = events.iter().map(|e| to_http_json(e).to_string() + "\n").collect();
        same(&decode(lines.as_bytes()), &events)?;
    }
}
