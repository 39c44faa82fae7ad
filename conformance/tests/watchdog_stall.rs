//! Decision `watchdog-stall`: in virtual time a seed fixes everything but
//! the real-time watchdog, so a watchdog report that a rerun of its case
//! does not show again is the machine stalling the run (an overloaded or
//! swapping host), not the provider: it is counted in `stalls`, not as a
//! finding. A provider whose ESTABLISH blocks for real on its first call
//! only stands in for such a stall.

use cpsim_certify::certify::{certify_subject, CaseSource, CaseSummary, Config, LaneSpec};
use cpsim_certify::scenario::{parse, Scenario};
use cpsim_certify::Subject;
use cpsim_sim::rules::id;
use cpsim_sim::safe::*;
use cpsim_sim::{Cx, Provider, ProviderFactory, Tid};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

static STALLED_ONCE: AtomicBool = AtomicBool::new(false);

struct Once;
struct Host(Option<Instance>);
struct Handler;

impl SessionHandler for Handler {
    fn establish(&self, _cx: &Cx, _inst: &InstanceRef) {
        if !STALLED_ONCE.swap(true, Ordering::SeqCst) {
            // The machine stalls this thread once, past the watchdog's 2 s.
            std::thread::sleep(std::time::Duration::from_millis(2_600));
        }
    }
    fn transition_active(&self, _cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
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

impl Provider for Host {
    fn start(&mut self, cx: &Cx) {
        let i = Instance::create(cx, Arc::new(Handler)).expect("created");
        i.register(&RegisterOptions::default()).expect("registered");
        self.0 = Some(i);
    }
    fn stop(&mut self, _cx: &Cx) {
        if let Some(i) = self.0.take() {
            let _ = i.deregister();
            i.destroy();
        }
    }
}

impl ProviderFactory for Once {
    fn name(&self) -> String {
        "stalls-once".into()
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(Host(None))
    }
}

/// One fixed case: a host starts its provider.
struct Fixed(bool);

impl CaseSource for Fixed {
    fn next_case(&mut self) -> Option<Scenario> {
        if std::mem::replace(&mut self.0, true) {
            return None;
        }
        let text = r#"{ "version": 1, "name": "one start", "hosts": ["A"],
          "provider": { "builtin": "stalls-once" },
          "steps": [ { "do": "start_provider", "at_ms": 0, "host": "A" } ] }"#;
        Some(parse(text, "fixed.json").expect("a scenario"))
    }
    fn observe(&mut self, _case: &Scenario, _summary: &CaseSummary<'_>) {}
}

#[test]
fn sess_7_a_watchdog_report_that_a_virtual_time_rerun_does_not_show_is_a_stall_not_a_finding() {
    let subject = Subject::new("stalls-once", || Arc::new(Once));
    let c = certify_subject(
        &subject,
        Config {
            cases: 1,
            seed: Some(1),
            threads: 1,
            regressions: None,
            source: Some(Arc::new(|_: &LaneSpec| {
                Box::new(Fixed(false)) as Box<dyn CaseSource>
            })),
            ..Config::default()
        },
    );
    assert!(STALLED_ONCE.load(Ordering::SeqCst), "the stall happened");
    assert_eq!(c.stalls, 1);
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    assert_eq!(c.rules[id::SESS_7.index()].violations, 0);
}
