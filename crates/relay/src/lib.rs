//! A durable endpoint for Braze Currents' Custom HTTP connector that
//! forwards to Mixpanel: a 2xx means the batch is on disk (an fsync'd
//! write-ahead queue in the embedded store) and will reach Mixpanel or the
//! dead letter, whatever crashes.
//!
//! ```no_run
//! use currents_mixpanel::{ClientConfig, Credentials, ExportConfig, Secret};
//! use currents_relay::{Relay, RelayConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let export = ExportConfig::new(ClientConfig::new(Credentials::from_env()?));
//! let config = RelayConfig::new(
//!     "127.0.0.1:8080".parse()?,
//!     "relay-data".into(),
//!     Secret::new("the bearer token Braze sends"),
//!     export,
//! );
//! let relay = Relay::bind(config)?; // opens the queue, binds the port
//! relay.run_until_signal()?; // SIGTERM/SIGINT: stop accepting, finish, exit
//! # Ok(()) }
//! ```
//!
//! * `POST /currents`: Braze's `{"events": [...]}` (gzip accepted),
//!   `Authorization: Bearer …` compared in constant time. See the status
//!   codes in [`Relay`].
//! * `GET /healthz` (up), `GET /readyz` (queue writable and under budget),
//!   `GET /metrics` (Prometheus text, names `currents_…`).
//! * Braze's at-least-once duplicates are harmless: the dedupe key
//!   (`$insert_id` from the event id) is deterministic.
//!
//! TLS is left to a reverse proxy or load balancer in front.

mod forward;
mod http;
mod metrics;
mod queue;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use currents_events::decode::Format;
use currents_mixpanel::{CancelHandle, ExportConfig, Secret};
use currents_pipeline::PipelineOptions;
use currents_pipeline::store::{Store, StoreError};

pub use queue::Depth;

/// What the relay needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelayConfig {
    pub listen: SocketAddr,
    /// The store (queue) and the dead letter live here.
    pub data_dir: PathBuf,
    /// The bearer token Braze sends.
    pub token: Secret,
    /// Posts above this (decompressed) are answered 413 (default 16 MiB).
    pub max_body_bytes: usize,
    /// Posts that would take the queue past this are answered 429 (default 1 GiB).
    pub queue_budget_bytes: u64,
    /// Mapping and validation (the format is set to Custom HTTP).
    pub pipeline: PipelineOptions,
    /// Delivery. Its retries should outlast an outage: what is not
    /// delivered stays queued, and the queue's budget is the limit.
    pub export: ExportConfig,
    /// Most events one forwarding run takes from the queue (default 20,000).
    pub forward_events: u64,
}

impl RelayConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf, token: Secret, export: ExportConfig) -> Self {
        RelayConfig {
            listen,
            data_dir,
            token,
            max_body_bytes: 16 << 20,
            queue_budget_bytes: 1 << 30,
            pipeline: PipelineOptions::default(),
            export,
            forward_events: 20_000,
        }
    }
}

/// Why the relay cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the relay: {0}")]
    Runtime(std::io::Error),
    #[error(
        "set CURRENTS_RELAY_TOKEN (or CURRENTS_RELAY_TOKEN_FILE): the bearer token Braze sends"
    )]
    MissingToken,
    #[error(transparent)]
    Token(#[from] currents_mixpanel::CredentialsError),
}

/// The bearer token Braze sends, from `CURRENTS_RELAY_TOKEN` or the file
/// `CURRENTS_RELAY_TOKEN_FILE` names (not both).
pub fn token_from_env() -> Result<Secret, RelayError> {
    let lookup = |var: &str| std::env::var(var).ok();
    currents_mixpanel::read_variable(&lookup, "CURRENTS_RELAY_TOKEN", "CURRENTS_RELAY_TOKEN_FILE")?
        .map(Secret::new)
        .ok_or(RelayError::MissingToken)
}

/// What the handlers and the forwarder share.
pub(crate) struct App {
    config: RelayConfig,
    queue: Arc<queue::Queue>,
    metrics: metrics::Metrics,
    stopping: AtomicBool,
    storage_ok: AtomicBool,
    /// The forwarder sleeps on this until woken (a new batch, shutdown).
    wake: (Mutex<bool>, Condvar),
    cancel_export: Mutex<Option<CancelHandle>>,
}

impl App {
    fn storage_ok(&self) -> bool {
        self.storage_ok.load(Ordering::Relaxed)
    }

    fn ready_storage(&self, ok: bool) {
        self.storage_ok.store(ok, Ordering::Relaxed);
    }

    fn forwarder_wake(&self) {
        let (flag, condvar) = &self.wake;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        condvar.notify_one();
    }

    fn forwarder_sleep(&self, at_most: Duration) {
        let (flag, condvar) = &self.wake;
        let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) = condvar
            .wait_timeout_while(guard, at_most, |woken| !*woken)
            .unwrap_or_else(|e| e.into_inner());
        *guard = false;
    }
}

/// The relay: the HTTP endpoint and the forwarder.
///
/// | answer | when | what Braze does |
/// |---|---|---|
/// | 200 | the batch is stored (fsync'd), or an empty credential check with the right token | done |
/// | 401 | a missing or wrong bearer token (credential checks too) | does not resend |
/// | 400 | the body is not `{"events": [...]}` | splits, drops what fails twice |
/// | 413 | the (decompressed) body is over the size limit | resends smaller |
/// | 429 + `Retry-After` | the queue is over its disk budget | retries with backoff |
/// | 503 + `Retry-After` | storage failed | retries with backoff |
///
/// A batch with one bad event is stored (200) and that event dead-lettered
/// by the forwarder, with its reason.
pub struct Relay {
    app: Arc<App>,
    listener: std::net::TcpListener,
    _store: Arc<Store>,
}

impl Relay {
    /// Opens the store in `data_dir` (refused if another process has it)
    /// and binds the address.
    pub fn bind(mut config: RelayConfig) -> Result<Self, RelayError> {
        config.pipeline.decode = config
            .pipeline
            .decode
            .clone()
            .with_format(Some(Format::HttpJson));
        let store = Arc::new(Store::open(&config.data_dir)?);
        let queue = queue::Queue::open(Arc::clone(&store))?;
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| RelayError::Listen {
                addr: config.listen,
                source,
            })?;
        let app = Arc::new(App {
            config,
            queue,
            metrics: metrics::Metrics::new(),
            stopping: AtomicBool::new(false),
            storage_ok: AtomicBool::new(true),
            wake: (Mutex::new(false), Condvar::new()),
            cancel_export: Mutex::new(None),
        });
        Ok(Relay {
            app,
            listener,
            _store: store,
        })
    }

    /// The bound address (port 0 in the config picks a free one).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// What is queued now.
    pub fn depth(&self) -> Depth {
        self.app.queue.depth()
    }

    /// Serves until SIGTERM or SIGINT: then stops accepting, lets requests
    /// in flight finish, stops forwarding (what is not delivered stays
    /// queued for the next start) and returns.
    pub fn run_until_signal(self) -> Result<(), RelayError> {
        self.run(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
    }

    /// Serves until `shutdown` completes.
    pub fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), RelayError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(RelayError::Runtime)?;
        let forwarder = {
            let app = Arc::clone(&self.app);
            std::thread::Builder::new()
                .name("relay-forwarder".into())
                .spawn(move || forward::run(&app))
                .map_err(RelayError::Runtime)?
        };
        let app = Arc::clone(&self.app);
        let served = runtime.block_on(async move {
            self.listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            tracing::info!(addr = ?listener.local_addr().ok(), "relay listening");
            axum::serve(listener, http::router(Arc::clone(&app)))
                .with_graceful_shutdown(shutdown)
                .await
        });
        // Requests in flight are answered: stop the forwarder and return.
        self.app.stopping.store(true, Ordering::SeqCst);
        if let Some(cancel) = self
            .app
            .cancel_export
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            cancel.cancel();
        }
        self.app.forwarder_wake();
        let _ = forwarder.join();
        served.map_err(RelayError::Runtime)
    }
}
