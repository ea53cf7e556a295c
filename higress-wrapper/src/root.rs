//! The plugin (root) context: where the configuration is parsed and the
//! `_rules_` matcher prepared, where tick functions run, and where each
//! request's [`Stream`](crate::stream::Stream) is created.
//!
//! State lives per root, never in globals: several plugin configurations can
//! share one VM (one root each), and a reload creates a new root (or
//! reconfigures this one) while requests in flight keep the config they
//! matched (they hold an `Rc` of it).

use crate::config::{self, ParsedConfig};
use crate::host::{self, BufferType};
use crate::plugin::HttpPlugin;
use crate::plugin_context::{tick_period_ms, PluginContext, Tick};
use crate::stream::{Shared, Stream, StreamDriver};
use std::cell::RefCell;
use std::rc::Rc;

/// What `entry` calls for a root context.
pub(crate) trait RootDriver {
    fn configure(&self, plugin_configuration_size: usize) -> bool;
    fn tick(&self);
    fn queue_ready(&self, queue_id: u32);
    /// The plugin is going away: nothing may wait on it any more.
    fn done(&self);
    fn create_stream(&self, context_id: u32) -> Rc<dyn StreamDriver>;
}

/// Creates the root context of plugin `P` (the factory `entry` keeps).
pub(crate) fn new_root<P: HttpPlugin>(context_id: u32) -> Rc<dyn RootDriver> {
    Rc::new(Root::<P> {
        context_id,
        shared: RefCell::new(None),
        ticks: RefCell::new(Vec::new()),
    })
}

pub(crate) struct Root<P: HttpPlugin> {
    context_id: u32,
    shared: RefCell<Option<Rc<Shared<P::Config>>>>,
    ticks: RefCell<Vec<Tick<P::Config>>>,
}

/// The plugin context of a root with config `shared` (if configured).
fn plugin_context<'a, C>(
    root_id: u32,
    plugin_name: &'static str,
    shared: Option<&'a Shared<C>>,
    new_ticks: &'a mut Vec<Tick<C>>,
) -> PluginContext<'a, C> {
    PluginContext {
        root_id,
        plugin_name,
        plugin_id: shared.and_then(|s| s.plugin_id.as_deref()),
        global: shared.and_then(|s| s.matcher.global()).map(|g| &**g),
        rule_count: shared.map_or(0, |s| s.matcher.rule_count()),
        new_ticks,
    }
}

impl<P: HttpPlugin> Root<P> {
    fn shared(&self) -> Option<Rc<Shared<P::Config>>> {
        self.shared.try_borrow().ok().and_then(|s| s.clone())
    }

    fn enter(&self) {
        let shared = self.shared();
        crate::log::enter_root(P::NAME, shared.as_ref().and_then(|s| s.plugin_id.as_ref()));
    }

    fn try_configure(&self, size: usize) -> Result<(), String> {
        let raw = host::get_buffer(BufferType::PluginConfiguration, 0, size)
            .map_err(|e| format!("cannot read the plugin configuration: {e}"))?
            .unwrap_or_default();
        crate::redis::reset_registry();
        let ParsedConfig {
            plugin_id,
            matcher,
            warnings,
        } = config::parse_plugin_config::<P::Config>(&raw, &P::parse_config, &P::parse_rule_config)
            .map_err(|e| format!("invalid plugin config: {e}"))?;
        let shared = Rc::new(Shared {
            root_id: self.context_id,
            plugin_id: plugin_id.map(Rc::from),
            matcher,
        });
        crate::log::enter_root(P::NAME, shared.plugin_id.as_ref());
        for warning in &warnings {
            log::warn!("{warning}");
        }

        let mut ticks = Vec::new();
        let mut ctx = plugin_context(self.context_id, P::NAME, Some(&shared), &mut ticks);
        P::on_plugin_start(&mut ctx).map_err(|e| format!("plugin start failed: {e}"))?;
        let period = tick_period_ms(&ticks);
        let had_ticks = self.ticks.try_borrow().is_ok_and(|t| !t.is_empty());
        if period > 0 || had_ticks {
            let period = u32::try_from(period).unwrap_or(u32::MAX);
            host::set_tick_period_ms(period)
                .map_err(|e| format!("cannot set the tick period: {e}"))?;
        }
        log::info!(
            "plugin started: {} rule(s), {} global config",
            shared.matcher.rule_count(),
            if shared.matcher.global().is_some() {
                "with"
            } else {
                "no"
            }
        );
        if let Ok(mut slot) = self.ticks.try_borrow_mut() {
            *slot = ticks;
        }
        if let Ok(mut slot) = self.shared.try_borrow_mut() {
            *slot = Some(shared);
        }
        Ok(())
    }
}

impl<P: HttpPlugin> RootDriver for Root<P> {
    fn configure(&self, plugin_configuration_size: usize) -> bool {
        self.enter();
        let ok = match self.try_configure(plugin_configuration_size) {
            Ok(()) => true,
            Err(message) => {
                log::error!("{message}");
                false
            }
        };
        // Plugin start may have spawned calls; poll what is ready.
        crate::task::run_ready();
        ok
    }

    fn tick(&self) {
        let shared = self.shared();
        self.enter();
        let now_ms = host::current_time_nanos().map_or(0, |n| n / 1_000_000);
        let Ok(mut ticks) = self
            .ticks
            .try_borrow_mut()
            .map(|mut t| std::mem::take(&mut *t))
        else {
            return;
        };
        let mut new_ticks = Vec::new();
        for tick in &mut ticks {
            if now_ms.saturating_sub(tick.last_run_ms) >= tick.period_ms {
                tick.last_run_ms = now_ms;
                let mut ctx =
                    plugin_context(self.context_id, P::NAME, shared.as_deref(), &mut new_ticks);
                (tick.run)(&mut ctx);
            }
        }
        ticks.append(&mut new_ticks);
        if let Ok(mut slot) = self.ticks.try_borrow_mut() {
            *slot = ticks;
        }
        // Tick functions may have started calls; poll what is ready.
        crate::task::run_ready();
    }

    fn queue_ready(&self, queue_id: u32) {
        let shared = self.shared();
        self.enter();
        let mut new_ticks = Vec::new();
        let mut ctx = plugin_context(self.context_id, P::NAME, shared.as_deref(), &mut new_ticks);
        P::on_queue_ready(&mut ctx, queue_id);
        if !new_ticks.is_empty() {
            if let Ok(mut ticks) = self.ticks.try_borrow_mut() {
                ticks.append(&mut new_ticks);
            }
        }
        crate::task::run_ready();
    }

    fn done(&self) {
        crate::task::cancel_root(self.context_id);
    }

    fn create_stream(&self, context_id: u32) -> Rc<dyn StreamDriver> {
        Rc::new(Stream::<P>::new(context_id, self.shared()))
    }
}

impl<P: HttpPlugin> Drop for Root<P> {
    fn drop(&mut self) {
        crate::task::cancel_root(self.context_id);
    }
}
