//! Long runs (BENCHMARKS.md, item 6): wall time and peak memory of one run
//! of N application datagrams between two hosts, for several N, so that
//! linearity shows.
//!
//! `cargo bench -p cpsim-sim --bench long_run`
//!
//! Each measurement runs in a child process of this binary (so that its
//! peak RSS is its own): the world is built, N datagrams of 64 bytes are
//! sent A -> B through the `tiny` provider in bursts of 100 every virtual
//! millisecond, the run is finished (drain, DATA-5's loss check, provider
//! stop) and the platform checker judges the trace. The child asserts that
//! every datagram arrived and that nothing was reported, then prints its
//! figures; the parent prints the median of the repeats: wall time of the
//! run (with `Sim::finish`) and of the checker after it, the main thread's
//! CPU time for both (what other processes on the machine do not inflate),
//! and the peak RSS.
//!
//! Knobs: `CPSIM_LONG_RUN_SIZES` (comma-separated datagram counts, default
//! `10000,100000,1000000`), `CPSIM_LONG_RUN_REPEATS` (default 3),
//! `CPSIM_LONG_RUN_CHECK=0` (skip the platform checker after the run; a run
//! that outgrows its trace limit is still judged while it runs).

#[path = "common/tiny.rs"]
mod tiny;

use cpsim_sim::{Action, Config, Family, Nanos, Sim};
use std::process::Command;
use std::time::Instant;

const BYTES: u32 = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(k) = args.iter().position(|a| a == "--child") {
        let n: u32 = args[k + 1].parse().expect("a datagram count");
        child(n);
        return;
    }
    let sizes: Vec<u32> = std::env::var("CPSIM_LONG_RUN_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("CPSIM_LONG_RUN_SIZES: numbers"))
        .collect();
    let repeats: usize = std::env::var("CPSIM_LONG_RUN_REPEATS")
        .ok()
        .map(|s| s.parse().expect("CPSIM_LONG_RUN_REPEATS: a number"))
        .unwrap_or(3);
    let exe = std::env::current_exe().expect("own path");
    println!(
        "long_run: {BYTES}-byte datagrams A -> B, tiny provider, median of {repeats} (child processes)"
    );
    println!(
        "{:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>12} {:>12}",
        "datagrams", "run s", "check s", "total s", "cpu s", "µs/dg", "peak RSS MB", "trace events"
    );
    for n in sizes {
        let mut rows: Vec<Vec<f64>> = Vec::new();
        for _ in 0..repeats {
            let out = Command::new(&exe)
                .args(["--child", &n.to_string()])
                .output()
                .expect("child runs");
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8_lossy(&out.stdout);
            let row: Vec<f64> = line
                .split_whitespace()
                .map(|v| v.parse().expect("child figures"))
                .collect();
            rows.push(row);
        }
        let median = |k: usize| {
            let mut v: Vec<f64> = rows.iter().map(|r| r[k]).collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let (run, check, rss, events, cpu) =
            (median(0), median(1), median(2), median(3), median(4));
        println!(
            "{:>10} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>12.1} {:>12}",
            n,
            run,
            check,
            run + check,
            cpu,
            (run + check) * 1e6 / n as f64,
            rss / 1024.0,
            events as u64
        );
    }
}

/// One measured run; prints `run_s check_s peak_rss_kib trace_events cpu_s`.
fn child(n: u32) {
    let t0 = Instant::now();
    let sim = Sim::new(
        Config::with_seed(11),
        &["A", "B"],
        tiny::TinyFactory::new(1),
    );
    for h in ["A", "B"] {
        sim.schedule(Nanos::ZERO, Action::StartProvider { host: h.into() });
        sim.schedule(
            Nanos::ZERO,
            Action::Listen {
                host: h.into(),
                on: true,
            },
        );
    }
    // Scheduled a burst at a time, so that the queue holds one burst of actions.
    for burst in 0..n.div_ceil(100) {
        let at = Nanos::from_millis(1 + burst as u64);
        for _ in 0..100.min(n - burst * 100) {
            sim.schedule(
                at,
                Action::Send {
                    from: "A".into(),
                    to: "B".into(),
                    family: Family::V4,
                    bytes: BYTES,
                    newest: false,
                },
            );
        }
        sim.run_until(at);
    }
    let out = sim.finish();
    let run = t0.elapsed().as_secs_f64();
    assert_eq!((out.sent, out.delivered), (n, n), "every datagram arrived");
    assert!(out.violations.is_empty(), "{:?}", out.violations.first());
    let t1 = Instant::now();
    let platform = if std::env::var("CPSIM_LONG_RUN_CHECK").is_ok_and(|v| v == "0") {
        Vec::new()
    } else {
        cpsim_sim::oracle::check(&out.trace)
    };
    let check = t1.elapsed().as_secs_f64();
    assert!(platform.is_empty(), "{:?}", platform.first());
    let omitted = out.trace.omitted.as_ref().map_or(0, |o| o.events);
    println!(
        "{run} {check} {} {} {}",
        peak_rss_kib(),
        out.trace.events.len() as u64 + omitted,
        cpu_seconds()
    );
}

/// Time the main thread (where the whole run happens) spent on a CPU, in
/// seconds: unlike wall time, it does not grow when other processes load
/// the machine. 0 where /proc is missing.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// The process's peak resident set (VmHWM), in KiB; 0 where /proc is missing.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
