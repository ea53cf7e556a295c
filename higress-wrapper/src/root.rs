//! The plugin (root) context: where the configuration is parsed and the
//! `_rules_` matcher prepared, where tick functions run, and where each
//! request's [`Stream`](crate::stream::Stream) is created.
//!
//! State lives per root, never in globals: several plugin configurations can
//! share one VM (one root each), and a reload creates a new root (or
//! reconfigures this one) while requests in flight keep the config they
//! matched (they hold an `Rc` of it).

use crate::config::matcher::RuleMatcher;
use crate::config::{self, ParsedConfig};
use crate::host::{self, BufferType};
use crate::plugin::HttpPlugin;
use crate::plugin_context::{tick_period_ms, PluginContext, Tick};
use crate::stream::Stream;
use proxy_wasm::traits::{Context, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;

/// What a root shares with the requests it creates.
pub(crate) struct Shared<C> {
    pub(crate) root_id: u32,
    pub(crate) plugin_id: Option<Rc<str>>,
    pub(crate) matcher: RuleMatcher<C>,
}

pub(crate) struct Root<P: HttpPlugin> {
    context_id: u32,
    shared: Option<Rc<Shared<P::Config>>>,
    ticks: Vec<Tick<P::Config>>,
}

/// Registers plugin `P` with proxy-wasm. Called from `_initialize`, where
/// only logging host calls are allowed, so it calls none.
pub(crate) fn register<P: HttpPlugin>() {
    crate::log::install();
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        let root = Box::new(Root::<P> {
            context_id,
            shared: None,
            ticks: Vec::new(),
        });
        // Natively under the test host, a panic in plugin code must not
        // unwind out of proxy-wasm's `extern "C"` exports (that aborts the
        // test binary): the host catches it inside and re-raises it.
        #[cfg(all(any(test, feature = "test-host"), not(target_arch = "wasm32")))]
        let root = crate::test_host::guard_root(root);
        root
    });
}

impl<P: HttpPlugin> Root<P> {
    fn plugin_id(&self) -> Option<&Rc<str>> {
        self.shared.as_ref().and_then(|s| s.plugin_id.as_ref())
    }

    fn configure(&mut self, size: usize) -> Result<(), String> {
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
        let plugin_id: Option<Rc<str>> = plugin_id.map(Rc::from);
        crate::log::enter_root(P::NAME, plugin_id.as_ref());
        for warning in &warnings {
            log::warn!("{warning}");
        }

        let mut ticks = Vec::new();
        let mut ctx = PluginContext {
            root_id: self.context_id,
            plugin_name: P::NAME,
            plugin_id: plugin_id.as_deref(),
            global: matcher.global().map(|g| &**g),
            rule_count: matcher.rule_count(),
            new_ticks: &mut ticks,
        };
        P::on_plugin_start(&mut ctx).map_err(|e| format!("plugin start failed: {e}"))?;
        let period = tick_period_ms(&ticks);
        if period > 0 || !self.ticks.is_empty() {
            let period = u32::try_from(period).unwrap_or(u32::MAX);
            host::set_tick_period_ms(period)
                .map_err(|e| format!("cannot set the tick period: {e}"))?;
        }
        log::info!(
            "plugin started: {} rule(s), {} global config",
            matcher.rule_count(),
            if matcher.global().is_some() {
                "with"
            } else {
                "no"
            }
        );
        self.ticks = ticks;
        self.shared = Some(Rc::new(Shared {
            root_id: self.context_id,
            plugin_id,
            matcher,
        }));
        // Plugin start may have spawned calls; poll them from this root.
        crate::task::in_root(self.context_id, crate::task::run_ready);
        Ok(())
    }
}

impl<P: HttpPlugin> Drop for Root<P> {
    fn drop(&mut self) {
        crate::task::cancel_root(self.context_id);
    }
}

impl<P: HttpPlugin> Context for Root<P> {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        crate::log::enter_root(P::NAME, self.plugin_id());
        crate::task::in_root(self.context_id, || {
            crate::callout::on_http_call_response(token_id, body_size);
        });
    }

    fn on_done(&mut self) -> bool {
        // The plugin is going away: nothing may wait on it any more.
        crate::task::cancel_root(self.context_id);
        true
    }
}

impl<P: HttpPlugin> RootContext for Root<P> {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        crate::log::enter_root(P::NAME, self.plugin_id());
        match self.configure(plugin_configuration_size) {
            Ok(()) => true,
            Err(message) => {
                log::error!("{message}");
                false
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        // The SDK's own way into this root through proxy-wasm's dispatcher:
        // poll the tasks woken by a reply (see `task::run_ready`).
        if queue_id == crate::host::POLL_TASKS_QUEUE_ID {
            crate::task::poll_ready(self.context_id);
        }
    }

    fn on_tick(&mut self) {
        let shared = self.shared.clone();
        crate::log::enter_root(P::NAME, self.plugin_id());
        let now_ms = host::current_time_nanos().map_or(0, |n| n / 1_000_000);
        let mut ticks = std::mem::take(&mut self.ticks);
        let mut new_ticks = Vec::new();
        for tick in &mut ticks {
            if now_ms.saturating_sub(tick.last_run_ms) >= tick.period_ms {
                tick.last_run_ms = now_ms;
                let mut ctx = PluginContext {
                    root_id: self.context_id,
                    plugin_name: P::NAME,
                    plugin_id: shared.as_ref().and_then(|s| s.plugin_id.as_deref()),
                    global: shared
                        .as_ref()
                        .and_then(|s| s.matcher.global())
                        .map(|g| &**g),
                    rule_count: shared.as_ref().map_or(0, |s| s.matcher.rule_count()),
                    new_ticks: &mut new_ticks,
                };
                (tick.run)(&mut ctx);
            }
        }
        ticks.append(&mut new_ticks);
        self.ticks = ticks;
        // Tick functions may have started calls; poll what is ready.
        crate::task::in_root(self.context_id, crate::task::run_ready);
    }

    fn create_http_context(
        &self,
        context_id: u32,
    ) -> Option<Box<dyn proxy_wasm::traits::HttpContext>> {
        Some(Box::new(Stream::<P>::new(context_id, self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
