//! `/import` over real HTTP on 127.0.0.1: faults and limits.

mod common;

use common::{TOKEN, basic, event, events, gzip, import, ndjson, send};
use mixpanel_mock::{MockConfig, MockServer};
use serde_json::json;

fn server() -> MockServer {
    MockServer::start(MockConfig::with_token(TOKEN)).unwrap()
}

#[test]
fn clean_import_is_accepted() {
    let server = server();
    let reply = import(server.port(), &events(3)).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"code":200,"num_records_imported":3,"status":"OK"})
    );
    assert_eq!(reply.header("retry-after"), None);
    assert_eq!(server.accepted_count(), 3);
}

#[test]
fn status_fault_answers_mixpanel_body_and_imports_nothing() {
    let server = server();
    server.fail_next(1, 429);
    let reply = import(server.port(), &events(2)).unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["status"], "Too Many Requests");
    assert_eq!(
        reply.header("retry-after"),
        None,
        "no Retry-After unless asked"
    );
    assert_eq!(server.accepted_count(), 0);
    assert_eq!(import(server.port(), &events(2)).unwrap().status, 200);
}

#[test]
fn drop_fault_closes_without_an_answer() {
    let server = server();
    server.drop_next(1);
    assert!(import(server.port(), &events(1)).is_err());
    assert_eq!(server.accepted_count(), 0);
    let log = server.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, 0);
}

#[test]
fn over_max_bytes_is_413_in_mixpanel_shape() {
    let server = MockServer::start(MockConfig {
        max_bytes: 1000,
        ..MockConfig::with_token(TOKEN)
    })
    .unwrap();
    let reply = import(server.port(), &events(20)).unwrap();
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.json(),
        json!({"code":413,"error":"request exceeds max limit of 1000 bytes","status":"Request Entity Too Large"})
    );
    // The limit is on the inflated body.
    let auth = basic(TOKEN, "");
    let reply = send(
        server.port(),
        "POST",
        "/import",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-ndjson"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&ndjson(&events(20))),
    )
    .unwrap();
    assert_eq!(reply.status, 413);
    assert_eq!(server.accepted_count(), 0);
}

#[test]
fn over_max_events_is_413_naming_events() {
    let server = server();
    server.configure(|c| c.max_events = 2);
    let reply = import(server.port(), &events(3)).unwrap();
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.json(),
        json!({"code":413,"error":"request exceeds max limit of 2 events","status":"Request Entity Too Large"})
    );
    assert_eq!(import(server.port(), &events(2)).unwrap().status, 200);
    assert_eq!(server.accepted_count(), 2);
}

#[test]
fn gzip_json_array_is_accepted() {
    let server = server();
    let auth = basic(TOKEN, "");
    let body = serde_json::to_vec(&[event("a-1"), event("a-2")]).unwrap();
    let reply = send(
        server.port(),
        "POST",
        "/import",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&body),
    )
    .unwrap();
    assert_eq!(reply.status, 200);
    let log = &server.requests()[0];
    assert!(log.gzip);
    assert_eq!((log.events, log.bytes), (2, body.len()));
}
