//! Damaged, empty, foreign and missing inputs: the run goes on where it can,
//! says where the damage is, and exits 3 (damaged) / 1 (fatal) / 2 (usage).

mod common;

use std::path::Path;

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

// ---- Inputs must not hang or blow up ----

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_ends_and_each_file_is_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("in");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::copy(
        sample_data().join("avro/users.messages.email.Open.avro"),
        root.join("a/b/open.avro"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&root, root.join("a/b/up")).unwrap();
    std::os::unix::fs::symlink(root.join("a/b/open.avro"), root.join("same.avro")).unwrap();
    let summary_path = tmp.path().join("summary.json");
    let started = std::time::Instant::now();
    let output = currents()
        .arg("map")
        .arg(&root)
        .arg("--summary-json")
        .arg(&summary_path)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let s = read_summary(&summary_path);
    assert_eq!(s["files"], 1, "{s}");
    assert_eq!(s["ignored"], json!({"already_visited": 2}), "{s}");
}

#[cfg(unix)]
#[test]
fn a_fifo_in_a_walk_is_left_out_and_a_named_one_is_read_as_a_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("in");
    std::fs::create_dir_all(&root).unwrap();
    let avro = std::fs::read(sample_data().join("avro/users.messages.email.Open.avro")).unwrap();
    std::fs::write(root.join("open.avro"), &avro).unwrap();
    mkfifo(&root.join("pipe"));
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("map")
        .arg(&root)
        .arg("--summary-json")
        .arg(&summary_path)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let s = read_summary(&summary_path);
    assert_eq!(s["ignored"], json!({"not_a_regular_file": 1}), "{s}");
    assert_eq!(s["mapped"], 2, "{s}");
    // Named: read once, the format detected on the same stream (as with <(cat f.avro)).
    let fifo = tmp.path().join("named");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, avro).unwrap())
    };
    let output = currents()
        .arg("map")
        .arg(&fifo)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    writer.join().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(ndjson(&output.stdout).len(), 2);
}

#[test]
fn files_that_are_not_currents_data_in_a_tree_are_ignored_not_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("in");
    std::fs::create_dir_all(root.join("hour=01")).unwrap();
    std::fs::copy(
        sample_data().join("ndjson/events.ndjson"),
        root.join("hour=01/events.ndjson"),
    )
    .unwrap();
    std::fs::write(root.join("_SUCCESS"), "").unwrap();
    std::fs::write(root.join("hour=01/notes.txt"), "ran fine").unwrap();
    std::fs::write(root.join("hour=01/marker"), "").unwrap();
    std::fs::write(root.join("hour=01/manifest"), "not json, not avro").unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("map")
        .arg(&root)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let s = read_summary(&summary_path);
    assert_eq!(
        s["ignored"],
        json!({"empty_file": 1, "hidden_or_marker": 1, "not_currents_data": 2}),
        "{s}"
    );
    assert_eq!(s["errors"], json!({}), "{s}");
    assert_eq!(s["files"], 1, "{s}");
    // Named explicitly, the same file is an input error.
    let output = currents()
        .arg("map")
        .arg(root.join("hour=01/manifest"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
}

#[test]
fn a_full_stderr_is_no_panic_and_the_summary_is_still_written() {
    let tmp = tempfile::tempdir().unwrap();
    let summary_path = tmp.path().join("summary.json");
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: /dev/full not available");
        return;
    };
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("currents"))
        .arg("map")
        .arg(sample_data())
        .arg("--summary-json")
        .arg(&summary_path)
        .stdout(std::process::Stdio::null())
        .stderr(full)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(read_summary(&summary_path)["mapped"], SAMPLE_MAPPED);
}
