//! Decoding 200k EmailOpen records from an Avro object container file: our
//! streaming reader (typed events) vs `apache-avro`'s reader (generic values).
//!
//! `cargo bench -p currents-events --bench avro_read`

use std::sync::LazyLock;

use currents_events::decode::{DecodeOptions, Reader};
use currents_events::sample::{Fill, sample_event};
use currents_events::{Codec, event_type_info, write_avro};
use divan::counter::ItemsCount;

const RECORDS: usize = 200_000;

fn file(codec: Codec) -> Vec<u8> {
    let info = event_type_info("users.messages.email.Open").expect("known type");
    let events: Vec<_> = (0..RECORDS as u64)
        .map(|n| sample_event(info, n, Fill::All))
        .collect();
    write_avro(Vec::new(), info, &events, codec, 4000).expect("write")
}

static NULL: LazyLock<Vec<u8>> = LazyLock::new(|| file(Codec::Null));
static DEFLATE: LazyLock<Vec<u8>> = LazyLock::new(|| file(Codec::Deflate));

fn input(codec: &str) -> &'static [u8] {
    match codec {
        "deflate" => &DEFLATE,
        _ => &NULL,
    }
}

fn main() {
    divan::main();
}

#[divan::bench(args = ["null", "deflate"], sample_count = 10)]
fn currents_reader(bencher: divan::Bencher, codec: &str) {
    let data = input(codec);
    bencher.counter(ItemsCount::new(RECORDS)).bench(|| {
        let reader = Reader::new("bench", data, DecodeOptions::default());
        let n = reader.filter(|r| r.is_ok()).count();
        assert_eq!(n, RECORDS);
        n
    });
}

#[divan::bench(args = ["null", "deflate"], sample_count = 10)]
fn apache_avro_reader(bencher: divan::Bencher, codec: &str) {
    let data = input(codec);
    bencher.counter(ItemsCount::new(RECORDS)).bench(|| {
        let reader = apache_avro::Reader::new(data).expect("header");
        let n = reader.filter(|r| r.is_ok()).count();
        assert_eq!(n, RECORDS);
        n
    });
}
