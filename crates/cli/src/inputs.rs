//! Expanding command-line inputs: files, directories (walked recursively, in
//! sorted order so runs are reproducible) and `-` for standard input.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".into(),
            Input::File(path) => path.display().to_string(),
        }
    }

    /// Size in bytes when known (for progress).
    pub fn len(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
        }
    }
}

/// Files that directory walks leave out: not Currents data.
fn is_data_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && !name.ends_with(".md") && !name.ends_with(".avsc")
}

pub fn expand(args: &[PathBuf]) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let meta = std::fs::metadata(arg)
            .with_context(|| format!("cannot read input {}", arg.display()))?;
        if meta.is_dir() {
            let before = inputs.len();
            walk(arg, &mut inputs)
                .with_context(|| format!("cannot read directory {}", arg.display()))?;
            if inputs.len() == before {
                bail!("no input files in directory {}", arg.display());
            }
        } else {
            inputs.push(Input::File(arg.clone()));
        }
    }
    Ok(inputs)
}

fn walk(dir: &Path, out: &mut Vec<Input>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_data_file(&path) {
            out.push(Input::File(path));
        }
    }
    Ok(())
}
