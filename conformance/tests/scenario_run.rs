//! `scenario::run` and the expectation checker, independent of the
//! providers-under-test crate: a small provider defined here carries the
//! traffic, and hand-made outcomes pin every failure sentence.

use cpsim_certify::scenario::{
    check_expectations, idle_notes, parse, run, sim_config, Expect, FirstViolation, Step,
};
use cpsim_sim::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use cpsim_sim::net::NetAddr;
use cpsim_sim::safe::*;
use cpsim_sim::trace::{Event, Trace, What};
use cpsim_sim::{
    Callback, ClockMode, Cx, Nanos, Outcome, Provider, ProviderFactory, RuleId, Tid, Violation,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

// ---------------------------------------------------------------------------
// A minimal correct provider: one instance per host, every host reachable
// through a shared table of transport IDs (no rendezvous).

const PORT: u16 = 9;
type Table = Arc<Mutex<HashMap<Tid, NetAddr>>>;

struct Mini {
    table: Table,
    pend: bool,
}

impl ProviderFactory for Mini {
    fn name(&self) -> String {
        "mini".into()
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(MiniHost {
            table: self.table.clone(),
            pend: self.pend,
            inst: None,
        })
    }
}

struct MiniHost {
    table: Table,
    pend: bool,
    inst: Option<(Instance, Arc<MiniSession>)>,
}

struct MiniSession {
    table: Table,
    me: NetAddr,
    pend: bool,
    ids: Mutex<Vec<Tid>>,
    active: Mutex<bool>,
    /// Deregistered after the platform ended the session.
    deregistered: Arc<Mutex<bool>>,
}

/// The session a host's network handler delivers to, once it exists.
type Bound = (Arc<MiniSession>, InstanceRef);

impl Provider for MiniHost {
    fn start(&mut self, cx: &Cx) {
        let cell: Arc<Mutex<Option<Bound>>> = Arc::default();
        let seen = cell.clone();
        let me = cx
            .bind(PORT, move |_cx, _from, data| {
                // [local len][local][remote len][remote][payload]
                let Some((l, rest)) = data
                    .split_first()
                    .and_then(|(&n, r)| (r.len() >= n as usize).then(|| r.split_at(n as usize)))
                else {
                    return;
                };
                let Some((r, payload)) = rest
                    .split_first()
                    .and_then(|(&n, r)| (r.len() >= n as usize).then(|| r.split_at(n as usize)))
                else {
                    return;
                };
                let (Some(local), Some(remote)) = (Tid::from_bytes(l), Tid::from_bytes(r)) else {
                    return;
                };
                if let Some((s, inst)) = seen.lock().as_ref() {
                    if *s.active.lock() && s.ids.lock().contains(&local) {
                        let _ = inst.indicate(local, remote, payload);
                    }
                }
            })
            .expect("port free");
        let s = Arc::new(MiniSession {
            table: self.table.clone(),
            me,
            pend: self.pend,
            ids: Mutex::default(),
            active: Mutex::new(false),
            deregistered: Arc::default(),
        });
        let inst = Instance::create(cx, s.clone()).expect("create");
        *cell.lock() = Some((s.clone(), inst.as_ref()));
        inst.register(&RegisterOptions::default())
            .expect("register");
        self.inst = Some((inst, s));
    }
    fn stop(&mut self, _cx: &Cx) {
        if let Some((inst, s)) = self.inst.take() {
            if !*s.deregistered.lock() {
                let _ = inst.deregister();
            }
            inst.destroy();
        }
    }
}

impl MiniSession {
    fn reply(&self, cx: &Cx, done: Completion, r: Result<(), Failure>) -> Reply {
        if !self.pend {
            return done.result(r);
        }
        let (reply, p) = done.pend();
        cx.spawn(move |_| p.complete(r));
        reply
    }
}

impl SessionHandler for MiniSession {
    fn terminate(&self, cx: &Cx, inst: &InstanceRef, reason: TerminationReason) {
        *self.active.lock() = false;
        for id in self.ids.lock().drain(..) {
            self.table.lock().remove(&id);
        }
        if reason != TerminationReason::ProviderRequest {
            let inst = *inst;
            let done = self.deregistered.clone();
            cx.after(Nanos::from_millis(1), move |_| {
                let _ = inst.deregister();
                *done.lock() = true;
            });
        }
    }
    fn transition_active(&self, cx: &Cx, _: &InstanceRef, done: Completion) -> Reply {
        *self.active.lock() = true;
        self.reply(cx, done, Ok(()))
    }
    fn transition_dormant(&self, cx: &Cx, _: &InstanceRef, done: Completion) -> Reply {
        *self.active.lock() = false;
        self.reply(cx, done, Ok(()))
    }
    fn add_transport_id(&self, cx: &Cx, _: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let fresh = {
            let mut t = self.table.lock();
            !t.contains_key(&id) && t.insert(id, self.me).is_none()
        };
        if fresh {
            self.ids.lock().push(id);
        }
        self.reply(cx, done, if fresh { Ok(()) } else { Err(Failure::FAIL) })
    }
    fn remove_transport_id(&self, cx: &Cx, _: &InstanceRef, id: Tid, done: Completion) -> Reply {
        self.ids.lock().retain(|x| *x != id);
        self.table.lock().remove(&id);
        self.reply(cx, done, Ok(()))
    }
    fn reach_transport_id(&self, cx: &Cx, _: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let known = self.table.lock().contains_key(&id);
        self.reply(cx, done, if known { Ok(()) } else { Err(Failure::FAIL) })
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
        let Some(to) = self.table.lock().get(&remote).copied() else {
            return self.reply(cx, done, Err(Failure::FAIL));
        };
        // The receiver's local ID is our remote one, and the other way round.
        let mut msg = vec![remote.as_bytes().len() as u8];
        msg.extend_from_slice(remote.as_bytes());
        msg.push(local.as_bytes().len() as u8);
        msg.extend_from_slice(local.as_bytes());
        msg.extend_from_slice(&data.to_vec());
        cx.send_to(PORT, to, &msg);
        self.reply(cx, done, Ok(()))
    }
}

fn mini(pend: bool) -> Arc<dyn ProviderFactory> {
    Arc::new(Mini {
        table: Arc::default(),
        pend,
    })
}

// ---------------------------------------------------------------------------
// Real runs.

const STORY: &str = r#"{
  "version": 1,
  "name": "story",
  "hosts": ["A", "B"],
  "provider": {"builtin": "mini"},
  "platform": {"seed": 7, "drain_ms": 2000, "idle_dormancy_ms": 300, "net": {"delay_ms": 3}},
  "steps": [
    {"do": "send", "at_ms": 100, "from": "A", "to": "B", "bytes": 64},
    {"do": "listen", "at_ms": 10, "host": "B", "on": true},
    {"do": "start_provider", "at_ms": 0, "host": "B"},
    {"do": "start_provider", "at_ms": 0, "host": "A"},
    {"do": "send", "at_ms": 100, "from": "A", "to": "B", "family": "v6", "bytes": 1200},
    {"do": "shutdown", "at_ms": 900, "host": "A"}
  ],
  "expect": {
    "violations": [],
    "delivered": 2,
    "termination": "PLATFORM_SHUTDOWN",
    "callbacks_in_order": ["ESTABLISH_SESSION_INDICATION", "TRANSITION_ACTIVE", "ADD_TRANSPORT_ID",
                           "REACH_TRANSPORT_ID", "SEND_BUFFERS", "TERMINATE_SESSION_INDICATION"]
  }
}"#;

#[test]
fn a_story_runs_and_meets_its_expectations() {
    let s = parse(STORY, "story.json").unwrap();
    for pend in [false, true] {
        let r = run(&s, mini(pend), ClockMode::Virtual);
        assert!(
            r.passed(),
            "pend={pend}: {:#?}\n{}",
            r.failures,
            r.outcome.trace.to_json()
        );
        assert_eq!((r.outcome.sent, r.outcome.delivered), (2, 2));
    }
}

#[test]
fn the_config_follows_the_platform_settings() {
    let s = parse(STORY, "story.json").unwrap();
    let c = sim_config(&s, ClockMode::RealTime);
    assert_eq!(c.seed, 7);
    assert_eq!(c.clock, ClockMode::RealTime);
    assert_eq!(c.drain_ms, 2000);
    assert_eq!(c.idle_dormancy_ms, 300);
    assert_eq!(c.net.delay_ms, 3);
    assert_eq!(c.limits, s.platform.limits);
    assert_eq!(c.tasks, s.platform.tasks);
}

#[test]
fn the_run_goes_to_the_last_step_then_drains() {
    let s = parse(STORY, "story.json").unwrap();
    let r = run(&s, mini(false), ClockMode::Virtual);
    // 900 ms of steps, 2000 ms of drain, 1 s for the providers to stop.
    assert_eq!(r.outcome.end, Nanos::from_millis(900 + 2000 + 1000));
}

#[test]
fn steps_at_the_same_time_keep_file_order() {
    // Both starts are at 0 ms: B is listed first, so B's provider starts first.
    let s = parse(STORY, "story.json").unwrap();
    let r = run(&s, mini(false), ClockMode::Virtual);
    let starts: Vec<&str> = r
        .outcome
        .trace
        .events
        .iter()
        .filter(|e| matches!(e.what, What::ProviderStart))
        .map(|e| r.outcome.trace.hosts[e.host as usize].as_str())
        .collect();
    assert_eq!(starts, ["B", "A"]);
    // Same seed, same trace.
    let again = run(&s, mini(false), ClockMode::Virtual);
    assert_eq!(r.outcome.trace, again.outcome.trace);
}

#[test]
fn unmet_expectations_are_reported_by_a_real_run() {
    let text = STORY
        .replace("\"delivered\": 2", "\"delivered\": 3")
        .replace("\"PLATFORM_SHUTDOWN\"", "\"PROVIDER_TIMEOUT\"");
    let s = parse(&text, "story.json").unwrap();
    let r = run(&s, mini(false), ClockMode::Virtual);
    assert_eq!(
        r.failures,
        [
            "expected a session to end with PROVIDER_TIMEOUT but TERMINATE_SESSION_INDICATION only came with [PLATFORM_SHUTDOWN, PROVIDER_REQUEST]",
            "expected 3 datagrams delivered, got 2 (of 2 sent)",
        ]
    );
}

/// Every kind of step that can find nothing to act on, each where it does
/// nothing, among steps that do something.
const IDLE: &str = r#"{
  "version": 1,
  "name": "idle",
  "hosts": ["A", "B", "C"],
  "provider": {"builtin": "mini"},
  "platform": {"seed": 7},
  "steps": [
    {"do": "start_provider", "at_ms": 0, "host": "A"},
    {"do": "start_provider", "at_ms": 5, "host": "A"},
    {"do": "stop_provider", "at_ms": 10, "host": "B"},
    {"do": "dormant", "at_ms": 20, "host": "B"},
    {"do": "communication_error", "at_ms": 30, "host": "C"},
    {"do": "heal", "at_ms": 40},
    {"do": "address_add", "at_ms": 50, "host": "B"},
    {"do": "duplicate_address", "at_ms": 60, "host": "A", "of": "B"},
    {"do": "address_remove", "at_ms": 70, "host": "A"},
    {"do": "address_return", "at_ms": 75, "host": "A"},
    {"do": "interface_up", "at_ms": 76, "host": "A"},
    {"do": "interface_down", "at_ms": 77, "host": "B"},
    {"do": "interface_down", "at_ms": 78, "host": "A"},
    {"do": "interface_down", "at_ms": 79, "host": "A"},
    {"do": "interface_up", "at_ms": 79, "host": "A"},
    {"do": "partition", "at_ms": 80, "a": "A", "b": "B"},
    {"do": "heal", "at_ms": 90},
    {"do": "start_provider", "at_ms": 100, "host": "B"},
    {"do": "stop_provider", "at_ms": 200, "host": "B"},
    {"do": "stop_provider", "at_ms": 300, "host": "B"},
    {"do": "dormant", "at_ms": 300, "host": "B"}
  ],
  "expect": {"violations": []}
}"#;

#[test]
fn idle_steps_are_noted_with_their_step_and_why() {
    let s = parse(IDLE, "idle.json").unwrap();
    let r = run(&s, mini(false), ClockMode::Virtual);
    assert!(r.passed(), "{:#?}", r.failures);
    let notes = idle_notes(&s, &r.outcome);
    let want = [
        "step 2 (`start_provider` at 5 ms on host A): A's provider is already running",
        "step 3 (`stop_provider` at 10 ms on host B): B's provider is not running",
        "step 4 (`dormant` at 20 ms on host B): B's provider is not running",
        "step 5 (`communication_error` at 30 ms on host C): C's provider is not running",
        "step 6 (`heal` at 40 ms): no partition is in place",
        "step 7 (`address_add` at 50 ms on host B): B has no registered interface",
        "step 8 (`duplicate_address` at 60 ms on host A): B has no registered interface to copy an address from",
        "step 9 (`address_remove` at 70 ms on host A): A's interface has no extra address to remove",
        "step 10 (`address_return` at 75 ms on host A): A's interface has no removed address to give back",
        "step 11 (`interface_up` at 76 ms on host A): A's interface has no address taken down to bring back",
        "step 12 (`interface_down` at 77 ms on host B): B has no registered interface",
        "step 14 (`interface_down` at 79 ms on host A): A's interface has no address to take down",
        // Found as the run went: B's provider was started and stopped in
        // between, so only the second stop does nothing.
        "step 20 (`stop_provider` at 300 ms on host B): B's provider is not running",
        "step 21 (`dormant` at 300 ms on host B): B's provider is not running",
    ]
    .map(|w| format!("{w}; the step does nothing"));
    assert_eq!(notes, want);
    // The same steps, each where it acts, are no idle step.
    let story = parse(STORY, "story.json").unwrap();
    let r = run(&story, mini(false), ClockMode::Virtual);
    assert_eq!(idle_notes(&story, &r.outcome), Vec::<String>::new());
}

#[test]
fn idle_steps_leave_the_trace_as_it_was() {
    // Each idle step made an `advance` at its time, or left as it is: no
    // trace event differs but the notes some of them always wrote
    // (`dormancy requested`, …).
    let s = parse(IDLE, "idle.json").unwrap();
    let r = run(&s, mini(false), ClockMode::Virtual);
    let with_all: Vec<&Event> = r
        .outcome
        .trace
        .events
        .iter()
        .filter(|e| !matches!(e.what, What::Note { .. } | What::CommunicationError))
        .collect();
    let mut busy = s.clone();
    let idle: Vec<usize> = r.outcome.idle.iter().map(|i| i.order as usize).collect();
    busy.steps = s
        .steps
        .iter()
        .enumerate()
        .map(|(k, st)| {
            if idle.contains(&k) {
                Step::Advance { at_ms: st.at_ms() }
            } else {
                st.clone()
            }
        })
        .collect();
    let b = run(&busy, mini(false), ClockMode::Virtual);
    assert!(b.outcome.idle.is_empty(), "{:?}", b.outcome.idle);
    let without: Vec<&Event> = b
        .outcome
        .trace
        .events
        .iter()
        .filter(|e| !matches!(e.what, What::Note { .. } | What::CommunicationError))
        .collect();
    let strip = |v: Vec<&Event>| -> Vec<(Nanos, u8, u32, What)> {
        v.into_iter()
            .map(|e| (e.at, e.host, e.inst, e.what.clone()))
            .collect()
    };
    assert_eq!(strip(with_all), strip(without));
}

#[test]
fn a_step_names_itself_as_the_file_spells_it() {
    let text = r#"{"version": 1, "name": "all", "hosts": ["A", "B"], "provider": {"name": "mini"},
      "steps": [
        {"do": "start_provider", "at_ms": 0, "host": "A"},
        {"do": "stop_provider", "at_ms": 0, "host": "A"},
        {"do": "listen", "at_ms": 0, "host": "A", "on": true},
        {"do": "send", "at_ms": 0, "from": "A", "to": "B", "bytes": 1},
        {"do": "send_many", "at_ms": 0, "from": "A", "to": "B", "bytes": 1, "count": 2, "every_ms": 1},
        {"do": "address_add", "at_ms": 0, "host": "A"},
        {"do": "address_remove", "at_ms": 0, "host": "A"},
        {"do": "address_return", "at_ms": 0, "host": "A"},
        {"do": "interface_down", "at_ms": 0, "host": "A"},
        {"do": "interface_up", "at_ms": 0, "host": "A"},
        {"do": "duplicate_address", "at_ms": 0, "host": "A", "of": "B"},
        {"do": "dormant", "at_ms": 0, "host": "A"},
        {"do": "shutdown", "at_ms": 0, "host": "A"},
        {"do": "communication_error", "at_ms": 0, "host": "A"},
        {"do": "partition", "at_ms": 0, "a": "A", "b": "B"},
        {"do": "heal", "at_ms": 0},
        {"do": "net_faults", "at_ms": 0, "faults": {}},
        {"do": "task_timing", "at_ms": 0, "timing": {}},
        {"do": "advance", "at_ms": 0}
      ]}"#;
    let s = parse(text, "all.json").unwrap();
    assert_eq!(s.steps.len(), 19);
    for st in &s.steps {
        let v = serde_json::to_value(st).unwrap();
        assert_eq!(v["do"], st.kind(), "{v}");
        let host = v.get("host").or(v.get("from")).or(v.get("a"));
        assert_eq!(st.place().is_empty(), host.is_none(), "{v}");
    }
}

#[test]
fn a_scenario_without_hosts_fails_instead_of_panicking() {
    let mut s = parse(STORY, "story.json").unwrap();
    s.hosts.clear();
    let r = run(&s, mini(false), ClockMode::Virtual);
    assert_eq!(r.failures.len(), 1);
    assert!(r.failures[0].contains("0 hosts"), "{:?}", r.failures);
}

// ---------------------------------------------------------------------------
// Failure sentences, on hand-made outcomes.

fn rule(id: &str) -> RuleId {
    RuleId::parse(id).unwrap()
}

fn violation(id: &str, step: u64) -> Violation {
    Violation {
        rule: rule(id),
        host: "A".into(),
        instance: Some("A#1".into()),
        callback: Some("SEND_BUFFERS".into()),
        step,
        at: Nanos::from_millis(1),
        message: "something broke".into(),
    }
}

fn call(step: u64, cb: Callback, reason: Option<Reason>) -> Event {
    Event {
        step,
        at: Nanos::from_millis(step),
        host: 0,
        inst: 1,
        what: What::Call {
            cb,
            call: 0,
            tid: None,
            remote: None,
            bytes: None,
            reason,
            context_delta: 0,
            routine: false,
        },
    }
}

fn outcome(violations: Vec<Violation>, events: Vec<Event>) -> Outcome {
    Outcome {
        violations,
        trace: Trace {
            hosts: vec!["A".into()],
            events,
            ..Trace::default()
        },
        end: Nanos::ZERO,
        sent: 5,
        delivered: 4,
        idle: Vec::new(),
    }
}

#[test]
fn violation_expectations_say_what_differs() {
    let out = outcome(
        vec![violation("COMP-3", 40), violation("TIME-1", 52)],
        vec![],
    );
    let exact = |ids: &[&str]| Expect {
        violations: Some(ids.iter().map(|i| rule(i)).collect()),
        ..Expect::default()
    };
    assert_eq!(
        check_expectations(&exact(&["COMP-3"]), &out),
        ["expected exactly [COMP-3] but got [COMP-3, TIME-1]; first unexpected: TIME-1 at step 52 (1ms) A#1 SEND_BUFFERS: something broke"
            .replace("(1ms)", &format!("({})", Nanos::from_millis(1)))]
    );
    assert_eq!(
        check_expectations(&exact(&["COMP-3", "COMP-4", "TIME-1"]), &out),
        ["expected exactly [COMP-3, COMP-4, TIME-1] but got [COMP-3, TIME-1]"]
    );
    assert!(check_expectations(&exact(&["TIME-1", "COMP-3", "COMP-3"]), &out).is_empty());
    let none = check_expectations(&exact(&[]), &out);
    assert!(
        none[0].starts_with(
            "expected no violation but got [COMP-3, TIME-1]; first unexpected: COMP-3 at step 40"
        ),
        "{none:?}"
    );

    let includes = Expect {
        includes: Some(vec![rule("TIME-1"), rule("COMP-4"), rule("DATA-5")]),
        ..Expect::default()
    };
    assert_eq!(
        check_expectations(&includes, &out),
        ["expected the violations to include [TIME-1, COMP-4, DATA-5] but [COMP-4, DATA-5] were never reported (got [COMP-3, TIME-1])"]
    );
    let fine = Expect {
        includes: Some(vec![rule("TIME-1")]),
        ..Expect::default()
    };
    assert!(check_expectations(&fine, &out).is_empty());
}

#[test]
fn first_violation_is_pinned_to_rule_and_step() {
    let out = outcome(
        vec![violation("COMP-3", 40), violation("TIME-1", 52)],
        vec![],
    );
    let at = |id: &str, step| Expect {
        first_violation: Some(FirstViolation {
            rule: rule(id),
            step,
        }),
        ..Expect::default()
    };
    assert!(check_expectations(&at("COMP-3", 40), &out).is_empty());
    assert_eq!(
        check_expectations(&at("COMP-3", 41), &out),
        ["expected first violation COMP-3 at step 41, got COMP-3 at step 40"]
    );
    assert_eq!(
        check_expectations(&at("TIME-1", 52), &outcome(vec![], vec![])),
        ["expected first violation TIME-1 at step 52, got no violation"]
    );
}

#[test]
fn callback_order_says_where_it_broke() {
    use Callback::*;
    let events = vec![
        call(3, EstablishSessionIndication, None),
        call(5, AddTransportId, None),
        call(7, TransitionActive, None),
        call(9, TerminateSessionIndication, Some(Reason::ProviderRequest)),
    ];
    let out = outcome(vec![], events);
    let order = |cbs: Vec<Callback>| Expect {
        callbacks_in_order: Some(cbs),
        ..Expect::default()
    };
    assert!(check_expectations(
        &order(vec![EstablishSessionIndication, TransitionActive]),
        &out
    )
    .is_empty());
    assert_eq!(
        check_expectations(&order(vec![TransitionActive, AddTransportId]), &out),
        ["expected callbacks in order [TRANSITION_ACTIVE, ADD_TRANSPORT_ID]: ADD_TRANSPORT_ID never came after TRANSITION_ACTIVE (step 7)"]
    );
    assert_eq!(
        check_expectations(&order(vec![EstablishSessionIndication, SendBuffers]), &out),
        ["expected callbacks in order [ESTABLISH_SESSION_INDICATION, SEND_BUFFERS]: SEND_BUFFERS never happened"]
    );
}

#[test]
fn termination_and_delivery_are_checked() {
    let out = outcome(
        vec![],
        vec![call(
            9,
            Callback::TerminateSessionIndication,
            Some(Reason::ProviderRequest),
        )],
    );
    let t = |r| Expect {
        termination: Some(r),
        ..Expect::default()
    };
    assert!(check_expectations(&t(Reason::ProviderRequest), &out).is_empty());
    assert_eq!(
        check_expectations(&t(Reason::ProviderTimeout), &out),
        ["expected a session to end with PROVIDER_TIMEOUT but TERMINATE_SESSION_INDICATION only came with [PROVIDER_REQUEST]"]
    );
    assert_eq!(
        check_expectations(&t(Reason::PlatformShutdown), &outcome(vec![], vec![])),
        ["expected a session to end with PLATFORM_SHUTDOWN but no TERMINATE_SESSION_INDICATION was delivered"]
    );
    let d = Expect {
        delivered: Some(5),
        ..Expect::default()
    };
    assert_eq!(
        check_expectations(&d, &out),
        ["expected 5 datagrams delivered, got 4 (of 5 sent)"]
    );
}

#[test]
fn send_many_is_its_sends_in_its_place() {
    // Ten datagrams 50 ms apart from 100 ms, listed between steps some of
    // which share their instants: the same run as ten `send` steps there.
    let steps = |middle: &str| {
        format!(
            r#"{{
  "version": 1,
  "name": "many",
  "hosts": ["A", "B"],
  "provider": {{"builtin": "mini"}},
  "platform": {{"seed": 3, "drain_ms": 2000}},
  "steps": [
    {{"do": "start_provider", "at_ms": 0, "host": "A"}},
    {{"do": "start_provider", "at_ms": 0, "host": "B"}},
    {{"do": "listen", "at_ms": 50, "host": "B", "on": true}},
    {{"do": "address_add", "at_ms": 200, "host": "B"}},
    {middle},
    {{"do": "send", "at_ms": 300, "from": "B", "to": "A", "bytes": 10}},
    {{"do": "dormant", "at_ms": 350, "host": "A"}}
  ],
  "expect": {{"violations": [], "delivered": 11}}
}}"#
        )
    };
    let many = steps(
        r#"{"do": "send_many", "at_ms": 100, "from": "A", "to": "B", "bytes": 20, "count": 10, "every_ms": 50}"#,
    );
    let sends: Vec<String> = (0..10)
        .map(|k| {
            format!(
                r#"{{"do": "send", "at_ms": {}, "from": "A", "to": "B", "bytes": 20}}"#,
                100 + 50 * k
            )
        })
        .collect();
    let one_by_one = steps(&sends.join(",\n    "));
    for pend in [false, true] {
        let a = run(
            &parse(&many, "many.json").unwrap(),
            mini(pend),
            ClockMode::Virtual,
        );
        let b = run(
            &parse(&one_by_one, "sends.json").unwrap(),
            mini(pend),
            ClockMode::Virtual,
        );
        assert!(a.passed(), "{:#?}", a.failures);
        assert_eq!(a.outcome.trace, b.outcome.trace);
        assert_eq!(a.outcome.end, Nanos::from_millis(550 + 2000 + 1000));
    }
}

#[test]
fn expectations_read_from_a_cut_trace_say_so() {
    let mut out = outcome(
        vec![],
        vec![
            call(3, Callback::EstablishSessionIndication, None),
            call(9000, Callback::SendBuffers, None),
        ],
    );
    out.trace.omitted = Some(cpsim_sim::trace::Omitted {
        at: 1,
        events: 8996,
        platform_violations: vec![],
    });
    let t = Expect {
        termination: Some(Reason::PlatformShutdown),
        ..Expect::default()
    };
    assert_eq!(
        check_expectations(&t, &out),
        ["expected a session to end with PLATFORM_SHUTDOWN but no TERMINATE_SESSION_INDICATION was delivered (the run outgrew its trace, which left out 8996 events, steps 4 to 8999; they were not searched)"]
    );
}
