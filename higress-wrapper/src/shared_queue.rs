//! Shared queues: a FIFO of byte messages between VMs and workers.
//!
//! A plugin registers a queue by name (at start, through
//! [`PluginContext::register_queue`](crate::PluginContext::register_queue));
//! the host then calls the plugin's
//! [`HttpPlugin::on_queue_ready`](crate::HttpPlugin::on_queue_ready) on the
//! registering worker whenever a message is enqueued. Anyone who knows the
//! queue's VM id and name can [`resolve`](SharedQueue::resolve) it and
//! enqueue, from any hook. A queue is keyed by (VM id, name): when every
//! worker registers the same name, the host keeps one registration, so one
//! worker reads the queue and each message is dequeued once (checked end to
//! end on Envoy 1.40 with two workers).
//!
//! ```
//! use higress_wrapper::prelude::*;
//! use higress_wrapper::shared_queue::SharedQueue;
//!
//! fn on_plugin_start(ctx: &mut PluginContext<()>) -> Result<(), StartError> {
//!     let queue = ctx.register_queue("events")?;
//!     log::info!("queue {} registered", queue.id());
//!     Ok(())
//! }
//!
//! fn on_queue_ready(ctx: &mut PluginContext<()>, queue_id: u32) {
//!     while let Ok(Some(message)) = ctx.dequeue(queue_id) {
//!         log::info!("event: {}", String::from_utf8_lossy(&message));
//!     }
//! }
//!
//! fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
//!     // "" is the VM id of a plugin without one (Envoy's default).
//!     if let Ok(queue) = SharedQueue::resolve("", "events") {
//!         let _ = ctx.enqueue(queue, ctx.path().as_bytes());
//!     }
//!     HeaderAction::Continue
//! }
//! # let _ = (on_plugin_start, on_queue_ready, on_request_headers);
//! ```

use crate::error::HostError;
use crate::host;

/// A shared queue, by its host id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SharedQueue {
    id: u32,
}

impl SharedQueue {
    /// Registers queue `name` of this plugin's VM; this worker's plugin is
    /// told of new messages through `on_queue_ready`. Registering a name
    /// again returns the same queue.
    pub fn register(name: &str) -> Result<SharedQueue, HostError> {
        host::register_shared_queue(name).map(SharedQueue::from_id)
    }

    /// Finds queue `name` registered by VM `vm_id` (`""` for the default
    /// VM id). `Err(NotFound)` if nobody registered it.
    pub fn resolve(vm_id: &str, name: &str) -> Result<SharedQueue, HostError> {
        host::resolve_shared_queue(vm_id, name).map(SharedQueue::from_id)
    }

    /// The queue with the host's id `id` (as `on_queue_ready` names it).
    pub fn from_id(id: u32) -> SharedQueue {
        SharedQueue { id }
    }

    /// The host's id of the queue.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Appends a message; the registering worker's `on_queue_ready` runs.
    pub fn enqueue(&self, message: &[u8]) -> Result<(), HostError> {
        host::enqueue_shared_queue(self.id, message)
    }

    /// Takes the oldest message, `Ok(None)` if the queue is empty.
    pub fn dequeue(&self) -> Result<Option<Vec<u8>>, HostError> {
        match host::dequeue_shared_queue(self.id) {
            Ok(message) => Ok(Some(message)),
            Err(HostError::Empty) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
