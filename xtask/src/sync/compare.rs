//! Comparing writer schemas with the glossary, and planning where and how a
//! new event type is added.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use currents_core::naming;
use currents_schema::{Category, EventType, Glossary};

use super::Options;
use super::findings::{
    Attr, Finding, NewEntry, NewType, TypeReport, doc_or_placeholder, field_attr, local_default,
    writer_attrs,
};
use crate::writer::{WriterField, WriterSchema};

pub(super) fn compare(
    glossary: &Glossary,
    schemas: &BTreeMap<String, WriterSchema>,
    group_order: &[String],
    opts: &Options,
) -> BTreeMap<String, TypeReport> {
    let mut reports = BTreeMap::new();
    let mut planned_segments: BTreeSet<String> = BTreeSet::new();
    let mut planned_rust: BTreeSet<String> = BTreeSet::new();
    for (event_type, schema) in schemas {
        let report = match glossary.event(event_type) {
            Some(ev) => compare_event(glossary, ev, schema, opts),
            None => {
                let mut new = plan_new_type(glossary, schema, group_order, opts);
                new.new_segments
                    .retain(|(s, _)| planned_segments.insert(s.clone()));
                if !planned_rust.insert(new.rust_name.clone()) {
                    new.notes
                        .push(format!("rust_name `{}` is taken twice", new.rust_name));
                }
                TypeReport {
                    file: new.file.clone(),
                    items: vec![Finding::NewType(Box::new(new))],
                }
            }
        };
        if !report.items.is_empty() {
            reports.insert(event_type.clone(), report);
        }
    }
    reports
}

pub(super) fn compare_event(
    glossary: &Glossary,
    ev: &EventType,
    schema: &WriterSchema,
    opts: &Options,
) -> TypeReport {
    let mut items = Vec::new();
    if !ev.avro {
        items.push(Finding::NowInAvro { name: None });
    }
    if ev.doc != doc_or_placeholder(&schema.doc) {
        items.push(Finding::DocChange {
            name: None,
            from: ev.doc.clone(),
            to: doc_or_placeholder(&schema.doc),
        });
    }
    for wf in &schema.fields {
        let Some(f) = ev.field(&wf.name) else {
            items.push(Finding::NewField {
                field: wf.clone(),
                library: glossary.library_field(&wf.name).is_some(),
            });
            continue;
        };
        if ev.avro && !f.avro {
            items.push(Finding::NowInAvro {
                name: Some(f.name.clone()),
            });
        }
        if (f.ty, f.nullable) != (wf.ty, wf.nullable) {
            items.push(Finding::TypeChange {
                name: f.name.clone(),
                from: (f.ty, f.nullable),
                to: (wf.ty, wf.nullable),
            });
        }
        if f.pii != wf.pii {
            items.push(Finding::PiiChange {
                name: f.name.clone(),
                to: wf.pii,
            });
        }
        if f.doc != doc_or_placeholder(&wf.doc) {
            items.push(Finding::DocChange {
                name: Some(f.name.clone()),
                from: f.doc.clone(),
                to: doc_or_placeholder(&wf.doc),
            });
        }
    }
    for f in &ev.fields {
        if schema.field(&f.name).is_some() {
            continue;
        }
        if f.avro && ev.avro {
            items.push(Finding::Removed {
                name: f.name.clone(),
            });
        } else if opts.verbose {
            items.push(Finding::NotInAvro {
                name: f.name.clone(),
            });
        }
    }
    items.sort_by_key(Finding::rank);
    TypeReport {
        file: ev.location.file.clone(),
        items,
    }
}

/// Category and channel from the namespace; `None` when it has to be guessed.
pub(super) fn infer_category(namespace: &str) -> Option<(Category, Option<String>)> {
    let segs: Vec<&str> = namespace.split('.').collect();
    match segs.as_slice() {
        ["users", "messages", channel, ..] => Some((Category::Message, Some((*channel).into()))),
        ["users", "behaviors", ..] => Some((Category::Behavior, None)),
        ["users", "campaigns", ..] => Some((Category::Campaign, None)),
        ["users", "canvas" | "canvasstep", ..] => Some((Category::Canvas, None)),
        ["users"] | ["users", "profile", ..] => Some((Category::User, None)),
        ["agentconsole", ..] => Some((Category::Agent, None)),
        _ => None,
    }
}

/// The events file a new type goes to (relative to the schema dir) and whether it is new.
pub(super) fn target_file(glossary: &Glossary, schemas: &Path, namespace: &str) -> (PathBuf, bool) {
    let ns_of = |e: &EventType| {
        e.event_type
            .rsplit_once('.')
            .map(|(ns, _)| ns.to_owned())
            .unwrap_or_default()
    };
    if let Some(ev) = glossary.events.iter().find(|e| ns_of(e) == namespace) {
        return (ev.location.file.clone(), false);
    }
    let segs: Vec<&str> = namespace.split('.').collect();
    let file = match segs.as_slice() {
        ["users", "messages", channel, ..] => {
            PathBuf::from(format!("events/messages/{channel}.toml"))
        }
        [first, second, ..] => {
            // The file most events sharing the first two segments live in.
            let prefix = format!("{first}.{second}");
            let mut counts: BTreeMap<&Path, usize> = BTreeMap::new();
            for ev in &glossary.events {
                let ns = ns_of(ev);
                if ns == prefix || ns.starts_with(&format!("{prefix}.")) {
                    *counts.entry(&ev.location.file).or_default() += 1;
                }
            }
            match counts.into_iter().max_by_key(|(_, n)| *n) {
                Some((file, _)) => file.to_owned(),
                None => PathBuf::from(format!(
                    "events/{}.toml",
                    segs.iter()
                        .filter(|s| **s != "users")
                        .copied()
                        .collect::<Vec<_>>()
                        .join("_")
                )),
            }
        }
        [only] => PathBuf::from(format!("events/{only}.toml")),
        [] => PathBuf::from("events/other.toml"),
    };
    let exists = schemas.join(&file).is_file();
    (file, !exists)
}

pub(super) fn plan_new_type(
    glossary: &Glossary,
    schema: &WriterSchema,
    group_order: &[String],
    opts: &Options,
) -> NewType {
    let event_type = &schema.event_type;
    let namespace = event_type.rsplit_once('.').map(|(n, _)| n).unwrap_or("");
    let mut notes = Vec::new();
    let (category, channel) = infer_category(namespace).unwrap_or_else(|| {
        notes.push("category guessed (`user`): the namespace matches no known category".into());
        (Category::User, None)
    });
    let new_segments: Vec<(String, String)> = namespace
        .split('.')
        .filter(|s| !glossary.segments.contains_key(*s))
        .map(|s| (s.to_owned(), naming::title_case(s)))
        .collect();
    let rust_name = glossary.rust_type_name(event_type);
    if glossary.events.iter().any(|e| e.rust_name == rust_name) {
        notes.push(format!("rust_name `{rust_name}` is already taken"));
    }
    let (file, new_file) = target_file(glossary, &opts.schemas, namespace);

    let matches = |wf: &WriterField| {
        glossary
            .library_field(&wf.name)
            .is_some_and(|lib| (lib.ty, lib.nullable) == (wf.ty, wf.nullable))
    };
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for name in group_order {
        let Some(group) = glossary.groups.iter().find(|g| &g.name == name) else {
            continue;
        };
        if group.fields.iter().any(|f| claimed.contains(f)) {
            continue;
        }
        let present: Vec<&WriterField> = group
            .fields
            .iter()
            .filter_map(|f| schema.field(f))
            .collect();
        let matching = present.iter().filter(|wf| matches(wf)).count();
        if matching * 2 > group.fields.len() {
            include.push(group.name.clone());
            for member in &group.fields {
                if schema.field(member).is_none() {
                    exclude.push(member.clone());
                } else {
                    claimed.insert(member.clone());
                }
            }
        }
    }
    let mut fields = Vec::new();
    let mut entries = Vec::new();
    for wf in &schema.fields {
        let lib = glossary.library_field(&wf.name);
        if !claimed.contains(&wf.name) && matches(wf) {
            fields.push(wf.name.clone());
            claimed.insert(wf.name.clone());
        }
        match lib {
            Some(lib) => {
                // Overrides of what differs from the library.
                let mut attrs: Vec<(&'static str, Attr)> = writer_attrs(wf)
                    .into_iter()
                    .filter(|(k, v)| field_attr(lib, k) != *v)
                    .collect();
                if !lib.avro {
                    attrs.push(("avro", Attr::Bool(true)));
                }
                if !attrs.is_empty() || !claimed.contains(&wf.name) {
                    entries.push(NewEntry {
                        name: wf.name.clone(),
                        local: false,
                        attrs,
                    });
                }
            }
            None => {
                let attrs = writer_attrs(wf)
                    .into_iter()
                    .filter(|(k, v)| local_default(k).as_ref() != Some(v))
                    .collect();
                entries.push(NewEntry {
                    name: wf.name.clone(),
                    local: true,
                    attrs,
                });
            }
        }
    }
    NewType {
        schema: schema.clone(),
        file,
        new_file,
        rust_name,
        category,
        channel,
        mixpanel_name: glossary.convention_name(event_type),
        new_segments,
        include,
        exclude,
        fields,
        entries,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(
            infer_category("users.messages.fax"),
            Some((Category::Message, Some("fax".into())))
        );
        assert_eq!(infer_category("users"), Some((Category::User, None)));
        assert_eq!(infer_category("partners.x"), None);
    }
}
