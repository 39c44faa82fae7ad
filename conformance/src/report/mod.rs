//! Certification reports: what a [`Certification`] looks like to a machine
//! (`report.json`), to a CI server (`junit.xml`) and to a person
//! (`report.html`).
//!
//! All three are pure functions of the certification: no clock, no host
//! name, no network. [`write_all`] writes the three files into one folder.

pub mod html;
pub mod json;
pub mod junit;

use crate::model::{Certification, Finding, RuleStat};
use cpsim_sim::rules::{Binds, Level, Rule};
use cpsim_sim::RuleId;
use std::path::Path;

/// Most events of a minimal trace shown in a text diagram (JUnit bodies).
pub const TEXT_WINDOW: usize = 40;
/// Most events of a minimal trace drawn in an SVG diagram (HTML report).
pub const SVG_EVENTS: usize = 40;

/// Writes `report.json`, `junit.xml` and `report.html` into `dir`, creating
/// it (and its parents) if needed.
pub fn write_all(cert: &Certification, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), json::to_string(cert))?;
    std::fs::write(dir.join("junit.xml"), junit::to_string(cert)?)?;
    std::fs::write(dir.join("report.html"), html::to_string(cert))?;
    Ok(())
}

/// How one rule came out of a certification. Every report uses the same
/// classification, so they never disagree.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RuleOutcome {
    /// Exercised and never broken.
    Pass,
    /// A MUST rule broken, or a SHOULD rule broken under `--strict`.
    Violated,
    /// A SHOULD rule broken without `--strict`: a warning, not a failure.
    Warning,
    /// A platform (C) rule broken: a bug in the platform, not the provider.
    PlatformBug,
    /// A MUST rule the provider can reach that no case exercised (a failure).
    NeverExercised,
    /// No case exercised it and nothing requires that one did.
    NotExercised,
}

impl RuleOutcome {
    /// Whether this outcome fails the certification.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            RuleOutcome::Violated | RuleOutcome::PlatformBug | RuleOutcome::NeverExercised
        )
    }
    /// A short lower-case name, as used in `report.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleOutcome::Pass => "pass",
            RuleOutcome::Violated => "violated",
            RuleOutcome::Warning => "warning",
            RuleOutcome::PlatformBug => "platform-bug",
            RuleOutcome::NeverExercised => "never-exercised",
            RuleOutcome::NotExercised => "not-exercised",
        }
    }
}

/// One catalogue rule with its counters, findings and outcome.
pub(crate) struct RuleReport<'a> {
    pub id: RuleId,
    pub rule: &'static Rule,
    pub stat: RuleStat,
    pub findings: Vec<&'a Finding>,
    pub outcome: RuleOutcome,
}

/// Every catalogue rule, in catalogue order, whatever `cert.rules` holds (a
/// rule it does not list counts as neither exercised nor violated).
pub(crate) fn rule_reports(cert: &Certification) -> Vec<RuleReport<'_>> {
    RuleId::all()
        .map(|id| {
            let rule = id.rule();
            let stat = cert
                .rules
                .iter()
                .find(|s| s.id == id)
                .cloned()
                .unwrap_or(RuleStat {
                    id,
                    exercised: 0,
                    violations: 0,
                });
            let findings: Vec<&Finding> = cert
                .findings
                .iter()
                .filter(|f| f.violation.rule == id)
                .collect();
            let outcome = if stat.violations > 0 || !findings.is_empty() {
                match (rule.binds, rule.level) {
                    (Binds::Platform, _) => RuleOutcome::PlatformBug,
                    (Binds::Provider, Level::Should) if !cert.strict => RuleOutcome::Warning,
                    _ => RuleOutcome::Violated,
                }
            } else if cert.unexercised.contains(&id) {
                RuleOutcome::NeverExercised
            } else if stat.exercised == 0 {
                RuleOutcome::NotExercised
            } else {
                RuleOutcome::Pass
            };
            RuleReport {
                id,
                rule,
                stat,
                findings,
                outcome,
            }
        })
        .collect()
}

/// `P` or `C`.
pub(crate) fn binds_str(b: Binds) -> &'static str {
    match b {
        Binds::Provider => "P",
        Binds::Platform => "C",
    }
}

/// `MUST`, `SHOULD`, or `-` for a platform guarantee.
pub(crate) fn level_str(l: Level) -> &'static str {
    match l {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
        Level::Guarantee => "-",
    }
}

/// A finding as text: headline, counts, the minimal trace around the
/// violation, and how to replay it. The body of a JUnit failure.
pub(crate) fn finding_text(f: &Finding) -> String {
    let mut s = format!("{}\n", f.violation.headline());
    s.push_str(&format!(
        "fingerprint {}, seen in {} case{}\n",
        f.fingerprint,
        f.cases,
        if f.cases == 1 { "" } else { "s" }
    ));
    match &f.minimal {
        Some(m) => {
            s.push_str(&format!(
                "\nminimal trace ({} events):\n",
                m.trace.events.len()
            ));
            s.push_str(&crate::diagram::text_for(
                &m.trace,
                &f.violation,
                TEXT_WINDOW,
            ));
            s.push('\n');
            s.push_str(&format!("replay: {}\n", m.replay));
            if let Some(p) = &m.saved_to {
                s.push_str(&format!("scenario: {}\n", p.display()));
            }
            if let Some(e) = &m.save_error {
                s.push_str(&format!("not saved: {e}\n"));
            }
            if !m.recurred {
                s.push_str("did not recur when rerun: the case and trace as first found (timing-dependent)\n");
            }
            match m.deterministic {
                Some(true) => s.push_str("deterministic: the same seed gave the same trace\n"),
                Some(false) => {
                    s.push_str("NOT deterministic: a rerun of the same seed gave another trace\n")
                }
                None => {}
            }
        }
        None => s.push_str("(no minimal case was kept for this finding)\n"),
    }
    s
}
