//! The printed report of a `schema sync` / `schema diff` run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::Options;
use super::findings::{Finding, NewType, TypeReport, type_label};

#[derive(Debug, Default)]
pub(super) struct Counts {
    new_types: usize,
    new_fields: usize,
    changed: usize,
    removed: usize,
    docs: usize,
}

impl Counts {
    pub(super) fn total(&self) -> usize {
        self.new_types + self.new_fields + self.changed + self.removed + self.docs
    }

    pub(super) fn applied(&self) -> usize {
        self.new_types + self.new_fields + self.changed + self.docs
    }

    pub(super) fn line(&self, opts: &Options, written: &[PathBuf]) -> String {
        if self.total() == 0 {
            return "no changes".into();
        }
        let mut parts = Vec::new();
        for (n, what) in [
            (self.new_types, "new event type(s)"),
            (self.new_fields, "new field(s)"),
            (self.changed, "type/nullability/PII/Avro change(s)"),
            (
                self.removed,
                "field(s) missing from the writer schemas (kept)",
            ),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if self.docs > 0 {
            let how = if opts.docs {
                "applied"
            } else if opts.write {
                "not applied; --docs applies them"
            } else {
                "sync --docs applies them"
            };
            parts.push(format!("{} doc change(s) ({how})", self.docs));
        }
        let summary = parts.join(", ");
        if !opts.write {
            return format!("differences: {summary}");
        }
        if written.is_empty() {
            format!("no changes; still reported: {summary}")
        } else {
            let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            format!("{summary}; wrote {}", files.join(", "))
        }
    }
}

pub(super) fn render(
    out: &mut String,
    reports: &BTreeMap<String, TypeReport>,
    opts: &Options,
) -> Counts {
    let mut counts = Counts::default();
    let review = " — review";
    for (event_type, report) in reports {
        if report
            .items
            .iter()
            .all(|i| matches!(i, Finding::NotInAvro { .. }))
            && !opts.verbose
        {
            continue;
        }
        let _ = writeln!(out, "\n{event_type}  ({})", report.file.display());
        for item in &report.items {
            let line = match item {
                Finding::NewType(new) => {
                    counts.new_types += 1;
                    render_new_type(out, new, &mut counts);
                    continue;
                }
                Finding::NewField { field, library } => {
                    counts.new_fields += 1;
                    let kind = if *library {
                        "new field (library field), mapped as in the library"
                    } else {
                        "new field, mapped by default (keep)"
                    };
                    format!(
                        "  + {}: {}{}: {kind}{review}",
                        field.name,
                        type_label(field.ty, field.nullable),
                        if field.pii { ", pii" } else { "" }
                    )
                }
                Finding::TypeChange { name, from, to } => {
                    counts.changed += 1;
                    format!(
                        "  ~ {name}: {} -> {}",
                        type_label(from.0, from.1),
                        type_label(to.0, to.1)
                    )
                }
                Finding::PiiChange { name, to } => {
                    counts.changed += 1;
                    format!(
                        "  ~ {name}: pii {} -> {to} (writer doc {} [PII])",
                        !to,
                        if *to { "starts with" } else { "lacks" }
                    )
                }
                Finding::NowInAvro { name } => {
                    counts.changed += 1;
                    match name {
                        Some(n) => {
                            format!("  ~ {n}: marked avro = false, but the writer schema has it")
                        }
                        None => {
                            "  ~ event type marked avro = false, but it has a writer schema".into()
                        }
                    }
                }
                Finding::Removed { name } => {
                    counts.removed += 1;
                    format!("  - {name}: not in the writer schema (reported, not deleted)")
                }
                Finding::DocChange { name, from, to } => {
                    counts.docs += 1;
                    let what = match name {
                        Some(n) => format!("doc of {n}"),
                        None => "event doc".into(),
                    };
                    let note = if opts.docs && opts.write {
                        ""
                    } else {
                        " (not applied)"
                    };
                    format!("  ~ {what}{note}:\n      was: {from:?}\n      now: {to:?}")
                }
                Finding::NotInAvro { name } => format!("  . {name}: not in Avro (expected)"),
            };
            let _ = writeln!(out, "{line}");
        }
    }
    if !reports.is_empty() {
        out.push('\n');
    }
    counts
}

pub(super) fn render_new_type(out: &mut String, new: &NewType, counts: &mut Counts) {
    let _ = writeln!(
        out,
        "  + NEW EVENT TYPE -> {}{}: rust_name {}, category {}{}, Mixpanel name {:?} (by convention) — review",
        new.file.display(),
        if new.new_file { " (new file)" } else { "" },
        new.rust_name,
        new.category.as_str(),
        new.channel
            .as_ref()
            .map(|c| format!(", channel {c}"))
            .unwrap_or_default(),
        new.mixpanel_name
    );
    for (segment, display) in &new.new_segments {
        let _ = writeln!(
            out,
            "  + segment {segment}: display name {display:?} added to currents.toml [naming.segments] — review"
        );
    }
    for note in &new.notes {
        let _ = writeln!(out, "  ! {note} — review");
    }
    let mut library = Vec::new();
    if !new.include.is_empty() {
        library.push(format!("include {}", new.include.join(", ")));
    }
    if !new.exclude.is_empty() {
        library.push(format!("exclude {}", new.exclude.join(", ")));
    }
    if !new.fields.is_empty() {
        library.push(format!("fields {}", new.fields.join(", ")));
    }
    if !library.is_empty() {
        let _ = writeln!(out, "  + library: {}", library.join("; "));
    }
    for entry in &new.entries {
        let wf = new.schema.field(&entry.name);
        let label = wf
            .map(|f| {
                format!(
                    "{}{}",
                    type_label(f.ty, f.nullable),
                    if f.pii { ", pii" } else { "" }
                )
            })
            .unwrap_or_default();
        if entry.local {
            counts.new_fields += 1;
            let _ = writeln!(
                out,
                "  + {}: {label}: new field, mapped by default (keep) — review",
                entry.name
            );
        } else {
            let keys: Vec<&str> = entry.attrs.iter().map(|(k, _)| *k).collect();
            let _ = writeln!(
                out,
                "  + {}: {label}: library field, overrides {}",
                entry.name,
                keys.join(", ")
            );
        }
    }
}
