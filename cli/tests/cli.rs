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

/// `cpsim run` notes on stderr every step that did nothing (naming the file,
/// the step's number and what it is), and the exit code stays the run's;
/// a scenario whose every step acts gets no note.
#[test]
fn run_notes_the_steps_that_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = |name: &str, steps: &str| {
        let p = dir.path().join(format!("{name}.json"));
        std::fs::write(
            &p,
            format!(
                r#"{{"version": 1, "name": "{name}", "hosts": ["a", "b"],
                    "provider": {{"name": "reference"}}, "steps": [{steps}],
                    "expect": {{"violations": []}}}}"#
            ),
        )
        .unwrap();
        p
    };
    let idle = scenario(
        "idle",
        r#"{"do": "start_provider", "at_ms": 0, "host": "a"},
           {"do": "start_provider", "at_ms": 50, "host": "a"},
           {"do": "dormant", "at_ms": 100, "host": "b"},
           {"do": "heal", "at_ms": 110},
           {"do": "stop_provider", "at_ms": 120, "host": "b"}"#,
    );
    let (code, out, err) = cpsim(&["run", idle.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let f = idle.display();
    for line in [
        format!("cpsim: note: {f}: step 2 (`start_provider` at 50 ms on host a): a's provider is already running; the step does nothing"),
        format!("cpsim: note: {f}: step 3 (`dormant` at 100 ms on host b): b's provider is not running; the step does nothing"),
        format!("cpsim: note: {f}: step 4 (`heal` at 110 ms): no partition is in place; the step does nothing"),
        format!("cpsim: note: {f}: step 5 (`stop_provider` at 120 ms on host b): b's provider is not running; the step does nothing"),
    ] {
        assert!(err.lines().any(|l| l == line), "missing {line:?} in:\n{err}");
    }
    assert_eq!(err.matches("note:").count(), 4, "{err}");
    let busy = scenario(
        "busy",
        r#"{"do": "start_provider", "at_ms": 0, "host": "a"},
           {"do": "start_provider", "at_ms": 0, "host": "b"},
           {"do": "partition", "at_ms": 100, "a": "a", "b": "b"},
           {"do": "heal", "at_ms": 110},
           {"do": "stop_provider", "at_ms": 120, "host": "b"}"#,
    );
    let (code, out, err) = cpsim(&["run", busy.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("note:"), "{err}");
}

/// `cpsim run --verbose` prints a passing scenario's whole trace: a run of
/// well over 40 events (one story of traffic between two hosts) shows its
/// last step, with no "… N events …" line leaving the middle or the end out.
/// Without `--verbose` a passing run prints no trace at all.
#[test]
fn run_verbose_prints_the_whole_trace_of_a_passing_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("long.json");
    std::fs::write(
        &p,
        r#"{"version": 1, "name": "long", "hosts": ["a", "b"],
            "provider": {"name": "reference"},
            "steps": [{"do": "start_provider", "at_ms": 0, "host": "a"},
                      {"do": "start_provider", "at_ms": 0, "host": "b"},
                      {"do": "listen", "at_ms": 10, "host": "b", "on": true},
                      {"do": "send_many", "at_ms": 100, "from": "a", "to": "b",
                       "bytes": 64, "count": 20, "every_ms": 1}],
            "expect": {"violations": [], "delivered": 20}}"#,
    )
    .unwrap();
    let (code, out, err) = cpsim(&["run", "--verbose", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<u64>().is_ok())
        })
        .collect();
    assert!(rows.len() > 100, "only {} trace rows:\n{out}", rows.len());
    assert!(
        !out.contains(" events \u{2026}"),
        "the trace was cut:\n{out}"
    );
    assert!(
        out.contains("provider stopped"),
        "the end is missing:\n{out}"
    );
    let (code, out, _) = cpsim(&["run", p.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(!out.contains("trace of"), "{out}");
}

/// Runs `cpsim` in `dir`, giving up (and failing the test) after `secs`:
/// bad input must be refused, never waited on.
fn cpsim_in(dir: &std::path::Path, args: &[&str], secs: u64) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpsim"))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cpsim runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cpsim {args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A named pipe or a device given where cpsim reads a file (a scenario, a
/// provider configuration, a shard's report) is refused at once, naming the
/// path and what it is: opening a pipe with no writer would wait for ever,
/// and /dev/zero never ends.
#[cfg(unix)]
#[test]
fn pipes_and_devices_given_as_input_files_are_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.json");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let shard = dir.path().join("shard");
    std::fs::create_dir(&shard).unwrap();
    assert!(Command::new("mkfifo")
        .arg(shard.join("report.json"))
        .status()
        .unwrap()
        .success());
    let d = dir.path();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "pipe.json"],
            "pipe.json: this is a named pipe (FIFO), not a scenario file",
        ),
        (
            &["run", "."],
            "pipe.json: this is a named pipe (FIFO), not a scenario file",
        ),
        (
            &["replay", "pipe.json"],
            "pipe.json: this is a named pipe (FIFO), not a scenario file",
        ),
        (
            &["run", "/dev/zero"],
            "/dev/zero: this is a device, not a scenario file",
        ),
        (
            &["merge", "shard"],
            "shard/report.json: this is a named pipe (FIFO), not a cpsim report.json",
        ),
        (
            &["merge", "/dev/zero"],
            "/dev/zero: this is a device, not a cpsim report.json",
        ),
    ];
    for (args, says) in cases {
        let (code, out, err) = cpsim_in(d, args, 30);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        let both = format!("{out}{err}");
        assert!(both.contains(says), "{args:?}: {both}");
    }
    // A provider configuration that is a pipe or a device (the module is a
    // real one, so the configuration is what is refused).
    #[cfg(feature = "c-modules")]
    {
        let lib = cpsim_c_providers::module("sample").expect("the sample module is built");
        for (cfg, says) in [
            (
                "pipe.json",
                "pipe.json: this is a named pipe (FIFO), not a provider configuration",
            ),
            (
                "/dev/zero",
                "/dev/zero: this is a device, not a provider configuration",
            ),
        ] {
            let (code, _, err) = cpsim_in(
                d,
                &[
                    "certify",
                    "--provider-lib",
                    lib.to_str().unwrap(),
                    "--provider-config",
                    cfg,
                ],
                30,
            );
            assert_eq!(code, 2, "{err}");
            assert!(err.contains(says), "{err}");
        }
    }
}

/// Where reports and saved failures go is checked before the first case:
/// a long run does not end in "cannot write", and a failure that could not
/// be saved is not lost without a word.
#[test]
fn unwritable_report_and_regressions_dirs_are_refused_before_the_first_case() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("afile"), "").unwrap();
    let d = dir.path();
    for (args, says) in [
        (
            ["--report-dir", "afile"],
            "cannot write reports to afile: afile is a file, not a directory",
        ),
        (
            ["--regressions", "afile/saved"],
            "cannot save failing cases in afile/saved (--regressions): afile is a file, not a directory",
        ),
    ] {
        let mut all = vec!["certify", "--provider", "broken-comp-3", "--cases", "16", "--seed", "1"];
        all.extend(args);
        let (code, out, err) = cpsim_in(d, &all, 60);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains(says), "{err}");
        assert!(!out.contains("provider broken-comp-3:"), "no case ran: {out}");
    }
    // A directory that can be made is not left behind by a run that saves
    // nothing.
    let (code, _, err) = cpsim_in(
        d,
        &[
            "certify",
            "--provider",
            "reference",
            "--cases",
            "16",
            "--seed",
            "1",
            "--regressions",
            "new/saved",
        ],
        60,
    );
    assert_eq!(code, 0, "{err}");
    assert!(!d.join("new").exists());
}

/// A provider with threads of its own runs in real time, so its default
/// budget is 64 cases, as `certify()` from code gives it (not 8,192 cases
/// of real time).
#[test]
fn time_1_a_real_time_provider_gets_the_real_time_default_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = cpsim_in(
        dir.path(),
        &[
            "certify",
            "--provider",
            "threaded",
            "--seed",
            "1",
            "--partition",
            "1/16",
        ],
        120,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("certifying threaded: seed 1, 64 cases, shard 1/16: 4 of them"),
        "{out}"
    );
}

/// `cpsim certify` runs one certification in a process of its own, so it
/// counts the threads a real-time provider leaves running after its stop:
/// one that starts a thread per start and never joins it fails with LIFE-8
/// alone (a normal failing certification, exit 1, not cut short).
#[test]
fn life_8_certify_fails_a_real_time_provider_leaving_a_thread_per_start() {
    if !cfg!(target_os = "linux") {
        return; // threads are counted on Linux only
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = cpsim_in(
        dir.path(),
        &[
            "certify",
            "--provider",
            "broken-life-8-thread",
            "--seed",
            "1",
            "--cases",
            "16",
            "--report-dir",
            "rep",
        ],
        300,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAILS certification (seed 1, 16 cases)"),
        "{out}"
    );
    assert!(
        out.contains("still running after every host stopped it")
            && out.contains("more than before the run"),
        "{out}"
    );
    assert!(!out.contains("INCOMPLETE"), "{out}");
    let report = std::fs::read_to_string(dir.path().join("rep/report.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["LIFE-8"], "{out}");
}

/// The correct `threaded` provider joins its worker in stop: the same count
/// finds nothing, and it passes.
#[test]
fn life_8_certify_passes_the_correct_real_time_provider_with_no_life_8() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = cpsim_in(
        dir.path(),
        &[
            "certify",
            "--provider",
            "threaded",
            "--seed",
            "3",
            "--cases",
            "32",
        ],
        300,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("LIFE-8"), "{out}");
}

/// A path through a file (`ok.json/x.json`) says which part is a file.
#[test]
fn a_path_through_a_file_names_the_file_on_the_way() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.json"), "{}").unwrap();
    let (code, out, err) = cpsim_in(dir.path(), &["run", "ok.json/x.json"], 60);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("ok.json/x.json: no such file: ok.json is a file, not a folder"),
        "{err}"
    );
}

/// A file whose name holds a newline gets one line, like any other.
#[test]
fn run_prints_one_line_per_file_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/stories/two-hosts-traffic.json"
    ))
    .unwrap();
    std::fs::write(dir.path().join("a\nb.json"), &good).unwrap();
    std::fs::write(dir.path().join("c\nd.json"), "{").unwrap();
    let (code, out, err) = cpsim_in(dir.path(), &["run", "."], 60);
    assert_eq!(code, 2, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"pass  ./a\\u{a}b.json"), "{out}");
    assert!(lines.contains(&"ERROR ./c\\u{a}d.json"), "{out}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("cpsim: ./c\\u{a}d.json:1:1: ")),
        "{err}"
    );
}

/// `--provider-config` with a built-in provider is refused (exit 2), not
/// silently ignored.
#[test]
fn provider_config_without_a_module_is_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = cpsim_in(
        dir.path(),
        &[
            "certify",
            "--provider",
            "reference",
            "--provider-config",
            "config.json",
            "--cases",
            "4",
        ],
        60,
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("--provider-config") && err.contains("--provider-lib"),
        "{err}"
    );
    assert!(!out.contains("certifying"), "{out}");
}

/// A non-strict pass (only SHOULD rules broken) exits 0 but shows each
/// finding as a warning, and says that `--strict` fails on them.
#[test]
fn tid_6_a_non_strict_pass_prints_its_warnings_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = cpsim_in(
        dir.path(),
        &[
            "certify",
            "--provider",
            "broken-tid-6",
            "--cases",
            "64",
            "--seed",
            "1",
        ],
        120,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("cpsim: WARNING: provider `broken-tid-6` passes certification (seed 1, 64 cases) with SHOULD rules broken: TID-6"),
        "{out}"
    );
    assert!(out.contains("--strict"), "{out}");
    assert!(
        out.contains("\n  replay: ") && out.contains("\nrerun: "),
        "{out}"
    );
}

/// The `rerun:` and `replay:` lines cpsim prints run as printed and give the
/// same verdict: they name the binary as it was run (a path, here), keep
/// `--strict` (a SHOULD finding fails only with it) and a non-default
/// `--regressions`, and quote paths with spaces.
#[cfg(unix)]
#[test]
fn comp_2_printed_rerun_and_replay_commands_work_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, err) = cpsim_in(
        d,
        &[
            "certify",
            "--provider",
            "broken-comp-2",
            "--strict",
            "--cases",
            "64",
            "--seed",
            "1",
            "--regressions",
            "saved here",
        ],
        120,
    );
    assert_eq!(code, 1, "{out}{err}");
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {out}"))
            .to_string()
    };
    let rerun = line("rerun: ");
    let replay = line("replay: ");
    assert!(rerun.starts_with(env!("CARGO_BIN_EXE_cpsim")), "{rerun}");
    assert!(
        rerun.contains(" --strict") && rerun.contains(" --regressions 'saved here'"),
        "{rerun}"
    );
    let sh = |cmd: &str| {
        let o = Command::new("sh")
            .args(["-c", cmd])
            .current_dir(d)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, o) = sh(&replay);
    assert_eq!(code, 0, "{replay}: {o}");
    let (code, o) = sh(&rerun);
    assert_eq!(code, 1, "{rerun} gives the same verdict: {o}");
}
