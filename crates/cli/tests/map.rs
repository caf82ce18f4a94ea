//! `currents map`: decode, map and write Mixpanel NDJSON.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use common::*;
use serde_json::{Value, json};

fn sample_summary() -> Value {
    summary(json!({
        "read": SAMPLE_READ,
        "mapped": SAMPLE_MAPPED,
        "skipped": {"no_external_user_id": SAMPLE_SKIPPED},
        "files": SAMPLE_FILES,
        "bytes": SAMPLE_BYTES,
        "ignored": {SAMPLE_IGNORED: 1},
    }))
}

/// Asserts the shape of one mapped event and returns its properties.
fn check_event(event: &Value) -> &serde_json::Map<String, Value> {
    let object = event.as_object().unwrap();
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["event", "properties"],
        "{event}"
    );
    assert!(
        event["event"].as_str().is_some_and(|s| !s.is_empty()),
        "{event}"
    );
    let properties = event["properties"].as_object().expect("properties object");
    assert!(properties["distinct_id"].is_string(), "{event}");
    let insert_id = properties["$insert_id"].as_str().expect("$insert_id");
    assert!(
        !insert_id.is_empty()
            && insert_id.len() <= 36
            && insert_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{insert_id}"
    );
    let time = properties["time"].as_i64().expect("integer time");
    assert!((1_600_000_000..4_000_000_000).contains(&time), "{time}");
    assert_eq!(properties["$partner_id"], "braze", "{event}");
    properties
}

fn map_sample(args: &[&str]) -> (Vec<Value>, Value, String) {
    let tmp = tempfile::tempdir().unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("map")
        .arg(sample_data())
        .args(args)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    (
        ndjson(&output.stdout),
        read_summary(&summary_path),
        stderr_of(&output),
    )
}

#[test]
fn map_sample_data() {
    let (events, summary, stderr) = map_sample(&[]);
    assert_eq!(summary, sample_summary());
    assert_eq!(events.len() as u64, SAMPLE_MAPPED);
    let mut insert_ids = BTreeSet::new();
    for event in &events {
        let properties = check_event(event);
        assert!(insert_ids.insert(properties["$insert_id"].as_str().unwrap().to_owned()));
        // The braze profile drops the Braze user id.
        assert!(!properties.contains_key("braze_user_id"), "{event}");
    }
    // The human summary on stderr.
    assert!(
        stderr.contains("read 476 record(s) from 97 file(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("mapped         374"), "{stderr}");
    assert!(stderr.contains("no_external_user_id: 102"), "{stderr}");
    // Per event type too: the header, then the busiest types with their counts.
    let header = stderr
        .lines()
        .position(|l| l.trim_start().starts_with("by event type"))
        .unwrap_or_else(|| panic!("no per-type table: {stderr}"));
    let first: Vec<&str> = stderr
        .lines()
        .nth(header + 1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let [name, read, mapped, skipped, rejected] = first[..] else {
        panic!("{first:?}")
    };
    assert!(name.contains('.'), "an event type: {name}");
    let n = |s: &str| s.parse::<u64>().unwrap();
    assert!(n(read) > 0);
    assert_eq!(n(read), n(mapped) + n(skipped) + n(rejected), "{first:?}");
}

#[test]
fn map_quiet_prints_nothing_on_stderr() {
    currents()
        .args(["map", "-q"])
        .arg(sample_data().join("ndjson"))
        .assert()
        .success()
        .stderr("");
}

#[test]
fn map_profile_full_keeps_more_fields() {
    let (braze, _, _) = map_sample(&[]);
    let (full, summary, _) = map_sample(&["--profile", "full"]);
    assert_eq!(summary, sample_summary());
    assert_eq!(full.len(), braze.len());
    let mut more = 0;
    for (b, f) in braze.iter().zip(&full) {
        let (pb, pf) = (check_event(b), check_event(f));
        assert_eq!(b["event"], f["event"]);
        assert_eq!(pb["$insert_id"], pf["$insert_id"]);
        assert!(pf.len() >= pb.len(), "{b}\n{f}");
        more += usize::from(pf.len() > pb.len());
    }
    assert!(more > 0);
    let open = full
        .iter()
        .find(|e| e["event"] == "Email Open")
        .expect("an Email Open");
    assert!(open["properties"]["braze_user_id"].is_string(), "{open}");
    assert!(open["properties"]["timezone"].is_string(), "{open}");
}

#[test]
fn map_pii_drop_removes_email_addresses() {
    let (kept, _, _) = map_sample(&[]);
    assert!(
        kept.iter()
            .any(|e| e["properties"].get("email_address").is_some())
    );
    let (events, summary, _) = map_sample(&["--pii", "drop"]);
    assert_eq!(summary, sample_summary());
    for event in &events {
        check_event(event);
        let text = event.to_string();
        assert!(!text.contains("email_address"), "{text}");
        assert!(!text.contains("@example.com"), "{text}");
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn map_pii_hash_is_keyed_and_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_data();
    let run = |key: &str| {
        let output = currents()
            .args(["map", "-q", "--pii", "hash"])
            .arg(&input)
            .env("CURRENTS_PII_KEY", key)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        ndjson(&output.stdout)
    };
    let (plain, _, _) = map_sample(&[]);
    let (k1, k2) = ("k1-a-key-of-16+bytes", "k2-a-key-of-16+bytes");
    let hashed = run(k1);
    assert_eq!(plain.len(), hashed.len());
    // original distinct_id → hash: a function, and one-to-one.
    let mut forward: BTreeMap<String, String> = BTreeMap::new();
    let mut backward: BTreeMap<String, String> = BTreeMap::new();
    for (p, h) in plain.iter().zip(&hashed) {
        check_event(h);
        assert_eq!(p["properties"]["$insert_id"], h["properties"]["$insert_id"]);
        let original = p["properties"]["distinct_id"].as_str().unwrap().to_owned();
        let hash = h["properties"]["distinct_id"].as_str().unwrap().to_owned();
        assert!(is_hex64(&hash), "{hash}");
        assert_ne!(original, hash);
        assert_eq!(
            forward.entry(original.clone()).or_insert(hash.clone()),
            &hash
        );
        assert_eq!(backward.entry(hash).or_insert(original.clone()), &original);
        if let Some(email) = h["properties"].get("email_address") {
            assert!(is_hex64(email.as_str().unwrap()), "{email}");
        }
    }
    assert!(
        forward.len() > 1 && forward.len() < plain.len(),
        "users repeat"
    );
    // Deterministic for one key, different for another.
    assert_eq!(run(k1), hashed);
    let other = run(k2);
    assert_ne!(
        other[0]["properties"]["distinct_id"],
        hashed[0]["properties"]["distinct_id"]
    );
    // --pii-key-file (trailing newline trimmed) is the same key.
    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, format!("{k1}\n")).unwrap();
    let output = currents()
        .args(["map", "-q", "--pii", "hash", "--pii-key-file"])
        .arg(&key_file)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(ndjson(&output.stdout), hashed);
}

#[test]
fn the_user_id_and_the_pii_properties_are_chosen_apart() {
    let (plain, _, _) = map_sample(&[]);
    let run = |args: &[&str]| {
        let output = currents()
            .args(["map", "-q"])
            .args(args)
            .arg(sample_data())
            .env("CURRENTS_PII_KEY", "a-key-of-16-bytes-or-more")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        ndjson(&output.stdout)
    };
    let email = |e: &Value| e["properties"].get("email_address").cloned();
    // Properties hashed, the user id kept in clear.
    let kept = run(&["--pii", "hash", "--pii-user-id", "keep"]);
    // Properties dropped, the user id hashed.
    let hashed = run(&["--pii", "drop", "--pii-user-id", "hash"]);
    assert_eq!(plain.len(), kept.len());
    let mut emails = 0;
    for ((p, k), h) in plain.iter().zip(&kept).zip(&hashed) {
        let id = &p["properties"]["distinct_id"];
        assert_eq!(&k["properties"]["distinct_id"], id);
        let hashed_id = h["properties"]["distinct_id"].as_str().unwrap();
        assert!(is_hex64(hashed_id) && Some(hashed_id) != id.as_str(), "{h}");
        if let Some(clear) = email(p) {
            emails += 1;
            let k = email(k).unwrap();
            assert!(is_hex64(k.as_str().unwrap()) && k != clear, "{k}");
            assert_eq!(email(h), None, "dropped");
        }
    }
    assert!(emails > 0, "the sample has e-mail addresses");
}

#[test]
fn map_pii_hash_without_key_fails_clearly() {
    let output = currents()
        .args(["map", "--pii", "hash"])
        .arg(sample_data())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = stderr_of(&output);
    assert_eq!(
        stderr.trim_end(),
        "error: hashing PII needs a key: set CURRENTS_PII_KEY or CURRENTS_PII_KEY_FILE"
    );
    // Keys shorter than 16 bytes are refused (a short key makes the hashes
    // easy to reverse), and so is a key given both ways.
    for (key, message) in [
        ("  ", "key is 2 bytes; it must be at least 16"),
        ("fifteen-bytes!!", "key is 15 bytes; it must be at least 16"),
    ] {
        let output = currents()
            .args(["map", "--pii", "hash"])
            .arg(sample_data())
            .env("CURRENTS_PII_KEY", key)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr_of(&output).contains(message), "{output:?}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, "a-key-of-16-bytes-or-more\n").unwrap();
    let output = currents()
        .args(["map", "--pii", "hash", "--pii-key-file"])
        .arg(&key_file)
        .arg(sample_data())
        .env("CURRENTS_PII_KEY", "a-key-of-16-bytes-or-more")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("both CURRENTS_PII_KEY and CURRENTS_PII_KEY_FILE"),
        "{output:?}"
    );
}

const UNKNOWN: &str = r#"{"event_type":"users.messages.carrierpigeon.Send","id":"0f0e0d0c-0b0a-4908-8706-050403020100","external_user_id":"user-00042","time":1768435400,"pigeon_name":"Ada"}"#;

#[test]
fn map_unknown_types_skip_and_map() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.ndjson");
    let known = ndjson_record("users.messages.email.Open");
    let text = format!("{known}\n{UNKNOWN}\n");
    std::fs::write(&input, &text).unwrap();
    let summary_path = tmp.path().join("summary.json");

    let output = currents()
        .args(["map", "--unknown-types", "skip"])
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let events = ndjson(&output.stdout);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "Email Open");
    let base = json!({
        "read": 2,
        "files": 1,
        "bytes": text.len(),
        "unknown_event_types": {"users.messages.carrierpigeon.Send": 1},
    });
    let mut expected = summary(base.clone());
    expected["mapped"] = json!(1);
    expected["skipped"] = json!({"unknown_event_type": 1});
    assert_eq!(read_summary(&summary_path), expected);

    // The default maps it by the naming convention.
    let output = currents()
        .args(["map"])
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let events = ndjson(&output.stdout);
    assert_eq!(events.len(), 2);
    let properties = check_event(&events[1]);
    assert_eq!(properties["distinct_id"], "user-00042");
    let mut expected = summary(base);
    expected["mapped"] = json!(2);
    assert_eq!(read_summary(&summary_path), expected);
}

#[test]
fn map_to_an_output_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.ndjson");
    let (expected, _, _) = map_sample(&[]);
    currents()
        .args(["map", "-q", "-o"])
        .arg(&out)
        .arg(sample_data())
        .assert()
        .success()
        .stdout("");
    assert_eq!(ndjson(&std::fs::read(&out).unwrap()), expected);
    // An output path that cannot be created: exit 1, one line.
    let output = currents()
        .args(["map", "-o"])
        .arg(tmp.path().join("missing-dir/out.ndjson"))
        .arg(sample_data())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.starts_with("error: cannot create"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn map_from_stdin() {
    let text = std::fs::read(sample_data().join("ndjson/events.ndjson")).unwrap();
    let from_file = currents()
        .args(["map", "-q"])
        .arg(sample_data().join("ndjson/events.ndjson"))
        .output()
        .unwrap();
    assert!(from_file.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let summary_path = tmp.path().join("summary.json");
    for args in [&["map", "-"][..], &["map"][..]] {
        let output = currents()
            .args(args)
            .arg("--summary-json")
            .arg(&summary_path)
            .write_stdin(text.clone())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        assert_eq!(output.stdout, from_file.stdout);
        assert_eq!(ndjson(&output.stdout).len(), 95);
        assert_eq!(
            read_summary(&summary_path),
            summary(json!({
                "read": 97,
                "mapped": 95,
                "skipped": {"no_external_user_id": 2},
                "files": 1,
                // Bytes read, standard input too.
                "bytes": text.len(),
            }))
        );
    }
    // An Avro container on stdin.
    let avro = std::fs::read(sample_data().join("avro/users.messages.email.Open.avro")).unwrap();
    let output = currents()
        .args(["map", "-q", "-"])
        .write_stdin(avro)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(ndjson(&output.stdout).len(), 2);
}

#[test]
fn map_walks_directories_in_sorted_order() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("export");
    let open = ndjson_record("users.messages.email.Open");
    let click = ndjson_record("users.messages.email.Click");
    std::fs::create_dir_all(root.join("2026/01/15")).unwrap();
    std::fs::create_dir_all(root.join("2026/01/14")).unwrap();
    std::fs::write(root.join("2026/01/15/b.ndjson"), format!("{click}\n")).unwrap();
    std::fs::write(root.join("2026/01/14/a.ndjson"), format!("{open}\n")).unwrap();
    std::fs::copy(
        sample_data().join("avro/users.messages.email.Open.avro"),
        root.join("2026/01/15/c.avro"),
    )
    .unwrap();
    // Not data: left out of the walk.
    std::fs::write(root.join("README.md"), "# notes\n").unwrap();
    std::fs::write(root.join(".hidden"), "garbage").unwrap();
    std::fs::write(root.join("2026/schema.avsc"), "{}").unwrap();

    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .args(["map"])
        .arg(&root)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let names = event_names(&output.stdout);
    assert_eq!(
        names,
        ["Email Open", "Email Click", "Email Open", "Email Open"]
    );
    let s = read_summary(&summary_path);
    assert_eq!(s["files"], 3);
    assert_eq!(s["read"], 5);
    assert_eq!(s["mapped"], 4);
    assert_eq!(s["skipped"], json!({"no_external_user_id": 1}));

    // A directory with no data files at all.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    std::fs::write(empty.join("README.md"), "x").unwrap();
    let output = currents().arg("map").arg(&empty).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("no input files in directory"),
        "{output:?}"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn map_reads_gzip_transparently() {
    let tmp = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for (name, source) in [
        ("events.ndjson.gz", "ndjson/events.ndjson"),
        ("open.avro.gz", "avro/users.messages.email.Open.avro"),
        ("batch.json.gz", "http/batch-001.json"),
        // No telling suffix: detected from the content.
        ("data", "http/batch-002.json"),
    ] {
        let plain = std::fs::read(sample_data().join(source)).unwrap();
        std::fs::write(tmp.path().join(name), gzip(&plain)).unwrap();
        let output = currents()
            .args(["map", "-q"])
            .arg(sample_data().join(source))
            .output()
            .unwrap();
        assert!(output.status.success());
        let gz = currents()
            .args(["map", "-q"])
            .arg(tmp.path().join(name))
            .output()
            .unwrap();
        assert_eq!(gz.status.code(), Some(0), "{}", stderr_of(&gz));
        assert_eq!(gz.stdout, output.stdout, "{name}");
        expected.extend(ndjson(&output.stdout));
    }
    // Two types of the NDJSON and HTTP files have no external_user_id.
    assert_eq!(expected.len(), 95 + 2 + 95);
    // Gzip on stdin.
    let plain = std::fs::read(sample_data().join("ndjson/events.ndjson")).unwrap();
    let output = currents()
        .args(["map", "-q", "-"])
        .write_stdin(gzip(&plain))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(ndjson(&output.stdout).len(), 95);
}

/// An event type the schema does not know keeps its `time` as is, so a
/// millisecond value reaches the /import pre-validation.
const UNKNOWN_MS: &str = r#"{"event_type":"users.messages.carrierpigeon.Send","id":"0f0e0d0c-0b0a-4908-8706-050403020101","external_user_id":"user-00042","time":1768435400123}"#;

#[test]
fn map_strict_rejects_millisecond_time_else_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.ndjson");
    let open = ndjson_record("users.messages.email.Open");
    let text = format!("{open}\n{UNKNOWN_MS}\n");
    std::fs::write(&input, &text).unwrap();
    let summary_path = tmp.path().join("summary.json");
    let base = json!({
        "read": 2,
        "files": 1,
        "bytes": text.len(),
        "unknown_event_types": {"users.messages.carrierpigeon.Send": 1},
    });

    // Without --strict: a warning, the event is still written, exit 0.
    let output = currents()
        .arg("map")
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let events = ndjson(&output.stdout);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["properties"]["time"], 1_768_435_400_123_i64);
    let mut expected = summary(base.clone());
    expected["mapped"] = json!(2);
    expected["warnings"] = json!({"time_in_milliseconds": 1});
    assert_eq!(read_summary(&summary_path), expected);
    assert!(
        stderr_of(&output).contains("time_in_milliseconds: 1"),
        "{output:?}"
    );

    // With --strict: rejected, not written, exit 3.
    let output = currents()
        .args(["map", "--strict"])
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    let events = ndjson(&output.stdout);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "Email Open");
    let mut expected = summary(base);
    expected["mapped"] = json!(1);
    expected["rejected"] = json!({"time_in_milliseconds": 1});
    assert_eq!(read_summary(&summary_path), expected);
}

#[test]
fn map_millisecond_time_of_a_known_type_is_a_time_finding() {
    // A millisecond `time` (beyond the Avro int range) decodes, and the
    // /import time rules judge it: a warning for `map`, a rejection with --strict.
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("ms.ndjson");
    let open = ndjson_record("users.messages.email.Open");
    let ms = with(&open, "time", json!(1_768_435_428_000_i64));
    let far = with(&open, "time", json!(4_102_444_800_i64));
    std::fs::write(&input, format!("{open}\n{ms}\n{far}\n")).unwrap();
    for strict in [false, true] {
        let summary_path = tmp.path().join("summary.json");
        let mut cmd = currents();
        cmd.arg("map")
            .arg(&input)
            .arg("--summary-json")
            .arg(&summary_path);
        if strict {
            cmd.arg("--strict");
        }
        let output = cmd.output().unwrap();
        let s = read_summary(&summary_path);
        let findings = json!({"time_in_milliseconds": 1, "time_in_future": 1});
        if strict {
            assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
            assert_eq!(ndjson(&output.stdout).len(), 1);
            assert_eq!(s["rejected"], findings);
        } else {
            assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
            assert_eq!(ndjson(&output.stdout).len(), 3);
            assert_eq!(s["warnings"], findings);
        }
        assert_eq!(s["errors"], json!({}));
    }
}

// ---- Mapping matches Braze's documented shape; privacy holds everywhere ----

#[test]
fn fields_the_schema_does_not_know_are_counted_not_sent_under_braze() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("drift.ndjson");
    let open = ndjson_record("users.messages.email.Open");
    let drifted = with(&open, "brand_new_field", json!("x"));
    std::fs::write(&input, format!("{drifted}\n")).unwrap();
    let run = |extra: &[&str]| {
        let output = currents()
            .arg("map")
            .arg("-q")
            .arg(&input)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        ndjson(&output.stdout).remove(0)
    };
    let braze = run(&[]);
    assert!(
        braze["properties"].get("brand_new_field").is_none(),
        "{braze}"
    );
    for extra in [&["--unknown-fields", "keep"][..], &["--profile", "full"]] {
        assert_eq!(
            run(extra)["properties"]["brand_new_field"],
            "x",
            "{extra:?}"
        );
    }
}

#[test]
fn a_required_field_the_event_does_not_use_may_be_missing() {
    // Braze's own Custom HTTP sample of an in-app message Abort has no
    // `version`, which the writer schema requires and the Mixpanel event drops.
    let tmp = tempfile::tempdir().unwrap();
    let abort = ndjson_record("users.messages.inappmessage.Abort");
    let mut value: Value = serde_json::from_str(&abort).unwrap();
    value.as_object_mut().unwrap().remove("version");
    let input = tmp.path().join("abort.ndjson");
    std::fs::write(&input, format!("{value}\n")).unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .arg("map")
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(ndjson(&output.stdout).len(), 1);
    let s = read_summary(&summary_path);
    assert_eq!(s["warnings"], json!({"missing_field": 1}), "{s}");
    assert_eq!(
        s["missing_fields"],
        json!({"users.messages.inappmessage.Abort.version": 1}),
        "{s}"
    );
    // A field the event does use is still required.
    value.as_object_mut().unwrap().remove("id");
    std::fs::write(&input, format!("{value}\n")).unwrap();
    let output = currents().arg("map").arg(&input).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
}

#[test]
fn placeholder_user_ids_are_refused_before_hashing() {
    let tmp = tempfile::tempdir().unwrap();
    let open = ndjson_record("users.messages.email.Open");
    let input = tmp.path().join("null-user.ndjson");
    let lines: Vec<String> = ["null", "Anonymous", "0"]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let line = with(&open, "external_user_id", json!(id));
            with(
                &line,
                "id",
                json!(format!("0b5a1c2e-aaaa-4bbb-8ccc-00000000000{i}")),
            )
        })
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let summary_path = tmp.path().join("summary.json");
    let output = currents()
        .args(["map", "--strict", "--pii", "hash"])
        .arg(&input)
        .arg("--summary-json")
        .arg(&summary_path)
        .env("CURRENTS_PII_KEY", "a-key-of-16-bytes-or-more")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert!(
        output.stdout.is_empty(),
        "no hashed placeholder identity is written"
    );
    assert_eq!(
        read_summary(&summary_path)["rejected"],
        json!({"placeholder_distinct_id": 3})
    );
}

#[test]
fn no_clear_pii_reaches_the_dead_letter_under_hash_or_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let open = ndjson_record("users.messages.email.Open");
    let value: Value = serde_json::from_str(&open).unwrap();
    let email = value["email_address"].as_str().unwrap().to_owned();
    let user = value["external_user_id"].as_str().unwrap().to_owned();
    // Rejected before sending (time before 1971), and one that fails to
    // decode with the e-mail address where a number belongs.
    let old = with(&open, "time", json!(1000));
    let broken = with(&open, "time", json!(email.clone()));
    let input = tmp.path().join("pii.ndjson");
    std::fs::write(&input, format!("{old}\n{broken}\n")).unwrap();
    for pii in ["hash", "drop"] {
        let dead = tmp.path().join(format!("dead-{pii}.ndjson"));
        let output = currents()
            .args(["export", "--dry-run", "--pii", pii])
            .arg(&input)
            .arg("--dead-letter")
            .arg(&dead)
            .env("CURRENTS_PII_KEY", "a-key-of-16-bytes-or-more")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
        let text = std::fs::read_to_string(&dead).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains(&email), "{pii}: e-mail in clear:\n{text}");
        assert!(
            !stderr_of(&output).contains(&email),
            "{pii}: {}",
            stderr_of(&output)
        );
        if pii == "hash" {
            assert!(
                !text.contains(&format!("\"{user}\"")),
                "{pii}: user id in clear:\n{text}"
            );
        }
        let lines = ndjson(text.as_bytes());
        assert!(lines[0]["input"].is_object(), "{}", lines[0]);
    }
}

#[test]
fn simplified_identity_sends_user_and_device_ids_and_anonymous_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let open = ndjson_record("users.messages.pushnotification.Open");
    let value: Value = serde_json::from_str(&open).unwrap();
    let device = value["device_id"]
        .as_str()
        .expect("push events carry a device")
        .to_owned();
    let mut anonymous = value.clone();
    anonymous
        .as_object_mut()
        .unwrap()
        .remove("external_user_id");
    anonymous["id"] = json!("0b5a1c2e-aaaa-4bbb-8ccc-0000000000ff");
    let input = tmp.path().join("push.ndjson");
    std::fs::write(&input, format!("{open}\n{anonymous}\n")).unwrap();
    let run = |identity: &str| {
        let output = currents()
            .args(["map", "-q", "--identity", identity])
            .arg(&input)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        ndjson(&output.stdout)
    };
    // Braze's connector: the anonymous event is skipped.
    let braze = run("braze");
    assert_eq!(braze.len(), 1);
    assert!(braze[0]["properties"].get("$user_id").is_none());
    let simplified = run("simplified");
    assert_eq!(simplified.len(), 2);
    let known = &simplified[0]["properties"];
    assert_eq!(known["$user_id"], value["external_user_id"]);
    assert_eq!(known["distinct_id"], value["external_user_id"]);
    assert_eq!(known["$device_id"], json!(device));
    let anon = &simplified[1]["properties"];
    assert_eq!(anon["distinct_id"], json!(format!("$device:{device}")));
    assert_eq!(anon["$device_id"], json!(device));
    assert!(anon.get("$user_id").is_none());
}
