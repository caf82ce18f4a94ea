use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use currents_pipeline::{InvalidEvents, NdjsonSink};

use crate::opts::{MapOpts, create};
use crate::output::{Bar, Finish};

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
        let started = Instant::now();
        let mut sink = NdjsonSink::new(&mut out);
        let bar = Arc::new(Bar::new(quiet));
        let result = round
            .pipeline(options.clone(), bar.clone())
            .run(round.sources(), &mut sink);
        bar.finish();
        Finish {
            started,
            quiet,
            delivered: false,
            examples: false,
            summary_json: args.opts.summary_json.as_deref(),
            extra: serde_json::Value::Null,
        }
        .done(result)
    })
}
