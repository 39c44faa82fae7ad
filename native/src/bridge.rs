//! The interposed dispatch table: each callback the platform makes is
//! recorded, handed to the provider's own table with the bridge's
//! completion context and routine, and its return recorded.

use crate::calls::{bridge_completion, ctx_of, Pend, Who, CALLS};
use crate::record::{shim_of, Shim};
use cpsim_sim::abi::*;
use cpsim_sim::edge::{chain_len, guard, transport_id};
use cpsim_sim::ledger::{CallPhase, Returned};
use cpsim_sim::rules::id;
use cpsim_sim::trace::What;
use cpsim_sim::{Callback, Tid};
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The longest buffer chain walked (elements).
const MAX_CHAIN: usize = 4096;

pub(crate) static BRIDGE_TABLE: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE =
    CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
        size: DISPATCH_TABLE_SIZE,
        establishSessionIndication: Some(b_establish),
        terminateSessionIndication: Some(b_terminate),
        transitionActive: Some(b_transition_active),
        transitionDormant: Some(b_transition_dormant),
        addTransportId: Some(b_add),
        removeTransportId: Some(b_remove),
        reachTransportId: Some(b_reach),
        sendBuffers: Some(b_send),
    };

unsafe extern "system" fn b_establish(h: CPNATFWT_PROVIDER_INSTANCE, user: *mut c_void) {
    guard((), || {
        let Some((s, delta)) = shim_of(h, user) else {
            return;
        };
        let cb = Callback::EstablishSessionIndication;
        s.inner
            .record(s.n, call_event(cb, 0, None, None, None, None, delta, false));
        if let Some(f) = s.table.establishSessionIndication {
            // SAFETY: the provider's callback with its own user context.
            unsafe { f(h, s.user as *mut c_void) };
        }
        s.inner.record(
            s.n,
            What::Return {
                cb,
                call: 0,
                hr: None,
            },
        );
    })
}

unsafe extern "system" fn b_terminate(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    reason: CPNATFWT_SESSION_TERMINATION_REASON,
) {
    guard((), || {
        let Some((s, delta)) = shim_of(h, user) else {
            return;
        };
        let cb = Callback::TerminateSessionIndication;
        s.terminated.store(true, Ordering::Release);
        if let Some(cause) = unseen_cause(&s, reason) {
            s.inner.record(s.n, cause);
        }
        s.inner.record(
            s.n,
            call_event(cb, 0, None, None, None, Some(reason), delta, false),
        );
        if let Some(f) = s.table.terminateSessionIndication {
            // SAFETY: the provider's callback with its own user context.
            unsafe { f(h, s.user as *mut c_void, reason) };
        }
        s.inner.record(
            s.n,
            What::Return {
                cb,
                call: 0,
                hr: None,
            },
        );
    })
}

/// What the bridge can say about why the platform ends a session whose
/// cause happened where no provider can see it. A timeout (the platform's
/// own timer) is put down to the oldest call still pended on the instance,
/// if any (with none, the checker rightly finds no cause: SESS-5); a
/// shutdown or an infrastructure fault is taken as given.
fn unseen_cause(s: &Arc<Shim>, reason: CPNATFWT_SESSION_TERMINATION_REASON) -> Option<What> {
    use CPNATFWT_SESSION_TERMINATION_REASON as R;
    match reason {
        R::ProviderTimeout => {
            let me = Arc::as_ptr(s) as usize;
            CALLS
                .lock()
                .open_calls()
                .filter(|(_, phase, w, _)| {
                    w.shim == me && matches!(phase, CallPhase::InCallback | CallPhase::Pending)
                })
                .map(|(_, _, w, _)| w)
                .min_by_key(|w| w.call)
                .map(|w| What::Timeout {
                    cb: w.cb,
                    call: w.call,
                    excused: false,
                })
        }
        R::PlatformShutdown | R::OtherCommunicationError => Some(What::UnseenCause { reason }),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn call_event(
    cb: Callback,
    call: u32,
    tid: Option<Tid>,
    remote: Option<Tid>,
    bytes: Option<u32>,
    reason: Option<CPNATFWT_SESSION_TERMINATION_REASON>,
    context_delta: u64,
    routine: bool,
) -> What {
    What::Call {
        cb,
        call,
        tid,
        remote,
        bytes,
        reason,
        context_delta,
        routine,
    }
}

/// The common part of every async-capable callback: record the call, hand
/// the provider the bridge's completion context and routine, record the
/// return (and how a finished call reads), forward the result.
#[allow(clippy::too_many_arguments)]
fn bridged_call(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    cb: Callback,
    tid_ptr: *const CPNATFWT_TRANSPORT_ID,
    tid: Option<Tid>,
    remote: Option<Tid>,
    bytes: Option<u32>,
    ctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    invoke: impl FnOnce(&Shim, *mut c_void, CPNATFWT_PLATFORM_COMPLETION_ROUTINE) -> HRESULT,
) -> HRESULT {
    let Some((s, delta)) = shim_of(h, user) else {
        return E_FAIL;
    };
    let call = {
        let mut r = s.inner.rec.lock();
        r.next_call += 1;
        let ids: Vec<Tid> = tid.into_iter().chain(remote).collect();
        r.issued(s.n, &ids);
        r.next_call
    };
    s.inner.record(
        s.n,
        call_event(cb, call, tid, remote, bytes, None, delta, routine.is_some()),
    );
    let serial = CALLS.lock().open(
        Who {
            shim: Arc::as_ptr(&s) as usize,
            n: s.n,
            cb,
            bridge: s.inner.bridge,
            call,
        },
        Pend {
            real_ctx: ctx as usize,
            real_routine: routine,
            tid: tid
                .filter(|_| !tid_ptr.is_null())
                .map(|t| (tid_ptr as usize, t)),
        },
    );
    let id = ctx_of(serial);
    let hr = invoke(&s, id as *mut c_void, Some(bridge_completion));
    s.inner.record(
        s.n,
        What::Return {
            cb,
            call,
            hr: Some(hr),
        },
    );
    let mut calls = CALLS.lock();
    let mut returned = Returned::NotInCallback;
    if let Some((r, _)) = calls.returned(serial, hr) {
        returned = r;
        let read = match r {
            Returned::Sync | Returned::SyncAfterCompletion => Some(hr == S_OK),
            Returned::EndsWithEarlyStatus(status) => Some(status == S_OK),
            Returned::Pending | Returned::NotInCallback => None,
        };
        if let Some(ok) = read {
            s.inner.record(s.n, What::Outcome { cb, call, ok });
        }
        calls.finish(serial);
    }
    drop(calls);
    if returned.broken_rule() == Some(id::COMP_3) {
        s.inner.provider_violation(
            id::COMP_3,
            s.n,
            cb,
            format!("the completion routine was called, then the callback returned 0x{hr:08X} instead of ERROR_IO_PENDING"),
        );
    }
    hr
}

/// TRANSITION_ACTIVE and TRANSITION_DORMANT: the same shape, their own
/// entry of the provider's table.
macro_rules! transition_callback {
    ($name:ident, $cb:expr, $field:ident) => {
        unsafe extern "system" fn $name(
            h: CPNATFWT_PROVIDER_INSTANCE,
            user: *mut c_void,
            ctx: *mut c_void,
            routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
        ) -> HRESULT {
            guard(E_FAIL, || {
                let null = std::ptr::null();
                bridged_call(
                    h,
                    user,
                    $cb,
                    null,
                    None,
                    None,
                    None,
                    ctx,
                    routine,
                    |s, c, r| {
                        s.table.$field.map_or(E_FAIL, |f| {
                            // SAFETY: the provider's callback, its user
                            // context, our completion.
                            unsafe { f(h, s.user as *mut c_void, c, r) }
                        })
                    },
                )
            })
        }
    };
}

transition_callback!(
    b_transition_active,
    Callback::TransitionActive,
    transitionActive
);
transition_callback!(
    b_transition_dormant,
    Callback::TransitionDormant,
    transitionDormant
);

macro_rules! tid_callback {
    ($name:ident, $cb:expr, $field:ident) => {
        unsafe extern "system" fn $name(
            h: CPNATFWT_PROVIDER_INSTANCE,
            user: *mut c_void,
            t: *mut CPNATFWT_TRANSPORT_ID,
            ctx: *mut c_void,
            routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
        ) -> HRESULT {
            guard(E_FAIL, || {
                // SAFETY: the platform's argument, valid during the call.
                let tid = unsafe { transport_id(t) };
                bridged_call(h, user, $cb, t, tid, None, None, ctx, routine, |s, c, r| {
                    s.table.$field.map_or(E_FAIL, |f| {
                        // SAFETY: the provider's callback, the platform's ID,
                        // its user context, our completion.
                        unsafe { f(h, s.user as *mut c_void, t, c, r) }
                    })
                })
            })
        }
    };
}

tid_callback!(b_add, Callback::AddTransportId, addTransportId);
tid_callback!(b_remove, Callback::RemoveTransportId, removeTransportId);
tid_callback!(b_reach, Callback::ReachTransportId, reachTransportId);

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn b_send(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    local: *mut CPNATFWT_TRANSPORT_ID,
    remote: *mut CPNATFWT_TRANSPORT_ID,
    endpoint: u64,
    chain: *mut CPNATFWT_BUFFER,
    ctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    guard(E_FAIL, || {
        // SAFETY: the platform's arguments, valid during the call.
        let (l, r, bytes) = unsafe {
            (
                transport_id(local),
                transport_id(remote),
                chain_len(chain, MAX_CHAIN),
            )
        };
        let cb = Callback::SendBuffers;
        bridged_call(
            h,
            user,
            cb,
            local,
            l,
            r,
            Some(bytes),
            ctx,
            routine,
            |s, c, rt| {
                s.table.sendBuffers.map_or(E_FAIL, |f| {
                    // SAFETY: the provider's callback with the platform's
                    // arguments, its user context, our completion.
                    unsafe {
                        f(
                            h,
                            s.user as *mut c_void,
                            local,
                            remote,
                            endpoint,
                            chain,
                            c,
                            rt,
                        )
                    }
                })
            },
        )
    })
}
