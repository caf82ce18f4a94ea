use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::MapOpts;
use crate::inputs;
use crate::pipeline::Emit;
use crate::summary::bump;

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub opts: MapOpts,
}

/// Decode, map and pre-validate; report what would be skipped or rejected,
/// and where the data drifted from the schema.
pub fn run(args: ValidateArgs, quiet: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let inputs = inputs::expand(&args.opts.inputs)?;
    let pipeline = args
        .opts
        .pipeline(quiet, Emit::Validated(super::validator()))?;
    let summary = pipeline.run_validated(&inputs, |event, summary| {
        match event.rejection {
            None => summary.mapped += 1,
            Some(rejection) => {
                bump(&mut summary.rejected, rejection.reason(), 1);
                if !quiet {
                    eprintln!(
                        "rejected: {} record {}: {} ({})",
                        event.file,
                        event.record,
                        rejection.reason(),
                        rejection.field()
                    );
                }
            }
        }
        Ok(())
    })?;
    if !quiet {
        if summary.unknown_event_types.is_empty() && summary.unknown_fields.is_empty() {
            eprintln!("schema drift: none (every event type and field is in the schema)");
        } else {
            eprintln!(
                "schema drift: {} unknown event type(s), {} unknown field(s); see `cargo xtask schema sync`",
                summary.unknown_event_types.len(),
                summary.unknown_fields.len()
            );
        }
    }
    super::finish(summary, started, &args.opts, quiet, false)
}
