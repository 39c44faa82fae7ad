//! A pass with warnings is not silent: `assert_pass` on a provider that
//! breaks only a SHOULD rule passes, and writes its findings to standard
//! error past libtest's output capture, so `cargo test` shows them although
//! the test passed.

use cpsim_certify::{certify_subject, Certification, Config, Verdict};
use std::process::Command;

/// Set in the child run of the capture test.
const CHILD: &str = "CPSIM_TEST_WARNINGS_CHILD";

/// `broken-tid-6` (REACH succeeds towards IDs nobody holds) breaks only a
/// SHOULD rule: a non-strict pass.
fn non_strict() -> Certification {
    let e = cpsim_providers::find("broken-tid-6").expect("registered");
    certify_subject(
        &e.subject(),
        Config {
            seed: Some(1),
            cases: 64,
            regressions: None,
            ..Config::default()
        },
    )
}

#[test]
fn tid_6_a_pass_with_warnings_names_the_should_rule_and_how_to_replay_it() {
    let c = non_strict();
    assert_eq!(c.verdict, Verdict::NonStrict, "{}", c.failure_message());
    assert!(c.passed());
    let w = c.warning_message().expect("a non-strict pass has warnings");
    assert!(
        w.starts_with("cpsim: WARNING: provider `broken-tid-6` passes certification (seed 1, 64 cases) with SHOULD rules broken: TID-6\n"),
        "{w}"
    );
    assert!(w.contains("rule TID-6 (Should, provider)"), "{w}");
    assert!(w.contains("replay: "), "{w}");
    // A strict run of the same fails, and says so instead.
    let strict = Certification {
        strict: true,
        ..c.clone()
    };
    assert!(!strict.passed());
    assert_eq!(strict.warning_message(), None);
}

#[test]
fn tid_6_assert_pass_shows_the_warnings_past_the_output_capture() {
    if std::env::var_os(CHILD).is_some() {
        non_strict().assert_pass();
        return;
    }
    // Run this very test again in a child, with libtest capturing its
    // output as it does for every passing test.
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "tid_6_assert_pass_shows_the_warnings_past_the_output_capture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(
        stderr.contains("cpsim: WARNING: provider `broken-tid-6` passes certification"),
        "the warning did not reach the terminal:\n{stderr}"
    );
}
