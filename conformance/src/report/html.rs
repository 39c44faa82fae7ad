//! `report.html`: the certification for people, as one self-contained file.
//!
//! Inline CSS only: no script, no external stylesheet, font, image or link,
//! so the file opens the same offline, from a CI artifact or an e-mail. The
//! only URL in it is the SVG namespace of the inline diagrams. Every piece of
//! text that comes from the certification is escaped.

use super::{binds_str, level_str, rule_reports, RuleOutcome, RuleReport, SVG_EVENTS};
use crate::diagram;
use crate::diagram::svg::escape;
use crate::model::{Certification, Finding, Verdict};
use cpsim_sim::rules::{Binds, Level};
use std::fmt::Write;

const STYLE: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: #1f2937;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 24px 48px; }
h1 { font-size: 15px; font-weight: 600; color: #4b5563; margin: 0 0 10px; letter-spacing: .02em; }
h2 { font-size: 21px; margin: 34px 0 12px; }
h3 { font-size: 16px; margin: 0 0 8px; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; word-break: break-word; }
h4 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: #6b7280; margin: 16px 0 4px; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 13px; }
.verdict { display: flex; flex-wrap: wrap; align-items: center; gap: 16px 40px; padding: 22px 30px;
  border-radius: 12px; color: #ffffff; }
.verdict.pass { background: #15803d; }
.verdict.non-strict { background: #b45309; }
.verdict.fail { background: #b91c1c; }
.verdict .big { font-size: 64px; font-weight: 800; line-height: 1; letter-spacing: .03em; }
.verdict .why { flex-basis: 100%; margin: 0; font-size: 15px; opacity: .95; }
.verdict dl { display: grid; grid-template-columns: auto auto; gap: 2px 18px; margin: 0; font-size: 15px; }
.verdict dt { opacity: .8; }
.verdict dd { margin: 0; font-weight: 600; }
.verdict dd.mono { font-size: 15px; }
.chips { display: flex; flex-wrap: wrap; gap: 8px; margin: 16px 0 0; padding: 0; list-style: none; }
.chips li { background: #ffffff; border: 1px solid #e5e7eb; border-radius: 999px; padding: 3px 12px; font-size: 14px; }
.chips li b { font-weight: 700; }
.chips .bad { border-color: #fca5a5; background: #fef2f2; }
.chips .warn { border-color: #fcd34d; background: #fffbeb; }
.finding { background: #ffffff; border: 1px solid #e5e7eb; border-left: 6px solid #b91c1c;
  border-radius: 10px; padding: 18px 22px; margin: 0 0 20px; }
.finding.warning { border-left-color: #d97706; }
.finding.platform-bug { border-left-color: #7c3aed; }
.meta { color: #4b5563; font-size: 13.5px; margin: 0 0 10px; }
.badge { display: inline-block; border-radius: 4px; padding: 0 7px; font-size: 12px; font-weight: 700;
  color: #ffffff; background: #6b7280; vertical-align: 2px; margin-right: 6px; }
.badge.MUST { background: #b91c1c; }
.badge.SHOULD { background: #d97706; }
.badge.C { background: #7c3aed; }
blockquote { margin: 0; padding: 8px 14px; background: #f9fafb; border-left: 3px solid #9ca3af; }
pre { background: #111827; color: #f3f4f6; padding: 10px 14px; border-radius: 6px; overflow-x: auto; margin: 0; white-space: pre; }
.diagram { overflow-x: auto; border: 1px solid #e5e7eb; border-radius: 6px; background: #ffffff; margin-top: 4px; }
.diagram svg { display: block; }
.note { color: #6b7280; font-size: 13.5px; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; background: #ffffff; border: 1px solid #e5e7eb; font-size: 13.5px; }
th { position: sticky; top: 0; background: #f9fafb; text-align: left; font-weight: 600; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { white-space: nowrap; font-weight: 600; }
td.id a { color: inherit; }
tr.violated td, tr.platform-bug td { background: #fde8e8; }
tr.warning td { background: #fef3c7; }
tr.never-exercised td { background: #ffedd5; }
tr.not-exercised td { color: #6b7280; }
.outcome { white-space: nowrap; font-weight: 600; }
tr.violated .outcome, tr.platform-bug .outcome { color: #b91c1c; }
tr.warning .outcome, tr.never-exercised .outcome { color: #b45309; }
tr.pass .outcome { color: #15803d; }
footer { margin-top: 30px; color: #9ca3af; font-size: 13px; }
"#;

/// The report as one HTML document.
pub fn to_string(cert: &Certification) -> String {
    let rules = rule_reports(cert);
    let e = |s: &str| escape(s);
    let mut h = String::new();
    let verdict = cert.verdict.to_string();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>cpsim: {} {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        e(&cert.provider),
        e(&verdict.to_uppercase())
    );

    // The verdict, big, with the run's parameters and the reasons for it.
    let count = |o: RuleOutcome| rules.iter().filter(|r| r.outcome == o).count();
    let why = match cert.verdict {
        Verdict::Pass => {
            "No rule was broken and every reachable MUST rule was exercised.".to_string()
        }
        Verdict::NonStrict => {
            "Only SHOULD rules were broken: warnings, which fail the certification only with --strict."
                .to_string()
        }
        Verdict::Fail => {
            let mut reasons = Vec::new();
            for (o, one, many) in [
                (
                    RuleOutcome::Violated,
                    "rule broken by the provider",
                    "rules broken by the provider",
                ),
                (
                    RuleOutcome::PlatformBug,
                    "platform rule broken (a platform bug)",
                    "platform rules broken (platform bugs)",
                ),
                (
                    RuleOutcome::NeverExercised,
                    "reachable MUST rule never exercised",
                    "reachable MUST rules never exercised",
                ),
            ] {
                match count(o) {
                    0 => {}
                    1 => reasons.push(format!("1 {one}")),
                    n => reasons.push(format!("{n} {many}")),
                }
            }
            if reasons.is_empty() {
                "The certification failed.".to_string()
            } else {
                format!("Failed: {}.", reasons.join("; "))
            }
        }
    };
    let _ = write!(
        h,
        "<h1>cpsim provider certification</h1>\n\
         <section class=\"verdict {}\">\n<div class=\"big\">{}</div>\n<dl>\n\
         <dt>provider</dt><dd class=\"mono\">{}</dd>\n<dt>seed</dt><dd class=\"mono\">{}</dd>\n\
         <dt>{}</dt><dd>{}</dd>\n{}<dt>elapsed</dt><dd>{:.2} s</dd>\n<dt>mode</dt><dd>{}</dd>\n</dl>\n\
         <p class=\"why\">{}</p>\n</section>\n",
        e(&verdict),
        e(&verdict.to_uppercase()),
        e(&cert.provider),
        cert.seed,
        if cert.replay_only {
            "saved cases replayed"
        } else {
            "cases"
        },
        cert.cases,
        match cert.partition {
            Some(p) => format!(
                "<dt>shard</dt><dd>{p} (of a run of {} cases)</dd>\n",
                cert.budget
            ),
            None => String::new(),
        },
        cert.elapsed_s,
        if cert.strict { "strict" } else { "default (SHOULD rules warn)" },
        e(&why)
    );

    if let Some(why) = &cert.incomplete {
        let _ = writeln!(
            h,
            "<section class=\"verdict fail\"><div class=\"big\">INCOMPLETE</div>\n\
             <p class=\"why\">This is not the whole run: {}. The counts and findings \
             are those of the cases that ran.</p>\n</section>",
            e(why)
        );
    }

    // Counters.
    h.push_str("<ul class=\"chips\">\n");
    let _ = writeln!(h, "<li><b>{}</b> rules</li>", rules.len());
    for (o, name, class) in [
        (RuleOutcome::Pass, "passed", ""),
        (RuleOutcome::Violated, "violated", "bad"),
        (RuleOutcome::PlatformBug, "platform bug", "bad"),
        (RuleOutcome::NeverExercised, "never exercised", "bad"),
        (RuleOutcome::Warning, "warning", "warn"),
        (RuleOutcome::NotExercised, "not exercised", ""),
    ] {
        let n = count(o);
        if n > 0 || o == RuleOutcome::Pass {
            let class = if n > 0 && !class.is_empty() {
                format!(" class=\"{class}\"")
            } else {
                String::new()
            };
            let name = match o {
                RuleOutcome::PlatformBug | RuleOutcome::Warning if n != 1 => format!("{name}s"),
                _ => name.to_string(),
            };
            let _ = writeln!(h, "<li{class}><b>{n}</b> {name}</li>");
        }
    }
    h.push_str("</ul>\n");

    // Saved failures replayed before anything was generated.
    if !cert.replayed.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"saved\">Saved failures replayed first ({})</h2>",
            cert.replayed.len()
        );
        if cert.replay_only {
            h.push_str("<p class=\"note\">One still fails (or one was asked for alone), so no case was generated: every count here is of these saved cases.</p>\n");
        }
        h.push_str("<table>\n<tr><th>file</th><th>outcome</th></tr>\n");
        for r in &cert.replayed {
            let (class, outcome) = match (&r.error, r.violations.is_empty()) {
                (Some(err), _) => ("violated", format!("cannot be replayed: {err}")),
                (None, true) => ("pass", "fixed".to_string()),
                (None, false) => {
                    let ids: Vec<&str> = r.violations.iter().map(|v| v.as_str()).collect();
                    ("violated", format!("still breaks {}", ids.join(", ")))
                }
            };
            let _ = writeln!(
                h,
                "<tr class=\"{class}\"><td class=\"mono\">{}</td><td class=\"outcome\">{}</td></tr>",
                e(&r.file.display().to_string()),
                e(&outcome)
            );
        }
        h.push_str("</table>\n");
    }

    // Findings, root cause first (the order the certification gives).
    let _ = writeln!(
        h,
        "<h2 id=\"findings\">Findings ({})</h2>",
        cert.findings.len()
    );
    if cert.findings.is_empty() {
        h.push_str("<p class=\"note\">No rule was broken.</p>\n");
    }
    for (n, f) in cert.findings.iter().enumerate() {
        finding(&mut h, cert, n + 1, f);
    }

    // Reachable MUST rules that were never tested.
    if !cert.unexercised.is_empty() {
        h.push_str("<h2 id=\"unexercised\">Never exercised</h2>\n<p class=\"note\">MUST rules this provider can reach that no case tested; the certification fails until a case does.</p>\n<table>\n<tr><th>rule</th><th>text</th></tr>\n");
        for id in &cert.unexercised {
            let _ = writeln!(
                h,
                "<tr class=\"never-exercised\"><td class=\"id\">{}</td><td>{}</td></tr>",
                e(id.as_str()),
                e(id.rule().text)
            );
        }
        h.push_str("</table>\n");
    }

    // Every rule.
    h.push_str("<h2 id=\"rules\">All rules</h2>\n<table>\n<tr><th>rule</th><th>binds</th><th>level</th><th>exercised</th><th>violations</th><th>outcome</th><th>text</th></tr>\n");
    for r in &rules {
        // The rule's first finding, to link to.
        let first = cert
            .findings
            .iter()
            .position(|f| f.violation.rule == r.id)
            .map(|i| i + 1);
        rule_row(&mut h, r, first);
    }
    h.push_str("</table>\n");
    if !cert.rerun.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"rerun\">Rerun</h2>\n<pre>{}</pre>",
            e(&cert.rerun)
        );
    }
    h.push_str("<footer>Written by cpsim. Binds: P = the provider must keep the rule; C = the platform guarantees it. Exercised and violations count cases, each case at most once.</footer>\n");
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

fn rule_row(h: &mut String, r: &RuleReport<'_>, finding: Option<usize>) {
    let outcome = r.outcome.as_str();
    let id = match finding {
        Some(n) => format!("<a href=\"#finding-{n}\">{}</a>", escape(r.id.as_str())),
        None => escape(r.id.as_str()),
    };
    let _ = writeln!(
        h,
        "<tr class=\"{outcome}\"><td class=\"id\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"outcome\">{}</td><td>{}</td></tr>",
        id,
        binds_str(r.rule.binds),
        level_str(r.rule.level),
        r.stat.exercised,
        r.stat.violations,
        outcome.replace('-', " "),
        escape(r.rule.text)
    );
}

fn finding(h: &mut String, cert: &Certification, n: usize, f: &Finding) {
    let v = &f.violation;
    let rule = v.rule.rule();
    let class = match (rule.binds, rule.level) {
        (Binds::Platform, _) => "platform-bug",
        (_, Level::Should) if !cert.strict => "warning",
        _ => "violated",
    };
    let badge = match rule.binds {
        Binds::Platform => "<span class=\"badge C\">PLATFORM BUG</span>".to_string(),
        Binds::Provider => format!(
            "<span class=\"badge {0}\">{0}</span>",
            level_str(rule.level)
        ),
    };
    let _ = writeln!(
        h,
        "<article class=\"finding {class}\" id=\"finding-{n}\">\n<h3>{badge}{}</h3>",
        escape(&v.headline())
    );
    let deterministic = match f.minimal.as_ref().map(|m| (m.recurred, m.deterministic)) {
        Some((false, _)) => "did not recur when rerun: the case as first found",
        Some((true, Some(true))) => "deterministic",
        Some((true, Some(false))) => "NOT deterministic",
        _ => "determinism not checked",
    };
    let _ = writeln!(
        h,
        "<p class=\"meta\">rule <b>{}</b> · binds {} · source: {} · fingerprint <code>{}</code> · seen in {} of {} case{} · {}</p>",
        escape(rule.id),
        binds_str(rule.binds),
        escape(rule.source),
        escape(&f.fingerprint),
        f.cases,
        cert.cases,
        if cert.cases == 1 { "" } else { "s" },
        deterministic
    );
    let _ = writeln!(h, "<blockquote>{}</blockquote>", escape(rule.text));
    let _ = writeln!(
        h,
        "<h4>What breaks it</h4>\n<p>{}</p>\n<h4>How to fix</h4>\n<p>{}</p>",
        escape(rule.breaks),
        escape(rule.fix)
    );
    match &f.minimal {
        Some(m) => {
            let _ = writeln!(h, "<h4>Replay</h4>\n<pre>{}</pre>", escape(&m.replay));
            if let Some(p) = &m.saved_to {
                let _ = writeln!(
                    h,
                    "<p class=\"note\">Minimal scenario saved as <code>{}</code>.</p>",
                    escape(&p.display().to_string())
                );
            }
            if let Some(e) = &m.save_error {
                let _ = writeln!(
                    h,
                    "<p class=\"note\">The minimal scenario was not saved: {}</p>",
                    escape(e)
                );
            }
            let _ = writeln!(
                h,
                "<h4>Minimal trace ({} events, around step {})</h4>\n<div class=\"diagram\">\n{}</div>",
                m.trace.events.len(),
                v.step,
                diagram::svg_for(&m.trace, v, SVG_EVENTS)
            );
        }
        None => h.push_str("<p class=\"note\">No minimal case was kept for this finding.</p>\n"),
    }
    h.push_str("</article>\n");
}
