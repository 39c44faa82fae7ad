//! A long run raises no false alarm: 100,000 application datagrams both
//! ways between two hosts (both families, sizes from 0 to 1,400 bytes, so
//! many small payloads are identical), pended completions, idle dormancy
//! in between, and a trace limit the run outgrows, so that the platform
//! checker judges it online. Nothing may be reported, by the engine or by
//! the checker, and every datagram must arrive.

mod common;
use common::*;
use cpsim_sim::*;

const DATAGRAMS: u32 = 100_000;

#[test]
fn a_hundred_thousand_datagrams_raise_no_false_alarm() {
    let cfg = Config {
        seed: 21,
        idle_dormancy_ms: 50,
        trace_limit: 100_000,
        ..Config::default()
    };
    let sim = Sim::new(
        cfg,
        &["A", "B"],
        ToyFactory::new(ToyOptions {
            asynchronous: true,
            ..ToyOptions::default()
        }),
    );
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
    // Bursts of 100 every millisecond, with a pause of 200 ms (idle
    // dormancy, then reactivation) after every 100 bursts.
    let mut at = 1;
    for k in 0..DATAGRAMS {
        if k > 0 && k % 100 == 0 {
            at += if k % 10_000 == 0 { 200 } else { 1 };
        }
        let (from, to) = if k % 3 == 0 { ("B", "A") } else { ("A", "B") };
        sim.schedule(
            Nanos::from_millis(at),
            Action::Send {
                from: from.into(),
                to: to.into(),
                family: if k % 5 == 0 { Family::V6 } else { Family::V4 },
                bytes: [0, 1, 64, 300, 1400][(k % 7 % 5) as usize],
                newest: false,
            },
        );
        if k % 100 == 99 {
            sim.run_until(Nanos::from_millis(at));
        }
    }
    let out = sim.finish();
    assert!(
        out.violations.is_empty(),
        "{:#?}",
        &out.violations[..out.violations.len().min(5)]
    );
    assert_eq!((out.sent, out.delivered), (DATAGRAMS, DATAGRAMS));
    let omitted = out
        .trace
        .omitted
        .as_ref()
        .expect("the run outgrew its trace");
    assert!(omitted.events > 100_000);
    let platform = oracle::check(&out.trace);
    assert!(
        platform.is_empty(),
        "{:#?}",
        &platform[..platform.len().min(5)]
    );
}
