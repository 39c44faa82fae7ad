//! `cpsim run` and `cpsim replay`.

use crate::{BAD_INPUT, FAIL, PASS};
use cpsim_certify::scenario::{self, Scenario};
use cpsim_certify::Registry;
use std::path::{Path, PathBuf};

fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)
                    .map_err(|e| format!("{}: {e}", d.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .collect();
                entries.sort();
                for e in entries {
                    if e.is_dir() {
                        stack.push(e);
                    } else if e.extension().is_some_and(|x| x == "json")
                        && !e.ends_with("scenario.schema.json")
                    {
                        out.push(e);
                    }
                }
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    out.sort();
    Ok(out)
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
