//! Shared helpers of the `currents` end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Map, Value, json};

/// Environment variables that would change what the binary does; removed
/// from every test run so the developer's shell cannot leak in.
const ENV: &[&str] = &[
    "CURRENTS_PII_KEY",
    "MIXPANEL_PROJECT_ID",
    "MIXPANEL_PROJECT_ID_FILE",
    "MIXPANEL_PROJECT_TOKEN",
    "MIXPANEL_PROJECT_TOKEN_FILE",
    "MIXPANEL_SERVICE_ACCOUNT_USERNAME",
    "MIXPANEL_SERVICE_ACCOUNT_USERNAME_FILE",
    "MIXPANEL_SERVICE_ACCOUNT_SECRET",
    "MIXPANEL_SERVICE_ACCOUNT_SECRET_FILE",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// `currents` with a clean environment.
pub fn currents() -> Command {
    let mut cmd = Command::cargo_bin("currents").expect("the currents binary");
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The committed demo dataset.
pub fn sample_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../sample-data")
        .canonicalize()
        .expect("sample-data/ exists")
}

/// Total size of the data files of the committed demo dataset.
pub const SAMPLE_BYTES: u64 = 471_028;
pub const SAMPLE_READ: u64 = 476;
pub const SAMPLE_MAPPED: u64 = 374;
pub const SAMPLE_SKIPPED: u64 = 102;
pub const SAMPLE_FILES: u64 = 97;
/// The demo dataset's README, left out of directory walks.
pub const SAMPLE_IGNORED: &str = "not_currents_data";

/// One flat NDJSON record of `event_type` from the demo dataset (no newline).
pub fn ndjson_record(event_type: &str) -> String {
    let text = std::fs::read_to_string(sample_data().join("ndjson/events.ndjson")).unwrap();
    text.lines()
        .find(|line| {
            serde_json::from_str::<Value>(line).unwrap()["event_type"].as_str() == Some(event_type)
        })
        .unwrap_or_else(|| panic!("no {event_type} in sample-data/ndjson"))
        .to_owned()
}

/// `record` with `key` set to `value`.
pub fn with(record: &str, key: &str, value: Value) -> String {
    let mut v: Value = serde_json::from_str(record).unwrap();
    v[key] = value;
    v.to_string()
}

/// Parses NDJSON output into values, asserting every line is a JSON object.
pub fn ndjson(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).expect("UTF-8 output");
    text.lines()
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(v.is_object(), "not an object: {line}");
            v
        })
        .collect()
}

/// Reads a `--summary-json` file; checks `elapsed_s` is a non-negative
/// number and returns the rest.
/// The `event` names of mapped NDJSON output, in order.
pub fn event_names(stdout: &[u8]) -> Vec<String> {
    ndjson(stdout)
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The whole `--summary-json` document.
pub fn read_summary_raw(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("summary {}: {e}", path.display()));
    serde_json::from_str(&text).expect("summary is JSON")
}

/// Reads a `--summary-json` file and checks what every summary must hold:
/// `elapsed_s` a non-negative number; every record in exactly one bucket,
/// overall and per event type, the per-type counts adding up to the totals.
/// Returns the rest without the per-type counts, run id and delivery
/// details (compared with [`summary`]).
pub fn read_summary(path: &Path) -> Value {
    let mut v = read_summary_raw(path);
    let map = v.as_object_mut().expect("summary is an object");
    let elapsed = map.remove("elapsed_s").expect("elapsed_s present");
    assert!(elapsed.as_f64().is_some_and(|s| s >= 0.0), "{elapsed}");
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    let whole = Value::Object(map.clone());
    let settled = n(&whole, "written")
        + n(&whole, "imported")
        + total(&whole["skipped"])
        + total(&whole["rejected"])
        + n(&whole, "dead_lettered")
        + n(&whole, "unresolved");
    assert_eq!(
        n(&whole, "read"),
        settled,
        "every record in one bucket: {whole:#}"
    );
    let by_type = map.remove("by_event_type").expect("by_event_type present");
    let types = by_type.as_object().expect("by_event_type is an object");
    for key in ["read", "mapped", "imported", "unresolved"] {
        let sum: u64 = types.values().map(|t| n(t, key)).sum();
        assert_eq!(sum, n(&whole, key), "{key} by event type: {by_type:#}");
    }
    for (name, t) in types {
        let settled = [
            "written",
            "imported",
            "skipped",
            "rejected",
            "dead_lettered",
            "unresolved",
        ]
        .iter()
        .map(|k| n(t, k))
        .sum::<u64>();
        assert_eq!(n(t, "read"), settled, "{name}: {t}");
    }
    assert!(map.remove("run_id").is_some_and(|r| r.is_string()));
    for key in [
        "written",
        "delivery",
        "batches",
        "batch_bytes",
        "dry_run",
        "examples",
    ] {
        map.remove(key);
    }
    v
}

/// A complete expected summary (without `elapsed_s`): every key at its
/// zero value, overridden by `fields`.
pub fn summary(fields: Value) -> Value {
    let mut base = json!({
        "read": 0,
        "mapped": 0,
        "imported": 0,
        "skipped": {},
        "rejected": {},
        "dead_lettered": 0,
        "dead_lettered_reasons": {},
        "unresolved": 0,
        "warnings": {},
        "errors": {},
        "unknown_event_types": {},
        "unknown_fields": {},
        "missing_fields": {},
        "ignored": {},
        "files": 0,
        "bytes": 0,
    });
    let Value::Object(fields) = fields else {
        panic!("summary fields must be an object")
    };
    let base_map: &mut Map<String, Value> = base.as_object_mut().unwrap();
    for (k, v) in fields {
        assert!(base_map.contains_key(&k), "unknown summary key {k}");
        base_map.insert(k, v);
    }
    base
}

/// Sum of a `{reason: n}` map of a summary.
pub fn total(v: &Value) -> u64 {
    v.as_object()
        .expect("a map")
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

/// Asserts stderr looks like a clean error exit: no panic, no backtrace.
pub fn assert_no_panic(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    for needle in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        "thread 'main'",
    ] {
        assert!(!text.contains(needle), "stderr has {needle:?}:\n{text}");
    }
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
