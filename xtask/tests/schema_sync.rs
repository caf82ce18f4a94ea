//! `cargo xtask schema sync|diff` end to end, on temporary copies of
//! `schemas/`: the project's "next version" fixture in
//! `tests/fixtures/schema-next/`, and the Braze reference sample when present.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use xtask::{avsc, schema_command, workspace_root};

fn schemas_dir() -> PathBuf {
    workspace_root().join("schemas")
}

fn fixture_dir() -> PathBuf {
    workspace_root().join("tests/fixtures/schema-next")
}

const REFERENCE: &str = "/work/shared/reference/currents-examples";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A temporary copy of `schemas/`.
fn temp_schemas() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("schemas");
    copy_dir(&schemas_dir(), &dir);
    (tmp, dir)
}

/// Runs `cargo xtask schema <args>`; returns (exit code, output with the temp dir masked).
fn run(args: &[&str], mask: &Path) -> (u8, String) {
    let mut out = Vec::new();
    let code = schema_command(args, &mut out);
    let text = String::from_utf8(out).unwrap();
    (code, text.replace(&mask.display().to_string(), "[schemas]"))
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_default()
}

/// The changes to one file as a unified diff, for snapshots.
fn file_diff(before: &str, after: &str, name: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(2)
        .header(name, name)
        .to_string()
}

#[test]
fn sync_fixture_then_no_changes() {
    let (_tmp, dir) = temp_schemas();
    let dir_s = dir.to_str().unwrap();
    let fixture = fixture_dir();
    let fixture_s = fixture.to_str().unwrap();

    // diff first: differences, exit code 1, nothing written.
    let (code, diff_report) = run(&["diff", "--schemas", dir_s, fixture_s], &dir);
    assert_eq!(code, 1, "{diff_report}");
    insta::assert_snapshot!("fixture_diff", diff_report);

    let files = [
        "currents.toml",
        "events/users.toml",
        "events/messages/email.toml",
        "events/messages/fax.toml",
    ];
    let before: Vec<String> = files.iter().map(|f| read(&dir, f)).collect();
    let (code, report) = run(&["sync", "--schemas", dir_s, fixture_s], &dir);
    assert_eq!(code, 0, "{report}");
    insta::assert_snapshot!("fixture_sync", report);
    let mut changes = String::new();
    for (file, before) in files.iter().zip(&before) {
        changes.push_str(&file_diff(before, &read(&dir, file), file));
    }
    insta::assert_snapshot!("fixture_sync_files", changes);

    // The result loads, and holds the changes.
    let glossary = currents_schema::load(&dir).expect("the synced schema loads");
    let open = glossary.event("users.messages.email.Open").unwrap();
    let amp = open.field("amp_version").unwrap();
    assert_eq!(
        (amp.ty.as_str(), amp.nullable, amp.pii),
        ("string", true, false)
    );
    assert!(open.field("is_amp").is_some(), "removed fields are kept");
    let fax = glossary.event("users.messages.fax.Send").unwrap();
    assert_eq!(fax.rust_name, "FaxSend");
    assert_eq!(fax.mixpanel_name, "Fax Send");
    assert!(fax.name_by_convention);
    assert_eq!(fax.channel.as_deref(), Some("fax"));
    let bucket = glossary.event("users.RandomBucketNumberUpdate").unwrap();
    let prev = bucket.field("prev_random_bucket_number").unwrap();
    assert_eq!((prev.ty.as_str(), prev.nullable), ("long", true));
    assert!(!bucket.field("app_group_id").unwrap().nullable);
    // Codegen follows: the new type gets a struct and a mapper, the new field a struct field.
    let generated = currents_codegen::generate(&glossary).expect("codegen on the synced schema");
    let text = |suffix: &str| {
        generated
            .iter()
            .find(|f| f.path.ends_with(suffix))
            .map(|f| f.contents.clone())
            .unwrap_or_default()
    };
    let events = text("events.rs");
    assert!(events.contains("pub struct FaxSend<'a> {"));
    assert!(
        events.contains("pub amp_version: ::std::option::Option<::std::borrow::Cow<'a, str>>,")
    );
    let mappers = text("mappers.rs");
    let start = mappers
        .find("impl MapToMixpanel for FaxSend<'_>")
        .expect("a FaxSend mapper");
    let end = mappers[start + 1..]
        .find("\nimpl ")
        .map_or(mappers.len(), |i| start + 1 + i);
    insta::assert_snapshot!("fixture_fax_send_mapper", &mappers[start..end]);
    assert!(text("json/out/users.messages.fax.Send.json").contains("\"Fax Send\""));

    // Doc changes are not applied without --docs.
    assert_eq!(
        open.field("user_agent").unwrap().doc,
        "User agent on which the open occurred"
    );
    // The new type's writer schema round-trips: diff on it alone is clean.
    let fax_avsc = fixture.join("users.messages.fax.Send.avsc");
    let (code, report) = run(
        &["diff", "--schemas", dir_s, fax_avsc.to_str().unwrap()],
        &dir,
    );
    assert_eq!(
        (code, report.trim_end().ends_with("no changes")),
        (0, true),
        "{report}"
    );

    // Idempotent: nothing is written again.
    let after: Vec<String> = files.iter().map(|f| read(&dir, f)).collect();
    let (code, again) = run(&["sync", "--schemas", dir_s, fixture_s], &dir);
    assert_eq!(code, 0, "{again}");
    let after_again: Vec<String> = files.iter().map(|f| read(&dir, f)).collect();
    assert_eq!(after, after_again);
    assert!(again.contains("no changes"), "{again}");
    insta::assert_snapshot!("fixture_sync_again", again);

    // --docs applies the doc change; then only the removed field is left.
    let (code, docs) = run(&["sync", "--docs", "--schemas", dir_s, fixture_s], &dir);
    assert_eq!(code, 0, "{docs}");
    let glossary = currents_schema::load(&dir).unwrap();
    let open = glossary.event("users.messages.email.Open").unwrap();
    assert_eq!(
        open.field("user_agent").unwrap().doc,
        "User agent (browser or mail client) on which the open occurred"
    );
    let (_, again) = run(&["sync", "--docs", "--schemas", dir_s, fixture_s], &dir);
    insta::assert_snapshot!("fixture_sync_docs_again", again);
}

#[test]
fn usage_and_errors() {
    let here = Path::new("/nonexistent");
    let (code, out) = run(&["--help"], here);
    assert_eq!(code, 0);
    assert!(out.contains("schema sync") && out.contains("schema diff"));
    let (code, out) = run(&["sync"], here);
    assert_eq!(code, 2, "{out}");
    let (code, out) = run(&["frobnicate"], here);
    assert_eq!(code, 2, "{out}");
    let (_tmp, dir) = temp_schemas();
    let (code, out) = run(
        &[
            "diff",
            "--schemas",
            dir.to_str().unwrap(),
            "/nonexistent/x.avsc",
        ],
        &dir,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no such file"), "{out}");
    let empty = tempfile::tempdir().unwrap();
    let (code, out) = run(
        &[
            "diff",
            "--schemas",
            dir.to_str().unwrap(),
            empty.path().to_str().unwrap(),
        ],
        &dir,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no .avsc"), "{out}");
}

/// `schema diff` and `schema sync` on Braze's published sample: our schema
/// must agree with every writer schema in it.
#[test]
fn reference_sample_is_in_sync() {
    let reference = Path::new(REFERENCE);
    if !reference.is_dir() {
        // Straight to stderr: the test harness captures print! output of passing tests.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipped: reference folder not found\n",
        );
        return;
    }
    let (_tmp, dir) = temp_schemas();
    let dir_s = dir.to_str().unwrap();
    let before = std::fs::read_dir(dir.join("events")).unwrap().count();
    for sub in ["avsc", "Avro"] {
        let input = reference.join(sub);
        let input = input.to_str().unwrap();
        let (code, report) = run(&["diff", "--schemas", dir_s, input], &dir);
        assert_eq!(code, 0, "{report}");
        assert!(report.trim_end().ends_with("no changes"), "{report}");
        let (code, report) = run(&["sync", "--schemas", dir_s, input], &dir);
        assert_eq!(code, 0, "{report}");
        assert!(report.trim_end().ends_with("no changes"), "{report}");
    }
    assert_eq!(
        std::fs::read_dir(dir.join("events")).unwrap().count(),
        before
    );
    for file in ["currents.toml", "fields.toml", "events/messages/email.toml"] {
        assert_eq!(read(&dir, file), read(&schemas_dir(), file));
    }
}

/// Every event type's rendered writer schema reads back as the glossary has it.
#[test]
fn rendered_writer_schemas_round_trip() {
    let (_tmp, dir) = temp_schemas();
    let glossary = currents_schema::load(&dir).unwrap();
    let out = tempfile::tempdir().unwrap();
    for ev in glossary.events.iter().filter(|e| e.avro) {
        std::fs::write(
            out.path().join(format!("{}.avsc", ev.event_type)),
            avsc::render(ev),
        )
        .unwrap();
    }
    let (code, report) = run(
        &[
            "diff",
            "--schemas",
            dir.to_str().unwrap(),
            out.path().to_str().unwrap(),
        ],
        &dir,
    );
    assert_eq!(code, 0, "{report}");
    assert!(report.trim_end().ends_with("no changes"), "{report}");
}

// ---- the fixture generator ----

fn field_mut<'a>(schema: &'a mut Value, name: &str) -> &'a mut Value {
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

/// The "next version" writer schemas in `tests/fixtures/schema-next/`: built
/// from the current glossary, then edited. Regenerate (after a deliberate
/// change) with
/// `cargo test -p xtask --test schema_sync -- --ignored regenerate_fixture`.
fn fixture_files() -> Vec<(String, Value)> {
    let glossary = currents_schema::load(&schemas_dir()).unwrap();
    let render = |t: &str| avsc::to_json(glossary.event(t).unwrap());

    // 1. email.Open: a new field, a doc change, a field gone.
    let mut open = render("users.messages.email.Open");
    open["fields"].as_array_mut().unwrap().push(json!({
        "name": "amp_version",
        "type": ["null", "string"],
        "doc": "Version of the AMP for Email runtime that rendered the open, if AMP",
        "default": null,
    }));
    field_mut(&mut open, "user_agent")["doc"] =
        json!("User agent (browser or mail client) on which the open occurred");
    open["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "is_amp");

    // 2. A new channel: fax.Send, shaped like sms.Send.
    let mut fax = render("users.messages.sms.Send");
    fax["namespace"] = json!("dataexport.S3.inner.users.messages.fax");
    fax["doc"] = json!("when a fax message is sent");
    let fields = fax["fields"].as_array_mut().unwrap();
    fields.retain(|f| f["name"] != "to_phone_number" && f["name"] != "category");
    fields.push(json!({
        "name": "to_fax_number",
        "type": "string",
        "doc": "[PII] Fax number of the recipient",
    }));
    fields.push(json!({
        "name": "page_count",
        "type": ["null", "int"],
        "doc": "Number of pages sent",
        "default": null,
    }));

    // 3. Type changes: int? -> long?, and a nullable field made required.
    let mut bucket = render("users.RandomBucketNumberUpdate");
    field_mut(&mut bucket, "prev_random_bucket_number")["type"] = json!(["null", "long"]);
    let app_group = field_mut(&mut bucket, "app_group_id");
    app_group["type"] = json!("string");
    app_group.as_object_mut().unwrap().remove("default");

    vec![
        ("users.messages.email.Open.avsc".into(), open),
        ("users.messages.fax.Send.avsc".into(), fax),
        ("users.RandomBucketNumberUpdate.avsc".into(), bucket),
    ]
}

#[test]
#[ignore = "writes tests/fixtures/schema-next/; run by hand after a deliberate change"]
fn regenerate_fixture() {
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, schema) in fixture_files() {
        std::fs::write(dir.join(name), avsc::pretty(&schema)).unwrap();
    }
}

/// The Avro object container header of a file holding `schema` (no blocks).
fn container(schema: &str) -> Vec<u8> {
    currents_core::avro::AvroHeader {
        schema_json: schema.to_owned(),
        codec: "null".into(),
        sync_marker: [0x5a; 16],
    }
    .to_bytes()
}

/// `.avro` and `.avro.gz` inputs report exactly what the `.avsc` files do.
#[test]
fn container_files_read_like_avsc() {
    use std::io::Write as _;
    let (_tmp, dir) = temp_schemas();
    let dir_s = dir.to_str().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir()).unwrap().flatten() {
        let schema = std::fs::read_to_string(entry.path()).unwrap();
        let stem = entry.file_name().to_str().unwrap().replace(".avsc", "");
        let bytes = container(&schema);
        if stem.contains("email") {
            let file =
                std::fs::File::create(inputs.path().join(format!("{stem}.avro.gz"))).unwrap();
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            gz.write_all(&bytes).unwrap();
            gz.finish().unwrap();
        } else {
            std::fs::write(inputs.path().join(format!("nested/{stem}.avro")), &bytes)
                .or_else(|_| {
                    std::fs::create_dir_all(inputs.path().join("nested"))?;
                    std::fs::write(inputs.path().join(format!("nested/{stem}.avro")), &bytes)
                })
                .unwrap();
        }
    }
    let (code, from_avsc) = run(
        &["diff", "--schemas", dir_s, fixture_dir().to_str().unwrap()],
        &dir,
    );
    assert_eq!(code, 1);
    let (code, from_avro) = run(
        &["diff", "--schemas", dir_s, inputs.path().to_str().unwrap()],
        &dir,
    );
    assert_eq!(code, 1, "{from_avro}");
    assert_eq!(from_avro, from_avsc);
}

/// PII marks and fields that were `avro = false` are applied; new types land
/// in the file of their namespace; `-v` lists what is expected to be missing.
#[test]
fn pii_avro_and_types_in_existing_files() {
    let (_tmp, dir) = temp_schemas();
    let dir_s = dir.to_str().unwrap();
    let glossary = currents_schema::load(&dir).unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let write = |name: &str, schema: &Value| {
        std::fs::write(inputs.path().join(name), avsc::pretty(schema)).unwrap();
    };
    // sms.Send: device_id (avro = false in the glossary) is now in Avro, and
    // user_id loses its [PII] mark.
    let sms = glossary.event("users.messages.sms.Send").unwrap();
    assert!(!sms.field("device_id").unwrap().avro);
    let mut schema = avsc::to_json(sms);
    let device = sms.field("device_id").unwrap();
    schema["fields"].as_array_mut().unwrap().push(json!({
        "name": "device_id",
        "type": device.ty.avro_type(device.nullable),
        "doc": device.doc,
        "default": null,
    }));
    field_mut(&mut schema, "user_id")["doc"] = json!(sms.field("user_id").unwrap().doc);
    write("sms.Send.avsc", &schema);
    // A new email type and a new behavior, shaped like existing ones.
    let mut forward = avsc::to_json(glossary.event("users.messages.email.Open").unwrap());
    forward["name"] = json!("Forward");
    forward["doc"] = json!("when a user forwards an email");
    write("email.Forward.avsc", &forward);
    let mut wave = avsc::to_json(glossary.event("users.behaviors.Uninstall").unwrap());
    wave["name"] = json!("Wave");
    wave["doc"] = json!("when a user waves");
    write("behaviors.Wave.avsc", &wave);

    let input = inputs.path().to_str().unwrap();
    let (code, report) = run(&["sync", "-v", "--schemas", dir_s, input], &dir);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("  ~ device_id: marked avro = false, but the writer schema has it"),
        "{report}"
    );
    assert!(
        report.contains("  ~ user_id: pii true -> false"),
        "{report}"
    );
    assert!(
        report.contains("-> events/messages/email.toml: rust_name EmailForward"),
        "{report}"
    );
    assert!(
        report.contains("-> events/behaviors.toml: rust_name Wave"),
        "{report}"
    );
    assert!(
        report.contains("newsfeedcard.Abort: not in Avro (expected"),
        "{report}"
    );
    assert!(!report.contains("segment"), "no new segments: {report}");

    let glossary = currents_schema::load(&dir).unwrap();
    let sms = glossary.event("users.messages.sms.Send").unwrap();
    assert!(sms.field("device_id").unwrap().avro);
    assert!(!sms.field("user_id").unwrap().pii);
    let forward = glossary.event("users.messages.email.Forward").unwrap();
    assert_eq!(
        forward.location.file,
        Path::new("events/messages/email.toml")
    );
    assert_eq!(forward.mixpanel_name, "Email Forward");
    // The new type has the fields of its writer schema, with their types.
    let open = glossary.event("users.messages.email.Open").unwrap();
    for f in open.fields.iter().filter(|f| f.avro) {
        let g = forward.field(&f.name).unwrap();
        assert_eq!(
            (g.ty, g.nullable, g.pii, &g.doc),
            (f.ty, f.nullable, f.pii, &f.doc)
        );
    }
    assert_eq!(
        glossary
            .event("users.behaviors.Wave")
            .unwrap()
            .location
            .file,
        Path::new("events/behaviors.toml")
    );

    let (code, again) = run(&["diff", "--schemas", dir_s, input], &dir);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again.lines().last(), Some("no changes"));
}
