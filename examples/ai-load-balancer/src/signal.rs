//! A one-shot "done" signal between the task that talks to Redis (owned by
//! the plugin root) and the request waiting on it: the request continues
//! once the [`Sender`] is dropped.
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Shared {
    done: bool,
    waker: Option<Waker>,
}

/// Completes its [`Receiver`] when dropped.
pub(crate) struct Sender(Rc<RefCell<Shared>>);

/// Resolves once the [`Sender`] is gone.
pub(crate) struct Receiver(Rc<RefCell<Shared>>);

pub(crate) fn channel() -> (Sender, Receiver) {
    let shared = Rc::new(RefCell::new(Shared::default()));
    (Sender(Rc::clone(&shared)), Receiver(shared))
}

impl Drop for Sender {
    fn drop(&mut self) {
        let waker = self.0.try_borrow_mut().ok().and_then(|mut s| {
            s.done = true;
            s.waker.take()
        });
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for Receiver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Ok(mut shared) = self.0.try_borrow_mut() else {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        if shared.done {
            Poll::Ready(())
        } else {
            shared.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
