//! The reference provider's callbacks: one [`Session`] per instance.
//!
//! Callbacks do bookkeeping only. Work that needs the network is pended:
//! the call's [`cpsim_sim::safe::Pending`] goes into the provider's table and a
//! worker task (`Cx::spawn`) sends the first request; answers and retry
//! timers move it on until someone takes it out of the table and completes
//! it. Calls with nothing to do (TRANSITION_DORMANT, a REMOVE of an ID that
//! is not held, a REACH of the instance's own ID) finish synchronously.

use super::node::{Node, Op, OpKind, Stage};
use super::{Bug, Subtle};
use cpsim_sim::safe::{
    Buffers, Completion, Failure, InstanceRef, Reply, SessionHandler, TerminationReason,
};
use cpsim_sim::{Cx, Nanos, Tid};
use std::sync::Arc;

/// The handler of one instance: its provider and its slot there.
pub struct Session {
    pub node: Arc<Node>,
    pub slot: u32,
}

impl Session {
    /// Pends `done` with `kind` as its work; `work == false` leaves it
    /// without a worker (only the TIME-1 mutant does that).
    fn pend(&self, cx: &Cx, done: Completion, kind: OpKind, work: bool) -> Reply {
        let mut st = self.node.st.lock();
        let live = st.slots.get(&self.slot).is_some_and(|s| !s.ended);
        if st.stopped || !live {
            return done.fail(Failure::FAIL);
        }
        let req = st.id();
        let (reply, pending) = done.pend();
        let mut work = work;
        if let OpKind::Send { remote, .. } = &kind {
            let to_same_peer = |o: &Op| {
                o.slot == self.slot
                    && matches!(&o.kind, OpKind::Send { remote: r, .. } if r == remote)
            };
            if self.node.subtle == Subtle::SendPerPeer {
                // The bug: one SEND per peer in the table; a newer one
                // supersedes the one in flight, whose completion is lost.
                let older: Vec<u64> = st
                    .ops
                    .iter()
                    .filter(|(_, o)| to_same_peer(o))
                    .map(|(k, _)| *k)
                    .collect();
                for k in older {
                    st.ops.remove(&k);
                }
            }
            if self.node.subtle == Subtle::SendWindow {
                // At most two SENDs per peer in flight; the others wait.
                let in_flight = st
                    .ops
                    .iter()
                    .filter(|(k, o)| to_same_peer(o) && !st.parked.contains(k))
                    .count();
                if in_flight >= 2 {
                    st.parked.insert(req);
                    work = false;
                }
            }
        }
        st.ops.insert(
            req,
            Op {
                slot: self.slot,
                pending,
                kind,
                attempt: 0,
                epoch: 0,
            },
        );
        drop(st);
        if work {
            let node = self.node.clone();
            cx.spawn(move |cx| node.transmit(cx, req));
        }
        reply
    }
}

impl SessionHandler for Session {
    fn establish(&self, cx: &Cx, _inst: &InstanceRef) {
        if self.node.bug == Bug::Sess7 && self.node.st.lock().fired.insert("sess-7") {
            // The bug: a slow warm-up done inline.
            cx.block_for(Nanos::from_secs(2));
        }
    }

    fn terminate(&self, cx: &Cx, _inst: &InstanceRef, reason: TerminationReason) {
        self.node.terminated(cx, self.slot, reason);
    }

    fn transition_active(&self, cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        // Active once the rendezvous answers: then peers can be reached (STATE-6).
        self.pend(cx, done, OpKind::Activate, true)
    }

    fn transition_dormant(&self, cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        // Nothing to release: registrations stay (the IDs are still added),
        // peer data is refused until the next activation.
        let mut st = self.node.st.lock();
        let Some(s) = st.slots.get_mut(&self.slot) else {
            return done.ok();
        };
        s.active = false;
        if self.node.subtle == Subtle::SeenResetAtDormancy {
            // The bug: "a dormant instance takes no data", so the memory of
            // indicated datagram numbers is started afresh; a retransmission
            // of one indicated before the dormancy is taken for new.
            st.seen.clear();
        }
        let Some(s) = st.slots.get_mut(&self.slot) else {
            return done.ok();
        };
        if self.node.subtle == Subtle::SettleDormancy {
            const SETTLE: Nanos = Nanos::from_millis(20);
            let now = cx.now();
            if let Some(at) = s.activated_at.filter(|at| now < at.saturating_add(SETTLE)) {
                // Let a fresh link settle before going dormant.
                let (reply, pending) = done.pend();
                s.settling = Some(pending);
                drop(st);
                let (node, slot) = (self.node.clone(), self.slot);
                cx.after(at.saturating_add(SETTLE).saturating_sub(now), move |_| {
                    node.settled(slot)
                });
                return reply;
            }
        }
        done.ok()
    }

    fn add_transport_id(&self, cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let reg = {
            let mut st = self.node.st.lock();
            if let Some(s) = st.slots.get_mut(&self.slot) {
                s.first.get_or_insert(id);
                if s.held.contains_key(&id) {
                    return done.ok();
                }
            }
            st.id()
        };
        self.pend(cx, done, OpKind::Add { tid: id, reg }, true)
    }

    fn remove_transport_id(
        &self,
        cx: &Cx,
        _inst: &InstanceRef,
        id: Tid,
        done: Completion,
    ) -> Reply {
        let reg = self
            .node
            .st
            .lock()
            .slots
            .get(&self.slot)
            .and_then(|s| s.held.get(&id).copied());
        match reg {
            None => done.ok(),
            Some(reg) => self.pend(cx, done, OpKind::Remove { tid: id, reg }, true),
        }
    }

    fn reach_transport_id(&self, cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        if self.node.bug == Bug::Crash1 && !id.is_v4() {
            // The bug: IPv4-only parsing of an ID.
            let octets: [u8; 4] = id.as_bytes().try_into().expect("an IPv4 transport ID");
            let _ = octets;
        }
        let own = {
            let st = self.node.st.lock();
            st.slots
                .get(&self.slot)
                .is_some_and(|s| s.held.contains_key(&id))
        };
        if own {
            // Our own address is not reachable *through* this instance (TID-6).
            return done.fail(Failure::FAIL);
        }
        let work = !(self.node.bug == Bug::Time1 && self.node.st.lock().fired.insert("time-1"));
        self.pend(
            cx,
            done,
            OpKind::Reach {
                tid: id,
                stage: Stage::Lookup,
            },
            work,
        )
    }

    fn send_buffers(
        &self,
        cx: &Cx,
        _inst: &InstanceRef,
        local: Tid,
        remote: Tid,
        data: &Buffers<'_>,
        done: Completion,
    ) -> Reply {
        if self.node.bug == Bug::State6 {
            // The bug: activation succeeded, but the data path does not work.
            return done.fail(Failure::FAIL);
        }
        if self.node.subtle == Subtle::ThirdSendAfterReactivation {
            let mut st = self.node.st.lock();
            if let Some(s) = st.slots.get_mut(&self.slot) {
                if let Some(n) = s.warm_sends {
                    // The bug: the first SENDs after a re-activation time
                    // the link in a two-entry table, and nothing stops at 2.
                    s.warm_rtt[usize::from(n)] = cx.now();
                    s.warm_sends = Some(n + 1);
                }
            }
        }
        let route = self
            .node
            .st
            .lock()
            .slots
            .get(&self.slot)
            .and_then(|s| s.routes.get(&remote).copied());
        let stage = match route {
            Some(node) => Stage::Data { node },
            None => Stage::Lookup,
        };
        // Copied now: the chain is the platform's only until we return (COMP-7).
        let mut payload = data.to_vec();
        if self.node.subtle == Subtle::ShortLength {
            // The bug: the frame's length field keeps 15 bits.
            payload.truncate(payload.len() & 0x7FFF);
        }
        if self.node.subtle == Subtle::FrameOverflow {
            // The bug: the frame buffer was sized for the largest datagram
            // minus a header that is not written here.
            let mut frame = vec![0u8; 64 * 1024 - 64];
            frame[..payload.len()].copy_from_slice(&payload);
        }
        let kind = OpKind::Send {
            local,
            remote,
            payload,
            stage,
            cached: route.is_some(),
        };
        self.pend(cx, done, kind, true)
    }
}
