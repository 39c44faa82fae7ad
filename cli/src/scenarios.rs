//! `cpsim run` and `cpsim replay`.

use crate::{BAD_INPUT, FAIL, PASS};
use cpsim_certify::scenario::{self, Scenario};
use cpsim_certify::Registry;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The scenario files under `paths` (files as given, directories searched
/// for `*.json`), sorted, each file once. Symbolic links are followed, but
/// a directory is entered only once (so a link back up the tree is no
/// loop), and a file reached by several paths (links, or a file and its
/// directory both given) runs once, under the first of its paths.
fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let canonical =
        |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new(); // (as shown, canonical)
    let mut entered: BTreeSet<PathBuf> = BTreeSet::new();
    for p in paths {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(format!("{}: {}", p.display(), scenario::missing(p)));
        }
        if !p.is_dir() {
            // Loading says what is wrong with anything else (a dangling or
            // looping link, a pipe, a device): it has no canonical path.
            let c = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            found.push((p.clone(), c));
            continue;
        }
        let mut stack = vec![p.clone()];
        while let Some(d) = stack.pop() {
            if !entered.insert(canonical(&d)?) {
                continue;
            }
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)
                .map_err(|e| format!("{}: {e}", d.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            // Reversed onto the stack, so subdirectories are walked in order.
            for e in entries.into_iter().rev() {
                if e.is_dir() {
                    stack.push(e);
                } else if e.extension().is_some_and(|x| x == "json")
                    && !e.ends_with("scenario.schema.json")
                {
                    // A dangling link has no canonical path: keep it, so that
                    // loading it reports the problem.
                    let c = std::fs::canonicalize(&e).unwrap_or_else(|_| e.clone());
                    found.push((e, c));
                }
            }
        }
    }
    found.sort();
    let mut seen = BTreeSet::new();
    Ok(found
        .into_iter()
        .filter(|(_, c)| seen.insert(c.clone()))
        .map(|(p, _)| p)
        .collect())
}

/// Events of a trace shown around a failure; `--verbose` shows them all.
const FAILURE_WINDOW: usize = 40;

/// A file's name for the one line `run` prints about it: control
/// characters a name may hold (a newline) are shown escaped (`\u{a}`), so
/// each file stays on one line.
fn shown(p: &Path) -> String {
    p.display()
        .to_string()
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn show_failure(s: &Scenario, run: &scenario::ScenarioRun, verbose: bool) {
    for f in &run.failures {
        println!("    expected: {f}");
    }
    let window = if verbose { 0 } else { FAILURE_WINDOW };
    let highlight = run.outcome.violations.first();
    let diagram = match highlight {
        Some(v) => cpsim_certify::diagram::text_for(&run.outcome.trace, v, window),
        None => cpsim_certify::diagram::text(&run.outcome.trace, None, window),
    };
    println!("    trace of `{}`:", s.name);
    for line in diagram.lines() {
        println!("    {line}");
    }
}

/// `--platform system`: Windows 7's own library.
fn platform_library(p: &Path) -> PathBuf {
    if p == Path::new("system") {
        PathBuf::from("iphlpapi.dll")
    } else {
        p.to_path_buf()
    }
}

pub fn run(
    registry: &Registry,
    paths: &[PathBuf],
    verbose: bool,
    platform: Option<&Path>,
    provider_lib: Option<&Path>,
) -> i32 {
    #[cfg(not(feature = "native"))]
    if platform.is_some() {
        eprintln!("cpsim: this cpsim was built without the native backend (feature `native`)");
        return BAD_INPUT;
    }
    #[cfg(feature = "native")]
    if let Some(p) = platform {
        // Say at once, not once per scenario, when the API is not there.
        let loaded = if p == Path::new("system") {
            cpsim_native::NativePlatform::system()
        } else {
            cpsim_native::NativePlatform::load(p)
        };
        if let Err(e) = loaded {
            eprintln!("cpsim: {e}");
            return BAD_INPUT;
        }
    }
    let platform = platform.map(platform_library);
    let files = match collect(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cpsim: {e}");
            return BAD_INPUT;
        }
    };
    if files.is_empty() {
        let given: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "cpsim: no scenario files (*.json) found in {}",
            given.join(", ")
        );
        return BAD_INPUT;
    }
    let (mut passed, mut failed, mut bad, mut skipped) = (0, 0, 0, 0);
    for f in &files {
        let mut s = match registry.load(f) {
            Ok(s) => s,
            Err(e) => {
                println!("ERROR {}", shown(f));
                eprintln!("cpsim: {e}");
                bad += 1;
                continue;
            }
        };
        if let (Some(lib), scenario::ProviderRef::Library(_)) = (provider_lib, &s.provider) {
            s.provider = scenario::ProviderRef::Library(lib.to_path_buf());
        }
        if let (Some(_), Some(why)) = (&platform, &s.simulator_only) {
            skipped += 1;
            println!("skip  {} (simulator only: {why})", shown(f));
            continue;
        }
        let result = match &platform {
            #[cfg(feature = "native")]
            Some(lib) => crate::native::run_native(registry, &s, lib),
            #[cfg(not(feature = "native"))]
            Some(_) => unreachable!("refused above"),
            None => registry.run(&s),
        };
        // Steps that did nothing: the author meant them to do something.
        if let Ok(r) = &result {
            for note in scenario::idle_notes(&s, &r.outcome) {
                eprintln!("cpsim: note: {}: {note}", shown(f));
            }
        }
        match result {
            Ok(r) if r.passed() => {
                passed += 1;
                // The rules broken as the scenario expects, in the order
                // they first were: a pass line shows what it passed on.
                let mut rules = Vec::new();
                for v in &r.outcome.violations {
                    if !rules.contains(&v.rule) {
                        rules.push(v.rule);
                    }
                }
                if rules.is_empty() {
                    println!("pass  {}", shown(f));
                } else {
                    let names: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
                    println!(
                        "pass  {} (broke {}, as expected)",
                        shown(f),
                        names.join(", ")
                    );
                }
                if verbose {
                    show_failure(&s, &r, true);
                }
            }
            Ok(r) => {
                failed += 1;
                println!("FAIL  {}", shown(f));
                show_failure(&s, &r, verbose);
            }
            Err(e) => {
                println!("ERROR {}", shown(f));
                eprintln!("cpsim: {}: {e}", shown(f));
                bad += 1;
            }
        }
    }
    if platform.is_some() {
        println!(
            "{passed} passed, {failed} failed, {skipped} skipped (simulator only), {bad} not loaded"
        );
    } else {
        println!("{passed} passed, {failed} failed, {bad} not loaded");
    }
    if bad > 0 {
        BAD_INPUT
    } else if failed > 0 {
        FAIL
    } else {
        PASS
    }
}

pub fn replay(registry: &Registry, file: &Path) -> i32 {
    let s = match registry.load(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cpsim: {e}");
            return BAD_INPUT;
        }
    };
    #[cfg(all(feature = "c-modules", any(unix, windows)))]
    if let scenario::ProviderRef::Library(_) = &s.provider {
        return replay_module(&s, file);
    }
    let r = match registry.run(&s) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cpsim: {}: {e}", file.display());
            return BAD_INPUT;
        }
    };
    for v in &r.outcome.violations {
        println!("{}", v.headline());
    }
    if let Some(v) = r.outcome.violations.first() {
        println!(
            "{}",
            cpsim_certify::diagram::text_for(&r.outcome.trace, v, 40)
        );
    }
    if r.passed() {
        println!("replayed: {} reproduces as expected", file.display());
        PASS
    } else {
        println!("replay of {} did NOT reproduce:", file.display());
        for f in &r.failures {
            println!("    expected: {f}");
        }
        FAIL
    }
}

/// Times a saved failure of a real-time module is replayed before the
/// replay says it did not recur.
#[cfg(all(feature = "c-modules", any(unix, windows)))]
pub const REAL_TIME_REPLAYS: usize = 5;

/// Whether a real-time run shows the saved failure again: its expectations
/// hold, or the rule of its first violation fired (steps differ from run
/// to run on the wall clock).
#[cfg(all(feature = "c-modules", any(unix, windows)))]
fn recurs(s: &Scenario, r: &scenario::ScenarioRun) -> bool {
    if r.passed() {
        return true;
    }
    match &s.expect.first_violation {
        Some(fv) => r.outcome.violations.iter().any(|v| v.rule == fv.rule),
        None => false,
    }
}

/// `cpsim replay` of a scenario naming a C module: in a case runner, as
/// certification ran it. A virtual-time module replays exactly, once; a
/// real-time one up to [`REAL_TIME_REPLAYS`] times, and a failure that does
/// not show again is called what it is: a timing-dependent one that did not
/// recur, not a mismatch.
#[cfg(all(feature = "c-modules", any(unix, windows)))]
fn replay_module(s: &Scenario, file: &Path) -> i32 {
    let lib = match crate::isolate::open_scenario_library(s) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cpsim: {}: {e}", file.display());
            return BAD_INPUT;
        }
    };
    let real_time = lib.clock() == cpsim_sim::ClockMode::RealTime;
    let attempts = if real_time { REAL_TIME_REPLAYS } else { 1 };
    let mut seen = Vec::new();
    for k in 1..=attempts {
        let r = match lib.run_scenario(s) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cpsim: {}: {e}", file.display());
                return BAD_INPUT;
            }
        };
        if let Some(p) = lib.broken_promise() {
            eprintln!("cpsim: {p}");
            return BAD_INPUT;
        }
        let ok = if real_time { recurs(s, &r) } else { r.passed() };
        if ok {
            for v in &r.outcome.violations {
                println!("{}", v.headline());
            }
            if let Some(v) = r.outcome.violations.first() {
                println!(
                    "{}",
                    cpsim_certify::diagram::text_for(&r.outcome.trace, v, 40)
                );
            }
            if real_time {
                println!(
                    "replayed: {} recurs (attempt {k} of at most {attempts}; in real time, steps may differ from the saved ones)",
                    file.display()
                );
            } else {
                println!("replayed: {} reproduces as expected", file.display());
            }
            return PASS;
        }
        let got: Vec<String> = r.outcome.violations.iter().map(|v| v.headline()).collect();
        seen.push((k, got, r.failures));
    }
    if real_time {
        let want = s
            .expect
            .first_violation
            .as_ref()
            .map(|fv| fv.rule.to_string())
            .unwrap_or_else(|| "its expectations".into());
        println!(
            "replay of {}: {want} did not recur in {attempts} runs. The module runs in real time \
             and this failure depends on timing (flaky): it happened once, with the trace kept in \
             the certification report, and did not happen again here.",
            file.display()
        );
        for (k, got, _) in &seen {
            if got.is_empty() {
                println!("    run {k}: no violation");
            } else {
                println!("    run {k}: {}", got.join("; "));
            }
        }
    } else {
        println!("replay of {} did NOT reproduce:", file.display());
        if let Some((_, _, failures)) = seen.first() {
            for f in failures {
                println!("    expected: {f}");
            }
        }
    }
    FAIL
}
