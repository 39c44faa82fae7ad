//! The `cpsim` binary: commands and exit codes (0 pass, 1 failure, 2 bad input).

use std::process::Command;

fn cpsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cpsim"))
        .args(args)
        .output()
        .expect("cpsim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn providers_lists_correct_and_broken_ones() {
    let (code, out, _) = cpsim(&["providers"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l == "reference"));
    assert!(out.lines().any(|l| l == "broken-comp-3"));
}

#[test]
fn rules_json_is_the_catalogue() {
    let (code, out, _) = cpsim(&["rules", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), cpsim_sim::CATALOGUE.len());
    for r in arr {
        for k in ["id", "binds", "level", "source", "text"] {
            assert!(r.get(k).is_some(), "missing {k} in {r}");
        }
        assert!(r["binds"] == "P" || r["binds"] == "C");
    }
}

#[test]
fn explain_names_the_rule_and_the_fix() {
    let (code, out, _) = cpsim(&["explain", "comp-3"]);
    assert_eq!(code, 0);
    assert!(out.contains("COMP-3") && out.contains("How to fix"));
    let (code, _, err) = cpsim(&["explain", "NOPE-9"]);
    assert_eq!(code, 2);
    assert!(err.contains("NOPE-9"));
}

#[test]
fn certify_exit_codes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let regs = dir.path().join("regs");
    let r = regs.to_str().unwrap();
    let (code, out, _) = cpsim(&[
        "certify",
        "--provider",
        "reference",
        "--cases",
        "64",
        "--seed",
        "4",
        "--report-dir",
        d,
        "--regressions",
        r,
    ]);
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(
        report["rules"].as_array().unwrap().len(),
        cpsim_sim::CATALOGUE.len()
    );
    for k in ["seed", "cases", "elapsed_s"] {
        assert!(report.get(k).is_some());
    }
    let (code, out, _) = cpsim(&[
        "certify",
        "--provider",
        "broken-life-5",
        "--cases",
        "32",
        "--seed",
        "4",
        "--report-dir",
        d,
        "--regressions",
        r,
    ]);
    assert_eq!(code, 1, "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "fail");
    let life5 = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "LIFE-5")
        .unwrap()
        .clone();
    assert!(life5["violations"].as_u64().unwrap() > 0);
    assert!(out.contains("cpsim replay"), "{out}");
    let (code, _, err) = cpsim(&["certify", "--provider", "no-such-provider"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-provider"));
    let (code, _, _) = cpsim(&["certify"]);
    assert_eq!(code, 2);
}

#[test]
fn run_and_replay_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{ \"version\": 1, \"name\": 3 }").unwrap();
    let (code, out, err) = cpsim(&["run", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("bad.json"), "{err}");
    let (code, _, _) = cpsim(&["replay", dir.path().join("missing.json").to_str().unwrap()]);
    assert_eq!(code, 2);
}
