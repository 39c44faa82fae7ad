//! Safe-API providers on a native platform: a world made with
//! `Sim::with_platform` gives its providers the bridge instead of the
//! simulator, so a `SessionHandler` (here the `reference` overlay, unchanged,
//! and small handlers written for the test) runs against the stand-in
//! library exactly as it would against Windows 7's `iphlpapi.dll`.
//!
//! Three judges look at each run: the stand-in (the simulator inside the
//! DLL) holds the provider to the P-rules, the bridge's record of the run is
//! held to the C-rules by sim-cp's platform checker, and the bridge reports
//! what only the safe API sees (a dropped `Pending`, a panic).

mod common;

use common::{standin, World};
use cpsim_native::NativePlatform;
use cpsim_providers::reference::ReferenceFactory;
use cpsim_sim::abi::*;
use cpsim_sim::safe::{Completion, Failure, Instance, InstanceRef, RegisterOptions, Reply};
use cpsim_sim::safe::{SessionHandler, TerminationReason};
use cpsim_sim::trace::{PlatformFn, What};
use cpsim_sim::{
    Action, Callback, Config, Cx, Nanos, Provider, ProviderFactory, Sim, Tid, Violation,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::ThreadId;

/// What one run produced.
struct Run {
    native: &'static NativePlatform,
    /// The stand-in's outcome (its violations judge the provider).
    standin: serde_json::Value,
    /// The providers' own (hosted) world's outcome.
    hosted: cpsim_sim::Outcome,
}

impl Run {
    fn standin_rules(&self) -> Vec<String> {
        self.standin["violations"]
            .as_array()
            .expect("violations")
            .iter()
            .map(|v| format!("{} {}", v["rule"], v["message"]))
            .collect()
    }
    fn platform_rules(&self) -> Vec<String> {
        self.native
            .check()
            .iter()
            .map(Violation::headline)
            .collect()
    }
    fn provider_rules(&self) -> Vec<String> {
        self.native
            .provider_violations()
            .iter()
            .map(Violation::headline)
            .collect()
    }
    fn pended(&self, cb: Callback) -> usize {
        self.native
            .trace()
            .events
            .iter()
            .filter(|e| matches!(e.what, What::Return { cb: c, hr: Some(hr), .. } if c == cb && hr == E_PENDING_IO))
            .count()
    }
    fn late_completions(&self, cb: Callback) -> usize {
        self.native
            .trace()
            .events
            .iter()
            .filter(|e| {
                matches!(e.what, What::Complete { cb: c, early: false, status: 0, .. } if c == cb)
            })
            .count()
    }
    fn indications(&self) -> usize {
        self.native
            .trace()
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.what,
                    What::Function {
                        f: PlatformFn::CPNatfwtIndicateReceivedBuffers,
                        hr: 0,
                        ..
                    }
                )
            })
            .count()
    }
}

/// Hosts A and B run `factory`'s providers on the stand-in, through the
/// bridge, for `ms` of real time; `script` schedules what the stand-in's
/// platform and applications do.
fn run(
    world_config: &str,
    factory: Arc<dyn ProviderFactory>,
    ms: u64,
    script: impl FnOnce(&World),
) -> Run {
    let native = NativePlatform::load(standin())
        .expect("the stand-in has the API")
        .into_static();
    let world = World::new(world_config);
    native.route_creates_to(world.0.clone());
    let platform = native;
    let cfg = Config {
        // Real time: drain briefly before stopping the providers.
        drain_ms: 200,
        ..Config::with_seed(1)
    };
    let sim = Sim::with_platform(cfg, &["A", "B"], factory, platform);
    for host in ["A", "B"] {
        sim.schedule(Nanos::ZERO, Action::StartProvider { host: host.into() });
    }
    script(&world);
    sim.run_for(Nanos::from_millis(ms));
    // Stops the providers: each deregisters and destroys its instances.
    let hosted = sim.finish();
    let standin = world.finish();
    Run {
        native,
        standin,
        hosted,
    }
}

/// Two sends A -> B (IPv4 and IPv6) and a dormancy, as in `standin.rs`.
fn traffic(w: &World) {
    w.at(10, r#"{"do": "listen", "host": "B", "on": true}"#);
    w.at(
        600,
        r#"{"do": "send", "from": "A", "to": "B", "bytes": 100}"#,
    );
    w.at(
        900,
        r#"{"do": "send", "from": "A", "to": "B", "family": "v6", "bytes": 30}"#,
    );
    w.at(1500, r#"{"do": "dormant", "host": "A"}"#);
}

#[test]
fn the_reference_provider_runs_unchanged_on_the_stand_in() {
    let r = run(
        r#"{"hosts": ["A", "B"], "seed": 1}"#,
        ReferenceFactory::new(),
        3000,
        |w| {
            traffic(w);
            // Sessions the platform ends for causes no provider sees: the
            // overlay replaces B's instance (a Create routed to B again),
            // and leaves A alone after its platform shuts down.
            w.at(1800, r#"{"do": "communication_error", "host": "B"}"#);
            w.at(2200, r#"{"do": "shutdown", "host": "A"}"#);
        },
    );
    // The stand-in judged the provider and found nothing.
    assert!(r.standin_rules().is_empty(), "{:#?}", r.standin_rules());
    assert_eq!(r.standin["delivered"], 2, "sent: {}", r.standin["sent"]);
    // The bridge's record passes the platform checker; the safe API had
    // nothing to report; the providers' own world saw nothing wrong.
    assert!(r.platform_rules().is_empty(), "{:#?}", r.platform_rules());
    assert!(r.provider_rules().is_empty(), "{:#?}", r.provider_rules());
    assert!(r.hosted.violations.is_empty(), "{:#?}", r.hosted.violations);
    // The overlay pended what it waits for the network for, and completed
    // it later from its own tasks; the data went through IndicateReceivedBuffers.
    assert!(r.pended(Callback::TransitionActive) >= 2);
    assert!(r.late_completions(Callback::TransitionActive) >= 2);
    assert!(r.pended(Callback::AddTransportId) >= 2);
    assert!(r.late_completions(Callback::SendBuffers) >= 2);
    assert_eq!(r.indications(), 2);
    // B's replacement instance: three Creates in all.
    let creates = r
        .native
        .trace()
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.what,
                What::Function {
                    f: PlatformFn::CPNatfwtCreateProviderInstance,
                    hr: 0,
                    ..
                }
            )
        })
        .count();
    assert_eq!(creates, 3);
    // The bridge put those two endings down to causes it cannot see.
    let unseen: Vec<TerminationReason> = r
        .native
        .trace()
        .events
        .iter()
        .filter_map(|e| match e.what {
            What::UnseenCause { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        unseen,
        [
            TerminationReason::OtherCommunicationError,
            TerminationReason::PlatformShutdown
        ]
    );
}

#[test]
fn the_checker_catches_a_faulty_platform_under_a_safe_provider() {
    // The stand-in passes callbacks a wrong user context (SESS-6). The
    // bridge still hands the safe adapter its own, so the overlay works,
    // and the checker names the platform's fault.
    let r = run(
        r#"{"hosts": ["A", "B"], "seed": 2, "faults": ["wrong-user-context"]}"#,
        ReferenceFactory::new(),
        1200,
        |w| {
            w.at(10, r#"{"do": "listen", "host": "B", "on": true}"#);
            w.at(
                600,
                r#"{"do": "send", "from": "A", "to": "B", "bytes": 64}"#,
            );
        },
    );
    let found = r.platform_rules();
    assert!(found.iter().any(|v| v.starts_with("SESS-6")), "{found:#?}");
    assert!(found.iter().all(|v| v.starts_with("SESS-6")), "{found:#?}");
    assert!(r.provider_rules().is_empty(), "{:#?}", r.provider_rules());
    assert_eq!(r.standin["delivered"], 1);
}

// ---------------------------------------------------------------------------
// Small safe handlers

/// How a test handler answers TRANSITION_ACTIVE.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Activation {
    /// Pend, and complete from a task of the providers' world.
    PendThenComplete,
    /// Pend, and drop the token (COMP-4).
    PendThenDrop,
    /// Panic (CRASH-1).
    Panic,
}

struct Handler {
    activation: Activation,
    threads: Arc<Mutex<Vec<ThreadId>>>,
}

impl SessionHandler for Handler {
    fn establish(&self, _cx: &Cx, _inst: &InstanceRef) {
        self.threads.lock().push(std::thread::current().id());
    }
    fn terminate(&self, _cx: &Cx, _inst: &InstanceRef, _reason: TerminationReason) {}
    fn transition_active(&self, cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        self.threads.lock().push(std::thread::current().id());
        match self.activation {
            Activation::PendThenComplete => {
                let (reply, pending) = done.pend();
                cx.after(Nanos::from_millis(20), move |_| pending.complete(Ok(())));
                reply
            }
            Activation::PendThenDrop => {
                let (reply, pending) = done.pend();
                drop(pending);
                reply
            }
            Activation::Panic => panic!("deliberate panic in TRANSITION_ACTIVE"),
        }
    }
    fn add_transport_id(&self, _cx: &Cx, _i: &InstanceRef, _id: Tid, done: Completion) -> Reply {
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
        _: &cpsim_sim::safe::Buffers<'_>,
        done: Completion,
    ) -> Reply {
        done.fail(Failure::FAIL)
    }
}

struct OneInstance {
    handler: Option<Arc<Handler>>,
    inst: Option<Instance>,
}

impl Provider for OneInstance {
    fn start(&mut self, cx: &Cx) {
        let h = self.handler.take().expect("started once");
        let inst = Instance::create(cx, h).expect("Create through the bridge");
        inst.register(&RegisterOptions::default())
            .expect("Register through the bridge");
        self.inst = Some(inst);
    }
    fn stop(&mut self, _cx: &Cx) {
        if let Some(i) = self.inst.take() {
            let _ = i.deregister();
            i.destroy();
        }
    }
}

struct HandlerFactory {
    activation: Activation,
    threads: Arc<Mutex<Vec<ThreadId>>>,
}

impl ProviderFactory for HandlerFactory {
    fn name(&self) -> String {
        "test handler".into()
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(OneInstance {
            handler: Some(Arc::new(Handler {
                activation: self.activation,
                threads: self.threads.clone(),
            })),
            inst: None,
        })
    }
}

fn handler_run(activation: Activation) -> (Run, Vec<ThreadId>) {
    // The deliberate panic is reported as CRASH-1, not printed.
    cpsim_sim::runtime::quiet_provider_panics();
    let threads = Arc::new(Mutex::new(Vec::new()));
    let factory = Arc::new(HandlerFactory {
        activation,
        threads: threads.clone(),
    });
    // B listens: both instances are sent active.
    let r = run(
        r#"{"hosts": ["A", "B"], "seed": 3, "limits": {"transition_active_ms": 300}}"#,
        factory,
        600,
        |w| w.at(10, r#"{"do": "listen", "host": "B", "on": true}"#),
    );
    let t = threads.lock().clone();
    (r, t)
}

#[test]
fn a_safe_handler_pends_on_the_platform_thread_and_completes_from_its_own() {
    let (r, threads) = handler_run(Activation::PendThenComplete);
    assert!(r.standin_rules().is_empty(), "{:#?}", r.standin_rules());
    assert!(r.platform_rules().is_empty(), "{:#?}", r.platform_rules());
    assert!(r.provider_rules().is_empty(), "{:#?}", r.provider_rules());
    assert!(r.pended(Callback::TransitionActive) >= 1);
    assert_eq!(
        r.pended(Callback::TransitionActive),
        r.late_completions(Callback::TransitionActive)
    );
    // Callbacks came from the platform's threads, not the one driving the
    // providers' world (this test's).
    let me = std::thread::current().id();
    assert!(threads.iter().any(|t| *t != me), "{threads:?}");
}

#[test]
fn a_dropped_pending_is_reported_as_comp_4() {
    let (r, _) = handler_run(Activation::PendThenDrop);
    let found = r.provider_rules();
    assert!(!found.is_empty(), "the dropped token is reported");
    assert!(found.iter().all(|v| v.starts_with("COMP-4")), "{found:#?}");
    assert!(found[0].contains("TRANSITION_ACTIVE"), "{}", found[0]);
    // The stand-in, left waiting, ends the call at its limit.
    assert!(
        r.standin_rules().iter().any(|v| v.contains("TIME-1")),
        "{:#?}",
        r.standin_rules()
    );
    assert!(r.platform_rules().is_empty(), "{:#?}", r.platform_rules());
}

#[test]
fn a_panicking_safe_handler_is_reported_as_crash_1() {
    let (r, _) = handler_run(Activation::Panic);
    let found = r.provider_rules();
    assert!(!found.is_empty(), "the panic is reported");
    assert!(found.iter().all(|v| v.starts_with("CRASH-1")), "{found:#?}");
    assert!(
        found[0].contains("deliberate panic in TRANSITION_ACTIVE"),
        "{}",
        found[0]
    );
    // The panic did not unwind into the platform: the call failed (E_FAIL)
    // and the platform went on.
    let failed = r.native.trace().events.iter().any(|e| {
        matches!(e.what, What::Return { cb: Callback::TransitionActive, hr: Some(hr), .. } if hr == E_FAIL)
    });
    assert!(failed);
    assert!(r.platform_rules().is_empty(), "{:#?}", r.platform_rules());
}
