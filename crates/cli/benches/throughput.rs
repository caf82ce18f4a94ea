//! The helper binary behind `cargo xtask bench`: generates the large inputs
//! with the project's own sample generator and runs the in-process baselines
//! (serde_json floors and a generic `serde_json::Value` mapper) over them.
//!
//! ```text
//! throughput gen ndjson|http|avro OUT N     write N email Open events (~1 KB each)
//! throughput gen ndjson-escaped OUT N       the NDJSON with non-ASCII text, quotes and
//!                                           backslashes; every other line written as
//!                                           ASCII-only writers do (`\uXXXX`, `\/`)
//! throughput floor-copy FILE                read the file and write it to /dev/null
//! throughput floor-ignored FILE             parse every line into IgnoredAny
//! throughput floor-value FILE               parse every line into Value and write it back
//! throughput floor-sonic FILE               the same with sonic-rs's Value
//! throughput generic-map FILE               the Braze mapping through serde_json::Value
//! ```
//!
//! Each timing command prints one line `events seconds` on stdout.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use currents_events::sample::{Fill, sample_fields};
use currents_events::{Codec, Event, event_type_info, to_http_batch, to_http_json};
use serde_json::{Map, Value};

const EMAIL_OPEN: &str = "users.messages.email.Open";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.as_slice() {
        ["gen", shape, out, n] => generate(shape, out, n.parse().context("N")?),
        ["floor-copy", file] => timed(file, floor_copy),
        ["floor-ignored", file] => timed(file, floor_ignored),
        ["floor-sonic", file] => timed(file, floor_sonic),
        ["floor-value", file] => timed(file, floor_value),
        ["generic-map", file] => timed(file, generic_map),
        [] => Ok(()), // `cargo bench` without arguments: nothing to do
        _ => bail!("usage: see the module docs of crates/cli/benches/throughput.rs"),
    }
}

/// Email Open number `n` with realistic sizes (~1 KB in the Custom HTTP shape,
/// like Braze's exports): UUID-shaped ids, real user agents and names.
pub fn email_open(n: u64) -> Event<'static> {
    email_open_with(n, false)
}

/// Email Open number `n`; `escaped`: names and agents carry non-ASCII text,
/// quotes and backslashes (as real campaign names and user agents do).
pub fn email_open_with(n: u64, escaped: bool) -> Event<'static> {
    let info = event_type_info(EMAIL_OPEN).expect("known type");
    let mut fields = sample_fields(info, n, Fill::All);
    let uuid = |salt: u64| {
        let x = (n % 5000).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            x >> 32,
            (x >> 16) & 0xffff,
            x & 0xfff,
            (x >> 40) & 0xfff,
            x & 0xffff_ffff_ffff
        )
    };
    const AGENTS: [&str; 3] = [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    ];
    let k = (n % 3) as usize;
    let mut set = |name: &str, value: String| {
        fields.insert(name.to_owned(), Value::String(value));
    };
    set("campaign_id", uuid(1));
    set(
        "campaign_name",
        if escaped {
            format!("Soldes d'hiver 2026 – «Réactivation» vague {} ❄️", n % 13)
        } else {
            format!("Winter Sale 2026 - Reactivation wave {}", n % 13)
        },
    );
    set("message_variation_id", uuid(2));
    set("message_variation_name", format!("Variant {}", n % 4));
    set("canvas_id", uuid(3));
    set(
        "canvas_name",
        if escaped {
            format!("Parcours \"Bienvenue\" (EU\\DE, v{}) – 冬のセール", n % 7)
        } else {
            format!("Onboarding journey (EU, v{})", n % 7)
        },
    );
    set("canvas_variation_id", uuid(4));
    set("canvas_variation_name", format!("Control group {}", n % 2));
    set("canvas_step_id", uuid(5));
    set(
        "canvas_step_name",
        if escaped {
            format!("Tag {} – Produkttipps für Sie 📧 \"Grüße\"", n % 30)
        } else {
            format!("Day {} - product tips email", n % 30)
        },
    );
    set("send_id", uuid(6));
    set(
        "dispatch_id",
        format!("{:024x}", 0xd15_0000_0000_u64 + n % 100_000),
    );
    set(
        "user_agent",
        if escaped {
            format!(
                "{} \"{}\" C:\\Mail\\client.exe",
                AGENTS[k],
                ["Ünïcödé", "Zürich", "東京"][k]
            )
        } else {
            AGENTS[k].to_owned()
        },
    );
    set("ip_pool", "marketing-pool-eu-1".to_owned());
    set("esp", ["SparkPost", "SendGrid", "Amazon SES"][k].to_owned());
    set("from_domain", "news.example-shop.com".to_owned());
    set("app_group_id", uuid(7));
    set(
        "device_class",
        ["mobile", "desktop", "desktop"][k].to_owned(),
    );
    set("device_os", ["iOS", "Windows", "Mac OS X"][k].to_owned());
    set("device_model", ["iPhone", "Other", "Mac"][k].to_owned());
    set("browser", ["Mobile Safari", "Edge", "Safari"][k].to_owned());
    set(
        "mailbox_provider",
        ["Apple", "Microsoft", "Google"][k].to_owned(),
    );
    set("device_id", uuid(8));
    set("machine_open", ["true", "false", "false"][k].to_owned());
    // The sample clock runs 37 s per event: one second per event keeps 5M
    // events within 58 days of the base time, none "in the future" for /import.
    fields.insert(
        "time".to_owned(),
        Value::from(currents_events::sample::BASE_TIME + (n % 25_000_000) as i64),
    );
    Event::from_map(
        EMAIL_OPEN,
        serde::de::value::MapDeserializer::new(fields.into_iter()),
    )
    .map_err(|e: serde_json::Error| anyhow::anyhow!("{e}"))
    .expect("sample fits the glossary")
}

fn generate(shape: &str, out: &str, n: u64) -> Result<()> {
    let file = File::create(out).with_context(|| format!("cannot create {out}"))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    match shape {
        "ndjson" => {
            for i in 0..n {
                serde_json::to_writer(&mut out, &to_http_json(&email_open(i)))?;
                out.write_all(b"\n")?;
            }
        }
        "ndjson-escaped" => {
            let mut line = Vec::with_capacity(4096);
            for i in 0..n {
                line.clear();
                serde_json::to_writer(&mut line, &to_http_json(&email_open_with(i, true)))?;
                if i % 2 == 1 {
                    ascii_only(&line, &mut out)?;
                } else {
                    out.write_all(&line)?;
                }
                out.write_all(b"\n")?;
            }
        }
        "http" => {
            // Custom HTTP request bodies as Braze posts them: batches of 100,
            // one body per line.
            let mut i = 0;
            while i < n {
                let batch: Vec<Event> = (i..(i + 100).min(n)).map(email_open).collect();
                serde_json::to_writer(&mut out, &to_http_batch(&batch))?;
                out.write_all(b"\n")?;
                i += 100;
            }
        }
        "avro" => {
            let info = event_type_info(EMAIL_OPEN).expect("known type");
            let mut i = 0;
            // What `write_avro` does, streamed: one container, deflate blocks
            // of 4000 records (memory stays bounded).
            let mut writer = currents_events::AvroWriter::new(
                out,
                &currents_events::avro_schema(info),
                Codec::Deflate,
                4000,
            )?;
            while i < n {
                writer.write_event(&email_open(i))?;
                i += 1;
            }
            writer.finish()?;
            return Ok(());
        }
        other => bail!("unknown shape {other}"),
    }
    out.flush()?;
    Ok(())
}

/// Writes JSON text as ASCII-only writers do (Python's `json.dumps`, PHP's
/// `json_encode`): every non-ASCII character as `\uXXXX` (surrogate pairs
/// beyond the BMP) and `/` as `\/`.
fn ascii_only(json: &[u8], out: &mut impl Write) -> Result<()> {
    let text = std::str::from_utf8(json)?;
    let mut in_str = false;
    let mut escape = false;
    for c in text.chars() {
        if in_str && !escape && c == '/' {
            out.write_all(b"\\/")?;
            continue;
        }
        if c.is_ascii() {
            if in_str {
                if escape {
                    escape = false;
                } else if c == '\\' {
                    escape = true;
                } else if c == '"' {
                    in_str = false;
                }
            } else if c == '"' {
                in_str = true;
            }
            out.write_all(&[c as u8])?;
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(out, "\\u{unit:04x}")?;
            }
        }
    }
    Ok(())
}

fn timed(file: &str, f: fn(&mut dyn BufRead, &mut dyn Write) -> Result<u64>) -> Result<()> {
    let started = Instant::now();
    let mut input = BufReader::with_capacity(1 << 20, File::open(file)?);
    let sink = File::create("/dev/null")?;
    let mut out = BufWriter::with_capacity(1 << 18, sink);
    let events = f(&mut input, &mut out)?;
    out.flush()?;
    println!("{events} {:.6}", started.elapsed().as_secs_f64());
    Ok(())
}

fn lines(input: &mut dyn BufRead, mut each: impl FnMut(&[u8]) -> Result<()>) -> Result<u64> {
    let mut line = Vec::with_capacity(4096);
    let mut n = 0;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(n);
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        each(&line)?;
        n += 1;
    }
}

/// The byte-copy floor: read the input and write it out unchanged.
fn floor_copy(input: &mut dyn BufRead, out: &mut dyn Write) -> Result<u64> {
    let mut n = 0;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        out.write_all(buf)?;
        n += 1; // chunks, not events: counting lines would cost more than the copy
        let len = buf.len();
        input.consume(len);
    }
}

/// sonic-rs's `Value`, parsed from each line and written back.
fn floor_sonic(input: &mut dyn BufRead, out: &mut dyn Write) -> Result<u64> {
    let mut buf = Vec::with_capacity(4096);
    lines(input, |line| {
        let value: sonic_rs::Value = sonic_rs::from_slice(line)?;
        buf.clear();
        sonic_rs::to_writer(&mut buf, &value)?;
        buf.push(b'\n');
        out.write_all(&buf)?;
        Ok(())
    })
}

fn floor_ignored(input: &mut dyn BufRead, _out: &mut dyn Write) -> Result<u64> {
    lines(input, |line| {
        serde_json::from_slice::<serde::de::IgnoredAny>(line)?;
        Ok(())
    })
}

fn floor_value(input: &mut dyn BufRead, out: &mut dyn Write) -> Result<u64> {
    let mut buf = Vec::with_capacity(4096);
    lines(input, |line| {
        let value: Value = serde_json::from_slice(line)?;
        buf.clear();
        serde_json::to_writer(&mut buf, &value)?;
        buf.push(b'\n');
        out.write_all(&buf)?;
        Ok(())
    })
}

/// Braze's mapping of email Open done generically: parse into a `Value`,
/// flatten `user`/`properties`, rename and drop keys per the glossary, write.
fn generic_map(input: &mut dyn BufRead, out: &mut dyn Write) -> Result<u64> {
    let mut buf = Vec::with_capacity(4096);
    lines(input, |line| {
        let Value::Object(mut top) = serde_json::from_slice::<Value>(line)? else {
            bail!("not an object");
        };
        let mut flat = Map::new();
        for nested in ["user", "properties"] {
            if let Some(Value::Object(inner)) = top.remove(nested) {
                flat.extend(inner);
            }
        }
        flat.extend(top);
        let Some(Value::String(distinct_id)) = flat.remove("external_user_id") else {
            return Ok(()); // skipped: no external_user_id
        };
        let event_name = match flat.remove("event_type") {
            Some(Value::String(t)) if t == EMAIL_OPEN => "Email Open",
            _ => bail!("not an email Open"),
        };
        let mut props = Map::new();
        props.insert("distinct_id".into(), Value::String(distinct_id));
        props.insert(
            "$insert_id".into(),
            flat.remove("id").unwrap_or(Value::Null),
        );
        props.insert("time".into(), flat.remove("time").unwrap_or(Value::Null));
        props.insert("$partner_id".into(), Value::String("braze".into()));
        for (key, value) in flat {
            let key = match key.as_str() {
                "user_id" | "timezone" => continue,
                "device_model" => "$device".to_owned(),
                _ => key,
            };
            if !value.is_null() {
                props.insert(key, value);
            }
        }
        let mut event = Map::new();
        event.insert("event".into(), Value::String(event_name.into()));
        event.insert("properties".into(), Value::Object(props));
        buf.clear();
        serde_json::to_writer(&mut buf, &event)?;
        buf.push(b'\n');
        out.write_all(&buf)?;
        Ok(())
    })
}
