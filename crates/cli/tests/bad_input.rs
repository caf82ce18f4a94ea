//! Damaged, empty, foreign and missing inputs: the run goes on where it can,
//! says where the damage is, and exits 3 (damaged) / 1 (fatal) / 2 (usage).

mod common;

use common::*;
use serde_json::json;

#[test]
fn malformed_json_line_in_the_middle() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.ndjson");
    let open = ndjson_record("users.messages.email.Open");
    let click = ndjson_record("users.messages.email.Click");
    let text = format!("{open}\n{{\"event_type\": broken\n{click}\n");
    std::fs::write(&input, &text).unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("map")
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let names = event_names(&output.stdout);
    assert_eq!(names, ["Email Open", "Email Click"]);
    let stderr = stderr_of(&output);
    let first = stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: ")
            && first.contains(&input.display().to_string())
            && first.contains("line 2")
            && first.contains("malformed json"),
        "{stderr}"
    );
    assert_no_panic(&output.stderr);
    assert_eq!(
        read_summary(&summary_path),
        summary(json!({
            "read": 3,
            "mapped": 2,
            "rejected": {"malformed_json": 1},
            "errors": {"malformed_json": 1},
            "files": 1,
            "bytes": text.len(),
        }))
    );
}

#[test]
fn truncated_avro_file() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = std::fs::read(sample_data().join("avro/users.messages.email.Open.avro")).unwrap();
    // Cut inside the last data block: the first records are still read.
    let cut = whole.len() - 300;
    let input = tmp.path().join("open.avro");
    std::fs::write(&input, &whole[..cut]).unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("map")
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    let first = stderr.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("error: {}: byte ", input.display()))
            && first.contains("truncated"),
        "{stderr}"
    );
    // The byte offset is a number inside the file.
    let offset: usize = first
        .split(": byte ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte offset in {first}"));
    assert!(offset > 0 && offset <= cut, "{offset} of {cut}");
    assert_no_panic(&output.stderr);
    let s = read_summary(&summary_path);
    assert_eq!(s["errors"], json!({"truncated": 1}));
    // Every record is accounted for.
    assert_eq!(
        s["read"].as_u64().unwrap(),
        s["mapped"].as_u64().unwrap() + total(&s["skipped"]) + total(&s["rejected"])
    );
    assert!(s["mapped"].as_u64().unwrap() >= 1, "{s}");

    // Cut inside the header: nothing is read, the file is named.
    std::fs::write(&input, &whole[..100]).unwrap();
    let output = currents().arg("map").arg(&input).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty());
    assert!(
        stderr_of(&output).starts_with(&format!("error: {}: byte ", input.display())),
        "{output:?}"
    );
}

#[test]
fn damaged_file_does_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = std::fs::read(sample_data().join("avro/users.messages.email.Open.avro")).unwrap();
    std::fs::write(tmp.path().join("a.avro"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(tmp.path().join("b.bin"), b"\x00\x01\x02garbage\xff\xfe").unwrap();
    std::fs::write(tmp.path().join("c.avro"), &whole).unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("map")
        .arg(tmp.path())
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    // c.avro: two complete events.
    assert!(ndjson(&output.stdout).len() >= 2);
    let stderr = stderr_of(&output);
    assert!(stderr.contains("a.avro"), "{stderr}");
    assert!(!stderr.contains("c.avro"), "{stderr}");
    // b.bin is not Currents data: left out of the walk, counted, no error.
    assert!(
        !stderr.contains("error: ") || !stderr.contains("b.bin"),
        "{stderr}"
    );
    let s = read_summary(&summary_path);
    assert_eq!(s["ignored"], json!({"not_currents_data": 1}), "{s}");
    assert_eq!(total(&s["errors"]), 1, "{s}");
}

#[test]
fn empty_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("empty.ndjson");
    std::fs::write(&input, "").unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("map")
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    // An empty file is reported as damaged input (an export never writes one).
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty());
    let stderr = stderr_of(&output);
    assert!(
        stderr.starts_with(&format!("error: {}: ", input.display())) && stderr.contains("empty"),
        "{stderr}"
    );
    assert_no_panic(&output.stderr);
    assert_eq!(
        read_summary(&summary_path),
        summary(json!({"errors": {"empty_input": 1}, "files": 1}))
    );
}

#[test]
fn binary_garbage_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("garbage.bin");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&input, &garbage).unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("map")
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty());
    let stderr = stderr_of(&output);
    assert!(
        stderr.starts_with(&format!("error: {}: ", input.display())),
        "{stderr}"
    );
    assert_no_panic(&output.stderr);
    let s = read_summary(&summary_path);
    assert_eq!(total(&s["errors"]), 1, "{s}");
    assert_eq!(s["read"], 0);

    // Garbage inside a gzip wrapper.
    let gz = tmp.path().join("garbage.gz");
    std::fs::write(&gz, b"\x1f\x8b\x08\x00not deflate at all").unwrap();
    let output = currents().arg("map").arg(&gz).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("garbage.gz"), "{output:?}");
    assert_no_panic(&output.stderr);
}

#[test]
fn nonexistent_path_is_fatal_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-export.avro");
    for command in ["map", "validate", "export"] {
        let output = currents()
            .arg(command)
            .arg(sample_data().join("ndjson"))
            .arg(&missing)
            .args(["--dry-run"].iter().filter(|_| command == "export"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{command}: {output:?}");
        assert!(output.stdout.is_empty(), "{command}");
        let stderr = stderr_of(&output);
        assert_eq!(stderr.lines().count(), 1, "{command}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(&missing.display().to_string()),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("No such file"), "{command}: {stderr}");
        assert_no_panic(&output.stderr);
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    for command in ["map", "export", "validate", "schema", "sample"] {
        let output = currents()
            .args([command, "--no-such-flag"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}: {output:?}");
        let stderr = stderr_of(&output);
        assert!(stderr.contains("--no-such-flag"), "{stderr}");
        assert!(stderr.contains("Usage:"), "{stderr}");
        assert_no_panic(&output.stderr);
    }
    // A bad value and no subcommand are usage errors too.
    currents()
        .args(["map", "--profile", "everything"])
        .assert()
        .code(2);
    currents().assert().code(2);
    currents().args(["frobnicate"]).assert().code(2);
}
