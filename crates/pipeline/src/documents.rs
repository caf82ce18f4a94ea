//! Custom HTTP input (JSON documents one after another: batch bodies,
//! arrays of events, single events) cut into pieces of whole top-level
//! documents for parallel decoding, without parsing it: a scan that only
//! follows strings and nesting.
//!
//! A piece starts where a top-level document ended. The sequential decoder
//! is between documents there too, so each piece decodes as reading the
//! input from its start would; a decoder that gives up inside a piece
//! (a document out of shape) ends the source there, as it does
//! sequentially. Where the scan cannot tell where documents end (anything
//! but `{` or `[` at the top level, a closing bracket of nothing, no end
//! within [`GIVE_UP_BYTES`], a read error), the rest of the input goes to
//! one worker, read sequentially (a read error first, where it happened).

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender};

/// Where top-level documents end, in bytes fed in order: 64 bytes at a
/// time in bit masks, as in simdjson's first stage (escaped characters,
/// then what lies inside strings, then the brackets outside them), the
/// nesting followed bracket by bracket; a call's last partial block a byte
/// at a time.
#[derive(Debug, Default)]
pub(crate) struct TopLevel {
    depth: u64,
    in_string: bool,
    /// The next byte is escaped (an odd run of backslashes came last).
    escaped: bool,
    lost: bool,
}

/// One 64-byte block's bytes of interest, bit `i` for byte `i`.
#[derive(Debug, Default, PartialEq)]
struct Masks {
    quotes: u64,
    backslashes: u64,
    opens: u64,
    closes: u64,
}

impl TopLevel {
    /// Scans `bytes`, the continuation of everything scanned before, and
    /// returns the end of the last top-level document that ends in them.
    /// Stops at anything the decoder does not take between documents (see
    /// [`lost`](Self::lost)).
    pub(crate) fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("pclmulqdq") {
            // SAFETY: this CPU has both features, checked just above.
            return unsafe { self.scan_avx2(bytes) };
        }
        self.scan_blocks(bytes, masks, prefix_xor)
    }

    /// [`scan`](Self::scan) with AVX2 masks (32 bytes a compare) and the
    /// string prefix as one carry-less multiply.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,pclmulqdq")]
    fn scan_avx2(&mut self, bytes: &[u8]) -> Option<usize> {
        // Closures inherit the features, so both inline here.
        self.scan_blocks(
            bytes,
            |block| masks_avx2(block),
            |bits| prefix_xor_clmul(bits),
        )
    }

    #[inline(always)]
    fn scan_blocks(
        &mut self,
        bytes: &[u8],
        masks: impl Fn(&[u8]) -> Masks,
        prefix_xor: impl Fn(u64) -> u64,
    ) -> Option<usize> {
        let mut last = None;
        let mut blocks = bytes.chunks_exact(64);
        let mut base = 0;
        for block in &mut blocks {
            if self.lost {
                return last;
            }
            self.block(block, &masks(block), &prefix_xor, base, &mut last);
            base += 64;
        }
        for (i, &b) in blocks.remainder().iter().enumerate() {
            if self.lost {
                break;
            }
            if self.byte(b) {
                last = Some(base + i + 1);
            }
        }
        last
    }

    #[inline(always)]
    fn block(
        &mut self,
        block: &[u8],
        masks: &Masks,
        prefix_xor: impl Fn(u64) -> u64,
        base: usize,
        last: &mut Option<usize>,
    ) {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        // Escaped bytes: those after an odd run of backslashes.
        let carry = u64::from(self.escaped);
        let backslashes = masks.backslashes & !carry;
        let follows = backslashes << 1 | carry;
        let odd_starts = backslashes & !EVEN & !follows;
        let (even_runs, overflow) = odd_starts.overflowing_add(backslashes);
        self.escaped = overflow;
        let escaped = (EVEN ^ (even_runs << 1)) & follows;
        // Inside strings: from an unescaped quote up to the next one.
        let mut inside = prefix_xor(masks.quotes & !escaped);
        if self.in_string {
            inside = !inside;
        }
        self.in_string = inside >> 63 == 1;
        // A backslash outside a string is not JSON, and the decoder would
        // not read it as an escape: the masks may no longer match it.
        if masks.backslashes & !inside != 0 {
            self.lost = true;
            return;
        }
        let opens = masks.opens & !inside;
        let mut brackets = (opens | masks.closes) & !inside;
        // Bytes from `gap` on are between documents.
        let mut gap = (self.depth == 0).then_some(0);
        while brackets != 0 {
            let at = brackets.trailing_zeros() as usize;
            brackets &= brackets - 1;
            if opens >> at & 1 == 1 {
                if let Some(from) = gap.take()
                    && !between_documents(&block[from..at])
                {
                    self.lost = true;
                    return;
                }
                self.depth += 1;
            } else if self.depth == 0 {
                self.lost = true;
                return;
            } else {
                self.depth -= 1;
                if self.depth == 0 {
                    *last = Some(base + at + 1);
                    gap = Some(at + 1);
                }
            }
        }
        if let Some(from) = gap
            && !between_documents(&block[from..])
        {
            self.lost = true;
        }
    }

    /// One byte; whether a document ends with it.
    fn byte(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return false;
        }
        match b {
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' if self.depth > 0 => {
                self.depth -= 1;
                return self.depth == 0;
            }
            _ if self.depth == 0 && !between_documents(&[b]) => self.lost = true,
            // Outside strings a backslash is not JSON (see `block`).
            b'\\' => self.lost = true,
            b'"' => self.in_string = true,
            _ => {}
        }
        false
    }

    /// Something was not between or inside documents: where the next one
    /// ends is not known any more.
    pub(crate) fn lost(&self) -> bool {
        self.lost
    }
}

/// What the decoder skips between documents: whitespace and the bytes of a
/// UTF-8 byte order mark.
fn between_documents(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| b.is_ascii_whitespace() || matches!(b, 0xef | 0xbb | 0xbf))
}

/// Each bit the XOR of itself and all below it: from a quote's bit up to
/// the next quote's, the bits are set.
#[inline(always)]
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

/// [`prefix_xor`] as a carry-less multiply by all ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
#[inline]
fn prefix_xor_clmul(bits: u64) -> u64 {
    use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set_epi64x};
    let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, bits as i64), _mm_set_epi64x(0, -1), 0);
    _mm_cvtsi128_si64(product) as u64
}

/// [`masks`] 32 bytes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn masks_avx2(block: &[u8]) -> Masks {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    let mut masks = Masks::default();
    for (lane, bytes) in block.chunks_exact(32).enumerate() {
        let shift = lane * 32;
        // SAFETY: the load reads the 32 bytes of `bytes` (unaligned loads
        // are allowed).
        let v = unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) };
        // `[` and `]` are `{` and `}` with bit 5 clear.
        let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
        let mask = |of, byte: u8| {
            _mm256_movemask_epi8(_mm256_cmpeq_epi8(of, _mm256_set1_epi8(byte as i8)))
        };
        masks.quotes |= u64::from(mask(v, b'"') as u32) << shift;
        masks.backslashes |= u64::from(mask(v, b'\\') as u32) << shift;
        masks.opens |= u64::from(mask(folded, b'{') as u32) << shift;
        masks.closes |= u64::from(mask(folded, b'}') as u32) << shift;
    }
    masks
}

/// The masks of a 64-byte block: sixteen bytes at a time with SSE2, which
/// every x86_64 has, else a byte at a time.
#[inline(always)]
fn masks(block: &[u8]) -> Masks {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        let mut masks = Masks::default();
        for (lane, bytes) in block.chunks_exact(16).enumerate() {
            let shift = lane * 16;
            // SAFETY: the load reads the 16 bytes of `bytes` (unaligned
            // loads are allowed); the rest needs SSE2, which this build has.
            let [quotes, backslashes, opens, closes] = unsafe {
                let v = _mm_loadu_si128(bytes.as_ptr().cast());
                // `[` and `]` are `{` and `}` with bit 5 clear.
                let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                [
                    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8))),
                    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8))),
                    _mm_movemask_epi8(_mm_cmpeq_epi8(folded, _mm_set1_epi8(b'{' as i8))),
                    _mm_movemask_epi8(_mm_cmpeq_epi8(folded, _mm_set1_epi8(b'}' as i8))),
                ]
            };
            masks.quotes |= u64::from(quotes as u16) << shift;
            masks.backslashes |= u64::from(backslashes as u16) << shift;
            masks.opens |= u64::from(opens as u16) << shift;
            masks.closes |= u64::from(closes as u16) << shift;
        }
        masks
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        scalar_masks(block)
    }
}

/// [`masks`] a byte at a time.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn scalar_masks(block: &[u8]) -> Masks {
    let mut masks = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b'"' => masks.quotes |= bit,
            b'\\' => masks.backslashes |= bit,
            b'{' | b'[' => masks.opens |= bit,
            b'}' | b']' => masks.closes |= bit,
            _ => {}
        }
    }
    masks
}

/// Bytes of input a piece aims at: twice NDJSON's chunks, for fewer thread
/// wakeups (a Custom HTTP body of 100 events is already ~135 KB).
const PIECE_BYTES: usize = 512 * 1024;

/// With no document ending within this many bytes, the rest of the input is
/// read sequentially instead of held whole.
pub(crate) const GIVE_UP_BYTES: usize = 16 * 1024 * 1024;

/// What the reader thread hands out, in order.
pub(crate) enum Work {
    /// Whole documents, `data[..len]`; `offset` bytes and `lines` newlines
    /// of the input come before them. The rest of `data` is spare room,
    /// initialised, for when the buffer is used again.
    Piece {
        data: Vec<u8>,
        len: usize,
        offset: u64,
        lines: u64,
    },
    /// The rest of the input, from `offset` (after `lines` newlines), to be
    /// read sequentially.
    Rest {
        stream: Box<dyn BufRead + Send>,
        offset: u64,
        lines: u64,
    },
}

/// How one piece's filling ended.
enum Fill {
    /// `PIECE_BYTES` or more, cut after the last document end.
    Cut(usize),
    /// The end of the input: everything goes.
    End,
    /// Documents can no longer be told apart (or reading failed, with this
    /// error): those ended so far go, then the rest is sequential.
    Rest(Option<usize>, Option<io::Error>),
}

/// Room a read asks for: the source's read buffer, so that a `BufReader`
/// with nothing buffered reads straight into the piece instead of into its
/// own buffer first.
pub(crate) const READ_BYTES: usize = crate::decode::BUF;

/// A buffer for the next piece of about `size` bytes, `tail` copied to its
/// start: one that came back on `free`, else a new one. Buffers keep their
/// whole length initialised, so they are zeroed once, not for every read;
/// `size` and one read fit, and stay under glibc's `mmap` threshold.
pub(crate) fn next_buffer(free: &Receiver<Vec<u8>>, size: usize, tail: &[u8]) -> Vec<u8> {
    let mut data = free
        .try_recv()
        .unwrap_or_else(|_| vec![0; size + READ_BYTES]);
    if data.len() < tail.len() + READ_BYTES {
        data.resize(tail.len() + READ_BYTES, 0);
    }
    data[..tail.len()].copy_from_slice(tail);
    data
}

/// Reads into `data[filled..]`, making room for a whole read first.
pub(crate) fn read_into(
    stream: &mut dyn BufRead,
    data: &mut Vec<u8>,
    filled: usize,
) -> io::Result<usize> {
    if data.len() - filled < READ_BYTES {
        data.resize(filled + READ_BYTES, 0);
    }
    stream.read(&mut data[filled..filled + READ_BYTES])
}

/// The reader thread: `stream` as numbered [`Work`] on `work`, reusing the
/// buffers that come back on `free`.
pub(crate) fn read_documents(
    mut stream: Box<dyn BufRead + Send>,
    work: &SyncSender<(u64, Work)>,
    free: &Receiver<Vec<u8>>,
) {
    let mut scanner = TopLevel::default();
    let (mut seq, mut offset, mut lines) = (0u64, 0u64, 0u64);
    let mut send = |what: Work| {
        let sent = work.send((seq, what)).is_ok();
        seq += 1;
        sent
    };
    let mut data = next_buffer(free, PIECE_BYTES, &[]);
    // `data[..filled]` is read; what follows the last cut was scanned
    // already, and no document ends in it.
    let mut filled = 0;
    loop {
        let mut cut = None;
        let fill = loop {
            if let Some(end) = cut
                && filled >= PIECE_BYTES
            {
                break Fill::Cut(end);
            }
            if scanner.lost() || filled >= GIVE_UP_BYTES {
                break Fill::Rest(cut, None);
            }
            match read_into(&mut stream, &mut data, filled) {
                Ok(0) => break Fill::End,
                Ok(n) => {
                    if let Some(end) = scanner.scan(&data[filled..filled + n]) {
                        cut = Some(filled + end);
                    }
                    filled += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The sequential rest meets it where reading in order would.
                Err(e) => break Fill::Rest(cut, Some(e)),
            }
        };
        let done = matches!(fill, Fill::End);
        let (end, rest) = match fill {
            Fill::Cut(end) => (end, None),
            Fill::End => (filled, None),
            Fill::Rest(end, error) => (end.unwrap_or(0), Some(error)),
        };
        let piece = (offset, lines);
        offset += end as u64;
        lines += memchr::memchr_iter(b'\n', &data[..end]).count() as u64;
        if let Some(error) = rest {
            let head = io::Cursor::new(data[end..filled].to_vec());
            if end > 0
                && !send(Work::Piece {
                    data,
                    len: end,
                    offset: piece.0,
                    lines: piece.1,
                })
            {
                return;
            }
            let stream: Box<dyn BufRead + Send> = match error {
                None => Box::new(head.chain(stream)),
                Some(error) => Box::new(head.chain(FailsFirst {
                    error: Some(error),
                    stream,
                })),
            };
            send(Work::Rest {
                stream,
                offset,
                lines,
            });
            return;
        }
        let next = if done {
            Vec::new()
        } else {
            next_buffer(free, PIECE_BYTES, &data[end..filled])
        };
        filled -= end;
        if end > 0
            && !send(Work::Piece {
                data: std::mem::replace(&mut data, next),
                len: end,
                offset: piece.0,
                lines: piece.1,
            })
        {
            return;
        }
        if done {
            return;
        }
    }
}

/// `stream` that first fails with `error`, once: a read error met by the
/// reader thread, handed to the sequential rest at the same place.
struct FailsFirst {
    error: Option<io::Error>,
    stream: Box<dyn BufRead + Send>,
}

impl Read for FailsFirst {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.error.take() {
            Some(error) => Err(error),
            None => self.stream.read(buf),
        }
    }
}

impl BufRead for FailsFirst {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.error.take() {
            Some(error) => Err(error),
            None => self.stream.fill_buf(),
        }
    }

    fn consume(&mut self, amount: usize) {
        self.stream.consume(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(text: &str) -> (Vec<usize>, bool) {
        let mut scanner = TopLevel::default();
        let mut ends = Vec::new();
        // A byte at a time: the state carries across calls.
        for (i, b) in text.bytes().enumerate() {
            if scanner.scan(&[b]).is_some() {
                ends.push(i + 1);
            }
        }
        (ends, scanner.lost())
    }

    #[test]
    fn document_ends_are_found_past_strings_escapes_and_nesting() {
        let text = r#"{"events":[{"a":"}]\"{"}]} [{"b":"\\"}]
{"c":{"d":[1,2]}}"#;
        let (found, lost) = ends(text);
        assert_eq!(found, [26, 39, text.len()], "{text}");
        assert_eq!(same_fed_every_way(text.as_bytes()).0, found);
        assert!(!lost);
        // In one call, the last end is returned.
        assert_eq!(TopLevel::default().scan(text.as_bytes()), Some(text.len()));
        // A byte order mark and whitespace between documents are fine.
        let (found, lost) = ends("\u{feff} {}\r\n\t[]");
        assert_eq!((found, lost), (vec![6, 11], false));
    }

    #[test]
    fn sse2_masks_match_the_scalar_ones() {
        let text: Vec<u8> =
            br#"{"a":"x\"}]","b":[1,{"c":"\\"}]} ["#.iter().copied().cycle().take(64).collect();
        assert_eq!(masks(&text), scalar_masks(&text));
        let high: Vec<u8> = (0..64).map(|i| 0x80 | i as u8).collect();
        assert_eq!(masks(&high), Masks::default());
    }

    /// The AVX2 masks and the carry-less prefix agree with the portable
    /// ones, where this CPU has them (said on stderr where it does not).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_masks_and_clmul_prefix_match_the_portable_ones() {
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("pclmulqdq")) {
            eprintln!("skipped: this CPU lacks AVX2 or PCLMULQDQ");
            return;
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = br#"{}[]"\ ax:,"#;
        for _ in 0..2000 {
            let block: Vec<u8> = (0..64)
                .map(|_| match next() % 16 {
                    15 => 0x80 | (next() as u8),
                    i => alphabet[i as usize % alphabet.len()],
                })
                .collect();
            // SAFETY: both features were detected above.
            unsafe {
                assert_eq!(masks_avx2(&block), scalar_masks(&block));
            }
            let bits = next();
            // SAFETY: as above.
            assert_eq!(
                unsafe { prefix_xor_clmul(bits) },
                prefix_xor(bits),
                "{bits:#x}"
            );
        }
        for bits in [0, 1, 1 << 63, u64::MAX] {
            // SAFETY: as above.
            assert_eq!(unsafe { prefix_xor_clmul(bits) }, prefix_xor(bits));
        }
    }

    /// The ends found when `text` is fed `step` bytes at a time (only the
    /// last end of each call is returned: small steps see them all).
    fn ends_by(text: &[u8], step: usize) -> (Vec<usize>, bool) {
        let mut scanner = TopLevel::default();
        let mut ends = Vec::new();
        let mut at = 0;
        for piece in text.chunks(step) {
            if let Some(end) = scanner.scan(piece) {
                ends.push(at + end);
            }
            at += piece.len();
        }
        (ends, scanner.lost())
    }

    /// However `text` is fed (a byte at a time, in blocks, cut anywhere
    /// across them, whole), the scan agrees with itself.
    fn same_fed_every_way(text: &[u8]) -> (Vec<usize>, bool) {
        let (ends, lost) = ends_by(text, 1);
        for step in [3, 64, 65, 100, 1000] {
            let (some, lost_too) = ends_by(text, step);
            assert_eq!(lost_too, lost, "fed {step} bytes at a time");
            assert!(some.iter().all(|end| ends.contains(end)), "fed {step}");
            assert_eq!(some.last(), ends.last(), "fed {step} bytes at a time");
        }
        (ends, lost)
    }

    #[test]
    fn escapes_strings_and_nesting_across_blocks() {
        // Backslash runs of every length ending at every place of a block.
        for run in 0..6 {
            for pad in 0..70 {
                let body = format!(
                    "{{\"k\":\"{}{}\\\"}}]\"}}",
                    "x".repeat(pad),
                    "\\\\".repeat(run)
                );
                let text = format!("{body}\n{body} ");
                let (ends, lost) = same_fed_every_way(text.as_bytes());
                assert_eq!(ends, [body.len(), text.len() - 1], "{text}");
                assert!(!lost);
            }
        }
        // An odd run makes the quote after it escaped: the string goes on.
        let odd = "{\"k\":\"\\\\\\\"}\"} ";
        assert_eq!(
            same_fed_every_way(odd.as_bytes()),
            (vec![odd.len() - 1], false)
        );
        // A backslash outside a string: lost, in blocks as byte by byte
        // (here inside the first block, with more documents after it).
        let stray = format!("{{\"k\":1\\\"}}\"}} {{\"pad\":\"{}\"}}", "p".repeat(100));
        assert_eq!(
            same_fed_every_way(stray.as_bytes()),
            (vec![], true),
            "{stray}"
        );
    }

    #[test]
    fn anything_else_at_the_top_level_loses_the_thread() {
        for text in [r#"{} "events""#, "{} 5", "{}}", "[] ] {}", "{} x {}"] {
            let (found, lost) = ends(text);
            assert!(lost, "{text}");
            assert_eq!(found, [2], "{text}: no end after the loss");
        }
        assert!(!ends(r#"{"x": 5} "#).1);
        // The same in 64-byte blocks.
        let pad = format!("{{\"pad\":\"{}\"}}", "p".repeat(100));
        for garbage in [" x ", "\"s\"", "}", " 5"] {
            let text = format!("{pad}{garbage}{pad}");
            let (found, lost) = same_fed_every_way(text.as_bytes());
            assert!(lost, "{text}");
            assert_eq!(found, [pad.len()], "{text}");
        }
    }

    fn pieces(input: Vec<u8>) -> Vec<Work> {
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel(1024);
        let (_free_tx, free_rx) = std::sync::mpsc::sync_channel(1);
        // Small reads: the state carries across them.
        let stream = io::BufReader::with_capacity(4096, Trickle(io::Cursor::new(input)));
        read_documents(Box::new(stream), &work_tx, &free_rx);
        drop(work_tx);
        work_rx
            .into_iter()
            .enumerate()
            .map(|(i, (seq, work))| {
                assert_eq!(seq, i as u64);
                work
            })
            .collect()
    }

    /// At most 4 KiB a read, whatever room the caller offers.
    struct Trickle(io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(4096);
            self.0.read(&mut buf[..n])
        }
    }

    fn body(i: usize) -> String {
        format!("{{\"events\":[{{\"id\":\"{i}\",\"s\":\"a\\\"}}\\n\"}}]}}\n")
    }

    #[test]
    fn pieces_are_whole_documents_with_their_offsets_and_lines() {
        let input: String = (0..60_000).map(body).collect();
        let work = pieces(input.clone().into_bytes());
        assert!(work.len() > 2, "{} pieces", work.len());
        let mut joined = Vec::new();
        for piece in work {
            let Work::Piece {
                data,
                len,
                offset,
                lines,
            } = piece
            else {
                panic!("no rest expected");
            };
            let data = &data[..len];
            assert_eq!(offset, joined.len() as u64);
            assert_eq!(lines, memchr::memchr_iter(b'\n', &joined).count() as u64);
            assert!(data.ends_with(b"}]}") || data.ends_with(b"}]}\n") || data.ends_with(b"\n"));
            assert!(data.starts_with(b"{") || data.starts_with(b"\n{"));
            joined.extend_from_slice(data);
        }
        assert_eq!(joined, input.as_bytes());
    }

    /// Bytes, then a read error once (then the end: read again, the
    /// error would be lost).
    struct Broken(io::Cursor<Vec<u8>>, bool);

    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 if !self.1 => {
                    self.1 = true;
                    Err(io::Error::other("disk on fire"))
                }
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_read_error_reaches_the_sequential_rest_where_it_happened() {
        let input: String = (0..5_000).map(body).collect();
        let stream = io::BufReader::with_capacity(
            4096,
            Broken(io::Cursor::new(input.clone().into_bytes()), false),
        );
        let (work_tx, work_rx) = std::sync::mpsc::sync_channel(1024);
        let (_free_tx, free_rx) = std::sync::mpsc::sync_channel(1);
        read_documents(Box::new(stream), &work_tx, &free_rx);
        drop(work_tx);
        let mut joined = Vec::new();
        for (_, work) in work_rx {
            match work {
                Work::Piece { data, len, .. } => joined.extend_from_slice(&data[..len]),
                Work::Rest {
                    mut stream, offset, ..
                } => {
                    assert_eq!(offset, joined.len() as u64);
                    let error = io::Read::read_to_end(&mut stream, &mut joined).unwrap_err();
                    assert_eq!(error.to_string(), "disk on fire");
                }
            }
        }
        assert_eq!(joined, input.as_bytes(), "every byte before the error");
    }

    #[test]
    fn after_garbage_the_rest_is_read_sequentially() {
        let mut input: String = (0..5_000).map(body).collect();
        let garbage_at = input.len();
        input.push_str("oops ");
        input.extend((0..5_000).map(body));
        let work = pieces(input.clone().into_bytes());
        let mut joined = Vec::new();
        let mut rest = None;
        for piece in work {
            match piece {
                Work::Piece {
                    data, len, offset, ..
                } => {
                    assert!(rest.is_none(), "a piece after the rest");
                    assert_eq!(offset, joined.len() as u64);
                    joined.extend_from_slice(&data[..len]);
                }
                Work::Rest {
                    mut stream,
                    offset,
                    lines,
                } => {
                    assert_eq!(offset, joined.len() as u64);
                    assert_eq!(lines, memchr::memchr_iter(b'\n', &joined).count() as u64);
                    let mut tail = Vec::new();
                    io::Read::read_to_end(&mut stream, &mut tail).unwrap();
                    rest = Some(tail);
                }
            }
        }
        assert!(joined.len() <= garbage_at);
        joined.extend(rest.expect("the rest after the garbage"));
        assert_eq!(joined, input.as_bytes());
    }
}
