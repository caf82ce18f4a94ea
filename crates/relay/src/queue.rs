//! The write-ahead queue: each accepted batch is stored in the store's
//! `relay_queue` table under an increasing sequence number, and removed only
//! once every one of its events is imported or dead-lettered.
//!
//! One writer thread owns every write transaction and commits the batches
//! that arrived while the previous commit ran in one fsync'd transaction
//! (group commit): a request is acknowledged after the commit holding its
//! batch returned, and many senders share one fsync.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use currents_pipeline::store::redb::{ReadableDatabase, ReadableTable, TableDefinition};
use currents_pipeline::store::{Store, StoreError};
use tokio::sync::oneshot;

/// Sequence number → `(accepted at, epoch ms; events; the body)`.
const QUEUE: TableDefinition<u64, (u64, u64, &[u8])> = TableDefinition::new("relay_queue");
/// Most batches one commit takes (more wait for the next).
const GROUP: usize = 512;

/// What the queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    pub batches: u64,
    pub events: u64,
    pub bytes: u64,
}

/// A stored batch, for the forwarder.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: u64,
    pub accepted_ms: u64,
    pub body: Vec<u8>,
}

enum Op {
    Append {
        body: Vec<u8>,
        events: u64,
        done: oneshot::Sender<Result<u64, String>>,
    },
    Remove {
        seqs: Vec<u64>,
        done: std::sync::mpsc::Sender<Result<(), String>>,
    },
}

/// The queue: appends from request handlers, reads and removals from the
/// forwarder.
pub struct Queue {
    store: Arc<Store>,
    ops: Sender<Op>,
    batches: AtomicU64,
    events: AtomicU64,
    bytes: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Queue {
    /// Opens the queue in `store`, counting what a previous process left.
    pub fn open(store: Arc<Store>) -> Result<Arc<Self>, StoreError> {
        let mut depth = Depth::default();
        let mut next = 0;
        {
            let txn = store.db().begin_write().map_err(|e| store.error(e))?;
            {
                let table = txn.open_table(QUEUE).map_err(|e| store.error(e))?;
                for item in table.iter().map_err(|e| store.error(e))? {
                    let (seq, value) = item.map_err(|e| store.error(e))?;
                    let (_, events, body) = value.value();
                    depth.batches += 1;
                    depth.events += events;
                    depth.bytes += body.len() as u64;
                    next = seq.value() + 1;
                }
            }
            txn.commit().map_err(|e| store.error(e))?;
        }
        let (ops, receiver) = channel();
        let queue = Arc::new(Queue {
            store,
            ops,
            batches: AtomicU64::new(depth.batches),
            events: AtomicU64::new(depth.events),
            bytes: AtomicU64::new(depth.bytes),
        });
        let writer = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("relay-queue-writer".into())
            .spawn(move || writer.write_loop(&receiver, next))
            .map_err(|e| StoreError::Directory {
                path: queue.store.dir().to_path_buf(),
                source: e,
            })?;
        Ok(queue)
    }

    pub fn depth(&self) -> Depth {
        Depth {
            batches: self.batches.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Stores a batch; resolves once its commit is on disk.
    pub async fn append(&self, body: Vec<u8>, events: u64) -> Result<u64, String> {
        let (done, receive) = oneshot::channel();
        self.ops
            .send(Op::Append { body, events, done })
            .map_err(|_| "the queue writer stopped".to_owned())?;
        receive
            .await
            .map_err(|_| "the queue writer stopped".to_owned())?
    }

    /// Removes delivered batches (their events are imported or dead-lettered).
    pub fn remove(&self, seqs: Vec<u64>) -> Result<(), String> {
        if seqs.is_empty() {
            return Ok(());
        }
        let (done, receive) = channel();
        self.ops
            .send(Op::Remove { seqs, done })
            .map_err(|_| "the queue writer stopped".to_owned())?;
        receive
            .recv()
            .map_err(|_| "the queue writer stopped".to_owned())?
    }

    /// The oldest batches after `after`, up to `max_events` events (at least one batch).
    pub fn peek(&self, after: Option<u64>, max_events: u64) -> Result<Vec<Queued>, String> {
        let db = self.store.db();
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let table = match txn.open_table(QUEUE) {
            Ok(table) => table,
            Err(e) => return Err(e.to_string()),
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        let mut events = 0;
        for item in table
            .range::<u64>((start, Bound::Unbounded))
            .map_err(|e| e.to_string())?
        {
            let (seq, value) = item.map_err(|e| e.to_string())?;
            let (accepted_ms, n, body) = value.value();
            if !out.is_empty() && events + n > max_events {
                break;
            }
            events += n;
            out.push(Queued {
                seq: seq.value(),
                accepted_ms,
                body: body.to_vec(),
            });
        }
        Ok(out)
    }

    /// Age of the oldest queued batch.
    pub fn oldest_age(&self) -> Duration {
        match self.peek(None, 0) {
            Ok(first) => first.first().map_or(Duration::ZERO, |q| {
                Duration::from_millis(now_ms().saturating_sub(q.accepted_ms))
            }),
            Err(_) => Duration::ZERO,
        }
    }

    fn write_loop(&self, receiver: &Receiver<Op>, mut next: u64) {
        while let Ok(first) = receiver.recv() {
            let mut ops = vec![first];
            while ops.len() < GROUP {
                match receiver.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            let start = next;
            let result = self.commit(&ops, &mut next);
            let mut seq = start;
            for op in ops {
                match op {
                    Op::Append { done, .. } => {
                        let _ = done.send(result.clone().map(|()| seq));
                        seq += 1;
                    }
                    Op::Remove { done, .. } => {
                        let _ = done.send(result.clone());
                    }
                }
            }
        }
    }

    /// Applies `ops` in one transaction; the counters follow only once it is
    /// committed.
    fn commit(&self, ops: &[Op], next: &mut u64) -> Result<(), String> {
        let db = self.store.db();
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        let mut delta = (0i64, 0i64, 0i64);
        let mut seq = *next;
        {
            let mut table = txn.open_table(QUEUE).map_err(|e| e.to_string())?;
            let now = now_ms();
            for op in ops {
                match op {
                    Op::Append { body, events, .. } => {
                        table
                            .insert(seq, (now, *events, body.as_slice()))
                            .map_err(|e| e.to_string())?;
                        seq += 1;
                        delta.0 += 1;
                        delta.1 += *events as i64;
                        delta.2 += body.len() as i64;
                    }
                    Op::Remove { seqs, .. } => {
                        for s in seqs {
                            if let Some(old) = table.remove(*s).map_err(|e| e.to_string())? {
                                let (_, events, body) = old.value();
                                delta.0 -= 1;
                                delta.1 -= events as i64;
                                delta.2 -= body.len() as i64;
                            }
                        }
                    }
                }
            }
        }
        txn.commit().map_err(|e| e.to_string())?;
        *next = seq;
        for (counter, d) in [
            (&self.batches, delta.0),
            (&self.events, delta.1),
            (&self.bytes, delta.2),
        ] {
            if d >= 0 {
                counter.fetch_add(d as u64, Ordering::Relaxed);
            } else {
                counter.fetch_sub(d.unsigned_abs(), Ordering::Relaxed);
            }
        }
        Ok(())
    }
}
