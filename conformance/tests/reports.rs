//! The three reports and the diagrams, on a certification built by hand
//! around a real (seeded, deterministic) trace of the `reference` provider.
//!
//! junit.xml is validated with `xmllint` (package libxml2-utils) against
//! the schema CI servers use, the Jenkins xUnit plugin's `junit-10.xsd`,
//! which `ci/junit-schema.sh` takes from a package (pytest's source
//! distribution) into `target/junit-schema/`; `CPSIM_JUNIT_XSD` may name
//! another copy. Without either, these tests fail, on purpose, saying so.

use cpsim_certify::diagram;
use cpsim_certify::model::{Certification, Finding, MinimalCase, Replayed, RuleStat, Verdict};
use cpsim_certify::report;
use cpsim_certify::scenario::Scenario;
use cpsim_sim::rules::id;
use cpsim_sim::trace::What;
use cpsim_sim::{Action, Config, Family, Nanos, RuleId, Sim, Trace, Violation, CATALOGUE};
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------------------
// The fixture: a fixed seeded story and a certification around it.

/// Two hosts; B listens, A sends one datagram, A goes dormant.
fn story() -> Trace {
    let sim = Sim::new(
        Config::with_seed(7),
        &["A", "B"],
        cpsim_providers::find("reference")
            .expect("built in")
            .factory(),
    );
    let at = Nanos::from_millis;
    sim.schedule(at(0), Action::StartProvider { host: "A".into() });
    sim.schedule(at(0), Action::StartProvider { host: "B".into() });
    sim.schedule(
        at(10),
        Action::Listen {
            host: "B".into(),
            on: true,
        },
    );
    sim.schedule(
        at(100),
        Action::Send {
            from: "A".into(),
            to: "B".into(),
            family: Family::V4,
            bytes: 64,
            newest: false,
        },
    );
    sim.schedule(at(500), Action::Dormant { host: "A".into() });
    sim.run_until(at(1000));
    let out = sim.finish();
    assert!(out.violations.is_empty(), "{:#?}", out.violations);
    out.trace
}

/// The step of A#1's SEND_BUFFERS completion: the arrow the made-up
/// violation blames.
fn blamed_step(trace: &Trace) -> u64 {
    trace
        .events
        .iter()
        .find(|e| {
            e.host == 0
                && matches!(e.what, What::Complete { cb, .. } if cb == cpsim_sim::Callback::SendBuffers)
        })
        .expect("A completes its SEND_BUFFERS")
        .step
}

/// A COMP-3 violation pinned to `step`, with characters that need escaping.
fn made_up_violation(trace: &Trace, step: u64) -> Violation {
    let e = trace.events.iter().find(|e| e.step == step).unwrap();
    Violation {
        rule: id::COMP_3,
        host: "A".into(),
        instance: Some("A#1".into()),
        callback: Some("SEND_BUFFERS".into()),
        step,
        at: e.at,
        message:
            "completion routine called for a call that had returned <S_OK> & \"synchronously\""
                .into(),
    }
}

fn scenario() -> Scenario {
    serde_json::from_value(serde_json::json!({
        "version": cpsim_certify::scenario::VERSION,
        "name": "toy-COMP-3",
        "hosts": ["A", "B"],
        "provider": { "builtin": "toy" },
        "steps": [
            { "do": "start_provider", "at_ms": 0, "host": "A" },
            { "do": "start_provider", "at_ms": 0, "host": "B" }
        ]
    }))
    .expect("a valid scenario")
}

const REPLAY: &str = "cpsim run target/cpsim/found/toy-COMP-3.json";

/// A failing certification: COMP-3 broken (with a minimal case), TID-4 (a
/// SHOULD rule) broken without one, DATA-3 never exercised, most platform
/// rules not exercised at all.
fn certification() -> Certification {
    let trace = story();
    let step = blamed_step(&trace);
    let violation = made_up_violation(&trace, step);
    let rules: Vec<RuleStat> = RuleId::all()
        .map(|id| {
            let r = id.rule();
            let provider = r.binds == cpsim_sim::rules::Binds::Provider;
            RuleStat {
                id,
                exercised: if id == id::DATA_3 || (!provider && id.index() % 2 == 0) {
                    0
                } else {
                    12
                },
                violations: match id {
                    x if x == id::COMP_3 => 3,
                    x if x == id::TID_4 => 1,
                    _ => 0,
                },
            }
        })
        .collect();
    let unexercised = vec![id::DATA_3];
    let findings = vec![
        Finding {
            fingerprint: "COMP-3/SEND_BUFFERS/pended".into(),
            violation,
            cases: 3,
            first_case: 4,
            root_cause: true,
            minimal: Some(MinimalCase {
                scenario: scenario(),
                trace,
                saved_to: Some(PathBuf::from("target/cpsim/found/toy-COMP-3.json")),
                save_error: None,
                replay: REPLAY.into(),
                deterministic: Some(true),
                recurred: true,
            }),
        },
        Finding {
            fingerprint: "TID-4/ADD_TRANSPORT_ID/sync".into(),
            violation: Violation {
                rule: id::TID_4,
                host: "B".into(),
                instance: Some("B#1".into()),
                callback: Some("ADD_TRANSPORT_ID".into()),
                step: 40,
                at: Nanos::from_millis(200),
                message: "ADD of 25.2.1.1, already held by A#1, succeeded".into(),
            },
            cases: 1,
            first_case: 9,
            root_cause: true,
            minimal: None,
        },
    ];
    Certification {
        provider: "toy".into(),
        verdict: Certification::compute_verdict(&rules, &unexercised, false),
        strict: false,
        seed: 7,
        cases: 12,
        budget: 12,
        lanes: cpsim_certify::certify::LANES,
        partition: None,
        incomplete: None,
        elapsed_s: 1.25,
        rerun: "cpsim certify --provider toy --seed 7 --cases 12".into(),
        replayed: Vec::new(),
        replay_only: false,
        rules,
        findings,
        unexercised,
        coverage: vec![1, 2, 3],
        stalls: 0,
    }
}

fn written() -> (Certification, tempfile::TempDir) {
    let cert = certification();
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: write_all creates it.
    report::write_all(&cert, &dir.path().join("out")).unwrap();
    (cert, dir)
}

fn read(dir: &tempfile::TempDir, name: &str) -> String {
    std::fs::read_to_string(dir.path().join("out").join(name)).unwrap()
}

// ---------------------------------------------------------------------------
// xmllint

/// Jenkins xUnit's junit-10.xsd: `CPSIM_JUNIT_XSD`, or where
/// `ci/junit-schema.sh` puts it (`<target>/junit-schema/junit-10.xsd`, the
/// target folder being three levels above this test binary).
fn xsd() -> PathBuf {
    if let Some(p) = std::env::var_os("CPSIM_JUNIT_XSD") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).expect("target/debug/deps/reports-…");
    let p = target.join("junit-schema/junit-10.xsd");
    assert!(
        p.is_file(),
        "the JUnit schema is missing: {} does not exist.\n\
         junit.xml is validated against the schema CI servers use (the Jenkins xUnit \
         plugin's junit-10.xsd). Get it with `bash ci/junit-schema.sh` (it takes it from \
         pytest's source distribution on PyPI), or set CPSIM_JUNIT_XSD to a copy.",
        p.display()
    );
    p
}

/// Runs xmllint; a machine without it fails the test with instructions.
fn xmllint(args: &[&str], file: &Path) -> std::process::Output {
    Command::new("xmllint")
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "xmllint could not be run ({e}): it is needed to validate junit.xml against \
                 junit-10.xsd. Install it with `apt-get install -y libxml2-utils`."
            )
        })
}

fn validate(file: &Path) -> Result<(), String> {
    let schema = xsd();
    let out = xmllint(&["--noout", "--schema", schema.to_str().unwrap()], file);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

// ---------------------------------------------------------------------------
// report.json

#[test]
fn json_report_has_every_key_and_one_entry_per_rule() {
    let (cert, dir) = written();
    let v: serde_json::Value = serde_json::from_str(&read(&dir, "report.json")).unwrap();
    for key in [
        "verdict",
        "provider",
        "strict",
        "seed",
        "cases",
        "elapsed_s",
        "rules",
        "findings",
        "unexercised",
    ] {
        assert!(v.get(key).is_some(), "report.json lacks `{key}`");
    }
    assert_eq!(v["verdict"], "fail");
    assert_eq!(cert.verdict, Verdict::Fail);
    assert_eq!(v["provider"], "toy");
    assert_eq!(v["strict"], false);
    assert_eq!(v["seed"], 7);
    assert_eq!(v["cases"], 12);
    assert_eq!(v["elapsed_s"], 1.25);

    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), CATALOGUE.len());
    for (entry, rule) in rules.iter().zip(CATALOGUE) {
        assert_eq!(entry["id"], rule.id, "catalogue order");
        for key in ["binds", "level", "exercised", "violations"] {
            assert!(entry.get(key).is_some(), "{} lacks `{key}`", rule.id);
        }
        let binds = entry["binds"].as_str().unwrap();
        assert!(binds == "P" || binds == "C", "{binds}");
    }
    let comp3 = &rules[id::COMP_3.index()];
    assert_eq!(
        (&comp3["binds"], &comp3["level"], &comp3["violations"]),
        (&"P".into(), &"MUST".into(), &3.into())
    );
    assert_eq!(rules[id::LIFE_3.index()]["binds"], "C");

    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    let f = &findings[0];
    for key in [
        "fingerprint",
        "rule",
        "message",
        "host",
        "instance",
        "callback",
        "step",
        "at",
        "cases",
        "replay",
        "scenario",
        "deterministic",
    ] {
        assert!(f.get(key).is_some(), "a finding lacks `{key}`");
    }
    assert_eq!(f["rule"], "COMP-3");
    assert_eq!(f["replay"], REPLAY);
    assert_eq!(f["deterministic"], true);
    assert_eq!(f["step"], cert.findings[0].violation.step);
    assert_eq!(findings[1]["replay"], serde_json::Value::Null);
    assert_eq!(v["unexercised"], serde_json::json!(["DATA-3"]));
}

// ---------------------------------------------------------------------------
// junit.xml

#[test]
fn junit_xml_validates_and_has_one_case_per_rule() {
    let (cert, dir) = written();
    let path = dir.path().join("out/junit.xml");
    validate(&path).unwrap_or_else(|e| panic!("junit.xml does not validate:\n{e}"));

    let xml = read(&dir, "junit.xml");
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.test_suites.len(), 1);
    let suite = &parsed.test_suites[0];
    assert_eq!(suite.name.as_str(), "toy");
    assert_eq!(suite.test_cases.len(), CATALOGUE.len());
    for (case, rule) in suite.test_cases.iter().zip(CATALOGUE) {
        assert_eq!(case.name.as_str(), rule.id);
        assert_eq!(case.classname.as_ref().unwrap().as_str(), "cpsim.toy");
    }
    let case = |id: RuleId| &suite.test_cases[id.index()].status;
    use quick_junit::{NonSuccessKind, TestCaseStatus as S};

    // The MUST violation: headline as message, diagram and replay as body.
    let S::NonSuccess {
        kind: NonSuccessKind::Failure,
        message: Some(message),
        ty: Some(ty),
        description: Some(body),
        ..
    } = case(id::COMP_3)
    else {
        panic!("COMP-3 is not a failure: {:?}", case(id::COMP_3));
    };
    assert_eq!(message.as_str(), cert.findings[0].violation.headline());
    assert_eq!(ty.as_str(), "MUST");
    assert!(body.as_str().contains(REPLAY), "{}", body.as_str());
    assert!(body.as_str().contains("A:platform"), "{}", body.as_str());
    assert!(body.as_str().contains("[COMP-3]"), "{}", body.as_str());

    // The SHOULD violation without --strict: a pass that says why in system-out.
    assert!(matches!(case(id::TID_4), S::Success { .. }));
    let out = suite.test_cases[id::TID_4.index()]
        .system_out
        .as_ref()
        .expect("the warning is in system-out");
    assert!(out.as_str().starts_with("warning: SHOULD rule TID-4"));

    // The reachable MUST rule nobody exercised.
    let S::NonSuccess {
        message: Some(m), ..
    } = case(id::DATA_3)
    else {
        panic!("DATA-3 is not a failure");
    };
    assert_eq!(m.as_str(), "never exercised");

    // Not exercised, not required: skipped. Exercised and kept: passed.
    assert!(matches!(case(id::LIFE_3), S::Skipped { .. }));
    assert!(matches!(case(id::LIFE_1), S::Success { .. }));
    assert_eq!(suite.failures, 2);

    // The counts are the run's: per rule in system-out, totals on the suite.
    let out = |id: RuleId| {
        suite.test_cases[id.index()]
            .system_out
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default()
    };
    assert_eq!(out(id::LIFE_1), "exercised in 12 of 12 cases; broken in 0");
    assert_eq!(out(id::COMP_3), "exercised in 12 of 12 cases; broken in 3");
    assert!(out(id::TID_4).contains("exercised in 12 of 12 cases; broken in 1"));
    let skipped = suite
        .test_cases
        .iter()
        .filter(|c| matches!(c.status, S::Skipped { .. }))
        .count();
    assert_eq!(suite.tests, CATALOGUE.len());
    assert!(xml.contains(&format!(r#" skipped="{skipped}""#)));
    // Only the attributes junit-10.xsd declares (the schema check above
    // would refuse others; this names the two CI servers tripped on).
    assert!(!xml.contains("assertions="));
    let root = xml.lines().find(|l| l.starts_with("<testsuites")).unwrap();
    assert!(!root.contains("skipped="), "{root}");
}

#[test]
fn strict_should_violation_is_a_failure() {
    let mut cert = certification();
    cert.strict = true;
    let xml = report::junit::to_string(&cert).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let status = &parsed.test_suites[0].test_cases[id::TID_4.index()].status;
    let quick_junit::TestCaseStatus::NonSuccess { ty: Some(ty), .. } = status else {
        panic!("TID-4 under --strict is not a failure: {status:?}");
    };
    assert_eq!(ty.as_str(), "SHOULD");
}

#[test]
fn platform_rule_violation_is_a_failure() {
    let mut cert = certification();
    let mut f = cert.findings[0].clone();
    f.violation.rule = id::SESS_2;
    f.fingerprint = "SESS-2/TRANSITION_ACTIVE/sync".into();
    cert.findings.push(f);
    let xml = report::junit::to_string(&cert).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let status = &parsed.test_suites[0].test_cases[id::SESS_2.index()].status;
    let quick_junit::TestCaseStatus::NonSuccess {
        ty: Some(ty),
        message: Some(m),
        ..
    } = status
    else {
        panic!("SESS-2 is not a failure: {status:?}");
    };
    assert_eq!(ty.as_str(), "platform-bug");
    assert!(m.as_str().starts_with("platform bug: SESS-2"));
}

/// A saved failure that cannot be replayed fails the run; the JUnit report
/// says so in a test case of its own (no rule's test case shows it), and the
/// report still validates, whatever the file's error quotes.
#[test]
fn junit_an_unreadable_saved_failure_is_a_failure_not_a_green_report() {
    let mut cert = certification();
    cert.verdict = Verdict::Fail;
    let mut cert_before = cert.clone();
    cert_before.replayed.clear();
    cert.replayed = vec![Replayed {
        file: PathBuf::from("cpsim-regressions/x.json"),
        violations: Vec::new(),
        error: Some("cpsim-regressions/x.json:1:9: unknown field `a\u{1}]]>&<`".into()),
    }];
    let before = report::junit::to_string(&cert_before).unwrap();
    let before = quick_junit::Report::deserialize_from_str(&before).unwrap();
    let xml = report::junit::to_string(&cert).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let suite = &parsed.test_suites[0];
    assert_eq!(suite.failures, before.test_suites[0].failures + 1, "{xml}");
    let case = suite
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "saved-failures")
        .expect("a test case for the saved failures");
    let quick_junit::TestCaseStatus::NonSuccess {
        ty: Some(ty),
        message: Some(m),
        ..
    } = &case.status
    else {
        panic!("not a failure: {:?}", case.status);
    };
    assert_eq!(ty.as_str(), "saved-failure-unreadable");
    assert!(
        m.as_str().contains("cpsim-regressions/x.json"),
        "{}",
        m.as_str()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, &xml).unwrap();
    validate(&file).unwrap();
}

/// The validation is real: junit-10.xsd refuses what CI servers refuse,
/// among them the two attributes an earlier cpsim wrote.
#[test]
fn the_schema_rejects_malformed_junit() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, xml: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, xml).unwrap();
        validate(&p)
    };
    let doc = |root: &str, case: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="cpsim" tests="1" failures="1" errors="0"{root}>
  <testsuite name="toy" tests="1" failures="1" errors="0" skipped="0">
    <properties><property name="seed" value="1"/></properties>
    {case}
  </testsuite>
</testsuites>
"#
        )
    };
    let ok_case = r#"<testcase name="LIFE-1" classname="cpsim.toy"><failure message="m" type="MUST">body</failure><system-out>out</system-out></testcase>"#;
    // The baseline is valid, so each rejection below is about its one defect.
    check("ok.xml", &doc("", ok_case))
        .unwrap_or_else(|e| panic!("a valid document was rejected:\n{e}"));
    for (name, xml) in [
        ("skipped-on-testsuites.xml", doc(r#" skipped="0""#, ok_case)),
        (
            "assertions-on-testcase.xml",
            doc(
                "",
                &ok_case.replace("<testcase ", r#"<testcase assertions="3" "#),
            ),
        ),
        (
            "no-name.xml",
            doc("", r#"<testcase classname="cpsim.toy"/>"#),
        ),
        (
            "unknown-element.xml",
            doc("", r#"<testcase name="x"><verdict/></testcase>"#),
        ),
        (
            "property-without-value.xml",
            doc("", ok_case).replace(r#" value="1""#, ""),
        ),
        (
            "suite-without-counts.xml",
            doc("", ok_case).replace(r#" tests="1" failures="1" errors="0" skipped"#, " skipped"),
        ),
    ] {
        assert!(
            check(name, &xml).is_err(),
            "the schema accepted an invalid document ({name}):\n{xml}"
        );
    }
}

// ---------------------------------------------------------------------------
// report.html

#[test]
fn html_report_is_self_contained_and_draws_the_violation() {
    let (cert, dir) = written();
    let html = read(&dir, "report.html");
    assert!(html.contains("<svg"), "no inline diagram");
    // No URL at all, but the SVG namespace of each diagram.
    let svg_ns = "http://www.w3.org/2000/svg";
    let without_ns = html.replace(&format!("xmlns=\"{svg_ns}\""), "");
    assert!(
        !without_ns.contains("http://") && !without_ns.contains("https://"),
        "report.html refers to the network"
    );
    assert_eq!(
        html.matches("http://").count(),
        html.matches("<svg").count(),
        "every http:// is an SVG namespace"
    );
    for banned in ["<script", "<link", "@import", "url(", "src="] {
        assert!(!html.contains(banned), "report.html contains `{banned}`");
    }
    // The violating rule is named inside the diagram.
    let start = html.find("<svg").unwrap();
    let end = start + html[start..].find("</svg>").unwrap();
    assert!(
        html[start..end].contains("COMP-3"),
        "the diagram does not name the rule"
    );
    // Everything from the certification is escaped.
    assert!(!html.contains("<S_OK>"));
    assert!(html.contains("&lt;S_OK&gt; &amp; &quot;synchronously&quot;"));
    // The pieces a reader needs.
    assert!(html.contains(">FAIL<"));
    assert!(html.contains(REPLAY));
    assert!(html.contains(id::COMP_3.rule().fix.split('.').next().unwrap()));
    assert_eq!(
        html.matches("<tr class=").count(),
        CATALOGUE.len() + cert.unexercised.len()
    );
}

// ---------------------------------------------------------------------------
// diagrams

#[test]
fn text_diagram_of_the_seeded_story() {
    let trace = story();
    let step = blamed_step(&trace);
    insta::assert_snapshot!("story_around_send", diagram::text(&trace, Some(step), 24));
}

#[test]
fn text_diagram_of_a_violation() {
    let trace = story();
    let v = made_up_violation(&trace, blamed_step(&trace));
    let text = diagram::text_for(&trace, &v, 12);
    insta::assert_snapshot!("story_violation", text);
}

#[test]
fn text_diagram_cuts_to_the_window() {
    let trace = story();
    let step = blamed_step(&trace);
    let text = diagram::text(&trace, Some(step), 10);
    let lines: Vec<&str> = text.lines().collect();
    // Header, two cuts, ten events.
    assert_eq!(lines.len(), 13, "{text}");
    let cuts: Vec<&&str> = lines.iter().filter(|l| l.contains(" events …")).collect();
    assert_eq!(cuts.len(), 2, "{text}");
    let shown = 10;
    let total = trace.events.len();
    let counted: usize = cuts
        .iter()
        .map(|l| {
            let n = l.split("… ").nth(1).unwrap().split(' ').next().unwrap();
            n.parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(counted + shown, total, "{text}");
    assert!(text.lines().any(|l| l.starts_with(">>")), "{text}");
    // The whole trace with no limit, no cut.
    let all = diagram::text(&trace, None, 0);
    assert_eq!(all.lines().count(), total + 1);
    assert!(!all.contains('…'));
}

/// The trace with a COMP-3 violation event recorded right after the blamed
/// arrow, the way the engine records what it detects.
fn story_with_recorded_violation() -> (Trace, u64) {
    let mut trace = story();
    let blamed = blamed_step(&trace);
    let at = trace.events.iter().position(|e| e.step == blamed).unwrap();
    let mut ev = trace.events[at].clone();
    ev.what = What::Violation {
        rule: id::COMP_3,
        message: "completion routine called for a call that had returned synchronously".into(),
    };
    trace.events.insert(at + 1, ev);
    for (i, e) in trace.events.iter_mut().enumerate() {
        e.step = i as u64 + 1;
    }
    (trace, blamed + 1)
}

#[test]
fn a_recorded_violation_tags_the_arrow_before_it() {
    let (trace, step) = story_with_recorded_violation();
    let text = diagram::text(&trace, Some(step), 8);
    let arrow = text.lines().find(|l| l.starts_with(">>")).expect(&text);
    assert!(
        arrow.contains("[COMP-3] complete SEND_BUFFERS #8: S_OK"),
        "{text}"
    );
    let row = text.lines().find(|l| l.starts_with("!!")).expect(&text);
    assert!(row.contains(&format!(" {step} ")), "{text}");
    assert!(
        row.contains("!! COMP-3 completion routine called"),
        "{text}"
    );
    // Given as a Violation, it is not shown twice.
    let mut v = made_up_violation(&trace, step);
    v.message = "completion routine called for a call that had returned synchronously".into();
    let for_v = diagram::text_for(&trace, &v, 8);
    assert_eq!(for_v.matches("!! COMP-3").count(), 1, "{for_v}");
    assert_eq!(for_v, text);
    // Highlighting the arrow itself finds the rule in the event after it.
    let from_arrow = diagram::text(&trace, Some(step - 1), 8);
    assert!(
        from_arrow.contains("[COMP-3] complete SEND_BUFFERS"),
        "{from_arrow}"
    );
}

#[test]
fn an_empty_trace_draws_without_panicking() {
    let empty = Trace::default();
    assert_eq!(diagram::text(&empty, Some(3), 5).lines().count(), 1);
    assert!(diagram::svg(&empty, None, 0).contains("</svg>"));
}

#[test]
fn svg_diagram_is_well_formed_and_marks_the_arrow() {
    let trace = story();
    let v = made_up_violation(&trace, blamed_step(&trace));
    let svg = diagram::svg_for(&trace, &v, 30);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.contains("COMP-3"));
    assert!(svg.contains("&lt;S_OK&gt;"));
    assert!(svg.contains("#c81e1e"), "the violating arrow is red");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.svg");
    std::fs::write(&p, &svg).unwrap();
    let out = xmllint(&["--noout"], &p);
    assert!(
        out.status.success(),
        "the SVG is not well-formed XML:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without a focus, plain `svg` draws the first events and no red.
    let plain = diagram::svg(&trace, None, 10);
    assert!(plain.contains("events …"));
    assert!(!plain.contains("#fde8e8"), "no row is highlighted");
}

// ---------------------------------------------------------------------------
// Reports of real certifications

/// Every "seen in X of Y case(s)" of an HTML report, as (X, Y).
fn seen_counts(html: &str) -> Vec<(u64, u64)> {
    html.match_indices("seen in ")
        .map(|(i, _)| {
            let words: Vec<&str> = html[i + 8..].splitn(4, ' ').collect();
            assert_eq!(words[1], "of", "{}", &html[i..i + 40]);
            (words[0].parse().unwrap(), words[2].parse().unwrap())
        })
        .collect()
}

/// Checks the three reports of `cert` against the run and each other.
fn check_counts(cert: &Certification) {
    let dir = tempfile::tempdir().unwrap();
    report::write_all(cert, dir.path()).unwrap();
    validate(&dir.path().join("junit.xml"))
        .unwrap_or_else(|e| panic!("junit.xml does not validate:\n{e}"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let cases = cert.cases;
    assert_eq!(json["cases"], cases);
    // Findings: seen in at least one and at most every case, the same in both.
    let findings = json["findings"].as_array().unwrap();
    let seen = seen_counts(&html);
    assert_eq!(seen.len(), findings.len());
    for (f, (x, y)) in findings.iter().zip(&seen) {
        assert_eq!(*y, cases);
        assert_eq!(f["cases"], *x);
        assert!((1..=cases).contains(x), "seen in {x} of {cases} cases");
    }
    // Rules: counts of cases, the same in JSON, HTML and JUnit.
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let suite = &parsed.test_suites[0];
    for (r, case) in json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&suite.test_cases)
    {
        let (ex, vi) = (
            r["exercised"].as_u64().unwrap(),
            r["violations"].as_u64().unwrap(),
        );
        assert!(vi <= ex && ex <= cases, "{r}");
        let row = format!("<td class=\"num\">{ex}</td><td class=\"num\">{vi}</td>");
        assert!(html.contains(&row), "{} {row}", r["id"]);
        let out = case.system_out.as_ref().unwrap().as_str();
        assert!(
            out.contains(&format!(
                "exercised in {ex} of {cases} case{}; broken in {vi}",
                if cases == 1 { "" } else { "s" }
            )),
            "{}: {out}",
            r["id"]
        );
    }
}

#[test]
fn comp_3_reports_of_a_real_run_validate_and_count_cases_as_the_run_did() {
    let subject = cpsim_providers::registry()
        .subject("broken-comp-3")
        .unwrap();
    let cfg = |dir: Option<PathBuf>| cpsim_certify::Config {
        cases: 64,
        seed: Some(5),
        regressions: dir,
        ..cpsim_certify::Config::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let cert = cpsim_certify::certify_subject(&subject, cfg(Some(dir.path().to_path_buf())));
    assert_eq!(cert.verdict, Verdict::Fail);
    assert!(
        cert.findings.iter().any(|f| f.cases > 1),
        "a finding seen in several cases"
    );
    check_counts(&cert);

    // Replayed saved failures alone: the counts are of those cases.
    let replay = cpsim_certify::certify_subject(&subject, cfg(Some(dir.path().to_path_buf())));
    assert!(replay.replay_only);
    check_counts(&replay);
    let html = report::html::to_string(&replay);
    assert!(
        html.contains("<dt>saved cases replayed</dt>"),
        "the count says what it counts"
    );
    assert!(html.contains("still breaks COMP-3"));
    let json = report::json::to_value(&replay);
    assert_eq!(json["replay_only"], true);
    assert_eq!(
        json["replayed"].as_array().unwrap().len() as u64,
        replay.cases
    );
}

#[test]
fn tid_4_warning_report_of_a_real_run_validates() {
    let subject = cpsim_providers::registry().subject("broken-tid-4").unwrap();
    let cert = cpsim_certify::certify_subject(
        &subject,
        cpsim_certify::Config {
            cases: 96,
            seed: Some(2),
            regressions: None,
            ..cpsim_certify::Config::default()
        },
    );
    assert_eq!(cert.verdict, Verdict::NonStrict);
    check_counts(&cert);
}
