//! The black-box `threaded` provider, in real time: its worker thread
//! completes every call and indicates every datagram, and no rule breaks.

mod common;
use common::*;
use cpsim_sim::{Action, ClockMode, Config, Family};

fn realtime(seed: u64) -> Config {
    Config {
        clock: ClockMode::RealTime,
        drain_ms: 400,
        ..Config::with_seed(seed)
    }
}

fn story() -> Script {
    let mut s: Script = vec![
        (0, start("A")),
        (0, start("B")),
        (20, listen("B", true)),
        (60, v4("A", "B")),
        (61, v6("A", "B")),
        (300, dormant("A")),
        (400, v4("A", "B")),
        (
            500,
            Action::AddressAdd {
                host: "B".into(),
                family: Family::V4,
            },
        ),
        (600, listen("B", false)),
        (610, dormant("B")),
        (700, v4("A", "B")),
        (800, listen("B", true)),
        (
            900,
            Action::DuplicateAddress {
                host: "B".into(),
                of: "A".into(),
                family: Family::V4,
            },
        ),
        (1_000, v6("A", "B")),
        (1_100, v4("B", "A")),
        (1_300, shutdown("A")),
    ];
    for k in 0..10 {
        s.push((120 + k * 15, v4("B", "A")));
    }
    s.sort_by_key(|(t, _)| *t);
    s
}

#[test]
fn threaded_provider_in_real_time() {
    let e = cpsim_providers::find("threaded").expect("registered");
    assert_eq!(e.clock(), ClockMode::RealTime);
    assert!(!e.factory().deterministic());
    for seed in 0..2 {
        let out = run(e.factory(), realtime(seed), &["A", "B"], &story(), 1_600);
        assert_clean(&format!("threaded seed {seed}"), &out);
        // Every datagram but the one sent while B was dormant, and the
        // one B sends to A before A has an active instance, arrives.
        assert!(
            out.delivered + 3 >= out.sent,
            "threaded seed {seed}: {} of {} delivered",
            out.delivered,
            out.sent
        );
    }
}

#[test]
fn threaded_provider_restarts() {
    let e = cpsim_providers::find("threaded").expect("registered");
    let s: Script = vec![
        (0, start("A")),
        (0, start("B")),
        (10, listen("B", true)),
        (50, v4("A", "B")),
        (200, stop("B")),
        (250, start("B")),
        (260, listen("B", true)),
        (400, v6("A", "B")),
        (500, stop("A")),
        (600, start("A")),
        (700, v4("A", "B")),
    ];
    let out = run(e.factory(), realtime(3), &["A", "B"], &s, 1_000);
    assert_clean("threaded restarts", &out);
    assert_eq!(out.delivered, 3, "of {}", out.sent);
}

/// `certify` from code runs a provider that is not deterministic (threads of
/// its own) on the real-time clock. On the virtual clock the world moved on
/// without its worker: calls it completed were TIME-1, instances it was
/// still closing LIFE-8, false alarms for a correct provider.
#[test]
fn time_1_life_8_certify_runs_a_threaded_provider_in_real_time() {
    let cfg = cpsim_certify::Config {
        cases: 16,
        seed: Some(1),
        regressions: None,
        ..cpsim_certify::Config::default()
    };
    let make = || -> std::sync::Arc<dyn cpsim_sim::ProviderFactory> {
        cpsim_providers::threaded::ThreadedFactory::new()
    };
    let c = cpsim_certify::certify(make, cfg);
    assert!(c.passed(), "{}", c.failure_message());
    assert_eq!(c.cases, 16);
    let e = cpsim_certify::Entry::of(make);
    assert_eq!(e.clock(), ClockMode::RealTime);
}
