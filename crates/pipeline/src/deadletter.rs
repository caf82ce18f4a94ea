//! The dead letter (see [`DeadLetter`]).

use std::io::{self, Write};
use std::path::Path;

use currents_mixpanel::MixpanelEvent;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Where a record came from: for people reading a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordSource {
    pub file: String,
    /// 0-based index of the record in its source (what the checkpoint counts).
    pub record: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// One line, as written.
#[derive(Serialize)]
pub(crate) struct Entry<'a> {
    pub(crate) reason: &'a str,
    pub(crate) detail: &'a str,
    pub(crate) field: Option<&'a str>,
    pub(crate) source: &'a RecordSource,
    pub(crate) event_type: &'a str,
    pub(crate) input: Option<&'a RawValue>,
    pub(crate) mixpanel: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Line<'a> {
    run_id: &'a str,
    #[serde(flatten)]
    entry: &'a Entry<'a>,
}

/// One line, read back.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct DeadLetterLine {
    pub run_id: String,
    pub reason: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub field: Option<String>,
    pub source: RecordSource,
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    #[serde(default)]
    pub mixpanel: Option<MixpanelEvent>,
}

/// Where lines go: a writer, or a file opened on the first line (so a run
/// with nothing to report leaves no empty file behind).
enum Out {
    Writer(Box<dyn Write + Send>),
    Lazy(std::path::PathBuf),
}

/// The dead letter: one NDJSON line per record that did not reach Mixpanel
/// — rejected before sending (pre-validation, or not decodable) or not
/// imported after sending — and, for a report, per skipped record too.
///
/// ```json
/// {"run_id":"20260115T093000Z-4f2a","reason":"time_in_future","detail":"…","field":"properties.time","source":{"file":"…","record":7,"line":8},"event_type":"users.messages.email.Open","input":{…},"mixpanel":{"event":…,"properties":{…}}}
/// ```
///
/// * The file is appended to across runs; every line carries the `run_id` of
///   the run that wrote it, and within one run each record has at most one
///   line (a record's outcome is final). A resumed run writes lines only for
///   the records it resolves itself.
/// * `input` is the input record in flat form when it was kept (records
///   rejected before sending, or every record with `keep_input`), else
///   `null`; `mixpanel` is the mapped event exactly as it was (or would have
///   been) sent, `null` for records that could not be decoded.
/// * Under a PII policy other than keep, `input` holds PII fields as the
///   events do (dropped or hashed), and quoted text in `detail` (where a
///   decoder quotes the value it choked on) is masked.
/// * [`DeadLetterLine`] reads a line back; `currents replay` sends again the
///   events whose reason is retryable ([`DeliveryFailure::is_retryable`]).
///
/// [`DeliveryFailure::is_retryable`]: currents_mixpanel::DeliveryFailure::is_retryable
///
/// Writes dead-letter lines for one run.
pub struct DeadLetter {
    out: Out,
    run_id: String,
    lines: u64,
    with_skipped: bool,
    /// With [`DeadLetter::durable`]: the file, synced at each flush.
    sync: Option<std::fs::File>,
    durable: bool,
    /// The file of [`DeadLetter::append`], never also an input of the run.
    path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("run_id", &self.run_id)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl DeadLetter {
    /// Writes to `out` (lines for rejected and dead-lettered records).
    pub fn new(out: impl Write + Send + 'static) -> Self {
        DeadLetter {
            out: Out::Writer(Box::new(out)),
            run_id: new_run_id(),
            lines: 0,
            with_skipped: false,
            sync: None,
            durable: false,
            path: None,
        }
    }

    /// Appends to the file at `path`, created with the first line. Checked
    /// now: a location that cannot be written fails before anything is sent.
    pub fn append(path: &Path) -> io::Result<Self> {
        if path.exists() {
            let file = open_append(path)?;
            let sync = file.try_clone()?;
            return Ok(DeadLetter {
                sync: Some(sync),
                path: Some(path.to_path_buf()),
                ..Self::new(io::BufWriter::new(file))
            });
        }
        open_append(path)?;
        std::fs::remove_file(path)?;
        Ok(DeadLetter {
            out: Out::Lazy(path.to_path_buf()),
            path: Some(path.to_path_buf()),
            ..Self::new(io::sink())
        })
    }

    /// Whether this dead letter is the file at `input` (a run must not read
    /// what it writes).
    pub(crate) fn is_file(&self, input: &Path) -> bool {
        self.path.as_deref().is_some_and(|path| {
            path == input
                || path
                    .canonicalize()
                    .ok()
                    .zip(input.canonicalize().ok())
                    .is_some_and(|(a, b)| a == b)
        })
    }

    /// Also writes a line per skipped record (a validation report).
    pub fn with_skipped(mut self, yes: bool) -> Self {
        self.with_skipped = yes;
        self
    }

    pub(crate) fn wants_skipped(&self) -> bool {
        self.with_skipped
    }

    /// The run id on this run's lines.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub(crate) fn write(&mut self, entry: &Entry<'_>) -> io::Result<()> {
        let mut line = serde_json::to_vec(&Line {
            run_id: &self.run_id,
            entry,
        })?;
        line.push(b'\n');
        if let Out::Lazy(path) = &self.out {
            let file = open_append(path)?;
            self.sync = Some(file.try_clone()?);
            self.out = Out::Writer(Box::new(io::BufWriter::new(file)));
        }
        if let Out::Writer(out) = &mut self.out {
            out.write_all(&line)?;
        }
        self.lines += 1;
        Ok(())
    }

    /// Makes every flush reach the disk (fsync) before it returns: for
    /// callers that forget an event once its line is written (the relay).
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// Writes what is buffered (and syncs it, when [`DeadLetter::durable`]).
    pub fn flush(&mut self) -> io::Result<()> {
        if let Out::Writer(out) = &mut self.out {
            out.flush()?;
        }
        match &self.sync {
            Some(file) if self.durable => file.sync_data(),
            _ => Ok(()),
        }
    }
}

fn open_append(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Masks quoted text (`"alice@example.com"` → `"…"`): decoders quote the
/// value they could not read, which may be personal data.
pub(crate) fn mask_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        match (c, quoted) {
            ('"', false) => {
                out.push_str("\"…");
                quoted = true;
            }
            ('"', true) => {
                out.push('"');
                quoted = false;
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

/// `YYYYMMDDTHHMMSSZ-xxxx`: sortable by start time, unique enough for the
/// runs that share one dead letter.
fn new_run_id() -> String {
    let secs = currents_mixpanel::now_secs();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{:04x}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        fastrand::u16(..)
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_is_masked() {
        assert_eq!(
            mask_quoted(r#"invalid type: string "a@b.c", expected i32"#),
            r#"invalid type: string "…", expected i32"#
        );
        assert_eq!(mask_quoted("no quotes"), "no quotes");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let id = new_run_id();
        assert_eq!(id.len(), "20260101T000000Z-0000".len(), "{id}");
    }
}
