//! The Lexicon Schemas API: `GET`/`POST /api/app/projects/{projectId}/schemas`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{Request, Response};
use crate::{MockConfig, RequestLog, Shared, lock};

/// Mixpanel's body limit for a schemas upload.
const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Requests admitted per window.
const MAX_REQUESTS: usize = 5;
/// Entries written per window.
const MAX_ENTRIES: usize = 4000;

/// The Lexicon state of a server.
#[derive(Default)]
pub(crate) struct Lexicon {
    /// `(entityType, name)` → `schemaJson`.
    pub schemas: BTreeMap<(String, String), Value>,
    /// Every request routed here.
    pub requests: usize,
    /// Admitted requests within the window: when, and how many entries.
    recent: VecDeque<(Instant, usize)>,
}

/// The Lexicon body for an error status.
pub(crate) fn status_body(status: u16) -> Value {
    let error = match status {
        401 => "Invalid credentials",
        403 => "Forbidden",
        429 => "rate limited",
        _ => "injected failure",
    };
    error_body(error)
}

fn error_body(error: &str) -> Value {
    json!({"error":error,"status":"error"})
}

fn error(status: u16, message: &str) -> Response {
    Response::json(status, &error_body(message))
}

#[derive(Deserialize)]
struct Upload {
    entries: Vec<Entry>,
    #[serde(default)]
    truncate: bool,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "entityType")]
    entity_type: String,
    name: String,
    #[serde(rename = "schemaJson")]
    schema_json: Value,
}

fn parse_upload(body: &[u8]) -> Result<Upload, String> {
    let upload: Upload = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    for (i, entry) in upload.entries.iter().enumerate() {
        if entry.entity_type != "event" && entry.entity_type != "profile" {
            return Err(format!(
                "entries[{i}].entityType must be \"event\" or \"profile\""
            ));
        }
        if entry.name.is_empty() {
            return Err(format!("entries[{i}].name must not be empty"));
        }
        if !entry.schema_json.is_object() {
            return Err(format!("entries[{i}].schemaJson must be an object"));
        }
    }
    Ok(upload)
}

/// Answers a Lexicon request for `project` (the shared faults are already
/// handled).
pub(crate) fn handle(
    shared: &Shared,
    config: &MockConfig,
    request: &Request,
    project: &str,
    log: &mut RequestLog,
) -> Response {
    // A service account only: a project token is no credential here.
    let Some((user, secret, project_id)) = &config.auth.service_account else {
        return Response::json(401, &status_body(401));
    };
    if request.basic_auth() != Some((user.clone(), secret.clone())) {
        return Response::json(401, &status_body(401));
    }
    if project != project_id {
        return Response::json(403, &status_body(403));
    }
    let upload = if request.method == "POST" {
        let body = match request.inflated_body(MAX_BYTES) {
            Ok(body) => body,
            Err(e) => return error(400, &e),
        };
        log.bytes = body.len();
        if body.len() > MAX_BYTES {
            return error(
                413,
                &format!("request exceeds max limit of {MAX_BYTES} bytes"),
            );
        }
        match parse_upload(&body) {
            Ok(upload) => Some(upload),
            Err(e) => return error(400, &format!("invalid request body: {e}")),
        }
    } else {
        None
    };
    let entries = upload.as_ref().map_or(0, |u| u.entries.len());
    log.events = entries;
    // Limits and writes under one lock, so concurrent uploads cannot both
    // slip under a limit.
    let mut data = lock(&shared.data);
    let lexicon = &mut data.lexicon;
    if config.lexicon_rate_limit {
        let now = Instant::now();
        while lexicon
            .recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= config.lexicon_window)
        {
            lexicon.recent.pop_front();
        }
        let written: usize = lexicon.recent.iter().map(|(_, n)| n).sum();
        if lexicon.recent.len() >= MAX_REQUESTS || written + entries > MAX_ENTRIES {
            return Response::json(429, &status_body(429)).with_retry_after(config.retry_after);
        }
        lexicon.recent.push_back((now, entries));
    }
    let Some(upload) = upload else {
        let results: Vec<Value> = lexicon
            .schemas
            .iter()
            .map(|((entity_type, name), schema)| {
                json!({"entityType":entity_type,"name":name,"schemaJson":schema})
            })
            .collect();
        return Response::json(200, &json!({"results":results,"status":"ok"}));
    };
    let mut deleted = 0;
    if upload.truncate {
        deleted = lexicon.schemas.len();
        lexicon.schemas.clear();
    }
    for entry in upload.entries {
        lexicon
            .schemas
            .insert((entry.entity_type, entry.name), entry.schema_json);
    }
    Response::json(
        200,
        &json!({"results":{"added":entries,"deleted":deleted},"status":"ok"}),
    )
}
