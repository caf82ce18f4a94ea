//! What the user sees: the progress line, the summary on stderr, the
//! `--summary-json` file and the exit code.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use currents_events::decode::RecordError;
use currents_pipeline::bucket::Round;
use currents_pipeline::{
    Observer, Pipeline, PipelineOptions, Progress, Report, RunError, Sink, TextOptions,
};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

/// Writes to stderr, ignoring failure: a full or closed stderr must not
/// stop a run (or keep `--summary-json` from being written).
pub fn eprint(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// How many input errors are printed one per line before they are only counted.
const PRINTED_ERRORS: u64 = 20;

/// The progress line on a terminal, and the first input errors.
pub struct Bar {
    bar: Option<ProgressBar>,
    quiet: bool,
    errors: AtomicU64,
}

impl Bar {
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Bar {
            bar,
            quiet,
            errors: AtomicU64::new(0),
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprint(&format!("{line}\n")),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Bar {
    fn progress(&self, p: &Progress) {
        let Some(bar) = &self.bar else { return };
        let seconds = p.elapsed.as_secs_f64().max(1e-9);
        let total = p
            .bytes_total
            .map_or(String::new(), |t| format!(" of {}", HumanBytes(t)));
        bar.set_message(format!(
            "sources {}/{} · {} read{total} · {} records · {:.0} records/s",
            p.sources_done,
            p.sources,
            HumanBytes(p.bytes_read),
            p.records,
            p.records as f64 / seconds,
        ));
    }

    fn input_error(&self, error: &RecordError) {
        if self.quiet {
            return;
        }
        let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= PRINTED_ERRORS {
            self.println(&format!("error: {error}"));
        } else if n == PRINTED_ERRORS + 1 {
            self.println("error: further input errors are only counted (see the summary)");
        }
    }
}

/// The `--summary-json` document: the report's stable keys, `elapsed_s`,
/// and what the command adds.
pub fn summary_json(report: &Report, elapsed: Duration, extra: Value) -> Value {
    let mut doc = report.to_json();
    doc["elapsed_s"] = json!((elapsed.as_secs_f64() * 1000.0).round() / 1000.0);
    if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
        doc.extend(extra);
    }
    doc
}

/// One run as the user sees it: the progress line while it runs, then the
/// summary printed and written and the exit code chosen; a run that stopped
/// early is an error (exit 1) after its summary.
pub struct Finish<'a> {
    pub quiet: bool,
    pub summary_json: Option<&'a Path>,
    pub text: TextOptions,
    /// Keys the command adds to the `--summary-json` document.
    pub extra: Value,
    /// A dry run: the endpoint and the kind of credentials it would use.
    pub dry_run: Option<(String, &'static str)>,
}

impl<'a> Finish<'a> {
    pub fn new(quiet: bool, summary_json: Option<&'a Path>) -> Self {
        Finish {
            quiet,
            summary_json,
            text: TextOptions::default(),
            extra: Value::Null,
            dry_run: None,
        }
    }

    /// Runs the round's pipeline (as `setup` completes it) into `sink`.
    pub fn run(
        self,
        round: &Round,
        options: PipelineOptions,
        setup: impl FnOnce(Pipeline) -> Pipeline,
        sink: &mut dyn Sink,
    ) -> Result<ExitCode> {
        let started = Instant::now();
        let bar = Arc::new(Bar::new(self.quiet));
        let result = setup(round.pipeline(options, bar.clone())).run(round.sources(), sink);
        bar.finish();
        self.done(started, result)
    }

    fn done(mut self, started: Instant, result: Result<Report, RunError>) -> Result<ExitCode> {
        let (report, error) = match result {
            Ok(report) => (report, None),
            Err(RunError { cause, report }) => (*report, Some(cause)),
        };
        let elapsed = started.elapsed();
        if let (Some((url, credentials)), false, None) = (&self.dry_run, self.quiet, &error) {
            eprint(&format!(
                "dry run: would send {} event(s) in {} request(s) ({}) to {url}, credentials: {credentials}; nothing sent\n",
                report.written,
                report.batches.unwrap_or(0),
                HumanBytes(report.batch_bytes.unwrap_or(0)),
            ));
        }
        if !self.quiet {
            self.text.elapsed = Some(elapsed);
            eprint(&report.to_text(&self.text));
        }
        if let Some(path) = self.summary_json {
            let json = summary_json(&report, elapsed, self.extra);
            std::fs::write(path, format!("{json:#}\n"))
                .with_context(|| format!("cannot write the summary to {}", path.display()))?;
        }
        if let Some(error) = error {
            return Err(error.into());
        }
        Ok(if report.has_failures() {
            ExitCode::from(3)
        } else {
            ExitCode::SUCCESS
        })
    }
}
