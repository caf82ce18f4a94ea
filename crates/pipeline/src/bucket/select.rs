//! Which objects of a listing a run takes (see [`Select`]).

use std::fmt;
use std::str::FromStr;

use super::{BucketError, CurrentsKey, Hour};

/// One runner's share of a bucket: `K/N` takes the objects whose key hashes
/// to `K` modulo `N`, so `N` runners with `0/N` … `N-1/N` cover every object
/// exactly once.
///
/// The hash is 64-bit FNV-1a of the object's key (its full path in the
/// bucket, as UTF-8 bytes, without the bucket name): fixed by this
/// definition, so it is the same on every machine and in every version.
///
/// ```
/// use currents_pipeline::bucket::Shard;
/// let shard: Shard = "1/3".parse().unwrap();
/// let keys = ["a.avro", "b.avro", "c.avro", "d.avro"];
/// let mine: Vec<_> = keys.iter().filter(|k| shard.takes(k)).collect();
/// let all: usize = (0..3).map(|k| keys.iter().filter(|key| Shard::new(k, 3).unwrap().takes(key)).count()).sum();
/// assert_eq!(all, keys.len());
/// # let _ = mine;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// Shard `index` of `count` (`index < count`).
    pub fn new(index: u64, count: u64) -> Option<Self> {
        (index < count).then_some(Shard { index, count })
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// This shard reads the object at `key`.
    pub fn takes(&self, key: &str) -> bool {
        fnv1a(key.as_bytes()) % self.count == self.index
    }
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl FromStr for Shard {
    type Err = BucketError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BucketError::BadShard(text.to_owned());
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (k, n) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Shard::new(k, n).ok_or_else(bad)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// An event type pattern: `*` matches any run of characters (dots
/// included), `?` one character; everything else itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Glob(pattern.to_owned())
    }

    pub fn matches(&self, text: &str) -> bool {
        let (p, t): (Vec<char>, Vec<char>) = (self.0.chars().collect(), text.chars().collect());
        // Iterative wildcard match: on a mismatch, retry from the last `*`
        // with one more character consumed by it.
        let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
        while j < t.len() {
            if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
                i += 1;
                j += 1;
            } else if i < p.len() && p[i] == '*' {
                star = Some(i);
                mark = j;
                i += 1;
            } else if let Some(s) = star {
                i = s + 1;
                mark += 1;
                j = mark;
            } else {
                return false;
            }
        }
        p[i..].iter().all(|&c| c == '*')
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which objects of a listing are read. Filters look at the key only
/// ([`CurrentsKey`]); objects left out are counted in
/// [`crate::Report::ignored`] by reason:
///
/// | reason | what |
/// |---|---|
/// | `not_a_currents_key` | a key that is neither of Braze's layouts (markers, notes, other files) |
/// | `other_shard` | read by another `--shard` |
/// | `event_type_not_selected` | no `event_types` pattern matches |
/// | `outside_time_range` | its hour is before `since` or not before `until` |
/// | `already_done` | the state has it, with the same size and ETag (or version) |
///
/// ```
/// use currents_pipeline::bucket::{Glob, Select};
/// let mut select = Select::default();
/// select.since = Some("2025-04-01-00".parse().unwrap());
/// select.until = Some("2025-04-02T00:00:00Z".parse().unwrap());
/// select.event_types.push(Glob::new("users.messages.email.*"));
/// select.shard = Some("0/4".parse().unwrap());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Select {
    /// First hour read (inclusive).
    pub since: Option<Hour>,
    /// First hour not read (exclusive).
    pub until: Option<Hour>,
    /// Event types read (any pattern matching); empty: all.
    pub event_types: Vec<Glob>,
    pub shard: Option<Shard>,
}

impl Select {
    /// Why the object at `key` is left out, if it is.
    pub fn reason(&self, key: &str, parsed: Option<&CurrentsKey>) -> Option<&'static str> {
        let Some(parsed) = parsed else {
            return Some("not_a_currents_key");
        };
        if self.shard.is_some_and(|shard| !shard.takes(key)) {
            return Some("other_shard");
        }
        if !self.event_types.is_empty()
            && !self
                .event_types
                .iter()
                .any(|g| g.matches(&parsed.event_type))
        {
            return Some("event_type_not_selected");
        }
        if self.since.is_some_and(|since| parsed.hour < since)
            || self.until.is_some_and(|until| parsed.hour >= until)
        {
            return Some("outside_time_range");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = Glob::new("users.messages.email.*");
        assert!(g.matches("users.messages.email.Open"));
        assert!(g.matches("users.messages.email."));
        assert!(!g.matches("users.messages.sms.Delivery"));
        assert!(Glob::new("*.Open").matches("users.messages.email.Open"));
        assert!(Glob::new("users.*.email.?pen").matches("users.messages.email.Open"));
        assert!(!Glob::new("users.*.Click").matches("users.messages.email.Open"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a*b*c").matches("aXbYbZc"));
        assert!(!Glob::new("a*b*c").matches("aXbYbZ"));
    }

    #[test]
    fn shards_split_keys_exactly_once_and_stably() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        // Published FNV-1a 64 test vector: the hash is fixed across versions.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let keys: Vec<String> = (0..100).map(|i| format!("k/{i}.avro")).collect();
        for n in 1..5 {
            let shards: Vec<Shard> = (0..n).map(|k| Shard::new(k, n).unwrap()).collect();
            for key in &keys {
                assert_eq!(shards.iter().filter(|s| s.takes(key)).count(), 1);
            }
        }
        assert_eq!("1/2".parse::<Shard>().unwrap(), Shard::new(1, 2).unwrap());
        for bad in ["2/2", "1", "a/b", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
