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
    /// The exact command that replays it.
    pub replay: String,
    /// Whether a rerun of the same seed gave the identical trace
    /// (None: not checked, e.g. for black-box providers).
    pub deterministic: Option<bool>,
}

/// One distinct violation (by fingerprint), with its minimal case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// `RULE/callback/completion-mode`: stable across runs.
    pub fingerprint: String,
    /// The first violation of this fingerprint in the minimal case (or as found).
    pub violation: Violation,
    /// How many cases showed it.
    pub cases: u64,
    pub minimal: Option<MinimalCase>,
}

/// A whole certification run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Certification {
    pub provider: String,
    pub verdict: Verdict,
    pub strict: bool,
    pub seed: u64,
    pub cases: u64,
    pub elapsed_s: f64,
    /// One entry per rule of the catalogue, in catalogue order.
    pub rules: Vec<RuleStat>,
    /// Distinct violations, root cause first.
    pub findings: Vec<Finding>,
    /// MUST rules the provider can reach that no case exercised.
    pub unexercised: Vec<RuleId>,
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
