use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use currents_mixpanel::lexicon::{Lexicon, LexiconOptions, PushConfig, entries, push};

use crate::opts::{DeliveryOpts, MappingOpts, create};
use crate::output::eprint;

#[derive(Args, Debug)]
pub struct LexiconArgs {
    /// The mapping the dictionary describes (as for `export`).
    #[command(flatten)]
    pub mapping: MappingOpts,
    /// Write the Lexicon Schemas API body here (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Send it to the project's Lexicon (a service account; merges, never
    /// truncates; within 5 requests and 4,000 entities a minute).
    #[arg(long)]
    pub push: bool,
    #[command(flatten)]
    pub delivery: DeliveryOpts,
    /// Seconds of the rate-limit window (tests).
    #[arg(long, default_value_t = 60, hide = true)]
    pub window_secs: u64,
}

pub fn run(args: LexiconArgs, quiet: bool) -> Result<ExitCode> {
    let mut options = LexiconOptions::default();
    options.profile = args.mapping.profile.into();
    options.identity = args.mapping.identity.into();
    (options.pii, options.pii_user_id) = args.mapping.pii_actions();
    let lexicon = entries(&options);
    if !args.push || args.output.is_some() {
        let mut out: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(create(path)?),
            None => Box::new(std::io::stdout().lock()),
        };
        writeln!(out, "{:#}", Lexicon::body(&lexicon.entries))?;
    }
    let entities: usize = lexicon.entries.iter().map(|e| e.entities()).sum();
    if !quiet {
        eprint(&format!(
            "lexicon: {} event(s), {entities} entities; no entry for names set by the data: {}\n",
            lexicon.entries.len(),
            lexicon.dynamic.join(", ")
        ));
    }
    if args.push {
        let config = args
            .delivery
            .export_config(args.delivery.credentials(None)?);
        let mut push_config = PushConfig::new(config.client.credentials);
        push_config.region = config.client.region;
        push_config.api_base = config.client.api_base;
        push_config.window = Duration::from_secs(args.window_secs);
        let report = push(&lexicon.entries, &push_config)?;
        if !quiet {
            eprint(&format!(
                "pushed {} entries in {} request(s): {} added ({} s waiting for the limits)\n",
                report.entries,
                report.requests,
                report.added,
                report.waited_ms / 1000
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
