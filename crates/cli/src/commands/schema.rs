use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use currents_events::{EVENT_TYPES, event_type_info};
use currents_mixpanel::event_mapping;

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
        let width = EVENT_TYPES
            .iter()
            .map(|i| i.event_type.len())
            .max()
            .unwrap_or(0);
        writeln!(
            out,
            "{:<width$}  {:<9} {:>6}  MIXPANEL EVENT",
            "EVENT TYPE", "CATEGORY", "FIELDS"
        )?;
        for info in EVENT_TYPES {
            let mapping = event_mapping(info.event_type);
            let name = mapping.map_or("", |m| m.mixpanel_name);
            let convention = if mapping.is_some_and(|m| m.name_by_convention) {
                "  (by convention)"
            } else {
                ""
            };
            let category = info.channel.unwrap_or(info.category);
            writeln!(
                out,
                "{:<width$}  {:<9} {:>6}  {name}{convention}",
                info.event_type,
                category,
                info.fields.len()
            )?;
        }
        writeln!(
            out,
            "\n{} event types. `currents schema TYPE` shows one type's fields.",
            EVENT_TYPES.len()
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let (Some(info), Some(mapping)) = (event_type_info(&event_type), event_mapping(&event_type))
    else {
        bail!("unknown event type {event_type:?}; `currents schema` lists the known ones");
    };
    if args.json_schema {
        let Some((_, input, output)) = JSON_SCHEMAS.iter().find(|(t, _, _)| *t == event_type)
        else {
            bail!("no JSON Schema for {event_type}");
        };
        let both = serde_json::json!({
            "input": serde_json::from_str::<serde_json::Value>(input)?,
            "mixpanel": serde_json::from_str::<serde_json::Value>(output)?,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&both)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{}  ({})",
        info.event_type,
        info.channel.unwrap_or(info.category)
    )?;
    writeln!(out, "  {}", info.doc)?;
    let convention = if mapping.name_by_convention {
        " (by the naming convention)"
    } else {
        ""
    };
    writeln!(
        out,
        "  Mixpanel event: {}{convention}\n",
        mapping.mixpanel_name
    )?;
    let width = info
        .fields
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(0)
        .max(5);
    writeln!(
        out,
        "  {:<width$}  {:<16} {:<4} {:<26} DOC",
        "FIELD", "TYPE", "PII", "MIXPANEL (braze / full)"
    )?;
    for (field, map) in info.fields.iter().zip(mapping.fields) {
        let ty = format!(
            "{}{}",
            field.ty.as_str(),
            if field.nullable { "?" } else { "" }
        );
        let target = match (map.expand, map.braze, map.full) {
            (Some(prefix), _, _) => format!("expand \"{prefix}…\""),
            (None, Some(b), Some(f)) if b == f => b.to_owned(),
            (None, Some(b), Some(f)) => format!("{b} / {f}"),
            (None, None, Some(f)) => format!("dropped / {f}"),
            (None, _, None) => "dropped".to_owned(),
        };
        let pii = if field.pii { "yes" } else { "" };
        writeln!(
            out,
            "  {:<width$}  {ty:<16} {pii:<4} {target:<26} {}",
            field.name, field.doc
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
