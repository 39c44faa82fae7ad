//! The session state machine applied to the world: ESTABLISH's return,
//! dormant/active transitions, the platform's work queue per instance,
//! termination with the right reason, LIFE-7/8.
//!
//! What a session does next is decided by `machine::step` (pure, and bent
//! by `faults.rs` in a faulty world); here its effects are carried out
//! (`World::apply`): the trace, TERMINATE queued, routes, calls issued. The
//! platform upholds STATE-1..5 and SESS-2/4 by construction: work that
//! needs an active instance triggers TRANSITION_ACTIVE and waits; a
//! transition starts only when nothing else is open; nothing starts for a
//! session that has ended.

use super::instance::{Life, Op};
use super::machine::{Effect, Input};
use super::{Ev, Issued, World};
use crate::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use crate::rules::id;
use crate::time::Nanos;
use crate::trace::{Activity, What};

pub use super::machine::Deferred;

impl World {
    pub(super) fn session_live(&self, inst: u32) -> bool {
        self.insts[inst as usize]
            .session()
            .is_some_and(|s| s.live())
    }

    /// ESTABLISH returned: the session is established and dormant (STATE-1).
    pub fn establish_returned(&mut self, inst: u32, session: u32, started: Nanos) -> Deferred {
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        let elapsed = self.now.saturating_sub(started);
        let limit = self
            .cfg
            .limits
            .limit(crate::config::Callback::EstablishSessionIndication);
        let input = Input::EstablishReturned {
            overran: elapsed > limit,
            shutdown: self.hosts[host as usize].shutdown,
        };
        let Some(s) = self.insts[inst as usize]
            .session_mut()
            .filter(|s| s.no() == session)
        else {
            return Deferred::default();
        };
        let effects = s.step(input);
        self.mark(inst);
        let mut deferred = Deferred::default();
        for e in effects {
            match e {
                Effect::Overran => {
                    let cb = crate::config::Callback::EstablishSessionIndication;
                    self.record(
                        host,
                        n,
                        What::Timeout {
                            cb,
                            call: 0,
                            excused: false,
                        },
                    );
                    self.violate(
                        id::SESS_7,
                        host,
                        n,
                        Some("ESTABLISH_SESSION_INDICATION"),
                        format!("ESTABLISH ran {elapsed} of virtual time, over its {limit} limit"),
                    );
                }
                Effect::RunDeferred(d) => deferred = d,
                e => self.apply(inst, e),
            }
        }
        deferred
    }

    /// TERMINATE returned.
    pub fn terminate_returned(&mut self, inst: u32, session: u32, reason: Reason, started: Nanos) {
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        let elapsed = self.now.saturating_sub(started);
        let limit = self
            .cfg
            .limits
            .limit(crate::config::Callback::TerminateSessionIndication);
        if elapsed > limit {
            self.violate(
                id::SESS_7,
                host,
                n,
                Some("TERMINATE_SESSION_INDICATION"),
                format!("TERMINATE ran {elapsed} of virtual time, over its {limit} limit"),
            );
        }
        if reason != Reason::ProviderRequest && self.insts[inst as usize].owes_deregister(session) {
            let at = self
                .now
                .saturating_add(Nanos::from_millis(self.cfg.deregister_grace_ms));
            self.schedule(at, Ev::DeregisterDue { inst, session });
        }
    }

    /// The platform ends a session and will deliver TERMINATE (SESS-5 reason).
    pub fn end_session(&mut self, inst: u32, reason: Reason, cause: &'static str) {
        self.end(inst, reason, cause, true);
    }

    /// Ends a session without scheduling TERMINATE (Deregister delivers it
    /// itself) and without a Deregister owed.
    pub fn end_session_quietly(&mut self, inst: u32, reason: Reason, cause: &'static str) {
        self.end(inst, reason, cause, false);
    }

    fn end(&mut self, inst: u32, reason: Reason, cause: &'static str, notify: bool) {
        let Some(s) = self.insts[inst as usize].session_mut() else {
            return;
        };
        let effects = s.step(Input::End { reason, notify });
        for e in effects {
            match e {
                Effect::Close(reason) => self.close_session(inst, reason, cause),
                e => self.apply(inst, e),
            }
        }
    }

    /// The session's end (`Effect::Close`): its IDs disowned, the end
    /// traced, its datagrams rerouted, its host examined.
    fn close_session(&mut self, inst: u32, reason: Reason, cause: &str) {
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        let now = self.now;
        if let Some(s) = self.insts[inst as usize].session_mut() {
            for t in s.drain_held() {
                self.traffic.disown(t, inst, now);
            }
        }
        self.record(
            host,
            n,
            What::SessionEnded {
                reason,
                cause: cause.to_string(),
            },
        );
        self.reroute_from(inst);
        self.mark(inst);
        self.pump_host(host);
    }

    /// Applies an effect of the session state machine that means the same
    /// wherever it comes from.
    pub(super) fn apply(&mut self, inst: u32, e: Effect) {
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        let now = self.now;
        match e {
            Effect::Record(to) => self.record(host, n, What::State { to }),
            Effect::End(reason, cause) => self.end_session(inst, reason, cause.text()),
            Effect::OweDeregister => self.insts[inst as usize].owe_deregister(),
            Effect::ScheduleTerminate(reason) => {
                if let Some(session) = self.insts[inst as usize].session().map(|s| s.no()) {
                    self.schedule(
                        now,
                        Ev::Terminate {
                            inst,
                            session,
                            reason,
                        },
                    );
                }
            }
            Effect::Issue(Activity::Active) => self.issue(inst, Op::Activate),
            Effect::Issue(Activity::Dormant) => self.issue(inst, Op::Deactivate),
            Effect::ActiveSince => {
                if let Some(s) = self.insts[inst as usize].session_mut() {
                    s.became_active(now);
                }
            }
            Effect::WentDormant => {
                if let Some(s) = self.insts[inst as usize].session_mut() {
                    s.went_dormant();
                }
                self.traffic.disrupt(host, inst, None, now);
            }
            Effect::Pump => self.pump_host(host),
            Effect::Deliver
            | Effect::Overran
            | Effect::Defer
            | Effect::RunDeferred(_)
            | Effect::SyncAddresses
            | Effect::Close(_)
            | Effect::Refuse => {
                unreachable!("{e:?} is applied where it arises")
            }
        }
    }

    /// Starts a platform operation: bookkeeping now, the callback from the driver.
    pub fn issue(&mut self, inst: u32, op: Op) {
        let s = self.insts[inst as usize]
            .session_mut()
            .expect("issue on a session");
        s.started(&op, &self.traffic.tids, self.now);
        let session = s.no();
        if matches!(op, Op::Deactivate | Op::Remove(_)) {
            // From the moment the provider is asked to go quiet or to give
            // an ID up it may drop what arrives (DATA-5 excuses the loss;
            // STATE-6 does not count on the peer): DECISIONS.
            let host = self.insts[inst as usize].host();
            let id = match op {
                Op::Remove(k) => Some(k),
                _ => None,
            };
            self.traffic.disrupt(host, inst, id, self.now);
        }
        // A REACH or SEND under way changes nothing `pump_host` examines an
        // instance for (one more open call cannot make it go dormant).
        let quiet = matches!(op, Op::Reach(_) | Op::Send { .. });
        let k = self.issued.keep(Issued { inst, session, op });
        self.schedule(self.now, Ev::Invoke(k));
        if !quiet {
            self.mark(inst);
        }
    }

    /// Undoes `issue`'s bookkeeping for an operation that will not complete normally.
    pub fn op_abandoned(&mut self, inst: u32, session: u32, op: &Op) {
        self.mark(inst);
        let Some(s) = self.insts[inst as usize]
            .session_mut()
            .filter(|s| s.no() == session)
        else {
            if let Op::Send { datagram, .. } = op {
                self.send_result_for(*datagram, false);
            }
            return;
        };
        s.abandoned(op, &self.traffic.tids);
        if let Op::Send { datagram, .. } = op {
            self.send_result_for(*datagram, false);
        }
    }

    /// A call finished on a live session with success `ok`: apply its effect.
    /// `at`: the instance's host and number.
    pub fn op_done(&mut self, inst: u32, at: (u8, u32), op: Op, ok: bool, started: Nanos) {
        // A successful REACH or any SEND changes nothing `pump_host`
        // examines an instance for but its count of open calls (its
        // datagrams are pumped anyway; a failed SEND's datagram is dropped,
        // it was not waiting), which matters only when the last open call
        // ends while dormancy is wanted: otherwise no mark (debug builds
        // check every skip, see `assert_unmarked_idle`).
        let quiet = (ok && matches!(op, Op::Reach(_)) || matches!(op, Op::Send { .. }))
            && self.insts[inst as usize]
                .session()
                .is_some_and(|s| !(s.machine().dormancy_wanted && s.open_calls() <= 1));
        if !quiet {
            self.mark(inst);
        }
        let (host, n) = at;
        let now = self.now;
        let s = self.insts[inst as usize]
            .session_mut()
            .expect("live session");
        s.touched(now);
        match op {
            Op::Activate | Op::Deactivate => {
                let to = if matches!(op, Op::Activate) {
                    Activity::Active
                } else {
                    Activity::Dormant
                };
                let effects = s.step(Input::TransitionDone { to, ok });
                let mut ended = false;
                for e in effects {
                    ended |= matches!(e, Effect::End(..));
                    self.apply(inst, e);
                }
                if ended {
                    return;
                }
            }
            Op::Add(k) => {
                let t = self.traffic.tids.get(k);
                s.add_done(t, ok);
                if ok {
                    // An instance with a REMOVE of `t` in flight is giving
                    // it up: not a duplicate (DECISIONS).
                    let insts = &self.insts;
                    let other = self.traffic.owner_other_than(k, inst, |o| {
                        !insts[o as usize]
                            .session()
                            .is_some_and(|s| s.changing_id(t))
                    });
                    // A provider cannot learn of a holder it cannot reach:
                    // an ADD while the network lost or partitioned anything
                    // is not judged (decision `duplicates-unheard`).
                    let other = other.filter(|_| !self.net.disturbed_since(started));
                    if let Some(other) = other {
                        let o = self.inst_name(other);
                        self.violate(
                            id::TID_4,
                            host,
                            n,
                            Some("ADD_TRANSPORT_ID"),
                            format!("ADD of {t} succeeded although {o} already holds it"),
                        );
                    }
                    self.traffic.own(k, inst, now);
                } else {
                    self.traffic.add_failed(k, inst, started, now);
                }
            }
            Op::Remove(k) => {
                let t = self.traffic.tids.get(k);
                // TID-5: whatever the status, the ID is no longer the instance's.
                s.remove_done(t);
                self.traffic.disown(t, inst, now);
                self.traffic.disrupt(host, inst, Some(k), now);
            }
            Op::Reach(k) => {
                let t = self.traffic.tids.get(k);
                s.reach_done(t, ok);
                // Judged over the grace window ending now.
                let truth = self.reachability(k, inst, started, !ok);
                if ok {
                    // An ADD of `t` in flight elsewhere makes it owned too
                    // (decision `add-when-asked`); asked only when nothing
                    // else owns it, which is rare.
                    let unowned = !truth.possibly_owned && !self.adding_elsewhere(t, inst);
                    // Nor can it learn of a second holder it cannot reach
                    // (decision `duplicates-unheard`).
                    let ambiguous = truth.ambiguous && !self.net.disturbed_since(started);
                    if unowned || ambiguous {
                        let why = if ambiguous {
                            "is held by more than one instance"
                        } else {
                            "is held by no other instance"
                        };
                        self.violate(
                            id::TID_6,
                            host,
                            n,
                            Some("REACH_TRANSPORT_ID"),
                            format!("REACH of {t} succeeded but {t} {why}"),
                        );
                    }
                } else {
                    if self.failure_breaks_state_6(&truth, host, started) {
                        self.violate(id::STATE_6, host, n, Some("REACH_TRANSPORT_ID"), format!("REACH of {t} failed although an active peer holds it and the network is healthy"));
                    }
                    self.traffic.reach_failed(host, inst, t);
                }
            }
            Op::Send { datagram } => {
                s.send_done();
                if !ok {
                    let remote = self.traffic.ends_of(datagram).1;
                    let k = self.traffic.tids.number(remote);
                    let truth = self.reachability(k, inst, started, true);
                    if self.failure_breaks_state_6(&truth, host, started) {
                        self.violate(id::STATE_6, host, n, Some("SEND_BUFFERS"), format!("SEND_BUFFERS to {remote} failed although an active peer holds it and the network is healthy"));
                    }
                }
                self.send_result_for(datagram, ok);
            }
        }
        if self.cfg.idle_dormancy_ms > 0 {
            let at = now.saturating_add(Nanos::from_millis(self.cfg.idle_dormancy_ms));
            if let Some(s) = self.insts[inst as usize].session() {
                let session = s.no();
                self.schedule(at, Ev::IdleCheck { inst, session });
            }
        }
        self.pump_host(host);
    }

    /// Marks instance `inst` for the next `pump_host` of its host: something
    /// it depends on changed (its session, its waiting datagrams, its
    /// interface's addresses, its host's listening).
    pub fn mark(&mut self, inst: u32) {
        let i = &mut self.insts[inst as usize];
        if i.mark() {
            self.hosts[i.host() as usize].dirty.push(inst);
        }
    }

    /// Marks every instance of `host`.
    pub fn mark_host(&mut self, host: u8) {
        for k in 0..self.hosts[host as usize].insts.len() {
            let inst = self.hosts[host as usize].insts[k];
            self.mark(inst);
        }
    }

    /// Marks the instances for which `waiting_on` changed. An instance on
    /// a listening host is not marked: both passes of `pump_host` read
    /// `waiting_on` only beside the host's `listening` (the demand of
    /// `Input::Examine` is `listening || waiting`, dormancy needs
    /// `!listening && !waiting`), so with the host listening it changes
    /// neither (and `Action::Listen` marks every instance of its host).
    fn mark_touched(&mut self) {
        if self.traffic.touched.is_empty() {
            return;
        }
        let touched = std::mem::take(&mut self.traffic.touched);
        for &inst in &touched {
            let host = self.insts[inst as usize].host();
            if !self.hosts[host as usize].listening {
                self.mark(inst);
            }
        }
        let mut touched = touched;
        touched.clear();
        self.traffic.touched = touched;
    }

    /// Takes host `host`'s marked instances that have a live session, in
    /// index order, clearing their marks.
    fn take_marked(&mut self, host: u8) -> Vec<u32> {
        let spare = std::mem::take(&mut self.spare_marks);
        let mut marked = std::mem::replace(&mut self.hosts[host as usize].dirty, spare);
        marked.sort_unstable();
        for &i in &marked {
            self.insts[i as usize].unmark();
        }
        marked.retain(|&i| self.session_live(i));
        marked
    }

    /// Moves every instance of `host` one step forward: activation, address
    /// changes, queued datagrams, dormancy.
    ///
    /// Only marked instances are examined (see `mark`): an instance nothing
    /// changed for since it was last examined has nothing to do, so the
    /// result is the same as examining every live instance of the host, in
    /// index order, at a cost that does not grow with the host's instances.
    /// With nothing marked, no datagram touched and none waiting on the
    /// host, both passes would examine nothing: the pump returns at once
    /// (after every quiet REACH, for instance). That test is inlined into
    /// the caller; the pump itself is a call of its own only when there is
    /// work (the quiet return saves no registers and builds no frame).
    #[inline]
    pub fn pump_host(&mut self, host: u8) {
        if self.traffic.touched.is_empty()
            && self.hosts[host as usize].dirty.is_empty()
            && self.traffic.none_waiting(host)
        {
            #[cfg(debug_assertions)]
            {
                self.assert_unmarked_idle(host, &[], true);
                self.assert_unmarked_idle(host, &[], false);
            }
            return;
        }
        self.pump_marked(host);
    }

    /// `pump_host` when something is marked, touched or waiting.
    #[inline(never)]
    fn pump_marked(&mut self, host: u8) {
        self.mark_touched();
        let insts = self.take_marked(host);
        let listening = self.hosts[host as usize].listening;
        #[cfg(debug_assertions)]
        self.assert_unmarked_idle(host, &insts, true);
        for &inst in &insts {
            let waiting = self.traffic.waiting_on(inst);
            let i = &mut self.insts[inst as usize];
            let iface_addrs: &[crate::transport_id::Tid] = match i.iface() {
                Some(k) => &self.hosts[host as usize].interfaces[k].addrs,
                None => &[],
            };
            let s = i.session_mut().expect("live");
            let effects = s.step(Input::Examine {
                demand: listening || waiting,
            });
            if !effects.contains(Effect::SyncAddresses) {
                for e in effects {
                    self.apply(inst, e);
                }
                continue;
            }
            let Some((to_add, to_remove)) = s.address_changes(iface_addrs) else {
                continue;
            };
            for a in to_add {
                let a = self.traffic.tids.number(a);
                self.issue(inst, Op::Add(a));
            }
            for a in to_remove {
                let a = self.traffic.tids.number(a);
                self.issue(inst, Op::Remove(a));
            }
        }
        self.pump_datagrams(host);
        // Instances the datagrams moved are examined for dormancy too (they
        // stay marked for the next pump).
        self.mark_touched();
        let mut more = std::mem::take(&mut self.spare_more);
        more.extend(
            self.hosts[host as usize]
                .dirty
                .iter()
                .copied()
                .filter(|i| insts.binary_search(i).is_err() && self.session_live(*i)),
        );
        let mut insts = if more.is_empty() {
            self.spare_more = more;
            insts
        } else {
            more.extend_from_slice(&insts);
            more.sort_unstable();
            more.dedup();
            let mut spare = insts;
            spare.clear();
            self.spare_more = spare;
            more
        };
        #[cfg(debug_assertions)]
        self.assert_unmarked_idle(host, &insts, false);
        for &inst in &insts {
            let waiting = self.traffic.waiting_on(inst);
            let s = self.insts[inst as usize].session_mut().expect("live");
            // Without a dormancy request the step does nothing (a shortcut:
            // this pass runs after every call).
            if !s.machine().dormancy_wanted {
                continue;
            }
            let quiet = s.idle() && !listening && !waiting;
            for e in s.step(Input::ExamineDormancy { quiet }) {
                self.apply(inst, e);
            }
        }
        // Keep the allocation for the next pump.
        insts.clear();
        self.spare_marks = insts;
    }

    /// Debug builds: every live instance of `host` that `pump_host` skips
    /// (not in `examined`) really has nothing to do in the first pass
    /// (`first`) or the dormancy pass.
    #[cfg(debug_assertions)]
    fn assert_unmarked_idle(&self, host: u8, examined: &[u32], first: bool) {
        let listening = self.hosts[host as usize].listening;
        for &inst in &self.hosts[host as usize].insts {
            if examined.binary_search(&inst).is_ok() || !self.session_live(inst) {
                continue;
            }
            let i = &self.insts[inst as usize];
            let s = i.session().expect("live");
            let waiting = self.traffic.waiting_on(inst);
            let busy = if first {
                let addrs: &[crate::transport_id::Tid] = match i.iface() {
                    Some(k) => &self.hosts[host as usize].interfaces[k].addrs,
                    None => &[],
                };
                !s.changing_activity()
                    && if s.active() {
                        s.machine().notified || s.address_changes(addrs).is_some()
                    } else {
                        listening || waiting || s.machine().notified
                    }
            } else {
                s.machine().dormancy_wanted
                    && s.active()
                    && !s.changing_activity()
                    && s.idle()
                    && !listening
                    && !waiting
            };
            assert!(
                !busy,
                "pump_host skipped instance {inst}, which has work (first pass: {first})"
            );
        }
    }

    /// LIFE-7: the provider had its grace period to deregister.
    pub fn deregister_due(&mut self, inst: u32, session: u32) {
        if self.insts[inst as usize].deregister_overdue(session) {
            let (host, n) = (
                self.insts[inst as usize].host(),
                self.insts[inst as usize].n(),
            );
            self.violate(
                id::LIFE_7,
                host,
                n,
                Some("CPNatfwtDeregisterProviderInstance"),
                format!("the platform ended the session, but the provider had not deregistered {} ms later", self.cfg.deregister_grace_ms),
            );
        }
    }

    /// The idle timer: an instance idle long enough goes dormant.
    pub fn idle_check(&mut self, inst: u32, session: u32) {
        let idle = Nanos::from_millis(self.cfg.idle_dormancy_ms);
        let now = self.now;
        let host = self.insts[inst as usize].host();
        if let Some(s) = self.insts[inst as usize]
            .session_mut()
            .filter(|s| s.no() == session && s.live() && s.active())
        {
            if now.saturating_sub(s.last_activity()) >= idle {
                s.step(Input::DormancyWanted);
                self.mark(inst);
                self.pump_host(host);
            } else {
                let at = s.last_activity().saturating_add(idle);
                self.schedule(at, Ev::IdleCheck { inst, session });
            }
        }
    }

    /// LIFE-8: the provider was stopped; everything must be cleaned up.
    pub fn check_stopped(&mut self, host: u8) {
        for k in 0..self.hosts[host as usize].insts.len() {
            let inst = self.hosts[host as usize].insts[k];
            if self.insts[inst as usize].life() == Life::Destroyed {
                continue;
            }
            self.mark(inst);
            let i = &self.insts[inst as usize];
            let n = i.n();
            let what = if i.life() == Life::Registered {
                "is still registered"
            } else {
                "was created but never destroyed"
            };
            self.violate(
                id::LIFE_8,
                host,
                n,
                None,
                format!("the provider was stopped, but this instance {what}"),
            );
            // The platform cleans up after it, silently.
            if let Some(k) = self.insts[inst as usize].iface() {
                self.hosts[host as usize].interfaces[k].owner = None;
            }
            if self.insts[inst as usize]
                .session()
                .is_some_and(|s| !s.ended())
            {
                self.end_session_quietly(inst, Reason::PlatformShutdown, "provider stopped");
            }
            self.insts[inst as usize].destroyed();
        }
        for (serial, inst, cb) in self.open_calls_of(host) {
            let n = self.insts[inst as usize].n();
            self.violate(
                id::LIFE_8,
                host,
                n,
                Some(cb.name()),
                format!("the provider was stopped with call {serial} still pended"),
            );
            self.calls.abandon(serial);
        }
    }
}
