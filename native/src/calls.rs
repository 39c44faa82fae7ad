//! The bridge's calls: the completion context it hands the provider for
//! each async-capable call (the call's serial in the ledger), the calls
//! kept in [`cpsim_sim::ledger::Ledger`] (the same ledger the simulator
//! keeps, which judges each return and completion), and the completion
//! routines it interposes.

use crate::record::{provider_violation_at, SHIM_ADDRS};
use cpsim_sim::abi::*;
use cpsim_sim::edge::{guard, transport_id};
use cpsim_sim::ledger::{Completion, Ledger};
use cpsim_sim::trace::What;
use cpsim_sim::{Callback, Tid};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;

/// Who a call the bridge handed on was: kept for as long as the process
/// runs, to name a late or second completion (COMP-3, COMP-4).
#[derive(Copy, Clone)]
pub(crate) struct Who {
    pub(crate) shim: usize,
    pub(crate) n: u32,
    pub(crate) cb: Callback,
    pub(crate) call: u32,
}

/// An open call the bridge handed on: the platform's context and routine,
/// and its transport ID argument (its address and value), to tell whether
/// the platform kept it intact until the completion (COMP-8).
pub(crate) struct Pend {
    pub(crate) real_ctx: usize,
    pub(crate) real_routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    pub(crate) tid: Option<(usize, Tid)>,
}

/// Every call the bridges of this process handed on, by serial: the shared
/// ledger, as the simulator keeps its own. A call's completion context is
/// its serial ([`ctx_of`]).
pub(crate) static CALLS: Mutex<Ledger<Pend, Who>> = Mutex::new(Ledger::new());

/// A pended indication: the provider's routine and context.
pub(crate) struct IndPend {
    pub(crate) n: u32,
    pub(crate) shim: usize,
    pub(crate) ctx: usize,
    pub(crate) routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
}

/// The pended indications, by the context the bridge gave the platform.
pub(crate) static IND_PENDS: LazyLock<Mutex<HashMap<usize, IndPend>>> =
    LazyLock::new(Default::default);
/// Where the completion contexts of calls start: call `s` has
/// `CALL_CTX_BASE + 16 s`. They have high bits set, so that a context cut
/// to 32 bits on its way back (COMP-5) is not the call's own any more: its
/// low bits still tell which call it was cut from.
const CALL_CTX_BASE: usize = 0x5EED_0000_0000_1000_u64 as usize;
/// Where the contexts the bridge gives the platform for indications start
/// (past every call's).
const IND_CTX_BASE: usize = 0x5EEE_0000_0000_1000_u64 as usize;
static NEXT_IND_CTX: Mutex<usize> = Mutex::new(IND_CTX_BASE);

/// The completion context of call `serial`.
pub(crate) fn ctx_of(serial: u32) -> usize {
    CALL_CTX_BASE.wrapping_add((serial as usize).wrapping_mul(16))
}

/// The call a completion context names (0, no call, for one the bridge
/// never issued for a call).
pub(crate) fn serial_of(ctx: usize) -> u32 {
    match ctx.checked_sub(CALL_CTX_BASE) {
        Some(d) if d % 16 == 0 => u32::try_from(d / 16).unwrap_or(0),
        _ => 0,
    }
}

/// A fresh context for an indication.
pub(crate) fn next_ind_ctx() -> usize {
    let mut n = NEXT_IND_CTX.lock();
    *n += 16;
    *n
}

/// The message of a completion the ledger refuses (not passed on).
fn refused(c: Completion, status: HRESULT, call: u32) -> String {
    let what = match c {
        Completion::AfterSyncReturn => "for a call that had returned synchronously",
        Completion::Second => "a second time for the same call",
        Completion::TwiceInCallback => "twice before the callback returned",
        Completion::NoSuchCall => "and a context the bridge never issued",
        Completion::Early | Completion::Ends | Completion::AfterAbandon => "",
    };
    format!("completion routine called with 0x{status:08X} {what} (call {call}); not passed on to the platform")
}

/// The completion routine the bridge hands providers.
pub(crate) unsafe extern "system" fn bridge_completion(ctx: *mut c_void, status: HRESULT) {
    guard((), || {
        let id = ctx as usize;
        let serial = serial_of(id);
        let (forward, shim_addr, n, what, outcome) = {
            let mut calls = CALLS.lock();
            let (c, who) = calls.complete(serial, status);
            let Some(who) = who else {
                // A context the bridge never issued (COMP-5) is put down
                // to the open call it was cut from, if it is one cut to 32
                // bits; any other is ignored (it names no instance).
                let cut = calls
                    .open_calls()
                    .find(|(s, ..)| ctx_of(*s) != id && ctx_of(*s) as u32 as usize == id)
                    .map(|(_, _, w, _)| w);
                drop(calls);
                if let (Some(rule), Some(w)) = (c.broken_rule(), cut) {
                    provider_violation_at(
                        w.shim,
                        rule,
                        w.n,
                        w.cb,
                        format!("completion routine called with 0x{status:08X} and a context the bridge never issued (call {}'s, cut to 32 bits); not passed on to the platform", w.call),
                    );
                }
                return;
            };
            if !c.passed_on() {
                // A finished call's context, or a second completion before
                // the callback returned: the provider's bug (unless the
                // call was given up), not passed on.
                drop(calls);
                if let Some(rule) = c.broken_rule() {
                    provider_violation_at(
                        who.shim,
                        rule,
                        who.n,
                        who.cb,
                        refused(c, status, who.call),
                    );
                }
                return;
            }
            let early = c == Completion::Early;
            let shim = SHIM_ADDRS.lock().get(&who.shim).cloned();
            let terminated = shim
                .as_ref()
                .is_some_and(|s| s.terminated.load(Ordering::Acquire));
            let p = calls
                .get(serial)
                .expect("a completion passed on is of an open call");
            let clobbered = p.tid.is_some_and(|(ptr, t)| {
                // SAFETY: the platform keeps a pended call's arguments valid
                // until it completes (COMP-8); this reads them one last time.
                let now = unsafe { transport_id(ptr as *const CPNATFWT_TRANSPORT_ID) };
                now != Some(t)
            });
            let what = What::Complete {
                cb: who.cb,
                call: who.call,
                status,
                early,
                ignored: terminated,
                args_clobbered: clobbered,
            };
            let outcome = (!early).then_some(What::Outcome {
                cb: who.cb,
                call: who.call,
                ok: status == S_OK,
            });
            let forward = (p.real_routine, p.real_ctx);
            calls.finish(serial);
            (forward, who.shim, who.n, what, outcome)
        };
        if let Some(s) = SHIM_ADDRS.lock().get(&shim_addr).cloned() {
            s.inner.record(n, what);
            if let Some(o) = outcome {
                s.inner.record(n, o);
            }
        }
        if let (Some(f), real_ctx) = forward {
            // SAFETY: the platform's routine with the platform's context.
            unsafe { f(real_ctx as *mut c_void, status) };
        }
    })
}

/// The provider completion routine the bridge hands the platform.
pub(crate) unsafe extern "system" fn bridge_provider_completion(ctx: *mut c_void, status: HRESULT) {
    guard((), || {
        let Some(p) = IND_PENDS.lock().remove(&(ctx as usize)) else {
            return;
        };
        let shim = SHIM_ADDRS.lock().get(&p.shim).cloned();
        if let Some(s) = shim {
            s.inner.record(p.n, What::ProviderCompletion { status });
        }
        if let Some(f) = p.routine {
            // SAFETY: the provider's routine with its own context.
            unsafe { f(p.ctx as *mut c_void, status) };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comp_5_a_call_context_names_its_serial_and_an_altered_one_names_no_call() {
        for s in [1, 2, 4096, u32::MAX] {
            assert_eq!(serial_of(ctx_of(s)), s);
        }
        let ctx = ctx_of(5);
        for altered in [ctx as u32 as usize, ctx + 1, ctx - 8, 0, next_ind_ctx()] {
            assert_eq!(serial_of(altered), 0, "0x{altered:x}");
        }
    }
}
