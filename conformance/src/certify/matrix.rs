//! The kill matrix: every broken provider certified, and which rules fired.

use super::{certify_subject, Config, Invocation, Subject};
use crate::model::Verdict;
use crate::registry::{Kind, Registry};
use cpsim_sim::RuleId;

/// One row of the kill matrix.
pub struct Row {
    pub provider: String,
    pub target: RuleId,
    pub verdict: Verdict,
    pub fired: Vec<RuleId>,
    /// Required rules no case exercised (a provider that never carries
    /// data leaves the data-path rules unexercised).
    pub unexercised: Vec<RuleId>,
}

/// Certifies every broken provider of `registry`, one after the other; the
/// target rule must be among those fired. `alone_in_process`: nothing else
/// in this process starts threads meanwhile (see
/// [`Config::alone_in_process`]), so a real-time provider's leftover threads
/// are counted.
pub fn kill_matrix(registry: &Registry, cases: u64, seed: u64, alone_in_process: bool) -> Vec<Row> {
    registry
        .entries()
        .iter()
        .filter_map(|e| match e.kind() {
            Kind::Broken(rule) => Some((e, rule)),
            Kind::Correct | Kind::Subtle(_) => None,
        })
        .map(|(e, target)| {
            let name = e.name();
            let subject = e.subject();
            let cfg = Config {
                cases,
                seed: Some(seed),
                regressions: None,
                shrink_steps: 0,
                // The matrix's own budget and seed: no CPSIM_* variable applies.
                invocation: Invocation::Cli {
                    program: "cpsim".into(),
                    provider: format!("--provider {name}"),
                },
                alone_in_process,
                ..Config::default()
            };
            let cert = certify_subject(&subject, cfg);
            Row {
                provider: name.to_string(),
                target,
                verdict: cert.verdict,
                fired: cert.violated(),
                unexercised: cert.unexercised.clone(),
            }
        })
        .collect()
}

/// One subtle provider measured over several seeds (see [`subtle_matrix`]).
#[derive(Clone, Debug)]
pub struct SubtleRow {
    pub provider: String,
    pub target: RuleId,
    /// Per seed: the global index of the first case that broke the target
    /// rule, if any case within the search limit did.
    pub first: Vec<(u64, Option<u64>)>,
}

impl SubtleRow {
    /// On how many seeds a budget of `budget` cases finds the bug.
    pub fn found_within(&self, budget: u64) -> usize {
        self.first
            .iter()
            .filter(|(_, f)| f.is_some_and(|i| i < budget))
            .count()
    }
    /// The median number of cases to the first detection (cases, so the
    /// first case counts 1); `None` if the bug was missed on half the seeds
    /// or more.
    pub fn median_cases(&self) -> Option<u64> {
        let mut v: Vec<u64> = self
            .first
            .iter()
            .map(|(_, f)| f.map_or(u64::MAX, |i| i + 1))
            .collect();
        v.sort_unstable();
        let m = v.get(v.len().saturating_sub(1) / 2).copied()?;
        (m != u64::MAX).then_some(m)
    }
}

/// The first case (global index, as certification numbers them: the
/// `r`-th case of lane `l` is `r * LANES + l`) of the default source's run
/// of `seed` that breaks `target`, searching at most `limit` cases, with
/// the lanes' cases from `maker` (certification's default:
/// [`super::guided::GuidedSource::maker`]).
///
/// A lane's stream does not depend on the budget, so a certification with
/// budget `b` finds the bug exactly when this index is below `b`: one search
/// to ten times the default budget answers both columns of the matrix.
pub fn first_detection(
    subject: &Subject,
    target: RuleId,
    seed: u64,
    limit: u64,
    maker: &super::SourceMaker,
) -> Option<u64> {
    let shape = match subject.clock {
        cpsim_sim::ClockMode::RealTime => super::Shape::default().real_time(),
        cpsim_sim::ClockMode::Virtual => super::Shape::default(),
    };
    let mut lanes: Vec<Box<dyn super::CaseSource>> = (0..super::LANES)
        .map(|lane| {
            maker(&super::LaneSpec {
                seed,
                lane,
                cases: limit,
                provider: subject.name.clone(),
                shape: shape.clone(),
            })
        })
        .collect();
    for index in 0..limit {
        let lane = (index % u64::from(super::LANES)) as usize;
        let case = lanes[lane].next_case()?;
        let r = super::run_case(subject, &case);
        if r.violations.iter().any(|v| v.rule == target) {
            return Some(index);
        }
        let fps: Vec<String> = r
            .violations
            .iter()
            .map(|v| super::fingerprint(v, &r.trace))
            .collect();
        lanes[lane].observe(
            &case,
            &super::CaseSummary {
                index,
                exercised: &r.exercised,
                fingerprints: &fps,
                trace: &r.trace,
                keys: &super::statemap::keys(&r.trace),
            },
        );
    }
    None
}

/// The subtle kill matrix: every [`Kind::Subtle`] provider of `registry`,
/// searched on each of `seeds` for up to ten times `budget` cases, on
/// `threads` threads (one search per thread at a time; each search is
/// deterministic, so the result does not depend on the thread count).
pub fn subtle_matrix(
    registry: &Registry,
    seeds: &[u64],
    budget: u64,
    threads: usize,
    maker: &super::SourceMaker,
) -> Vec<SubtleRow> {
    let entries: Vec<(String, RuleId, crate::certify::Subject)> = registry
        .entries()
        .iter()
        .filter_map(|e| match e.kind() {
            Kind::Subtle(r) => Some((e.name().to_string(), r, e.subject())),
            _ => None,
        })
        .collect();
    subtle_matrix_of(&entries, seeds, budget.saturating_mul(10), threads, maker)
}

/// [`subtle_matrix`] of any subjects, each with the rule its bug breaks
/// (e.g. C provider modules, which no registry holds), searching each seed
/// up to `limit` cases.
pub fn subtle_matrix_of(
    entries: &[(String, RuleId, crate::certify::Subject)],
    seeds: &[u64],
    limit: u64,
    threads: usize,
    maker: &super::SourceMaker,
) -> Vec<SubtleRow> {
    let jobs: Vec<(usize, u64)> = (0..entries.len())
        .flat_map(|i| seeds.iter().map(move |s| (i, *s)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = parking_lot::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..threads.max(1) {
            sc.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(i, seed)) = jobs.get(k) else { break };
                let (_, target, subject) = &entries[i];
                let f = first_detection(subject, *target, seed, limit, maker);
                results.lock().push((i, seed, f));
            });
        }
    });
    let mut results = results.into_inner();
    results.sort_unstable();
    entries
        .iter()
        .enumerate()
        .map(|(i, (name, target, _))| SubtleRow {
            provider: name.clone(),
            target: *target,
            first: results
                .iter()
                .filter(|(j, _, _)| *j == i)
                .map(|(_, s, f)| (*s, *f))
                .collect(),
        })
        .collect()
}
