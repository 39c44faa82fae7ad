//! A provider that panics inside a callback is recorded (CRASH-1 and a
//! PROVIDER_OTHER_FAILURE termination) and never takes the simulator down;
//! the next run starts clean.

mod common;

use cpsim_sim::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use cpsim_sim::rules::id;
use cpsim_sim::safe::*;
use cpsim_sim::trace::What;
use cpsim_sim::*;
use std::sync::Arc;

struct Panicky;
impl SessionHandler for Panicky {
    fn transition_active(&self, _: &Cx, _: &InstanceRef, _done: Completion) -> Reply {
        panic!("provider bug: unwrap on None");
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

struct Factory {
    panic_in_task: bool,
}
struct P {
    inst: Option<Instance>,
    panic_in_task: bool,
}
impl Provider for P {
    fn start(&mut self, cx: &Cx) {
        let i = Instance::create(cx, Arc::new(Panicky)).unwrap();
        i.register(&RegisterOptions::default()).unwrap();
        self.inst = Some(i);
        if self.panic_in_task {
            cx.spawn(|_| panic!("worker bug"));
        }
    }
    fn stop(&mut self, _: &Cx) {
        if let Some(i) = self.inst.take() {
            let _ = i.deregister();
            i.destroy();
        }
    }
}
impl ProviderFactory for Factory {
    fn name(&self) -> String {
        "panicky".into()
    }
    fn create(&self, _: &str) -> Box<dyn Provider> {
        Box::new(P {
            inst: None,
            panic_in_task: self.panic_in_task,
        })
    }
}

fn run(panic_in_task: bool) -> Outcome {
    let sim = Sim::new(
        Config::with_seed(1),
        &["A"],
        Arc::new(Factory { panic_in_task }),
    );
    common::start(&sim, &["A"], "A", 5);
    sim.run_until(Nanos::from_secs(1));
    sim.finish()
}

#[test]
fn a_panic_in_a_callback_is_crash_1_and_ends_the_session() {
    let out = run(false);
    assert!(
        out.violations
            .iter()
            .any(|v| v.rule == id::CRASH_1 && v.message.contains("unwrap on None")),
        "{:#?}",
        out.violations
    );
    let ended = out.trace.events.iter().any(|e| {
        matches!(
            &e.what,
            What::Call {
                reason: Some(Reason::ProviderOtherFailure),
                ..
            }
        )
    });
    assert!(ended, "TERMINATE(PROVIDER_OTHER_FAILURE) delivered");
    assert!(
        oracle::check(&out.trace).is_empty(),
        "{:#?}",
        oracle::check(&out.trace)
    );
}

#[test]
fn a_panic_in_a_task_is_crash_1() {
    let out = run(true);
    assert!(out
        .violations
        .iter()
        .any(|v| v.rule == id::CRASH_1 && v.message.contains("worker bug")));
}

#[test]
fn the_next_run_starts_clean() {
    let _ = run(false);
    let sim = Sim::new(
        Config::with_seed(2),
        &["A"],
        Arc::new(Factory {
            panic_in_task: false,
        }),
    );
    sim.schedule(Nanos::ZERO, Action::StartProvider { host: "A".into() });
    sim.run_until(Nanos::from_millis(100));
    let out = sim.finish();
    assert_eq!(out.violations, vec![]);
}

/// CRASH-1 says where the provider panicked: the panic hook that keeps
/// provider panics off stderr (`quiet_provider_panics`, which `cpsim` and
/// certification install) would otherwise lose the location, and a provider
/// with several `unwrap`s in one callback could not tell which one it was.
#[test]
fn crash_1_names_the_file_and_line_of_a_silenced_panic() {
    cpsim_sim::runtime::quiet_provider_panics();
    let out = run(false);
    let v = out
        .violations
        .iter()
        .find(|v| v.rule == id::CRASH_1)
        .expect("CRASH-1");
    assert!(v.message.contains("unwrap on None"), "{}", v.message);
    assert!(v.message.contains("crash.rs:17:"), "{}", v.message);
}
