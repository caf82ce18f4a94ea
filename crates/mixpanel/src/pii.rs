//! The PII policy (see [`PiiPolicy`]).

use std::fmt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::read_variable;
use crate::sink::{Key, MapWarning, PropertySink};

/// Shortest hash key accepted, in bytes: a shorter key makes the hashes easy
/// to reverse by trying the likely values (e-mail addresses, phone numbers).
pub const MIN_KEY_LEN: usize = 16;

/// Key of the PII hash. Never printed: `Debug` shows `***`.
#[derive(Clone)]
pub struct HashKey(Vec<u8>);

impl HashKey {
    /// A key of at least [`MIN_KEY_LEN`] bytes.
    ///
    /// ```
    /// use currents_mixpanel::HashKey;
    /// assert!(HashKey::new("short").is_err());
    /// assert!(HashKey::new("a key of sixteen bytes or more").is_ok());
    /// ```
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, PiiError> {
        let key = key.into();
        if key.len() < MIN_KEY_LEN {
            return Err(PiiError::KeyTooShort { len: key.len() });
        }
        Ok(HashKey(key))
    }
}

impl HashKey {
    /// The key from `CURRENTS_PII_KEY`, or from the file `CURRENTS_PII_KEY_FILE`
    /// names (`file`, when given, stands in for that variable), under the
    /// rules of [`crate::read_variable`]: both set is an error, a file holds
    /// the key alone. `None` when neither is set.
    pub fn from_env(file: Option<&Path>) -> Result<Option<Self>, PiiError> {
        let file = file.map(|p| p.display().to_string());
        let lookup = |var: &str| match var {
            "CURRENTS_PII_KEY_FILE" if file.is_some() => file.clone(),
            other => std::env::var(other).ok(),
        };
        read_variable(&lookup, "CURRENTS_PII_KEY", "CURRENTS_PII_KEY_FILE")
            .map_err(|e| PiiError::KeySource(e.to_string()))?
            .map(|key| HashKey::new(key.into_bytes()))
            .transpose()
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(***)")
    }
}

/// What happens to one kind of personal data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PiiAction {
    #[default]
    Keep,
    Drop,
    /// Replaced by the hex HMAC-SHA256 of the value under the key, so equal
    /// values still join.
    Hash,
}

impl PiiAction {
    /// What happens to the user id when nothing is said about it, given
    /// this action for the PII properties: hashed along with them, kept
    /// otherwise (dropping it is not allowed).
    pub fn for_user_id(self) -> PiiAction {
        match self {
            PiiAction::Hash => PiiAction::Hash,
            _ => PiiAction::Keep,
        }
    }
}

/// Why a policy cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PiiError {
    #[error("the PII hash key is {len} bytes; it must be at least {MIN_KEY_LEN}")]
    KeyTooShort { len: usize },
    #[error("hashing PII needs a key: set CURRENTS_PII_KEY or CURRENTS_PII_KEY_FILE")]
    MissingKey,
    /// The key's variable or file could not be read (never holds the key).
    #[error("{0}")]
    KeySource(String),
    #[error("the user id (distinct_id) cannot be dropped: Mixpanel requires it; keep or hash it")]
    UserIdDropped,
}

/// PII policy: the glossary's `[PII]` flags decide which properties are kept,
/// dropped or replaced by a keyed hash. Implemented as a [`PropertySink`]
/// adapter, so the generated mappers stay policy-free; [`crate::MapToMixpanel::map_into`]
/// puts it in front of every sink.
///
/// Two things are decided apart: the PII *properties* (e-mail address, phone
/// number, Braze user id, …) and the *user id* (`distinct_id` and `$user_id`,
/// taken from the PII field `external_user_id`). The user id can be kept or
/// hashed, never dropped: Mixpanel requires a `distinct_id`.
///
/// | policy | PII properties | `distinct_id` / `$user_id` |
/// |---|---|---|
/// | [`PiiPolicy::keep`] | sent as they are | sent as it is |
/// | [`PiiPolicy::drop`] | left out | sent as it is (or hashed, see [`PiiPolicy::new`]) |
/// | [`PiiPolicy::hash`] | HMAC-SHA256 hex | HMAC-SHA256 hex (or kept, see [`PiiPolicy::new`]) |
///
/// What happens to properties the glossary marks `[PII]` (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct PiiPolicy {
    properties: PiiAction,
    user_id: PiiAction,
    key: Option<HashKey>,
}

impl PiiPolicy {
    /// Everything sent as it is (Braze-compatible).
    pub fn keep() -> Self {
        Self::default()
    }

    /// PII properties left out; the user id kept.
    pub fn drop() -> Self {
        PiiPolicy {
            properties: PiiAction::Drop,
            ..Self::default()
        }
    }

    /// PII properties and the user id hashed with `key`.
    pub fn hash(key: HashKey) -> Self {
        PiiPolicy {
            properties: PiiAction::Hash,
            user_id: PiiAction::Hash,
            key: Some(key),
        }
    }

    /// Any combination; `key` is needed when something is hashed.
    ///
    /// ```
    /// use currents_mixpanel::{HashKey, PiiAction, PiiPolicy};
    /// let key = HashKey::new("0123456789abcdef").unwrap();
    /// let policy = PiiPolicy::new(PiiAction::Drop, PiiAction::Hash, Some(key)).unwrap();
    /// assert_eq!(policy.user_id(), PiiAction::Hash);
    /// ```
    pub fn new(
        properties: PiiAction,
        user_id: PiiAction,
        key: Option<HashKey>,
    ) -> Result<Self, PiiError> {
        if user_id == PiiAction::Drop {
            return Err(PiiError::UserIdDropped);
        }
        let hashes = properties == PiiAction::Hash || user_id == PiiAction::Hash;
        if hashes && key.is_none() {
            return Err(PiiError::MissingKey);
        }
        Ok(PiiPolicy {
            properties,
            user_id,
            key: key.filter(|_| hashes),
        })
    }

    /// [`PiiPolicy::new`] with the key from the environment
    /// ([`HashKey::from_env`]), read only when something is hashed.
    pub fn from_env(
        properties: PiiAction,
        user_id: PiiAction,
        key_file: Option<&Path>,
    ) -> Result<Self, PiiError> {
        let key = if properties == PiiAction::Hash || user_id == PiiAction::Hash {
            Some(HashKey::from_env(key_file)?.ok_or(PiiError::MissingKey)?)
        } else {
            None
        };
        Self::new(properties, user_id, key)
    }

    pub fn properties(&self) -> PiiAction {
        self.properties
    }

    pub fn user_id(&self) -> PiiAction {
        self.user_id
    }

    /// Nothing is changed.
    pub fn is_keep(&self) -> bool {
        self.properties == PiiAction::Keep && self.user_id == PiiAction::Keep
    }

    /// The hex HMAC-SHA256 of `value` (`None` without a key).
    pub fn hash_value(&self, value: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0).ok()?;
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push_str(&format!("{byte:02x}"));
        }
        Some(hex)
    }

    /// The action for a property: the user id keys follow the user-id
    /// action, other PII the property action.
    fn action(&self, key: &str, pii: bool) -> PiiAction {
        if !pii {
            PiiAction::Keep
        } else if matches!(key, "distinct_id" | "$user_id") {
            self.user_id
        } else {
            self.properties
        }
    }

    fn hash_json(&self, value: &Value) -> Value {
        match value {
            Value::Null => Value::Null,
            Value::String(s) => Value::String(self.hash_value(s).unwrap_or_default()),
            Value::Array(items) => items.iter().map(|v| self.hash_json(v)).collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), self.hash_json(v)))
                .collect(),
            other => Value::String(self.hash_value(&other.to_string()).unwrap_or_default()),
        }
    }

    /// Applies the policy to an input record in flat form (the dead letter's
    /// `input`), so no file holds in clear what the events do not:
    /// `is_pii(field)` says which fields are personal data; the user id is
    /// `external_user_id`.
    pub fn scrub_record(&self, record: &mut Map<String, Value>, is_pii: impl Fn(&str) -> bool) {
        if self.is_keep() {
            return;
        }
        let names: Vec<String> = record.keys().filter(|k| is_pii(k)).cloned().collect();
        for name in names {
            let key = if name == "external_user_id" {
                "distinct_id"
            } else {
                name.as_str()
            };
            match self.action(key, true) {
                PiiAction::Keep => {}
                PiiAction::Drop => {
                    record.remove(&name);
                }
                PiiAction::Hash => {
                    if let Some(value) = record.get_mut(&name) {
                        *value = self.hash_json(value);
                    }
                }
            }
        }
    }
}

/// Applies a [`PiiPolicy`] in front of another sink.
pub(crate) struct PiiSink<'a, S> {
    inner: &'a mut S,
    policy: &'a PiiPolicy,
}

impl<'a, S: PropertySink> PiiSink<'a, S> {
    pub(crate) fn new(inner: &'a mut S, policy: &'a PiiPolicy) -> Self {
        PiiSink { inner, policy }
    }

    fn hashed(&self, value: &str) -> String {
        self.policy.hash_value(value).unwrap_or_default()
    }
}

impl<S: PropertySink> PropertySink for PiiSink<'_, S> {
    fn event_name(&mut self, name: &str) {
        self.inner.event_name(name);
    }

    fn str(&mut self, key: Key<'_>, value: &str, pii: bool) {
        match self.policy.action(key.name(), pii) {
            PiiAction::Keep => self.inner.str(key, value, pii),
            PiiAction::Drop => {}
            PiiAction::Hash => {
                let hashed = self.hashed(value);
                self.inner.str(key, &hashed, pii);
            }
        }
    }

    fn i64(&mut self, key: Key<'_>, value: i64, pii: bool) {
        match self.policy.action(key.name(), pii) {
            PiiAction::Keep => self.inner.i64(key, value, pii),
            PiiAction::Drop => {}
            PiiAction::Hash => {
                let hashed = self.hashed(&value.to_string());
                self.inner.str(key, &hashed, pii);
            }
        }
    }

    fn f32(&mut self, key: Key<'_>, value: f32, pii: bool) {
        match self.policy.action(key.name(), pii) {
            PiiAction::Keep => self.inner.f32(key, value, pii),
            PiiAction::Drop => {}
            PiiAction::Hash => {
                let hashed = self.hashed(&value.to_string());
                self.inner.str(key, &hashed, pii);
            }
        }
    }

    fn bool(&mut self, key: Key<'_>, value: bool, pii: bool) {
        match self.policy.action(key.name(), pii) {
            PiiAction::Keep => self.inner.bool(key, value, pii),
            PiiAction::Drop => {}
            PiiAction::Hash => {
                let hashed = self.hashed(if value { "true" } else { "false" });
                self.inner.str(key, &hashed, pii);
            }
        }
    }

    fn strs(&mut self, key: Key<'_>, values: &[String], pii: bool) {
        match self.policy.action(key.name(), pii) {
            PiiAction::Keep => self.inner.strs(key, values, pii),
            PiiAction::Drop => {}
            PiiAction::Hash => {
                let hashed: Vec<String> = values.iter().map(|v| self.hashed(v)).collect();
                self.inner.strs(key, &hashed, pii);
            }
        }
    }

    fn opt_strs(&mut self, key: Key<'_>, values: &[Option<String>], pii: bool) {
        match self.policy.action(key.name(), pii) {
            PiiAction::Keep => self.inner.opt_strs(key, values, pii),
            PiiAction::Drop => {}
            PiiAction::Hash => {
                let hashed: Vec<Option<String>> = values
                    .iter()
                    .map(|v| v.as_ref().map(|v| self.hashed(v)))
                    .collect();
                self.inner.opt_strs(key, &hashed, pii);
            }
        }
    }

    fn json(&mut self, key: Key<'_>, value: &Value, pii: bool) {
        match self.policy.action(key.name(), pii) {
            PiiAction::Keep => self.inner.json(key, value, pii),
            PiiAction::Drop => {}
            PiiAction::Hash => {
                let hashed = self.policy.hash_json(value);
                self.inner.json(key, &hashed, pii);
            }
        }
    }

    fn warning(&mut self, warning: MapWarning) {
        self.inner.warning(warning);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValueSink;

    fn key(k: &str) -> HashKey {
        HashKey::new(format!("{k}-padding-to-sixteen-bytes")).unwrap()
    }

    #[test]
    fn hash_is_keyed_and_stable() {
        let a = PiiPolicy::hash(key("k1"));
        let b = PiiPolicy::hash(key("k2"));
        assert_eq!(a.hash_value("x"), a.hash_value("x"));
        assert_ne!(a.hash_value("x"), b.hash_value("x"));
        assert_eq!(a.hash_value("x").map(|h| h.len()), Some(64));
        assert!(!format!("{a:?}").contains("k1"));
    }

    #[test]
    fn short_keys_and_dropped_user_ids_are_refused() {
        assert_eq!(
            HashKey::new("fifteen bytes!!").unwrap_err(),
            PiiError::KeyTooShort { len: 15 }
        );
        assert_eq!(
            PiiPolicy::new(PiiAction::Keep, PiiAction::Drop, None).unwrap_err(),
            PiiError::UserIdDropped
        );
        assert_eq!(
            PiiPolicy::new(PiiAction::Hash, PiiAction::Keep, None).unwrap_err(),
            PiiError::MissingKey
        );
    }

    fn apply(policy: &PiiPolicy) -> Vec<(String, Value)> {
        let mut sink = ValueSink::default();
        let mut pii = PiiSink::new(&mut sink, policy);
        pii.str(crate::sink::key!("distinct_id"), "user-1", true);
        pii.str(crate::sink::key!("$user_id"), "user-1", true);
        pii.str(crate::sink::key!("email_address"), "a@b.c", true);
        pii.str(crate::sink::key!("campaign_id"), "c", false);
        sink.event.properties.into_iter().collect()
    }

    #[test]
    fn drop_keeps_the_user_id_and_non_pii() {
        let keys: Vec<String> = apply(&PiiPolicy::drop()).into_iter().map(|p| p.0).collect();
        assert_eq!(keys, ["$user_id", "campaign_id", "distinct_id"]);
    }

    #[test]
    fn user_id_and_properties_are_chosen_apart() {
        let policy = PiiPolicy::new(PiiAction::Hash, PiiAction::Keep, Some(key("k"))).unwrap();
        let props: std::collections::BTreeMap<_, _> = apply(&policy).into_iter().collect();
        assert_eq!(props["distinct_id"], "user-1");
        assert_eq!(props["$user_id"], "user-1");
        assert_eq!(props["email_address"].as_str().map(str::len), Some(64));
        let policy = PiiPolicy::new(PiiAction::Drop, PiiAction::Hash, Some(key("k"))).unwrap();
        let props: std::collections::BTreeMap<_, _> = apply(&policy).into_iter().collect();
        assert_eq!(props["distinct_id"].as_str().map(str::len), Some(64));
        assert_eq!(props["distinct_id"], props["$user_id"]);
        assert!(!props.contains_key("email_address"));
    }

    #[test]
    fn records_are_scrubbed_like_events() {
        let mut record: Map<String, Value> = serde_json::from_str(
            r#"{"external_user_id":"u1","email_address":"a@b.c","campaign_id":"c"}"#,
        )
        .unwrap();
        let policy = PiiPolicy::hash(key("k"));
        policy.scrub_record(&mut record, |f| f != "campaign_id");
        assert_eq!(
            record["external_user_id"].as_str(),
            policy.hash_value("u1").as_deref()
        );
        assert_eq!(record["campaign_id"], "c");
        let mut record: Map<String, Value> =
            serde_json::from_str(r#"{"external_user_id":"u1","email_address":"a@b.c"}"#).unwrap();
        PiiPolicy::drop().scrub_record(&mut record, |_| true);
        assert_eq!(
            Value::Object(record),
            serde_json::json!({"external_user_id":"u1"})
        );
    }
}

#[cfg(test)]
mod entry_points {
    use currents_events::sample::{Fill, sample_event};
    use currents_events::{EmailSend, Event, event_type_info};

    use crate::{HashKey, MapOptions, MapToMixpanel, PiiPolicy, ValueSink};

    /// The policy holds whichever type the mapping starts from.
    #[test]
    fn a_concrete_type_applies_the_policy_too() {
        let info = event_type_info("users.messages.email.Send").unwrap();
        let Event::EmailSend(send) = sample_event(info, 1, Fill::All) else {
            unreachable!()
        };
        let send: EmailSend<'_> = send;
        let key = HashKey::new("a-key-of-16-bytes-or-more").unwrap();
        let options = MapOptions::default().with_pii(PiiPolicy::hash(key));
        let mut concrete = ValueSink::default();
        send.map_into(&options, &mut concrete).unwrap();
        let mut through_enum = ValueSink::default();
        Event::EmailSend(send.clone())
            .map_into(&options, &mut through_enum)
            .unwrap();
        assert_eq!(concrete.event, through_enum.event);
        let email = concrete.event.properties["email_address"].as_str().unwrap();
        assert_ne!(email, send.email_address);
        assert_eq!(email.len(), 64);
    }
}
