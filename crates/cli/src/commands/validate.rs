use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use currents_pipeline::bucket::Round;
use currents_pipeline::{DeadLetter, DiscardSink, PipelineOptions, RunError};

use crate::opts::{MapOpts, create};
use crate::output::{Bar, Finish, eprint};

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
    inputs.run(|round| round_of(&args, &options, round, quiet))
}

fn round_of(
    args: &ValidateArgs,
    options: &PipelineOptions,
    round: &Round,
    quiet: bool,
) -> Result<ExitCode> {
    let started = Instant::now();
    let bar = Arc::new(Bar::new(quiet));
    let mut pipeline = round.pipeline(options.clone(), bar.clone());
    if let Some(path) = &args.report {
        let file = std::io::BufWriter::new(create(path)?);
        pipeline = pipeline.dead_letter(DeadLetter::new(file).with_skipped(true));
    }
    let result = pipeline.run(round.sources(), &mut DiscardSink);
    bar.finish();
    if !quiet {
        let report = match &result {
            Ok(report) => report,
            Err(RunError { report, .. }) => report,
        };
        let mut text = String::new();
        if report.unknown_event_types.is_empty() && report.unknown_fields.is_empty() {
            text.push_str("schema drift: none (every event type and field is in the schema)\n");
        } else {
            text.push_str(&format!(
                "schema drift: {} unknown event type(s), {} unknown field(s). They are counted, \
                 not sent under --profile braze: upgrade currents for a schema that knows them, \
                 or pass --unknown-fields keep (or --profile full) to send them as they are.\n",
                report.unknown_event_types.len(),
                report.unknown_fields.len()
            ));
        }
        eprint(&text);
    }
    Finish {
        started,
        quiet,
        delivered: false,
        examples: true,
        summary_json: args.opts.summary_json.as_deref(),
        extra: serde_json::Value::Null,
    }
    .done(result)
}
