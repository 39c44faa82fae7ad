//! `junit.xml`: the certification as JUnit XML, for CI servers.
//!
//! One `<testsuite>` named after the provider, with one `<testcase>` per
//! catalogue rule, in catalogue order: `name` is the rule ID, `classname`
//! is `cpsim.<provider>`, `assertions` is how many cases exercised the rule.
//! Platform (C) rules are test cases too. A test case is:
//!
//! - a `<failure type="MUST">` (or `type="SHOULD"` under `--strict`) when the
//!   provider broke the rule: the message is the violation's headline, the
//!   body the minimal trace as a text diagram and the replay command;
//! - a `<failure type="platform-bug">` when the platform broke a C rule;
//! - a `<failure type="never-exercised">` for a reachable MUST rule that no
//!   case exercised;
//! - **a pass with a `<system-out>` warning** when a SHOULD rule was broken
//!   without `--strict`. Such a run's verdict is `non-strict`, which does not
//!   fail, so CI must not go red; and the rule *was* run, so `skipped`
//!   (which CI servers read as "not run") would misreport it. The warning
//!   text carries the same headline, diagram and replay command as a failure;
//! - `<skipped>` when no case exercised the rule and nothing required one to;
//! - a plain pass otherwise.
//!
//! The suite's properties give the verdict, seed, strictness, case count,
//! whether the run is complete and, for one shard of a partitioned run,
//! which. An incomplete run (interrupted, or a merge with shards missing)
//! has one more test case, `run-complete`, a `<failure type="incomplete">`.

use super::{finding_text, rule_reports, RuleOutcome, RuleReport};
use crate::model::Certification;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// The report as a `quick_junit` document.
pub fn report(cert: &Certification) -> Report {
    let classname = format!("cpsim.{}", cert.provider);
    let mut suite = TestSuite::new(cert.provider.as_str());
    suite.add_properties([
        Property::new("verdict", cert.verdict.to_string()),
        Property::new("seed", cert.seed.to_string()),
        Property::new("strict", cert.strict.to_string()),
        Property::new("cases", cert.cases.to_string()),
        Property::new("complete", cert.incomplete.is_none().to_string()),
    ]);
    if let Some(p) = cert.partition {
        suite.add_property(Property::new("partition", p.to_string()));
    }
    if cert.elapsed_s.is_finite() && cert.elapsed_s >= 0.0 {
        suite.set_time(Duration::from_secs_f64(cert.elapsed_s));
    }
    for r in rule_reports(cert) {
        let mut case = TestCase::new(r.id.as_str(), status(cert, &r));
        case.set_classname(classname.as_str());
        case.set_assertions(r.stat.exercised as usize);
        if r.outcome == RuleOutcome::Warning {
            case.set_system_out(format!(
                "warning: SHOULD rule {} broken in {} case{} (not a failure without --strict)\n{}\n\n{}",
                r.id,
                r.stat.violations,
                if r.stat.violations == 1 { "" } else { "s" },
                r.rule.text,
                bodies(&r)
            ));
        }
        suite.add_test_case(case);
    }
    // An incomplete run (interrupted, or shards missing from a merge) must
    // not read as green: one more test case says so.
    if let Some(why) = &cert.incomplete {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_type("incomplete")
            .set_message(format!("incomplete run: {why}"))
            .set_description(format!(
                "This report covers {} of the {} cases asked for: {why}.\n",
                cert.cases, cert.budget
            ));
        let mut case = TestCase::new("run-complete", status);
        case.set_classname(classname.as_str());
        suite.add_test_case(case);
    }
    let mut report = Report::new("cpsim");
    report.add_test_suite(suite);
    report
}

/// The report as an XML document.
pub fn to_string(cert: &Certification) -> std::io::Result<String> {
    report(cert)
        .to_string()
        .map_err(|e| std::io::Error::other(format!("cannot write JUnit XML: {e}")))
}

fn status(cert: &Certification, r: &RuleReport<'_>) -> TestCaseStatus {
    let failure = |ty: &str, message: String, body: String| {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_type(ty).set_message(message).set_description(body);
        s
    };
    match r.outcome {
        RuleOutcome::Violated => failure(
            if cert.strict && r.rule.level == cpsim_sim::rules::Level::Should {
                "SHOULD"
            } else {
                "MUST"
            },
            headline(r),
            bodies(r),
        ),
        RuleOutcome::PlatformBug => failure(
            "platform-bug",
            format!("platform bug: {}", headline(r)),
            bodies(r),
        ),
        RuleOutcome::NeverExercised => failure(
            "never-exercised",
            "never exercised".to_string(),
            format!(
                "{} is a MUST rule this provider can reach, but no case out of {} met its precondition, so it was never tested.\n{}\n",
                r.id, cert.cases, r.rule.text
            ),
        ),
        RuleOutcome::NotExercised => {
            let mut s = TestCaseStatus::skipped();
            s.set_message("not exercised");
            s
        }
        RuleOutcome::Pass | RuleOutcome::Warning => TestCaseStatus::success(),
    }
}

/// The first finding's headline, or the counters when there is no finding.
fn headline(r: &RuleReport<'_>) -> String {
    match r.findings.first() {
        Some(f) => f.violation.headline(),
        None => format!("{} broken in {} case(s)", r.id, r.stat.violations),
    }
}

/// Every finding of the rule, as text.
fn bodies(r: &RuleReport<'_>) -> String {
    if r.findings.is_empty() {
        return format!(
            "{} was broken in {} case(s); no finding was kept.\n{}\n",
            r.id, r.stat.violations, r.rule.text
        );
    }
    r.findings
        .iter()
        .map(|f| finding_text(f))
        .collect::<Vec<_>>()
        .join("\n")
}
