use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use crate::MapOpts;
use crate::inputs;
use crate::pipeline::Emit;
use crate::summary::bump;

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
    let started = Instant::now();
    let inputs = inputs::expand(&args.opts.inputs)?;
    let pipeline = args
        .opts
        .pipeline(quiet, Emit::Validated(super::validator()))?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 18,
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 18, std::io::stdout().lock())),
    };
    let summary = pipeline.run_validated(&inputs, |event, summary| {
        if let Some(rejection) = event.rejection {
            if args.strict {
                bump(&mut summary.rejected, rejection.reason(), 1);
                return Ok(());
            }
            bump(&mut summary.warnings, rejection.reason(), 1);
        }
        out.write_all(event.json)?;
        out.write_all(b"\n")?;
        summary.mapped += 1;
        Ok(())
    })?;
    out.flush().context("cannot write the output")?;
    drop(out);
    super::finish(summary, started, &args.opts, quiet, false)
}
