use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use currents_pipeline::bucket::State;

#[derive(Args, Debug)]
pub struct StateArgs {
    /// `show`: the objects done (URL, size, ETag or version, when); `reset`:
    /// forget them, so the next run reads them again.
    #[arg(value_enum)]
    pub action: Action,
    /// The --state directory of map, validate or export.
    pub dir: PathBuf,
    /// Only the objects under this key prefix (or s3://… URL prefix).
    #[arg(long, value_name = "KEY_PREFIX")]
    pub prefix: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Action {
    Show,
    Reset,
}

pub fn run(args: StateArgs, quiet: bool) -> Result<ExitCode> {
    let state = State::open_existing(&args.dir)?;
    let prefix = args.prefix.as_deref();
    let text = match args.action {
        Action::Show => {
            let entries = state.entries(prefix)?;
            let mut out = std::io::stdout().lock();
            for entry in &entries {
                writeln!(out, "{entry}")?;
            }
            format!("{} object(s) done\n", entries.len())
        }
        Action::Reset => format!("forgot {} object(s)\n", state.reset(prefix)?),
    };
    if !quiet {
        crate::output::eprint(&text);
    }
    Ok(ExitCode::SUCCESS)
}
