//! The commands that read and map without delivering: `map`, `validate`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use currents_pipeline::{DeadLetter, DiscardSink, InvalidEvents, NdjsonSink, Pipeline};

use crate::opts::{MapOpts, create};
use crate::output::Finish;

#[derive(Args, Debug)]
pub struct MapArgs {
    #[command(flatten)]
    pub opts: MapOpts,
    /// Output file (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Leave out events that fail Mixpanel's /import pre-validation (counted as
    /// rejected) instead of only counting them as warnings.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: MapArgs, quiet: bool) -> Result<ExitCode> {
    let mut options = args.opts.pipeline()?;
    if !args.strict {
        options.invalid = InvalidEvents::Keep;
    }
    let inputs = args.opts.inputs()?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    // Smaller than a chunk's run of lines, which then go out unbuffered
    // (`NdjsonSink::accept_lines`); big enough for events one by one.
    let mut out = BufWriter::with_capacity(1 << 16, out);
    inputs.run(|round| {
        let finish = Finish::new(quiet, args.opts.summary_json.as_deref());
        finish.run(
            round,
            options.clone(),
            |p| p,
            &mut NdjsonSink::new(&mut out),
        )
    })
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub opts: MapOpts,
    /// Write every skipped or rejected record (reason, source, field at
    /// fault) to this NDJSON file, in the dead letter's format.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Decode, map and pre-validate; report what would be skipped or rejected,
/// and where the data drifted from the schema.
pub fn validate(args: ValidateArgs, quiet: bool) -> Result<ExitCode> {
    let options = args.opts.pipeline()?;
    let inputs = args.opts.inputs()?;
    inputs.run(|round| {
        let report = args.report.as_deref().map(create).transpose()?;
        let report = report.map(|file| DeadLetter::new(BufWriter::new(file)).with_skipped(true));
        let mut finish = Finish::new(quiet, args.opts.summary_json.as_deref());
        (finish.text.skip_examples, finish.text.drift) = (true, true);
        let setup = |pipeline: Pipeline| pipeline.dead_letter(report);
        finish.run(round, options.clone(), setup, &mut DiscardSink)
    })
}
