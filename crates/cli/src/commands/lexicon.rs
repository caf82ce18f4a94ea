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
    let m = &args.mapping;
    let options = LexiconOptions::new(m.profile.into(), m.identity.into(), m.pii_actions());
    let lexicon = entries(&options);
    if !args.push || args.output.is_some() {
        let mut out: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(create(path)?),
            None => Box::new(std::io::stdout().lock()),
        };
        writeln!(out, "{:#}", Lexicon::body(&lexicon.entries))?;
    }
    if !quiet {
        eprint(&format!("lexicon: {lexicon}\n"));
    }
    if args.push {
        let credentials = args.delivery.credentials(None)?;
        let config = args.delivery.export_config(credentials);
        let mut push_config = PushConfig::for_client(config.client);
        push_config.window = Duration::from_secs(args.window_secs);
        let report = push(&lexicon.entries, &push_config)?;
        if !quiet {
            eprint(&format!("{report}\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
