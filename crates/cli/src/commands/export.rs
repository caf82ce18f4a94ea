use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use currents_mixpanel::{Client, Credentials};
use currents_pipeline::bucket::Round;
use currents_pipeline::{
    DeadLetter, DryRunSink, ImportSink, KeepInput, Pipeline, PipelineOptions, Records, Sink,
    Sources,
};
use serde_json::json;

use crate::Usage;
use crate::opts::{DeliveryOpts, MapOpts};
use crate::output::Finish;

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub opts: MapOpts,
    #[command(flatten)]
    pub delivery: DeliveryOpts,
    /// NDJSON file receiving a line (reason, source, event) for every record
    /// that is not imported; appended to, each line with the run's run_id.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "currents-dead-letter.ndjson"
    )]
    pub dead_letter: PathBuf,
    /// Keep every event's input record for its dead-letter line. By default
    /// only records rejected before sending carry `input`; events Mixpanel
    /// refuses after sending are found by `source` (file, record, line).
    /// Costs one input record of memory per event in flight.
    #[arg(long)]
    pub dead_letter_input: bool,
    /// Checkpoint file: resume from it, and keep it up to date. A checkpoint
    /// written for other content is refused (delete it to start over).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Validate and batch, send nothing: say what would be sent, and write
    /// the would-be dead letter.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Dead-letter files written by `currents export`.
    #[arg(value_name = "DEAD_LETTER", required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub delivery: DeliveryOpts,
    /// Mixpanel project token (when no service account is set).
    #[arg(long, env = "MIXPANEL_PROJECT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where events that fail again go (not one of the inputs).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "currents-dead-letter.replay.ndjson"
    )]
    pub dead_letter: PathBuf,
    /// Write the run summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
}

pub fn run(args: ExportArgs, quiet: bool) -> Result<ExitCode> {
    let mut options = args.opts.pipeline()?;
    if args.dead_letter_input {
        options.keep_input = KeepInput::All;
    }
    let delivery = Delivery {
        opts: &args.delivery,
        token: args.opts.token.as_deref(),
        dead_letter: &args.dead_letter,
        checkpoint: args.checkpoint.as_ref(),
        dry_run: args.dry_run,
        summary_json: args.opts.summary_json.as_ref(),
    };
    let inputs = args.opts.inputs()?;
    inputs.run(|round| delivery.run(options.clone(), round, quiet))
}

/// Sends the retryable events of dead letters again, through the same
/// pipeline (validation, batching, the ledger, a dead letter of its own).
pub fn replay(args: ReplayArgs, quiet: bool) -> Result<ExitCode> {
    if args
        .inputs
        .iter()
        .any(|input| same_file(input, &args.dead_letter))
    {
        return Err(Usage(format!(
            "--dead-letter {} is one of the inputs; write failures elsewhere",
            args.dead_letter.display()
        ))
        .into());
    }
    let mut options = PipelineOptions::default();
    options.records = Records::DeadLetter;
    options.keep_input = KeepInput::All;
    let sources = Sources::from_paths(&args.inputs)?;
    let delivery = Delivery {
        opts: &args.delivery,
        token: args.token.as_deref(),
        dead_letter: &args.dead_letter,
        checkpoint: None,
        dry_run: false,
        summary_json: args.summary_json.as_ref(),
    };
    delivery.run(options, &Round::from(sources), quiet)
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    a == b
        || a.canonicalize()
            .ok()
            .zip(b.canonicalize().ok())
            .is_some_and(|(a, b)| a == b)
}

struct Delivery<'a> {
    opts: &'a DeliveryOpts,
    token: Option<&'a str>,
    dead_letter: &'a PathBuf,
    checkpoint: Option<&'a PathBuf>,
    dry_run: bool,
    summary_json: Option<&'a PathBuf>,
}

impl Delivery<'_> {
    fn run(&self, options: PipelineOptions, round: &Round, quiet: bool) -> Result<ExitCode> {
        let credentials = match self.opts.credentials(self.token) {
            Ok(credentials) => Some(credentials),
            // A dry run says what it would do, credentials or not.
            Err(_) if self.dry_run => None,
            Err(error) => return Err(error),
        };
        let config = self.opts.export_config(
            credentials
                .clone()
                .unwrap_or_else(|| Credentials::ProjectToken(currents_mixpanel::Secret::new(""))),
        );
        let dead_letter = DeadLetter::append(self.dead_letter).with_context(|| {
            format!("cannot open the dead letter {}", self.dead_letter.display())
        })?;
        let mut finish = Finish::new(quiet, self.summary_json.map(PathBuf::as_path));
        finish.text.delivered = !self.dry_run;
        let mut sink: Box<dyn Sink> = if self.dry_run {
            let url = Client::new(&config.client).url().to_owned();
            let kind = credentials.as_ref().map_or("none found", Credentials::kind);
            let region = config.client.region.name();
            finish.extra =
                json!({"dry_run": {"endpoint": url, "region": region, "credentials": kind}});
            finish.dry_run = Some((url, kind));
            Box::new(DryRunSink::new(&config))
        } else {
            Box::new(ImportSink::new(config))
        };
        let setup = |pipeline: Pipeline| {
            let pipeline = pipeline.dead_letter(dead_letter);
            match self.checkpoint {
                Some(path) => pipeline.checkpoint(path),
                None => pipeline,
            }
        };
        finish.run(round, options, setup, sink.as_mut())
    }
}
