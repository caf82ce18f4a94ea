use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Directory to write the demo dataset into.
    #[arg(short, long, value_name = "DIR", default_value = "sample-data")]
    pub output: PathBuf,
}

pub fn run(args: SampleArgs, quiet: bool) -> Result<ExitCode> {
    let files = currents_events::sample::write_dataset(&args.output)
        .with_context(|| format!("cannot write the dataset to {}", args.output.display()))?;
    if !quiet {
        crate::output::eprint(&format!(
            "wrote {files} file(s) to {}\n",
            args.output.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}
