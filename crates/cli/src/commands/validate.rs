use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use currents_pipeline::{DeadLetter, DiscardSink, Pipeline};

use crate::opts::{MapOpts, create};
use crate::output::Finish;

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
pub fn run(args: ValidateArgs, quiet: bool) -> Result<ExitCode> {
    let options = args.opts.pipeline()?;
    let inputs = args.opts.inputs()?;
    inputs.run(|round| {
        let report = match &args.report {
            Some(path) => Some(std::io::BufWriter::new(create(path)?)),
            None => None,
        };
        let mut finish = Finish::new(quiet, args.opts.summary_json.as_deref());
        (finish.text.skip_examples, finish.text.drift) = (true, true);
        let setup = |pipeline: Pipeline| match report {
            Some(file) => pipeline.dead_letter(DeadLetter::new(file).with_skipped(true)),
            None => pipeline,
        };
        finish.run(round, options.clone(), setup, &mut DiscardSink)
    })
}
