use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use currents_pipeline::{InvalidEvents, NdjsonSink};

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
    let mut out = BufWriter::with_capacity(1 << 18, out);
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
