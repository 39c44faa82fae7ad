//! A burst of application datagrams at one instant towards an instance
//! that cannot take them yet (dormant, activating, or waiting for a REACH)
//! costs one look per datagram in the routing, not one per datagram and
//! per send, and arrives whole; and the routing's walk, which skips the
//! datagrams an earlier walk that changed nothing already looked at, does
//! exactly what the walk over every waiting datagram does (random
//! schedules, same trace byte for byte).

mod common;
use common::*;
use cpsim_sim::*;
use proptest::prelude::*;

fn ms(n: u64) -> Nanos {
    Nanos::from_millis(n)
}

fn send(from: &str, to: &str, family: Family, bytes: u32) -> Action {
    send_to(from, to, family, bytes, false)
}

fn send_to(from: &str, to: &str, family: Family, bytes: u32, newest: bool) -> Action {
    Action::Send {
        from: from.into(),
        to: to.into(),
        family,
        bytes,
        newest,
    }
}

/// A and B of the toy (`asynchronous`: every callback pends), B listening
/// from 5 ms, A listening too if `a_listens` (so active, with its REACH of
/// B still to make); at 100 ms A sends `n` datagrams at one instant to B.
/// Returns the outcome and the waiting datagrams the routing examined.
fn burst(n: u64, asynchronous: bool, a_listens: bool, every_walk_whole: bool) -> (Outcome, u64) {
    let sim = Sim::new(
        Config::with_seed(9),
        &["A", "B"],
        ToyFactory::new(ToyOptions {
            asynchronous,
            instances: 1,
            ..ToyOptions::default()
        }),
    );
    if every_walk_whole {
        sim.examine_every_waiting_datagram();
    }
    start(&sim, &["A", "B"], "B", 5);
    if a_listens {
        sim.schedule(
            ms(5),
            Action::Listen {
                host: "A".into(),
                on: true,
            },
        );
    }
    sim.schedule_repeated(ms(100), ms(0), n, send("A", "B", Family::V4, 32));
    sim.run_until(ms(2_000));
    let examined = sim.datagrams_examined();
    (sim.finish(), examined)
}

/// Every datagram arrives, and the walks' looks at waiting datagrams grow
/// linearly with the burst: one per datagram and per change that can move
/// them (the activation, each ADD, the REACH: a handful), so twice the
/// datagrams cost twice the looks. The walk over every waiting datagram
/// makes about n²/2 of them, one walk per send (which is what makes this
/// test able to fail); its trace is the same.
fn assert_linear(asynchronous: bool, a_listens: bool) {
    let n = 1_000;
    let mut looks = Vec::new();
    for n in [n, 2 * n] {
        let (out, examined) = burst(n, asynchronous, a_listens, false);
        assert!(out.violations.is_empty(), "{:#?}", out.violations);
        assert_eq!((out.sent, out.delivered), (n as u32, n as u32), "no loss");
        assert!(examined <= 8 * n, "{examined} looks for {n} datagrams");
        looks.push(examined);
    }
    assert!(
        looks[1] <= 2 * looks[0] + 8,
        "{} looks for {n} datagrams, {} for {}",
        looks[0],
        looks[1],
        2 * n
    );
    let (out, _) = burst(n, asynchronous, a_listens, false);
    let (whole, examined_whole) = burst(n, asynchronous, a_listens, true);
    assert!(whole.trace == out.trace, "the traces differ");
    assert!(
        examined_whole >= n * n / 2,
        "the whole walk made only {examined_whole} looks"
    );
}

#[test]
fn data_5_a_burst_towards_a_dormant_instance_arrives_whole_with_a_linear_routing_cost() {
    assert_linear(false, false);
}

#[test]
fn data_5_a_burst_towards_an_activating_instance_arrives_whole_with_a_linear_routing_cost() {
    // The toy's TRANSITION_ACTIVE pends: the burst waits through it.
    assert_linear(true, false);
}

#[test]
fn data_5_a_burst_waiting_for_its_reach_arrives_whole_with_a_linear_routing_cost() {
    // A listens, so it is active: the burst waits for A's REACH of B.
    assert_linear(true, true);
}

fn hosts() -> Vec<cpsim_sim::HostName> {
    vec!["A".into(), "B".into(), "C".into()]
}

/// A step of a random schedule: `count` repetitions of the action,
/// `every` ms apart (0: all at one instant).
fn step() -> impl Strategy<Value = (u64, Action, u64, u64)> {
    let h = prop::sample::select(hosts());
    let action = prop_oneof![
        4 => (h.clone(), h.clone(), any::<bool>(), 0u32..600, prop::bool::weighted(0.25)).prop_map(|(from, to, v6, bytes, newest)| {
            send_to(&from, &to, if v6 { Family::V6 } else { Family::V4 }, bytes, newest)
        }),
        2 => (h.clone(), any::<bool>()).prop_map(|(host, on)| Action::Listen { host, on }),
        2 => h.clone().prop_map(|host| Action::Dormant { host }),
        1 => (h.clone(), any::<bool>()).prop_map(|(host, v6)| Action::AddressAdd {
            host, family: if v6 { Family::V6 } else { Family::V4 }
        }),
        1 => h.clone().prop_map(|host| Action::AddressRemove { host }),
        1 => (h.clone(), h.clone(), any::<bool>()).prop_map(|(host, of, v6)| Action::DuplicateAddress {
            host, of, family: if v6 { Family::V6 } else { Family::V4 }
        }),
        1 => h.clone().prop_map(|host| Action::CommunicationError { host }),
        1 => h.clone().prop_map(|host| Action::Shutdown { host }),
        1 => h.clone().prop_map(|host| Action::StopProvider { host }),
        1 => h.clone().prop_map(|host| Action::StartProvider { host }),
        1 => (h.clone(), h.clone()).prop_map(|(a, b)| Action::Partition { a, b }),
        1 => Just(Action::Heal),
    ];
    (
        0u64..3_000,
        action,
        prop_oneof![3 => Just(1u64), 1 => 2u64..60],
        prop_oneof![Just(0u64), 1u64..20],
    )
}

/// Platform faults that change how a session routes (its machine, its
/// source IDs, whether it may send).
fn faults() -> impl Strategy<Value = Vec<PlatformFault>> {
    prop::sample::subsequence(
        vec![
            PlatformFault::DormantFirst,
            PlatformFault::RepeatTransition,
            PlatformFault::IgnoreFailedActivation,
            PlatformFault::CallBeforeEstablish,
            PlatformFault::SendWithoutReach,
            PlatformFault::KeepRemovedId,
        ],
        0..2,
    )
}

#[allow(clippy::too_many_arguments)]
fn run(
    seed: u64,
    asynchronous: bool,
    instances: usize,
    tasks: TaskTiming,
    faults: &[PlatformFault],
    idle_dormancy_ms: u64,
    steps: &[(u64, Action, u64, u64)],
    every_walk_whole: bool,
) -> (Outcome, u64) {
    let cfg = Config {
        seed,
        tasks,
        faults: faults.to_vec(),
        idle_dormancy_ms,
        drain_ms: 40_000,
        ..Config::default()
    };
    let sim = Sim::new(
        cfg,
        &["A", "B", "C"],
        ToyFactory::new(ToyOptions {
            asynchronous,
            instances,
            ..ToyOptions::default()
        }),
    );
    if every_walk_whole {
        sim.examine_every_waiting_datagram();
    }
    for h in ["A", "B", "C"] {
        sim.schedule(Nanos::ZERO, Action::StartProvider { host: h.into() });
    }
    for (at, a, count, every) in steps {
        sim.schedule_repeated(ms(*at), ms(*every), *count, a.clone());
    }
    sim.run_until(Nanos::from_secs(20));
    let examined = sim.datagrams_examined();
    (sim.finish(), examined)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, .. ProptestConfig::default() })]

    /// The routing's walk that skips what an earlier walk left known does
    /// what the walk over every waiting datagram does, on random schedules
    /// with bursts, dormancy, address changes, ended sessions, stopped
    /// providers, partitions, platform faults and racing completions.
    #[test]
    fn the_walk_that_skips_does_what_the_whole_walk_does(
        seed in any::<u64>(),
        asynchronous in any::<bool>(),
        instances in 1usize..4,
        before_return in 0.0..0.5f64,
        late in 0.0..0.5f64,
        faults in faults(),
        idle in prop_oneof![Just(0u64), 50u64..400],
        steps in prop::collection::vec(step(), 1..24),
    ) {
        let tasks = TaskTiming { before_return, late, late_max_ms: 300, ..TaskTiming::default() };
        let (skipping, looks) = run(seed, asynchronous, instances, tasks.clone(), &faults, idle, &steps, false);
        let (whole, looks_whole) = run(seed, asynchronous, instances, tasks, &faults, idle, &steps, true);
        prop_assert_eq!((skipping.sent, skipping.delivered), (whole.sent, whole.delivered));
        prop_assert_eq!(&skipping.violations, &whole.violations);
        prop_assert!(skipping.trace == whole.trace, "the traces differ");
        prop_assert!(looks <= looks_whole, "{} looks, the whole walk {}", looks, looks_whole);
    }
}
