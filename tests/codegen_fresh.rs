//! `cargo test` fails when the generated files are stale, like `cargo xtask codegen --check`.

use std::path::Path;

#[test]
fn generated_files_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(err) = currents_codegen::run(root, currents_codegen::Mode::Check) {
        panic!("{err}");
    }
}
