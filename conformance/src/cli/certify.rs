//! `cpsim certify` and `cpsim kill-matrix`.

use super::{BAD_INPUT, FAIL, PASS};
use crate::certify::{certify_subject, Config, Subject};
use crate::model::{Certification, Verdict};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// A provider from `cpsim providers`.
    #[arg(long)]
    provider: String,
    /// Generated cases.
    #[arg(long, default_value_t = 256)]
    cases: u64,
    /// The seed (default: from the clock; always printed).
    #[arg(long)]
    seed: Option<u64>,
    /// SHOULD violations fail too.
    #[arg(long)]
    strict: bool,
    /// Write report.json, junit.xml and report.html here.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// Where shrunk failures are saved as scenario files.
    #[arg(long, default_value = "cpsim-regressions")]
    regressions: PathBuf,
    /// Worker threads (0: every core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(clap::Args)]
pub struct MatrixArgs {
    /// Generated cases per broken provider.
    #[arg(long, default_value_t = 64)]
    cases: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the table as Markdown (for README).
    #[arg(long)]
    markdown: bool,
}

fn progress_bar(total: u64) -> Option<Arc<dyn Fn(u64, u64) + Send + Sync>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:40}] {pos}/{len} cases  {per_sec}  ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    Some(Arc::new(move |done, _total| {
        bar.set_position(done);
        if done == bar.length().unwrap_or(0) {
            bar.finish_and_clear();
        }
    }))
}

pub fn run(a: Args) -> i32 {
    let Some(subject) = Subject::builtin(&a.provider) else {
        eprintln!(
            "cpsim: unknown provider `{}` (see `cpsim providers`)",
            a.provider
        );
        return BAD_INPUT;
    };
    if a.cases == 0 {
        eprintln!("cpsim: --cases must be at least 1");
        return BAD_INPUT;
    }
    let cfg = Config {
        cases: a.cases,
        seed: a.seed,
        strict: a.strict,
        threads: a.threads,
        regressions: Some(a.regressions),
        progress: progress_bar(a.cases),
        ..Config::default()
    };
    let cert = certify_subject(&subject, cfg);
    print_summary(&cert);
    if let Some(dir) = &a.report_dir {
        if let Err(e) = crate::report::write_all(&cert, dir) {
            eprintln!("cpsim: cannot write reports to {}: {e}", dir.display());
            return BAD_INPUT;
        }
        eprintln!(
            "reports: {}/report.json, junit.xml, report.html",
            dir.display()
        );
    }
    match cert.verdict {
        Verdict::Pass | Verdict::NonStrict => PASS,
        Verdict::Fail => FAIL,
    }
}

fn print_summary(cert: &Certification) {
    println!(
        "provider {}: {} ({} cases, seed {}, {:.2} s)",
        cert.provider, cert.verdict, cert.cases, cert.seed, cert.elapsed_s
    );
    let exercised = cert.rules.iter().filter(|r| r.exercised > 0).count();
    println!("rules exercised: {exercised} of {}", cert.rules.len());
    if cert.verdict != Verdict::Pass {
        println!("{}", cert.failure_message());
    }
    println!(
        "rerun: cpsim certify --provider {} --seed {} --cases {}",
        cert.provider, cert.seed, cert.cases
    );
}

pub fn kill_matrix(a: MatrixArgs) -> i32 {
    let rows = crate::certify::kill_matrix(a.cases, a.seed);
    let mut ok = true;
    if a.markdown {
        println!("| provider | target | verdict | caught | other rules fired | never exercised |");
        println!("|---|---|---|---|---|---|");
    }
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "—".to_string()
        } else {
            v.join(", ")
        }
    };
    for r in &rows {
        let caught = r.fired.contains(&r.target);
        // A SHOULD mutant is non-strict, unless it also starves a required rule.
        let expected =
            if r.target.rule().level == sim_cp::rules::Level::Should && r.unexercised.is_empty() {
                Verdict::NonStrict
            } else {
                Verdict::Fail
            };
        ok &= caught && r.verdict == expected;
        let others: Vec<String> = r
            .fired
            .iter()
            .filter(|x| **x != r.target)
            .map(|x| x.to_string())
            .collect();
        let never: Vec<String> = r.unexercised.iter().map(|x| x.to_string()).collect();
        if a.markdown {
            println!(
                "| `{}` | {} | {} | {} | {} | {} |",
                r.provider,
                r.target,
                r.verdict,
                if caught { "yes" } else { "**NO**" },
                list(others),
                list(never)
            );
        } else {
            println!(
                "{:<18} {:<8} {:<10} {:<7} fired also: {:<20} never exercised: {}",
                r.provider,
                r.target.to_string(),
                r.verdict.to_string(),
                if caught { "caught" } else { "MISSED" },
                list(others),
                list(never)
            );
        }
    }
    if ok {
        PASS
    } else {
        FAIL
    }
}
