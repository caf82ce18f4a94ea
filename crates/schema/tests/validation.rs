//! Loading reports every problem at once, each with its file and line.

use std::path::PathBuf;

use currents_schema::{SourceFiles, load_sources};

const GLOBAL: &str = r#"
[http]
user_fields = ["user_id", "external_user_id"]
[mixpanel]
partner_id = "braze"
[naming.segments]
users = ""
messages = ""
email = "Email"
"#;

const FIELDS: &str = r#"
[group.identity]
doc = "who and when"
fields = ["id", "external_user_id", "time"]

[field.id]
type = "string"
doc = "Globally unique ID for this event"
mixpanel = { rename = "$insert_id" }

[field.external_user_id]
type = "string"
nullable = true
pii = true
doc = "External ID of the user"
mixpanel = { rename = "distinct_id" }

[field.time]
type = "int"
doc = "UNIX timestamp"

[field.device_model]
type = "string"
nullable = true
doc = "Model of the device"
mixpanel = { rename = "$device" }
"#;

fn sources(events: &str) -> SourceFiles {
    SourceFiles {
        files: vec![
            (PathBuf::from("currents.toml"), GLOBAL.to_owned()),
            (PathBuf::from("fields.toml"), FIELDS.to_owned()),
            (PathBuf::from("events/email.toml"), events.to_owned()),
        ],
    }
}

fn problems(events: &str) -> Vec<String> {
    match load_sources(&sources(events)) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_valid_event_loads() {
    let glossary = load_sources(&sources(
        r#"
[[event]]
type = "users.messages.email.Open"
rust_name = "EmailOpen"
category = "message"
channel = "email"
doc = "when a user opens an email"
mixpanel = { name = "Email Open" }
include = ["identity"]
fields = ["device_model"]

[[event.field]]
name = "mailbox_provider"
type = "string"
nullable = true
doc = "Mailbox provider"
"#,
    ))
    .expect("valid");
    let open = &glossary.events[0];
    let names: Vec<_> = open.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "external_user_id",
            "time",
            "device_model",
            "mailbox_provider"
        ]
    );
}

#[test]
fn every_problem_is_reported_with_file_and_line() {
    let found = problems(
        r#"[[event]]
type = "users.messages.email.Open"
rust_name = "emailOpen"
category = "message"
channel = "email"
doc = "when a user opens an email"
mixpanel = { name = "" }
include = ["identity", "nosuchgroup"]
fields = ["device_model", "device_model", "nosuchfield"]

[[event.field]]
name = "Bad-Name"
type = "string"
doc = "not an identifier"

[[event.field]]
name = "model"
type = "string"
doc = "collides with device_model"
mixpanel = { rename = "$device" }

[[event.field]]
name = "half_defined"
doc = "no type"

[[event]]
type = "users.messages.email.Open"
rust_name = "EmailOpenAgain"
category = "message"
channel = "email"
doc = "a duplicate"
mixpanel = { name = "Email Open" }
include = ["identity"]
"#,
    );
    let expected = [
        "events/email.toml:1: event `users.messages.email.Open`: no Mixpanel event name (mixpanel.name)",
        "events/email.toml:1: event `users.messages.email.Open`: rust_name `emailOpen` is not a free UpperCamelCase Rust identifier",
        "events/email.toml:8: event `users.messages.email.Open`: unknown field group `nosuchgroup`",
        "events/email.toml:9: event `users.messages.email.Open`: duplicate field `device_model`",
        "events/email.toml:9: event `users.messages.email.Open`: unknown field `nosuchfield`; add [field.nosuchfield] to fields.toml or define it in an [[event.field]] with type and doc",
        "events/email.toml:11: field name `Bad-Name` is not a valid Rust identifier in snake_case",
        "events/email.toml:16: event `users.messages.email.Open`: fields `device_model` and `model` both map to Mixpanel property `$device` in the braze profile",
        "events/email.toml:16: event `users.messages.email.Open`: fields `device_model` and `model` both map to Mixpanel property `$device` in the full profile",
        "events/email.toml:22: event `users.messages.email.Open`: field `half_defined` is not in fields.toml, so its [[event.field]] needs `type` and `doc`",
        "events/email.toml:26: duplicate event type `users.messages.email.Open` (first defined at events/email.toml:1)",
    ];
    for line in expected {
        assert!(
            found.iter().any(|f| f == line),
            "missing problem:\n  {line}\nfound:\n  {}",
            found.join("\n  ")
        );
    }
    assert_eq!(
        found.len(),
        expected.len(),
        "found:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn toml_syntax_and_unknown_keys_name_the_line() {
    let found = problems(
        "[[event]]\ntype = \"users.messages.email.Open\"\nrust_name = \"EmailOpen\"\nflavour = \"x\"\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("events/email.toml:4: unknown field `flavour`"),
        "{found:?}"
    );
    let found = problems("[[event]\n");
    assert!(found[0].starts_with("events/email.toml:1:"), "{found:?}");
}

#[test]
fn by_convention_names_must_follow_the_convention() {
    let found = problems(
        r#"[[event]]
type = "users.messages.email.Open"
rust_name = "EmailOpen"
category = "message"
channel = "email"
doc = "when a user opens an email"
mixpanel = { name = "Opened Email", by_convention = true }
include = ["identity"]
"#,
    );
    assert_eq!(
        found,
        [
            "events/email.toml:1: event `users.messages.email.Open`: by_convention name should be \"Email Open\", found \"Opened Email\""
        ]
    );
}

#[test]
fn an_unknown_field_type_names_the_line_and_the_spellings() {
    let found = problems(
        r#"[[event]]
type = "users.messages.email.Open"
rust_name = "EmailOpen"
category = "message"
channel = "email"
doc = "when a user opens an email"
mixpanel = { name = "Email Open" }
include = ["identity"]

[[event.field]]
name = "score"
type = "double"
doc = "a score"
"#,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("events/email.toml:12: unknown variant `double`, expected one of `string`, `int`, `long`, `float`, `boolean`, `array<string>`, `array<string?>`"),
        "{found:?}"
    );
}
