//! The dispatch path: the platform calling a provider's dispatch table.
//!
//! Every callback goes through here: under the lock the call is begun in
//! the call table (its data held here until it returns), its arguments
//! written and the trace recorded; the lock is released; the
//! provider's function pointer runs (with this host's context current, tasks
//! spawned "before return" run right after it); the lock is taken again and
//! the return value is read by the completion protocol. Nothing here
//! allocates per call once the argument pool is warm.

use super::completion::{CallTag, OpenCall};
use super::instance::Op;
use super::machine::{Effect, Input};
use super::{Shared, World};
use crate::abi::{
    CPNATFWT_PROVIDER_INSTANCE as Handle, CPNATFWT_SESSION_TERMINATION_REASON as Reason,
};
use crate::config::Callback;
use crate::handle::{self, Kind};
use crate::runtime::{run_callback, Cx};
use crate::trace::What;
use parking_lot::MutexGuard;
use std::ffi::c_void;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Marks entry and exit of provider code for the watchdog: the world's
/// callback epoch goes odd on entry and even on exit (see `watchdog.rs`).
///
/// Both are written with the world locked (the caller shows its `&mut
/// World`), so writers never race and each bump is a plain load and store:
/// no atomic read-modify-write per callback. The epoch turns odd just
/// before the lock is released for the callback and even just after it is
/// taken back; the watchdog reads it without the lock.
struct InCallback<'a> {
    shared: &'a Shared,
    /// Set once the exit is marked (under the lock).
    exited: bool,
}
impl<'a> InCallback<'a> {
    fn enter(shared: &'a Shared, _locked: &mut World, inst: u32, cb: Callback) -> Self {
        // `Callback::ALL` is in declaration order.
        let idx = cb as u64;
        shared
            .cb_what
            .store(((inst as u64) << 8) | idx, Ordering::Relaxed);
        Self::bump(shared);
        InCallback {
            shared,
            exited: false,
        }
    }

    /// The callback returned: marked with the world locked again.
    fn exit(mut self, _locked: &mut World) {
        Self::bump(self.shared);
        self.exited = true;
    }

    /// One step of the epoch; every writer holds the world lock.
    fn bump(shared: &Shared) {
        let e = shared.cb_epoch.load(Ordering::Relaxed);
        shared.cb_epoch.store(e.wrapping_add(1), Ordering::Release);
    }
}
impl Drop for InCallback<'_> {
    fn drop(&mut self) {
        if !self.exited {
            // Unwinding out of the dispatch path: take the lock to mark the exit.
            let _w = self.shared.world.lock();
            Self::bump(self.shared);
        }
    }
}

/// The dispatch table's entry an operation calls, by its signature.
#[derive(Copy, Clone)]
enum Entry {
    Activity(crate::abi::CPNATFWT_PROVIDER_TRANSITION_ACTIVE),
    Tid(crate::abi::CPNATFWT_PROVIDER_REACH_TRANSPORT_ID),
    Send(crate::abi::CPNATFWT_PROVIDER_SEND_BUFFERS),
}

fn user_context(w: &World, inst: u32) -> *mut c_void {
    w.faults.user_context(w.insts[inst as usize].user_context()) as *mut c_void
}

/// Calls the callback for the platform operation issued in slot `issued`
/// of `World::issued` (driver thread), given the world's guard; hands the
/// guard back once the return is judged. (The operation is taken out of
/// its slot here, not by the caller: handed over as an argument, it was
/// written to the stack in pieces and read back whole at once, which
/// stalled on store forwarding.)
pub(crate) fn invoke_op<'a>(
    shared: &'a Arc<Shared>,
    cxs: &[Cx],
    mut w: MutexGuard<'a, World>,
    issued: u32,
) -> MutexGuard<'a, World> {
    let super::Issued { inst, session, op } = w.issued.copy_out(issued);
    let cb = op.callback();
    let i = &w.insts[inst as usize];
    let ok = i
        .session()
        .is_some_and(|s| s.no() == session && s.accepts_calls());
    if !ok {
        w.op_abandoned(inst, session, &op);
        return w;
    }
    // The deadline's place in the event order is taken now, before anything
    // the callback schedules (see `OpenCall::deadline`).
    let deadline = w.reserve_deadline(cb);
    // The call's data stay here while the callback runs, and go into the
    // call table only if it pends. (Made at once from the operation taken
    // out of its slot, and read through `call` from here on: a copy of the
    // operation made in pieces and then moved in here whole stalled on
    // store forwarding.)
    let mut call = OpenCall {
        inst,
        session,
        op,
        started: w.now,
        args: None,
        timed_out: false,
        deadline,
    };
    let i = &w.insts[inst as usize];
    let (host, n, handle) = (i.host(), i.n(), Handle::from_u64(i.handle()));
    // Only the entry called is read out of the table (not the whole table
    // copied); its entries were checked non-NULL at Create (LIFE-9).
    let entry = match &call.op {
        Op::Activate => Entry::Activity(i.table().transitionActive),
        Op::Deactivate => Entry::Activity(i.table().transitionDormant),
        Op::Add(_) => Entry::Tid(i.table().addTransportId),
        Op::Remove(_) => Entry::Tid(i.table().removeTransportId),
        Op::Reach(_) => Entry::Tid(i.table().reachTransportId),
        Op::Send { .. } => Entry::Send(i.table().sendBuffers),
    };
    let uctx = user_context(&w, inst);
    let delta = uctx as u64 ^ w.insts[inst as usize].user_context() as u64;
    // The call table records the call (8 bytes).
    let serial = w.calls.begin(CallTag::new(inst, cb));
    let ctx = handle::encode(Kind::Completion, w.id, serial) as usize as *mut c_void;
    let routine = w
        .faults
        .completion_routine(Some(crate::ffi::platform_completion_routine));
    // Arguments live in the pool until the call ends (COMP-8, DATA-6).
    let (mut tid, mut remote, mut bytes) = (None, None, None);
    let mut ptrs: [*mut crate::abi::CPNATFWT_TRANSPORT_ID; 2] = [std::ptr::null_mut(); 2];
    let mut chain = std::ptr::null_mut();
    match &call.op {
        Op::Add(t) | Op::Remove(t) | Op::Reach(t) => {
            let slot = w.args.take(serial, inst);
            let t = w.faults.transport_id(w.traffic.tids.get(*t));
            ptrs[0] = w.args.tid(slot, 0, t);
            w.seal_args(slot);
            call.args = Some(slot);
            tid = Some(t);
        }
        Op::Send { datagram } => {
            let (local, r) = w.traffic.ends_of(*datagram);
            let slot = w.args.take(serial, inst);
            ptrs[0] = w.args.tid(slot, 0, local);
            ptrs[1] = w.args.tid(slot, 1, r);
            let pieces = 1 + w.rng.below(3) as usize;
            // The datagram's buffer itself becomes the argument block's.
            let (payload, content) = w.traffic.take_payload(*datagram);
            bytes = Some(payload.len() as u32);
            chain = w.args.chain(slot, payload, content, pieces);
            w.seal_args(slot);
            call.args = Some(slot);
            tid = Some(local);
            remote = Some(r);
            w.traffic.sending(*datagram, serial);
        }
        Op::Activate | Op::Deactivate => {}
    }
    w.record_hot(
        host,
        n,
        What::Call {
            cb,
            call: serial,
            tid,
            remote,
            bytes,
            reason: None,
            context_delta: delta,
            routine: routine.is_some(),
        },
    );
    let watch = InCallback::enter(shared, &mut w, inst, cb);

    let cx = &cxs[host as usize];
    let hr = {
        run_callback(cx, || {
            // The lock is released here, once the callback's thread-local
            // context is set, rather than before: the unlock's locked
            // instruction waits until the context's stores are written
            // through, so the callback's end reads them back from the cache
            // instead of stalling on store forwarding (the compiler writes
            // them in pieces of other sizes than it reads them in). With
            // `runtime::Now`'s layout, ~9% of a quick callback's CPU time.
            drop(w);
            // SAFETY: the table's entries were checked non-NULL at Create
            // (LIFE-9); the pointers passed stay valid until the call completes.
            unsafe {
                match entry {
                    Entry::Activity(f) => f.expect("checked at Create")(handle, uctx, ctx, routine),
                    Entry::Tid(f) => {
                        f.expect("checked at Create")(handle, uctx, ptrs[0], ctx, routine)
                    }
                    Entry::Send(f) => f.expect("checked at Create")(
                        handle,
                        uctx,
                        ptrs[0],
                        ptrs[1],
                        0x0000_0600_0000_0001,
                        chain,
                        ctx,
                        routine,
                    ),
                }
            }
        })
    };
    let mut w = shared.world.lock();
    watch.exit(&mut w);
    w.callback_returned(serial, hr, &call);
    shared.wake.notify_all();
    w
}

/// Delivers ESTABLISH on the current thread (the driver's, or Register's).
pub(crate) fn deliver_establish(shared: &Arc<Shared>, inst: u32, session: u32) {
    let mut w = shared.world.lock();
    // SESS-1: once, from Pending.
    let deliver = w.insts[inst as usize]
        .session_mut()
        .filter(|s| s.no() == session)
        .is_some_and(|s| s.step(Input::Establish).contains(Effect::Deliver));
    if !deliver {
        return;
    }
    let i = &w.insts[inst as usize];
    let (host, n, handle, table) = (i.host(), i.n(), Handle::from_u64(i.handle()), i.table());
    let uctx = user_context(&w, inst);
    let delta = uctx as u64 ^ w.insts[inst as usize].user_context() as u64;
    let cb = Callback::EstablishSessionIndication;
    w.record(
        host,
        n,
        What::Call {
            cb,
            call: 0,
            tid: None,
            remote: None,
            bytes: None,
            reason: None,
            context_delta: delta,
            routine: false,
        },
    );
    let started = w.now;
    let watch = InCallback::enter(shared, &mut w, inst, cb);
    drop(w);
    let cx = Cx::new(shared.clone(), host);
    // SAFETY: checked non-NULL at Create.
    run_callback(&cx, || unsafe {
        table.establishSessionIndication.expect("checked at Create")(handle, uctx)
    });
    let mut w = shared.world.lock();
    watch.exit(&mut w);
    w.record(
        host,
        n,
        What::Return {
            cb,
            call: 0,
            hr: None,
        },
    );
    let deferred = w.establish_returned(inst, session, started);
    drop(w);
    // SESS-3: Deregister/Destroy called inside ESTABLISH take effect now.
    if deferred.deregister {
        super::lifecycle::deregister_now(shared, inst);
    }
    if deferred.destroy {
        super::lifecycle::destroy_now(shared, inst);
    }
    shared.wake.notify_all();
}

/// Delivers TERMINATE on the current thread.
pub(crate) fn deliver_terminate(shared: &Arc<Shared>, inst: u32, session: u32, reason: Reason) {
    let mut w = shared.world.lock();
    let Some(s) = w.insts[inst as usize]
        .session_mut()
        .filter(|s| s.no() == session)
    else {
        return;
    };
    // SESS-4: once per session (a platform fault delivers it again).
    let again = s.terminates_again();
    if !s.step(Input::Terminate).contains(Effect::Deliver) {
        return;
    }
    let i = &w.insts[inst as usize];
    let (host, n, handle, table) = (i.host(), i.n(), Handle::from_u64(i.handle()), i.table());
    let uctx = user_context(&w, inst);
    let delta = uctx as u64 ^ w.insts[inst as usize].user_context() as u64;
    let reason = w.faults.termination_reason(reason);
    let cb = Callback::TerminateSessionIndication;
    w.record(
        host,
        n,
        What::Call {
            cb,
            call: 0,
            tid: None,
            remote: None,
            bytes: None,
            reason: Some(reason),
            context_delta: delta,
            routine: false,
        },
    );
    let started = w.now;
    let watch = InCallback::enter(shared, &mut w, inst, cb);
    drop(w);
    let cx = Cx::new(shared.clone(), host);
    // SAFETY: checked non-NULL at Create.
    run_callback(&cx, || unsafe {
        table.terminateSessionIndication.expect("checked at Create")(handle, uctx, reason)
    });
    let mut w = shared.world.lock();
    watch.exit(&mut w);
    w.record(
        host,
        n,
        What::Return {
            cb,
            call: 0,
            hr: None,
        },
    );
    w.terminate_returned(inst, session, reason, started);
    drop(w);
    if again {
        deliver_terminate(shared, inst, session, reason);
    }
    shared.wake.notify_all();
}
