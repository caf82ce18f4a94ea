//! Avro / Custom HTTP / NDJSON files → Mixpanel NDJSON on stdout, the way
//! Braze's connector maps them, with every record accounted for on stderr.
//!
//! `cargo run -p currents-pipeline --example files_to_ndjson -- sample-data`

use std::io::{BufWriter, stdout};

use currents_pipeline::{NdjsonSink, Pipeline, PipelineOptions, Sources};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let sources = Sources::from_paths(&paths)?; // directories are walked
    let mut sink = NdjsonSink::new(BufWriter::new(stdout().lock()));
    let report = Pipeline::new(PipelineOptions::default()).run(&sources, &mut sink)?;
    eprintln!(
        "read {}, mapped {}, skipped {:?}, rejected {:?}",
        report.read, report.mapped, report.skipped, report.rejected
    );
    Ok(())
}
