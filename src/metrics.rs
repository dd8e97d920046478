//! Prometheus metrics: the series the gate and the central server expose on `/metrics`, in the
//! OpenMetrics text format (prometheus-client).
//!
//! Two registries, one per role: [`encode_gate`] (decisions by reason, decision latency, device
//! online, journal fill, journal write failures, sync lag) and [`encode_central`] (ingested events, HTTP latency). They
//! are process-wide so that the demo, which runs both roles in one process, still serves each
//! role's series on its own endpoint.
//!
//! The decision path records through a [`LaneMetrics`] built once when the lane starts: a
//! relaxed atomic add per counter and three for the histogram, no lock and no allocation. Gauges
//! that describe state (device online, journal fill, sync lag) are not pushed by the runtime at
//! all: [`refresh_gate`] reads them from the gate's status and journal at scrape time.
//!
//! What it never does: label a series with a plate, a person or a tag (labels are gate, lane,
//! device, reason, route), or take a lock on the decision path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::domain::ReasonCode;

/// Upper bounds (seconds) of the decision latency buckets: 1 µs to 10 ms. A decision takes
/// microseconds; anything in the last buckets is worth a look.
const DECISION_BUCKETS: [f64; 10] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2,
];

/// Upper bounds (seconds) of the HTTP request duration buckets.
const HTTP_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    gate: String,
    lane: String,
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    gate: String,
    lane: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceLabels {
    gate: String,
    lane: String,
    device: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CameraLabels {
    gate: String,
    camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CameraPushLabels {
    gate: String,
    camera: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabels {
    gate: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

/// A histogram whose observation is three relaxed atomic adds (prometheus-client's own
/// `Histogram` takes a mutex per observation). Buckets are `DECISION_BUCKETS`.
#[derive(Debug, Clone, Default)]
pub struct AtomicHistogram {
    inner: Arc<HistogramInner>,
}

#[derive(Debug, Default)]
struct HistogramInner {
    /// Observations per bucket (not cumulative); the last slot is +Inf.
    buckets: [AtomicU64; DECISION_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl AtomicHistogram {
    /// Records one duration in nanoseconds.
    pub fn observe_ns(&self, ns: u64) {
        let seconds = ns as f64 * 1e-9;
        let slot = DECISION_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(DECISION_BUCKETS.len());
        self.inner.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.inner.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.inner.count.fetch_add(1, Ordering::Relaxed);
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The encoder accumulates the per-bucket counts itself and writes INFINITY as +Inf.
        let buckets: Vec<(f64, u64)> = DECISION_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.inner.buckets)
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        let count = self.inner.count.load(Ordering::Relaxed);
        let sum = self.inner.sum_ns.load(Ordering::Relaxed) as f64 * 1e-9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

struct GateSeries {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    latency: Family<LaneLabels, AtomicHistogram>,
    tag_to_open: Family<LaneLabels, AtomicHistogram>,
    device_online: Family<DeviceLabels, Gauge>,
    journal_fill: Family<GateLabels, Gauge<f64, AtomicU64>>,
    journal_write_failing: Family<GateLabels, Gauge>,
    journal_write_failures: Family<GateLabels, Counter>,
    journal_waiting: Family<GateLabels, Gauge>,
    journal_lost: Family<GateLabels, Counter>,
    sync_lag: Family<GateLabels, Gauge>,
    camera_online: Family<CameraLabels, Gauge>,
    camera_pushes: Family<CameraPushLabels, Counter>,
}

struct CentralSeries {
    registry: Registry,
    ingest: Family<GateLabels, Counter>,
    http: Family<HttpLabels, Histogram>,
}

static GATE: LazyLock<GateSeries> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let decisions = Family::<DecisionLabels, Counter>::default();
    // prometheus-client appends `_total` to counters.
    registry.register(
        "gatehouse_decisions",
        "Lane decisions by outcome and reason code",
        decisions.clone(),
    );
    let latency = Family::<LaneLabels, AtomicHistogram>::default();
    registry.register(
        "gatehouse_decision_latency_seconds",
        "Time the decision engine took per credential read",
        latency.clone(),
    );
    let tag_to_open = Family::<LaneLabels, AtomicHistogram>::default();
    registry.register(
        "gatehouse_tag_to_open_seconds",
        "Time from a granted tag report's decoding until the lane has acted on it (its OPEN \
         handed to the I/O module's link): the controller's own share of tag to OPEN",
        tag_to_open.clone(),
    );
    let device_online = Family::<DeviceLabels, Gauge>::default();
    registry.register(
        "gatehouse_device_online",
        "1 while the lane's device (reader, io) answers, else 0",
        device_online.clone(),
    );
    let journal_fill = Family::<GateLabels, Gauge<f64, AtomicU64>>::default();
    registry.register(
        "gatehouse_journal_fill_ratio",
        "Events stored in the gate journal over its capacity (above 1 when undelivered events pile up)",
        journal_fill.clone(),
    );
    let journal_write_failing = Family::<GateLabels, Gauge>::default();
    registry.register(
        "gatehouse_journal_write_failing",
        "1 while the gate journal cannot commit (disk full, read-only) and events wait in memory, else 0",
        journal_write_failing.clone(),
    );
    let journal_write_failures = Family::<GateLabels, Counter>::default();
    registry.register(
        "gatehouse_journal_write_failures",
        "Journal commits that could not be written when they happened",
        journal_write_failures.clone(),
    );
    let journal_waiting = Family::<GateLabels, Gauge>::default();
    registry.register(
        "gatehouse_journal_backlog_events",
        "Events kept in memory until the journal can write them",
        journal_waiting.clone(),
    );
    let journal_lost = Family::<GateLabels, Counter>::default();
    registry.register(
        "gatehouse_journal_lost_events",
        "Events lost because the journal could not write and its in-memory backlog was full",
        journal_lost.clone(),
    );
    let sync_lag = Family::<GateLabels, Gauge>::default();
    registry.register(
        "gatehouse_sync_lag_events",
        "Journal events the centre has not acknowledged yet",
        sync_lag.clone(),
    );
    let camera_online = Family::<CameraLabels, Gauge>::default();
    registry.register(
        "gatehouse_camera_online",
        "1 while the plate camera pushes reads or heartbeats within its silent_after_s, else 0",
        camera_online.clone(),
    );
    let camera_pushes = Family::<CameraPushLabels, Counter>::default();
    registry.register(
        "gatehouse_camera_pushes",
        "Pushes from plate cameras by result (read, heartbeat, refused, failed)",
        camera_pushes.clone(),
    );
    GateSeries {
        registry,
        camera_online,
        camera_pushes,
        decisions,
        latency,
        tag_to_open,
        device_online,
        journal_fill,
        journal_write_failing,
        journal_write_failures,
        journal_waiting,
        journal_lost,
        sync_lag,
    }
});

static CENTRAL: LazyLock<CentralSeries> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let ingest = Family::<GateLabels, Counter>::default();
    registry.register(
        "gatehouse_ingest_events",
        "Gate events newly stored by the central server",
        ingest.clone(),
    );
    let http = Family::<HttpLabels, Histogram>::new_with_constructor(
        (|| Histogram::new(HTTP_BUCKETS)) as fn() -> Histogram,
    );
    registry.register(
        "gatehouse_http_request_duration_seconds",
        "HTTP request duration by method, route template and status",
        http.clone(),
    );
    CentralSeries {
        registry,
        ingest,
        http,
    }
});

/// Serialises scrapes: gauges are refreshed, then the registry encoded, as one step.
static SCRAPE: Mutex<()> = Mutex::new(());

/// One lane's decision series, resolved once when the lane starts.
#[derive(Debug, Clone)]
pub struct LaneMetrics {
    /// One counter per reason code, in [`ReasonCode::ALL`] order.
    decisions: Vec<Counter>,
    latency: AtomicHistogram,
    tag_to_open: AtomicHistogram,
}

impl LaneMetrics {
    /// Creates (or finds) the lane's series; every reason starts at zero so that a rate is
    /// defined from the first scrape.
    pub fn new(gate: u16, lane: &str) -> LaneMetrics {
        let g = &*GATE;
        let decisions = ReasonCode::ALL
            .iter()
            .map(|r| {
                g.decisions
                    .get_or_create(&DecisionLabels {
                        gate: gate.to_string(),
                        lane: lane.to_string(),
                        outcome: if r.is_grant() { "granted" } else { "denied" },
                        reason: r.as_str(),
                    })
                    .clone()
            })
            .collect();
        let labels = LaneLabels {
            gate: gate.to_string(),
            lane: lane.to_string(),
        };
        let latency = g.latency.get_or_create(&labels).clone();
        let tag_to_open = g.tag_to_open.get_or_create(&labels).clone();
        LaneMetrics {
            decisions,
            latency,
            tag_to_open,
        }
    }

    /// Records the controller's share of one tag → OPEN: lock-free, allocation-free.
    pub fn tag_to_open(&self, took: std::time::Duration) {
        self.tag_to_open
            .observe_ns(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Counts a journalled decision and its latency: lock-free, allocation-free.
    pub fn decision(&self, reason: ReasonCode, decide_ns: u64) {
        if let Some(i) = ReasonCode::ALL.iter().position(|r| *r == reason) {
            self.decisions[i].inc();
        }
        self.latency.observe_ns(decide_ns);
    }
}

/// A gate's state gauges, read at scrape time.
#[derive(Debug, Clone)]
pub struct GateGauges {
    pub gate: u16,
    /// (lane, reader online, io online).
    pub devices: Vec<(String, bool, bool)>,
    pub journal_stored: u64,
    pub journal_capacity: u64,
    pub journal_pending: u64,
    pub journal_write_failing: bool,
    /// Totals since the journal was opened (counters: only ever rise).
    pub journal_write_failures: u64,
    pub journal_waiting: u64,
    pub journal_lost: u64,
}

/// Sets the gate's state gauges.
pub fn refresh_gate(gauges: &GateGauges) {
    let g = &*GATE;
    let gate = gauges.gate.to_string();
    for (lane, reader, io) in &gauges.devices {
        for (device, online) in [("reader", reader), ("io", io)] {
            g.device_online
                .get_or_create(&DeviceLabels {
                    gate: gate.clone(),
                    lane: lane.clone(),
                    device,
                })
                .set(i64::from(*online));
        }
    }
    let labels = GateLabels { gate };
    g.journal_fill
        .get_or_create(&labels)
        .set(gauges.journal_stored as f64 / gauges.journal_capacity.max(1) as f64);
    g.sync_lag
        .get_or_create(&labels)
        .set(gauges.journal_pending as i64);
    g.journal_write_failing
        .get_or_create(&labels)
        .set(i64::from(gauges.journal_write_failing));
    g.journal_waiting
        .get_or_create(&labels)
        .set(gauges.journal_waiting as i64);
    // The journal keeps the totals; the counters catch up to them (scrapes are serialised).
    for (counter, total) in [
        (&g.journal_write_failures, gauges.journal_write_failures),
        (&g.journal_lost, gauges.journal_lost),
    ] {
        let counter = counter.get_or_create(&labels);
        let seen = counter.get();
        if total > seen {
            counter.inc_by(total - seen);
        }
    }
}

/// Sets whether a plate camera is online (pushing within its silence limit).
pub fn camera_online(gate: u16, camera: &str, online: bool) {
    GATE.camera_online
        .get_or_create(&CameraLabels {
            gate: gate.to_string(),
            camera: camera.to_string(),
        })
        .set(i64::from(online));
}

/// Counts one push from a plate camera: `read`, `heartbeat`, `refused` (answered 4xx) or
/// `failed` (answered 5xx: the camera retries).
pub fn camera_push(gate: u16, camera: &str, result: &'static str) {
    GATE.camera_pushes
        .get_or_create(&CameraPushLabels {
            gate: gate.to_string(),
            camera: camera.to_string(),
            result,
        })
        .inc();
}

/// Counts events the centre stored for a gate.
pub fn ingested(gate_id: i64, stored: u64) {
    CENTRAL
        .ingest
        .get_or_create(&GateLabels {
            gate: gate_id.to_string(),
        })
        .inc_by(stored);
}

/// Records one HTTP request's duration under its route template (never the raw path, which
/// could carry ids or plates).
pub fn http_request(method: &str, route: &str, status: u16, seconds: f64) {
    CENTRAL
        .http
        .get_or_create(&HttpLabels {
            method: method.to_string(),
            route: route.to_string(),
            status,
        })
        .observe(seconds);
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

/// The gate registry in the OpenMetrics text format, after `refresh` has set the gauges.
pub fn encode_gate(refresh: impl FnOnce()) -> String {
    let _one = SCRAPE.lock().unwrap_or_else(|e| e.into_inner());
    refresh();
    encode(&GATE.registry)
}

/// The central registry in the OpenMetrics text format.
pub fn encode_central() -> String {
    encode(&CENTRAL.registry)
}

/// The content type of [`encode_gate`] and [`encode_central`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_lands_in_its_reason_counter_and_latency_bucket() {
        let lane = LaneMetrics::new(65001, "unit");
        lane.decision(ReasonCode::DeniedExpired, 3_000);
        lane.decision(ReasonCode::Granted, 20_000);
        let text = encode_gate(|| {});
        assert!(text.contains(
            "gatehouse_decisions_total{gate=\"65001\",lane=\"unit\",outcome=\"denied\",reason=\"denied_expired\"} 1"
        ));
        for (le, n) in [
            ("0.0000025", 0),
            ("0.000005", 1),
            ("0.000025", 2),
            ("+Inf", 2),
        ] {
            let line = format!(
                "gatehouse_decision_latency_seconds_bucket{{le=\"{le}\",gate=\"65001\",lane=\"unit\"}} {n}\n"
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(
            text.contains(
                "gatehouse_decision_latency_seconds_count{gate=\"65001\",lane=\"unit\"} 2"
            )
        );
    }
}
