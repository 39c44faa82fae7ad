//! The `cpsim` command line. Exit codes: 0 pass, 1 certification or
//! scenario failure, 2 bad usage or bad input.

mod certify;
mod rules;
mod scenarios;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// Exit code: everything passed.
pub const PASS: i32 = 0;
/// Exit code: a certification or scenario failed.
pub const FAIL: i32 = 1;
/// Exit code: bad usage or bad input.
pub const BAD_INPUT: i32 = 2;

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
    /// List the built-in providers (correct and deliberately broken).
    Providers,
    /// Certify a provider against every rule with generated schedules.
    Certify(certify::Args),
    /// Certify every broken provider and print which rules each one trips.
    KillMatrix(certify::MatrixArgs),
    /// Run scenario files (directories are searched for *.json).
    Run {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print each scenario's trace, not only failing ones.
        #[arg(long)]
        verbose: bool,
        /// Run on a native platform instead of the simulator: the library
        /// at this path (the stand-in `libcpsim_capi.so`/`cpsim_capi.dll`,
        /// which can be scripted), or `system` for Windows 7's iphlpapi.dll.
        #[arg(long, value_name = "LIBRARY")]
        platform: Option<PathBuf>,
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
    /// Internal: run one case of a C provider module (the scenario on
    /// stdin) and write its outcome to FILE. Used by the harness to isolate
    /// modules in child processes.
    #[command(name = "__run-case", hide = true)]
    RunCase {
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs the CLI; returns the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    // Provider panics become CRASH-1 findings; do not spray them on stderr.
    sim_cp::runtime::quiet_provider_panics();
    // C provider modules run each case in a child process: this binary.
    if crate::isolate::runner().is_none() {
        crate::isolate::set_runner(std::env::current_exe().ok());
    }
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
            for e in providers_under_test::registry() {
                println!("{}", e.name);
            }
            PASS
        }
        Command::Certify(a) => certify::run(a),
        Command::KillMatrix(a) => certify::kill_matrix(a),
        Command::Run {
            paths,
            verbose,
            platform,
        } => scenarios::run(&paths, verbose, platform.as_deref()),
        Command::Replay { file } => scenarios::replay(&file),
        Command::Rules { json } => rules::list(json),
        Command::Explain { rule } => rules::explain(&rule),
        Command::RunCase { out } => crate::isolate::child_main(&out),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::scenario::json_schema())
                    .expect("a schema serialises")
            );
            PASS
        }
    }
}
