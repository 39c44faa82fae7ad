//! What makes a certification from `cargo test` behave like proptest:
//!
//! - **saved failures first.** Every scenario file of the regressions folder
//!   (`Config::regressions`) that names the provider under test is replayed
//!   before any case is generated (by an unpartitioned run: a shard leaves
//!   that to the whole run, so that shards merge into exactly its result). If one still fails the certification,
//!   nothing is generated: the certification is of the saved cases, and says
//!   so. Otherwise the generated run goes on, and the report lists each
//!   saved failure as fixed or (a SHOULD rule, without `strict`) not yet;
//! - **the environment.** `CPSIM_SEED` and `CPSIM_CASES` set the seed and
//!   the budget without editing code (they override the `Config`), and
//!   `CPSIM_REPLAY=FILE` makes the certification that one saved case alone;
//! - **commands that work where the test runs.** Under cargo, the failure
//!   message and every saved file print `cargo test` command lines for the
//!   package and test that ran (cargo names both: `CARGO_PKG_NAME`, and the
//!   test thread's name); from the `cpsim` command line, `cpsim` commands.
//!
//! The command line reads no environment variable: its flags say the same.

use super::{clock_seed, fingerprint, run_case, CaseResult, Config, Subject, LANES};
use crate::model::{Certification, Finding, MinimalCase, Replayed, RuleStat, Verdict};
use crate::scenario::{self, PlatformSettings, ProviderRef, Scenario, Step};
use cpsim_sim::{ClockMode, RuleId, Violation};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Sets the seed of a certification run from code (decimal, or hex with `0x`).
pub const SEED_VAR: &str = "CPSIM_SEED";
/// Sets the number of generated cases of a certification run from code.
pub const CASES_VAR: &str = "CPSIM_CASES";
/// Names one saved failure (a scenario file): the certification run from
/// code replays that case alone.
pub const REPLAY_VAR: &str = "CPSIM_REPLAY";

/// Where a certification is run from: which environment variables it reads
/// and which commands its messages print.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Invocation {
    /// From code, e.g. a test (the default). Reads `CPSIM_SEED`,
    /// `CPSIM_CASES` and `CPSIM_REPLAY`; when cargo runs it, this becomes
    /// [`Invocation::CargoTest`] as the certification starts.
    #[default]
    Code,
    /// From `cargo test` (or `cargo nextest`): the package, and the test
    /// (the name of the thread that called `certify`, which libtest names
    /// after the test; `None` when there is none).
    CargoTest {
        package: String,
        test: Option<String>,
    },
    /// From a `cpsim` command line: `program` is the binary's name as it can
    /// be run again, `provider` the arguments that name the provider
    /// (`--provider NAME`) and any that change the verdict or what is
    /// replayed first (`--strict`, `--regressions DIR`), shell-quoted.
    /// No environment variable is read.
    Cli { program: String, provider: String },
}

impl Invocation {
    /// Under cargo, [`Invocation::Code`] becomes [`Invocation::CargoTest`]
    /// (call it on the thread that runs the test).
    pub fn resolve(self) -> Invocation {
        match self {
            Invocation::Code => match std::env::var("CARGO_PKG_NAME") {
                Ok(package) if !package.is_empty() => Invocation::CargoTest {
                    package,
                    test: std::thread::current()
                        .name()
                        .filter(|n| *n != "main")
                        .map(str::to_string),
                },
                _ => Invocation::Code,
            },
            other => other,
        }
    }

    /// Whether `CPSIM_*` environment variables apply.
    pub fn reads_env(&self) -> bool {
        !matches!(self, Invocation::Cli { .. })
    }

    /// The command that runs this certification again with this seed and
    /// budget.
    pub fn rerun_command(&self, seed: u64, cases: u64) -> String {
        match self {
            Invocation::Cli { program, provider } => {
                format!("{program} certify {provider} --seed {seed} --cases {cases}")
            }
            _ => format!(
                "{SEED_VAR}={seed} {CASES_VAR}={cases} {}",
                self.test_command()
            ),
        }
    }

    /// The command that replays the saved failure `file`.
    pub fn replay_command(&self, file: &Path) -> String {
        let f = shell_quote(&file.display().to_string());
        match self {
            Invocation::Cli { program, .. } => format!("{program} replay {f}"),
            _ => format!("{REPLAY_VAR}={f} {}", self.test_command()),
        }
    }

    /// `cargo test` restricted to this package and test, as far as known.
    fn test_command(&self) -> String {
        match self {
            Invocation::CargoTest {
                package,
                test: Some(test),
            } => format!(
                "cargo test -p {} {} -- --exact",
                shell_quote(package),
                shell_quote(test)
            ),
            Invocation::CargoTest {
                package,
                test: None,
            } => {
                format!("cargo test -p {}", shell_quote(package))
            }
            _ => "cargo test".to_string(),
        }
    }
}

/// `s`, quoted for a POSIX shell when it needs to be (PowerShell reads the
/// same single quotes).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What the `CPSIM_*` environment variables ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvOverrides {
    /// `CPSIM_SEED`.
    pub seed: Option<u64>,
    /// `CPSIM_CASES`.
    pub cases: Option<u64>,
    /// `CPSIM_REPLAY`.
    pub replay: Option<PathBuf>,
}

impl EnvOverrides {
    /// From this process's environment.
    pub fn from_env() -> Result<EnvOverrides, String> {
        EnvOverrides::from_lookup(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))
    }

    /// From `get` (a variable's value by name; unset and empty are alike).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EnvOverrides, String> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |k: &str, v: &str| -> Result<u64, String> {
            let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse::<u64>(),
            };
            parsed.map_err(|_| {
                format!("{k}={v}: not a number (give a decimal, or hexadecimal with 0x)")
            })
        };
        let seed = var(SEED_VAR).map(|v| number(SEED_VAR, &v)).transpose()?;
        let cases = var(CASES_VAR).map(|v| number(CASES_VAR, &v)).transpose()?;
        if cases == Some(0) {
            return Err(format!(
                "{CASES_VAR}=0: a certification needs at least one case"
            ));
        }
        Ok(EnvOverrides {
            seed,
            cases,
            replay: var(REPLAY_VAR).map(PathBuf::from),
        })
    }
}

/// One saved case and how its replay went.
struct SavedRun {
    file: PathBuf,
    /// The case and its result, or why it could not run.
    run: Result<(Scenario, CaseResult), String>,
}

/// Certifies `subject`: the environment applied, saved failures replayed
/// first, then `generated` (the generated run) unless one still fails.
pub(super) fn around(
    subject: &Subject,
    mut cfg: Config,
    generated: impl FnOnce(&Subject, Config) -> Certification,
) -> Certification {
    let started = Instant::now();
    // A provider's panic is a CRASH-1 finding: no noise on stderr for it.
    cpsim_sim::runtime::quiet_provider_panics();
    cfg.invocation = std::mem::take(&mut cfg.invocation).resolve();
    let env = if cfg.invocation.reads_env() {
        EnvOverrides::from_env().unwrap_or_else(|e| panic!("cpsim: {e}"))
    } else {
        EnvOverrides::default()
    };
    if let Some(seed) = env.seed {
        cfg.seed = Some(seed);
    }
    if let Some(cases) = env.cases {
        cfg.cases = cases;
    }
    // Fixed now, so that every command printed names it.
    let seed = cfg.seed.unwrap_or_else(clock_seed);
    cfg.seed = Some(seed);
    let mut rerun = cfg.invocation.rerun_command(seed, cfg.cases);
    // A shard reruns as that shard (a saved case names the whole run: its
    // case index is the whole run's).
    if let (Some(p), Invocation::Cli { .. }) = (cfg.partition, &cfg.invocation) {
        rerun.push_str(&format!(" --partition {p}"));
    }

    // Should the watchdog end the process (a provider that hangs), it
    // says how to run this again.
    let _note = cpsim_sim::watchdog::note_while_running(rerun.clone());
    let (saved, only) = match &env.replay {
        Some(file) => match replay_one(subject, file) {
            Some(run) => (vec![run], true),
            // It names another provider: not this certification's business.
            None => (Vec::new(), false),
        },
        // A shard of a partitioned run is part of a bigger run: its saved
        // failures are replayed by unpartitioned runs, so that the shards
        // merge into exactly the unsharded result.
        None if cfg.partition.is_some() => (Vec::new(), false),
        None => (
            cfg.regressions
                .as_deref()
                .map(|dir| replay_dir(subject, dir))
                .unwrap_or_default(),
            false,
        ),
    };
    let summary: Vec<Replayed> = saved.iter().map(summarise).collect();
    let fails = |s: &SavedRun| match &s.run {
        Err(_) => true,
        Ok((_, r)) => fails_alone(r, cfg.strict),
    };
    if only || saved.iter().any(fails) {
        let mut cert = from_saved(subject, &cfg, seed, saved);
        cert.elapsed_s = started.elapsed().as_secs_f64();
        cert.rerun = rerun;
        cert.replayed = summary;
        cert.replay_only = true;
        return cert;
    }

    let mut cert = generated(subject, cfg.clone());
    cert.rerun = rerun;
    cert.replayed = summary;
    keep_older_witnesses(&mut cert, &saved, &cfg);
    cert
}

/// A generated case for `subject` as it would be written: what a saved
/// file must name to be this subject's.
fn provider_of(subject: &Subject) -> ProviderRef {
    let mut s = Scenario {
        version: scenario::VERSION,
        name: String::new(),
        description: String::new(),
        hosts: vec!["A".into()],
        provider: ProviderRef::Name(subject.name.clone()),
        provider_config: serde_json::Value::Null,
        platform: PlatformSettings::default(),
        steps: vec![Step::Advance { at_ms: 0 }],
        expect: Default::default(),
        simulator_only: None,
    };
    if let Some(ext) = &subject.external {
        ext.prepare(&mut s);
    }
    s.provider
}

/// Reads a saved case as written (a module's path is not resolved: it is
/// compared as written, and the subject's own replaces it when run).
/// It is read as the loader reads any scenario file: a regular file of at
/// most 4 MiB, an error naming the line and column of text that is not
/// UTF-8.
fn read_saved(file: &Path) -> Result<Scenario, String> {
    scenario::load_as_written(file).map_err(|e| e.to_string())
}

/// Writes a saved case so that no reader ever sees part of it: the text
/// goes to a hidden file beside it (not `*.json`, so no certification
/// replays it) that is then renamed over `file`. Tests run concurrently in
/// one process and share the regressions folder: another certification
/// may read the folder at any moment.
pub(super) fn save(file: &Path, text: &str) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// `CPSIM_REPLAY`: the file, if it names this subject's provider (a file
/// that cannot be read is reported whoever it names).
fn replay_one(subject: &Subject, file: &Path) -> Option<SavedRun> {
    match read_saved(file) {
        Err(e) => Some(SavedRun {
            file: file.to_path_buf(),
            run: Err(format!("{REPLAY_VAR}: {e}")),
        }),
        Ok(s) if s.provider.same_provider(&provider_of(subject)) => Some(SavedRun {
            file: file.to_path_buf(),
            run: Ok((s.clone(), run_case(subject, &s))),
        }),
        Ok(_) => None,
    }
}

/// Every `*.json` of `dir` that names this subject's provider, replayed, in
/// file-name order. A file that does not load is reported (it cannot be
/// told whose it is); a folder that does not exist holds nothing.
fn replay_dir(subject: &Subject, dir: &Path) -> Vec<SavedRun> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mine = provider_of(subject);
    files
        .into_iter()
        .filter_map(|file| match read_saved(&file) {
            // Gone since the folder was listed: another certification in
            // this process removed it (a known warning's new file).
            Err(_) if !file.exists() => None,
            Err(e) => Some(SavedRun { file, run: Err(e) }),
            Ok(s) if s.provider.same_provider(&mine) => {
                let r = run_case(subject, &s);
                Some(SavedRun {
                    file,
                    run: Ok((s, r)),
                })
            }
            Ok(_) => None,
        })
        .collect()
}

fn summarise(s: &SavedRun) -> Replayed {
    match &s.run {
        Ok((_, r)) => {
            let mut rules: Vec<RuleId> = r.violations.iter().map(|v| v.rule).collect();
            rules.sort();
            rules.dedup();
            Replayed {
                file: s.file.clone(),
                violations: rules,
                error: None,
            }
        }
        Err(e) => Replayed {
            file: s.file.clone(),
            violations: Vec::new(),
            error: Some(e.clone()),
        },
    }
}

/// Whether this one case fails a certification (a MUST rule or a platform
/// guarantee broken; a SHOULD rule too when strict).
fn fails_alone(r: &CaseResult, strict: bool) -> bool {
    let stats = stats_of(std::iter::once(r));
    Certification::compute_verdict(&stats, &[], strict) == Verdict::Fail
}

/// Per-rule counts over some cases (a violated rule counts as exercised).
fn stats_of<'a>(results: impl Iterator<Item = &'a CaseResult>) -> Vec<RuleStat> {
    let mut stats: Vec<RuleStat> = RuleId::all()
        .map(|id| RuleStat {
            id,
            exercised: 0,
            violations: 0,
        })
        .collect();
    for r in results {
        let mut rules: Vec<RuleId> = r.exercised.clone();
        let mut broken: Vec<RuleId> = r.violations.iter().map(|v| v.rule).collect();
        broken.sort();
        broken.dedup();
        rules.extend(broken.iter().copied());
        rules.sort();
        rules.dedup();
        for id in rules {
            stats[id.index()].exercised += 1;
        }
        for id in broken {
            stats[id.index()].violations += 1;
        }
    }
    stats
}

/// The certification of the saved cases alone (one still fails, or
/// `CPSIM_REPLAY` named one): nothing generated, nothing shrunk (a saved
/// case is already minimal), no coverage required.
fn from_saved(subject: &Subject, cfg: &Config, seed: u64, saved: Vec<SavedRun>) -> Certification {
    let ran: Vec<(&PathBuf, &Scenario, &CaseResult)> = saved
        .iter()
        .filter_map(|s| s.run.as_ref().ok().map(|(sc, r)| (&s.file, sc, r)))
        .collect();
    let stats = stats_of(ran.iter().map(|(_, _, r)| *r));
    // Findings by fingerprint: the first case showing each, and how many do.
    let mut found: BTreeMap<String, (usize, Violation, u64, bool)> = BTreeMap::new();
    for (i, (_, _, r)) in ran.iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, v) in r.violations.iter().enumerate() {
            let fp = fingerprint(v, &r.trace);
            let e = found
                .entry(fp.clone())
                .or_insert_with(|| (i, v.clone(), 0, false));
            if seen.insert(fp) {
                e.2 += 1;
            }
            e.3 |= k == 0;
        }
    }
    let mut order: Vec<(String, (usize, Violation, u64, bool))> = found.into_iter().collect();
    order.sort_by_key(|(_, (_, v, _, first))| (!*first, v.rule));
    let findings = order
        .into_iter()
        .map(|(fp, (i, violation, cases, root))| {
            let (file, s, r) = ran[i];
            let deterministic = (subject.clock == ClockMode::Virtual)
                .then(|| run_case(subject, s).trace == r.trace);
            Finding {
                fingerprint: fp,
                violation,
                cases,
                first_case: i as u64,
                root_cause: root,
                minimal: Some(MinimalCase {
                    scenario: s.clone(),
                    trace: r.trace.clone(),
                    saved_to: Some(file.clone()),
                    save_error: None,
                    replay: cfg.invocation.replay_command(file),
                    deterministic,
                    recurred: true,
                }),
            }
        })
        .collect();
    let unreadable = saved.iter().any(|s| s.run.is_err());
    let verdict = if unreadable {
        Verdict::Fail
    } else {
        Certification::compute_verdict(&stats, &[], cfg.strict)
    };
    Certification {
        provider: subject.name.clone(),
        verdict,
        strict: cfg.strict,
        seed,
        cases: ran.len() as u64,
        budget: cfg.cases,
        lanes: LANES,
        partition: cfg.partition,
        incomplete: None,
        elapsed_s: 0.0,
        rerun: String::new(),
        replayed: Vec::new(),
        replay_only: true,
        rules: stats,
        findings,
        unexercised: Vec::new(),
        // Saved cases are replayed, not explored: no coverage is claimed.
        coverage: Vec::new(),
        stalls: 0,
    }
}

/// A generated finding whose fingerprint a saved case still shows (only a
/// warning can get here: anything worse stops before generating) keeps the
/// saved case as its witness, and the file just written for it goes, so
/// that a known warning does not add a file on every run.
fn keep_older_witnesses(cert: &mut Certification, saved: &[SavedRun], cfg: &Config) {
    for f in &mut cert.findings {
        let older = saved.iter().find_map(|s| {
            let (sc, r) = s.run.as_ref().ok()?;
            r.violations
                .iter()
                .find(|v| fingerprint(v, &r.trace) == f.fingerprint)
                .map(|v| (s, sc, r, v))
        });
        let Some((s, sc, r, v)) = older else { continue };
        if let Some(m) = &f.minimal {
            if let Some(new) = &m.saved_to {
                if *new != s.file {
                    let _ = std::fs::remove_file(new);
                }
            }
        }
        let deterministic = f.minimal.as_ref().and_then(|m| m.deterministic);
        f.violation = v.clone();
        f.minimal = Some(MinimalCase {
            scenario: sc.clone(),
            trace: r.trace.clone(),
            saved_to: Some(s.file.clone()),
            save_error: None,
            replay: cfg.invocation.replay_command(&s.file),
            deterministic,
            recurred: true,
        });
    }
}
