//! Prometheus text exposition of the planner's links.

use std::fmt::{self, Write as _};
use std::time::UNIX_EPOCH;

use databay_core::{HISTOGRAM_BOUNDS, HistogramSnapshot, LinkStats, Planner};

/// Prometheus text exposition of every link's metrics.
///
/// Per link (label `link`): `databay_transfers_total{result="ok"|"failed"}`,
/// `databay_ticks_skipped_total`, `databay_records_in_total`,
/// `databay_records_out_total`, `databay_records_dropped_total`,
/// `databay_errors_total`, `databay_last_success_timestamp_seconds` (0 until
/// a transfer succeeded), `databay_link_paused`, and the histograms
/// `databay_transfer_duration_seconds` and
/// `databay_schedule_lateness_seconds`. Overall: `databay_up` and
/// `databay_links`.
pub fn metrics_text(planner: &Planner) -> String {
    let links: Vec<LinkMetrics> = planner
        .links()
        .iter()
        .map(|l| LinkMetrics {
            label: escape_label(l.name()),
            paused: l.is_paused(),
            stats: l.stats(),
            nodes: l.node_stats(),
        })
        .collect();
    let mut out = String::with_capacity(1024 + links.len() * 3072);
    // Writing into a String cannot fail.
    let _ = render(&mut out, &links);
    out
}

pub(super) struct LinkMetrics {
    /// The link's name, escaped for a label value.
    pub(super) label: String,
    pub(super) paused: bool,
    pub(super) stats: LinkStats,
    pub(super) nodes: Vec<databay_core::NodeStats>,
}

pub(super) fn render(out: &mut String, links: &[LinkMetrics]) -> fmt::Result {
    family(out, "databay_up", "gauge", "1 while the daemon answers.")?;
    writeln!(out, "databay_up 1")?;
    family(out, "databay_links", "gauge", "Links in the planner.")?;
    writeln!(out, "databay_links {}", links.len())?;

    family(
        out,
        "databay_transfers_total",
        "counter",
        "Transfers, by result.",
    )?;
    for l in links {
        let (name, s) = (&l.label, &l.stats);
        writeln!(
            out,
            "databay_transfers_total{{link=\"{name}\",result=\"ok\"}} {}",
            s.transfers_ok
        )?;
        writeln!(
            out,
            "databay_transfers_total{{link=\"{name}\",result=\"failed\"}} {}",
            s.transfers_failed
        )?;
    }

    type Read = fn(&LinkStats) -> u64;
    let counters: [(&str, &str, Read); 5] = [
        (
            "databay_ticks_skipped_total",
            "Scheduled ticks skipped because the previous transfer was still running.",
            |s| s.ticks_skipped,
        ),
        (
            "databay_records_in_total",
            "Records pulled from inlets.",
            |s| s.records_in,
        ),
        (
            "databay_records_out_total",
            "Records accepted by outlets (each outlet counts its own).",
            |s| s.records_out,
        ),
        (
            "databay_records_dropped_total",
            "Records dropped because the node handling them failed under ignore_exceptions.",
            |s| s.records_dropped,
        ),
        (
            "databay_errors_total",
            "Node errors, ignored or not.",
            |s| s.errors,
        ),
    ];
    for (metric, help, value) in counters {
        family(out, metric, "counter", help)?;
        for l in links {
            writeln!(out, "{metric}{{link=\"{}\"}} {}", l.label, value(&l.stats))?;
        }
    }

    family(
        out,
        "databay_last_success_timestamp_seconds",
        "gauge",
        "When a transfer last succeeded (Unix time; 0 if never).",
    )?;
    for l in links {
        let secs = l
            .stats
            .last_success
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        writeln!(
            out,
            "databay_last_success_timestamp_seconds{{link=\"{}\"}} {secs}",
            l.label
        )?;
    }

    family(
        out,
        "databay_link_paused",
        "gauge",
        "1 if scheduled transfers of the link are paused.",
    )?;
    for l in links {
        writeln!(
            out,
            "databay_link_paused{{link=\"{}\"}} {}",
            l.label,
            u8::from(l.paused)
        )?;
    }

    type ReadNode = fn(&databay_core::NodeStats) -> u64;
    let node_counters: [(&str, &str, ReadNode); 3] = [
        (
            "databay_component_calls_total",
            "Pulls (inlets) or pushes (outlets) made, per component of each link.",
            |n| n.calls,
        ),
        (
            "databay_component_records_total",
            "Records pulled (inlets) or accepted (outlets), per component of each link.",
            |n| n.records,
        ),
        (
            "databay_component_errors_total",
            "Failed pulls or pushes (errors, panics, timeouts), per component of each link.",
            |n| n.errors,
        ),
    ];
    for (metric, help, value) in node_counters {
        family(out, metric, "counter", help)?;
        for l in links {
            for n in &l.nodes {
                let kind = match n.kind {
                    databay_core::NodeKind::Inlet => "inlet",
                    _ => "outlet",
                };
                writeln!(
                    out,
                    "{metric}{{link=\"{}\",kind=\"{kind}\",index=\"{}\",component=\"{}\"}} {}",
                    l.label,
                    n.index,
                    escape_label(&n.name),
                    value(n)
                )?;
            }
        }
    }

    histogram(
        out,
        "databay_transfer_duration_seconds",
        "How long transfers took.",
        links,
        |s| &s.duration,
    )?;
    histogram(
        out,
        "databay_schedule_lateness_seconds",
        "How late scheduled transfers started relative to their tick.",
        links,
        |s| &s.lateness,
    )
}

fn family(out: &mut String, metric: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(out, "# HELP {metric} {help}")?;
    writeln!(out, "# TYPE {metric} {kind}")
}

/// Writes a histogram family; the core counts each bucket on its own, the
/// exposition format wants each `le` bucket to include those below it.
fn histogram(
    out: &mut String,
    metric: &str,
    help: &str,
    links: &[LinkMetrics],
    pick: fn(&LinkStats) -> &HistogramSnapshot,
) -> fmt::Result {
    family(out, metric, "histogram", help)?;
    for l in links {
        let h = pick(&l.stats);
        let mut cumulative = 0u64;
        for (i, bound) in HISTOGRAM_BOUNDS.iter().enumerate() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            writeln!(
                out,
                "{metric}_bucket{{link=\"{}\",le=\"{bound}\"}} {cumulative}",
                l.label
            )?;
        }
        // Everything, including the overflow bucket: `+Inf` and `_count`
        // come from the same sum so they always agree.
        let total: u64 = h.buckets.iter().sum();
        writeln!(
            out,
            "{metric}_bucket{{link=\"{}\",le=\"+Inf\"}} {total}",
            l.label
        )?;
        writeln!(
            out,
            "{metric}_sum{{link=\"{}\"}} {}",
            l.label, h.sum_seconds
        )?;
        writeln!(out, "{metric}_count{{link=\"{}\"}} {total}", l.label)?;
    }
    Ok(())
}

/// Escapes a label value as the exposition format requires: backslash,
/// double quote and line feed.
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
