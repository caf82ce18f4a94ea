//! The identifier rules of `/import`, in one place: which ids Mixpanel
//! refuses as placeholders, what a valid `$insert_id` is, and how a Braze
//! event id that is not one becomes one.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::sink::{Key, key};

/// Placeholder ids Mixpanel rejects as `distinct_id` or `$insert_id`
/// (compared case-insensitively).
pub const PLACEHOLDER_IDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "<nil>",
    "undefined",
    "unknown",
    "0",
    "-1",
    "true",
    "false",
    "[]",
    "{}",
];

/// Whether Mixpanel treats `id` as a placeholder.
///
/// ```
/// assert!(currents_mixpanel::is_placeholder_id("NULL"));
/// assert!(!currents_mixpanel::is_placeholder_id("user-1"));
/// ```
pub fn is_placeholder_id(id: &str) -> bool {
    /// Bit `n` set when a placeholder is `n` bytes long: every id is checked
    /// (several times an event), and most have a length no placeholder has.
    const LENGTHS: u64 = {
        let mut mask = 0;
        let mut i = 0;
        while i < PLACEHOLDER_IDS.len() {
            assert!(PLACEHOLDER_IDS[i].len() < 64);
            mask |= 1 << PLACEHOLDER_IDS[i].len();
            i += 1;
        }
        mask
    };
    id.len() < 64
        && LENGTHS & (1 << id.len()) != 0
        && PLACEHOLDER_IDS.iter().any(|p| p.eq_ignore_ascii_case(id))
}

/// Most bytes of an `$insert_id`.
pub const MAX_INSERT_ID_LEN: usize = 36;

/// Mixpanel takes at most 36 bytes of `[A-Za-z0-9-]`, and not a placeholder.
pub fn is_valid_insert_id(id: &str) -> bool {
    /// The bytes of `[A-Za-z0-9-]`: every id is checked (twice: mapped,
    /// validated), so a lookup without early exits instead of two tests.
    const ALLOWED: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            table[b] = c.is_ascii_alphanumeric() || c == b'-';
            b += 1;
        }
        table
    };
    !id.is_empty()
        && id.len() <= MAX_INSERT_ID_LEN
        && id.bytes().fold(true, |ok, b| ok & ALLOWED[usize::from(b)])
        && !is_placeholder_id(id)
}

/// Property that keeps the Braze `id` when `$insert_id` had to be derived.
pub const ORIGINAL_ID_PROPERTY: &str = ORIGINAL_ID_KEY.name();
pub(crate) const ORIGINAL_ID_KEY: Key<'static> = key!("braze_event_id");

/// The `$insert_id` for a Braze event id: the id itself when Mixpanel accepts
/// it, else a deterministic hash of it (32 hex characters), so a re-sent event
/// always deduplicates.
///
/// ```
/// use currents_mixpanel::insert_id;
/// assert_eq!(insert_id("0b5a1c2e-aaaa-4bbb-8ccc-123456789abc"), "0b5a1c2e-aaaa-4bbb-8ccc-123456789abc");
/// assert_eq!(insert_id("not valid!").len(), 32);
/// ```
pub fn insert_id(id: &str) -> Cow<'_, str> {
    if is_valid_insert_id(id) {
        return Cow::Borrowed(id);
    }
    let digest = Sha256::digest(id.as_bytes());
    let mut hex = String::with_capacity(32);
    for byte in &digest[..16] {
        hex.push_str(&format!("{byte:02x}"));
    }
    Cow::Owned(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_insert_ids_are_36_bytes_of_alphanumerics_and_dashes() {
        for b in 0u8..128 {
            let id = format!("a{}b", char::from(b));
            let allowed = b.is_ascii_alphanumeric() || b == b'-';
            assert_eq!(is_valid_insert_id(&id), allowed, "{b:#x}");
        }
        assert!(!is_valid_insert_id("aé"));
        assert!(!is_valid_insert_id(""));
        assert!(is_valid_insert_id(&"a".repeat(MAX_INSERT_ID_LEN)));
        assert!(!is_valid_insert_id(&"a".repeat(MAX_INSERT_ID_LEN + 1)));
        assert!(!is_valid_insert_id("00000000-0000-0000-0000-000000000000"));
        assert!(!is_valid_insert_id("Undefined"));
    }

    #[test]
    fn placeholders_match_in_any_case_and_nothing_else_does() {
        for placeholder in PLACEHOLDER_IDS {
            assert!(is_placeholder_id(placeholder), "{placeholder}");
            assert!(is_placeholder_id(&placeholder.to_ascii_uppercase()));
            // The same length, one byte off; one byte longer; one shorter.
            let off = format!("{}x", &placeholder[..placeholder.len() - 1]);
            assert!(!is_placeholder_id(&off), "{off}");
            assert!(!is_placeholder_id(&format!("{placeholder}x")));
            assert!(
                !is_placeholder_id(&placeholder[1..])
                    || PLACEHOLDER_IDS.contains(&&placeholder[1..])
            );
        }
        assert!(!is_placeholder_id(""));
        assert!(!is_placeholder_id(&"0".repeat(64)));
        assert!(!is_placeholder_id(&"0".repeat(200)));
    }
}
