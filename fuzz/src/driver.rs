//! A small fuzzing driver for the stable toolchain (no sanitizers, no
//! coverage): replays the seed and saved corpora, then mutates inputs for a
//! fixed time, keeping inputs whose behaviour signature is new.
//!
//! ```text
//! fuzz_avro [--seconds N] [--seed N] [--max-len BYTES] [--timeout SECS] [--rss-mb MB] [FILE...]
//! ```
//!
//! With FILEs, only those are run (to reproduce a crash). Panics are saved to
//! `fuzz/artifacts/<target>/crash-<hash>`, inputs slower than `--timeout`
//! (default 10 s) to `timeout-<hash>` and inputs that push the resident set
//! over `--rss-mb` (default 2048) to `oom-<hash>`; the latter two end the run.
//! New inputs go to `fuzz/corpus/<target>/` (not committed); seeds are read
//! from `fuzz/seeds/<target>/`.

use std::collections::HashSet;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FUZZ_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Tokens worth inserting: JSON syntax, Avro varints, odd numbers and text.
const DICT: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b":",
    b",",
    b"\n",
    b"\r\n",
    b" ",
    b"\xef\xbb\xbf",
    b"\"event_type\"",
    b"\"events\"",
    b"\"properties\"",
    b"\"user\"",
    b"\"id\"",
    b"\"time\"",
    b"\"external_user_id\"",
    b"\"users.behaviors.CustomEvent\"",
    b"\"x.Unknown\"",
    b"null",
    b"true",
    b"1e400",
    b"-0",
    b"18446744073709551616",
    b"1099511627776",
    b"-9223372036854775809",
    b"0.5",
    b"\"\\ud800\"",
    b"\"\\u0000\"",
    b"\"\xff\xfe\"",
    b"{\"a\":{\"b\":[[[1]]]}}",
    b"\x00",
    b"\x01",
    b"\x02",
    b"\x7f",
    b"\x80\x01",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80",
    b"Obj\x01",
    b"\x1f\x8b",
    b"avro.codec",
    b"avro.schema",
    b"deflate",
    b"snappy",
    b"zstandard",
    b"null",
    b"{\"code\":400,\"failed_records\":[{\"index\":0,\"$insert_id\":\"a\"}]}",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>], max_len: usize) {
    let rounds = 1 + rng.below(6);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                input[i] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'}', b'\n'][rng.below(10)];
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let n = 1 + rng.below((len - start).min(64));
                input.drain(start..start + n);
            }
            4 => {
                let at = rng.below(len + 1);
                let token = DICT[rng.below(DICT.len())];
                input.splice(at..at, token.iter().copied());
            }
            5 if len > 0 => {
                // Duplicate a chunk (repeats blocks, records, keys).
                let start = rng.below(len);
                let n = 1 + rng.below((len - start).min(256));
                let chunk = input[start..start + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            6 if len > 0 => {
                input.truncate(rng.below(len));
            }
            7 if !corpus.is_empty() => {
                // Splice: our head, another input's tail.
                let other = &corpus[rng.below(corpus.len())];
                let at = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            8 if len > 0 => {
                // An ASCII digit run changed (numbers in JSON).
                let i = rng.below(len);
                if input[i].is_ascii_digit() {
                    let digits = b"0123456789";
                    for _ in 0..1 + rng.below(12) {
                        input.insert(i, digits[rng.below(10)]);
                    }
                } else {
                    input[i] = input[i].wrapping_add(1 + rng.below(3) as u8);
                }
            }
            9 if len > 0 => {
                // Repeat one byte many times (long strings, deep nesting).
                let i = rng.below(len);
                let b = input[i];
                let n = 1 + rng.below(400);
                input.splice(i..i, std::iter::repeat_n(b, n));
            }
            10 if len >= 2 => {
                // Swap two bytes.
                let (a, b) = (rng.below(len), rng.below(len));
                input.swap(a, b);
            }
            _ => {
                let at = rng.below(len + 1);
                input.insert(at, rng.next() as u8);
            }
        }
    }
    input.truncate(max_len);
}

fn read_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if let Ok(data) = fs::read(&path) {
                out.push((path, data));
            }
        }
    }
    out
}

fn rss_mb() -> u64 {
    let Ok(statm) = fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096 / (1024 * 1024)
}

struct Args {
    seconds: u64,
    seed: u64,
    max_len: usize,
    timeout: u64,
    rss_mb: u64,
    files: Vec<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        seconds: 60,
        seed: 0,
        max_len: 64 * 1024,
        timeout: 10,
        rss_mb: 2048,
        files: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--seconds" => args.seconds = num("--seconds"),
            "--seed" => args.seed = num("--seed"),
            "--max-len" => args.max_len = num("--max-len") as usize,
            "--timeout" => args.timeout = num("--timeout"),
            "--rss-mb" => args.rss_mb = num("--rss-mb"),
            _ => args.files.push(PathBuf::from(arg)),
        }
    }
    if args.seed == 0 {
        args.seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
    }
    args
}

/// Runs `target` per the command line (see the module docs).
pub fn main(name: &str, target: fn(&[u8]) -> u64) {
    let args = parse_args();
    let artifacts = Path::new(FUZZ_DIR).join("artifacts").join(name);
    let corpus_dir = Path::new(FUZZ_DIR).join("corpus").join(name);
    let seeds_dir = Path::new(FUZZ_DIR).join("seeds").join(name);

    // Panics are reported once per input, not printed by the default hook.
    let last_panic: Arc<Mutex<String>> = Arc::default();
    {
        let last_panic = last_panic.clone();
        panic::set_hook(Box::new(move |info| {
            let bt = std::backtrace::Backtrace::force_capture();
            *last_panic.lock().unwrap_or_else(|e| e.into_inner()) = format!("{info}\n{bt}");
        }));
    }
    let run = |data: &[u8]| -> Result<u64, String> {
        panic::catch_unwind(AssertUnwindSafe(|| target(data)))
            .map_err(|_| last_panic.lock().unwrap_or_else(|e| e.into_inner()).clone())
    };

    if !args.files.is_empty() {
        let mut failed = false;
        for file in &args.files {
            let data = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let started = Instant::now();
            match run(&data) {
                Ok(sig) => eprintln!(
                    "{}: ok ({} bytes, signature {sig:016x}, {:?})",
                    file.display(),
                    data.len(),
                    started.elapsed()
                ),
                Err(message) => {
                    failed = true;
                    eprintln!("{}: PANIC\n{message}", file.display());
                }
            }
        }
        std::process::exit(i32::from(failed));
    }

    // Watchdog: slow inputs and memory blow-ups end the run with an artifact.
    let current: Arc<Mutex<Vec<u8>>> = Arc::default();
    let started_ms = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    {
        let (current, started_ms, artifacts) =
            (current.clone(), started_ms.clone(), artifacts.clone());
        let (timeout, rss_limit) = (args.timeout * 1000, args.rss_mb);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let start = started_ms.load(Ordering::SeqCst);
                let now = t0.elapsed().as_millis() as u64;
                let slow = start > 0 && now.saturating_sub(start) > timeout;
                let rss = rss_mb();
                if slow || rss > rss_limit {
                    let data = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let kind = if slow { "timeout" } else { "oom" };
                    let _ = fs::create_dir_all(&artifacts);
                    let path = artifacts.join(format!("{kind}-{:016x}", fnv(&data)));
                    let _ = fs::write(&path, &data);
                    eprintln!(
                        "{kind}: input of {} bytes ({} ms, rss {rss} MB) saved to {}",
                        data.len(),
                        now.saturating_sub(start),
                        path.display()
                    );
                    std::process::exit(70);
                }
            }
        });
    }

    let mut rng = Rng(args.seed);
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut crashes: HashSet<u64> = HashSet::new();
    let mut execs: u64 = 0;
    let exec_one = |data: &[u8], execs: &mut u64| -> Result<u64, String> {
        current.lock().unwrap_or_else(|e| e.into_inner()).clear();
        current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(data);
        started_ms.store(t0.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
        let result = run(data);
        started_ms.store(0, Ordering::SeqCst);
        *execs += 1;
        result
    };
    let save_crash = |data: &[u8], message: &str, crashes: &mut HashSet<u64>| {
        // One artifact per panic location (first line of the message).
        let first = message.lines().next().unwrap_or_default();
        if crashes.insert(fnv(first.as_bytes())) {
            let _ = fs::create_dir_all(&artifacts);
            let path = artifacts.join(format!("crash-{:016x}", fnv(data)));
            let _ = fs::write(&path, data);
            eprintln!("CRASH saved to {}:\n{message}", path.display());
        }
    };

    let mut replayed = 0;
    for (path, data) in read_dir(&seeds_dir)
        .into_iter()
        .chain(read_dir(&corpus_dir))
    {
        replayed += 1;
        match exec_one(&data, &mut execs) {
            Ok(sig) => {
                seen.insert(sig);
            }
            Err(message) => {
                eprintln!("replay {}: panic", path.display());
                save_crash(&data, &message, &mut crashes);
            }
        }
        corpus.push(data);
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    eprintln!(
        "{name}: replayed {replayed} inputs ({} signatures); fuzzing for {} s, seed {}",
        seen.len(),
        args.seconds,
        args.seed
    );

    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut last_report = Instant::now();
    let mut input = Vec::new();
    while Instant::now() < deadline {
        input.clear();
        input.extend_from_slice(&corpus[rng.below(corpus.len())]);
        mutate(&mut rng, &mut input, &corpus, args.max_len);
        match exec_one(&input, &mut execs) {
            Ok(sig) => {
                if seen.insert(sig) && corpus.len() < 20_000 {
                    let _ = fs::create_dir_all(&corpus_dir);
                    let _ = fs::write(corpus_dir.join(format!("{:016x}", fnv(&input))), &input);
                    corpus.push(input.clone());
                }
            }
            Err(message) => save_crash(&input, &message, &mut crashes),
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            eprintln!(
                "{name}: {execs} execs ({:.0}/s), corpus {}, crashes {}, rss {} MB",
                execs as f64 / t0.elapsed().as_secs_f64(),
                corpus.len(),
                crashes.len(),
                rss_mb()
            );
        }
    }
    eprintln!(
        "{name}: done: {execs} execs in {:.0} s, corpus {}, {} distinct crashes",
        t0.elapsed().as_secs_f64(),
        corpus.len(),
        crashes.len()
    );
    std::process::exit(i32::from(!crashes.is_empty()));
}
