//! Files → Mixpanel's `/import`, resuming from a checkpoint, with a dead
//! letter for every record that does not get there. Credentials from the
//! environment (`MIXPANEL_PROJECT_TOKEN`, or a service account).
//!
//! `cargo run -p currents-pipeline --example files_to_import -- exports/`

use currents_mixpanel::{ApiBase, ClientConfig, Credentials, ExportConfig};
use currents_pipeline::{DeadLetter, ImportSink, Pipeline, PipelineOptions, Sources};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let mut client = ClientConfig::new(Credentials::from_env()?);
    if let Ok(base) = std::env::var("MIXPANEL_API_BASE") {
        client.api_base = Some(ApiBase::parse(&base)?); // a test server
    }
    let mut sink = ImportSink::new(ExportConfig::new(client));
    let report = Pipeline::new(PipelineOptions::default())
        .checkpoint("export.checkpoint.json")
        .dead_letter(DeadLetter::append("dead-letter.ndjson".as_ref())?)
        .run(&Sources::from_paths(&paths)?, &mut sink)?; // Err: why it stopped
    println!("{}", report.to_json());
    Ok(())
}
