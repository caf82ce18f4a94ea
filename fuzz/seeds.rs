//! Writes the seed corpora in `fuzz/seeds/<target>/` from this project's own
//! sample generator and writers (deterministic; re-run after schema changes):
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --bin seeds
//! ```

use std::fs;
use std::path::Path;

use currents_events::sample::{Fill, sample_event};
use currents_events::{
    AvroWriter, Codec, EVENT_TYPES, Event, event_type_info, to_flat_json, to_http_batch,
    to_http_json, write_avro,
};
use serde_json::json;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let dir = |name: &str| -> std::io::Result<std::path::PathBuf> {
        let d = root.join(name);
        if d.exists() {
            fs::remove_dir_all(&d)?;
        }
        fs::create_dir_all(&d)?;
        Ok(d)
    };
    // A spread of types: the first few of the glossary, custom events and
    // purchases (JSON-text properties), and a legacy type.
    let mut types: Vec<&str> = EVENT_TYPES.iter().take(4).map(|i| i.event_type).collect();
    types.extend(["users.behaviors.CustomEvent", "users.behaviors.Purchase"]);
    types.extend(
        EVENT_TYPES
            .iter()
            .filter(|i| !i.avro)
            .take(1)
            .map(|i| i.event_type),
    );

    let avro = dir("fuzz_avro")?;
    for (t, event_type) in types.iter().enumerate() {
        let info = event_type_info(event_type).expect("known type");
        let events: Vec<Event> = (0..3)
            .map(|n| sample_event(info, n, if n == 1 { Fill::Required } else { Fill::All }))
            .collect();
        for codec in Codec::ALL {
            let bytes = write_avro(Vec::new(), info, &events, codec, 2)?;
            fs::write(avro.join(format!("{t:02}-{}.avro", codec.name())), bytes)?;
        }
    }
    // A type the glossary does not know, with a nested record and a map.
    let schema = json!({
        "type": "record", "name": "Mystery", "namespace": "dataexport.S3.inner.users.future",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "time", "type": "int"},
            {"name": "external_user_id", "type": ["null", "string"], "default": null},
            {"name": "tags", "type": {"type": "map", "values": "long"}},
            {"name": "score", "type": ["null", "double"], "default": null},
        ]
    });
    let mut writer = AvroWriter::new(Vec::new(), &schema, Codec::Null, 1)?;
    for n in 0..2 {
        let value = json!({"id": format!("m-{n}"), "time": 1_768_435_200 + n, "external_user_id": "u",
            "tags": {"a": 1, "b": n}, "score": 0.5});
        writer.write_value(value.as_object().expect("object"))?;
    }
    fs::write(avro.join("unknown-type.avro"), writer.finish()?)?;

    let jsons = dir("fuzz_json")?;
    let all: Vec<Event> = types
        .iter()
        .map(|t| sample_event(event_type_info(t).expect("known"), 5, Fill::All))
        .collect();
    let ndjson: String = all.iter().map(|e| to_flat_json(e) + "\n").collect();
    fs::write(jsons.join("flat.ndjson"), &ndjson)?;
    let http_lines: String = all
        .iter()
        .map(|e| to_http_json(e).to_string() + "\n")
        .collect();
    fs::write(jsons.join("http-lines.ndjson"), http_lines)?;
    fs::write(jsons.join("batch.json"), to_http_batch(&all).to_string())?;
    fs::write(
        jsons.join("batch-pretty.json"),
        serde_json::to_string_pretty(&to_http_batch(&all[..2])).expect("json"),
    )?;
    let array: Vec<_> = all.iter().map(to_http_json).collect();
    fs::write(
        jsons.join("array.json"),
        serde_json::to_string(&array).expect("json"),
    )?;
    fs::write(
        jsons.join("single-pretty.json"),
        serde_json::to_string_pretty(&to_http_json(&all[4])).expect("json"),
    )?;
    fs::write(
        jsons.join("unknown-and-extra.ndjson"),
        "{\"event_type\":\"x.y.Future\",\"id\":\"f-1\",\"time\":1768435200,\"external_user_id\":\"u\",\"n\":[1,{\"a\":null}]}\n\
         {\"id\":\"k\",\"event_type\":\"users.behaviors.CustomEvent\",\"time\":1768435200,\"user_id\":\"u\",\"name\":\"n\",\"extra\":true}\n",
    )?;
    fs::write(
        jsons.join("batch-extra-keys.json"),
        format!(
            "{{\"events\":[{}],\"meta\":{{\"n\":1}},\"v\":[1,2]}}",
            to_http_json(&all[0])
        ),
    )?;

    let props = dir("fuzz_properties")?;
    for (i, text) in [
        r#"{"plan":"pro","seats":3,"tags":["a","b"],"trial":true}"#,
        r#"{"a":{"b":{"c":{"d":1}}}}"#,
        r#"{"list":[1,2.5,"x",null,[],{}],"empty":""}"#,
        r#"{"distinct_id":"x","$insert_id":"y","time":1,"":0}"#,
        r#"{"k":"\u0000\ud83d\ude00\"\\"}"#,
        "[1,2,3]",
        "not json",
        "",
        r#"{"a":1,"a":2}"#,
    ]
    .iter()
    .enumerate()
    {
        fs::write(props.join(format!("{i:02}.json")), text)?;
    }

    let responses = dir("fuzz_response")?;
    for (i, (status, body)) in [
        (200u16, r#"{"code":200,"num_records_imported":2,"status":"OK"}"#),
        (400, r#"{"code":400,"error":"some data points in the request failed validation","failed_records":[{"index":0,"$insert_id":"a-1","field":"properties.time","message":"'properties.time' is invalid: must be specified as seconds since epoch"}],"num_records_imported":1,"status":"Bad Request"}"#),
        (400, r#"{"code":400,"failed_records":[{"index":1,"insert_id":"b"}]}"#),
        (401, r#"{"code":401,"error":"Invalid credentials","status":0}"#),
        (413, "request entity too large"),
        (429, r#"{"code":429,"error":"too many requests"}"#),
        (500, ""),
    ]
    .iter()
    .enumerate()
    {
        let mut bytes = status.to_le_bytes().to_vec();
        bytes.extend_from_slice(body.as_bytes());
        fs::write(responses.join(format!("{i:02}")), bytes)?;
    }
    eprintln!("seeds written to {}", root.display());
    Ok(())
}
