//! Instances, their sessions and interfaces: the platform's per-instance state.

use super::faults::SessionFaults;
use super::machine::{self, Effects, Input, Machine, Stage};
use super::traffic::{TidNo, Tids};
use crate::abi::CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE as Table;
use crate::config::Callback;
use crate::time::Nanos;
use crate::trace::Activity;
use crate::transport_id::Tid;

/// Where an instance is in its life (docs/CONTRACT.md §2).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Life {
    Created,
    Registered,
    Destroyed,
}

/// A CP interface (one per registration; reused through its LUID, REG-6).
pub struct Interface {
    pub luid: u64,
    pub name: Vec<u16>,
    /// The instance registered on it now, if any.
    pub owner: Option<u32>,
    /// Its addresses (the platform's truth), which the platform ADDs when active.
    pub addrs: Vec<Tid>,
    /// Addresses removed from it, the last removed on top: what an
    /// `AddressReturn` gives back (kept across registrations and restarts,
    /// as `addrs` is).
    pub removed: Vec<Tid>,
    /// The addresses the downs since it was last up took, in the order
    /// the interface had them: what an `InterfaceUp` gives back (those of
    /// them still in `removed`).
    pub down: Vec<Tid>,
    /// Which instance number of this host first got it (for LUID ownership).
    pub index: u8,
}

/// Platform work that needs a callback.
#[derive(Copy, Clone, Debug)]
pub enum Op {
    Activate,
    Deactivate,
    Add(TidNo),
    Remove(TidNo),
    Reach(TidNo),
    /// SEND_BUFFERS of a datagram, from and to its IDs (`Traffic::ends_of`).
    Send {
        datagram: u32,
    },
}

// Built for every call and copied into a slot and out again: small enough
// for registers (transport IDs by number, see `Tids`).
const _: () = assert!(std::mem::size_of::<Op>() <= 8);

impl Op {
    pub fn callback(&self) -> Callback {
        match self {
            Op::Activate => Callback::TransitionActive,
            Op::Deactivate => Callback::TransitionDormant,
            Op::Add(_) => Callback::AddTransportId,
            Op::Remove(_) => Callback::RemoveTransportId,
            Op::Reach(_) => Callback::ReachTransportId,
            Op::Send { .. } => Callback::SendBuffers,
        }
    }
}

/// One session: from a successful Register to its end. Where it is in its
/// life and whether it is active is its state machine (`machine.rs`); the
/// rest is what the platform's work queue needs, kept here and changed only
/// through the operations below (named by what the platform does).
pub struct Session {
    no: u32,
    machine: Machine,
    /// The platform faults that bend its state machine (`faults.rs`).
    faults: SessionFaults,
    /// When the session last became active (STATE-6 ground truth).
    active_since: Nanos,
    /// Open calls other than transitions.
    open: u32,
    /// IDs whose ADD succeeded and that were not removed.
    added: Vec<Tid>,
    /// IDs with an ADD or REMOVE in flight.
    changing: Vec<Tid>,
    /// Remote IDs whose REACH succeeded (forgotten when dormant).
    reached: Vec<Tid>,
    reaching: Vec<Tid>,
    last_activity: Nanos,
    /// IDs whose ADD the provider failed (not offered again this session).
    rejected: Vec<Tid>,
    /// Transitions started this session (for the platform faults).
    transitions: u32,
    /// A removed ID the next send of its family uses anyway (only the
    /// platform fault `KeepRemovedId` sets it, TID-5).
    stale: Option<Tid>,
}

impl Session {
    #[inline]
    pub fn new(no: u32, now: Nanos, faults: SessionFaults) -> Session {
        Session {
            no,
            machine: Machine::NEW,
            faults,
            active_since: now,
            open: 0,
            added: Vec::new(),
            changing: Vec::new(),
            reached: Vec::new(),
            reaching: Vec::new(),
            last_activity: now,
            stale: None,
            rejected: Vec::new(),
            transitions: 0,
        }
    }

    /// The session's number (per instance, from 1).
    #[inline]
    pub fn no(&self) -> u32 {
        self.no
    }

    /// Moves the state machine one step (bent by the platform faults, if
    /// any); the caller applies the effects.
    #[inline]
    pub fn step(&mut self, input: Input) -> Effects {
        let (next, effects) = machine::step(self.machine, input);
        let (next, effects) = if self.faults.any() {
            self.faults
                .bend(self.machine, self.transitions, input, next, effects)
        } else {
            (next, effects)
        };
        self.machine = next;
        effects
    }

    /// The state machine's state.
    #[inline]
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Established and not ended: callbacks may start.
    #[inline]
    pub fn live(&self) -> bool {
        self.machine.live()
    }

    #[inline]
    pub fn ended(&self) -> bool {
        self.machine.ended()
    }

    /// Active (STATE-3), possibly with a transition in flight.
    #[inline]
    pub fn active(&self) -> bool {
        self.machine.is_active()
    }

    /// A TRANSITION_DORMANT is in flight: the provider was asked to go quiet
    /// and may already have (STATE-6 and DATA-5 do not count on it).
    #[inline]
    pub fn quiescing(&self) -> bool {
        matches!(
            self.machine.activation,
            machine::Activation::Changing {
                to: Activity::Dormant,
                ..
            }
        )
    }

    /// An ADD or REMOVE of `t` is in flight.
    #[inline]
    pub fn changing_id(&self, t: Tid) -> bool {
        self.changing.contains(&t)
    }

    /// A transition is in flight (STATE-4): read by the debug checks of
    /// `pump_host` (the routing asks the machine, `Input::DatagramWaiting`).
    #[cfg(debug_assertions)]
    pub fn changing_activity(&self) -> bool {
        self.machine.changing()
    }

    #[inline]
    pub fn stage(&self) -> Stage {
        self.machine.state.stage()
    }

    /// Whether the platform may call the provider for this session now:
    /// once ESTABLISH has returned (SESS-2), unless a platform fault says
    /// otherwise.
    #[inline]
    pub fn accepts_calls(&self) -> bool {
        !self.ended() && self.faults.may_call(self.stage() == Stage::Established)
    }

    /// Whether TERMINATE, about to be delivered, is delivered once more
    /// afterwards (only by a faulty platform, SESS-4).
    #[inline]
    pub fn terminates_again(&self) -> bool {
        self.faults
            .terminates_again(self.machine.terminate_on_its_way())
    }

    /// Active since this instant (STATE-6's ground truth).
    #[inline]
    pub fn active_since(&self) -> Nanos {
        self.active_since
    }

    /// When a call for this session last started or finished.
    #[inline]
    pub fn last_activity(&self) -> Nanos {
        self.last_activity
    }

    /// Calls open other than transitions.
    #[inline]
    pub fn open_calls(&self) -> u32 {
        self.open
    }

    /// Nothing open but transitions, no ID changing: what dormancy waits for.
    #[inline]
    pub fn idle(&self) -> bool {
        self.open == 0 && self.changing.is_empty()
    }

    /// The session holds `t` (its ADD succeeded, no REMOVE since).
    #[inline]
    pub fn holds(&self, t: Tid) -> bool {
        self.added.contains(&t)
    }

    /// Whether an ADD of `t` is in flight (called, not yet completed):
    /// from its call the ID counts as the instance's for indications and
    /// TID-6 (decision `add-when-asked`).
    #[inline]
    pub fn adding(&self, t: Tid) -> bool {
        self.changing.contains(&t) && !self.added.contains(&t)
    }

    /// The first ID the session holds, if any.
    #[inline]
    pub fn first_held(&self) -> Option<Tid> {
        self.added.first().copied()
    }

    /// The IDs the session holds, handed over as it closes.
    #[inline]
    pub fn drain_held(&mut self) -> std::vec::Drain<'_, Tid> {
        self.added.drain(..)
    }

    /// The address changes to offer, given the interface's addresses: the
    /// ones to ADD (not held, not changing, not rejected) and the ones to
    /// REMOVE (held, gone, not changing). `None` if there are none.
    #[inline]
    pub fn address_changes(&self, iface: &[Tid]) -> Option<(Vec<Tid>, Vec<Tid>)> {
        let add = |a: &&Tid| {
            !self.added.contains(a) && !self.changing.contains(a) && !self.rejected.contains(a)
        };
        let remove = |a: &&Tid| !iface.contains(a) && !self.changing.contains(a);
        if !iface.iter().any(|a| add(&a)) && !self.added.iter().any(|a| remove(&a)) {
            return None;
        }
        Some((
            iface.iter().filter(add).copied().collect(),
            self.added.iter().filter(remove).copied().collect(),
        ))
    }

    /// IDs the provider rejected are offered again (a new address
    /// notification).
    #[inline]
    pub fn forget_rejected(&mut self) {
        self.rejected.clear();
    }

    /// The ID a datagram to `dst` goes from: a held ID of its family whose
    /// REMOVE is not under way (it may complete before SEND_BUFFERS is
    /// delivered, TID-5); the platform fault `KeepRemovedId` sends once
    /// from the ID just removed instead.
    #[inline]
    pub fn source_for(&self, dst: Tid) -> Option<Tid> {
        let family = dst.is_v4();
        self.stale.filter(|a| a.is_v4() == family).or_else(|| {
            self.added
                .iter()
                .find(|a| a.is_v4() == family && !self.changing.contains(a))
                .copied()
        })
    }

    /// An ADD or REMOVE of an ID of `dst`'s family is under way.
    #[inline]
    pub fn changing_family_of(&self, dst: Tid) -> bool {
        self.changing.iter().any(|a| a.is_v4() == dst.is_v4())
    }

    /// Whether a datagram may be sent to `dst` now: its REACH succeeded
    /// (DATA-1), unless a platform fault says otherwise.
    #[inline]
    pub fn may_send_to(&self, dst: Tid) -> bool {
        self.faults.may_send(self.reached.contains(&dst))
    }

    /// The ID a datagram to `dst` routed through this session goes to
    /// SEND_BUFFERS from, if it goes now: the session is live and active
    /// with no transition in flight, holds a settled ID of `dst`'s family
    /// and may send to `dst`. (The routing's one test of "send now", for a
    /// datagram that waited and for one sent at once, see `World::app_send`.)
    #[inline]
    pub fn sends_now_from(&self, dst: Tid) -> Option<Tid> {
        let ready = self.live()
            && self.machine.activation == machine::Activation::Active
            && self.may_send_to(dst);
        ready.then(|| self.source_for(dst)).flatten()
    }

    /// A REACH of `dst` is under way.
    #[inline]
    pub fn reaching(&self, dst: Tid) -> bool {
        self.reaching.contains(&dst)
    }

    /// SEND_BUFFERS goes from `local` (the fault's kept ID is used once).
    #[inline]
    pub fn sending_from(&mut self, local: Tid) {
        if self.stale == Some(local) {
            self.stale = None;
        }
    }

    /// The platform starts `op` at `now` (the transition started in the
    /// state machine by the caller's `step`, or the call counted open).
    #[inline]
    pub fn started(&mut self, op: &Op, tids: &Tids, now: Nanos) {
        match op {
            Op::Activate => {
                self.step(Input::TransitionStarts(Activity::Active));
                self.transitions += 1;
            }
            Op::Deactivate => {
                self.step(Input::TransitionStarts(Activity::Dormant));
                self.transitions += 1;
            }
            Op::Add(t) | Op::Remove(t) => {
                self.open += 1;
                self.changing.push(tids.get(*t));
            }
            Op::Reach(t) => {
                self.open += 1;
                self.reaching.push(tids.get(*t));
            }
            Op::Send { .. } => self.open += 1,
        }
        self.last_activity = now;
    }

    /// `op` will not complete normally: `started`'s bookkeeping undone.
    #[inline]
    pub fn abandoned(&mut self, op: &Op, tids: &Tids) {
        match op {
            Op::Activate | Op::Deactivate => {
                self.step(Input::TransitionAbandoned);
            }
            Op::Add(t) | Op::Remove(t) => {
                let t = tids.get(*t);
                self.open = self.open.saturating_sub(1);
                self.changing.retain(|x| *x != t);
            }
            Op::Reach(t) => {
                let t = tids.get(*t);
                self.open = self.open.saturating_sub(1);
                self.reaching.retain(|x| *x != t);
            }
            Op::Send { .. } => {
                self.open = self.open.saturating_sub(1);
            }
        }
    }

    /// A call finished at `now` (before its own bookkeeping below).
    #[inline]
    pub fn touched(&mut self, now: Nanos) {
        self.last_activity = now;
    }

    /// ADD of `t` finished: held if `ok`, else not offered again.
    #[inline]
    pub fn add_done(&mut self, t: Tid, ok: bool) {
        self.open = self.open.saturating_sub(1);
        self.changing.retain(|x| *x != t);
        if ok {
            self.added.push(t);
        } else {
            self.rejected.push(t);
        }
    }

    /// REMOVE of `t` finished: whatever the status, the ID is no longer
    /// the session's (TID-5), unless a platform fault keeps it.
    #[inline]
    pub fn remove_done(&mut self, t: Tid) {
        self.open = self.open.saturating_sub(1);
        self.changing.retain(|x| *x != t);
        self.added.retain(|x| *x != t);
        if let Some(kept) = self.faults.kept_after_remove(t) {
            self.stale = Some(kept);
        }
    }

    /// REACH of `t` finished (a success remembered until dormant).
    #[inline]
    pub fn reach_done(&mut self, t: Tid, ok: bool) {
        self.open = self.open.saturating_sub(1);
        self.reaching.retain(|x| *x != t);
        // A set: only ever asked whether it contains an ID.
        if ok && !self.reached.contains(&t) {
            self.reached.push(t);
        }
    }

    /// SEND_BUFFERS finished.
    #[inline]
    pub fn send_done(&mut self) {
        self.open = self.open.saturating_sub(1);
    }

    /// The instance became active at `now`.
    #[inline]
    pub fn became_active(&mut self, now: Nanos) {
        self.active_since = now;
    }

    /// The instance went dormant: REACHed IDs are forgotten.
    #[inline]
    pub fn went_dormant(&mut self) {
        self.reached.clear();
    }
}

/// One provider instance. Who it is (host, number, handle, dispatch table,
/// user context) is fixed when it is created; its life, interface,
/// session and the bookkeeping around them are private to this file and
/// change only through the operations below, named by what the platform
/// does.
pub struct Instance {
    host: u8,
    /// Per-host number, from 1 (`A#1`).
    n: u32,
    handle: u64,
    table: Table,
    user_context: usize,
    life: Life,
    iface: Option<usize>,
    session: Option<Session>,
    /// Sessions started so far (the last one's number).
    sessions: u32,
    /// A session the platform ended whose Deregister is still owed (LIFE-7).
    owes_deregister: Option<u32>,
    /// A Register of this instance failed before (for the LIFE-3 platform fault).
    failed_register: bool,
    /// Marked for the next `pump_host` of its host (see `World::mark`).
    dirty: bool,
    /// Grows whenever its session may change: every method that can
    /// reach `session` mutably counts one (see `version`).
    version: u64,
}

impl Instance {
    /// A created instance (CPNatfwtCreateProviderInstance): no interface,
    /// no session.
    pub fn new(host: u8, n: u32, handle: u64, table: Table, user_context: usize) -> Instance {
        Instance {
            host,
            n,
            handle,
            table,
            user_context,
            life: Life::Created,
            iface: None,
            session: None,
            sessions: 0,
            owes_deregister: None,
            failed_register: false,
            dirty: false,
            version: 0,
        }
    }

    /// The host it was created on.
    #[inline]
    pub fn host(&self) -> u8 {
        self.host
    }

    /// Its number on its host, from 1 (`A#1`).
    #[inline]
    pub fn n(&self) -> u32 {
        self.n
    }

    /// The handle the provider was given.
    #[inline]
    pub fn handle(&self) -> u64 {
        self.handle
    }

    /// The provider's dispatch table.
    #[inline]
    pub fn table(&self) -> Table {
        self.table
    }

    /// The user context the provider passed to Create.
    #[inline]
    pub fn user_context(&self) -> usize {
        self.user_context
    }

    /// Its session (from a successful Register until it is dropped).
    #[inline]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Its session, to change (counted as a change, see `version`).
    #[inline]
    pub fn session_mut(&mut self) -> Option<&mut Session> {
        self.version += 1;
        self.session.as_mut()
    }

    /// How many times its session may have changed: every method of this
    /// file that can reach `session` mutably (`session_mut`,
    /// `start_session`, `drop_session`, `destroyed`, `step_session` unless
    /// its step changed nothing) adds one first. Equal versions mean that
    /// `session()` reads the same as before (the routing's walk of waiting
    /// datagrams relies on it, see `World::pump_datagrams`).
    #[inline]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Moves its session's state machine one step, like
    /// `session_mut().step(input)`, but counted as a change only if the
    /// step changed the machine or had effects (the caller applies them;
    /// what they change counts where it happens). `None` without a session.
    #[inline]
    pub fn step_session(&mut self, input: Input) -> Option<Effects> {
        let s = self.session.as_mut()?;
        let before = s.machine;
        let effects = s.step(input);
        if s.machine != before || !effects.is_empty() {
            self.version += 1;
        }
        Some(effects)
    }

    #[inline]
    pub fn life(&self) -> Life {
        self.life
    }

    /// The interface it was last registered on (kept after Deregister).
    #[inline]
    pub fn iface(&self) -> Option<usize> {
        self.iface
    }

    /// Whether a Register of it failed before.
    #[inline]
    pub fn failed_register_before(&self) -> bool {
        self.failed_register
    }

    /// Whether the Deregister after session `session`'s end is still owed.
    #[inline]
    pub fn owes_deregister(&self, session: u32) -> bool {
        self.owes_deregister == Some(session)
    }

    /// Register failed.
    #[inline]
    pub fn register_failed(&mut self) {
        self.failed_register = true;
    }

    /// Register succeeded on interface `iface`.
    #[inline]
    pub fn registered(&mut self, iface: usize) {
        self.life = Life::Registered;
        self.iface = Some(iface);
    }

    /// Starts its next session at `now` (bent by `faults`); returns its number.
    #[inline]
    pub fn start_session(&mut self, now: Nanos, faults: SessionFaults) -> u32 {
        self.version += 1;
        self.sessions += 1;
        self.session = Some(Session::new(self.sessions, now, faults));
        self.sessions
    }

    /// The platform ended its session: the provider owes its Deregister
    /// (LIFE-7).
    #[inline]
    pub fn owe_deregister(&mut self) {
        self.owes_deregister = self.session.as_ref().map(|s| s.no());
    }

    /// The grace period after session `session`'s end is over: whether its
    /// Deregister was still owed by a registered instance (LIFE-7); it is
    /// not owed any more either way.
    #[inline]
    pub fn deregister_overdue(&mut self, session: u32) -> bool {
        let overdue = self.owes_deregister(session) && self.life == Life::Registered;
        if overdue {
            self.owes_deregister = None;
        }
        overdue
    }

    /// Deregistered: created again, owing nothing; returns the interface
    /// it leaves.
    #[inline]
    pub fn deregistered(&mut self) -> Option<usize> {
        self.life = Life::Created;
        self.owes_deregister = None;
        self.iface
    }

    /// Its session is over and forgotten.
    #[inline]
    pub fn drop_session(&mut self) {
        self.version += 1;
        self.session = None;
    }

    /// Destroyed (by the provider, or by the platform after a stop): no
    /// session, nothing owed.
    #[inline]
    pub fn destroyed(&mut self) {
        self.version += 1;
        self.life = Life::Destroyed;
        self.session = None;
        self.owes_deregister = None;
    }

    /// Marks it for the next `pump_host`; whether it was not marked yet.
    #[inline]
    pub fn mark(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    /// Its mark was taken by `pump_host`.
    #[inline]
    pub fn unmark(&mut self) {
        self.dirty = false;
    }
}
