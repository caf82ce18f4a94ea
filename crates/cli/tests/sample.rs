//! `currents sample`: the committed `sample-data/` is exactly what it writes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{currents, sample_data};

/// Relative path → contents of every file under `dir`.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn sample_writes_the_committed_dataset_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    let output = currents()
        .args(["sample", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        common::stderr_of(&output).contains("wrote 97 file(s)"),
        "{output:?}"
    );

    let written = tree(&out);
    let mut committed = tree(&sample_data());
    assert!(
        committed.remove("README.md").is_some(),
        "sample-data/README.md"
    );
    let written_names: Vec<_> = written.keys().collect();
    let committed_names: Vec<_> = committed.keys().collect();
    assert_eq!(
        written_names, committed_names,
        "sample-data/ has other files than `currents sample` writes: it is stale"
    );
    let stale: Vec<_> = committed
        .iter()
        .filter(|(name, bytes)| written[*name] != **bytes)
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        stale.is_empty(),
        "sample-data/ is stale, these files differ from `currents sample`: {stale:?}"
    );
    assert_eq!(written.len(), 97);
    assert_eq!(
        written.keys().filter(|n| n.starts_with("avro/")).count(),
        94
    );
    assert_eq!(written.keys().filter(|n| n.starts_with("http/")).count(), 2);
    assert!(written.contains_key("ndjson/events.ndjson"));
}

#[test]
fn sample_is_deterministic_and_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    for run in ["a", "b"] {
        currents()
            .args(["sample", "-q", "-o"])
            .arg(tmp.path().join(run))
            .assert()
            .success()
            .stdout("")
            .stderr("");
    }
    assert_eq!(tree(&tmp.path().join("a")), tree(&tmp.path().join("b")));
}

#[test]
fn sample_into_an_unwritable_place_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the output directory should be.
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let output = currents()
        .args(["sample", "-o"])
        .arg(blocker.join("sub"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = common::stderr_of(&output);
    assert!(
        stderr.starts_with("error: cannot write the dataset to"),
        "{stderr}"
    );
    common::assert_no_panic(&output.stderr);
}
