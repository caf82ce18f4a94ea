//! An object as a blocking byte stream: object_store's `get` stream behind
//! `std::io::Read`, driven by the bucket's runtime.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{Bucket, Object, ObjectErrorKind, redact};
use crate::source::Open;

/// Opens one object when a pipeline worker starts it (not before: a
/// listing of thousands of objects holds no connection).
pub(crate) struct ObjectOpen {
    store: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    secrets: Arc<[String]>,
    path: Path,
    size: u64,
    /// Raised when the transfer fails: the object's records may be cut
    /// short, so it must not be recorded done.
    failed: Arc<AtomicBool>,
}

impl ObjectOpen {
    pub(crate) fn new(bucket: &Bucket, object: &Object) -> Self {
        ObjectOpen {
            store: Arc::clone(&bucket.store),
            runtime: Arc::clone(&bucket.runtime),
            secrets: Arc::clone(&bucket.secrets),
            // A listed key is a valid path already (parsed, not re-encoded).
            path: Path::parse(&object.key).unwrap_or_else(|_| Path::from(object.key.as_str())),
            size: object.size,
            failed: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn failed(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.failed)
    }
}

fn io_error(error: &object_store::Error, secrets: &[String]) -> io::Error {
    let kind = match ObjectErrorKind::of(error) {
        ObjectErrorKind::NotFound => io::ErrorKind::NotFound,
        ObjectErrorKind::Denied => io::ErrorKind::PermissionDenied,
        ObjectErrorKind::Other => io::ErrorKind::Other,
    };
    io::Error::new(kind, redact(&error.to_string(), secrets))
}

impl Open for ObjectOpen {
    fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        let (store, path) = (Arc::clone(&self.store), self.path.clone());
        let result = self
            .runtime
            .block_on(async move { store.get(&path).await })
            .map_err(|e| {
                self.failed.store(true, Ordering::SeqCst);
                io_error(&e, &self.secrets)
            })?;
        let secrets = Arc::clone(&self.secrets);
        let stream = result
            .into_stream()
            .map_err(move |e| io_error(&e, &secrets));
        Ok(Box::new(Watched {
            inner: SyncIoBridge::new_with_handle(
                StreamReader::new(stream),
                self.runtime.handle().clone(),
            ),
            failed: Arc::clone(&self.failed),
        }))
    }

    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
}

/// Notes a failed read on the way through.
struct Watched<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        if let Err(e) = &result
            && e.kind() != io::ErrorKind::Interrupted
        {
            self.failed.store(true, Ordering::SeqCst);
        }
        result
    }
}
