//! `cpsim certify` and `cpsim kill-matrix`.

use crate::{BAD_INPUT, FAIL, INTERRUPTED, PASS};
use cpsim_certify::certify::{
    certify_subject, clock_seed, lane_budget, shell_quote, Config, Invocation, Subject, LANES,
};
use cpsim_certify::model::{Certification, Partition, Verdict};
use cpsim_certify::Registry;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

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
    /// Generated cases (default: 8192 for a provider on the virtual clock,
    /// in-process or a virtual-time C module, a few seconds on two cores;
    /// 64 for one that runs in real time: a C module that does, or a
    /// provider with threads of its own).
    #[arg(long)]
    cases: Option<u64>,
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
    #[arg(long, default_value = DEFAULT_REGRESSIONS)]
    regressions: PathBuf,
    /// Worker threads (0: every core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Run shard K of N: a deterministic 1/N of the run's cases (N at most
    /// 16, the run's lanes; N dividing 16 gives equal shards). `cpsim merge`
    /// combines the shards' report.json files into the whole run's report.
    #[arg(long, value_name = "K/N")]
    partition: Option<Partition>,
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// Shards' report directories (each with a report.json) or report.json files.
    #[arg(required = true, value_name = "DIR")]
    reports: Vec<PathBuf>,
    /// Write the merged report.json, junit.xml and report.html here.
    #[arg(long)]
    report_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct MatrixArgs {
    /// Generated cases per broken provider (default 64; with --subtle, the
    /// budget whose detection rate is measured: 8192, the default of
    /// `certify`).
    #[arg(long)]
    cases: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The subtle providers instead: each searched on seeds 1..=--seeds up
    /// to ten times the budget; prints on how many seeds the budget and ten
    /// times it find the bug, and the median cases to the first detection.
    #[arg(long)]
    subtle: bool,
    /// With --subtle: how many seeds (1 to N).
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// With --subtle: search each seed up to this many times the budget
    /// (the second column; 1 bounds a slow run to the budget itself).
    #[arg(long, default_value_t = 10)]
    search: u64,
    /// With --subtle: measure the plain source (independent cases from the
    /// proptest strategy) instead of the default coverage-guided one.
    #[arg(long)]
    plain: bool,
    /// Print the table as Markdown (for README).
    #[arg(long)]
    markdown: bool,
    /// With --subtle: measure these C provider modules instead of the
    /// registered providers (each with the rule of the same position in
    /// --rule). A virtual-time module is searched like a built-in provider;
    /// every case runs in a case runner.
    #[arg(long, value_name = "PATH", requires = "subtle")]
    provider_lib: Vec<PathBuf>,
    /// With --provider-lib: the rule each module's bug breaks, in order.
    #[arg(long, value_name = "RULE", requires = "provider_lib")]
    rule: Vec<String>,
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
    Some(Arc::new(move |done, total| {
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        bar.set_position(done);
        if done == total {
            bar.finish_and_clear();
        }
    }))
}

/// The flag Ctrl-C sets. The handler is installed once per process: the
/// first SIGINT asks the run to stop (it finishes the case in hand, prints
/// the summary and writes the reports, marked incomplete); a second one
/// ends the process at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let seen = flag.clone();
        let installed = ctrlc::set_handler(move || {
            if seen.swap(true, Ordering::SeqCst) {
                std::process::exit(INTERRUPTED);
            }
            eprintln!(
                "\ncpsim: interrupted: stopping after the cases in hand (Ctrl-C again to quit at once)"
            );
        });
        if let Err(e) = installed {
            eprintln!("cpsim: cannot catch Ctrl-C ({e}); an interrupt will lose the run");
        }
        flag
    })
    .clone()
}

/// The configuration handed to a module (`--provider-config`).
fn module_config(config: Option<&std::path::Path>) -> Result<serde_json::Value, String> {
    match config {
        None => Ok(serde_json::Value::Null),
        Some(f) => {
            let shown = f.display();
            let bytes = cpsim_certify::scenario::read_regular_file(
                f,
                "a provider configuration (a JSON file)",
                cpsim_certify::scenario::MAX_FILE_BYTES,
            )
            .map_err(|e| format!("{shown}: {e}"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("{shown}: the file is not UTF-8 text"))?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            serde_json::from_str(text).map_err(|e| format!("{shown}: not JSON: {e}"))
        }
    }
}

/// `--provider-lib`: the module, and the settings that suit it.
#[cfg(all(feature = "c-modules", any(unix, windows)))]
struct Module(Arc<crate::isolate::Library>);

#[cfg(all(feature = "c-modules", any(unix, windows)))]
impl Module {
    fn open(lib: &std::path::Path, config: Option<&std::path::Path>) -> Result<Module, String> {
        let config = module_config(config)?;
        let l = crate::isolate::Library::open(lib, config)?;
        if let Some(note) = l.isolation_note() {
            eprintln!(
                "cpsim: cases of this module cannot have a network of their own ({note}); \
                 they share this machine's network and run one at a time"
            );
        }
        Ok(Module(l))
    }
    fn subject(&self) -> Subject {
        self.0.subject()
    }
    fn tune(&self, cfg: &mut Config, threads_given: usize) {
        cfg.shape = self.0.shape();
        cfg.shrink_steps = self.0.shrink_steps();
        let auto = self.0.workers(cfg.cases);
        cfg.threads =
            if !self.0.isolation().isolated() && self.0.clock() == cpsim_sim::ClockMode::RealTime {
                1
            } else if threads_given == 0 {
                auto
            } else {
                threads_given
            };
    }
    fn broken_promise(&self) -> Option<String> {
        self.0.broken_promise()
    }
    fn start_failure(&self) -> Option<String> {
        self.0.start_failure()
    }
}

#[cfg(not(all(feature = "c-modules", any(unix, windows))))]
struct Module;

#[cfg(not(all(feature = "c-modules", any(unix, windows))))]
impl Module {
    fn open(lib: &std::path::Path, config: Option<&std::path::Path>) -> Result<Module, String> {
        module_config(config)?;
        Err(format!(
            "{}: this cpsim cannot run C provider modules (they need a unix or Windows target and the feature `c-modules`)",
            lib.display()
        ))
    }
    fn subject(&self) -> Subject {
        unreachable!("never opened")
    }
    fn tune(&self, _cfg: &mut Config, _threads: usize) {}
    fn broken_promise(&self) -> Option<String> {
        None
    }
    fn start_failure(&self) -> Option<String> {
        None
    }
}

/// `--regressions`' default.
const DEFAULT_REGRESSIONS: &str = "cpsim-regressions";

/// Whether files can be written in `dir`, checked by creating it (and its
/// missing parents) and a file in it. Unless `keep`, the directories this
/// made are removed again (a run that finds nothing leaves nothing behind).
fn writable_dir(dir: &Path, keep: bool) -> Result<(), String> {
    let exists = |p: &Path| {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        std::fs::metadata(p).ok()
    };
    // The outermost directory this creates, and the nearest that exists.
    let mut made = None;
    let mut existing = None;
    for anc in dir.ancestors() {
        match exists(anc) {
            Some(m) => {
                existing = Some((anc, m));
                break;
            }
            None => made = Some(anc),
        }
    }
    if let Some((anc, m)) = &existing {
        if !m.is_dir() {
            let shown = if anc.as_os_str().is_empty() {
                Path::new(".")
            } else {
                anc
            };
            return Err(format!("{} is a file, not a directory", shown.display()));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let probe = dir.join(format!(".cpsim-write-check-{}", std::process::id()));
    let wrote = std::fs::write(&probe, b"").map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&probe);
    if !keep {
        if let Some(m) = made {
            let _ = std::fs::remove_dir_all(m);
        }
    }
    wrote
}

/// The default budget of a real-time C module (each case runs in real
/// time, in a child process). A virtual-time module gets the default budget
/// of a built-in provider (decision `vt-module-budget`).
const MODULE_CASES: u64 = 64;

pub fn run(registry: &Registry, a: Args, program: &str) -> i32 {
    // clap's `requires` is not enforced when the required argument
    // conflicts with one given (`--provider`), so it is checked here: a
    // configuration must never be dropped without a word.
    if a.provider_config.is_some() && a.provider_lib.is_none() {
        eprintln!(
            "cpsim: --provider-config is handed to a C module's CpsimProviderStart: it needs --provider-lib (a built-in provider takes no configuration)"
        );
        return BAD_INPUT;
    }
    let mut module = None;
    let subject = match (&a.provider, &a.provider_lib) {
        (_, Some(lib)) => match Module::open(lib, a.provider_config.as_deref()) {
            Ok(m) => {
                let s = m.subject();
                module = Some(m);
                s
            }
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
    // In real time a case takes as long as it runs: a C module's, or a
    // provider with threads of its own (as `certify()` from code gives it).
    let cases = a.cases.unwrap_or(match subject.clock {
        cpsim_sim::ClockMode::RealTime if subject.external.is_some() => MODULE_CASES,
        cpsim_sim::ClockMode::RealTime => cpsim_certify::certify::REAL_TIME_DEFAULT_CASES,
        cpsim_sim::ClockMode::Virtual => cpsim_certify::certify::DEFAULT_CASES,
    });
    if cases == 0 {
        eprintln!("cpsim: --cases must be at least 1");
        return BAD_INPUT;
    }
    let quoted = |p: &Path| shell_quote(&p.display().to_string());
    let mut which = match (&a.provider_lib, &a.provider_config) {
        (Some(lib), Some(c)) => format!(
            "--provider-lib {} --provider-config {}",
            quoted(lib),
            quoted(c)
        ),
        (Some(lib), None) => format!("--provider-lib {}", quoted(lib)),
        _ => format!("--provider {}", shell_quote(&subject.name)),
    };
    // The printed rerun gives the same verdict: the same strictness, and the
    // same saved failures replayed first.
    if a.strict {
        which.push_str(" --strict");
    }
    if a.regressions != Path::new(DEFAULT_REGRESSIONS) {
        which.push_str(&format!(" --regressions {}", quoted(&a.regressions)));
    }
    // Where the reports and saved failures go is checked before the first
    // case, not found unwritable after a long run.
    if let Some(dir) = &a.report_dir {
        if let Err(e) = writable_dir(dir, true) {
            eprintln!("cpsim: cannot write reports to {}: {e}", dir.display());
            return BAD_INPUT;
        }
    }
    if let Err(e) = writable_dir(&a.regressions, false) {
        eprintln!(
            "cpsim: cannot save failing cases in {} (--regressions): {e}",
            a.regressions.display()
        );
        return BAD_INPUT;
    }
    // The seed is printed before the first case, so an interrupted or
    // crashed run can still be repeated.
    let seed = a.seed.unwrap_or_else(clock_seed);
    let shard = match a.partition {
        Some(p) => {
            let mine: u64 = (0..LANES)
                .filter(|l| p.owns(*l))
                .map(|l| lane_budget(cases, l))
                .sum();
            format!(", shard {p}: {mine} of them")
        }
        None => String::new(),
    };
    println!(
        "certifying {}: seed {seed}, {} cases{shard}",
        subject.name, cases
    );
    let stop = interrupt_flag();
    stop.store(false, Ordering::SeqCst);
    // Spelled with `..` so that fields added to Config later get defaults.
    #[allow(clippy::needless_update)]
    let mut cfg = Config {
        invocation: Invocation::Cli {
            program: program.to_string(),
            provider: which,
        },
        cases,
        seed: Some(seed),
        strict: a.strict,
        threads: a.threads,
        regressions: Some(a.regressions),
        progress: progress_bar(cases),
        partition: a.partition,
        stop: Some(stop.clone()),
        // This process runs this one certification: threads a real-time
        // provider leaves running can be counted.
        alone_in_process: true,
        ..Config::default()
    };
    // A C module: the shape, workers and shrinking that suit its clock.
    if let Some(m) = &module {
        m.tune(&mut cfg, a.threads);
    }
    let cert = certify_subject(&subject, cfg);
    if let Some(p) = module.as_ref().and_then(Module::broken_promise) {
        eprintln!("cpsim: {p}");
        return BAD_INPUT;
    }
    let interrupted = stop.load(Ordering::SeqCst);
    print_summary(&cert);
    // A host whose CpsimProviderStart fails runs nothing, which otherwise
    // shows only as rules never exercised: say why.
    if let Some(f) = module.as_ref().and_then(Module::start_failure) {
        println!(
            "module start failed: {f} (the first seen); a host whose start fails runs nothing of the module in that case"
        );
    }
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
    if interrupted {
        return INTERRUPTED;
    }
    exit_code(&cert)
}

/// 0 for a complete passing run, 1 otherwise.
fn exit_code(cert: &Certification) -> i32 {
    match cert.verdict {
        _ if cert.incomplete.is_some() => FAIL,
        Verdict::Pass | Verdict::NonStrict => PASS,
        Verdict::Fail => FAIL,
    }
}

/// The largest shard report.json `merge` reads (a report keeps counters and
/// each distinct finding's first case: far smaller than this).
const MAX_REPORT_BYTES: u64 = 1 << 30;

/// `cpsim merge`: the shards' reports combined into the whole run's.
pub fn merge(a: MergeArgs, program: &str) -> i32 {
    let mut parts = Vec::new();
    for p in &a.reports {
        let file = if p.is_dir() {
            p.join("report.json")
        } else {
            p.clone()
        };
        let name = file.display().to_string();
        let read = cpsim_certify::scenario::read_regular_file(
            &file,
            "a cpsim report.json",
            MAX_REPORT_BYTES,
        )
        .and_then(|b| String::from_utf8(b).map_err(|_| "the file is not UTF-8 text".into()));
        let text = match read {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cpsim: {name}: {e}");
                return BAD_INPUT;
            }
        };
        match cpsim_certify::report::json::from_str(&text) {
            Ok(c) => parts.push((name, c)),
            Err(e) => {
                eprintln!("cpsim: {name}: not a cpsim report.json: {e}");
                return BAD_INPUT;
            }
        }
    }
    let mut cert = match cpsim_certify::merge::merge(parts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cpsim: {e}");
            return BAD_INPUT;
        }
    };
    // Reports of a cpsim that did not write the rerun command.
    if cert.rerun.is_empty() {
        cert.rerun = format!(
            "{program} certify --provider {} --seed {} --cases {}",
            cert.provider, cert.seed, cert.budget
        );
    }
    print_summary(&cert);
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
    exit_code(&cert)
}

fn print_summary(cert: &Certification) {
    let shard = cert
        .partition
        .map(|p| format!(", shard {p} of {} cases", cert.budget))
        .unwrap_or_default();
    println!(
        "provider {}: {} ({} cases{shard}, seed {}, {:.2} s)",
        cert.provider, cert.verdict, cert.cases, cert.seed, cert.elapsed_s
    );
    if let Some(why) = &cert.incomplete {
        println!("INCOMPLETE: {why}");
    }
    if !cert.replayed.is_empty() {
        let fixed = cert
            .replayed
            .iter()
            .filter(|r| r.error.is_none() && r.violations.is_empty())
            .count();
        println!(
            "saved failures replayed first: {} ({fixed} fixed)",
            cert.replayed.len()
        );
    }
    let exercised = cert.rules.iter().filter(|r| r.exercised > 0).count();
    println!("rules exercised: {exercised} of {}", cert.rules.len());
    if !cert.coverage.is_empty() {
        println!(
            "contract-state coverage: {} situations (callback x phase x pended calls x preceding event, ...)",
            cert.coverage.len()
        );
    }
    if cert.stalls > 0 {
        println!(
            "note: {} case(s) stalled past the real-time watchdog and ran clean when rerun \
             (this machine was too busy; not findings)",
            cert.stalls
        );
    }
    if let Some(warnings) = cert.warning_message() {
        // A non-strict pass; it ends with the rerun command too.
        println!("{warnings}");
    } else if cert.verdict != Verdict::Pass {
        // It ends with the rerun command.
        println!("{}", cert.failure_message());
    } else {
        println!("rerun: {}", cert.rerun);
    }
}

pub fn kill_matrix(registry: &Registry, a: MatrixArgs) -> i32 {
    if a.subtle {
        return subtle_matrix(registry, a);
    }
    let rows = cpsim_certify::certify::kill_matrix(registry, a.cases.unwrap_or(64), a.seed, true);
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

/// `kill-matrix --subtle --provider-lib P --rule R`: the modules as subjects.
fn subtle_modules(
    libs: &[PathBuf],
    rules: &[String],
) -> Result<Vec<(String, cpsim_sim::RuleId, Subject)>, String> {
    if libs.len() != rules.len() {
        return Err(format!(
            "give one --rule per --provider-lib ({} modules, {} rules)",
            libs.len(),
            rules.len()
        ));
    }
    libs.iter()
        .zip(rules)
        .map(|(lib, rule)| {
            let r = cpsim_sim::RuleId::parse(rule)
                .ok_or_else(|| format!("--rule {rule}: not a rule ID (see `cpsim rules`)"))?;
            let m = Module::open(lib, None)?;
            let s = m.subject();
            Ok((s.name.clone(), r, s))
        })
        .collect()
}

/// `cpsim kill-matrix --subtle`: detection rates of the subtle providers.
fn subtle_matrix(registry: &Registry, a: MatrixArgs) -> i32 {
    let budget = a.cases.unwrap_or(cpsim_certify::certify::DEFAULT_CASES);
    if budget == 0 || a.seeds == 0 {
        eprintln!("cpsim: --cases and --seeds must be at least 1");
        return BAD_INPUT;
    }
    let seeds: Vec<u64> = (1..=a.seeds).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = std::time::Instant::now();
    let maker = if a.plain {
        cpsim_certify::certify::PlainSource::maker()
    } else {
        cpsim_certify::certify::guided::GuidedSource::maker()
    };
    let entries = if a.provider_lib.is_empty() {
        registry
            .entries()
            .iter()
            .filter_map(|e| match e.kind() {
                cpsim_certify::Kind::Subtle(r) => Some((e.name().to_string(), r, e.subject())),
                _ => None,
            })
            .collect()
    } else {
        match subtle_modules(&a.provider_lib, &a.rule) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("cpsim: {e}");
                return BAD_INPUT;
            }
        }
    };
    let ten = budget.saturating_mul(a.search.max(1));
    let rows = cpsim_certify::certify::subtle_matrix_of(&entries, &seeds, ten, threads, &maker);
    if rows.is_empty() {
        eprintln!("cpsim: no subtle provider is registered (Entry::subtle)");
        return BAD_INPUT;
    }
    let n = seeds.len();
    if a.markdown {
        println!(
            "| provider | rule | found at {budget} cases | found at {ten} cases | median cases to first detection |"
        );
        println!("|---|---|---|---|---|");
    }
    let mut ok = true;
    for r in &rows {
        let (d, t) = (r.found_within(budget), r.found_within(ten));
        ok &= d * 10 >= n * 9;
        let median = r
            .median_cases()
            .map_or_else(|| format!("> {ten}"), |m| m.to_string());
        if a.markdown {
            println!(
                "| `{}` | {} | {d}/{n} | {t}/{n} | {median} |",
                r.provider, r.target
            );
        } else {
            let firsts: Vec<String> = r
                .first
                .iter()
                .map(|(_, f)| f.map_or("-".into(), |i| (i + 1).to_string()))
                .collect();
            println!(
                "{:<46} {:<8} {d:>2}/{n} at {budget}  {t:>2}/{n} at {ten}  median {median:>6}  per seed: {}",
                r.provider,
                r.target.to_string(),
                firsts.join(" ")
            );
        }
    }
    let total: usize = rows.iter().map(|r| r.found_within(budget)).sum();
    println!(
        "{total} of {} (provider, seed) pairs found at {budget} cases; {:.1} s",
        rows.len() * n,
        started.elapsed().as_secs_f64()
    );
    if ok {
        PASS
    } else {
        FAIL
    }
}
