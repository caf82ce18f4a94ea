//! The end-of-run summary: every input event accounted for, printed for
//! people on stderr and written as JSON with stable keys.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Counts of one run. Invariant: `read = mapped + skipped + rejected` for
/// `map`/`validate`, and `read = imported + skipped + rejected + dead_lettered`
/// for `export`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub read: u64,
    pub mapped: u64,
    pub imported: u64,
    pub skipped: BTreeMap<String, u64>,
    pub rejected: BTreeMap<String, u64>,
    pub dead_lettered: u64,
    /// Events handed to the exporter but neither imported nor dead-lettered
    /// because the run stopped early (a rerun with `--checkpoint` sends them).
    pub unresolved: u64,
    /// Dead-lettered events by reason.
    pub dead_lettered_reasons: BTreeMap<String, u64>,
    /// Pre-validation findings that did not filter the output (`map` without `--strict`).
    pub warnings: BTreeMap<String, u64>,
    /// Input errors by reason (one per damaged file region or bad record).
    pub errors: BTreeMap<String, u64>,
    pub unknown_event_types: BTreeMap<String, u64>,
    pub unknown_fields: BTreeMap<String, u64>,
    pub files: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
}

pub fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    if n > 0 {
        *map.entry(key.to_owned()).or_default() += n;
    }
}

fn total(map: &BTreeMap<String, u64>) -> u64 {
    map.values().sum()
}

impl Summary {
    pub fn skipped_total(&self) -> u64 {
        total(&self.skipped)
    }

    pub fn rejected_total(&self) -> u64 {
        total(&self.rejected)
    }

    pub fn set_elapsed(&mut self, elapsed: Duration) {
        // Rounded so the JSON stays readable.
        self.elapsed_s = (elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    }

    /// True when something was rejected, dead-lettered or unreadable (exit code 3).
    pub fn has_failures(&self) -> bool {
        self.rejected_total() > 0 || self.dead_lettered > 0 || !self.errors.is_empty()
    }

    /// A short human summary.
    pub fn render(&self, delivered: bool) -> String {
        let mut out = String::new();
        // Runs shorter than the rounding of `elapsed_s` have no meaningful rate.
        let rate = if self.elapsed_s > 0.0 {
            format!(" ({:.0} events/s)", self.read as f64 / self.elapsed_s)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "read {} event(s) from {} file(s) ({}) in {:.2}s{rate}\n",
            self.read,
            self.files,
            human_bytes(self.bytes),
            self.elapsed_s,
        ));
        if delivered {
            out.push_str(&format!("  imported       {}\n", self.imported));
        } else {
            out.push_str(&format!("  mapped         {}\n", self.mapped));
        }
        let sections = [
            ("skipped", &self.skipped),
            ("rejected", &self.rejected),
            ("dead-lettered", &self.dead_lettered_reasons),
            ("warnings", &self.warnings),
            ("input errors", &self.errors),
            ("unknown types", &self.unknown_event_types),
            ("unknown fields", &self.unknown_fields),
        ];
        for (title, map) in sections {
            if map.is_empty() {
                continue;
            }
            out.push_str(&format!("  {title:<14} {}\n", total(map)));
            for (reason, n) in map.iter().take(20) {
                out.push_str(&format!("    {reason}: {n}\n"));
            }
            if map.len() > 20 {
                out.push_str(&format!("    … and {} more\n", map.len() - 20));
            }
        }
        out
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
