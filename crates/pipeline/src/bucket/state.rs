//! What a bucket run has fully accounted for (see [`State`]).

use std::fmt;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::Object;
use crate::store::{Store, StoreError};

/// Object URL (`s3://bucket/key`) → what it was when it was done (JSON).
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("bucket_objects");

/// The state of bucket runs: every object fully accounted for (every one of
/// its records in its final bucket), by URL, with the size and ETag (or
/// version, or last-modified time when the store gives neither) it had.
///
/// An object is *done* when the state holds it with the same size and
/// identity; a replaced object (a new ETag) is read again. Objects are
/// recorded one at a time as the run settles them, in the embedded store
/// ([`Store`]: a commit is durable when it returns), so a run that is
/// killed loses nothing: the object it was reading is read again from its
/// start next time (events already sent are sent again with the same
/// `$insert_id`, which Mixpanel deduplicates).
#[derive(Debug)]
pub struct State {
    store: Store,
}

/// One object the state holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StateEntry {
    /// `s3://bucket/key`, `gs://…`, `az://…`.
    pub url: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Unix time in milliseconds, when the store gave no ETag or version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_ms: Option<i64>,
    /// When it was recorded, Unix time in seconds.
    pub done_at: u64,
}

impl StateEntry {
    fn of(object: &Object) -> Self {
        let identity = object.etag.is_none() && object.version.is_none();
        StateEntry {
            url: object.url.clone(),
            size: object.size,
            etag: object.etag.clone(),
            version: object.version.clone(),
            last_modified_ms: object.last_modified_ms.filter(|_| identity),
            done_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// The same object as `object`: same size, same ETag (else version,
    /// else modification time).
    fn same(&self, object: &Object) -> bool {
        self.size == object.size
            && match (&object.etag, &object.version) {
                (Some(etag), _) => self.etag.as_ref() == Some(etag),
                (None, Some(version)) => self.version.as_ref() == Some(version),
                (None, None) => {
                    object.last_modified_ms.is_some()
                        && self.last_modified_ms == object.last_modified_ms
                }
            }
    }
}

/// `URL  size  etag|version|modified  done at`.
impl fmt::Display for StateEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let identity = match (&self.etag, &self.version, self.last_modified_ms) {
            (Some(etag), _, _) => format!("etag {etag}"),
            (None, Some(version), _) => format!("version {version}"),
            (None, None, Some(ms)) => format!("modified {}", rfc3339(ms / 1000)),
            (None, None, None) => "-".to_owned(),
        };
        write!(
            f,
            "{}\t{} bytes\t{identity}\tdone {}",
            self.url,
            self.size,
            rfc3339(i64::try_from(self.done_at).unwrap_or(i64::MAX))
        )
    }
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// Does `entry` fall under `prefix`: a URL prefix (`s3://bucket/currents/`)
/// or a key prefix within any bucket (`currents/dataexport.prod-01`).
fn under(url: &str, prefix: &str) -> bool {
    if prefix.contains("://") {
        return url.starts_with(prefix);
    }
    // The key: what follows `scheme://bucket/`.
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .is_some_and(|(_, key)| key.starts_with(prefix))
}

impl State {
    /// Opens (or creates) the state in directory `dir`; refused while
    /// another process has it open.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::from_store(Store::open(dir)?)
    }

    /// Opens the state in `dir`, which must hold one already (`currents
    /// state show` on a mistyped directory creates nothing).
    pub fn open_existing(dir: &Path) -> Result<Self, StoreError> {
        if !dir.join(crate::store::DATABASE_FILE).is_file() {
            return Err(StoreError::Directory {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no bucket state here (it is made by a run with --state)",
                ),
            });
        }
        Self::open(dir)
    }

    /// The state kept in `store` (its own table; other tables untouched).
    pub fn from_store(store: Store) -> Result<Self, StoreError> {
        let tx = store.db().begin_write().map_err(|e| store.error(e))?;
        tx.open_table(OBJECTS).map_err(|e| store.error(e))?;
        tx.commit().map_err(|e| store.error(e))?;
        Ok(State { store })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Which of `objects` are done (one read transaction for them all).
    pub fn done(&self, objects: &[Object]) -> Result<Vec<bool>, StoreError> {
        let error = |e: redb::Error| self.store.error(e);
        let tx = self.store.db().begin_read().map_err(|e| error(e.into()))?;
        let table = tx.open_table(OBJECTS).map_err(|e| error(e.into()))?;
        objects
            .iter()
            .map(|object| {
                let entry = table
                    .get(object.url.as_str())
                    .map_err(|e| error(e.into()))?;
                Ok(entry
                    .and_then(|v| serde_json::from_slice::<StateEntry>(v.value()).ok())
                    .is_some_and(|entry| entry.same(object)))
            })
            .collect()
    }

    /// Records `object` as done (durable when this returns).
    pub fn record(&self, object: &Object) -> Result<(), StoreError> {
        let error = |e: redb::Error| self.store.error(e);
        let entry = StateEntry::of(object);
        let value = serde_json::to_vec(&entry).map_err(|e| error(redb::Error::Io(e.into())))?;
        let tx = self.store.db().begin_write().map_err(|e| error(e.into()))?;
        {
            let mut table = tx.open_table(OBJECTS).map_err(|e| error(e.into()))?;
            table
                .insert(object.url.as_str(), value.as_slice())
                .map_err(|e| error(e.into()))?;
        }
        tx.commit().map_err(|e| error(e.into()))
    }

    /// The objects recorded, in URL order; only those under `prefix` (a URL
    /// or key prefix) when given.
    pub fn entries(&self, prefix: Option<&str>) -> Result<Vec<StateEntry>, StoreError> {
        let error = |e: redb::Error| self.store.error(e);
        let tx = self.store.db().begin_read().map_err(|e| error(e.into()))?;
        let table = tx.open_table(OBJECTS).map_err(|e| error(e.into()))?;
        let mut entries = Vec::new();
        for item in table.iter().map_err(|e| error(e.into()))? {
            let (key, value) = item.map_err(|e| error(e.into()))?;
            if prefix.is_some_and(|p| !under(key.value(), p)) {
                continue;
            }
            // An entry this version cannot read is shown by its URL alone.
            let entry = serde_json::from_slice(value.value()).unwrap_or_else(|_| StateEntry {
                url: key.value().to_owned(),
                size: 0,
                etag: None,
                version: None,
                last_modified_ms: None,
                done_at: 0,
            });
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Forgets the objects under `prefix` (a URL or key prefix), or all;
    /// returns how many. They are read again by the next run.
    pub fn reset(&self, prefix: Option<&str>) -> Result<u64, StoreError> {
        let error = |e: redb::Error| self.store.error(e);
        let tx = self.store.db().begin_write().map_err(|e| error(e.into()))?;
        let mut removed = 0;
        {
            let mut table = tx.open_table(OBJECTS).map_err(|e| error(e.into()))?;
            table
                .retain(|url, _| {
                    let keep = prefix.is_some_and(|p| !under(url, p));
                    removed += u64::from(!keep);
                    keep
                })
                .map_err(|e| error(e.into()))?;
        }
        tx.commit().map_err(|e| error(e.into()))?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, size: u64, etag: Option<&str>) -> Object {
        Object {
            url: format!("s3://b/{key}"),
            key: key.to_owned(),
            size,
            etag: etag.map(str::to_owned),
            version: None,
            last_modified_ms: Some(1000),
            currents: None,
        }
    }

    #[test]
    fn records_show_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let a = object("currents/a.avro", 10, Some("\"e1\""));
        let b = object("other/b.avro", 20, None);
        assert_eq!(state.done(&[a.clone(), b.clone()]).unwrap(), [false, false]);
        state.record(&a).unwrap();
        state.record(&b).unwrap();
        assert_eq!(state.done(&[a.clone(), b.clone()]).unwrap(), [true, true]);
        // A new ETag, a new size or a new modification time: not done.
        let changed = [
            object("currents/a.avro", 10, Some("\"e2\"")),
            object("currents/a.avro", 11, Some("\"e1\"")),
            Object {
                last_modified_ms: Some(2000),
                ..b.clone()
            },
        ];
        assert_eq!(state.done(&changed).unwrap(), [false, false, false]);
        drop(state);
        // Durable across opens.
        let state = State::open(dir.path()).unwrap();
        let entries = state.entries(None).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(
            entries[0]
                .to_string()
                .starts_with("s3://b/currents/a.avro\t10 bytes\tetag \"e1\"")
        );
        assert_eq!(state.entries(Some("currents/")).unwrap().len(), 1);
        assert_eq!(state.entries(Some("s3://b/other")).unwrap().len(), 1);
        assert_eq!(state.reset(Some("s3://b/currents/")).unwrap(), 1);
        assert_eq!(state.done(&[a, b.clone()]).unwrap(), [false, true]);
        assert_eq!(state.reset(None).unwrap(), 1);
        assert!(state.entries(None).unwrap().is_empty());
    }
}
