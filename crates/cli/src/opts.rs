//! Flags shared by the commands, and how they become library options.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use currents_events::decode::{DecodeOptions, Format};
use currents_mixpanel::{
    ApiBase, BatchLimits, BodyFormat, ClientConfig, Credentials, ExportConfig, Identity,
    MapOptions, PiiAction, PiiPolicy, Profile, Region, UnknownFieldPolicy,
};
use currents_pipeline::bucket::{Glob, Hour, Inputs, Select, Shard, State};
use currents_pipeline::{PipelineOptions, UnknownTypes};

use crate::Usage;

/// A flag's values and the library value each one stands for.
macro_rules! value_enum {
    ($name:ident => $target:ty { $($variant:ident => $value:expr),* $(,)? }) => {
        #[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($variant),* }
        impl From<$name> for $target {
            fn from(value: $name) -> $target {
                match value { $($name::$variant => $value),* }
            }
        }
    };
}

value_enum!(FormatArg => Option<Format> { Auto => None, Avro => Some(Format::Avro), Ndjson => Some(Format::Ndjson), Http => Some(Format::HttpJson) });
value_enum!(ProfileArg => Profile { Braze => Profile::Braze, Full => Profile::Full });
value_enum!(IdentityArg => Identity { Braze => Identity::Braze, Simplified => Identity::Simplified });
value_enum!(UnknownTypesArg => UnknownTypes { Map => UnknownTypes::Map, Skip => UnknownTypes::Skip });
value_enum!(PiiArg => PiiAction { Keep => PiiAction::Keep, Drop => PiiAction::Drop, Hash => PiiAction::Hash });
value_enum!(KeepHash => PiiAction { Keep => PiiAction::Keep, Hash => PiiAction::Hash });
value_enum!(KeepDrop => UnknownFieldPolicy { Keep => UnknownFieldPolicy::Keep, Drop => UnknownFieldPolicy::Drop });
value_enum!(RegionArg => Region { Us => Region::Us, Eu => Region::Eu, In => Region::India });

/// What the events look like: shared by the commands that map and `lexicon`.
#[derive(Args, Clone, Debug)]
pub struct MappingOpts {
    /// `braze` reproduces Braze's Mixpanel connector (exactly its documented
    /// properties); `full` keeps every field.
    #[arg(long, value_enum, default_value_t = ProfileArg::Braze)]
    pub profile: ProfileArg,
    /// `braze`: distinct_id from external_user_id, events without one skipped.
    /// `simplified`: Mixpanel's Simplified ID Merge ($user_id, $device_id;
    /// anonymous device events sent). See --help.
    #[arg(long, value_enum, default_value_t = IdentityArg::Braze)]
    pub identity: IdentityArg,
    /// Fields the schema marks as PII (e-mail addresses, phone numbers, the
    /// Braze user id …): sent as they are, dropped, or replaced by a keyed
    /// HMAC-SHA256 (key: CURRENTS_PII_KEY or CURRENTS_PII_KEY_FILE, ≥ 16 bytes).
    #[arg(long, value_enum, default_value_t = PiiArg::Keep)]
    pub pii: PiiArg,
    /// The user id (distinct_id, $user_id): kept, or hashed with the PII key.
    /// Default: hash with --pii hash, keep otherwise.
    #[arg(long, value_enum)]
    pub pii_user_id: Option<KeepHash>,
    /// File holding the key for hashing (instead of CURRENTS_PII_KEY).
    #[arg(long, value_name = "FILE")]
    pub pii_key_file: Option<PathBuf>,
}

impl MappingOpts {
    /// The mapping options these flags ask for (the PII key from
    /// CURRENTS_PII_KEY, CURRENTS_PII_KEY_FILE or --pii-key-file).
    pub fn map_options(&self) -> Result<MapOptions> {
        let (properties, user_id) = self.pii_actions();
        let pii = PiiPolicy::from_env(properties, user_id, self.pii_key_file.as_deref())
            .map_err(|e| Usage(e.to_string()))?;
        Ok(MapOptions::default()
            .with_profile(self.profile.into())
            .with_identity(self.identity.into())
            .with_pii(pii))
    }

    /// What happens to PII properties and to the user id.
    pub fn pii_actions(&self) -> (PiiAction, PiiAction) {
        let properties = PiiAction::from(self.pii);
        let user_id = self.pii_user_id.map(Into::into);
        (properties, user_id.unwrap_or(properties.for_user_id()))
    }
}

/// Options of the commands that read and map events.
#[derive(Args, Clone, Debug)]
pub struct MapOpts {
    /// Input files or directories (walked recursively), bucket URLs
    /// (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX; every
    /// key listed, credentials from each cloud's usual AWS_*, GOOGLE_*,
    /// AZURE_* variables, see the README), or `-` for standard input.
    #[arg(value_name = "INPUT", default_value = "-")]
    pub inputs: Vec<PathBuf>,
    /// Input format; `auto` detects it from the content.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    #[command(flatten)]
    pub mapping: MappingOpts,
    /// Fields the schema does not know: sent (`keep`) or only counted
    /// (`drop`). Default: drop with --profile braze, keep with full.
    #[arg(long, value_enum)]
    pub unknown_fields: Option<KeepDrop>,
    /// Mixpanel project token, written as the `token` property.
    #[arg(long, env = "MIXPANEL_PROJECT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Events of types the schema does not know: map them by the naming convention, or skip them.
    #[arg(long, value_enum, default_value_t = UnknownTypesArg::Map)]
    pub unknown_types: UnknownTypesArg,
    /// Largest record (NDJSON line, HTTP event, Avro block) accepted, in MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub max_record_mib: usize,
    /// Write the run summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    #[command(flatten)]
    pub bucket: BucketOpts,
}

/// What to take from bucket inputs (keys filtered by name, never opened).
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Bucket inputs")]
pub struct BucketOpts {
    /// Bucket state directory: objects done (same size and ETag) are skipped,
    /// each object is recorded once all its records are settled. One run at a time.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Objects of this hour (the key's date=) and later: YYYY-MM-DD-HH, or
    /// an RFC 3339 date-time (its UTC hour).
    #[arg(long, value_name = "HOUR", value_parser = |s: &str| s.parse::<Hour>())]
    pub since: Option<Hour>,
    /// Objects before this hour (exclusive), as --since.
    #[arg(long, value_name = "HOUR", value_parser = |s: &str| s.parse::<Hour>())]
    pub until: Option<Hour>,
    /// Event types to read (glob, repeatable), e.g. 'users.messages.email.*'.
    #[arg(long, value_name = "GLOB")]
    pub event_type: Vec<String>,
    /// Read only shard K of N (FNV-1a of the key mod N): N runners, 0/N to
    /// N-1/N, read every object once.
    #[arg(long, value_name = "K/N", value_parser = |s: &str| s.parse::<Shard>())]
    pub shard: Option<Shard>,
    /// Keep running: list again every SECONDS, read what is new. SIGTERM or
    /// SIGINT finishes the objects in hand, then exits.
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<u64>,
}

impl MapOpts {
    /// The inputs, with the bucket selection and state; with a state or a
    /// watch, SIGTERM/SIGINT finish the objects in hand (a second stops at
    /// the next chunk, a third at once).
    pub fn inputs(&self) -> Result<Inputs> {
        let b = &self.bucket;
        let mut select = Select::default();
        (select.since, select.until, select.shard) = (b.since, b.until, b.shard);
        select.event_types = b.event_type.iter().map(|g| Glob::new(g)).collect();
        let mut inputs = Inputs::new(&self.inputs)?.with_select(select);
        if let Some(dir) = &b.state {
            inputs = inputs.with_state(State::open(dir)?);
        }
        if let Some(seconds) = b.watch {
            inputs = inputs.with_watch(Duration::from_secs(seconds));
        }
        if b.state.is_some() || b.watch.is_some() {
            inputs.cancel_token().stop_on_signals()?;
        }
        Ok(inputs)
    }

    /// The pipeline options these flags ask for (threads: CURRENTS_THREADS,
    /// else one per core).
    pub fn pipeline(&self) -> Result<PipelineOptions> {
        let unknown_fields = self.unknown_fields.map(Into::into);
        let mut options = PipelineOptions::default();
        options.map = self
            .mapping
            .map_options()?
            .with_unknown_fields(unknown_fields.unwrap_or(UnknownFieldPolicy::ByProfile));
        options.map.token = self.token.clone();
        options.decode = DecodeOptions::default()
            .with_format(self.format.into())
            .with_max_record_bytes(self.max_record_mib.saturating_mul(1024 * 1024));
        options.unknown_types = self.unknown_types.into();
        let threads = std::env::var("CURRENTS_THREADS").ok();
        options.threads = threads.and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(options)
    }
}

/// Where and how to deliver (export, replay, lexicon --push).
#[derive(Args, Clone, Debug)]
pub struct DeliveryOpts {
    /// Mixpanel project ID (with service-account credentials).
    #[arg(long, env = "MIXPANEL_PROJECT_ID", hide_env_values = true)]
    pub project_id: Option<String>,
    /// Data residency of the project.
    #[arg(long, value_enum, default_value_t = RegionArg::Us)]
    pub region: RegionArg,
    /// Send to this http(s) base URL instead of the region's (e.g. a test server).
    #[arg(long, value_name = "URL", value_parser = |s: &str| ApiBase::parse(s))]
    pub api_base: Option<ApiBase>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Most events per request (Mixpanel allows 2000).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u16).range(1..=2000))]
    pub batch_events: u16,
    /// Most uncompressed bytes per request (Mixpanel allows 10 MB).
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub batch_bytes: u64,
    /// Send request bodies uncompressed (default: gzip).
    #[arg(long)]
    pub no_gzip: bool,
    /// Send a JSON array instead of NDJSON.
    #[arg(long)]
    pub json_array: bool,
    /// Seconds one request may take before it is retried.
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,
    /// Let Mixpanel geolocate events from the sending IP (off by default:
    /// every event would be placed where currents runs).
    #[arg(long)]
    pub geolocate: bool,
    /// Most uncompressed MB sent per minute (Mixpanel's per-project limit
    /// is about 2,000); 0: no cap.
    #[arg(long, default_value_t = 2000, value_name = "MB")]
    pub max_rate: u64,
    /// Attempts per batch before it is dead-lettered.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// Retry delays in ms (tests): first, most, jitter from, jitter to.
    #[arg(long, hide = true, num_args = 4, default_values_t = [2000, 60_000, 1000, 5000])]
    pub retry_ms: Vec<u64>,
}

impl DeliveryOpts {
    /// Credentials from the environment (`--project-id` standing in for
    /// `MIXPANEL_PROJECT_ID`); with none there, a `--token` authenticates.
    pub fn credentials(&self, token: Option<&str>) -> Result<Credentials> {
        Ok(Credentials::from_env_or(self.project_id.as_deref(), token)?)
    }

    pub fn export_config(&self, credentials: Credentials) -> ExportConfig {
        let mut client = ClientConfig::new(credentials);
        client.region = self.region.into();
        client.api_base = self.api_base.clone();
        client.timeout = Duration::from_secs(self.request_timeout);
        client.geolocate = self.geolocate;
        let mut config = ExportConfig::new(client);
        config.concurrency = usize::from(self.concurrency);
        config.batch = BatchLimits::new(usize::from(self.batch_events), self.batch_bytes as usize);
        config.format = match self.json_array {
            true => BodyFormat::JsonArray,
            false => BodyFormat::Ndjson,
        };
        config.gzip = !self.no_gzip;
        config.max_bytes_per_minute = Some(self.max_rate * 1_000_000).filter(|&n| n > 0);
        if let Ok(delays) = <[u64; 4]>::try_from(&self.retry_ms[..]) {
            let [base, max, from, to] = delays.map(Duration::from_millis);
            let retry = &mut config.retry;
            (retry.base_delay, retry.max_delay) = (base, max);
            (retry.jitter_min, retry.jitter_max) = (from, to.max(from));
        }
        config.retry.max_attempts = self.max_attempts;
        config
    }
}

/// Opens `path` for writing now, so a bad location fails before anything runs.
pub fn create(path: &std::path::Path) -> Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
}
