mod common;
use common::*;
use cpsim_sim::*;

fn story(seed: u64, asynchronous: bool) -> Outcome {
    let sim = Sim::new(
        Config::with_seed(seed),
        &["A", "B"],
        ToyFactory::new(ToyOptions {
            asynchronous,
            instances: 1,
            ..ToyOptions::default()
        }),
    );
    let at = |ms| Nanos::from_millis(ms);
    start(&sim, &["A", "B"], "B", 10);
    for k in 0..5 {
        sim.schedule(
            at(100 + k),
            Action::Send {
                from: "A".into(),
                to: "B".into(),
                family: Family::V4,
                bytes: 64,
                newest: false,
            },
        );
    }
    sim.schedule(at(500), Action::Dormant { host: "A".into() });
    sim.schedule(
        at(600),
        Action::Send {
            from: "A".into(),
            to: "B".into(),
            family: Family::V6,
            bytes: 1400,
            newest: false,
        },
    );
    sim.run_until(at(1000));
    sim.finish()
}

#[test]
fn two_hosts_exchange_datagrams_without_violations() {
    for asynchronous in [false, true] {
        let out = story(1, asynchronous);
        assert!(
            out.violations.is_empty(),
            "{:#?}\n{}",
            out.violations,
            out.trace.to_json()
        );
        assert_eq!((out.sent, out.delivered), (6, 6), "{}", out.trace.to_json());
    }
}

#[test]
fn same_seed_same_trace() {
    let a = story(42, true);
    let b = story(42, true);
    assert_eq!(a.trace, b.trace);
}
