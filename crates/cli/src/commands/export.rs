use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use currents_mixpanel::{
    BatchLimits, BodyFormat, ClientConfig, Credentials, CredentialsError, DeadLetterWriter,
    ExportConfig, ExportError, Exporter, Region, RetryPolicy, Secret,
};

use crate::MapOpts;
use crate::inputs;
use crate::pipeline::{Emit, Item, KeepInput, Validated};
use crate::summary::{Summary, bump};

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub opts: MapOpts,
    /// Mixpanel project ID (with service-account credentials).
    #[arg(long, env = "MIXPANEL_PROJECT_ID", hide_env_values = true)]
    pub project_id: Option<String>,
    /// Data residency of the project.
    #[arg(long, value_enum, default_value_t = RegionArg::Us)]
    pub region: RegionArg,
    /// Send to this base URL instead of the region's (e.g. a test server).
    #[arg(long, value_name = "URL")]
    pub api_base: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Most events per request (Mixpanel allows 2000).
    #[arg(long, default_value_t = 2000)]
    pub batch_events: usize,
    /// Most uncompressed bytes per request (Mixpanel allows 10 MB).
    #[arg(long, default_value_t = 10_000_000)]
    pub batch_bytes: usize,
    /// Gzip request bodies (default).
    #[arg(long, overrides_with = "no_gzip")]
    pub gzip: bool,
    /// Send request bodies uncompressed.
    #[arg(long)]
    pub no_gzip: bool,
    /// Send a JSON array instead of NDJSON.
    #[arg(long)]
    pub json_array: bool,
    /// NDJSON file receiving every event that was not imported, with the reason.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "currents-dead-letter.ndjson"
    )]
    pub dead_letter: PathBuf,
    /// Keep every event's input record for its dead-letter line. By default
    /// only events rejected before sending carry `input`; events Mixpanel
    /// refuses after sending are found by `source` (file, record, line).
    /// Costs one input record of memory per event in flight.
    #[arg(long)]
    pub dead_letter_input: bool,
    /// Checkpoint file: resume from it, and keep it up to date.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Validate and batch, send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// First retry delay in milliseconds (doubles up to --retry-max-ms).
    #[arg(long, default_value_t = 2000, hide = true)]
    pub retry_base_ms: u64,
    #[arg(long, default_value_t = 60_000, hide = true)]
    pub retry_max_ms: u64,
    /// Jitter added to each retry delay, in milliseconds (1000–5000 by default).
    #[arg(long, default_value_t = 1000, hide = true)]
    pub retry_jitter_min_ms: u64,
    #[arg(long, default_value_t = 5000, hide = true)]
    pub retry_jitter_max_ms: u64,
    /// Attempts per batch before it is dead-lettered.
    #[arg(long, default_value_t = 8)]
    pub max_attempts: u32,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionArg {
    Us,
    Eu,
    In,
}

/// Credentials from the environment (`--project-id` standing in for
/// `MIXPANEL_PROJECT_ID`); with none there, a `--token` authenticates alone.
/// Broken credentials are an error, never silently replaced by the token.
fn credentials(args: &ExportArgs) -> Result<Credentials> {
    let project_id = args.project_id.clone();
    match Credentials::from_lookup(|name| match name {
        "MIXPANEL_PROJECT_ID" => project_id.clone(),
        other => std::env::var(other).ok(),
    }) {
        Ok(credentials) => Ok(credentials),
        Err(CredentialsError::Missing) if args.opts.token.is_some() => Ok(
            Credentials::ProjectToken(Secret::new(args.opts.token.clone().unwrap_or_default())),
        ),
        Err(error) => Err(error.into()),
    }
}

pub fn run(args: ExportArgs, quiet: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let inputs = inputs::expand(&args.opts.inputs)?;
    if args.batch_events == 0 || args.batch_events > 2000 {
        bail!("--batch-events must be between 1 and 2000");
    }
    if args.dry_run {
        return dry_run(&args, &inputs, quiet, started);
    }
    let credentials = credentials(&args)?;
    let dead_letter_existed = args.dead_letter.exists();
    let mut client = ClientConfig::new(credentials);
    client.region = match args.region {
        RegionArg::Us => Region::Us,
        RegionArg::Eu => Region::Eu,
        RegionArg::In => Region::India,
    };
    client.api_base = args.api_base.clone();
    let dead_letter = DeadLetterWriter::append(&args.dead_letter)
        .with_context(|| format!("cannot open the dead letter {}", args.dead_letter.display()))?;
    let mut config = ExportConfig::new(client, dead_letter);
    config.concurrency = args.concurrency.max(1);
    config.batch = BatchLimits {
        max_events: args.batch_events,
        max_bytes: args.batch_bytes,
    };
    config.format = if args.json_array {
        BodyFormat::JsonArray
    } else {
        BodyFormat::Ndjson
    };
    config.gzip = !args.no_gzip;
    config.retry = RetryPolicy {
        base_delay: Duration::from_millis(args.retry_base_ms),
        max_delay: Duration::from_millis(args.retry_max_ms),
        jitter_min: Duration::from_millis(args.retry_jitter_min_ms),
        jitter_max: Duration::from_millis(args.retry_jitter_max_ms.max(args.retry_jitter_min_ms)),
        max_attempts: args.max_attempts.max(1),
    };
    config.checkpoint = args.checkpoint.clone();
    let mut exporter = Exporter::new(config)?;
    let pipeline = args.opts.pipeline(
        quiet,
        Emit::Prepared {
            keep_input: if args.dead_letter_input {
                KeepInput::All
            } else {
                KeepInput::Rejected(super::validator())
            },
        },
    )?;
    let mut summary = Summary::default();
    let positions: std::collections::HashMap<String, u64> = inputs
        .iter()
        .map(|i| {
            let name = i.name();
            let position = exporter.checkpoint_position(&name);
            (name, position)
        })
        .collect();
    let run = pipeline.run(
        &inputs,
        &mut summary,
        |file| positions.get(file).copied().unwrap_or(0),
        |item, _| {
            match item {
                Item::Mapped(event, _) => {
                    if exporter.submit(event).is_err() {
                        // Stopped on a fatal error: finish() reports it.
                        bail!("export stopped");
                    }
                }
                Item::Validated(_) => bail!("export runs the pipeline with prepared events"),
                Item::Skipped(source, reason) => exporter.skip(source, reason),
                Item::Failed(source, error) => {
                    let reason = crate::pipeline::error_reason(error);
                    for k in 0..error.records {
                        let mut record = source.clone();
                        record.record += k;
                        exporter.skip(record, &reason);
                    }
                }
            }
            Ok(())
        },
    );
    let (report, fatal) = match exporter.finish() {
        Ok(report) => (report, None),
        Err(ExportError::Failed { error, report }) => (*report, Some(error)),
        Err(error) => return Err(error.into()),
    };
    if let Err(error) = run
        && error.to_string() != "export stopped"
    {
        return Err(error);
    }
    summary.imported = report.imported;
    for (reason, n) in &report.rejected {
        bump(&mut summary.rejected, reason, *n);
    }
    for (reason, n) in &report.dead_lettered {
        bump(&mut summary.dead_lettered_reasons, reason, *n);
    }
    summary.dead_lettered = report.dead_lettered_total();
    summary.unresolved = report.unresolved;
    summary.mapped = report.submitted;
    if !dead_letter_existed && report.dead_lettered_total() + report.rejected_total() == 0 {
        // Nothing went there: leave no empty file behind.
        let _ = std::fs::remove_file(&args.dead_letter);
    }
    let code = super::finish(summary, started, &args.opts, quiet, true)?;
    match fatal {
        // The summary above says how far it got; the checkpoint lets a rerun continue.
        Some(error) => bail!("{error}"),
        None => Ok(code),
    }
}

/// Validates and batches like a real export, sending nothing.
fn dry_run(
    args: &ExportArgs,
    inputs: &[inputs::Input],
    quiet: bool,
    started: Instant,
) -> Result<ExitCode> {
    let pipeline = args
        .opts
        .pipeline(quiet, Emit::Validated(super::validator()))?;
    let (mut batches, mut in_batch, mut batch_bytes) = (0u64, 0usize, 0usize);
    let summary = pipeline.run_validated(inputs, |event, summary| {
        let Validated {
            json, rejection, ..
        } = event;
        if let Some(rejection) = rejection {
            bump(&mut summary.rejected, rejection.reason(), 1);
            return Ok(());
        }
        let size = json.len() + 1;
        if in_batch == 0 || in_batch == args.batch_events || batch_bytes + size > args.batch_bytes {
            batches += 1;
            in_batch = 0;
            batch_bytes = 0;
        }
        in_batch += 1;
        batch_bytes += size;
        summary.mapped += 1;
        Ok(())
    })?;
    if !quiet {
        eprintln!(
            "dry run: {} event(s) in {batches} request(s); nothing sent",
            summary.mapped
        );
    }
    super::finish(summary, started, &args.opts, quiet, false)
}
