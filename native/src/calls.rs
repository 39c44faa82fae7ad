//! The bridge's ledger of calls: the completion context it hands the
//! provider for each async-capable call, where each call stands
//! ([`cpsim_sim::ledger::CallPhase`], the same state machine the simulator
//! keeps), and the completion routines it interposes.

use crate::record::{provider_violation_at, SHIM_ADDRS};
use cpsim_sim::abi::*;
use cpsim_sim::edge::{guard, transport_id};
use cpsim_sim::ledger::{CallPhase, Completion};
use cpsim_sim::rules::id;
use cpsim_sim::trace::What;
use cpsim_sim::{Callback, Tid};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;

/// A call the bridge handed on: the context it gave the provider, and where
/// the call stands.
pub(crate) struct Pend {
    pub(crate) n: u32,
    pub(crate) cb: Callback,
    pub(crate) call: u32,
    pub(crate) real_ctx: usize,
    pub(crate) real_routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    pub(crate) shim: usize,
    pub(crate) phase: CallPhase,
    /// The transport ID argument (its address and value), to tell whether
    /// the platform kept it intact until the completion (COMP-8).
    pub(crate) tid: Option<(usize, Tid)>,
}

/// A pended indication: the provider's routine and context.
pub(crate) struct IndPend {
    pub(crate) n: u32,
    pub(crate) shim: usize,
    pub(crate) ctx: usize,
    pub(crate) routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
}

/// The open calls, by the context the bridge gave the provider.
pub(crate) static PENDS: LazyLock<Mutex<HashMap<usize, Pend>>> = LazyLock::new(Default::default);
/// Finished calls (the last [`RETIRED_KEPT`]), to name a late or second
/// completion (COMP-3, COMP-4).
pub(crate) static RETIRED: LazyLock<Mutex<Retired>> = LazyLock::new(Default::default);
const RETIRED_KEPT: usize = 1 << 16;

/// A finished call: whose, which, and how it ended.
#[derive(Copy, Clone)]
struct Spent {
    shim: usize,
    n: u32,
    cb: Callback,
    call: u32,
    phase: CallPhase,
}

#[derive(Default)]
pub(crate) struct Retired {
    by_ctx: HashMap<usize, Spent>,
    order: std::collections::VecDeque<usize>,
}

impl Retired {
    pub(crate) fn add(&mut self, ctx: usize, p: &Pend) {
        if self.order.len() == RETIRED_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_ctx.remove(&old);
            }
        }
        self.order.push_back(ctx);
        self.by_ctx.insert(
            ctx,
            Spent {
                shim: p.shim,
                n: p.n,
                cb: p.cb,
                call: p.call,
                phase: p.phase,
            },
        );
    }
}

/// The pended indications, by the context the bridge gave the platform.
pub(crate) static IND_PENDS: LazyLock<Mutex<HashMap<usize, IndPend>>> =
    LazyLock::new(Default::default);
/// Where the bridge's completion contexts start. They have high bits set,
/// so that a context cut to 32 bits on its way back (COMP-5) is not the
/// call's own any more: its low bits still tell which call it was cut from.
const CTX_BASE: u64 = 0x5EED_0000_0000_1000;
static NEXT_CTX: Mutex<usize> = Mutex::new(CTX_BASE as usize);

/// A fresh completion context.
pub(crate) fn next_ctx() -> usize {
    let mut n = NEXT_CTX.lock();
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
        let (forward, shim_addr, n, what, outcome) = {
            let mut pends = PENDS.lock();
            let Some(p) = pends.get_mut(&id) else {
                // A finished call's context: the provider's bug, not
                // forwarded. A context the bridge never issued (COMP-5)
                // is put down to the open call it was cut from, if it is
                // one cut to 32 bits; any other is ignored (it names no
                // instance).
                let spent = RETIRED.lock().by_ctx.get(&id).copied();
                let cut = pends
                    .iter()
                    .find(|(k, _)| **k != id && **k as u32 as usize == id)
                    .map(|(_, p)| (p.shim, p.n, p.cb, p.call));
                drop(pends);
                if let (None, Some((shim, n, cb, call))) = (spent, cut) {
                    provider_violation_at(
                        shim,
                        id::COMP_5,
                        n,
                        cb,
                        format!("completion routine called with 0x{status:08X} and a context the bridge never issued (call {call}'s, cut to 32 bits); not passed on to the platform"),
                    );
                    return;
                }
                if let Some(x) = spent {
                    let (_, c) = x.phase.completed(status);
                    if let Some(rule) = c.broken_rule() {
                        provider_violation_at(x.shim, rule, x.n, x.cb, refused(c, status, x.call));
                    }
                }
                return;
            };
            let (phase, c) = p.phase.completed(status);
            if let Some(rule) = c.broken_rule() {
                // Twice before the callback returned: not forwarded again.
                let (shim, n, cb, call) = (p.shim, p.n, p.cb, p.call);
                drop(pends);
                provider_violation_at(shim, rule, n, cb, refused(c, status, call));
                return;
            }
            p.phase = phase;
            let early = c == Completion::Early;
            let shim = SHIM_ADDRS.lock().get(&p.shim).cloned();
            let terminated = shim
                .as_ref()
                .is_some_and(|s| s.terminated.load(Ordering::Acquire));
            let clobbered = p.tid.is_some_and(|(ptr, t)| {
                // SAFETY: the platform keeps a pended call's arguments valid
                // until it completes (COMP-8); this reads them one last time.
                let now = unsafe { transport_id(ptr as *const CPNATFWT_TRANSPORT_ID) };
                now != Some(t)
            });
            let what = What::Complete {
                cb: p.cb,
                call: p.call,
                status,
                early,
                ignored: terminated,
                args_clobbered: clobbered,
            };
            let outcome = (!early).then_some(What::Outcome {
                cb: p.cb,
                call: p.call,
                ok: status == S_OK,
            });
            let forward = (p.real_routine, p.real_ctx);
            let (shim_addr, n) = (p.shim, p.n);
            if phase.is_over() {
                if let Some(p) = pends.remove(&id) {
                    RETIRED.lock().add(id, &p);
                }
            }
            (forward, shim_addr, n, what, outcome)
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
