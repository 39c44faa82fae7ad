//! Black-box providers: their own OS threads, real time, completions from
//! any thread at any moment — including before the callback has returned
//! (COMP-10) — and calls into the platform from inside ESTABLISH (SESS-3).

mod common;
use common::{frame, unframe, Directory, PORT};
use cpsim_sim::rules::Binds;
use cpsim_sim::safe::*;
use cpsim_sim::trace::What;
use cpsim_sim::*;
use crossbeam_channel::{unbounded, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

enum Job {
    Complete(Pending, Result<(), Failure>, Option<Arc<AtomicBool>>),
    Indicate(InstanceRef, Tid, Tid, Vec<u8>),
    Stop,
}

struct Session {
    dir: Directory,
    addr: cpsim_sim::net::NetAddr,
    worker: Sender<Job>,
    ids: parking_lot::Mutex<Vec<Tid>>,
    race: AtomicBool,
}

impl Session {
    /// Hands the completion to the worker thread; every other call waits
    /// until the worker has completed, so the completion races ahead of the return.
    fn pend(&self, done: Completion, r: Result<(), Failure>) -> Reply {
        let (reply, p) = done.pend();
        let flip = !self.race.fetch_xor(true, Ordering::Relaxed);
        let signal = flip.then(|| Arc::new(AtomicBool::new(false)));
        self.worker
            .send(Job::Complete(p, r, signal.clone()))
            .unwrap();
        if let Some(s) = signal {
            while !s.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        }
        reply
    }
}

impl SessionHandler for Session {
    fn terminate(&self, _: &Cx, inst: &InstanceRef, reason: TerminationReason) {
        if reason != TerminationReason::ProviderRequest {
            let _ = inst.deregister();
        }
    }
    fn transition_active(&self, _: &Cx, _: &InstanceRef, done: Completion) -> Reply {
        self.pend(done, Ok(()))
    }
    fn add_transport_id(&self, _: &Cx, _: &InstanceRef, id: Tid, done: Completion) -> Reply {
        self.dir.lock().insert(id, self.addr);
        self.ids.lock().push(id);
        self.pend(done, Ok(()))
    }
    fn remove_transport_id(&self, _: &Cx, _: &InstanceRef, id: Tid, done: Completion) -> Reply {
        self.dir.lock().remove(&id);
        self.ids.lock().retain(|x| *x != id);
        self.pend(done, Ok(()))
    }
    fn reach_transport_id(&self, _: &Cx, _: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let known = self.dir.lock().contains_key(&id);
        self.pend(done, if known { Ok(()) } else { Err(Failure::FAIL) })
    }
    fn send_buffers(
        &self,
        cx: &Cx,
        _: &InstanceRef,
        local: Tid,
        remote: Tid,
        data: &Buffers<'_>,
        done: Completion,
    ) -> Reply {
        let Some(to) = self.dir.lock().get(&remote).copied() else {
            return done.fail(Failure::FAIL);
        };
        cx.send_to(PORT, to, &frame(local, remote, data));
        self.pend(done, Ok(()))
    }
}

/// An instance that deregisters and destroys itself from inside ESTABLISH.
struct Quitter(parking_lot::Mutex<Option<Instance>>);
impl SessionHandler for Quitter {
    fn establish(&self, _: &Cx, inst: &InstanceRef) {
        assert_eq!(inst.deregister(), Ok(()));
        if let Some(i) = self.0.lock().take() {
            i.destroy();
        }
    }
    fn transition_active(&self, _: &Cx, _: &InstanceRef, done: Completion) -> Reply {
        done.ok()
    }
    fn add_transport_id(&self, _: &Cx, _: &InstanceRef, _: Tid, done: Completion) -> Reply {
        done.ok()
    }
    fn remove_transport_id(&self, _: &Cx, _: &InstanceRef, _: Tid, done: Completion) -> Reply {
        done.ok()
    }
    fn reach_transport_id(&self, _: &Cx, _: &InstanceRef, _: Tid, done: Completion) -> Reply {
        done.fail(Failure::FAIL)
    }
    fn send_buffers(
        &self,
        _: &Cx,
        _: &InstanceRef,
        _: Tid,
        _: Tid,
        _: &Buffers<'_>,
        done: Completion,
    ) -> Reply {
        done.fail(Failure::FAIL)
    }
}

struct Threaded {
    dir: Directory,
    worker: Option<(Sender<Job>, std::thread::JoinHandle<()>)>,
    instances: Vec<Instance>,
}

impl Provider for Threaded {
    fn start(&mut self, cx: &Cx) {
        let (tx, rx) = unbounded::<Job>();
        let wcx = cx.clone();
        let handle = std::thread::spawn(move || {
            for job in rx {
                match job {
                    Job::Complete(p, r, signal) => {
                        p.complete(r);
                        if let Some(s) = signal {
                            s.store(true, Ordering::Release);
                        }
                    }
                    Job::Indicate(inst, l, r, data) => {
                        let _ = wcx.enter(|| inst.indicate(l, r, &data));
                    }
                    Job::Stop => break,
                }
            }
        });
        let addr = cx.addr_of(&cx.host_name(), PORT).unwrap();
        let session = Arc::new(Session {
            dir: self.dir.clone(),
            addr,
            worker: tx.clone(),
            ids: Default::default(),
            race: AtomicBool::new(false),
        });
        let inst = Instance::create(cx, session.clone()).unwrap();
        let iref = inst.as_ref();
        let (s2, tx2) = (session.clone(), tx.clone());
        cx.bind(PORT, move |_, _, data| {
            let Some((local, remote, payload)) = unframe(data) else {
                return;
            };
            if s2.ids.lock().contains(&local) {
                let _ = tx2.send(Job::Indicate(iref, local, remote, payload.to_vec()));
            }
        })
        .unwrap();
        inst.register(&RegisterOptions::default()).unwrap();
        self.instances.push(inst);
        // A second instance that quits from inside ESTABLISH.
        let q = Arc::new(Quitter(parking_lot::Mutex::new(None)));
        let quitter = Instance::create(cx, q.clone()).unwrap();
        let qref = quitter.as_ref();
        *q.0.lock() = Some(quitter);
        let _ = qref;
        if let Some(i) = q.0.lock().as_ref() {
            i.register(&RegisterOptions::default()).unwrap();
        }
        self.worker = Some((tx, handle));
    }

    fn stop(&mut self, _: &Cx) {
        for i in self.instances.drain(..) {
            let _ = i.deregister();
            i.destroy();
        }
        if let Some((tx, h)) = self.worker.take() {
            tx.send(Job::Stop).unwrap();
            h.join().unwrap();
        }
    }
}

struct Factory(Directory);
impl ProviderFactory for Factory {
    fn name(&self) -> String {
        "threaded-test".into()
    }
    fn create(&self, _: &str) -> Box<dyn Provider> {
        Box::new(Threaded {
            dir: self.0.clone(),
            worker: None,
            instances: Vec::new(),
        })
    }
    fn deterministic(&self) -> bool {
        false
    }
}

#[test]
fn threads_real_time_and_racing_completions_raise_no_false_alarm() {
    let cfg = Config {
        seed: 5,
        clock: ClockMode::RealTime,
        drain_ms: 300,
        ..Config::default()
    };
    let sim = Sim::new(cfg, &["A", "B"], Arc::new(Factory(Directory::default())));
    let at = Nanos::from_millis;
    common::start(&sim, &["A", "B"], "B", 20);
    for k in 0..40 {
        sim.schedule(
            at(50 + 5 * k),
            Action::Send {
                from: "A".into(),
                to: "B".into(),
                family: Family::V4,
                bytes: 64,
                newest: false,
            },
        );
    }
    sim.schedule(at(400), Action::Dormant { host: "A".into() });
    sim.schedule(
        at(450),
        Action::Send {
            from: "A".into(),
            to: "B".into(),
            family: Family::V6,
            bytes: 900,
            newest: false,
        },
    );
    sim.run_until(at(700));
    let out = sim.finish();
    assert_eq!(out.violations, vec![], "{}", out.trace.to_json());
    assert_eq!(out.delivered, out.sent, "every datagram arrives");
    assert!(out.sent >= 41);
    let early = out
        .trace
        .events
        .iter()
        .filter(|e| matches!(e.what, What::Complete { early: true, .. }))
        .count();
    assert!(
        early > 0,
        "some completions raced ahead of the return (COMP-10)"
    );
    let deferred = out
        .trace
        .events
        .iter()
        .filter(|e| matches!(&e.what, What::Note { text } if text.contains("inside ESTABLISH")))
        .count();
    assert!(
        deferred >= 4,
        "Deregister and Destroy inside ESTABLISH were deferred on both hosts (SESS-3)"
    );
    let platform: Vec<_> = oracle::check(&out.trace)
        .into_iter()
        .filter(|v| v.rule.rule().binds == Binds::Platform)
        .collect();
    assert_eq!(platform, vec![]);
}
