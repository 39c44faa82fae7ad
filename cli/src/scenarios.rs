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
        if !p.exists() {
            return Err(format!("{}: no such file or directory", p.display()));
        }
        if !p.is_dir() {
            found.push((p.clone(), canonical(p)?));
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

fn show_failure(s: &Scenario, run: &scenario::ScenarioRun) {
    for f in &run.failures {
        println!("    expected: {f}");
    }
    let highlight = run.outcome.violations.first();
    let diagram = match highlight {
        Some(v) => cpsim_certify::diagram::text_for(&run.outcome.trace, v, 40),
        None => cpsim_certify::diagram::text(&run.outcome.trace, None, 40),
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

pub fn run(registry: &Registry, paths: &[PathBuf], verbose: bool, platform: Option<&Path>) -> i32 {
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
        eprintln!("cpsim: no scenario files (*.json) found");
        return BAD_INPUT;
    }
    let (mut passed, mut failed, mut bad) = (0, 0, 0);
    for f in &files {
        let s = match registry.load(f) {
            Ok(s) => s,
            Err(e) => {
                println!("ERROR {}", f.display());
                eprintln!("cpsim: {e}");
                bad += 1;
                continue;
            }
        };
        let result = match &platform {
            #[cfg(feature = "native")]
            Some(lib) => crate::native::run_native(registry, &s, lib),
            #[cfg(not(feature = "native"))]
            Some(_) => unreachable!("refused above"),
            None => registry.run(&s),
        };
        match result {
            Ok(r) if r.passed() => {
                passed += 1;
                println!("pass  {}", f.display());
                if verbose {
                    show_failure(&s, &r);
                }
            }
            Ok(r) => {
                failed += 1;
                println!("FAIL  {}", f.display());
                show_failure(&s, &r);
            }
            Err(e) => {
                println!("ERROR {}", f.display());
                eprintln!("cpsim: {}: {e}", f.display());
                bad += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed, {bad} not loaded");
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
