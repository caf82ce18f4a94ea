//! The Lexicon Schemas endpoint, over real HTTP on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::{PROJECT, Reply, SECRET, TOKEN, USER, basic, gzip, send};
use mixpanel_mock::{Fault, MockAuth, MockConfig, MockServer};
use serde_json::{Value, json};

const PATH: &str = "/api/app/projects/12345/schemas";

fn config() -> MockConfig {
    MockConfig {
        auth: MockAuth {
            service_account: Some((USER.into(), SECRET.into(), PROJECT.into())),
            token: Some(TOKEN.into()),
        },
        ..MockConfig::default()
    }
}

fn server() -> MockServer {
    MockServer::start(config()).unwrap()
}

fn entry(entity_type: &str, name: &str, description: &str) -> Value {
    json!({"entityType":entity_type,"name":name,"schemaJson":{"description":description,"properties":{}}})
}

fn upload_as(server: &MockServer, path: &str, auth: &str, body: &Value) -> Reply {
    send(
        server.port(),
        "POST",
        path,
        &[
            ("Authorization", auth),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

fn upload(server: &MockServer, entries: &[Value], truncate: bool) -> Reply {
    upload_as(
        server,
        PATH,
        &basic(USER, SECRET),
        &json!({"entries":entries,"truncate":truncate}),
    )
}

fn list(server: &MockServer) -> Reply {
    send(
        server.port(),
        "GET",
        PATH,
        &[("Authorization", &basic(USER, SECRET))],
        b"",
    )
    .unwrap()
}

#[test]
fn upload_merges_and_get_lists() {
    let server = server();
    let reply = upload(
        &server,
        &[
            entry("event", "Clicked", "v1"),
            entry("profile", "plan", "p"),
        ],
        false,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"results":{"added":2,"deleted":0},"status":"ok"})
    );
    // Replaces one, adds one, keeps the other.
    let reply = upload(
        &server,
        &[
            entry("event", "Clicked", "v2"),
            entry("event", "Viewed", "w"),
        ],
        false,
    );
    assert_eq!(
        reply.json(),
        json!({"results":{"added":2,"deleted":0},"status":"ok"})
    );
    let stored = server.lexicon();
    assert_eq!(stored.len(), 3);
    assert_eq!(
        stored[&("event".to_owned(), "Clicked".to_owned())]["description"],
        "v2"
    );
    assert!(stored.contains_key(&("profile".to_owned(), "plan".to_owned())));
    let reply = list(&server);
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["status"], "ok");
    let mut listed = body["results"].as_array().unwrap().clone();
    listed.sort_by_key(|e| (e["entityType"].to_string(), e["name"].to_string()));
    assert_eq!(
        listed,
        [
            entry("event", "Clicked", "v2"),
            entry("event", "Viewed", "w"),
            entry("profile", "plan", "p"),
        ]
    );
    assert_eq!(server.lexicon_requests(), 3);
    assert_eq!(server.requests()[2].path, PATH);
}

#[test]
fn truncate_deletes_everything_first() {
    let server = server();
    upload(
        &server,
        &[entry("event", "A", "a"), entry("event", "B", "b")],
        false,
    );
    let reply = upload(&server, &[entry("event", "C", "c")], true);
    assert_eq!(
        reply.json(),
        json!({"results":{"added":1,"deleted":2},"status":"ok"})
    );
    let keys: Vec<_> = server.lexicon().into_keys().collect();
    assert_eq!(keys, [("event".to_owned(), "C".to_owned())]);
}

#[test]
fn a_project_token_is_refused() {
    let server = server();
    let body = json!({"entries":[entry("event", "A", "a")]});
    let reply = upload_as(&server, PATH, &basic(TOKEN, ""), &body);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["status"], "error");
    let reply = upload_as(&server, PATH, &basic(USER, "wrong"), &body);
    assert_eq!(reply.status, 401);
    let reply = send(server.port(), "GET", PATH, &[], b"").unwrap();
    assert_eq!(reply.status, 401);
    // A server with a token only has no credential for Lexicon at all.
    let token_only = MockServer::start(MockConfig::with_token(TOKEN)).unwrap();
    let reply = upload_as(&token_only, PATH, &basic(TOKEN, ""), &body);
    assert_eq!(reply.status, 401);
    assert!(server.lexicon().is_empty());
}

#[test]
fn another_project_is_forbidden() {
    let server = server();
    let body = json!({"entries":[entry("event", "A", "a")]});
    let reply = upload_as(
        &server,
        "/api/app/projects/999/schemas",
        &basic(USER, SECRET),
        &body,
    );
    assert_eq!(reply.status, 403);
    assert!(server.lexicon().is_empty());
}

#[test]
fn a_sixth_request_in_the_window_is_rate_limited_until_it_rolls() {
    let server = MockServer::start(MockConfig {
        lexicon_window: Duration::from_millis(800),
        ..config()
    })
    .unwrap();
    let start = Instant::now();
    for i in 0..5 {
        let reply = upload(&server, &[entry("event", &format!("E{i}"), "x")], false);
        assert_eq!(reply.status, 200, "request {i}");
    }
    let reply = list(&server);
    if start.elapsed() < Duration::from_millis(800) {
        assert_eq!(reply.status, 429);
        assert_eq!(
            reply.json(),
            json!({"error":"rate limited","status":"error"})
        );
    }
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(list(&server).status, 200, "the window has rolled on");
}

#[test]
fn the_default_window_is_a_minute() {
    let server = server();
    for _ in 0..5 {
        assert_eq!(list(&server).status, 200);
    }
    assert_eq!(list(&server).status, 429);
    assert_eq!(
        upload(&server, &[entry("event", "A", "a")], false).status,
        429
    );
    assert!(
        server.lexicon().is_empty(),
        "a refused upload stores nothing"
    );
    assert_eq!(server.lexicon_requests(), 7);
}

#[test]
fn more_than_4000_entries_in_the_window_is_rate_limited() {
    let server = server();
    let batch = |from: usize, n: usize| -> Vec<Value> {
        (from..from + n)
            .map(|i| entry("event", &format!("E{i}"), "x"))
            .collect()
    };
    assert_eq!(upload(&server, &batch(0, 3000), false).status, 200);
    let reply = upload(&server, &batch(3000, 1001), false);
    assert_eq!(reply.status, 429);
    assert_eq!(
        reply.json(),
        json!({"error":"rate limited","status":"error"})
    );
    assert_eq!(upload(&server, &batch(3000, 1000), false).status, 200);
    assert_eq!(server.lexicon().len(), 4000);
    assert_eq!(upload(&server, &batch(4000, 1), false).status, 429);
}

#[test]
fn the_limits_can_be_switched_off() {
    let server = MockServer::start(MockConfig {
        lexicon_rate_limit: false,
        ..config()
    })
    .unwrap();
    for i in 0..7 {
        let entries: Vec<Value> = (0..1000)
            .map(|j| entry("event", &format!("E{i}-{j}"), "x"))
            .collect();
        assert_eq!(upload(&server, &entries, false).status, 200, "request {i}");
    }
    assert_eq!(server.lexicon().len(), 7000);
}

#[test]
fn a_body_over_8_mb_is_413() {
    let server = server();
    let auth = basic(USER, SECRET);
    let big = vec![b' '; 8 * 1024 * 1024 + 1];
    let reply = send(
        server.port(),
        "POST",
        PATH,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &big,
    )
    .unwrap();
    assert_eq!(reply.status, 413);
    // The limit is on the inflated body.
    let reply = send(
        server.port(),
        "POST",
        PATH,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&big),
    )
    .unwrap();
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["status"], "error");
}

#[test]
fn gzip_bodies_are_accepted() {
    let server = server();
    let body = json!({"entries":[entry("profile", "plan", "p")],"truncate":false});
    let reply = send(
        server.port(),
        "POST",
        PATH,
        &[
            ("Authorization", &basic(USER, SECRET)),
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(body.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(server.lexicon().len(), 1);
    assert!(server.requests()[0].gzip);
}

#[test]
fn malformed_uploads_are_400_and_store_nothing() {
    let server = MockServer::start(MockConfig {
        lexicon_rate_limit: false,
        ..config()
    })
    .unwrap();
    let auth = basic(USER, SECRET);
    for body in [
        json!({"truncate":false}),
        json!({"entries":[entry("group", "A", "a")]}),
        json!({"entries":[entry("event", "", "a")]}),
        json!({"entries":[entry("event", "A", "a"), {"entityType":"event","name":"B","schemaJson":"text"}]}),
        json!([1, 2]),
    ] {
        let reply = upload_as(&server, PATH, &auth, &body);
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json()["status"], "error");
    }
    assert!(server.lexicon().is_empty());
}

#[test]
fn other_paths_are_404() {
    let server = server();
    let auth = basic(USER, SECRET);
    for (method, path) in [
        ("DELETE", PATH),
        ("POST", "/api/app/projects/12345/schemas/event"),
        ("POST", "/api/app/projects/schemas"),
    ] {
        let reply = send(
            server.port(),
            method,
            path,
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap();
        assert_eq!(reply.status, 404, "{method} {path}");
    }
    assert_eq!(server.lexicon_requests(), 0);
}

#[test]
fn faults_apply_to_lexicon_requests() {
    let server = server();
    server.push_faults(
        Fault::RetryAfter {
            status: 429,
            seconds: 5,
        },
        1,
    );
    server.push_faults(Fault::ShortImport { missing: 1 }, 1);
    let reply = upload(&server, &[entry("event", "A", "a")], false);
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert_eq!(
        reply.json(),
        json!({"error":"rate limited","status":"error"})
    );
    // An /import-only fault is spent without effect.
    let reply = upload(&server, &[entry("event", "A", "a")], false);
    assert_eq!(reply.status, 200);
    assert_eq!(server.pending_faults(), 0);
    server.drop_next(1);
    let auth = basic(USER, SECRET);
    assert!(send(server.port(), "GET", PATH, &[("Authorization", &auth)], b"").is_err());
    assert_eq!(server.lexicon_requests(), 3);
}
