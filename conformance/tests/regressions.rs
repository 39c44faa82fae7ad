//! Certification from `cargo test` behaves like proptest: saved failures are
//! replayed first (and stop the run while one still fails), `CPSIM_SEED`,
//! `CPSIM_CASES` and `CPSIM_REPLAY` steer it without editing code, and the
//! commands a failure prints work from the package and test that ran it.

use cpsim_certify::certify::{certify_subject, Config, EnvOverrides, Invocation, Subject};
use cpsim_certify::scenario::{self, ProviderRef};
use cpsim_certify::{Certification, Verdict};
use cpsim_sim::rules::id;
use std::path::{Path, PathBuf};
use std::process::Command;

fn subject(name: &str) -> Subject {
    cpsim_providers::registry().subject(name).unwrap()
}

fn cfg(cases: u64, seed: u64, dir: &Path) -> Config {
    Config {
        cases,
        seed: Some(seed),
        regressions: Some(dir.to_path_buf()),
        ..Config::default()
    }
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == "json"));
    v.sort();
    v
}

/// broken-comp-3 certified once into `dir`: its shrunk failures saved there.
fn seeded_failures(dir: &Path) -> Certification {
    let cert = certify_subject(&subject("broken-comp-3"), cfg(64, 5, dir));
    assert_eq!(cert.verdict, Verdict::Fail);
    assert!(!cert.replay_only, "nothing was saved yet");
    assert!(!json_files(dir).is_empty(), "failures were saved");
    cert
}

#[test]
fn comp_3_saved_failure_is_replayed_first_and_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    seeded_failures(dir.path());
    let saved = json_files(dir.path());

    // Another seed, a much larger budget: the saved cases alone run.
    let cert = certify_subject(&subject("broken-comp-3"), cfg(5_000, 99, dir.path()));
    assert_eq!(cert.verdict, Verdict::Fail);
    assert!(cert.replay_only);
    assert_eq!(cert.cases, saved.len() as u64, "{:#?}", cert.replayed);
    let files: Vec<&PathBuf> = cert.replayed.iter().map(|r| &r.file).collect();
    assert_eq!(files, saved.iter().collect::<Vec<_>>());
    assert!(cert
        .replayed
        .iter()
        .all(|r| r.error.is_none() && r.violations.contains(&id::COMP_3)));
    // The finding is the saved case itself, not a new one.
    let f = cert
        .findings
        .iter()
        .find(|f| f.violation.rule == id::COMP_3)
        .expect("COMP-3 found again");
    let m = f.minimal.as_ref().unwrap();
    assert!(saved.contains(m.saved_to.as_ref().unwrap()));
    assert_eq!(m.deterministic, Some(true));
    assert!(f.cases <= cert.cases);
    // Counts are of the cases that ran.
    assert!(cert.rules.iter().all(|r| r.exercised <= cert.cases));
    assert!(cert.unexercised.is_empty());
    // Nothing new was written.
    assert_eq!(json_files(dir.path()), saved);
    let msg = cert.failure_message();
    assert!(msg.contains("Only saved failures were run"), "{msg}");
    assert!(msg.contains("still breaks COMP-3"), "{msg}");
}

#[test]
fn a_fixed_saved_failure_is_reported_fixed_and_generation_goes_on() {
    let found = tempfile::tempdir().unwrap();
    seeded_failures(found.path());
    // The same schedule, now run by a correct provider: the bug is "fixed".
    let dir = tempfile::tempdir().unwrap();
    let mut s = scenario::load(&json_files(found.path())[0]).unwrap();
    s.provider = ProviderRef::Name("reference".into());
    let file = dir.path().join("reference-comp-3-fixed.json");
    std::fs::write(&file, scenario::to_pretty_json(&s)).unwrap();

    let cert = certify_subject(&subject("reference"), cfg(64, 11, dir.path()));
    assert_eq!(cert.verdict, Verdict::Pass, "{}", cert.failure_message());
    assert!(!cert.replay_only);
    assert_eq!(cert.cases, 64);
    assert_eq!(cert.replayed.len(), 1);
    assert_eq!(cert.replayed[0].file, file);
    assert!(cert.replayed[0].violations.is_empty());
    assert!(cert.replayed[0].error.is_none());
}

#[test]
fn saved_failures_of_other_providers_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    seeded_failures(dir.path());
    let cert = certify_subject(&subject("reference"), cfg(32, 11, dir.path()));
    assert!(cert.replayed.is_empty(), "{:#?}", cert.replayed);
    assert!(!cert.replay_only);
    assert_eq!(cert.cases, 32);
}

#[test]
fn an_unreadable_saved_file_fails_the_certification_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("reference-life-1-0-0.json");
    std::fs::write(&bad, "{\"version\": 1, \"name\": ").unwrap();
    let cert = certify_subject(&subject("reference"), cfg(32, 11, dir.path()));
    assert_eq!(cert.verdict, Verdict::Fail);
    assert!(cert.replay_only);
    assert_eq!(cert.replayed.len(), 1);
    let err = cert.replayed[0].error.as_ref().expect("an error");
    assert!(err.contains(&bad.display().to_string()), "{err}");
    let msg = cert.failure_message();
    assert!(
        msg.contains("cannot be replayed") && msg.contains(&bad.display().to_string()),
        "{msg}"
    );
    // The first line does not read as if zero cases were a run.
    assert!(
        msg.lines()
            .next()
            .is_some_and(|l| l.contains("(no saved case could be replayed)")),
        "{msg}"
    );
}

#[test]
fn comp_3_a_case_that_cannot_be_saved_says_why_and_leaves_no_cut_short_file() {
    // Where the saved files would go, learnt from a first run.
    let first = tempfile::tempdir().unwrap();
    seeded_failures(first.path());
    let names: Vec<_> = json_files(first.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    // The same run again, into a folder where each of those names is taken
    // by a directory: writing the file in place must fail.
    let dir = tempfile::tempdir().unwrap();
    for n in &names {
        std::fs::create_dir(dir.path().join(n)).unwrap();
    }
    let cert = certify_subject(&subject("broken-comp-3"), cfg(64, 5, dir.path()));
    assert_eq!(cert.verdict, Verdict::Fail);
    assert!(!cert.replay_only);
    let unsaved: Vec<_> = cert
        .findings
        .iter()
        .filter_map(|f| f.minimal.as_ref())
        .filter(|m| m.saved_to.is_none())
        .collect();
    assert!(!unsaved.is_empty(), "{:#?}", cert.findings);
    for m in &unsaved {
        let e = m.save_error.as_ref().expect("the reason it was not saved");
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
    }
    let msg = cert.failure_message();
    assert!(msg.contains("the case was not saved"), "{msg}");
    // Nothing else was left behind: no temporary file, no partial scenario.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.is_dir())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn saved_files_are_read_as_scenario_files_are_with_place_and_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Not UTF-8 on line 2: the error says where, as `cpsim run` does.
    let latin1 = dir.path().join("a-latin1.json");
    std::fs::write(&latin1, b"{\"version\": 1,\n \"name\": \"caf\xe9\"}").unwrap();
    // Larger than any scenario file may be: refused, not read into memory.
    let huge = dir.path().join("b-huge.json");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(scenario::MAX_FILE_BYTES + 1).unwrap();
    let cert = certify_subject(&subject("reference"), cfg(32, 11, dir.path()));
    assert_eq!(cert.verdict, Verdict::Fail);
    assert_eq!(cert.replayed.len(), 2, "{:#?}", cert.replayed);
    let e0 = cert.replayed[0].error.as_ref().expect("an error");
    assert!(
        e0.starts_with(&format!("{}:2:", latin1.display())) && e0.contains("not UTF-8"),
        "{e0}"
    );
    let e1 = cert.replayed[1].error.as_ref().expect("an error");
    assert!(
        e1.contains(&huge.display().to_string()) && e1.contains("4 MiB"),
        "{e1}"
    );
}

#[test]
fn environment_overrides_parse_and_bad_values_are_named() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        EnvOverrides::from_lookup(move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    assert_eq!(env(&[]).unwrap(), EnvOverrides::default());
    let e = env(&[
        ("CPSIM_SEED", "0x1F"),
        ("CPSIM_CASES", " 1000 "),
        ("CPSIM_REPLAY", "cpsim-regressions/x.json"),
    ])
    .unwrap();
    assert_eq!(e.seed, Some(31));
    assert_eq!(e.cases, Some(1000));
    assert_eq!(
        e.replay.as_deref(),
        Some(Path::new("cpsim-regressions/x.json"))
    );
    assert_eq!(env(&[("CPSIM_SEED", "42")]).unwrap().seed, Some(42));
    // Empty is unset.
    assert_eq!(env(&[("CPSIM_CASES", "")]).unwrap().cases, None);
    for (pairs, names) in [
        (&[("CPSIM_CASES", "many")][..], "CPSIM_CASES=many"),
        (&[("CPSIM_CASES", "0")][..], "CPSIM_CASES=0"),
        (&[("CPSIM_SEED", "-3")][..], "CPSIM_SEED=-3"),
    ] {
        let err = env(pairs).unwrap_err();
        assert!(err.starts_with(names), "{err}");
    }
}

#[test]
fn commands_name_the_cargo_package_and_test_or_the_cli_binary() {
    let t = Invocation::CargoTest {
        package: "my-provider".into(),
        test: Some("certify::keeps_the_contract".into()),
    };
    assert_eq!(
        t.rerun_command(7, 256),
        "CPSIM_SEED=7 CPSIM_CASES=256 cargo test -p my-provider certify::keeps_the_contract -- --exact"
    );
    assert_eq!(
        t.replay_command(Path::new("cpsim-regressions/my provider.json")),
        "CPSIM_REPLAY='cpsim-regressions/my provider.json' cargo test -p my-provider certify::keeps_the_contract -- --exact"
    );
    let cli = Invocation::Cli {
        program: "my-cpsim".into(),
        provider: "--provider mine".into(),
    };
    assert_eq!(
        cli.rerun_command(7, 256),
        "my-cpsim certify --provider mine --seed 7 --cases 256"
    );
    assert_eq!(
        cli.replay_command(Path::new("r/x.json")),
        "my-cpsim replay r/x.json"
    );
    assert!(!cli.reads_env() && t.reads_env() && Invocation::Code.reads_env());
}

/// The `CPSIM_REPLAY=… cargo test -p PKG TEST -- --exact` a failure prints,
/// run as cargo would run it: this test binary, filtered to this test, with
/// that environment. In the child, the test certifies again and fails.
#[test]
fn comp_3_printed_replay_command_reruns_exactly_the_saved_case() {
    const TEST: &str = "comp_3_printed_replay_command_reruns_exactly_the_saved_case";
    if let Ok(dir) = std::env::var("CPSIM_TEST_REGRESSIONS") {
        // The child: the same certification the parent ran.
        certify_subject(&subject("broken-comp-3"), cfg(64, 5, Path::new(&dir))).assert_pass();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = seeded_failures(dir.path());
    let package = std::env::var("CARGO_PKG_NAME").expect("run by cargo");
    let f = &cert.findings[0];
    let m = f.minimal.as_ref().unwrap();
    let file = m.saved_to.as_ref().unwrap();
    let expected = format!(
        "CPSIM_REPLAY={} cargo test -p {package} {TEST} -- --exact",
        file.display()
    );
    assert_eq!(m.replay, expected);
    let msg = cert.failure_message();
    assert!(msg.contains(&format!("replay: {expected}")), "{msg}");
    assert!(
        msg.contains(&format!(
            "rerun: CPSIM_SEED=5 CPSIM_CASES=64 cargo test -p {package} {TEST} -- --exact"
        )),
        "{msg}"
    );
    // The saved file says how it was found, runnably.
    let saved = scenario::load(file).unwrap();
    assert!(
        saved.description.contains(&format!(
            "CPSIM_SEED=5 CPSIM_CASES=64 cargo test -p {package} {TEST}"
        )),
        "{}",
        saved.description
    );

    let out = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env("CPSIM_REPLAY", file)
        .env("CPSIM_TEST_REGRESSIONS", dir.path())
        .env_remove("CPSIM_SEED")
        .env_remove("CPSIM_CASES")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "the bug is still there:\n{text}");
    assert!(text.contains("0 passed; 1 failed"), "{text}");
    assert!(
        text.contains("FAILS certification (1 saved case replayed)"),
        "{text}"
    );
    assert!(text.contains("Only saved failures were run"), "{text}");
    assert!(
        text.contains(&format!("replay: {}", m.replay)),
        "the replay names the same file:\n{text}"
    );
    assert!(text.contains(&f.violation.headline()), "{text}");
}

/// `CPSIM_SEED` and `CPSIM_CASES` from the real environment, in a child.
#[test]
fn cpsim_seed_and_cases_set_the_run_without_editing_code() {
    const TEST: &str = "cpsim_seed_and_cases_set_the_run_without_editing_code";
    if std::env::var_os("CPSIM_TEST_CHILD").is_some() {
        let cert = certify_subject(
            &subject("reference"),
            Config {
                cases: 256,
                seed: Some(1),
                regressions: None,
                ..Config::default()
            },
        );
        println!("certified: seed {} cases {}", cert.seed, cert.cases);
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture"])
        .env("CPSIM_TEST_CHILD", "1")
        .env("CPSIM_SEED", "0x2a")
        .env("CPSIM_CASES", "3")
        .env_remove("CPSIM_REPLAY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("certified: seed 42 cases 3"), "{text}");

    let bad = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact"])
        .env("CPSIM_TEST_CHILD", "1")
        .env("CPSIM_CASES", "lots")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success());
    assert!(text.contains("CPSIM_CASES=lots: not a number"), "{text}");
}

/// A warning (a SHOULD rule, not strict) does not stop the run, and a known
/// one does not add a file on every run: its saved case stays its witness.
#[test]
fn tid_4_known_warning_keeps_its_saved_file_and_adds_none() {
    let dir = tempfile::tempdir().unwrap();
    let first = certify_subject(&subject("broken-tid-4"), cfg(96, 2, dir.path()));
    assert_eq!(first.verdict, Verdict::NonStrict);
    let saved = json_files(dir.path());
    assert!(!saved.is_empty());

    let again = certify_subject(&subject("broken-tid-4"), cfg(96, 3, dir.path()));
    assert_eq!(again.verdict, Verdict::NonStrict);
    assert!(!again.replay_only, "a warning does not stop the run");
    assert_eq!(again.cases, 96);
    assert!(again
        .replayed
        .iter()
        .any(|r| r.violations.contains(&id::TID_4)));
    let f = again
        .findings
        .iter()
        .find(|f| f.violation.rule == id::TID_4)
        .expect("found again");
    let m = f.minimal.as_ref().unwrap();
    assert!(
        saved.contains(m.saved_to.as_ref().unwrap()),
        "{:?}",
        m.saved_to
    );
    // No new file for the known warning (another fingerprint may be new).
    let new: Vec<PathBuf> = json_files(dir.path())
        .into_iter()
        .filter(|p| !saved.contains(p))
        .collect();
    let slug: String = f
        .fingerprint
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    assert!(
        new.iter().all(|p| !p.to_string_lossy().contains(&slug)),
        "a known warning ({slug}) added a file: {new:?}"
    );

    // Strict, the same saved warning fails at once.
    let strict = certify_subject(
        &subject("broken-tid-4"),
        Config {
            strict: true,
            ..cfg(96, 4, dir.path())
        },
    );
    assert_eq!(strict.verdict, Verdict::Fail);
    assert!(strict.replay_only);
}

/// A shard of a partitioned run leaves saved failures to the whole run, so
/// that the shards merge into exactly the unsharded result.
#[test]
fn comp_3_a_shard_does_not_replay_saved_failures() {
    let dir = tempfile::tempdir().unwrap();
    seeded_failures(dir.path());
    let shard = certify_subject(
        &subject("broken-comp-3"),
        Config {
            partition: Some(cpsim_certify::Partition::new(1, 2).unwrap()),
            ..cfg(64, 5, dir.path())
        },
    );
    assert!(shard.replayed.is_empty(), "{:#?}", shard.replayed);
    assert!(!shard.replay_only);
    assert!(shard.cases > 0 && shard.cases < 64, "{}", shard.cases);
}

/// `cargo test` runs tests on several threads of one process, and they
/// share the package's `cpsim-regressions/`. A certification that saves a
/// case (and, for a known warning, removes the file it just wrote) while
/// another reads the folder must not make the other fail on a half-written
/// or vanished file.
#[test]
fn tid_4_a_case_saved_by_a_concurrent_certification_never_fails_another() {
    let dir = tempfile::tempdir().unwrap();
    let writer = {
        let dir = dir.path().to_path_buf();
        std::thread::spawn(move || {
            for seed in 0..40 {
                let c = Config {
                    threads: 1,
                    ..cfg(48, seed, &dir)
                };
                certify_subject(&subject("broken-tid-4"), c);
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let c = Config {
            threads: 1,
            ..cfg(1, reads, dir.path())
        };
        let cert = certify_subject(&subject("reference"), c);
        reads += 1;
        let broken: Vec<_> = cert.replayed.iter().filter(|r| r.error.is_some()).collect();
        assert!(broken.is_empty(), "after {reads} reads: {broken:#?}");
    }
    writer.join().unwrap();
    assert!(reads > 1, "the folder was read while the other wrote to it");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_none_or(|x| x != "json"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}
