//! The `bucket` module through the pipeline: listings into sources, lazy
//! streamed reads from an S3-compatible server (s3s-fs on loopback), the
//! state, and a run told to finish the sources in hand.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use currents_events::sample::{Fill, sample_event};
use currents_events::{Codec, EVENT_TYPES, write_avro};
use currents_pipeline::bucket::object_store::aws::AmazonS3Builder;
use currents_pipeline::bucket::object_store::memory::InMemory;
use currents_pipeline::bucket::object_store::path::Path as ObjectPath;
use currents_pipeline::bucket::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use currents_pipeline::bucket::{Bucket, BucketUrl, Inputs, Layout, Select, State};
use currents_pipeline::{NdjsonSink, Observer, Pipeline, PipelineOptions, Sources, StopCause};

fn avro(event_type: &str, first: u64, n: u64) -> Vec<u8> {
    let info = EVENT_TYPES
        .iter()
        .find(|i| i.event_type == event_type)
        .unwrap();
    let events: Vec<_> = (first..first + n)
        .map(|k| sample_event(info, k, Fill::All))
        .collect();
    write_avro(Vec::new(), info, &events, Codec::Deflate, 10).unwrap()
}

fn key(layout: &str, offset: u64) -> String {
    format!(
        "currents/dataexport.prod-02.S3.integration.77/event_type=users.messages.email.Open/date=2025-04-01-17/{layout}/dataexport.prod-02.S3.integration.77+3+{offset}.avro"
    )
}

fn s3_bucket(server: &test_s3::S3Server, url: &str) -> Bucket {
    let url: BucketUrl = url.parse().unwrap();
    let store = AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id(test_s3::ACCESS_KEY)
        .with_secret_access_key(test_s3::SECRET_KEY)
        .with_bucket_name(url.bucket())
        .build()
        .unwrap();
    Bucket::with_store(url, Arc::new(store)).unwrap()
}

#[test]
fn a_listing_becomes_sources_read_as_streams_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let server = test_s3::S3Server::start(dir.path()).unwrap();
    server.create_bucket("bkt").unwrap();
    let put = |key: &str, bytes: &[u8]| {
        let path = server.root().join("bkt").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    // Offsets 9 and 10: key order, not numeric order.
    put(
        &key("1712000000/us-east-1", 9),
        &avro("users.messages.email.Open", 1, 30),
    );
    put(
        &key("version=6/us-01", 10),
        &avro("users.messages.email.Open", 100, 20),
    );
    put("currents/notes.txt", b"hello");
    put("elsewhere/x.avro", b"not listed: outside the prefix");

    let bucket = s3_bucket(&server, "s3://bkt/currents");
    let objects = bucket.list().unwrap();
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        objects[0].url,
        format!("s3://bkt/{}", key("1712000000/us-east-1", 9))
    );
    assert!(matches!(
        objects[1].currents.as_ref().unwrap().layout,
        Layout::Version { .. }
    ));
    assert!(objects[2].currents.is_none());

    let select = Select::default();
    let mut sources = Sources::new();
    for object in &objects {
        match select.reason(&object.key, object.currents.as_ref()) {
            Some(reason) => sources.ignore(object.url.clone(), reason),
            None => sources.push(bucket.source(object)),
        }
    }
    assert_eq!(
        sources.iter().map(|s| s.size()).collect::<Vec<_>>(),
        [Some(objects[0].size), Some(objects[1].size)]
    );
    let mut out = Vec::new();
    let report = Pipeline::new(PipelineOptions::default())
        .run(&sources, &mut NdjsonSink::new(&mut out))
        .unwrap();
    assert_eq!((report.files, report.written), (2, 50));
    assert_eq!(report.ignored["not_a_currents_key"], 1);
    assert_eq!(report.bytes, objects[0].size + objects[1].size);
    out.flush().unwrap();
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 50);

    // Nothing is fetched at listing time: an object gone by the time its
    // worker opens it stops the run then, naming it.
    std::fs::remove_file(server.root().join("bkt").join(&objects[1].key)).unwrap();
    let err = Pipeline::new(PipelineOptions::default())
        .run(&sources, &mut NdjsonSink::new(Vec::new()))
        .unwrap_err();
    let StopCause::Open { name, error } = &err.cause else {
        panic!("{err}")
    };
    assert_eq!(name, &objects[1].url);
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}");
}

/// An in-memory bucket of `n` objects of 40 events.
fn memory_bucket(n: u64) -> Bucket {
    let store = Arc::new(InMemory::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for i in 0..n {
        let bytes = avro("users.messages.email.Open", 1 + 100 * i, 40);
        let path = ObjectPath::parse(key("1712000000/us-east-1", i)).unwrap();
        runtime
            .block_on(store.put(&path, PutPayload::from(bytes)))
            .unwrap();
    }
    let store: Arc<dyn ObjectStore> = store;
    Bucket::with_store("s3://mem/currents".parse().unwrap(), store).unwrap()
}

/// Calls `finish_sources` on the run's token when the first source is resolved.
struct StopAfterFirst {
    token: Mutex<Option<currents_pipeline::CancelToken>>,
    resolved: AtomicUsize,
}

impl Observer for StopAfterFirst {
    fn source_resolved(&self, _index: usize, _name: &str) {
        self.resolved.fetch_add(1, Ordering::SeqCst);
        if let Some(token) = self.token.lock().unwrap().as_ref() {
            token.finish_sources();
        }
    }
}

#[test]
fn finishing_the_sources_in_hand_records_them_and_starts_no_other() {
    // Many more sources than are in hand when the first resolves, so a
    // loaded machine cannot read them all before the token is seen.
    const SOURCES: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let inputs = Inputs::new::<&str>(&[])
        .unwrap()
        .with_bucket(memory_bucket(SOURCES))
        .with_state(State::open(&dir.path().join("state")).unwrap());
    let observer = Arc::new(StopAfterFirst {
        token: Mutex::new(Some(inputs.cancel_token())),
        resolved: AtomicUsize::new(0),
    });
    let report = inputs
        .run(|round| {
            let mut options = PipelineOptions::default();
            options.threads = 2;
            round
                .pipeline(options, observer.clone())
                .run(round.sources(), &mut NdjsonSink::new(Vec::new()))
                .map_err(|e| currents_pipeline::bucket::BucketError::Run(Box::new(e)))
        })
        .unwrap();
    // The sources in hand were read to their end: nothing unresolved, every
    // one of them recorded, the rest left for the next run.
    assert!(report.is_balanced());
    assert_eq!(report.unresolved, 0);
    assert_eq!(report.read, 40 * report.files);
    assert!(
        report.files >= 1 && report.files < SOURCES,
        "{}",
        report.files
    );
    assert_eq!(
        observer.resolved.load(Ordering::SeqCst) as u64,
        report.files
    );
    drop(inputs);
    let state = State::open(&dir.path().join("state")).unwrap();
    assert_eq!(state.entries(None).unwrap().len() as u64, report.files);

    // The next run reads the others only.
    let inputs = Inputs::new::<&str>(&[])
        .unwrap()
        .with_bucket(memory_bucket(SOURCES))
        .with_state(state);
    let round = inputs.list().unwrap();
    assert_eq!(round.sources().len() as u64, SOURCES - report.files);
    assert_eq!(round.sources().ignored()["already_done"], report.files);
}

#[test]
fn a_cancelled_parallel_run_does_not_wait_for_sources_never_started() {
    let bucket = memory_bucket(30);
    let objects = bucket.list().unwrap();
    let sources: Sources = objects.iter().map(|o| bucket.source(o)).collect();
    let mut options = PipelineOptions::default();
    options.threads = 2;
    let pipeline = Pipeline::new(options);
    pipeline.cancel_token().cancel();
    let report = pipeline
        .run(&sources, &mut NdjsonSink::new(Vec::new()))
        .unwrap();
    assert_eq!(report.files, 0);
}

#[test]
fn large_listings_are_selected_in_batches_and_read_in_key_order() {
    let store = Arc::new(InMemory::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // 2,500 objects (more than one state batch), put in reverse order.
    for i in (0..2500u64).rev() {
        let path = ObjectPath::parse(key("1712000000/us-east-1", i)).unwrap();
        runtime
            .block_on(store.put(&path, PutPayload::from(vec![b'x'])))
            .unwrap();
    }
    let store: Arc<dyn ObjectStore> = store;
    let bucket = Bucket::with_store("s3://mem/currents".parse().unwrap(), store).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inputs = Inputs::new::<&str>(&[])
        .unwrap()
        .with_bucket(bucket)
        .with_state(State::open(dir.path()).unwrap());
    let round = inputs.list().unwrap();
    let names: Vec<&str> = round.sources().iter().map(|s| s.name()).collect();
    assert_eq!(names.len(), 2500);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "key order");
    assert_eq!(round.objects().count(), 2500);
}
