//! The results of certification, as data: what reports, the CLI and
//! `assert_pass` read.

use crate::scenario::Scenario;
use cpsim_sim::rules::{Binds, Level};
use cpsim_sim::{RuleId, Trace, Violation};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The overall result.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No rule broken, every reachable MUST rule exercised.
    Pass,
    /// Only SHOULD rules broken (a failure with `--strict`).
    NonStrict,
    /// A MUST rule broken, or a reachable MUST rule never exercised.
    Fail,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::NonStrict => "non-strict",
            Verdict::Fail => "fail",
        })
    }
}

/// Per-rule counters over a whole certification.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RuleStat {
    pub id: RuleId,
    /// Cases in which the rule's precondition was met (it could have been broken).
    pub exercised: u64,
    /// Cases in which it was broken.
    pub violations: u64,
}

/// A minimal failing case: shrunk, saved, replayable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MinimalCase {
    /// The shrunk schedule as a scenario file.
    pub scenario: Scenario,
    /// Its trace.
    pub trace: Trace,
    /// Where the scenario was saved, if it was.
    pub saved_to: Option<PathBuf>,
    /// Why it could not be saved, when saving was asked for and failed (a
    /// full disk, a folder that cannot be written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_error: Option<String>,
    /// The exact command that replays it.
    pub replay: String,
    /// Whether a rerun of the same seed gave the identical trace
    /// (None: not checked, e.g. for black-box providers).
    pub deterministic: Option<bool>,
    /// Whether the failure showed again when its case was rerun. A
    /// real-time failure may not (it hangs on timing): then `scenario` and
    /// `trace` are the case as first found, not shrunk.
    #[serde(default = "recurred_default")]
    pub recurred: bool,
}

fn recurred_default() -> bool {
    true
}

/// One distinct violation (by fingerprint), with its minimal case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// `RULE/callback/completion-mode`: stable across runs.
    pub fingerprint: String,
    /// The first violation of this fingerprint in the minimal case (or as found).
    pub violation: Violation,
    /// How many cases showed it (each case counted once).
    pub cases: u64,
    /// The global index of the first case that showed it (the one shrunk).
    #[serde(default)]
    pub first_case: u64,
    /// Whether it was the earliest violation of some case's trace (a root
    /// cause); `false` when it only ever followed another violation.
    #[serde(default)]
    pub root_cause: bool,
    pub minimal: Option<MinimalCase>,
}

fn default_lanes() -> u32 {
    crate::certify::LANES
}

/// One shard of a partitioned run: `index` of `count` (1-based, `K/N` on
/// the command line). It runs the lanes with `lane % count == index - 1`.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// `K/N`, with `1 <= K <= N <= LANES` (more shards than lanes would
    /// leave some shards nothing to run).
    pub fn new(index: u32, count: u32) -> Result<Partition, String> {
        let lanes = crate::certify::LANES;
        if count == 0 || count > lanes {
            return Err(format!(
                "a run has {lanes} lanes, so it splits into 1 to {lanes} shards (got {count})"
            ));
        }
        if index == 0 || index > count {
            return Err(format!(
                "shard {index} of {count}: shards are numbered 1 to {count}"
            ));
        }
        Ok(Partition { index, count })
    }

    /// Whether this shard runs lane `lane`.
    pub fn owns(&self, lane: u32) -> bool {
        lane % self.count == self.index - 1
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Partition {
    type Err = String;
    /// `K/N`, e.g. `2/4`.
    fn from_str(s: &str) -> Result<Partition, String> {
        let bad = || format!("`{s}`: a partition is K/N, e.g. 2/4 (shard 2 of 4)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        Partition::new(k, n)
    }
}

/// A saved failure (a scenario file in the regressions folder) replayed
/// before any case is generated, the way proptest replays its persisted
/// failures first.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Replayed {
    /// The scenario file.
    pub file: PathBuf,
    /// The rules it still breaks, in catalogue order (empty: fixed).
    pub violations: Vec<RuleId>,
    /// Why it could not be replayed (it does not load, or cannot run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A whole certification run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Certification {
    pub provider: String,
    pub verdict: Verdict,
    pub strict: bool,
    pub seed: u64,
    /// Cases that ran and are counted in `rules` and `findings` (this
    /// shard's, in a partitioned run): the generated ones, or, when a saved
    /// failure still fails (or `CPSIM_REPLAY` names one), the saved ones
    /// replayed (nothing is generated then).
    pub cases: u64,
    /// The whole run's budget (`--cases`), over every shard.
    #[serde(default)]
    pub budget: u64,
    /// The run's lanes (see `certify::LANES`).
    #[serde(default = "default_lanes")]
    pub lanes: u32,
    /// Which shard this is, when the run was partitioned.
    #[serde(default)]
    pub partition: Option<Partition>,
    /// Why this is not the whole run (interrupted, shards missing); `None`
    /// when it is.
    #[serde(default)]
    pub incomplete: Option<String>,
    pub elapsed_s: f64,
    /// The command that reruns this certification (same seed and budget).
    #[serde(default)]
    pub rerun: String,
    /// Saved failures replayed before generating cases, and how each did.
    #[serde(default)]
    pub replayed: Vec<Replayed>,
    /// Whether only saved failures were run (one still failed, or
    /// `CPSIM_REPLAY` named one): no case was generated.
    #[serde(default)]
    pub replay_only: bool,
    /// One entry per rule of the catalogue, in catalogue order.
    pub rules: Vec<RuleStat>,
    /// Distinct violations, root cause first.
    pub findings: Vec<Finding>,
    /// MUST rules the provider can reach that no case exercised.
    pub unexercised: Vec<RuleId>,
    /// The contract-state coverage keys the run reached (situations of
    /// the contract: `certify::statemap::describe` says each in words),
    /// sorted; a merge of shards takes their union.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<u64>,
    /// Cases of a virtual-time run whose only violation was the real-time
    /// watchdog's and which a deterministic rerun did not reproduce: a
    /// stall of the machine, not the provider's doing, so not findings
    /// (decision `watchdog-stall`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalls: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Puts findings in report order: root causes first (a finding that was
/// the earliest violation of some case's trace), then by rule, then by the
/// first case that showed it. Every key survives a merge of shards, so a
/// merged report lists findings exactly as the unsharded run does.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (
            !a.root_cause,
            a.violation.rule,
            a.first_case,
            &a.fingerprint,
        )
            .cmp(&(
                !b.root_cause,
                b.violation.rule,
                b.first_case,
                &b.fingerprint,
            ))
    });
}

impl Certification {
    /// Rules broken at least once.
    pub fn violated(&self) -> Vec<RuleId> {
        self.rules
            .iter()
            .filter(|r| r.violations > 0)
            .map(|r| r.id)
            .collect()
    }

    /// The verdict from the counters (a SHOULD-only run is non-strict, or a
    /// failure when strict).
    pub fn compute_verdict(rules: &[RuleStat], unexercised: &[RuleId], strict: bool) -> Verdict {
        let broken = |lvl: Level| {
            rules.iter().any(|r| {
                r.violations > 0 && r.id.rule().level == lvl && r.id.rule().binds == Binds::Provider
            })
        };
        let platform_bug = rules
            .iter()
            .any(|r| r.violations > 0 && r.id.rule().binds == Binds::Platform);
        if broken(Level::Must) || platform_bug || !unexercised.is_empty() {
            Verdict::Fail
        } else if broken(Level::Should) {
            if strict {
                Verdict::Fail
            } else {
                Verdict::NonStrict
            }
        } else {
            Verdict::Pass
        }
    }
}
