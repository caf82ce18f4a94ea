//! Lexicon, Mixpanel's data dictionary, from the glossary: every event the
//! mappers produce with its description and each property's type and
//! description, PII marked. [`entries`] builds the Lexicon Schemas API body;
//! [`push`] sends it within the API's limits, merging (never truncating).
//!
//! ```
//! use currents_mixpanel::lexicon::{LexiconOptions, entries};
//! let lexicon = entries(&LexiconOptions::default());
//! let open = lexicon.entries.iter().find(|e| e.name == "Email Open").unwrap();
//! assert_eq!(open.schema_json["properties"]["email_address"]["type"], "string");
//! ```
//!
//! Event names that depend on the data (`[Braze Custom Event] <name>`) have
//! no entry: Lexicon has no wildcard names ([`Lexicon::dynamic`] lists them).
//! Properties named by the data (`[Custom event property] …`,
//! `[Purchase property] …`) are described by their prefix in the event's
//! description.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use currents_events::{EVENT_TYPES, EventTypeInfo, FieldType};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::client::{ApiBase, Credentials, Region, agent, percent_encode, transport_error};
use crate::map::{Identity, Profile};
use crate::pii::PiiAction;
use crate::{EventMapping, PARTNER_ID, event_mapping};

/// What the dictionary describes: the events as this mapping writes them.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LexiconOptions {
    pub profile: Profile,
    pub identity: Identity,
    /// What happens to PII properties (dropped ones are left out, hashed
    /// ones say so) and to the user id, as in [`PiiPolicy`](crate::PiiPolicy).
    pub pii: PiiAction,
    pub pii_user_id: PiiAction,
}

impl LexiconOptions {
    /// The dictionary of events mapped with this profile and identity, and
    /// these actions for the PII properties and the user id.
    pub fn new(
        profile: Profile,
        identity: Identity,
        (pii, pii_user_id): (PiiAction, PiiAction),
    ) -> Self {
        LexiconOptions {
            profile,
            identity,
            pii,
            pii_user_id,
        }
    }
}

/// One entry of the Schemas API body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    #[serde(rename = "entityType")]
    pub entity_type: &'static str,
    pub name: String,
    #[serde(rename = "schemaJson")]
    pub schema_json: Value,
}

impl Entry {
    /// Entities the entry updates: the event and each of its properties.
    pub fn entities(&self) -> usize {
        1 + self.schema_json["properties"]
            .as_object()
            .map_or(0, Map::len)
    }
}

/// The whole dictionary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lexicon {
    pub entries: Vec<Entry>,
    /// Event names templated on the data, which get no entry.
    #[serde(skip)]
    pub dynamic: Vec<String>,
}

/// `42 event(s), 900 entities; no entry for names set by the data: …`
impl std::fmt::Display for Lexicon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entities: usize = self.entries.iter().map(Entry::entities).sum();
        write!(
            f,
            "{} event(s), {entities} entities; no entry for names set by the data: {}",
            self.entries.len(),
            self.dynamic.join(", ")
        )
    }
}

impl Lexicon {
    /// The body of one `POST /projects/{id}/schemas` (merging).
    pub fn body(entries: &[Entry]) -> Value {
        json!({"entries": entries, "truncate": false})
    }
}

/// The JSON type Lexicon shows for a field.
fn json_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "string",
        FieldType::Int | FieldType::Long => "integer",
        FieldType::Float => "number",
        FieldType::Boolean => "boolean",
        _ => "array",
    }
}

fn property(ty: &str, description: String) -> Value {
    json!({"type": ty, "description": description})
}

/// Builds the dictionary for `options`.
pub fn entries(options: &LexiconOptions) -> Lexicon {
    let mut lexicon = Lexicon {
        entries: Vec::new(),
        dynamic: Vec::new(),
    };
    for info in EVENT_TYPES {
        let Some(mapping) = event_mapping(info.event_type) else {
            continue;
        };
        // Types without a user id are never sent.
        if !mapping
            .fields
            .iter()
            .any(|f| f.braze == Some("distinct_id"))
        {
            continue;
        }
        if mapping.mixpanel_name.contains('{') {
            lexicon.dynamic.push(mapping.mixpanel_name.to_owned());
            continue;
        }
        lexicon.entries.push(entry(info, mapping, options));
    }
    lexicon
}

fn entry(info: &EventTypeInfo, mapping: &EventMapping, options: &LexiconOptions) -> Entry {
    let mut properties = Map::new();
    let user_id_hashed = options.pii_user_id == PiiAction::Hash;
    let user = if user_id_hashed {
        "The user: HMAC-SHA256 of Braze's external_user_id"
    } else {
        "The user: Braze's external_user_id"
    };
    properties.insert("distinct_id".into(), property("string", user.into()));
    properties.insert(
        "$insert_id".into(),
        property(
            "string",
            "Dedupe key: the Braze event id (hashed when Mixpanel would refuse it)".into(),
        ),
    );
    properties.insert(
        "time".into(),
        property("integer", "When the event happened (UNIX seconds)".into()),
    );
    properties.insert(
        "$partner_id".into(),
        property("string", format!("Marks events from Braze ({PARTNER_ID})")),
    );
    if options.identity == Identity::Simplified {
        properties.insert("$user_id".into(), property("string", user.into()));
        properties.insert(
            "$device_id".into(),
            property("string", "Braze's device_id".into()),
        );
    }
    let mut prefixes = Vec::new();
    for (field, map) in info.fields.iter().zip(mapping.fields) {
        if let Some(prefix) = map.expand {
            prefixes.push(format!("`{prefix}<key>` for each key of `{}`", field.name));
            continue;
        }
        let name = match options.profile {
            Profile::Full => map.full,
            _ => map.braze,
        };
        let Some(name) = name else { continue };
        if properties.contains_key(name) {
            continue;
        }
        let action = if field.pii {
            options.pii
        } else {
            PiiAction::Keep
        };
        let (ty, description) = match action {
            PiiAction::Drop => continue,
            PiiAction::Hash => (
                "string",
                format!("[PII, hashed: HMAC-SHA256] {}", field.doc),
            ),
            _ if field.pii => (json_type(field.ty), format!("[PII] {}", field.doc)),
            _ => (json_type(field.ty), field.doc.to_owned()),
        };
        properties.insert(name.to_owned(), property(ty, description));
    }
    let mut description = format!("{}.", info.doc.trim().trim_end_matches('.'));
    if !prefixes.is_empty() {
        description.push_str(&format!(
            " Properties named by the data: {}.",
            prefixes.join("; ")
        ));
    }
    description.push_str(&format!(" (Braze Currents `{}`)", info.event_type));
    let tags: Vec<&str> = ["Braze", info.category]
        .into_iter()
        .chain(info.channel)
        .collect();
    Entry {
        entity_type: "event",
        name: mapping.mixpanel_name.to_owned(),
        schema_json: json!({
            "description": description,
            "properties": properties,
            "metadata": {"com.mixpanel": {"$source": "currents", "tags": tags}},
        }),
    }
}

/// Where and how to push.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushConfig {
    /// A service account (Lexicon takes no project token).
    pub credentials: Credentials,
    pub region: Region,
    /// Overrides the region's app host.
    pub api_base: Option<ApiBase>,
    /// The API's limits: requests and entities per `window`.
    pub max_requests: usize,
    pub max_entities: usize,
    pub window: Duration,
    pub timeout: Duration,
}

impl PushConfig {
    /// Pushes where and as `client` sends (its credentials, region, API
    /// base and timeout).
    pub fn for_client(client: crate::ClientConfig) -> Self {
        PushConfig {
            region: client.region,
            api_base: client.api_base,
            timeout: client.timeout,
            ..Self::new(client.credentials)
        }
    }

    pub fn new(credentials: Credentials) -> Self {
        PushConfig {
            credentials,
            region: Region::Us,
            api_base: None,
            max_requests: 5,
            max_entities: 4000,
            window: Duration::from_secs(60),
            timeout: Duration::from_secs(120),
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PushReport {
    pub requests: u64,
    pub entries: u64,
    pub added: u64,
    pub deleted: u64,
    /// Time spent waiting for the limits.
    pub waited_ms: u64,
}

/// `pushed 42 entries in 1 request(s): 42 added (0 s waiting for the limits)`
impl std::fmt::Display for PushReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pushed {} entries in {} request(s): {} added ({} s waiting for the limits)",
            self.entries,
            self.requests,
            self.added,
            self.waited_ms / 1000
        )
    }
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    #[error(
        "Lexicon needs a service account (MIXPANEL_SERVICE_ACCOUNT_USERNAME, _SECRET and MIXPANEL_PROJECT_ID), not a project token"
    )]
    NeedsServiceAccount,
    #[error("Lexicon request failed: {0}")]
    Transport(String),
    #[error("Lexicon refused the upload (HTTP {status}): {body}")]
    Refused { status: u16, body: String },
}

/// Sends `entries` in requests of at most `max_entities` entities, never
/// more requests or entities per window than the API allows, waiting
/// instead (and on a 429, as long as `Retry-After` asks).
pub fn push(entries: &[Entry], config: &PushConfig) -> Result<PushReport, PushError> {
    let Credentials::ServiceAccount { project_id, .. } = &config.credentials else {
        return Err(PushError::NeedsServiceAccount);
    };
    let base = config
        .api_base
        .as_ref()
        .map_or(config.region.app_base(), ApiBase::as_str);
    let url = format!(
        "{base}/api/app/projects/{}/schemas",
        percent_encode(project_id)
    );
    let agent = agent(config.timeout);
    let authorization = config.credentials.authorization();
    let mut report = PushReport::default();
    let mut window: VecDeque<(Instant, usize)> = VecDeque::new();
    for chunk in chunks(entries, config.max_entities) {
        let entities: usize = chunk.iter().map(Entry::entities).sum();
        let body = serde_json::to_vec(&Lexicon::body(chunk)).unwrap_or_default();
        loop {
            let waited = wait_for_room(&mut window, entities, config);
            report.waited_ms += waited.as_millis() as u64;
            window.push_back((Instant::now(), entities));
            report.requests += 1;
            let mut response = agent
                .post(&url)
                .header("Authorization", authorization.expose())
                .header("Content-Type", "application/json")
                .send(&body[..])
                .map_err(|e| PushError::Transport(transport_error(e).to_string()))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let text = response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .unwrap_or_default();
            match status {
                200 => {
                    let value: Value = serde_json::from_str(&text).unwrap_or_default();
                    report.added += value["results"]["added"].as_u64().unwrap_or(0);
                    report.deleted += value["results"]["deleted"].as_u64().unwrap_or(0);
                    report.entries += chunk.len() as u64;
                    break;
                }
                429 => {
                    // Someone else used the organisation's budget: wait a window.
                    let wait = retry_after.map_or(config.window, Duration::from_secs);
                    report.waited_ms += wait.as_millis() as u64;
                    std::thread::sleep(wait.min(Duration::from_secs(600)));
                }
                status => {
                    return Err(PushError::Refused {
                        status,
                        body: text.chars().take(500).collect(),
                    });
                }
            }
        }
    }
    Ok(report)
}

/// Consecutive entries of at most `max` entities (one entry alone may be more).
fn chunks(entries: &[Entry], max: usize) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let (mut start, mut entities) = (0, 0);
    for (i, entry) in entries.iter().enumerate() {
        let n = entry.entities();
        if i > start && entities + n > max {
            out.push(&entries[start..i]);
            (start, entities) = (i, 0);
        }
        entities += n;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// Sleeps until one more request of `entities` fits the window.
fn wait_for_room(
    window: &mut VecDeque<(Instant, usize)>,
    entities: usize,
    config: &PushConfig,
) -> Duration {
    let started = Instant::now();
    loop {
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= config.window)
        {
            window.pop_front();
        }
        let used: usize = window.iter().map(|(_, n)| n).sum();
        let fits = window.len() < config.max_requests
            && (window.is_empty() || used + entities <= config.max_entities);
        match window.front() {
            Some((oldest, _)) if !fits => {
                std::thread::sleep(config.window.saturating_sub(now.duration_since(*oldest)));
            }
            _ => return started.elapsed(),
        }
    }
}
