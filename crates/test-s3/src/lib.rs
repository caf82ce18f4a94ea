//! Test support only: an S3-compatible server ([s3s-fs]) on 127.0.0.1 over a
//! directory, started in-process by a test (or by the `test-s3` binary for
//! benchmarks), so bucket tests need nothing installed.
//!
//! Objects are files under `root/BUCKET/KEY`; a bucket is a directory
//! ([`S3Server::create_bucket`]). Requests are signed (SigV4) with
//! [`ACCESS_KEY`] / [`SECRET_KEY`]; [`S3Server::env`] gives the `AWS_*`
//! variables a client needs.
//!
//! s3s-fs streams an object's body in 4 KiB reads, each a blocking-pool
//! task and a frame on the wire, and hashes the whole file for its ETag on
//! every listing and GET of a file written straight under the root (it
//! cannot store one for Braze's long keys: the file name it would use is
//! too long). On a 2-core machine that took the server more CPU than the
//! client spent decoding. So `Fs` serves a whole-object GET of a listed,
//! unchanged file itself, in 256 KiB reads and with the ETag its listing
//! gave (its length, date and ETag: the headers a bucket client reads),
//! and hands every other request to s3s-fs.
//!
//! [s3s-fs]: https://crates.io/crates/s3s-fs

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::{self, StreamingBlob};
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use tokio::io::AsyncReadExt;

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
        let fs = Fs::new(&root)?;
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

/// Bytes read from a file at a time for a GET's body.
const READ_CHUNK: usize = 256 * 1024;

/// s3s-fs with whole-object GETs read in [`READ_CHUNK`]s.
#[derive(Clone)]
struct Fs {
    inner: Arc<s3s_fs::FileSystem>,
    root: PathBuf,
    /// The ETag each listed file had, with the length and modification
    /// time it had then (a file rewritten since is hashed again).
    etags: Arc<Mutex<HashMap<PathBuf, Listed>>>,
}

#[derive(Clone)]
struct Listed {
    length: u64,
    modified: SystemTime,
    etag: Option<dto::ETag>,
}

impl Listed {
    /// The file of `metadata`, listed with `etag`.
    fn of(metadata: &std::fs::Metadata, etag: Option<dto::ETag>) -> Option<Self> {
        Some(Listed {
            length: metadata.len(),
            modified: metadata.modified().ok()?,
            etag,
        })
    }

    /// The file still has the length and modification time it was listed with.
    fn matches(&self, metadata: &std::fs::Metadata) -> bool {
        metadata.len() == self.length && metadata.modified().ok() == Some(self.modified)
    }
}

impl Fs {
    fn new(root: &Path) -> io::Result<Self> {
        let inner =
            s3s_fs::FileSystem::new(root).map_err(|e| io::Error::other(format!("{e:?}")))?;
        Ok(Fs {
            inner: Arc::new(inner),
            root: root.to_owned(),
            etags: Arc::default(),
        })
    }

    fn etags(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Listed>> {
        self.etags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A whole GET answered here: the file unchanged since its listing.
    async fn listed_get(&self, bucket: &str, key: &str) -> Option<dto::GetObjectOutput> {
        let path = self.root.join(bucket).join(key);
        let file = tokio::fs::File::open(&path).await.ok()?;
        let metadata = file.metadata().await.ok()?;
        let listed = self.etags().get(&path).cloned()?;
        if !listed.matches(&metadata) {
            return None;
        }
        Some(dto::GetObjectOutput {
            body: Some(body(file)),
            content_length: i64::try_from(listed.length).ok(),
            last_modified: Some(dto::Timestamp::from(listed.modified)),
            e_tag: listed.etag,
            ..Default::default()
        })
    }
}

/// A file's bytes in large reads.
fn body(file: tokio::fs::File) -> StreamingBlob {
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        let mut chunk = Vec::with_capacity(READ_CHUNK);
        match (&mut file)
            .take(READ_CHUNK as u64)
            .read_to_end(&mut chunk)
            .await
        {
            Ok(0) => None,
            Ok(_) => Some((Ok(Bytes::from(chunk)), file)),
            Err(e) => Some((Err(e), file)),
        }
    });
    StreamingBlob::wrap(chunks)
}

impl Fs {
    /// A whole GET of a listed file answered here, any other by s3s-fs.
    async fn serve_get(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        let input = &req.input;
        let plain = input.range.is_none()
            && input.part_number.is_none()
            && input.if_match.is_none()
            && input.if_none_match.is_none()
            && input.if_modified_since.is_none()
            && input.if_unmodified_since.is_none()
            && input.version_id.is_none();
        if plain && let Some(output) = self.listed_get(&input.bucket, &input.key).await {
            return Ok(S3Response::new(output));
        }
        self.inner.get_object(req).await
    }

    /// s3s-fs's listing, its ETags kept for [`serve_get`](Self::serve_get).
    async fn serve_list(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        let bucket = self.root.join(&req.input.bucket);
        let response = self.inner.list_objects_v2(req).await?;
        for object in response.output.contents.iter().flatten() {
            let Some(key) = &object.key else { continue };
            let path = bucket.join(key);
            let metadata = tokio::fs::metadata(&path).await.ok();
            let etag = object.e_tag.clone();
            if let Some(listed) = metadata.and_then(|m| Listed::of(&m, etag)) {
                self.etags().insert(path, listed);
            }
        }
        Ok(response)
    }
}

/// The S3 implementation: a GET and a listing through `Fs`'s own methods,
/// every other request s3s-fs answers passed to it as is. (The whole impl
/// comes from the macro: `async_trait` rewrites the methods of an impl
/// before the macros inside it expand.)
macro_rules! s3_impl {
    ($($method:ident: $input:ident -> $output:ident by $by:ident;)*) => {
        #[async_trait::async_trait]
        impl S3 for Fs {
            $(
                async fn $method(
                    &self,
                    req: S3Request<dto::$input>,
                ) -> S3Result<S3Response<dto::$output>> {
                    s3_impl!(@call self $by $method req)
                }
            )*
        }
    };
    (@call $self:ident inner $method:ident $req:ident) => { $self.inner.$method($req).await };
    (@call $self:ident $by:ident $method:ident $req:ident) => { $self.$by($req).await };
}

s3_impl! {
    get_object: GetObjectInput -> GetObjectOutput by serve_get;
    list_objects_v2: ListObjectsV2Input -> ListObjectsV2Output by serve_list;
    abort_multipart_upload: AbortMultipartUploadInput -> AbortMultipartUploadOutput by inner;
    complete_multipart_upload: CompleteMultipartUploadInput -> CompleteMultipartUploadOutput by inner;
    copy_object: CopyObjectInput -> CopyObjectOutput by inner;
    create_bucket: CreateBucketInput -> CreateBucketOutput by inner;
    create_multipart_upload: CreateMultipartUploadInput -> CreateMultipartUploadOutput by inner;
    delete_bucket: DeleteBucketInput -> DeleteBucketOutput by inner;
    delete_object: DeleteObjectInput -> DeleteObjectOutput by inner;
    delete_objects: DeleteObjectsInput -> DeleteObjectsOutput by inner;
    get_bucket_location: GetBucketLocationInput -> GetBucketLocationOutput by inner;
    head_bucket: HeadBucketInput -> HeadBucketOutput by inner;
    head_object: HeadObjectInput -> HeadObjectOutput by inner;
    list_buckets: ListBucketsInput -> ListBucketsOutput by inner;
    list_objects: ListObjectsInput -> ListObjectsOutput by inner;
    list_parts: ListPartsInput -> ListPartsOutput by inner;
    put_object: PutObjectInput -> PutObjectOutput by inner;
    upload_part: UploadPartInput -> UploadPartOutput by inner;
    upload_part_copy: UploadPartCopyInput -> UploadPartCopyOutput by inner;
}
