//! `junit.xml`: the certification as JUnit XML, for CI servers.
//!
//! The document keeps to the schema CI servers validate JUnit reports
//! against (the Jenkins xUnit plugin's `junit-10.xsd`): only the attributes
//! and elements it declares, in the places it allows them. The tests
//! validate every report against that schema with `xmllint`.
//!
//! One `<testsuite>` named after the provider, with one `<testcase>` per
//! catalogue rule, in catalogue order: `name` is the rule ID, `classname`
//! is `cpsim.<provider>`. Platform (C) rules are test cases too. Every test
//! case has a `<system-out>` line with its counts (how many cases exercised
//! the rule, how many broke it). A test case is:
//!
//! - a `<failure type="MUST">` (or `type="SHOULD"` under `--strict`) when the
//!   provider broke the rule: the message is the violation's headline, the
//!   body the minimal trace as a text diagram and the replay command;
//! - a `<failure type="platform-bug">` when the platform broke a C rule;
//! - a `<failure type="never-exercised">` for a reachable MUST rule that no
//!   case exercised;
//! - **a pass with a warning in `<system-out>`** when a SHOULD rule was
//!   broken without `--strict`. Such a run's verdict is `non-strict`, which
//!   does not fail, so CI must not go red; and the rule *was* run, so
//!   `skipped` (which CI servers read as "not run") would misreport it. The
//!   warning carries the same headline, diagram and replay command as a
//!   failure;
//! - `<skipped>` when no case exercised the rule and nothing required one to;
//! - a plain pass otherwise.
//!
//! The suite's properties give the verdict, seed, strictness, case count,
//! whether the run is complete, for one shard of a partitioned run which,
//! and the command that reruns the certification. An incomplete run
//! (interrupted, or a merge with shards missing) has one more test case,
//! `run-complete`, a `<failure type="incomplete">`, so it cannot read as
//! green. So has a run with a saved failure that cannot be replayed (the
//! file does not load): `saved-failures`, a `<failure
//! type="saved-failure-unreadable">` naming each such file.

use super::{finding_text, rule_reports, RuleOutcome, RuleReport};
use crate::model::Certification;
use std::fmt::Write;

/// One test case's outcome element.
enum Status {
    Pass,
    Failure {
        ty: &'static str,
        message: String,
        body: String,
    },
    Skipped(&'static str),
}

/// The report as an XML document.
pub fn to_string(cert: &Certification) -> std::io::Result<String> {
    let rules = rule_reports(cert);
    let mut cases = Vec::with_capacity(rules.len());
    for r in &rules {
        let status = status(cert, r);
        let mut out = format!(
            "exercised in {} of {} case{}; broken in {}",
            r.stat.exercised,
            cert.cases,
            if cert.cases == 1 { "" } else { "s" },
            r.stat.violations
        );
        if r.outcome == RuleOutcome::Warning {
            out = format!(
                "warning: SHOULD rule {} broken in {} case{} (not a failure without --strict); {out}\n{}\n\n{}",
                r.id,
                r.stat.violations,
                if r.stat.violations == 1 { "" } else { "s" },
                r.rule.text,
                bodies(r)
            );
        }
        cases.push((r, status, out));
    }
    // An incomplete run must not read as green: one more test case says so.
    let incomplete = cert.incomplete.as_ref().map(|why| {
        (
            Status::Failure {
                ty: "incomplete",
                message: format!("incomplete run: {why}"),
                body: format!(
                    "This report covers {} of the {} cases asked for: {why}.\n",
                    cert.cases, cert.budget
                ),
            },
            format!("{} of {} cases ran", cert.cases, cert.budget),
        )
    });
    // A saved failure that cannot be replayed fails the run (the file is
    // named, and must be fixed or deleted); no rule's test case shows it, so
    // one more test case does.
    let unreadable: Vec<String> = cert
        .replayed
        .iter()
        .filter_map(|r| r.error.clone())
        .collect();
    let unreplayed = (!unreadable.is_empty()).then(|| {
        (
            Status::Failure {
                ty: "saved-failure-unreadable",
                message: format!(
                    "{} saved failure{} cannot be replayed: {}",
                    unreadable.len(),
                    if unreadable.len() == 1 { "" } else { "s" },
                    unreadable[0]
                ),
                body: format!(
                    "Fix each file or delete it; the next run replays the saved failures first again.\n{}\n",
                    unreadable.join("\n")
                ),
            },
            format!("{} saved failures replayed", cert.replayed.len()),
        )
    });
    let extra = usize::from(incomplete.is_some()) + usize::from(unreplayed.is_some());
    let tests = cases.len() + extra;
    let failures = extra
        + cases
            .iter()
            .filter(|(_, s, _)| matches!(s, Status::Failure { .. }))
            .count();
    let skipped = cases
        .iter()
        .filter(|(_, s, _)| matches!(s, Status::Skipped(_)))
        .count();
    let time = if cert.elapsed_s.is_finite() && cert.elapsed_s >= 0.0 {
        format!(" time=\"{:.3}\"", cert.elapsed_s)
    } else {
        String::new()
    };

    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"cpsim\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\"{time}>"
    );
    let _ = writeln!(
        x,
        "    <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\"{time}>",
        attr(&cert.provider)
    );
    x.push_str("        <properties>\n");
    let mut props = vec![
        ("verdict", cert.verdict.to_string()),
        ("seed", cert.seed.to_string()),
        ("strict", cert.strict.to_string()),
        ("cases", cert.cases.to_string()),
        ("complete", cert.incomplete.is_none().to_string()),
    ];
    if let Some(p) = cert.partition {
        props.push(("partition", p.to_string()));
    }
    if !cert.rerun.is_empty() {
        props.push(("rerun", cert.rerun.clone()));
    }
    if !cert.replayed.is_empty() {
        props.push(("saved-failures-replayed", cert.replayed.len().to_string()));
    }
    for (name, value) in props {
        let _ = writeln!(
            x,
            "            <property name=\"{name}\" value=\"{}\"/>",
            attr(&value)
        );
    }
    x.push_str("        </properties>\n");
    let classname = format!("cpsim.{}", cert.provider);
    let rows = cases
        .iter()
        .map(|(r, status, out)| (r.id.as_str(), status, out))
        .chain(incomplete.iter().map(|(s, out)| ("run-complete", s, out)))
        .chain(unreplayed.iter().map(|(s, out)| ("saved-failures", s, out)));
    for (name, status, out) in rows {
        let _ = writeln!(
            x,
            "        <testcase name=\"{}\" classname=\"{}\">",
            attr(name),
            attr(&classname)
        );
        match status {
            Status::Pass => {}
            Status::Failure { ty, message, body } => {
                let _ = writeln!(
                    x,
                    "            <failure type=\"{ty}\" message=\"{}\">{}</failure>",
                    attr(message),
                    text(body)
                );
            }
            Status::Skipped(message) => {
                let _ = writeln!(x, "            <skipped message=\"{message}\"/>");
            }
        }
        let _ = writeln!(x, "            <system-out>{}</system-out>", text(out));
        x.push_str("        </testcase>\n");
    }
    x.push_str("    </testsuite>\n</testsuites>\n");
    Ok(x)
}

fn status(cert: &Certification, r: &RuleReport<'_>) -> Status {
    match r.outcome {
        RuleOutcome::Violated => Status::Failure {
            ty: if cert.strict && r.rule.level == cpsim_sim::rules::Level::Should {
                "SHOULD"
            } else {
                "MUST"
            },
            message: headline(r),
            body: bodies(r),
        },
        RuleOutcome::PlatformBug => Status::Failure {
            ty: "platform-bug",
            message: format!("platform bug: {}", headline(r)),
            body: bodies(r),
        },
        RuleOutcome::NeverExercised => Status::Failure {
            ty: "never-exercised",
            message: "never exercised".to_string(),
            body: format!(
                "{} is a MUST rule this provider can reach, but no case out of {} met its precondition, so it was never tested.\n{}\n",
                r.id, cert.cases, r.rule.text
            ),
        },
        RuleOutcome::NotExercised => Status::Skipped("not exercised"),
        RuleOutcome::Pass | RuleOutcome::Warning => Status::Pass,
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

/// Text as XML 1.0 may hold it: `&`, `<`, `>` escaped, and characters XML
/// cannot carry (most control characters) written as `\u{…}`.
fn text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                let _ = write!(o, "\\u{{{:x}}}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// An attribute value: as [`text`], and quotes and line breaks escaped too
/// (so they survive attribute normalisation).
fn attr(s: &str) -> String {
    text(s)
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}
