//! Writing the findings into `schemas/` with `toml_edit`, so formatting and
//! comments survive.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use currents_schema::Glossary;
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};

use super::findings::{
    Attr, Finding, NewType, TypeReport, doc_or_placeholder, field_attr, local_default, type_label,
    writer_attrs,
};
use super::{NO_REVIEW, Options, REVIEW_NEW_TYPE};

/// Loaded TOML documents being edited, keyed by path relative to the schema dir.
pub(super) struct Docs {
    root: PathBuf,
    docs: BTreeMap<PathBuf, (String, DocumentMut)>,
}

impl Docs {
    fn get(&mut self, rel: &Path) -> Result<&mut DocumentMut, String> {
        if !self.docs.contains_key(rel) {
            let path = self.root.join(rel);
            let text = if path.exists() {
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?
            } else {
                String::new()
            };
            let doc = text
                .parse::<DocumentMut>()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            self.docs.insert(rel.to_owned(), (text, doc));
        }
        Ok(&mut self.docs.get_mut(rel).expect("inserted above").1)
    }

    /// Writes the documents that changed; returns their paths.
    fn save(self) -> Result<Vec<PathBuf>, String> {
        let mut written = Vec::new();
        // Tables added here have no document position: toml_edit writes each
        // right after the table visited before it (its `[[event]]` or the
        // last `[[event.field]]` of it), which is where they belong.
        for (rel, (before, doc)) in self.docs {
            let after = doc.to_string();
            if after == before {
                continue;
            }
            let path = self.root.join(&rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&path, after).map_err(|e| format!("{}: {e}", path.display()))?;
            written.push(rel);
        }
        Ok(written)
    }
}

pub(super) fn apply(
    glossary: &Glossary,
    reports: &BTreeMap<String, TypeReport>,
    opts: &Options,
) -> Result<Vec<PathBuf>, String> {
    let mut docs = Docs {
        root: opts.schemas.clone(),
        docs: BTreeMap::new(),
    };
    for (event_type, report) in reports {
        for item in &report.items {
            match item {
                Finding::NewType(new) => add_new_type(&mut docs, new)?,
                Finding::Removed { .. } | Finding::NotInAvro { .. } => {}
                Finding::DocChange { .. } if !opts.docs => {}
                _ => {
                    let doc = docs.get(&report.file)?;
                    let table = event_table(doc, event_type).ok_or_else(|| {
                        format!("{event_type} not found in {}", report.file.display())
                    })?;
                    apply_item(glossary, table, item);
                }
            }
        }
    }
    docs.save()
}

pub(super) fn event_table<'a>(doc: &'a mut DocumentMut, event_type: &str) -> Option<&'a mut Table> {
    doc.get_mut("event")?
        .as_array_of_tables_mut()?
        .iter_mut()
        .find(|t| t.get("type").and_then(Item::as_str) == Some(event_type))
}

pub(super) fn add_review(table: &mut Table, note: &str) {
    if note.is_empty() {
        return;
    }
    let line = format!("# REVIEW: {note}\n");
    let prefix = table
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_owned();
    if !prefix.contains(&line) {
        table.decor_mut().set_prefix(format!("{prefix}{line}"));
    }
}

pub(super) fn apply_item(glossary: &Glossary, event: &mut Table, item: &Finding) {
    match item {
        Finding::NewField { field, library } => {
            let mut entry = Table::new();
            entry.insert("name", value(field.name.as_str()));
            let (attrs, note) = match glossary.library_field(&field.name).filter(|_| *library) {
                Some(lib) => {
                    let mut attrs: Vec<(&str, Attr)> = writer_attrs(field)
                        .into_iter()
                        .filter(|(k, v)| field_attr(lib, k) != *v)
                        .collect();
                    if !lib.avro {
                        attrs.push(("avro", Attr::Bool(true)));
                    }
                    (
                        attrs,
                        "new field from sync (library field); check the mapping",
                    )
                }
                None => (
                    writer_attrs(field)
                        .into_iter()
                        .filter(|(k, v)| local_default(k).as_ref() != Some(v))
                        .collect(),
                    "new field from sync, mapped by default (keep); check the Mixpanel mapping",
                ),
            };
            for (k, v) in attrs {
                entry.insert(k, Item::Value(v.to_value()));
            }
            entry.decor_mut().set_prefix("\n");
            add_review(&mut entry, note);
            push_entry(event, entry);
        }
        Finding::TypeChange { name, from, to } => {
            let note = format!(
                "changed by sync: {} -> {}",
                type_label(from.0, from.1),
                type_label(to.0, to.1)
            );
            if from.0 != to.0 {
                set_attr(glossary, event, name, "type", Attr::Ty(to.0), &note);
            }
            if from.1 != to.1 {
                set_attr(glossary, event, name, "nullable", Attr::Bool(to.1), &note);
            }
        }
        Finding::PiiChange { name, to } => {
            let note = format!("pii changed by sync (writer doc [PII] mark): {}", to);
            set_attr(glossary, event, name, "pii", Attr::Bool(*to), &note);
        }
        Finding::NowInAvro { name: Some(name) } => {
            set_attr(
                glossary,
                event,
                name,
                "avro",
                Attr::Bool(true),
                "now in the Avro writer schema (sync)",
            );
        }
        Finding::NowInAvro { name: None } => {
            event.remove("avro");
            add_review(
                event,
                "has an Avro writer schema now (sync removed avro = false)",
            );
        }
        Finding::DocChange {
            name: Some(name),
            to,
            ..
        } => {
            set_attr(
                glossary,
                event,
                name,
                "doc",
                Attr::Str(to.clone()),
                NO_REVIEW,
            );
        }
        Finding::DocChange { name: None, to, .. } => {
            event.insert("doc", value(to.as_str()));
        }
        Finding::NewType(_) | Finding::Removed { .. } | Finding::NotInAvro { .. } => {}
    }
}

pub(super) fn push_entry(event: &mut Table, entry: Table) {
    if !matches!(event.get("field"), Some(Item::ArrayOfTables(_))) {
        event.insert("field", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    if let Some(Item::ArrayOfTables(array)) = event.get_mut("field") {
        array.push(entry);
    }
}

/// Sets one attribute of field `name` on `event`: on its `[[event.field]]`
/// entry (created when missing), or removes the key when the value equals what
/// the field would have without it (the library's, or the default).
pub(super) fn set_attr(
    glossary: &Glossary,
    event: &mut Table,
    name: &str,
    key: &str,
    to: Attr,
    note: &str,
) {
    let library = glossary.library_field(name);
    let base = match library {
        Some(lib) => Some(field_attr(lib, key)),
        None => local_default(key),
    };
    let entry = event
        .get_mut("field")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|a| {
            a.iter_mut()
                .find(|t| t.get("name").and_then(Item::as_str) == Some(name))
        });
    let wanted_absent = base.as_ref() == Some(&to);
    match entry {
        Some(entry) => {
            let current = entry
                .get(key)
                .and_then(Item::as_value)
                .map(|v| v.to_string());
            if wanted_absent {
                if entry.remove(key).is_some() {
                    add_review(entry, note);
                }
            } else if current.as_deref().map(str::trim) != Some(to.to_value().to_string().trim()) {
                entry.insert(key, Item::Value(to.to_value()));
                add_review(entry, note);
            }
        }
        None if wanted_absent => {}
        None => {
            let mut entry = Table::new();
            entry.insert("name", value(name));
            entry.insert(key, Item::Value(to.to_value()));
            entry.decor_mut().set_prefix("\n");
            add_review(&mut entry, note);
            push_entry(event, entry);
        }
    }
}

/// The JSON Schema of events files, relative to the schema directory.
pub(super) const EVENTS_SCHEMA: &str = "format/events.schema.json";

pub(super) fn add_new_type(docs: &mut Docs, new: &NewType) -> Result<(), String> {
    if !new.new_segments.is_empty() {
        let doc = docs.get(Path::new("currents.toml"))?;
        let segments = doc
            .get_mut("naming")
            .and_then(|n| n.get_mut("segments"))
            .and_then(Item::as_table_mut)
            .ok_or("currents.toml has no [naming.segments]")?;
        for (segment, display) in &new.new_segments {
            if segments.contains_key(segment) {
                continue;
            }
            segments.insert(segment, value(display.as_str()));
            if let Some(mut key) = segments.key_mut(segment) {
                key.leaf_decor_mut().set_prefix(format!(
                    "# REVIEW: segment added by sync for {}; check the display name\n",
                    new.schema.event_type
                ));
            }
        }
    }
    let has_json_schema = docs.root.join(EVENTS_SCHEMA).is_file();
    let doc = docs.get(&new.file)?;
    if doc.get("event").is_none() {
        doc.insert("event", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let first = doc
        .get("event")
        .and_then(Item::as_array_of_tables)
        .is_none_or(|a| a.is_empty());
    let mut table = Table::new();
    table.insert("type", value(new.schema.event_type.as_str()));
    table.insert("rust_name", value(new.rust_name.as_str()));
    table.insert("category", value(new.category.as_str()));
    if let Some(channel) = &new.channel {
        table.insert("channel", value(channel.as_str()));
    }
    table.insert("doc", value(doc_or_placeholder(&new.schema.doc)));
    let mut mixpanel = InlineTable::new();
    mixpanel.insert("name", new.mixpanel_name.as_str().into());
    mixpanel.insert("by_convention", true.into());
    mixpanel.fmt();
    table.insert("mixpanel", value(mixpanel));
    for (key, list) in [
        ("include", &new.include),
        ("exclude", &new.exclude),
        ("fields", &new.fields),
    ] {
        if !list.is_empty() {
            let mut array: toml_edit::Array = list.iter().map(String::as_str).collect();
            array.fmt();
            table.insert(key, value(array));
        }
    }
    let mut prefix = if first { String::new() } else { "\n".into() };
    if new.new_file && first && has_json_schema {
        // Editors map the file to its JSON Schema, as in the existing files.
        let up = "../".repeat(new.file.components().count().saturating_sub(1));
        let _ = writeln!(prefix, "#:schema {up}{EVENTS_SCHEMA}");
    }
    prefix.push_str(REVIEW_NEW_TYPE);
    prefix.push('\n');
    for note in &new.notes {
        let _ = writeln!(prefix, "# REVIEW: {note}");
    }
    table.decor_mut().set_prefix(prefix);
    for e in &new.entries {
        let mut entry = Table::new();
        entry.insert("name", value(e.name.as_str()));
        for (k, v) in &e.attrs {
            entry.insert(k, Item::Value(v.to_value()));
        }
        entry.decor_mut().set_prefix("\n");
        if e.local {
            add_review(
                &mut entry,
                "new field from sync, mapped by default (keep); check the Mixpanel mapping",
            );
        }
        push_entry(&mut table, entry);
    }
    if let Some(Item::ArrayOfTables(events)) = doc.get_mut("event") {
        events.push(table);
    }
    Ok(())
}
