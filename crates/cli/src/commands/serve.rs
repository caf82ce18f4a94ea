use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use currents_relay::{Relay, RelayConfig};

use crate::Usage;
use crate::opts::{DeliveryOpts, MappingOpts};
use crate::output::eprint;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (put TLS in a reverse proxy in front).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the durable queue and the dead letter (one process at a time).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Posts above this size (decompressed) are answered 413.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub max_body_mib: usize,
    /// Posts are answered 429 (Retry-After) while the queue holds this much.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub queue_budget_mib: u64,
    #[command(flatten)]
    pub mapping: MappingOpts,
    #[command(flatten)]
    pub delivery: DeliveryOpts,
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let token = currents_relay::token_from_env().map_err(|e| Usage(e.to_string()))?;
    let credentials = args.delivery.credentials(None)?;
    let mut export = args.delivery.export_config(credentials);
    // What is not delivered stays queued (the disk budget is the limit), so
    // retries go on until Mixpanel answers.
    export.retry.max_attempts = u32::MAX;
    let mut config = RelayConfig::new(args.listen, args.data_dir, token, export);
    config.max_body_bytes = args.max_body_mib << 20;
    config.queue_budget_bytes = args.queue_budget_mib << 20;
    config.pipeline.map = args.mapping.map_options()?;
    let relay = Relay::bind(config).context("cannot start the relay")?;
    if let Some(addr) = relay.local_addr() {
        eprint(&format!("listening on {addr}\n"));
    }
    relay.run_until_signal()?;
    Ok(ExitCode::SUCCESS)
}
