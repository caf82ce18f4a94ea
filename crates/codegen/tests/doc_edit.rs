//! Editing one field's doc in `schemas/` changes only the generated lines of
//! that field, and the freshness check catches it before regenerating.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use currents_schema::{SourceFiles, load_sources};

fn generate(sources: &SourceFiles) -> BTreeMap<PathBuf, String> {
    let glossary = load_sources(sources).unwrap_or_else(|p| panic!("{p:?}"));
    currents_codegen::generate(&glossary)
        .expect("generates")
        .into_iter()
        .map(|f| (f.path, f.contents))
        .collect()
}

#[test]
fn one_doc_edit_changes_only_that_fields_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let sources = SourceFiles::read(&root).expect("schema readable");
    let before = generate(&sources);

    // `machine_open` is defined in the email Open event alone.
    let old_doc =
        "doc = \"Populated to 'true' if the open event is triggered without user engagement";
    let mut edited = sources.clone();
    let (_, text) = edited
        .files
        .iter_mut()
        .find(|(path, text)| path.ends_with("email.toml") && text.contains(old_doc))
        .expect("the email events file defines machine_open");
    *text = text.replacen(old_doc, "doc = \"EDITED DOC of machine_open", 1);
    let after = generate(&edited);

    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let mut changed_files = Vec::new();
    for (path, old) in &before {
        let new = &after[path];
        if old == new {
            continue;
        }
        changed_files.push(path.display().to_string());
        let old_lines: Vec<&str> = old.lines().collect();
        let new_lines: Vec<&str> = new.lines().collect();
        assert_eq!(
            old_lines.len(),
            new_lines.len(),
            "{}: line count changed",
            path.display()
        );
        for (old_line, new_line) in old_lines.iter().zip(&new_lines) {
            if old_line != new_line {
                assert!(
                    new_line.contains("EDITED DOC of machine_open"),
                    "{}: unrelated line changed: {new_line}",
                    path.display()
                );
            }
        }
    }
    assert_eq!(
        changed_files,
        [
            "crates/events/src/generated/events.rs",
            "schemas/json/in/users.messages.email.Open.json",
            "schemas/json/out/users.messages.email.Open.json",
        ]
    );
}

#[test]
fn check_mode_reports_stale_files_without_writing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    copy_tree(&schemas, &dir.path().join("schemas"));
    // Nothing generated yet: everything is stale, and check mode writes nothing.
    let err = currents_codegen::run(dir.path(), currents_codegen::Mode::Check).expect_err("stale");
    let message = err.to_string();
    assert!(
        message.contains("crates/events/src/generated/events.rs"),
        "{message}"
    );
    assert!(message.contains("run `cargo xtask codegen`"), "{message}");
    assert!(!dir.path().join("crates").exists());
    // Write, then check passes; a second write changes nothing.
    currents_codegen::run(dir.path(), currents_codegen::Mode::Write).expect("writes");
    currents_codegen::run(dir.path(), currents_codegen::Mode::Check).expect("fresh");
    let report = currents_codegen::run(dir.path(), currents_codegen::Mode::Write).expect("writes");
    assert!(report.updated.is_empty());
    // An orphaned JSON Schema is stale too.
    std::fs::write(
        dir.path().join("schemas/json/in/users.gone.Away.json"),
        "{}",
    )
    .expect("write");
    let err = currents_codegen::run(dir.path(), currents_codegen::Mode::Check).expect_err("orphan");
    assert!(err.to_string().contains("users.gone.Away.json"));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}
