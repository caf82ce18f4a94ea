//! Local paths and bucket URLs together, listed once or every interval
//! (see [`Inputs`]).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Bucket, BucketError, BucketUrl, Object, Select, State};
use crate::observer::{Observer, Progress};
use crate::options::PipelineOptions;
use crate::run::{CancelToken, Pipeline};
use crate::source::Sources;
use crate::store::StoreError;
use currents_events::decode::RecordError;

enum Input {
    Path(PathBuf),
    Bucket(Bucket),
}

/// What a command reads: local paths (files, directories, `-`) and bucket
/// URLs, with a [`Select`] and a [`State`] for the buckets. Each
/// [`Inputs::run`] round lists the buckets again and hands the pipeline the
/// objects that are selected and not done, in key order; an object is
/// recorded in the state once the pipeline reports it resolved
/// ([`Observer::source_resolved`]), so an object cut short by a crash is
/// read again, from its start.
///
/// Local paths are read in the first round only (a watch lists buckets).
pub struct Inputs {
    inputs: Vec<Input>,
    select: Select,
    state: Option<Arc<State>>,
    watch: Option<Duration>,
    cancel: CancelToken,
    rounds: AtomicU64,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inputs: Vec<String> = self
            .inputs
            .iter()
            .map(|input| match input {
                Input::Path(path) => path.display().to_string(),
                Input::Bucket(bucket) => bucket.url().to_string(),
            })
            .collect();
        f.debug_struct("Inputs")
            .field("inputs", &inputs)
            .field("select", &self.select)
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

impl Inputs {
    /// Local paths and bucket URLs (`s3://`, `gs://`, `az://`; clients from
    /// the environment, see [`Bucket::from_env`]).
    pub fn new<S: AsRef<OsStr>>(inputs: &[S]) -> Result<Self, BucketError> {
        let inputs = inputs
            .iter()
            .map(|input| {
                let input = input.as_ref();
                match input.to_str() {
                    Some(text) if BucketUrl::is_bucket_url(text) => {
                        Ok(Input::Bucket(Bucket::from_env(&text.parse()?)?))
                    }
                    _ => Ok(Input::Path(PathBuf::from(input))),
                }
            })
            .collect::<Result<_, BucketError>>()?;
        Ok(Inputs {
            inputs,
            select: Select::default(),
            state: None,
            watch: None,
            cancel: CancelToken::new(),
            rounds: AtomicU64::new(0),
        })
    }

    /// Adds a bucket of your own making (e.g. [`Bucket::with_store`]).
    pub fn with_bucket(mut self, bucket: Bucket) -> Self {
        self.inputs.push(Input::Bucket(bucket));
        self
    }

    pub fn with_select(mut self, select: Select) -> Self {
        self.select = select;
        self
    }

    pub fn with_state(mut self, state: State) -> Self {
        self.state = Some(Arc::new(state));
        self
    }

    /// Lists again `every` interval after a round ends, until the
    /// [`Inputs::cancel_token`] is cancelled.
    pub fn with_watch(mut self, every: Duration) -> Self {
        self.watch = Some(every);
        self
    }

    /// Shared by every round's pipeline: [`CancelToken::finish_sources`]
    /// (from a SIGTERM handler) finishes the objects in hand, then the
    /// watch ends.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    pub fn has_buckets(&self) -> bool {
        self.inputs.iter().any(|i| matches!(i, Input::Bucket(_)))
    }

    /// Lists every input now: one round's sources.
    pub fn list(&self) -> Result<Round, BucketError> {
        let number = self.rounds.fetch_add(1, Ordering::SeqCst) + 1;
        let mut sources = Sources::new();
        let mut objects = Vec::new();
        for input in &self.inputs {
            match input {
                Input::Path(path) if number == 1 => {
                    sources.append(Sources::from_paths(std::slice::from_ref(path))?);
                    objects.resize_with(sources.len(), || None);
                }
                Input::Path(_) => {}
                Input::Bucket(bucket) => {
                    let pending = self.pending(bucket, &mut sources)?;
                    let tracked = bucket.tracked_sources(&pending);
                    for (object, (source, failed)) in pending.into_iter().zip(tracked) {
                        sources.push(source);
                        objects.push(Some(Tracked { object, failed }));
                    }
                }
            }
        }
        Ok(Round {
            sources,
            objects: Arc::new(objects),
            state: self.state.clone(),
            cancel: self.cancel.clone(),
            error: Arc::new(Mutex::new(None)),
            number,
        })
    }

    /// The objects of `bucket` to read, in key order; the others counted
    /// in `sources` as ignored. The state is asked a batch at a time, so a
    /// bucket of many done objects is never held in memory at once.
    fn pending(&self, bucket: &Bucket, sources: &mut Sources) -> Result<Vec<Object>, BucketError> {
        const BATCH: usize = 1024;
        let mut pending = Vec::new();
        let mut batch = Vec::new();
        let mut failure = None;
        let mut settle = |batch: &mut Vec<Object>, sources: &mut Sources| {
            let done = match &self.state {
                Some(state) => state.done(batch)?,
                None => vec![false; batch.len()],
            };
            for (object, done) in batch.drain(..).zip(done) {
                match done {
                    true => sources.ignore(object.url, "already_done"),
                    false => pending.push(object),
                }
            }
            Ok::<_, BucketError>(())
        };
        bucket.for_each(|object| {
            match self.select.reason(&object.key, object.currents.as_ref()) {
                Some(reason) => sources.ignore(object.url, reason),
                None => batch.push(object),
            }
            if batch.len() >= BATCH
                && failure.is_none()
                && let Err(e) = settle(&mut batch, sources)
            {
                failure = Some(e);
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        settle(&mut batch, sources)?;
        pending.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(pending)
    }

    /// Runs `round` on a fresh listing: once, or (with a watch) again every
    /// interval until cancelled. Returns the last round's value; stops at
    /// the first error (a round's, or the state's).
    pub fn run<T, E: From<BucketError>>(
        &self,
        mut round: impl FnMut(&Round) -> Result<T, E>,
    ) -> Result<T, E> {
        loop {
            let listed = self.list()?;
            let value = round(&listed)?;
            listed.finish()?;
            let Some(every) = self.watch else {
                return Ok(value);
            };
            let until = Instant::now() + every;
            while !self.cancel.is_cancelled() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50).min(every));
            }
            if self.cancel.is_cancelled() {
                return Ok(value);
            }
        }
    }
}

struct Tracked {
    object: Object,
    failed: Arc<AtomicBool>,
}

/// One listing: the sources to read, and what marks their objects done.
pub struct Round {
    sources: Sources,
    /// By source index: the bucket object behind it, if any.
    objects: Arc<Vec<Option<Tracked>>>,
    state: Option<Arc<State>>,
    cancel: CancelToken,
    /// The first state write that failed.
    error: Arc<Mutex<Option<StoreError>>>,
    number: u64,
}

impl std::fmt::Debug for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Round")
            .field("number", &self.number)
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

/// A round of plain sources (no buckets, no state).
impl From<Sources> for Round {
    fn from(sources: Sources) -> Self {
        Round {
            objects: Arc::new(Vec::new()),
            sources,
            state: None,
            cancel: CancelToken::new(),
            error: Arc::new(Mutex::new(None)),
            number: 1,
        }
    }
}

impl Round {
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// 1 for the first listing, then 2, 3 … under a watch.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The bucket objects of this round, in source order.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.objects.iter().flatten().map(|t| &t.object)
    }

    /// A pipeline for this round: `observer` sees everything, the state
    /// records each object as it is resolved, and the inputs' cancel token
    /// stops it.
    pub fn pipeline(&self, options: PipelineOptions, observer: Arc<dyn Observer>) -> Pipeline {
        let recorder = Recorder {
            inner: observer,
            objects: Arc::clone(&self.objects),
            state: self.state.clone(),
            error: Arc::clone(&self.error),
        };
        Pipeline::new(options)
            .with_cancel_token(self.cancel.clone())
            .observer(Arc::new(recorder))
    }

    /// The first state write that failed in this round, if any.
    pub fn finish(&self) -> Result<(), BucketError> {
        match self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }
}

/// Forwards to the caller's observer; records resolved objects.
struct Recorder {
    inner: Arc<dyn Observer>,
    objects: Arc<Vec<Option<Tracked>>>,
    state: Option<Arc<State>>,
    error: Arc<Mutex<Option<StoreError>>>,
}

impl Observer for Recorder {
    fn progress(&self, progress: &Progress) {
        self.inner.progress(progress);
    }

    fn input_error(&self, error: &RecordError) {
        self.inner.input_error(error);
    }

    fn source_resolved(&self, index: usize, name: &str) {
        self.inner.source_resolved(index, name);
        let (Some(state), Some(Some(tracked))) = (&self.state, self.objects.get(index)) else {
            return;
        };
        // A transfer that failed part way may have cut records off: read
        // the object again next time rather than call it done.
        if tracked.failed.load(Ordering::SeqCst) {
            tracing::warn!("{name}: the transfer failed; it is read again next time");
            return;
        }
        if let Err(e) = state.record(&tracked.object) {
            let mut error = self.error.lock().unwrap_or_else(|e| e.into_inner());
            error.get_or_insert(e);
        }
    }
}
