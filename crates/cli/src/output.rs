//! What the user sees: the progress line, the summary on stderr, the
//! `--summary-json` file and the exit code.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use currents_events::decode::RecordError;
use currents_pipeline::bucket::Round;
use currents_pipeline::{
    Observer, Pipeline, PipelineOptions, Progress, RunError, Sink, StopCause, TextOptions,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Writes to stderr, ignoring failure: a full or closed stderr must not
/// stop a run (or keep `--summary-json` from being written).
pub fn eprint(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// How many input errors are printed one per line before they are only counted.
const PRINTED_ERRORS: u64 = 20;

/// The progress line on a terminal, and the first input errors.
struct Bar {
    bar: Option<ProgressBar>,
    /// Input errors so far; none are printed with --quiet.
    errors: Option<AtomicU64>,
}

impl Bar {
    fn new(quiet: bool) -> Self {
        let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}");
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(style.unwrap_or_else(|_| ProgressStyle::default_spinner()));
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let errors = (!quiet).then(AtomicU64::default);
        Bar { bar, errors }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprint(&format!("{line}\n")),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Bar {
    fn progress(&self, progress: &Progress) {
        if let Some(bar) = &self.bar {
            bar.set_message(progress.to_string());
        }
    }

    fn input_error(&self, error: &RecordError) {
        let Some(errors) = &self.errors else { return };
        let n = errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= PRINTED_ERRORS {
            self.println(&format!("error: {error}"));
        } else if n == PRINTED_ERRORS + 1 {
            self.println("error: further input errors are only counted (see the summary)");
        }
    }
}

/// One run as the user sees it: the progress line while it runs, then the
/// summary printed and written and the exit code chosen; a run that stopped
/// early is an error (exit 1) after its summary.
pub struct Finish<'a> {
    pub quiet: bool,
    /// The `--summary-json` file.
    pub summary: Option<&'a Path>,
    pub text: TextOptions,
}

impl<'a> Finish<'a> {
    pub fn new(quiet: bool, summary: Option<&'a Path>) -> Self {
        let text = TextOptions::default();
        Finish {
            quiet,
            summary,
            text,
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
        let bar = Arc::new(Bar::new(self.quiet));
        let result = setup(round.pipeline(options, bar.clone())).run(round.sources(), sink);
        bar.finish();
        let (report, error) = match result {
            Ok(report) => (report, None),
            Err(RunError { cause, report }) => (*report, Some(cause)),
        };
        if !self.quiet {
            eprint(&report.to_text(&self.text));
        }
        if let Some(path) = self.summary {
            std::fs::write(path, format!("{:#}\n", report.to_json()))
                .with_context(|| format!("cannot write the summary to {}", path.display()))?;
        }
        match error {
            Some(e @ StopCause::DeadLetterIsInput(_)) => Err(crate::Usage(e.to_string()).into()),
            Some(error) => Err(error.into()),
            None if report.has_failures() => Ok(ExitCode::from(3)),
            None => Ok(ExitCode::SUCCESS),
        }
    }
}
