//! Metrics: counters, gauges and histograms the host keeps (Envoy's stats,
//! shown on the admin `/stats` page under `wasmcustom.<name>` and in
//! Prometheus without that prefix).
//!
//! A metric is defined once per name and worker: the first use of a name
//! asks the host for its id, later uses find it in a per-worker cache. The
//! host adds up what every worker records under one name.
//!
//! Labels are encoded in the name, as Higress's Go plugins do (ai-statistics:
//! `route.<route>.upstream.<cluster>.model.<model>.input_token`):
//! [`metric_name`] builds such a name.
//!
//! ```
//! use higress_wrapper::metrics::{self, Counter};
//! use higress_wrapper::prelude::*;
//!
//! fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
//!     let name = metrics::metric_name(
//!         &[("route", ctx.route_name().as_deref().unwrap_or("none"))],
//!         "requests",
//!     );
//!     // Defined on first use, cached by name afterwards.
//!     if let Err(e) = metrics::increment_counter(&name, 1) {
//!         log::warn!("metric {name}: {e}");
//!     }
//!     HeaderAction::Continue
//! }
//!
//! fn on_plugin_start(_: &mut PluginContext<()>) -> Result<(), StartError> {
//!     // Or define at start and keep the handle.
//!     let started = Counter::define("plugin_starts")?;
//!     started.increment(1)?;
//!     Ok(())
//! }
//! # let _ = (on_request_headers, on_plugin_start);
//! ```

use crate::error::HostError;
use crate::host;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The host's metric kinds (proxy-wasm `MetricType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

thread_local! {
    /// Ids by (kind, name) on this worker. Ids are per VM, so a per-thread
    /// cache is exact; a name has one id per kind.
    static DEFINED: RefCell<BTreeMap<(Kind, String), u32>> = const { RefCell::new(BTreeMap::new()) };
}

/// The id of `name`, defining it with the host on first use.
fn define(kind: Kind, name: &str) -> Result<u32, HostError> {
    let cached = DEFINED
        .try_with(|d| {
            d.try_borrow()
                .ok()
                .and_then(|d| d.get(&(kind, name.to_owned())).copied())
        })
        .ok()
        .flatten();
    if let Some(id) = cached {
        return Ok(id);
    }
    let id = host::define_metric(kind as u32, name)?;
    let _ = DEFINED.try_with(|d| {
        if let Ok(mut d) = d.try_borrow_mut() {
            d.insert((kind, name.to_owned()), id);
        }
    });
    Ok(id)
}

/// A metric name with labels encoded the way Higress plugins do: each
/// `(key, value)` as `key.value`, joined by `.`, then the metric itself
/// (left out when empty).
///
/// ```
/// use higress_wrapper::metrics::metric_name;
///
/// let name = metric_name(
///     &[("route", "chat"), ("upstream", "qwen"), ("model", "qwen-max")],
///     "input_token",
/// );
/// assert_eq!(name, "route.chat.upstream.qwen.model.qwen-max.input_token");
/// assert_eq!(metric_name(&[], "requests"), "requests");
///
/// // Go ai-statistics' exact names end in a `metric.<name>` label.
/// let go = metric_name(
///     &[
///         ("route", "chat"),
///         ("upstream", "qwen"),
///         ("model", "qwen-max"),
///         ("consumer", "alice"),
///         ("metric", "input_token"),
///     ],
///     "",
/// );
/// assert_eq!(go, "route.chat.upstream.qwen.model.qwen-max.consumer.alice.metric.input_token");
/// ```
///
/// Values are used as they are (as in Go); a `.` inside a value becomes part
/// of the stat's name hierarchy on Envoy.
pub fn metric_name(labels: &[(&str, &str)], metric: &str) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(labels.len() * 2 + 1);
    for (key, value) in labels {
        parts.push(key);
        parts.push(value);
    }
    if !metric.is_empty() {
        parts.push(metric);
    }
    parts.join(".")
}

/// A counter: only goes up (Go's `proxywasm.MetricCounter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    id: u32,
}

impl Counter {
    /// Defines the counter `name` (once per worker; later calls hit the
    /// cache).
    pub fn define(name: &str) -> Result<Counter, HostError> {
        define(Kind::Counter, name).map(|id| Counter { id })
    }

    /// Adds `by`.
    pub fn increment(&self, by: u64) -> Result<(), HostError> {
        host::increment_metric(self.id, i64::try_from(by).unwrap_or(i64::MAX))
    }

    /// The current value (the sum over every worker on Envoy).
    pub fn value(&self) -> Result<u64, HostError> {
        host::get_metric(self.id)
    }
}

/// A gauge: set, or moved up and down (Go's `proxywasm.MetricGauge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauge {
    id: u32,
}

impl Gauge {
    /// Defines the gauge `name` (once per worker).
    pub fn define(name: &str) -> Result<Gauge, HostError> {
        define(Kind::Gauge, name).map(|id| Gauge { id })
    }

    /// Sets the value.
    pub fn set(&self, value: u64) -> Result<(), HostError> {
        host::record_metric(self.id, value)
    }

    /// Adds `offset` (negative to decrease).
    pub fn add(&self, offset: i64) -> Result<(), HostError> {
        host::increment_metric(self.id, offset)
    }

    /// The current value.
    pub fn value(&self) -> Result<u64, HostError> {
        host::get_metric(self.id)
    }
}

/// A histogram: records samples (Go's `proxywasm.MetricHistogram`).
/// Envoy shows its quantiles on `/stats`; its value cannot be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    id: u32,
}

impl Histogram {
    /// Defines the histogram `name` (once per worker).
    pub fn define(name: &str) -> Result<Histogram, HostError> {
        define(Kind::Histogram, name).map(|id| Histogram { id })
    }

    /// Records one sample.
    pub fn record(&self, value: u64) -> Result<(), HostError> {
        host::record_metric(self.id, value)
    }
}

/// Runs `op` on the cached id of `name`; if the host no longer knows that
/// id (`NotFound`: a host whose metrics are not per VM, such as several
/// native test hosts on one thread), defines the name again and retries once.
fn with_metric(
    kind: Kind,
    name: &str,
    op: impl Fn(u32) -> Result<(), HostError>,
) -> Result<(), HostError> {
    match op(define(kind, name)?) {
        Err(HostError::NotFound) => {
            let _ = DEFINED.try_with(|d| {
                if let Ok(mut d) = d.try_borrow_mut() {
                    d.remove(&(kind, name.to_owned()));
                }
            });
            op(define(kind, name)?)
        }
        other => other,
    }
}

/// Adds `by` to counter `name`, defining it on first use (Go ai-statistics'
/// `incrementCounter`).
pub fn increment_counter(name: &str, by: u64) -> Result<(), HostError> {
    with_metric(Kind::Counter, name, |id| Counter { id }.increment(by))
}

/// Sets gauge `name`, defining it on first use.
pub fn set_gauge(name: &str, value: u64) -> Result<(), HostError> {
    with_metric(Kind::Gauge, name, |id| Gauge { id }.set(value))
}

/// Adds `offset` to gauge `name`, defining it on first use.
pub fn add_gauge(name: &str, offset: i64) -> Result<(), HostError> {
    with_metric(Kind::Gauge, name, |id| Gauge { id }.add(offset))
}

/// Records a sample in histogram `name`, defining it on first use.
pub fn record_histogram(name: &str, value: u64) -> Result<(), HostError> {
    with_metric(Kind::Histogram, name, |id| Histogram { id }.record(value))
}
