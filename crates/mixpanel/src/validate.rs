//! Pre-validation against the `/import` rules (see [`Validator`]).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::ids::is_valid_insert_id;
use crate::prepare::{IdState, Mapped};

/// 1971-01-01T00:00:00Z.
pub const MIN_TIME: i64 = 31_536_000;
/// Seconds this large are milliseconds (10^11 s is in the year 5138).
pub const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// Per-event limits of `/import`. Defaults are the documented ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// Properties must be fewer than this.
    pub max_properties: usize,
    /// Deepest nesting allowed inside a property value.
    pub max_depth: usize,
    /// Arrays must have fewer elements than this.
    pub max_array_len: usize,
    /// Nested objects must have fewer keys than this.
    pub max_object_keys: usize,
    /// Serialized events must be smaller than this ("< 1 MB", taken as 10^6).
    pub max_event_bytes: usize,
    /// How far ahead of now `time` may be, in seconds.
    pub max_future_secs: i64,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_properties: 255,
            max_depth: 3,
            max_array_len: 255,
            max_object_keys: 255,
            max_event_bytes: 1_000_000,
            max_future_secs: 3600,
        }
    }
}

/// Why an event is not sent. [`Rejection::reason`] is a stable snake_case key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    MissingEventName,
    MissingDistinctId,
    PlaceholderDistinctId,
    MissingInsertId,
    InvalidInsertId,
    PlaceholderInsertId,
    MissingTime,
    TimeInMilliseconds,
    TimeBefore1971,
    TimeInFuture,
    TooManyProperties,
    NestingTooDeep,
    ArrayTooLong,
    ObjectTooManyKeys,
    EventTooLarge,
}

impl Rejection {
    pub const ALL: [Rejection; 15] = [
        Rejection::MissingEventName,
        Rejection::MissingDistinctId,
        Rejection::PlaceholderDistinctId,
        Rejection::MissingInsertId,
        Rejection::InvalidInsertId,
        Rejection::PlaceholderInsertId,
        Rejection::MissingTime,
        Rejection::TimeInMilliseconds,
        Rejection::TimeBefore1971,
        Rejection::TimeInFuture,
        Rejection::TooManyProperties,
        Rejection::NestingTooDeep,
        Rejection::ArrayTooLong,
        Rejection::ObjectTooManyKeys,
        Rejection::EventTooLarge,
    ];

    pub const fn reason(self) -> &'static str {
        match self {
            Rejection::MissingEventName => "missing_event_name",
            Rejection::MissingDistinctId => "missing_distinct_id",
            Rejection::PlaceholderDistinctId => "placeholder_distinct_id",
            Rejection::MissingInsertId => "missing_insert_id",
            Rejection::InvalidInsertId => "invalid_insert_id",
            Rejection::PlaceholderInsertId => "placeholder_insert_id",
            Rejection::MissingTime => "missing_time",
            Rejection::TimeInMilliseconds => "time_in_milliseconds",
            Rejection::TimeBefore1971 => "time_before_1971",
            Rejection::TimeInFuture => "time_in_future",
            Rejection::TooManyProperties => "too_many_properties",
            Rejection::NestingTooDeep => "nesting_too_deep",
            Rejection::ArrayTooLong => "array_too_long",
            Rejection::ObjectTooManyKeys => "object_too_many_keys",
            Rejection::EventTooLarge => "event_too_large",
        }
    }

    /// The Mixpanel field the rule is about.
    pub const fn field(self) -> &'static str {
        match self {
            Rejection::MissingEventName => "event",
            Rejection::MissingDistinctId | Rejection::PlaceholderDistinctId => {
                "properties.distinct_id"
            }
            Rejection::MissingInsertId
            | Rejection::InvalidInsertId
            | Rejection::PlaceholderInsertId => "properties.$insert_id",
            Rejection::MissingTime
            | Rejection::TimeInMilliseconds
            | Rejection::TimeBefore1971
            | Rejection::TimeInFuture => "properties.time",
            Rejection::TooManyProperties
            | Rejection::NestingTooDeep
            | Rejection::ArrayTooLong
            | Rejection::ObjectTooManyKeys => "properties",
            Rejection::EventTooLarge => "event",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Rejection {}
/// Pre-validation of mapped events against the documented `/import` rules
/// (strict mode), so events Mixpanel would refuse are never sent.
///
/// Rules, in the order they are checked (first violation wins):
///
/// | reason | rule |
/// |---|---|
/// | `missing_event_name` | `event` is empty |
/// | `missing_distinct_id` | no `distinct_id` property (`""` is allowed: "no user") |
/// | `placeholder_distinct_id` | `distinct_id` is a placeholder such as `null`, `anon`, `0` ([`crate::PLACEHOLDER_IDS`]) |
/// | `missing_insert_id` | no `$insert_id` |
/// | `invalid_insert_id` | `$insert_id` empty, longer than 36 bytes or not `[A-Za-z0-9-]` |
/// | `placeholder_insert_id` | `$insert_id` is a placeholder |
/// | `missing_time` | no integer `time` |
/// | `time_in_milliseconds` | `time` ≥ 10^11: seconds that large are past year 5000, so it is a millisecond value |
/// | `time_before_1971` | `time` < 1971-01-01T00:00:00Z (31 536 000) |
/// | `time_in_future` | `time` more than 1 h after "now" (slightly ahead is accepted; Mixpanel clamps it) |
/// | `too_many_properties` | 255 properties or more |
/// | `nesting_too_deep` | a property value nests objects/arrays deeper than 3 levels |
/// | `array_too_long` | an array with 255 elements or more |
/// | `object_too_many_keys` | a nested object with 255 keys or more |
/// | `event_too_large` | serialized event ≥ 1 000 000 bytes |
///
/// **Milliseconds are rejected, not converted.** Braze Currents `time` is in
/// seconds and the mappers write it unchanged, so a millisecond value means the
/// input is not what we think it is; converting it would silently change the
/// dedup tuple `(event, distinct_id, time, $insert_id)` between runs that do
/// and do not convert. The dead letter keeps it for inspection.
///
/// "Now" comes from the validator's clock ([`Validator::now`]): the system
/// clock, or a fixed instant ([`Validator::at`]) so the future rule is
/// testable and one run judges every event by the same rules.
///
/// Checks mapped events against [`EventLimits`], by one clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Validator {
    pub limits: EventLimits,
    /// "Now" in epoch seconds; `None`: the system clock.
    pub fixed_now: Option<i64>,
}

/// Seconds since the epoch now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Validator {
    pub fn new(limits: EventLimits) -> Self {
        Validator {
            limits,
            fixed_now: None,
        }
    }

    /// A validator whose "now" is `now` (epoch seconds).
    pub fn at(now: i64) -> Self {
        Validator {
            fixed_now: Some(now),
            ..Validator::default()
        }
    }

    /// "Now" by this validator's clock. Read it once per batch of events
    /// (it is a system call) and pass it to [`Validator::validate`].
    pub fn now(&self) -> i64 {
        self.fixed_now.unwrap_or_else(now_secs)
    }

    /// Checks one mapped event with `now` (from [`Validator::now`]) as the
    /// current time; the first rule it breaks wins.
    pub fn validate(&self, event: &Mapped<'_>, now: i64) -> Result<(), Rejection> {
        let limits = &self.limits;
        let head = event.head;
        if !head.named {
            return Err(Rejection::MissingEventName);
        }
        match head.distinct_id {
            IdState::Missing => return Err(Rejection::MissingDistinctId),
            IdState::Placeholder => return Err(Rejection::PlaceholderDistinctId),
            IdState::Present => {}
        }
        match head.insert_id.as_deref() {
            None => return Err(Rejection::MissingInsertId),
            Some(id) if crate::is_placeholder_id(id) => {
                return Err(Rejection::PlaceholderInsertId);
            }
            Some(id) if !is_valid_insert_id(id) => return Err(Rejection::InvalidInsertId),
            Some(_) => {}
        }
        match head.time {
            None => return Err(Rejection::MissingTime),
            Some(t) if t >= MILLIS_THRESHOLD => return Err(Rejection::TimeInMilliseconds),
            Some(t) if t < MIN_TIME => return Err(Rejection::TimeBefore1971),
            Some(t) if t > now.saturating_add(limits.max_future_secs) => {
                return Err(Rejection::TimeInFuture);
            }
            Some(_) => {}
        }
        let shape = event.shape;
        if shape.properties >= limits.max_properties {
            return Err(Rejection::TooManyProperties);
        }
        if shape.max_depth > limits.max_depth {
            return Err(Rejection::NestingTooDeep);
        }
        if shape.max_array_len >= limits.max_array_len {
            return Err(Rejection::ArrayTooLong);
        }
        if shape.max_object_keys >= limits.max_object_keys {
            return Err(Rejection::ObjectTooManyKeys);
        }
        if event.json.len() >= limits.max_event_bytes {
            return Err(Rejection::EventTooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::EventHead;
    use crate::sink::EventShape;

    const NOW: i64 = 1_768_435_200;

    fn validate_at(
        v: &Validator,
        head: &EventHead,
        shape: EventShape,
        bytes: usize,
    ) -> Result<(), Rejection> {
        let json = vec![b' '; bytes];
        let mapped = Mapped {
            json: &json,
            shape,
            head,
            warnings: &[],
        };
        v.validate(&mapped, NOW)
    }

    fn good() -> EventHead {
        EventHead {
            named: true,
            distinct_id: IdState::Present,
            insert_id: Some("0b5a1c2e-aaaa-4bbb-8ccc-123456789abc".into()),
            time: Some(NOW - 10),
        }
    }

    fn check(head: EventHead) -> Result<(), Rejection> {
        validate_at(&Validator::default(), &head, EventShape::default(), 100)
    }

    #[test]
    fn accepts_a_normal_event() {
        assert_eq!(check(good()), Ok(()));
        assert_eq!(Validator::at(NOW).now(), NOW);
    }

    #[test]
    fn head_rules() {
        type Case = (fn(&mut EventHead), Rejection);
        let cases: Vec<Case> = vec![
            (|h| h.named = false, Rejection::MissingEventName),
            (
                |h| h.distinct_id = IdState::Missing,
                Rejection::MissingDistinctId,
            ),
            (
                |h| h.distinct_id = IdState::Placeholder,
                Rejection::PlaceholderDistinctId,
            ),
            (|h| h.insert_id = None, Rejection::MissingInsertId),
            (
                |h| h.insert_id = Some("a".repeat(37)),
                Rejection::InvalidInsertId,
            ),
            (
                |h| h.insert_id = Some("abc_def".into()),
                Rejection::InvalidInsertId,
            ),
            (
                |h| h.insert_id = Some(String::new()),
                Rejection::InvalidInsertId,
            ),
            (
                |h| h.insert_id = Some("NULL".into()),
                Rejection::PlaceholderInsertId,
            ),
            (|h| h.time = None, Rejection::MissingTime),
            (|h| h.time = Some(NOW * 1000), Rejection::TimeInMilliseconds),
            (|h| h.time = Some(MIN_TIME - 1), Rejection::TimeBefore1971),
            (|h| h.time = Some(NOW + 3601), Rejection::TimeInFuture),
        ];
        for (change, expected) in cases {
            let mut head = good();
            change(&mut head);
            assert_eq!(check(head), Err(expected));
        }
        let mut head = good();
        head.time = Some(NOW + 3600);
        assert_eq!(check(head), Ok(()), "up to one hour ahead is accepted");
        let mut head = good();
        head.time = Some(MIN_TIME);
        assert_eq!(check(head), Ok(()));
        let mut head = good();
        head.insert_id = Some("a".repeat(36));
        assert_eq!(check(head), Ok(()));
    }

    #[test]
    fn shape_rules() {
        let v = Validator::default();
        let base = EventShape {
            properties: 254,
            max_array_len: 254,
            max_object_keys: 254,
            max_depth: 3,
        };
        assert_eq!(validate_at(&v, &good(), base, 999_999), Ok(()));
        let cases = [
            (
                EventShape {
                    properties: 255,
                    ..base
                },
                100,
                Rejection::TooManyProperties,
            ),
            (
                EventShape {
                    max_depth: 4,
                    ..base
                },
                100,
                Rejection::NestingTooDeep,
            ),
            (
                EventShape {
                    max_array_len: 255,
                    ..base
                },
                100,
                Rejection::ArrayTooLong,
            ),
            (
                EventShape {
                    max_object_keys: 255,
                    ..base
                },
                100,
                Rejection::ObjectTooManyKeys,
            ),
            (base, 1_000_000, Rejection::EventTooLarge),
        ];
        for (shape, bytes, expected) in cases {
            assert_eq!(validate_at(&v, &good(), shape, bytes), Err(expected));
        }
    }

    #[test]
    fn reasons_are_unique_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Rejection::ALL {
            assert!(
                r.reason()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
            );
            assert!(seen.insert(r.reason()));
        }
    }
}
