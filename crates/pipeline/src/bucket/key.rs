//! Braze's object keys: what a key says about its object (see [`CurrentsKey`]).

use std::fmt;
use std::str::FromStr;

use super::BucketError;

/// An hour in UTC: the `date=YYYY-MM-DD-HH` of a key, the hours of
/// `--since` / `--until`. Ordered; shown as `YYYY-MM-DD-HH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour {
    /// Hours since 1970-01-01T00Z.
    since_epoch: i64,
}

impl Hour {
    /// The hour `year-month-day hour:00` UTC, when it exists.
    pub fn new(year: i32, month: u32, day: u32, hour: u32) -> Option<Self> {
        let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
        let time = date.and_hms_opt(hour, 0, 0)?;
        Some(Self::from_timestamp(time.and_utc().timestamp()))
    }

    /// The hour holding the Unix time `seconds`.
    pub fn from_timestamp(seconds: i64) -> Self {
        Hour {
            since_epoch: seconds.div_euclid(3600),
        }
    }

    /// Its first second, as Unix time.
    pub fn timestamp(&self) -> i64 {
        self.since_epoch * 3600
    }

    /// Parses Braze's `YYYY-MM-DD-HH` only.
    fn parse_key(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 13
            || [4, 7, 10].iter().any(|&i| bytes[i] != b'-')
            || !text
                .char_indices()
                .all(|(i, c)| [4, 7, 10].contains(&i) || c.is_ascii_digit())
        {
            return None;
        }
        let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
        let year = i32::try_from(number(0..4)?).ok()?;
        Hour::new(year, number(5..7)?, number(8..10)?, number(11..13)?)
    }
}

/// `YYYY-MM-DD-HH`, or an RFC 3339 date-time truncated to its hour in UTC
/// (`2025-04-01T17:30:00+02:00` is the hour `2025-04-01-15`).
impl FromStr for Hour {
    type Err = BucketError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Some(hour) = Hour::parse_key(text) {
            return Ok(hour);
        }
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Hour::from_timestamp(t.timestamp()))
            .map_err(|_| BucketError::BadHour(text.to_owned()))
    }
}

impl fmt::Display for Hour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.timestamp(), 0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%d-%H")),
            None => write!(f, "hour {}", self.since_epoch),
        }
    }
}

/// The folders between `date=` and the file, which tell the two layouts
/// Braze documents apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// `…/date=<hour>/<schema id>/<zone>/<file>`.
    Schema { schema_id: String, zone: String },
    /// `…/date=<hour>/version=<n>/<environment>/<file>`.
    Version {
        version: String,
        environment: String,
    },
}

/// What a Currents object key says: connector, event type, hour, layout,
/// and the file's partition and offset.
///
/// Both of Braze's layouts are read, wherever they sit under the prefix:
///
/// ```text
/// …/event_type=<event type>/date=<YYYY-MM-DD-HH>/<schema id>/<zone>/<file>
/// …/event_type=<event type>/date=<YYYY-MM-DD-HH>/version=<n>/<environment>/<file>
/// <file> = dataexport.<cluster>.<connector>.integration.<integration id>+<partition>+<offset>.avro
/// ```
///
/// (the folder above `event_type=` is `dataexport.<cluster>.<connector>.integration.<id>`;
/// what it says is in the file name too, so it is not required).
///
/// ```
/// use currents_pipeline::bucket::{CurrentsKey, Layout};
/// let key = CurrentsKey::parse(
///     "currents/dataexport.prod-03.S3.integration.5f2a/event_type=users.messages.email.Open\
///      /date=2025-04-01-17/version=6/us-01/dataexport.prod-03.S3.integration.5f2a+0+123456.avro",
/// )
/// .unwrap();
/// assert_eq!(key.event_type, "users.messages.email.Open");
/// assert_eq!(key.connector, "S3");
/// assert_eq!(key.hour.to_string(), "2025-04-01-17");
/// assert_eq!((key.partition, key.offset), (0, 123456));
/// assert!(matches!(key.layout, Layout::Version { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurrentsKey {
    pub event_type: String,
    pub hour: Hour,
    pub layout: Layout,
    /// `S3`, `GCS`, `AzureBlob` …, from the file name.
    pub connector: String,
    /// `prod-01` …
    pub cluster: String,
    pub integration_id: String,
    pub partition: u64,
    /// Not zero-padded in the name: lexical order is not numeric order.
    pub offset: u64,
}

impl CurrentsKey {
    /// Parses a key (the whole key or the part under a prefix); `None`
    /// when it is not a Currents data file.
    pub fn parse(key: &str) -> Option<Self> {
        let segments: Vec<&str> = key.split('/').collect();
        let at = segments
            .iter()
            .rposition(|s| s.starts_with("event_type="))?;
        // event_type=, date=, two folders, the file: nothing more, nothing less.
        let [event_type, date, first, second, file] = segments.get(at..)? else {
            return None;
        };
        let event_type = event_type.strip_prefix("event_type=")?;
        let hour = Hour::parse_key(date.strip_prefix("date=")?)?;
        if event_type.is_empty() || first.is_empty() || second.is_empty() {
            return None;
        }
        let layout = match first.strip_prefix("version=") {
            Some(version) if !version.is_empty() => Layout::Version {
                version: version.to_owned(),
                environment: (*second).to_owned(),
            },
            Some(_) => return None,
            None => Layout::Schema {
                schema_id: (*first).to_owned(),
                zone: (*second).to_owned(),
            },
        };
        let stem = file.strip_suffix(".avro")?;
        let mut parts = stem.rsplitn(3, '+');
        let offset = parts.next()?.parse().ok()?;
        let partition = parts.next()?.parse().ok()?;
        let name = parts.next()?;
        let rest = name.strip_prefix("dataexport.")?;
        let (cluster, rest) = rest.split_once('.')?;
        let (connector, integration_id) = rest.split_once(".integration.")?;
        if cluster.is_empty() || connector.is_empty() || integration_id.is_empty() {
            return None;
        }
        Some(CurrentsKey {
            event_type: event_type.to_owned(),
            hour,
            layout,
            connector: connector.to_owned(),
            cluster: cluster.to_owned(),
            integration_id: integration_id.to_owned(),
            partition,
            offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "currents/dataexport.prod-01.GCS.integration.abc/event_type=users.behaviors.CustomEvent/date=2024-02-29-23/1709251200/us-east-1/dataexport.prod-01.GCS.integration.abc+12+7.avro";

    #[test]
    fn both_layouts() {
        let key = CurrentsKey::parse(SCHEMA).unwrap();
        assert_eq!(key.event_type, "users.behaviors.CustomEvent");
        assert_eq!(key.connector, "GCS");
        assert_eq!(key.cluster, "prod-01");
        assert_eq!(key.integration_id, "abc");
        assert_eq!(key.hour, Hour::new(2024, 2, 29, 23).unwrap());
        assert_eq!((key.partition, key.offset), (12, 7));
        assert_eq!(
            key.layout,
            Layout::Schema {
                schema_id: "1709251200".into(),
                zone: "us-east-1".into()
            }
        );
        let versioned = "x/y/dataexport.prod-02.AzureBlob.integration.9/event_type=users.messages.email.Send/date=2025-04-01-17/version=6/us-01/dataexport.prod-02.AzureBlob.integration.9+0+123456.avro";
        let key = CurrentsKey::parse(versioned).unwrap();
        assert_eq!(key.connector, "AzureBlob");
        assert_eq!(
            key.layout,
            Layout::Version {
                version: "6".into(),
                environment: "us-01".into()
            }
        );
    }

    #[test]
    fn other_keys_are_not_currents_keys() {
        for key in [
            "currents/README.txt",
            "currents/_SUCCESS",
            "currents/event_type=a/date=2025-04-01-17/x/y/notes.txt",
            "currents/event_type=a/date=2025-04-01/x/y/dataexport.p.S3.integration.1+0+1.avro",
            "currents/event_type=a/date=2025-02-30-01/x/y/dataexport.p.S3.integration.1+0+1.avro",
            "currents/event_type=a/date=2025-04-01-17/y/dataexport.p.S3.integration.1+0+1.avro",
            "currents/event_type=a/date=2025-04-01-17/x/y/z/dataexport.p.S3.integration.1+0+1.avro",
            "currents/event_type=a/date=2025-04-01-17/x/y/dataexport.p.S3.integration.1+0+x.avro",
            "currents/event_type=a/date=2025-04-01-17/version=/y/dataexport.p.S3.integration.1+0+1.avro",
            "currents/event_type=/date=2025-04-01-17/x/y/dataexport.p.S3.integration.1+0+1.avro",
            "currents/event_type=a/date=2025-04-01-17/x/y/other.p.S3.integration.1+0+1.avro",
        ] {
            assert_eq!(CurrentsKey::parse(key), None, "{key}");
        }
    }

    #[test]
    fn hours_parse_and_show() {
        let hour: Hour = "2025-04-01-17".parse().unwrap();
        assert_eq!(hour.to_string(), "2025-04-01-17");
        assert_eq!("2025-04-01T17:59:59Z".parse::<Hour>().unwrap(), hour);
        assert_eq!("2025-04-01T19:30:00+02:00".parse::<Hour>().unwrap(), hour);
        assert!("2025-04-01-24".parse::<Hour>().is_err());
        assert!("yesterday".parse::<Hour>().is_err());
        assert!(Hour::new(1969, 12, 31, 23).unwrap() < Hour::new(1970, 1, 1, 0).unwrap());
    }
}
