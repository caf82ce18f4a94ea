//! PII policy: the glossary's `[PII]` flags decide which properties are kept,
//! dropped or replaced by a keyed hash. Implemented as a [`PropertySink`]
//! adapter, so the generated mappers stay policy-free.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::sink::{MapWarning, PropertySink};

/// Key of the PII hash. Never printed: `Debug` shows `***`.
#[derive(Clone)]
pub struct HashKey(Vec<u8>);

impl HashKey {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        HashKey(key.into())
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(***)")
    }
}

/// What happens to properties the glossary marks `[PII]`.
#[derive(Debug, Clone, Default)]
pub enum PiiPolicy {
    /// Sent as they are (Braze-compatible).
    #[default]
    Keep,
    /// Removed. `distinct_id` is kept: Mixpanel requires it; use `Hash` to
    /// pseudonymise it.
    Drop,
    /// Replaced by the hex HMAC-SHA256 of the value under the key, so equal
    /// values still join (`distinct_id` included).
    Hash(HashKey),
}

impl PiiPolicy {
    /// The hex HMAC-SHA256 of `value` (`None` for `Keep`/`Drop`).
    pub fn hash(&self, value: &str) -> Option<String> {
        let PiiPolicy::Hash(key) = self else {
            return None;
        };
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
}

/// Applies a [`PiiPolicy`] in front of another sink.
pub struct PiiSink<'a, S> {
    inner: &'a mut S,
    policy: &'a PiiPolicy,
}

impl<'a, S: PropertySink> PiiSink<'a, S> {
    pub fn new(inner: &'a mut S, policy: &'a PiiPolicy) -> Self {
        PiiSink { inner, policy }
    }

    /// True when a PII property must be left out.
    fn drops(&self, key: &str, pii: bool) -> bool {
        pii && matches!(self.policy, PiiPolicy::Drop) && key != "distinct_id"
    }

    fn hashing(&self, pii: bool) -> bool {
        pii && matches!(self.policy, PiiPolicy::Hash(_))
    }

    fn hashed(&self, value: &str) -> String {
        self.policy.hash(value).unwrap_or_default()
    }

    fn hash_json(&self, value: &Value) -> Value {
        match value {
            Value::Null => Value::Null,
            Value::String(s) => Value::String(self.hashed(s)),
            Value::Array(items) => items.iter().map(|v| self.hash_json(v)).collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), self.hash_json(v)))
                .collect(),
            other => Value::String(self.hashed(&other.to_string())),
        }
    }
}

impl<S: PropertySink> PropertySink for PiiSink<'_, S> {
    fn event_name(&mut self, name: &str) {
        self.inner.event_name(name);
    }

    fn str(&mut self, key: &str, value: &str, pii: bool) {
        if self.drops(key, pii) {
        } else if self.hashing(pii) {
            let hashed = self.hashed(value);
            self.inner.str(key, &hashed, pii);
        } else {
            self.inner.str(key, value, pii);
        }
    }

    fn i64(&mut self, key: &str, value: i64, pii: bool) {
        if self.drops(key, pii) {
        } else if self.hashing(pii) {
            let hashed = self.hashed(&value.to_string());
            self.inner.str(key, &hashed, pii);
        } else {
            self.inner.i64(key, value, pii);
        }
    }

    fn f32(&mut self, key: &str, value: f32, pii: bool) {
        if self.drops(key, pii) {
        } else if self.hashing(pii) {
            let hashed = self.hashed(&value.to_string());
            self.inner.str(key, &hashed, pii);
        } else {
            self.inner.f32(key, value, pii);
        }
    }

    fn bool(&mut self, key: &str, value: bool, pii: bool) {
        if self.drops(key, pii) {
        } else if self.hashing(pii) {
            let hashed = self.hashed(if value { "true" } else { "false" });
            self.inner.str(key, &hashed, pii);
        } else {
            self.inner.bool(key, value, pii);
        }
    }

    fn strs(&mut self, key: &str, values: &[String], pii: bool) {
        if self.drops(key, pii) {
        } else if self.hashing(pii) {
            let hashed: Vec<String> = values.iter().map(|v| self.hashed(v)).collect();
            self.inner.strs(key, &hashed, pii);
        } else {
            self.inner.strs(key, values, pii);
        }
    }

    fn opt_strs(&mut self, key: &str, values: &[Option<String>], pii: bool) {
        if self.drops(key, pii) {
        } else if self.hashing(pii) {
            let hashed: Vec<Option<String>> = values
                .iter()
                .map(|v| v.as_ref().map(|v| self.hashed(v)))
                .collect();
            self.inner.opt_strs(key, &hashed, pii);
        } else {
            self.inner.opt_strs(key, values, pii);
        }
    }

    fn json(&mut self, key: &str, value: &Value, pii: bool) {
        if self.drops(key, pii) {
        } else if self.hashing(pii) {
            let hashed = self.hash_json(value);
            self.inner.json(key, &hashed, pii);
        } else {
            self.inner.json(key, value, pii);
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

    #[test]
    fn hash_is_keyed_and_stable() {
        let a = PiiPolicy::Hash(HashKey::new("k1"));
        let b = PiiPolicy::Hash(HashKey::new("k2"));
        assert_eq!(a.hash("x"), a.hash("x"));
        assert_ne!(a.hash("x"), b.hash("x"));
        assert_eq!(a.hash("x").map(|h| h.len()), Some(64));
        assert!(!format!("{a:?}").contains("k1"));
    }

    #[test]
    fn drop_keeps_distinct_id_and_non_pii() {
        let mut sink = ValueSink::default();
        let policy = PiiPolicy::Drop;
        let mut pii = PiiSink::new(&mut sink, &policy);
        pii.str("distinct_id", "user-1", true);
        pii.str("email_address", "a@b.c", true);
        pii.str("campaign_id", "c", false);
        let keys: Vec<_> = sink.event.properties.keys().cloned().collect();
        assert_eq!(keys, ["campaign_id", "distinct_id"]);
    }
}
