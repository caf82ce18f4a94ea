//! Test support only: an S3-compatible server ([s3s-fs]) on 127.0.0.1 over a
//! directory, started in-process by a test (or by the `test-s3` binary for
//! benchmarks), so bucket tests need nothing installed.
//!
//! Objects are files under `root/BUCKET/KEY`; a bucket is a directory
//! ([`S3Server::create_bucket`]). Requests are signed (SigV4) with
//! [`ACCESS_KEY`] / [`SECRET_KEY`]; [`S3Server::env`] gives the `AWS_*`
//! variables a client needs.
//!
//! [s3s-fs]: https://crates.io/crates/s3s-fs

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "test-s3-access-key";
/// The secret key the server accepts (a test value, not a secret).
pub const SECRET_KEY: &str = "test-s3-SECRET-2b7e1516";

/// A running server; stopped when dropped.
pub struct S3Server {
    addr: SocketAddr,
    root: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

impl S3Server {
    /// Serves `root` (created if missing) on an ephemeral loopback port.
    pub fn start(root: &Path) -> io::Result<Self> {
        Self::start_on(root, 0)
    }

    /// Serves `root` on `port` of 127.0.0.1 (0: any free port).
    pub fn start_on(root: &Path, port: u16) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-s3")
            .enable_all()
            .build()?;
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                // As S3 itself does: with Nagle on, each response's small
                // last write waits for the client's delayed ACK (~40 ms a
                // GET on loopback, most of a bucket run's wall time).
                let _ = socket.set_nodelay(true);
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(S3Server {
            addr,
            root,
            runtime: Some(runtime),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates bucket `name` (a directory under the root).
    pub fn create_bucket(&self, name: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.root.join(name))
    }

    /// The variables an S3 client reads to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
