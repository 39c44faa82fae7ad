//! A directory of scenario files as tests: one named test per file, run by
//! `cargo test` (and `cargo nextest`) like any other test.
//!
//! Put it in a test target with `harness = false`:
//!
//! ```toml
//! [[test]]
//! name = "scenarios"
//! harness = false
//! ```
//!
//! ```no_run
//! // tests/scenarios.rs
//! # fn my_registry() -> cpsim_certify::Registry { unimplemented!() }
//! fn main() {
//!     cpsim_certify::ScenarioTests::new(my_registry())
//!         .dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
//!         .run();
//! }
//! ```
//!
//! A file's test is named after its path below the directory, without
//! `.json`, with `/` as `::` and `-`, `.` and spaces as `_`: the file
//! `stories/two-hosts.json` is the test `stories::two_hosts`, so
//! `cargo test two_hosts` runs it alone. With [`ScenarioTests::by_rule`], a
//! file whose name holds a rule ID (`rules/comp-3.json`,
//! `subtle/subtle-comp-3-early.json`) is named after that rule first:
//! `comp_3_scenario::rules::comp_3`, so `cargo test comp_3` selects it with
//! the rule's other tests. The arguments libtest takes that
//! matter here are honoured: filters (substring, or whole names with
//! `--exact`), `--skip`, `--list` (with `--format terse`, as nextest asks),
//! `--ignored` and `--include-ignored`, `-q`; the others (`--nocapture`,
//! `--test-threads`, `--color`, …) are accepted and change nothing.
//!
//! A test passes when the file loads and every expectation holds; a
//! failure shows what was expected and the trace. The process exits 0 when
//! every test run passed, 101 otherwise (as libtest does).

use crate::registry::Registry;
use crate::scenario::{Scenario, ScenarioRun};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Scenario files run as named tests (see the [module](self) docs).
pub struct ScenarioTests {
    registry: Registry,
    dirs: Vec<PathBuf>,
    ignored: Vec<String>,
    by_rule: bool,
}

/// One test: a scenario file and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTest {
    /// The test's name (see the [module](self) docs).
    pub name: String,
    /// The scenario file.
    pub file: PathBuf,
    /// Run only with `--ignored` or `--include-ignored`.
    pub ignored: bool,
}

/// What the command line asked for.
#[derive(Default, Debug)]
struct Args {
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    list: bool,
    terse: bool,
    ignored: bool,
    include_ignored: bool,
    quiet: bool,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("option `{name}` needs a value")),
            }
        };
        match flag {
            "--exact" => a.exact = true,
            "--list" => a.list = true,
            "--ignored" => a.ignored = true,
            "--include-ignored" => a.include_ignored = true,
            "-q" | "--quiet" => a.quiet = true,
            "--skip" => a.skip.push(value("--skip")?),
            "--format" => match value("--format")?.as_str() {
                "terse" => a.terse = true,
                "pretty" => a.terse = false,
                other => {
                    return Err(format!(
                        "--format {other}: this harness writes `pretty` or `terse`"
                    ))
                }
            },
            // Accepted, and nothing to do here.
            "--nocapture"
            | "--show-output"
            | "--test"
            | "--bench"
            | "--report-time"
            | "--ensure-time"
            | "--shuffle"
            | "--force-run-in-process" => {}
            "--test-threads" | "--color" | "--logfile" | "-Z" | "--shuffle-seed" => {
                value(flag)?;
            }
            f if f.starts_with('-') => {
                return Err(format!(
                    "unknown option `{f}` (this is cpsim's scenario harness)"
                ))
            }
            _ => a.filters.push(arg.clone()),
        }
    }
    Ok(a)
}

/// The rule whose ID the file's name holds (`comp-3`, `subtle-comp-3-x`):
/// the first two neighbouring `-`/`_`-separated words that make one.
fn rule_of(rel: &Path) -> Option<cpsim_sim::RuleId> {
    let stem = rel.file_stem()?.to_string_lossy().to_uppercase();
    let words: Vec<&str> = stem.split(['-', '_']).collect();
    words
        .windows(2)
        .find_map(|w| cpsim_sim::RuleId::parse(&format!("{}-{}", w[0], w[1])))
}

/// A test name from a path below the directory.
fn test_name(rel: &Path) -> String {
    let stem = rel.with_extension("");
    stem.components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .chars()
                .map(|ch| {
                    if matches!(ch, '-' | '.' | ' ') {
                        '_'
                    } else {
                        ch
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("::")
}

impl ScenarioTests {
    /// Scenario files naming the providers of `registry`.
    pub fn new(registry: Registry) -> ScenarioTests {
        ScenarioTests {
            registry,
            dirs: Vec::new(),
            ignored: Vec::new(),
            by_rule: false,
        }
    }

    /// Every `*.json` below `dir`, recursively (`*.schema.json` aside). A
    /// relative path is taken from the working directory, which cargo sets
    /// to the package's root when it runs a test.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> ScenarioTests {
        self.dirs.push(dir.into());
        self
    }

    /// Names each file whose name holds a rule ID of the catalogue after
    /// that rule first: `rules/comp-3.json` is the test
    /// `comp_3_scenario::rules::comp_3` (see the [module](self) docs).
    pub fn by_rule(mut self) -> ScenarioTests {
        self.by_rule = true;
        self
    }

    /// Marks the test `name` ignored: it runs only with `--ignored` or
    /// `--include-ignored`.
    pub fn ignore(mut self, name: impl Into<String>) -> ScenarioTests {
        self.ignored.push(name.into());
        self
    }

    /// Every test, in name order. Errors: a directory that cannot be read,
    /// or two files that give the same name.
    pub fn tests(&self) -> Result<Vec<FileTest>, String> {
        let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in &self.dirs {
            let mut stack = vec![dir.clone()];
            while let Some(d) = stack.pop() {
                let entries = std::fs::read_dir(&d)
                    .map_err(|e| format!("{}: cannot read the directory: {e}", d.display()))?;
                for e in entries {
                    let p = e
                        .map_err(|e| format!("{}: cannot read the directory: {e}", d.display()))?
                        .path();
                    if p.is_dir() {
                        stack.push(p);
                        continue;
                    }
                    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                    let Some(name) = name else { continue };
                    if !name.ends_with(".json") || name.ends_with(".schema.json") {
                        continue;
                    }
                    let rel = p.strip_prefix(dir).unwrap_or(&p);
                    let mut test = test_name(rel);
                    if let Some(rule) = rule_of(rel).filter(|_| self.by_rule) {
                        let id = rule.as_str().to_lowercase().replace('-', "_");
                        test = format!("{id}_scenario::{test}");
                    }
                    if let Some(other) = by_name.insert(test.clone(), p.clone()) {
                        return Err(format!(
                            "{} and {} would both be the test `{test}`: rename one",
                            other.display(),
                            p.display()
                        ));
                    }
                }
            }
        }
        Ok(by_name
            .into_iter()
            .map(|(name, file)| FileTest {
                ignored: self.ignored.contains(&name),
                name,
                file,
            })
            .collect())
    }

    /// Runs the tests the process's arguments select and exits with libtest's
    /// exit code (0: every test run passed; 101 otherwise).
    pub fn run(self) -> ! {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let code = self.run_with_args(&args, &mut std::io::stdout().lock());
        std::process::exit(code)
    }

    /// Runs the tests `args` select (libtest's arguments, without the
    /// program name), writing libtest-style lines to `out`; returns the exit
    /// code.
    pub fn run_with_args(&self, args: &[String], out: &mut dyn Write) -> i32 {
        // A provider's panic is a CRASH-1 finding, shown with the trace.
        cpsim_sim::runtime::quiet_provider_panics();
        let a = match parse_args(args) {
            Ok(a) => a,
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                return 101;
            }
        };
        let tests = match self.tests() {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                return 101;
            }
        };
        let total = tests.len();
        let matches = |t: &FileTest| {
            let hit = |f: &String| {
                if a.exact {
                    t.name == *f
                } else {
                    t.name.contains(f.as_str())
                }
            };
            (a.filters.is_empty() || a.filters.iter().any(hit)) && !a.skip.iter().any(hit)
        };
        let selected: Vec<&FileTest> = tests
            .iter()
            .filter(|t| matches(t) && (!a.ignored || t.ignored))
            .collect();
        let filtered_out = total - selected.len();

        if a.list {
            for t in &selected {
                let _ = writeln!(out, "{}: test", t.name);
            }
            if !a.terse {
                let _ = writeln!(out, "\n{} tests, 0 benchmarks", selected.len());
            }
            return 0;
        }

        let started = Instant::now();
        let _ = writeln!(
            out,
            "\nrunning {} test{}",
            selected.len(),
            if selected.len() == 1 { "" } else { "s" }
        );
        let (mut passed, mut ignored) = (0, 0);
        let mut failures: Vec<(&str, String)> = Vec::new();
        for t in &selected {
            let runs = !t.ignored || a.ignored || a.include_ignored;
            let verdict = if runs {
                match self.run_one(&t.file) {
                    Ok(()) => {
                        passed += 1;
                        "ok"
                    }
                    Err(why) => {
                        failures.push((&t.name, why));
                        "FAILED"
                    }
                }
            } else {
                ignored += 1;
                "ignored"
            };
            if a.quiet {
                let c = match verdict {
                    "ok" => ".",
                    "ignored" => "i",
                    _ => "F",
                };
                let _ = write!(out, "{c}");
            } else {
                let _ = writeln!(out, "test {} ... {verdict}", t.name);
            }
        }
        if a.quiet && !selected.is_empty() {
            let _ = writeln!(out);
        }
        if !failures.is_empty() {
            let _ = writeln!(out, "\nfailures:\n");
            for (name, why) in &failures {
                let _ = writeln!(out, "---- {name} stdout ----\n{why}\n");
            }
            let _ = writeln!(out, "failures:");
            for (name, _) in &failures {
                let _ = writeln!(out, "    {name}");
            }
        }
        let _ = writeln!(
            out,
            "\ntest result: {}. {passed} passed; {} failed; {ignored} ignored; 0 measured; {filtered_out} filtered out; finished in {:.2}s\n",
            if failures.is_empty() { "ok" } else { "FAILED" },
            failures.len(),
            started.elapsed().as_secs_f64()
        );
        if failures.is_empty() {
            0
        } else {
            101
        }
    }

    /// Loads and runs one file; the error says what went wrong.
    fn run_one(&self, file: &Path) -> Result<(), String> {
        let s = self.registry.load(file).map_err(|e| e.to_string())?;
        let registry = &self.registry;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| registry.run(&s)))
            .map_err(|p| {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                format!("{}: the run panicked: {msg}", file.display())
            })?
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if run.passed() {
            Ok(())
        } else {
            Err(explain(file, &s, &run))
        }
    }
}

/// What a failed scenario shows: each expectation that failed, then the
/// trace around the first violation (or its start).
pub fn explain(file: &Path, s: &Scenario, run: &ScenarioRun) -> String {
    let mut m = format!("{}: scenario `{}` failed\n", file.display(), s.name);
    for f in &run.failures {
        m.push_str(&format!("    expected: {f}\n"));
    }
    let diagram = match run.outcome.violations.first() {
        Some(v) => crate::diagram::text_for(&run.outcome.trace, v, 40),
        None => crate::diagram::text(&run.outcome.trace, None, 40),
    };
    for n in crate::scenario::idle_notes(s, &run.outcome) {
        m.push_str(&format!("    note: {n}\n"));
    }
    m.push_str("    trace:\n");
    for line in diagram.lines() {
        m.push_str(&format!("    {line}\n"));
    }
    m
}
