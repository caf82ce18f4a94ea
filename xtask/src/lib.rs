//! `cargo xtask <command>`: project automation.
//!
//! # Commands
//!
//! - `codegen [--check]`: regenerate everything derived from `schemas/`, or
//!   only check that the committed files are up to date.
//! - `schema sync [--schemas DIR] [--docs] [-v] <DIR|FILE>...`: read Avro
//!   writer schemas (`.avsc` files, or the header of `.avro` / `.avro.gz`
//!   object container files; directories are walked recursively) and bring
//!   `schemas/` up to date with them:
//!   - unknown event types are added (to the events file of their namespace,
//!     `events/messages/<channel>.toml` for a new channel), with `rust_name`,
//!     category, channel and the convention Mixpanel name inferred, library
//!     fields referenced (groups included when most of their members match)
//!     and a `# REVIEW:` comment above the entry;
//!   - new fields on known types become `[[event.field]]` entries (a library
//!     reference when the library has the name), flagged `# REVIEW:`; new
//!     fields keep the default mapping (`keep`) and are reported for review;
//!   - type, nullability, PII (`[PII]` doc prefix) and `avro = false` changes
//!     are applied as overrides on the event (or by editing the local field);
//!   - doc changes are reported, and applied only with `--docs`;
//!   - fields missing from a writer schema are reported, never deleted; those
//!     marked `avro = false` are expected to be missing and shown only with
//!     `-v`. Event types absent from the inputs are not reported.
//!
//!   Files are edited with `toml_edit`, so formatting and comments stay. After
//!   writing, the schema is reloaded with `currents_schema::load` to prove it
//!   is valid. Re-running on the same input prints `no changes`.
//! - `schema diff [--schemas DIR] [-v] <DIR|FILE>...`: the same report without
//!   writing; exits 1 when `schemas/` and the writer schemas differ (docs
//!   included), 0 when they are in sync: usable in CI against a bucket sample.
//!
//! Exit codes of `schema`: 0 success / in sync, 1 differences (diff) or a
//! failure (unreadable input, schema that does not load), 2 usage error.
//!
//! `xtask/tests/schema_sync.rs` runs both commands on temporary copies of
//! `schemas/` with the project's "next version" fixture
//! (`tests/fixtures/schema-next/`, rendered from the glossary by [`avsc`] and
//! then edited; regenerate it with `cargo test -p xtask --test schema_sync --
//! --ignored regenerate_fixture`) and, when present, with Braze's reference
//! sample, which must be in sync.

pub mod avsc;
pub mod bench;
pub mod sync;
pub mod writer;

use std::io::Write;
use std::path::{Path, PathBuf};

pub const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  codegen [--check]
      Regenerate the code derived from schemas/ (--check: only verify it is up to date).
  schema sync [--schemas DIR] [--docs] [-v|--verbose] <DIR|FILE>...
      Update schemas/ from Avro writer schemas: .avsc files, or .avro / .avro.gz
      object container files (header only); directories are walked recursively.
      New event types and fields are added with a `# REVIEW:` comment; type,
      nullability and PII changes are applied; doc changes are applied only
      with --docs; fields missing from the writer schemas are reported, not
      deleted. The result is reloaded to prove it is valid.
  schema diff [--schemas DIR] [-v|--verbose] <DIR|FILE>...
      Report the same without writing. Exit code 1 when they differ, 0 in sync.
  bench [--events N] [--quick] [--runs R] [--large] [--keep DIR]
      Release throughput, peak RSS and ratios against the serde_json floors and
      the Python/generic mappers (see BENCHMARKS.md).

options:
  --schemas DIR   the schema directory (default: schemas/ of this workspace)
  --docs          sync: also apply doc changes
  -v, --verbose   also list fields and types that are not in Avro (expected)";

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

/// Runs `schema <args>`; writes the report to `out` and returns the exit code.
pub fn schema_command(args: &[&str], out: &mut dyn Write) -> u8 {
    let (write, rest) = match args {
        ["sync", rest @ ..] => (true, rest),
        ["diff", rest @ ..] => (false, rest),
        ["-h" | "--help"] | [] => {
            let _ = writeln!(out, "{USAGE}");
            return 0;
        }
        _ => return usage_error(out, "expected `schema sync` or `schema diff`"),
    };
    let mut opts = sync::Options {
        schemas: workspace_root().join("schemas"),
        docs: false,
        verbose: false,
        write,
    };
    let mut inputs = Vec::new();
    let mut iter = rest.iter();
    while let Some(&arg) = iter.next() {
        match arg {
            "--schemas" => match iter.next() {
                Some(dir) => opts.schemas = PathBuf::from(dir),
                None => return usage_error(out, "--schemas needs a directory"),
            },
            "--docs" if write => opts.docs = true,
            "-v" | "--verbose" => opts.verbose = true,
            "-h" | "--help" => {
                let _ = writeln!(out, "{USAGE}");
                return 0;
            }
            flag if flag.starts_with('-') => {
                return usage_error(out, &format!("unknown option `{flag}`"));
            }
            path => inputs.push(PathBuf::from(path)),
        }
    }
    if inputs.is_empty() {
        return usage_error(out, "no input: give .avsc/.avro files or directories");
    }
    let outcome = sync::run(&inputs, &opts);
    let _ = write!(out, "{}", outcome.report);
    if outcome.failed || (!write && outcome.differs) {
        1
    } else {
        0
    }
}

fn usage_error(out: &mut dyn Write, message: &str) -> u8 {
    let _ = writeln!(out, "error: {message}\n\n{USAGE}");
    2
}
