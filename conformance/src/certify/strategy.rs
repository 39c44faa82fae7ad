//! Proptest strategies for platform-side schedules: what the platform and
//! its applications do, when, on which host, with which network faults,
//! and — the lever no other tool has — when the provider's tasks (and so its
//! pended completions) run relative to the callbacks that spawned them.

use crate::scenario::{PlatformSettings, ProviderRef, Scenario, Step, VERSION};
use cpsim_sim::{Family, NetFaults, TaskTiming};
use proptest::prelude::*;

/// What a generated case may contain.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Simulated hosts, 2 or 3 (all start their provider at time 0).
    pub hosts: usize,
    /// At least this many steps after the start (1 or more).
    pub min_steps: usize,
    /// At most this many steps after the start.
    pub max_steps: usize,
    /// Steps happen within this much virtual time (ms).
    pub horizon_ms: u64,
    /// Time after the last step before the final checks (ms).
    pub drain_ms: u64,
}

impl Shape {
    /// The shape for providers run in real time: every millisecond of a
    /// case is a real one, so cases are short and drain quickly.
    pub fn real_time(self) -> Shape {
        Shape {
            horizon_ms: self.horizon_ms.min(2_000),
            drain_ms: self.drain_ms.min(500),
            ..self
        }
    }

    /// The shape that suits a C module run in real time in a child process:
    /// two hosts, a dozen steps within two seconds.
    pub fn real_time_module() -> Shape {
        Shape {
            hosts: 2,
            max_steps: 12,
            horizon_ms: 2_000,
            ..Shape::default()
        }
    }
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            hosts: 3,
            min_steps: 1,
            max_steps: 24,
            horizon_ms: 60_000,
            drain_ms: cpsim_sim::Config::default().drain_ms,
        }
    }
}

const NAMES: [&str; 3] = ["A", "B", "C"];

fn step(hosts: Vec<String>, horizon: u64) -> impl Strategy<Value = Step> {
    // Two different hosts (the loader refuses a host duplicating its own
    // address, and a partition of a node from itself).
    let n = hosts.len();
    let pair = hosts.clone();
    let two =
        (0..n, 1..n.max(2)).prop_map(move |(i, d)| (pair[i].clone(), pair[(i + d) % n].clone()));
    let h = prop::sample::select(hosts);
    let t = 1..horizon;
    prop_oneof![
        6 => (t.clone(), h.clone(), h.clone(), any::<bool>(), prop_oneof![Just(0u32), 1u32..200, 200u32..1500])
            .prop_map(|(at_ms, from, to, v6, bytes)| Step::Send {
                at_ms, from, to, family: if v6 { Family::V6 } else { Family::V4 }, bytes
            }),
        4 => (t.clone(), h.clone(), prop::bool::weighted(0.8)).prop_map(|(at_ms, host, on)| Step::Listen { at_ms, host, on }),
        2 => (t.clone(), h.clone()).prop_map(|(at_ms, host)| Step::Dormant { at_ms, host }),
        1 => (t.clone(), h.clone()).prop_map(|(at_ms, host)| Step::AddressAdd { at_ms, host }),
        1 => (t.clone(), h.clone()).prop_map(|(at_ms, host)| Step::AddressRemove { at_ms, host }),
        1 => (t.clone(), two.clone()).prop_map(|(at_ms, (host, of))| Step::DuplicateAddress { at_ms, host, of }),
        1 => (t.clone(), h.clone()).prop_map(|(at_ms, host)| Step::Shutdown { at_ms, host }),
        1 => (t.clone(), h.clone()).prop_map(|(at_ms, host)| Step::CommunicationError { at_ms, host }),
        1 => (t.clone(), h.clone()).prop_map(|(at_ms, host)| Step::StopProvider { at_ms, host }),
        1 => (t.clone(), h.clone()).prop_map(|(at_ms, host)| Step::StartProvider { at_ms, host }),
        1 => (t.clone(), two).prop_map(|(at_ms, (a, b))| Step::Partition { at_ms, a, b }),
        1 => t.clone().prop_map(|at_ms| Step::Heal { at_ms }),
        1 => (t.clone(), timing()).prop_map(|(at_ms, timing)| Step::TaskTiming { at_ms, timing }),
    ]
}

/// Task timing: mostly plain, sometimes racing the return, late, stalled
/// past a timeout, or never run.
pub fn timing() -> impl Strategy<Value = TaskTiming> {
    prop_oneof![
        2 => Just(TaskTiming::default()),
        3 => (0.0..0.6f64, 0.0..0.4f64, 1u64..500).prop_map(|(before_return, late, late_max_ms)| TaskTiming {
            before_return, late, late_max_ms, ..TaskTiming::default()
        }),
        1 => (0.0..0.3f64, 0.0..0.1f64, 0.0..0.05f64).prop_map(|(before_return, after_timeout, never)| TaskTiming {
            before_return, after_timeout, never, ..TaskTiming::default()
        }),
    ]
}

/// Network faults: mostly clean.
pub fn net() -> impl Strategy<Value = NetFaults> {
    prop_oneof![
        4 => (1u64..10).prop_map(|delay_ms| NetFaults { delay_ms, ..NetFaults::default() }),
        1 => (0.0..0.2f64, 0.0..0.1f64, 0.0..0.3f64, 1u64..30, 0u64..30).prop_map(
            |(loss, duplicate, reorder, delay_ms, jitter_ms)| NetFaults { loss, duplicate, reorder, delay_ms, jitter_ms }
        ),
    ]
}

/// Whole cases for `provider`, as scenarios.
pub fn case(provider: String, shape: Shape) -> impl Strategy<Value = Scenario> {
    let n = shape.hosts.clamp(2, 3);
    let drain_ms = shape.drain_ms;
    let hosts: Vec<String> = NAMES[..n].iter().map(|s| s.to_string()).collect();
    let max = shape.max_steps.max(1);
    let steps = prop::collection::vec(
        step(hosts.clone(), shape.horizon_ms.max(2)),
        shape.min_steps.clamp(1, max)..=max,
    );
    (any::<u64>(), net(), timing(), steps).prop_map(move |(seed, net, tasks, mut steps)| {
        steps.sort_by_key(Step::at_ms);
        let mut all: Vec<Step> = hosts
            .iter()
            .map(|h| Step::StartProvider {
                at_ms: 0,
                host: h.clone(),
            })
            .collect();
        all.extend(steps);
        Scenario {
            version: VERSION,
            name: format!("generated case (seed {seed:#x})"),
            description: String::new(),
            hosts: hosts.clone(),
            provider: ProviderRef::Name(provider.clone()),
            provider_config: serde_json::Value::Null,
            platform: PlatformSettings {
                seed,
                net,
                tasks,
                drain_ms,
                ..PlatformSettings::default()
            },
            steps: all,
            expect: Default::default(),
        }
    })
}
