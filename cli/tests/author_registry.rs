//! The CLI over a provider crate's own registry (`cpsim::main_with`): a
//! provider this binary does not ship, named `myprov`, is certified, its
//! saved failure is replayed first by the next certification, and `run` and
//! `replay` take the file — with the commands printed naming this binary.
//! (The issue this answers: the printed `cpsim replay` failed with "unknown
//! provider" for any provider not built into the stock binary.)

use cpsim_certify::certify::{certify_subject, Config, Invocation};
use cpsim_certify::{Entry, Registry, Verdict};
use cpsim_sim::rules::id;
use std::ffi::OsString;

/// An author's registry: one provider, under the author's name for it.
fn mine() -> Registry {
    let broken = cpsim_providers::find("broken-comp-3").unwrap();
    Registry::new().with(Entry::new("myprov", move || broken.factory()))
}

fn cli(args: &[&str]) -> i32 {
    let args: Vec<OsString> = std::iter::once("myprov-cpsim")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect();
    cpsim::main_with(mine(), args)
}

#[test]
fn comp_3_saved_failure_of_an_outside_provider_runs_and_replays_through_its_own_cli() {
    let dir = tempfile::tempdir().unwrap();
    let regs = dir.path().join("cpsim-regressions");
    // Certified as the author's own CLI would: the failure is saved under
    // the author's provider name, and the commands name this binary.
    let cert = certify_subject(
        &mine().subject("myprov").unwrap(),
        Config {
            cases: 64,
            seed: Some(5),
            regressions: Some(regs.clone()),
            invocation: Invocation::Cli {
                program: "myprov-cpsim".into(),
                provider: "--provider myprov".into(),
            },
            ..Config::default()
        },
    );
    assert_eq!(cert.verdict, Verdict::Fail);
    let f = cert
        .findings
        .iter()
        .find(|f| f.violation.rule == id::COMP_3)
        .unwrap();
    let m = f.minimal.as_ref().unwrap();
    let file = m.saved_to.as_ref().unwrap();
    assert!(file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("myprov-"));
    assert_eq!(m.replay, format!("myprov-cpsim replay {}", file.display()));
    assert_eq!(
        cert.rerun,
        "myprov-cpsim certify --provider myprov --seed 5 --cases 64"
    );
    let saved = std::fs::read_to_string(file).unwrap();
    assert!(saved.contains(r#""name": "myprov""#), "{saved}");
    assert!(
        saved.contains("Found by `myprov-cpsim certify --provider myprov --seed 5 --cases 64`"),
        "{saved}"
    );

    let f = file.to_str().unwrap();
    // `replay`: it reproduces (exit 0); `run`: its expectations hold.
    assert_eq!(cli(&["replay", f]), 0);
    assert_eq!(cli(&["run", f]), 0);
    // The stock binary does not know `myprov`: bad input, as before.
    let stock = cpsim::main([OsString::from("cpsim"), "run".into(), f.into()]);
    assert_eq!(stock, 2);
    // `certify` replays it first and fails on it, generating nothing.
    let r = regs.to_str().unwrap();
    assert_eq!(
        cli(&[
            "certify",
            "--provider",
            "myprov",
            "--cases",
            "5000",
            "--regressions",
            r
        ]),
        1
    );
    assert_eq!(cli(&["providers"]), 0);
}
