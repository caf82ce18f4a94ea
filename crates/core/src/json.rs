//! The bytes a JSON string cannot hold as they are: `"`, `\` and the control
//! characters below 0x20, exactly the ones serde_json escapes when it writes.
//! The JSON decoder looks for them to find where a string ends (or needs
//! unescaping), the JSON writer to know whether a string needs escaping: one
//! rule for both, checked sixteen bytes at a time.
//!
//! ```
//! use currents_core::json::{escape_at, needs_escape};
//!
//! assert_eq!(escape_at(br#"say "hi""#, 0), 4);
//! assert_eq!(escape_at(br#"say "hi""#, 5), 7);
//! assert!(!needs_escape("plain text, ünïcødé too".as_bytes()));
//! assert!(needs_escape(b"tab\there"));
//! ```

/// Whether JSON escapes `b` inside a string.
#[inline(always)]
pub const fn is_escaped(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// Whether any byte of `bytes` needs an escape in a JSON string: sixteen
/// bytes at a time without an early exit (escapes are rare), the tail as the
/// block that ends the input; 8 to 15 bytes the same way in words, fewer
/// byte by byte.
#[inline]
pub fn needs_escape(bytes: &[u8]) -> bool {
    let n = bytes.len();
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if n >= 16 {
        let mut blocks = bytes.chunks_exact(16);
        let mut any = 0;
        for block in &mut blocks {
            any |= mask_sse2(block);
        }
        if !blocks.remainder().is_empty() {
            any |= mask_sse2(&bytes[n - 16..]);
        }
        return any != 0;
    }
    if n >= 8 {
        let mut any = 0;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            any |= word_hits(word);
        }
        if !words.remainder().is_empty() {
            any |= word_hits(&bytes[n - 8..]);
        }
        return any != 0;
    }
    bytes.iter().any(|&b| is_escaped(b))
}

/// The index of the first byte at or after `from` that JSON escapes, or
/// `bytes.len()` when there is none: sixteen bytes at a time with SSE2 (part
/// of every x86_64), then eight at a time, then one.
#[inline(always)]
pub fn escape_at(bytes: &[u8], mut from: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while let Some(block) = bytes.get(from..from + 16) {
        let hits = mask_sse2(block);
        if hits != 0 {
            return from + hits.trailing_zeros() as usize;
        }
        from += 16;
    }
    escape_at_swar(bytes, from)
}

/// Bit `k` set where `block[k]` (of the first 16) is escaped.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn mask_sse2(block: &[u8]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    assert!(block.len() >= 16);
    // SAFETY: the load reads 16 bytes of `block` (checked above, unaligned
    // loads allowed); the other intrinsics need SSE2, which this build has.
    let hits = unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Below 0x20: the unsigned max of the byte and 0x1f is 0x1f.
        let low = _mm_set1_epi8(0x1f);
        let control = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
    };
    hits as u32
}

/// [`escape_at`] eight bytes at a time (SWAR), then one.
#[inline(always)]
fn escape_at_swar(bytes: &[u8], mut i: usize) -> usize {
    while let Some(word) = bytes.get(i..i + 8) {
        let hits = word_hits(word);
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if is_escaped(b) {
            return i;
        }
        i += 1;
    }
    bytes.len().min(i)
}

/// The high bit of each byte of `word`'s first eight that is escaped. A
/// flagged byte is only ever wrong above an escaped one (a borrow), so the
/// lowest flag, and whether there is any, are exact.
#[inline(always)]
fn word_hits(word: &[u8]) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let w = word
        .first_chunk::<8>()
        .map_or(0, |bytes| u64::from_le_bytes(*bytes));
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    (quote.wrapping_sub(ONES) & !quote
        | backslash.wrapping_sub(ONES) & !backslash
        | w.wrapping_sub(ONES * 0x20) & !w)
        & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8], from: usize) -> usize {
        (from..bytes.len())
            .find(|&i| is_escaped(bytes[i]))
            .unwrap_or(bytes.len())
    }

    #[test]
    fn finds_the_first_escaped_byte_from_every_offset() {
        for len in 0..70 {
            for at in 0..len {
                for byte in [b'"', b'\\', 0x00, 0x0a, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    // A later escaped byte must not win over the first.
                    if at + 1 < len {
                        bytes[len - 1] = b'"';
                    }
                    for from in 0..=len {
                        let want = reference(&bytes, from);
                        assert_eq!(escape_at(&bytes, from), want, "{len} {at} {byte:#x} {from}");
                        assert_eq!(escape_at_swar(&bytes, from), want, "swar {len} {at} {from}");
                    }
                    assert!(needs_escape(&bytes), "{len} {at} {byte:#x}");
                }
            }
            // Bytes JSON leaves as they are, the signed-compare traps among
            // them (0x80 and up), are never found.
            let plain: Vec<u8> = [0x20, 0x7f, 0x80, 0xc3, 0xff, b'/', b'~', b'#', b']']
                .into_iter()
                .cycle()
                .take(len)
                .collect();
            assert_eq!(escape_at(&plain, 0), len);
            assert_eq!(escape_at_swar(&plain, 0), len);
            assert!(!needs_escape(&plain));
        }
    }

    #[test]
    fn escaped_bytes_before_from_do_not_count() {
        // A borrow from an escaped byte can flag the byte above it in SWAR
        // (`"` then `#`, 0x1f then 0x20): before `from`, it must not.
        for len in 0..40 {
            for from in 0..=len {
                for (low, high) in [(b'"', b'#'), (0x1f, 0x20), (b'\\', b']'), (0x00, 0x01)] {
                    let mut bytes = vec![b'a'; len];
                    for (i, b) in bytes.iter_mut().enumerate().take(from) {
                        *b = if i % 2 == 0 { low } else { high };
                    }
                    if from < len {
                        bytes[from] = high;
                    }
                    let want = reference(&bytes, from);
                    assert_eq!(escape_at(&bytes, from), want, "{len} {from} {low:#x}");
                    assert_eq!(
                        escape_at_swar(&bytes, from),
                        want,
                        "swar {len} {from} {low:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn pseudo_random_bytes_agree_with_the_byte_by_byte_scan() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let len = (next() % 80) as usize;
            // Mostly plain bytes, some escaped ones, and borrow traps.
            let bytes: Vec<u8> = (0..len)
                .map(|_| match next() % 16 {
                    0 => b'"',
                    1 => b'\\',
                    2 => (next() % 0x20) as u8,
                    3 => b'#',
                    4 => 0x20,
                    5 => 0xff,
                    _ => b'a' + (next() % 26) as u8,
                })
                .collect();
            for from in 0..=len {
                assert_eq!(
                    escape_at(&bytes, from),
                    reference(&bytes, from),
                    "{bytes:?} {from}"
                );
            }
            for start in 0..=len {
                let tail = &bytes[start..];
                assert_eq!(
                    needs_escape(tail),
                    reference(tail, 0) < tail.len(),
                    "{tail:?}"
                );
            }
        }
    }
}
