//! The bridge's calls: the completion context it hands the provider for
//! each async-capable call (the call's serial in the ledger), the calls
//! kept in a [`WindowLedger`] (the simulator's [`Ledger`](cpsim_sim::ledger::Ledger)
//! in bounded memory per call, which judges each return and completion),
//! and the completion routines it interposes.

use crate::record::{bridges_numbered, provider_violation_at, SHIM_ADDRS};
use cpsim_sim::abi::*;
use cpsim_sim::edge::{guard, transport_id};
use cpsim_sim::ledger::Completion;
use cpsim_sim::trace::What;
use cpsim_sim::window_ledger::{Known, WindowLedger};
use cpsim_sim::{Callback, Tid};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;

/// Who a call the bridge handed on was: kept while it is open and for the
/// ledger's window after it ends, to name a late or second completion
/// (COMP-3, COMP-4); after that only `bridge` is kept.
#[derive(Copy, Clone)]
pub(crate) struct Who {
    pub(crate) shim: usize,
    pub(crate) n: u32,
    pub(crate) cb: Callback,
    pub(crate) bridge: u8,
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

/// How many calls of the ledger's window are kept in full (their [`Who`]),
/// twice over: between 65,536 and 131,072 of the latest calls, over a
/// minute of them at 1,000 calls a second, in at most 4 MiB (two windows
/// of 32-byte records). Each older call that ended keeps one byte: how it
/// ended and its bridge's number (1 MB per million calls, against 32 MB
/// when every call was kept in full).
pub(crate) const WINDOW: u32 = 65_536;

/// The ledger's mark of an old call: its bridge.
fn bridge_of(w: &Who) -> u8 {
    w.bridge
}

/// Every call the bridges of this process handed on, by serial: the shared
/// ledger's verdicts in bounded memory. A call's completion context is its
/// serial ([`ctx_of`]).
pub(crate) static CALLS: Mutex<WindowLedger<Pend, Who>> =
    Mutex::new(WindowLedger::new(WINDOW, bridge_of));

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
/// low bits still tell which call it was cut from. Serials are 64-bit; the
/// contexts above the base run out after 7 × 10^17 calls (23 years at a
/// billion calls a second). The scheme needs 64-bit pointers: the native
/// backend is built for 64-bit Windows and Linux only (on a 32-bit target
/// both bases would be cut to the same 32 bits, as they were before).
const CALL_CTX_BASE: u64 = 0x5EED_0000_0000_1000;
/// Where the contexts the bridge gives the platform for indications start:
/// below every call's (2^60 contexts before they reach them).
const IND_CTX_BASE: u64 = 0x3EEE_0000_0000_1000;
static NEXT_IND_CTX: Mutex<u64> = Mutex::new(IND_CTX_BASE);

/// The completion context of call `serial`.
pub(crate) fn ctx_of(serial: u64) -> usize {
    CALL_CTX_BASE.wrapping_add(serial.wrapping_mul(16)) as usize
}

/// The call a completion context names (0, no call, for one the bridge
/// never issued for a call).
pub(crate) fn serial_of(ctx: usize) -> u64 {
    match (ctx as u64).checked_sub(CALL_CTX_BASE) {
        Some(d) if d % 16 == 0 => d / 16,
        _ => 0,
    }
}

/// A fresh context for an indication.
pub(crate) fn next_ind_ctx() -> usize {
    let mut n = NEXT_IND_CTX.lock();
    *n += 16;
    *n as usize
}

/// The open call whose context, cut to 32 bits, is `ctx` (not a context
/// of its own).
fn cut_from(calls: &WindowLedger<Pend, Who>, ctx: usize) -> Option<Who> {
    calls
        .open_calls()
        .find(|(s, ..)| ctx_of(*s) != ctx && ctx_of(*s) as u32 as usize == ctx)
        .map(|(_, _, w, _)| w)
}

/// The message of a completion the ledger refuses (not passed on).
fn refused(c: Completion, status: HRESULT, call: &str) -> String {
    let what = match c {
        Completion::AfterSyncReturn => "for a call that had returned synchronously",
        Completion::Second => "a second time for the same call",
        Completion::TwiceInCallback => "twice before the callback returned",
        Completion::NoSuchCall => "and a context the bridge never issued",
        Completion::Early | Completion::Ends | Completion::AfterAbandon => "",
    };
    format!("completion routine called with 0x{status:08X} {what} ({call}); not passed on to the platform")
}

/// The completion routine the bridge hands providers.
pub(crate) unsafe extern "system" fn bridge_completion(ctx: *mut c_void, status: HRESULT) {
    guard((), || {
        let id = ctx as usize;
        let serial = serial_of(id);
        let (forward, shim_addr, n, what, outcome) = {
            let mut calls = CALLS.lock();
            let (c, known) = calls.complete(serial, status);
            let who = match known {
                Some(Known::Tag(who)) => Some(who),
                Some(Known::Mark(bridge)) => {
                    // A call that ended before the window: the rule
                    // stands, its instance and callback are not kept.
                    drop(calls);
                    if let Some(rule) = c.broken_rule() {
                        let call = format!(
                            "call serial {serial}, which ended more than {WINDOW} calls ago: its instance and callback are no longer kept"
                        );
                        for b in bridges_numbered(bridge) {
                            b.provider_violation_unnamed(rule, refused(c, status, &call));
                        }
                    }
                    return;
                }
                None => None,
            };
            let Some(who) = who else {
                // A context the bridge never issued (COMP-5) is put down
                // to the open call it was cut from, if it is one cut to 32
                // bits; any other is ignored (it names no instance).
                let cut = cut_from(&calls, id);
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
                        refused(c, status, &format!("call {}", who.call)),
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
    use crate::platform::NativePlatform;
    use crate::record::Shim;
    use cpsim_sim::ledger::{CallPhase, Ledger};
    use cpsim_sim::rules::id;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn comp_5_a_call_context_names_its_serial_and_an_altered_one_names_no_call() {
        for s in [1, 2, 4096, u32::MAX as u64, u32::MAX as u64 + 1, 1 << 40] {
            assert_eq!(serial_of(ctx_of(s)), s);
        }
        let ctx = ctx_of(5);
        for altered in [ctx as u32 as usize, ctx + 1, ctx - 8, 0, next_ind_ctx()] {
            assert_eq!(serial_of(altered), 0, "0x{altered:x}");
        }
    }

    fn pend() -> Pend {
        Pend {
            real_ctx: 0,
            real_routine: None,
            tid: None,
        }
    }

    /// Who a call of no bridge's instance is.
    const NOBODY: Who = Who {
        shim: 0,
        n: 0,
        cb: Callback::SendBuffers,
        bridge: 0,
        call: 0,
    };

    #[test]
    fn comp_5_serials_past_u32_max_round_trip_through_their_context_and_are_judged() {
        let first = u32::MAX as u64 - 1;
        let mut calls = WindowLedger::<Pend, Who>::starting_at(first, 4, bridge_of);
        let serials: Vec<u64> = (0..10).map(|_| calls.open(NOBODY, pend())).collect();
        assert!(serials[9] > u32::MAX as u64 + 5);
        for &s in &serials {
            assert_eq!(serial_of(ctx_of(s)), s);
        }
        // A call past u32::MAX pends and is completed through its context.
        let s = serials[9];
        calls.returned(serial_of(ctx_of(s)), E_PENDING_IO);
        assert_eq!(
            calls.complete(serial_of(ctx_of(s)), S_OK).0,
            Completion::Ends
        );
        calls.finish(s);
        assert_eq!(
            calls.complete(serial_of(ctx_of(s)), S_OK).0,
            Completion::Second
        );
        // Its context cut to 32 bits names no call (COMP-5), and is put
        // down to the open call it was cut from.
        let cut = ctx_of(serials[8]) as u32 as usize;
        assert_eq!(serial_of(cut), 0);
        assert_eq!(
            calls.complete(serial_of(cut), S_OK).0,
            Completion::NoSuchCall
        );
        calls.returned(serials[8], E_PENDING_IO);
        assert!(cut_from(&calls, cut).is_some());
        assert!(cut_from(&calls, cut + 16).is_none());
        // Those retired first are still judged: in their callback all along.
        assert_eq!(calls.phase(serials[0]), Some(CallPhase::InCallback));
    }

    /// A bridge with one instance (its shim known by address): the bridge
    /// and who that instance's REACH call is.
    fn bridge_with_instance() -> (NativePlatform, Who) {
        let p = NativePlatform::refusing();
        let shim = Arc::new(Shim {
            inner: p.inner().clone(),
            n: 1,
            table: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
                size: DISPATCH_TABLE_SIZE,
                establishSessionIndication: None,
                terminateSessionIndication: None,
                transitionActive: None,
                transitionDormant: None,
                addTransportId: None,
                removeTransportId: None,
                reachTransportId: None,
                sendBuffers: None,
            },
            user: 0,
            terminated: AtomicBool::new(false),
        });
        let addr = Arc::as_ptr(&shim) as usize;
        SHIM_ADDRS.lock().insert(addr, shim);
        let who = Who {
            shim: addr,
            n: 1,
            cb: Callback::ReachTransportId,
            bridge: p.inner().bridge,
            call: 1,
        };
        (p, who)
    }

    #[test]
    fn comp_3_comp_4_life_8_a_completion_of_a_call_that_ended_beyond_the_window_keeps_its_rule() {
        let (p, who) = bridge_with_instance();
        let (sync, completed, abandoned, never) = {
            let mut calls = CALLS.lock();
            let sync = calls.open(who, pend());
            calls.returned(sync, S_OK);
            calls.finish(sync);
            let completed = calls.open(who, pend());
            calls.returned(completed, E_PENDING_IO);
            calls.complete(completed, S_OK);
            calls.finish(completed);
            let abandoned = calls.open(who, pend());
            calls.returned(abandoned, E_PENDING_IO);
            calls.abandon(abandoned);
            make_calls(&mut calls, 2 * WINDOW as u64);
            // Past every serial issued so far, and whatever other tests add.
            let never = calls.open(NOBODY, pend()) + (1 << 40);
            (sync, completed, abandoned, never)
        };
        for s in [sync, completed, abandoned, never] {
            // SAFETY: the bridge's own routine; no call is passed on (none
            // of these is open), so no platform routine is called.
            unsafe { bridge_completion(ctx_of(s) as *mut c_void, S_OK) };
        }
        let v = p.provider_violations();
        let found: Vec<_> = v
            .iter()
            .map(|v| (v.rule, v.instance.is_none() && v.callback.is_none()))
            .collect();
        assert_eq!(found, [(id::COMP_3, true), (id::COMP_4, true)], "{v:#?}");
        assert!(v[0]
            .message
            .contains("for a call that had returned synchronously"));
        assert!(v[0].message.contains(&format!(
            "call serial {sync}, which ended more than 65536 calls ago"
        )));
        assert!(v[1].message.contains("a second time for the same call"));
        assert!(v[1].message.contains(&format!("call serial {completed},")));
    }

    /// Calls that return synchronously, `n` of them, in `calls`.
    fn make_calls(calls: &mut WindowLedger<Pend, Who>, n: u64) {
        for _ in 0..n {
            let s = calls.open(NOBODY, pend());
            calls.returned(s, S_OK);
            calls.finish(s);
        }
    }

    #[test]
    fn the_bridges_ledger_holds_two_windows_and_a_byte_per_older_call() {
        let mut calls = WindowLedger::<Pend, Who>::new(WINDOW, bridge_of);
        let mut whole = Ledger::<Pend, Who>::new();
        const MILLION: u64 = 1_000_000;
        for _ in 0..MILLION {
            let s = whole.open(NOBODY, pend());
            whole.returned(s, S_OK);
            whole.finish(s);
        }
        make_calls(&mut calls, MILLION);
        let one = calls.heap_bytes();
        make_calls(&mut calls, 4 * MILLION);
        let five = calls.heap_bytes();
        println!(
            "the bridge's ledger after 1 M calls: {one} bytes ({} before: every call in full); after 5 M: {five} bytes; {} bytes per million calls past the window",
            whole.heap_bytes(),
            (five - one) / 4
        );
        // Two windows of 32-byte records, and a byte per older call (and a
        // pointer per window of them).
        let windows = 2 * WINDOW as usize * 32 + 4096;
        assert!(five <= windows + 5 * MILLION as usize + 4096, "{five}");
        assert!(five < whole.heap_bytes() / 2);
    }
}
