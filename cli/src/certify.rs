//! `cpsim certify` and `cpsim kill-matrix`.

use crate::{BAD_INPUT, FAIL, PASS};
use cpsim_certify::certify::{certify_subject, Config, Subject};
use cpsim_certify::model::{Certification, Verdict};
use cpsim_certify::Registry;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// A provider from `cpsim providers`.
    #[arg(
        long,
        required_unless_present = "provider_lib",
        conflicts_with = "provider_lib"
    )]
    provider: Option<String>,
    /// A C provider module (a shared library exporting CpsimProviderStart
    /// and CpsimProviderStop); each case runs in a child process, in real time.
    #[arg(long, value_name = "PATH")]
    provider_lib: Option<PathBuf>,
    /// A JSON file whose content is handed to the module's CpsimProviderStart.
    #[arg(long, value_name = "FILE", requires = "provider_lib")]
    provider_config: Option<PathBuf>,
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

/// The subject of `--provider-lib` (and `--provider-config`).
fn library_subject(
    lib: &std::path::Path,
    config: Option<&std::path::Path>,
) -> Result<Subject, String> {
    let config = match config {
        None => serde_json::Value::Null,
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", f.display()))?
        }
    };
    #[cfg(feature = "c-modules")]
    {
        crate::isolate::library_subject(lib, config)
    }
    #[cfg(not(feature = "c-modules"))]
    {
        let _ = config;
        Err(format!(
            "{}: this cpsim was built without C module support (feature `c-modules`)",
            lib.display()
        ))
    }
}

pub fn run(registry: &Registry, a: Args) -> i32 {
    let subject = match (&a.provider, &a.provider_lib) {
        (_, Some(lib)) => match library_subject(lib, a.provider_config.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cpsim: {e}");
                return BAD_INPUT;
            }
        },
        (Some(name), None) => match registry.subject(name) {
            Some(s) => s,
            None => {
                eprintln!("cpsim: {}", registry.unknown(name));
                return BAD_INPUT;
            }
        },
        (None, None) => {
            eprintln!("cpsim: give --provider NAME or --provider-lib PATH");
            return BAD_INPUT;
        }
    };
    if a.cases == 0 {
        eprintln!("cpsim: --cases must be at least 1");
        return BAD_INPUT;
    }
    // A C module runs in real time: short cases, and few shrink steps.
    let (shape, shrink_steps) = if subject.external.is_some() {
        (cpsim_certify::certify::Shape::real_time_module(), 16)
    } else {
        (Config::default().shape, Config::default().shrink_steps)
    };
    // Spelled with `..` so that fields added to Config later get defaults.
    #[allow(clippy::needless_update)]
    let cfg = Config {
        shape,
        shrink_steps,
        cases: a.cases,
        seed: a.seed,
        strict: a.strict,
        threads: a.threads,
        regressions: Some(a.regressions),
        progress: progress_bar(a.cases),
        ..Config::default()
    };
    let cert = certify_subject(&subject, cfg);
    let which = match (&a.provider_lib, &a.provider_config) {
        (Some(lib), Some(c)) => format!(
            "--provider-lib {} --provider-config {}",
            lib.display(),
            c.display()
        ),
        (Some(lib), None) => format!("--provider-lib {}", lib.display()),
        _ => format!("--provider {}", cert.provider),
    };
    print_summary(&cert, &which);
    if let Some(dir) = &a.report_dir {
        if let Err(e) = cpsim_certify::report::write_all(&cert, dir) {
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

fn print_summary(cert: &Certification, which: &str) {
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
        "rerun: cpsim certify {which} --seed {} --cases {}",
        cert.seed, cert.cases
    );
}

pub fn kill_matrix(registry: &Registry, a: MatrixArgs) -> i32 {
    let rows = cpsim_certify::certify::kill_matrix(registry, a.cases, a.seed);
    if rows.is_empty() {
        eprintln!("cpsim: no deliberately broken provider is registered (Entry::broken)");
        return BAD_INPUT;
    }
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
        let expected = if r.target.rule().level == cpsim_sim::rules::Level::Should
            && r.unexercised.is_empty()
        {
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
