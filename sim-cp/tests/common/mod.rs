//! Test support for sim-cp's own tests: a small, correct provider ("toy")
//! with a shared directory instead of a rendezvous, synchronous or
//! asynchronous by configuration.
#![allow(dead_code)]

use parking_lot::Mutex;
use sim_cp::net::NetAddr;
use sim_cp::safe::*;
use sim_cp::{Cx, Provider, ProviderFactory, Tid};
use std::collections::HashMap;
use std::sync::Arc;

pub const PORT: u16 = 7;

/// Which transport ID lives at which network address (shared by all hosts).
pub type Directory = Arc<Mutex<HashMap<Tid, NetAddr>>>;

#[derive(Clone, Copy, Default)]
pub struct ToyOptions {
    /// Complete every async callback from a spawned task instead of inline.
    pub asynchronous: bool,
    /// Register this many instances per host.
    pub instances: usize,
}

pub struct ToyFactory {
    pub dir: Directory,
    pub opts: ToyOptions,
}

impl ToyFactory {
    pub fn new(opts: ToyOptions) -> Arc<ToyFactory> {
        Arc::new(ToyFactory {
            dir: Arc::default(),
            opts,
        })
    }
}

impl ProviderFactory for ToyFactory {
    fn name(&self) -> String {
        "toy".into()
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(Toy {
            dir: self.dir.clone(),
            opts: self.opts,
            handlers: Arc::default(),
            instances: Vec::new(),
        })
    }
}

pub struct Toy {
    dir: Directory,
    opts: ToyOptions,
    handlers: Arc<Mutex<Vec<(Arc<ToySession>, InstanceRef)>>>,
    instances: Vec<Instance>,
}

pub struct ToySession {
    dir: Directory,
    addr: NetAddr,
    opts: ToyOptions,
    ids: Mutex<Vec<Tid>>,
    active: Mutex<bool>,
    /// Set when the platform ended the session: deregister is owed.
    ended: Mutex<bool>,
}

impl Provider for Toy {
    fn start(&mut self, cx: &Cx) {
        let handlers = self.handlers.clone();
        let addr = cx
            .bind(PORT, move |_cx, _from, data| {
                // [len local][local][len remote][remote][payload]: deliver to the instance owning `local`.
                let (l, rest) = data.split_at(1 + data[0] as usize);
                let (r, payload) = rest.split_at(1 + rest[0] as usize);
                let (Some(local), Some(remote)) =
                    (Tid::from_bytes(&l[1..]), Tid::from_bytes(&r[1..]))
                else {
                    return;
                };
                for (h, inst) in handlers.lock().iter() {
                    if h.ids.lock().contains(&local) && *h.active.lock() {
                        let _ = inst.indicate(local, remote, payload);
                    }
                }
            })
            .expect("port free");
        for _ in 0..self.opts.instances.max(1) {
            let s = Arc::new(ToySession {
                dir: self.dir.clone(),
                addr,
                opts: self.opts,
                ids: Mutex::default(),
                active: Mutex::new(false),
                ended: Mutex::new(false),
            });
            let inst = Instance::create(cx, s.clone()).expect("create");
            self.handlers.lock().push((s, inst.as_ref()));
            inst.register(&RegisterOptions::default())
                .expect("register");
            self.instances.push(inst);
        }
    }
    fn stop(&mut self, _cx: &Cx) {
        for inst in self.instances.drain(..) {
            let _ = inst.deregister();
            inst.destroy();
        }
    }
}

impl ToySession {
    fn finish(&self, cx: &Cx, done: Completion, r: Result<(), Failure>) -> Reply {
        if self.opts.asynchronous {
            let (reply, p) = done.pend();
            cx.spawn(move |_| p.complete(r));
            reply
        } else {
            done.result(r)
        }
    }
}

impl SessionHandler for ToySession {
    fn terminate(&self, cx: &Cx, inst: &InstanceRef, reason: TerminationReason) {
        *self.active.lock() = false;
        for id in self.ids.lock().drain(..) {
            self.dir.lock().remove(&id);
        }
        if reason != TerminationReason::ProviderRequest {
            *self.ended.lock() = true;
            let inst = *inst;
            cx.after(sim_cp::Nanos::from_millis(1), move |_| {
                let _ = inst.deregister();
            });
        }
    }
    fn transition_active(&self, cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        *self.active.lock() = true;
        self.finish(cx, done, Ok(()))
    }
    fn transition_dormant(&self, cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        *self.active.lock() = false;
        self.finish(cx, done, Ok(()))
    }
    fn add_transport_id(&self, cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let mut dir = self.dir.lock();
        if dir.contains_key(&id) {
            drop(dir);
            return self.finish(cx, done, Err(Failure::FAIL));
        }
        dir.insert(id, self.addr);
        drop(dir);
        self.ids.lock().push(id);
        self.finish(cx, done, Ok(()))
    }
    fn remove_transport_id(
        &self,
        cx: &Cx,
        _inst: &InstanceRef,
        id: Tid,
        done: Completion,
    ) -> Reply {
        self.ids.lock().retain(|x| *x != id);
        self.dir.lock().remove(&id);
        self.finish(cx, done, Ok(()))
    }
    fn reach_transport_id(&self, cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let known = self.dir.lock().contains_key(&id);
        self.finish(cx, done, if known { Ok(()) } else { Err(Failure::FAIL) })
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
        let Some(to) = self.dir.lock().get(&remote).copied() else {
            return self.finish(cx, done, Err(Failure::FAIL));
        };
        // Wire format: the IDs as the receiver will indicate them (its local = our remote).
        let mut msg = vec![remote.as_bytes().len() as u8];
        msg.extend_from_slice(remote.as_bytes());
        msg.push(local.as_bytes().len() as u8);
        msg.extend_from_slice(local.as_bytes());
        msg.extend_from_slice(&data.to_vec());
        cx.send_to(PORT, to, &msg);
        self.finish(cx, done, Ok(()))
    }
}
