//! `cpsim run --platform`: the same scenario files, played on a native
//! platform through the native backend's bridge. Here the platform is the
//! stand-in library (`libcpsim_capi.so`, built with the workspace), which
//! can be scripted like the simulator.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The stand-in, next to the test binaries (`cargo test --workspace` builds it).
fn standin() -> PathBuf {
    let name = if cfg!(windows) {
        "cpsim_capi.dll"
    } else if cfg!(target_os = "macos") {
        "libcpsim_capi.dylib"
    } else {
        "libcpsim_capi.so"
    };
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_cpsim"));
    let dir = exe.parent().expect("the profile directory");
    // `cargo test` builds it in deps/, `cargo build` next to the binary: a
    // copy left by an older `cargo build` must not win, so the newest.
    let newest = [dir.join(name), dir.join("deps").join(name)]
        .into_iter()
        .filter_map(|c| Some((std::fs::metadata(&c).ok()?.modified().ok()?, c)))
        .max();
    if let Some((_, c)) = newest {
        return c;
    }
    panic!(
        "the stand-in {name} is not built in {}: run `cargo build -p cpsim-capi` first",
        dir.display()
    );
}

fn cpsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cpsim"))
        .current_dir(root())
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
fn scenarios_pass_on_the_stand_in_through_the_bridge() {
    let lib = standin();
    // The reference overlay with traffic, and a broken provider whose
    // second completion the bridge catches (COMP-4, as the scenario expects).
    let (code, out, err) = cpsim(&[
        "run",
        "--platform",
        lib.to_str().unwrap(),
        "scenarios/stories/two-hosts-traffic.json",
        "scenarios/rules/comp-4.json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
}

#[test]
fn comp_5_a_context_cut_to_32_bits_is_caught_by_the_bridge() {
    // broken-comp-5 completes TRANSITION_ACTIVE with its context cut to 32
    // bits, then with the real one: the scenario expects exactly COMP-5.
    let lib = standin();
    let (code, out, err) = cpsim(&[
        "run",
        "--platform",
        lib.to_str().unwrap(),
        "scenarios/rules/comp-5.json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1 passed, 0 failed, 0 skipped"), "{out}");
}

/// The bundled rule scenarios that only the simulator can show, each with
/// its reason in the file.
const SIMULATOR_ONLY: [&str; 7] = [
    "comp-7", "crash-1", "data-2", "data-3", "data-4", "reg-1", "tid-3",
];

#[test]
fn simulator_only_scenarios_are_skipped_on_a_native_platform_with_their_reason() {
    let lib = standin();
    let files: Vec<String> = SIMULATOR_ONLY
        .iter()
        .map(|r| format!("scenarios/rules/{r}.json"))
        .collect();
    let mut args = vec!["run", "--platform", lib.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = cpsim(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("0 passed, 0 failed, 7 skipped (simulator only), 0 not loaded"),
        "{out}"
    );
    for f in &files {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let why = v["simulator_only"].as_str().expect("a reason in the file");
        assert!(
            out.contains(&format!("skip  {f} (simulator only: {why})")),
            "{f} not reported skipped with its reason:\n{out}"
        );
    }
    // The simulator runs them as any other file, and they pass there.
    let mut args = vec!["run"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = cpsim(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("7 passed, 0 failed"), "{out}");
}

#[test]
fn only_the_simulator_only_rule_scenarios_are_marked() {
    // Every other bundled rule scenario is meant to pass on the stand-in.
    let dir = root().join("scenarios/rules");
    let mut marked = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if v.get("simulator_only").is_some() {
            marked.push(p.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    marked.sort();
    assert_eq!(marked, SIMULATOR_ONLY);
}

#[test]
fn an_empty_simulator_only_reason_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("scenarios/rules/comp-4.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["simulator_only"] = serde_json::json!(" ");
    let f = dir.path().join("no-reason.json");
    std::fs::write(&f, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let (code, _, err) = cpsim(&["run", f.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("simulator_only"), "{err}");
}

#[test]
fn a_failing_expectation_fails_on_the_stand_in_too() {
    let dir = tempfile::tempdir().unwrap();
    // The correct provider, but the scenario insists on a violation.
    let text = std::fs::read_to_string(root().join("scenarios/rules/comp-4.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["provider"] = serde_json::json!({"builtin": "reference"});
    let f = dir.path().join("reference-is-not-comp-4.json");
    std::fs::write(&f, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let lib = standin();
    let (code, out, _) = cpsim(&[
        "run",
        "--platform",
        lib.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("COMP-4"), "{out}");
}

#[test]
fn a_platform_without_the_api_is_a_clear_error() {
    let (code, _, err) = cpsim(&["run", "--platform", "system", "scenarios/rules/comp-4.json"]);
    if cfg!(windows) && code == 0 {
        return; // a real Windows 7
    }
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the Connectivity Platform API is not available on this system"),
        "{err}"
    );
    let other = if cfg!(windows) {
        "kernel32.dll"
    } else {
        "libm.so.6"
    };
    let (code, _, err) = cpsim(&["run", "--platform", other, "scenarios/rules/comp-4.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not available on this system"), "{err}");
}

#[test]
fn c_modules_are_refused_on_a_native_platform() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("scenarios/rules/comp-4.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["provider"] = serde_json::json!({"library": "libsample.so"});
    let f = dir.path().join("c-module.json");
    std::fs::write(&f, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let lib = standin();
    let (code, out, err) = cpsim(&[
        "run",
        "--platform",
        lib.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("C provider modules run on the simulator only"),
        "{err}"
    );
}
