//! `POST /import`: auth, body, limits, strict validation and the
//! `/import`-only faults.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::http::{Request, Response};
use crate::{Fault, MockConfig, RequestLog, Shared, lock};

mod strict;

use strict::{Parts, PartsSeed, check};

/// Mixpanel's `/import` body for an error status.
pub(crate) fn status_body(status: u16) -> Value {
    match status {
        429 => {
            json!({"code":429,"error":"Project exceeded rate limits. Please retry the request with exponential backoff.","status":"Too Many Requests"})
        }
        401 => json!({"code":401,"error":"Invalid credentials","status":"Unauthorized"}),
        403 => json!({"code":403,"error":"Forbidden","status":"Forbidden"}),
        s => json!({"code":s,"error":"injected failure","status":"Error"}),
    }
}

fn bad_request(error: String) -> Response {
    Response::json(
        400,
        &json!({"code":400,"error":error,"status":"Bad Request"}),
    )
}

fn too_large(limit: String) -> Response {
    Response::json(
        413,
        &json!({"code":413,"error":format!("request exceeds max limit of {limit}"),"status":"Request Entity Too Large"}),
    )
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn authorized(config: &MockConfig, request: &Request) -> bool {
    let Some((user, password)) = request.basic_auth() else {
        return false;
    };
    let project_id = request
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("project_id="));
    if let Some((u, s, p)) = &config.auth.service_account
        && user == *u
        && password == *s
        && project_id == Some(p.as_str())
    {
        return true;
    }
    if let Some(token) = &config.auth.token
        && user == *token
        && password.is_empty()
    {
        return true;
    }
    false
}

/// One event of the batch: what the rules need, and the value when kept.
type Parsed = (Parts, Option<Value>);

/// The events of a body: NDJSON or a JSON array.
fn parse_events(
    config: &MockConfig,
    content_type: &str,
    body: &[u8],
) -> Result<Vec<Parsed>, String> {
    // Kept events are parsed whole; otherwise only what the rules look at.
    let parse = |bytes: &[u8]| -> Result<Parsed, String> {
        if config.keep_events {
            let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            Ok((Parts::of(&value), Some(value)))
        } else {
            let parts = serde::de::DeserializeSeed::deserialize(
                PartsSeed,
                &mut serde_json::Deserializer::from_slice(bytes),
            );
            Ok((parts.map_err(|e| e.to_string())?, None))
        }
    };
    if content_type.starts_with("application/x-ndjson") {
        body.split(|&b| b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(parse)
            .collect()
    } else {
        serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(body)
            .map_err(|e| e.to_string())
            .and_then(|items| {
                items
                    .iter()
                    .map(|raw| parse(raw.get().as_bytes()))
                    .collect()
            })
    }
}

/// Answers an `/import` request (the shared faults are already handled).
pub(crate) fn handle(
    shared: &Shared,
    config: &MockConfig,
    request: &Request,
    fault: Option<Fault>,
    log: &mut RequestLog,
) -> Response {
    if !authorized(config, request) {
        return Response::json(401, &status_body(401));
    }
    let body = match request.inflated_body(config.max_bytes) {
        Ok(body) => body,
        Err(e) => return bad_request(e),
    };
    log.bytes = body.len();
    if body.len() > config.max_bytes {
        return too_large(format!("{} bytes", config.max_bytes));
    }
    let events = match parse_events(config, &log.content_type, &body) {
        Ok(events) => events,
        Err(e) => return bad_request(format!("unable to parse body: {e}")),
    };
    let n = events.len();
    log.events = n;
    if n > config.max_events {
        return too_large(format!("{} events", config.max_events));
    }
    // How many events, from the start, are really looked at.
    let handled = match fault {
        Some(Fault::ShortImport { missing }) => n.saturating_sub(missing),
        Some(Fault::BadFailedRecords) => n.saturating_sub(2),
        _ => n,
    };
    let now = config.now.unwrap_or_else(now_secs);
    let mut data = lock(&shared.data);
    let mut failed = Vec::new();
    let mut imported = 0u64;
    for (index, (parts, event)) in events.into_iter().take(handled).enumerate() {
        let insert_id = parts.insert_id.clone().unwrap_or_default();
        let problem = check(&parts, now).or_else(|| {
            data.reject_ids
                .contains(&insert_id)
                .then(|| ("properties", "rejected by test configuration".to_owned()))
        });
        match problem {
            Some((field, message)) => {
                let mut record = serde_json::Map::new();
                record.insert("index".into(), index.into());
                record.insert(config.failed_insert_id_key.into(), insert_id.into());
                record.insert("field".into(), field.into());
                record.insert("message".into(), message.into());
                failed.push(Value::Object(record));
            }
            None => {
                imported += 1;
                if let Some(event) = event {
                    *data.insert_ids.entry(insert_id).or_default() += 1;
                    data.events.push(event);
                }
            }
        }
    }
    drop(data);
    if fault == Some(Fault::BadFailedRecords) {
        // Indexes no client can map back to an event, and no insert id.
        for index in [n as i64 + 5, -1] {
            failed.push(json!({"index":index,"field":"properties","message":"invalid record"}));
        }
    }
    if failed.is_empty() {
        Response::json(
            200,
            &json!({"code":200,"num_records_imported":imported,"status":"OK"}),
        )
    } else {
        Response::json(
            400,
            &json!({"code":400,"error":"some data points in the request failed validation","status":"Bad Request","num_records_imported":imported,"failed_records":failed}),
        )
    }
}
