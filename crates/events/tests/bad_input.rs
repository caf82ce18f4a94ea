//! Damaged and unexpected inputs: exact outcomes (counts, lines, offsets),
//! unknown fields and unknown event types.

use currents_events::decode::decode_all;
use currents_events::decode::{DecodeOptions, ErrorKind, Format, UnknownTypes};
use currents_events::sample::{Fill, sample_event};
use currents_events::{
    AvroWriter, Codec, Event, EventTypeInfo, avro, avro_schema, event_type_info, to_flat_json,
    to_http_json, write_avro,
};
use serde_json::{Value, json};

fn email_open() -> &'static EventTypeInfo {
    event_type_info("users.messages.email.Open").unwrap()
}

fn events(n: u64) -> Vec<Event<'static>> {
    (0..n)
        .map(|i| sample_event(email_open(), i, Fill::Required))
        .collect()
}

/// An Avro file of 9 EmailOpen records in 3 blocks of 3, the sync marker,
/// and each block's (offset, data offset, data size).
/// (block offset, data offset, data size)
type Block = (usize, usize, usize);

fn three_blocks(codec: Codec) -> (Vec<u8>, [u8; 16], Vec<Block>) {
    let mut writer = AvroWriter::new(Vec::new(), &avro_schema(email_open()), codec, 3).unwrap();
    let sync = writer.sync_marker();
    for event in events(9) {
        writer.write_event(&event).unwrap();
    }
    let file = writer.finish().unwrap();
    let mut rest = file.as_slice();
    let header = avro::read_header(&mut rest).unwrap();
    assert_eq!(header.sync_marker, sync);
    let mut pos = file.len() - rest.len();
    let mut blocks = Vec::new();
    while pos < file.len() {
        let start = pos;
        let mut block = &file[pos..];
        let count = avro::read_long(&mut block).unwrap();
        assert_eq!(count, 3);
        let size = avro::read_long(&mut block).unwrap() as usize;
        pos = file.len() - block.len();
        blocks.push((start, pos, size));
        pos += size;
        assert_eq!(file[pos..pos + 16], sync);
        pos += 16;
    }
    assert_eq!(blocks.len(), 3);
    (file, sync, blocks)
}

fn ids(decoded: &[currents_events::decode::Decoded]) -> Vec<String> {
    decoded.iter().map(|d| d.event.id().to_owned()).collect()
}

fn expected_ids(range: impl Iterator<Item = u64>) -> Vec<String> {
    let all = events(9);
    range.map(|i| all[i as usize].id().to_owned()).collect()
}

#[test]
fn malformed_json_line_in_the_middle() {
    let mut lines: Vec<String> = events(5).iter().map(to_flat_json).collect();
    lines[2] = r#"{"event_type":"users.messages.email.Open","id": oops}"#.into();
    let text = lines.join("\n") + "\n";
    let (decoded, errors, stats) =
        decode_all("bad.ndjson", text.as_bytes(), DecodeOptions::default());
    assert_eq!(decoded.len(), 4);
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!(e.kind, ErrorKind::BadJson);
    assert_eq!(e.location.line, Some(3));
    assert_eq!(e.location.index, 2);
    assert_eq!(&*e.source_name, "bad.ndjson");
    assert!(
        e.to_string()
            .starts_with("bad.ndjson: line 3, record 2: malformed json"),
        "{e}"
    );
    assert_eq!(decoded[2].location.line, Some(4));
    assert_eq!(decoded[2].location.index, 3);
    assert_eq!(stats.records(), 5);
    assert_eq!(stats.errors.get(&ErrorKind::BadJson), Some(&1));
}

#[test]
fn truncated_avro_file() {
    let (file, _, blocks) = three_blocks(Codec::Null);
    let (b3, data3, _) = blocks[2];
    let cut = &file[..data3 + 10];
    let (decoded, errors, stats) = decode_all("cut.avro", cut, DecodeOptions::default());
    assert_eq!(ids(&decoded), expected_ids(0..6));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::Truncated);
    assert_eq!(errors[0].location.offset, Some(b3 as u64));
    assert_eq!(errors[0].location.index, 6);
    assert_eq!(errors[0].records, 3);
    assert_eq!(stats.records(), 9);
    // Cut inside a block header and inside the header.
    let (decoded, errors, _) = decode_all("cut.avro", &file[..b3 + 1], DecodeOptions::default());
    assert_eq!((decoded.len(), errors.len()), (6, 1));
    assert_eq!(errors[0].kind, ErrorKind::Truncated);
    let (decoded, errors, _) = decode_all(
        "cut.avro",
        &file[..blocks[0].0 - 3],
        DecodeOptions::default(),
    );
    assert_eq!((decoded.len(), errors.len()), (0, 1));
    assert_eq!(errors[0].kind, ErrorKind::Truncated);
}

#[test]
fn corrupt_sync_marker_in_block_two_resumes_at_block_three() {
    let (mut file, _, blocks) = three_blocks(Codec::Null);
    let (b2, data2, size2) = blocks[1];
    file[data2 + size2 + 5] ^= 0xff;
    let (decoded, errors, stats) = decode_all("sync.avro", &file, DecodeOptions::default());
    assert_eq!(ids(&decoded), expected_ids((0..3).chain(6..9)));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::BadSync);
    assert_eq!(errors[0].location.offset, Some(b2 as u64));
    assert_eq!(errors[0].records, 3);
    assert!(
        errors[0]
            .message
            .contains(&format!("at byte {}", blocks[2].0)),
        "{}",
        errors[0].message
    );
    assert_eq!(decoded[3].location.offset, Some(blocks[2].0 as u64));
    assert_eq!(stats.records(), 9);
}

#[test]
fn garbage_in_block_two_resumes_at_next_sync() {
    // The size of block 2 is damaged: scanning finds block 2's own marker.
    let (mut file, _, blocks) = three_blocks(Codec::Null);
    let (b2, data2, _) = blocks[1];
    let size_pos = data2 - 1; // one-byte size varint
    assert!(file[size_pos] < 0x80);
    file[size_pos] = 2; // size 1
    let (decoded, errors, stats) = decode_all("size.avro", &file, DecodeOptions::default());
    assert_eq!(ids(&decoded), expected_ids((0..3).chain(6..9)));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::BadSync);
    assert_eq!(errors[0].location.offset, Some(b2 as u64));
    assert_eq!(stats.records(), 9);
}

#[test]
fn corrupt_deflate_data() {
    let (mut file, _, blocks) = three_blocks(Codec::Deflate);
    let (b2, data2, _) = blocks[1];
    file[data2] = 0xff; // reserved block type
    let (decoded, errors, stats) = decode_all("deflate.avro", &file, DecodeOptions::default());
    assert_eq!(ids(&decoded), expected_ids((0..3).chain(6..9)));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::BadCompression);
    assert_eq!(errors[0].location.offset, Some(b2 as u64));
    assert_eq!(errors[0].location.index, 3);
    assert_eq!(errors[0].records, 3);
    assert_eq!(stats.records(), 9);
}

#[test]
fn bad_snappy_crc() {
    let (mut file, _, blocks) = three_blocks(Codec::Snappy);
    let (b2, data2, size2) = blocks[1];
    file[data2 + size2 - 1] ^= 0x01;
    let (decoded, errors, _) = decode_all("snappy.avro", &file, DecodeOptions::default());
    assert_eq!(ids(&decoded), expected_ids((0..3).chain(6..9)));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::BadChecksum);
    assert_eq!(errors[0].location.offset, Some(b2 as u64));
    assert_eq!(errors[0].records, 3);
}

#[test]
fn wrong_magic_empty_and_garbage() {
    let (mut file, _, _) = three_blocks(Codec::Null);
    file[3] = 2;
    let (decoded, errors, stats) = decode_all("magic.avro", &file, DecodeOptions::default());
    assert_eq!((decoded.len(), errors.len()), (0, 1));
    assert_eq!(errors[0].kind, ErrorKind::UnknownFormat);
    assert_eq!(stats.records(), 0);
    let forced = DecodeOptions::default().with_format(Some(Format::Avro));
    let (_, errors, _) = decode_all("magic.avro", &file, forced);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::BadHeader);

    let (decoded, errors, _) = decode_all("empty.json", b"", DecodeOptions::default());
    assert_eq!((decoded.len(), errors.len()), (0, 1));
    assert_eq!(errors[0].kind, ErrorKind::Empty);
    assert_eq!(
        errors[0].to_string(),
        "empty.json: byte 0, record 0: empty input: empty input"
    );

    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (decoded, errors, _) = decode_all("garbage.bin", &garbage, DecodeOptions::default());
    assert_eq!((decoded.len(), errors.len()), (0, 1));
    assert_eq!(errors[0].kind, ErrorKind::UnknownFormat);
    // Garbage after a valid Avro header: errors, never a panic.
    let (file, _, blocks) = three_blocks(Codec::Null);
    let mut damaged = file[..blocks[0].0].to_vec();
    damaged.extend_from_slice(&garbage);
    let (decoded, errors, _) = decode_all("g.avro", &damaged, DecodeOptions::default());
    assert!(decoded.is_empty());
    assert!(!errors.is_empty());
    // Garbage forced through every format.
    for format in [Format::Avro, Format::Ndjson, Format::HttpJson] {
        let options = DecodeOptions::default().with_format(Some(format));
        let (decoded, errors, _) = decode_all("g", &garbage, options);
        assert!(decoded.is_empty() && !errors.is_empty(), "{format:?}");
    }
}

#[test]
fn missing_required_field() {
    let mut line: Value = serde_json::from_str(&to_flat_json(&events(1)[0])).unwrap();
    line.as_object_mut().unwrap().remove("email_address");
    let text = format!("{line}\n{}\n", to_flat_json(&events(2)[1]));
    let (decoded, errors, _) = decode_all("m.ndjson", text.as_bytes(), DecodeOptions::default());
    assert_eq!((decoded.len(), errors.len()), (1, 1));
    assert_eq!(errors[0].kind, ErrorKind::MissingField);
    assert!(
        errors[0].message.contains("email_address"),
        "{}",
        errors[0].message
    );
    assert_eq!(errors[0].location.line, Some(1));

    // An Avro writer schema without the field: every record fails, each named.
    let mut schema = avro_schema(email_open());
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "email_address");
    let mut writer = AvroWriter::new(Vec::new(), &schema, Codec::Null, 2).unwrap();
    for event in events(3) {
        writer.write_event(&event).unwrap();
    }
    let file = writer.finish().unwrap();
    let (decoded, errors, stats) = decode_all("m.avro", &file, DecodeOptions::default());
    assert_eq!((decoded.len(), errors.len()), (0, 3));
    for (i, e) in errors.iter().enumerate() {
        assert_eq!(e.kind, ErrorKind::MissingField);
        assert!(e.message.contains("email_address"));
        assert_eq!(e.location.index, i as u64);
    }
    assert_eq!(stats.errors.get(&ErrorKind::MissingField), Some(&3));
}

#[test]
fn over_long_line() {
    let mut lines: Vec<String> = events(3).iter().map(to_flat_json).collect();
    let mut big: Value = serde_json::from_str(&lines[1]).unwrap();
    big["padding"] = Value::String("x".repeat(100_000));
    lines[1] = big.to_string();
    let text = lines.join("\n");
    let options = DecodeOptions::default().with_max_record_bytes(4096);
    let (decoded, errors, stats) = decode_all("long.ndjson", text.as_bytes(), options);
    assert_eq!(ids(&decoded), expected_ids([0, 2].into_iter()));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::TooLarge);
    assert_eq!(errors[0].location.line, Some(2));
    assert_eq!(decoded[1].location.line, Some(3));
    assert_eq!(stats.records(), 3);
}

#[test]
fn bad_events_inside_an_http_batch() {
    let good: Vec<Value> = events(3).iter().map(to_http_json).collect();
    let body = format!(
        "{{\"events\": [\n{},\n{{\"event_type\":\"users.messages.email.Open\",\"id\":1,\"time\":1}},\n{{\"id\": oops}},\n{}\n,{}]}}",
        good[0], good[1], good[2]
    );
    let (decoded, errors, stats) =
        decode_all("batch.json", body.as_bytes(), DecodeOptions::default());
    assert_eq!(ids(&decoded), expected_ids(0..3));
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].kind, ErrorKind::InvalidField);
    assert_eq!(errors[0].location.line, Some(3));
    assert_eq!(errors[0].location.index, 1);
    assert_eq!(errors[1].kind, ErrorKind::BadJson);
    assert_eq!(errors[1].location.line, Some(4));
    assert_eq!(decoded[1].location.index, 3);
    assert_eq!(stats.records(), 5);
    // A truncated body: the complete events, then one error.
    let cut = &body[..body.len() - 40];
    let (decoded, errors, _) = decode_all("cut.json", cut.as_bytes(), DecodeOptions::default());
    assert_eq!(decoded.len(), 2);
    assert_eq!(errors.last().unwrap().kind, ErrorKind::BadJson);
}

#[test]
fn unknown_fields_survive_and_are_counted() {
    // Avro: a writer schema with extra fields of several types.
    let mut schema = avro_schema(email_open());
    let fields = schema["fields"].as_array_mut().unwrap();
    fields.insert(
        2,
        json!({"name": "new_flag", "type": ["null", "boolean"], "default": null}),
    );
    fields.push(json!({"name": "new_map", "type": {"type": "map", "values": "long"}}));
    fields.push(
        json!({"name": "new_rec", "type": {"type": "record", "name": "Extra", "fields": [
            {"name": "a", "type": "double"},
            {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["X", "Y"]}}
        ]}}),
    );
    let mut writer = AvroWriter::new(Vec::new(), &schema, Codec::Zstd, 2).unwrap();
    for (i, event) in events(3).iter().enumerate() {
        let mut value = serde_json::to_value(event).unwrap();
        value["new_flag"] = json!(i == 1);
        value["new_map"] = json!({"k": i});
        value["new_rec"] = json!({"a": 1.5, "kind": "Y"});
        writer.write_value(value.as_object().unwrap()).unwrap();
    }
    let file = writer.finish().unwrap();
    let (decoded, errors, stats) = decode_all("extra.avro", &file, DecodeOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(decoded.len(), 3);
    let unknown = decoded[1].event.unknown_fields();
    assert_eq!(unknown.get("new_flag"), Some(&json!(true)));
    assert_eq!(unknown.get("new_map"), Some(&json!({"k": 1})));
    assert_eq!(
        unknown.get("new_rec"),
        Some(&json!({"a": 1.5, "kind": "Y"}))
    );
    assert_eq!(decoded[1].event.id(), events(3)[1].id());
    assert_eq!(
        stats
            .unknown_fields
            .get("users.messages.email.Open.new_flag"),
        Some(&3)
    );
    assert_eq!(
        stats
            .unknown_fields
            .get("users.messages.email.Open.new_rec"),
        Some(&3)
    );

    // JSON: an extra key, flat and nested under `properties`.
    let mut flat: Value = serde_json::from_str(&to_flat_json(&events(1)[0])).unwrap();
    flat["surprise"] = json!([1, 2]);
    let mut http = to_http_json(&events(2)[1]);
    http["properties"]["surprise"] = json!("s");
    let text = format!("{flat}\n{http}\n");
    let (decoded, errors, stats) =
        decode_all("extra.ndjson", text.as_bytes(), DecodeOptions::default());
    assert!(errors.is_empty());
    assert_eq!(
        decoded[0].event.unknown_fields().get("surprise"),
        Some(&json!([1, 2]))
    );
    assert_eq!(
        decoded[1].event.unknown_fields().get("surprise"),
        Some(&json!("s"))
    );
    assert_eq!(
        stats
            .unknown_fields
            .get("users.messages.email.Open.surprise"),
        Some(&2)
    );
}

#[test]
fn unknown_event_types_mapped_or_skipped() {
    let known = to_flat_json(&events(1)[0]);
    let text = format!(
        "{known}\n{}\n{}\n{known}\n",
        r#"{"event_type":"users.messages.pigeon.Send","id":"p1","time":5,"feathers":3}"#,
        r#"{"id":"p2","time":6,"event_type":"users.messages.pigeon.Send","user":{"user_id":"u"}}"#,
    );
    let (decoded, errors, stats) =
        decode_all("u.ndjson", text.as_bytes(), DecodeOptions::default());
    assert!(errors.is_empty());
    assert_eq!(decoded.len(), 4);
    let Event::Unknown(pigeon) = &*decoded[1].event else {
        panic!("expected an unknown event");
    };
    assert_eq!(pigeon.event_type, "users.messages.pigeon.Send");
    assert_eq!(pigeon.fields.get("feathers"), Some(&json!(3)));
    assert_eq!(
        decoded[2].event.unknown_fields().get("user_id"),
        Some(&json!("u"))
    );
    assert_eq!(
        stats.unknown_types.get("users.messages.pigeon.Send"),
        Some(&2)
    );
    assert!(stats.unknown_fields.is_empty());

    let skip = DecodeOptions::default().with_unknown_types(UnknownTypes::Skip);
    let (decoded, errors, stats) = decode_all("u.ndjson", text.as_bytes(), skip.clone());
    assert!(errors.is_empty());
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded[1].location.line, Some(4));
    assert_eq!(stats.skipped_unknown, 2);
    assert_eq!(
        stats.unknown_types.get("users.messages.pigeon.Send"),
        Some(&2)
    );
    assert_eq!(stats.records(), 4);

    // Avro with an unknown namespace.
    let mut schema = avro_schema(email_open());
    schema["namespace"] = json!("dataexport.S3.inner.users.messages.pigeon");
    let mut writer = AvroWriter::new(Vec::new(), &schema, Codec::Null, 10).unwrap();
    for event in events(2) {
        writer.write_event(&event).unwrap();
    }
    let file = writer.finish().unwrap();
    let (decoded, _, stats) = decode_all("u.avro", &file, DecodeOptions::default());
    assert_eq!(decoded[0].event.event_type(), "users.messages.pigeon.Open");
    assert!(matches!(*decoded[0].event, Event::Unknown(_)));
    assert_eq!(
        stats.unknown_types.get("users.messages.pigeon.Open"),
        Some(&2)
    );
    let (decoded, _, stats) = decode_all("u.avro", &file, skip);
    assert!(decoded.is_empty());
    assert_eq!(stats.skipped_unknown, 2);
}

#[test]
fn int_and_long_are_interchangeable() {
    // EmailOpen.time is `int`; a writer that uses `long` (and a float field
    // written as double) still decodes when values fit.
    let mut schema = avro_schema(email_open());
    for f in schema["fields"].as_array_mut().unwrap() {
        if f["name"] == "time" {
            f["type"] = json!("long");
        }
    }
    let evs = events(2);
    let mut writer = AvroWriter::new(Vec::new(), &schema, Codec::Null, 10).unwrap();
    for e in &evs {
        writer.write_event(e).unwrap();
    }
    let (decoded, errors, _) = decode_all(
        "l.avro",
        &writer.finish().unwrap(),
        DecodeOptions::default(),
    );
    assert!(errors.is_empty());
    assert_eq!(
        decoded
            .iter()
            .map(|d| (*d.event).clone())
            .collect::<Vec<_>>(),
        evs
    );

    // Too large for i32: `time` is held as i64 whatever its Avro type, so the
    // value decodes and the /import time rules judge it (not the decoder).
    let mut writer = AvroWriter::new(Vec::new(), &schema, Codec::Null, 10).unwrap();
    let mut big = serde_json::to_value(&evs[0]).unwrap();
    big["time"] = json!(1_i64 << 40);
    writer.write_value(big.as_object().unwrap()).unwrap();
    writer.write_event(&evs[1]).unwrap();
    let (decoded, errors, _) = decode_all(
        "l.avro",
        &writer.finish().unwrap(),
        DecodeOptions::default(),
    );
    assert_eq!((decoded.len(), errors.len()), (2, 0));
    assert_eq!(decoded[0].event.time(), 1_i64 << 40);

    // Long time fields accept Avro int.
    let info = event_type_info("users.messages.whatsapp.Send").unwrap();
    let mut schema = avro_schema(info);
    for f in schema["fields"].as_array_mut().unwrap() {
        if f["name"] == "time" {
            assert_eq!(f["type"], "long");
            f["type"] = json!("int");
        }
    }
    let e = sample_event(info, 1, Fill::All);
    let mut writer = AvroWriter::new(Vec::new(), &schema, Codec::Null, 10).unwrap();
    writer.write_event(&e).unwrap();
    let (decoded, errors, _) = decode_all(
        "i.avro",
        &writer.finish().unwrap(),
        DecodeOptions::default(),
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(decoded[0].event.time(), e.time());
    let _ = write_avro(Vec::new(), info, [&e], Codec::Null, 1).unwrap();
}

/// Regression: a schema whose records take no bytes, and a block claiming a
/// trillion of them, must end in one error rather than yield "forever".
#[test]
fn block_claiming_more_records_than_bytes_is_rejected() {
    let schema = json!({
        "type": "record",
        "name": "Empty",
        "namespace": "dataexport.S3.inner.users.behaviors",
        "fields": [],
    });
    let writer =
        currents_events::AvroWriter::new(Vec::new(), &schema, Codec::Null, 10).expect("header");
    let sync = writer.sync_marker();
    let mut file = writer.finish().expect("header only");
    avro::write_long(&mut file, 1_000_000_000_000);
    avro::write_long(&mut file, 0);
    file.extend_from_slice(&sync);
    let started = std::time::Instant::now();
    let (decoded, errors, stats) = decode_all("empty.avro", &file, DecodeOptions::default());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(decoded.is_empty());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].kind, ErrorKind::BadBlock);
    assert_eq!(stats.error_count(), 1);
}

/// Found by the stable fuzz driver: a float field out of `f32` range (or NaN
/// in Avro) used to decode as infinity/NaN, which JSON writes as `null`.
#[test]
fn float_fields_must_be_finite_32_bit_numbers() {
    let info = event_type_info("users.behaviors.Purchase").unwrap();
    let mut event = sample_event(info, 1, Fill::All);
    let mut flat: Value = serde_json::from_str(&to_flat_json(&event)).unwrap();
    flat["price"] = json!(1e39);
    let (decoded, errors, _) = decode_all("t", flat.to_string().as_bytes(), Default::default());
    assert!(decoded.is_empty());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, ErrorKind::InvalidField);
    assert!(
        errors[0].message.contains(
            "`price`: 1000000000000000000000000000000000000000 is not a finite 32-bit float"
        ),
        "{}",
        errors[0].message
    );

    let Event::Purchase(purchase) = &mut event else {
        panic!("a Purchase");
    };
    // The writer cannot write NaN (it goes through JSON): patch the bytes.
    purchase.price = 12345.5;
    let mut avro = write_avro(Vec::new(), info, [&event], Codec::Null, 10).unwrap();
    let at = avro
        .windows(4)
        .position(|w| w == 12345.5f32.to_le_bytes())
        .expect("the price bytes");
    avro[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let (decoded, errors, stats) = decode_all("t.avro", &avro, Default::default());
    assert!(decoded.is_empty());
    assert_eq!(
        errors[0].kind,
        ErrorKind::InvalidField,
        "{}",
        errors[0].message
    );
    assert_eq!(stats.records(), 1);
}

/// Found by the stable fuzz driver: a 51-digit integer in an unknown field
/// read back one ulp off after writing (serde_json's fast float parsing).
#[test]
fn unknown_numbers_read_back_exactly() {
    let line = br#"{"event_type":"x.y.Future","id":"f-1","time":1768435200,"n":[111111111111111111111111111111111111111111111111111,0.1,1e-7]}"#;
    let (first, errors, _) = decode_all("t", line, Default::default());
    assert!(errors.is_empty());
    let again = to_flat_json(&first[0].event);
    let (second, errors, _) = decode_all("t", again.as_bytes(), Default::default());
    assert!(errors.is_empty());
    assert_eq!(second[0].event, first[0].event, "{again}");
}

/// Found by the stable fuzz driver: an unknown type's `properties` inside
/// `user` stayed an object, and its flat JSON then read back flattened.
#[test]
fn unknown_types_flatten_nested_wrappers_like_known_types() {
    let line = br#"{"event_type":"x.y.Future","id":"f-1","time":1768435200,"user":{"properties":{"a":1,"user":{"b":2}},"c":3}}"#;
    let (first, errors, _) = decode_all("t", line, Default::default());
    assert!(errors.is_empty());
    let names: Vec<&str> = first[0].event.unknown_fields().names().collect();
    assert_eq!(names, ["id", "time", "c", "a", "b"]); // nested keys in JSON-map order
    let again = to_flat_json(&first[0].event);
    let (second, _, _) = decode_all("t", again.as_bytes(), Default::default());
    assert_eq!(second[0].event, first[0].event, "{again}");
}
