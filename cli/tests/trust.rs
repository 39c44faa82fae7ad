//! Trust at any size, through the binary: sharded certification and
//! `cpsim merge`, Ctrl-C, saved scenarios that replay, directory walks with
//! symbolic links, scenarios without `expect`.

#[cfg(unix)]
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
#[cfg(unix)]
use std::process::Stdio;

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

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// What must be equal between the unsharded run and the merged shards.
fn essence(r: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "verdict": r["verdict"], "cases": r["cases"], "budget": r["budget"],
        "rules": r["rules"], "findings": r["findings"], "unexercised": r["unexercised"],
        "complete": r["complete"], "summary": r["summary"],
    })
}

#[test]
fn partitioned_certification_merges_into_the_unsharded_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let regs = d("regs");
    let base = [
        "certify",
        "--provider",
        "broken-tid-4",
        "--cases",
        "96",
        "--seed",
        "3",
        "--regressions",
        &regs,
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cpsim(&args)
    };
    let (code, out, _) = run(with(&["--report-dir", &d("all")]));
    assert_eq!(code, 0, "{out}"); // TID-4 is a SHOULD rule: non-strict passes
    let mut shards = Vec::new();
    for k in 1..=4 {
        let p = format!("{k}/4");
        let (code, out, _) = run(with(&[
            "--partition",
            &p,
            "--report-dir",
            &d(&format!("s{k}")),
        ]));
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("shard {p}")), "{out}");
        shards.push(d(&format!("s{k}")));
    }
    let mut args = vec!["merge".to_string()];
    args.extend(shards.iter().cloned());
    args.extend(["--report-dir".to_string(), d("merged")]);
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{out}{err}");
    let (all, merged) = (
        report(&dir.path().join("all")),
        report(&dir.path().join("merged")),
    );
    assert_eq!(essence(&all), essence(&merged));
    assert!(!all["findings"].as_array().unwrap().is_empty());
    for f in ["junit.xml", "report.html"] {
        assert!(dir.path().join("merged").join(f).exists());
    }
    // Every saved scenario replays.
    for f in std::fs::read_dir(dir.path().join("regs")).unwrap() {
        let f = f.unwrap().path();
        let (code, out, err) = cpsim(&["replay", f.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {out}{err}", f.display());
        assert!(out.contains("reproduces as expected"));
    }

    // A shard missing: incomplete, and not a pass.
    let (code, out, _) = cpsim(&["merge", &shards[0], &shards[1], &shards[3]]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("INCOMPLETE") && out.contains("3/4"), "{out}");
    // A shard given twice, or not a report: bad input.
    let (code, _, err) = cpsim(&["merge", &shards[0], &shards[0]]);
    assert_eq!(code, 2);
    assert!(err.contains("twice"), "{err}");
    let (code, _, err) = cpsim(&["merge", &regs]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn bad_partitions_are_refused() {
    for p in ["0/4", "5/4", "1/17", "x", "2-4"] {
        let (code, _, err) = cpsim(&["certify", "--provider", "reference", "--partition", p]);
        assert_eq!(code, 2, "{p}: {err}");
        assert!(
            err.contains("partition") || err.contains("shard"),
            "{p}: {err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn sigint_stops_certification_with_a_summary_and_incomplete_reports_and_exit_130() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("r");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpsim"))
        .args(["certify", "--provider", "reference", "--cases", "100000000"])
        .arg("--report-dir")
        .arg(&reports)
        .arg("--regressions")
        .arg(dir.path().join("regs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The seed comes first, before any case runs (no --seed: from the clock).
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("certifying reference: seed "), "{first}");
    let seed: u64 = first["certifying reference: seed ".len()..]
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("INCOMPLETE: interrupted after"), "{rest}");
    assert!(rest.contains(&format!("--seed {seed}")), "{rest}");
    let r = report(&reports);
    assert_eq!(r["complete"], false);
    assert_eq!(r["seed"], seed);
    let cases = r["cases"].as_u64().unwrap();
    assert!(cases > 0 && cases < 100_000_000);
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(junit.contains("run-complete") && junit.contains("incomplete"));
}

#[test]
fn crash_1_in_a_scenario_without_expect_fails_and_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("no-expect.json");
    std::fs::write(
        &f,
        r#"{
  "version": 1,
  "name": "no expect",
  "hosts": ["A", "B"],
  "provider": {"builtin": "broken-crash-1"},
  "steps": [
    {"do": "start_provider", "at_ms": 0, "host": "A"},
    {"do": "start_provider", "at_ms": 0, "host": "B"},
    {"do": "listen", "at_ms": 10, "host": "B", "on": true},
    {"do": "send", "at_ms": 200, "from": "A", "to": "B", "family": "v6", "bytes": 64}
  ]
}"#,
    )
    .unwrap();
    let (code, out, _) = cpsim(&["run", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL") && out.contains("CRASH-1"), "{out}");
    assert!(out.contains("trace of"), "{out}");
}

#[cfg(unix)]
#[test]
fn run_walks_links_without_looping_and_runs_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("d");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let story =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/stories/two-hosts-traffic.json");
    std::fs::copy(&story, root.join("a.json")).unwrap();
    std::fs::copy(&story, root.join("sub/b.json")).unwrap();
    std::os::unix::fs::symlink("..", root.join("sub/loop")).unwrap();
    std::os::unix::fs::symlink("../a.json", root.join("sub/again.json")).unwrap();
    let (code, out, err) = cpsim(&[
        "run",
        root.to_str().unwrap(),
        root.join("a.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("pass")).count(),
        2,
        "{out}"
    );
    assert!(out.contains("2 passed, 0 failed"), "{out}");
}
