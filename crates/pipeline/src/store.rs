//! The embedded durable store: one redb database in a directory the user
//! names, owned by one process at a time. The bucket source keeps its state
//! here and the relay its write-ahead queue; every commit is fsync'd
//! (redb's default durability), so what a commit returned survives a crash.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub use redb;

/// The database file inside a store directory.
pub const DATABASE_FILE: &str = "currents.redb";
const LOCK_FILE: &str = "LOCK";

/// Why a store cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot use the store directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the store {path} is in use by another currents process{holder}; two runs on one store are refused"
    )]
    Locked { path: PathBuf, holder: String },
    #[error("the store {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
}

/// An open store. Dropping it releases the directory.
#[derive(Debug)]
pub struct Store {
    db: redb::Database,
    dir: PathBuf,
    /// Held for the store's lifetime: the exclusive lock on `LOCK`.
    _lock: File,
}

impl Store {
    /// Opens (or creates) the store in `dir`, refusing a directory another
    /// process has open.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let directory = |source| StoreError::Directory {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(directory)?;
        let mut lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(directory)?;
        if lock.try_lock().is_err() {
            let mut pid = String::new();
            let _ = lock.read_to_string(&mut pid);
            let holder = match pid.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            return Err(StoreError::Locked {
                path: dir.to_path_buf(),
                holder,
            });
        }
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "{}", std::process::id());
        let db =
            redb::Database::create(dir.join(DATABASE_FILE)).map_err(|e| StoreError::Database {
                path: dir.to_path_buf(),
                source: Box::new(e.into()),
            })?;
        Ok(Store {
            db,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn db(&self) -> &redb::Database {
        &self.db
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Wraps a redb error with the store's path.
    pub fn error(&self, error: impl Into<redb::Error>) -> StoreError {
        StoreError::Database {
            path: self.dir.clone(),
            source: Box::new(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("two runs on one store are refused")
        );
        drop(store);
        Store::open(dir.path()).unwrap();
    }
}
