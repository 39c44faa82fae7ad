//! The safe Rust provider API.
//!
//! A provider implements [`SessionHandler`] per instance. Each async-capable
//! callback receives a [`Completion`], a move-only token that must be turned
//! into the callback's [`Reply`] exactly one way:
//! - `done.ok()` / `done.fail(f)`: a synchronous result; the token is gone,
//!   so the completion routine can never be called afterwards (COMP-3);
//! - `done.pend()`: returns ERROR_IO_PENDING plus a [`Pending`] token whose
//!   `complete` consumes it, so it completes at most once (COMP-4), always
//!   with its own call's context (COMP-5) and never with ERROR_IO_PENDING
//!   ([`Failure`] cannot hold it: COMP-6). A `Pending` dropped without
//!   completing is reported as COMP-4 on the spot.
//!
//! The API does not care which platform it runs on: every call goes through
//! the [`Platform`] of the instance's host ([`Cx::platform`]), so the same
//! handler runs on the simulator and, through the native backend, on a real
//! `iphlpapi.dll`.
//!
//! Success is only ever S_OK (COMP-2 cannot be written) and transport IDs
//! arrive as owned values (TID-3 and COMP-7 cannot be written). Everything
//! else (lifecycle order, timeouts, DATA-*, TID-2/4/6) is still checked.

mod adapter;
mod instance;

pub use instance::{Instance, InstanceRef, RegisterOptions};

use crate::abi::{
    CPNATFWT_BUFFER, CPNATFWT_PLATFORM_COMPLETION_ROUTINE, E_FAIL, E_PENDING_IO, HRESULT, S_OK,
};
use crate::platform::{Platform, SIMULATED};
use crate::runtime::Cx;
use crate::transport_id::Tid;
use std::ffi::c_void;
use std::marker::PhantomData;

pub use crate::abi::CPNATFWT_SESSION_TERMINATION_REASON as TerminationReason;

/// A failure HRESULT: negative, and never ERROR_IO_PENDING.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Failure(HRESULT);

impl Failure {
    /// `E_FAIL`.
    pub const FAIL: Failure = Failure(E_FAIL);
    /// A failure from an HRESULT; `None` for success codes and ERROR_IO_PENDING.
    pub const fn new(hr: HRESULT) -> Option<Failure> {
        if hr < 0 && hr != E_PENDING_IO {
            Some(Failure(hr))
        } else {
            None
        }
    }
    /// `HRESULT_FROM_WIN32(code)` as a failure (code != 0, != ERROR_IO_PENDING).
    pub const fn win32(code: u32) -> Option<Failure> {
        Failure::new(crate::abi::hresult_from_win32(code))
    }
    pub fn hresult(self) -> HRESULT {
        self.0
    }
}

/// What a callback returns: made only by consuming its [`Completion`].
#[must_use = "return the Reply from the callback"]
pub struct Reply {
    pub(crate) hr: HRESULT,
    pub(crate) context: usize,
}

/// The right to finish one call, synchronously or by pending it.
#[must_use = "a Completion must become the callback's Reply"]
pub struct Completion {
    pub(crate) context: usize,
    pub(crate) routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    pub(crate) platform: &'static dyn Platform,
}

impl Completion {
    /// Finish now with success.
    pub fn ok(self) -> Reply {
        Reply {
            hr: S_OK,
            context: self.context,
        }
    }
    /// Finish now with a failure.
    pub fn fail(self, f: Failure) -> Reply {
        Reply {
            hr: f.0,
            context: self.context,
        }
    }
    /// Finish now with this result.
    pub fn result(self, r: Result<(), Failure>) -> Reply {
        match r {
            Ok(()) => self.ok(),
            Err(f) => self.fail(f),
        }
    }
    /// Finish later: the callback returns ERROR_IO_PENDING and the returned
    /// token completes the call, from any thread, at any time (even before
    /// the callback has returned).
    pub fn pend(self) -> (Reply, Pending) {
        (
            Reply {
                hr: E_PENDING_IO,
                context: self.context,
            },
            Pending {
                context: self.context,
                routine: self.routine,
                platform: self.platform,
            },
        )
    }
}

impl Reply {
    /// The HRESULT the callback will return.
    pub fn hresult(&self) -> HRESULT {
        self.hr
    }
}

/// Raw interop, for providers that mix the raw ABI with the safe API (and
/// for deliberately broken providers that bypass it). These trust their
/// arguments, hence `unsafe`.
impl Completion {
    /// A token for a call of the simulator whose completion context and
    /// routine are these.
    ///
    /// # Safety
    /// They must be the ones the platform passed to the current callback.
    pub unsafe fn from_raw(
        context: *mut c_void,
        routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> Completion {
        // SAFETY: the caller's promise.
        unsafe { Completion::from_raw_on(&SIMULATED, context, routine) }
    }
    /// A token for a call of `platform` whose completion context and
    /// routine are these.
    ///
    /// # Safety
    /// As [`Completion::from_raw`].
    pub unsafe fn from_raw_on(
        platform: &'static dyn Platform,
        context: *mut c_void,
        routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> Completion {
        Completion {
            context: context as usize,
            routine,
            platform,
        }
    }
    /// The raw completion context.
    pub fn raw_context(&self) -> *mut c_void {
        self.context as *mut c_void
    }
}

/// A pended call, to be completed exactly once.
#[must_use = "a Pending call must be completed (dropping it is COMP-4)"]
pub struct Pending {
    context: usize,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    platform: &'static dyn Platform,
}

impl Pending {
    /// Completes the call with this result.
    pub fn complete(self, r: Result<(), Failure>) {
        let hr = match r {
            Ok(()) => S_OK,
            Err(f) => f.0,
        };
        let routine = self.routine;
        let ctx = self.context;
        std::mem::forget(self);
        if let Some(f) = routine {
            // SAFETY: the platform's routine with the context it gave for this call.
            unsafe { f(ctx as *mut c_void, hr) };
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.platform
            .completion_dropped(self.context as *mut c_void);
    }
}

/// A buffer chain borrowed for the duration of a SEND_BUFFERS call.
pub struct Buffers<'a> {
    head: *const CPNATFWT_BUFFER,
    _call: PhantomData<&'a CPNATFWT_BUFFER>,
}

impl<'a> Buffers<'a> {
    /// # Safety
    /// `head` is a well-formed chain valid for `'a`.
    pub unsafe fn new(head: *const CPNATFWT_BUFFER) -> Buffers<'a> {
        Buffers {
            head,
            _call: PhantomData,
        }
    }
    /// The chain's non-empty pieces, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let mut p = self.head;
        std::iter::from_fn(move || {
            while !p.is_null() {
                // SAFETY: the platform's chain is well formed and valid for 'a.
                let b = unsafe { &*p };
                p = b.next;
                if b.size > 0 {
                    // SAFETY: as above.
                    return Some(unsafe { std::slice::from_raw_parts(b.buffer, b.size as usize) });
                }
            }
            None
        })
    }
    /// The chain's bytes, concatenated (a deep copy to keep past the call).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for p in self.pieces() {
            v.extend_from_slice(p);
        }
        v
    }
    pub fn len(&self) -> usize {
        self.pieces().map(<[u8]>::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One instance's callbacks, safely typed. Every method runs with the
/// instance's host context; `cx` gives tasks, timers and the network.
pub trait SessionHandler: Send + Sync + 'static {
    /// The session is established; the instance is dormant.
    fn establish(&self, _cx: &Cx, _inst: &InstanceRef) {}
    /// The session ended; `reason` says why. For any reason but
    /// PROVIDER_REQUEST the provider must deregister (LIFE-7).
    fn terminate(&self, _cx: &Cx, _inst: &InstanceRef, _reason: TerminationReason) {}
    fn transition_active(&self, cx: &Cx, inst: &InstanceRef, done: Completion) -> Reply;
    fn transition_dormant(&self, _cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        done.ok()
    }
    fn add_transport_id(&self, cx: &Cx, inst: &InstanceRef, id: Tid, done: Completion) -> Reply;
    fn remove_transport_id(&self, cx: &Cx, inst: &InstanceRef, id: Tid, done: Completion) -> Reply;
    fn reach_transport_id(&self, cx: &Cx, inst: &InstanceRef, id: Tid, done: Completion) -> Reply;
    fn send_buffers(
        &self,
        cx: &Cx,
        inst: &InstanceRef,
        local: Tid,
        remote: Tid,
        data: &Buffers<'_>,
        done: Completion,
    ) -> Reply;
}
