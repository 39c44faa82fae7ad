//! The completion protocol (COMP-*, TIME-*): how a call that the platform
//! started ends, synchronously or through the completion routine, and what
//! the platform does when a provider gets it wrong. Where a call stands,
//! and which rule a return or completion breaks, is decided by
//! [`crate::ledger::CallPhase`], as in the native bridge.

use super::args::Slot;
use super::instance::Op;
use super::{Ev, World};
use crate::abi::{CPNATFWT_SESSION_TERMINATION_REASON as Reason, E_FAIL, E_PENDING_IO, S_OK};
use crate::config::Callback;
use crate::ledger::{Completion, Ledger, Returned};
use crate::rules::id;
use crate::time::Nanos;
use crate::trace::{hr_name, What};

/// A call the platform started that has not finished (where it stands in
/// the completion protocol is the ledger's).
#[derive(Clone, Copy)]
pub struct OpenCall {
    pub inst: u32,
    pub session: u32,
    pub op: Op,
    pub started: Nanos,
    pub args: Option<Slot>,
    pub timed_out: bool,
    /// The call's time limit: when, and the event-queue sequence number
    /// reserved for it when the call started. The deadline event is only
    /// queued if the call is still open when its callback returns (a call
    /// that returned synchronously can never time out); with the reserved
    /// sequence number it pops exactly where it would have had it been
    /// queued up front.
    pub deadline: (Nanos, u64),
}

/// What the call table keeps of every call for the whole run, besides how
/// it ended: whose it was and which callback, in 4 bytes (the instance in
/// the low 29 bits, the callback's place in [`Callback::ALL`] above).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct CallTag(u32);

impl CallTag {
    const INST_BITS: u32 = 29;

    /// The tag of a call of instance `inst` to callback `cb`.
    #[inline]
    pub fn new(inst: u32, cb: Callback) -> CallTag {
        assert!(inst >> Self::INST_BITS == 0, "too many instances");
        CallTag(inst | (cb as u32) << Self::INST_BITS)
    }

    /// The instance called.
    #[inline]
    pub fn inst(self) -> u32 {
        self.0 & ((1 << Self::INST_BITS) - 1)
    }

    /// The callback called.
    #[inline]
    pub fn cb(self) -> Callback {
        Callback::ALL[(self.0 >> Self::INST_BITS) as usize]
    }
}

/// Every call of a run, kept by the shared [`Ledger`]: a pended call in
/// full (in a slab, reused), a call still in its callback and a finished
/// one in 8 bytes (the data of a call in its callback stay with the
/// dispatch path until it returns).
pub type Calls = Ledger<OpenCall, CallTag>;

impl World {
    /// The callback of call `serial` (begun in the call table, its data
    /// `call`) returned `hr` (the dispatch path). A call that is over is
    /// finished with `call` as it is: a synchronous return touches the
    /// call table once, here; one that stays open goes into the table.
    pub fn callback_returned(&mut self, serial: u32, hr: i32, call: &OpenCall) {
        let (inst, cb, started) = (call.inst, call.op.callback(), call.started);
        if cb == Callback::TransitionActive && !self.reported_active.is_empty() {
            self.reported_active.retain(|&i| i != inst);
        }
        let deadline = call.deadline;
        // The call table and the recorder, borrowed side by side.
        let World {
            calls, rec, insts, ..
        } = self;
        let Some((returned, over)) =
            calls.returned_in(serial, hr, |read| self.faults.returned(read), call)
        else {
            return;
        };
        let (host, n) = (insts[inst as usize].host(), insts[inst as usize].n());
        rec.record_hot(
            self.now,
            host,
            n,
            What::Return {
                cb,
                call: serial,
                hr: Some(hr),
            },
        );
        let elapsed = self.now.saturating_sub(started);
        if elapsed > self.cfg.limits.limit(cb) {
            self.record(
                host,
                n,
                What::Timeout {
                    cb,
                    call: serial,
                    excused: false,
                },
            );
            self.violate(
                id::TIME_1,
                host,
                n,
                Some(cb.name()),
                format!(
                    "the callback ran {elapsed} of virtual time, over its {} limit",
                    self.cfg.limits.limit(cb)
                ),
            );
            self.end_session(
                inst,
                Reason::ProviderTimeout,
                "synchronous call over its time limit",
            );
        }
        if hr == E_PENDING_IO {
            if let (Returned::EndsWithEarlyStatus(status), true) = (returned, over) {
                self.finish_call(serial, call, (host, n), status, false, true);
            }
            if self.calls.get(serial).is_some() {
                // Still open: its time limit now runs (see `OpenCall::deadline`).
                let (at, seq) = deadline;
                self.queue.push_reserved(at, seq, Ev::Deadline { serial });
                self.call_pended(serial);
            }
            return;
        }
        if returned.broken_rule() == Some(id::COMP_3) {
            self.violate(
                id::COMP_3,
                host,
                n,
                Some(cb.name()),
                format!("the completion routine was called, then the callback returned {} instead of ERROR_IO_PENDING", hr_name(hr)),
            );
        }
        if hr > 0 {
            self.violate(
                id::COMP_2,
                host,
                n,
                Some(cb.name()),
                format!(
                    "returned success code {} other than S_OK; the platform reads it as failure",
                    hr_name(hr)
                ),
            );
        }
        let status = self.faults.status(hr);
        if over {
            self.finish_call(serial, call, (host, n), status, true, false);
        }
    }

    /// The provider called the platform's completion routine for `serial`.
    pub fn completion_routine(&mut self, serial: u32, status: i32, host_hint: u8) {
        // COMP-6 is about the status of an open call: read as E_FAIL.
        let open = self.calls.is_open(serial);
        let bad_status = open && status == E_PENDING_IO;
        let read = if bad_status { E_FAIL } else { status };
        let (completion, tag) = self.calls.complete(serial, read);
        let Some(tag) = tag else {
            if let Some(rule) = completion.broken_rule() {
                self.violate(
                    rule,
                    host_hint,
                    0,
                    Some("completion routine"),
                    format!("completionContext names no call the platform made (serial {serial})"),
                );
            }
            return;
        };
        let (inst, cb) = (tag.inst(), tag.cb());
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        let cbn = cb.name();
        if !open {
            // A completion for a call that is already over: recorded as
            // ignored, and a violation unless the provider was stopped.
            self.record(
                host,
                n,
                What::Complete {
                    cb,
                    call: serial,
                    status,
                    early: false,
                    ignored: true,
                    args_clobbered: false,
                },
            );
            let message = match completion {
                Completion::AfterSyncReturn => format!(
                    "completion routine called with {} for a call that had returned synchronously",
                    hr_name(status)
                ),
                _ => "completion routine called a second time for the same call".into(),
            };
            if let Some(rule) = completion.broken_rule() {
                self.violate(rule, host, n, Some(cbn), message);
            }
            return;
        }
        if bad_status {
            self.violate(
                id::COMP_6,
                host,
                n,
                Some(cbn),
                "completed with status ERROR_IO_PENDING; the platform reads it as E_FAIL".into(),
            );
        }
        if completion == Completion::Early && cb == Callback::TransitionActive && read == S_OK {
            self.reported_active.push(inst);
        }
        match completion {
            Completion::Early => self.record(
                host,
                n,
                What::Complete {
                    cb,
                    call: serial,
                    status: read,
                    early: true,
                    ignored: false,
                    args_clobbered: false,
                },
            ),
            Completion::Ends => {
                if let Some(c) = self.calls.finish(serial) {
                    self.finish_call(serial, &c, (host, n), read, false, false);
                }
            }
            _ => {
                if let Some(rule) = completion.broken_rule() {
                    self.violate(
                        rule,
                        host,
                        n,
                        Some(cbn),
                        "completion routine called twice before the callback returned".into(),
                    );
                }
            }
        }
    }

    /// Ends call `serial` (`c`, over in the call table) of instance `at`
    /// (its host and number) with `status`: argument quarantine, and the
    /// operation's effect on the session. `recorded_early`: its completion
    /// is already in the trace (it came before the return).
    fn finish_call(
        &mut self,
        serial: u32,
        c: &OpenCall,
        at: (u8, u32),
        status: i32,
        sync: bool,
        recorded_early: bool,
    ) {
        let cb = c.op.callback();
        let (host, n) = at;
        debug_assert_eq!(
            (host, n),
            (
                self.insts[c.inst as usize].host(),
                self.insts[c.inst as usize].n()
            )
        );
        let mut clobbered = false;
        if let Some(slot) = c.args {
            let retired = self.args.retire(slot);
            clobbered = !retired.intact;
            if let Some(t) = retired.tampered {
                self.report_tampered(t);
            }
        }
        let live = self.insts[c.inst as usize]
            .session()
            .is_some_and(|s| s.no() == c.session && !s.ended());
        if !sync && !recorded_early {
            // (A faulty platform claims to apply a late completion; it cannot really.)
            let applied = self.faults.completion_applied(live);
            self.record(
                host,
                n,
                What::Complete {
                    cb,
                    call: serial,
                    status,
                    early: false,
                    ignored: !applied,
                    args_clobbered: clobbered,
                },
            );
        }
        if !live {
            // COMP-11: accepted and ignored. Keep the session's counters right.
            self.op_abandoned(c.inst, c.session, &c.op);
            // An ADD the provider completed with S_OK after its session
            // ended (perhaps before it could know) was reported held at
            // that instant: its peers may have learnt of it, so for TID-6
            // the ID was owned then (decision `add-when-asked`).
            if let (Op::Add(k), S_OK) = (c.op, status) {
                let now = self.now;
                self.traffic.own(k, c.inst, now);
                let t = self.traffic.tids.get(k);
                self.traffic.disown(t, c.inst, now);
            } else if let Op::Add(k) = c.op {
                // One that failed was still the instance's from its call
                // (its session's end is not known here: counted at the
                // call only).
                self.traffic.add_failed(k, c.inst, c.started, c.started);
            }
            return;
        }
        let ok = status == S_OK;
        self.record_hot(
            host,
            n,
            What::Outcome {
                cb,
                call: serial,
                ok,
            },
        );
        self.op_done(c.inst, (host, n), c.op, ok, c.started);
    }

    /// Reports a retired argument block whose poison was disturbed.
    pub fn report_tampered(&mut self, t: super::args::Tampered) {
        let (host, n) = (
            self.insts[t.inst as usize].host(),
            self.insts[t.inst as usize].n(),
        );
        let cb = self.calls.tag(t.serial).map(|c| c.cb().name());
        self.violate(
            id::COMP_7,
            host,
            n,
            cb,
            format!(
                "the provider wrote into the arguments of call {} after it had completed",
                t.serial
            ),
        );
    }

    /// A call's time limit passed (TIME-1, TIME-2).
    pub fn deadline(&mut self, serial: u32) {
        let Some(c) = self.calls.get_mut(serial) else {
            return;
        };
        if c.timed_out {
            return;
        }
        c.timed_out = true;
        let (inst, session, cb) = (c.inst, c.session, c.op.callback());
        let i = &self.insts[inst as usize];
        let (host, n) = (i.host(), i.n());
        if !i.session().is_some_and(|s| s.no() == session && !s.ended()) {
            return;
        }
        let excused = self.hosts[host as usize].stalls > 0;
        self.record(
            host,
            n,
            What::Timeout {
                cb,
                call: serial,
                excused,
            },
        );
        if !excused {
            let rule = if cb.is_async() {
                id::TIME_1
            } else {
                id::SESS_7
            };
            self.violate(
                rule,
                host,
                n,
                Some(cb.name()),
                format!(
                    "call {serial} not finished within its {} limit",
                    self.cfg.limits.limit(cb)
                ),
            );
        }
        if self.faults.timeout_ends_session() {
            self.end_session(inst, Reason::ProviderTimeout, "a call timed out");
        }
    }

    /// The deadline of a call that starts now: its time and the event
    /// sequence number reserved for it (queued only if the call is still
    /// open when its callback returns: see `OpenCall::deadline`).
    pub fn reserve_deadline(&mut self, cb: Callback) -> (Nanos, u64) {
        let at = self.now.saturating_add(self.cfg.limits.limit(cb));
        (at.max(self.now), self.queue.reserve())
    }

    /// End of run: pended calls never completed (COMP-4) and tampered quarantine (COMP-7).
    pub fn check_unfinished_calls(&mut self) {
        let never: Vec<_> = self
            .calls
            .never_completed()
            .map(|(rule, serial, t, _)| (rule, serial, t))
            .collect();
        for (rule, serial, tag) in never {
            let (inst, cb) = (tag.inst(), tag.cb());
            let (host, n) = (
                self.insts[inst as usize].host(),
                self.insts[inst as usize].n(),
            );
            self.violate(
                rule,
                host,
                n,
                Some(cb.name()),
                format!("call {serial} returned ERROR_IO_PENDING and was never completed"),
            );
        }
        for t in self.args.sweep() {
            self.report_tampered(t);
        }
    }

    /// Whether a host's instances have open calls (for LIFE-8).
    pub fn open_calls_of(&self, host: u8) -> Vec<(u32, u32, Callback)> {
        self.calls
            .pending()
            .filter(|(_, t, _)| self.insts[t.inst() as usize].host() == host)
            .map(|(s, t, _)| (s, t.inst(), t.cb()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_tag_gives_back_its_instance_and_callback() {
        for cb in Callback::ALL {
            for inst in [0, 1, 77, (1 << 29) - 1] {
                let t = CallTag::new(inst, cb);
                assert_eq!((t.inst(), t.cb()), (inst, cb));
            }
        }
        assert_eq!(std::mem::size_of::<CallTag>(), 4);
    }
}
