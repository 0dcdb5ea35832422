//! Service metrics, exposed at `/metrics` in the Prometheus text format.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::Mode;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BatchLabels {
    pub mode: String,
    /// created, existing or failed
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetLabels {
    pub dataset: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabels {
    pub mode: String,
}

pub struct Metrics {
    registry: Registry,
    batches: Family<BatchLabels, Counter>,
    rows: Family<DatasetLabels, Counter>,
    duration: Family<ModeLabels, Histogram>,
    in_flight: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("datagen");
        let batches = Family::<BatchLabels, Counter>::default();
        let rows = Family::<DatasetLabels, Counter<u64, AtomicU64>>::default();
        let duration = Family::<ModeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let in_flight = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "batches",
            "Batch requests by mode and outcome",
            batches.clone(),
        );
        registry.register("rows_written", "Rows written by dataset", rows.clone());
        registry.register(
            "generation_duration_seconds",
            "Time to generate and commit a batch",
            duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests whose response is not yet fully sent, this scrape included",
            in_flight.clone(),
        );
        Metrics {
            registry,
            batches,
            rows,
            duration,
            in_flight,
        }
    }

    pub fn batch(&self, mode: Mode, outcome: &str) {
        self.batches
            .get_or_create(&BatchLabels {
                mode: mode.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn generated(&self, mode: Mode, seconds: f64, manifest: &crate::manifest::Manifest) {
        self.duration
            .get_or_create(&ModeLabels {
                mode: mode.to_string(),
            })
            .observe(seconds);
        // A dataset written as text and Parquet counts its rows once.
        let rows: std::collections::BTreeMap<&str, u64> = manifest
            .files
            .iter()
            .map(|f| (f.dataset_name(), f.rows))
            .collect();
        for (dataset, rows) in rows {
            self.rows
                .get_or_create(&DatasetLabels {
                    dataset: dataset.to_string(),
                })
                .inc_by(rows);
        }
    }

    /// The text exposition, with `in_flight` requests (counted by the
    /// middleware, read at scrape time).
    pub fn render(&self, in_flight: usize) -> String {
        self.in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
