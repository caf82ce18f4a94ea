//! A minimal HTTP/1.1 client for talking to the mock over loopback, and
//! event builders. Every read is bounded by a timeout.

#![allow(dead_code)] // Each test file uses a different part.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

pub const TOKEN: &str = "test-token";
pub const USER: &str = "sa.user";
pub const SECRET: &str = "sa-secret";
pub const PROJECT: &str = "12345";

/// No test waits longer than this for one answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads
/// the whole answer; `Err` when the server closes without one.
pub fn send(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // The server may close early (a dropped connection); that shows up when
    // reading.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let mut parsed = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut parsed);
    let start = match response.parse(&raw) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("no complete response ({} bytes)", raw.len()),
            ));
        }
    };
    Ok(Reply {
        status: response.code.unwrap_or(0),
        headers: response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&raw[start..]).into_owned(),
    })
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A valid strict-mode event.
pub fn event(insert_id: &str) -> Value {
    json!({"event":"Clicked","properties":{"time":now(),"distinct_id":"user-1","$insert_id":insert_id}})
}

/// `n` valid events with insert ids `id-0`, `id-1`…
pub fn events(n: usize) -> Vec<Value> {
    (0..n).map(|i| event(&format!("id-{i}"))).collect()
}

pub fn ndjson(events: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for e in events {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// `POST /import` of `events` as NDJSON with the project token.
pub fn import(port: u16, events: &[Value]) -> std::io::Result<Reply> {
    let auth = basic(TOKEN, "");
    send(
        port,
        "POST",
        "/import?strict=1",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-ndjson"),
        ],
        &ndjson(events),
    )
}
