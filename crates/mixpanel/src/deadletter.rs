//! The dead letter: an NDJSON file with one line per event that was not
//! imported (rejected before sending, or refused/undeliverable after):
//!
//! ```json
//! {"reason":"time_in_future","detail":"…","source":{"file":"…","record":7,"line":8},"input":{…},"mixpanel":{"event":…,"properties":{…}}}
//! ```
//!
//! `input` is the decoded input record (flat JSON) when it was kept, else
//! `null`; `currents export` keeps it for events rejected before sending, and
//! for all events with `--dead-letter-input`. `source` always locates the
//! record in its file. `mixpanel` is the mapped event exactly as it would
//! have been sent.

use std::io::{self, Write};

use serde_json::Value;

use crate::prepare::PreparedEvent;

/// Writes dead-letter lines.
pub struct DeadLetterWriter {
    out: Box<dyn Write + Send>,
    lines: u64,
}

impl std::fmt::Debug for DeadLetterWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterWriter")
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl DeadLetterWriter {
    pub fn new(out: impl Write + Send + 'static) -> Self {
        DeadLetterWriter {
            out: Box::new(out),
            lines: 0,
        }
    }

    /// Appends to (or creates) the file at `path`.
    pub fn append(path: &std::path::Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self::new(io::BufWriter::new(file)))
    }

    /// Discards everything (when no dead-letter file is wanted).
    pub fn sink() -> Self {
        Self::new(io::sink())
    }

    pub fn write(&mut self, event: &PreparedEvent, reason: &str, detail: &str) -> io::Result<()> {
        let mut line = Vec::with_capacity(event.json().len() + 256);
        line.extend_from_slice(b"{\"reason\":");
        serde_json::to_writer(&mut line, reason)?;
        line.extend_from_slice(b",\"detail\":");
        serde_json::to_writer(&mut line, detail)?;
        line.extend_from_slice(b",\"source\":");
        serde_json::to_writer(&mut line, &event.source().to_json())?;
        line.extend_from_slice(b",\"input\":");
        match event.input() {
            Some(raw) => line.extend_from_slice(raw.get().as_bytes()),
            None => line.extend_from_slice(b"null"),
        }
        line.extend_from_slice(b",\"mixpanel\":");
        // The mapped JSON is one object written by JsonEventWriter; fall back
        // to a string if someone built a PreparedEvent from other bytes.
        if serde_json::from_slice::<serde::de::IgnoredAny>(event.json()).is_ok() {
            line.extend_from_slice(event.json());
        } else {
            serde_json::to_writer(
                &mut line,
                &Value::String(String::from_utf8_lossy(event.json()).into_owned()),
            )?;
        }
        line.extend_from_slice(b"}\n");
        self.out.write_all(&line)?;
        self.lines += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}
