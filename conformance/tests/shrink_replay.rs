//! Deliverable of issue 11: every saved minimal scenario loads and replays
//! to the same outcome. Every broken provider is certified over several
//! seeds; each finding is shrunk and saved; each file is loaded (the loader
//! refuses nothing the shrinker wrote) and replayed, and its expectations
//! hold, including for findings that are consequences of another rule.

use cpsim_certify::certify::{certify_subject, Config};
use cpsim_certify::{Kind, Registry};
use cpsim_sim::ClockMode;

#[test]
fn every_saved_minimal_scenario_of_every_broken_provider_loads_and_replays() {
    cpsim_sim::runtime::quiet_provider_panics();
    let registry: Registry = cpsim_providers::registry();
    let (mut files, mut consequences, mut providers) = (0, 0, 0);
    for e in registry.entries() {
        // Real-time providers do not replay step for step.
        if !matches!(e.kind(), Kind::Broken(_)) || e.clock() == ClockMode::RealTime {
            continue;
        }
        providers += 1;
        for seed in [1, 2, 3] {
            // A folder per run: saved failures are replayed first, and one
            // that still fails would stop the next seed's run before it
            // generates anything.
            let dir = tempfile::tempdir().unwrap();
            let cert = certify_subject(
                &e.subject(),
                Config {
                    cases: 48,
                    seed: Some(seed),
                    regressions: Some(dir.path().to_path_buf()),
                    ..Config::default()
                },
            );
            for f in &cert.findings {
                let what = format!("{} seed {seed} {}", e.name(), f.fingerprint);
                let m = f
                    .minimal
                    .as_ref()
                    .unwrap_or_else(|| panic!("{what}: no minimal case"));
                assert_eq!(m.deterministic, Some(true), "{what}");
                let file = m
                    .saved_to
                    .as_ref()
                    .unwrap_or_else(|| panic!("{what}: not saved"));
                let loaded = registry.load(file).unwrap_or_else(|err| {
                    panic!("{what}: the loader refuses the saved file: {err}")
                });
                assert_eq!(loaded, m.scenario, "{what}: the file reads back different");
                let run = registry.run(&loaded).unwrap();
                assert!(
                    run.passed(),
                    "{what}: {} does not replay: {:?}",
                    file.display(),
                    run.failures
                );
                let expected = loaded.expect.violations.as_ref().unwrap();
                assert!(expected.contains(&f.violation.rule), "{what}");
                let first = loaded.expect.first_violation.as_ref().unwrap();
                if !f.root_cause && first.rule != f.violation.rule {
                    consequences += 1;
                }
                files += 1;
            }
        }
    }
    println!("{files} saved files of {providers} providers replayed; {consequences} consequences");
    assert!(providers >= 20 && files >= 3 * providers, "{files} files");
    // Some findings were consequences of an earlier violation of another
    // rule, whose saved expectation pins that other rule first.
    assert!(consequences > 0);
}
