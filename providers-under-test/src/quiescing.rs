//! `quiescing`: a correct provider on the safe API that pends every call and
//! completes it from a timer 0-3 ms later, and that goes quiet the moment it
//! is asked to:
//!
//! - TRANSITION_ACTIVE and ADD take effect when they complete (before that
//!   the platform does not count the instance active, or the ID its own);
//! - TRANSITION_DORMANT and REMOVE take effect when they are *called*: from
//!   then on the instance refuses data (for that ID), answers REACH and SEND
//!   towards it with a failure, and an ADD of that ID elsewhere succeeds.
//!
//! Nothing in the contract forbids going quiet early, so certification must
//! not count a peer with a TRANSITION_DORMANT or REMOVE in flight as surely
//! reachable (STATE-6), a datagram it drops as lost (DATA-5), or its ID as
//! still held (TID-4, TID-6): see DECISIONS in `cpsim_sim::rules`.

use cpsim_sim::safe::{
    Buffers, Completion, Failure, Instance, InstanceRef, Pending, RegisterOptions, Reply,
    SessionHandler, TerminationReason,
};
use cpsim_sim::{Cx, Nanos, NetAddr, Provider, ProviderFactory, Tid};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub const NAME: &str = "quiescing";
const PORT: u16 = 4300;

/// A fresh factory.
pub fn factory() -> Arc<dyn ProviderFactory> {
    Arc::new(QuiescingFactory::default())
}

#[derive(Default)]
struct Directory {
    /// ID -> (holder, node, confirmed: its ADD completed).
    holders: BTreeMap<Tid, (u64, u8, bool)>,
    active: BTreeSet<u64>,
    next_key: u64,
}

impl Directory {
    fn reachable(&self, asker: u64, id: Tid) -> Option<u8> {
        self.holders
            .get(&id)
            .filter(|(h, _, ok)| *ok && *h != asker && self.active.contains(h))
            .map(|(_, n, _)| *n)
    }
    fn forget(&mut self, key: u64) {
        self.holders.retain(|_, (h, _, _)| *h != key);
        self.active.remove(&key);
    }
}

#[derive(Default)]
pub struct QuiescingFactory {
    dir: Mutex<Arc<Mutex<Directory>>>,
}

impl ProviderFactory for QuiescingFactory {
    fn name(&self) -> String {
        NAME.into()
    }
    fn infrastructure(&self, _cx: &Cx) {
        *self.dir.lock() = Arc::default();
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(Quiescing {
            dir: self.dir.lock().clone(),
            node: None,
        })
    }
}

struct Quiescing {
    dir: Arc<Mutex<Directory>>,
    node: Option<Arc<Node>>,
}

struct Node {
    me: u8,
    incarnation: u64,
    dir: Arc<Mutex<Directory>>,
    st: Mutex<NodeState>,
}

type Effect = Box<dyn FnOnce(&Node) + Send>;
/// A pended call: its token, its result, and what its success changes.
type Pended = (Pending, Result<(), Failure>, Option<Effect>);

#[derive(Default)]
struct NodeState {
    stopped: bool,
    next_msg: u64,
    next_call: u64,
    /// key -> (instance, LUID)
    insts: BTreeMap<u64, (Instance, u64)>,
    /// Pended calls: their token, result, and what success changes.
    pended: BTreeMap<u64, Pended>,
    seen: BTreeMap<(u8, u64), BTreeSet<u64>>,
}

impl Provider for Quiescing {
    fn start(&mut self, cx: &Cx) {
        let node = Arc::new(Node {
            me: cx.host_index(),
            incarnation: cx.random(),
            dir: self.dir.clone(),
            st: Mutex::default(),
        });
        let rx = node.clone();
        let _ = cx.bind(PORT, move |_cx, from, data| rx.on_datagram(from, data));
        node.open(cx, 0);
        self.node = Some(node);
    }

    fn stop(&mut self, cx: &Cx) {
        let Some(node) = self.node.take() else { return };
        let ids: Vec<u64> = {
            let mut st = node.st.lock();
            st.stopped = true;
            st.pended.keys().copied().collect()
        };
        for id in ids {
            node.complete(id);
        }
        let insts = std::mem::take(&mut node.st.lock().insts);
        for (key, (inst, _)) in insts {
            node.dir.lock().forget(key);
            let _ = inst.deregister();
            inst.destroy();
        }
        cx.unbind(PORT);
    }
}

impl Node {
    fn open(self: &Arc<Self>, cx: &Cx, luid: u64) {
        if self.st.lock().stopped {
            return;
        }
        let key = {
            let mut d = self.dir.lock();
            d.next_key += 1;
            d.next_key
        };
        let h = Arc::new(Handler {
            node: self.clone(),
            key,
        });
        let Ok(inst) = Instance::create(cx, h) else {
            return;
        };
        let opts = RegisterOptions {
            luid: (luid != 0).then_some(luid),
            ..RegisterOptions::default()
        };
        match inst.register(&opts) {
            Ok(l) => {
                self.st.lock().insts.insert(key, (inst, l));
            }
            Err(_) => inst.destroy(),
        }
    }

    /// After a platform-ended session: deregister, destroy, open another.
    fn replace(self: &Arc<Self>, cx: &Cx, key: u64, reopen: bool) {
        let old = {
            let mut st = self.st.lock();
            if st.stopped {
                return;
            }
            st.insts.remove(&key)
        };
        let Some((inst, luid)) = old else { return };
        let _ = inst.deregister();
        inst.destroy();
        if reopen {
            self.open(cx, luid);
        }
    }

    /// Completes pended call `id` (once), applying its effect first.
    fn complete(&self, id: u64) {
        let e = self.st.lock().pended.remove(&id);
        if let Some((p, r, fx)) = e {
            if let (Ok(()), Some(f)) = (r, fx) {
                f(self);
            }
            p.complete(r);
        }
    }

    fn on_datagram(&self, from: NetAddr, data: &[u8]) {
        let Some(m) = Msg::decode(data) else { return };
        let sender = (from.node, m.incarnation);
        let target = {
            let st = self.st.lock();
            if st.seen.get(&sender).is_some_and(|s| s.contains(&m.number)) {
                return;
            }
            let d = self.dir.lock();
            st.insts
                .iter()
                .find(|(key, _)| {
                    d.active.contains(key)
                        && d.holders
                            .get(&m.to)
                            .is_some_and(|(h, _, ok)| *ok && h == *key)
                })
                .map(|(_, (i, _))| i.as_ref())
        };
        let Some(t) = target else { return };
        if t.indicate(m.to, m.from, &m.payload).is_ok() {
            let mut st = self.st.lock();
            let s = st.seen.entry(sender).or_default();
            s.insert(m.number);
            if s.len() > 4096 {
                s.pop_first();
            }
        }
    }
}

struct Handler {
    node: Arc<Node>,
    key: u64,
}

impl Handler {
    /// Pends the call; a timer 0-3 ms later applies `fx` (on success) and
    /// completes it.
    fn later(
        &self,
        cx: &Cx,
        done: Completion,
        r: Result<(), Failure>,
        fx: Option<Effect>,
    ) -> Reply {
        let (reply, p) = done.pend();
        let id = {
            let mut st = self.node.st.lock();
            st.next_call += 1;
            let id = st.next_call;
            st.pended.insert(id, (p, r, fx));
            id
        };
        let node = self.node.clone();
        cx.after(Nanos::from_micros(cx.random() % 3_000), move |_| {
            node.complete(id)
        });
        reply
    }
}

impl SessionHandler for Handler {
    fn terminate(&self, cx: &Cx, _inst: &InstanceRef, reason: TerminationReason) {
        self.node.dir.lock().forget(self.key);
        if reason != TerminationReason::ProviderRequest {
            let (node, key) = (self.node.clone(), self.key);
            let reopen = reason != TerminationReason::PlatformShutdown;
            cx.after(Nanos::from_millis(1), move |cx| {
                node.replace(cx, key, reopen)
            });
        }
    }

    fn transition_active(&self, cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        let key = self.key;
        let fx: Effect = Box::new(move |n| {
            n.dir.lock().active.insert(key);
        });
        self.later(cx, done, Ok(()), Some(fx))
    }

    fn transition_dormant(&self, cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        // Quiet at once.
        self.node.dir.lock().active.remove(&self.key);
        self.later(cx, done, Ok(()), None)
    }

    fn add_transport_id(&self, cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let ok = {
            let mut d = self.node.dir.lock();
            match d.holders.get(&id) {
                Some((h, _, _)) if *h != self.key => false,
                _ => {
                    // Reserved now, usable once ADD completes.
                    d.holders.insert(id, (self.key, self.node.me, false));
                    true
                }
            }
        };
        let key = self.key;
        let fx: Effect = Box::new(move |n| {
            if let Some((h, _, ok)) = n.dir.lock().holders.get_mut(&id) {
                if *h == key {
                    *ok = true;
                }
            }
        });
        let r = if ok { Ok(()) } else { Err(Failure::FAIL) };
        self.later(cx, done, r, Some(fx))
    }

    fn remove_transport_id(
        &self,
        cx: &Cx,
        _inst: &InstanceRef,
        id: Tid,
        done: Completion,
    ) -> Reply {
        // Given up at once.
        let mut d = self.node.dir.lock();
        if d.holders.get(&id).is_some_and(|(h, _, _)| *h == self.key) {
            d.holders.remove(&id);
        }
        drop(d);
        self.later(cx, done, Ok(()), None)
    }

    fn reach_transport_id(&self, cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let r = self.node.dir.lock().reachable(self.key, id);
        self.later(cx, done, r.map(|_| ()).ok_or(Failure::FAIL), None)
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
        let Some(to) = self.node.dir.lock().reachable(self.key, remote) else {
            return self.later(cx, done, Err(Failure::FAIL), None);
        };
        let number = {
            let mut st = self.node.st.lock();
            st.next_msg += 1;
            st.next_msg
        };
        let m = Msg {
            number,
            incarnation: self.node.incarnation,
            to: remote,
            from: local,
            payload: data.to_vec(),
        };
        cx.send_vec(
            PORT,
            NetAddr {
                node: to,
                port: PORT,
            },
            m.encode(),
        );
        self.later(cx, done, Ok(()), None)
    }
}

struct Msg {
    number: u64,
    incarnation: u64,
    to: Tid,
    from: Tid,
    payload: Vec<u8>,
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(50 + self.payload.len());
        v.extend_from_slice(&self.number.to_le_bytes());
        v.extend_from_slice(&self.incarnation.to_le_bytes());
        for id in [&self.to, &self.from] {
            v.push(id.as_bytes().len() as u8);
            v.extend_from_slice(id.as_bytes());
        }
        v.extend_from_slice(&self.payload);
        v
    }

    fn decode(b: &[u8]) -> Option<Msg> {
        let number = u64::from_le_bytes(b.get(0..8)?.try_into().ok()?);
        let incarnation = u64::from_le_bytes(b.get(8..16)?.try_into().ok()?);
        let mut at = 16;
        let mut id = || {
            let n = *b.get(at)? as usize;
            let t = Tid::from_bytes(b.get(at + 1..at + 1 + n)?)?;
            at += 1 + n;
            Some(t)
        };
        let to = id()?;
        let from = id()?;
        Some(Msg {
            number,
            incarnation,
            to,
            from,
            payload: b.get(at..)?.to_vec(),
        })
    }
}
