//! `/import` responses: parsed leniently, field by field, because a client
//! that trusts a malformed reply loses events.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// What came back from one request.
#[derive(Debug, Clone)]
pub struct ImportResponse {
    pub status: u16,
    pub body: ImportBody,
    /// The body text (at most 4 KiB kept), for error details.
    pub text: String,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

/// The parsed `/import` response body (all fields optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImportBody {
    pub code: Option<u16>,
    pub status: Option<String>,
    pub error: Option<String>,
    pub num_records_imported: Option<u64>,
    pub failed_records: Option<Vec<FailedRecord>>,
}

/// One entry of `failed_records`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FailedRecord {
    pub index: Option<usize>,
    #[serde(alias = "$insert_id")]
    pub insert_id: Option<String>,
    pub field: Option<String>,
    pub message: Option<String>,
}

/// Most of a response body kept in [`ImportResponse::text`].
pub const MAX_RESPONSE_TEXT: usize = 4096;

/// Turns a status and body text into an [`ImportResponse`]: the body parsed
/// leniently ([`ImportBody::parse`]) and at most [`MAX_RESPONSE_TEXT`] bytes
/// of the text kept (cut at a character boundary). Never fails.
pub fn parse_import_response(status: u16, body: &str) -> ImportResponse {
    let mut cut = body.len().min(MAX_RESPONSE_TEXT);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    ImportResponse {
        status,
        body: ImportBody::parse(body),
        text: body[..cut].to_owned(),
        retry_after: None,
    }
}

impl ImportBody {
    /// Parses a response body field by field: a field with an unexpected
    /// value (a `code` out of range, an `index` that is not a count, both
    /// `insert_id` and `$insert_id` in one record…) is ignored on its own
    /// instead of discarding the whole body, so `failed_records` survive
    /// whatever else is odd. A body that is not a JSON object gives
    /// [`ImportBody::default`].
    pub fn parse(text: &str) -> ImportBody {
        use serde_json::Value;
        if let Ok(body) = serde_json::from_str::<ImportBody>(text) {
            return body;
        }
        // Only when the strict parse fails: a `Value` can't hold every body
        // the strict parse accepts (numbers beyond f64 in ignored keys).
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
            return ImportBody::default();
        };
        fn field<T: serde::de::DeserializeOwned>(
            map: &serde_json::Map<String, Value>,
            key: &str,
        ) -> Option<T> {
            T::deserialize(map.get(key)?).ok()
        }
        let failed_records = match map.get("failed_records") {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| match item {
                        Value::Object(record) => FailedRecord {
                            index: field(record, "index"),
                            insert_id: field(record, "$insert_id")
                                .or_else(|| field(record, "insert_id")),
                            field: field(record, "field"),
                            message: field(record, "message"),
                        },
                        _ => FailedRecord::default(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        ImportBody {
            code: field(&map, "code"),
            status: field(&map, "status"),
            error: field(&map, "error"),
            num_records_imported: field(&map, "num_records_imported"),
            failed_records,
        }
    }
}

/// A `Retry-After` header value: delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_parsing_keeps_failed_records_when_other_fields_are_odd() {
        // Regression (found writing the fuzz_response oracle): the strict parse dropped
        // the whole body, and with it `failed_records`, over one odd field,
        // so a partial 400 dead-lettered the entire batch.
        let body = r#"{"code":70000,"status":7,"num_records_imported":-1,"failed_records":[{"index":1,"$insert_id":"a","insert_id":"b","field":"f","message":"m"},{"index":-3,"insert_id":"c"},"junk"]}"#;
        assert!(serde_json::from_str::<ImportBody>(body).is_err());
        let response = parse_import_response(400, body);
        assert_eq!(response.status, 400);
        assert_eq!(response.body.code, None);
        assert_eq!(response.body.status, None);
        assert_eq!(response.body.num_records_imported, None);
        let failed = response.body.failed_records.unwrap();
        assert_eq!(failed.len(), 3);
        assert_eq!(failed[0].index, Some(1));
        assert_eq!(failed[0].insert_id.as_deref(), Some("a"));
        assert_eq!(failed[0].message.as_deref(), Some("m"));
        assert_eq!(failed[1].index, None);
        assert_eq!(failed[1].insert_id.as_deref(), Some("c"));
        assert!(failed[2].insert_id.is_none() && failed[2].index.is_none());
    }

    #[test]
    fn response_text_is_cut_at_a_char_boundary() {
        let body = format!("{}é{}", "x".repeat(MAX_RESPONSE_TEXT - 1), "y".repeat(10));
        let response = parse_import_response(500, &body);
        assert_eq!(response.text, "x".repeat(MAX_RESPONSE_TEXT - 1));
        assert_eq!(response.body.code, None);
        assert_eq!(parse_import_response(200, "").text, "");
        assert!(
            parse_import_response(200, "[1]")
                .body
                .failed_records
                .is_none()
        );
    }

    #[test]
    fn failed_record_accepts_both_insert_id_keys() {
        let body: ImportBody = serde_json::from_str(
            r#"{"code":400,"failed_records":[{"index":1,"$insert_id":"a","field":"f","message":"m"},{"index":2,"insert_id":"b"}]}"#,
        )
        .unwrap();
        let f = body.failed_records.unwrap();
        assert_eq!(f[0].insert_id.as_deref(), Some("a"));
        assert_eq!(f[1].insert_id.as_deref(), Some("b"));
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
