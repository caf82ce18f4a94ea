//! Resume support (see [`Checkpoint`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The format this crate reads and writes.
pub const CHECKPOINT_VERSION: u32 = 2;
/// Largest checkpoint file read (a checkpoint of a million sources is ~150 MB
/// less than this would allow; `/dev/zero` is refused, not read forever).
pub const MAX_CHECKPOINT_BYTES: u64 = 256 << 20;
/// Bytes of a source that its fingerprint hashes.
pub const FINGERPRINT_HEAD: usize = 64 * 1024;

/// What a source's content was: its size when known, and a hash of its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a source of `len` bytes (if known) starting with
    /// `head` (its first [`FINGERPRINT_HEAD`] bytes, or all of it).
    pub fn new(len: Option<u64>, head: &[u8]) -> Self {
        let digest = Sha256::digest(head);
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Fingerprint(match len {
            Some(len) => format!("{len}:{hex}"),
            None => format!("stream:{hex}"),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads up to [`FINGERPRINT_HEAD`] bytes of `reader` for its fingerprint,
/// and gives back a reader that still yields every byte.
pub fn fingerprint_stream(
    len: Option<u64>,
    mut reader: Box<dyn Read + Send>,
) -> io::Result<(Fingerprint, Box<dyn Read + Send>)> {
    let mut head = Vec::with_capacity(FINGERPRINT_HEAD);
    (&mut reader)
        .take(FINGERPRINT_HEAD as u64)
        .read_to_end(&mut head)?;
    let fingerprint = Fingerprint::new(len, &head);
    Ok((fingerprint, Box::new(io::Cursor::new(head).chain(reader))))
}

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("cannot read the checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the checkpoint {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("the checkpoint {path} is larger than {MAX_CHECKPOINT_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("the checkpoint {path} is not a currents checkpoint: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "the checkpoint {path} has version {found}; this currents reads version {CHECKPOINT_VERSION} (delete it to start over)"
    )]
    Version { path: PathBuf, found: u64 },
    #[error(
        "the checkpoint {path} was written for other content of {source_name} ({recorded}, now {found}); resuming would skip records that were never sent. Delete the checkpoint to start over"
    )]
    Mismatch {
        path: PathBuf,
        source_name: String,
        recorded: String,
        found: String,
    },
    #[error("cannot write the checkpoint {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    fingerprint: String,
    records: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u64,
    sources: BTreeMap<String, Entry>,
}

/// Resume support: for each source, how many of its records (counted from
/// the start) are fully resolved, and which content that count is about.
///
/// ```json
/// {"version":2,"sources":{"2026/01/15/events-0001.avro":{"fingerprint":"1048576:9f86d081884c7d65","records":15000}}}
/// ```
///
/// A source's *fingerprint* is its size (when known) and a hash of its first
/// 64 KiB, so a different file at the same path, or different data on
/// standard input, is refused with [`CheckpointError::Mismatch`] instead of
/// being skipped as if it had been sent. To start over, delete the
/// checkpoint file.
///
/// The position only moves over a contiguous run of resolved records
/// ([`Progress`]), so a record whose batch was in flight when the run
/// stopped is sent again: at least once, deduplicated by Mixpanel on the
/// deterministic `$insert_id`. Saving writes a temporary file in the same
/// directory, syncs it and renames it over the old one, so a crash leaves
/// either the old or the new checkpoint.
///
/// A checkpoint file: loaded once, checked against each source, saved as
/// records resolve.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    loaded: BTreeMap<String, Entry>,
}

impl Checkpoint {
    /// Loads `path` (missing: an empty checkpoint) and makes sure it can be
    /// written, so a bad location fails before anything is sent.
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let path = path.to_path_buf();
        let loaded = match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_file() => return Err(CheckpointError::NotAFile { path }),
            Ok(meta) if meta.len() > MAX_CHECKPOINT_BYTES => {
                return Err(CheckpointError::TooLarge { path });
            }
            Ok(_) => Self::read(&path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(CheckpointError::Read { path, source }),
        };
        let checkpoint = Checkpoint { path, loaded };
        checkpoint.write_probe()?;
        Ok(checkpoint)
    }

    fn read(path: &Path) -> Result<BTreeMap<String, Entry>, CheckpointError> {
        let read_error = |source| CheckpointError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read_error)?
            .take(MAX_CHECKPOINT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_CHECKPOINT_BYTES {
            return Err(CheckpointError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let invalid = |message: String| CheckpointError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| invalid("no version".into()))?;
        if version != u64::from(CHECKPOINT_VERSION) {
            return Err(CheckpointError::Version {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let file: File = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        Ok(file.sources)
    }

    /// Creates and removes a file beside the checkpoint.
    fn write_probe(&self) -> Result<(), CheckpointError> {
        let probe = temp_path(&self.path);
        let result = std::fs::File::create(&probe).map(drop);
        let _ = std::fs::remove_file(&probe);
        result.map_err(|source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the checkpoint says anything about `source`.
    pub fn knows(&self, source: &str) -> bool {
        self.loaded.contains_key(source)
    }

    /// Records of `source` already resolved (skip these), after checking
    /// that the checkpoint was written for the same content.
    pub fn position(
        &self,
        source: &str,
        fingerprint: &Fingerprint,
    ) -> Result<u64, CheckpointError> {
        match self.loaded.get(source) {
            None => Ok(0),
            Some(entry) if entry.fingerprint == fingerprint.as_str() => Ok(entry.records),
            Some(entry) => Err(CheckpointError::Mismatch {
                path: self.path.clone(),
                source_name: source.to_owned(),
                recorded: entry.fingerprint.clone(),
                found: fingerprint.as_str().to_owned(),
            }),
        }
    }

    /// Writes `progress` (merged over what was loaded) atomically: temp file
    /// + fsync + rename.
    pub fn save(&self, progress: &Progress) -> Result<(), CheckpointError> {
        let mut sources = self.loaded.clone();
        for (name, p) in &progress.sources {
            let Some(fingerprint) = &p.fingerprint else {
                continue;
            };
            let entry = sources.entry(name.clone()).or_insert(Entry {
                fingerprint: fingerprint.0.clone(),
                records: 0,
            });
            entry.fingerprint = fingerprint.0.clone();
            entry.records = entry.records.max(p.watermark);
        }
        let file = File {
            version: u64::from(CHECKPOINT_VERSION),
            sources,
        };
        let write_error = |source| CheckpointError::Write {
            path: self.path.clone(),
            source,
        };
        let tmp = temp_path(&self.path);
        {
            let mut out = std::fs::File::create(&tmp).map_err(write_error)?;
            serde_json::to_writer(&mut out, &file).map_err(|e| write_error(e.into()))?;
            out.write_all(b"\n").map_err(write_error)?;
            out.sync_all().map_err(write_error)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(write_error)
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

/// Which records of each source are resolved, and how far the contiguous
/// prefix reaches.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    sources: BTreeMap<String, SourceProgress>,
}

#[derive(Debug, Clone, Default)]
struct SourceProgress {
    fingerprint: Option<Fingerprint>,
    /// Every record below this is resolved.
    watermark: u64,
    /// Resolved records above the watermark.
    done: BTreeSet<u64>,
}

impl Progress {
    /// Starts `source` at `position` (from [`Checkpoint::position`]).
    pub fn start(&mut self, source: &str, fingerprint: Fingerprint, position: u64) {
        let p = self.sources.entry(source.to_owned()).or_default();
        p.fingerprint = Some(fingerprint);
        p.watermark = p.watermark.max(position);
    }

    /// Marks record `record` of `source` resolved.
    pub fn resolve(&mut self, source: &str, record: u64) {
        let p = match self.sources.get_mut(source) {
            Some(p) => p,
            None => self.sources.entry(source.to_owned()).or_default(),
        };
        if record < p.watermark {
            return;
        }
        if record > p.watermark {
            p.done.insert(record);
            return;
        }
        p.watermark += 1;
        while p.done.remove(&p.watermark) {
            p.watermark += 1;
        }
    }

    /// Contiguous resolved count of `source`.
    pub fn position(&self, source: &str) -> u64 {
        self.sources.get(source).map_or(0, |p| p.watermark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(text: &str) -> Fingerprint {
        Fingerprint::new(Some(text.len() as u64), text.as_bytes())
    }

    #[test]
    fn contiguous_watermark() {
        let mut p = Progress::default();
        p.resolve("a", 1);
        p.resolve("a", 2);
        assert_eq!(p.position("a"), 0);
        p.resolve("a", 0);
        assert_eq!(p.position("a"), 3);
        p.resolve("a", 4);
        assert_eq!(p.position("a"), 3);
        p.resolve("b", 0);
        assert_eq!(p.position("b"), 1);
    }

    #[test]
    fn save_load_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let cp = Checkpoint::open(&path).unwrap();
        assert_eq!(cp.position("f", &fp("abc")).unwrap(), 0);
        let mut p = Progress::default();
        p.start("f", fp("abc"), 0);
        for r in 0..10 {
            p.resolve("f", r);
        }
        cp.save(&p).unwrap();
        let cp = Checkpoint::open(&path).unwrap();
        assert_eq!(cp.position("f", &fp("abc")).unwrap(), 10);
        let err = cp.position("f", &fp("abd")).unwrap_err();
        assert!(matches!(err, CheckpointError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("Delete the checkpoint"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn other_versions_and_non_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        std::fs::write(&path, r#"{"version":1,"files":{"f":10}}"#).unwrap();
        assert!(matches!(
            Checkpoint::open(&path).unwrap_err(),
            CheckpointError::Version { found: 1, .. }
        ));
        std::fs::write(&path, "[1,2]").unwrap();
        assert!(matches!(
            Checkpoint::open(&path).unwrap_err(),
            CheckpointError::Invalid { .. }
        ));
        assert!(matches!(
            Checkpoint::open(dir.path()).unwrap_err(),
            CheckpointError::NotAFile { .. }
        ));
        #[cfg(unix)]
        assert!(matches!(
            Checkpoint::open(Path::new("/dev/zero")).unwrap_err(),
            CheckpointError::NotAFile { .. }
        ));
        let missing_dir = dir.path().join("no/such/dir/cp.json");
        assert!(matches!(
            Checkpoint::open(&missing_dir).unwrap_err(),
            CheckpointError::Write { .. }
        ));
    }

    #[test]
    fn a_stream_keeps_its_bytes_after_fingerprinting() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let (f, mut reader) =
            fingerprint_stream(None, Box::new(io::Cursor::new(data.clone()))).unwrap();
        let mut back = Vec::new();
        reader.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert!(f.as_str().starts_with("stream:"));
        assert_eq!(f, Fingerprint::new(None, &data[..FINGERPRINT_HEAD]));
    }
}
