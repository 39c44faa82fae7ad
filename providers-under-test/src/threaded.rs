//! `threaded`: a correct black-box provider that does its work on its own
//! OS thread, the way many real providers are built.
//!
//! Every async-capable callback pends and hands its [`Pending`] to the
//! host's worker thread through a channel; the worker completes it. Received
//! data is indicated from the worker thread too. Like [`crate::sync_raw`] it
//! shares an in-process [`Directory`] instead of running a rendezvous.
//!
//! Because the worker runs concurrently with the platform, each job applies
//! its effect and completes its call *inside one critical section* of the
//! directory lock: no peer can observe the directory and the platform
//! disagreeing about who holds an ID or who is active, and an indication is
//! only made while the instance is active for both.
//!
//! Runs only with `ClockMode::RealTime` (it uses wall-clock threads), so it
//! is not reproducible from a seed (`deterministic() == false`).
//!
//! [`ThreadBug`] makes it leave threads running after its stop (LIFE-8):
//! the broken providers `broken-life-8-thread` and
//! `broken-life-8-thread-idle`, which only a certification counting the
//! process's threads can catch (`cpsim certify`).

use crate::reference::wire::Msg;
use cpsim_sim::net::NetAddr;
use cpsim_sim::safe::*;
use cpsim_sim::{Cx, Nanos, Provider, ProviderFactory, Tid};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The port threaded peers exchange datagrams on.
pub const PORT: u16 = 4200;
const SEEN_PER_SENDER: usize = 4096;

/// The shared truth of one world: who holds which ID, who is active, and
/// which instances are gone.
#[derive(Default)]
pub struct Directory {
    inner: Mutex<DirState>,
}

#[derive(Default)]
struct DirState {
    next_key: u64,
    holders: BTreeMap<Tid, (u64, u8)>,
    active: BTreeSet<u64>,
    dead: BTreeSet<u64>,
}

impl DirState {
    fn reachable(&self, asker: u64, t: Tid) -> Option<u8> {
        self.holders
            .get(&t)
            .filter(|(k, _)| *k != asker && self.active.contains(k))
            .map(|(_, n)| *n)
    }
}

/// A deliberate bug: threads left running after the provider's stop
/// (LIFE-8). Nothing in a trace shows them; the harness counts them.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ThreadBug {
    /// Every start also starts a keep-alive thread that nothing ever tells
    /// to end or joins.
    KeepAlive,
    /// Stop returns at once when the host has no instance left (the
    /// platform shut it down, or Register failed), so the worker is neither
    /// told to end nor joined: it waits for jobs for ever.
    IdleStop,
}

impl ThreadBug {
    pub const ALL: [ThreadBug; 2] = [ThreadBug::KeepAlive, ThreadBug::IdleStop];

    /// The broken provider's name.
    pub fn name(self) -> &'static str {
        match self {
            ThreadBug::KeepAlive => "broken-life-8-thread",
            ThreadBug::IdleStop => "broken-life-8-thread-idle",
        }
    }

    /// What it does wrong (`cpsim providers`).
    pub fn describe(self) -> &'static str {
        match self {
            ThreadBug::KeepAlive => {
                "threaded, plus a keep-alive thread per start that is never joined (real time)"
            }
            ThreadBug::IdleStop => {
                "threaded, but a stop with no instance left (after a platform shutdown) \
                 neither ends nor joins its worker thread (real time)"
            }
        }
    }
}

/// Makes threaded providers sharing one directory per world.
#[derive(Default)]
pub struct ThreadedFactory {
    dir: Mutex<Arc<Directory>>,
    bug: Option<ThreadBug>,
}

impl ThreadedFactory {
    pub fn new() -> Arc<ThreadedFactory> {
        Arc::default()
    }

    /// The threaded provider with `bug`.
    pub fn with_bug(bug: ThreadBug) -> Arc<ThreadedFactory> {
        Arc::new(ThreadedFactory {
            bug: Some(bug),
            ..ThreadedFactory::default()
        })
    }
}

impl ProviderFactory for ThreadedFactory {
    fn name(&self) -> String {
        self.bug.map_or("threaded", ThreadBug::name).into()
    }
    fn infrastructure(&self, _cx: &Cx) {
        *self.dir.lock() = Arc::default();
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(Threaded {
            dir: self.dir.lock().clone(),
            node: None,
            worker: None,
            bug: self.bug,
        })
    }
    fn deterministic(&self) -> bool {
        false
    }
}

/// Work for the worker thread.
enum Job {
    Activate(u64, Pending),
    Dormant(u64, Pending),
    Add(u64, Tid, Pending),
    Remove(u64, Tid, Pending),
    Reach(u64, Tid, Pending),
    Send {
        key: u64,
        local: Tid,
        remote: Tid,
        data: Vec<u8>,
        pending: Pending,
    },
    Deliver {
        from: (u8, u64, u64),
        dst: Tid,
        src: Tid,
        data: Vec<u8>,
    },
}

struct Threaded {
    dir: Arc<Directory>,
    node: Option<Arc<TNode>>,
    worker: Option<JoinHandle<()>>,
    bug: Option<ThreadBug>,
}

/// One host's provider.
struct TNode {
    me: u8,
    incarnation: u64,
    dir: Arc<Directory>,
    /// The worker's queue; `None` once stopping.
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    st: Mutex<TState>,
}

#[derive(Default)]
struct TState {
    stopped: bool,
    next_msg: u64,
    slots: BTreeMap<u64, TSlot>,
}

struct TSlot {
    inst: Option<Instance>,
    iref: Option<InstanceRef>,
    luid: u64,
    registered: bool,
}

/// An instance's handler: its provider and its directory key.
struct Handler {
    node: Arc<TNode>,
    key: u64,
}

impl Provider for Threaded {
    fn start(&mut self, cx: &Cx) {
        let (tx, rx) = mpsc::channel();
        let node = Arc::new(TNode {
            me: cx.host_index(),
            incarnation: cx.random(),
            dir: self.dir.clone(),
            tx: Mutex::new(Some(tx)),
            st: Mutex::default(),
        });
        let (n, wcx) = (node.clone(), cx.clone());
        self.worker = Some(
            std::thread::Builder::new()
                .name(format!("threaded-{}", node.me))
                .spawn(move || n.work(&wcx, rx))
                .expect("a worker thread"),
        );
        if self.bug == Some(ThreadBug::KeepAlive) {
            // The bug: started, never told to end, never joined.
            let _ = std::thread::Builder::new()
                .name(format!("keep-alive-{}", node.me))
                .spawn(|| loop {
                    std::thread::sleep(std::time::Duration::from_secs(3_600));
                });
        }
        let n = node.clone();
        let _ = cx.bind(PORT, move |_cx, from, data| n.on_datagram(from, data));
        node.open(cx, 0);
        self.node = Some(node);
    }

    fn stop(&mut self, cx: &Cx) {
        let Some(node) = self.node.take() else { return };
        node.st.lock().stopped = true;
        if self.bug == Some(ThreadBug::IdleStop) && node.st.lock().slots.is_empty() {
            // The bug: "nothing open, nothing to do". The worker holds the
            // node, whose queue stays open: it waits for ever, unjoined.
            self.worker = None;
            cx.unbind(PORT);
            return;
        }
        // Closing the queue lets the worker finish (and complete) what it
        // has, then exit; join it before touching the instances.
        node.tx.lock().take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        let slots = std::mem::take(&mut node.st.lock().slots);
        for (key, s) in slots {
            node.forget(key);
            node.close(s);
        }
        cx.unbind(PORT);
    }
}

impl TNode {
    fn post(&self, job: Job) -> Result<(), Job> {
        match self.tx.lock().as_ref() {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    fn forget(&self, key: u64) {
        let mut d = self.dir.inner.lock();
        d.holders.retain(|_, (k, _)| *k != key);
        d.active.remove(&key);
        d.dead.insert(key);
    }

    /// Creates and registers an instance (driver thread: Create needs the host).
    fn open(self: &Arc<Self>, cx: &Cx, luid: u64) {
        if self.st.lock().stopped {
            return;
        }
        let key = {
            let mut d = self.dir.inner.lock();
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
        let iref = inst.as_ref();
        self.st.lock().slots.insert(
            key,
            TSlot {
                inst: None,
                iref: Some(iref),
                luid: 0,
                registered: false,
            },
        );
        let opts = RegisterOptions {
            luid: (luid != 0).then_some(luid),
            ..RegisterOptions::default()
        };
        let r = inst.register(&opts);
        let mut st = self.st.lock();
        match (r, st.slots.get_mut(&key)) {
            (Ok(l), Some(s)) => {
                s.luid = l;
                s.registered = true;
                s.inst = Some(inst);
            }
            _ => {
                st.slots.remove(&key);
                drop(st);
                inst.destroy();
            }
        }
    }

    fn close(&self, s: TSlot) {
        if let Some(inst) = s.inst {
            if s.registered {
                let _ = inst.deregister();
            }
            inst.destroy();
        }
    }

    /// After a platform-ended session (driver thread, from a timer).
    fn replace(self: &Arc<Self>, cx: &Cx, key: u64, reopen: bool) {
        let old = {
            let mut st = self.st.lock();
            if st.stopped {
                return;
            }
            st.slots.remove(&key)
        };
        let Some(old) = old else { return };
        let luid = old.luid;
        self.close(old);
        if reopen {
            self.open(cx, luid);
        }
    }

    /// Datagrams (driver thread): hand data to the worker.
    fn on_datagram(&self, from: NetAddr, data: &[u8]) {
        if let Some(Msg::Data {
            req,
            incarnation,
            dst,
            src,
            payload,
        }) = Msg::decode(data)
        {
            let _ = self.post(Job::Deliver {
                from: (from.node, incarnation, req),
                dst,
                src,
                data: payload,
            });
        }
    }

    /// The worker thread.
    fn work(&self, cx: &Cx, rx: mpsc::Receiver<Job>) {
        let mut seen: BTreeMap<(u8, u64), BTreeSet<u64>> = BTreeMap::new();
        for job in rx {
            // One critical section per job: the effect and the completion
            // (or the indication) happen together for every observer.
            let mut d = self.dir.inner.lock();
            let dead = |d: &DirState, k: u64| d.dead.contains(&k);
            match job {
                Job::Activate(k, p) => {
                    let ok = !dead(&d, k);
                    p.complete(if ok { Ok(()) } else { Err(Failure::FAIL) });
                    if ok {
                        d.active.insert(k);
                    }
                }
                Job::Dormant(k, p) => {
                    p.complete(Ok(()));
                    d.active.remove(&k);
                }
                Job::Add(k, t, p) => {
                    let taken = d.holders.get(&t).is_some_and(|(o, _)| *o != k);
                    if taken || dead(&d, k) {
                        p.complete(Err(Failure::FAIL));
                    } else {
                        p.complete(Ok(()));
                        d.holders.insert(t, (k, self.me));
                    }
                }
                Job::Remove(k, t, p) => {
                    p.complete(Ok(()));
                    if d.holders.get(&t).is_some_and(|(o, _)| *o == k) {
                        d.holders.remove(&t);
                    }
                }
                Job::Reach(k, t, p) => {
                    let ok = d.reachable(k, t).is_some();
                    p.complete(if ok { Ok(()) } else { Err(Failure::FAIL) });
                }
                Job::Send {
                    key,
                    local,
                    remote,
                    data,
                    pending,
                } => match d.reachable(key, remote) {
                    Some(node) => {
                        let req = {
                            let mut st = self.st.lock();
                            st.next_msg += 1;
                            st.next_msg
                        };
                        let msg = Msg::Data {
                            req,
                            incarnation: self.incarnation,
                            dst: remote,
                            src: local,
                            payload: data,
                        };
                        cx.send_vec(PORT, NetAddr { node, port: PORT }, msg.encode());
                        pending.complete(Ok(()));
                    }
                    None => pending.complete(Err(Failure::FAIL)),
                },
                Job::Deliver {
                    from,
                    dst,
                    src,
                    data,
                } => {
                    let sender = (from.0, from.1);
                    if seen.get(&sender).is_some_and(|s| s.contains(&from.2)) {
                        continue;
                    }
                    let holder = d.holders.get(&dst).map(|(k, _)| *k);
                    let Some(k) = holder.filter(|k| d.active.contains(k)) else {
                        continue; // not active (DATA-1) or not held here
                    };
                    let iref = self.st.lock().slots.get(&k).and_then(|s| s.iref);
                    if let Some(iref) = iref {
                        if iref.indicate(dst, src, &data).is_ok() {
                            let s = seen.entry(sender).or_default();
                            s.insert(from.2);
                            if s.len() > SEEN_PER_SENDER {
                                s.pop_first();
                            }
                        }
                    }
                }
            }
            drop(d);
        }
    }
}

impl Handler {
    /// Pends `done` and queues `job` for the worker (or fails at once when stopping).
    fn queue(&self, done: Completion, job: impl FnOnce(Pending) -> Job) -> Reply {
        let (reply, pending) = done.pend();
        if let Err(job) = self.node.post(job(pending)) {
            // The worker is gone: finish here. Nothing else holds the token.
            match job {
                Job::Activate(_, p)
                | Job::Dormant(_, p)
                | Job::Add(_, _, p)
                | Job::Remove(_, _, p)
                | Job::Reach(_, _, p)
                | Job::Send { pending: p, .. } => p.complete(Err(Failure::FAIL)),
                Job::Deliver { .. } => {}
            }
        }
        reply
    }
}

impl SessionHandler for Handler {
    fn terminate(&self, cx: &Cx, _inst: &InstanceRef, reason: TerminationReason) {
        self.node.forget(self.key);
        if reason != TerminationReason::ProviderRequest {
            let (node, key) = (self.node.clone(), self.key);
            let reopen = reason != TerminationReason::PlatformShutdown;
            cx.after(Nanos::from_millis(1), move |cx| {
                node.replace(cx, key, reopen)
            });
        }
    }
    fn transition_active(&self, _cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        self.queue(done, |p| Job::Activate(self.key, p))
    }
    fn transition_dormant(&self, _cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        self.queue(done, |p| Job::Dormant(self.key, p))
    }
    fn add_transport_id(&self, _cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        self.queue(done, |p| Job::Add(self.key, id, p))
    }
    fn remove_transport_id(
        &self,
        _cx: &Cx,
        _inst: &InstanceRef,
        id: Tid,
        done: Completion,
    ) -> Reply {
        self.queue(done, |p| Job::Remove(self.key, id, p))
    }
    fn reach_transport_id(
        &self,
        _cx: &Cx,
        _inst: &InstanceRef,
        id: Tid,
        done: Completion,
    ) -> Reply {
        self.queue(done, |p| Job::Reach(self.key, id, p))
    }
    fn send_buffers(
        &self,
        _cx: &Cx,
        _inst: &InstanceRef,
        local: Tid,
        remote: Tid,
        data: &Buffers<'_>,
        done: Completion,
    ) -> Reply {
        let data = data.to_vec();
        self.queue(done, |pending| Job::Send {
            key: self.key,
            local,
            remote,
            data,
            pending,
        })
    }
}
