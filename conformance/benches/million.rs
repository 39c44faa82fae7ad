//! Certification at scale (BENCHMARKS.md, "A million cases"): throughput
//! and peak memory of one certification of N generated cases, for several
//! N, so that flat memory shows.
//!
//! `cargo bench -p cpsim-certify --bench million`
//!
//! Each measurement runs in a child process of this binary, so that its
//! peak RSS (`VmHWM` of `/proc/self/status`) is that run's alone. The child
//! certifies a correct provider with the plain case source, the default
//! shape and every core, no regression files, and fails unless the verdict is `pass` with no finding
//! (a million cases of a correct provider give no false alarm); then it
//! prints cases, seconds and peak RSS.
//!
//! Knobs: `CPSIM_MILLION_SIZES` (comma-separated case counts, default
//! `10000,100000,1000000`), `CPSIM_MILLION_PROVIDERS` (default
//! `reference,sync-raw`), `CPSIM_MILLION_THREADS` (default 0: every core),
//! `CPSIM_MILLION_SEED` (default 7).

use cpsim_certify::certify::PlainSource;
use cpsim_certify::{certify_subject, Config, Verdict};
use std::process::Command;
use std::time::Instant;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Peak resident set size of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn child(provider: &str, cases: u64) {
    let threads: usize = env_or("CPSIM_MILLION_THREADS", "0")
        .parse()
        .expect("CPSIM_MILLION_THREADS: a number");
    let seed: u64 = env_or("CPSIM_MILLION_SEED", "7")
        .parse()
        .expect("CPSIM_MILLION_SEED: a number");
    let subject = cpsim_providers::registry()
        .subject(provider)
        .expect("a built-in provider");
    let started = Instant::now();
    let cert = certify_subject(
        &subject,
        Config {
            cases,
            seed: Some(seed),
            threads,
            regressions: None,
            // The plain source (independent generated cases), what the
            // figures in BENCHMARKS.md were measured with.
            source: Some(PlainSource::maker()),
            ..Config::default()
        },
    );
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(cert.cases, cases);
    assert!(
        cert.verdict == Verdict::Pass && cert.findings.is_empty(),
        "{provider}, {cases} cases, seed {seed}: {}",
        cert.failure_message()
    );
    println!("{cases} {secs} {}", peak_rss_mib());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(k) = args.iter().position(|a| a == "--child") {
        let cases = args[k + 2].parse().expect("a case count");
        child(&args[k + 1], cases);
        return;
    }
    let sizes: Vec<u64> = env_or("CPSIM_MILLION_SIZES", "10000,100000,1000000")
        .split(',')
        .map(|s| s.trim().parse().expect("CPSIM_MILLION_SIZES: numbers"))
        .collect();
    let providers = env_or("CPSIM_MILLION_PROVIDERS", "reference,sync-raw");
    let exe = std::env::current_exe().expect("own path");
    println!("million: certification of N cases in a child process each (findings must be 0)");
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>12}",
        "provider", "cases", "seconds", "cases/s", "peak RSS MB"
    );
    for provider in providers.split(',').map(str::trim) {
        for &n in &sizes {
            let out = Command::new(&exe)
                .args(["--child", provider, &n.to_string()])
                .output()
                .expect("the child runs");
            assert!(
                out.status.success(),
                "{provider} at {n} cases failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8_lossy(&out.stdout);
            let f: Vec<f64> = line
                .split_whitespace()
                .map(|v| v.parse().expect("the child's figures"))
                .collect();
            let (cases, secs, rss) = (f[0], f[1], f[2]);
            println!(
                "{:<10} {:>9} {:>9.1} {:>9.0} {:>12.1}",
                provider,
                cases as u64,
                secs,
                cases / secs,
                rss
            );
        }
    }
}
