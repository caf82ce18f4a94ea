//! Decode → map, shared by `map`, `validate` and `export`: reads every input,
//! maps each event through the PII policy into a reusable JSON writer, and
//! accounts for every record in the [`Summary`].

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use std::sync::Arc;

use currents_events::decode::{DecodeOptions, DecodeStats, Location, Reader, RecordError};
use currents_mixpanel::{MapOptions, MapWarning, PreparedEvent, Preparer, Source};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::inputs::Input;
use crate::summary::{Summary, bump};

/// How many input errors are printed one per line before they are only counted.
const PRINTED_ERRORS: u64 = 20;

pub struct Pipeline {
    pub decode: DecodeOptions,
    pub map: MapOptions,
    pub quiet: bool,
    /// Keep each event's original input JSON (for dead letters).
    pub keep_input: bool,
    /// Skip events of unknown types instead of mapping them by convention.
    /// (Decided here rather than in the reader, so skipped records still
    /// reach the checkpoint.)
    pub skip_unknown_types: bool,
}

/// What happened to one input record.
pub enum Item<'a> {
    /// Mapped; `warnings` are the mapper's findings for it.
    Mapped(PreparedEvent, &'a [MapWarning]),
    /// Not mapped, for a reason (already counted in the summary).
    Skipped(Source, &'static str),
    /// Could not be decoded (already counted in the summary).
    Failed(Source, &'a RecordError),
}

/// A snake_case reason key for a decode error.
pub fn error_reason(error: &RecordError) -> String {
    error.kind.as_str().replace(' ', "_")
}

fn source_of(name: &Arc<str>, location: &Location) -> Source {
    let mut source = Source::new(name.clone(), location.index);
    source.line = location.line;
    source.offset = location.offset;
    source
}

impl Pipeline {
    /// Runs every input through decode and map, handing each record's outcome
    /// to `on_item`. Records before `start(file)` (a resume checkpoint) are
    /// read but skipped as `before_checkpoint`.
    pub fn run(
        &self,
        inputs: &[Input],
        summary: &mut Summary,
        start: impl Fn(&str) -> u64,
        mut on_item: impl FnMut(Item<'_>, &mut Summary) -> Result<()>,
    ) -> Result<()> {
        let progress = Progress::new(self.quiet, inputs.len());
        let mut preparer = Preparer::new(self.map.clone());
        let mut printed_errors = 0;
        for input in inputs {
            let name: Arc<str> = Arc::from(input.name());
            let first = start(&name);
            summary.files += 1;
            summary.bytes += input.len().unwrap_or(0);
            let mut reader = match input {
                Input::Stdin => Reader::new("<stdin>", std::io::stdin(), self.decode.clone()),
                Input::File(path) => {
                    let file = std::fs::File::open(path)
                        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
                    Reader::new(&name, file, self.decode.clone())
                }
            };
            for item in &mut reader {
                match item {
                    Ok(decoded) if decoded.location.index < first => {
                        bump(&mut summary.skipped, "before_checkpoint", 1);
                    }
                    Ok(decoded) if self.skip_unknown_types && decoded.event.info().is_none() => {
                        bump(&mut summary.skipped, "unknown_event_type", 1);
                        on_item(
                            Item::Skipped(
                                source_of(&name, &decoded.location),
                                "unknown_event_type",
                            ),
                            summary,
                        )?;
                    }
                    Ok(decoded) => {
                        let source = source_of(&name, &decoded.location);
                        match preparer.prepare(&decoded.event, source.clone(), self.keep_input) {
                            Ok(prepared) => {
                                for warning in preparer.warnings() {
                                    bump(&mut summary.warnings, warning.reason(), 1);
                                }
                                on_item(Item::Mapped(prepared, preparer.warnings()), summary)?;
                            }
                            Err(skip) => {
                                bump(&mut summary.skipped, skip.reason(), 1);
                                on_item(Item::Skipped(source, skip.reason()), summary)?;
                            }
                        }
                        progress.event();
                    }
                    Err(error) => {
                        let reason = error_reason(&error);
                        bump(&mut summary.errors, &reason, 1);
                        bump(&mut summary.rejected, &reason, error.records);
                        printed_errors += 1;
                        if printed_errors <= PRINTED_ERRORS {
                            progress.println(&format!("error: {error}"));
                        } else if printed_errors == PRINTED_ERRORS + 1 {
                            progress.println(
                                "error: further input errors are only counted (see the summary)",
                            );
                        }
                        on_item(
                            Item::Failed(source_of(&name, &error.location), &error),
                            summary,
                        )?;
                    }
                }
            }
            merge_stats(summary, reader.stats());
            progress.file_done();
        }
        progress.finish();
        Ok(())
    }
}

fn merge_stats(summary: &mut Summary, stats: &DecodeStats) {
    summary.read += stats.records();
    for (event_type, n) in &stats.unknown_types {
        bump(&mut summary.unknown_event_types, event_type, *n);
    }
    for (field, n) in &stats.unknown_fields {
        bump(&mut summary.unknown_fields, field, *n);
    }
}

/// A progress line on a terminal; nothing otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    events: std::cell::Cell<u64>,
}

impl Progress {
    fn new(quiet: bool, files: usize) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(files as u64),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] files {pos}/{len} · {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            events: 0.into(),
        }
    }

    fn event(&self) {
        let n = self.events.get() + 1;
        self.events.set(n);
        if n.is_multiple_of(8192)
            && let Some(bar) = &self.bar
        {
            let rate = n as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("{n} events · {rate:.0} events/s"));
        }
    }

    fn file_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
