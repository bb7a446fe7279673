//! `/metrics`: a prometheus-client [`Collector`] that reads every link's
//! counters when scraped and encodes them as OpenMetrics text.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use databay_core::{
    HISTOGRAM_BOUNDS, HistogramSnapshot, Link, LinkStats, NodeKind, Planner, ProcessorGauges,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, LabelSetEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The content type of what prometheus-client writes. Counter samples end in
/// `_total` under a family named without it, which only OpenMetrics parsers
/// read as one counter; the classic text format would not.
pub(super) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The endpoint's metrics: a registry whose one collector reads the
/// planner at each scrape.
#[derive(Debug)]
pub(super) struct Metrics {
    registry: Registry,
    /// The last body's length: with thousands of links the body is
    /// megabytes, and growing it from empty would copy it over and over.
    last_len: AtomicUsize,
}

impl Metrics {
    /// Metrics of `planner`, with the per-link series `series` asks for.
    pub(super) fn new(planner: Planner, series: LinkSeries) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(PlannerCollector {
            planner,
            series,
            daemon: Mutex::default(),
        }));
        Metrics {
            registry,
            last_len: AtomicUsize::new(0),
        }
    }

    /// The OpenMetrics text, read now.
    pub(super) fn encode(&self) -> Result<String, fmt::Error> {
        // A little room for links added since the last scrape.
        let hint = self.last_len.load(Ordering::Relaxed);
        let text = encode(&self.registry, hint + hint / 8)?;
        self.last_len.store(text.len(), Ordering::Relaxed);
        Ok(text)
    }
}

/// The OpenMetrics text of everything in `registry`.
pub(super) fn encode(registry: &Registry, capacity: usize) -> Result<String, fmt::Error> {
    let mut out = String::with_capacity(capacity);
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

/// Every link's metrics, read from the planner when scraped rather than
/// mirrored into prometheus-client metrics, so the transfer path keeps its
/// lock-free counters and nothing is kept twice.
#[derive(Debug)]
struct PlannerCollector {
    planner: Planner,
    series: LinkSeries,
    daemon: Mutex<DaemonHistograms>,
}

/// Which per-link series a scrape has; the daemon-wide ones are always
/// there.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkSeries {
    /// Each link's counters and gauges, its components' and its stateful
    /// processors' (`[admin] link_metrics`).
    pub(super) counters: bool,
    /// Each link's duration and lateness histograms (`[admin]
    /// link_histograms`).
    pub(super) histograms: bool,
}

impl Default for LinkSeries {
    fn default() -> Self {
        LinkSeries {
            counters: true,
            histograms: false,
        }
    }
}

impl Collector for PlannerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        // Held while the links are read too: two scrapes recording their
        // reads in the other order would make the daemon-wide sums go back.
        // A panic cannot leave it half-updated in a way that matters more
        // than one scrape's worth of counts, so a poisoned lock is used as is.
        let mut daemon = self.daemon.lock().unwrap_or_else(|p| p.into_inner());
        let links = self.planner.links();
        let count = links.len();
        if !self.series.counters {
            // Only the sums: each link read and added up in turn, nothing
            // kept per link.
            let all = daemon.update(links.into_iter().map(|l| {
                let totals = Totals::of_stats(&l.stats());
                (l, totals)
            }));
            return encode_links(&mut encoder, &[], count, &all, self.series);
        }
        let links: Vec<LinkMetrics> = links.into_iter().map(LinkMetrics::read).collect();
        let all = daemon.update(
            links
                .iter()
                .map(|l| (l.link.clone(), Totals::of_stats(&l.stats))),
        );
        encode_links(&mut encoder, &links, count, &all, self.series)
    }
}

/// One link as read for a scrape.
#[derive(Debug)]
pub(super) struct LinkMetrics {
    pub(super) link: Link,
    /// The link's name, escaped for a label value.
    pub(super) label: String,
    pub(super) paused: bool,
    pub(super) stats: LinkStats,
    pub(super) nodes: Vec<NodeMetrics>,
    /// What its stateful processors hold (names escaped for labels).
    pub(super) processors: Vec<ProcessorGauges>,
}

impl LinkMetrics {
    fn read(link: Link) -> Self {
        LinkMetrics {
            label: escape_label(link.name()),
            paused: link.is_paused(),
            stats: link.stats(),
            nodes: link
                .node_stats()
                .into_iter()
                .map(|n| NodeMetrics {
                    kind: match n.kind {
                        NodeKind::Inlet => "inlet",
                        NodeKind::DeadLetter => "dead_letter",
                        _ => "outlet",
                    },
                    index: n.index,
                    component: escape_label(&n.name),
                    calls: n.calls,
                    records: n.records,
                    errors: n.errors,
                    failed: n.records_failed,
                    rejected: n.records_rejected,
                    dead_lettered: n.records_dead_lettered,
                    retries: n.retries,
                    bytes: n.bytes,
                })
                .collect(),
            processors: link
                .processor_gauges()
                .into_iter()
                .map(|mut p| {
                    p.name = escape_label(&p.name);
                    p
                })
                .collect(),
            link,
        }
    }
}

/// One inlet or outlet of a link as read for a scrape.
#[derive(Debug)]
pub(super) struct NodeMetrics {
    pub(super) kind: &'static str,
    pub(super) index: usize,
    /// The component's name, escaped for a label value.
    pub(super) component: String,
    pub(super) calls: u64,
    pub(super) records: u64,
    pub(super) errors: u64,
    pub(super) failed: u64,
    pub(super) rejected: u64,
    pub(super) dead_lettered: u64,
    pub(super) retries: u64,
    /// Bytes received (inlets) or sent (outlets); `None` if the connector
    /// does not count them.
    pub(super) bytes: Option<u64>,
}

/// The labels of a component's series.
struct NodeLabels<'a> {
    link: &'a str,
    node: &'a NodeMetrics,
}

impl EncodeLabelSet for NodeLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> fmt::Result {
        ("link", self.link).encode(encoder.encode_label())?;
        ("kind", self.node.kind).encode(encoder.encode_label())?;
        ("index", self.node.index).encode(encoder.encode_label())?;
        ("component", self.node.component.as_str()).encode(encoder.encode_label())
    }
}

/// Encodes every family of `links` (`count` links in the planner; `links`
/// may be empty when `series` asks for no per-link series), with `all`
/// ([duration, lateness]) as the daemon-wide histograms. Counter families
/// are named without `_total`: the encoder appends it to each sample.
pub(super) fn encode_links(
    encoder: &mut DescriptorEncoder<'_>,
    links: &[LinkMetrics],
    count: usize,
    all: &[Totals; 2],
    series: LinkSeries,
) -> fmt::Result {
    encoder
        .encode_descriptor(
            "databay_up",
            "1 while the daemon answers.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&1i64)?;
    encoder
        .encode_descriptor(
            "databay_links",
            "Links in the planner.",
            None,
            MetricType::Gauge,
        )?
        .encode_gauge(&count)?;
    if series.counters {
        encode_link_counters(encoder, links)?;
    }

    let [duration, lateness] = all;
    duration.encode(&mut encoder.encode_descriptor(
        "databay_daemon_transfer_duration_seconds",
        "How long transfers took, all links together.",
        None,
        MetricType::Histogram,
    )?)?;
    lateness.encode(&mut encoder.encode_descriptor(
        "databay_daemon_schedule_lateness_seconds",
        "How late scheduled transfers started relative to their tick, all links together.",
        None,
        MetricType::Histogram,
    )?)?;

    if series.histograms {
        per_link_histogram(
            encoder,
            "databay_transfer_duration_seconds",
            "How long transfers took.",
            links,
            |s| &s.duration,
        )?;
        per_link_histogram(
            encoder,
            "databay_schedule_lateness_seconds",
            "How late scheduled transfers started relative to their tick.",
            links,
            |s| &s.lateness,
        )?;
    }
    Ok(())
}

/// Each link's counters and gauges, its components' and its stateful
/// processors'.
fn encode_link_counters(encoder: &mut DescriptorEncoder<'_>, links: &[LinkMetrics]) -> fmt::Result {
    let mut family = encoder.encode_descriptor(
        "databay_transfers",
        "Transfers, by result.",
        None,
        MetricType::Counter,
    )?;
    for l in links {
        for (result, value) in [
            ("ok", l.stats.transfers_ok),
            ("failed", l.stats.transfers_failed),
        ] {
            counter(
                &mut family.encode_family(&[("link", l.label.as_str()), ("result", result)])?,
                value,
            )?;
        }
    }

    type Read = fn(&LinkStats) -> u64;
    let counters: [(&str, &str, Read); 8] = [
        (
            "databay_ticks_skipped",
            "Scheduled ticks skipped because the previous transfer was still running.",
            |s| s.ticks_skipped,
        ),
        ("databay_records_in", "Records pulled from inlets.", |s| {
            s.records_in
        }),
        (
            "databay_records_out",
            "Records accepted by outlets (each outlet counts its own).",
            |s| s.records_out,
        ),
        (
            "databay_records_dropped",
            "Records dropped because the node handling them failed under ignore_exceptions.",
            |s| s.records_dropped,
        ),
        (
            "databay_records_failed",
            "Records an outlet did not accept: its push failed, or the transfer failed before it (each outlet counts its own).",
            |s| s.records_failed,
        ),
        (
            "databay_records_rejected",
            "Records an outlet refused one by one while writing the rest of their batch (each outlet counts its own).",
            |s| s.records_rejected,
        ),
        (
            "databay_records_dead_lettered",
            "Records the link's dead-letter outlet took: rejected by an outlet, or in a batch whose push failed for good.",
            |s| s.records_dead_lettered,
        ),
        ("databay_errors", "Node errors, ignored or not.", |s| {
            s.errors
        }),
    ];
    for (name, help, value) in counters {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for l in links {
            counter(
                &mut family.encode_family(&[("link", l.label.as_str())])?,
                value(&l.stats),
            )?;
        }
    }

    let mut family = encoder.encode_descriptor(
        "databay_last_success_timestamp_seconds",
        "When a transfer last succeeded (Unix time; 0 if never).",
        None,
        MetricType::Gauge,
    )?;
    for l in links {
        let secs = l
            .stats
            .last_success
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        family
            .encode_family(&[("link", l.label.as_str())])?
            .encode_gauge(&secs)?;
    }

    let mut family = encoder.encode_descriptor(
        "databay_link_paused",
        "1 if scheduled transfers of the link are paused.",
        None,
        MetricType::Gauge,
    )?;
    for l in links {
        family
            .encode_family(&[("link", l.label.as_str())])?
            .encode_gauge(&u32::from(l.paused))?;
    }

    let mut family = encoder.encode_descriptor(
        "databay_link_consecutive_failures",
        "Failed transfers (or starts) of the link in a row; 0 after a success.",
        None,
        MetricType::Gauge,
    )?;
    for l in links {
        family
            .encode_family(&[("link", l.label.as_str())])?
            .encode_gauge(&l.stats.consecutive_failures)?;
    }

    let mut family = encoder.encode_descriptor(
        "databay_link_backoff_seconds",
        "How long the link still waits after failures before trying again (0: not backing off).",
        None,
        MetricType::Gauge,
    )?;
    for l in links {
        let left = l
            .stats
            .backoff_until
            .and_then(|u| u.duration_since(SystemTime::now()).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        family
            .encode_family(&[("link", l.label.as_str())])?
            .encode_gauge(&left)?;
    }

    type ReadNode = fn(&NodeMetrics) -> u64;
    let node_counters: [(&str, &str, ReadNode); 7] = [
        (
            "databay_component_calls",
            "Pulls (inlets) or pushes (outlets) made, per component of each link.",
            |n| n.calls,
        ),
        (
            "databay_component_records",
            "Records pulled (inlets) or accepted (outlets), per component of each link.",
            |n| n.records,
        ),
        (
            "databay_component_errors",
            "Failed pulls or pushes (errors, panics, timeouts), per component of each link.",
            |n| n.errors,
        ),
        (
            "databay_component_records_failed",
            "Outlets: records a push failed to deliver (0 for inlets), per component of each link.",
            |n| n.failed,
        ),
        (
            "databay_component_records_rejected",
            "Outlets: records refused one by one while the rest of their batch was written (0 for inlets), per component of each link.",
            |n| n.rejected,
        ),
        (
            "databay_component_records_dead_lettered",
            "Outlets: records it rejected or failed to take that went to the link's dead-letter outlet (0 for inlets), per component of each link.",
            |n| n.dead_lettered,
        ),
        (
            "databay_component_retries",
            "Outlets: pushes tried again under the outlet's retry policy, by every link sharing the instance (0 for inlets), per component of each link.",
            |n| n.retries,
        ),
    ];
    for (name, help, value) in node_counters {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for l in links {
            for node in &l.nodes {
                let labels = NodeLabels {
                    link: &l.label,
                    node,
                };
                counter(&mut family.encode_family(&labels)?, value(node))?;
            }
        }
    }

    // Vector's names: bytes an inlet received, bytes an outlet sent. Only
    // components that count bytes have a series; a missing one is not 0.
    for (name, help, kind) in [
        (
            "databay_component_received_bytes",
            "Inlets: bytes read from the source, as the connector counts them, per component of each link.",
            "inlet",
        ),
        (
            "databay_component_sent_bytes",
            "Outlets: bytes written to the destination, as the connector counts them, per component of each link.",
            "outlet",
        ),
    ] {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for l in links {
            for node in l.nodes.iter().filter(|n| n.kind == kind) {
                if let Some(bytes) = node.bytes {
                    let labels = NodeLabels {
                        link: &l.label,
                        node,
                    };
                    counter(&mut family.encode_family(&labels)?, bytes)?;
                }
            }
        }
    }

    encode_processor_gauges(encoder, links)
}

/// What stateful processors report (`/links` shows the same): a family per
/// figure, `databay_processor_<figure>`, labelled by link, the processor's
/// position and name. Figures ending in `_total` only grow (counters); the
/// others go up and down (gauges).
fn encode_processor_gauges(
    encoder: &mut DescriptorEncoder<'_>,
    links: &[LinkMetrics],
) -> fmt::Result {
    let figures: std::collections::BTreeSet<&'static str> = links
        .iter()
        .flat_map(|l| &l.processors)
        .flat_map(|p| p.gauges.iter().map(|g| g.name))
        .collect();
    for figure in figures {
        let (name, kind) = match figure.strip_suffix("_total") {
            Some(name) => (name, MetricType::Counter),
            None => (figure, MetricType::Gauge),
        };
        let help = match figure {
            "keys" => "Keys a stateful processor holds state for.",
            "timers" => "Keys of a stateful processor waiting for a deadline.",
            "windows" => "Windows a window processor holds open, over all keys.",
            "late_records_total" => {
                "Records a window processor found late (passed on marked `__late__`)."
            }
            "rejected_records_total" => {
                "Records a stateful processor left out (no key, or refused by its logic)."
            }
            _ => "A figure a stateful processor reports.",
        };
        let family_name = format!("databay_processor_{name}");
        let mut family = encoder.encode_descriptor(&family_name, help, None, kind)?;
        for l in links {
            for p in &l.processors {
                let Some(g) = p.gauges.iter().find(|g| g.name == figure) else {
                    continue;
                };
                let index = p.index.to_string();
                let labels = [
                    ("link", l.label.as_str()),
                    ("index", index.as_str()),
                    ("processor", p.name.as_str()),
                ];
                let mut m = family.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => counter(&mut m, g.value)?,
                    _ => m.encode_gauge(&g.value)?,
                }
            }
        }
    }
    Ok(())
}

fn counter(encoder: &mut MetricEncoder<'_>, value: u64) -> fmt::Result {
    encoder.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// Encodes a histogram family, one series per link.
fn per_link_histogram(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    links: &[LinkMetrics],
    pick: fn(&LinkStats) -> &HistogramSnapshot,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for l in links {
        Totals::of(pick(&l.stats))
            .encode(&mut family.encode_family(&[("link", l.label.as_str())])?)?;
    }
    Ok(())
}

/// Buckets in a histogram: the core's bounds and the overflow (`+Inf`).
const BUCKETS: usize = HISTOGRAM_BOUNDS.len() + 1;

/// One histogram's counts, each bucket on its own (not cumulative), as
/// plain numbers that add up across links.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Totals {
    buckets: [u64; BUCKETS],
    sum_seconds: f64,
}

impl Totals {
    /// [duration, lateness] of one link.
    pub(super) fn of_stats(stats: &LinkStats) -> [Self; 2] {
        [Self::of(&stats.duration), Self::of(&stats.lateness)]
    }

    fn of(h: &HistogramSnapshot) -> Self {
        let mut buckets = [0; BUCKETS];
        for (total, count) in buckets.iter_mut().zip(&h.buckets) {
            *total = *count;
        }
        Totals {
            buckets,
            sum_seconds: h.sum_seconds,
        }
    }

    fn add(&mut self, other: &Totals) {
        for (total, count) in self.buckets.iter_mut().zip(other.buckets) {
            *total = total.saturating_add(count);
        }
        self.sum_seconds += other.sum_seconds;
    }

    fn encode(&self, encoder: &mut MetricEncoder<'_>) -> fmt::Result {
        // The encoder makes the buckets cumulative and writes the bound
        // `f64::MAX` as `+Inf`.
        let mut pairs = [(f64::MAX, 0); BUCKETS];
        for (i, (bound, count)) in pairs.iter_mut().enumerate() {
            if let Some(b) = HISTOGRAM_BOUNDS.get(i) {
                *bound = *b;
            }
            *count = self.buckets[i];
        }
        // `+Inf` and `_count` come from the same sum so they always agree.
        let count = self.buckets.iter().fold(0u64, |a, b| a.saturating_add(*b));
        encoder.encode_histogram::<NoLabelSet>(self.sum_seconds, count, &pairs, None)
    }
}

/// The daemon-wide histograms: every link's added up. A sum that dropped
/// when a reload removed or replaced a link would read to Prometheus as a
/// reset, and `rate()` would count it all again, so what a link that has
/// gone had counted stays in the sum. Each link seen is remembered by its
/// handle alone (no copy of its counts): when it is gone, its final counts
/// are read from it once and added to those of the links gone before.
#[derive(Debug, Default)]
pub(super) struct DaemonHistograms {
    /// By link name. The handle tells a replacement under the same name,
    /// which starts from zero, apart.
    links: HashMap<String, SeenLink>,
    /// [duration, lateness] of links that have gone.
    gone: [Totals; 2],
    scrape: u64,
}

#[derive(Debug)]
struct SeenLink {
    link: Link,
    scrape: u64,
}

impl DaemonHistograms {
    /// Records one scrape's read of the planner's links (each with its
    /// [duration, lateness]); returns [duration, lateness] over all links,
    /// gone ones included.
    pub(super) fn update(
        &mut self,
        links: impl IntoIterator<Item = (Link, [Totals; 2])>,
    ) -> [Totals; 2] {
        self.scrape += 1;
        let scrape = self.scrape;
        let mut all = [Totals::default(); 2];
        for (link, totals) in links {
            add(&mut all, &totals);
            match self.links.get_mut(link.name()) {
                Some(seen) if seen.link.same_as(&link) => seen.scrape = scrape,
                Some(seen) => {
                    let replaced = std::mem::replace(seen, SeenLink { link, scrape });
                    add(&mut self.gone, &Totals::of_stats(&replaced.link.stats()));
                }
                None => {
                    self.links
                        .insert(link.name().to_owned(), SeenLink { link, scrape });
                }
            }
        }
        let gone = &mut self.gone;
        self.links.retain(|_, seen| {
            let kept = seen.scrape == scrape;
            if !kept {
                add(gone, &Totals::of_stats(&seen.link.stats()));
            }
            kept
        });
        add(&mut all, &self.gone);
        all
    }
}

fn add(to: &mut [Totals; 2], from: &[Totals; 2]) {
    for (t, f) in to.iter_mut().zip(from) {
        t.add(f);
    }
}

/// Escapes a label value as the exposition format requires (backslash,
/// double quote and line feed); prometheus-client writes values verbatim.
pub(super) fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
