//! `currents lexicon`: the data dictionary written (snapshot-tested) and
//! pushed to the mock over HTTP.

mod common;

use common::*;
use mixpanel_mock::{MockConfig, MockServer};
use serde_json::{Value, json};

fn lexicon(args: &[&str]) -> Value {
    let output = currents().arg("lexicon").args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn entry<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no entry {name}"))
}

#[test]
fn the_dictionary_describes_every_mapped_event() {
    let body = lexicon(&[]);
    assert_eq!(body["truncate"], false, "merging, never truncating");
    let names: Vec<&str> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.len() > 90, "{}", names.len());
    assert!(!names.iter().any(|n| n.contains('{')), "no templated names");
    insta::assert_json_snapshot!("lexicon.names", names);
    insta::assert_json_snapshot!("lexicon.Email Open", entry(&body, "Email Open"));
    insta::assert_json_snapshot!("lexicon.Purchase", entry(&body, "Purchase"));
    // PII: marked, hashed or left out as the export would do.
    let email = |body: &Value| {
        entry(body, "Email Open")["schemaJson"]["properties"]["email_address"].clone()
    };
    assert!(
        email(&body)["description"]
            .as_str()
            .unwrap()
            .starts_with("[PII]")
    );
    assert!(
        email(&lexicon(&["--pii", "hash"]))["description"]
            .as_str()
            .unwrap()
            .contains("hashed")
    );
    assert_eq!(email(&lexicon(&["--pii", "drop"])), Value::Null);
    let simplified = lexicon(&["--identity", "simplified"]);
    assert!(entry(&simplified, "Email Open")["schemaJson"]["properties"]["$device_id"].is_object());
}

#[test]
fn push_sends_the_dictionary_with_a_service_account() {
    let server =
        MockServer::start(MockConfig::with_service_account("sa", "sa-secret", "55")).unwrap();
    let output = currents()
        .args(["lexicon", "--push", "--project-id", "55", "--api-base"])
        .arg(server.base_url())
        .env("MIXPANEL_SERVICE_ACCOUNT_USERNAME", "sa")
        .env("MIXPANEL_SERVICE_ACCOUNT_SECRET", "sa-secret")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty(), "pushed, not printed");
    let stored = server.lexicon();
    assert!(stored.len() > 90);
    let open = &stored[&("event".to_owned(), "Email Open".to_owned())];
    assert_eq!(open["properties"]["email_address"]["type"], json!("string"));
    assert!(!stderr_of(&output).contains("sa-secret"));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!("lexicon: {} event(s), ", stored.len())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pushed {} entries in ", stored.len())),
        "{stderr}"
    );
    // A project token is not enough for Lexicon.
    let output = currents()
        .args(["lexicon", "--push", "--api-base"])
        .arg(server.base_url())
        .env("MIXPANEL_PROJECT_TOKEN", "tok")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("service account"),
        "{}",
        stderr_of(&output)
    );
}
