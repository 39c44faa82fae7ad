//! LIFE-8 for an in-process provider that leaves OS threads running: a
//! provider that says it is deterministic (so it runs on the virtual clock)
//! but starts a thread in every `start` and never joins it. Thousands of
//! cases used to exhaust the process's threads and abort it with no
//! verdict; the certification now stops and fails with LIFE-8.

use cpsim_certify::{certify, Config};
use cpsim_sim::{Cx, Provider, ProviderFactory};
use std::process::Command;
use std::sync::Arc;

/// Set in the child run: the leaked threads stay in that process only.
const CHILD: &str = "CPSIM_TEST_LEAKED_THREADS_CHILD";

/// The reference provider, plus a thread per start that sleeps forever.
struct Leaky(Arc<dyn ProviderFactory>);

struct LeakyProvider(Box<dyn Provider>);

impl ProviderFactory for Leaky {
    fn name(&self) -> String {
        "leaks-a-thread-per-start".into()
    }
    fn infrastructure(&self, cx: &Cx) {
        self.0.infrastructure(cx);
    }
    fn create(&self, host: &str) -> Box<dyn Provider> {
        Box::new(LeakyProvider(self.0.create(host)))
    }
}

impl Provider for LeakyProvider {
    fn start(&mut self, cx: &Cx) {
        // Never joined, never told to stop.
        std::thread::spawn(|| loop {
            std::thread::sleep(std::time::Duration::from_secs(3_600));
        });
        self.0.start(cx);
    }
    fn stop(&mut self, cx: &Cx) {
        self.0.stop(cx);
    }
}

fn leaky() -> Arc<dyn ProviderFactory> {
    let reference = cpsim_providers::find("reference").expect("registered");
    Arc::new(Leaky(reference.factory()))
}

#[test]
fn life_8_a_provider_leaking_os_threads_fails_with_life_8_not_an_abort() {
    if std::env::var_os(CHILD).is_some() {
        certify(
            leaky,
            Config {
                seed: Some(1),
                regressions: None,
                ..Config::default()
            },
        )
        .assert_pass();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "life_8_a_provider_leaking_os_threads_fails_with_life_8_not_an_abort",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env_remove("CPSIM_SEED")
        .env_remove("CPSIM_CASES")
        .env_remove("CPSIM_REPLAY")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    // A failed test (101), not an abort by a signal.
    assert_eq!(out.status.code(), Some(101), "{all}");
    assert!(stderr.contains("FAILS"), "{all}");
    assert!(stderr.contains("LIFE-8"), "{all}");
    assert!(
        stderr.contains("still running after every host stopped it"),
        "{all}"
    );
    assert!(stderr.contains("CPSIM_SEED=1"), "{all}");
    assert!(!all.contains("fatal runtime error"), "{all}");
}
