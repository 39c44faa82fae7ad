//! The kill matrix: every broken provider certified, and which rules fired.

use super::{certify_subject, Config, Subject};
use crate::model::Verdict;
use sim_cp::RuleId;

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

/// Certifies every broken provider; the target rule must be among those fired.
pub fn kill_matrix(cases: u64, seed: u64) -> Vec<Row> {
    providers_under_test::registry()
        .into_iter()
        .filter_map(|e| match e.kind {
            providers_under_test::Kind::Broken(rule) => Some((e.name, rule)),
            providers_under_test::Kind::Correct => None,
        })
        .map(|(name, target)| {
            let subject = Subject::builtin(name).expect("listed");
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
