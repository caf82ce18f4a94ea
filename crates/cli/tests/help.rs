//! `--help` of every command: exit codes, and the environment variables
//! where they matter.

mod common;

use common::*;

fn help(args: &[&str]) -> String {
    let output = currents().args(args).arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
    stdout_of(&output)
}

const EXIT_CODES: [&str; 4] = [
    "0  all good",
    "1  fatal error",
    "2  usage error",
    "3  finished, but records were rejected, dead-lettered or left unresolved, or input was damaged",
];

#[test]
fn top_level_help_lists_commands_and_exit_codes() {
    let text = help(&[]);
    for command in ["map", "export", "replay", "validate", "schema", "sample"] {
        assert!(text.contains(&format!("  {command} ")), "{command}: {text}");
    }
    assert!(text.contains("Exit codes:"), "{text}");
    for code in EXIT_CODES {
        assert!(text.contains(code), "{code}: {text}");
    }
    // `help map` is the same as `map --help`.
    let output = currents().args(["help", "map"]).output().unwrap();
    assert_eq!(stdout_of(&output), help(&["map"]));
}

#[test]
fn commands_that_read_events_document_all_exit_codes_and_the_pii_key() {
    for command in ["map", "export", "validate"] {
        let text = help(&[command]);
        assert!(text.contains("Exit codes:"), "{command}: {text}");
        for code in EXIT_CODES {
            assert!(text.contains(code), "{command}: {code}: {text}");
        }
        assert!(text.contains("CURRENTS_PII_KEY"), "{command}: {text}");
        assert!(text.contains("--summary-json"), "{command}: {text}");
        assert!(text.contains("--pii"), "{command}: {text}");
        // The hidden key flag stays hidden.
        assert!(!text.contains("--pii-key "), "{command}: {text}");
    }
    assert!(help(&["map"]).contains("--strict"));
}

#[test]
fn export_help_documents_the_credentials() {
    let text = help(&["export"]);
    for var in [
        "MIXPANEL_SERVICE_ACCOUNT_USERNAME",
        "MIXPANEL_SERVICE_ACCOUNT_SECRET",
        "MIXPANEL_PROJECT_ID",
        "MIXPANEL_PROJECT_TOKEN",
        "_FILE",
    ] {
        assert!(text.contains(var), "{var}: {text}");
    }
    for flag in [
        "--project-id",
        "--api-base",
        "--dead-letter",
        "--checkpoint",
        "--dry-run",
    ] {
        assert!(text.contains(flag), "{flag}: {text}");
    }
    // The test-only retry knobs are hidden.
    assert!(!text.contains("--retry-ms"), "{text}");
    // Secrets come from the environment; only the (public) token has a flag,
    // and the help no longer claims "environment only".
    assert!(text.contains("--token"), "{text}");
    assert!(!text.contains("environment only"), "{text}");
    assert!(text.contains("a token is public"), "{text}");
    assert!(!text.contains("--secret"), "{text}");
    // The simplified identity's merge risk is spelled out.
    assert!(
        text.contains("binds\nto the first one") || text.contains("binds to the first"),
        "{text}"
    );
}

#[test]
fn help_never_shows_environment_values() {
    let text = {
        let output = currents()
            .args(["export", "--help"])
            .env("MIXPANEL_PROJECT_TOKEN", "tok-TOKEN-in-help")
            .env("MIXPANEL_PROJECT_ID", "project-id-in-help")
            .env("CURRENTS_PII_KEY", "pii-key-in-help")
            .output()
            .unwrap();
        stdout_of(&output)
    };
    for value in ["tok-TOKEN-in-help", "project-id-in-help", "pii-key-in-help"] {
        assert!(!text.contains(value), "{value}: {text}");
    }
}

#[test]
fn schema_and_sample_help_document_their_exit_codes() {
    for command in ["schema", "sample"] {
        let text = help(&[command]);
        assert!(text.contains("Exit codes:"), "{command}: {text}");
        for code in &EXIT_CODES[..3] {
            assert!(text.contains(code), "{command}: {code}: {text}");
        }
    }
}

#[test]
fn version_is_printed() {
    let output = currents().arg("--version").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout_of(&output).starts_with("currents "), "{output:?}");
}
