use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use currents_mixpanel::Credentials;
use currents_pipeline::bucket::Round;
use currents_pipeline::{
    DeadLetter, DryRunSink, ImportSink, KeepInput, Pipeline, PipelineOptions, Records, Sink,
    Sources,
};

use crate::opts::{DeliveryOpts, MapOpts};
use crate::output::Finish;

const DEAD_LETTER: &str = "currents-dead-letter.ndjson";
const REPLAY_DEAD_LETTER: &str = "currents-dead-letter.replay.ndjson";

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub opts: MapOpts,
    #[command(flatten)]
    pub delivery: DeliveryOpts,
    /// NDJSON file receiving a line (reason, source, event) for every record
    /// that is not imported; appended to, each line with the run's run_id.
    #[arg(long, value_name = "FILE", default_value = DEAD_LETTER)]
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
    #[arg(long, value_name = "FILE", default_value = REPLAY_DEAD_LETTER)]
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
        checkpoint: args.checkpoint.as_deref(),
        dry_run: args.dry_run,
        summary_json: args.opts.summary_json.as_deref(),
    };
    let inputs = args.opts.inputs()?;
    inputs.run(|round| delivery.run(options.clone(), round, quiet))
}

/// Sends the retryable events of dead letters again, through the same
/// pipeline (validation, batching, the ledger, a dead letter of its own).
pub fn replay(args: ReplayArgs, quiet: bool) -> Result<ExitCode> {
    let mut options = PipelineOptions::default();
    options.records = Records::DeadLetter;
    options.keep_input = KeepInput::All;
    let delivery = Delivery {
        opts: &args.delivery,
        token: args.token.as_deref(),
        dead_letter: &args.dead_letter,
        checkpoint: None,
        dry_run: false,
        summary_json: args.summary_json.as_deref(),
    };
    let round = Round::from(Sources::from_paths(&args.inputs)?);
    delivery.run(options, &round, quiet)
}

struct Delivery<'a> {
    opts: &'a DeliveryOpts,
    token: Option<&'a str>,
    dead_letter: &'a Path,
    checkpoint: Option<&'a Path>,
    dry_run: bool,
    summary_json: Option<&'a Path>,
}

impl Delivery<'_> {
    fn run(&self, options: PipelineOptions, round: &Round, quiet: bool) -> Result<ExitCode> {
        let found = match self.opts.credentials(self.token) {
            Ok(credentials) => Some(credentials),
            // A dry run says what it would do, credentials or not.
            Err(_) if self.dry_run => None,
            Err(error) => return Err(error),
        };
        let config = self.opts.export_config(found.unwrap_or(Credentials::None));
        let dead_letter = DeadLetter::append(self.dead_letter).with_context(|| {
            format!("cannot open the dead letter {}", self.dead_letter.display())
        })?;
        let mut sink: Box<dyn Sink> = match self.dry_run {
            true => Box::new(DryRunSink::new(&config)),
            false => Box::new(ImportSink::new(config)),
        };
        let setup = |pipeline: Pipeline| match self.checkpoint {
            Some(path) => pipeline.dead_letter(dead_letter).checkpoint(path),
            None => pipeline.dead_letter(dead_letter),
        };
        Finish::new(quiet, self.summary_json).run(round, options, setup, sink.as_mut())
    }
}
