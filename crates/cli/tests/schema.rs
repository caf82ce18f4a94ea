//! `currents schema`: the glossary.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn schema_lists_every_type() {
    let output = currents().arg("schema").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let mut lines = stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("EVENT TYPE") && header.contains("MIXPANEL EVENT"),
        "{header}"
    );
    let rows: Vec<&str> = lines.by_ref().take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 97, "{stdout}");
    assert!(stdout.contains("\n97 event types."), "{stdout}");
    let types: Vec<&str> = rows
        .iter()
        .map(|r| r.split_whitespace().next().unwrap())
        .collect();
    let mut sorted = types.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 97, "distinct types");
    assert!(types.contains(&"users.messages.email.Open"));
    let open = rows
        .iter()
        .find(|r| r.starts_with("users.messages.email.Open "))
        .unwrap();
    assert!(open.trim_end().ends_with("Email Open"), "{open}");
    // Every listed type is shown on its own.
    for ty in ["users.behaviors.Purchase", "agentconsole.ToolInvocation"] {
        currents().args(["schema", ty]).assert().success();
    }
}

#[test]
fn schema_shows_one_type_with_pii_and_mapping() {
    let output = currents()
        .args(["schema", "users.messages.email.Open"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(
        stdout.starts_with("users.messages.email.Open  (email)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Mixpanel event: Email Open"), "{stdout}");
    let row = |field: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(field))
            .unwrap_or_else(|| panic!("no row for {field}:\n{stdout}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let header = row("FIELD");
    assert_eq!(&header[..3], ["FIELD", "TYPE", "PII"]);
    // FIELD TYPE PII MIXPANEL …
    assert_eq!(&row("id")[..2], ["id", "string"]);
    assert_eq!(row("id")[2], "$insert_id");
    assert_eq!(
        &row("external_user_id")[..4],
        ["external_user_id", "string?", "yes", "distinct_id"]
    );
    assert_eq!(
        &row("email_address")[..4],
        ["email_address", "string", "yes", "email_address"]
    );
    assert_eq!(
        &row("user_id")[..6],
        ["user_id", "string", "yes", "dropped", "/", "braze_user_id"]
    );
    assert_eq!(&row("time")[..3], ["time", "int", "time"]);
}

#[test]
fn schema_json_schema_has_input_and_mixpanel() {
    let output = currents()
        .args(["schema", "users.messages.email.Open", "--json-schema"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let v: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let object = v.as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["input", "mixpanel"]);
    for key in ["input", "mixpanel"] {
        assert!(v[key]["$schema"].is_string(), "{key}");
        assert!(v[key]["properties"].is_object(), "{key}");
    }
    assert!(v["input"]["properties"]["email_address"].is_object());
    assert!(v["input"]["properties"]["external_user_id"].is_object());
}

#[test]
fn schema_of_an_unknown_type_fails() {
    let output = currents()
        .args(["schema", "users.messages.carrierpigeon.Send"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = stderr_of(&output);
    assert_eq!(
        stderr.trim_end(),
        "error: unknown event type \"users.messages.carrierpigeon.Send\"; `currents schema` lists the known ones"
    );
    let output = currents()
        .args(["schema", "nope", "--json-schema"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_no_panic(&output.stderr);
    // --json-schema needs a type: usage.
    currents()
        .args(["schema", "--json-schema"])
        .assert()
        .code(2);
}
