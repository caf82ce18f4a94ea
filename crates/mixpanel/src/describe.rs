//! Text descriptions of the glossary for people: every event type with its
//! Mixpanel name, and one type's fields with their types, PII flags and
//! mapping (what `currents schema` prints).

use std::fmt::Write as _;

use currents_events::{EVENT_TYPES, event_type_info};

use crate::event_mapping;

/// One line per event type: type, category, field count, Mixpanel name.
///
/// ```
/// assert!(currents_mixpanel::describe::event_types().contains("users.messages.email.Open"));
/// ```
pub fn event_types() -> String {
    let mut out = String::new();
    let width = EVENT_TYPES
        .iter()
        .map(|i| i.event_type.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "{:<width$}  {:<9} {:>6}  MIXPANEL EVENT",
        "EVENT TYPE", "CATEGORY", "FIELDS"
    );
    for info in EVENT_TYPES {
        let mapping = event_mapping(info.event_type);
        let name = mapping.map_or("", |m| m.mixpanel_name);
        let convention = if mapping.is_some_and(|m| m.name_by_convention) {
            "  (by convention)"
        } else {
            ""
        };
        let category = info.channel.unwrap_or(info.category);
        let _ = writeln!(
            out,
            "{:<width$}  {:<9} {:>6}  {name}{convention}",
            info.event_type,
            category,
            info.fields.len()
        );
    }
    let _ = writeln!(
        out,
        "\n{} event types. `currents schema TYPE` shows one type's fields.",
        EVENT_TYPES.len()
    );
    out
}

/// One event type: its doc, Mixpanel name, and a line per field (type,
/// PII, Braze and full-profile property, doc). `None` for unknown types.
///
/// ```
/// let text = currents_mixpanel::describe::event_type("users.messages.email.Open").unwrap();
/// assert!(text.contains("email_address"));
/// ```
pub fn event_type(event_type: &str) -> Option<String> {
    let (info, mapping) = (event_type_info(event_type)?, event_mapping(event_type)?);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  ({})",
        info.event_type,
        info.channel.unwrap_or(info.category)
    );
    let _ = writeln!(out, "  {}", info.doc);
    let convention = if mapping.name_by_convention {
        " (by the naming convention)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  Mixpanel event: {}{convention}\n",
        mapping.mixpanel_name
    );
    let width = info
        .fields
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        out,
        "  {:<width$}  {:<16} {:<4} {:<26} DOC",
        "FIELD", "TYPE", "PII", "MIXPANEL (braze / full)"
    );
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
        let _ = writeln!(
            out,
            "  {:<width$}  {ty:<16} {pii:<4} {target:<26} {}",
            field.name, field.doc
        );
    }
    Some(out)
}
