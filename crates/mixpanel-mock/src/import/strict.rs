//! Mixpanel's strict-mode rules for one event, read either from a parsed
//! value or straight off the wire (when events are not kept, so a benchmark
//! does not pay for building every value).

use serde_json::Value;

use crate::PLACEHOLDER_IDS;

/// What the strict-mode rules look at in one event.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Parts {
    object: bool,
    unexpected_key: bool,
    /// `event` is a non-empty string.
    named: bool,
    properties: Option<Props>,
    /// `properties.$insert_id` when it is a string.
    pub insert_id: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
struct Props {
    len: usize,
    /// `time` when it is an integer.
    time: Option<i64>,
    /// `distinct_id`: absent, a string, or something else (`Err`).
    distinct_id: Option<Result<String, ()>>,
}

impl Parts {
    pub fn of(event: &Value) -> Parts {
        let Some(object) = event.as_object() else {
            return Parts::default();
        };
        let properties = object.get("properties").and_then(Value::as_object);
        Parts {
            object: true,
            unexpected_key: object.keys().any(|k| k != "event" && k != "properties"),
            named: object
                .get("event")
                .and_then(Value::as_str)
                .is_some_and(|name| !name.is_empty()),
            properties: properties.map(|p| Props {
                len: p.len(),
                time: p.get("time").and_then(Value::as_i64),
                distinct_id: p.get("distinct_id").map(|id| match id {
                    Value::String(id) => Ok(id.clone()),
                    _ => Err(()),
                }),
            }),
            insert_id: properties
                .and_then(|p| p.get("$insert_id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// Reads [`Parts`] straight from JSON, skipping every other value.
pub(super) struct PartsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for PartsSeed {
    type Value = Parts;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Parts, D::Error> {
        d.deserialize_any(PartsVisitor)
    }
}

struct PartsVisitor;

/// Any non-object JSON value is "not an object" ([`Parts::default`]).
macro_rules! not_an_object {
    ($($name:ident: $ty:ty),*) => {$(
        fn $name<E: serde::de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    )*};
}

impl<'de> serde::de::Visitor<'de> for PartsVisitor {
    type Value = Parts;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    not_an_object!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: serde::de::Error>(self) -> Result<Parts, E> {
        Ok(Parts::default())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Parts, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Parts::default())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Parts, A::Error> {
        let mut parts = Parts {
            object: true,
            ..Parts::default()
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "event" => {
                    let name: Value = map.next_value()?;
                    parts.named = name.as_str().is_some_and(|n| !n.is_empty());
                }
                "properties" => {
                    let (props, insert_id) = map.next_value_seed(PropsSeed)?;
                    parts.properties = props;
                    parts.insert_id = insert_id;
                }
                _ => {
                    parts.unexpected_key = true;
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(parts)
    }
}

struct PropsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for PropsSeed {
    type Value = (Option<Props>, Option<String>);
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(PropsSeed)
    }
}

impl<'de> serde::de::Visitor<'de> for PropsSeed {
    type Value = (Option<Props>, Option<String>);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    not_an_object!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Default::default())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Default::default())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut props = Props::default();
        let mut insert_id = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            props.len += 1;
            match key.as_ref() {
                "time" => props.time = map.next_value::<Value>()?.as_i64(),
                "distinct_id" => {
                    props.distinct_id = Some(match map.next_value::<Value>()? {
                        Value::String(id) => Ok(id),
                        _ => Err(()),
                    })
                }
                "$insert_id" => insert_id = map.next_value::<Value>()?.as_str().map(str::to_owned),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok((Some(props), insert_id))
    }
}

/// Strict-mode checks of one event: `(field, message)` of the first failure.
pub(super) fn check(parts: &Parts, now: i64) -> Option<(&'static str, String)> {
    if !parts.object {
        return Some(("event", "event must be an object".into()));
    }
    if parts.unexpected_key {
        return Some(("event", "unexpected top-level key".into()));
    }
    if !parts.named {
        return Some(("event", "'event' must be a non-empty string".into()));
    }
    let Some(properties) = &parts.properties else {
        return Some(("properties", "'properties' must be an object".into()));
    };
    if properties.len >= 255 {
        return Some(("properties", "too many properties".into()));
    }
    match properties.time {
        None => return Some(("properties.time", "'properties.time' is required".into())),
        Some(t) => {
            let secs = if t >= 100_000_000_000 { t / 1000 } else { t };
            if secs < 31_536_000 {
                return Some((
                    "properties.time",
                    "'properties.time' is invalid: must be specified as seconds since epoch after 1971".into(),
                ));
            }
            if secs > now + 3600 {
                return Some((
                    "properties.time",
                    "'properties.time' is more than 1 hour in the future".into(),
                ));
            }
        }
    }
    match &properties.distinct_id {
        Some(Ok(id)) if is_placeholder(id) => {
            return Some((
                "properties.distinct_id",
                format!("'properties.distinct_id' is invalid: {id:?} is a placeholder"),
            ));
        }
        Some(Ok(_)) => {}
        Some(Err(())) => {
            return Some((
                "properties.distinct_id",
                "'properties.distinct_id' must be a string".into(),
            ));
        }
        None => {
            return Some((
                "properties.distinct_id",
                "'properties.distinct_id' is required".into(),
            ));
        }
    }
    match parts.insert_id.as_deref() {
        None => Some((
            "properties.$insert_id",
            "'properties.$insert_id' is required".into(),
        )),
        Some(id)
            if id.is_empty()
                || id.len() > 36
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                || is_placeholder(id) =>
        {
            Some((
                "properties.$insert_id",
                "'properties.$insert_id' must be at most 36 alphanumeric or '-' characters".into(),
            ))
        }
        Some(_) => None,
    }
}

fn is_placeholder(id: &str) -> bool {
    PLACEHOLDER_IDS.iter().any(|p| p.eq_ignore_ascii_case(id))
}

/// [`check`] of a whole event value.
#[cfg(test)]
fn validate(event: &Value, now: i64) -> Option<(&'static str, String)> {
    check(&Parts::of(event), now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn streamed_parts_match_parts_of_the_value() {
        let cases = [
            json!({"event": "E", "properties": {"time": 1_700_000_000, "distinct_id": "u", "$insert_id": "a-1", "x": [1, {"y": null}]}}),
            json!({"event": "", "properties": {"time": 1.5, "distinct_id": 7, "$insert_id": 3}}),
            json!({"event": "E", "properties": [1, 2], "extra": true}),
            json!({"event": null, "properties": "text"}),
            json!({"properties": {}}),
            json!([1, 2, 3]),
            json!("event"),
            json!(null),
            json!({"event": "E", "properties": {"distinct_id": "0", "time": -5}}),
        ];
        for case in cases {
            let text = case.to_string();
            let streamed = serde::de::DeserializeSeed::deserialize(
                PartsSeed,
                &mut serde_json::Deserializer::from_str(&text),
            )
            .unwrap();
            assert_eq!(streamed, Parts::of(&case), "{text}");
        }
    }

    #[test]
    fn validates_strict_fields() {
        let now = 1_768_435_200;
        let good =
            json!({"event":"e","properties":{"time":now,"distinct_id":"u","$insert_id":"abc-1"}});
        assert_eq!(validate(&good, now), None);
        let ms = json!({"event":"e","properties":{"time":now*1000,"distinct_id":"u","$insert_id":"abc-1"}});
        assert_eq!(validate(&ms, now), None);
        let bad = json!({"event":"e","properties":{"time":now,"distinct_id":"null","$insert_id":"abc-1"}});
        assert_eq!(validate(&bad, now).unwrap().0, "properties.distinct_id");
        let bad = json!({"event":"e","properties":{"time":now + 4000,"distinct_id":"u","$insert_id":"abc-1"}});
        assert_eq!(validate(&bad, now).unwrap().0, "properties.time");
        let bad =
            json!({"event":"e","properties":{"time":now,"distinct_id":"u","$insert_id":"a_b"}});
        assert_eq!(validate(&bad, now).unwrap().0, "properties.$insert_id");
    }
}
