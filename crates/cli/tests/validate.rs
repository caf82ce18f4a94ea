//! `currents validate`: what would be skipped or rejected, and schema drift.

mod common;

use common::*;
use serde_json::{Value, json};

#[test]
fn validate_sample_data_has_no_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("validate")
        .arg(sample_data())
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    // validate writes no events.
    assert!(output.stdout.is_empty());
    let stderr = stderr_of(&output);
    assert!(stderr.contains("schema drift: none"), "{stderr}");
    assert_eq!(
        read_summary(&summary_path),
        summary(json!({
            "read": SAMPLE_READ,
            "mapped": SAMPLE_MAPPED,
            "skipped": {"no_external_user_id": SAMPLE_SKIPPED},
            "files": SAMPLE_FILES,
            "bytes": SAMPLE_BYTES,
            "ignored": {SAMPLE_IGNORED: 1},
        }))
    );
}

#[test]
fn validate_reports_unknown_fields_and_types() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("drift.ndjson");
    let open = ndjson_record("users.messages.email.Open");
    let drifted = with(&open, "open_reason", json!("prefetch"));
    let unknown = r#"{"event_type":"users.messages.carrierpigeon.Send","id":"0f0e0d0c-0b0a-4908-8706-050403020100","external_user_id":"user-00042","time":1768435400}"#;
    let text = format!("{open}\n{drifted}\n{unknown}\n");
    std::fs::write(&input, &text).unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("validate")
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    // Drift is reported, not a failure.
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("schema drift: 1 unknown event type(s), 1 unknown field(s)"),
        "{stderr}"
    );
    // Advice for a user of the binary, not of the source tree.
    assert!(!stderr.contains("cargo xtask"), "{stderr}");
    assert!(stderr.contains("upgrade currents"), "{stderr}");
    assert!(stderr.contains("--unknown-fields keep"), "{stderr}");
    assert!(
        stderr.contains("users.messages.email.Open.open_reason: 1"),
        "{stderr}"
    );
    assert_eq!(
        read_summary(&summary_path),
        summary(json!({
            "read": 3,
            "mapped": 3,
            "unknown_event_types": {"users.messages.carrierpigeon.Send": 1},
            "unknown_fields": {"users.messages.email.Open.open_reason": 1},
            "files": 1,
            "bytes": text.len(),
        }))
    );
}

#[test]
fn validate_reports_rejections_with_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("bad.ndjson");
    let open = ndjson_record("users.messages.email.Open");
    // Millisecond time (an unknown type keeps it) and a time before 1971.
    let ms = r#"{"event_type":"users.messages.carrierpigeon.Send","id":"0f0e0d0c-0b0a-4908-8706-050403020101","external_user_id":"user-00042","time":1768435400123}"#;
    let old = with(&open, "time", json!(1000));
    let text = format!("{open}\n{ms}\n{old}\n");
    std::fs::write(&input, &text).unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("validate")
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    let name = input.display().to_string();
    // Counts per reason with an example each, not a line per record.
    assert!(stderr.contains("time_in_milliseconds: 1"), "{stderr}");
    assert!(
        stderr.contains(&format!("e.g. {name} record 1, line 2")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("e.g. {name} record 2, line 3")),
        "{stderr}"
    );
    assert!(!stderr.contains("rejected: "), "{stderr}");
    assert_eq!(
        read_summary(&summary_path),
        summary(json!({
            "read": 3,
            "mapped": 1,
            "rejected": {"time_before_1971": 1, "time_in_milliseconds": 1},
            "unknown_event_types": {"users.messages.carrierpigeon.Send": 1},
            "files": 1,
            "bytes": text.len(),
        }))
    );
}

#[test]
fn validate_report_lists_every_skipped_or_rejected_record() {
    let tmp = tempfile::tempdir().unwrap();
    let open = ndjson_record("users.messages.email.Open");
    let mut lines = Vec::new();
    for i in 0..30 {
        let line = with(&open, "time", json!(1000 + i));
        lines.push(with(
            &line,
            "id",
            json!(format!("0b5a1c2e-aaaa-4bbb-8ccc-{i:012}")),
        ));
    }
    let mut skipped: Value = serde_json::from_str(&open).unwrap();
    skipped.as_object_mut().unwrap().remove("external_user_id");
    lines.push(skipped.to_string());
    lines.push(open.clone());
    let input = tmp.path().join("bad.ndjson");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let report = tmp.path().join("report.ndjson");
    let output = currents()
        .arg("validate")
        .arg(&input)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let entries = ndjson(&std::fs::read(&report).unwrap());
    assert_eq!(entries.len(), 31);
    let rejected: Vec<&Value> = entries
        .iter()
        .filter(|e| e["reason"] == "time_before_1971")
        .collect();
    assert_eq!(rejected.len(), 30);
    assert_eq!(rejected[0]["field"], "properties.time");
    assert_eq!(rejected[0]["source"]["line"], 1);
    assert!(
        rejected[0]["source"]["file"]
            .as_str()
            .unwrap()
            .ends_with("bad.ndjson")
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["reason"] == "no_external_user_id")
            .count(),
        1
    );
    // stderr: counts and a few examples, not a line per record.
    let stderr = stderr_of(&output);
    assert!(stderr.contains("time_before_1971: 30"), "{stderr}");
    assert_eq!(stderr.matches("e.g.").count(), 3 + 1, "{stderr}");
    assert!(stderr.lines().count() < 40, "{stderr}");
}
