//! Provider modules written in C (`providers-under-test/c`), certified the
//! way `cpsim certify --provider-lib` does it: every case in a child process
//! (this package's `cpsim` binary), in real time. The sample passes with
//! every required rule exercised; each broken module is caught with its
//! rule; a crash and a hang become CRASH-1 and TIME-1 and the run goes on.
#![cfg(unix)]

use cpsim::isolate;
use cpsim_c_providers::{module, Expect, MODULES};
use cpsim_certify::certify::{certify_subject, Config};
use cpsim_certify::scenario::{self, ProviderRef};
use cpsim_certify::{Certification, Verdict};
use cpsim_sim::rules::id;
use cpsim_sim::RuleId;
use std::path::PathBuf;

fn setup() {
    isolate::set_runner(Some(PathBuf::from(env!("CARGO_BIN_EXE_cpsim"))));
    cpsim_sim::runtime::quiet_provider_panics();
}

fn lib(name: &str) -> PathBuf {
    module(name).unwrap_or_else(|| panic!("module {name} is built on unix"))
}

fn certify(name: &str, config: serde_json::Value, cases: u64, seed: u64) -> Certification {
    setup();
    let subject = isolate::library_subject(&lib(name), config).expect("the module loads");
    certify_subject(
        &subject,
        Config {
            cases,
            seed: Some(seed),
            regressions: None,
            shape: cpsim_certify::certify::Shape::real_time_module(),
            shrink_steps: 0,
            ..Config::default()
        },
    )
}

fn rules(c: &Certification) -> Vec<RuleId> {
    c.findings.iter().map(|f| f.violation.rule).collect()
}

#[test]
fn every_module_is_built_and_listed() {
    for (name, _) in MODULES {
        assert!(lib(name).exists(), "{name}");
    }
}

#[test]
fn the_sample_c_provider_passes_certification() {
    let c = certify("sample", serde_json::Value::Null, 14, 1);
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
fn broken_c_providers_are_caught_with_their_rule() {
    for (name, expect) in MODULES {
        let Expect::Breaks(rule) = *expect else {
            continue;
        };
        if rule == id::CRASH_1 || rule == id::TIME_1 {
            continue; // see the isolation tests below
        }
        let c = certify(name, serde_json::Value::Null, 3, 2);
        assert_eq!(c.verdict, Verdict::Fail, "{name} passed");
        assert!(
            rules(&c).contains(&rule),
            "{name}: {rule} not caught; found {:?}",
            rules(&c)
        );
    }
}

#[test]
fn a_crashing_module_is_a_crash_1_finding_and_the_run_goes_on() {
    for (config, signal) in [
        (serde_json::Value::Null, "SIGSEGV"),
        (serde_json::json!({ "crash": "abort" }), "SIGABRT"),
    ] {
        let c = certify("crash", config, 3, 3);
        assert_eq!(c.verdict, Verdict::Fail);
        let f = c
            .findings
            .iter()
            .find(|f| f.violation.rule == id::CRASH_1)
            .unwrap_or_else(|| panic!("no CRASH-1: {:?}", rules(&c)));
        assert!(
            f.violation.message.contains(signal),
            "{}",
            f.violation.message
        );
        // Every case ran and was judged (the harness survived each crash).
        assert_eq!(c.cases, 3);
    }
}

#[test]
fn a_hanging_module_is_a_time_1_finding_and_the_run_goes_on() {
    let c = certify("hang", serde_json::Value::Null, 2, 4);
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(rules(&c).contains(&id::TIME_1), "{:?}", rules(&c));
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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpsim"))
        .arg("run")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn cli_certify_provider_lib() {
    let cpsim = env!("CARGO_BIN_EXE_cpsim");
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(cpsim)
        .args(["certify", "--cases", "2", "--seed", "5", "--provider-lib"])
        .arg(lib("broken_life5"))
        .arg("--regressions")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("LIFE-5"), "{stdout}");
    assert!(stdout.contains("--provider-lib"), "{stdout}");
    // The shrunk case was saved naming the module, and replays.
    let saved: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!saved.is_empty());
    let s = scenario::load(&saved[0]).unwrap();
    assert!(matches!(s.provider, ProviderRef::Library(_)));

    // A module that does not exist, and a bad configuration file: bad input.
    let out = std::process::Command::new(cpsim)
        .args(["certify", "--provider-lib", "/nonexistent/libnope.so"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let out = std::process::Command::new(cpsim)
        .args(["certify", "--provider-lib"])
        .arg(lib("sample"))
        .arg("--provider-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not JSON"), "{stderr}");
}
