//! Correct providers under hostile task timing: worker tasks run before the
//! callback's return is seen, late, after the call's time limit, or never.
//! The harness excuses the timeouts this causes; nothing else may break.

mod common;
use common::*;
use cpsim_providers::{registry, Kind};
use cpsim_sim::{Action, ClockMode, Config, Family, TaskTiming};

fn timings() -> Vec<(&'static str, TaskTiming)> {
    let t = |before_return, late, after_timeout, never| TaskTiming {
        before_return,
        late,
        after_timeout,
        never,
        ..TaskTiming::default()
    };
    vec![
        ("mixed", t(0.3, 0.3, 0.05, 0.05)),
        ("before-return", t(1.0, 0.0, 0.0, 0.0)),
        ("late", t(0.0, 1.0, 0.0, 0.0)),
        ("after-timeout", t(0.0, 0.0, 0.5, 0.0)),
        ("never", t(0.0, 0.0, 0.0, 0.5)),
    ]
}

fn busy() -> Script {
    let mut s: Script = vec![
        (0, start("A")),
        (0, start("B")),
        (0, start("C")),
        (10, listen("B", true)),
        (10, listen("C", true)),
    ];
    for k in 0..12u64 {
        let t = 100 + k * 900;
        s.push((t, v4("A", "B")));
        s.push((t + 5, v6("A", "C")));
        s.push((t + 9, v4("C", "B")));
        s.push((t + 400, dormant("A")));
    }
    s.push((
        3_000,
        Action::AddressAdd {
            host: "B".into(),
            family: Family::V4,
        },
    ));
    s.push((5_000, Action::AddressRemove { host: "B".into() }));
    s.push((6_000, stop("C")));
    s.push((6_500, start("C")));
    s.push((6_600, listen("C", true)));
    s
}

#[test]
fn no_violation_under_any_task_timing() {
    for e in registry()
        .entries()
        .iter()
        .filter(|e| e.kind() == Kind::Correct && e.clock() == ClockMode::Virtual)
    {
        for (what, timing) in timings() {
            for seed in 0..6 {
                let mut cfg = Config::with_seed(seed);
                cfg.tasks = timing.clone();
                let out = run(
                    e.factory(),
                    cfg.clone(),
                    &["A", "B"],
                    &ordinary(),
                    ORDINARY_END_MS,
                );
                assert_clean(&format!("{} {what} seed {seed} (ordinary)", e.name()), &out);
                let out = run(e.factory(), cfg, &["A", "B", "C"], &busy(), 15_000);
                assert_clean(&format!("{} {what} seed {seed} (busy)", e.name()), &out);
            }
        }
    }
}

#[test]
fn timing_changes_mid_run() {
    for e in registry()
        .entries()
        .iter()
        .filter(|e| e.kind() == Kind::Correct && e.clock() == ClockMode::Virtual)
    {
        for seed in 0..6 {
            let mut s = busy();
            for (k, (_, timing)) in timings().into_iter().enumerate() {
                s.push((1_000 + 2_000 * k as u64, Action::TaskTiming { timing }));
            }
            s.sort_by_key(|(t, _)| *t);
            let out = run(
                e.factory(),
                Config::with_seed(seed),
                &["A", "B", "C"],
                &s,
                15_000,
            );
            assert_clean(&format!("{} seed {seed}", e.name()), &out);
        }
    }
}

/// The hostile timings really bite: calls time out (excused) and sessions
/// are replaced, yet nothing is reported.
#[test]
fn hostile_timing_takes_effect() {
    let e = cpsim_providers::find("reference").expect("registered");
    let mut timeouts = 0;
    let mut early = 0;
    for seed in 0..6 {
        let mut cfg = Config::with_seed(seed);
        cfg.tasks = timings()[0].1.clone();
        let out = run(e.factory(), cfg, &["A", "B", "C"], &busy(), 15_000);
        assert_clean("reference mixed", &out);
        for ev in &out.trace.events {
            match &ev.what {
                cpsim_sim::trace::What::Timeout { excused, .. } => {
                    assert!(excused, "an unexcused timeout: {ev:?}");
                    timeouts += 1;
                }
                cpsim_sim::trace::What::Complete { early: true, .. } => early += 1,
                _ => {}
            }
        }
    }
    assert!(timeouts > 0, "no call ever timed out");
    assert!(early > 0, "no completion ever raced the callback's return");
}
