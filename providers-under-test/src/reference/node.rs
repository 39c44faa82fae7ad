//! One host's provider: its instances (slots), its pended calls and its
//! background jobs, behind one lock; and the instance life cycle (open,
//! replace after a platform-ended session, stop).
//!
//! Locking rule: the lock is never held while the platform is called
//! (Register, Deregister, Destroy, a completion routine, an indication),
//! because the platform may call back into the provider on the same thread
//! (ESTABLISH inside Register, TERMINATE inside Deregister).

use super::rendezvous::RV_PORT;
use super::wire::{Msg, Owner};
use super::{Bug, Subtle};
use crate::mutant_abi::{self, RawInstance};
use cpsim_sim::abi::HRESULT;
use cpsim_sim::net::NetAddr;
use cpsim_sim::safe::{
    Failure, Instance, InstanceRef, Pending, RegisterOptions, TerminationReason,
};
use cpsim_sim::{Cx, Nanos, Tid};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The port every peer binds for rendezvous answers and peer traffic.
pub const PORT: u16 = 4000;
/// How long to wait for an answer before sending again.
pub const RETRY: Nanos = Nanos::from_millis(500);
/// Sends per stage of a pended call before it is failed: generous where the
/// platform's limit is long (activation: 30 s), tight for SEND (5 s, two
/// stages; a third, when a remembered route fails, looks the ID up again).
/// Every call ends within 4.5 s of its first send.
pub fn attempts(kind: &OpKind) -> u32 {
    match kind {
        OpKind::Activate => 8,
        OpKind::Add { .. } | OpKind::Remove { .. } => 6,
        OpKind::Reach { .. } => 4,
        OpKind::Send { .. } => 3,
    }
}
/// A probe answer older than this (estimated as half its round trip) is not
/// trusted: the platform judges REACH answers over a 1 s window.
pub const FRESH: Nanos = Nanos::from_millis(900);
/// Background unregistrations: how often, and how many times at most.
const CLEANUP_EVERY: Nanos = Nanos::from_secs(1);
const CLEANUP_ATTEMPTS: u32 = 30;
/// An activation within this long of the rendezvous' last answer needs no new ping.
pub const CHANNEL_FRESH: Nanos = Nanos::from_secs(2);
/// Delay before a platform-ended instance is deregistered and replaced.
const REPLACE_AFTER: Nanos = Nanos::from_millis(1);
/// How long a datagram number indicated is remembered, for de-duplication:
/// far longer than a sender keeps sending one (every call ends within 4.5 s
/// of its first send) plus any delay of the network. A bound by count
/// instead (the last 4,096 numbers) indicated a retransmission again when
/// more than that many datagrams from one sender arrived first.
pub const SEEN_FOR: Nanos = Nanos::from_secs(30);

/// The friendly name and security descriptor every instance registers with.
pub const FRIENDLY_NAME: &str = "cpsim reference overlay";
pub const SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";
/// The REG-8 mutant's descriptor: a third ACE that lost its closing parenthesis.
const BAD_SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;WD";

/// An instance this provider owns: through the safe API, or through the
/// mutant table for bugs that live at the ABI edge.
pub enum Owned {
    Safe(Instance),
    Raw(RawInstance),
}

impl Owned {
    pub fn as_ref(&self) -> InstanceRef {
        match self {
            Owned::Safe(i) => i.as_ref(),
            Owned::Raw(i) => i.as_ref(),
        }
    }
    fn register(&self, opts: &RegisterOptions) -> Result<u64, HRESULT> {
        match self {
            Owned::Safe(i) => i.register(opts),
            Owned::Raw(i) => i.register(opts),
        }
    }
    fn deregister(&self) -> Result<(), HRESULT> {
        match self {
            Owned::Safe(i) => i.deregister(),
            Owned::Raw(i) => i.deregister(),
        }
    }
    fn destroy(self) {
        match self {
            Owned::Safe(i) => i.destroy(),
            Owned::Raw(i) => i.destroy(),
        }
    }
}

/// Where a REACH or SEND is in its work.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Stage {
    /// Asking the rendezvous which node holds the ID.
    Lookup,
    /// Asking that node whether it holds the ID on an active instance.
    Probe { node: u8 },
    /// Carrying the bytes to that node.
    Data { node: u8 },
}

/// The work of one pended call.
pub enum OpKind {
    Activate,
    Add {
        tid: Tid,
        reg: u64,
    },
    Remove {
        tid: Tid,
        reg: u64,
    },
    Reach {
        tid: Tid,
        stage: Stage,
    },
    Send {
        local: Tid,
        remote: Tid,
        payload: Vec<u8>,
        stage: Stage,
        /// It started from a remembered route (no lookup): if that node
        /// does not answer, the ID is looked up again once (its holder may
        /// have changed since the route was learnt).
        cached: bool,
    },
}

/// A pended call: its completion token and its progress. Whoever removes it
/// from [`State::ops`] completes it.
pub struct Op {
    pub slot: u32,
    pub pending: Pending,
    pub kind: OpKind,
    /// Sends so far in the current stage.
    pub attempt: u32,
    /// Bumped at every stage change, so that old retry timers fall silent.
    pub epoch: u32,
}

/// One instance's state as this provider sees it. It mirrors the platform's:
/// `active` changes when a transition completes, `held` when an ADD or
/// REMOVE completes, and everything ends at TERMINATE.
#[derive(Default)]
pub struct Slot {
    pub owned: Option<Owned>,
    pub luid: u64,
    pub registered: bool,
    pub ended: bool,
    pub active: bool,
    /// IDs added to this instance, with their registration numbers.
    pub held: BTreeMap<Tid, u64>,
    /// Which node answered for a remote ID (filled by REACH).
    pub routes: BTreeMap<Tid, u8>,
    /// When the last activation completed.
    pub activated_at: Option<Nanos>,
    /// A TRANSITION_DORMANT waiting for the link to settle (the
    /// settle-dormancy variant only).
    pub settling: Option<Pending>,
    /// SENDs timed since the last re-activation, and when they were made
    /// (the third-send-after-reactivation variant only).
    pub warm_sends: Option<u8>,
    pub warm_rtt: [Nanos; 2],
    /// The held IDs by family and last byte, 8 entries per family, the
    /// newest ADD in each (read by the id-table variant only).
    pub id_table: [Option<Tid>; 16],
    /// IDs removed from this instance, never cleared, not even when one is
    /// added again (read by the tombstone variant only).
    pub tombstones: BTreeSet<Tid>,
    /// The first ID the platform asked this instance to add (the
    /// interface's first address), and whether it was removed since (read
    /// by the first-id-kept variant only).
    pub first: Option<Tid>,
    pub first_removed: bool,
}

impl Slot {
    /// An ADD of `tid` (registration `reg`) succeeded.
    pub fn hold(&mut self, tid: Tid, reg: u64) {
        self.held.insert(tid, reg);
        self.id_table[Slot::table_index(&tid)] = Some(tid);
    }
    /// `tid` is no longer held.
    pub fn release(&mut self, tid: &Tid) {
        self.held.remove(tid);
        self.first_removed |= self.first == Some(*tid);
        self.tombstones.insert(*tid);
        let e = &mut self.id_table[Slot::table_index(tid)];
        if *e == Some(*tid) {
            *e = None;
        }
    }
    /// The entry of `tid`'s family and last byte in `id_table`.
    pub fn table_index(tid: &Tid) -> usize {
        let last = tid.as_bytes().last().copied().unwrap_or(0);
        usize::from(!tid.is_v4()) * 8 + usize::from(last % 8)
    }
}

/// An unregistration the rendezvous has not acknowledged yet.
pub struct Cleanup {
    pub tid: Tid,
    pub owner: Owner,
    pub reg: u64,
    pub attempts: u32,
}

/// Everything behind the provider's lock.
#[derive(Default)]
pub struct State {
    pub stopped: bool,
    next_id: u64,
    next_slot: u32,
    pub slots: BTreeMap<u32, Slot>,
    pub ops: BTreeMap<u64, Op>,
    pub cleanup: BTreeMap<u64, Cleanup>,
    /// Datagram numbers already indicated, per (sender node, incarnation).
    pub seen: BTreeMap<(u8, u64), Seen>,
    /// Datagrams received so far (DATA-5 mutant).
    pub received: u64,
    /// One-shot mutants that have fired (SESS-7, TIME-1).
    pub fired: BTreeSet<&'static str>,
    /// When the rendezvous last answered a ping.
    pub last_pong: Option<Nanos>,
    /// SENDs waiting for a window (the send-window variant only).
    pub parked: BTreeSet<u64>,
    /// The node that claimed each entry of the peer-table variant's table.
    pub peer_table: [Option<u8>; 3],
    /// When each node was last heard from (the idle-peer variant only).
    pub last_heard: BTreeMap<u8, Nanos>,
}

/// The datagram numbers indicated from one sender, each remembered for
/// [`SEEN_FOR`] after it was indicated.
#[derive(Default)]
pub struct Seen {
    numbers: BTreeSet<u64>,
    /// The numbers in the order they were indicated, with when.
    order: VecDeque<(Nanos, u64)>,
}

impl Seen {
    pub fn contains(&self, req: u64) -> bool {
        self.numbers.contains(&req)
    }
    /// The highest number remembered.
    pub fn newest(&self) -> Option<u64> {
        self.numbers.last().copied()
    }
    /// Remembers `req`, indicated at `now`, and forgets what is older than
    /// [`SEEN_FOR`].
    pub fn insert(&mut self, req: u64, now: Nanos) {
        if self.numbers.insert(req) {
            self.order.push_back((now, req));
        }
        while let Some(&(at, old)) = self.order.front() {
            if now.saturating_sub(at) < SEEN_FOR {
                break;
            }
            self.order.pop_front();
            self.numbers.remove(&old);
        }
    }
}

impl State {
    /// A provider's state, its request numbers following `first`.
    pub fn starting_at(first: u64) -> State {
        State {
            next_id: first,
            ..State::default()
        }
    }

    /// A fresh request or registration number (increasing).
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Removes pended call `req` if its work is of the wanted kind.
    pub fn take_op(&mut self, req: u64, want: impl Fn(&OpKind) -> bool) -> Option<Op> {
        if self.ops.get(&req).is_some_and(|o| want(&o.kind)) {
            self.ops.remove(&req)
        } else {
            None
        }
    }

    /// Schedules an unregistration; `None` if the same one is already queued.
    pub fn add_cleanup(&mut self, tid: Tid, owner: Owner, reg: u64) -> Option<u64> {
        if self
            .cleanup
            .values()
            .any(|c| c.tid == tid && c.owner == owner && c.reg == reg)
        {
            return None;
        }
        let id = self.id();
        self.cleanup.insert(
            id,
            Cleanup {
                tid,
                owner,
                reg,
                attempts: 0,
            },
        );
        Some(id)
    }
}

/// One host's provider, shared by its instances' handlers, its network
/// handler and its timers.
pub struct Node {
    pub bug: Bug,
    /// A subtle variant's bug (`Subtle::None` for the reference).
    pub subtle: Subtle,
    /// This host's network node.
    pub me: u8,
    /// Distinguishes this run of the provider from earlier ones on the host
    /// (datagram numbers restart with it).
    pub incarnation: u64,
    /// For the mutant layer's one-shot bug.
    pub raw_fired: Arc<AtomicBool>,
    pub st: Mutex<State>,
}

impl Node {
    pub fn new(cx: &Cx, bug: Bug, subtle: Subtle) -> Arc<Node> {
        let incarnation: u64 = cx.random();
        // Request and datagram numbers start at the incarnation's high
        // half, so that a late duplicate of an acknowledgement the
        // provider's previous run was sent cannot be taken for one of this
        // run's: a DataAck for request 5 of the last run once completed
        // this run's SEND 5 with S_OK before its data had left (DATA-5,
        // found at 32,768 cases on seeds 2 and 3). The dedup-per-node
        // variant's bug needs the numbers to restart: its numbers start at
        // 0 as they did.
        let first = if subtle == Subtle::DedupPerNode {
            0
        } else {
            incarnation & !0xFFFF_FFFF
        };
        Arc::new(Node {
            bug,
            subtle,
            me: cx.host_index(),
            incarnation,
            raw_fired: Arc::default(),
            st: Mutex::new(State::starting_at(first)),
        })
    }

    /// The rendezvous' address.
    pub fn rendezvous(cx: &Cx) -> NetAddr {
        cx.infra(RV_PORT)
    }

    /// A peer's address.
    pub fn peer(node: u8) -> NetAddr {
        NetAddr { node, port: PORT }
    }

    /// The owner name of a slot at the rendezvous.
    pub fn owner(&self, slot: &Slot) -> Owner {
        Owner {
            node: self.me,
            luid: slot.luid,
        }
    }

    /// Binds the peer port and opens the first instance.
    pub fn start(self: &Arc<Self>, cx: &Cx) {
        let node = self.clone();
        // The port is free: the platform unbinds a stopped provider's ports.
        // Were it not, the instance would still register and simply fail
        // its activations, which is the honest outcome.
        let _ = cx.bind(PORT, move |cx, from, data| node.on_datagram(cx, from, data));
        self.open_instance(cx, None);
    }

    /// Creates and registers a new instance (on the interface `luid` if given).
    pub fn open_instance(self: &Arc<Self>, cx: &Cx, luid: Option<u64>) {
        let slot = {
            let mut st = self.st.lock();
            if st.stopped {
                return;
            }
            st.next_slot += 1;
            let id = st.next_slot;
            st.slots.insert(id, Slot::default());
            id
        };
        let handler = Arc::new(super::session::Session {
            node: self.clone(),
            slot,
        });
        let created = if self.bug.needs_raw_table() {
            RawInstance::create(handler, self.bug, self.raw_fired.clone()).map(Owned::Raw)
        } else {
            Instance::create(cx, handler).map(Owned::Safe)
        };
        let Ok(owned) = created else {
            self.st.lock().slots.remove(&slot);
            return;
        };
        let opts = RegisterOptions {
            friendly_name: Some(FRIENDLY_NAME.into()),
            luid,
            sddl: Some(SDDL.into()),
        };
        self.buggy_first_register(&owned, &opts);
        match owned.register(&opts) {
            Ok(luid) => {
                if self.bug == Bug::Life2 {
                    // The bug: a second Register "to be sure".
                    let _ = owned.register(&opts);
                }
                let mut st = self.st.lock();
                match st.slots.get_mut(&slot) {
                    Some(s) => {
                        s.luid = luid;
                        s.registered = true;
                        s.owned = Some(owned);
                    }
                    None => {
                        // Cannot happen (only stop removes slots, and stop
                        // does not run inside Register); clean up anyway.
                        drop(st);
                        let _ = owned.deregister();
                        owned.destroy();
                    }
                }
            }
            Err(_) => {
                // E.g. the platform has shut down: nothing to serve here.
                owned.destroy();
                self.st.lock().slots.remove(&slot);
            }
        }
    }

    /// Register mutants: a first, wrong Register (which the platform refuses).
    fn buggy_first_register(&self, owned: &Owned, opts: &RegisterOptions) {
        match self.bug {
            Bug::Reg5 => {
                let mut o = opts.clone();
                o.luid = Some(0x0BAD_C0DE); // an uninitialised LUID
                let _ = owned.register(&o);
            }
            Bug::Reg7 => {
                let _ = mutant_abi::register_raw(owned.as_ref(), opts, 1);
            }
            Bug::Reg8 => {
                let mut o = opts.clone();
                o.sddl = Some(BAD_SDDL.into());
                let _ = owned.register(&o);
            }
            _ => {}
        }
    }

    /// After a platform-ended session: deregister (LIFE-7), destroy, and
    /// open a fresh instance on the same interface unless the platform shut down.
    pub fn replace(self: &Arc<Self>, cx: &Cx, slot: u32, reason: TerminationReason) {
        let old = {
            let mut st = self.st.lock();
            if st.stopped {
                return;
            }
            match st.slots.remove(&slot) {
                Some(s) => s,
                None => return,
            }
        };
        if let Some(owned) = old.owned {
            if self.subtle == Subtle::ReviveAfterFailedActivation
                && reason == TerminationReason::ProviderOtherFailure
            {
                // The bug: tries to revive the instance before giving up on
                // it, but it is still registered.
                let opts = RegisterOptions {
                    friendly_name: Some(FRIENDLY_NAME.into()),
                    luid: Some(old.luid).filter(|l| *l != 0),
                    sddl: Some(SDDL.into()),
                };
                let _ = owned.register(&opts);
            }
            if old.registered {
                let _ = owned.deregister();
            }
            owned.destroy();
        }
        if reason != TerminationReason::PlatformShutdown {
            self.open_instance(cx, Some(old.luid).filter(|l| *l != 0));
        }
    }

    /// The provider is stopped: deregister and destroy every instance,
    /// complete every pended call, give up the IDs, close the port.
    pub fn stop(self: &Arc<Self>, cx: &Cx) {
        let (slots, ops, cleanup) = {
            let mut st = self.st.lock();
            st.stopped = true;
            (
                std::mem::take(&mut st.slots),
                std::mem::take(&mut st.ops),
                std::mem::take(&mut st.cleanup),
            )
        };
        let mut goodbye: Vec<Msg> = Vec::new();
        let mut forgotten = None;
        for (k, s) in slots {
            if self.subtle == Subtle::StopSkipsEnded && s.ended {
                // The bug: an ended session's instance is the replacement
                // timer's job, but no timer runs after a stop.
                continue;
            }
            for (tid, reg) in &s.held {
                goodbye.push(Msg::Unregister {
                    req: 0,
                    tid: *tid,
                    owner: self.owner(&s),
                    reg: *reg,
                });
            }
            let Some(o) = s.owned else { continue };
            if self.bug == Bug::Life8 && forgotten.is_none() {
                // The bug: this instance (and what it has pended) is
                // forgotten, still registered.
                forgotten = Some(k);
                continue;
            }
            if s.registered && self.bug != Bug::Life4 {
                let _ = o.deregister();
                if self.bug == Bug::Life6 {
                    let _ = o.deregister();
                }
            }
            let r = o.as_ref();
            o.destroy();
            match self.bug {
                Bug::Life5 => mutant_abi::destroy_raw(r),
                Bug::Life1 => {
                    let _ = r.deregister();
                }
                _ => {}
            }
        }
        // The sessions are over, so these completions are accepted and
        // ignored (COMP-11) rather than judged.
        for (_, op) in ops {
            // The subtle bug: a pended REMOVE is left for the goodbye's
            // answer, which no one handles once stopped.
            let left_to_the_goodbye = self.subtle == Subtle::StopForgetsRemove
                && matches!(op.kind, OpKind::Remove { .. });
            if Some(op.slot) == forgotten || left_to_the_goodbye {
                std::mem::forget(op.pending);
            } else {
                op.pending.complete(Err(Failure::FAIL));
            }
        }
        for c in cleanup.into_values() {
            goodbye.push(Msg::Unregister {
                req: 0,
                tid: c.tid,
                owner: c.owner,
                reg: c.reg,
            });
        }
        let rv = Node::rendezvous(cx);
        for m in goodbye {
            cx.send_vec(PORT, rv, m.encode());
        }
        cx.unbind(PORT);
    }

    /// TERMINATE: the session is over. Fail what is pended, give up the IDs,
    /// and (for a platform-ended session) replace the instance from a timer.
    pub fn terminated(self: &Arc<Self>, cx: &Cx, slot: u32, reason: TerminationReason) {
        let (ops, jobs) = {
            let mut st = self.st.lock();
            let st = &mut *st;
            let Some(s) = st.slots.get_mut(&slot) else {
                return;
            };
            s.ended = true;
            s.active = false;
            let owner = self.owner(s);
            let held = std::mem::take(&mut s.held);
            let mine: Vec<u64> = st
                .ops
                .iter()
                .filter(|(_, o)| o.slot == slot)
                .map(|(k, _)| *k)
                .collect();
            let ops: Vec<Op> = mine.iter().filter_map(|k| st.ops.remove(k)).collect();
            let mut jobs = Vec::new();
            for (tid, reg) in held {
                jobs.extend(st.add_cleanup(tid, owner, reg));
            }
            for op in &ops {
                // A registration in flight may have landed.
                if let OpKind::Add { tid, reg } | OpKind::Remove { tid, reg } = op.kind {
                    jobs.extend(st.add_cleanup(tid, owner, reg));
                }
            }
            (ops, jobs)
        };
        let activating = ops.iter().any(|op| matches!(op.kind, OpKind::Activate));
        if self.subtle == Subtle::TerminateDrains && !ops.is_empty() {
            // The bug: waits inline for each pended call's worker to notice.
            cx.block_for(Nanos::from_millis(350 * ops.len() as u64));
        }
        for op in ops {
            op.pending.complete(Err(Failure::FAIL));
        }
        for j in jobs {
            self.kick_cleanup(cx, j);
        }
        if self.subtle == Subtle::EndWhileActivating && activating {
            // The bug: the activation worker owns the slot while it
            // activates, and it is told nothing once the call is failed.
            return;
        }
        if self.bug == Bug::Life7 {
            // The bug: cleans up, but only ever deregisters at stop.
            return;
        }
        if reason != TerminationReason::ProviderRequest {
            let node = self.clone();
            cx.after(REPLACE_AFTER, move |cx| node.replace(cx, slot, reason));
        }
    }

    /// Whether a slot takes peer traffic (probes and data): only while
    /// active (DATA-1).
    pub fn receiving(&self, slot: &Slot) -> bool {
        !slot.ended && (slot.active || self.bug == Bug::Data1)
    }

    /// Sends one more unregistration of background job `id` and re-arms its timer.
    pub fn kick_cleanup(self: &Arc<Self>, cx: &Cx, id: u64) {
        let msg = {
            let mut st = self.st.lock();
            let Some(c) = st.cleanup.get_mut(&id) else {
                return;
            };
            c.attempts += 1;
            if c.attempts > CLEANUP_ATTEMPTS {
                st.cleanup.remove(&id);
                return;
            }
            Msg::Unregister {
                req: id,
                tid: c.tid,
                owner: c.owner,
                reg: c.reg,
            }
        };
        cx.send_vec(PORT, Node::rendezvous(cx), msg.encode());
        let node = self.clone();
        cx.after(CLEANUP_EVERY, move |cx| node.kick_cleanup(cx, id));
    }

    /// Hands received bytes to the platform (the receive path's one call).
    pub fn indicate(
        &self,
        inst: InstanceRef,
        local: Tid,
        remote: Tid,
        data: &[u8],
    ) -> Result<(), HRESULT> {
        if self.bug == Bug::Tid2 && inst.indicate(remote, local, data).is_ok() {
            // The bug: the IDs in the order of the sender's view (refused).
            return Ok(());
        }
        if self.bug.raw_indicate() {
            return mutant_abi::indicate(self.bug, inst, local, remote, data);
        }
        inst.indicate(local, remote, data)
    }
}
