//! NDJSON and Custom HTTP JSON decoding.
//!
//! Both end in [`parse_event`], which reads one JSON object: when its first
//! key is `event_type` the rest of the object streams straight into
//! [`Event::from_map`] (borrowed keys, no intermediate value); otherwise it
//! is collected into a map first (a `{"events":[…]}` batch is accepted too).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::error::json_error_kind;
use super::fast_json;
use super::{Decode, ErrorKind, Location, RecordError, Step};
use crate::Event;
use crate::record::{FieldMap, SerdeMap};

// Boxed: an `Event` is ~830 bytes, and it passes through several results
// and steps before the mapper reads it.
type Parsed<'a> = Result<Box<Event<'a>>, (ErrorKind, String)>;

/// What one JSON object turned into.
// Events are moved once, straight to the caller: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Events<'a> {
    /// One event; its text borrows `bytes` where it can.
    One(Parsed<'a>),
    /// A batch object (`{"events":[…]}`) found where one event was expected.
    Many(Vec<Parsed<'static>>),
}

/// Parses one JSON object (a line or a batch element) into events: with the
/// fast deserializer when it reads the object to the end, else (errors,
/// rare shapes) with serde_json, whose result is then the one reported.
pub(crate) fn parse_event(bytes: &[u8]) -> Events<'_> {
    if let Some(events) = parse_fast(bytes) {
        return events;
    }
    parse_slow(bytes)
}

fn parse_fast(bytes: &[u8]) -> Option<Events<'_>> {
    let mut de = fast_json::Deserializer::new(simdutf8::basic::from_utf8(bytes).ok()?);
    let object = de.object(|map| read_object(map)).ok()?;
    de.end().ok()?;
    Some(object.into_events())
}

/// Parses the JSON object at the start of `bytes` with the fast
/// deserializer, returning its events and its length. `None` when it does
/// not read one there (it may not end within `bytes`, or be unusual): then
/// the object is found by scanning and read by [`parse_event`], which on a
/// well-formed object gives what this gives. Only the first `guess` bytes
/// are checked to be UTF-8 (one check over about the object, not over the
/// whole buffer for every object); an object longer than that is `None`.
fn parse_prefix(bytes: &[u8], guess: usize) -> Option<(Events<'_>, usize)> {
    let window = &bytes[..guess.min(bytes.len())];
    let text = match simdutf8::compat::from_utf8(window) {
        Ok(text) => text,
        // Cut inside a character (or not UTF-8 further on): the part before.
        Err(e) => simdutf8::basic::from_utf8(&window[..e.valid_up_to()]).ok()?,
    };
    let mut de = fast_json::Deserializer::new(text);
    let object = de.object(|map| read_object(map)).ok()?;
    Some((object.into_events(), de.offset()))
}

impl<'a> Object<'a> {
    fn into_events(self) -> Events<'a> {
        match self {
            Object::Event(event) => Events::One(Ok(event)),
            Object::Other(map) => from_object(map),
        }
    }
}

/// The step for the events of one object at `location`: the first is lent
/// (a batch's are queued, owned, after it).
fn lend<'b>(
    events: Events<'b>,
    location: Location,
    source: &Arc<str>,
    queue: &mut VecDeque<Step<'static>>,
    index: &mut u64,
) -> Step<'b> {
    match events {
        Events::One(result) => {
            *index += 1;
            match result {
                Ok(event) => Step::Event(event, location),
                Err((kind, message)) => Step::Error(record_error(source, location, kind, message)),
            }
        }
        many => {
            queue_events(queue, source, many, location, index);
            queue.pop_front().unwrap_or(Step::Again)
        }
    }
}

fn parse_slow(bytes: &[u8]) -> Events<'_> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = ObjectSeed
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match result {
        Ok(Object::Event(event)) => Events::One(Ok(event)),
        Ok(Object::Other(map)) => from_object(map),
        Err(e) => {
            // Syntax errors inside a field value surface as data errors
            // (wrapped with the field name): tell them apart.
            let e = match serde_json::from_slice::<de::IgnoredAny>(bytes) {
                Err(syntax) if syntax.is_syntax() || syntax.is_eof() => syntax,
                _ => e,
            };
            Events::One(Err((json_error_kind(&e), e.to_string())))
        }
    }
}

fn from_object(mut map: Map<String, Value>) -> Events<'static> {
    match map.remove("event_type") {
        Some(Value::String(event_type)) => {
            let result = Event::from_map(
                &event_type,
                de::value::MapDeserializer::new(map.into_iter()),
            );
            Events::One(
                result
                    .map(Box::new)
                    .map_err(|e: serde_json::Error| (json_error_kind(&e), e.to_string())),
            )
        }
        Some(other) => Events::One(Err((
            ErrorKind::NotAnEvent,
            format!("`event_type` is not a string: {other}"),
        ))),
        None => match map.remove("events") {
            Some(Value::Array(items)) => Events::Many(
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::Object(map) => match from_object(map) {
                            Events::One(result) => result,
                            Events::Many(_) => Err((ErrorKind::NotAnEvent, "nested batch".into())),
                        },
                        other => Err((
                            ErrorKind::NotAnEvent,
                            format!("batch item is not an object: {other}"),
                        )),
                    })
                    .collect(),
            ),
            _ => Events::One(Err((
                ErrorKind::NotAnEvent,
                "object has no `event_type`".into(),
            ))),
        },
    }
}

// Events are moved once, straight to the caller: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Object<'a> {
    Event(Box<Event<'a>>),
    Other(Map<String, Value>),
}

struct ObjectSeed;

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Object<'de>;
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Object<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed {
    type Value = Object<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<'de>, A::Error> {
        read_object(&mut SerdeMap(map))
    }
}

/// An event object: streamed into its event when `event_type` comes first.
fn read_object<'de, M: FieldMap<'de>>(map: &mut M) -> Result<Object<'de>, M::Error> {
    let Some(first) = map.next_field()? else {
        return Ok(Object::Other(Map::new()));
    };
    if first.as_str() == "event_type" {
        let value: Value = map.next_value()?;
        if let Value::String(event_type) = value {
            return Event::from_fields(&event_type, map)
                .map(|event| Object::Event(Box::new(event)));
        }
        let mut object = Map::new();
        object.insert("event_type".into(), value);
        return collect(object, map);
    }
    let mut object = Map::new();
    object.insert(first.as_str().to_owned(), map.next_value()?);
    collect(object, map)
}

/// Collects the rest of an event object whose first key is not
/// `event_type`. A repeated key is an error, as it is on the streaming path
/// (`set_field`), both at the top and inside object values such as the
/// Custom HTTP `user` and `properties` wrappers: a map would silently keep
/// only the last value.
fn collect<'de, A: MapAccess<'de>>(
    mut object: Map<String, Value>,
    mut map: A,
) -> Result<Object<'static>, A::Error> {
    while let Some(k) = map.next_key::<String>()? {
        let NoDupValue(v) = map.next_value()?;
        if object.contains_key(&k) {
            return Err(de::Error::custom(format_args!("duplicate field `{k}`")));
        }
        object.insert(k, v);
    }
    Ok(Object::Other(object))
}

/// A JSON value whose own object keys (one level) must be unique.
struct NoDupValue(Value);

impl<'de> de::Deserialize<'de> for NoDupValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDupVisitor)
    }
}

struct NoDupVisitor;

impl<'de> Visitor<'de> for NoDupVisitor {
    type Value = NoDupValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoDupValue, A::Error> {
        let mut object = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v: Value = map.next_value()?;
            if object.contains_key(&k) {
                return Err(de::Error::custom(format_args!("duplicate field `{k}`")));
            }
            object.insert(k, v);
        }
        Ok(NoDupValue(Value::Object(object)))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<NoDupValue, A::Error> {
        Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(NoDupValue)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NoDupValue, E> {
        Ok(NoDupValue(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NoDupValue, E> {
        Ok(NoDupValue(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NoDupValue, E> {
        Ok(NoDupValue(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NoDupValue, E> {
        Ok(NoDupValue(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NoDupValue, E> {
        Ok(NoDupValue(Value::String(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<NoDupValue, E> {
        Ok(NoDupValue(Value::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<NoDupValue, E> {
        Ok(NoDupValue(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<NoDupValue, E> {
        Ok(NoDupValue(Value::Null))
    }
}

fn record_error(
    source: &Arc<str>,
    location: Location,
    kind: ErrorKind,
    message: String,
) -> RecordError {
    RecordError {
        source_name: source.clone(),
        location,
        kind,
        message,
        records: 1,
    }
}

/// Queues the results of one object as owned steps.
fn queue_events(
    queue: &mut VecDeque<Step<'static>>,
    source: &Arc<str>,
    events: Events<'_>,
    location: Location,
    index: &mut u64,
) {
    let mut push = |result: Parsed<'_>, index: &mut u64| {
        let location = Location {
            index: *index,
            ..location
        };
        *index += 1;
        queue.push_back(match result {
            Ok(event) => Step::Event(Box::new(event.into_owned()), location),
            Err((kind, message)) => Step::Error(record_error(source, location, kind, message)),
        });
    };
    match events {
        Events::One(result) => push(result, index),
        Events::Many(results) => {
            for result in results {
                push(result, index);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// NDJSON

pub(crate) struct NdjsonDecoder<'a> {
    source: Arc<str>,
    input: Box<dyn BufRead + Send + 'a>,
    max: usize,
    line: Vec<u8>,
    line_no: u64,
    index: u64,
    queue: VecDeque<Step<'static>>,
    /// Bytes of the line last lent out, consumed at the next step.
    lent: usize,
    done: bool,
}

enum LineRead {
    Line,
    TooLong(u64),
    Eof,
}

impl<'a> NdjsonDecoder<'a> {
    pub fn new(source: Arc<str>, input: Box<dyn BufRead + Send + 'a>, max: usize) -> Self {
        Self {
            source,
            input,
            max,
            line: Vec::new(),
            line_no: 0,
            index: 0,
            queue: VecDeque::new(),
            lent: 0,
            done: false,
        }
    }

    /// Reads the next line into `self.line` (without the newline), never
    /// holding more than `max` bytes of it.
    fn read_line(&mut self) -> io::Result<LineRead> {
        self.line.clear();
        let mut total: u64 = 0;
        let mut any = false;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            any = true;
            let (chunk, used, end) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            total += chunk.len() as u64;
            if total <= self.max as u64 {
                self.line.extend_from_slice(chunk);
            }
            self.input.consume(used);
            if end {
                break;
            }
        }
        if !any {
            return Ok(LineRead::Eof);
        }
        if total > self.max as u64 {
            self.line.clear();
            return Ok(LineRead::TooLong(total));
        }
        Ok(LineRead::Line)
    }
}

impl Decode for NdjsonDecoder<'_> {
    fn step(&mut self) -> Step<'_> {
        if self.lent > 0 {
            self.input.consume(self.lent);
            self.lent = 0;
        }
        loop {
            if let Some(step) = self.queue.pop_front() {
                return step;
            }
            if self.done {
                return Step::Done;
            }
            // The usual case: the whole line is in the read buffer, and is
            // parsed where it is; the event borrows it until the next step.
            let whole = match self.input.fill_buf() {
                Ok(buf) => memchr::memchr(b'\n', buf)
                    .filter(|&end| end <= self.max)
                    .map(|end| (end, buf[..end].iter().all(u8::is_ascii_whitespace))),
                Err(_) => None, // read again below, which reports it
            };
            if let Some((end, blank)) = whole {
                self.line_no += 1;
                if blank {
                    self.input.consume(end + 1);
                    continue;
                }
                let location = Location::at_line(self.line_no, self.index);
                // Filled above: no read happens here.
                let Ok(buf) = self.input.fill_buf() else {
                    return Step::Again;
                };
                self.lent = end + 1;
                return lend(
                    parse_event(&buf[..end]),
                    location,
                    &self.source,
                    &mut self.queue,
                    &mut self.index,
                );
            }
            let read = self.read_line();
            self.line_no += 1;
            let location = Location::at_line(self.line_no, self.index);
            match read {
                Err(e) => {
                    self.done = true;
                    return Step::Error(RecordError {
                        records: 0,
                        ..record_error(
                            &self.source,
                            location,
                            ErrorKind::Io,
                            format!("read error: {e}"),
                        )
                    });
                }
                Ok(LineRead::Eof) => {
                    self.done = true;
                    return Step::Done;
                }
                Ok(LineRead::TooLong(len)) => {
                    self.index += 1;
                    return Step::Error(record_error(
                        &self.source,
                        location,
                        ErrorKind::TooLarge,
                        format!(
                            "line of {len} bytes exceeds the limit of {} bytes",
                            self.max
                        ),
                    ));
                }
                Ok(LineRead::Line) => {
                    if self.line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let events = parse_event(&self.line);
                    queue_events(
                        &mut self.queue,
                        &self.source,
                        events,
                        location,
                        &mut self.index,
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Custom HTTP documents

/// Where the document walker is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between top-level documents.
    Top,
    /// Inside an array of events (`in_object`: the `events` value of a batch).
    Array {
        in_object: bool,
        first: bool,
    },
    /// In a batch object after its `events` array.
    ObjectRest,
    Done,
}

enum Scan {
    Complete,
    TooLarge(u64),
    Eof,
}

pub(crate) struct HttpDecoder<'a> {
    source: Arc<str>,
    input: Box<dyn BufRead + Send + 'a>,
    max: usize,
    pos: u64,
    line: u64,
    index: u64,
    state: State,
    buf: Vec<u8>,
    /// `buf` holds the event last lent out, cleared at the next step.
    lent: bool,
    /// Bytes of the input buffer lent out (an event parsed in place),
    /// consumed at the next step.
    lent_input: usize,
    /// The events-array element at the current position is read by
    /// scanning (it did not parse in place).
    scan_next: Option<Location>,
    /// Length of the last element parsed in place.
    last_len: usize,
    queue: VecDeque<Step<'static>>,
    /// A fatal error ended decoding before the end of the input.
    gave_up: bool,
}

impl<'a> HttpDecoder<'a> {
    pub fn new(source: Arc<str>, input: Box<dyn BufRead + Send + 'a>, max: usize) -> Self {
        Self {
            source,
            input,
            max,
            pos: 0,
            line: 1,
            index: 0,
            state: State::Top,
            buf: Vec::new(),
            lent: false,
            lent_input: 0,
            scan_next: None,
            last_len: 0,
            queue: VecDeque::new(),
            gave_up: false,
        }
    }

    fn location(&self) -> Location {
        Location {
            line: Some(self.line),
            offset: Some(self.pos),
            index: self.index,
        }
    }

    fn fatal(&mut self, kind: ErrorKind, message: String) -> Step<'static> {
        self.state = State::Done;
        self.gave_up = true;
        Step::Error(RecordError {
            records: 0,
            ..record_error(&self.source, self.location(), kind, message)
        })
    }

    /// Skips whitespace; returns the next byte without consuming it.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            let buf = self.input.fill_buf()?;
            let Some(&b) = buf.first() else {
                return Ok(None);
            };
            if !b.is_ascii_whitespace() && b != 0xef && b != 0xbb && b != 0xbf {
                return Ok(Some(b));
            }
            if b == b'\n' {
                self.line += 1;
            }
            self.input.consume(1);
            self.pos += 1;
        }
    }

    fn bump(&mut self) {
        self.input.consume(1);
        self.pos += 1;
    }

    /// Reads the rest of a JSON value into `self.buf` (appending while it fits
    /// `max`), starting at nesting `depth` (0: the value starts here).
    fn scan(&mut self, mut depth: u32, mut in_str: bool) -> io::Result<Scan> {
        let mut escape = false;
        let mut total = self.buf.len() as u64;
        let scalar = depth == 0
            && !in_str
            && !matches!(self.input.fill_buf()?.first(), Some(b'{' | b'[' | b'"'));
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return Ok(if scalar && total > 0 {
                    Scan::Complete
                } else {
                    Scan::Eof
                });
            }
            let mut end = None;
            let mut newlines = 0;
            let mut i = 0;
            while i < chunk.len() {
                let b = chunk[i];
                i += 1;
                if in_str {
                    if escape {
                        escape = false;
                    } else if b == b'\\' {
                        escape = true;
                    } else if b == b'"' {
                        in_str = false;
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    } else {
                        // Jump to the next quote or backslash.
                        i = memchr::memchr2(b'"', b'\\', &chunk[i..])
                            .map_or(chunk.len(), |at| i + at);
                    }
                    continue;
                }
                if scalar {
                    if matches!(b, b',' | b']' | b'}') || b.is_ascii_whitespace() {
                        end = Some(i - 1);
                        break;
                    }
                    continue;
                }
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    b'\n' => newlines += 1,
                    _ => {}
                }
            }
            let used = end.unwrap_or(chunk.len());
            total += used as u64;
            if total <= self.max as u64 {
                self.buf.extend_from_slice(&chunk[..used]);
            }
            self.input.consume(used);
            self.pos += used as u64;
            self.line += newlines;
            if end.is_some() {
                return Ok(if total > self.max as u64 {
                    Scan::TooLarge(total)
                } else {
                    Scan::Complete
                });
            }
        }
    }

    fn fatal_next(&mut self, kind: ErrorKind, message: String) -> Next {
        Next::Step(self.fatal(kind, message))
    }

    /// Scans one event value (at the current position) into `buf`.
    fn event(&mut self, location: Location, depth: u32) -> io::Result<Option<Next>> {
        match self.scan(depth, false)? {
            Scan::Eof => Ok(Some(self.fatal_next(
                ErrorKind::BadJson,
                "input ends inside a JSON value".into(),
            ))),
            Scan::TooLarge(len) => {
                self.index += 1;
                self.buf.clear();
                Ok(Some(Next::Step(Step::Error(record_error(
                    &self.source,
                    location,
                    ErrorKind::TooLarge,
                    format!(
                        "event of {len} bytes exceeds the limit of {} bytes",
                        self.max
                    ),
                )))))
            }
            Scan::Complete => Ok(Some(Next::Parse(location))),
        }
    }

    fn step_io(&mut self) -> io::Result<Next> {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return Ok(Next::Step(step));
            }
            match self.state {
                State::Done => return Ok(Next::Step(Step::Done)),
                State::Top => {
                    let location = self.location();
                    match self.peek()? {
                        None => {
                            self.state = State::Done;
                        }
                        Some(b'[') => {
                            self.bump();
                            self.state = State::Array {
                                in_object: false,
                                first: true,
                            };
                        }
                        Some(b'{') => {
                            self.bump();
                            self.buf.clear();
                            self.buf.push(b'{');
                            if self.peek()? == Some(b'"') {
                                // Read the first key to tell a batch from one event.
                                if let Scan::Complete = self.scan(0, false)? {
                                    if self.buf == b"{\"events\"" && self.peek()? == Some(b':') {
                                        self.bump();
                                        if self.peek()? == Some(b'[') {
                                            self.bump();
                                            self.buf.clear();
                                            self.state = State::Array {
                                                in_object: true,
                                                first: true,
                                            };
                                            continue;
                                        }
                                        self.buf.push(b':');
                                    }
                                } else {
                                    return Ok(self.fatal_next(
                                        ErrorKind::BadJson,
                                        "input ends inside a JSON object".into(),
                                    ));
                                }
                            }
                            if let Some(step) = self.event(location, 1)? {
                                return Ok(step);
                            }
                        }
                        Some(b) => {
                            return Ok(self.fatal_next(
                                ErrorKind::BadJson,
                                format!("expected `{{` or `[` at the start of a JSON document, found {:?}", b as char),
                            ));
                        }
                    }
                }
                State::Array { in_object, first } => {
                    match self.peek()? {
                        Some(b']') => {
                            self.bump();
                            self.state = if in_object {
                                State::ObjectRest
                            } else {
                                State::Top
                            };
                            continue;
                        }
                        Some(b',') if !first => self.bump(),
                        Some(_) if first => {}
                        other => {
                            let found = other
                                .map_or("end of input".to_owned(), |b| format!("{:?}", b as char));
                            return Ok(self.fatal_next(
                                ErrorKind::BadJson,
                                format!("expected `,` or `]` in the events array, found {found}"),
                            ));
                        }
                    }
                    self.state = State::Array {
                        in_object,
                        first: false,
                    };
                    if self.peek()?.is_none() {
                        return Ok(self.fatal_next(
                            ErrorKind::BadJson,
                            "input ends inside the events array".into(),
                        ));
                    }
                    self.buf.clear();
                    return Ok(Next::Value(self.location()));
                }
                State::ObjectRest => match self.peek()? {
                    Some(b'}') => {
                        self.bump();
                        self.state = State::Top;
                    }
                    Some(b',') => {
                        // Other keys of the batch object: read and ignore.
                        self.bump();
                        self.peek()?;
                        self.buf.clear();
                        let key = self.scan(0, false)?;
                        let colon = self.peek()?;
                        if !matches!(key, Scan::Complete) || colon != Some(b':') {
                            return Ok(self.fatal_next(
                                ErrorKind::BadJson,
                                "malformed key in the batch object".into(),
                            ));
                        }
                        self.bump();
                        self.peek()?;
                        self.buf.clear();
                        if let Scan::Eof = self.scan(0, false)? {
                            return Ok(self.fatal_next(
                                ErrorKind::BadJson,
                                "input ends inside the batch object".into(),
                            ));
                        }
                        self.buf.clear();
                    }
                    _ => {
                        return Ok(self.fatal_next(
                            ErrorKind::BadJson,
                            "expected `,` or `}` after the events array".into(),
                        ));
                    }
                },
            }
        }
    }
}

/// What [`HttpDecoder::step_io`] found.
// Returned by value once per step and unpacked at once; boxing the step
// would allocate for every queued event.
#[allow(clippy::large_enum_variant)]
enum Next {
    Step(Step<'static>),
    /// `buf` holds one whole event value, read at this location.
    Parse(Location),
    /// An element of an events array starts at the current position.
    Value(Location),
}

impl Decode for HttpDecoder<'_> {
    fn gave_up(&self) -> bool {
        self.gave_up
    }

    fn step(&mut self) -> Step<'_> {
        if self.lent_input > 0 {
            self.input.consume(self.lent_input);
            self.lent_input = 0;
        }
        if self.lent {
            self.buf.clear();
            self.lent = false;
        }
        let next = match self.scan_next.take() {
            // The element did not parse in place: find its end by scanning.
            Some(location) => self
                .event(location, 0)
                .map(|next| next.unwrap_or(Next::Step(Step::Again))),
            None => self.step_io(),
        };
        match next {
            Ok(Next::Step(step)) => step,
            // The usual case: the whole element is in the read buffer and
            // parses there; the event borrows it until the next step.
            Ok(Next::Value(location)) => {
                let Ok(buf) = self.input.fill_buf() else {
                    self.scan_next = Some(location);
                    return Step::Again;
                };
                // Elements of a batch are alike: twice the last one's length
                // is checked as UTF-8, and that is where this one must end.
                let guess = match self.last_len {
                    0 => 64 * 1024,
                    last => last * 2 + 256,
                };
                let Some((events, used)) = parse_prefix(&buf[..buf.len().min(self.max)], guess)
                else {
                    self.scan_next = Some(location);
                    return Step::Again;
                };
                self.last_len = used;
                self.lent_input = used;
                self.pos += used as u64;
                // Well-formed JSON has no raw newline inside a string.
                self.line += memchr::memchr_iter(b'\n', &buf[..used]).count() as u64;
                lend(
                    events,
                    location,
                    &self.source,
                    &mut self.queue,
                    &mut self.index,
                )
            }
            // The event borrows `buf` until the next step.
            Ok(Next::Parse(location)) => {
                self.lent = true;
                self.last_len = self.buf.len();
                lend(
                    parse_event(&self.buf),
                    location,
                    &self.source,
                    &mut self.queue,
                    &mut self.index,
                )
            }
            Err(e) => self.fatal(ErrorKind::Io, format!("read error: {e}")),
        }
    }
}

/// For the fuzz targets: the fast JSON path checked against serde_json.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_fast_path(bytes: &[u8]) {
    use serde::Deserialize as _;
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    // As a generic value: wherever the fast path accepts, serde_json agrees.
    let mut de = fast_json::Deserializer::new(text);
    let fast = serde_json::Value::deserialize(&mut de)
        .ok()
        .filter(|_| de.end().is_ok());
    if let Some(fast) = fast {
        let slow = serde_json::from_str::<serde_json::Value>(text).ok();
        assert_eq!(Some(&fast), slow.as_ref(), "fast JSON value differs");
    }
    // As an event: the fast path's events are the slow path's.
    if let Some(fast) = parse_fast(bytes) {
        let as_vec = |events: Events<'_>| match events {
            Events::One(one) => vec![one.map(|event| Box::new(event.into_owned()))],
            Events::Many(many) => many,
        };
        assert_eq!(
            as_vec(fast),
            as_vec(parse_slow(bytes)),
            "fast JSON event differs"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(events: Events<'_>) -> Vec<Parsed<'static>> {
        match events {
            Events::One(one) => vec![one.map(|event| Box::new(event.into_owned()))],
            Events::Many(many) => many,
        }
    }

    /// The fast path reads keys, text and wrappers itself (`FieldMap`); what
    /// it reads must be what serde_json reads through the builders' serde
    /// defaults, and where it declines serde_json decides.
    #[test]
    fn fast_path_reads_events_as_serde_json_does() {
        let open = r#""event_type":"users.messages.email.Open","id":"e1","time":1700000000"#;
        // What an email open requires besides `id` and `time`.
        let user = r#""user_id":"b1""#;
        let email = r#""email_address":"a@b.c""#;
        let accepted = [
            format!(
                r#"{{{open},"user":{{"external_user_id":"u1",{user}}},"properties":{{"campaign_id":"c1",{email}}}}}"#
            ),
            // An escaped key, and values with escapes and raw UTF-8.
            format!(
                r#"{{{open},"user":{{"external\u005fuser_id":"u\"1\\",{user}}},"properties":{{"campaign_name":"caf\u00e9 ☕ \ud83d\ude00","user_agent":"tab\there",{email}}}}}"#
            ),
            // `null` where text may be null, and a `null` wrapper.
            format!(r#"{{{open},{user},"user":null,"properties":{{"campaign_id":null,{email}}}}}"#),
            // A wrapper that is not an object is kept as an unknown field.
            format!(
                r#"{{{open},{user},{email},"user":"not an object","properties":[1,{{"a":2}}]}}"#
            ),
            // Whitespace everywhere JSON allows it, and wrappers nested.
            format!(
                "{{ {} , {email} , \"user\" : {{ \"user\" : {{ {user} }} }} }}",
                open.replace(',', " , ").replace(':', " : ")
            ),
        ];
        for text in &accepted {
            let fast = parse_fast(text.as_bytes())
                .unwrap_or_else(|| panic!("the fast path declined {text}"));
            let fast = owned(fast);
            assert!(fast.iter().all(Result::is_ok), "{text}: {fast:?}");
            assert_eq!(fast, owned(parse_slow(text.as_bytes())), "{text}");
        }
        let declined = [
            // A duplicate field, once at the top and once inside a wrapper.
            format!(r#"{{{open},{user},{email},"id":"e2"}}"#),
            format!(
                r#"{{{open},{user},{email},"properties":{{"campaign_id":"a","campaign_id":"b"}}}}"#
            ),
            // Text where a number or `null` is, `null` where text must be.
            format!(r#"{{{open},{user},{email},"properties":{{"campaign_id":5}}}}"#),
            format!(
                r#"{{"event_type":"users.messages.email.Open","id":null,"time":1,{user},{email}}}"#
            ),
            // A lone surrogate, a raw control character, a missing `time`.
            format!(r#"{{{open},{user},{email},"properties":{{"campaign_id":"\ud800"}}}}"#),
            format!("{{{open},{user},{email},\"properties\":{{\"campaign_id\":\"a\u{1}b\"}}}}"),
            format!(r#"{{"event_type":"users.messages.email.Open","id":"e1",{user},{email}}}"#),
            // Syntax: a trailing comma in a wrapper, a key that is not a string.
            format!(r#"{{{open},{user},{email},"user":{{"external_user_id":"u1",}}}}"#),
            format!(r#"{{{open},{user},{email},"user":{{1:"b1"}}}}"#),
        ];
        for text in &declined {
            let slow = owned(parse_slow(text.as_bytes()));
            assert!(slow.iter().all(Result::is_err), "{text}: {slow:?}");
            assert!(parse_fast(text.as_bytes()).is_none(), "{text}");
        }
    }
}
