//! Property tests over generated events of every glossary type: mapping is
//! deterministic, `$insert_id` is stable (hashed for invalid Braze ids), and
//! every mapped event passes `/import` pre-validation or is rejected with a
//! reason that matches what was mapped.

#[path = "../../events/tests/proptest_strategy.rs"]
mod strategy;

use currents_events::Event;
use currents_mixpanel::{
    IdState, MILLIS_THRESHOLD, MIN_TIME, MapOptions, OwnedMapped, Preparer, Profile, Rejection,
    Validator, insert_id, is_valid_insert_id, to_value,
};
use proptest::prelude::*;
use strategy::{ANY, one_of_each, text};

/// A fixed "now": 2026-01-15T00:00:00Z.
const NOW: i64 = 1_768_435_200;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

fn prepare(event: &Event, profile: Profile) -> Option<OwnedMapped> {
    let mut preparer = Preparer::new(MapOptions::default().with_profile(profile));
    preparer.map(event).ok().map(|m| m.to_owned())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mapped_events_validate_or_are_rejected_with_a_matching_reason(events in one_of_each(ANY)) {
        let validator = Validator::default();
        for event in &events {
            for profile in [Profile::Braze, Profile::Full] {
                let Some(prepared) = prepare(event, profile) else { continue };
                let head = prepared.head.clone();
                // The prepared JSON is one valid object agreeing with the value mapping.
                let json: serde_json::Value = serde_json::from_slice(&prepared.json).unwrap();
                let value = to_value(event, &MapOptions::default().with_profile(profile)).unwrap();
                prop_assert_eq!(&json["event"], &serde_json::Value::String(value.event.clone()));
                prop_assert_eq!(head.insert_id.as_deref(), Some(&*insert_id(event.id())));
                let time = head.time.unwrap();
                match validator.validate(&prepared.as_mapped(), NOW) {
                    Ok(()) => {
                        prop_assert!((MIN_TIME..MILLIS_THRESHOLD).contains(&time));
                        prop_assert!(time <= NOW + 3600);
                        prop_assert!(is_valid_insert_id(head.insert_id.as_deref().unwrap()));
                        prop_assert!(prepared.json.len() < 1_000_000);
                    }
                    Err(Rejection::TimeInMilliseconds) => prop_assert!(time >= MILLIS_THRESHOLD),
                    Err(Rejection::TimeBefore1971) => prop_assert!(time < MIN_TIME),
                    Err(Rejection::TimeInFuture) => prop_assert!(time > NOW + 3600),
                    Err(Rejection::PlaceholderDistinctId) => {
                        prop_assert_eq!(head.distinct_id, IdState::Placeholder);
                    }
                    // Shape rules: generated values nest at most a few levels.
                    Err(Rejection::NestingTooDeep) => prop_assert!(prepared.shape.max_depth > 3),
                    Err(other) => prop_assert!(false, "unexpected rejection {other} for {}", event.event_type()),
                }
            }
        }
    }

    #[test]
    fn mapping_is_deterministic(events in one_of_each(ANY)) {
        for event in &events {
            for profile in [Profile::Braze, Profile::Full] {
                let options = MapOptions::default().with_profile(profile);
                prop_assert_eq!(to_value(event, &options), to_value(event, &options));
                let (a, b) = (prepare(event, profile), prepare(event, profile));
                prop_assert_eq!(a.as_ref().map(|p| p.json.clone()), b.as_ref().map(|p| p.json.clone()));
                // A clone (a re-decoded copy) maps the same too.
                prop_assert_eq!(prepare(&event.clone(), profile).map(|p| p.json), a.map(|p| p.json));
            }
        }
    }

    #[test]
    fn insert_id_is_stable_and_always_valid(id in text()) {
        let a = insert_id(&id).into_owned();
        prop_assert_eq!(&a, &insert_id(&id.clone()).into_owned());
        prop_assert!(is_valid_insert_id(&a), "{:?} -> {:?}", id, a);
        if is_valid_insert_id(&id) {
            prop_assert_eq!(&a, &id);
        } else {
            prop_assert_eq!(a.len(), 32);
            prop_assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }
}

/// `$insert_id`s are part of Mixpanel's dedup key: the hash of an invalid
/// Braze id must never change between runs or releases (values computed
/// independently: SHA-256 of the id, first 16 bytes in hex).
#[test]
fn hashed_insert_ids_are_pinned() {
    for (id, expected) in [
        ("", "e3b0c44298fc1c149afbf4c8996fb924"),
        ("null", "74234e98afe7498fb5daf1f36ac2d78a"),
        ("has spaces", "70394729f3543742b99ae0a167aab2d6"),
        ("a_b", "648fa9b31bc7ff7eb914e7a7180f07e0"),
        (&"x".repeat(37), "6ee29e87d96ee4fcb3baef255923aece"),
        ("é😀\"\\\u{0}", "e2a1d0dc4369eef6642b33edaafdb14d"),
    ] {
        assert_eq!(insert_id(id), expected, "{id:?}");
    }
    let valid = "0b5a1c2e-aaaa-4bbb-8ccc-123456789abc";
    assert_eq!(insert_id(valid), valid);
}
