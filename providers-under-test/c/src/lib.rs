//! Provider modules written in C, compiled by this crate's build script:
//! `sample` (correct, real time), `sample_vt` (correct, virtual time), and
//! modules with exactly one defect each (some of them subtle: [`SUBTLE`]),
//! or one hostile behaviour. See
//! `docs/c-providers.md` and the comment at the top of each `.c` file.
#![forbid(unsafe_code)]

use cpsim_sim::RuleId;
use std::path::PathBuf;

/// What a module is expected to do under certification.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Passes, every required rule exercised.
    Pass,
    /// Caught breaking this rule.
    Breaks(RuleId),
    /// Refused before any case: cpsim cannot certify it as it says it is
    /// (exit 2, an error naming what is wrong).
    Refused,
}

/// Every correct or broken module: (name, what certification should find).
pub const MODULES: &[(&str, Expect)] = &[
    ("sample", Expect::Pass),
    ("sample_vt", Expect::Pass),
    ("fixed_ports", Expect::Pass),
    ("broken_comp3", Expect::Breaks(cpsim_sim::rules::id::COMP_3)),
    ("broken_comp4", Expect::Breaks(cpsim_sim::rules::id::COMP_4)),
    ("broken_life5", Expect::Breaks(cpsim_sim::rules::id::LIFE_5)),
    (
        "vt_broken_comp4",
        Expect::Breaks(cpsim_sim::rules::id::COMP_4),
    ),
    ("crash", Expect::Breaks(cpsim_sim::rules::id::CRASH_1)),
    ("hang", Expect::Breaks(cpsim_sim::rules::id::TIME_1)),
    (
        "hostile_thread_left",
        Expect::Breaks(cpsim_sim::rules::id::LIFE_8),
    ),
    ("vt_thread", Expect::Refused),
    ("vt_sleep", Expect::Refused),
];

/// Subtle single-bug modules (virtual time): each breaks its rule only
/// under a rare condition; `subtle/<name>.json` is a directed scenario
/// proving it (its `provider.library` names the module's file next to it;
/// `cpsim run --provider-lib <built module> <file>` runs it against a build
/// elsewhere, as the tests do). `cpsim kill-matrix --subtle --provider-lib
/// <module> --rule <rule>` measures how fast certification finds each.
pub const SUBTLE: &[(&str, RuleId)] = &[
    ("vt_subtle_comp4_one_reach", cpsim_sim::rules::id::COMP_4),
    (
        "vt_subtle_life8_established_only",
        cpsim_sim::rules::id::LIFE_8,
    ),
    ("vt_subtle_data5_max_payload", cpsim_sim::rules::id::DATA_5),
];

/// The directed scenario of subtle module `name`.
pub fn subtle_scenario(name: &str) -> PathBuf {
    source_dir().join("subtle").join(format!("{name}.json"))
}

/// Modules that attack the harness itself (each has a test of its own):
/// crashing, exiting or hanging while loaded, exiting in a callback,
/// forking a lingering grandchild, writing without end, a bug that strikes
/// once, a virtual-time module that hides a thread, a start that fails on
/// one host.
pub const HOSTILE: &[&str] = &[
    "hostile_ctor_crash",
    "hostile_ctor_exit",
    "hostile_ctor_hang",
    "hostile_exit",
    "hostile_fork",
    "hostile_noisy",
    "flaky_once",
    "vt_sneaky",
    "hostile_start_fails",
];

/// The built module `name` (`lib<name>.so`; on Windows `<name>.dll`), if
/// this target builds it.
pub fn module(name: &str) -> Option<PathBuf> {
    let file = if cfg!(windows) {
        format!("{name}.dll")
    } else if cfg!(unix) {
        format!("lib{name}.so")
    } else {
        return None;
    };
    let p = PathBuf::from(env!("OUT_DIR")).join(file);
    p.exists().then_some(p)
}

/// The directory holding the C sources.
pub fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
