//! `cargo xtask bench [--events N] [--quick] [--runs R] [--large] [--keep DIR]`:
//! end-to-end throughput of the release `currents` binary against the
//! serde_json floors, a generic `serde_json::Value` mapper and a Python
//! stdlib-json mapper, all run over the same generated inputs in one run.
//!
//! Inputs are `users.messages.email.Open` events (~1 KB each in the Custom
//! HTTP shape) written by the project's own generator (the `throughput`
//! bench binary of `currents-cli`). Each measurement runs in a child process;
//! wall time is the best of `--runs`, peak RSS is the child's `ru_maxrss`
//! (from `wait4`). `--large` also runs `map` over ~1 GB and ~5 GB inputs to
//! show that peak RSS does not grow with input size. The Avro files are also
//! read as bucket objects from a local S3-compatible server (the `test-s3`
//! binary: s3s-fs on loopback, whole GETs served by its own 256 KiB reads),
//! against the same files from disk; the server's own CPU is printed too.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The peer figures quoted in the issue (same machine class, 1M email Open).
const MIXPANEL_IMPORT_EPS: f64 = 8_700.0;
const PYTHON_QUOTED_EPS: f64 = 56_000.0;

/// The Braze mapping of email Open in Python, stdlib json only (what a
/// straightforward hand-written mapper looks like).
const PYTHON_MAPPER: &str = r#"
import json, re, sys
FIELDS = ["campaign_id", "campaign_name", "message_variation_id", "message_variation_name",
          "canvas_id", "canvas_name", "canvas_variation_id", "canvas_variation_name",
          "canvas_step_id", "canvas_step_name", "send_id", "dispatch_id", "email_address",
          "user_agent", "ip_pool", "esp", "from_domain", "is_amp", "app_group_id",
          "device_class", "device_os", "device_model", "browser", "mailbox_provider",
          "device_id", "machine_open"]
RENAME = {"device_model": "$device"}
INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
out = sys.stdout
n = 0
for line in sys.stdin.buffer:
    if not line.strip():
        continue
    e = json.loads(line)
    flat = dict(e)
    flat.update(flat.pop("user", None) or {})
    flat.update(flat.pop("properties", None) or {})
    uid = flat.get("external_user_id")
    if not uid:
        continue
    props = {"distinct_id": uid}
    eid = flat["id"]
    if INSERT_ID.match(eid):
        props["$insert_id"] = eid
    else:
        import hashlib
        props["$insert_id"] = hashlib.sha256(eid.encode()).hexdigest()[:32]
        props["braze_event_id"] = eid
    props["time"] = flat["time"]
    props["$partner_id"] = "braze"
    for f in FIELDS:
        v = flat.get(f)
        if v is not None:
            props[RENAME.get(f, f)] = v
    out.write(json.dumps({"event": "Email Open", "properties": props},
                         separators=(",", ":"), ensure_ascii=False))
    out.write("\n")
    n += 1
out.flush()
"#;

struct Options {
    events: u64,
    runs: usize,
    large: bool,
    keep: Option<PathBuf>,
}

fn parse(args: &[&str]) -> Result<Options> {
    let mut options = Options {
        events: 1_000_000,
        runs: 2,
        large: false,
        keep: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--quick" => {
                options.events = 100_000;
                options.runs = 3;
            }
            "--large" => options.large = true,
            "--events" => {
                options.events = args
                    .next()
                    .context("--events N")?
                    .replace('_', "")
                    .parse()?
            }
            "--runs" => options.runs = args.next().context("--runs R")?.parse()?,
            "--keep" => options.keep = Some(PathBuf::from(args.next().context("--keep DIR")?)),
            other => bail!("unknown bench option {other}"),
        }
    }
    options.runs = options.runs.max(1);
    Ok(options)
}

/// One measured child run.
#[derive(Clone, Copy)]
struct Run {
    secs: f64,
    /// User + system CPU time of the child.
    cpu_secs: f64,
    max_rss_kib: u64,
}

/// Runs `cmd` to completion, returning wall time and the child's peak RSS.
fn measure(cmd: &mut Command) -> Result<Run> {
    measure_allowing(cmd, &[0])
}

/// [`measure`], accepting the exit codes in `ok`.
fn measure_allowing(cmd: &mut Command, ok: &[i32]) -> Result<Run> {
    let started = Instant::now();
    let child = cmd.spawn().with_context(|| format!("cannot run {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child; both pointers are valid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = started.elapsed().as_secs_f64();
    std::mem::forget(child); // reaped by wait4
    if rc != pid {
        bail!("wait4 failed for {cmd:?}");
    }
    if !(libc::WIFEXITED(status) && ok.contains(&libc::WEXITSTATUS(status))) {
        bail!("{cmd:?} failed (status {status:#x})");
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Run {
        secs,
        cpu_secs: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

/// Best wall time of `runs`, highest peak RSS.
fn best(runs: usize, mut make: impl FnMut() -> Command) -> Result<Run> {
    let mut best = Run {
        secs: f64::INFINITY,
        cpu_secs: f64::INFINITY,
        max_rss_kib: 0,
    };
    for _ in 0..runs {
        let run = measure(&mut make())?;
        best.secs = best.secs.min(run.secs);
        best.cpu_secs = best.cpu_secs.min(run.cpu_secs);
        best.max_rss_kib = best.max_rss_kib.max(run.max_rss_kib);
    }
    Ok(best)
}

/// Best wall time of `copies` instances of `make` started together: what the
/// machine's cores give independent single-threaded processes.
fn best_together(runs: usize, copies: usize, mut make: impl FnMut() -> Command) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        let started = Instant::now();
        let children = (0..copies)
            .map(|_| {
                let mut cmd = make();
                cmd.spawn().with_context(|| format!("cannot run {cmd:?}"))
            })
            .collect::<Result<Vec<_>>>()?;
        for mut child in children {
            let status = child.wait()?;
            if !status.success() {
                bail!("a concurrent run failed ({status})");
            }
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the release binaries and the `throughput` helper; returns its path.
fn build(root: &Path) -> Result<PathBuf> {
    let status = cargo()
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "currents-cli",
            "-p",
            "mixpanel-mock",
            "-p",
            "test-s3",
            "--bins",
        ])
        .status()?;
    if !status.success() {
        bail!("cargo build failed");
    }
    helper(root, "currents-cli", "throughput")
}

/// Builds the bench target `bench` of `package` (a helper binary) and
/// returns its path.
fn helper(root: &Path, package: &str, bench: &str) -> Result<PathBuf> {
    let output = cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", package, "--bench", bench])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("cargo build of the {bench} helper failed");
    }
    for line in output.stdout.split(|&b| b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if message["target"]["name"] == bench
            && let Some(exe) = message["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("no executable for the {bench} helper in cargo's output")
}

/// The relay under load (the `load` helper of `currents-relay`): prints its
/// figures and the ratios to the goals.
fn relay(root: &Path, currents: &Path, seconds: u64) -> Result<()> {
    let load = helper(root, "currents-relay", "load")?;
    let output = Command::new(load)
        .arg(currents)
        .args(["--senders", "8", "--seconds", &seconds.to_string()])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let Ok(r) = serde_json::from_str::<serde_json::Value>(text.trim()) else {
        bail!(
            "relay load: {text} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    println!("\nrelay (currents serve, 8 senders posting 100-event batches, {seconds} s):");
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    println!(
        "  acknowledged:  {:>8.0} ev/s (target ≥ 50,000)   p50 {:.1} ms · p99 {:.1} ms (target < 50 ms)",
        f("acknowledged_per_s"),
        f("p50_ms"),
        f("p99_ms")
    );
    println!(
        "  delivered to the mock, until the queue was empty: {:>8.0} ev/s",
        f("delivered_per_s")
    );
    Ok(())
}

struct Row {
    name: String,
    events: u64,
    bytes: u64,
    run: Run,
}

impl Row {
    fn eps(&self) -> f64 {
        self.events as f64 / self.run.secs
    }
}

fn print_rows(rows: &[Row]) {
    println!(
        "\n{:<44} {:>10} {:>9} {:>8} {:>13} {:>13} {:>9} {:>10}",
        "benchmark", "events", "wall s", "CPU s", "events/s", "ev/CPU-s", "MB/s", "peak RSS"
    );
    for row in rows {
        println!(
            "{:<44} {:>10} {:>9.3} {:>8.3} {:>13.0} {:>13.0} {:>9.1} {:>7.1} MB",
            row.name,
            row.events,
            row.run.secs,
            row.run.cpu_secs,
            row.eps(),
            row.events as f64 / row.run.cpu_secs,
            row.bytes as f64 / 1e6 / row.run.secs,
            row.run.max_rss_kib as f64 / 1024.0
        );
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub fn run(root: &Path, args: &[&str]) -> Result<()> {
    let options = parse(args)?;
    let n = options.events;
    let helper = build(root)?;
    let bin = root.join("target/release");
    let dir = match &options.keep {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("currents-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let mut result = run_in(&options, &dir, &helper, &bin, n);
    if result.is_ok() {
        result = relay(
            root,
            &bin.join("currents"),
            if n < 1_000_000 { 5 } else { 10 },
        );
    }
    if options.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(options: &Options, dir: &Path, helper: &Path, bin: &Path, n: u64) -> Result<()> {
    let currents = &bin.join("currents");
    let mock = &bin.join("mixpanel-mock");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "machine: {cores} core(s), {cpu}; {n} events, best of {} run(s)",
        options.runs
    );

    let ndjson = dir.join("email-open.ndjson");
    let http = dir.join("email-open.http.ndjson");
    let avro = dir.join("email-open.avro");
    let escaped = dir.join("email-open.escaped.ndjson");
    let started = Instant::now();
    for (shape, path) in [
        ("ndjson", &ndjson),
        ("http", &http),
        ("avro", &avro),
        ("ndjson-escaped", &escaped),
    ] {
        if file_len(path) == 0 {
            let status = Command::new(helper)
                .args(["gen", shape])
                .arg(path)
                .arg(n.to_string())
                .status()?;
            if !status.success() {
                bail!("generating {shape} failed");
            }
        }
    }
    let size = file_len(&ndjson);
    let escaped_size = file_len(&escaped);
    println!(
        "inputs generated in {:.1}s: NDJSON {:.1} MB ({:.0} bytes/event), escape-heavy NDJSON {:.1} MB ({:.0} bytes/event), HTTP {:.1} MB, Avro (deflate) {:.1} MB",
        started.elapsed().as_secs_f64(),
        size as f64 / 1e6,
        size as f64 / n as f64,
        escaped_size as f64 / 1e6,
        escaped_size as f64 / n as f64,
        file_len(&http) as f64 / 1e6,
        file_len(&avro) as f64 / 1e6
    );
    let python = dir.join("mapper.py");
    std::fs::write(&python, PYTHON_MAPPER)?;

    let runs = options.runs;
    let null = || Stdio::null();
    let mut rows = Vec::new();
    let helper_on = |mode: &str, input: &Path| -> Result<Run> {
        best(runs, || {
            let mut cmd = Command::new(helper);
            cmd.arg(mode).arg(input).stdout(null());
            cmd
        })
    };
    let helper_run = |mode: &str| helper_on(mode, &ndjson);
    // `currents map` on `input`; `threads`: CURRENTS_THREADS (default: one per core).
    let map_command = |input: &Path, threads: Option<&str>| -> Command {
        let mut cmd = Command::new(currents);
        cmd.args(["--quiet", "map"])
            .arg(input)
            .args(["-o", "/dev/null"])
            .stdout(null());
        if let Some(threads) = threads {
            cmd.env("CURRENTS_THREADS", threads);
        }
        cmd
    };
    let map_with = |input: &Path, threads: Option<&str>| best(runs, || map_command(input, threads));
    let map = |input: &Path| map_with(input, None);
    let map_sequential = |input: &Path| map_with(input, Some("1"));

    let copy = helper_run("floor-copy")?;
    rows.push(Row {
        name: "floor: byte copy (read + write /dev/null)".into(),
        events: n,
        bytes: size,
        run: copy,
    });
    let sonic = helper_run("floor-sonic")?;
    rows.push(Row {
        name: "floor: sonic-rs Value parse + write".into(),
        events: n,
        bytes: size,
        run: sonic,
    });
    let ignored = helper_run("floor-ignored")?;
    rows.push(Row {
        name: "floor: serde_json parse → IgnoredAny".into(),
        events: n,
        bytes: size,
        run: ignored,
    });
    let value = helper_run("floor-value")?;
    rows.push(Row {
        name: "floor: serde_json Value parse + write".into(),
        events: n,
        bytes: size,
        run: value,
    });
    let generic = helper_run("generic-map")?;
    rows.push(Row {
        name: "baseline: generic serde_json::Value mapper".into(),
        events: n,
        bytes: size,
        run: generic,
    });
    let py = best(1, || {
        let mut cmd = Command::new("python3");
        cmd.arg(&python)
            .stdin(std::fs::File::open(&ndjson).map_or_else(|_| Stdio::null(), Stdio::from))
            .stdout(null());
        cmd
    })?;
    rows.push(Row {
        name: "baseline: Python stdlib-json mapper".into(),
        events: n,
        bytes: size,
        run: py,
    });
    let nd = map(&ndjson)?;
    rows.push(Row {
        name: "currents map: NDJSON → NDJSON".into(),
        events: n,
        bytes: size,
        run: nd,
    });
    let av = map(&avro)?;
    rows.push(Row {
        name: "currents map: Avro (deflate) → NDJSON".into(),
        events: n,
        bytes: file_len(&avro),
        run: av,
    });
    let ht = map(&http)?;
    rows.push(Row {
        name: "currents map: HTTP batches → NDJSON".into(),
        events: n,
        bytes: file_len(&http),
        run: ht,
    });
    // The same events as many 5000-event Avro files (the shape of a storage
    // connector's export), decoded a file per worker.
    let files = dir.join("avro-files");
    let per_file = 5000.min(n).max(1);
    let file_count = n / per_file;
    if !files.join(format!("part-{file_count:05}.avro")).exists() {
        std::fs::create_dir_all(&files)?;
        let one = files.join("part-00001.avro");
        let status = Command::new(helper)
            .args(["gen", "avro"])
            .arg(&one)
            .arg(per_file.to_string())
            .status()?;
        if !status.success() {
            bail!("generating avro files failed");
        }
        for i in 2..=file_count {
            std::fs::copy(&one, files.join(format!("part-{i:05}.avro")))?;
        }
    }
    let files_bytes = file_len(&files.join("part-00001.avro")) * file_count;
    let af = map(&files)?;
    rows.push(Row {
        name: format!("currents map: Avro, {file_count} files × {per_file}"),
        events: file_count * per_file,
        bytes: files_bytes,
        run: af,
    });
    // The same files as objects of a local S3-compatible server (s3s-fs on
    // loopback, the `test-s3` binary), under Braze's key layout.
    let s3 = map_from_s3(
        runs,
        dir,
        currents,
        &bin.join("test-s3"),
        &files,
        file_count,
    )?;
    rows.push(Row {
        name: "currents map: Avro from the local S3 server → NDJSON".into(),
        events: file_count * per_file,
        bytes: files_bytes,
        run: s3,
    });
    let af_sequential = map_sequential(&files)?;
    rows.push(Row {
        name: "currents map: Avro files, sequential (CURRENTS_THREADS=1)".into(),
        events: file_count * per_file,
        bytes: files_bytes,
        run: af_sequential,
    });
    let sequential = map_sequential(&ndjson)?;
    // The most `cores` workers can give on this machine: as many independent
    // one-worker runs at once, against one alone.
    let together = best_together(runs, cores, || map_command(&ndjson, Some("1")))?;
    let ceiling = cores as f64 * sequential.secs / together;
    rows.push(Row {
        name: "currents map: NDJSON, sequential (CURRENTS_THREADS=1)".into(),
        events: n,
        bytes: size,
        run: sequential,
    });
    let av_sequential = map_sequential(&avro)?;
    rows.push(Row {
        name: "currents map: Avro one file, sequential".into(),
        events: n,
        bytes: file_len(&avro),
        run: av_sequential,
    });
    let ht_sequential = map_sequential(&http)?;
    rows.push(Row {
        name: "currents map: HTTP batches, sequential".into(),
        events: n,
        bytes: file_len(&http),
        run: ht_sequential,
    });
    // The escape-heavy, non-ASCII variant: its own floors and one worker.
    let esc_copy = helper_on("floor-copy", &escaped)?;
    rows.push(Row {
        name: "escaped: floor byte copy".into(),
        events: n,
        bytes: escaped_size,
        run: esc_copy,
    });
    let esc_sonic = helper_on("floor-sonic", &escaped)?;
    rows.push(Row {
        name: "escaped: floor sonic-rs Value parse + write".into(),
        events: n,
        bytes: escaped_size,
        run: esc_sonic,
    });
    let esc_value = helper_on("floor-value", &escaped)?;
    rows.push(Row {
        name: "escaped: floor serde_json Value parse + write".into(),
        events: n,
        bytes: escaped_size,
        run: esc_value,
    });
    let esc_sequential = map_sequential(&escaped)?;
    rows.push(Row {
        name: "escaped: currents map, sequential".into(),
        events: n,
        bytes: escaped_size,
        run: esc_sequential,
    });
    let export = export(runs, dir, currents, mock, &ndjson)?;
    rows.push(Row {
        name: "currents export → loopback mock (gzip)".into(),
        events: n,
        bytes: size,
        run: export,
    });

    if options.large {
        for (label, copies) in [("~1 GB", 1u64), ("~5 GB", 5u64)] {
            let big = dir.join(format!("big-{copies}.ndjson"));
            let per_copy = (1_000_000_000 / size.max(1)).max(1);
            {
                let mut out = std::io::BufWriter::new(std::fs::File::create(&big)?);
                for _ in 0..copies * per_copy {
                    std::io::copy(&mut std::fs::File::open(&ndjson)?, &mut out)?;
                }
                out.flush()?;
            }
            let events = n * copies * per_copy;
            let run = measure(
                Command::new(currents)
                    .args(["--quiet", "map"])
                    .arg(&big)
                    .args(["-o", "/dev/null"]),
            );
            let bytes = file_len(&big);
            let _ = std::fs::remove_file(&big);
            rows.push(Row {
                name: format!("currents map: NDJSON {label} input"),
                events,
                bytes,
                run: run?,
            });
        }
    }

    print_rows(&rows);
    let eps = |r: &Run| n as f64 / r.secs;
    println!("\nratios (same run):");
    println!(
        "  map NDJSON vs mixpanel-import (quoted 8,700 ev/s): {:>8.1}×  (target ≥ 100×)",
        eps(&nd) / MIXPANEL_IMPORT_EPS
    );
    println!(
        "  map NDJSON vs Python mapper (measured):           {:>8.1}×  (target ≥ 10×)",
        eps(&nd) / eps(&py)
    );
    println!(
        "  map NDJSON vs Python mapper (quoted 56,000 ev/s): {:>8.1}×",
        eps(&nd) / PYTHON_QUOTED_EPS
    );
    println!(
        "  map NDJSON time / IgnoredAny parse floor:         {:>8.2}×  (target ≤ 2×, stretch 1.5×)",
        nd.secs / ignored.secs
    );
    println!(
        "  map NDJSON time / Value round-trip floor:         {:>8.2}×",
        nd.secs / value.secs
    );
    println!(
        "  map NDJSON vs generic Value mapper:               {:>8.1}×",
        eps(&nd) / eps(&generic)
    );
    println!(
        "  map NDJSON parallel (all cores) vs sequential:    {:>8.2}×",
        sequential.secs / nd.secs
    );
    println!(
        "  Avro → NDJSON per core (per CPU-second):          {:>8.0} ev/s (target ≥ 1,000,000)",
        n as f64 / av.cpu_secs
    );
    println!(
        "  Avro files, a file per worker vs sequential:      {:>8.2}×",
        af_sequential.secs / af.secs
    );
    println!(
        "  Avro files from the local S3 server vs from disk: {:>8.2}×  (target ≥ 0.8×)",
        af.secs / s3.secs
    );
    println!(
        "  export end to end:                                {:>8.0} ev/s",
        eps(&export)
    );
    println!("\ntargets of issues #16 and #14 (CPU seconds, same run):");
    let target = |label: &str, value: f64, unit: &str, goal: &str, met: bool| {
        println!(
            "  {label:<58} {value:>9.3}{unit:<9} {goal:<16} {}",
            if met { "met" } else { "NOT met" }
        );
    };
    for (label, map, copy, sonic) in [
        ("NDJSON", &sequential, &copy, &sonic),
        (
            "escape-heavy NDJSON",
            &esc_sequential,
            &esc_copy,
            &esc_sonic,
        ),
    ] {
        let r = map.cpu_secs / copy.cpu_secs;
        target(
            &format!("{label}, 1 worker: CPU / byte-copy floor CPU"),
            r,
            "×",
            "≤ 2.0×",
            r <= 2.0,
        );
        let r = map.cpu_secs / sonic.cpu_secs;
        target(
            &format!("{label}, 1 worker: CPU / sonic-rs Value round trip CPU"),
            r,
            "×",
            "≤ 1.0×",
            r <= 1.0,
        );
        println!(
            "      ({:.3} µs CPU/event; floors {:.3} and {:.3} µs)",
            map.cpu_secs / n as f64 * 1e6,
            copy.cpu_secs / n as f64 * 1e6,
            sonic.cpu_secs / n as f64 * 1e6
        );
    }
    let r = ht.cpu_secs / nd.cpu_secs;
    target(
        "HTTP batches CPU / NDJSON CPU (default workers)",
        r,
        "×",
        "≤ 1.2×",
        r <= 1.2,
    );
    let r = ht_sequential.cpu_secs / sequential.cpu_secs;
    target(
        "HTTP batches CPU / NDJSON CPU (1 worker)",
        r,
        "×",
        "≤ 1.2×",
        r <= 1.2,
    );
    let r = n as f64 / av.cpu_secs;
    target(
        "Avro → NDJSON one file, events per CPU-second",
        r / 1e6,
        "M ev/s",
        "≥ 1.0 M",
        r >= 1e6,
    );
    let r = export.cpu_secs / n as f64 * 1e6;
    target(
        "export: currents CPU per event (mock discards)",
        r,
        " µs",
        "≤ 2 µs",
        r <= 2.0,
    );
    let r = export.max_rss_kib as f64 / 1024.0;
    target("export: peak RSS", r, " MB", "< 64 MB", r < 64.0);
    // Issue #14's bucket row.
    let r = af.secs / s3.secs;
    target(
        "Avro from the local S3 server vs from disk (wall)",
        r,
        "×",
        "≥ 0.8×",
        r >= 0.8,
    );
    let r = s3.max_rss_kib as f64 / 1024.0;
    target(
        "Avro from the local S3 server: peak RSS",
        r,
        " MB",
        "< 64 MB",
        r < 64.0,
    );
    println!(
        "  machine ceiling: {cores} one-worker runs at once vs one alone: {ceiling:.2}× \
         the work per second ({together:.3} s for {cores}, {:.3} s for one)",
        sequential.secs
    );
    for (label, one, two) in [
        ("NDJSON one file", &sequential, &nd),
        ("Avro one file", &av_sequential, &av),
        ("HTTP batches", &ht_sequential, &ht),
    ] {
        let r = one.secs / two.secs;
        target(
            &format!("{label}: {cores} workers vs 1 worker (wall)"),
            r,
            "×",
            "≥ 1.8×",
            r >= 1.8,
        );
    }
    let peak = rows
        .iter()
        .filter(|r| r.name.starts_with("currents"))
        .map(|r| r.run.max_rss_kib)
        .max()
        .unwrap_or(0);
    println!(
        "  peak RSS of any currents run:                     {:>8.1} MB (target < 64 MB)",
        peak as f64 / 1024.0
    );
    Ok(())
}

/// `currents map s3://bench/currents` with the Avro `files` served by the
/// `test-s3` binary (hard links under Braze's key layout, so nothing is
/// copied).
fn map_from_s3(
    runs: usize,
    dir: &Path,
    currents: &Path,
    server: &Path,
    files: &Path,
    count: u64,
) -> Result<Run> {
    let root = dir.join("s3-root");
    let prefix = root.join("bench/currents/dataexport.prod-01.S3.integration.b/event_type=users.messages.email.Open/date=2025-04-01-17/1712000000/us-east-1");
    std::fs::create_dir_all(&prefix)?;
    for i in 1..=count {
        let to = prefix.join(format!("dataexport.prod-01.S3.integration.b+0+{i}.avro"));
        if !to.exists() {
            let from = files.join(format!("part-{i:05}.avro"));
            std::fs::hard_link(&from, &to).or_else(|_| std::fs::copy(&from, &to).map(|_| ()))?;
        }
    }
    let mut child = Command::new(server)
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start test-s3")?;
    let mut port = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut port)?;
    }
    let endpoint = format!("http://127.0.0.1:{}", port.trim());
    let server_cpu_before = process_cpu_secs(child.id());
    let run = best(runs, || {
        let mut cmd = Command::new(currents);
        cmd.args(["--quiet", "map", "s3://bench/currents", "-o", "/dev/null"])
            .env("AWS_ACCESS_KEY_ID", "test-s3-access-key")
            .env("AWS_SECRET_ACCESS_KEY", "test-s3-SECRET-2b7e1516")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL_S3")
            .stdout(Stdio::null());
        cmd
    });
    // The server shares the cores with `currents`: say what it took.
    if let (Some(before), Some(after)) = (server_cpu_before, process_cpu_secs(child.id())) {
        println!(
            "  (test-s3 server: {:.3} CPU s per run, not counted in the row's CPU)",
            (after - before) / runs as f64
        );
    }
    drop(child.stdin.take()); // test-s3 exits when its stdin closes
    let _ = child.wait();
    run
}

/// User + system CPU seconds of a running process, all its threads
/// (`/proc/PID/stat` fields 14 and 15, in the kernel's fixed 100 Hz ticks).
fn process_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// `currents export` to the loopback mock (started fresh for each run).
fn export(runs: usize, dir: &Path, currents: &Path, mock: &Path, input: &Path) -> Result<Run> {
    let mut best_run: Option<Run> = None;
    for _ in 0..runs {
        let mut server = Command::new(mock)
            .env("MOCK_TOKEN", "bench-token")
            .env("MOCK_DISCARD", "1")
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start mixpanel-mock")?;
        let mut port = String::new();
        if let Some(out) = server.stdout.take() {
            BufReader::new(out).read_line(&mut port)?;
        }
        let port = port.trim().to_owned();
        let dead_letter = dir.join("dead-letter.ndjson");
        let _ = std::fs::remove_file(&dead_letter);
        let summary = dir.join("export-summary.json");
        let run = measure_allowing(
            Command::new(currents)
                .args(["--quiet", "export"])
                .arg(input)
                .args(["--api-base", &format!("http://127.0.0.1:{port}")])
                .args(["--token", "bench-token"])
                // The exporter's own speed: Mixpanel's per-project rate cap
                // (the default, ~33 MB/s) would make this row measure it.
                .args(["--max-rate", "0"])
                .arg("--dead-letter")
                .arg(&dead_letter)
                .arg("--summary-json")
                .arg(&summary)
                .env_remove("MIXPANEL_PROJECT_ID")
                .env_remove("MIXPANEL_SERVICE_ACCOUNT_USERNAME")
                .env_remove("MIXPANEL_SERVICE_ACCOUNT_SECRET")
                .stdout(Stdio::null()),
            // 3: finished, but something was rejected or dead-lettered.
            &[0, 3],
        );
        if let Ok(text) = std::fs::read_to_string(&summary)
            && let Ok(s) = serde_json::from_str::<serde_json::Value>(&text)
        {
            println!(
                "export: imported {} · rejected {} · dead-lettered {} {}",
                s["imported"], s["rejected"], s["dead_lettered"], s["dead_lettered_reasons"]
            );
        }
        let _ = server.kill();
        let _ = server.wait();
        let run = run?;
        if best_run.is_none_or(|b| run.secs < b.secs) {
            best_run = Some(Run {
                max_rss_kib: run.max_rss_kib.max(best_run.map_or(0, |b| b.max_rss_kib)),
                ..run
            });
        }
    }
    best_run.context("no export run")
}
