use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use currents_events::sample::{Fill, sample_event};
use currents_events::{Codec, EVENT_TYPES, Event, to_flat_json, to_http_batch, write_avro};

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Directory to write the demo dataset into.
    #[arg(short, long, value_name = "DIR", default_value = "sample-data")]
    pub output: PathBuf,
}

/// Events of one type in the demo dataset: two complete ones and one with
/// only the required fields (so without an external user ID: it shows a skip).
fn events_of(info: &currents_events::EventTypeInfo) -> Vec<Event<'static>> {
    vec![
        sample_event(info, 1, Fill::All),
        sample_event(info, 2, Fill::Required),
        sample_event(info, 3, Fill::All),
    ]
}

pub fn run(args: SampleArgs, quiet: bool) -> Result<ExitCode> {
    let files = write_dataset(&args.output)?;
    if !quiet {
        eprintln!("wrote {files} file(s) to {}", args.output.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the dataset: Avro container files (one per type, as storage
/// connectors do), Custom HTTP batches, and NDJSON. Deterministic.
pub fn write_dataset(dir: &Path) -> Result<usize> {
    let create = |path: PathBuf| -> Result<BufWriter<File>> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        Ok(BufWriter::new(File::create(&path).with_context(|| {
            format!("cannot create {}", path.display())
        })?))
    };
    let mut files = 0;
    for info in EVENT_TYPES.iter().filter(|i| i.avro) {
        let out = create(dir.join("avro").join(format!("{}.avro", info.event_type)))?;
        let events = events_of(info);
        write_avro(out, info, &events, Codec::Deflate, 2)?.flush()?;
        files += 1;
    }
    // Custom HTTP posts at most 100 events per request.
    let http_events: Vec<Event> = EVENT_TYPES
        .iter()
        .map(|i| sample_event(i, 4, Fill::All))
        .collect();
    for (n, chunk) in http_events.chunks(50).enumerate() {
        let mut out = create(dir.join("http").join(format!("batch-{:03}.json", n + 1)))?;
        serde_json::to_writer_pretty(&mut out, &to_http_batch(chunk))?;
        out.write_all(b"\n")?;
        out.flush()?;
        files += 1;
    }
    let mut out = create(dir.join("ndjson").join("events.ndjson"))?;
    for info in EVENT_TYPES {
        out.write_all(to_flat_json(&sample_event(info, 5, Fill::All)).as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    files += 1;
    Ok(files)
}
