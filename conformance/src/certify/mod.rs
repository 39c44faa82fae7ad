//! Certification: many generated schedules against one provider, every rule
//! checked on every case, each distinct violation shrunk to a minimal
//! schedule, saved as a scenario file and replayed for determinism.
//!
//! Order of work: cases are generated up front from the seed (so a seed
//! names a run), run on every core, aggregated in case order (so the result
//! does not depend on thread timing), then each new fingerprint's first case
//! is shrunk with proptest's value tree.

mod coverage;
mod matrix;
mod message;
mod shrink;
mod strategy;

pub use coverage::{exercised, REQUIRED};
pub use matrix::{kill_matrix, Row};
pub use strategy::{case, net, timing, Shape};

use crate::model::{Certification, Finding, RuleStat};
use crate::scenario::{self, Scenario};
use cpsim_sim::abi::E_PENDING_IO;
use cpsim_sim::rules::Binds;
use cpsim_sim::trace::What;
use cpsim_sim::{ClockMode, ProviderFactory, RuleId, Trace, Violation};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How to certify.
#[derive(Clone)]
pub struct Config {
    /// Generated cases.
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
    /// At most this many shrink steps per finding.
    pub shrink_steps: u32,
    /// Called after each case with (done, total).
    pub progress: Option<Arc<dyn Fn(u64, u64) + Send + Sync>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cases: 256,
            seed: None,
            strict: false,
            threads: 0,
            regressions: Some(PathBuf::from("cpsim-regressions")),
            shape: Shape::default(),
            shrink_steps: 400,
            progress: None,
        }
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
pub fn certify(
    make: impl Fn() -> Arc<dyn ProviderFactory> + Send + Sync + 'static,
    cfg: Config,
) -> Certification {
    let name = make().name();
    certify_subject(&Subject::new(&name, make), cfg)
}

struct CaseResult {
    violations: Vec<Violation>,
    trace: Trace,
    exercised: Vec<RuleId>,
}

fn run_case(subject: &Subject, s: &Scenario) -> CaseResult {
    let r = match &subject.external {
        Some(ext) => {
            let mut s = s.clone();
            ext.prepare(&mut s);
            ext.run(&s).unwrap_or_else(|e| panic!("{e}"))
        }
        None => scenario::run(s, (subject.make)(), subject.clock),
    };
    let exercised = coverage::exercised(&r.outcome.trace).into_iter().collect();
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

fn seed_rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(!seed).to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Certifies `subject` (see [`certify`]).
pub fn certify_subject(subject: &Subject, cfg: Config) -> Certification {
    let started = Instant::now();
    let seed = cfg.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let shape = match subject.clock {
        ClockMode::RealTime => cfg.shape.clone().real_time(),
        ClockMode::Virtual => cfg.shape.clone(),
    };
    let strategy = strategy::case(subject.name.clone(), shape);
    let mut runner = TestRunner::new_with_rng(
        PtConfig {
            failure_persistence: None,
            ..PtConfig::default()
        },
        seed_rng(seed),
    );
    // Cases are generated in order from the seed on this thread, and run as
    // soon as each exists: on this thread alone (one thread), or on every
    // core while the next ones are generated. Results land in case order,
    // so neither choice changes the outcome.
    let n = cfg.cases as usize;
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.threads
    };
    let mut trees = Vec::with_capacity(n);
    let done = AtomicUsize::new(0);
    let slots: Vec<parking_lot::Mutex<Option<CaseResult>>> =
        (0..n).map(|_| parking_lot::Mutex::new(None)).collect();
    let run_one = |i: usize, s: &Scenario| {
        *slots[i].lock() = Some(run_case(subject, s));
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = &cfg.progress {
            p(d as u64, n as u64);
        }
    };
    let mut generate = || {
        let tree = strategy
            .new_tree(&mut runner)
            .expect("the case strategy never rejects");
        let case = tree.current();
        trees.push(tree);
        case
    };
    if threads <= 1 || n <= 1 {
        for i in 0..n {
            let case = generate();
            run_one(i, &case);
        }
    } else {
        // (queue of generated cases, generation finished). `threads - 1`
        // workers run cases; this thread generates them, runs one itself
        // whenever they pile up, and helps with the last ones.
        let queue = parking_lot::Mutex::new((std::collections::VecDeque::new(), false));
        let ready = parking_lot::Condvar::new();
        let take = |wait: bool| {
            let mut q = queue.lock();
            loop {
                if let Some(job) = q.0.pop_front() {
                    return Some(job);
                }
                if q.1 || !wait {
                    return None;
                }
                ready.wait(&mut q);
            }
        };
        std::thread::scope(|sc| {
            for _ in 1..threads.min(n) {
                sc.spawn(|| {
                    while let Some((i, case)) = take(true) {
                        run_one(i, &case);
                    }
                });
            }
            for i in 0..n {
                let case = generate();
                let waiting = {
                    let mut q = queue.lock();
                    q.0.push_back((i, case));
                    q.0.len()
                };
                ready.notify_one();
                if waiting > threads {
                    if let Some((i, case)) = take(false) {
                        run_one(i, &case);
                    }
                }
            }
            queue.lock().1 = true;
            ready.notify_all();
            while let Some((i, case)) = take(false) {
                run_one(i, &case);
            }
        });
    }
    let results: Vec<CaseResult> = slots
        .into_iter()
        .map(|m| m.into_inner().expect("every case ran"))
        .collect();

    // Aggregate in case order.
    let mut stats: Vec<RuleStat> = RuleId::all()
        .map(|id| RuleStat {
            id,
            exercised: 0,
            violations: 0,
        })
        .collect();
    let mut found: BTreeMap<String, (usize, Violation, u64, bool)> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        for id in &r.exercised {
            stats[id.index()].exercised += 1;
        }
        let mut seen_rules = std::collections::BTreeSet::new();
        for (k, v) in r.violations.iter().enumerate() {
            if seen_rules.insert(v.rule) {
                stats[v.rule.index()].violations += 1;
                // A violated rule was exercised, whatever the trace shows.
                if !r.exercised.contains(&v.rule) {
                    stats[v.rule.index()].exercised += 1;
                }
            }
            let fp = fingerprint(v, &r.trace);
            let e = found.entry(fp).or_insert_with(|| (i, v.clone(), 0, false));
            e.2 += 1;
            e.3 |= k == 0;
        }
    }
    // Root causes first: fingerprints that were some case's first violation,
    // then by rule order.
    let mut order: Vec<(String, (usize, Violation, u64, bool))> = found.into_iter().collect();
    order.sort_by_key(|(_, (_, v, _, first))| (!*first, v.rule));

    let mut findings = Vec::new();
    for (fp, (case_idx, violation, count, _)) in order {
        let minimal = shrink::shrink(
            subject,
            &mut trees[case_idx],
            &fp,
            &cfg,
            seed,
            findings.len(),
        );
        let violation = minimal
            .as_ref()
            .and_then(|m| shrink::first_with_fingerprint(&m.0, &fp))
            .unwrap_or(violation);
        findings.push(Finding {
            fingerprint: fp,
            violation,
            cases: count,
            minimal: minimal.map(|m| m.1),
        });
    }

    let unexercised: Vec<RuleId> = REQUIRED
        .iter()
        .copied()
        .filter(|r| stats[r.index()].exercised == 0 && r.rule().binds == Binds::Provider)
        .collect();
    let verdict = Certification::compute_verdict(&stats, &unexercised, cfg.strict);
    Certification {
        provider: subject.name.clone(),
        verdict,
        strict: cfg.strict,
        seed,
        cases: cfg.cases,
        elapsed_s: started.elapsed().as_secs_f64(),
        rules: stats,
        findings,
        unexercised,
    }
}
