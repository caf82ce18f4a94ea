//! `cargo test --release -p currents-pipeline --test throughput -- --ignored --nocapture`:
//! events/s of the whole delivery path against the loopback mock.

mod common;

use std::time::Instant;

use common::*;

#[test]
#[ignore = "measurement, run in release"]
fn throughput_against_mock() {
    let events = inputs(400);
    for (gzip, concurrency) in [(true, 10), (false, 10), (true, 4)] {
        let server = mock();
        let dead = SharedBuf::default();
        let mut config = config(&server);
        config.batch.max_events = 2000;
        config.concurrency = concurrency;
        config.gzip = gzip;
        let started = Instant::now();
        let run = run(config, &dead, &events);
        let elapsed = started.elapsed();
        check_complete(&run, &dead, &server);
        let report = run.report();
        let delivery = run.delivery();
        eprintln!(
            "gzip={gzip} concurrency={concurrency}: {} events read, {} imported in {:.2?} = {:.0} events/s, {:.1} MB/s uncompressed, {} requests",
            report.read,
            report.imported,
            elapsed,
            report.read as f64 / elapsed.as_secs_f64(),
            delivery.bytes_sent as f64 / 1e6 / elapsed.as_secs_f64(),
            delivery.requests
        );
    }
}
