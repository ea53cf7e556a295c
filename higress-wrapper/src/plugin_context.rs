//! [`PluginContext`]: what plugin start and tick functions can reach.

use std::fmt;
use std::time::Duration;

type TickFn<C> = Box<dyn FnMut(&mut PluginContext<'_, C>)>;

/// A function registered with [`PluginContext::register_tick`].
pub(crate) struct Tick<C> {
    pub(crate) period_ms: u64,
    pub(crate) last_run_ms: u64,
    pub(crate) run: TickFn<C>,
}

/// The plugin (root) context: its name and id, the parsed global config, and
/// tick registration. Passed to [`HttpPlugin::on_plugin_start`](crate::HttpPlugin::on_plugin_start)
/// and to tick functions.
pub struct PluginContext<'a, C> {
    pub(crate) root_id: u32,
    pub(crate) plugin_name: &'static str,
    pub(crate) plugin_id: Option<&'a str>,
    pub(crate) global: Option<&'a C>,
    pub(crate) rule_count: usize,
    pub(crate) new_ticks: &'a mut Vec<Tick<C>>,
}

impl<C> fmt::Debug for PluginContext<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginContext")
            .field("plugin_name", &self.plugin_name)
            .field("plugin_id", &self.plugin_id)
            .field("rule_count", &self.rule_count)
            .finish_non_exhaustive()
    }
}

impl<C> PluginContext<'_, C> {
    /// The plugin's name.
    pub fn plugin_name(&self) -> &'static str {
        self.plugin_name
    }

    /// The `_plugin_id_` from the config, if any.
    pub fn plugin_id(&self) -> Option<&str> {
        self.plugin_id
    }

    /// The parsed global config, if the config had one.
    pub fn global_config(&self) -> Option<&C> {
        self.global
    }

    /// How many `_rules_` entries the config has.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Runs `f` every `period` on this worker's plugin (Go's
    /// `RegisterTickFunc`). Every function also runs on the first tick.
    /// Ticks run once per Envoy worker thread, each with its own plugin
    /// instance. Periods are rounded to whole milliseconds (at least 1 ms).
    pub fn register_tick(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut PluginContext<'_, C>) + 'static,
    ) {
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
        self.new_ticks.push(Tick {
            period_ms,
            last_run_ms: 0,
            run: Box::new(f),
        });
    }

    /// Calls a host foreign function by name; returns its result bytes.
    pub fn call_foreign_function(
        &self,
        name: &str,
        arguments: &[u8],
    ) -> Result<Option<Vec<u8>>, crate::HostError> {
        crate::host::call_foreign_function(name, arguments)
    }

    /// Runs `future` as work owned by the plugin (not by any request): for
    /// Redis or HTTP calls from plugin start or a tick function. It is polled
    /// when this function returns and whenever a call it waits on completes.
    pub fn spawn(&self, future: impl std::future::Future<Output = ()> + 'static) {
        crate::task::spawn(
            crate::task::Owner::Root(self.root_id),
            crate::task::TaskScope {
                plugin_name: self.plugin_name,
                plugin_id: self.plugin_id.map(std::rc::Rc::from),
                root_id: self.root_id,
                request_id: None,
            },
            Box::pin(future),
        );
    }

    /// Any host property by path.
    pub fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        crate::host::get_property(path).ok().flatten()
    }

    /// Registers shared queue `name`; this worker's
    /// [`HttpPlugin::on_queue_ready`](crate::HttpPlugin::on_queue_ready) runs
    /// when a message arrives (see [`shared_queue`](crate::shared_queue)).
    pub fn register_queue(
        &self,
        name: &str,
    ) -> Result<crate::shared_queue::SharedQueue, crate::HostError> {
        crate::shared_queue::SharedQueue::register(name)
    }

    /// Finds queue `name` of VM `vm_id` (`""`: the default VM id).
    pub fn resolve_queue(
        &self,
        vm_id: &str,
        name: &str,
    ) -> Result<crate::shared_queue::SharedQueue, crate::HostError> {
        crate::shared_queue::SharedQueue::resolve(vm_id, name)
    }

    /// Takes the oldest message of queue `queue_id` (as `on_queue_ready`
    /// names it); `Ok(None)` when it is empty.
    pub fn dequeue(&self, queue_id: u32) -> Result<Option<Vec<u8>>, crate::HostError> {
        crate::shared_queue::SharedQueue::from_id(queue_id).dequeue()
    }

    /// Appends a message to `queue`.
    pub fn enqueue(
        &self,
        queue: crate::shared_queue::SharedQueue,
        message: impl AsRef<[u8]>,
    ) -> Result<(), crate::HostError> {
        queue.enqueue(message.as_ref())
    }
}

/// The host tick period that serves every registered function exactly: the
/// greatest common divisor of their periods.
pub(crate) fn tick_period_ms<C>(ticks: &[Tick<C>]) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    ticks.iter().fold(0, |acc, t| gcd(acc, t.period_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_is_gcd() {
        let mut ticks: Vec<Tick<()>> = Vec::new();
        let mut ctx = PluginContext {
            root_id: 1,
            plugin_name: "t",
            plugin_id: None,
            global: None,
            rule_count: 0,
            new_ticks: &mut ticks,
        };
        ctx.register_tick(Duration::from_millis(300), |_| {});
        ctx.register_tick(Duration::from_millis(500), |_| {});
        assert_eq!(tick_period_ms(&ticks), 100);
        assert_eq!(tick_period_ms::<()>(&[]), 0);
    }
}
