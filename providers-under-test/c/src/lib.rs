//! Provider modules written in C, compiled by this crate's build script:
//! `sample` (correct), and modules with exactly one defect each. See
//! `docs/c-providers.md` and the comment at the top of each `.c` file.

use cpsim_sim::RuleId;
use std::path::PathBuf;

/// What a module is expected to do under certification.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Passes, every required rule exercised.
    Pass,
    /// Caught breaking this rule.
    Breaks(RuleId),
}

/// Every module: (name, source file, what certification should find).
pub const MODULES: &[(&str, Expect)] = &[
    ("sample", Expect::Pass),
    ("broken_comp3", Expect::Breaks(cpsim_sim::rules::id::COMP_3)),
    ("broken_comp4", Expect::Breaks(cpsim_sim::rules::id::COMP_4)),
    ("broken_life5", Expect::Breaks(cpsim_sim::rules::id::LIFE_5)),
    ("crash", Expect::Breaks(cpsim_sim::rules::id::CRASH_1)),
    ("hang", Expect::Breaks(cpsim_sim::rules::id::TIME_1)),
];

/// The built module `name` (`lib<name>.so`), if this target builds C modules.
pub fn module(name: &str) -> Option<PathBuf> {
    if !cfg!(unix) {
        return None;
    }
    let p = PathBuf::from(env!("OUT_DIR")).join(format!("lib{name}.so"));
    p.exists().then_some(p)
}

/// The directory holding the C sources.
pub fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
