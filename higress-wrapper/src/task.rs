//! The executor behind async hooks: one task per waiting hook, polled when a
//! host callback wakes it, always outside any borrow of the task table.
//!
//! Rules (after ic-cdk's and wasm-bindgen's single-threaded executors):
//! - a waker only queues its task id; tasks are polled by [`run_ready`],
//!   which every host entry point that can complete a call runs before it
//!   returns to the host;
//! - before a task is polled, the host's effective context is set to the
//!   context that owns it, so its host calls act on the right request; once
//!   the ready tasks ran, the context the host entered is made effective
//!   again;
//! - a task is taken out of the table while it is polled and dropped outside
//!   the table's borrow, so a task may spawn or cancel tasks;
//! - a stream that ends cancels (drops) its tasks; a wake-up for a task that
//!   no longer exists is ignored.
//!
//! Layering: runtime. Imports `host`, `log` and `callout` only.

pub(crate) use crate::callout::Owner;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A boxed future the executor owns.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Log prefix of a task, restored before each poll.
#[derive(Debug, Clone)]
pub(crate) struct TaskScope {
    pub(crate) plugin_name: &'static str,
    pub(crate) plugin_id: Option<Rc<str>>,
    /// The plugin's root context; its tasks end with it.
    pub(crate) root_id: u32,
    /// `x-request-id` of the request that spawned it, for the log prefix.
    pub(crate) request_id: Option<crate::log::RequestId>,
}

struct Task {
    owner: Owner,
    scope: TaskScope,
    future: BoxFuture<()>,
}

// Small tables on purpose: a plugin has a handful of tasks in flight, and
// a `Vec` scanned linearly costs far less code in the `.wasm` than a hash
// map (see the size notes in the workspace `Cargo.toml`).
thread_local! {
    /// Tasks by id, in no particular order.
    static TASKS: RefCell<Vec<(u64, Task)>> = const { RefCell::new(Vec::new()) };
    /// Ids of woken tasks, oldest first.
    static READY: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    static RUNNING: Cell<bool> = const { Cell::new(false) };
    /// The owner of the task being polled (calls made now belong to it).
    static CURRENT_OWNER: Cell<Option<Owner>> = const { Cell::new(None) };
    /// The context the host entered last (set by `entry` on every callback).
    static ENTERED: Cell<Owner> = const { Cell::new(Owner::Root(0)) };
}

struct TaskWaker(u64);

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let id = self.0;
        let _ = READY.try_with(|q| {
            if let Ok(mut q) = q.try_borrow_mut() {
                if !q.contains(&id) {
                    q.push(id);
                }
            }
        });
    }
}

fn next_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1).max(1));
        id
    })
}

/// Records the context the host just entered (called by `entry`).
pub(crate) fn enter(owner: Owner) {
    ENTERED.with(|e| e.set(owner));
}

/// The owner of the task being polled; calls made outside any task belong
/// to the context the host entered.
pub(crate) fn current_owner() -> Owner {
    CURRENT_OWNER
        .with(Cell::get)
        .unwrap_or_else(|| ENTERED.with(Cell::get))
}

fn poll_as<T>(owner: Owner, future: &mut BoxFuture<T>, cx: &mut Context<'_>) -> Poll<T> {
    let previous = CURRENT_OWNER.with(|c| c.replace(Some(owner)));
    let result = future.as_mut().poll(cx);
    CURRENT_OWNER.with(|c| c.set(previous));
    result
}

/// Polls `future` once, right now. If it completes, its output is returned
/// and nothing was stored or queued. Otherwise it becomes a task owned by
/// `owner`, polled again when a call it waits on completes.
pub(crate) fn run_or_spawn<T: 'static>(
    owner: Owner,
    scope: TaskScope,
    mut future: BoxFuture<T>,
    on_output: impl FnOnce(T) + 'static,
) -> Option<T> {
    let id = next_id();
    let waker = Waker::from(Arc::new(TaskWaker(id)));
    let mut cx = Context::from_waker(&waker);
    match poll_as(owner, &mut future, &mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => {
            let future: BoxFuture<()> = Box::pin(async move {
                let out = future.await;
                on_output(out);
            });
            insert(
                id,
                Task {
                    owner,
                    scope,
                    future,
                },
            );
            None
        }
    }
}

/// Spawns `future` as a task (first polled by the next [`run_ready`]) and
/// hands its output to `on_output`.
pub(crate) fn spawn_after<T: 'static>(
    owner: Owner,
    scope: TaskScope,
    future: BoxFuture<T>,
    on_output: impl FnOnce(T) + 'static,
) {
    spawn(
        owner,
        scope,
        Box::pin(async move {
            let out = future.await;
            on_output(out);
        }),
    );
}

/// Spawns a task that runs until it completes (or its owner ends). It is
/// polled first by the next [`run_ready`].
pub(crate) fn spawn(owner: Owner, scope: TaskScope, future: BoxFuture<()>) {
    let id = next_id();
    insert(
        id,
        Task {
            owner,
            scope,
            future,
        },
    );
    let _ = READY.try_with(|q| {
        if let Ok(mut q) = q.try_borrow_mut() {
            q.push(id);
        }
    });
}

fn insert(id: u64, task: Task) {
    let _ = TASKS.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            t.push((id, task));
        }
    });
}

fn take(id: u64) -> Option<Task> {
    TASKS
        .try_with(|t| {
            let mut t = t.try_borrow_mut().ok()?;
            let at = t.iter().position(|(i, _)| *i == id)?;
            Some(t.swap_remove(at).1)
        })
        .ok()
        .flatten()
}

/// Removes the tasks `pred` selects, to be dropped by the caller outside
/// the table's borrow.
fn take_where(pred: impl Fn(&Task) -> bool) -> Vec<Task> {
    TASKS
        .try_with(|t| {
            let mut taken = Vec::new();
            if let Ok(mut t) = t.try_borrow_mut() {
                let mut i = 0;
                while let Some((_, task)) = t.get(i) {
                    if pred(task) {
                        taken.push(t.swap_remove(i).1);
                    } else {
                        i += 1;
                    }
                }
            }
            taken
        })
        .unwrap_or_default()
}

/// Removes and returns the first woken task id.
fn pop_ready() -> Option<u64> {
    READY
        .try_with(|q| {
            let mut q = q.try_borrow_mut().ok()?;
            if q.is_empty() {
                None
            } else {
                Some(q.remove(0))
            }
        })
        .ok()
        .flatten()
}

struct RunningGuard;

impl Drop for RunningGuard {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(false));
    }
}

/// Polls every task that was woken, until none is ready. Called by every
/// host entry point that can complete a call, before it returns.
pub(crate) fn run_ready() {
    // The common case, called after every hook: nothing was woken.
    let idle = READY
        .try_with(|q| q.try_borrow().map_or(true, |q| q.is_empty()))
        .unwrap_or(true);
    if idle || RUNNING.with(|r| r.replace(true)) {
        return;
    }
    let _running = RunningGuard;
    let entered = ENTERED.with(Cell::get).context_id();
    let mut effective = entered;
    while let Some(id) = pop_ready() {
        // A wake-up for a task that was cancelled or finished is ignored.
        let Some(mut task) = take(id) else { continue };
        let context_id = task.owner.context_id();
        if context_id != effective {
            if let Err(e) = crate::host::set_effective_context(context_id) {
                // The context is gone: drop the task (outside any borrow).
                log::debug!("dropping a task of context {context_id}: {e}");
                drop(task);
                continue;
            }
            effective = context_id;
        }
        match task.owner {
            Owner::Stream(ctx) => crate::log::enter_stream(
                task.scope.plugin_name,
                task.scope.plugin_id.as_ref(),
                ctx,
                task.scope.request_id.as_ref(),
            ),
            Owner::Root(_) => {
                crate::log::enter_root(task.scope.plugin_name, task.scope.plugin_id.as_ref())
            }
        }
        let waker = Waker::from(Arc::new(TaskWaker(id)));
        let mut cx = Context::from_waker(&waker);
        if poll_as(task.owner, &mut task.future, &mut cx).is_pending() {
            insert(id, task);
        }
    }
    if effective != entered {
        // Later host calls of this callback act on the context it entered.
        let _ = crate::host::set_effective_context(entered);
    }
}

/// Drops every task and call of a plugin root that is going away.
pub(crate) fn cancel_root(root: u32) {
    drop(take_where(|task| task.scope.root_id == root));
    crate::callout::cancel_owner(Owner::Root(root));
}

/// Drops every task owned by `owner` (its stream ended), outside the table's
/// borrow, and forgets its pending calls.
pub(crate) fn cancel_owner(owner: Owner) {
    // Most requests end with nothing in flight: no scan, nothing to drop.
    if pending_tasks() > 0 {
        drop(take_where(|task| task.owner == owner));
    }
    if crate::callout::pending_calls() > 0 {
        crate::callout::cancel_owner(owner);
    }
}

/// How many tasks are waiting (see [`crate::PendingWork`]).
pub(crate) fn pending_tasks() -> usize {
    TASKS
        .try_with(|t| t.try_borrow().map_or(0, |t| t.len()))
        .unwrap_or(0)
}
