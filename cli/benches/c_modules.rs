//! Certification throughput of C provider modules, in cases per second:
//! the real-time sample (`sample`) and the virtual-time one (`sample_vt`),
//! each case in a case runner (a child process) as `cpsim certify
//! --provider-lib` runs it: the CLI's case shape and workers, no
//! shrinking (neither finds anything). Three runs each; prints the median,
//! fastest and slowest.
//!
//! `cargo bench -p cpsim --bench c_modules` (CPSIM_BENCH_RT_CASES and
//! CPSIM_BENCH_VT_CASES change the case counts: 256 and 8,192).

#[cfg(unix)]
fn main() {
    imp::main()
}

#[cfg(not(unix))]
fn main() {
    eprintln!("C provider modules run on unix targets only");
}

#[cfg(unix)]
mod imp {
    use cpsim::isolate::{self, Library};
    use cpsim_certify::certify::{certify_subject, Config};
    use cpsim_certify::Verdict;
    use std::path::PathBuf;
    use std::time::Instant;

    fn cases(var: &str, default: u64) -> u64 {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    pub fn main() {
        if std::env::args().any(|a| a == "--list") {
            return; // `cargo test --benches` asks; nothing to list
        }
        isolate::set_runner(Some(PathBuf::from(env!("CARGO_BIN_EXE_cpsim"))));
        for (name, n) in [
            ("sample", cases("CPSIM_BENCH_RT_CASES", 256)),
            ("sample_vt", cases("CPSIM_BENCH_VT_CASES", 8192)),
        ] {
            let path = cpsim_c_providers::module(name).expect("C modules are built on unix");
            let lib = Library::open(&path, serde_json::Value::Null).expect("the module opens");
            let mut rates = Vec::new();
            for seed in 1..=3 {
                let started = Instant::now();
                let c = certify_subject(
                    &lib.subject(),
                    Config {
                        cases: n,
                        seed: Some(seed),
                        regressions: None,
                        shape: lib.shape(),
                        threads: lib.workers(n),
                        shrink_steps: 0,
                        ..Config::default()
                    },
                );
                let secs = started.elapsed().as_secs_f64();
                if c.verdict != Verdict::Pass {
                    // Real time on a loaded machine can raise timing findings:
                    // say so, and still count the run.
                    eprintln!(
                        "{name}: seed {seed}: {} ({} findings)",
                        c.verdict,
                        c.findings.len()
                    );
                }
                rates.push(n as f64 / secs);
            }
            rates.sort_by(f64::total_cmp);
            println!(
            "{name:<10} {:?} clock, isolation {:?}, {} workers: {n} cases; median {:.0} cases/s (fastest {:.0}, slowest {:.0})",
            lib.clock(),
            lib.isolation(),
            match lib.workers(n) {
                0 => std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
                w => w,
            },
            rates[1],
            rates[2],
            rates[0]
        );
        }
    }
}
