//! The `cpsim` command line, as a library: the stock `cpsim` binary runs
//! it over this repository's demo providers, and a provider crate gets the
//! same CLI for its own providers with [`main_with`]:
//!
//! ```no_run
//! use cpsim_certify::{Entry, Registry};
//! # fn my_factory() -> std::sync::Arc<dyn cpsim_sim::ProviderFactory> { unimplemented!() }
//! fn main() {
//!     let mine = Registry::new().with(Entry::new("myprov", my_factory));
//!     std::process::exit(cpsim::main_with(mine, std::env::args_os()));
//! }
//! ```
//!
//! Exit codes: 0 pass, 1 certification or scenario failure (or an
//! incomplete merged run), 2 bad usage or bad input, 130 interrupted by
//! Ctrl-C (after the summary and the reports of what ran).
//!
//! Features (all on by default): `builtin` (the demo providers and the
//! `cpsim` binary), `c-modules` (provider modules written in C, each case in
//! a child process), `native` (`cpsim run --platform`: scenario files on a
//! native platform).
// `unsafe` only in `isolate` (fork, process groups, namespaces: the
// child-process edge), allowed there alone.
#![deny(unsafe_code)]

mod certify;
#[cfg(all(feature = "c-modules", any(unix, windows)))]
#[allow(unsafe_code)] // fork, process groups, namespaces: the child-process edge
pub mod isolate;
#[cfg(feature = "native")]
mod native;
mod rules;
mod scenarios;

pub use cpsim_certify::{Entry, Kind, Registry};

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// Exit code: everything passed.
pub const PASS: i32 = 0;
/// Exit code: a certification or scenario failed.
pub const FAIL: i32 = 1;
/// Exit code: bad usage or bad input.
pub const BAD_INPUT: i32 = 2;
/// Exit code: interrupted by Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;

#[derive(Parser)]
#[command(
    name = "cpsim",
    version,
    about = "Simulate the Windows 7 Connectivity Platform and certify CP providers against its contract"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the providers this binary knows (correct and deliberately broken).
    Providers,
    /// Certify a provider against every rule with generated schedules.
    Certify(certify::Args),
    /// Combine the report.json files of a partitioned run's shards into the
    /// whole run's report (JSON, JUnit, HTML).
    Merge(certify::MergeArgs),
    /// Certify every broken provider and print which rules each one trips.
    KillMatrix(certify::MatrixArgs),
    /// Run scenario files (directories are searched for *.json).
    Run {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print each scenario's whole trace, passing or failing (without
        /// it, only a failing one's, the 40 events around its failure).
        #[arg(long)]
        verbose: bool,
        /// Run on a native platform instead of the simulator: the library
        /// at this path (the stand-in `libcpsim_capi.so`/`cpsim_capi.dll`,
        /// which can be scripted), or `system` for Windows 7's iphlpapi.dll.
        #[arg(long, value_name = "LIBRARY")]
        platform: Option<PathBuf>,
        /// Run every file that names a C provider module
        /// (`provider.library`) with this module instead: a freshly built
        /// module checked against the files written for it.
        #[arg(long, value_name = "PATH")]
        provider_lib: Option<PathBuf>,
    },
    /// Replay one scenario file (a saved failure) and check it reproduces.
    Replay { file: PathBuf },
    /// Print the rule catalogue (and the project's decisions).
    Rules {
        /// As JSON: an array of {id, binds, level, source, text, ...}.
        #[arg(long)]
        json: bool,
    },
    /// Explain one rule: its text, source, what breaks it, how to fix a provider.
    Explain { rule: String },
    /// Print the JSON Schema of scenario files.
    Schema,
    /// Internal: a case runner for C provider modules (requests on stdin,
    /// answers on stdout). Used by the harness to keep modules in child
    /// processes.
    #[cfg(all(feature = "c-modules", any(unix, windows)))]
    #[command(name = "__run-case", hide = true)]
    RunCase,
}

/// This repository's demo providers: the correct ones and one broken
/// provider per provider rule (what the stock `cpsim` binary knows).
#[cfg(feature = "builtin")]
pub fn builtin_registry() -> Registry {
    cpsim_providers::registry()
}

/// Runs the stock CLI (the demo providers); returns the exit code.
#[cfg(feature = "builtin")]
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    main_with(builtin_registry(), args)
}

/// How to run this binary again, for the commands it prints: its name when
/// it was found on the `PATH` (`cpsim`), else the path it was run by
/// (`./cpsim`, `target/release/cpsim`: its bare name would not be found),
/// shell-quoted.
fn program_name(argv0: Option<&OsString>) -> String {
    let Some(a) = argv0.filter(|a| !a.is_empty()) else {
        return "cpsim".to_string();
    };
    let path = std::path::Path::new(a);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cpsim".to_string());
    // No directory in it: the shell found it on the PATH (or a test named it).
    if path.parent().is_none_or(|p| p.as_os_str().is_empty()) {
        return stem;
    }
    let a = a.to_string_lossy();
    // cmd and PowerShell take `C:\dir\cpsim.exe` as it is (a quoted one
    // would be a string to PowerShell, not a command).
    if cfg!(windows) && !a.contains([' ', '\'', '"']) {
        return a.into_owned();
    }
    cpsim_certify::certify::shell_quote(&a)
}

/// Runs the CLI over the providers of `registry`; returns the process exit
/// code. Scenario files name these providers, `certify --provider NAME`
/// certifies one, `kill-matrix` certifies its broken ones.
pub fn main_with(registry: Registry, args: impl IntoIterator<Item = OsString>) -> i32 {
    #[allow(unused_mut)]
    let mut registry = registry;
    // Provider panics become CRASH-1 findings; do not spray them on stderr.
    cpsim_sim::runtime::quiet_provider_panics();
    // C provider modules run each case in a child process: this binary.
    #[cfg(all(feature = "c-modules", any(unix, windows)))]
    {
        if isolate::runner().is_none() {
            isolate::set_runner(std::env::current_exe().ok());
        }
        registry.set_module_runner(std::sync::Arc::new(isolate::Modules));
    }
    let args: Vec<OsString> = args.into_iter().collect();
    // How the user called this binary, for the commands it prints.
    let program = program_name(args.first());
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { BAD_INPUT } else { PASS };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Providers => {
            for e in registry.entries() {
                println!("{}", e.name());
            }
            PASS
        }
        Command::Certify(a) => certify::run(&registry, a, &program),
        Command::KillMatrix(a) => certify::kill_matrix(&registry, a),
        Command::Merge(a) => certify::merge(a, &program),
        Command::Run {
            paths,
            verbose,
            platform,
            provider_lib,
        } => scenarios::run(
            &registry,
            &paths,
            verbose,
            platform.as_deref(),
            provider_lib.as_deref(),
        ),
        Command::Replay { file } => scenarios::replay(&registry, &file),
        Command::Rules { json } => rules::list(json),
        Command::Explain { rule } => rules::explain(&registry, &rule),
        #[cfg(all(feature = "c-modules", any(unix, windows)))]
        Command::RunCase => isolate::child_main(),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&cpsim_certify::scenario::json_schema())
                    .expect("a schema serialises")
            );
            PASS
        }
    }
}
