//! Channels (Go's `hchan`): unbuffered and buffered, with close.
//!
//! A channel is a lock, a ring buffer of `cap` elements, and two FIFO wait
//! queues of blocked senders and receivers. A send to a channel with a
//! waiting receiver hands the value straight to it and readies it (the
//! receiver runs next on this P, inheriting the time slice — Go's behaviour,
//! and what makes ping-pong cheap); otherwise it fills the buffer or parks.
//! A receive takes from a waiting sender first (for a full buffer: the head of
//! the buffer, and the sender's value goes to the tail), then from the buffer,
//! then parks. Closing wakes everybody: receivers get `None` once the buffer
//! is drained, blocked senders panic (`send on closed channel`).

use crate::lock::Lock;
use crate::park::Waiter;
use core::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::Arc;

struct Sudog<T> {
    w: Waiter,
    elem: UnsafeCell<Option<T>>,
}

struct Inner<T> {
    buf: VecDeque<T>,
    cap: usize,
    closed: bool,
    recvq: VecDeque<*const Sudog<T>>,
    sendq: VecDeque<*const Sudog<T>>,
}

struct HChan<T> {
    lock: Lock,
    inner: UnsafeCell<Inner<T>>,
}

// SAFETY: `inner` is only touched with `lock` held; elements move between
// threads, hence `T: Send`.
unsafe impl<T: Send> Sync for HChan<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for HChan<T> {}

/// A channel of `T`; clones are handles to the same channel (as Go's `chan T`).
pub struct Chan<T> {
    h: Arc<HChan<T>>,
}

impl<T> Clone for Chan<T> {
    fn clone(&self) -> Self {
        Chan { h: self.h.clone() }
    }
}

impl<T> core::fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chan").finish_non_exhaustive()
    }
}

/// Why a non-blocking send failed.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// No receiver waiting and no room in the buffer.
    Full(T),
    /// The channel is closed.
    Closed(T),
}

impl<T: Send> Chan<T> {
    /// A channel with room for `cap` elements (0: unbuffered).
    pub fn new(cap: usize) -> Chan<T> {
        Chan {
            h: Arc::new(HChan {
                lock: Lock::new(),
                inner: UnsafeCell::new(Inner {
                    buf: VecDeque::with_capacity(cap),
                    cap,
                    closed: false,
                    recvq: VecDeque::new(),
                    sendq: VecDeque::new(),
                }),
            }),
        }
    }

    #[allow(clippy::mut_from_ref)]
    fn inner(&self) -> &mut Inner<T> {
        // SAFETY: only called with `lock` held (every caller below).
        unsafe { &mut *self.h.inner.get() }
    }

    /// Sends `v`, blocking until a receiver takes it or buffer room frees up.
    ///
    /// # Panics
    /// `send on closed channel`, as Go.
    pub fn send(&self, v: T) {
        if let Err(TrySendError::Closed(_)) = self.send_impl(v, true) {
            panic!("send on closed channel");
        }
    }

    /// Sends without blocking.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.send_impl(v, false)
    }

    fn send_impl(&self, v: T, block: bool) -> Result<(), TrySendError<T>> {
        self.h.lock.lock();
        let c = self.inner();
        if c.closed {
            self.h.lock.unlock();
            return Err(TrySendError::Closed(v));
        }
        if let Some(sg) = c.recvq.pop_front() {
            // SAFETY: sg is a parked receiver's sudog, live until woken.
            unsafe {
                *(*sg).elem.get() = Some(v);
                (*(sg as *mut Sudog<T>)).w.success = true;
            }
            self.h.lock.unlock();
            // SAFETY: dequeued under the lock: we are its only waker.
            unsafe { Waiter::wake(&(*sg).w) };
            return Ok(());
        }
        if c.buf.len() < c.cap {
            c.buf.push_back(v);
            self.h.lock.unlock();
            return Ok(());
        }
        if !block {
            self.h.lock.unlock();
            return Err(TrySendError::Full(v));
        }
        let sg = Sudog { w: Waiter::new(), elem: UnsafeCell::new(Some(v)) };
        c.sendq.push_back(&sg);
        // SAFETY: lock held; sg stays on this stack until we are woken.
        unsafe { sg.w.park(&self.h.lock, "chan send") };
        if sg.w.success {
            Ok(())
        } else {
            // SAFETY: woken by close: nobody touches sg any more.
            let v = unsafe { (*sg.elem.get()).take() }.expect("unsent value");
            Err(TrySendError::Closed(v))
        }
    }

    /// Receives a value, blocking until one is sent; `None` once the channel
    /// is closed and drained.
    pub fn recv(&self) -> Option<T> {
        self.recv_impl(true).unwrap_or(None)
    }

    /// Receives without blocking: `Err(())` when nothing is ready,
    /// `Ok(None)` when closed and drained.
    #[allow(clippy::result_unit_err)]
    pub fn try_recv(&self) -> Result<Option<T>, ()> {
        self.recv_impl(false)
    }

    fn recv_impl(&self, block: bool) -> Result<Option<T>, ()> {
        self.h.lock.lock();
        let c = self.inner();
        if let Some(sg) = c.sendq.pop_front() {
            // SAFETY: sg is a parked sender's sudog, live until woken.
            let v = unsafe {
                let sv = (*(*sg).elem.get()).take().expect("sender without value");
                (*(sg as *mut Sudog<T>)).w.success = true;
                if c.cap == 0 {
                    sv
                } else {
                    // Full buffer: take the head, the sender's value joins the tail.
                    let head = c.buf.pop_front().expect("full buffer");
                    c.buf.push_back(sv);
                    head
                }
            };
            self.h.lock.unlock();
            // SAFETY: dequeued under the lock: we are its only waker.
            unsafe { Waiter::wake(&(*sg).w) };
            return Ok(Some(v));
        }
        if let Some(v) = c.buf.pop_front() {
            self.h.lock.unlock();
            return Ok(Some(v));
        }
        if c.closed {
            self.h.lock.unlock();
            return Ok(None);
        }
        if !block {
            self.h.lock.unlock();
            return Err(());
        }
        let sg = Sudog { w: Waiter::new(), elem: UnsafeCell::new(None) };
        c.recvq.push_back(&sg);
        // SAFETY: lock held; sg stays on this stack until we are woken.
        unsafe { sg.w.park(&self.h.lock, "chan receive") };
        // SAFETY: woken: nobody touches sg any more.
        Ok(unsafe { (*sg.elem.get()).take() })
    }

    /// Closes the channel (Go's `close`).
    ///
    /// # Panics
    /// `close of closed channel`, as Go.
    pub fn close(&self) {
        self.h.lock.lock();
        let c = self.inner();
        if c.closed {
            self.h.lock.unlock();
            panic!("close of closed channel");
        }
        c.closed = true;
        let waiters: Vec<*const Sudog<T>> = c.recvq.drain(..).chain(c.sendq.drain(..)).collect();
        self.h.lock.unlock();
        for sg in waiters {
            // SAFETY: dequeued under the lock; success stays false.
            unsafe { Waiter::wake(&(*sg).w) };
        }
    }

    /// Elements in the buffer.
    pub fn len(&self) -> usize {
        self.h.lock.lock();
        let n = self.inner().buf.len();
        self.h.lock.unlock();
        n
    }

    /// True when the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buffer capacity.
    pub fn cap(&self) -> usize {
        self.h.lock.lock();
        let n = self.inner().cap;
        self.h.lock.unlock();
        n
    }

    /// Receives until the channel is closed and drained (`for v := range ch`).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        core::iter::from_fn(move || self.recv())
    }
}
