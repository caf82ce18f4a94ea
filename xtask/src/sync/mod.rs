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
//!
//! By concern: [`crate::writer`] reads the exports' writer schemas; `compare`
//! turns them into findings (`findings`), `report` prints them and `apply`
//! writes them into the TOML files.

mod apply;
mod compare;
mod findings;
mod report;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item};

use crate::writer::{self, WriterSchema};

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
    let reports = compare::compare(&glossary, &schemas, &group_order, opts);

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
    let counts = report::render(report, &reports, opts);
    out.differs = counts.total() > 0;

    if opts.write && counts.applied() > 0 {
        match apply::apply(&glossary, &reports, opts) {
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
