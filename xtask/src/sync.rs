//! `schema sync` / `schema diff`: compare Avro writer schemas with `schemas/`
//! and (for sync) bring `schemas/` up to date, editing the TOML files with
//! `toml_edit` so formatting and comments survive.
//!
//! What is compared, per event type found in the inputs (types absent from the
//! inputs are not reported: a bucket sample rarely holds every type):
//!
//! - an unknown event type is added, flagged `# REVIEW:`;
//! - a field the glossary lacks is added as an `[[event.field]]` (a library
//!   reference when the library has the name, local definition otherwise),
//!   flagged `# REVIEW:`; new fields keep the default mapping (`keep`);
//! - a different type or nullability, `[PII]` mark, or a field/type marked
//!   `avro = false` that now is in Avro, is applied (override on the event);
//! - a different doc is reported, and applied only with `--docs`;
//! - a field the writer schema lacks is reported, never deleted; fields and
//!   types marked `avro = false` are expected to be missing (shown with `-v`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use currents_core::naming;
use currents_schema::{Category, EventType, Field, FieldType, Glossary};
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value, value};

use crate::writer::{self, WriterField, WriterSchema};

/// The comment placed above a new event type.
pub const REVIEW_NEW_TYPE: &str =
    "# REVIEW: new event type from sync; check the Mixpanel name and mapping";
/// No `# REVIEW:` note: doc updates were asked for with `--docs`.
const NO_REVIEW: &str = "";
/// Placeholder doc for a writer-schema entry without one (the loader needs a doc).
pub const NO_DOC: &str = "(no doc in the writer schema)";

#[derive(Debug, Clone)]
pub struct Options {
    /// The schema directory (normally `schemas/`).
    pub schemas: PathBuf,
    /// Apply doc changes too.
    pub docs: bool,
    /// Also list what is expected to be missing from Avro.
    pub verbose: bool,
    /// Write the changes (`sync`) or only report them (`diff`).
    pub write: bool,
}

/// What a run found and did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The printable summary.
    pub report: String,
    /// Differences were found (applied ones included).
    pub differs: bool,
    /// Inputs or the schema could not be read, or the result does not load.
    pub failed: bool,
    /// Files written (relative to the schema directory).
    pub written: Vec<PathBuf>,
}

/// A field's type as shown in reports: `string`, `string?`, `array<string>?`.
fn type_label(ty: FieldType, nullable: bool) -> String {
    format!("{}{}", ty.as_str(), if nullable { "?" } else { "" })
}

#[derive(Debug, Clone)]
enum Finding {
    NewType(Box<NewType>),
    NewField {
        field: WriterField,
        library: bool,
    },
    TypeChange {
        name: String,
        from: (FieldType, bool),
        to: (FieldType, bool),
    },
    PiiChange {
        name: String,
        to: bool,
    },
    NowInAvro {
        name: Option<String>,
    },
    Removed {
        name: String,
    },
    DocChange {
        name: Option<String>,
        from: String,
        to: String,
    },
    NotInAvro {
        name: String,
    },
}

impl Finding {
    /// Order in the report: added types, added fields, changes, removed, docs.
    fn rank(&self) -> u8 {
        match self {
            Finding::NewType(_) => 0,
            Finding::NewField { .. } => 1,
            Finding::TypeChange { .. } | Finding::PiiChange { .. } | Finding::NowInAvro { .. } => 2,
            Finding::Removed { .. } => 3,
            Finding::DocChange { .. } => 4,
            Finding::NotInAvro { .. } => 5,
        }
    }
}

#[derive(Debug, Clone)]
struct NewType {
    schema: WriterSchema,
    file: PathBuf,
    new_file: bool,
    rust_name: String,
    category: Category,
    channel: Option<String>,
    mixpanel_name: String,
    new_segments: Vec<(String, String)>,
    include: Vec<String>,
    exclude: Vec<String>,
    fields: Vec<String>,
    entries: Vec<NewEntry>,
    notes: Vec<String>,
}

/// An `[[event.field]]` of a new event type.
#[derive(Debug, Clone)]
struct NewEntry {
    name: String,
    /// Defined here (not in the library): mapped by default, flagged for review.
    local: bool,
    attrs: Vec<(&'static str, Attr)>,
}

/// A field attribute value as written in TOML.
#[derive(Debug, Clone, PartialEq)]
enum Attr {
    Ty(FieldType),
    Bool(bool),
    Str(String),
}

impl Attr {
    fn to_value(&self) -> Value {
        match self {
            Attr::Ty(t) => Value::from(t.as_str()),
            Attr::Bool(b) => Value::from(*b),
            Attr::Str(s) => Value::from(s.as_str()),
        }
    }
}

/// The value of attribute `key` of a resolved field.
fn field_attr(field: &Field, key: &str) -> Attr {
    match key {
        "type" => Attr::Ty(field.ty),
        "nullable" => Attr::Bool(field.nullable),
        "pii" => Attr::Bool(field.pii),
        "avro" => Attr::Bool(field.avro),
        _ => Attr::Str(field.doc.clone()),
    }
}

/// The default of attribute `key` for a field defined in an event (none for type and doc).
fn local_default(key: &str) -> Option<Attr> {
    match key {
        "nullable" | "pii" => Some(Attr::Bool(false)),
        "avro" => Some(Attr::Bool(true)),
        _ => None,
    }
}

fn writer_attrs(f: &WriterField) -> [(&'static str, Attr); 4] {
    [
        ("type", Attr::Ty(f.ty)),
        ("nullable", Attr::Bool(f.nullable)),
        ("pii", Attr::Bool(f.pii)),
        ("doc", Attr::Str(doc_or_placeholder(&f.doc))),
    ]
}

fn doc_or_placeholder(doc: &str) -> String {
    if doc.trim().is_empty() {
        NO_DOC.to_owned()
    } else {
        doc.to_owned()
    }
}

/// Per event type: where it lives and what differs.
#[derive(Debug)]
struct TypeReport {
    file: PathBuf,
    items: Vec<Finding>,
}

/// Runs `schema sync` (opts.write) or `schema diff` over the input paths.
pub fn run(inputs: &[PathBuf], opts: &Options) -> Outcome {
    let mut out = Outcome::default();
    let glossary = match currents_schema::load(&opts.schemas) {
        Ok(g) => g,
        Err(err) => {
            out.failed = true;
            let _ = write!(out.report, "error: the schema does not load: {err}");
            return out;
        }
    };
    let (files, mut errors) = writer::collect_inputs(inputs);
    let mut schemas: BTreeMap<String, WriterSchema> = BTreeMap::new();
    let mut warnings = Vec::new();
    for path in &files {
        match writer::read_file(path) {
            Ok(schema) => match schemas.get(&schema.event_type) {
                Some(first) if first.fields != schema.fields || first.doc != schema.doc => {
                    warnings.push(format!(
                        "warning: {} and {} hold different writer schemas for {}; using the first",
                        first.source.display(),
                        schema.source.display(),
                        schema.event_type
                    ));
                }
                Some(_) => {}
                None => {
                    schemas.insert(schema.event_type.clone(), schema);
                }
            },
            Err(err) => errors.push(err),
        }
    }
    let group_order = group_order(&opts.schemas);
    let reports = compare(&glossary, &schemas, &group_order, opts);

    let report = &mut out.report;
    let _ = writeln!(
        report,
        "schema {}: writer schemas of {} event type(s) read from {} file(s), against {}",
        if opts.write { "sync" } else { "diff" },
        schemas.len(),
        files.len(),
        opts.schemas.display()
    );
    for w in &warnings {
        let _ = writeln!(report, "{w}");
    }
    for e in &errors {
        let _ = writeln!(report, "error: {e}");
    }
    if files.is_empty() && errors.is_empty() {
        errors.push("no .avsc, .avro or .avro.gz files in the inputs".into());
        let _ = writeln!(report, "error: {}", errors[0]);
    }
    if !errors.is_empty() {
        out.failed = true;
    }
    if opts.verbose {
        for ev in glossary.events.iter().filter(|e| !e.avro) {
            if !schemas.contains_key(&ev.event_type) {
                let _ = writeln!(
                    report,
                    "{}: not in Avro (expected: avro = false)",
                    ev.event_type
                );
            }
        }
    }
    let counts = render(report, &reports, opts);
    out.differs = counts.total() > 0;

    if opts.write && counts.applied() > 0 {
        match apply(&glossary, &reports, opts) {
            Ok(written) => out.written = written,
            Err(err) => {
                out.failed = true;
                let _ = writeln!(report, "error: {err}");
                return out;
            }
        }
    }
    let _ = writeln!(report, "{}", counts.line(opts, &out.written));
    if opts.write && !out.written.is_empty() {
        match currents_schema::load(&opts.schemas) {
            Ok(g) => {
                let _ = writeln!(
                    report,
                    "reloaded {}: {} event types, valid",
                    opts.schemas.display(),
                    g.events.len()
                );
            }
            Err(err) => {
                out.failed = true;
                let _ = write!(
                    report,
                    "error: the updated schema does not load; fix it by hand:\n{err}"
                );
            }
        }
    }
    out
}

/// Field groups in `fields.toml` order (the order events list them in).
fn group_order(schemas: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(schemas.join("fields.toml")).unwrap_or_default();
    let Ok(doc) = text.parse::<DocumentMut>() else {
        return Vec::new();
    };
    doc.get("group")
        .and_then(Item::as_table)
        .map(|t| t.iter().map(|(k, _)| k.to_owned()).collect())
        .unwrap_or_default()
}

fn compare(
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

fn compare_event(
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
fn infer_category(namespace: &str) -> Option<(Category, Option<String>)> {
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
fn target_file(glossary: &Glossary, schemas: &Path, namespace: &str) -> (PathBuf, bool) {
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

fn plan_new_type(
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

#[derive(Debug, Default)]
struct Counts {
    new_types: usize,
    new_fields: usize,
    changed: usize,
    removed: usize,
    docs: usize,
}

impl Counts {
    fn total(&self) -> usize {
        self.new_types + self.new_fields + self.changed + self.removed + self.docs
    }

    fn applied(&self) -> usize {
        self.new_types + self.new_fields + self.changed + self.docs
    }

    fn line(&self, opts: &Options, written: &[PathBuf]) -> String {
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

fn render(out: &mut String, reports: &BTreeMap<String, TypeReport>, opts: &Options) -> Counts {
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

fn render_new_type(out: &mut String, new: &NewType, counts: &mut Counts) {
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

/// Loaded TOML documents being edited, keyed by path relative to the schema dir.
struct Docs {
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

fn apply(
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

fn event_table<'a>(doc: &'a mut DocumentMut, event_type: &str) -> Option<&'a mut Table> {
    doc.get_mut("event")?
        .as_array_of_tables_mut()?
        .iter_mut()
        .find(|t| t.get("type").and_then(Item::as_str) == Some(event_type))
}

fn add_review(table: &mut Table, note: &str) {
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

fn apply_item(glossary: &Glossary, event: &mut Table, item: &Finding) {
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

fn push_entry(event: &mut Table, entry: Table) {
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
fn set_attr(glossary: &Glossary, event: &mut Table, name: &str, key: &str, to: Attr, note: &str) {
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
const EVENTS_SCHEMA: &str = "format/events.schema.json";

fn add_new_type(docs: &mut Docs, new: &NewType) -> Result<(), String> {
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
