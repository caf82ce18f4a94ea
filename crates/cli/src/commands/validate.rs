use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crate::MapOpts;
use crate::inputs;
use crate::pipeline::{Emit, Item};
use crate::summary::{Summary, bump};

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
    let mut summary = Summary::default();
    pipeline.run(
        &inputs,
        &mut summary,
        |_| 0,
        |item, summary| {
            let Item::Validated {
                rejection,
                file,
                record,
                ..
            } = item
            else {
                return Ok(());
            };
            match rejection {
                None => summary.mapped += 1,
                Some(rejection) => {
                    bump(&mut summary.rejected, rejection.reason(), 1);
                    if !quiet {
                        eprintln!(
                            "rejected: {file} record {record}: {} ({})",
                            rejection.reason(),
                            rejection.field()
                        );
                    }
                }
            }
            Ok(())
        },
    )?;
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
