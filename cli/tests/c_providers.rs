//! Provider modules written in C (`providers-under-test/c`), certified the
//! way `cpsim certify --provider-lib` does it: cases in case runners (child
//! processes of this package's `cpsim` binary), each with a network of its
//! own. The samples pass (each broken module is caught with its rule in
//! `c_rules.rs`, one test per module); a
//! module that crashes, exits, hangs, forks, floods its output or lies
//! about its clock is reported, and the harness is untouched.
#![cfg(all(unix, target_os = "linux"))]

use cpsim::isolate::{self, Isolation, Library};
use cpsim_c_providers::{module, subtle_scenario, Expect, HOSTILE, MODULES, SUBTLE};
use cpsim_certify::certify::{certify_subject, CaseSource, Config, LaneSpec, PlainSource};
use cpsim_certify::scenario::{self, ProviderRef};
use cpsim_certify::{Certification, Verdict};
use cpsim_sim::rules::id;
use cpsim_sim::{ClockMode, RuleId};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CPSIM: &str = env!("CARGO_BIN_EXE_cpsim");

fn setup() {
    isolate::set_runner(Some(PathBuf::from(CPSIM)));
    cpsim_sim::runtime::quiet_provider_panics();
}

fn lib(name: &str) -> PathBuf {
    module(name).unwrap_or_else(|| panic!("module {name} is built on unix"))
}

fn open(name: &str, config: serde_json::Value) -> Arc<Library> {
    setup();
    Library::open(&lib(name), config).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Certifies like the CLI (shape, workers), without shrinking unless asked.
fn certify_lib(l: &Arc<Library>, cases: u64, seed: u64, shrink: bool) -> Certification {
    certify_subject(
        &l.subject(),
        Config {
            cases,
            seed: Some(seed),
            regressions: None,
            shape: l.shape(),
            threads: l.workers(cases),
            shrink_steps: if shrink { l.shrink_steps() } else { 0 },
            // These tests are about isolation, not search: the plain source
            // keeps their few cases ordinary.
            source: Some(Arc::new(|spec: &LaneSpec| {
                Box::new(PlainSource::new(spec)) as Box<dyn CaseSource>
            })),
            ..Config::default()
        },
    )
}

fn certify(name: &str, config: serde_json::Value, cases: u64, seed: u64) -> Certification {
    certify_lib(&open(name, config), cases, seed, false)
}

fn rules(c: &Certification) -> Vec<RuleId> {
    c.findings.iter().map(|f| f.violation.rule).collect()
}

fn finding(c: &Certification, rule: RuleId) -> &cpsim_certify::model::Finding {
    c.findings
        .iter()
        .find(|f| f.violation.rule == rule)
        .unwrap_or_else(|| panic!("no {rule}: {:?}", rules(c)))
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(CPSIM).args(args).output().expect("cpsim runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_module_is_built_and_listed() {
    for (name, _) in MODULES {
        assert!(lib(name).exists(), "{name}");
    }
    for name in HOSTILE {
        assert!(lib(name).exists(), "{name}");
    }
    for (name, _) in SUBTLE {
        assert!(lib(name).exists(), "{name}");
        assert!(
            subtle_scenario(name).exists(),
            "{name}: no directed scenario"
        );
    }
}

/// `cpsim run --provider-lib M FILE…` runs files written for a C module
/// against the module at M: each subtle module meets its directed
/// scenario's expectation (its rule broken), and `sample_vt` does not (it
/// breaks nothing), so the CLI checks a freshly built module against them.
#[test]
fn cpsim_run_provider_lib_checks_the_subtle_scenarios_against_a_built_module() {
    for (name, rule) in SUBTLE {
        let file = subtle_scenario(name);
        let out = Command::new(CPSIM)
            .arg("run")
            .arg("--provider-lib")
            .arg(lib(name))
            .arg(&file)
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(stdout.contains("1 passed, 0 failed"), "{name}: {stdout}");
        let out = Command::new(CPSIM)
            .arg("run")
            .arg("--provider-lib")
            .arg(lib("sample_vt"))
            .arg(&file)
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "sample_vt on {name}: {stdout}");
        assert!(
            stdout.contains(&rule.to_string()),
            "sample_vt on {name}: {stdout}"
        );
    }
}

#[test]
fn the_sample_c_provider_passes_certification_in_real_time() {
    let l = open("sample", serde_json::Value::Null);
    assert_eq!(l.clock(), ClockMode::RealTime);
    let c = certify_lib(&l, 24, 1, false);
    assert_eq!(c.provider, "sample");
    assert!(
        c.unexercised.is_empty(),
        "required rules never exercised: {:?}",
        c.unexercised
    );
    assert_eq!(c.verdict, Verdict::Pass, "{}", c.failure_message());
    // Data went end to end between the two hosts' copies (DATA-5 exercised).
    assert!(c.rules[id::DATA_5.index()].exercised > 0);
}

#[test]
fn the_virtual_time_sample_passes_and_a_seed_names_its_run_bit_for_bit() {
    let l = open("sample_vt", serde_json::Value::Null);
    assert_eq!(l.clock(), ClockMode::Virtual);
    let c = certify_lib(&l, 200, 7, false);
    assert_eq!(c.verdict, Verdict::Pass, "{}", c.failure_message());
    assert!(c.unexercised.is_empty(), "{:?}", c.unexercised);
    assert!(c.rules[id::DATA_5.index()].exercised > 0);
    // The same seed again: the same counts for every rule.
    let again = certify_lib(&l, 200, 7, false);
    assert_eq!(c.rules, again.rules);
    // One case, twice, in two runners: the same trace, byte for byte.
    let text = r#"{ "version": 1, "name": "vt", "hosts": ["A", "B"],
      "provider": { "library": "x.so" },
      "platform": { "seed": 11, "net": { "loss": 0.1, "duplicate": 0.1, "reorder": 0.2, "delay_ms": 3, "jitter_ms": 5 } },
      "steps": [
        { "do": "start_provider", "at_ms": 0, "host": "A" },
        { "do": "start_provider", "at_ms": 0, "host": "B" },
        { "do": "listen", "at_ms": 10, "host": "B", "on": true },
        { "do": "send", "at_ms": 50, "from": "A", "to": "B", "bytes": 700 },
        { "do": "dormant", "at_ms": 900, "host": "A" },
        { "do": "send", "at_ms": 1500, "from": "A", "to": "B", "bytes": 90 },
        { "do": "communication_error", "at_ms": 2000, "host": "B" },
        { "do": "send", "at_ms": 9000, "from": "B", "to": "A", "bytes": 5 }
      ] }"#;
    let mut s = scenario::parse(text, "vt.json").expect("a scenario");
    s.provider = ProviderRef::Library(lib("sample_vt"));
    let a = isolate::run_library(&s).expect("runs");
    let b = isolate::run_library(&s).expect("runs");
    assert!(
        a.outcome.violations.is_empty(),
        "{:?}",
        a.outcome.violations
    );
    assert!(a.outcome.delivered > 0);
    assert_eq!(
        serde_json::to_string(&a.outcome.trace).unwrap(),
        serde_json::to_string(&b.outcome.trace).unwrap()
    );
}

#[test]
fn comp_4_in_a_virtual_time_module_is_shrunk_saved_and_replays_exactly() {
    let l = open("vt_broken_comp4", serde_json::Value::Null);
    let dir = tempfile::tempdir().unwrap();
    let c = certify_subject(
        &l.subject(),
        Config {
            cases: 16,
            seed: Some(3),
            regressions: Some(dir.path().to_path_buf()),
            shape: l.shape(),
            threads: l.workers(16),
            shrink_steps: l.shrink_steps(),
            ..Config::default()
        },
    );
    // Every COMP-4 finding recurs and replays bit for bit; at least one was
    // made smaller than the case as found.
    let comp4: Vec<_> = c
        .findings
        .iter()
        .filter(|f| f.violation.rule == id::COMP_4)
        .collect();
    assert!(!comp4.is_empty(), "{:?}", rules(&c));
    let shrunk = |d: &str| -> bool {
        let sizes: Vec<usize> = d
            .split("shrunk from ")
            .nth(1)
            .map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse().ok())
                    .take(2)
                    .collect()
            })
            .unwrap_or_default();
        sizes.len() == 2 && sizes[1] < sizes[0]
    };
    for f in &comp4 {
        let m = f.minimal.as_ref().expect("a minimal case");
        assert!(m.recurred);
        assert_eq!(
            m.deterministic,
            Some(true),
            "virtual time replays bit for bit"
        );
    }
    let m = comp4
        .iter()
        .filter_map(|f| f.minimal.as_ref())
        .find(|m| shrunk(&m.scenario.description))
        .expect("a COMP-4 finding was shrunk");
    let saved = m.saved_to.as_ref().expect("saved");
    let out = cli(&["replay", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("reproduces as expected"));
}

#[test]
fn crash_1_a_crashing_module_names_the_signal_and_the_callback_and_the_run_goes_on() {
    for (config, signal) in [
        (serde_json::Value::Null, "SIGSEGV"),
        (serde_json::json!({ "crash": "abort" }), "SIGABRT"),
    ] {
        let c = certify("crash", config, 3, 3);
        assert_eq!(c.verdict, Verdict::Fail);
        let f = finding(&c, id::CRASH_1);
        let msg = &f.violation.message;
        assert!(msg.contains(signal), "{msg}");
        assert!(msg.contains("in TRANSITION_ACTIVE"), "{msg}");
        // Its step is a placeholder (the trace is lost): it says so.
        assert!(msg.contains("its step and time are not known"), "{msg}");
        // Every case ran and was judged (the harness survived each crash).
        assert_eq!(c.cases, 3);
    }
}

#[test]
fn time_1_a_hanging_module_is_reported_with_its_trace_and_the_run_goes_on() {
    let c = certify("hang", serde_json::Value::Null, 2, 4);
    assert_eq!(c.verdict, Verdict::Fail);
    let f = finding(&c, id::TIME_1);
    assert!(
        f.violation.callback.as_deref() == Some("TRANSITION_ACTIVE"),
        "{}",
        f.violation.headline()
    );
}

#[test]
fn crash_1_an_exit_in_a_callback_is_an_exit_with_its_code_and_a_trace() {
    let l = open("hostile_exit", serde_json::Value::Null);
    let dir = tempfile::tempdir().unwrap();
    let c = certify_subject(
        &l.subject(),
        Config {
            cases: 3,
            seed: Some(5),
            regressions: Some(dir.path().to_path_buf()),
            shape: l.shape(),
            threads: 3,
            shrink_steps: 2,
            ..Config::default()
        },
    );
    let f = finding(&c, id::CRASH_1);
    let msg = &f.violation.message;
    assert!(msg.contains("exit code 3"), "{msg}");
    assert!(msg.contains("in TRANSITION_ACTIVE"), "{msg}");
    assert!(!rules(&c).contains(&id::TIME_1), "an exit is not a hang");
    let m = f.minimal.as_ref().expect("kept");
    assert!(
        m.trace.events.len() > 3,
        "the trace up to the exit is kept: {} events",
        m.trace.events.len()
    );
}

/// Runs the CLI's certification of a module and returns (exit code,
/// stdout, stderr, report.json).
fn cli_certify(module: &Path, extra: &[&str]) -> (Option<i32>, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let mut args = vec![
        "certify".to_string(),
        "--provider-lib".into(),
        module.display().to_string(),
        "--seed".into(),
        "1".into(),
        "--regressions".into(),
        dir.path().join("saved").display().to_string(),
        "--report-dir".into(),
        reports.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Command::new(CPSIM)
        .args(&args)
        .output()
        .expect("cpsim runs");
    let report = std::fs::read_to_string(reports.join("report.json")).unwrap_or_default();
    (
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr),
        report,
    )
}

#[test]
fn a_module_whose_start_fails_is_told_so_with_the_host_and_result() {
    // CpsimProviderStart fails on host B: the verdict (rules never
    // exercised) must come with the reason, not only the runner's lost
    // standard error.
    let (code, stdout, stderr, _) = cli_certify(&lib("hostile_start_fails"), &["--cases", "8"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("module start failed: CpsimProviderStart on host B returned E_FAIL"),
        "{stdout}{stderr}"
    );
}

#[test]
fn crash_1_module_initialisers_never_run_in_the_harness_and_end_in_a_report() {
    // A constructor that segfaults, and one that calls exit(0): each case
    // reports it; cpsim itself ends normally with a failing verdict.
    for (name, words) in [
        ("hostile_ctor_crash", "SIGSEGV"),
        ("hostile_ctor_exit", "exit code 0"),
    ] {
        let (code, stdout, stderr, report) = cli_certify(&lib(name), &["--cases", "2"]);
        assert_eq!(code, Some(1), "{name}: {stdout}{stderr}");
        assert!(stdout.contains("CRASH-1"), "{name}: {stdout}");
        assert!(stdout.contains(words), "{name}: {stdout}");
        assert!(
            stdout.contains("while loading the module"),
            "{name}: {stdout}"
        );
        assert!(report.contains("CRASH-1"), "{name}: no report");
    }
}

#[test]
fn time_1_a_module_whose_initialiser_hangs_is_ended_and_certification_finishes() {
    let started = Instant::now();
    let c = certify("hostile_ctor_hang", serde_json::Value::Null, 2, 1);
    let f = finding(&c, id::TIME_1);
    assert!(
        f.violation.message.contains("while loading the module"),
        "{}",
        f.violation.message
    );
    // The initialiser never returns: any finite time proves the run ends.
    // 9 s alone; the bound leaves room for a loaded CI machine.
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

#[test]
fn a_forked_grandchild_neither_delays_cases_nor_outlives_certification() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let l = open(
        "hostile_fork",
        serde_json::json!({ "pid_file": pids.display().to_string() }),
    );
    let started = Instant::now();
    // Seed 2: its four plain cases carry data, as a pass needs (TID-2,
    // TID-3 and DATA-2 exercised); the address-change moves made seed 1's
    // four carry none.
    let c = certify_lib(&l, 4, 2, false);
    // The grandchild sleeps a minute holding the runner's pipes; no case
    // waited for it (the bound stays under that minute, with room for a
    // loaded machine).
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.verdict, Verdict::Pass, "{}", c.failure_message());
    drop(c);
    drop(l);
    let list: Vec<i32> = std::fs::read_to_string(&pids)
        .expect("the module wrote its grandchildren's pids")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(!list.is_empty());
    let until = Instant::now() + Duration::from_secs(5);
    while list.iter().any(|p| alive(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<&i32> = list.iter().filter(|p| alive(**p)).collect();
    assert!(left.is_empty(), "grandchildren still running: {left:?}");
}

#[test]
fn crash_1_output_without_end_is_kept_bounded_in_the_finding_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("noise.json");
    std::fs::write(&config, r#"{ "noise_mib": 64 }"#).unwrap();
    let (code, stdout, stderr, report) = cli_certify(
        &lib("hostile_noisy"),
        &[
            "--cases",
            "2",
            "--provider-config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("noisy: last line"), "{stdout}");
    assert!(stdout.contains("bytes in all"), "{stdout}");
    assert!(stdout.len() < 200_000, "{} bytes of summary", stdout.len());
    assert!(
        report.len() < 1_000_000,
        "report.json is {} bytes",
        report.len()
    );
}

/// Certifies a copy of the virtual-time sample with 2,000 cases (about two
/// seconds) and, with `delete`, deletes the file as soon as the run has
/// started (its first line is printed once the module is read). Returns the
/// exit code and the verdict line without its time.
fn certify_vt_copy(dir: &Path, name: &str, delete: bool) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    let copy = dir.join(format!("lib{name}.so"));
    std::fs::copy(lib("sample_vt"), &copy).unwrap();
    let mut child = Command::new(CPSIM)
        .args([
            "certify",
            "--cases",
            "2000",
            "--seed",
            "2",
            "--provider-lib",
        ])
        .arg(&copy)
        .arg("--regressions")
        .arg(dir.join(format!("saved-{name}")))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("certifying"), "{first}");
    if delete {
        std::fs::remove_file(&copy).unwrap();
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let verdict = rest
        .lines()
        .find(|l| l.starts_with("provider "))
        .and_then(|l| l.rsplit_once(", "))
        .map(|(v, _)| v.replace(name, "M"))
        .unwrap_or_else(|| panic!("no verdict line:\n{first}{rest}"));
    (status.code(), verdict)
}

#[test]
fn a_module_file_deleted_during_certification_changes_nothing() {
    // The virtual-time sample: the same cases, the same verdict on a loaded
    // machine (a real-time module's cases can time out under load).
    let dir = tempfile::tempdir().unwrap();
    let kept = certify_vt_copy(dir.path(), "kept", false);
    let deleted = certify_vt_copy(dir.path(), "deleted", true);
    assert!(!dir.path().join("libdeleted.so").exists());
    assert_eq!(deleted, kept);
    assert!(matches!(kept.0, Some(0 | 1)), "{kept:?}");
}

#[test]
fn a_fifo_a_directory_a_text_file_or_a_missing_file_is_a_clear_exit_2_error() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.so");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let textf = dir.path().join("notes.so");
    std::fs::write(&textf, "just some text, not a library\n").unwrap();
    let subdir = dir.path().join("libdir.so");
    std::fs::create_dir(&subdir).unwrap();
    let missing = dir.path().join("libgone.so");
    for (path, words) in [
        (&fifo, "named pipe"),
        (&subdir, "a directory"),
        (&textf, "not a shared library"),
        (&missing, "no such file"),
    ] {
        let started = Instant::now();
        let out = Command::new(CPSIM)
            .args(["certify", "--provider-lib"])
            .arg(path)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(words), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    // Named by a scenario file: the error names the file and the JSON path.
    for (target, words) in [(&textf, "not a shared library"), (&subdir, "a directory")] {
        let file = dir.path().join("s.json");
        std::fs::write(
            &file,
            format!(
                r#"{{ "version": 1, "name": "bad module", "hosts": ["A"],
                  "provider": {{ "library": "{}" }},
                  "steps": [ {{ "do": "start_provider", "at_ms": 0, "host": "A" }} ] }}"#,
                target.display()
            ),
        )
        .unwrap();
        let out = Command::new(CPSIM).arg("run").arg(&file).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("s.json") && err.contains("provider.library"),
            "{err}"
        );
        assert!(err.contains(words), "{err}");
        assert!(!text(&out.stdout).contains("CRASH-1"));
    }
}

#[test]
fn temporary_files_are_removed_on_every_path() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for name in ["sample", "crash", "hostile_ctor_crash"] {
        let status = Command::new(CPSIM)
            .env("TMPDIR", tmp.path())
            .args(["certify", "--cases", "2", "--seed", "1", "--provider-lib"])
            .arg(lib(name))
            .arg("--regressions")
            .arg(out.path())
            .output()
            .unwrap();
        assert!(status.status.code().is_some(), "{name}");
    }
    let left: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn fixed_ports_with_many_parallel_cases_never_cross_talk() {
    let l = open("fixed_ports", serde_json::Value::Null);
    assert!(l.isolation().isolated(), "{:?}", l.isolation_note());
    assert!(l.workers(48) >= 16);
    let c = certify_lib(&l, 48, 9, false);
    assert!(c.findings.is_empty(), "{}", c.failure_message());
    assert_eq!(c.verdict, Verdict::Pass);
}

#[test]
fn without_isolation_fixed_ports_collide_so_cases_run_one_at_a_time() {
    setup();
    let l = Library::open_with(&lib("fixed_ports"), serde_json::Value::Null, Some("off"))
        .expect("opens");
    assert_eq!(l.isolation(), Isolation::None);
    assert!(l.isolation_note().is_some_and(|n| n.contains("off")));
    assert_eq!(l.workers(48), 1, "one case at a time without isolation");
    // Forced to run cases at once anyway, the fixed ports collide: the
    // control that shows what isolation prevents.
    let c = certify_subject(
        &l.subject(),
        Config {
            cases: 12,
            seed: Some(9),
            regressions: None,
            shape: l.shape(),
            threads: 12,
            shrink_steps: 0,
            ..Config::default()
        },
    );
    assert!(
        rules(&c).contains(&id::CRASH_1),
        "no collision: {:?}",
        rules(&c)
    );
    // One at a time, as the CLI runs them, nothing collides.
    let c = certify_lib(&l, 4, 9, false);
    assert!(c.findings.is_empty(), "{}", c.failure_message());
}

#[test]
fn the_cli_says_once_when_cases_cannot_be_isolated() {
    let out = Command::new(CPSIM)
        .env(isolate::sandbox::ENV, "off")
        .args(["certify", "--cases", "4", "--seed", "1", "--provider-lib"])
        .arg(lib("fixed_ports"))
        .arg("--regressions")
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let (err, stdout) = (text(&out.stderr), text(&out.stdout));
    assert_eq!(
        err.matches("cannot have a network of their own").count(),
        1,
        "{err}"
    );
    // One at a time: the fixed ports never collided (a verdict may still
    // miss a rare rule in so few cases).
    assert!(!stdout.contains("CRASH-1"), "{stdout}");
    assert!(stdout.contains("provider fixed_ports:"), "{stdout}");
}

#[test]
fn unprivileged_runners_isolate_cases_in_a_user_namespace() {
    setup();
    let l = Library::open_with(&lib("fixed_ports"), serde_json::Value::Null, Some("userns"))
        .expect("opens");
    assert_eq!(
        l.isolation(),
        Isolation::UserNetns,
        "{:?}",
        l.isolation_note()
    );
    let c = certify_lib(&l, 24, 4, false);
    assert!(c.findings.is_empty(), "{}", c.failure_message());
    // And for real, as an unprivileged user, where this machine allows it.
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let setpriv = Path::new("/usr/bin/setpriv");
    if !root || !setpriv.exists() {
        eprintln!("(not root, or no setpriv: the unprivileged run is skipped)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
    std::fs::set_permissions(dir.path(), perms).unwrap();
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", CPSIM])
        .args(["certify", "--cases", "8", "--seed", "1", "--provider-lib"])
        .arg(lib("fixed_ports"))
        .arg("--regressions")
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    if out.status.code() != Some(0) && err.contains("Permission denied") {
        eprintln!("(nobody cannot read the build directory: skipped)\n{err}");
        return;
    }
    let stdout = text(&out.stdout);
    // No violation at all (a verdict may still miss a rare rule in 8 cases).
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}{stdout}");
    assert!(!stdout.contains(" at step "), "{stdout}");
    assert!(!err.contains("cannot have a network"), "{err}");
}

#[test]
fn a_virtual_time_module_that_imports_threads_or_sleep_is_refused_by_name() {
    for (name, words) in [("vt_thread", "pthread_create"), ("vt_sleep", "usleep")] {
        let out = cli(&["certify", "--provider-lib", lib(name).to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(words) && err.contains("virtual time"), "{err}");
    }
    // MODULES says so too.
    for (name, expect) in MODULES {
        if *expect == Expect::Refused {
            assert!(name.starts_with("vt_"), "{name}");
        }
    }
}

#[test]
fn a_virtual_time_module_hiding_a_thread_is_caught_when_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(CPSIM)
        .args(["certify", "--cases", "4", "--seed", "1", "--provider-lib"])
        .arg(lib("vt_sneaky"))
        .arg("--regressions")
        .arg(dir.path())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}{}", text(&out.stdout));
    assert!(err.contains("started threads of its own"), "{err}");
}

#[test]
fn comp_3_a_failure_that_does_not_recur_keeps_its_case_and_trace_and_replays_as_flaky() {
    let dir = tempfile::tempdir().unwrap();
    let once = dir.path().join("once");
    let l = open(
        "flaky_once",
        serde_json::json!({ "once_file": once.display().to_string() }),
    );
    let c = certify_subject(
        &l.subject(),
        Config {
            cases: 4,
            seed: Some(1),
            regressions: Some(dir.path().join("saved")),
            shape: l.shape(),
            threads: 4,
            shrink_steps: l.shrink_steps(),
            ..Config::default()
        },
    );
    let f = finding(&c, id::COMP_3);
    let m = f.minimal.as_ref().expect("the finding keeps its case");
    assert!(!m.recurred, "it struck once only");
    assert!(!m.trace.events.is_empty(), "and its trace");
    assert!(
        m.trace
            .events
            .iter()
            .any(|e| matches!(&e.what, cpsim_sim::trace::What::Violation { rule, .. } if *rule == id::COMP_3)),
        "the trace shows the violation"
    );
    let saved = m.saved_to.as_ref().expect("saved");
    let out = cli(&["replay", saved.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("did not recur"), "{stdout}");
    assert!(!stdout.contains("did NOT reproduce"), "{stdout}");
}

#[test]
fn a_scenario_file_names_a_module_relative_to_itself() {
    setup();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("modules")).unwrap();
    std::fs::copy(lib("sample"), dir.path().join("modules/libsample.so")).unwrap();
    let text = r#"{
  "version": 1,
  "name": "C sample, two hosts",
  "hosts": ["A", "B"],
  "provider": { "library": "modules/libsample.so" },
  "platform": { "drain_ms": 300 },
  "steps": [
    { "do": "start_provider", "at_ms": 0, "host": "A" },
    { "do": "start_provider", "at_ms": 0, "host": "B" },
    { "do": "listen", "at_ms": 20, "host": "B", "on": true },
    { "do": "send", "at_ms": 60, "from": "A", "to": "B", "bytes": 200 },
    { "do": "send", "at_ms": 80, "from": "A", "to": "B", "family": "v6", "bytes": 10 },
    { "do": "shutdown", "at_ms": 300, "host": "B" }
  ],
  "expect": { "violations": [], "delivered": 2, "termination": "PLATFORM_SHUTDOWN" }
}
"#;
    let file = dir.path().join("c-sample.json");
    std::fs::write(&file, text).unwrap();
    let reg = cpsim::builtin_registry();
    let s = reg.load(&file).expect("loads");
    assert_eq!(
        s.provider,
        ProviderRef::Library(dir.path().join("modules/libsample.so"))
    );
    let mut reg = reg;
    reg.set_module_runner(std::sync::Arc::new(isolate::Modules));
    let r = reg.run(&s).expect("runs");
    assert!(r.passed(), "{:?}", r.failures);

    // The CLI runs it the same way.
    let out = Command::new(CPSIM).arg("run").arg(&file).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn cli_certify_provider_lib_saves_a_failure_that_replays_under_isolation() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(CPSIM)
        .args(["certify", "--cases", "2", "--seed", "5", "--provider-lib"])
        .arg(lib("broken_life5"))
        .arg("--regressions")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("LIFE-5"), "{stdout}");
    assert!(stdout.contains("--provider-lib"), "{stdout}");
    // The shrunk case was saved naming the module, and recurs on replay.
    let saved: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!saved.is_empty());
    let s = scenario::load(&saved[0]).unwrap();
    assert!(matches!(s.provider, ProviderRef::Library(_)));
    let out = cli(&["replay", saved[0].to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("recurs"),
        "{}",
        text(&out.stdout)
    );

    // A bad configuration file: bad input.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let out = Command::new(CPSIM)
        .args(["certify", "--provider-lib"])
        .arg(lib("sample"))
        .arg("--provider-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not JSON"), "{stderr}");
}
