//! Where records come from (see [`Sources`] and [`Source`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A source of your own: opened once, yielding its bytes as a stream.
pub trait Open: Send + Sync {
    /// The byte stream (gzip is detected and inflated by the reader).
    fn open(&self) -> io::Result<Box<dyn Read + Send>>;
    /// Its size when known up front (for progress and the checkpoint).
    fn size(&self) -> Option<u64> {
        None
    }
}

enum Kind {
    File(PathBuf),
    Stdin,
    /// Taken on open (a reader can be read once).
    Reader(Mutex<Option<Box<dyn Read + Send>>>),
    Bytes(Arc<[u8]>),
    Custom(Box<dyn Open>),
}

/// One input: a name and a way to read it.
pub struct Source {
    name: Arc<str>,
    kind: Kind,
    /// Found by walking a directory (so content that is not Currents data is
    /// ignored rather than an error).
    walked: bool,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("walked", &self.walked)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// A file, named by its path.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Source {
            name: Arc::from(path.display().to_string()),
            kind: Kind::File(path),
            walked: false,
        }
    }

    /// Standard input, named `<stdin>`.
    pub fn stdin() -> Self {
        Source {
            name: Arc::from("<stdin>"),
            kind: Kind::Stdin,
            walked: false,
        }
    }

    /// Any reader, read once.
    pub fn reader(name: &str, reader: impl Read + Send + 'static) -> Self {
        Source {
            name: Arc::from(name),
            kind: Kind::Reader(Mutex::new(Some(Box::new(reader)))),
            walked: false,
        }
    }

    /// Bytes in memory (an HTTP request body, a test).
    pub fn bytes(name: &str, bytes: impl Into<Arc<[u8]>>) -> Self {
        Source {
            name: Arc::from(name),
            kind: Kind::Bytes(bytes.into()),
            walked: false,
        }
    }

    /// A source of your own.
    pub fn custom(name: &str, open: impl Open + 'static) -> Self {
        Source {
            name: Arc::from(name),
            kind: Kind::Custom(Box::new(open)),
            walked: false,
        }
    }

    /// What errors, dead letters and the checkpoint call it.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// The path, for a file source.
    pub fn path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::File(path) => Some(path),
            _ => None,
        }
    }

    pub(crate) fn walked(&self) -> bool {
        self.walked
    }

    /// Its size when known (regular files, bytes, custom sources that say).
    pub fn size(&self) -> Option<u64> {
        match &self.kind {
            Kind::File(path) => std::fs::metadata(path)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
            Kind::Bytes(bytes) => Some(bytes.len() as u64),
            Kind::Custom(open) => open.size(),
            Kind::Stdin | Kind::Reader(_) => None,
        }
    }

    /// Opens the source (once: a reader source is taken).
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match &self.kind {
            Kind::File(path) => Ok(Box::new(File::open(path)?)),
            Kind::Stdin => Ok(Box::new(io::stdin())),
            Kind::Reader(reader) => reader
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .ok_or_else(|| io::Error::other("this reader source was already read")),
            Kind::Bytes(bytes) => Ok(Box::new(io::Cursor::new(Arc::clone(bytes)))),
            Kind::Custom(open) => open.open(),
        }
    }
}

/// Where records come from: files, directories (walked), standard input,
/// any reader, bytes in memory, or a source of your own ([`Open`]) such as an
/// object in a bucket or a request body. Each source has a stable name (what
/// errors, dead letters and the checkpoint say) and is opened exactly once,
/// so a FIFO or `<(…)` is read as the stream it is.
///
/// # Directory walks
///
/// Directories are walked recursively in sorted order. A walk visits each
/// directory and file once, whatever symbolic links point where (loops are
/// detected by device and inode), and leaves out, counted by reason in
/// [`Sources::ignored`]:
///
/// | reason | what |
/// |---|---|
/// | `hidden_or_marker` | names starting with `.` or `_` (`.DS_Store`, `_SUCCESS`) |
/// | `not_currents_data` | `*.md`, `*.avsc`, `*.txt` by name; and files whose content is neither Avro nor JSON (found when read) |
/// | `empty_file` | zero-byte files (markers) |
/// | `not_a_regular_file` | FIFOs, sockets, devices met in a walk (reading them could block forever) |
/// | `already_visited` | a file or directory reached again through a link |
///
/// Paths named explicitly are always read: a FIFO given by name is read as a
/// stream, and a named file that is not Currents data is an input error.
///
/// A list of sources, and what a directory walk left out.
#[derive(Debug, Default)]
pub struct Sources {
    sources: Vec<Source>,
    ignored: BTreeMap<String, u64>,
    ignored_examples: Vec<(String, &'static str)>,
}

/// An input that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("cannot read input {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("no input files in directory {path} ({ignored} left out as not Currents data)")]
    NoData { path: String, ignored: u64 },
}

impl Sources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Expands command-line style inputs: `-` is standard input, a directory
    /// is walked (see the [type docs](Sources)), anything else is read as a
    /// file (FIFOs too).
    pub fn from_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Self, SourceError> {
        let mut sources = Sources::new();
        for path in paths {
            let path = path.as_ref();
            if path.as_os_str() == "-" {
                sources.push(Source::stdin());
                continue;
            }
            let error = |source| SourceError::Unreadable {
                path: path.display().to_string(),
                source,
            };
            let meta = std::fs::metadata(path).map_err(error)?;
            if meta.is_dir() {
                let before = sources.len();
                let ignored_before: u64 = sources.ignored.values().sum();
                Walk::default().walk(path, &mut sources).map_err(error)?;
                if sources.len() == before {
                    let ignored: u64 = sources.ignored.values().sum();
                    return Err(SourceError::NoData {
                        path: path.display().to_string(),
                        ignored: ignored - ignored_before,
                    });
                }
            } else {
                sources.push(Source::file(path));
            }
        }
        Ok(sources)
    }

    pub fn push(&mut self, source: Source) {
        self.sources.push(source);
    }

    /// Moves `other`'s sources and left-out counts after this list's.
    pub fn append(&mut self, other: Sources) {
        self.sources.extend(other.sources);
        for (reason, n) in other.ignored {
            *self.ignored.entry(reason).or_default() += n;
        }
        let room = 20usize.saturating_sub(self.ignored_examples.len());
        self.ignored_examples
            .extend(other.ignored_examples.into_iter().take(room));
    }

    /// Counts a left-out input.
    pub fn ignore(&mut self, name: String, reason: &'static str) {
        *self.ignored.entry(reason.to_owned()).or_default() += 1;
        if self.ignored_examples.len() < 20 {
            self.ignored_examples.push((name, reason));
        }
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Source> {
        self.sources.iter()
    }

    pub(crate) fn as_slice(&self) -> &[Source] {
        &self.sources
    }

    /// Inputs left out of directory walks, by reason.
    pub fn ignored(&self) -> &BTreeMap<String, u64> {
        &self.ignored
    }

    /// The first few left-out inputs with their reasons.
    pub fn ignored_examples(&self) -> &[(String, &'static str)] {
        &self.ignored_examples
    }
}

impl FromIterator<Source> for Sources {
    fn from_iter<I: IntoIterator<Item = Source>>(iter: I) -> Self {
        Sources {
            sources: iter.into_iter().collect(),
            ..Sources::default()
        }
    }
}

/// Names a walk leaves out without opening the file.
fn ignored_by_name(name: &str) -> Option<&'static str> {
    if name.starts_with('.') || name.starts_with('_') {
        Some("hidden_or_marker")
    } else if [".md", ".avsc", ".txt"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        Some("not_currents_data")
    } else {
        None
    }
}

/// One directory walk: what it has seen, by device and inode.
#[derive(Default)]
struct Walk {
    seen: HashSet<(u64, u64)>,
}

impl Walk {
    /// True the first time `meta`'s file is met.
    fn first_visit(&mut self, meta: &std::fs::Metadata) -> bool {
        match identity(meta) {
            Some(id) => self.seen.insert(id),
            None => true,
        }
    }

    fn walk(&mut self, dir: &Path, out: &mut Sources) -> io::Result<()> {
        let meta = std::fs::metadata(dir)?;
        if !self.first_visit(&meta) {
            out.ignore(dir.display().to_string(), "already_visited");
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for path in entries {
            let name = path.display().to_string();
            let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(reason) = ignored_by_name(file_name) {
                out.ignore(name, reason);
                continue;
            }
            // Follows links, so a link to a directory is walked; a broken
            // link is an unreadable input.
            let meta = std::fs::metadata(&path)?;
            if meta.is_dir() {
                self.walk(&path, out)?;
            } else if !self.first_visit(&meta) {
                out.ignore(name, "already_visited");
            } else if !meta.is_file() {
                out.ignore(name, "not_a_regular_file");
            } else if meta.len() == 0 {
                out.ignore(name, "empty_file");
            } else {
                out.push(Source {
                    walked: true,
                    ..Source::file(path)
                });
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_skip_markers_and_visit_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("a")).unwrap();
        std::fs::write(root.join("a/events.ndjson"), "{}\n").unwrap();
        std::fs::write(root.join("_SUCCESS"), "").unwrap();
        std::fs::write(root.join("notes.txt"), "hello").unwrap();
        std::fs::write(root.join("empty.avro"), "").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
            std::os::unix::fs::symlink(root.join("a/events.ndjson"), root.join("again.ndjson"))
                .unwrap();
        }
        let sources = Sources::from_paths(&[root]).unwrap();
        let names: Vec<&str> = sources.iter().map(Source::name).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with("events.ndjson"));
        assert_eq!(sources.ignored()["hidden_or_marker"], 1);
        assert_eq!(sources.ignored()["not_currents_data"], 1);
        assert_eq!(sources.ignored()["empty_file"], 1);
        #[cfg(unix)]
        assert_eq!(sources.ignored()["already_visited"], 2);
    }

    #[test]
    fn a_reader_source_is_read_once() {
        let source = Source::reader("r", io::Cursor::new(b"abc".to_vec()));
        let mut text = String::new();
        source.open().unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "abc");
        assert!(source.open().is_err());
    }
}
