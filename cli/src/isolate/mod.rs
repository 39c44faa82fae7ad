//! Running C provider modules, and keeping the harness alive and honest
//! when they misbehave.
//!
//! A module is native code: it may crash, call `exit`, hang, fork, write
//! without end, or bind fixed ports. None of its code ever runs in the
//! harness's process. The harness reads the module's file once and checks
//! it without running it ([`cpsim_cmod::ModuleImage`]: a regular file, a
//! shared library for this machine, both entry points); *case runners* —
//! child processes of the `cpsim` binary (hidden subcommand `__run-case`),
//! each leading a process group of its own — get the library's bytes and
//! run its cases, one at a time:
//!
//! - each case on a fresh thread with a network namespace of its own
//!   ([`sandbox`]), so cases running at once cannot see each other's
//!   traffic or ports, and a runner can serve many cases in turn;
//! - a runner that crashes becomes a CRASH-1 violation naming the signal
//!   (on Windows the exception code) and where the module was (loading, Start, which callback, Stop); one
//!   whose module calls `exit` becomes CRASH-1 naming the exit code, with
//!   the trace up to that point; a case that runs past its deadline
//!   becomes TIME-1 with its trace so far, and the runner's whole process
//!   group (grandchildren too; on Windows its job object) is ended;
//! - what a runner writes is captured bounded (head and tail, size noted);
//! - a runner is reused while healthy, and replaced after any crash, exit
//!   or hang, or when the module left threads running after its stop.
//!
//! A module that exports the virtual-time marker of `cpsim_module.h` runs
//! on the simulator's virtual clock (see [`Library::clock`]).

mod capture;
mod child;
mod proto;
pub mod sandbox;
#[cfg(windows)]
mod win;
mod worker;

pub use child::child_main;
pub use proto::Where;
pub use sandbox::Isolation;
pub use worker::RUN_CASE;

use cpsim_certify::certify::Shape;
use cpsim_certify::scenario::{self, Millis, ProviderRef, Scenario, ScenarioRun};
use cpsim_certify::{External, ModuleRunner, Subject};
use cpsim_cmod::ModuleImage;
use cpsim_sim::rules::id;
use cpsim_sim::trace::{Event, What};
use cpsim_sim::{ClockMode, Nanos, Outcome, RuleId, Violation};
use parking_lot::{Mutex, RwLock};
use proto::FromChild;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use worker::{End, Loss, Pool};

/// A real-time case drains at most this long (ms) before its final checks.
pub const REAL_TIME_DRAIN_MS: u64 = 200;
/// Case runners working at once on a real-time module: they mostly sleep
/// (a case is a schedule on the wall clock), so many more than cores.
pub const REAL_TIME_WORKERS: usize = 32;
/// Shrink steps per finding of a real-time module (each is a real run).
pub const REAL_TIME_SHRINK_STEPS: u32 = 16;
/// What a real-time case may take beyond its own schedule before its runner
/// reports it stuck (start-up, the stop of every host, the watchdog's 2 s).
pub const REAL_TIME_SLACK: Duration = Duration::from_millis(2_500);
/// How long a virtual-time case may take on the wall clock.
pub const VIRTUAL_TIME_DEADLINE: Duration = Duration::from_secs(5);
/// How long loading a module may take in a runner (its initialisers).
pub const LOAD_DEADLINE: Duration = Duration::from_secs(3);
/// How long the harness waits beyond a runner's own deadline before it
/// ends the runner itself.
pub const HARD_MARGIN: Duration = Duration::from_secs(2);

static RUNNER: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Sets (or clears) the executable that runs cases of C modules in child
/// processes: a `cpsim` binary (any binary whose `main` is
/// `cpsim::main_with`). The CLI sets it to itself.
pub fn set_runner(path: Option<PathBuf>) {
    *RUNNER.write() = path;
}

/// The runner, if set.
pub fn runner() -> Option<PathBuf> {
    RUNNER.read().clone()
}

/// The case shape for a module run in real time: two hosts, a dozen steps
/// within half a second, a short drain. Every millisecond is a real one,
/// so a case is no longer than its steps need.
pub fn real_time_shape() -> Shape {
    Shape {
        hosts: 2,
        min_steps: 1,
        max_steps: 12,
        horizon_ms: 500,
        drain_ms: REAL_TIME_DRAIN_MS,
    }
}

/// A C module being certified or run: its bytes, its configuration, the
/// clock it runs on, and its case runners.
pub struct Library {
    image: Arc<ModuleImage>,
    config: serde_json::Value,
    clock: ClockMode,
    isolation: Isolation,
    isolation_note: Option<String>,
    pool: Pool,
    /// Why a module with the virtual-time marker broke its promise.
    broken_promise: Mutex<Option<String>>,
    start_failure: Mutex<Option<String>>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.image.path())
            .field("clock", &self.clock)
            .field("isolation", &self.isolation)
            .finish_non_exhaustive()
    }
}

impl Library {
    /// Reads and checks the module at `path` (no module code runs here),
    /// starts a case runner to learn how cases are isolated, and loads the
    /// module once in it. Errors are bad input: the file is missing, not a
    /// regular file, not a shared library for this machine, lacks an entry
    /// point, cannot be loaded (a missing dependency, an unresolved
    /// symbol), or carries the virtual-time marker while importing what
    /// virtual time cannot govern. A module whose initialisers crash, exit
    /// or hang is not an error here: every case will report it.
    pub fn open(path: &Path, config: serde_json::Value) -> Result<Arc<Library>, String> {
        Library::open_with(path, config, None)
    }

    /// [`Library::open`], asking runners for this isolation instead of the
    /// environment's (`auto`, `netns`, `userns` or `off`: see
    /// [`sandbox::ENV`]).
    pub fn open_with(
        path: &Path,
        config: serde_json::Value,
        isolation: Option<&str>,
    ) -> Result<Arc<Library>, String> {
        let asked = isolation.map(str::to_string);
        let runner = runner().ok_or_else(|| {
            "C modules run in child processes, and no case runner is set \
             (cpsim::isolate::set_runner, to a cpsim binary)"
                .to_string()
        })?;
        let image = Arc::new(ModuleImage::read(path).map_err(|e| e.to_string())?);
        image.check_virtual_time().map_err(|e| e.to_string())?;
        let clock = if image.virtual_time() {
            ClockMode::Virtual
        } else {
            ClockMode::RealTime
        };
        let per_runner = match clock {
            ClockMode::Virtual => worker::VIRTUAL_TIME_CASES_PER_RUNNER,
            ClockMode::RealTime => worker::REAL_TIME_CASES_PER_RUNNER,
        };
        let mut pool = Pool::new(runner, image.clone(), per_runner, asked.clone());
        let (isolation, isolation_note) = pool.probe(Duration::from_secs(10))?;
        if !isolation.isolated() && clock == ClockMode::RealTime {
            // Without a network per case, cases of a real-time module must
            // not share a process either: one runner per case, as before.
            pool = Pool::new(runner_of(&pool), image.clone(), 1, asked);
        }
        match pool.check(LOAD_DEADLINE, LOAD_DEADLINE + HARD_MARGIN) {
            End::Checked(None) | End::Lost(_) => {}
            End::Checked(Some(e)) | End::Failed(e) => return Err(e),
            End::Done { .. } => {}
        }
        Ok(Arc::new(Library {
            image,
            config,
            clock,
            isolation,
            isolation_note,
            pool,
            broken_promise: Mutex::new(None),
            start_failure: Mutex::new(None),
        }))
    }

    /// The module as read.
    pub fn image(&self) -> &Arc<ModuleImage> {
        &self.image
    }
    /// Virtual for a module with the marker of `cpsim_module.h`, else real time.
    pub fn clock(&self) -> ClockMode {
        self.clock
    }
    /// How its cases are isolated from each other's network.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }
    /// Why isolation is weaker than asked, if it is.
    pub fn isolation_note(&self) -> Option<&str> {
        self.isolation_note.as_deref()
    }
    /// The shape of generated cases that suits its clock.
    pub fn shape(&self) -> Shape {
        match self.clock {
            ClockMode::Virtual => Shape::default(),
            ClockMode::RealTime => real_time_shape(),
        }
    }
    /// Worker threads for `cases` cases (0: one per core): a real-time
    /// module's runners mostly sleep, so many run at once, unless cases
    /// cannot be isolated (then one at a time).
    pub fn workers(&self, cases: u64) -> usize {
        match (self.clock, self.isolation.isolated()) {
            (ClockMode::Virtual, _) => 0,
            (ClockMode::RealTime, false) => 1,
            (ClockMode::RealTime, true) => (cases as usize).clamp(1, REAL_TIME_WORKERS),
        }
    }
    /// Shrink steps per finding that suit its clock.
    pub fn shrink_steps(&self) -> u32 {
        match self.clock {
            ClockMode::Virtual => cpsim_certify::Config::default().shrink_steps,
            ClockMode::RealTime => REAL_TIME_SHRINK_STEPS,
        }
    }
    /// Set when a module with the virtual-time marker was seen starting a
    /// thread anyway: what it did. Its results are not to be trusted.
    pub fn broken_promise(&self) -> Option<String> {
        self.broken_promise.lock().clone()
    }

    /// The first failed `CpsimProviderStart` any case saw (host and
    /// result): on that host the module did not run.
    pub fn start_failure(&self) -> Option<String> {
        self.start_failure.lock().clone()
    }

    /// This module as a certification subject.
    pub fn subject(self: &Arc<Self>) -> Subject {
        let image = self.image.clone();
        Subject {
            name: self.image.name().to_string(),
            clock: self.clock,
            // Cases run in runners, never here; a factory made here only
            // names the provider (it loads nothing until a host starts it).
            make: Arc::new(move || cpsim_cmod_factory(&image)),
            external: Some(self.clone()),
        }
    }

    /// Makes a scenario run this module: provider, configuration, and in
    /// real time a short drain.
    pub fn apply(&self, s: &mut Scenario) {
        s.provider = ProviderRef::Library(self.image.path().to_path_buf());
        s.provider_config = self.config.clone();
        if self.clock == ClockMode::RealTime {
            let short = Millis::new(REAL_TIME_DRAIN_MS).expect("within a day");
            s.platform.drain_ms = s.platform.drain_ms.min(short);
        }
    }

    /// The runner's deadline and the harness's limit for `s`.
    fn limits(&self, s: &Scenario) -> (Duration, Duration) {
        let deadline = match self.clock {
            ClockMode::Virtual => VIRTUAL_TIME_DEADLINE,
            ClockMode::RealTime => {
                let last = s.steps.iter().map(|st| st.last_ms()).max().unwrap_or(0);
                Duration::from_millis(last.saturating_add(s.platform.drain_ms.get()))
                    + REAL_TIME_SLACK
            }
        };
        (deadline, deadline + HARD_MARGIN)
    }

    /// Runs `s` in a case runner and checks its expectations. A runner
    /// that could not run it at all gives an error.
    pub fn run_scenario(&self, s: &Scenario) -> Result<ScenarioRun, String> {
        let (deadline, limit) = self.limits(s);
        let outcome = match self.pool.run_case(s, self.clock, deadline, limit) {
            End::Done {
                outcome,
                leftover_threads,
                foreign_calls,
                start_failure,
                ..
            } => {
                if let Some(f) = start_failure {
                    self.start_failure.lock().get_or_insert(f);
                }
                // On Windows the system starts threads of its own in a
                // process (the loader's and thread pool's workers), which a
                // count cannot tell from the module's: there only calls
                // from threads the simulator does not run break the promise.
                let stray_threads = cfg!(unix) && leftover_threads > 0;
                if self.clock == ClockMode::Virtual && (stray_threads || foreign_calls > 0) {
                    let mut p = self.broken_promise.lock();
                    if p.is_none() {
                        *p = Some(format!(
                            "{}: says it runs on virtual time but started threads of its own \
                             ({leftover_threads} still running after its stop, {foreign_calls} calls \
                             into cpsim from them); its runs cannot be reproduced from a seed",
                            self.image.path().display()
                        ));
                    }
                }
                let mut outcome = outcome;
                // A real-time module's thread still running after every
                // host stopped it breaks LIFE-8 (decision `threads-after-stop`).
                if self.clock == ClockMode::RealTime && stray_threads {
                    threads_left(s, &mut outcome, leftover_threads);
                }
                outcome
            }
            End::Lost(loss) => lost(s, &loss),
            End::Failed(e) | End::Checked(Some(e)) => return Err(e),
            End::Checked(None) => return Err("the runner answered a case with a check".into()),
        };
        let failures = scenario::check_expectations(&s.expect, &outcome);
        Ok(ScenarioRun { outcome, failures })
    }
}

fn runner_of(pool: &Pool) -> PathBuf {
    pool.runner().to_path_buf()
}

/// A factory that only names the module (see [`Library::subject`]).
fn cpsim_cmod_factory(image: &Arc<ModuleImage>) -> Arc<dyn cpsim_sim::ProviderFactory> {
    #[cfg(any(unix, windows))]
    {
        cpsim_cmod::ModuleFactory::from_image(image.clone())
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = image;
        unreachable!("C modules are refused on this target before any case")
    }
}

impl External for Library {
    fn prepare(&self, s: &mut Scenario) {
        self.apply(s);
    }
    fn run(&self, s: &Scenario) -> Result<ScenarioRun, String> {
        // A runner that cannot run a case is the harness's trouble, not
        // the module's: say so in the case rather than stop certification.
        Ok(self.run_scenario(s).unwrap_or_else(|e| ScenarioRun {
            outcome: empty_outcome(s),
            failures: vec![format!("the case runner could not run the case: {e}")],
        }))
    }
}

/// A certification subject for the C module at `path` (see [`Library::open`]).
pub fn library_subject(path: &Path, config: serde_json::Value) -> Result<Subject, String> {
    Library::open(path, config).map(|l| l.subject())
}

/// Runs scenario files naming a C module, each in a case runner.
pub struct Modules;

impl ModuleRunner for Modules {
    fn run(&self, s: &Scenario) -> Result<ScenarioRun, String> {
        run_library(s)
    }
}

/// Runs a scenario whose provider is a C module (`provider.library`) in a
/// case runner and checks its expectations. A module file that is missing
/// or is no module is an error naming `provider.library`.
pub fn run_library(s: &Scenario) -> Result<ScenarioRun, String> {
    let lib = open_scenario_library(s)?;
    let r = lib.run_scenario(s)?;
    match lib.broken_promise() {
        Some(p) => Err(p),
        None => Ok(r),
    }
}

/// The module a scenario names, opened (see [`Library::open`]).
pub fn open_scenario_library(s: &Scenario) -> Result<Arc<Library>, String> {
    let ProviderRef::Library(path) = &s.provider else {
        return Err("the scenario's provider is not a C module".into());
    };
    Library::open(path, s.provider_config.clone()).map_err(|e| format!("provider.library: {e}"))
}

fn empty_outcome(s: &Scenario) -> Outcome {
    Outcome {
        violations: Vec::new(),
        trace: cpsim_sim::Trace {
            hosts: s.hosts.iter().map(|h| h.to_string()).collect(),
            ..cpsim_sim::Trace::default()
        },
        end: Nanos::ZERO,
        sent: 0,
        delivered: 0,
        idle: Vec::new(),
    }
}

#[cfg(unix)]
fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        libc::SIGALRM => "SIGALRM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "a signal",
    }
}

#[cfg(not(any(unix, windows)))]
fn signal_name(_sig: i32) -> &'static str {
    "a signal"
}

/// An exception code as a CRASH-1 message says it: "exception 0xC0000005
/// (EXCEPTION_ACCESS_VIOLATION)".
#[cfg(windows)]
fn exception_text(code: i32) -> String {
    match win::exception_name(code as u32) {
        Some(name) => format!("exception 0x{:08X} ({name})", code as u32),
        None => format!("exception 0x{:08X}", code as u32),
    }
}

/// The outcome of a case whose runner was lost: what it recorded before,
/// and one violation saying how it ended.
fn lost(s: &Scenario, loss: &Loss) -> Outcome {
    let (partial, at) = match &loss.said {
        Some(FromChild::Hung { partial, at }) | Some(FromChild::Exiting { partial, at }) => {
            (partial.as_deref().cloned(), Some(*at))
        }
        Some(FromChild::Fatal { at, .. }) => (None, Some(*at)),
        _ => (None, None),
    };
    let place = at.map(|a| format!(" {}", a.describe())).unwrap_or_default();
    let output = loss.output.excerpt(3);
    let output = if output.is_empty() {
        String::new()
    } else {
        format!("; its output ended: {output}")
    };
    let signal = match (&loss.said, loss.status) {
        (Some(FromChild::Fatal { signal, .. }), _) => Some(*signal),
        #[cfg(unix)]
        (_, Some(st)) => std::os::unix::process::ExitStatusExt::signal(&st),
        #[cfg(windows)]
        // A process ended by an exception no filter saw exits with its code.
        (_, Some(st)) => st
            .code()
            .filter(|c| win::exception_name(*c as u32).is_some()),
        _ => None,
    };
    let hung = matches!(loss.said, Some(FromChild::Hung { .. })) || loss.status.is_none();
    // The module's own last words (a fatal signal, an exit) come first; with
    // none, a broken channel is why the runner was ended (by cpsim: its
    // SIGKILL says nothing about the module).
    let lost_channel = loss.status.and_then(|s| s.code()) == Some(CHANNEL_LOST_EXIT);
    let broke = loss
        .broke
        .clone()
        .or_else(|| lost_channel.then(|| "the runner could no longer read cpsim's requests".into()))
        .filter(|_| {
            !matches!(
                loss.said,
                Some(FromChild::Fatal { .. }) | Some(FromChild::Exiting { .. })
            ) && !hung
        });
    let (rule, message): (RuleId, String) = if let Some(why) = &broke {
        (
            id::CRASH_1,
            format!(
                "the case runner's channel to cpsim broke ({why}){place}: module code wrote into \
                 or closed cpsim's pipes, or a forked copy of the process went on running the case; \
                 cpsim ended the runner{output}"
            ),
        )
    } else if hung {
        let how_long = loss
            .limit
            .map(|l| format!("within {:.1} s of wall-clock time", l.as_secs_f64()))
            .unwrap_or_else(|| "by its deadline".into());
        (
            id::TIME_1,
            format!(
                "the case did not finish {how_long}: the module was stuck{} (a call that never returns?); its process group was ended{output}",
                if place.is_empty() { " somewhere".to_string() } else { place.clone() }
            ),
        )
    } else if let Some(sig) = signal {
        #[cfg(windows)]
        let how = exception_text(sig);
        #[cfg(not(windows))]
        let how = format!("signal {sig} ({})", signal_name(sig));
        // A fatal signal takes the case's trace with the process: the
        // violation's step and time are placeholders, and the message says so.
        let lost_trace = if partial.is_none() {
            "; the trace up to the crash went with the process, so its step and time are not known"
        } else {
            ""
        };
        (
            id::CRASH_1,
            format!("the provider module crashed the process: {how}{place}{lost_trace}{output}"),
        )
    } else {
        let code = loss.status.and_then(|s| s.code());
        (
            id::CRASH_1,
            format!(
                "the provider module ended the process with exit code {}{place}{output}",
                code.map(|c| c.to_string()).unwrap_or_else(|| "?".into())
            ),
        )
    };
    let mut outcome = partial.unwrap_or_else(|| empty_outcome(s));
    // A hang the simulator's watchdog already reported needs no second word.
    if hung
        && outcome
            .violations
            .iter()
            .any(|v| v.rule == id::TIME_1 || v.rule == id::SESS_7)
    {
        return outcome;
    }
    let callback = at_callback(&loss.said);
    append_violation(s, &mut outcome, rule, callback, message);
    outcome
}

/// Appends a violation the harness found outside the module's trace (a
/// lost runner, threads left) at the end of `outcome`: one step after its
/// last event or violation, at its end time, on the first host, and in
/// the trace too.
fn append_violation(
    s: &Scenario,
    outcome: &mut Outcome,
    rule: RuleId,
    callback: Option<String>,
    message: String,
) {
    let step = outcome
        .trace
        .events
        .last()
        .map(|e| e.step)
        .unwrap_or(0)
        .max(outcome.violations.iter().map(|v| v.step).max().unwrap_or(0))
        + 1;
    let at = outcome.end;
    outcome.trace.events.push(Event {
        step,
        at,
        host: 0,
        inst: 0,
        what: What::Violation {
            rule,
            message: message.clone(),
        },
    });
    outcome.violations.push(Violation {
        rule,
        host: s.hosts.first().map(|h| h.to_string()).unwrap_or_default(),
        instance: None,
        callback,
        step,
        at,
        message,
    });
}

/// The exit code of a case runner whose requests could no longer be read
/// (module code closed or replaced its pipes to cpsim).
pub(crate) const CHANNEL_LOST_EXIT: i32 = 86;

/// LIFE-8 for threads a module left running: after the case, when every
/// host has stopped the module, `n` threads of the runner that cpsim did not
/// start still run (`CpsimProviderStop` must stop and join every thread the
/// module started; a real platform would unload the module under them).
fn threads_left(s: &Scenario, outcome: &mut Outcome, n: usize) {
    let message = format!(
        "{n} thread{} the module started still running after CpsimProviderStop returned on every host: \
         stop and join every thread before CpsimProviderStop returns (nothing of the module may run after it)",
        if n == 1 { "" } else { "s" }
    );
    append_violation(
        s,
        outcome,
        id::LIFE_8,
        Some("CpsimProviderStop".to_string()),
        message,
    );
}

fn at_callback(said: &Option<FromChild>) -> Option<String> {
    let at = match said {
        Some(FromChild::Hung { at, .. })
        | Some(FromChild::Exiting { at, .. })
        | Some(FromChild::Fatal { at, .. }) => at,
        _ => return None,
    };
    at.callback
        .and_then(|i| cpsim_sim::Callback::ALL.get(i as usize))
        .map(|c| c.name().to_string())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn scenario() -> Scenario {
        scenario::parse(
            r#"{"version": 1, "name": "t", "hosts": ["A"], "provider": {"name": "x"},
                "steps": [{"do": "start_provider", "at_ms": 0, "host": "A"}]}"#,
            "t.json",
        )
        .unwrap()
    }

    /// A runner cpsim ended because its channel broke (a forked copy wrote
    /// into it, module code closed it) is CRASH-1 saying so, not "signal 9
    /// (SIGKILL)": that signal was cpsim's, not the module's.
    #[test]
    fn crash_1_a_broken_runner_channel_is_named_not_blamed_on_cpsims_own_kill() {
        let s = scenario();
        let loss = Loss {
            status: Some(std::process::ExitStatus::from_raw(libc::SIGKILL)),
            said: None,
            output: Default::default(),
            limit: None,
            broke: Some("an unreadable message: expected value".into()),
        };
        let v = lost(&s, &loss).violations.pop().unwrap();
        assert_eq!(v.rule, id::CRASH_1);
        assert!(
            v.message
                .contains("channel to cpsim broke (an unreadable message"),
            "{}",
            v.message
        );
        assert!(!v.message.contains("SIGKILL"), "{}", v.message);
        // The runner leaving with the channel-lost code says the same.
        let loss = Loss {
            status: Some(std::process::ExitStatus::from_raw(CHANNEL_LOST_EXIT << 8)),
            broke: None,
            ..loss
        };
        let v = lost(&s, &loss).violations.pop().unwrap();
        assert!(
            v.message.contains("could no longer read cpsim's requests"),
            "{}",
            v.message
        );
        // A real signal of the module's own is still named.
        let loss = Loss {
            status: Some(std::process::ExitStatus::from_raw(libc::SIGSEGV)),
            ..loss
        };
        let v = lost(&s, &loss).violations.pop().unwrap();
        assert!(v.message.contains("signal 11 (SIGSEGV)"), "{}", v.message);
    }
}
