//! Resume support: a JSON file mapping each input file to the number of its
//! records that are fully resolved (imported, skipped, rejected or
//! dead-lettered), counted from the start of the file.
//!
//! ```json
//! {"version":1,"files":{"2026/01/15/events-0001.avro":15000}}
//! ```
//!
//! On restart, skip the first [`Checkpoint::position`] records of each file.
//! The exporter only advances a file's position over a contiguous run of
//! resolved records ([`Progress`]), so a record whose batch is still in
//! flight (or was interrupted) is sent again: at-least-once, deduplicated by
//! Mixpanel on `$insert_id`. Saving writes a temp file in the same directory,
//! syncs it and renames it over the old one, so a crash leaves either the old
//! or the new checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Resolved-record counts per input file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub files: BTreeMap<String, u64>,
}

impl Checkpoint {
    pub fn new() -> Self {
        Checkpoint {
            version: 1,
            files: BTreeMap::new(),
        }
    }

    /// Loads `path`; a missing file is an empty checkpoint.
    pub fn load(path: &Path) -> io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::new()),
            Err(e) => Err(e),
        }
    }

    /// Writes atomically: temp file + fsync + rename.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let tmp = temp_path(path);
        {
            let mut file = std::fs::File::create(&tmp)?;
            serde_json::to_writer(&mut file, self)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }

    /// Records of `file` already resolved (skip these on resume).
    pub fn position(&self, file: &str) -> u64 {
        self.files.get(file).copied().unwrap_or(0)
    }

    /// Moves `file`'s position forward to `to` (never backward).
    pub fn advance(&mut self, file: &str, to: u64) {
        let entry = self.files.entry(file.to_owned()).or_insert(0);
        *entry = (*entry).max(to);
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

/// Tracks which records of each file are resolved and how far the contiguous
/// prefix reaches.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    files: BTreeMap<String, FileProgress>,
}

#[derive(Debug, Clone, Default)]
struct FileProgress {
    /// Every record below this is resolved.
    watermark: u64,
    /// Resolved records above the watermark.
    done: BTreeSet<u64>,
}

impl Progress {
    /// Starts from a loaded checkpoint's positions.
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Self {
        let files = checkpoint
            .files
            .iter()
            .map(|(file, &pos)| {
                (
                    file.clone(),
                    FileProgress {
                        watermark: pos,
                        done: BTreeSet::new(),
                    },
                )
            })
            .collect();
        Progress { files }
    }

    /// Marks record `record` of `file` resolved; returns the new watermark
    /// when it moved.
    pub fn resolve(&mut self, file: &str, record: u64) -> Option<u64> {
        let progress = match self.files.get_mut(file) {
            Some(p) => p,
            None => self.files.entry(file.to_owned()).or_default(),
        };
        if record < progress.watermark {
            return None;
        }
        if record > progress.watermark {
            progress.done.insert(record);
            return None;
        }
        progress.watermark += 1;
        while progress.done.remove(&progress.watermark) {
            progress.watermark += 1;
        }
        Some(progress.watermark)
    }

    /// Contiguous resolved count of `file`.
    pub fn position(&self, file: &str) -> u64 {
        self.files.get(file).map_or(0, |p| p.watermark)
    }

    /// Copies all watermarks into `checkpoint`.
    pub fn apply(&self, checkpoint: &mut Checkpoint) {
        for (file, p) in &self.files {
            checkpoint.advance(file, p.watermark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_watermark() {
        let mut p = Progress::default();
        assert_eq!(p.resolve("a", 1), None);
        assert_eq!(p.resolve("a", 2), None);
        assert_eq!(p.position("a"), 0);
        assert_eq!(p.resolve("a", 0), Some(3));
        assert_eq!(p.resolve("a", 4), None);
        assert_eq!(p.position("a"), 3);
        assert_eq!(p.resolve("b", 0), Some(1));
    }

    #[test]
    fn save_load_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        assert_eq!(Checkpoint::load(&path).unwrap(), Checkpoint::new());
        let mut cp = Checkpoint::new();
        cp.advance("f", 10);
        cp.advance("f", 5);
        cp.save(&path).unwrap();
        let loaded = Checkpoint::load(&path).unwrap();
        assert_eq!(loaded.position("f"), 10);
        let mut p = Progress::from_checkpoint(&loaded);
        assert_eq!(p.resolve("f", 10), Some(11));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
