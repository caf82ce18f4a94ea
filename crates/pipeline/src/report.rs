//! The outcome ledger (see [`Report`]).

use std::collections::BTreeMap;
use std::time::Duration;

use currents_events::EVENT_TYPES;
use currents_events::decode::Location;
use currents_mixpanel::DeliveryReport;
use serde::Serialize;

/// The key records that could not be decoded are counted under in
/// [`Report::by_event_type`] (their type is unknown).
pub const UNDECODED: &str = "(undecoded)";

/// The buckets of one event type (or of all records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TypeCounts {
    pub read: u64,
    /// Mapped and handed to the sink.
    pub mapped: u64,
    pub written: u64,
    pub imported: u64,
    pub skipped: u64,
    pub rejected: u64,
    pub dead_lettered: u64,
    pub unresolved: u64,
}

impl TypeCounts {
    fn add(&mut self, other: &TypeCounts) {
        self.read += other.read;
        self.mapped += other.mapped;
        self.written += other.written;
        self.imported += other.imported;
        self.skipped += other.skipped;
        self.rejected += other.rejected;
        self.dead_lettered += other.dead_lettered;
        self.unresolved += other.unresolved;
    }

    /// Every record read is in exactly one bucket.
    pub fn is_balanced(&self) -> bool {
        self.read
            == self.written
                + self.imported
                + self.skipped
                + self.rejected
                + self.dead_lettered
                + self.unresolved
    }
}

/// The outcome ledger: every record the pipeline reads ends in exactly one
/// bucket, counted by reason and by event type.
///
/// | bucket | meaning |
/// |---|---|
/// | `written` | handed to a sink that completes at once (NDJSON output, validation, dry run) |
/// | `imported` | Mixpanel confirmed it |
/// | `skipped` | not mapped, by design (`no_external_user_id`, `before_checkpoint`, `unknown_event_type`) |
/// | `rejected` | refused before sending: pre-validation, or the record could not be decoded |
/// | `dead_lettered` | sent, and not imported (`retries_exhausted`, `unconfirmed`, `mixpanel_rejected_record` …) |
/// | `unresolved` | handed to the sink, but the run stopped before its outcome was known |
///
/// `read == written + imported + skipped + rejected + dead_lettered + unresolved`
/// holds at every stop, not only at the end ([`Report::is_balanced`]).
///
/// What one run did with every record. The counts are totals over
/// [`Report::by_event_type`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Report {
    pub read: u64,
    pub mapped: u64,
    pub written: u64,
    pub imported: u64,
    pub skipped: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
    pub dead_lettered: BTreeMap<String, u64>,
    pub unresolved: u64,
    /// Findings that did not change a record's bucket (mapper warnings,
    /// pre-validation findings of a sink that keeps invalid events).
    pub warnings: BTreeMap<String, u64>,
    /// Input errors (one per damaged region or bad record), by reason.
    pub errors: BTreeMap<String, u64>,
    /// Inputs left out (directory walks, content that is not Currents data).
    pub ignored: BTreeMap<String, u64>,
    pub unknown_event_types: BTreeMap<String, u64>,
    pub unknown_fields: BTreeMap<String, u64>,
    pub missing_fields: BTreeMap<String, u64>,
    pub by_event_type: BTreeMap<String, TypeCounts>,
    /// Sources read (started).
    pub files: u64,
    /// Their bytes, as stored (before decompression), when known.
    pub bytes: u64,
    /// Requests, retries and responses of an `/import` sink.
    pub delivery: Option<DeliveryReport>,
    /// What a dry run ([`DryRunSink`](crate::DryRunSink)) would have sent.
    pub dry_run: Option<DryRun>,
    /// How long [`Pipeline::run`](crate::Pipeline::run) took.
    #[serde(skip)]
    pub elapsed: Duration,
    /// The first few records of each skipped, rejected or dead-lettered
    /// reason (`file record N, line L`).
    pub examples: BTreeMap<String, Vec<String>>,
    /// The run id written on every dead-letter line of this run.
    pub run_id: String,
}

/// What a dry run would have sent, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DryRun {
    /// The `/import` URL.
    pub endpoint: String,
    /// The region's name (`us`, `eu`, `in`).
    pub region: &'static str,
    /// The kind of credentials found (`service account`, `project token`,
    /// `none found`); never the credentials.
    pub credentials: &'static str,
    /// Requests it would make.
    pub batches: u64,
    /// Their uncompressed bytes.
    pub batch_bytes: u64,
}

impl Report {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered.values().sum()
    }

    /// `read == written + imported + skipped + rejected + dead_lettered +
    /// unresolved`, overall and for each event type.
    pub fn is_balanced(&self) -> bool {
        self.read
            == self.written
                + self.imported
                + self.skipped_total()
                + self.rejected_total()
                + self.dead_lettered_total()
                + self.unresolved
            && self.by_event_type.values().all(TypeCounts::is_balanced)
    }

    /// The report as a JSON document with stable keys (what `currents
    /// --summary-json` writes): the buckets (`read`, `mapped`, `written`,
    /// `imported`, `skipped`, `rejected`, `dead_lettered` as a total and
    /// `dead_lettered_reasons` by reason, `unresolved`), `warnings`, `errors`,
    /// `ignored`, the drift counts, `by_event_type`, `examples`, `files`,
    /// `bytes`, `run_id`, and `delivery` / `batches` when there are some.
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "read": self.read,
            "mapped": self.mapped,
            "written": self.written,
            "imported": self.imported,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "dead_lettered": self.dead_lettered_total(),
            "dead_lettered_reasons": self.dead_lettered,
            "unresolved": self.unresolved,
            "warnings": self.warnings,
            "errors": self.errors,
            "ignored": self.ignored,
            "unknown_event_types": self.unknown_event_types,
            "unknown_fields": self.unknown_fields,
            "missing_fields": self.missing_fields,
            "by_event_type": self.by_event_type,
            "examples": self.examples,
            "files": self.files,
            "bytes": self.bytes,
            "run_id": self.run_id,
        });
        if let Some(delivery) = &self.delivery {
            doc["delivery"] = serde_json::json!(delivery);
        }
        doc["elapsed_s"] =
            serde_json::json!((self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0);
        if let Some(dry) = &self.dry_run {
            doc["batches"] = serde_json::json!(dry.batches);
            doc["batch_bytes"] = serde_json::json!(dry.batch_bytes);
            doc["dry_run"] = serde_json::json!({
                "endpoint": dry.endpoint,
                "region": dry.region,
                "credentials": dry.credentials,
            });
        }
        doc
    }

    /// Something was rejected, dead-lettered, left unresolved or unreadable.
    pub fn has_failures(&self) -> bool {
        self.rejected_total() > 0
            || self.dead_lettered_total() > 0
            || self.unresolved > 0
            || !self.errors.is_empty()
    }
}

/// An event type as the ledger counts it: an index into [`EVENT_TYPES`], or
/// a type the glossary does not know, or no type (undecoded).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TypeKey {
    Known(usize),
    Unknown(std::sync::Arc<str>),
    Undecoded,
}

impl TypeKey {
    pub(crate) fn of(event: &currents_events::Event<'_>) -> Self {
        match event.type_index() {
            Some(i) => TypeKey::Known(i),
            None => TypeKey::Unknown(std::sync::Arc::from(event.event_type())),
        }
    }

    /// The key of an event type given by name (empty: undecoded).
    pub(crate) fn named(event_type: &str) -> Self {
        if event_type.is_empty() || event_type == UNDECODED {
            return TypeKey::Undecoded;
        }
        match EVENT_TYPES.binary_search_by(|info| info.event_type.cmp(event_type)) {
            Ok(i) => TypeKey::Known(i),
            Err(_) => TypeKey::Unknown(std::sync::Arc::from(event_type)),
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            TypeKey::Known(i) => EVENT_TYPES.get(*i).map_or(UNDECODED, |t| t.event_type),
            TypeKey::Unknown(name) => name,
            TypeKey::Undecoded => UNDECODED,
        }
    }
}

/// Where one record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket<'a> {
    Written,
    Imported,
    Skipped(&'a str),
    Rejected(&'a str),
    DeadLettered(&'a str),
    Unresolved,
}

/// Counts being gathered (cheap to update: known types are a vector slot).
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    known: Vec<TypeCounts>,
    other: BTreeMap<TypeKey, TypeCounts>,
    pub(crate) report: Report,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    if n == 0 {
        return;
    }
    match map.get_mut(key) {
        Some(count) => *count += n,
        None => {
            map.insert(key.to_owned(), n);
        }
    }
}

/// The counts of `key`'s type.
fn counts<'a>(
    known: &'a mut Vec<TypeCounts>,
    other: &'a mut BTreeMap<TypeKey, TypeCounts>,
    key: &TypeKey,
) -> &'a mut TypeCounts {
    match key {
        TypeKey::Known(i) => {
            if known.len() <= *i {
                known.resize(EVENT_TYPES.len().max(*i + 1), TypeCounts::default());
            }
            &mut known[*i]
        }
        key => other.entry(key.clone()).or_default(),
    }
}

impl Ledger {
    fn counts(&mut self, key: &TypeKey) -> &mut TypeCounts {
        counts(&mut self.known, &mut self.other, key)
    }

    /// A record was read (its bucket is decided now or later).
    pub(crate) fn read(&mut self, key: &TypeKey, n: u64) {
        if n == 0 {
            return;
        }
        self.counts(key).read += n;
        self.report.read += n;
    }

    /// A mapped record went to the sink.
    pub(crate) fn mapped(&mut self, key: &TypeKey) {
        self.counts(key).mapped += 1;
        self.report.mapped += 1;
    }

    /// `n` records of type `key` ended in `bucket`.
    pub(crate) fn settle(&mut self, key: &TypeKey, bucket: Bucket<'_>, n: u64) {
        if n == 0 {
            return;
        }
        let counts = counts(&mut self.known, &mut self.other, key);
        let report = &mut self.report;
        match bucket {
            Bucket::Written => {
                counts.written += n;
                report.written += n;
            }
            Bucket::Imported => {
                counts.imported += n;
                report.imported += n;
            }
            Bucket::Skipped(reason) => {
                counts.skipped += n;
                bump(&mut report.skipped, reason, n);
            }
            Bucket::Rejected(reason) => {
                counts.rejected += n;
                bump(&mut report.rejected, reason, n);
            }
            Bucket::DeadLettered(reason) => {
                counts.dead_lettered += n;
                bump(&mut report.dead_lettered, reason, n);
            }
            Bucket::Unresolved => {
                counts.unresolved += n;
                report.unresolved += n;
            }
        }
    }

    /// Keeps `at` as an example of `reason` (the first few of each).
    pub(crate) fn example(&mut self, reason: &str, source: &str, location: &Location) {
        const EXAMPLES: usize = 3;
        let examples = self.report.examples.entry(reason.to_owned()).or_default();
        if examples.len() < EXAMPLES {
            let line = location
                .line
                .map_or(String::new(), |l| format!(", line {l}"));
            examples.push(format!("{source} record {}{line}", location.index));
        }
    }

    pub(crate) fn warning(&mut self, reason: &str, n: u64) {
        bump(&mut self.report.warnings, reason, n);
    }

    pub(crate) fn error(&mut self, reason: &str) {
        bump(&mut self.report.errors, reason, 1);
    }

    pub(crate) fn ignored(&mut self, reason: &str, n: u64) {
        bump(&mut self.report.ignored, reason, n);
    }

    pub(crate) fn drift(&mut self, stats: &currents_events::decode::DecodeStats) {
        let report = &mut self.report;
        for (map, from) in [
            (&mut report.unknown_event_types, &stats.unknown_types),
            (&mut report.unknown_fields, &stats.unknown_fields),
            (&mut report.missing_fields, &stats.missing_fields),
        ] {
            for (key, n) in from {
                bump(map, key, *n);
            }
        }
        if !stats.missing_fields.is_empty() {
            let n = stats.missing_fields.values().sum();
            bump(&mut report.warnings, "missing_field", n);
        }
    }

    /// The report, with the per-type counts filled in.
    pub(crate) fn snapshot(&self) -> Report {
        let mut report = self.report.clone();
        let mut by_type = BTreeMap::new();
        for (i, counts) in self.known.iter().enumerate() {
            if counts.read > 0 {
                by_type.insert(TypeKey::Known(i).name().to_owned(), *counts);
            }
        }
        for (key, counts) in &self.other {
            by_type
                .entry(key.name().to_owned())
                .or_insert_with(TypeCounts::default)
                .add(counts);
        }
        report.by_event_type = by_type;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_balance_per_type() {
        let mut ledger = Ledger::default();
        let email = TypeKey::Known(3);
        let unknown = TypeKey::Unknown("users.new.Thing".into());
        ledger.read(&email, 3);
        ledger.settle(&email, Bucket::Imported, 1);
        ledger.settle(&email, Bucket::Skipped("no_external_user_id"), 1);
        ledger.settle(&email, Bucket::DeadLettered("unconfirmed"), 1);
        ledger.read(&unknown, 1);
        ledger.settle(&unknown, Bucket::Unresolved, 1);
        ledger.read(&TypeKey::Undecoded, 2);
        ledger.settle(&TypeKey::Undecoded, Bucket::Rejected("malformed_json"), 2);
        let report = ledger.snapshot();
        assert!(report.is_balanced(), "{report:#?}");
        assert_eq!(report.read, 6);
        assert_eq!(report.by_event_type[UNDECODED].rejected, 2);
        assert_eq!(report.by_event_type["users.new.Thing"].unresolved, 1);
        assert_eq!(report.by_event_type.len(), 3);
        ledger.read(&email, 1);
        assert!(!ledger.snapshot().is_balanced());
    }
}
