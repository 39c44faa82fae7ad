//! `ScenarioTests`: a directory of scenario files as named tests, with the
//! arguments cargo and nextest pass honoured, and libtest's lines and exit
//! codes. The real thing runs as the `scenario_dir` test target.

use cpsim_certify::ScenarioTests;
use std::path::Path;

const PASSING: &str = r#"{
  "version": 1,
  "name": "hello",
  "hosts": ["A", "B"],
  "provider": {"name": "reference"},
  "steps": [
    {"do": "start_provider", "at_ms": 0, "host": "A"},
    {"do": "start_provider", "at_ms": 0, "host": "B"},
    {"do": "listen", "at_ms": 10, "host": "B", "on": true},
    {"do": "send", "at_ms": 100, "from": "A", "to": "B", "bytes": 64}
  ],
  "expect": {"violations": [], "delivered": 1}
}"#;

/// A directory: `stories/two-hosts.json` and `rules/comp-3.json` pass,
/// `rules/wrong.json` expects a violation that does not happen, and
/// `rules/typo.json` does not load.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let put = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put("stories/two-hosts.json", PASSING);
    put(
        "rules/comp-3.json",
        &PASSING
            .replace(
                r#"{"name": "reference"}"#,
                r#"{"builtin": "broken-comp-3"}"#,
            )
            .replace(
                r#""expect": {"violations": [], "delivered": 1}"#,
                r#""expect": {"includes": ["COMP-3"]}"#,
            ),
    );
    put(
        "rules/wrong.json",
        &PASSING.replace(r#""violations": []"#, r#""violations": ["LIFE-5"]"#),
    );
    put(
        "rules/typo.json",
        &PASSING.replace(r#""at_ms": 100"#, r#""at_msec": 100"#),
    );
    put("scenario.schema.json", "{}");
    put("notes.txt", "not a scenario");
    dir
}

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let tests = ScenarioTests::new(cpsim_providers::registry())
        .dir(dir)
        .ignore("rules::wrong");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let code = tests.run_with_args(&args, &mut out);
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn each_file_is_a_test_named_after_its_path() {
    let dir = fixture();
    let (code, out) = run(dir.path(), &["--list", "--format", "terse"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "rules::comp_3: test\nrules::typo: test\nrules::wrong: test\nstories::two_hosts: test\n"
    );
    // Ignored tests alone, as nextest asks for them.
    let (_, out) = run(dir.path(), &["--list", "--format=terse", "--ignored"]);
    assert_eq!(out, "rules::wrong: test\n");
    let (_, out) = run(dir.path(), &["--list"]);
    assert!(out.ends_with("\n4 tests, 0 benchmarks\n"), "{out}");
}

#[test]
fn a_filter_selects_one_file_and_the_others_are_filtered_out() {
    let dir = fixture();
    let (code, out) = run(dir.path(), &["two_hosts"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\nrunning 1 test\n"), "{out}");
    assert!(out.contains("test stories::two_hosts ... ok"), "{out}");
    assert!(
        out.contains("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out;"),
        "{out}"
    );
    // comp_3 is a substring of rules::comp_3 only; the rule's scenario passes.
    let (code, out) = run(dir.path(), &["comp_3"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("test rules::comp_3 ... ok"), "{out}");
}

#[test]
fn by_rule_names_a_rules_file_after_its_rule_first_and_leaves_the_others() {
    let dir = fixture();
    std::fs::write(
        dir.path().join("rules/subtle-comp-10-late.json"),
        PASSING.replace(
            r#""expect": {"violations": [], "delivered": 1}"#,
            r#""expect": {}"#,
        ),
    )
    .unwrap();
    let tests = ScenarioTests::new(cpsim_providers::registry())
        .dir(dir.path())
        .by_rule();
    let names: Vec<String> = tests.tests().unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "comp_10_scenario::rules::subtle_comp_10_late",
            "comp_3_scenario::rules::comp_3",
            "rules::typo",
            "rules::wrong",
            "stories::two_hosts",
        ]
    );
    // `comp_3` selects the rule's file alone.
    let mut out = Vec::new();
    let code = tests.run_with_args(&["comp_3".to_string()], &mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\nrunning 1 test\n"), "{out}");
    assert!(
        out.contains("test comp_3_scenario::rules::comp_3 ... ok"),
        "{out}"
    );
}

#[test]
fn exact_needs_the_whole_name_and_skip_leaves_tests_out() {
    let dir = fixture();
    let (_, out) = run(dir.path(), &["two_hosts", "--exact"]);
    assert!(out.contains("running 0 tests"), "{out}");
    let (code, out) = run(dir.path(), &["--exact", "stories::two_hosts"]);
    assert_eq!(code, 0);
    assert!(out.contains("1 passed"), "{out}");
    let (_, out) = run(dir.path(), &["rules", "--skip", "typo", "--skip=comp"]);
    assert!(out.contains("running 1 test\n"), "{out}");
    assert!(out.contains("test rules::wrong ... ignored"), "{out}");
}

#[test]
fn a_failing_or_unloadable_file_fails_its_test_and_says_why() {
    let dir = fixture();
    let (code, out) = run(dir.path(), &["--include-ignored"]);
    assert_eq!(code, 101, "{out}");
    assert!(out.contains("test rules::typo ... FAILED"), "{out}");
    assert!(out.contains("test rules::wrong ... FAILED"), "{out}");
    assert!(out.contains("test stories::two_hosts ... ok"), "{out}");
    // The load error names the file, the place and what was expected.
    assert!(
        out.contains("rules/typo.json:") && out.contains("unknown field `at_msec`"),
        "{out}"
    );
    // A failed expectation, and the trace.
    assert!(out.contains("expected: expected exactly [LIFE-5]"), "{out}");
    assert!(out.contains("    trace:"), "{out}");
    assert!(
        out.contains("failures:\n    rules::typo\n    rules::wrong\n"),
        "{out}"
    );
    assert!(
        out.contains("test result: FAILED. 2 passed; 2 failed; 0 ignored;"),
        "{out}"
    );
    // Without --include-ignored, `wrong` is ignored; `typo` still fails.
    let (code, out) = run(dir.path(), &[]);
    assert_eq!(code, 101);
    assert!(out.contains("test rules::wrong ... ignored"), "{out}");
    assert!(out.contains("2 passed; 1 failed; 1 ignored;"), "{out}");
    // Quiet: one character per test.
    let (_, out) = run(dir.path(), &["-q"]);
    assert!(out.contains("\nrunning 4 tests\n.Fi.\n"), "{out}");
}

#[test]
fn bad_arguments_and_name_clashes_are_errors() {
    let dir = fixture();
    let (code, out) = run(dir.path(), &["--frobnicate"]);
    assert_eq!(code, 101);
    assert!(out.contains("unknown option `--frobnicate`"), "{out}");
    let (code, out) = run(dir.path(), &["--format", "json"]);
    assert_eq!(code, 101);
    assert!(out.contains("--format json"), "{out}");
    std::fs::write(dir.path().join("stories/two_hosts.json"), PASSING).unwrap();
    let (code, out) = run(dir.path(), &[]);
    assert_eq!(code, 101);
    assert!(
        out.contains("would both be the test `stories::two_hosts`"),
        "{out}"
    );
    let (code, out) = run(&dir.path().join("missing"), &[]);
    assert_eq!(code, 101);
    assert!(out.contains("cannot read the directory"), "{out}");
}
