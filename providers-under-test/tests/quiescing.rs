//! A correct provider that pends every call and goes quiet as soon as it is
//! asked to (TRANSITION_DORMANT, REMOVE take effect when called) passes
//! strict certification: a peer with a dormancy or a REMOVE in flight is not
//! counted as surely reachable (STATE-6), what it drops is not a loss
//! (DATA-5), and its ID is not a duplicate for an ADD elsewhere (TID-4) nor
//! an ambiguity for REACH (TID-6).

use cpsim_certify::{certify, Config, Verdict};

fn strict(seed: u64) -> Config {
    Config {
        seed: Some(seed),
        strict: true,
        regressions: None,
        ..Config::default()
    }
}

#[track_caller]
fn assert_silent(seed: u64, rules: &[&str]) {
    let c = certify(cpsim_providers::quiescing::factory, strict(seed));
    let violated: Vec<String> = c.violated().iter().map(|r| r.to_string()).collect();
    for r in rules {
        assert!(
            !violated.iter().any(|v| v == r),
            "seed {seed}: false alarm {r}\n{}",
            c.failure_message()
        );
    }
    assert_eq!(
        c.verdict,
        Verdict::Pass,
        "seed {seed}\n{}",
        c.failure_message()
    );
}

#[test]
fn state_6_data_5_a_peer_asked_to_go_dormant_may_go_quiet_at_once() {
    // Seed 1 raised STATE-6 (a SEND and a REACH towards a peer whose
    // TRANSITION_DORMANT was pended) before the fix.
    assert_silent(1, &["STATE-6", "DATA-5"]);
}

#[test]
fn tid_4_tid_6_an_id_being_removed_is_not_held() {
    // Seed 3 failed before the fix too. An ADD of an address whose REMOVE
    // from another host's pending-mode instance was still in flight raised
    // TID-4 for a provider that completes from spawned tasks.
    assert_silent(3, &["TID-4", "TID-6"]);
}
