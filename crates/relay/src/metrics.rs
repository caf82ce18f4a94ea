//! `GET /metrics`: Prometheus text, every name starting `currents_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    pub status: String,
}

/// Everything the relay counts.
pub struct Metrics {
    registry: Registry,
    pub received_events: Counter,
    pub acknowledged_events: Counter,
    pub acknowledged_batches: Counter,
    /// Requests answered with an error status, by reason.
    pub rejected_requests: Family<Reason, Counter>,
    pub imported_events: Counter,
    pub dead_lettered_events: Family<Reason, Counter>,
    pub skipped_events: Family<Reason, Counter>,
    pub queue_batches: Gauge,
    pub queue_events: Gauge,
    pub queue_bytes: Gauge,
    pub oldest_queued_seconds: Gauge,
    pub ack_latency_seconds: Histogram,
    pub mixpanel_responses: Family<Status, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("currents");
        let buckets = [
            0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let metrics = Metrics {
            received_events: Counter::default(),
            acknowledged_events: Counter::default(),
            acknowledged_batches: Counter::default(),
            rejected_requests: Family::default(),
            imported_events: Counter::default(),
            dead_lettered_events: Family::default(),
            skipped_events: Family::default(),
            queue_batches: Gauge::default(),
            queue_events: Gauge::default(),
            queue_bytes: Gauge::default(),
            oldest_queued_seconds: Gauge::default(),
            ack_latency_seconds: Histogram::new(buckets),
            mixpanel_responses: Family::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        registry.register(
            "received_events",
            "Events received in posts",
            m.received_events.clone(),
        );
        registry.register(
            "acknowledged_events",
            "Events stored and acknowledged",
            m.acknowledged_events.clone(),
        );
        registry.register(
            "acknowledged_batches",
            "Posts stored and acknowledged",
            m.acknowledged_batches.clone(),
        );
        registry.register(
            "rejected_requests",
            "Posts answered with an error, by reason",
            m.rejected_requests.clone(),
        );
        registry.register(
            "imported_events",
            "Events Mixpanel confirmed",
            m.imported_events.clone(),
        );
        registry.register(
            "dead_lettered_events",
            "Events written to the dead letter, by reason",
            m.dead_lettered_events.clone(),
        );
        registry.register(
            "skipped_events",
            "Events not sent by design (no user id ...), by reason",
            m.skipped_events.clone(),
        );
        registry.register(
            "queue_batches",
            "Batches in the queue",
            m.queue_batches.clone(),
        );
        registry.register(
            "queue_events",
            "Events in the queue",
            m.queue_events.clone(),
        );
        registry.register("queue_bytes", "Bytes in the queue", m.queue_bytes.clone());
        registry.register(
            "oldest_queued_seconds",
            "Age of the oldest queued batch",
            m.oldest_queued_seconds.clone(),
        );
        registry.register(
            "ack_latency_seconds",
            "Time from a post's arrival to its acknowledgement",
            m.ack_latency_seconds.clone(),
        );
        registry.register(
            "mixpanel_responses",
            "/import responses, by HTTP status",
            m.mixpanel_responses.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
