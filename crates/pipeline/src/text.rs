//! The report as text for people (see [`Report::to_text`]).

use std::collections::BTreeMap;

use crate::report::Report;

/// How [`Report::to_text`] reads.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TextOptions {
    /// Show where the first skipped records are too (validation).
    pub skip_examples: bool,
    /// End with a verdict on schema drift and what to do about it (validation).
    pub drift: bool,
}

impl Report {
    /// A short human summary: the buckets with their reasons (and where the
    /// first rejected or dead-lettered records are), warnings, input errors,
    /// ignored files, drift, and the event types with most records.
    pub fn to_text(&self, options: &TextOptions) -> String {
        text(self, options)
    }
}

fn text(report: &Report, options: &TextOptions) -> String {
    // Say `imported` (not `mapped`) after a delivery.
    let (delivered, examples) = (report.delivery.is_some(), options.skip_examples);
    let seconds = report.elapsed.as_secs_f64();
    let rate = if seconds >= 0.001 {
        format!(" ({:.0} records/s)", report.read as f64 / seconds)
    } else {
        String::new()
    };
    let mut out = match &report.dry_run {
        Some(dry) => format!(
            "dry run: would send {} event(s) in {} request(s) ({}) to {}, credentials: {}; nothing sent\n",
            report.written,
            dry.batches,
            human_bytes(dry.batch_bytes),
            dry.endpoint,
            dry.credentials,
        ),
        None => String::new(),
    };
    out += &format!(
        "read {} record(s) from {} file(s) ({}) in {seconds:.2}s{rate}\n",
        report.read,
        report.files,
        human_bytes(report.bytes),
    );
    let main = if delivered {
        ("imported", report.imported)
    } else {
        ("mapped", report.mapped)
    };
    out.push_str(&format!("  {:<14} {}\n", main.0, main.1));
    if report.unresolved > 0 {
        out.push_str(&format!(
            "  {:<14} {} (the run stopped first; rerun with --checkpoint to send them)\n",
            "unresolved", report.unresolved
        ));
    }
    let none = BTreeMap::new();
    let sections = [
        ("skipped", &report.skipped, examples),
        ("rejected", &report.rejected, true),
        ("dead-lettered", &report.dead_lettered, true),
        ("warnings", &report.warnings, false),
        ("input errors", &report.errors, false),
        ("ignored files", &report.ignored, false),
        ("unknown types", &report.unknown_event_types, false),
        ("unknown fields", &report.unknown_fields, false),
    ];
    for (title, map, examples) in sections {
        let examples = if examples { &report.examples } else { &none };
        section(&mut out, title, map, examples);
    }
    if report.by_event_type.len() > 1 {
        types(&mut out, report, delivered);
    }
    if options.drift {
        drift(&mut out, report);
    }
    out
}

fn drift(out: &mut String, report: &Report) {
    let (types, fields) = (
        report.unknown_event_types.len(),
        report.unknown_fields.len(),
    );
    if types == 0 && fields == 0 {
        out.push_str("schema drift: none (every event type and field is in the schema)\n");
    } else {
        out.push_str(&format!(
            "schema drift: {types} unknown event type(s), {fields} unknown field(s). They are \
             counted, not sent under --profile braze: upgrade currents for a schema that knows \
             them, or pass --unknown-fields keep (or --profile full) to send them as they are.\n"
        ));
    }
}

fn section(
    out: &mut String,
    title: &str,
    map: &BTreeMap<String, u64>,
    examples: &BTreeMap<String, Vec<String>>,
) {
    if map.is_empty() {
        return;
    }
    out.push_str(&format!("  {title:<14} {}\n", map.values().sum::<u64>()));
    for (reason, n) in map.iter().take(20) {
        out.push_str(&format!("    {reason}: {n}\n"));
        for example in examples.get(reason).into_iter().flatten() {
            out.push_str(&format!("      e.g. {example}\n"));
        }
    }
    if map.len() > 20 {
        out.push_str(&format!("    … and {} more\n", map.len() - 20));
    }
}

/// The per-type table: the types with most records first.
fn types(out: &mut String, report: &Report, delivered: bool) {
    const SHOWN: usize = 12;
    let mut rows: Vec<_> = report.by_event_type.iter().collect();
    rows.sort_by(|a, b| b.1.read.cmp(&a.1.read).then(a.0.cmp(b.0)));
    let width = rows
        .iter()
        .take(SHOWN)
        .map(|r| r.0.len())
        .max()
        .unwrap_or(0);
    let (done, dead) = if delivered {
        ("imported", " dead-lettered")
    } else {
        ("mapped", "")
    };
    out.push_str(&format!(
        "  {:<width$} {:>8} {:>8} {:>8} {:>8}{dead}\n",
        "by event type", "read", done, "skipped", "rejected"
    ));
    for (name, c) in rows.iter().take(SHOWN) {
        let main = if delivered { c.imported } else { c.mapped };
        let dead = if delivered {
            format!(" {:>13}", c.dead_lettered)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {name:<width$} {:>8} {main:>8} {:>8} {:>8}{dead}\n",
            c.read, c.skipped, c.rejected
        ));
    }
    if rows.len() > SHOWN {
        out.push_str(&format!(
            "  … and {} more type(s) in --summary-json\n",
            rows.len() - SHOWN
        ));
    }
}

/// `1536` → `1.50 KiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.2} {}", UNITS[unit]),
    }
}
