//! Virtual-time C modules in one process, the same tests on each system
//! that loads them: on Linux the ELF shared objects, on Windows (and under
//! Wine, in the Windows tier) the DLLs built from the same sources with
//! mingw-w64, whose `iphlpapi.dll` imports cpsim binds to its router. Two
//! hosts run two private copies of `sample_vt`; the bundled directed
//! scenarios pass with `sample_vt` and catch each subtle module with its
//! rule; certification catches `vt_broken_comp4` with COMP-4; modules that
//! break the virtual-time promise are refused, naming the import.
#![cfg(any(unix, windows))]

use cpsim_certify::certify::{certify_subject, CaseSource, Config, LaneSpec, PlainSource};
use cpsim_certify::scenario::{self, ProviderRef};
use cpsim_certify::{Subject, Verdict};
use cpsim_cmod::{ModuleFactory, ModuleImage};
use cpsim_sim::rules::id;
use cpsim_sim::{Action, ClockMode, Config as SimConfig, Nanos, ProviderFactory, RuleId, Sim};
use std::path::PathBuf;
use std::sync::Arc;

mod common;
use common::two_host_script;

/// One world at a time: the sample modules' copies in one process share
/// one directory (sample_directory.h), as the hosts of one world do; two
/// worlds at once would see each other's transport IDs.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn lib(name: &str) -> PathBuf {
    cpsim_c_providers::module(name).unwrap_or_else(|| panic!("module {name} is built here"))
}

fn factory(name: &str) -> Arc<ModuleFactory> {
    ModuleFactory::new(&lib(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn two_private_copies_of_sample_vt_carry_data_between_two_hosts() {
    let _one = serial();
    let f = factory("sample_vt");
    assert!(
        f.deterministic(),
        "sample_vt carries the virtual-time marker"
    );
    let sim = Sim::new(
        SimConfig {
            clock: ClockMode::Virtual,
            ..SimConfig::with_seed(7)
        },
        &["A", "B"],
        f,
    );
    let script = two_host_script();
    for (t, a) in &script {
        sim.schedule(Nanos::from_millis(*t), a.clone());
    }
    sim.run_until(Nanos::from_millis(800));
    let mut out = sim.finish();
    out.violations.extend(cpsim_sim::oracle::check(&out.trace));
    let v: Vec<String> = out.violations.iter().map(|v| v.headline()).collect();
    assert!(v.is_empty(), "violations: {v:#?}");
    assert!(
        out.delivered >= 10,
        "{} of {} delivered",
        out.delivered,
        out.sent
    );
    // Each copy's CpsimProviderStart refuses a second start (a static
    // flag): both hosts registering shows two copies with their own
    // globals, and their calls routed to their own hosts.
    let hosts: std::collections::BTreeSet<u8> = out
        .trace
        .events
        .iter()
        .filter(|e| matches!(e.what, cpsim_sim::trace::What::Registered { .. }))
        .map(|e| e.host)
        .collect();
    assert_eq!(hosts.len(), 2, "both hosts registered");
    assert_eq!(
        cpsim_cmod::loaded_copies(),
        0,
        "copies unregistered at the end"
    );
}

/// Runs subtle module `name`'s directed scenario with module `with`.
fn directed(name: &str, with: &str) -> Vec<RuleId> {
    let path = cpsim_c_providers::subtle_scenario(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut s = scenario::parse(&text, &path.to_string_lossy()).expect("a scenario");
    s.provider = ProviderRef::Library(lib(with));
    let run = scenario::run(&s, factory(with), ClockMode::Virtual);
    run.outcome.violations.iter().map(|v| v.rule).collect()
}

/// The subtle module's rule is the first violation; `sample_vt` passes the
/// same steps.
fn subtle(name: &str, rule: RuleId) {
    assert!(
        cpsim_c_providers::SUBTLE.contains(&(name, rule)),
        "{name} is listed with {rule}"
    );
    let found = directed(name, name);
    assert_eq!(found.first(), Some(&rule), "{name}: {found:?}");
    let clean = directed(name, "sample_vt");
    assert!(clean.is_empty(), "sample_vt on {name}'s steps: {clean:?}");
}

#[test]
fn comp_4_vt_subtle_comp4_one_reach_breaks_it_in_its_directed_scenario() {
    let _one = serial();
    subtle("vt_subtle_comp4_one_reach", id::COMP_4);
}

#[test]
fn life_8_vt_subtle_life8_established_only_breaks_it_in_its_directed_scenario() {
    let _one = serial();
    subtle("vt_subtle_life8_established_only", id::LIFE_8);
}

#[test]
fn data_5_vt_subtle_data5_max_payload_breaks_it_in_its_directed_scenario() {
    let _one = serial();
    subtle("vt_subtle_data5_max_payload", id::DATA_5);
}

fn certify(name: &str, cases: u64) -> cpsim_certify::Certification {
    let path = lib(name);
    let image = Arc::new(ModuleImage::read(&path).unwrap());
    let subject = Subject::new(name, move || {
        ModuleFactory::from_image(image.clone()) as Arc<dyn ProviderFactory>
    });
    certify_subject(
        &subject,
        Config {
            cases,
            seed: Some(2),
            threads: 1,
            source: Some(Arc::new(|spec: &LaneSpec| {
                Box::new(PlainSource::new(spec)) as Box<dyn CaseSource>
            })),
            ..Config::default()
        },
    )
}

#[test]
fn comp_4_vt_broken_comp4_is_caught_by_certification_and_sample_vt_is_not() {
    let _one = serial();
    let c = certify("vt_broken_comp4", 6);
    let rules: Vec<RuleId> = c.findings.iter().map(|f| f.violation.rule).collect();
    assert_eq!(c.verdict, Verdict::Fail);
    assert!(rules.contains(&id::COMP_4), "found {rules:?}");
    let c = certify("sample_vt", 6);
    let rules: Vec<RuleId> = c.findings.iter().map(|f| f.violation.rule).collect();
    assert!(rules.is_empty(), "sample_vt: {rules:?}");
}

#[test]
fn modules_that_break_the_virtual_time_promise_are_refused_naming_the_import() {
    let _one = serial();
    let (thread, sleep) = if cfg!(windows) {
        ("CreateThread", "SleepEx")
    } else {
        ("pthread_create", "usleep")
    };
    for (name, import) in [("vt_thread", thread), ("vt_sleep", sleep)] {
        let image = ModuleImage::read(&lib(name)).unwrap();
        assert!(image.virtual_time(), "{name} carries the marker");
        let e = image.check_virtual_time().unwrap_err();
        assert!(e.0.contains(import) && e.0.contains(name), "{name}: {e}");
    }
    let vt = ModuleImage::read(&lib("sample_vt")).unwrap();
    assert_eq!(vt.outside_virtual_time(), vec![]);
}

#[test]
fn a_thread_hidden_from_the_import_check_is_noticed_when_it_calls_cpsim() {
    let _one = serial();
    let f = factory("vt_sneaky");
    let image = f.image().clone();
    assert!(image.virtual_time() && image.check_virtual_time().is_ok());
    let before = cpsim_cmod::foreign_thread_calls();
    let sim = Sim::new(
        SimConfig {
            clock: ClockMode::Virtual,
            ..SimConfig::with_seed(1)
        },
        &["A"],
        f,
    );
    sim.schedule(Nanos::ZERO, Action::StartProvider { host: "A".into() });
    sim.run_until(Nanos::from_millis(10));
    let _ = sim.finish();
    assert!(cpsim_cmod::foreign_thread_calls() > before);
}

#[test]
fn a_library_of_the_other_system_is_refused_naming_the_file() {
    let _one = serial();
    let dir = std::env::temp_dir().join(format!("cpsim-vt-other-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (file, bytes, says): (&str, &[u8], &str) = if cfg!(windows) {
        (
            "libother.so",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0",
            "ELF",
        )
    } else {
        ("other.dll", b"MZ\x90\0\x03\0\0\0", "a Windows DLL")
    };
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    let e = ModuleFactory::new(&path).err().expect("refused");
    assert!(e.0.contains(file) && e.0.contains(says), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A DLL that imports another `iphlpapi.dll` function besides the five:
/// its copies' imports are bound to cpsim's router, which forwards that
/// one to the system's DLL, so the module starts on each host.
#[cfg(windows)]
#[test]
fn another_iphlpapi_function_a_dll_imports_reaches_the_system_through_the_router() {
    let _one = serial();
    let f = factory("win_vt_iphlpapi");
    let dll = f.image().pe().expect("a DLL");
    let from: Vec<&String> = dll
        .imports_from("iphlpapi.dll")
        .flat_map(|i| i.names.iter())
        .collect();
    assert!(
        from.iter().any(|n| *n == "GetNumberOfInterfaces"),
        "{from:?}"
    );
    assert!(
        from.iter().any(|n| *n == "CPNatfwtCreateProviderInstance"),
        "{from:?}"
    );
    let sim = Sim::new(
        SimConfig {
            clock: ClockMode::Virtual,
            ..SimConfig::with_seed(3)
        },
        &["A", "B"],
        f,
    );
    sim.schedule(Nanos::ZERO, Action::StartProvider { host: "A".into() });
    sim.schedule(Nanos::ZERO, Action::StartProvider { host: "B".into() });
    sim.run_until(Nanos::from_millis(50));
    let out = sim.finish();
    let registered = out
        .trace
        .events
        .iter()
        .filter(|e| matches!(e.what, cpsim_sim::trace::What::Registered { .. }))
        .count();
    assert_eq!(registered, 2, "both copies started");
    assert!(out.violations.is_empty(), "{:?}", out.violations);
}
