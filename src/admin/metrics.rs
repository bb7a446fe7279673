//! `/metrics`: a prometheus-client [`Collector`] that reads every link's
//! counters when scraped and encodes them as OpenMetrics text.

use std::fmt;
use std::time::UNIX_EPOCH;

use databay_core::{HISTOGRAM_BOUNDS, HistogramSnapshot, LinkStats, NodeKind, Planner};
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

/// A registry whose one collector reads `planner` at each scrape.
pub(super) fn registry(planner: Planner) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(PlannerCollector { planner }));
    registry
}

/// The OpenMetrics text of everything in `registry`.
pub(super) fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

/// Every link's metrics, read from the planner when scraped rather than
/// mirrored into prometheus-client metrics, so the transfer path keeps its
/// lock-free counters and nothing is kept twice.
#[derive(Debug)]
struct PlannerCollector {
    planner: Planner,
}

impl Collector for PlannerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let links: Vec<LinkMetrics> = self.planner.links().iter().map(LinkMetrics::read).collect();
        encode_links(&mut encoder, &links)
    }
}

/// One link as read for a scrape.
#[derive(Debug)]
pub(super) struct LinkMetrics {
    /// The link's name, escaped for a label value.
    pub(super) label: String,
    pub(super) paused: bool,
    pub(super) stats: LinkStats,
    pub(super) nodes: Vec<NodeMetrics>,
}

impl LinkMetrics {
    fn read(link: &databay_core::Link) -> Self {
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
                        _ => "outlet",
                    },
                    index: n.index,
                    component: escape_label(&n.name),
                    calls: n.calls,
                    records: n.records,
                    errors: n.errors,
                })
                .collect(),
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

/// Encodes every family of `links`. Counter families are named without
/// `_total`: the encoder appends it to each sample.
pub(super) fn encode_links(
    encoder: &mut DescriptorEncoder<'_>,
    links: &[LinkMetrics],
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
        .encode_gauge(&links.len())?;

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
    let counters: [(&str, &str, Read); 5] = [
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

    type ReadNode = fn(&NodeMetrics) -> u64;
    let node_counters: [(&str, &str, ReadNode); 3] = [
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

    histogram(
        encoder,
        "databay_transfer_duration_seconds",
        "How long transfers took.",
        links,
        |s| &s.duration,
    )?;
    histogram(
        encoder,
        "databay_schedule_lateness_seconds",
        "How late scheduled transfers started relative to their tick.",
        links,
        |s| &s.lateness,
    )
}

fn counter(encoder: &mut MetricEncoder<'_>, value: u64) -> fmt::Result {
    encoder.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// Encodes a histogram family, one series per link.
fn histogram(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    links: &[LinkMetrics],
    pick: fn(&LinkStats) -> &HistogramSnapshot,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for l in links {
        let h = pick(&l.stats);
        let buckets = buckets(h);
        // `+Inf` and `_count` come from the same sum so they always agree.
        let count = buckets.iter().map(|(_, n)| n).sum();
        family
            .encode_family(&[("link", l.label.as_str())])?
            .encode_histogram::<NoLabelSet>(h.sum_seconds, count, &buckets, None)?;
    }
    Ok(())
}

/// The core's buckets as (upper bound, count in that bucket alone) pairs,
/// the overflow bucket last with the bound `f64::MAX` that the encoder
/// writes as `+Inf`. The encoder makes them cumulative.
fn buckets(h: &HistogramSnapshot) -> [(f64, u64); HISTOGRAM_BOUNDS.len() + 1] {
    let mut out = [(f64::MAX, 0); HISTOGRAM_BOUNDS.len() + 1];
    for (i, (bound, count)) in out.iter_mut().enumerate() {
        if let Some(b) = HISTOGRAM_BOUNDS.get(i) {
            *bound = *b;
        }
        *count = h.buckets.get(i).copied().unwrap_or(0);
    }
    out
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
