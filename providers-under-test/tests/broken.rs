//! Every broken provider, run on the ordinary story, breaks its rule.
//!
//! This is the "one tiny provider per rule" check: each `broken-*` provider
//! is the reference with exactly one bug, and the simulator must report
//! exactly that rule. Each is a test of its own, made from the registry and
//! named after its rule first (`comp_3_broken_comp_3_is_caught_alone`), so
//! `cargo test comp_3` runs it with the rule's scenario files and platform
//! faults. Other rules a mutant trips as a consequence fail its test unless
//! pinned in `EXTRA`, so a change shows up.
//!
//! The real-time ones that leave threads running after their stop
//! (`broken-life-8-thread*`) show nothing in a trace: their test runs a short
//! story with a platform shutdown in a child process of its own (this
//! binary, that test alone) and counts the process's threads before and
//! after it (Linux only).

mod common;
use common::*;
use cpsim_providers::{registry, Entry, Kind};
use cpsim_sim::rules::{Binds, CATALOGUE};
use cpsim_sim::{ClockMode, Config, RuleId};
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Set in the child process that runs one real-time trial alone.
const CHILD: &str = "CPSIM_TEST_BROKEN_THREADS_CHILD";

/// Rules a mutant is known to trip besides its own (none, ideally).
const EXTRA: &[(&str, &[&str])] = &[];

fn main() {
    // broken-crash-1 panics on purpose (the platform catches it); keep the
    // test output readable.
    cpsim_sim::runtime::quiet_provider_panics();
    let mut trials = vec![Trial::test(
        "every_provider_rule_has_a_broken_provider",
        every_provider_rule_has_a_broken_provider,
    )];
    trials.push(Trial::test(
        "life_6_diagram_marks_the_second_deregister_not_the_legal_first",
        life_6_diagram_marks_the_second_deregister_not_the_legal_first,
    ));
    trials.push(Trial::test(
        "diagram_marks_the_offending_step_of_every_broken_provider",
        diagram_marks_the_offending_step_of_every_broken_provider,
    ));
    for e in registry().entries() {
        let Kind::Broken(rule) = e.kind() else {
            continue;
        };
        let name = format!(
            "{}_{}_is_caught_alone",
            snake(rule.as_str()),
            snake(e.name())
        );
        let e = e.clone();
        trials.push(match e.clock() {
            ClockMode::Virtual => Trial::test(name, move || caught_alone(&e, rule)),
            ClockMode::RealTime => {
                let trial = name.clone();
                Trial::test(name, move || threads_left_alone(&e, &trial))
            }
        });
    }
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

/// `COMP-3` → `comp_3`, `broken-comp-3` → `broken_comp_3`.
fn snake(s: &str) -> String {
    s.to_lowercase().replace('-', "_")
}

fn every_provider_rule_has_a_broken_provider() -> Result<(), Failed> {
    let broken: BTreeSet<RuleId> = registry()
        .entries()
        .iter()
        .filter_map(|e| match e.kind() {
            Kind::Broken(r) => Some(r),
            Kind::Correct | Kind::Subtle(_) => None,
        })
        .collect();
    for r in RuleId::all() {
        if r.rule().binds == Binds::Provider && !broken.contains(&r) {
            return Err(format!("no broken provider for {r}").into());
        }
    }
    let provider_rules = CATALOGUE
        .iter()
        .filter(|r| r.binds == Binds::Provider)
        .count();
    if broken.len() != provider_rules {
        return Err(format!("{} broken for {provider_rules} rules", broken.len()).into());
    }
    Ok(())
}

/// The ordinary story played by `e`.
fn ordinary_run(e: &Entry) -> cpsim_sim::Outcome {
    run(
        e.factory(),
        Config::with_seed(7),
        &["A", "B"],
        &ordinary(),
        ORDINARY_END_MS,
    )
}

fn caught_alone(e: &Entry, rule: RuleId) -> Result<(), Failed> {
    let out = ordinary_run(e);
    let fired = rules(&out);
    if !fired.contains(&rule) {
        return Err(format!("{}: expected {rule}, got:\n{}", e.name(), listing(&out)).into());
    }
    let allowed: Vec<&str> = EXTRA
        .iter()
        .find(|(n, _)| *n == e.name())
        .map(|(_, x)| x.to_vec())
        .unwrap_or_default();
    let others: Vec<String> = fired
        .iter()
        .filter(|r| **r != rule)
        .map(|r| r.to_string())
        .filter(|o| !allowed.contains(&o.as_str()))
        .collect();
    if !others.is_empty() {
        return Err(format!(
            "{}: {rule} fired, but also {others:?}:\n{}",
            e.name(),
            listing(&out)
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The `>>` of a failure's diagram

/// The row of a text diagram marked `>>` (the violating arrow), if any.
fn marked_row(diagram: &str) -> Option<&str> {
    diagram.lines().find(|l| l.starts_with(">>"))
}

/// The step number in a diagram row's gutter.
fn row_step(row: &str) -> Option<u64> {
    row[2..].split_whitespace().next()?.parse().ok()
}

/// broken-life-6 deregisters once, legally, then again: the diagram marks
/// the second call (refused with ERROR_INVALID_STATE, right after the
/// violation), not the first, which is a few events earlier.
fn life_6_diagram_marks_the_second_deregister_not_the_legal_first() -> Result<(), Failed> {
    let e = cpsim_providers::registry::find("broken-life-6").ok_or("no broken-life-6")?;
    let out = ordinary_run(&e);
    let v = out
        .violations
        .iter()
        .find(|v| v.rule == cpsim_sim::rules::id::LIFE_6)
        .ok_or("no LIFE-6")?;
    let text = cpsim_certify::diagram::text_for(&out.trace, v, 16);
    let legal = text
        .lines()
        .find(|l| l.contains("Deregister = S_OK"))
        .ok_or_else(|| format!("the legal Deregister is not in view:\n{text}"))?;
    if legal.starts_with(">>") {
        return Err(format!("the legal Deregister is marked:\n{text}").into());
    }
    let row = marked_row(&text).ok_or_else(|| format!("nothing is marked:\n{text}"))?;
    if !row.contains("[LIFE-6] Deregister = ERROR_INVALID_STATE")
        || row_step(row) != Some(v.step + 1)
    {
        return Err(format!("step {} is not the one marked:\n{text}", v.step + 1).into());
    }
    Ok(())
}

/// For each rule, the row its broken provider's diagram marks (what the
/// row says after the rule tag), or None where the trace holds no event
/// that is the offence (a Deregister never made, a completion naming no
/// call, a call never finished): then nothing is marked but the
/// violation's own row.
const MARKED: &[(&str, Option<&str>)] = &[
    ("LIFE-1", Some("Deregister = E_HANDLE")),
    ("LIFE-2", Some("Register = ERROR_INVALID_STATE")),
    ("LIFE-4", Some("Destroy = S_OK")),
    ("LIFE-5", Some("Destroy = E_HANDLE")),
    ("LIFE-6", Some("Deregister = ERROR_INVALID_STATE")),
    ("LIFE-7", None),
    ("LIFE-8", None),
    ("LIFE-9", Some("provider: Create = E_INVALIDARG")),
    ("REG-5", Some("Register = ERROR_NOT_FOUND")),
    ("REG-7", Some("Register = E_INVALIDARG")),
    ("REG-8", Some("Register = E_INVALIDARG")),
    ("SESS-7", Some("ESTABLISH_SESSION_INDICATION returns")),
    ("STATE-6", Some("SEND_BUFFERS #13 returns E_FAIL")),
    ("COMP-2", Some("TRANSITION_DORMANT #14 returns S_FALSE")),
    (
        "COMP-3",
        Some("complete TRANSITION_ACTIVE #1: S_OK [ignored]"),
    ),
    (
        "COMP-4",
        Some("complete TRANSITION_ACTIVE #1: S_OK [ignored]"),
    ),
    ("COMP-5", None),
    ("COMP-6", Some("complete TRANSITION_ACTIVE #1: E_FAIL")),
    ("COMP-7", Some("Indicate = E_INVALIDARG")),
    ("TIME-1", None),
    ("TID-2", Some("Indicate = E_INVALIDARG")),
    ("TID-3", Some("Indicate = E_INVALIDARG")),
    ("TID-4", Some("complete ADD_TRANSPORT_ID #22: S_OK")),
    ("TID-6", Some("complete REACH_TRANSPORT_ID #4: S_OK")),
    ("DATA-1", Some("Indicate = ERROR_INVALID_STATE")),
    ("DATA-2", Some("Indicate = E_INVALIDARG")),
    ("DATA-3", Some("Indicate = ERROR_IO_PENDING")),
    ("DATA-5", Some("Indicate = S_OK")),
    ("CRASH-1", Some("REACH_TRANSPORT_ID #9")),
];

/// Every broken provider's first violation of its rule, drawn as a failure
/// is: the `>>` row is the call that broke the rule (or there is none).
fn diagram_marks_the_offending_step_of_every_broken_provider() -> Result<(), Failed> {
    let mut wrong = Vec::new();
    for e in registry().entries() {
        let Kind::Broken(rule) = e.kind() else {
            continue;
        };
        if e.clock() == ClockMode::RealTime {
            // Threads left after a stop show in no trace (no diagram).
            continue;
        }
        let want = MARKED
            .iter()
            .find(|(r, _)| *r == rule.as_str())
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("{rule}: no expected mark in MARKED"))?;
        let out = ordinary_run(e);
        let Some(v) = out.violations.iter().find(|v| v.rule == rule) else {
            wrong.push(format!("{}: no {rule}", e.name()));
            continue;
        };
        let text = cpsim_certify::diagram::text_for(&out.trace, v, 16);
        let ok = match (want, marked_row(&text)) {
            (None, None) => true,
            (Some(label), Some(row)) => row.contains(&format!("[{rule}] {label}")),
            _ => false,
        };
        // The violation's own row is always in view.
        let own = text
            .lines()
            .any(|l| l.starts_with("!!") && row_step(l) == Some(v.step));
        if !ok || !own {
            wrong.push(format!("{} ({v}), expected {want:?}:\n{text}", e.name()));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n").into())
    }
}

/// The process's thread count (Linux: `/proc/self/status`).
fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// A real-time broken provider leaves threads running after every host
/// stopped it, and breaks no rule a trace shows. The parent runs this very
/// trial again in a child process, alone, where the count means something.
fn threads_left_alone(e: &Entry, trial: &str) -> Result<(), Failed> {
    if std::env::var_os(CHILD).is_some() {
        return count_threads_left(e);
    }
    if thread_count().is_none() {
        // Not counted on this system (as in certification): nothing to check.
        return Ok(());
    }
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", trial, "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let left = stdout
        .lines()
        .find_map(|l| l.split("threads left: ").nth(1))
        .and_then(|n| n.trim().parse::<usize>().ok());
    match left {
        Some(n) if n > 0 && out.status.success() => Ok(()),
        _ => Err(format!(
            "{}: expected threads left after its stop (LIFE-8):\n{stdout}\n{stderr}",
            e.name()
        )
        .into()),
    }
}

/// In the child: a short real-time story ending in a platform shutdown on A,
/// then the threads still running 2 s after every host stopped the provider.
fn count_threads_left(e: &Entry) -> Result<(), Failed> {
    let before = thread_count().ok_or("no thread count")?;
    let script: Script = vec![
        (0, start("A")),
        (0, start("B")),
        (10, listen("B", true)),
        (50, v4("A", "B")),
        (100, v6("A", "B")),
        (200, shutdown("A")),
    ];
    let cfg = Config {
        clock: ClockMode::RealTime,
        drain_ms: 200,
        ..Config::with_seed(7)
    };
    let out = run(e.factory(), cfg, &["A", "B"], &script, 400);
    if !out.violations.is_empty() {
        return Err(format!(
            "{}: rules broken in the trace:\n{}",
            e.name(),
            listing(&out)
        )
        .into());
    }
    // The watchdog the run started is the harness's: one thread.
    let since = Instant::now();
    let mut left = thread_count().unwrap_or(before).saturating_sub(before + 1);
    while left > 0 && since.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
        left = thread_count().unwrap_or(before).saturating_sub(before + 1);
    }
    println!("threads left: {left}");
    Ok(())
}
