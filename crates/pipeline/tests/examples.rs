//! The examples, built by `cargo test`, run for real: one on the demo
//! dataset, one against the loopback Mixpanel mock.

use std::path::{Path, PathBuf};
use std::process::Command;

use mixpanel_mock::{MockConfig, MockServer};

/// `target/<profile>/examples/<name>`, beside this test's own binary
/// (`cargo test` builds the examples; a filtered run may not have).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "currents-pipeline", "--example", name])
            .status()
            .unwrap();
        assert!(status.success(), "building example {name}");
    }
    path
}

fn sample_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data")
}

#[test]
fn files_to_ndjson_maps_the_demo_dataset() {
    let output = Command::new(example("files_to_ndjson"))
        .arg(sample_data())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let lines = String::from_utf8(output.stdout).unwrap().lines().count();
    assert_eq!(lines, 374);
    assert!(String::from_utf8_lossy(&output.stderr).contains("read 476, mapped 374"));
}

#[test]
fn files_to_import_exports_and_resumes() {
    let server = MockServer::start(MockConfig::with_token("example-token")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(example("files_to_import"))
            .arg(sample_data())
            .current_dir(dir.path())
            .env_clear()
            .env("MIXPANEL_PROJECT_TOKEN", "example-token")
            .env("MIXPANEL_API_BASE", server.base_url())
            .output()
            .unwrap()
    };
    let output = run();
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["imported"], 374);
    assert_eq!(server.insert_id_counts().len(), 374);
    assert!(dir.path().join("export.checkpoint.json").exists());
    // Again: everything is before the checkpoint, nothing is sent twice.
    let again: serde_json::Value = serde_json::from_slice(&run().stdout).unwrap();
    assert_eq!(again["imported"], 0);
    assert_eq!(again["skipped"]["before_checkpoint"], 476);
    assert_eq!(server.accepted_count(), 374);
}
