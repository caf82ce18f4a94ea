//! One batch on the wire: encoding, the request loop with retries, 413
//! splits, and what each reply means for each event. A reply is believed
//! only as far as it can be checked: a 200 that does not confirm every event
//! is retried (the dedupe key makes re-sending safe), and a partial 400 whose
//! failures cannot all be placed sends the rest again.

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Batch, Delivery, DeliveryFailure, SPARE_JSON, Shared, lock};
use crate::client::{BodyFormat, ImportResponse};

/// What one request made of a group of the batch's events.
enum Reply {
    /// Every event of the group has its outcome.
    Done(Vec<(usize, Delivery)>),
    /// 413 for more than one event: send each half on its own. `note`: the
    /// reply's text, which may name the limit.
    Split { note: String },
    /// These outcomes are final; the rest of the group was not confirmed and
    /// goes again (counts as a retry).
    Partly {
        done: Vec<(usize, Delivery)>,
        rest: Vec<usize>,
        why: String,
    },
    /// Nothing confirmed; worth another attempt after a wait.
    Retry {
        why: String,
        failure: DeliveryFailure,
        retry_after: Option<Duration>,
        slows_everyone: bool,
    },
}

/// A group of events still to send, with the attempts it has used.
struct Group {
    events: Vec<usize>,
    attempts: u32,
}

/// Sends every event of `batch` and returns one outcome per event, in order.
pub(super) fn deliver<T>(shared: &Shared<T>, batch: &mut Batch<T>) -> Vec<Delivery> {
    let mut outcomes: Vec<Option<Delivery>> = (0..batch.len()).map(|_| None).collect();
    let mut todo = vec![Group {
        events: (0..batch.len()).collect(),
        attempts: 0,
    }];
    while let Some(mut group) = todo.pop() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        // Writing to memory does not fail; were it to, say so per event.
        let encoding_failed = |outcomes: &mut [Option<Delivery>], e: io::Error| {
            let detail = format!("encoding the request body failed: {e}");
            for &i in &group.events {
                outcomes[i] = Some(Delivery::failed(DeliveryFailure::EncodingFailed, &detail));
            }
        };
        let whole = group.events.len() == batch.len();
        if whole && shared.gzip && batch.packed.is_none() {
            match encode(batch, &group.events, shared.format, true) {
                Ok(body) => {
                    let json = batch.pack(Packed {
                        body,
                        format: shared.format,
                    });
                    let mut spare = lock(&shared.spare_json);
                    if spare.len() < SPARE_JSON {
                        spare.push(json);
                    }
                }
                Err(e) => {
                    encoding_failed(&mut outcomes, e);
                    continue;
                }
            }
        }
        let batch: &Batch<T> = batch;
        let encoded;
        let body = match (&batch.packed, whole) {
            (Some(packed), true) => &packed.body,
            _ => match encode(batch, &group.events, shared.format, shared.gzip) {
                Ok(body) => {
                    encoded = body;
                    &encoded
                }
                Err(e) => {
                    encoding_failed(&mut outcomes, e);
                    continue;
                }
            },
        };
        group.attempts += 1;
        let reply = request(shared, batch, &group.events, body);
        match reply {
            Reply::Done(done) => place(&mut outcomes, done),
            Reply::Split { note } => {
                lock(&shared.state).report.splits += 1;
                shared.learn_limit(group.events.len(), &note);
                // Pieces start afresh: a 413 is not a failed attempt. Pushed
                // last first, so they go out in order.
                for events in split(shared, batch, group.events).into_iter().rev() {
                    todo.push(Group {
                        events,
                        attempts: 0,
                    });
                }
            }
            Reply::Partly { done, rest, why } => {
                place(&mut outcomes, done);
                let group = Group {
                    events: rest,
                    attempts: group.attempts,
                };
                if let Some(group) = retry_or_give_up(
                    shared,
                    group,
                    &mut outcomes,
                    &why,
                    DeliveryFailure::Unconfirmed,
                    None,
                    false,
                ) {
                    todo.push(group);
                }
            }
            Reply::Retry {
                why,
                failure,
                retry_after,
                slows_everyone,
            } => {
                if let Some(group) = retry_or_give_up(
                    shared,
                    group,
                    &mut outcomes,
                    &why,
                    failure,
                    retry_after,
                    slows_everyone,
                ) {
                    todo.push(group);
                }
            }
        }
    }
    // Left without an outcome: the export stopped first.
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Delivery::Unresolved))
        .collect()
}

/// Cuts a refused group by the limits learned so far, or in halves when
/// they do not make it smaller.
fn split<T>(shared: &Shared<T>, batch: &Batch<T>, mut events: Vec<usize>) -> Vec<Vec<usize>> {
    let mut batcher = super::Batcher::new(shared.limits(), shared.format);
    let mut pieces: Vec<Vec<usize>> = Vec::new();
    for &i in &events {
        if batcher.push(batch.event_len(i)) {
            pieces.push(Vec::new());
        }
        if let Some(piece) = pieces.last_mut() {
            piece.push(i);
        }
    }
    if pieces.len() > 1 {
        return pieces;
    }
    let tail = events.split_off(events.len() / 2);
    vec![events, tail]
}

fn place(outcomes: &mut [Option<Delivery>], done: Vec<(usize, Delivery)>) {
    for (i, delivery) in done {
        outcomes[i] = Some(delivery);
    }
}

/// Waits before the group's next attempt, or gives its events up (dead
/// letter with `failure`) once the attempts are spent. `None` when nothing
/// is left to send (given up, or the export stopped while waiting).
fn retry_or_give_up<T>(
    shared: &Shared<T>,
    group: Group,
    outcomes: &mut [Option<Delivery>],
    why: &str,
    failure: DeliveryFailure,
    retry_after: Option<Duration>,
    slows_everyone: bool,
) -> Option<Group> {
    let policy = shared.retry;
    if group.attempts >= policy.max_attempts {
        tracing::error!(attempts = group.attempts, error = %why, events = group.events.len(), "giving up on a batch");
        let detail = format!("{} attempts; last: {why}", group.attempts);
        for &i in &group.events {
            outcomes[i] = Some(Delivery::failed(failure, &detail));
        }
        return None;
    }
    let wait = policy.wait(group.attempts, retry_after);
    tracing::warn!(attempt = group.attempts, delay_ms = wait.as_millis() as u64, error = %why, "retrying");
    lock(&shared.state).report.retries += 1;
    let until = Instant::now() + wait;
    if slows_everyone {
        shared.gate.hold_until(until);
    }
    shared.sleep_until(until).then_some(group)
}

/// A request body and its uncompressed length.
struct Body {
    payload: Vec<u8>,
    raw_len: usize,
}

/// A whole batch's gzipped body, kept in place of its JSON.
pub(super) struct Packed {
    body: Body,
    format: BodyFormat,
}

impl Packed {
    /// The events' JSON end to end again (`ends` as in [`Batch`]): the body
    /// inflated, without its separators. Empty if it does not inflate,
    /// which a body this process wrote always does.
    pub(super) fn unpack(&self, ends: &[usize]) -> Vec<u8> {
        use std::io::Read as _;
        let mut raw = Vec::with_capacity(self.body.raw_len);
        let mut decoder = flate2::read::GzDecoder::new(&self.body.payload[..]);
        if decoder.read_to_end(&mut raw).is_err() {
            return Vec::new();
        }
        let mut json = Vec::with_capacity(ends.last().copied().unwrap_or(0));
        // NDJSON: `e\n` each; a JSON array: `[`, then `e,` or `e]` each.
        let mut at = usize::from(self.format == BodyFormat::JsonArray);
        let mut start = 0;
        for &end in ends {
            let len = end - start;
            match raw.get(at..at + len) {
                Some(event) => json.extend_from_slice(event),
                None => return Vec::new(),
            }
            (at, start) = (at + len + 1, end);
        }
        json
    }
}

/// The request body of `events` (gzipped with `gzip`); compressing while
/// writing means the uncompressed body never exists twice.
fn encode<T>(
    batch: &Batch<T>,
    events: &[usize],
    format: BodyFormat,
    gzip: bool,
) -> io::Result<Body> {
    let estimate: usize = events
        .iter()
        .map(|&i| batch.event_len(i) + 1)
        .sum::<usize>()
        + 2;
    let mut raw_len = 0;
    let mut write = |out: &mut dyn Write| -> io::Result<()> {
        let mut put = |bytes: &[u8]| {
            raw_len += bytes.len();
            out.write_all(bytes)
        };
        if format == BodyFormat::JsonArray {
            put(b"[")?;
        }
        for (n, &i) in events.iter().enumerate() {
            match format {
                BodyFormat::Ndjson => {
                    put(batch.json(i))?;
                    put(b"\n")?;
                }
                BodyFormat::JsonArray => {
                    if n > 0 {
                        put(b",")?;
                    }
                    put(batch.json(i))?;
                }
            }
        }
        if format == BodyFormat::JsonArray {
            put(b"]")?;
        }
        Ok(())
    };
    let payload = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(estimate / 6),
            flate2::Compression::fast(),
        );
        write(&mut encoder)?;
        encoder.finish()?
    } else {
        let mut out = Vec::with_capacity(estimate);
        write(&mut out)?;
        out
    };
    Ok(Body { payload, raw_len })
}

/// One attempt: waits for the shared gate, posts, and reads the reply.
fn request<T>(shared: &Shared<T>, batch: &Batch<T>, events: &[usize], body: &Body) -> Reply {
    if !shared.sleep_until(shared.gate.not_before()) {
        return Reply::Done(Vec::new());
    }
    if let Some(rate) = &shared.rate {
        let wait = rate.take(body.raw_len);
        if !wait.is_zero() && !shared.sleep_until(Instant::now() + wait) {
            return Reply::Done(Vec::new());
        }
    }
    let Some(ticket) = shared.limit.acquire(|| shared.stop.load(Ordering::SeqCst)) else {
        return Reply::Done(Vec::new());
    };
    lock(&shared.state).report.requests += 1;
    let started = Instant::now();
    let posted = shared
        .client
        .post(&body.payload, shared.format, shared.gzip);
    shared
        .limit
        .release(ticket, posted.as_ref().is_ok_and(|r| r.status == 429));
    let response = match posted {
        Ok(response) => response,
        Err(e) => {
            return Reply::Retry {
                why: format!("transport: {e}"),
                failure: DeliveryFailure::RetriesExhausted,
                retry_after: None,
                slows_everyone: false,
            };
        }
    };
    tracing::debug!(
        status = response.status,
        events = events.len(),
        bytes = body.raw_len,
        compressed = body.payload.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "import request"
    );
    lock(&shared.state).report.record_status(response.status);
    let n = events.len();
    let all = |delivery: Delivery| events.iter().map(|&i| (i, delivery.clone())).collect();
    match response.status {
        200 => {
            lock(&shared.state).report.bytes_sent += body.raw_len as u64;
            match response.body.num_records_imported {
                Some(imported) if imported >= n as u64 => Reply::Done(all(Delivery::Imported)),
                imported => Reply::Retry {
                    why: unconfirmed(n, imported, &response),
                    failure: DeliveryFailure::Unconfirmed,
                    retry_after: None,
                    slows_everyone: false,
                },
            }
        }
        400 => {
            lock(&shared.state).report.bytes_sent += body.raw_len as u64;
            bad_request(batch, events, &response)
        }
        401 | 403 => {
            let message = response
                .body
                .error
                .clone()
                .unwrap_or_else(|| "unauthorized".to_owned());
            tracing::error!(status = response.status, %message, "Mixpanel refused the credentials; stopping");
            shared.fail(super::FatalError::Unauthorized {
                status: response.status,
                message,
            });
            Reply::Done(Vec::new())
        }
        413 if n > 1 => {
            tracing::warn!(events = n, bytes = body.raw_len, "413: splitting the batch");
            Reply::Split {
                note: error_text(&response),
            }
        }
        413 => Reply::Done(all(Delivery::failed(
            DeliveryFailure::PayloadTooLarge,
            &format!("HTTP 413: {}", error_text(&response)),
        ))),
        429 | 408 | 500..=599 => Reply::Retry {
            why: format!("HTTP {}: {}", response.status, error_text(&response)),
            failure: DeliveryFailure::RetriesExhausted,
            retry_after: response.retry_after,
            // A 429, or a server saying when to come back, concerns every worker.
            slows_everyone: response.status == 429 || response.retry_after.is_some(),
        },
        status => {
            let detail = format!("HTTP {status}: {}", error_text(&response));
            tracing::error!(%detail, "unexpected status; dead-lettering the batch");
            Reply::Done(all(Delivery::failed(
                DeliveryFailure::UnexpectedStatus,
                &detail,
            )))
        }
    }
}

fn unconfirmed(sent: usize, imported: Option<u64>, response: &ImportResponse) -> String {
    match imported {
        Some(imported) => {
            format!("HTTP 200 confirmed {imported} of {sent} events (num_records_imported)")
        }
        None => format!(
            "HTTP 200 without num_records_imported: {:?}",
            response.text.chars().take(200).collect::<String>()
        ),
    }
}

pub(super) fn error_text(response: &ImportResponse) -> String {
    response
        .body
        .error
        .clone()
        .unwrap_or_else(|| response.text.clone())
}

/// A 400: the records `failed_records` places (by `index`, checked against
/// the `insert_id` when given, else by `insert_id`) are refused; the others
/// are imported only when the reply accounts for every event, and sent again
/// otherwise.
fn bad_request<T>(batch: &Batch<T>, events: &[usize], response: &ImportResponse) -> Reply {
    let Some(failed) = response
        .body
        .failed_records
        .as_deref()
        .filter(|f| !f.is_empty())
    else {
        let detail = format!("HTTP 400: {}", error_text(response));
        tracing::error!(%detail, events = events.len(), "batch rejected");
        return Reply::Done(
            events
                .iter()
                .map(|&i| {
                    (
                        i,
                        Delivery::failed(DeliveryFailure::MixpanelRejectedBatch, &detail),
                    )
                })
                .collect(),
        );
    };
    let insert_id = |pos: usize| batch.insert_id(events[pos]);
    let mut refused: Vec<Option<String>> = vec![None; events.len()];
    let mut unplaced = 0usize;
    for record in failed {
        let by_index = record.index.filter(|&i| {
            i < events.len()
                && refused[i].is_none()
                && (record.insert_id.is_none() || insert_id(i) == record.insert_id)
        });
        let position = by_index.or_else(|| {
            let id = record.insert_id.as_deref()?;
            (0..events.len()).find(|&i| refused[i].is_none() && insert_id(i).as_deref() == Some(id))
        });
        match position {
            Some(i) => {
                refused[i] = Some(format!(
                    "{}: {}",
                    record.field.as_deref().unwrap_or("?"),
                    record.message.as_deref().unwrap_or("failed validation")
                ));
            }
            None => unplaced += 1,
        }
    }
    let placed = refused.iter().filter(|r| r.is_some()).count();
    let accounted = response
        .body
        .num_records_imported
        .is_none_or(|n| n == (events.len() - placed) as u64);
    let mut done = Vec::with_capacity(events.len());
    let mut rest = Vec::new();
    for (pos, reason) in refused.into_iter().enumerate() {
        match reason {
            Some(detail) => done.push((
                events[pos],
                Delivery::failed(DeliveryFailure::MixpanelRejectedRecord, &detail),
            )),
            None if unplaced == 0 && accounted => done.push((events[pos], Delivery::Imported)),
            None => rest.push(events[pos]),
        }
    }
    tracing::warn!(
        failed = failed.len(),
        unplaced,
        events = events.len(),
        "partial 400: placed refusals dead-lettered"
    );
    if rest.is_empty() {
        return Reply::Done(done);
    }
    Reply::Partly {
        done,
        rest,
        why: format!(
            "HTTP 400 named {} refused record(s) it could not place among {} events",
            unplaced.max(1),
            events.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packed batch reads back exactly the JSON it was encoded from, in
    /// both body formats, and an event subset encodes from it.
    #[test]
    fn a_packed_batch_reads_back_its_json() {
        for format in [BodyFormat::Ndjson, BodyFormat::JsonArray] {
            let mut batch = Batch::<u32>::new();
            let events: Vec<String> = (0..50)
                .map(|i| {
                    format!(
                        r#"{{"event":"e{i}","properties":{{"s":"{}"}}}}"#,
                        "x".repeat(i)
                    )
                })
                .collect();
            for (i, event) in events.iter().enumerate() {
                batch.json.extend_from_slice(event.as_bytes());
                batch.ends.push(batch.json.len());
                batch.tags.push(i as u32);
            }
            let all: Vec<usize> = (0..events.len()).collect();
            let body = encode(&batch, &all, format, true).unwrap();
            let _ = batch.pack(Packed { body, format });
            assert!(batch.json.is_empty());
            for (i, event) in events.iter().enumerate() {
                assert_eq!(batch.event_len(i), event.len());
                assert_eq!(batch.json(i), event.as_bytes(), "{format:?} {i}");
            }
            let plain = encode(&batch, &[3, 7], format, false).unwrap();
            let expected = match format {
                BodyFormat::Ndjson => format!("{}\n{}\n", events[3], events[7]),
                BodyFormat::JsonArray => format!("[{},{}]", events[3], events[7]),
            };
            assert_eq!(plain.payload, expected.as_bytes());
        }
    }
}
