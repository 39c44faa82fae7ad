//! Decision `add-when-asked`: an ID is the instance's from the call of
//! ADD_TRANSPORT_ID. A provider that publishes its address to its peers
//! when ADD is called, and completes ADD later, may have data indicated on
//! that ID, and peers' REACHes towards it succeed, before its ADD completes.

mod common;
use common::*;
use cpsim_sim::rules::id;
use cpsim_sim::*;

fn at(ms: u64) -> Nanos {
    Nanos::from_millis(ms)
}

/// The toy publishes an ID when ADD is called and completes every call
/// from a task run up to 400 ms late; A sends B a datagram every 5 ms from
/// 0 to 1 s. The rules broken, and how many datagrams arrived.
fn run(seed: u64) -> (Vec<String>, u64) {
    let mut cfg = Config::with_seed(seed);
    cfg.tasks.late = 1.0;
    cfg.tasks.late_max_ms = 400;
    let sim = Sim::new(
        cfg,
        &["A", "B"],
        ToyFactory::new(ToyOptions {
            instances: 1,
            asynchronous: true,
            ..ToyOptions::default()
        }),
    );
    start(&sim, &["A", "B"], "B", 0);
    for k in 0..200 {
        sim.schedule(
            at(5 * k),
            Action::Send {
                from: "A".into(),
                to: "B".into(),
                family: Family::V4,
                bytes: 16,
                newest: false,
            },
        );
    }
    sim.run_until(at(10_000));
    let out = sim.finish();
    let broken = out.violations.iter().map(|v| v.headline()).collect();
    (broken, out.delivered as u64)
}

#[test]
fn tid_2_tid_6_an_id_whose_add_is_in_flight_is_the_instances_already() {
    for seed in 1..=8 {
        let (broken, delivered) = run(seed);
        assert!(
            !broken
                .iter()
                .any(|v| v.starts_with(id::TID_2.as_str()) || v.starts_with(id::TID_6.as_str())),
            "seed {seed}: {broken:#?}"
        );
        assert!(delivered > 0, "seed {seed}: nothing arrived");
    }
}
