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
    if std::env::var_os(CHILD).is_some_and(|v| v == "1") {
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

/// Under `cargo test` certifications of other tests run in the same
/// process: the threads one provider leaves must not fail another
/// provider's certification, running at the same time, with LIFE-8.
#[test]
fn life_8_threads_another_certification_leaves_do_not_fail_a_correct_provider() {
    const NAME: &str = "life_8_threads_another_certification_leaves_do_not_fail_a_correct_provider";
    if std::env::var_os(CHILD).is_some_and(|v| v == "beside") {
        let reference = || {
            cpsim_providers::find("reference")
                .expect("registered")
                .factory()
        };
        let cfg = |seed| Config {
            seed: Some(seed),
            regressions: None,
            threads: 1,
            ..Config::default()
        };
        std::thread::scope(|s| {
            let leaking = s.spawn(|| certify(leaky, cfg(1)));
            // Several in turn, while the other leaves thread after thread.
            for seed in 1..=3 {
                let c = certify(reference, cfg(seed));
                println!("reference seed {seed}: {:?} {:?}", c.verdict, c.incomplete);
                c.assert_pass();
            }
            let c = leaking.join().unwrap();
            println!("leaky: {:?} {:?}", c.verdict, c.incomplete);
        });
        return;
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", NAME, "--test-threads=1", "--nocapture"])
        .env(CHILD, "beside")
        .env_remove("CPSIM_SEED")
        .env_remove("CPSIM_CASES")
        .env_remove("CPSIM_REPLAY")
        .output()
        .expect("run the test binary");
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains("reference seed 3: Pass"), "{all}");
    // The leaking provider itself still fails with LIFE-8.
    assert!(all.contains("leaky: Fail"), "{all}");
    assert!(all.contains("LIFE-8"), "{all}");
}
