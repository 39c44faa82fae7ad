//! The real-time watchdog (TIME-1 for a callback that does not return):
//! it reports a callback that blocks past `Config::watchdog_ms` on the
//! wall clock, and nothing once every callback has returned (the callback
//! epoch it samples is even again after each one).

mod common;

use common::{start, ToyFactory, ToyOptions};
use cpsim_sim::rules::id;
use cpsim_sim::*;
use std::time::Duration;

/// One host of the toy provider, whose TRANSITION_ACTIVE blocks the thread
/// for `block` of real time, listening (so its instance is made active), the watchdog at
/// 200 ms; after the run, the world is kept alive for `idle` of real time.
/// Also returns the callback epoch and the number of callbacks called
/// (`Call` events) at the end of the run, before `finish`.
fn run(block: Duration, idle: Duration) -> (Outcome, u64, usize) {
    let cfg = Config {
        watchdog_ms: 200,
        ..Config::with_seed(3)
    };
    let toy = ToyFactory::new(ToyOptions {
        block_activation: Some(block),
        ..ToyOptions::default()
    });
    let sim = Sim::new(cfg, &["A"], toy);
    start(&sim, &["A"], "A", 5);
    sim.run_until(Nanos::from_millis(100));
    std::thread::sleep(idle);
    let observer = sim.observer();
    let epoch = observer.callback_epoch().expect("alive");
    let so_far = observer.snapshot(Duration::from_secs(5)).expect("alive");
    let calls = so_far
        .trace
        .events
        .iter()
        .filter(|e| matches!(e.what, trace::What::Call { .. }))
        .count();
    (sim.finish(), epoch, calls)
}

fn watchdog_reports(out: &Outcome) -> Vec<&Violation> {
    out.violations
        .iter()
        .filter(|v| v.message.contains("(watchdog)"))
        .collect()
}

#[test]
fn time_1_a_callback_blocked_past_the_watchdog_limit_is_reported() {
    let (out, _, _) = run(Duration::from_millis(700), Duration::ZERO);
    let found = watchdog_reports(&out);
    assert!(
        found
            .iter()
            .any(|v| v.rule == id::TIME_1 && v.callback.as_deref() == Some("TRANSITION_ACTIVE")),
        "{:#?}",
        out.violations
    );
}

#[test]
fn time_1_no_watchdog_report_once_every_callback_has_returned() {
    // Callbacks ran (ESTABLISH, TRANSITION_ACTIVE, ADD, …) and returned:
    // the epoch moved twice per callback (on entry and on return), so it
    // is even; the world then idles for more than twice the limit.
    let (out, epoch, calls) = run(Duration::ZERO, Duration::from_millis(600));
    assert!(calls >= 3, "callbacks ran: {calls}");
    assert_eq!(epoch, 2 * calls as u64, "two epoch steps per callback");
    assert!(watchdog_reports(&out).is_empty(), "{:#?}", out.violations);
}

/// Set in the child run of the exit test.
const HANG_CHILD: &str = "CPSIM_TEST_WATCHDOG_HANG_CHILD";

/// A callback that never returns in time: after ten times the watchdog's
/// limit the process ends with exit code 3, saying which callback hangs and
/// what was running (the notes of runs under way, e.g. a certification's
/// rerun command), instead of hanging CI.
#[test]
fn time_1_a_hung_callback_ends_the_process_with_code_3_and_the_rerun_note() {
    if std::env::var_os(HANG_CHILD).is_some() {
        let _note = watchdog::note_while_running("rerun: cpsim certify --seed 7".into());
        let cfg = Config {
            watchdog_ms: 100,
            ..Config::with_seed(3)
        };
        let toy = ToyFactory::new(ToyOptions {
            block_activation: Some(Duration::from_secs(30)),
            ..ToyOptions::default()
        });
        let sim = Sim::new(cfg, &["A"], toy);
        start(&sim, &["A"], "A", 5);
        sim.run_until(Nanos::from_millis(100));
        unreachable!("the watchdog ends the process first");
    }
    hang_child_reports(&["--nocapture"]);
}

/// Runs the hanging child of the test above (with `extra` test-harness
/// arguments) and checks that it ended with code 3 and its report on
/// stderr: the callback, and the note of what was running.
fn hang_child_reports(extra: &[&str]) {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "time_1_a_hung_callback_ends_the_process_with_code_3_and_the_rerun_note",
        ])
        .args(extra)
        .env(HANG_CHILD, "1")
        .output()
        .expect("run the test binary");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("TRANSITION_ACTIVE") && err.contains("has not returned"),
        "{err}"
    );
    assert!(
        err.contains("cpsim: running when it hung: rerun: cpsim certify --seed 7"),
        "{err}"
    );
}

/// `cargo test` captures what a test prints and shows it only when the test
/// ends; a process the watchdog ends never gets there. Its report must still
/// reach the terminal (the watchdog thread was started, and so captured,
/// inside some test).
#[test]
fn time_1_the_hang_report_is_seen_under_cargo_tests_output_capture() {
    // No `--nocapture`: the test harness captures the child test's output.
    hang_child_reports(&[]);
}
