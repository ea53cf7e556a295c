//! The executor behind async hooks: one task per waiting hook, polled when a
//! host callback wakes it, always outside any borrow of the task table.
//!
//! Rules (after ic-cdk's and wasm-bindgen's single-threaded executors):
//! - a waker only queues its task id; tasks are polled by [`run_ready`],
//!   which every host entry point that can complete a call runs before it
//!   returns to the host;
//! - before a task is polled, the host's effective context is set to the
//!   context that owns it, so its host calls act on the right request;
//! - a task is taken out of the table while it is polled and dropped outside
//!   the table's borrow, so a task may spawn or cancel tasks;
//! - a stream that ends cancels (drops) its tasks; a wake-up for a task that
//!   no longer exists is ignored.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A boxed future the executor owns.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Which host context a task or a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
    /// An HTTP stream: cancelled when the stream ends.
    Stream(u32),
    /// A plugin's root context: lives as long as the plugin.
    Root(u32),
}

impl Owner {
    pub(crate) fn context_id(self) -> u32 {
        match self {
            Owner::Stream(id) | Owner::Root(id) => id,
        }
    }
}

/// Log prefix of a task, restored before each poll.
#[derive(Debug, Clone)]
pub(crate) struct TaskScope {
    pub(crate) plugin_name: &'static str,
    pub(crate) plugin_id: Option<Rc<str>>,
    /// The plugin's root context, through which the task is polled.
    pub(crate) root_id: u32,
    /// `x-request-id` of the request that spawned it, for the log prefix.
    pub(crate) request_id: Option<crate::http_context::RequestId>,
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
    /// The root context the executor is polling under, if any.
    static CURRENT_ROOT: Cell<Option<u32>> = const { Cell::new(None) };
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

/// The owner of the task being polled; calls made outside any task belong
/// to the root context the host is in (context 0 if unknown).
pub(crate) fn current_owner() -> Owner {
    CURRENT_OWNER
        .with(Cell::get)
        .unwrap_or(Owner::Root(CURRENT_ROOT.with(Cell::get).unwrap_or(0)))
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

/// The root a task belongs to, without taking it out; `None` if it is gone.
fn root_of(id: u64) -> Option<u32> {
    TASKS
        .try_with(|t| {
            t.try_borrow().ok().and_then(|t| {
                t.iter()
                    .find(|(i, _)| *i == id)
                    .map(|(_, task)| task.scope.root_id)
            })
        })
        .ok()
        .flatten()
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

/// The first woken task id, without removing it.
fn first_ready() -> Option<u64> {
    READY
        .try_with(|q| q.try_borrow().ok().and_then(|q| q.first().copied()))
        .ok()
        .flatten()
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

fn ready_root() -> Option<u32> {
    loop {
        match root_of(first_ready()?) {
            Some(root) => return Some(root),
            // Cancelled or finished meanwhile: forget the wake-up.
            None => {
                let _ = pop_ready();
            }
        }
    }
}

/// Polls every task that was woken, until none is ready. Called by every
/// host entry point that can complete a call, before it returns.
///
/// Tasks are polled from inside their plugin's root context, entered through
/// proxy-wasm's dispatcher ([`crate::host::enter_root`]): proxy-wasm records
/// an HTTP call made during the poll under the context it entered last, and
/// the root outlives every request, so the reply is never lost; the SDK then
/// routes it by token ([`crate::callout`]).
pub(crate) fn run_ready() {
    if RUNNING.with(|r| r.get()) {
        return;
    }
    while let Some(root) = ready_root() {
        match CURRENT_ROOT.with(Cell::get) {
            Some(current) if current == root => poll_ready(root),
            // Inside another root's entry proxy-wasm's table of roots is
            // borrowed: leave the task queued for the next entry point.
            Some(_) => return,
            None => crate::host::enter_root(root),
        }
        if ready_root() == Some(root) {
            // The root is gone (the plugin was removed): its tasks can never
            // run again. Drop them instead of spinning.
            drop_ready_of(root);
        }
    }
}

fn drop_ready_of(root: u32) {
    let ids: Vec<u64> = READY
        .try_with(|q| {
            q.try_borrow_mut()
                .map(|mut q| std::mem::take(&mut *q))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let mut dropped = Vec::new();
    let mut kept = Vec::new();
    for id in ids {
        match root_of(id) {
            Some(r) if r == root => dropped.extend(take(id)),
            Some(_) => kept.push(id),
            None => {}
        }
    }
    let _ = READY.try_with(|q| q.try_borrow_mut().map(|mut q| q.extend(kept)));
    drop(dropped);
}

/// Runs `f` knowing the host is inside root `root` (a root entry point of
/// proxy-wasm's dispatcher, which must not be re-entered): tasks of that
/// root are then polled directly.
pub(crate) fn in_root(root: u32, f: impl FnOnce()) {
    let _restore = RootGuard(CURRENT_ROOT.with(|c| c.replace(Some(root))));
    f();
}

/// Restores the executor's state even if a task panics (natively a panic
/// unwinds into the test host; on wasm it aborts), so later polls still run.
struct RootGuard(Option<u32>);

impl Drop for RootGuard {
    fn drop(&mut self) {
        CURRENT_ROOT.with(|c| c.set(self.0));
    }
}

struct RunningGuard;

impl Drop for RunningGuard {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(false));
    }
}

/// Drops every task and call of a plugin root that is going away.
pub(crate) fn cancel_root(root: u32) {
    drop(take_where(|task| task.scope.root_id == root));
    crate::callout::cancel_owner(Owner::Root(root));
}

/// Polls the ready tasks of `root`; runs inside that root's context.
pub(crate) fn poll_ready(root: u32) {
    if RUNNING.with(|r| r.replace(true)) {
        return;
    }
    let _running = RunningGuard;
    let _restore = RootGuard(CURRENT_ROOT.with(|c| c.replace(Some(root))));
    let mut skipped = Vec::new();
    while let Some(id) = pop_ready() {
        match root_of(id) {
            Some(r) if r == root => {}
            Some(_) => {
                skipped.push(id);
                continue;
            }
            None => continue,
        }
        let Some(mut task) = take(id) else { continue };
        let context_id = task.owner.context_id();
        if let Err(e) = crate::host::set_effective_context(context_id) {
            // The context is gone: drop the task (outside any borrow).
            log::debug!("dropping a task of context {context_id}: {e}");
            drop(task);
            continue;
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
    let _ = READY.try_with(|q| {
        q.try_borrow_mut().map(|mut q| {
            q.extend(skipped);
        })
    });
}

/// Drops every task owned by `owner` (its stream ended), outside the table's
/// borrow, and forgets its pending calls.
pub(crate) fn cancel_owner(owner: Owner) {
    drop(take_where(|task| task.owner == owner));
    crate::callout::cancel_owner(owner);
}

/// How many tasks are waiting (for tests and leak checks).
#[cfg_attr(not(any(test, feature = "test-host")), allow(dead_code))]
pub(crate) fn pending_tasks() -> usize {
    TASKS
        .try_with(|t| t.try_borrow().map_or(0, |t| t.len()))
        .unwrap_or(0)
}
