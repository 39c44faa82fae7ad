//! The overlay's network side: sending a pended call's request (and again,
//! on a timer, until it is answered or given up), and handling every
//! datagram that arrives on the peer port.
//!
//! Every answer is matched to its pended call by request number and stage;
//! an answer for a call that is gone (completed, given up, or failed by
//! TERMINATE or stop) is ignored, except a registration that nobody waits
//! for any more, which is undone in the background.

use super::node::{attempts, Node, OpKind, Stage, CHANNEL_FRESH, FRESH, PORT, RETRY};
use super::wire::{DataRef, Msg};
use super::{Bug, Subtle};
use cpsim_sim::net::NetAddr;
use cpsim_sim::safe::Failure;
use cpsim_sim::{Cx, Nanos, Tid};
use std::sync::Arc;

impl Node {
    /// Sends the request of pended call `req`'s current stage and arms its
    /// retry timer.
    pub fn transmit(self: &Arc<Self>, cx: &Cx, req: u64) {
        let now = cx.now();
        let rv = Node::rendezvous(cx);
        if self.activate_at_once(now, req) {
            return;
        }
        let (to, datagram, epoch, wait) = {
            let mut st = self.st.lock();
            let st = &mut *st;
            let Some(op) = st.ops.get_mut(&req) else {
                return;
            };
            let Some(slot) = st.slots.get(&op.slot) else {
                return;
            };
            let owner = self.owner(slot);
            op.attempt += 1;
            let (to, datagram) = match &op.kind {
                OpKind::Activate => (rv, Msg::Ping { req }.encode()),
                OpKind::Add { tid, reg } => (
                    rv,
                    Msg::Register {
                        req,
                        tid: *tid,
                        owner,
                        reg: *reg,
                    }
                    .encode(),
                ),
                OpKind::Remove { tid, reg } => (
                    rv,
                    Msg::Unregister {
                        req,
                        tid: *tid,
                        owner,
                        reg: *reg,
                    }
                    .encode(),
                ),
                OpKind::Reach {
                    tid,
                    stage: Stage::Lookup,
                }
                | OpKind::Send {
                    remote: tid,
                    stage: Stage::Lookup,
                    ..
                } => (rv, Msg::Lookup { req, tid: *tid }.encode()),
                OpKind::Reach {
                    tid,
                    stage: Stage::Probe { node } | Stage::Data { node },
                } => (
                    Node::peer(*node),
                    Msg::Probe {
                        req,
                        tid: *tid,
                        sent: now.0,
                        asker: op.slot,
                    }
                    .encode(),
                ),
                OpKind::Send {
                    local,
                    remote,
                    payload,
                    stage: Stage::Probe { node } | Stage::Data { node },
                    ..
                } => {
                    // Written from the payload where it lies (no copy of it
                    // into a message first).
                    let data = DataRef {
                        req,
                        incarnation: self.incarnation,
                        dst: *remote,
                        src: *local,
                        payload,
                    };
                    (Node::peer(*node), data.encode())
                }
            };
            let mut wait = RETRY;
            if self.subtle == Subtle::RetryBackoff && to == rv {
                // The bug: the shared rendezvous is spared by an exponential
                // backoff, which nobody checked against the platform's limits.
                wait = Nanos(RETRY.0 << (op.attempt - 1).min(16));
            }
            (to, datagram, op.epoch, wait)
        };
        cx.send_vec(PORT, to, datagram);
        let node = self.clone();
        cx.after(wait, move |cx| node.retry(cx, req, epoch));
    }

    /// An activation right after the rendezvous answered needs no round
    /// trip: the worker completes it at once (possibly before the callback
    /// has returned, which the platform accepts: COMP-10).
    fn activate_at_once(&self, now: Nanos, req: u64) -> bool {
        let op = {
            let mut st = self.st.lock();
            let fresh = st
                .last_pong
                .is_some_and(|t| now.saturating_sub(t) <= CHANNEL_FRESH);
            let first = st.ops.get(&req).is_some_and(|o| o.attempt == 0);
            if !fresh || !first {
                return false;
            }
            let Some(op) = st.take_op(req, |k| matches!(k, OpKind::Activate)) else {
                return false;
            };
            if let Some(s) = st.slots.get_mut(&op.slot).filter(|s| !s.ended) {
                s.active = true;
                if self.subtle == Subtle::ThirdSendAfterReactivation && s.activated_at.is_some() {
                    // A re-activation: time the link again from its first SENDs.
                    s.warm_sends = Some(0);
                }
                s.activated_at = Some(now);
            }
            op
        };
        op.pending.complete(Ok(()));
        true
    }

    /// A retry timer: send again, or give up after [`attempts`] sends.
    fn retry(self: &Arc<Self>, cx: &Cx, req: u64, epoch: u32) {
        let again = match self.st.lock().ops.get(&req) {
            Some(op) if op.epoch == epoch => op.attempt < attempts(&op.kind),
            _ => return,
        };
        if again {
            return self.transmit(cx, req);
        }
        if self.forget_route(req, Some(epoch)) {
            return self.advance(cx, req, Stage::Lookup);
        }
        let (op, jobs) = {
            let mut guard = self.st.lock();
            let st = &mut *guard;
            if st.ops.get(&req).is_none_or(|o| o.epoch != epoch) {
                return;
            }
            let op = st.ops.remove(&req).expect("checked");
            let mut jobs = Vec::new();
            if let OpKind::Add { tid, reg } | OpKind::Remove { tid, reg } = op.kind {
                if let Some(slot) = st.slots.get_mut(&op.slot) {
                    let owner = self.owner(slot);
                    if matches!(op.kind, OpKind::Remove { .. }) {
                        // The platform forgets the ID whatever the status (TID-5).
                        slot.release(&tid);
                    }
                    // The rendezvous may have acted on a request whose answer was lost.
                    jobs.extend(st.add_cleanup(tid, owner, reg));
                }
            }
            (op, jobs)
        };
        op.pending.complete(Err(Failure::FAIL));
        for j in jobs {
            self.kick_cleanup(cx, j);
        }
    }

    /// A SEND that started from a remembered route got no answer from
    /// that node (or was refused by it): forget the route, and say whether
    /// to look the ID up again (once per SEND). `epoch`: only if the SEND
    /// is still in that stage.
    fn forget_route(&self, req: u64, epoch: Option<u32>) -> bool {
        let mut guard = self.st.lock();
        let st = &mut *guard;
        let Some(op) = st
            .ops
            .get_mut(&req)
            .filter(|o| epoch.is_none_or(|e| o.epoch == e))
        else {
            return false;
        };
        let OpKind::Send {
            remote,
            cached: cached @ true,
            ..
        } = &mut op.kind
        else {
            return false;
        };
        *cached = false;
        if let Some(s) = st.slots.get_mut(&op.slot) {
            s.routes.remove(remote);
        }
        true
    }

    /// Starts the oldest SEND to `remote` waiting for a window (send-window
    /// variant).
    fn resume_parked(self: &Arc<Self>, cx: &Cx, slot: u32, remote: Option<Tid>) {
        let next = {
            let mut st = self.st.lock();
            let st = &mut *st;
            let found = st.parked.iter().copied().find(|k| {
                st.ops.get(k).is_some_and(|o| {
                    o.slot == slot
                        && matches!(&o.kind, OpKind::Send { remote: r, .. } if Some(*r) == remote)
                })
            });
            if let Some(k) = found {
                st.parked.remove(&k);
            }
            found
        };
        if let Some(req) = next {
            let node = self.clone();
            cx.spawn(move |cx| node.transmit(cx, req));
        }
    }

    /// The settle timer of a TRANSITION_DORMANT pended right after an
    /// activation (settle-dormancy variant).
    pub fn settled(&self, slot: u32) {
        let pending = {
            let mut st = self.st.lock();
            match st.slots.get_mut(&slot) {
                // The bug: the dormancy itself cleared `active`.
                Some(s) if s.active => s.settling.take(),
                _ => None,
            }
        };
        if let Some(p) = pending {
            p.complete(Ok(()));
        }
    }

    /// Moves a REACH or SEND to its next stage and sends at once.
    fn advance(self: &Arc<Self>, cx: &Cx, req: u64, next: Stage) {
        {
            let mut st = self.st.lock();
            let Some(op) = st.ops.get_mut(&req) else {
                return;
            };
            match &mut op.kind {
                OpKind::Reach { stage, .. } | OpKind::Send { stage, .. } => *stage = next,
                _ => return,
            }
            op.attempt = 0;
            op.epoch += 1;
        }
        self.transmit(cx, req);
    }

    /// Everything that arrives on the peer port.
    pub fn on_datagram(self: &Arc<Self>, cx: &Cx, from: NetAddr, data: &[u8]) {
        let Some(msg) = Msg::decode(data) else {
            return;
        };
        match msg {
            Msg::Pong { req } => self.on_pong(cx.now(), req),
            Msg::RegisterAck {
                req,
                tid,
                owner,
                reg,
                ok,
            } => self.on_register_ack(cx, req, tid, owner, reg, ok),
            Msg::UnregisterAck { req } => self.on_unregister_ack(req),
            Msg::LookupAck { req, node } => self.on_lookup_ack(cx, req, node),
            Msg::Probe {
                req,
                tid,
                sent,
                asker,
            } => {
                // An instance does not reach itself: a probe from this very
                // node does not count the asking slot (TID-6).
                let asking = (from.node == self.me).then_some(asker);
                let held = {
                    let st = self.st.lock();
                    st.slots.iter().any(|(k, s)| {
                        Some(*k) != asking && self.receiving(s) && s.held.contains_key(&tid)
                    })
                };
                cx.send_vec(PORT, from, Msg::ProbeAck { req, held, sent }.encode());
            }
            Msg::ProbeAck { req, held, sent } => self.on_probe_ack(cx, from, req, held, sent),
            Msg::Data {
                req,
                incarnation,
                dst,
                src,
                payload,
            } => {
                let ok = self.on_data(cx, from, req, incarnation, dst, src, payload);
                cx.send_vec(PORT, from, Msg::DataAck { req, ok }.encode());
            }
            Msg::DataAck { req, ok } => {
                let in_data = self.st.lock().ops.get(&req).is_some_and(|o| {
                    matches!(
                        o.kind,
                        OpKind::Send {
                            stage: Stage::Data { .. },
                            ..
                        }
                    )
                });
                if !ok && in_data && self.forget_route(req, None) {
                    // Refused by a node that no longer holds the ID: the
                    // holder changed since the route was learnt.
                    return self.advance(cx, req, Stage::Lookup);
                }
                let op = self.st.lock().take_op(req, |k| {
                    matches!(
                        k,
                        OpKind::Send {
                            stage: Stage::Data { .. },
                            ..
                        }
                    )
                });
                if let Some(op) = op {
                    let remote = match &op.kind {
                        OpKind::Send { remote, .. } => Some(*remote),
                        _ => None,
                    };
                    op.pending
                        .complete(if ok { Ok(()) } else { Err(Failure::FAIL) });
                    if ok && self.subtle == Subtle::SendWindow {
                        // An acknowledgement opens the window for a waiting
                        // SEND (the bug: a failure does not).
                        self.resume_parked(cx, op.slot, remote);
                    }
                }
            }
            // Requests meant for the rendezvous: not ours to answer.
            Msg::Ping { .. }
            | Msg::Register { .. }
            | Msg::Unregister { .. }
            | Msg::Lookup { .. } => {}
        }
    }

    fn on_pong(&self, now: Nanos, req: u64) {
        let op = {
            let mut st = self.st.lock();
            st.last_pong = Some(now);
            let Some(op) = st.take_op(req, |k| matches!(k, OpKind::Activate)) else {
                return;
            };
            if let Some(s) = st.slots.get_mut(&op.slot).filter(|s| !s.ended) {
                s.active = true;
                if self.subtle == Subtle::ThirdSendAfterReactivation && s.activated_at.is_some() {
                    // A re-activation: time the link again from its first SENDs.
                    s.warm_sends = Some(0);
                }
                s.activated_at = Some(now);
            }
            op
        };
        op.pending.complete(Ok(()));
    }

    fn on_register_ack(
        self: &Arc<Self>,
        cx: &Cx,
        req: u64,
        tid: Tid,
        owner: super::wire::Owner,
        reg: u64,
        ok: bool,
    ) {
        let (op, job) = {
            let mut st = self.st.lock();
            match st.take_op(
                req,
                |k| matches!(k, OpKind::Add { tid: t, .. } if *t == tid),
            ) {
                Some(op) => {
                    if ok {
                        if let Some(s) = st.slots.get_mut(&op.slot).filter(|s| !s.ended) {
                            s.hold(tid, reg);
                        }
                    }
                    (Some(op), None)
                }
                None => {
                    // A late or duplicated answer. If no live instance holds
                    // the ID under this registration (or a newer one), nobody
                    // waits for it any more: undo it.
                    let kept = st
                        .slots
                        .values()
                        .any(|s| !s.ended && s.held.get(&tid).is_some_and(|r| *r >= reg));
                    let orphan = ok && owner.node == self.me && !kept;
                    (
                        None,
                        orphan.then(|| st.add_cleanup(tid, owner, reg)).flatten(),
                    )
                }
            }
        };
        if let Some(op) = op {
            op.pending
                .complete(if ok { Ok(()) } else { Err(Failure::FAIL) });
        }
        if let Some(j) = job {
            self.kick_cleanup(cx, j);
        }
    }

    fn on_unregister_ack(&self, req: u64) {
        let op = {
            let mut st = self.st.lock();
            if st.cleanup.remove(&req).is_some() {
                return;
            }
            let Some(op) = st.take_op(req, |k| matches!(k, OpKind::Remove { .. })) else {
                return;
            };
            if let (OpKind::Remove { tid, .. }, Some(s)) = (&op.kind, st.slots.get_mut(&op.slot)) {
                s.release(tid);
            }
            op
        };
        op.pending.complete(Ok(()));
    }

    fn on_lookup_ack(self: &Arc<Self>, cx: &Cx, req: u64, node: Option<u8>) {
        let is_lookup = |k: &OpKind| {
            matches!(
                k,
                OpKind::Reach {
                    stage: Stage::Lookup,
                    ..
                } | OpKind::Send {
                    stage: Stage::Lookup,
                    ..
                }
            )
        };
        match node {
            Some(n) => {
                let next = match self.st.lock().ops.get(&req).map(|o| &o.kind) {
                    Some(k @ OpKind::Reach { .. }) if is_lookup(k) => Stage::Probe { node: n },
                    Some(k @ OpKind::Send { .. }) if is_lookup(k) => Stage::Data { node: n },
                    _ => return,
                };
                self.advance(cx, req, next);
            }
            None => {
                // Nobody holds it: REACH and SEND fail.
                let op = self.st.lock().take_op(req, is_lookup);
                if let Some(op) = op {
                    let r = match op.kind {
                        OpKind::Reach { .. } => self.reach_result(false),
                        _ => Err(Failure::FAIL),
                    };
                    op.pending.complete(r);
                }
            }
        }
    }

    /// REACH's answer from what the holder said (TID-6): success only if a
    /// node answered that it holds the ID on an active instance.
    fn reach_result(&self, held: bool) -> Result<(), Failure> {
        if held || self.bug == Bug::Tid6 {
            Ok(())
        } else {
            Err(Failure::FAIL)
        }
    }

    fn on_probe_ack(&self, cx: &Cx, from: NetAddr, req: u64, held: bool, sent: u64) {
        // The answer describes the peer at about the middle of the round
        // trip; trust it only if that is recent enough.
        let now = cx.now();
        let age = Nanos(now.saturating_sub(Nanos(sent)).0 / 2);
        let fresh = sent <= now.0 && age <= FRESH;
        if !fresh {
            // Too old to tell the truth about now: the retry timer asks again.
            return;
        }
        let op = {
            let mut st = self.st.lock();
            let Some(op) = st.take_op(req, |k| {
                matches!(k, OpKind::Reach { stage: Stage::Probe { node }, .. } if *node == from.node)
            }) else {
                return;
            };
            if held {
                if let (OpKind::Reach { tid, .. }, Some(s)) = (&op.kind, st.slots.get_mut(&op.slot))
                {
                    s.routes.insert(*tid, from.node);
                }
            }
            op
        };
        op.pending.complete(self.reach_result(held));
    }

    /// Peer data for one of this host's IDs: indicate it (once) if the
    /// instance holding `dst` is active. Returns whether the bytes are
    /// with the platform.
    #[allow(clippy::too_many_arguments)]
    fn on_data(
        &self,
        cx: &Cx,
        from: NetAddr,
        req: u64,
        incarnation: u64,
        dst: Tid,
        src: Tid,
        mut payload: Vec<u8>,
    ) -> bool {
        let key = if self.subtle == Subtle::DedupPerNode {
            // The bug: datagram numbers restart with the sender's provider.
            (from.node, 0)
        } else {
            (from.node, incarnation)
        };
        // The subtle bug: the sequence field on the wire is one byte.
        let req = if self.subtle == Subtle::ByteSequence {
            req & 0xff
        } else {
            req
        };
        let (inst, local) = {
            let mut st = self.st.lock();
            if self.subtle == Subtle::PeerTable {
                // The bug: three entries by node number; a second node on
                // a claimed entry is taken for a stale peer, acknowledged
                // so that it stops, and dropped.
                let entry = &mut st.peer_table[usize::from(from.node % 3)];
                match *entry {
                    Some(n) if n != from.node => return true,
                    _ => *entry = Some(from.node),
                }
            }
            if self.subtle == Subtle::IdlePeer {
                // The bug: after three minutes of silence the peer is
                // taken to be gone, and its next datagram for its
                // handshake: acknowledged and not indicated.
                let now = cx.now();
                let idle = st
                    .last_heard
                    .insert(from.node, now)
                    .is_some_and(|last| now.saturating_sub(last) >= Nanos::from_secs(180));
                if idle {
                    return true;
                }
            }
            if st.seen.get(&key).is_some_and(|s| s.contains(req)) {
                // A retransmission of what was already indicated.
                return true;
            }
            if self.subtle == Subtle::ReplayWindow
                && st
                    .seen
                    .get(&key)
                    .and_then(|s| s.newest())
                    .is_some_and(|newest| req + 64 < newest)
            {
                // The bug: far behind the newest, so taken for a replay.
                return true;
            }
            let found = if self.subtle == Subtle::IdTable {
                // The bug: the entry of the destination's last byte is
                // taken for the destination if it is on the same interface
                // (all bytes but the last equal), as if the index were the
                // whole last byte and not its low three bits.
                let same_interface = |t: &Tid| {
                    let (a, b) = (t.as_bytes(), dst.as_bytes());
                    a.len() == b.len() && a[..a.len() - 1] == b[..b.len() - 1]
                };
                st.slots.values().filter(|s| !s.ended).find_map(|s| {
                    s.id_table[super::node::Slot::table_index(&dst)]
                        .filter(same_interface)
                        .map(|local| (s, local))
                })
            } else {
                // The first-id-kept variant's bug: the instance's first ID
                // is its identity, taken as its own even once removed.
                let kept = |s: &super::node::Slot| {
                    self.subtle == Subtle::FirstIdKept && s.first_removed && s.first == Some(dst)
                };
                st.slots
                    .values()
                    .find(|s| !s.ended && (s.held.contains_key(&dst) || kept(s)))
                    .map(|s| (s, dst))
            }
            .and_then(|(s, local)| {
                let usable = self.receiving(s);
                s.owned
                    .as_ref()
                    .filter(|_| usable)
                    .map(|o| (o.as_ref(), local))
            });
            let Some((inst, local)) = found else {
                // Not ours, or dormant: dropped (DATA-1), and the sender is told.
                return false;
            };
            if self.subtle == Subtle::Tombstone
                && st.slots.values().any(|s| {
                    !s.ended && s.held.contains_key(&local) && s.tombstones.contains(&local)
                })
            {
                // The bug: data for an ID once removed is taken for data
                // to an address that is gone, acknowledged so that the
                // peer stops sending, and dropped; the tombstone was not
                // cleared when the same ID was added again.
                return true;
            }
            if self.subtle == Subtle::DeafWhileRemoving
                && st
                    .ops
                    .values()
                    .any(|o| matches!(o.kind, OpKind::Remove { .. }))
            {
                // The bug: the node's address table is rebuilt while any
                // address goes away, and data for every address meanwhile
                // is acknowledged (no resend into the change) and dropped.
                return true;
            }
            if self.subtle == Subtle::OneByteKeepalive && payload.len() == 1 {
                // The bug: the overlay's keepalive is one byte long.
                return true;
            }
            if self.bug == Bug::Data5 {
                st.received += 1;
                if st.received % 3 == 1 {
                    if let Some(b) = payload.first_mut() {
                        *b ^= 0x01;
                    }
                }
            }
            (inst, local)
        };
        if self.indicate(inst, local, src, &payload).is_err() {
            return false;
        }
        let mut st = self.st.lock();
        st.seen.entry(key).or_default().insert(req, cx.now());
        true
    }
}
