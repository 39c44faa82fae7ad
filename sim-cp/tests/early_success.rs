//! Decision `early-success`: a TRANSITION_ACTIVE completed with S_OK before
//! its callback returned has told the platform it succeeded, so the
//! provider may indicate from then on, e.g. data it kept while dormant,
//! before returning ERROR_IO_PENDING.

mod common;
use common::*;
use cpsim_sim::rules::id;
use cpsim_sim::*;

fn send(from: &str, to: &str) -> Action {
    Action::Send {
        from: from.into(),
        to: to.into(),
        family: Family::V4,
        bytes: 32,
        newest: false,
    }
}

#[test]
fn data_1_data_kept_while_dormant_may_be_indicated_after_an_early_s_ok_of_transition_active() {
    let sim = Sim::new(
        Config::with_seed(9),
        &["A", "B"],
        ToyFactory::new(ToyOptions {
            instances: 1,
            buffer_while_dormant: true,
            ..ToyOptions::default()
        }),
    );
    start(&sim, &["A", "B"], "B", 0);
    // A sends to B every 2 ms while B is sent dormant; B's own send at
    // 400 ms makes the platform activate it again.
    for k in 0..100 {
        sim.schedule(at(100 + 2 * k), send("A", "B"));
    }
    sim.schedule(
        at(149),
        Action::Listen {
            host: "B".into(),
            on: false,
        },
    );
    sim.schedule(at(150), Action::Dormant { host: "B".into() });
    sim.schedule(at(400), send("B", "A"));
    sim.run_until(at(5_000));
    let out = sim.finish();
    let broken: Vec<String> = out.violations.iter().map(|v| v.headline()).collect();
    assert!(
        !broken.iter().any(|v| v.starts_with(id::DATA_1.as_str())),
        "{broken:#?}"
    );
    assert_eq!(broken, Vec::<String>::new());
    let early_activations = out
        .trace
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.what,
                trace::What::Complete {
                    cb: Callback::TransitionActive,
                    early: true,
                    ..
                }
            )
        })
        .count();
    assert!(
        early_activations >= 2,
        "{early_activations} early activations"
    );
    assert_eq!(out.delivered, out.sent, "every datagram arrives");
    // The platform checker, which judges the platform from the trace
    // alone, agrees: accepting them broke no guarantee (STATE-3).
    let platform: Vec<String> = oracle::check(&out.trace)
        .iter()
        .map(|v| v.headline())
        .collect();
    assert_eq!(platform, Vec::<String>::new());
}
