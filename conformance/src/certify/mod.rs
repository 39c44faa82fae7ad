//! Certification: many generated schedules against one provider, every rule
//! checked on every case, each distinct violation shrunk to a minimal
//! scenario, saved as a scenario file and replayed for determinism.
//!
//! ## Lanes
//!
//! A run of one seed is [`LANES`] *lanes* (a constant: never the thread
//! count). Lane `l` is an independent, deterministic stream of cases from
//! its own [`CaseSource`], made from a [`LaneSpec`] seeded by (seed, `l`);
//! the lane's `r`-th case has the global index `r * LANES + l`. A source's
//! next case may depend only on its own earlier cases and what they showed
//! ([`CaseSource::observe`]). The budget ([`Config::cases`]) is split over the
//! lanes by [`lane_budget`], so the global indices are exactly `0..cases`.
//!
//! Worker threads take one case at a time from the least advanced idle lane.
//! Each lane *folds* its own results: rule counters, and per fingerprint the
//! first case that showed it, in how many cases it was seen, and whether it
//! was ever a case's first violation (a root cause). Lanes are merged in
//! lane order; for a fingerprint the case with the smallest global index is
//! kept. Every part of that merge is a sum, a minimum or an "or", so the
//! result depends neither on the thread count nor on timing, and a sharded
//! run ([`Config::partition`]: the lanes with `l % n == k - 1`) merges with
//! [`crate::merge`] into exactly the unsharded result.
//!
//! Memory stays flat in the number of cases: a case's trace is dropped as
//! soon as it is folded; a run keeps counters and one scenario per
//! fingerprint. Findings are then shrunk one by one, on scenarios
//! (`shrink.rs`), root causes first.
//!
//! [`Config::stop`] interrupts a run: no case starts after it is set, and
//! the certification of what ran comes back marked incomplete.

mod coverage;
pub mod guided;
mod matrix;
mod message;
mod regressions;
mod shrink;
mod source;
pub mod statemap;
mod strategy;
mod threads;

pub use coverage::{exercised, REQUIRED};
pub use matrix::{first_detection, kill_matrix, subtle_matrix, subtle_matrix_of, Row, SubtleRow};
pub use regressions::{shell_quote, EnvOverrides, Invocation, CASES_VAR, REPLAY_VAR, SEED_VAR};
pub use source::{lane_rng, CaseSource, CaseSummary, LaneSpec, PlainSource, SourceMaker};
pub use strategy::{case, edge_size, generate, net, swarm, timing, Dice, Move, Shape};

use crate::model::{Certification, Finding, Partition, RuleStat, Verdict};
use crate::scenario::{self, Scenario};
use cpsim_sim::abi::E_PENDING_IO;
use cpsim_sim::rules::Binds;
use cpsim_sim::trace::What;
use cpsim_sim::{ClockMode, ProviderFactory, RuleId, Trace, Violation};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The number of lanes of every run (see the module docs).
pub const LANES: u32 = 16;

/// Lane `lane`'s share of a budget of `cases`: `cases / LANES`, plus one
/// for the first `cases % LANES` lanes.
pub fn lane_budget(cases: u64, lane: u32) -> u64 {
    let lanes = u64::from(LANES);
    cases / lanes + u64::from(u64::from(lane) < cases % lanes)
}

/// The default budget: a few seconds on two cores for the reference
/// provider (a case costs well under a millisecond), and enough cases for
/// the guided source to reach rare situations (BENCHMARKS.md measures the
/// detection rate of subtle bugs at this budget and at ten times it).
pub const DEFAULT_CASES: u64 = 8_192;

/// How to certify.
#[derive(Clone)]
pub struct Config {
    /// Generated cases (over every shard of a partitioned run).
    pub cases: u64,
    /// The run's seed (None: from the clock; always printed).
    pub seed: Option<u64>,
    /// SHOULD violations fail too.
    pub strict: bool,
    /// Worker threads (0: every core).
    pub threads: usize,
    /// Where shrunk failures are saved as scenario files (None: not saved).
    pub regressions: Option<PathBuf>,
    /// The shape of generated cases.
    pub shape: Shape,
    /// At most this many shrink candidates run per finding.
    pub shrink_steps: u32,
    /// Called after each case with (done, total).
    pub progress: Option<Arc<dyn Fn(u64, u64) + Send + Sync>>,
    /// Where each lane's cases come from (None: the coverage-guided
    /// source, [`guided::GuidedSource`]; [`PlainSource`] draws independent
    /// cases from the proptest strategy).
    pub source: Option<SourceMaker>,
    /// Run only this shard's lanes (`--partition K/N`).
    pub partition: Option<Partition>,
    /// Set it (e.g. on Ctrl-C) to stop: no case starts after it is set, no
    /// more shrinking is done, and the result is marked incomplete.
    pub stop: Option<Arc<AtomicBool>>,
    /// Where it runs from: from code it reads `CPSIM_SEED`, `CPSIM_CASES`
    /// and `CPSIM_REPLAY`, and prints `cargo test` commands.
    pub invocation: Invocation,
    /// Nothing else in this process starts or ends threads while the run
    /// goes on (as in `cpsim certify`, which sets it). Then the threads a
    /// real-time in-process provider leaves running after its stop are
    /// counted, on Linux, and fail LIFE-8 (`threads.rs`). Off by default:
    /// under `cargo test` other tests run in the same process.
    pub alone_in_process: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cases: DEFAULT_CASES,
            seed: None,
            strict: false,
            threads: 0,
            regressions: Some(PathBuf::from("cpsim-regressions")),
            shape: Shape::default(),
            shrink_steps: 400,
            progress: None,
            source: None,
            partition: None,
            stop: None,
            invocation: Invocation::Code,
            alone_in_process: false,
        }
    }
}

impl Config {
    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("cases", &self.cases)
            .field("seed", &self.seed)
            .field("strict", &self.strict)
            .field("threads", &self.threads)
            .field("regressions", &self.regressions)
            .field("shape", &self.shape)
            .field("partition", &self.partition)
            .field("invocation", &self.invocation)
            .field("alone_in_process", &self.alone_in_process)
            .finish_non_exhaustive()
    }
}

/// A provider to certify: how to make a fresh factory per case, its name
/// (for scenario files), and its clock.
#[derive(Clone)]
pub struct Subject {
    pub name: String,
    pub clock: ClockMode,
    pub make: Arc<dyn Fn() -> Arc<dyn ProviderFactory> + Send + Sync>,
    /// A provider this process does not run itself (a C module, run in a
    /// child process by the `cpsim` crate); `None` for providers made
    /// in-process by `make`.
    pub external: Option<Arc<dyn External>>,
}

/// A subject whose cases run elsewhere (see [`Subject::external`]).
pub trait External: Send + Sync {
    /// Makes a generated case name this provider (and suit it: e.g. a
    /// shorter drain in real time).
    fn prepare(&self, s: &mut Scenario);
    /// Runs a prepared case.
    fn run(&self, s: &Scenario) -> Result<scenario::ScenarioRun, String>;
}

impl Subject {
    /// Any provider: `make` gives a fresh factory for each case.
    pub fn new(
        name: &str,
        make: impl Fn() -> Arc<dyn ProviderFactory> + Send + Sync + 'static,
    ) -> Subject {
        Subject {
            name: name.to_string(),
            clock: ClockMode::Virtual,
            make: Arc::new(make),
            external: None,
        }
    }
}

/// Certifies a provider. `make` gives a fresh factory per case.
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn my_factory() -> Arc<dyn cpsim_sim::ProviderFactory> { unimplemented!() }
/// cpsim_certify::certify(my_factory, cpsim_certify::Config::default()).assert_pass();
/// ```
///
/// A provider whose factory says it is not [`deterministic`] (it runs threads
/// of its own) runs on the real-time clock, as a registry entry marked
/// `real_time` does: on the virtual clock the world would move on without
/// waiting for its threads. Its default budget is then
/// [`REAL_TIME_DEFAULT_CASES`] (`CPSIM_CASES` or a `Config` with another
/// count still decide).
///
/// [`deterministic`]: ProviderFactory::deterministic
pub fn certify(
    make: impl Fn() -> Arc<dyn ProviderFactory> + Send + Sync + 'static,
    mut cfg: Config,
) -> Certification {
    let factory = make();
    let mut subject = Subject::new(&factory.name(), make);
    if !factory.deterministic() {
        subject.clock = ClockMode::RealTime;
        if cfg.cases == DEFAULT_CASES {
            cfg.cases = REAL_TIME_DEFAULT_CASES;
        }
    }
    certify_subject(&subject, cfg)
}

/// The default budget of a provider run on the real-time clock from
/// [`certify`] (a case takes up to a few seconds of wall time).
pub const REAL_TIME_DEFAULT_CASES: u64 = 64;

#[derive(Clone)]
pub(crate) struct CaseResult {
    pub(crate) violations: Vec<Violation>,
    pub(crate) trace: Trace,
    pub(crate) exercised: Vec<RuleId>,
}

pub(crate) fn run_case(subject: &Subject, s: &Scenario) -> CaseResult {
    let r = match &subject.external {
        Some(ext) => {
            let mut s = s.clone();
            ext.prepare(&mut s);
            ext.run(&s).unwrap_or_else(|e| panic!("{e}"))
        }
        None => scenario::run(s, (subject.make)(), subject.clock),
    };
    let exercised = coverage::exercised_list(&r.outcome.trace);
    CaseResult {
        violations: r.outcome.violations,
        trace: r.outcome.trace,
        exercised,
    }
}

/// The stable identity of a violation: rule, callback, completion mode.
pub fn fingerprint(v: &Violation, trace: &Trace) -> String {
    let cb = v.callback.clone().unwrap_or_else(|| "-".into());
    // The completion mode of the last call of that instance before the violation.
    let mut mode = "-";
    for e in trace.events.iter().take_while(|e| e.step <= v.step) {
        let name = trace.instance_name(e.host, e.inst);
        if Some(&name) != v.instance.as_ref() {
            continue;
        }
        match &e.what {
            What::Return {
                hr: Some(hr),
                cb: c,
                ..
            } if c.name() == cb => {
                mode = if *hr == E_PENDING_IO {
                    "pended"
                } else {
                    "sync"
                }
            }
            What::Complete {
                early: true, cb: c, ..
            } if c.name() == cb => mode = "early",
            _ => {}
        }
    }
    format!("{}/{}/{}", v.rule, cb, mode)
}

/// One fingerprint as a lane (or a whole run) saw it.
#[derive(Clone)]
struct Found {
    /// The global index of the first case that showed it.
    first: u64,
    /// That case.
    case: Scenario,
    /// Its first violation of this fingerprint.
    violation: Violation,
    /// Its run, kept for a finding whose case does not show it again.
    run: CaseResult,
    /// Cases that showed it (each counted once).
    cases: u64,
    /// Whether it was some case's first violation.
    root: bool,
}

/// What a lane (or a whole run) keeps of its cases.
struct Fold {
    ran: u64,
    exercised: Vec<u64>,
    violated: Vec<u64>,
    found: BTreeMap<String, Found>,
    /// Contract-state coverage keys reached (`statemap`), sorted when the
    /// run's report is made.
    keys: statemap::KeySet,
}

impl Fold {
    fn new() -> Fold {
        let n = RuleId::all().count();
        Fold {
            ran: 0,
            exercised: vec![0; n],
            violated: vec![0; n],
            found: BTreeMap::new(),
            keys: statemap::KeySet::default(),
        }
    }

    /// Adds case `index` (a lane adds its cases in increasing index order).
    fn add(
        &mut self,
        index: u64,
        case: &Scenario,
        r: &CaseResult,
        fps: &[String],
        keys: &[statemap::Key],
    ) {
        self.ran += 1;
        self.keys.extend(keys.iter().copied());
        for id in &r.exercised {
            self.exercised[id.index()] += 1;
        }
        let mut rules = BTreeSet::new();
        for v in &r.violations {
            if rules.insert(v.rule) {
                self.violated[v.rule.index()] += 1;
                // A violated rule was exercised, whatever the trace shows.
                if !r.exercised.contains(&v.rule) {
                    self.exercised[v.rule.index()] += 1;
                }
            }
        }
        // The root cause: the earliest violation of the trace.
        let root = r
            .violations
            .iter()
            .enumerate()
            .min_by_key(|(_, v)| v.step)
            .map(|(k, _)| k);
        let mut seen = BTreeSet::new();
        for (k, (v, fp)) in r.violations.iter().zip(fps).enumerate() {
            let is_root = root == Some(k);
            let first_time = seen.insert(fp);
            match self.found.get_mut(fp) {
                Some(f) => {
                    f.cases += u64::from(first_time);
                    f.root |= is_root;
                }
                None => {
                    self.found.insert(
                        fp.clone(),
                        Found {
                            first: index,
                            case: case.clone(),
                            violation: v.clone(),
                            run: r.clone(),
                            cases: 1,
                            root: is_root,
                        },
                    );
                }
            }
        }
    }

    /// Adds another fold (sums, the smallest first index, "or").
    fn merge(&mut self, other: Fold) {
        self.ran += other.ran;
        self.keys.extend(other.keys);
        for (a, b) in self.exercised.iter_mut().zip(other.exercised) {
            *a += b;
        }
        for (a, b) in self.violated.iter_mut().zip(other.violated) {
            *a += b;
        }
        for (fp, f) in other.found {
            match self.found.get_mut(&fp) {
                Some(e) => {
                    e.cases += f.cases;
                    e.root |= f.root;
                    if f.first < e.first {
                        e.first = f.first;
                        e.case = f.case;
                        e.violation = f.violation;
                    }
                }
                None => {
                    self.found.insert(fp, f);
                }
            }
        }
    }
}

/// One lane of a run in progress.
struct Lane {
    lane: u32,
    budget: u64,
    done: u64,
    exhausted: bool,
    source: Box<dyn CaseSource>,
    fold: Fold,
}

impl Lane {
    fn finished(&self) -> bool {
        self.exhausted || self.done >= self.budget
    }

    /// Runs the lane's next case; `false` if its source had none left.
    /// (Not while another certification of the process counts threads
    /// case by case: `threads::CASES`.)
    fn step(&mut self, subject: &Subject) -> bool {
        let _shared = threads::CASES.read();
        self.step_checked(subject, |_, _| {})
    }

    /// [`Lane::step`], with `check` given the case's index and result
    /// before anything reads it (to add what the harness saw).
    fn step_checked(
        &mut self,
        subject: &Subject,
        check: impl FnOnce(u64, &mut CaseResult),
    ) -> bool {
        let Some(case) = self.source.next_case() else {
            self.exhausted = true;
            return false;
        };
        let index = self.done * u64::from(LANES) + u64::from(self.lane);
        let mut r = run_case(subject, &case);
        check(index, &mut r);
        let fps: Vec<String> = r
            .violations
            .iter()
            .map(|v| fingerprint(v, &r.trace))
            .collect();
        let keys = statemap::keys(&r.trace);
        self.fold.add(index, &case, &r, &fps, &keys);
        // The source learns last, and keeps the case without a copy.
        self.source.observe_owned(
            case,
            &CaseSummary {
                index,
                exercised: &r.exercised,
                fingerprints: &fps,
                trace: &r.trace,
                keys: &keys,
            },
        );
        self.done += 1;
        true
    }
}

/// Runs every lane to its budget (or until `cfg.stop`) on `threads`
/// threads, this one included. Returns the lanes in lane order, and the
/// thread count if the run stopped because the provider left threads
/// running (`threads.rs`; only in-process providers on the virtual clock
/// are watched).
fn run_lanes(
    subject: &Subject,
    cfg: &Config,
    lanes: Vec<Lane>,
    threads: usize,
) -> (Vec<Lane>, Option<usize>) {
    let total: u64 = lanes.iter().map(|l| l.budget).sum();
    let done = AtomicU64::new(0);
    let watched = subject.external.is_none() && subject.clock == ClockMode::Virtual;
    let limit = threads::count().filter(|_| watched).map(threads::limit);
    // The thread count that stopped the run (0: not stopped).
    let leaking = AtomicU64::new(0);
    // Idle lanes are `Some`; a lane a worker is running is `None` meanwhile.
    let board = parking_lot::Mutex::new(lanes.into_iter().map(Some).collect::<Vec<_>>());
    let returned = parking_lot::Condvar::new();
    let work = || loop {
        let (slot, mut lane) = {
            let mut b = board.lock();
            loop {
                if cfg.stopped() || leaking.load(Ordering::Relaxed) > 0 {
                    return;
                }
                // The least advanced idle lane with work left, lowest number first.
                let pick = b
                    .iter()
                    .enumerate()
                    .filter_map(|(i, l)| l.as_ref().filter(|l| !l.finished()).map(|l| (l.done, i)))
                    .min();
                if let Some((_, i)) = pick {
                    break (i, b[i].take().expect("an idle lane"));
                }
                if b.iter().all(Option::is_some) {
                    return; // every lane finished
                }
                returned.wait(&mut b);
            }
        };
        let ran = lane.step(subject);
        board.lock()[slot] = Some(lane);
        returned.notify_all();
        if !ran {
            continue;
        }
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = &cfg.progress {
            p(d, total);
        }
        if let Some(limit) = limit.filter(|_| d.is_multiple_of(threads::EVERY)) {
            if let Some(n) = threads::count().filter(|n| *n > limit) {
                leaking.store(n as u64, Ordering::Relaxed);
            }
        }
    };
    if threads <= 1 {
        work();
    } else {
        std::thread::scope(|sc| {
            for _ in 1..threads {
                sc.spawn(work);
            }
            work();
        });
    }
    let lanes = board
        .into_inner()
        .into_iter()
        .map(|l| l.expect("every lane is back"))
        .collect();
    let leaking = leaking.into_inner();
    (lanes, (leaking > 0).then_some(leaking as usize))
}

/// A case that left threads running, found by [`threads_left`].
struct LeftThreads {
    index: u64,
    /// How many threads it left.
    threads: usize,
    fingerprint: String,
    violation: Violation,
    root: bool,
}

/// Reruns the first `cases` cases of `probe` (a fresh lane) alone on this
/// thread, counting the process's threads before and after each, and names
/// the first case after which some are still running (LIFE-8). On the
/// virtual clock a thread is given 10 ms to end, in real time
/// [`threads::REAL_TIME_GRACE`].
fn threads_left(subject: &Subject, mut probe: Lane, cases: u64) -> Option<LeftThreads> {
    let (grace, rule) = match subject.clock {
        ClockMode::Virtual => (
            std::time::Duration::from_millis(10),
            "a provider run on the virtual clock may start no thread of its own \
             (`deterministic()` false if it does), and stop must join every thread it started",
        ),
        ClockMode::RealTime => (
            threads::REAL_TIME_GRACE,
            "stop must join every thread the provider started",
        ),
    };
    // No other certification of this process runs a case meanwhile.
    let _alone = threads::CASES.write();
    let mut found = None;
    while found.is_none() && !probe.finished() && probe.done < cases {
        let before = threads::count()?;
        probe.step_checked(subject, |index, r| {
            let n = threads::left_after(before, 0, grace);
            if n == 0 {
                return;
            }
            let step = r
                .trace
                .events
                .last()
                .map(|e| e.step)
                .unwrap_or(0)
                .max(r.violations.iter().map(|v| v.step).max().unwrap_or(0))
                + 1;
            let at = r.trace.events.last().map(|e| e.at).unwrap_or_default();
            let violation = Violation {
                rule: cpsim_sim::rules::id::LIFE_8,
                host: r.trace.hosts.first().cloned().unwrap_or_default(),
                instance: None,
                callback: Some("Provider::stop".into()),
                step,
                at,
                message: format!(
                    "{n} OS thread{} the provider started still running after every host stopped it: \
                     {rule} (nothing of a provider may run after its stop)",
                    if n == 1 { "" } else { "s" }
                ),
            };
            found = Some(LeftThreads {
                index,
                threads: n,
                fingerprint: fingerprint(&violation, &r.trace),
                root: r.violations.is_empty(),
                violation,
            });
        });
    }
    found
}

/// Certifies `subject` (see [`certify`]): saved failures first, then
/// generated cases (see `regressions.rs`).
pub fn certify_subject(subject: &Subject, cfg: Config) -> Certification {
    regressions::around(subject, cfg, certify_generated)
}

/// The generated run.
fn certify_generated(subject: &Subject, cfg: Config) -> Certification {
    let started = Instant::now();
    let seed = cfg.seed.unwrap_or_else(clock_seed);
    let shape = match subject.clock {
        ClockMode::RealTime => cfg.shape.clone().real_time(),
        ClockMode::Virtual => cfg.shape.clone(),
    };
    let maker = cfg
        .source
        .clone()
        .unwrap_or_else(guided::GuidedSource::maker);
    let new_lane = |lane| {
        let spec = LaneSpec {
            seed,
            lane,
            cases: lane_budget(cfg.cases, lane),
            provider: subject.name.clone(),
            shape: shape.clone(),
        };
        Lane {
            lane,
            budget: spec.cases,
            done: 0,
            exhausted: false,
            source: maker(&spec),
            fold: Fold::new(),
        }
    };
    let lanes: Vec<Lane> = (0..LANES)
        .filter(|l| cfg.partition.is_none_or(|p| p.owns(*l)))
        .map(new_lane)
        .filter(|l| l.budget > 0)
        .collect();
    let planned: u64 = lanes.iter().map(|l| l.budget).sum();
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.threads
    };
    let threads = threads.clamp(1, lanes.len().max(1));
    let first_lane = lanes.first().map(|l| l.lane);
    // A real-time provider in a process of its own: the thread count it
    // began with (`threads.rs`).
    let real_time_baseline = (cfg.alone_in_process
        && subject.external.is_none()
        && subject.clock == ClockMode::RealTime)
        .then(threads::count)
        .flatten();
    let (mut lanes, mut leaking) = run_lanes(subject, &cfg, lanes, threads);
    // The process left threads running: name a case of this provider that
    // does, alone.
    let mut left = leaking
        .and(first_lane)
        .and_then(|l| threads_left(subject, new_lane(l), threads::PROBE_CASES));
    // None does, and other certifications share the process (cargo test):
    // the threads are theirs. Go on from where the lanes stopped, with the
    // count as it is now (a few times at most).
    let mut resumes = 0;
    while leaking.is_some() && left.is_none() && !cfg.alone_in_process && resumes < threads::RESUMES
    {
        resumes += 1;
        (lanes, leaking) = run_lanes(subject, &cfg, lanes, threads);
        left = leaking
            .and(first_lane)
            .and_then(|l| threads_left(subject, new_lane(l), threads::PROBE_CASES));
    }
    let cut_short = lanes.iter().any(|l| !l.finished());
    // Every case ended, so every provider stopped: threads past the slack
    // are the provider's. An interrupted run is not judged.
    let real_time_left = real_time_baseline
        .filter(|_| !cut_short)
        .map(|b| threads::left_after(b, threads::REAL_TIME_SLACK, threads::REAL_TIME_GRACE))
        .filter(|n| *n > threads::REAL_TIME_SLACK);
    // The rerun takes the first cases of every lane in turn (in the default
    // 64 cases a lane has only four), so that it sees as many kinds of case
    // as the run began with.
    let real_time_case = real_time_left.and_then(|_| {
        let per_lane = (threads::REAL_TIME_PROBE_CASES / lanes.len().max(1) as u64).max(1);
        lanes
            .iter()
            .find_map(|l| threads_left(subject, new_lane(l.lane), per_lane))
    });

    // Merge the lanes in lane order.
    let mut all = Fold::new();
    for l in lanes {
        all.merge(l.fold);
    }
    let mut stats: Vec<RuleStat> = RuleId::all()
        .map(|id| RuleStat {
            id,
            exercised: all.exercised[id.index()],
            violations: all.violated[id.index()],
        })
        .collect();

    // Shrink root causes first (the order of the report, see
    // `model::sort_findings`), so that an interrupt spares them.
    let mut order: Vec<(String, Found)> = all.found.into_iter().collect();
    order.sort_by(|(fa, a), (fb, b)| {
        (!a.root, a.violation.rule, a.first, fa).cmp(&(!b.root, b.violation.rule, b.first, fb))
    });
    let mut findings = Vec::new();
    let mut unshrunk = 0;
    let mut stalls = 0;
    for (fp, f) in order {
        // A provider that leaves threads leaves more with every rerun: no
        // shrinking then.
        let budget = if cfg.stopped() || leaking.is_some() {
            unshrunk += 1;
            0
        } else {
            cfg.shrink_steps
        };
        let minimal =
            shrink::minimal_case(subject, f.case, f.first, &fp, &cfg, seed, budget, f.run);
        let violation = minimal.as_ref().map(|m| m.0.clone()).unwrap_or(f.violation);
        // Virtual time is deterministic: a watchdog report that a rerun of
        // its case does not show again was the machine stalling the run's
        // thread (decision `watchdog-stall`), not the provider.
        let stalled = subject.clock == ClockMode::Virtual
            && minimal.as_ref().is_some_and(|m| !m.1.recurred)
            && violation.message.contains("(watchdog)");
        if stalled {
            stalls += f.cases;
            let s = &mut stats[violation.rule.index()];
            s.violations = s.violations.saturating_sub(f.cases);
            continue;
        }
        findings.push(Finding {
            fingerprint: fp,
            violation,
            cases: f.cases,
            first_case: f.first,
            root_cause: f.root,
            minimal: minimal.map(|m| m.1),
        });
    }

    // Threads left running: found by the harness, not in any trace, so it
    // is neither shrunk nor saved (a replay of its case would not count
    // threads); the rerun command of the whole run shows it again.
    if let Some(l) = &left {
        let s = &mut stats[l.violation.rule.index()];
        s.violations += 1;
        s.exercised = s.exercised.max(s.violations);
        findings.push(Finding {
            fingerprint: l.fingerprint.clone(),
            violation: l.violation.clone(),
            cases: 1,
            first_case: l.index,
            root_cause: l.root,
            minimal: None,
        });
    }

    // Threads left running after a real-time run, and a case that leaves
    // some when rerun alone: LIFE-8. When no rerun case adds a thread, the
    // extra threads are a pool the provider keeps for the whole process
    // (made once, not once per start), which is no finding.
    let real_time_found = match (real_time_left, real_time_case) {
        (Some(n), Some(c)) => {
            let whole = format!(
                "{n} OS thread{} more than before the run still running after every host of all \
                 {} cases stopped the provider",
                if n == 1 { "" } else { "s" },
                all.ran
            );
            let mut violation = c.violation;
            violation.message = format!("{} ({whole})", violation.message);
            let finding = Finding {
                fingerprint: c.fingerprint,
                violation,
                cases: 1,
                first_case: c.index,
                root_cause: c.root,
                minimal: None,
            };
            let s = &mut stats[finding.violation.rule.index()];
            s.violations += 1;
            s.exercised = s.exercised.max(s.violations);
            findings.push(finding);
            true
        }
        _ => false,
    };

    // The shrunk violation may sort differently than the one found.
    crate::model::sort_findings(&mut findings);

    let unexercised = unexercised(&stats);
    let mut verdict = Certification::compute_verdict(&stats, &unexercised, cfg.strict);
    if leaking.is_some() || real_time_found {
        verdict = Verdict::Fail;
    }
    let incomplete = match (leaking, cut_short, unshrunk) {
        (Some(n), _, _) => Some(format!(
            "stopped after {} of {planned} cases: LIFE-8, the provider leaves OS threads running \
             after its stop ({n} threads in the process, {}){}",
            all.ran,
            match &left {
                Some(l) => format!("case {} alone left {}", l.index, l.threads),
                None => "no single case of the first lane, rerun alone, left one".into(),
            },
            match unshrunk {
                0 => String::new(),
                1 => "; 1 other finding not shrunk".into(),
                n => format!("; {n} other findings not shrunk"),
            }
        )),
        (None, false, 0) => None,
        (None, true, _) => Some(format!("interrupted after {} of {planned} cases", all.ran)),
        (None, false, n) => Some(format!(
            "interrupted while shrinking: {n} finding{} not shrunk",
            if n == 1 { "" } else { "s" }
        )),
    };
    Certification {
        provider: subject.name.clone(),
        verdict,
        strict: cfg.strict,
        seed,
        cases: all.ran,
        budget: cfg.cases,
        lanes: LANES,
        partition: cfg.partition,
        incomplete,
        elapsed_s: started.elapsed().as_secs_f64(),
        rerun: String::new(),
        replayed: Vec::new(),
        replay_only: false,
        rules: stats,
        findings,
        unexercised,
        coverage: {
            let mut keys: Vec<statemap::Key> = all.keys.into_iter().collect();
            keys.sort_unstable();
            keys
        },
        stalls,
    }
}

/// The required provider rules (see [`REQUIRED`]) no case exercised.
pub fn unexercised(stats: &[RuleStat]) -> Vec<RuleId> {
    REQUIRED
        .iter()
        .copied()
        .filter(|r| {
            r.rule().binds == Binds::Provider
                && stats.iter().all(|s| s.id != *r || s.exercised == 0)
        })
        .collect()
}

/// A seed from the clock (what a run without `--seed` uses).
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
