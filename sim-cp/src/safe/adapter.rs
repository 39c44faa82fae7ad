//! The bridge from the raw dispatch table to [`SessionHandler`]: one static
//! table of trampolines; the user context points at the instance's handler.
//!
//! Each trampoline catches panics (a panic must not unwind into the
//! platform): the panic is reported as CRASH-1, the session is ended with
//! PROVIDER_OTHER_FAILURE, and an async call returns E_FAIL.

use super::{Buffers, Completion, InstanceRef, SessionHandler};
use crate::abi::*;
use crate::config::Callback;
use crate::runtime::Cx;
use crate::transport_id::Tid;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

struct Adapter {
    handler: Arc<dyn SessionHandler>,
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

/// A user context for `handler`, kept alive as long as the world is (a
/// deferred Destroy may still be running a callback of the instance).
pub(crate) fn user_context(cx: &Cx, handler: Arc<dyn SessionHandler>) -> *mut c_void {
    let a = Arc::new(Adapter { handler });
    let p = Arc::as_ptr(&a) as *mut c_void;
    cx.shared.keepalive.lock().push(a);
    p
}

/// # Safety
/// `ctx` is a user context made by [`user_context`] whose world is alive.
unsafe fn handler<'a>(ctx: *mut c_void) -> &'a dyn SessionHandler {
    // SAFETY: per the function's contract; the Arc is kept by the world.
    unsafe { &*(*(ctx as *const Adapter)).handler }
}

fn cx() -> Cx {
    Cx::current().expect("the platform sets the host context for callbacks")
}

fn guarded(h: CPNATFWT_PROVIDER_INSTANCE, cb: Callback, f: impl FnOnce() -> HRESULT) -> HRESULT {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(hr) => hr,
        Err(p) => {
            crate::engine::report_crash(h.as_u64(), cb, &crate::runtime::panic_message(&*p));
            E_FAIL
        }
    }
}

fn reply(done_ctx: usize, r: super::Reply, h: CPNATFWT_PROVIDER_INSTANCE, cb: Callback) -> HRESULT {
    if r.context != done_ctx {
        crate::engine::report_crash(
            h.as_u64(),
            cb,
            "returned the Reply of another call's Completion",
        );
    }
    r.hr
}

/// # Safety
/// `t` points at a platform transport ID valid for the call.
unsafe fn tid(t: *mut CPNATFWT_TRANSPORT_ID) -> Tid {
    // SAFETY: the platform's IDs are 4 or 16 bytes at a valid pointer.
    unsafe {
        let t = &*t;
        Tid::from_bytes(std::slice::from_raw_parts(t.transportId, t.size as usize))
            .unwrap_or(Tid::v4(0, 0, 0))
    }
}

unsafe extern "system" fn establish(h: CPNATFWT_PROVIDER_INSTANCE, ctx: *mut c_void) {
    guarded(h, Callback::EstablishSessionIndication, || {
        // SAFETY: ctx is ours (SESS-6).
        unsafe { handler(ctx) }.establish(&cx(), &InstanceRef { handle: h });
        S_OK
    });
}

unsafe extern "system" fn terminate(
    h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    reason: CPNATFWT_SESSION_TERMINATION_REASON,
) {
    guarded(h, Callback::TerminateSessionIndication, || {
        // SAFETY: ctx is ours.
        unsafe { handler(ctx) }.terminate(&cx(), &InstanceRef { handle: h }, reason);
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
            let done = Completion {
                context: cctx as usize,
                routine,
            };
            guarded(h, $cb, || {
                // SAFETY: ctx is ours.
                let r = unsafe { handler(ctx) }.$method(&cx(), &InstanceRef { handle: h }, done);
                reply(cctx as usize, r, h, $cb)
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
            let done = Completion {
                context: cctx as usize,
                routine,
            };
            // SAFETY: the platform's argument, valid during the call.
            let id = unsafe { tid(t) };
            guarded(h, $cb, || {
                // SAFETY: ctx is ours.
                let r =
                    unsafe { handler(ctx) }.$method(&cx(), &InstanceRef { handle: h }, id, done);
                reply(cctx as usize, r, h, $cb)
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
    let done = Completion {
        context: cctx as usize,
        routine,
    };
    // SAFETY: the platform's arguments, valid during the call (and the chain
    // is well formed: the platform built it).
    let (l, r, data) = unsafe { (tid(local), tid(remote), Buffers::new(chain)) };
    guarded(h, Callback::SendBuffers, || {
        // SAFETY: ctx is ours.
        let rep = unsafe { handler(ctx) }.send_buffers(
            &cx(),
            &InstanceRef { handle: h },
            l,
            r,
            &data,
            done,
        );
        reply(cctx as usize, rep, h, Callback::SendBuffers)
    })
}
