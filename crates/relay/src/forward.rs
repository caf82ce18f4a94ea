//! The forwarder: takes the oldest queued batches, runs them through the
//! library pipeline (map, validate, batch, `/import` with retries, dead
//! letter) and removes a batch from the queue only once every one of its
//! events is imported or in the (fsync'd) dead letter.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use currents_pipeline::{DeadLetter, ImportSink, Observer, Pipeline, Source, Sources, StopCause};

use crate::App;
use crate::metrics::{Reason, Status};

/// The indices of the sources whose records all have their outcome.
#[derive(Default)]
struct Resolved(Mutex<Vec<usize>>);

impl Observer for Resolved {
    fn source_resolved(&self, index: usize, _name: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(index);
    }
}

pub(crate) fn run(app: &App) {
    while !app.stopping.load(Ordering::SeqCst) {
        let batch = match app.queue.peek(None, app.config.forward_events) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "cannot read the queue");
                app.forwarder_sleep(Duration::from_secs(1));
                continue;
            }
        };
        if batch.is_empty() {
            app.forwarder_sleep(Duration::from_millis(500));
            continue;
        }
        let sources: Sources = batch
            .iter()
            .map(|q| Source::bytes(&format!("queue/{}", q.seq), q.body.clone()))
            .collect();
        let dead_letter = match DeadLetter::append(&app.config.data_dir.join("dead-letter.ndjson"))
        {
            Ok(dead_letter) => dead_letter.durable(),
            Err(error) => {
                tracing::error!(%error, "cannot open the dead letter; not forwarding");
                app.forwarder_sleep(Duration::from_secs(5));
                continue;
            }
        };
        let resolved = Arc::new(Resolved::default());
        let mut sink = ImportSink::new(app.config.export.clone());
        *app.cancel_export.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink.cancel_handle());
        let result = Pipeline::new(app.config.pipeline.clone())
            .dead_letter(dead_letter)
            .observer(resolved.clone())
            .run(&sources, &mut sink);
        let (report, stop) = match result {
            Ok(report) => (report, None),
            Err(error) => (*error.report, Some(error.cause)),
        };
        // The dead letter was synced when the run finished: what is resolved
        // can leave the queue.
        let done: Vec<u64> = resolved
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|&i| batch[i].seq)
            .collect();
        if let Err(error) = app.queue.remove(done) {
            tracing::error!(%error, "cannot remove delivered batches; they will be sent again");
        }
        let m = &app.metrics;
        m.imported_events.inc_by(report.imported);
        for (reasons, family) in [
            (&report.dead_lettered, &m.dead_lettered_events),
            (&report.rejected, &m.dead_lettered_events),
            (&report.skipped, &m.skipped_events),
        ] {
            for (reason, n) in reasons {
                family
                    .get_or_create(&Reason {
                        reason: reason.clone(),
                    })
                    .inc_by(*n);
            }
        }
        if let Some(delivery) = &report.delivery {
            for (status, n) in &delivery.responses {
                m.mixpanel_responses
                    .get_or_create(&Status {
                        status: status.to_string(),
                    })
                    .inc_by(*n);
            }
        }
        if let Some(cause) = stop {
            if app.stopping.load(Ordering::SeqCst) {
                break;
            }
            tracing::error!(error = %cause, "forwarding stopped; the batches stay queued");
            let wait = match cause {
                StopCause::Delivery(_) => Duration::from_secs(30),
                _ => Duration::from_secs(2),
            };
            app.forwarder_sleep(wait);
        }
    }
}
