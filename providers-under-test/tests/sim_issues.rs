//! Regression tests for simulator issues found while writing these
//! providers (false alarms, all fixed in sim-cp). Each states what a
//! correct platform does in a situation that once went wrong.

mod common;
use common::*;
use cpsim_sim::trace::What;
use cpsim_sim::{Action, Config, Family, NetFaults};

/// STATE-6's "an active peer holds it" looks at whether the peer is active
/// when the call fails, not over the judging window. Here B is dormant when
/// it answers A's probe and becomes active before the answer reaches A.
#[test]

fn state6_when_the_peer_activates_while_the_answer_travels() {
    let s: Script = vec![
        (0, start("A")),
        (0, start("B")),
        (0, listen("A", true)),
        (0, listen("B", true)),
        (1_300, listen("B", false)),
        (1_310, Action::Dormant { host: "B".into() }),
        // A asks the rendezvous (600 ms round trip), then probes B, which
        // gets the probe at 4.0 s while its activation (a ping, started at
        // 3.5 s) is still pending, and answers "not active". The answer
        // reaches A at 4.3 s; B went active at 4.1 s.
        (3_100, send("A", "B", Family::V4, 64)),
        (3_500, listen("B", true)),
    ];
    let mut cfg = Config::with_seed(1);
    cfg.net = NetFaults {
        delay_ms: 300,
        ..NetFaults::default()
    };
    let e = cpsim_providers::find("reference").expect("registered");
    let out = run(e.factory(), cfg, &["A", "B"], &s, 5_000);
    assert_clean("reference", &out);
}

/// A platform shutdown skips a session whose ESTABLISH is still queued
/// (Register returned, ESTABLISH deferred): the session is not ended, its
/// ESTABLISH is delivered after the shutdown, and no TERMINATE follows, so
/// the instance stays registered on a shut-down platform until the provider
/// stops. Expected: every session established on the host gets
/// TERMINATE(PLATFORM_SHUTDOWN) (or is never established).
#[test]

fn shutdown_ends_sessions_still_waiting_for_establish() {
    let e = cpsim_providers::find("sync-raw").expect("registered");
    for seed in 0..8 {
        let s: Script = vec![(0, start("B")), (0, shutdown("B"))];
        let out = run(e.factory(), Config::with_seed(seed), &["B"], &s, 1_000);
        let called = |want: cpsim_sim::Callback| {
            out.trace
                .events
                .iter()
                .any(|ev| matches!(&ev.what, What::Call { cb, .. } if *cb == want))
        };
        let shutdown_terminate = out.trace.events.iter().any(|ev| {
            matches!(
                &ev.what,
                What::Call { reason: Some(r), .. }
                    if *r == cpsim_sim::safe::TerminationReason::PlatformShutdown
            )
        });
        assert!(
            !called(cpsim_sim::Callback::EstablishSessionIndication) || shutdown_terminate,
            "seed {seed}: ESTABLISH delivered after the platform shut down, and no TERMINATE(PLATFORM_SHUTDOWN)"
        );
    }
}

/// Two datagrams with identical bytes (here: empty) on the same pair of IDs
/// cannot be told apart: when the first is lost and the second arrives, the
/// arrival is credited to the first, and the second is then reported lost
/// "on a network that dropped nothing" because the only drop happened before
/// it was sent. Expected: a loss is excused if an identical datagram sent
/// earlier was excused (or arrivals are credited to the latest candidate).
#[test]

fn identical_datagrams_one_lost() {
    let e = cpsim_providers::find("sync-raw").expect("registered");
    let s: Script = vec![
        (0, start("A")),
        (0, start("B")),
        (10, listen("B", true)),
        (100, send("A", "B", Family::V4, 0)),
        (200, send("A", "B", Family::V4, 0)),
        (300, send("A", "B", Family::V4, 0)),
        (400, send("A", "B", Family::V4, 0)),
    ];
    for seed in 0..40 {
        let mut cfg = Config::with_seed(seed);
        cfg.net = NetFaults {
            loss: 0.3,
            ..NetFaults::default()
        };
        let out = run(e.factory(), cfg, &["A", "B"], &s, 1_000);
        assert_clean(&format!("sync-raw seed {seed}"), &out);
    }
}
