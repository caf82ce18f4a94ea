//! The commands about the data itself: `schema`, `sample`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use currents_mixpanel::describe;

use crate::generated::JSON_SCHEMAS;

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Event type to show, e.g. users.messages.email.Open (default: list them all).
    pub event_type: Option<String>,
    /// Print the JSON Schemas (input record and Mixpanel output) of the event type.
    #[arg(long, requires = "event_type")]
    pub json_schema: bool,
}

pub fn run(args: SchemaArgs) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let Some(event_type) = args.event_type else {
        write!(out, "{}", describe::event_types())?;
        return Ok(ExitCode::SUCCESS);
    };
    let Some(text) = describe::event_type(&event_type) else {
        bail!("unknown event type {event_type:?}; `currents schema` lists the known ones");
    };
    if !args.json_schema {
        write!(out, "{text}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some((_, input, output)) = JSON_SCHEMAS.iter().find(|(t, _, _)| *t == event_type) else {
        bail!("no JSON Schema for {event_type}");
    };
    // Both documents as generated (pretty already), side by side.
    let (input, output) = (input.trim_end(), output.trim_end());
    writeln!(out, "{{\n\"input\": {input},\n\"mixpanel\": {output}\n}}")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Directory to write the demo dataset into.
    #[arg(short, long, value_name = "DIR", default_value = "sample-data")]
    pub output: PathBuf,
}

pub fn sample(args: SampleArgs, quiet: bool) -> Result<ExitCode> {
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
