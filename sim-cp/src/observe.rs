//! Looking at a running world from another thread: what the harness uses
//! when a provider never lets the run finish (a callback that hangs, a
//! module that ends the process), so that the author still gets the trace
//! up to that point.
//!
//! An [`Observer`] keeps no world alive; everything it returns is a copy.

use crate::config::Callback;
use crate::engine::Shared;
use crate::engine::{Outcome, Sim};
use std::sync::Weak;
use std::time::Duration;

/// A weak view of one world (see [`Sim::observer`]).
#[derive(Clone)]
pub struct Observer {
    shared: Weak<Shared>,
}

impl Sim {
    /// A view of this world that other threads can read while it runs.
    pub fn observer(&self) -> Observer {
        Observer {
            shared: std::sync::Arc::downgrade(&self.shared),
        }
    }
}

impl Observer {
    /// The violations and the trace recorded so far, without stopping or
    /// changing anything. Waits at most `wait` for the world's lock (a
    /// thread of the run may hold it for a moment); `None` if the world is
    /// gone or the lock stayed taken.
    pub fn snapshot(&self, wait: Duration) -> Option<Outcome> {
        let shared = self.shared.upgrade()?;
        let w = shared.try_lock_for(wait)?;
        let (sent, delivered) = w.datagram_counts();
        Some(Outcome {
            violations: w.recorder().violations().to_vec(),
            trace: w.recorder().snapshot(),
            end: w.now(),
            sent,
            delivered,
            // Kept by the world until the run finishes (`Sim::finish`).
            idle: Vec::new(),
        })
    }

    /// A number that changes whenever a callback starts or returns, odd
    /// while one runs (an atomic read): the same odd value seen twice, far
    /// apart, means one callback ran all that time.
    pub fn callback_epoch(&self) -> Option<u64> {
        self.shared.upgrade().map(|s| s.callback_epoch())
    }

    /// The callback running right now, if one is (read from two atomics:
    /// no lock, no allocation, so it may be called from a signal handler).
    pub fn running_callback(&self) -> Option<Callback> {
        let shared = self.shared.upgrade()?;
        if shared.callback_epoch() % 2 == 0 {
            return None;
        }
        Some(shared.callback_running().1)
    }
}
