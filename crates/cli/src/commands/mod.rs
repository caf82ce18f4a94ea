pub mod export;
pub mod map;
pub mod sample;
pub mod schema;
pub mod validate;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use currents_events::decode::{DecodeOptions, Format, UnknownTypes};
use currents_mixpanel::{HashKey, MapOptions, PiiPolicy, Profile, Validator};

use crate::pipeline::{Emit, Pipeline};
use crate::summary::Summary;
use crate::{FormatArg, MapOpts, PiiArg, ProfileArg, UnknownTypesArg};

impl MapOpts {
    pub fn pipeline(&self, quiet: bool, emit: Emit) -> Result<Pipeline> {
        let pii = match self.pii {
            PiiArg::Keep => PiiPolicy::Keep,
            PiiArg::Drop => PiiPolicy::Drop,
            PiiArg::Hash => {
                let key = match (&self.pii_key_file, &self.pii_key) {
                    (Some(path), _) => std::fs::read(path).with_context(|| {
                        format!("cannot read the PII key file {}", path.display())
                    })?,
                    (None, Some(key)) => key.clone().into_bytes(),
                    (None, None) => bail!(
                        "--pii hash needs a key: set CURRENTS_PII_KEY or pass --pii-key-file FILE"
                    ),
                };
                let key: Vec<u8> = key.trim_ascii().to_vec();
                if key.is_empty() {
                    bail!("the PII hash key is empty");
                }
                PiiPolicy::Hash(HashKey::new(key))
            }
        };
        Ok(Pipeline {
            decode: DecodeOptions {
                format: match self.format {
                    FormatArg::Auto => None,
                    FormatArg::Avro => Some(Format::Avro),
                    FormatArg::Ndjson => Some(Format::Ndjson),
                    FormatArg::Http => Some(Format::HttpJson),
                },
                unknown_types: UnknownTypes::Map,
                max_record_bytes: self.max_record_mib.saturating_mul(1024 * 1024),
            },
            map: MapOptions {
                profile: match self.profile {
                    ProfileArg::Braze => Profile::Braze,
                    ProfileArg::Full => Profile::Full,
                },
                token: self.token.clone(),
                pii,
            },
            quiet,
            emit,
            skip_unknown_types: self.unknown_types == UnknownTypesArg::Skip,
        })
    }
}

/// Prints the summary, writes `--summary-json`, and picks the exit code.
pub fn finish(
    mut summary: Summary,
    started: Instant,
    opts: &MapOpts,
    quiet: bool,
    delivered: bool,
) -> Result<ExitCode> {
    summary.set_elapsed(started.elapsed());
    if !quiet {
        eprint!("{}", summary.render(delivered));
    }
    if let Some(path) = &opts.summary_json {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write the summary to {}", path.display()))?;
    }
    Ok(if summary.has_failures() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Pre-validation against Mixpanel's `/import` rules.
pub fn validator() -> Validator {
    Validator::default()
}
