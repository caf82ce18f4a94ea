//! `cargo xtask <command>`: project automation. The commands are documented
//! in the library (`xtask/src/lib.rs`); `cargo xtask --help` prints them.

use std::process::ExitCode;

use currents_codegen::{Error, Mode};
use xtask::{USAGE, schema_command, workspace_root};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["codegen"] => codegen(Mode::Write),
        ["codegen", "--check"] => codegen(Mode::Check),
        ["schema", rest @ ..] => {
            let mut stdout = std::io::stdout().lock();
            ExitCode::from(schema_command(rest, &mut stdout))
        }
        ["bench", rest @ ..] => match xtask::bench::run(&workspace_root(), rest) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
        ["-h" | "--help"] | [] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn codegen(mode: Mode) -> ExitCode {
    let started = std::time::Instant::now();
    match currents_codegen::run(&workspace_root(), mode) {
        Ok(report) => {
            for path in &report.updated {
                eprintln!("updated {}", path.display());
            }
            for path in &report.removed {
                eprintln!("removed {}", path.display());
            }
            eprintln!(
                "codegen: {} file(s) {}, {} updated, {} removed in {:.0?}",
                report.checked,
                if mode == Mode::Check {
                    "up to date"
                } else {
                    "checked"
                },
                report.updated.len(),
                report.removed.len(),
                started.elapsed()
            );
            ExitCode::SUCCESS
        }
        Err(err @ Error::Stale { .. }) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
