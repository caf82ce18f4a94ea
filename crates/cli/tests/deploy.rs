//! The Kubernetes examples in deploy/ parse, and say what matters: the
//! image, a state, the shard index, the schedule, completions and parallelism.

use std::path::Path;

use serde_yaml_ng::Value;

/// Every document of a deploy/ file.
fn documents(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// The value after `flag` in `args`.
fn after<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} in {args:?}"));
    &args[at + 1]
}

#[test]
fn cronjob_exports_with_a_persistent_state() {
    let docs = documents("cronjob.yaml");
    let cron = docs.iter().find(|d| d["kind"] == "CronJob").unwrap();
    assert_eq!(cron["apiVersion"], "batch/v1");
    assert_eq!(cron["spec"]["schedule"], "*/15 * * * *");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert!(
        container["image"]
            .as_str()
            .unwrap()
            .starts_with("ghcr.io/currents-rs/currents:")
    );
    let args = args(container);
    assert_eq!(args[1], "export");
    assert!(args[2].starts_with("s3://"));
    let state = after(&args, "--state");
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], state);
    let volume = &pod["volumes"][0];
    assert_eq!(volume["name"], mount["name"]);
    let claim = volume["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap();
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "PersistentVolumeClaim" && d["metadata"]["name"] == claim)
    );
}

#[test]
fn indexed_job_runs_one_shard_per_index() {
    let docs = documents("indexed-job.yaml");
    let job = &docs[0];
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let completions = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(job["spec"]["parallelism"].as_u64(), Some(completions));
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["image"]
            .as_str()
            .unwrap()
            .starts_with("ghcr.io/currents-rs/currents:")
    );
    let args = args(container);
    assert_eq!(
        after(&args, "--shard"),
        format!("$(JOB_COMPLETION_INDEX)/{completions}")
    );
    assert!(
        after(&args, "--state").contains("$(JOB_COMPLETION_INDEX)"),
        "one state per shard"
    );
    // $(…) expands only variables the container names.
    let env = container["env"].as_sequence().unwrap();
    assert!(env.iter().any(|e| e["name"] == "JOB_COMPLETION_INDEX"));
    // The flags exist: `currents export --help` lists them.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_currents"))
        .args(["export", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in args
        .iter()
        .filter(|a| a.starts_with("--") && *a != "--quiet")
    {
        assert!(help.contains(flag.as_str()), "{flag} not in export --help");
    }
}

#[test]
fn relay_statefulset_keeps_its_queue_on_a_volume_behind_a_service() {
    let set = &documents("relay/statefulset.yaml")[0];
    assert_eq!(set["kind"], "StatefulSet");
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let args = args(container);
    assert_eq!(args[0], "serve");
    let data_dir = after(&args, "--data-dir");
    let mounts = container["volumeMounts"].as_sequence().unwrap();
    let data = mounts
        .iter()
        .find(|m| m["mountPath"] == data_dir)
        .expect("the queue directory is a mounted volume");
    assert!(
        set["spec"]["volumeClaimTemplates"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|c| c["metadata"]["name"] == data["name"]),
        "one persistent volume per replica"
    );
    // Secrets come from files, never from literal values in the manifest.
    for var in container["env"].as_sequence().unwrap() {
        assert!(var["name"].as_str().unwrap().ends_with("_FILE"), "{var:?}");
    }
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], "http");
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_currents"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(help.contains(flag.as_str()), "{flag} not in serve --help");
    }

    let service = &documents("relay/service.yaml")[0];
    assert_eq!(service["kind"], "Service");
    assert_eq!(
        service["spec"]["selector"]["app"],
        set["spec"]["template"]["metadata"]["labels"]["app"]
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
}
