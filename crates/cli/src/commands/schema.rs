use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
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
    let both = serde_json::json!({
        "input": serde_json::from_str::<serde_json::Value>(input)?,
        "mixpanel": serde_json::from_str::<serde_json::Value>(output)?,
    });
    writeln!(out, "{both:#}")?;
    Ok(ExitCode::SUCCESS)
}
