//! The subtle single-bug providers: each one's directed scenario
//! (`scenarios/subtle/<name>.json`) shows its bug is real (its rule is
//! violated), and the correct provider it derives from passes the very same
//! steps with no violation at all.

use cpsim_certify::scenario::ProviderRef;
use cpsim_providers::registry::{self, Kind};
use std::path::PathBuf;

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/subtle")
        .join(format!("{name}.json"))
}

/// Runs `name`'s directed scenario with the variant (its expectation names
/// the variant's rule) and with `base` (no violation expected).
fn check(name: &str, base: &str) {
    let reg = registry::registry();
    let entry = reg
        .find(name)
        .unwrap_or_else(|| panic!("no provider {name}"));
    let Kind::Subtle(rule) = entry.kind() else {
        panic!("{name} is not a subtle provider");
    };
    let s = reg.load(&file(name)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.provider, ProviderRef::Name(name.into()));
    let run = reg.run(&s).expect("runs");
    assert!(run.passed(), "{name}: {:?}", run.failures);
    assert!(
        run.outcome.violations.iter().any(|v| v.rule == rule),
        "{name}: {rule} not violated"
    );
    let mut b = s.clone();
    b.provider = ProviderRef::Name(base.into());
    b.expect = Default::default();
    let run = reg.run(&b).expect("runs");
    assert!(
        run.outcome.violations.is_empty(),
        "{base} on {name}'s steps: {:?}",
        run.outcome.violations
    );
}

macro_rules! subtle {
    ($test:ident, $name:literal, $base:literal) => {
        #[test]
        fn $test() {
            check($name, $base);
        }
    };
}

subtle!(
    life_8_stop_skips_ended_is_real_and_reference_passes,
    "subtle-life-8-stop-skips-ended",
    "reference"
);
subtle!(
    comp_4_send_per_peer_is_real_and_reference_passes,
    "subtle-comp-4-send-per-peer",
    "reference"
);
subtle!(
    data_5_dedup_per_node_is_real_and_reference_passes,
    "subtle-data-5-dedup-per-node",
    "reference"
);
subtle!(
    data_5_one_byte_keepalive_is_real_and_reference_passes,
    "subtle-data-5-one-byte-keepalive",
    "reference"
);
subtle!(
    data_5_short_length_is_real_and_reference_passes,
    "subtle-data-5-short-length",
    "reference"
);
subtle!(
    life_7_end_while_activating_is_real_and_reference_passes,
    "subtle-life-7-end-while-activating",
    "reference"
);
subtle!(
    life_2_revive_after_failed_activation_is_real_and_reference_passes,
    "subtle-life-2-revive-after-failed-activation",
    "reference"
);
subtle!(
    time_1_send_window_is_real_and_reference_passes,
    "subtle-time-1-send-window",
    "reference"
);
subtle!(
    sess_7_terminate_drains_is_real_and_reference_passes,
    "subtle-sess-7-terminate-drains",
    "reference"
);
subtle!(
    time_1_settle_dormancy_is_real_and_reference_passes,
    "subtle-time-1-settle-dormancy",
    "reference"
);
subtle!(
    crash_1_frame_overflow_is_real_and_reference_passes,
    "subtle-crash-1-frame-overflow",
    "reference"
);
subtle!(
    life_1_raw_stale_handle_is_real_and_sync_raw_passes,
    "subtle-life-1-raw-stale-handle",
    "sync-raw"
);
subtle!(
    comp_4_raw_segment_timer_is_real_and_sync_raw_passes,
    "subtle-comp-4-raw-segment-timer",
    "sync-raw"
);
subtle!(
    comp_3_raw_warm_activation_is_real_and_sync_raw_passes,
    "subtle-comp-3-raw-warm-activation",
    "sync-raw"
);
subtle!(
    data_5_seen_reset_at_dormancy_is_real_and_reference_passes,
    "subtle-data-5-seen-reset-at-dormancy",
    "reference"
);
subtle!(
    time_1_retry_backoff_is_real_and_reference_passes,
    "subtle-time-1-retry-backoff",
    "reference"
);
subtle!(
    crash_1_third_send_after_reactivation_is_real_and_reference_passes,
    "subtle-crash-1-third-send-after-reactivation",
    "reference"
);

#[test]
fn every_subtle_provider_has_a_directed_scenario() {
    for e in registry::registry().entries() {
        if let Kind::Subtle(_) = e.kind() {
            assert!(
                file(e.name()).exists(),
                "{}: no scenarios/subtle/{}.json",
                e.name(),
                e.name()
            );
        }
    }
}
