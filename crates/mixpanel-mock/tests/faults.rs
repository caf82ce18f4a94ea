//! Fault injection and `/import` limits, over real HTTP on 127.0.0.1.

mod common;

use common::{TOKEN, basic, event, events, gzip, import, ndjson, send};
use mixpanel_mock::{Fault, MockConfig, MockServer};
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
    assert_eq!(log[0].fault, Some(Fault::Drop));
}

#[test]
fn body_fault_sends_the_raw_text() {
    let server = server();
    server.push_faults(
        Fault::Body {
            status: 200,
            body: "not json",
        },
        1,
    );
    server.push_faults(
        Fault::Body {
            status: 502,
            body: "<html>oops</html>",
        },
        1,
    );
    let reply = import(server.port(), &events(2)).unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "not json"));
    let reply = import(server.port(), &events(2)).unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (502, "<html>oops</html>")
    );
    assert_eq!(server.accepted_count(), 0, "a body fault imports nothing");
}

#[test]
fn short_import_keeps_only_the_first_events_and_says_so() {
    let server = server();
    server.push_faults(Fault::ShortImport { missing: 2 }, 1);
    let reply = import(server.port(), &events(5)).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"code":200,"num_records_imported":3,"status":"OK"})
    );
    let ids: Vec<_> = server.insert_id_counts().into_keys().collect();
    assert_eq!(ids, ["id-0", "id-1", "id-2"]);
    assert_eq!(
        server.requests()[0].events,
        5,
        "the log has the whole batch"
    );
}

#[test]
fn short_import_of_more_than_the_batch_imports_nothing() {
    let server = server();
    server.push_faults(Fault::ShortImport { missing: 10 }, 1);
    let reply = import(server.port(), &events(3)).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["num_records_imported"], 0);
    assert_eq!(server.accepted_count(), 0);
}

#[test]
fn short_import_still_validates_what_it_keeps() {
    let server = server();
    server.push_faults(Fault::ShortImport { missing: 1 }, 1);
    let mut batch = events(3);
    batch[0]["properties"]["distinct_id"] = json!("null");
    let reply = import(server.port(), &batch).unwrap();
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(body["num_records_imported"], 1);
    assert_eq!(body["failed_records"][0]["index"], 0);
    assert_eq!(body["failed_records"].as_array().unwrap().len(), 1);
    assert_eq!(server.accepted_count(), 1);
}

#[test]
fn bad_failed_records_cannot_be_placed() {
    let server = server();
    server.push_faults(Fault::BadFailedRecords, 1);
    let reply = import(server.port(), &events(4)).unwrap();
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(body["num_records_imported"], 2);
    let records = body["failed_records"].as_array().unwrap();
    let indexes: Vec<i64> = records
        .iter()
        .map(|r| r["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [9, -1]);
    assert!(
        records
            .iter()
            .all(|r| r.get("insert_id").is_none() && r.get("$insert_id").is_none())
    );
    let ids: Vec<_> = server.insert_id_counts().into_keys().collect();
    assert_eq!(ids, ["id-0", "id-1"], "the others are imported normally");
}

#[test]
fn retry_after_fault_sets_the_header() {
    let server = server();
    server.push_faults(
        Fault::RetryAfter {
            status: 429,
            seconds: 7,
        },
        1,
    );
    server.push_faults(
        Fault::RetryAfter {
            status: 503,
            seconds: 2,
        },
        1,
    );
    let reply = import(server.port(), &events(1)).unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert_eq!(reply.json()["code"], 429);
    let reply = import(server.port(), &events(1)).unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("2"));
    assert_eq!(reply.json()["code"], 503);
    assert_eq!(server.accepted_count(), 0);
}

#[test]
fn configured_retry_after_goes_with_429_and_503_faults_only() {
    let server = MockServer::start(MockConfig {
        retry_after: Some(3),
        ..MockConfig::with_token(TOKEN)
    })
    .unwrap();
    for status in [429, 503, 500] {
        server.fail_next(1, status);
    }
    let headers: Vec<_> = (0..4)
        .map(|_| {
            let reply = import(server.port(), &events(1)).unwrap();
            (reply.status, reply.header("retry-after").map(str::to_owned))
        })
        .collect();
    let three = Some("3".to_owned());
    assert_eq!(
        headers,
        [(429, three.clone()), (503, three), (500, None), (200, None)]
    );
}

#[test]
fn each_fault_is_spent_by_one_request_in_order() {
    let server = server();
    server.fail_next(1, 500);
    server.push_faults(Fault::ShortImport { missing: 1 }, 1);
    server.fail_next(1, 503);
    assert_eq!(server.pending_faults(), 3);
    let statuses: Vec<u16> = (0..4)
        .map(|_| import(server.port(), &events(2)).unwrap().status)
        .collect();
    assert_eq!(statuses, [500, 200, 503, 200]);
    assert_eq!(server.pending_faults(), 0);
    let faults: Vec<_> = server.requests().iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [
            Some(Fault::Status(500)),
            Some(Fault::ShortImport { missing: 1 }),
            Some(Fault::Status(503)),
            None
        ]
    );
    assert_eq!(server.accepted_count(), 1 + 2);
}

#[test]
fn unknown_paths_are_404_logged_and_keep_the_faults() {
    let server = server();
    server.fail_next(1, 500);
    let reply = send(server.port(), "GET", "/track?x=1", &[], b"").unwrap();
    assert_eq!(reply.status, 404);
    let reply = send(server.port(), "GET", "/import", &[], b"").unwrap();
    assert_eq!(reply.status, 404);
    assert_eq!(server.pending_faults(), 1);
    let log = server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (
            log[0].method.as_str(),
            log[0].path.as_str(),
            log[0].query.as_str()
        ),
        ("GET", "/track", "x=1")
    );
    assert_eq!(log[0].fault, None);
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
