//! Running C provider modules, and keeping the harness alive when they
//! misbehave.
//!
//! A module is native code in the harness's address space: a crash would
//! take the harness down, a callback that never returns would stop the
//! run. So each case of a C module runs in a **child process**: the
//! *runner* (the `cpsim` binary, hidden subcommand `__run-case`) reads the
//! scenario on stdin, runs it, and writes its outcome as JSON to a file the
//! parent names. The parent waits with a wall-clock limit:
//! - a child killed by a signal becomes a CRASH-1 violation naming it;
//! - a child past its limit (or stopped by the simulator's watchdog) is
//!   killed and becomes a TIME-1 violation;
//!
//! and the run goes on with the next case. Without a runner (a library user
//! that did not call [`set_runner`]), cases run in this process.

use cpsim_certify::scenario::{self, ProviderRef, Scenario, ScenarioRun};
use cpsim_certify::{External, ModuleRunner, Subject};
use cpsim_sim::rules::id;
use cpsim_sim::{ClockMode, Nanos, Outcome, ProviderFactory, RuleId, Violation};
use parking_lot::RwLock;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The hidden subcommand of the runner.
pub const RUN_CASE: &str = "__run-case";
/// A real-time case drains at most this long (ms) before its final checks.
pub const REALTIME_DRAIN_MS: u64 = 300;
/// Wall-clock time a case may take beyond its own length (last step plus
/// drain) before it is declared hung.
pub const SLACK: Duration = Duration::from_secs(6);

static RUNNER: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Sets (or clears) the executable that runs cases of C modules in child
/// processes: a `cpsim` binary. The CLI sets it to itself.
pub fn set_runner(path: Option<PathBuf>) {
    *RUNNER.write() = path;
}

/// The runner, if set.
pub fn runner() -> Option<PathBuf> {
    RUNNER.read().clone()
}

/// A C module to certify: its file and the configuration handed to
/// `CpsimProviderStart`.
#[derive(Clone, Debug, PartialEq)]
pub struct Library {
    pub path: PathBuf,
    pub config: serde_json::Value,
}

impl Library {
    /// Makes a generated case run this module: provider, configuration, and a
    /// drain short enough for real time.
    pub fn apply(&self, s: &mut Scenario) {
        s.provider = ProviderRef::Library(self.path.clone());
        s.provider_config = self.config.clone();
        s.platform.drain_ms = s.platform.drain_ms.min(REALTIME_DRAIN_MS);
    }
}

impl External for Library {
    fn prepare(&self, s: &mut Scenario) {
        self.apply(s);
    }
    fn run(&self, s: &Scenario) -> Result<ScenarioRun, String> {
        run_library(s)
    }
}

/// Runs scenario files naming a C module ([`run_library`]).
pub struct Modules;

impl ModuleRunner for Modules {
    fn run(&self, s: &Scenario) -> Result<ScenarioRun, String> {
        run_library(s)
    }
}

/// A certification subject for the C module at `path`.
pub fn library_subject(path: &Path, config: serde_json::Value) -> Result<Subject, String> {
    let factory = module_factory(path)?;
    factory.configure(&config)?;
    let name = factory.name();
    let path = path
        .canonicalize()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let lib = Library {
        path: path.clone(),
        config,
    };
    Ok(Subject {
        name,
        clock: ClockMode::RealTime,
        make: Arc::new(move || match module_factory(&path) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }),
        external: Some(Arc::new(lib)),
    })
}

/// The module at `path` as a provider factory (checks that it loads).
pub fn module_factory(path: &Path) -> Result<Arc<dyn ProviderFactory>, String> {
    #[cfg(unix)]
    {
        cpsim_cmod::ModuleFactory::new(path)
            .map(|f| f as Arc<dyn ProviderFactory>)
            .map_err(|e| e.to_string())
    }
    #[cfg(not(unix))]
    {
        cpsim_cmod::ModuleFactory::new(path)
            .map(|_| unreachable!())
            .map_err(|e| e.to_string())
    }
}

/// Runs a scenario whose provider is a C module (`provider.library`): in a
/// child process if a runner is set, else here. Checks its expectations.
pub fn run_library(s: &Scenario) -> Result<ScenarioRun, String> {
    let ProviderRef::Library(path) = &s.provider else {
        return Err("the scenario's provider is not a C module".into());
    };
    match runner() {
        Some(r) => {
            if !path.exists() {
                return Err(format!("{}: no such provider module", path.display()));
            }
            Ok(run_in_child(&r, s, time_limit(s)))
        }
        None => run_in_process(s),
    }
}

/// Runs a scenario naming a C module in this process (no isolation).
pub fn run_in_process(s: &Scenario) -> Result<ScenarioRun, String> {
    let ProviderRef::Library(path) = &s.provider else {
        return Err("the scenario's provider is not a C module".into());
    };
    let factory = module_factory(path)?;
    Ok(scenario::run(s, factory, ClockMode::RealTime))
}

/// How long a case may take on the wall clock: its last step, its drain,
/// and [`SLACK`].
pub fn time_limit(s: &Scenario) -> Duration {
    let last = s.steps.iter().map(|st| st.last_ms()).max().unwrap_or(0);
    Duration::from_millis(last.saturating_add(s.platform.drain_ms)) + SLACK
}

fn synthetic(s: &Scenario, rule: RuleId, message: String) -> ScenarioRun {
    let outcome = Outcome {
        violations: vec![Violation {
            rule,
            host: s.hosts.first().cloned().unwrap_or_default(),
            instance: None,
            callback: None,
            step: 0,
            at: Nanos::ZERO,
            message,
        }],
        trace: cpsim_sim::Trace {
            hosts: s.hosts.clone(),
            ..cpsim_sim::Trace::default()
        },
        end: Nanos::ZERO,
        sent: 0,
        delivered: 0,
    };
    let failures = scenario::check_expectations(&s.expect, &outcome);
    ScenarioRun { outcome, failures }
}

#[cfg(unix)]
fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        31 => "SIGSYS",
        _ => "a signal",
    }
}

fn tail(text: &str, lines: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join(" | ")
}

/// Runs `s` with `runner __run-case`, killed after `limit`.
pub fn run_in_child(runner: &Path, s: &Scenario, limit: Duration) -> ScenarioRun {
    static N: AtomicU64 = AtomicU64::new(0);
    let out_file = std::env::temp_dir().join(format!(
        "cpsim-case-{}-{}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&out_file);
    let mut child = match Command::new(runner)
        .arg(RUN_CASE)
        .arg("--out")
        .arg(&out_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return synthetic(
                s,
                id::CRASH_1,
                format!("cannot start the case runner {}: {e}", runner.display()),
            )
        }
    };
    let input = serde_json::to_string(s).expect("a scenario serialises");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut text);
        }
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let err_text = err_reader.join().unwrap_or_default();
    let result = std::fs::read_to_string(&out_file);
    let _ = std::fs::remove_file(&out_file);
    let Some(status) = status else {
        return synthetic(
            s,
            id::TIME_1,
            format!(
                "the case did not finish within {:.1} s of wall-clock time (a provider call never returned?); its process was killed",
                limit.as_secs_f64()
            ),
        );
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return synthetic(
                s,
                id::CRASH_1,
                format!(
                    "the provider module crashed the process: signal {sig} ({}){}",
                    signal_name(sig),
                    if err_text.trim().is_empty() {
                        String::new()
                    } else {
                        format!("; stderr: {}", tail(&err_text, 3))
                    }
                ),
            );
        }
    }
    match (status.code(), result) {
        (Some(0), Ok(json)) => match serde_json::from_str::<Outcome>(&json) {
            Ok(outcome) => {
                let failures = scenario::check_expectations(&s.expect, &outcome);
                ScenarioRun { outcome, failures }
            }
            Err(e) => synthetic(
                s,
                id::CRASH_1,
                format!("the case runner wrote an unreadable outcome: {e}"),
            ),
        },
        // The simulator's watchdog ends a process whose callback never returns.
        (Some(3), _) => synthetic(
            s,
            id::TIME_1,
            format!(
                "a provider callback never returned; the watchdog ended the case: {}",
                tail(&err_text, 2)
            ),
        ),
        (code, _) => synthetic(
            s,
            id::CRASH_1,
            format!(
                "the case process exited with {} and no outcome: {}",
                code.map(|c| format!("code {c}"))
                    .unwrap_or_else(|| "no code".into()),
                tail(&err_text, 3)
            ),
        ),
    }
}

/// The runner's side (`cpsim __run-case --out FILE`): a scenario on stdin,
/// run here; its outcome as JSON in `out`. Returns the exit code.
pub fn child_main(out: &Path) -> i32 {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("cpsim {RUN_CASE}: cannot read the scenario: {e}");
        return 2;
    }
    let s: Scenario = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cpsim {RUN_CASE}: bad scenario: {e}");
            return 2;
        }
    };
    let run = match run_in_process(&s) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cpsim {RUN_CASE}: {e}");
            return 2;
        }
    };
    let json = serde_json::to_string(&run.outcome).expect("an outcome serialises");
    if let Err(e) = std::fs::write(out, json) {
        eprintln!("cpsim {RUN_CASE}: cannot write {}: {e}", out.display());
        return 2;
    }
    0
}
