//! `my-provider`: a small, correct Connectivity Platform provider on cpsim's
//! safe API, to start your own from.
//!
//! What it does, in the fewest moving parts that keep every rule:
//!
//! - each host's provider creates and registers one instance when it
//!   starts, and deregisters and destroys it when it stops (LIFE-8);
//! - a [`Directory`] shared by the hosts of one simulated world says which
//!   instance holds which transport ID and whether it is active. It stands
//!   in for the rendezvous service a real product runs: ADD fails for an ID
//!   someone else holds (TID-4), REACH succeeds only for an ID another
//!   *active* instance holds (TID-6);
//! - SEND_BUFFERS copies the bytes into one datagram to the holder's host
//!   and finishes at once; the receiver drops duplicates and indicates the
//!   bytes to its instance if that instance still holds the ID and is active
//!   (DATA-1, DATA-5);
//! - when the platform ends a session by itself, the instance is
//!   deregistered and destroyed from a timer (never inside TERMINATE), and a
//!   fresh one is registered on the same interface unless the platform shut
//!   down (LIFE-7).
//!
//! Every call finishes synchronously. A provider that waits on its network
//! pends instead: `done.pend()` returns the callback's reply and a
//! `Pending` to complete exactly once later (see the provider guide).

use cpsim_sim::safe::{
    Buffers, Completion, Failure, Instance, InstanceRef, RegisterOptions, Reply, SessionHandler,
    TerminationReason,
};
use cpsim_sim::{Cx, Nanos, NetAddr, Provider, ProviderFactory, Tid};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// The provider's name: in reports, and in the scenario files that name it.
pub const NAME: &str = "my-provider";
/// The port the providers' peers exchange data on.
pub const PORT: u16 = 4200;
/// Message numbers remembered per sender, to drop duplicates.
const SEEN_PER_SENDER: usize = 4096;

/// A fresh factory: what `certify` and the `cpsim` registry take.
pub fn factory() -> Arc<dyn ProviderFactory> {
    Arc::new(MyProviderFactory::default())
}

/// `m.lock()`, going on after a panic elsewhere (a panicking callback is
/// already reported as CRASH-1; the state stays usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which instance holds which transport ID, and which instances are active.
#[derive(Default)]
pub struct Directory {
    inner: Mutex<DirectoryState>,
}

#[derive(Default)]
struct DirectoryState {
    next_key: u64,
    /// Transport ID → (holder's key, holder's network node).
    holders: BTreeMap<Tid, (u64, u8)>,
    active: BTreeSet<u64>,
}

impl Directory {
    fn new_key(&self) -> u64 {
        let mut d = lock(&self.inner);
        d.next_key += 1;
        d.next_key
    }
    /// ADD: fails if another instance holds the ID (a duplicate address).
    fn add(&self, key: u64, node: u8, id: Tid) -> bool {
        let mut d = lock(&self.inner);
        match d.holders.get(&id) {
            Some((holder, _)) if *holder != key => false,
            _ => {
                d.holders.insert(id, (key, node));
                true
            }
        }
    }
    fn remove(&self, key: u64, id: Tid) {
        let mut d = lock(&self.inner);
        if d.holders.get(&id).is_some_and(|(holder, _)| *holder == key) {
            d.holders.remove(&id);
        }
    }
    fn set_active(&self, key: u64, on: bool) {
        let mut d = lock(&self.inner);
        if on {
            d.active.insert(key);
        } else {
            d.active.remove(&key);
        }
    }
    /// Everything about an instance, gone (its session ended).
    fn forget(&self, key: u64) {
        let mut d = lock(&self.inner);
        d.holders.retain(|_, (holder, _)| *holder != key);
        d.active.remove(&key);
    }
    /// The node of the active instance, other than `asker`, holding `id`.
    fn reachable(&self, asker: u64, id: Tid) -> Option<u8> {
        let d = lock(&self.inner);
        d.holders
            .get(&id)
            .filter(|(holder, _)| *holder != asker && d.active.contains(holder))
            .map(|(_, node)| *node)
    }
    /// Whether instance `key` holds `id` and is active.
    fn holds_active(&self, key: u64, id: Tid) -> bool {
        let d = lock(&self.inner);
        d.holders.get(&id).is_some_and(|(holder, _)| *holder == key) && d.active.contains(&key)
    }
}

/// Makes one provider per simulated host. One factory serves one simulated
/// world at a time: a new world gets a new directory.
#[derive(Default)]
pub struct MyProviderFactory {
    directory: Mutex<Arc<Directory>>,
}

impl ProviderFactory for MyProviderFactory {
    fn name(&self) -> String {
        NAME.to_string()
    }
    fn infrastructure(&self, _cx: &Cx) {
        // Called once per world before any provider starts.
        *lock(&self.directory) = Arc::default();
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(MyProvider {
            directory: lock(&self.directory).clone(),
            node: None,
        })
    }
}

/// One host's provider.
pub struct MyProvider {
    directory: Arc<Directory>,
    node: Option<Arc<Node>>,
}

impl Provider for MyProvider {
    fn start(&mut self, cx: &Cx) {
        let node = Arc::new(Node {
            me: cx.host_index(),
            incarnation: cx.random(),
            directory: self.directory.clone(),
            state: Mutex::default(),
        });
        let receiver = node.clone();
        // The port is free on a fresh start: the platform unbinds a stopped
        // provider's ports.
        let _ = cx.bind(PORT, move |_cx, from, data| {
            receiver.on_datagram(from, data)
        });
        node.open_instance(cx, 0);
        self.node = Some(node);
    }

    fn stop(&mut self, cx: &Cx) {
        let Some(node) = self.node.take() else { return };
        let instances = {
            let mut st = lock(&node.state);
            st.stopped = true;
            std::mem::take(&mut st.instances)
        };
        for (key, inst) in instances {
            node.directory.forget(key);
            close(inst);
        }
        cx.unbind(PORT);
    }
}

/// One host's state, shared by its instances' handlers and its receiver.
struct Node {
    me: u8,
    /// Tells this start's messages from an earlier start's (duplicate check).
    incarnation: u64,
    directory: Arc<Directory>,
    state: Mutex<NodeState>,
}

#[derive(Default)]
struct NodeState {
    stopped: bool,
    next_message: u64,
    instances: BTreeMap<u64, Open>,
    /// Message numbers seen per (sender node, sender incarnation).
    seen: BTreeMap<(u8, u64), BTreeSet<u64>>,
}

/// An instance this host created.
struct Open {
    instance: Instance,
    registered: bool,
    luid: u64,
}

/// Deregisters (when registered) and destroys an instance. Never called with
/// the node's lock held: Deregister delivers TERMINATE(PROVIDER_REQUEST)
/// before it returns, and that callback takes the lock.
fn close(o: Open) {
    if o.registered {
        let _ = o.instance.deregister();
    }
    o.instance.destroy();
}

impl Node {
    /// Creates and registers an instance, on interface `luid` (0: a new one).
    fn open_instance(self: &Arc<Self>, cx: &Cx, luid: u64) {
        if lock(&self.state).stopped {
            return;
        }
        let key = self.directory.new_key();
        let handler = Arc::new(Handler {
            node: self.clone(),
            key,
        });
        let Ok(instance) = Instance::create(cx, handler) else {
            return;
        };
        let options = RegisterOptions {
            luid: (luid != 0).then_some(luid),
            ..RegisterOptions::default()
        };
        // ESTABLISH may arrive inside Register: nothing it needs is missing.
        match instance.register(&options) {
            Ok(luid) => {
                lock(&self.state).instances.insert(
                    key,
                    Open {
                        instance,
                        registered: true,
                        luid,
                    },
                );
            }
            Err(_) => instance.destroy(),
        }
    }

    /// After the platform ended a session: deregister and destroy the
    /// instance, then open a fresh one on the same interface (unless the
    /// platform shut down).
    fn replace(self: &Arc<Self>, cx: &Cx, key: u64, reopen: bool) {
        let old = {
            let mut st = lock(&self.state);
            if st.stopped {
                return;
            }
            st.instances.remove(&key)
        };
        let Some(old) = old else { return };
        let luid = old.luid;
        close(old);
        if reopen {
            self.open_instance(cx, luid);
        }
    }

    /// A peer's datagram: indicate it once, to an active instance holding
    /// its destination ID; otherwise drop it.
    fn on_datagram(&self, from: NetAddr, data: &[u8]) {
        let Some(m) = Message::decode(data) else {
            return;
        };
        let sender = (from.node, m.incarnation);
        let target = {
            let st = lock(&self.state);
            if st.seen.get(&sender).is_some_and(|s| s.contains(&m.number)) {
                return;
            }
            st.instances
                .iter()
                .find(|(key, _)| self.directory.holds_active(**key, m.to))
                .map(|(_, o)| o.instance.as_ref())
        };
        let Some(target) = target else { return };
        if target.indicate(m.to, m.from, &m.payload).is_ok() {
            let mut st = lock(&self.state);
            let seen = st.seen.entry(sender).or_default();
            seen.insert(m.number);
            if seen.len() > SEEN_PER_SENDER {
                seen.pop_first();
            }
        }
    }
}

/// One instance's callbacks.
struct Handler {
    node: Arc<Node>,
    key: u64,
}

impl SessionHandler for Handler {
    fn establish(&self, _cx: &Cx, _inst: &InstanceRef) {
        // Nothing to set up: the instance starts dormant and holds no ID.
    }

    fn terminate(&self, cx: &Cx, _inst: &InstanceRef, reason: TerminationReason) {
        self.node.directory.forget(self.key);
        if reason != TerminationReason::ProviderRequest {
            // The platform ended the session: deregister (LIFE-7), from a
            // timer rather than inside this callback.
            let (node, key) = (self.node.clone(), self.key);
            let reopen = reason != TerminationReason::PlatformShutdown;
            cx.after(Nanos::from_millis(1), move |cx| {
                node.replace(cx, key, reopen)
            });
        }
    }

    fn transition_active(&self, _cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        self.node.directory.set_active(self.key, true);
        done.ok()
    }

    fn transition_dormant(&self, _cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        self.node.directory.set_active(self.key, false);
        done.ok()
    }

    fn add_transport_id(&self, _cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        if self.node.directory.add(self.key, self.node.me, id) {
            done.ok()
        } else {
            done.fail(Failure::FAIL)
        }
    }

    fn remove_transport_id(
        &self,
        _cx: &Cx,
        _inst: &InstanceRef,
        id: Tid,
        done: Completion,
    ) -> Reply {
        self.node.directory.remove(self.key, id);
        done.ok()
    }

    fn reach_transport_id(
        &self,
        _cx: &Cx,
        _inst: &InstanceRef,
        id: Tid,
        done: Completion,
    ) -> Reply {
        match self.node.directory.reachable(self.key, id) {
            Some(_) => done.ok(),
            None => done.fail(Failure::FAIL),
        }
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
        // Only towards an active holder: S_OK for bytes that cannot arrive
        // would break DATA-5.
        let Some(node) = self.node.directory.reachable(self.key, remote) else {
            return done.fail(Failure::FAIL);
        };
        let number = {
            let mut st = lock(&self.node.state);
            st.next_message += 1;
            st.next_message
        };
        let m = Message {
            number,
            incarnation: self.node.incarnation,
            to: remote,
            from: local,
            // A copy: the buffers are the platform's, valid only during the call.
            payload: data.to_vec(),
        };
        cx.send_to(PORT, NetAddr { node, port: PORT }, &m.encode());
        done.ok()
    }
}

/// The one datagram peers exchange: data for `to`, from `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Message {
    number: u64,
    incarnation: u64,
    to: Tid,
    from: Tid,
    payload: Vec<u8>,
}

impl Message {
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

    fn decode(b: &[u8]) -> Option<Message> {
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
        Some(Message {
            number,
            incarnation,
            to,
            from,
            payload: b.get(at..)?.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_decodes_to_what_was_encoded() {
        let m = Message {
            number: 7,
            incarnation: 0xfeed,
            to: Tid::v4(1, 1, 1),
            from: Tid::v6(2, 1, 1),
            payload: b"hello".to_vec(),
        };
        assert_eq!(Message::decode(&m.encode()), Some(m.clone()));
        assert_eq!(Message::decode(&m.encode()[..10]), None);
        let mut empty = m;
        empty.payload.clear();
        assert_eq!(Message::decode(&empty.encode()), Some(empty));
    }
}
