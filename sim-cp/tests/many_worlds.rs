//! Handles stay valid however many worlds a process makes: more worlds than
//! a registry slot has generations (16,383) run one after another, each
//! creating, registering and using instances, with no violation.

mod common;
use common::*;
use cpsim_sim::*;

#[test]
fn life_1_no_false_alarm_after_more_worlds_than_generations() {
    // Every world takes the same registry slot, so its generation wraps.
    for seed in 0..16_384 + 200 {
        let sim = Sim::new(
            Config::with_seed(seed),
            &["A"],
            ToyFactory::new(ToyOptions {
                instances: 1,
                ..ToyOptions::default()
            }),
        );
        sim.schedule(
            Nanos::from_millis(0),
            Action::StartProvider { host: "A".into() },
        );
        sim.schedule(
            Nanos::from_millis(5),
            Action::StopProvider { host: "A".into() },
        );
        sim.run_until(Nanos::from_millis(10));
        let out = sim.finish();
        assert!(
            out.violations.is_empty(),
            "world {seed}: {:#?}",
            out.violations
        );
    }
}
