//! One snapshot per event type of its Mixpanel output (Braze profile), from a
//! fixture event this project generates, plus the special cases.

use currents_events::sample::{Fill, sample_event};
use currents_events::{EVENT_TYPES, Event};
use currents_mixpanel::{MapOptions, Profile, UnknownFieldPolicy, to_value};
use serde_json::{Value, json};

fn options(profile: Profile) -> MapOptions {
    MapOptions::default()
        .with_profile(profile)
        .with_token("demo-project-token")
}

fn snapshot_of(event: &Event, profile: Profile) -> Value {
    let output = match to_value(event, &options(profile)) {
        Ok(mapped) => serde_json::to_value(mapped).expect("mapped event serializes"),
        Err(skip) => json!({ "skipped": skip.reason() }),
    };
    json!({ "input": event, "mixpanel": output })
}

fn event_from(value: Value) -> Event<'static> {
    let Value::Object(mut map) = value else {
        panic!("fixture must be an object")
    };
    let Some(Value::String(event_type)) = map.remove("event_type") else {
        panic!("fixture needs event_type")
    };
    Event::from_map(
        &event_type,
        serde::de::value::MapDeserializer::new(map.into_iter()),
    )
    .unwrap_or_else(|e: serde_json::Error| panic!("fixture: {e}"))
}

#[test]
fn every_event_type() {
    assert_eq!(EVENT_TYPES.len(), 97);
    for info in EVENT_TYPES {
        let event = sample_event(info, 1, Fill::All);
        insta::assert_json_snapshot!(info.event_type, snapshot_of(&event, Profile::Braze));
    }
}

#[test]
fn full_profile_keeps_every_field() {
    let info = currents_events::event_type_info("users.messages.email.Open").expect("known type");
    let event = sample_event(info, 1, Fill::All);
    insta::assert_json_snapshot!(
        "full_profile.users.messages.email.Open",
        snapshot_of(&event, Profile::Full)
    );
    let info = currents_events::event_type_info("users.behaviors.CustomEvent").expect("known type");
    let event = sample_event(info, 1, Fill::All);
    insta::assert_json_snapshot!(
        "full_profile.users.behaviors.CustomEvent",
        snapshot_of(&event, Profile::Full)
    );
}

#[test]
fn custom_event_with_nested_and_odd_properties() {
    let properties = json!({
        "plain": "value",
        "nested": {"level1": {"level2": {"level3": true}}},
        "list": [1, "two", null, {"three": 3}],
        "empty object": {},
        "unicode ✓": "é",
        "": "empty key",
        "[Custom event property] already prefixed": 1,
        "number": 1.5e300,
    });
    let event = event_from(json!({
        "event_type": "users.behaviors.CustomEvent",
        "id": "0b5f3c0e-7a4e-4d55-9d0e-1b2c3d4e5f60",
        "time": 1768435200,
        "user_id": "5eed00000000000000000001",
        "external_user_id": "user-00001",
        "name": "Odd \"Properties\" Event",
        "properties": properties.to_string(),
    }));
    insta::assert_json_snapshot!(
        "custom_event.odd_properties",
        snapshot_of(&event, Profile::Braze)
    );

    let not_an_object = event_from(json!({
        "event_type": "users.behaviors.CustomEvent",
        "id": "0b5f3c0e-7a4e-4d55-9d0e-1b2c3d4e5f61",
        "time": 1768435200,
        "user_id": "5eed00000000000000000001",
        "external_user_id": "user-00001",
        "name": "Broken",
        "properties": "[1, 2",
    }));
    insta::assert_json_snapshot!(
        "custom_event.properties_not_an_object",
        snapshot_of(&not_an_object, Profile::Braze)
    );
}

#[test]
fn purchase() {
    let event = event_from(json!({
        "event_type": "users.behaviors.Purchase",
        "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "time": 1768435200,
        "user_id": "5eed00000000000000000002",
        "external_user_id": "user-00002",
        "product_id": "sku-123",
        "price": 19.99,
        "currency": "EUR",
        "properties": "{\"size\": \"M\", \"color\": \"teal\", \"gift\": false}",
        "platform": "web",
    }));
    insta::assert_json_snapshot!(
        "purchase.with_properties",
        snapshot_of(&event, Profile::Braze)
    );
}

#[test]
fn missing_external_id_is_skipped_not_an_error() {
    let info = currents_events::event_type_info("users.messages.email.Open").expect("known type");
    let event = sample_event(info, 2, Fill::Required);
    insta::assert_json_snapshot!(
        "skipped.no_external_user_id",
        snapshot_of(&event, Profile::Braze)
    );
    let mut empty = sample_event(info, 2, Fill::All);
    if let Event::EmailOpen(open) = &mut empty {
        open.external_user_id = Some(String::new().into());
    }
    assert_eq!(
        to_value(&empty, &options(Profile::Braze)),
        Err(currents_mixpanel::SkipReason::NoExternalUserId)
    );
}

#[test]
fn unknown_fields_are_counted_not_sent_under_the_braze_profile() {
    let with_unknown_field = event_from(json!({
        "event_type": "users.messages.email.Open",
        "id": "3c1d0e2f-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
        "time": 1768435200,
        "user_id": "5eed00000000000000000003",
        "external_user_id": "user-00003",
        "email_address": "user00003@example.com",
        "brand_new_field": {"added": "by Braze"},
    }));
    insta::assert_json_snapshot!(
        "unknown.field",
        snapshot_of(&with_unknown_field, Profile::Braze)
    );
    let unknown_type = event_from(json!({
        "event_type": "users.messages.fax.Send",
        "id": "4d2e1f30-5b6c-4d7e-8f90-1a2b3c4d5e6f",
        "time": 1768435200,
        "user": {"user_id": "5eed00000000000000000004", "external_user_id": "user-00004", "timezone": "UTC"},
        "properties": {"fax_number": "+49 30 1234567", "device_model": "FX-100", "campaign_id": "c-1"},
    }));
    insta::assert_json_snapshot!(
        "unknown.event_type",
        snapshot_of(&unknown_type, Profile::Braze)
    );
    // Under --profile full (or --unknown-fields keep) they travel as they are.
    for options in [
        options(Profile::Full),
        options(Profile::Braze).with_unknown_fields(UnknownFieldPolicy::Keep),
    ] {
        let mapped = to_value(&unknown_type, &options).expect("mapped");
        assert_eq!(mapped.properties["fax_number"], "+49 30 1234567");
        let mapped = to_value(&with_unknown_field, &options).expect("mapped");
        assert_eq!(
            mapped.properties["brand_new_field"],
            json!({"added": "by Braze"})
        );
    }
}

#[test]
fn invalid_braze_id_gets_a_deterministic_insert_id() {
    let event = event_from(json!({
        "event_type": "users.behaviors.app.SessionStart",
        "id": "this id is far too long for mixpanel and has spaces in it",
        "time": 1768435200,
        "user_id": "5eed00000000000000000005",
        "external_user_id": "user-00005",
        "session_id": "s-1",
        "app_id": "app-1",
        "platform": "ios",
    }));
    insta::assert_json_snapshot!("insert_id.hashed", snapshot_of(&event, Profile::Braze));
}

#[test]
fn pii_policies() {
    use currents_mixpanel::{HashKey, PiiPolicy};
    let info = currents_events::event_type_info("users.messages.email.Open").expect("known type");
    let event = sample_event(info, 1, Fill::All);
    let key = || HashKey::new("snapshot-key-of-16+bytes").expect("long enough");
    for (name, pii) in [
        ("keep", PiiPolicy::keep()),
        ("drop", PiiPolicy::drop()),
        ("hash", PiiPolicy::hash(key())),
    ] {
        let options = options(Profile::Braze).with_pii(pii);
        let mapped = to_value(&event, &options).expect("mapped");
        insta::assert_json_snapshot!(format!("pii.{name}.users.messages.email.Open"), mapped);
    }
    // The hash keeps joins possible: the same user hashes the same way in every event.
    let options = options(Profile::Braze).with_pii(PiiPolicy::hash(key()));
    let open = to_value(&event, &options).expect("mapped");
    let info = currents_events::event_type_info("users.messages.email.Click").expect("known type");
    let click = to_value(&sample_event(info, 1, Fill::All), &options).expect("mapped");
    assert_eq!(
        open.properties["distinct_id"],
        click.properties["distinct_id"]
    );
    assert_ne!(open.properties["distinct_id"], json!("user-00001"));
}

#[test]
fn unknown_fields_named_like_mapped_properties_do_not_clash() {
    let event = event_from(json!({
        "event_type": "users.messages.email.Open",
        "id": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
        "time": 1768435200,
        "user_id": "5eed00000000000000000006",
        "external_user_id": "user-00006",
        "email_address": "user00006@example.com",
        "device_model": "iPhone16,2",
        "distinct_id": "not-the-user",
        "$device": "from an unknown field",
        "token": "not-the-token",
    }));
    // Braze's shape: unknown fields are counted, not sent.
    let braze = to_value(&event, &options(Profile::Braze)).expect("mapped");
    assert!(!braze.properties.contains_key("currents_distinct_id"));
    assert!(braze.properties.keys().all(|k| !k.starts_with("currents_")));
    let keep = options(Profile::Braze).with_unknown_fields(UnknownFieldPolicy::Keep);
    let mapped = to_value(&event, &keep).expect("mapped");
    assert_eq!(mapped.properties["distinct_id"], "user-00006");
    assert_eq!(mapped.properties["$device"], "iPhone16,2");
    assert_eq!(mapped.properties["token"], "demo-project-token");
    assert_eq!(mapped.properties["currents_distinct_id"], "not-the-user");
    assert_eq!(
        mapped.properties["currents_$device"],
        "from an unknown field"
    );
    assert_eq!(mapped.properties["currents_token"], "not-the-token");
    // The JSON writer never emits a key twice.
    let mut writer = currents_mixpanel::JsonEventWriter::new();
    currents_mixpanel::MapToMixpanel::map_into(&event, &keep, &mut writer).expect("mapped");
    let line = String::from_utf8(writer.finish().to_vec()).expect("utf-8");
    assert_eq!(line.matches("\"distinct_id\":").count(), 1, "{line}");
}
