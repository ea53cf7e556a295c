//! The SDK's own table of host calls in flight, keyed by the host's token.
//!
//! Every reply is routed here by its token, never by the context the host
//! names: a Redis reply arrives on the root context, an HTTP reply on the
//! context that dispatched it, so the owner of each call is kept here.
//! `entry` reads a reply while the host's buffers are valid and hands it to
//! [`deliver`]. A reply whose owner is gone (the stream ended and cancelled
//! its calls) finds no entry and is dropped: no freed state is touched and no
//! closure leaks.
//!
//! Layering: runtime, and a leaf of it (it imports nothing of the SDK).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

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

/// What a finished host call produced, read inside the host's callback
/// (the host's reply buffers are only valid there).
#[derive(Debug)]
pub(crate) enum Reply {
    /// An HTTP callout's response. `headers` is empty when the host gave up
    /// (timeout or reset).
    Http {
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    },
    /// A Redis call: `status` 0 is a reply (raw RESP bytes), anything else a
    /// network error or timeout.
    Redis { status: u32, data: Vec<u8> },
    /// A unary gRPC call: `status` 0 with the response message, or a gRPC
    /// status code and the host's status message.
    Grpc {
        status: u32,
        message: Vec<u8>,
        status_message: String,
    },
}

#[derive(Debug)]
enum Slot {
    Waiting(Option<Waker>),
    Done(Reply),
    Taken,
}

#[derive(Debug)]
struct Entry {
    owner: Owner,
    slot: Rc<RefCell<Slot>>,
}

thread_local! {
    /// Calls in flight by token, in no particular order. A plugin has a few
    /// at a time: a `Vec` scanned linearly is cheaper in code than a map.
    static CALLS: RefCell<Vec<(u32, Entry)>> = const { RefCell::new(Vec::new()) };
}

/// Removes the call registered under `token`.
fn remove(token: u32) -> Option<Entry> {
    CALLS
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            let at = c.iter().position(|(t, _)| *t == token)?;
            Some(c.swap_remove(at).1)
        })
        .ok()
        .flatten()
}

/// A registered call; resolves to the host's reply.
#[derive(Debug)]
#[must_use = "a call does nothing unless awaited"]
pub(crate) struct CallFuture {
    token: u32,
    slot: Rc<RefCell<Slot>>,
}

/// Registers the call the host accepted under `token`.
pub(crate) fn register(token: u32, owner: Owner) -> CallFuture {
    let slot = Rc::new(RefCell::new(Slot::Waiting(None)));
    let _ = CALLS.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            // A token the host reuses replaces the stale entry.
            if let Some(at) = c.iter().position(|(t, _)| *t == token) {
                drop(c.swap_remove(at));
            }
            c.push((
                token,
                Entry {
                    owner,
                    slot: Rc::clone(&slot),
                },
            ));
        }
    });
    CallFuture { token, slot }
}

/// Whether a call with this token is in flight (its owner still waits).
pub(crate) fn is_pending(token: u32) -> bool {
    CALLS
        .try_with(|c| {
            c.try_borrow()
                .is_ok_and(|c| c.iter().any(|(t, _)| *t == token))
        })
        .unwrap_or(false)
}

/// Delivers a reply. Returns false if nobody waits for `token` any more.
pub(crate) fn deliver(token: u32, reply: Reply) -> bool {
    let Some(entry) = remove(token) else {
        return false;
    };
    let waker = match entry.slot.try_borrow_mut() {
        Ok(mut slot) => match std::mem::replace(&mut *slot, Slot::Done(reply)) {
            Slot::Waiting(waker) => waker,
            _ => None,
        },
        Err(_) => None,
    };
    // Wake outside every borrow.
    if let Some(waker) = waker {
        waker.wake();
    }
    true
}

/// An open gRPC stream's inbox: what the host delivered, not yet taken.
#[derive(Debug, Default)]
pub(crate) struct StreamInbox {
    /// Messages received, oldest first.
    pub(crate) messages: VecDeque<Vec<u8>>,
    /// The stream's initial metadata, once received.
    pub(crate) initial_metadata: Vec<(String, Vec<u8>)>,
    /// The stream's trailing metadata, once received.
    pub(crate) trailing_metadata: Vec<(String, Vec<u8>)>,
    /// The remote end closed it: gRPC status and the host's message.
    pub(crate) closed: Option<(u32, String)>,
    /// Its owner ended: nothing more will be delivered.
    pub(crate) cancelled: bool,
    /// The task waiting for the next event.
    pub(crate) waker: Option<Waker>,
}

type Inbox = Rc<RefCell<StreamInbox>>;

thread_local! {
    /// Open gRPC streams by token.
    static STREAMS: RefCell<Vec<(u32, Owner, Inbox)>> = const { RefCell::new(Vec::new()) };
}

/// Registers the gRPC stream the host opened under `token`.
pub(crate) fn open_stream(token: u32, owner: Owner) -> Inbox {
    let inbox = Inbox::default();
    let _ = STREAMS.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.retain(|(t, _, _)| *t != token);
            s.push((token, owner, Rc::clone(&inbox)));
        }
    });
    inbox
}

/// Whether `token` is an open gRPC stream.
pub(crate) fn is_stream(token: u32) -> bool {
    STREAMS
        .try_with(|s| {
            s.try_borrow()
                .is_ok_and(|s| s.iter().any(|(t, _, _)| *t == token))
        })
        .unwrap_or(false)
}

/// Applies a delivery to stream `token` and wakes its waiter; `close`
/// forgets the stream afterwards. Returns false if nobody has it open.
pub(crate) fn stream_event(token: u32, close: bool, f: impl FnOnce(&mut StreamInbox)) -> bool {
    let inbox = STREAMS
        .try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            let at = s.iter().position(|(t, _, _)| *t == token)?;
            if close {
                Some(s.swap_remove(at).2)
            } else {
                s.get(at).map(|(_, _, i)| Rc::clone(i))
            }
        })
        .ok()
        .flatten();
    let Some(inbox) = inbox else {
        return false;
    };
    let waker = match inbox.try_borrow_mut() {
        Ok(mut i) => {
            f(&mut i);
            i.waker.take()
        }
        Err(_) => None,
    };
    if let Some(waker) = waker {
        waker.wake();
    }
    true
}

/// Forgets stream `token` (its handle was dropped or cancelled).
pub(crate) fn forget_stream(token: u32) {
    let removed = STREAMS
        .try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            let at = s.iter().position(|(t, _, _)| *t == token)?;
            Some(s.swap_remove(at))
        })
        .ok()
        .flatten();
    drop(removed);
}

/// Forgets every call owned by `owner`; late replies are then dropped.
pub(crate) fn cancel_owner(owner: Owner) {
    let streams: Vec<Inbox> = STREAMS
        .try_with(|s| {
            let mut out = Vec::new();
            if let Ok(mut s) = s.try_borrow_mut() {
                let mut i = 0;
                while let Some((_, o, _)) = s.get(i) {
                    if *o == owner {
                        out.push(s.swap_remove(i).2);
                    } else {
                        i += 1;
                    }
                }
            }
            out
        })
        .unwrap_or_default();
    for inbox in streams {
        let waker = inbox.try_borrow_mut().ok().and_then(|mut i| {
            i.cancelled = true;
            i.waker.take()
        });
        if let Some(waker) = waker {
            waker.wake();
        }
    }
    let removed: Vec<Entry> = CALLS
        .try_with(|c| {
            let mut removed = Vec::new();
            if let Ok(mut c) = c.try_borrow_mut() {
                let mut i = 0;
                while let Some((_, e)) = c.get(i) {
                    if e.owner == owner {
                        removed.push(c.swap_remove(i).1);
                    } else {
                        i += 1;
                    }
                }
            }
            removed
        })
        .unwrap_or_default();
    drop(removed);
}

/// How many calls (and open gRPC streams) are in flight (see
/// [`crate::PendingWork`]).
pub(crate) fn pending_calls() -> usize {
    let calls = CALLS
        .try_with(|c| c.try_borrow().map_or(0, |c| c.len()))
        .unwrap_or(0);
    let streams = STREAMS
        .try_with(|s| s.try_borrow().map_or(0, |s| s.len()))
        .unwrap_or(0);
    calls + streams
}

impl Future for CallFuture {
    type Output = Option<Reply>;

    /// `None` means the call was cancelled (its owner ended).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Reply>> {
        let Ok(mut slot) = self.slot.try_borrow_mut() else {
            return Poll::Pending;
        };
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Done(reply) => Poll::Ready(Some(reply)),
            Slot::Waiting(_) => {
                if is_pending(self.token) {
                    *slot = Slot::Waiting(Some(cx.waker().clone()));
                    Poll::Pending
                } else {
                    Poll::Ready(None)
                }
            }
            Slot::Taken => Poll::Ready(None),
        }
    }
}

impl Drop for CallFuture {
    fn drop(&mut self) {
        // A future dropped before its reply (e.g. a `select`) stops waiting.
        let still_waiting = matches!(self.slot.try_borrow().as_deref(), Ok(Slot::Waiting(_)));
        if still_waiting {
            drop(remove(self.token));
        }
    }
}
