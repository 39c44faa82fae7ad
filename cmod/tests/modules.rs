//! C provider modules in one process (no isolation): two hosts run private
//! copies of the same module, calls from the modules' own threads reach
//! the right host, and data goes end to end.
#![cfg(unix)]

use cpsim_cmod::ModuleFactory;
use cpsim_sim::{Action, ClockMode, Config, Nanos, Outcome, ProviderFactory, Sim};
use std::sync::Arc;

mod common;
use common::two_host_script;

fn module(name: &str) -> Arc<ModuleFactory> {
    let p = cpsim_c_providers::module(name).expect("the C modules are built on unix");
    ModuleFactory::new(&p).expect("the module loads")
}

fn run(factory: Arc<dyn ProviderFactory>, script: &[(u64, Action)]) -> Outcome {
    let cfg = Config {
        clock: ClockMode::RealTime,
        drain_ms: 300,
        ..Config::with_seed(7)
    };
    let sim = Sim::new(cfg, &["A", "B"], factory);
    let mut last = 0;
    for (t, a) in script {
        sim.schedule(Nanos::from_millis(*t), a.clone());
        last = last.max(*t);
    }
    sim.run_until(Nanos::from_millis(last));
    let mut out = sim.finish();
    out.violations.extend(cpsim_sim::oracle::check(&out.trace));
    out
}

#[test]
fn two_hosts_run_private_copies_and_carry_data() {
    let f = module("sample");
    assert_eq!(f.name(), "sample");
    let script = two_host_script();
    let out = run(f, &script);
    let v: Vec<String> = out.violations.iter().map(|v| v.headline()).collect();
    assert!(v.is_empty(), "violations: {v:#?}");
    assert!(
        out.delivered >= 10,
        "{} of {} delivered",
        out.delivered,
        out.sent
    );
    // Both hosts created instances (routing by module copy).
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
        "copies unregistered when the world ends"
    );
}

#[test]
fn a_missing_module_or_entry_point_is_a_clear_error() {
    let e = ModuleFactory::new(std::path::Path::new("/nonexistent/libnope.so"))
        .err()
        .expect("an error");
    assert!(e.0.contains("libnope.so"), "{e}");
}

#[test]
fn a_module_file_is_read_and_checked_without_being_loaded() {
    use cpsim_cmod::ModuleImage;
    let sample = ModuleImage::read(&cpsim_c_providers::module("sample").unwrap()).unwrap();
    assert_eq!(sample.name(), "sample");
    assert!(!sample.virtual_time());
    // The real-time sample uses threads and sockets: fine without the marker.
    assert!(!sample.outside_virtual_time().is_empty());
    assert!(sample.check_virtual_time().is_ok());
    let vt = ModuleImage::read(&cpsim_c_providers::module("sample_vt").unwrap()).unwrap();
    assert!(vt.virtual_time());
    assert_eq!(vt.outside_virtual_time(), vec![]);
    let bad = ModuleImage::read(&cpsim_c_providers::module("vt_thread").unwrap()).unwrap();
    let e = bad.check_virtual_time().unwrap_err();
    assert!(e.0.contains("pthread_create"), "{e}");

    let dir = std::env::temp_dir().join(format!("cpsim-cmod-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.so");
    std::fs::write(&text, "text").unwrap();
    let e = ModuleImage::read(&text).unwrap_err();
    assert!(
        e.0.contains("not a shared library") && e.0.contains("notes.so"),
        "{e}"
    );
    let e = ModuleImage::read(&dir).unwrap_err();
    assert!(e.0.contains("a directory"), "{e}");
    // This test binary is ELF but not a shared library, or lacks the entry points.
    let me = std::env::current_exe().unwrap();
    assert!(ModuleImage::read(&me).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
