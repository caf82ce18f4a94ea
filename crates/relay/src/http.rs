//! The HTTP side: `POST /currents` (Braze's Custom HTTP connector),
//! `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! Status codes are chosen with Braze's retry rules in mind: 2xx only once
//! the batch is on disk; 401 for a missing or wrong token (Braze does not
//! resend); 400 only for a body that is not `{"events": [...]}` (Braze
//! splits a 400'd batch and drops what fails twice, so a batch with one bad
//! event is stored and that event dead-lettered later); 413 above the size
//! limit (Braze resends smaller); 429 with `Retry-After` over the disk
//! budget and 503 when storage fails (Braze retries both with backoff).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tower_http::decompression::RequestDecompressionLayer;

use crate::App;
use crate::metrics::Reason;

/// Seconds Braze is asked to wait when the queue is full.
const RETRY_AFTER_SECS: u64 = 30;

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/currents", post(post_currents))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        // The handler counts the (decompressed) body itself, see `read_body`.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestDecompressionLayer::new())
        .with_state(app)
}

/// Why a body was not read.
enum BodyError {
    TooLarge,
    Unreadable(String),
}

/// Reads the body up to `limit` bytes. Past the limit the rest is read and
/// dropped (up to a bound), so the client, still sending, gets the 413
/// instead of a reset connection.
async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, BodyError> {
    use http_body_util::BodyExt as _;
    let drain = limit.saturating_mul(8).max(64 << 20);
    let mut body = body;
    let mut out = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > drain {
            break;
        }
        if seen <= limit {
            out.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

/// Compares digests, so the time taken says nothing about the token.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let given = value.strip_prefix(b"Bearer ").unwrap_or_default();
    same_token(given, token.as_bytes())
}

fn reply(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"status": if status.is_success() { "ok" } else { "error" }, "message": message});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn refuse(app: &App, status: StatusCode, reason: &str, message: &str) -> Response {
    app.metrics
        .rejected_requests
        .get_or_create(&Reason {
            reason: reason.to_owned(),
        })
        .inc();
    let mut response = reply(status, message);
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}

/// The shape Braze posts: `{"events": [ … ]}`.
#[derive(serde::Deserialize)]
struct Batch<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

async fn post_currents(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let arrived = Instant::now();
    if !authorized(&headers, app.config.token.expose()) {
        return refuse(
            &app,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
    }
    let body = match read_body(body, app.config.max_body_bytes).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return refuse(
                &app,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the batch is over the size limit; send smaller batches",
            );
        }
        Err(BodyError::Unreadable(message)) => {
            return refuse(&app, StatusCode::BAD_REQUEST, "unreadable_body", &message);
        }
    };
    // Braze checks the credentials with empty or zero-event posts.
    if body.iter().all(u8::is_ascii_whitespace) {
        return reply(StatusCode::OK, "credentials accepted");
    }
    let events = match serde_json::from_slice::<Batch<'_>>(&body) {
        Ok(batch) => batch.events.len() as u64,
        Err(_) => {
            return refuse(
                &app,
                StatusCode::BAD_REQUEST,
                "not_a_batch",
                "the body is not {\"events\": [...]}",
            );
        }
    };
    app.metrics.received_events.inc_by(events);
    if events == 0 {
        return reply(StatusCode::OK, "credentials accepted");
    }
    if app.queue.depth().bytes + body.len() as u64 > app.config.queue_budget_bytes {
        return refuse(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            "over_budget",
            "the queue is full; retry later",
        );
    }
    match app.queue.append(body, events).await {
        Ok(_) => {
            app.ready_storage(true);
            app.forwarder_wake();
            app.metrics.acknowledged_events.inc_by(events);
            app.metrics.acknowledged_batches.inc();
            app.metrics
                .ack_latency_seconds
                .observe(arrived.elapsed().as_secs_f64());
            reply(StatusCode::OK, "stored")
        }
        Err(error) => {
            tracing::error!(%error, "cannot store a batch");
            app.ready_storage(false);
            refuse(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_failed",
                "cannot store the batch; retry later",
            )
        }
    }
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let depth = app.queue.depth();
    if !app.storage_ok() {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "storage failed");
    }
    // Not ready from 90% of the budget on: a load balancer can send new
    // posts elsewhere before this replica has to refuse them.
    if depth.bytes >= app.config.queue_budget_bytes / 10 * 9 {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "queue near its budget");
    }
    reply(StatusCode::OK, "ready")
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let depth = app.queue.depth();
    let m = &app.metrics;
    m.queue_batches.set(depth.batches as i64);
    m.queue_events.set(depth.events as i64);
    m.queue_bytes.set(depth.bytes as i64);
    m.oldest_queued_seconds
        .set(app.queue.oldest_age().as_secs() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}
