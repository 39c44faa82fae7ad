//! The kill matrix: every broken provider certified, and which rules fired.

use super::{certify_subject, Config};
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

/// Certifies every broken provider of `registry`; the target rule must be
/// among those fired.
pub fn kill_matrix(registry: &Registry, cases: u64, seed: u64) -> Vec<Row> {
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
