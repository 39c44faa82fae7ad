//! The two platform faults sim-cp's own tests cannot reach with their toy
//! provider: a platform that accepts data on a dormant instance (STATE-3),
//! and one that hands out a fresh interface when an old LUID is asked for
//! (REG-6). The platform checker must catch each; without the fault it
//! must find nothing.

mod common;
use common::*;
use cpsim_sim::rules::id;
use cpsim_sim::{oracle, Action, Config, PlatformFault, RuleId};

fn checked(provider: &str, faults: Vec<PlatformFault>, script: &Script) -> Vec<RuleId> {
    let factory = cpsim_providers::find(provider).unwrap().factory();
    let cfg = Config {
        seed: 3,
        faults,
        ..Config::default()
    };
    let out = run(factory, cfg, &["A", "B"], script, 20_000);
    oracle::check(&out.trace)
        .into_iter()
        .map(|v| v.rule)
        .collect()
}

#[test]
fn state_3_platform_fault_data_accepted_while_dormant_is_caught() {
    // broken-data-1 indicates data that arrives while it is dormant.
    let script = ordinary();
    assert!(!checked("broken-data-1", vec![], &script).contains(&id::STATE_3));
    let found = checked(
        "broken-data-1",
        vec![PlatformFault::AcceptIndicateWhenDormant],
        &script,
    );
    assert!(found.contains(&id::STATE_3), "{found:?}");
}

#[test]
fn reg_6_platform_fault_fresh_interface_for_an_old_luid_is_caught() {
    // After an infrastructure fault the reference provider re-registers on
    // the interface it had, passing its LUID back.
    let script: Script = vec![
        (0, start("A")),
        (0, start("B")),
        (100, listen("B", true)),
        (1_000, Action::CommunicationError { host: "B".into() }),
        (10_000, v4("A", "B")),
    ];
    assert!(!checked("reference", vec![], &script).contains(&id::REG_6));
    let found = checked("reference", vec![PlatformFault::FreshLuidOnReuse], &script);
    assert!(found.contains(&id::REG_6), "{found:?}");
}
