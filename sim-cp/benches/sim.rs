//! Benchmarks of the simulator's hot paths (BENCHMARKS.md, items 1 and 2).
//!
//! `cargo bench -p cpsim-sim --bench sim`
//!
//! 1. `dispatch`: one synchronous REACH_TRANSPORT_ID dispatched through the
//!    simulator (work queue, event queue, dispatch path, completion
//!    protocol, every check, the trace on), per call; `direct_call`: the
//!    same provider function called directly.
//! 2. `datagrams`: application datagrams end to end between two hosts
//!    through the `tiny` synchronous provider (REACH once, then SEND_BUFFERS,
//!    the simulated network, IndicateReceivedBuffers, DATA-5's integrity
//!    check), per datagram; `burst`: that many datagrams sent at one
//!    instant by a dormant host, which wait for its activation and its
//!    REACH (the routing's walks of waiting datagrams), per datagram.

#[path = "common/tiny.rs"]
mod tiny;

use cpsim_sim::abi::*;
use cpsim_sim::{Action, Config, Family, Nanos, Sim};
use divan::counter::ItemsCount;
use divan::{black_box, Bencher};

fn main() {
    divan::main();
}

/// Two hosts of `tiny`, both listening, one datagram exchanged each way:
/// every instance is active, holds its IDs, and has reached its peer.
fn warm_world(trace: bool) -> Sim {
    let cfg = Config {
        trace,
        ..Config::with_seed(7)
    };
    let sim = Sim::new(cfg, &["A", "B"], tiny::TinyFactory::new(1));
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
    let (sent, delivered, violations) = sim.bench_counts();
    assert_eq!((sent, delivered, violations), (2, 2, 0), "warm-up");
    sim
}

const CALLS: u32 = 2_000;

/// Item 1: ns per synchronous callback through the simulator.
#[divan::bench(args = [true, false], sample_count = 60)]
fn dispatch(bencher: Bencher, trace: bool) {
    bencher
        .counter(ItemsCount::new(CALLS))
        .with_inputs(|| warm_world(trace))
        .bench_local_values(|sim| {
            sim.bench_dispatch(CALLS);
            sim
        });
}

/// Item 1's baseline: the same provider function, called directly.
#[divan::bench]
fn direct_call(bencher: Bencher) {
    let mut bytes = [25u8, 2, 1, 1];
    let mut t = CPNATFWT_TRANSPORT_ID {
        size: 4,
        transportId: bytes.as_mut_ptr(),
    };
    let f: unsafe extern "system" fn(
        CPNATFWT_PROVIDER_INSTANCE,
        *mut std::ffi::c_void,
        *mut CPNATFWT_TRANSPORT_ID,
        *mut std::ffi::c_void,
        CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> HRESULT = tiny::reach;
    bencher.counter(ItemsCount::new(1u32)).bench_local(|| {
        let f = black_box(f);
        // SAFETY: a valid transport ID; tiny's REACH reads only its size.
        unsafe {
            f(
                black_box(CPNATFWT_PROVIDER_INSTANCE::NULL),
                black_box(std::ptr::null_mut()),
                black_box(&mut t as *mut _),
                black_box(std::ptr::null_mut()),
                black_box(None),
            )
        }
    });
}

const DATAGRAMS: u32 = 4_000;

/// Sends `n` datagrams A -> B (in bursts of 100, 1 ms apart) and runs until
/// all have arrived.
pub fn pump_datagrams(sim: &Sim, n: u32, bytes: u32) {
    let (sent0, delivered0, _) = sim.bench_counts();
    let start = sim.now();
    for k in 0..n {
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
    sim.run_until(start.saturating_add(Nanos::from_millis(10 + (n / 100) as u64)));
    let (sent, delivered, violations) = sim.bench_counts();
    assert_eq!(sent - sent0, n);
    assert_eq!(delivered - delivered0, n, "every datagram arrived");
    assert_eq!(violations, 0);
}

/// Item 2: end-to-end datagrams through the `tiny` synchronous provider.
#[divan::bench(args = [64, 1400], sample_count = 30)]
fn datagrams(bencher: Bencher, bytes: u32) {
    bencher
        .counter(ItemsCount::new(DATAGRAMS))
        .with_inputs(|| warm_world(true))
        .bench_local_values(|sim| {
            pump_datagrams(&sim, DATAGRAMS, bytes);
            sim
        });
}

/// Two hosts of `tiny`, B listening, A not: A's instance is dormant.
fn dormant_sender_world() -> Sim {
    let sim = Sim::new(Config::with_seed(7), &["A", "B"], tiny::TinyFactory::new(1));
    for h in ["A", "B"] {
        sim.schedule(Nanos::ZERO, Action::StartProvider { host: h.into() });
    }
    sim.schedule(
        Nanos::ZERO,
        Action::Listen {
            host: "B".into(),
            on: true,
        },
    );
    sim.run_until(Nanos::from_millis(100));
    sim
}

/// Item 2: `n` datagrams of 64 B sent at one instant by the dormant A to
/// B (each waits for A's activation, then for its REACH of B), run until
/// all have arrived; per datagram.
#[divan::bench(args = [1_000, 10_000], sample_count = 10, sample_size = 1)]
fn burst(bencher: Bencher, n: u32) {
    bencher
        .counter(ItemsCount::new(n))
        .with_inputs(dormant_sender_world)
        .bench_local_values(|sim| {
            let start = sim.now().saturating_add(Nanos::from_millis(1));
            let send = Action::Send {
                from: "A".into(),
                to: "B".into(),
                family: Family::V4,
                bytes: 64,
                newest: false,
            };
            sim.schedule_repeated(start, Nanos::ZERO, n.into(), send);
            sim.run_until(start.saturating_add(Nanos::from_secs(1)));
            let (sent, delivered, violations) = sim.bench_counts();
            assert_eq!((sent, delivered, violations), (n, n, 0));
            sim
        });
}
