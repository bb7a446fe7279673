//! Logs through `tracing`. The human format reads like Databay's log line:
//! time, level, the update (`http_to_mongo.3`), the component, the message:
//!
//! ```text
//! 2026-11-22T00:12:51.169Z  INFO http_to_mongo.3 HttpInlet: received url=https://…
//! ```
//!
//! JSON (`--log-format json`) carries the same fields in every line.

use std::fmt;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::cli::LogFormat;

/// The `update` and `component` a span carries, kept for the formatter.
#[derive(Default, Clone)]
struct Tags {
    update: Option<String>,
    component: Option<String>,
}

impl Visit for Tags {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "update" => self.update = Some(format!("{value:?}")),
            "component" => self.component = Some(format!("{value:?}")),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "update" => self.update = Some(value.to_owned()),
            "component" => self.component = Some(value.to_owned()),
            _ => {}
        }
    }
}

/// Records each span's tags when it is created, and leaves the span's
/// other fields unformatted: [`Human`] prints only the tags, and
/// formatting every field of every transfer's spans into a string nobody
/// reads was a good part of the daemon's CPU per transfer.
struct TagSpans;

impl<S> Layer<S> for TagSpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut tags = Tags::default();
        attrs.record(&mut tags);
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if tags.update.is_some() || tags.component.is_some() {
            extensions.insert(tags);
        }
        // The fmt layer, next in line, formats a span's fields only when it
        // finds no formatted fields yet.
        extensions.insert(FormattedFields::<DefaultFields>::new(String::new()));
    }
}

/// `time LEVEL update component: message fields`.
struct Human {
    ansi: bool,
}

impl<S, N> FormatEvent<S, N> for Human
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut tags = Tags::default();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(t) = span.extensions().get::<Tags>() {
                    tags.update = t.update.clone().or(tags.update);
                    tags.component = t.component.clone().or(tags.component);
                }
            }
        }
        let level = meta.level();
        let (on, off) = match (self.ansi, *level) {
            (false, _) => ("", ""),
            (true, tracing::Level::ERROR) => ("\x1b[31m", "\x1b[0m"),
            (true, tracing::Level::WARN) => ("\x1b[33m", "\x1b[0m"),
            (true, tracing::Level::INFO) => ("\x1b[32m", "\x1b[0m"),
            (true, _) => ("\x1b[2m", "\x1b[0m"),
        };
        write!(
            writer,
            "{} {on}{level:>5}{off} ",
            humantime::format_rfc3339_millis(SystemTime::now())
        )?;
        if let Some(update) = &tags.update {
            write!(writer, "{update} ")?;
        }
        match &tags.component {
            Some(component) => write!(writer, "{component}: ")?,
            None if tags.update.is_none() => write!(writer, "{}: ", meta.target())?,
            None => {}
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The filter `spec` asks for. One that only names targets and levels (all
/// but span and field directives) is a [`Targets`] filter: an [`EnvFilter`]
/// takes a lock on every span enter, exit and close to track the span
/// directives it might have, and a daemon enters several spans for each
/// of its transfers.
fn filter(spec: Option<&str>, level: &str) -> (Option<EnvFilter>, Option<Targets>) {
    let spec = spec.unwrap_or(level);
    if !spec.contains(['[', '{', '/'])
        && let Ok(targets) = spec.parse::<Targets>()
    {
        return (None, Some(targets));
    }
    let env = EnvFilter::try_new(spec)
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    (Some(env), None)
}

/// Installs the global subscriber: `RUST_LOG` if set, else `level`.
pub(crate) fn init(format: LogFormat, level: &str) {
    let from_env = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let (env_filter, targets) = filter(from_env.as_deref().filter(|s| !s.is_empty()), level);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = match format {
        LogFormat::Text => Registry::default()
            .with(env_filter)
            .with(targets)
            .with(TagSpans)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .event_format(Human { ansi })
                    .with_writer(|| crate::scrub::Scrubbed(std::io::stderr())),
            )
            .try_init(),
        LogFormat::Json => Registry::default()
            .with(env_filter)
            .with(targets)
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(|| crate::scrub::Scrubbed(std::io::stderr())),
            )
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_and_level_filters_need_no_span_tracking() {
        for spec in [
            "info",
            "warn,databay=debug",
            "databay_core::planner=trace,off",
        ] {
            let (env, targets) = filter(Some(spec), "info");
            assert!(env.is_none() && targets.is_some(), "{spec}");
        }
        let (env, targets) = filter(None, "debug");
        assert!(env.is_none() && targets.is_some());
        // Span and field directives keep the full filter.
        let (env, targets) = filter(Some("info,[transfer{update=a.1}]=trace"), "info");
        assert!(env.is_some() && targets.is_none());
        // Garbage falls back to the level given.
        let (env, targets) = filter(Some("=[=="), "warn");
        assert!(targets.is_none());
        assert_eq!(
            env.and_then(|e| e.max_level_hint()),
            Some(tracing::level_filters::LevelFilter::WARN)
        );
    }
}
