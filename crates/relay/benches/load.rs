//! `cargo xtask bench` runs this against the release `currents` binary:
//! several senders post 100-event batches to `currents serve` (the mock as
//! Mixpanel, discarding), and it reports acknowledged events/s, ack latency
//! (p50, p99) and delivered events/s.
//!
//! `load CURRENTS_BINARY [--senders N] [--seconds S]`, one JSON line on stdout.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mixpanel_mock::{MockConfig, MockServer};

const TOKEN: &str = "bench-relay-token";
const EVENTS_PER_POST: u64 = 100;

fn body(sender: u64, post: u64) -> Vec<u8> {
    let mut events = Vec::with_capacity(EVENTS_PER_POST as usize);
    for i in 0..EVENTS_PER_POST {
        let n = (sender << 40) | (post << 8) | i;
        events.push(format!(
            r#"{{"event_type":"users.messages.email.Open","id":"0b5a1c2e-aaaa-4bbb-8ccc-{n:012x}","time":1768435200,"user":{{"user_id":"5eed{n:020}","external_user_id":"user-{sender}-{i}","timezone":"Europe/Berlin"}},"properties":{{"campaign_id":"c-{post}","campaign_name":"Winter sale","message_variation_id":"mv-1","dispatch_id":"d-{post}","email_address":"user{i}@example.com","user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)","ip_pool":"pool-1","esp":"sendgrid","from_domain":"example.com","is_amp":false,"device_class":"mobile","device_os":"iOS","device_model":"iPhone16,2","mailbox_provider":"gmail","machine_open":"false"}}}}"#
        ));
    }
    format!(r#"{{"events":[{}]}}"#, events.join(",")).into_bytes()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args.next().expect("the currents binary");
    let (mut senders, mut seconds) = (8u64, 10u64);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--senders", Some(v)) => senders = v,
            ("--seconds", Some(v)) => seconds = v,
            _ => panic!("usage: load CURRENTS_BINARY [--senders N] [--seconds S]"),
        }
    }
    let mut mock = MockConfig::with_token("bench-token");
    mock.keep_events = false;
    let server = MockServer::start(mock).expect("mock");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(&binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--api-base", &server.base_url()])
        .env("CURRENTS_RELAY_TOKEN", TOKEN)
        .env("MIXPANEL_PROJECT_TOKEN", "bench-token")
        .stderr(Stdio::piped())
        .spawn()
        .expect("currents serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("listening line");
    let url = format!("http://{}", line.trim().trim_start_matches("listening on "));
    std::thread::spawn(move || for _ in stderr.lines() {});
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..senders)
        .map(|s| {
            let (url, stop) = (url.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .new_agent();
                let bodies: Vec<Vec<u8>> = (0..50).map(|p| body(s, p)).collect();
                let mut latencies = Vec::new();
                let mut post = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let ok = agent
                        .post(&format!("{url}/currents"))
                        .header("Authorization", &format!("Bearer {TOKEN}"))
                        .send(&bodies[post % bodies.len()][..])
                        .is_ok_and(|r| r.status().as_u16() == 200);
                    if ok {
                        latencies.push(sent.elapsed());
                    }
                    post += 1;
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    let sending = started.elapsed().as_secs_f64();
    latencies.sort();
    let acked = latencies.len() as u64 * EVENTS_PER_POST;
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    // Delivered: until the queue is empty.
    let agent = ureq::Agent::new_with_defaults();
    let queued = || -> f64 {
        let text = agent
            .get(&format!("{url}/metrics"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with("currents_queue_events "))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(f64::MAX)
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while queued() > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let delivering = started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "{{\"senders\":{senders},\"acknowledged_events\":{acked},\"acknowledged_per_s\":{:.0},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"delivered_per_s\":{:.0}}}",
        acked as f64 / sending,
        at(0.50),
        at(0.99),
        acked as f64 / delivering
    );
}
