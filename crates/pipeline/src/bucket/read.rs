//! An object as a blocking byte stream: object_store's `get` stream behind
//! `std::io::Read`, driven by the bucket's runtime.
//!
//! Each transfer runs as a task on the runtime and hands its chunks to the
//! worker through a small bounded channel, so the connection keeps
//! receiving while the worker decodes. Opening an object of a listing also
//! starts the next `OBJECTS_AHEAD` objects' requests: a storage
//! connector's objects are small, and waiting for each GET's first byte
//! (tens of milliseconds on a real bucket) in turn would cost more than
//! decoding them.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc;

use super::{Bucket, Object, ObjectErrorKind, redact};
use crate::source::Open;

/// Requests started ahead of the one a worker opens.
const OBJECTS_AHEAD: usize = 2;

/// Chunks of an object (as the HTTP client receives them, typically 16 to
/// 64 KiB) that may arrive before the decoder asks for them.
const CHUNKS_AHEAD: usize = 8;

/// Opens one object when a pipeline worker starts it (not before: a
/// listing of thousands of objects holds no connection), and starts the
/// requests of the objects that follow it in its listing.
pub(crate) struct ObjectOpen {
    transfer: Arc<Transfer>,
    following: Vec<Arc<Transfer>>,
    size: u64,
}

impl ObjectOpen {
    /// The objects' readers, each starting the next ones' requests when
    /// opened (workers take sources in order).
    pub(crate) fn listing(bucket: &Bucket, objects: &[Object]) -> Vec<Self> {
        let transfers: Vec<Arc<Transfer>> = objects
            .iter()
            .map(|object| Arc::new(Transfer::new(bucket, object)))
            .collect();
        objects
            .iter()
            .enumerate()
            .map(|(i, object)| ObjectOpen {
                transfer: Arc::clone(&transfers[i]),
                following: transfers
                    .iter()
                    .skip(i + 1)
                    .take(OBJECTS_AHEAD)
                    .map(Arc::clone)
                    .collect(),
                size: object.size,
            })
            .collect()
    }

    /// Raised when the transfer fails: the object's records may be cut
    /// short, so it must not be recorded done.
    pub(crate) fn failed(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.transfer.failed)
    }
}

impl Open for ObjectOpen {
    fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        for next in &self.following {
            next.start_ahead();
        }
        let mut pieces = self.transfer.take();
        // The request's outcome comes first: a missing or forbidden object
        // fails here, as an open error, not as a read error later.
        let first = pieces.blocking_recv();
        let error = match first {
            Some(Piece::Started) => {
                return Ok(Box::new(ObjectReader {
                    pieces,
                    current: Bytes::new(),
                    complete: false,
                    failed: Arc::clone(&self.transfer.failed),
                }));
            }
            Some(Piece::Failed(error)) => error,
            _ => stopped(),
        };
        self.transfer.failed.store(true, Ordering::SeqCst);
        Err(error)
    }

    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
}

/// What a transfer task sends: `Started` once the response arrives, then
/// chunks, then `End` (or `Failed` at any point).
enum Piece {
    Started,
    Chunk(Bytes),
    End,
    Failed(io::Error),
}

enum TransferState {
    Idle,
    Running(mpsc::Receiver<Piece>),
    Taken,
}

/// One object's GET, started when it is opened or ahead of that.
struct Transfer {
    store: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    secrets: Arc<[String]>,
    path: Path,
    state: Mutex<TransferState>,
    failed: Arc<AtomicBool>,
}

impl Transfer {
    fn new(bucket: &Bucket, object: &Object) -> Self {
        Transfer {
            store: Arc::clone(&bucket.store),
            runtime: Arc::clone(&bucket.runtime),
            secrets: Arc::clone(&bucket.secrets),
            // A listed key is a valid path already (parsed, not re-encoded).
            path: Path::parse(&object.key).unwrap_or_else(|_| Path::from(object.key.as_str())),
            state: Mutex::new(TransferState::Idle),
            failed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TransferState> {
        // The state is a plain value: a panic elsewhere cannot leave it torn.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the request if nobody has yet.
    fn start_ahead(&self) {
        let mut state = self.state();
        if matches!(*state, TransferState::Idle) {
            *state = TransferState::Running(self.spawn());
        }
    }

    /// The running transfer's pieces (a new transfer if it was not started
    /// ahead, or if it was read once already).
    fn take(&self) -> mpsc::Receiver<Piece> {
        match std::mem::replace(&mut *self.state(), TransferState::Taken) {
            TransferState::Running(pieces) => pieces,
            TransferState::Idle | TransferState::Taken => self.spawn(),
        }
    }

    fn spawn(&self) -> mpsc::Receiver<Piece> {
        let (sender, pieces) = mpsc::channel(CHUNKS_AHEAD);
        let (store, path) = (Arc::clone(&self.store), self.path.clone());
        let secrets = Arc::clone(&self.secrets);
        self.runtime.spawn(async move {
            let mut stream = match store.get(&path).await {
                Ok(result) => result.into_stream(),
                Err(e) => {
                    let _ = sender.send(Piece::Failed(io_error(&e, &secrets))).await;
                    return;
                }
            };
            if sender.send(Piece::Started).await.is_err() {
                return;
            }
            loop {
                let (piece, last) = match stream.try_next().await {
                    Ok(Some(chunk)) if chunk.is_empty() => continue,
                    Ok(Some(chunk)) => (Piece::Chunk(chunk), false),
                    Ok(None) => (Piece::End, true),
                    Err(e) => (Piece::Failed(io_error(&e, &secrets)), true),
                };
                // A closed channel: the reader is gone, stop fetching.
                if sender.send(piece).await.is_err() || last {
                    return;
                }
            }
        });
        pieces
    }
}

/// The transfer task ended without saying the object is complete (its
/// runtime shut down): never taken for a clean end.
fn stopped() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the object's transfer stopped before its end",
    )
}

fn io_error(error: &object_store::Error, secrets: &[String]) -> io::Error {
    let kind = match ObjectErrorKind::of(error) {
        ObjectErrorKind::NotFound => io::ErrorKind::NotFound,
        ObjectErrorKind::Denied => io::ErrorKind::PermissionDenied,
        ObjectErrorKind::Other => io::ErrorKind::Other,
    };
    io::Error::new(kind, redact(&error.to_string(), secrets))
}

/// The reading end of an object's transfer; notes a failed read.
struct ObjectReader {
    pieces: mpsc::Receiver<Piece>,
    current: Bytes,
    complete: bool,
    failed: Arc<AtomicBool>,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() && !self.complete {
            let error = match self.pieces.blocking_recv() {
                Some(Piece::Chunk(chunk)) => {
                    self.current = chunk;
                    continue;
                }
                Some(Piece::End) => {
                    self.complete = true;
                    break;
                }
                Some(Piece::Failed(error)) => error,
                Some(Piece::Started) | None => stopped(),
            };
            self.failed.store(true, Ordering::SeqCst);
            return Err(error);
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    use super::*;

    fn bucket_with(objects: usize) -> (Bucket, Arc<InMemory>, Vec<Object>) {
        let store = Arc::new(InMemory::new());
        let bucket = Bucket::with_store("s3://b/p".parse().unwrap(), store.clone()).unwrap();
        bucket.runtime.block_on(async {
            for i in 0..objects {
                let body = format!("object {i} ").repeat(10_000);
                let path = Path::from(format!("p/{i}.avro"));
                store.put(&path, PutPayload::from(body)).await.unwrap();
            }
        });
        let listed = bucket.list().unwrap();
        (bucket, store, listed)
    }

    fn running(open: &ObjectOpen) -> bool {
        matches!(*open.transfer.state(), TransferState::Running(_))
    }

    #[test]
    fn opening_an_object_starts_the_next_requests_and_reads_each_whole() {
        let (bucket, _store, objects) = bucket_with(5);
        let readers = ObjectOpen::listing(&bucket, &objects);
        assert!(readers.iter().all(|r| !running(r)), "nothing before open");
        let mut first = readers[0].open().unwrap();
        let ahead: Vec<bool> = readers.iter().map(running).collect();
        assert_eq!(ahead, [false, true, true, false, false]);
        // Read out of order: each gets its own bytes, started ahead or not.
        for i in [1, 4, 2, 3] {
            let mut text = String::new();
            readers[i]
                .open()
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, format!("object {i} ").repeat(10_000));
        }
        let mut text = String::new();
        first.read_to_string(&mut text).unwrap();
        assert_eq!(text, "object 0 ".repeat(10_000));
        assert!(readers.iter().all(|r| !r.failed().load(Ordering::SeqCst)));
        // Opened again (a new round of a watch): a new transfer.
        let mut again = String::new();
        readers[0]
            .open()
            .unwrap()
            .read_to_string(&mut again)
            .unwrap();
        assert_eq!(again, text);
    }

    #[test]
    fn an_object_gone_since_the_listing_fails_to_open_and_is_marked_failed() {
        let (bucket, store, objects) = bucket_with(2);
        let readers = ObjectOpen::listing(&bucket, &objects);
        bucket
            .runtime
            .block_on(store.delete(&Path::from("p/1.avro")))
            .unwrap();
        // Started ahead by the first open, after the delete: it fails.
        readers[0].open().unwrap();
        let error = readers[1].open().err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(readers[1].failed().load(Ordering::SeqCst));
        assert!(!readers[0].failed().load(Ordering::SeqCst));
    }
}
