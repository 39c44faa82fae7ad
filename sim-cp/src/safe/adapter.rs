//! The bridge from the raw dispatch table to [`SessionHandler`]: one static
//! table of trampolines; the user context points at the instance's handler.
//!
//! Each trampoline catches panics (a panic must not unwind into the
//! platform): the panic is reported to the platform as CRASH-1 (the
//! simulator also ends the session with PROVIDER_OTHER_FAILURE), and an
//! async call returns E_FAIL.
//!
//! The handler runs with its host's [`Cx`]: the simulator sets it before
//! calling; a native platform calls from threads of its own, so the adapter
//! keeps a weak link to the creating host and enters it for the call.

use super::{Buffers, Completion, InstanceRef, SessionHandler};
use crate::abi::*;
use crate::config::Callback;
use crate::platform::Platform;
use crate::runtime::{Cx, WeakCx};
use crate::transport_id::Tid;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

struct Adapter {
    handler: Arc<dyn SessionHandler>,
    platform: &'static dyn Platform,
    /// The creating host (weak: the world keeps the adapter alive).
    home: WeakCx,
}

/// The dispatch table every safe instance uses.
pub(crate) static TABLE: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE =
    CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
        size: DISPATCH_TABLE_SIZE,
        establishSessionIndication: Some(establish),
        terminateSessionIndication: Some(terminate),
        transitionActive: Some(transition_active),
        transitionDormant: Some(transition_dormant),
        addTransportId: Some(add_transport_id),
        removeTransportId: Some(remove_transport_id),
        reachTransportId: Some(reach_transport_id),
        sendBuffers: Some(send_buffers),
    };

/// A user context for `handler`, kept alive by the platform for as long
/// as it may call with it (the simulator: the world's lifetime, since a
/// deferred Destroy may still be running a callback of the instance).
pub(crate) fn user_context(cx: &Cx, handler: Arc<dyn SessionHandler>) -> *mut c_void {
    let a = Arc::new(Adapter {
        handler,
        platform: cx.platform(),
        home: cx.downgrade(),
    });
    let p = Arc::as_ptr(&a) as *mut c_void;
    cx.platform().keep_alive(cx, a);
    p
}

/// # Safety
/// `ctx` is a user context made by [`user_context`] and kept alive.
unsafe fn adapter<'a>(ctx: *mut c_void) -> &'a Adapter {
    // SAFETY: per the function's contract; the platform keeps the Arc.
    unsafe { &*(ctx as *const Adapter) }
}

/// Runs `f` with the handler and its host's context. A callback for a world
/// that is gone (its provider must have destroyed the instance first) does
/// nothing and answers `gone`.
fn with_handler<R>(a: &Adapter, gone: R, f: impl FnOnce(&dyn SessionHandler, &Cx) -> R) -> R {
    if let Some(cx) = Cx::current() {
        return f(&*a.handler, &cx);
    }
    match a.home.upgrade() {
        Some(cx) => cx.enter(|| f(&*a.handler, &cx)),
        None => gone,
    }
}

fn guarded(
    a: &Adapter,
    h: CPNATFWT_PROVIDER_INSTANCE,
    cb: Callback,
    f: impl FnOnce() -> HRESULT,
) -> HRESULT {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(hr) => hr,
        Err(p) => {
            a.platform
                .provider_crashed(h, cb, &crate::runtime::panic_message(&*p));
            E_FAIL
        }
    }
}

fn reply(
    a: &Adapter,
    done_ctx: usize,
    r: super::Reply,
    h: CPNATFWT_PROVIDER_INSTANCE,
    cb: Callback,
) -> HRESULT {
    if r.context != done_ctx {
        a.platform
            .provider_crashed(h, cb, "returned the Reply of another call's Completion");
    }
    r.hr
}

fn iref(a: &Adapter, h: CPNATFWT_PROVIDER_INSTANCE) -> InstanceRef {
    InstanceRef {
        handle: h,
        platform: a.platform,
    }
}

/// The platform's transport ID (one it could not have issued reads as
/// 0.0.0.0, which no handler holds).
///
/// # Safety
/// `t` is NULL or points at a platform transport ID valid for the call.
unsafe fn tid(t: *mut CPNATFWT_TRANSPORT_ID) -> Tid {
    // SAFETY: per the function's contract.
    unsafe { crate::edge::transport_id(t) }.unwrap_or(Tid::v4(0, 0, 0))
}

unsafe extern "system" fn establish(h: CPNATFWT_PROVIDER_INSTANCE, ctx: *mut c_void) {
    // SAFETY: ctx is ours (SESS-6).
    let a = unsafe { adapter(ctx) };
    guarded(a, h, Callback::EstablishSessionIndication, || {
        with_handler(a, (), |hd, cx| hd.establish(cx, &iref(a, h)));
        S_OK
    });
}

unsafe extern "system" fn terminate(
    h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    reason: CPNATFWT_SESSION_TERMINATION_REASON,
) {
    // SAFETY: ctx is ours.
    let a = unsafe { adapter(ctx) };
    guarded(a, h, Callback::TerminateSessionIndication, || {
        with_handler(a, (), |hd, cx| hd.terminate(cx, &iref(a, h), reason));
        S_OK
    });
}

macro_rules! simple_async {
    ($name:ident, $cb:expr, $method:ident) => {
        unsafe extern "system" fn $name(
            h: CPNATFWT_PROVIDER_INSTANCE,
            ctx: *mut c_void,
            cctx: *mut c_void,
            routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
        ) -> HRESULT {
            // SAFETY: ctx is ours.
            let a = unsafe { adapter(ctx) };
            let done = Completion {
                context: cctx as usize,
                routine,
                platform: a.platform,
            };
            guarded(a, h, $cb, || {
                with_handler(a, E_FAIL, |hd, cx| {
                    let r = hd.$method(cx, &iref(a, h), done);
                    reply(a, cctx as usize, r, h, $cb)
                })
            })
        }
    };
}
simple_async!(
    transition_active,
    Callback::TransitionActive,
    transition_active
);
simple_async!(
    transition_dormant,
    Callback::TransitionDormant,
    transition_dormant
);

macro_rules! tid_async {
    ($name:ident, $cb:expr, $method:ident) => {
        unsafe extern "system" fn $name(
            h: CPNATFWT_PROVIDER_INSTANCE,
            ctx: *mut c_void,
            t: *mut CPNATFWT_TRANSPORT_ID,
            cctx: *mut c_void,
            routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
        ) -> HRESULT {
            // SAFETY: ctx is ours.
            let a = unsafe { adapter(ctx) };
            let done = Completion {
                context: cctx as usize,
                routine,
                platform: a.platform,
            };
            // SAFETY: the platform's argument, valid during the call.
            let id = unsafe { tid(t) };
            guarded(a, h, $cb, || {
                with_handler(a, E_FAIL, |hd, cx| {
                    let r = hd.$method(cx, &iref(a, h), id, done);
                    reply(a, cctx as usize, r, h, $cb)
                })
            })
        }
    };
}
tid_async!(add_transport_id, Callback::AddTransportId, add_transport_id);
tid_async!(
    remove_transport_id,
    Callback::RemoveTransportId,
    remove_transport_id
);
tid_async!(
    reach_transport_id,
    Callback::ReachTransportId,
    reach_transport_id
);

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn send_buffers(
    h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    local: *mut CPNATFWT_TRANSPORT_ID,
    remote: *mut CPNATFWT_TRANSPORT_ID,
    _endpoint_luid: u64,
    chain: *mut CPNATFWT_BUFFER,
    cctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: ctx is ours.
    let a = unsafe { adapter(ctx) };
    let done = Completion {
        context: cctx as usize,
        routine,
        platform: a.platform,
    };
    // SAFETY: the platform's arguments, valid during the call (and the chain
    // is well formed: the platform built it).
    let (l, r, data) = unsafe { (tid(local), tid(remote), Buffers::new(chain)) };
    guarded(a, h, Callback::SendBuffers, || {
        with_handler(a, E_FAIL, |hd, cx| {
            let rep = hd.send_buffers(cx, &iref(a, h), l, r, &data, done);
            reply(a, cctx as usize, rep, h, Callback::SendBuffers)
        })
    })
}
