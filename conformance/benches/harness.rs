//! Benchmarks of the harness (BENCHMARKS.md, items 2, 3 and 5).
//!
//! `cargo bench -p cpsim-certify --bench harness`
//!
//! - `certify`: certification throughput, schedules of exactly 50 steps on
//!   three hosts, against `reference` (item 3) and `sync-raw` (the lightest
//!   correct provider, item 5), on one thread and on every core. One
//!   schedule = one item, so divan's items/s is schedules/s.
//! - `bare_state_machine`: the baseline of item 5, a plain
//!   proptest-state-machine test of a trivial model over the same kind of
//!   schedules (the same step kinds, weights and lengths), one item per case.
//! - `datagrams_sync_raw`: item 2 through the registry's `sync-raw` provider.

use cpsim_certify::certify::Shape;
use cpsim_certify::{certify_subject, Config, Verdict};
use cpsim_sim::{Action, Family, Nanos, Sim};
use divan::counter::ItemsCount;
use divan::Bencher;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

fn main() {
    divan::main();
}

const STEPS: usize = 50;
const CASES: u64 = 64;

fn shape() -> Shape {
    Shape {
        hosts: 3,
        min_steps: STEPS,
        max_steps: STEPS,
        horizon_ms: 60_000,
        ..Shape::default()
    }
}

fn certify_config(threads: usize) -> Config {
    Config {
        cases: CASES,
        seed: Some(0x5eed),
        threads,
        regressions: None,
        shape: shape(),
        ..Config::default()
    }
}

/// Item 3 (and the harness side of item 5): schedules per second.
#[divan::bench(
    args = [("reference", 1), ("reference", 0), ("sync-raw", 1), ("sync-raw", 0)],
    sample_count = 10,
    sample_size = 1
)]
fn certify(bencher: Bencher, (provider, threads): (&str, usize)) {
    let subject = cpsim_providers::registry()
        .subject(provider)
        .expect("a built-in provider");
    bencher.counter(ItemsCount::new(CASES)).bench_local(|| {
        let c = certify_subject(&subject, certify_config(threads));
        assert_ne!(c.verdict, Verdict::Fail, "{}", c.failure_message());
        c
    });
}

/// The baseline's trivial model: what the schedule's steps would change,
/// as counters.
#[derive(Clone, Debug, Default)]
struct Model {
    listening: [bool; 3],
    running: [bool; 3],
    sent: u32,
    partitions: u32,
}

/// The same step kinds and weights as `cpsim_certify::certify::strategy`.
#[derive(Clone, Debug)]
#[allow(dead_code)] // the fields only shape the generated values
enum Step {
    Send {
        from: usize,
        to: usize,
        v6: bool,
        bytes: u32,
    },
    Listen {
        host: usize,
        on: bool,
    },
    Dormant(usize),
    AddressAdd(usize),
    AddressRemove(usize),
    Duplicate(usize, usize),
    Shutdown(usize),
    CommunicationError(usize),
    Stop(usize),
    Start(usize),
    Partition(usize, usize),
    Heal,
    Timing(f64, f64, u64),
}

struct Trivial;

impl ReferenceStateMachine for Trivial {
    type State = Model;
    type Transition = (u64, Step);

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model {
            running: [true; 3],
            ..Model::default()
        })
        .boxed()
    }

    fn transitions(_state: &Model) -> BoxedStrategy<(u64, Step)> {
        let h = 0usize..3;
        let t = 1u64..60_000;
        let step = prop_oneof![
            6 => (h.clone(), h.clone(), any::<bool>(), prop_oneof![Just(0u32), 1u32..200, 200u32..1500])
                .prop_map(|(from, to, v6, bytes)| Step::Send { from, to, v6, bytes }),
            4 => (h.clone(), prop::bool::weighted(0.8)).prop_map(|(host, on)| Step::Listen { host, on }),
            2 => h.clone().prop_map(Step::Dormant),
            1 => h.clone().prop_map(Step::AddressAdd),
            1 => h.clone().prop_map(Step::AddressRemove),
            1 => (h.clone(), h.clone()).prop_map(|(a, b)| Step::Duplicate(a, b)),
            1 => h.clone().prop_map(Step::Shutdown),
            1 => h.clone().prop_map(Step::CommunicationError),
            1 => h.clone().prop_map(Step::Stop),
            1 => h.clone().prop_map(Step::Start),
            1 => (h.clone(), h.clone()).prop_map(|(a, b)| Step::Partition(a, b)),
            1 => Just(Step::Heal),
            1 => (0.0..0.6f64, 0.0..0.4f64, 1u64..500).prop_map(|(a, b, c)| Step::Timing(a, b, c)),
        ];
        (t, step).boxed()
    }

    fn apply(mut s: Model, (_, step): &(u64, Step)) -> Model {
        match step {
            Step::Send { .. } => s.sent += 1,
            Step::Listen { host, on } => s.listening[*host] = *on,
            Step::Stop(h) => s.running[*h] = false,
            Step::Start(h) => s.running[*h] = true,
            Step::Partition(..) => s.partitions += 1,
            Step::Heal => s.partitions = 0,
            _ => {}
        }
        s
    }
}

impl StateMachineTest for Trivial {
    type SystemUnderTest = Model;
    type Reference = Trivial;

    fn init_test(r: &Model) -> Model {
        r.clone()
    }

    fn apply(s: Model, r: &Model, t: (u64, Step)) -> Model {
        let s = <Trivial as ReferenceStateMachine>::apply(s, &t);
        assert_eq!(s.sent, r.sent);
        s
    }
}

/// Item 5's baseline: CASES cases of STEPS transitions, one thread.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn bare_state_machine(bencher: Bencher) {
    bencher.counter(ItemsCount::new(CASES)).bench_local(|| {
        let mut runner = TestRunner::new(PtConfig {
            cases: CASES as u32,
            failure_persistence: None,
            rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
            ..PtConfig::default()
        });
        runner
            .run(
                &Trivial::sequential_strategy(STEPS..=STEPS),
                |(init, transitions, seen)| {
                    Trivial::test_sequential(PtConfig::default(), init, transitions, seen);
                    Ok(())
                },
            )
            .expect("the trivial model passes");
    });
}

const DATAGRAMS: u32 = 4_000;

/// Two hosts of sync-raw, both listening, one datagram each way.
fn warm_sync_raw() -> Sim {
    let e = cpsim_providers::find("sync-raw").expect("sync-raw");
    let sim = Sim::new(cpsim_sim::Config::with_seed(7), &["A", "B"], e.factory());
    for h in ["A", "B"] {
        sim.schedule(Nanos::ZERO, Action::StartProvider { host: h.into() });
        sim.schedule(
            Nanos::ZERO,
            Action::Listen {
                host: h.into(),
                on: true,
            },
        );
    }
    for (from, to) in [("A", "B"), ("B", "A")] {
        sim.schedule(
            Nanos::from_millis(5),
            Action::Send {
                from: from.into(),
                to: to.into(),
                family: Family::V4,
                bytes: 64,
                newest: false,
            },
        );
    }
    sim.run_until(Nanos::from_millis(100));
    assert_eq!(sim.bench_counts(), (2, 2, 0), "warm-up");
    sim
}

/// Item 2 through `sync-raw`: datagrams A -> B in bursts of 100, 1 ms apart.
#[divan::bench(args = [64, 1400], sample_count = 30)]
fn datagrams_sync_raw(bencher: Bencher, bytes: u32) {
    bencher
        .counter(ItemsCount::new(DATAGRAMS))
        .with_inputs(warm_sync_raw)
        .bench_local_values(|sim| {
            let (sent0, delivered0, _) = sim.bench_counts();
            let start = sim.now();
            for k in 0..DATAGRAMS {
                sim.schedule(
                    start.saturating_add(Nanos::from_millis(1 + (k / 100) as u64)),
                    Action::Send {
                        from: "A".into(),
                        to: "B".into(),
                        family: Family::V4,
                        bytes,
                        newest: false,
                    },
                );
            }
            sim.run_until(start.saturating_add(Nanos::from_millis(10 + (DATAGRAMS / 100) as u64)));
            let (sent, delivered, violations) = sim.bench_counts();
            assert_eq!(
                (sent - sent0, delivered - delivered0, violations),
                (DATAGRAMS, DATAGRAMS, 0)
            );
            sim
        });
}
