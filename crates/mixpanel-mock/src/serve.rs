//! Connections, routing and the faults every endpoint shares.

use std::io::{self, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::{self, Request, Response};
use crate::{Fault, RequestLog, Shared, import, lexicon, lock};

pub(crate) fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for (id, stream) in (0u64..).zip(listener.incoming()) {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        // Kept so that dropping the server can cut open connections.
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.connections).push((id, clone));
        }
        let shared = Arc::clone(shared);
        let _ = std::thread::Builder::new()
            .name("mixpanel-mock-conn".into())
            .spawn(move || {
                let _ = serve_connection(&stream, &shared);
                // The clone above would otherwise keep the socket open.
                let _ = stream.shutdown(Shutdown::Both);
                lock(&shared.connections).retain(|(i, _)| *i != id);
            });
    }
}

/// Which endpoint a request is for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Import,
    /// The `projectId` of the path.
    Lexicon(String),
    NotFound,
}

impl Route {
    fn of(method: &str, path: &str) -> Route {
        if method == "POST" && path == "/import" {
            return Route::Import;
        }
        let project = path
            .strip_prefix("/api/app/projects/")
            .and_then(|rest| rest.strip_suffix("/schemas"))
            .filter(|id| !id.is_empty() && !id.contains('/'));
        match project {
            Some(id) if method == "GET" || method == "POST" => Route::Lexicon(id.to_owned()),
            _ => Route::NotFound,
        }
    }
}

fn serve_connection(stream: &TcpStream, shared: &Shared) -> io::Result<()> {
    let mut writer = stream;
    let mut reader = BufReader::new(stream);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(head) = http::read_head(&mut reader)? else {
            return Ok(());
        };
        let received = Instant::now();
        let head = http::parse_head(&head)?;
        let route = Route::of(&head.method, &head.path);
        // A stray request to an unknown path must not use up a fault meant
        // for the client's real calls.
        let fault = if route == Route::NotFound {
            None
        } else {
            let mut data = lock(&shared.data);
            if matches!(route, Route::Lexicon(_)) {
                data.lexicon.requests += 1;
            }
            data.faults.pop_front()
        };
        let mut log = RequestLog {
            status: 0,
            events: 0,
            bytes: 0,
            gzip: false,
            content_type: String::new(),
            query: head.query.clone(),
            method: head.method.clone(),
            path: head.path,
            fault,
            received,
            answered: received,
        };
        if fault == Some(Fault::Drop) {
            // Mid-request: the head is read, the body is not, no response.
            log.answered = Instant::now();
            lock(&shared.data).log.push(log);
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
        let body = http::read_body(&mut reader, &head.headers)?;
        let request = Request {
            method: head.method,
            query: head.query,
            headers: head.headers,
            body,
        };
        log.gzip = request.gzip();
        log.content_type = request.header("content-type").unwrap_or("").to_owned();
        let delay = shared.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let response = respond(shared, &route, &request, fault, &mut log);
        log.status = response.status;
        log.answered = Instant::now();
        // Logged before writing, so a client that has its answer can rely on
        // the log having it too.
        lock(&shared.data).log.push(log);
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        http::write_response(&mut writer, &response, close)?;
        if close {
            return Ok(());
        }
    }
}

fn respond(
    shared: &Shared,
    route: &Route,
    request: &Request,
    fault: Option<Fault>,
    log: &mut RequestLog,
) -> Response {
    let config = lock(&shared.config).clone();
    let status_body = |status: u16| match route {
        Route::Lexicon(_) => lexicon::status_body(status),
        _ => import::status_body(status),
    };
    match fault {
        Some(Fault::Status(status)) => Response::json(status, &status_body(status))
            .with_retry_after(config.retry_after.filter(|_| matches!(status, 429 | 503))),
        Some(Fault::RetryAfter { status, seconds }) => {
            Response::json(status, &status_body(status)).with_retry_after(Some(seconds))
        }
        Some(Fault::Body { status, body }) => Response::raw(status, body),
        _ => match route {
            Route::Import => import::handle(shared, &config, request, fault, log),
            Route::Lexicon(project) => lexicon::handle(shared, &config, request, project, log),
            Route::NotFound => Response::json(
                404,
                &json!({"code":404,"error":"not found","status":"Not Found"}),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::of("POST", "/import"), Route::Import);
        assert_eq!(Route::of("GET", "/import"), Route::NotFound);
        assert_eq!(
            Route::of("POST", "/api/app/projects/123/schemas"),
            Route::Lexicon("123".into())
        );
        assert_eq!(
            Route::of("GET", "/api/app/projects/123/schemas"),
            Route::Lexicon("123".into())
        );
        assert_eq!(
            Route::of("DELETE", "/api/app/projects/123/schemas"),
            Route::NotFound
        );
        assert_eq!(
            Route::of("POST", "/api/app/projects//schemas"),
            Route::NotFound
        );
        assert_eq!(
            Route::of("POST", "/api/app/projects/1/2/schemas"),
            Route::NotFound
        );
        assert_eq!(
            Route::of("POST", "/api/app/projects/1/schemas/event"),
            Route::NotFound
        );
    }
}
