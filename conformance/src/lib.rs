//! `cpsim-certify`: property-based certification of Connectivity Platform
//! providers against the simulated platform of `cpsim-sim`: generated
//! schedules, scenario files, shrinking, replay and reports.
//!
//! This is what a provider author links from `cargo test`. It has no
//! command line, loads no native code and ships no providers; the `cpsim`
//! crate adds those (and `cpsim::main_with` gives a provider crate its own
//! `cpsim` binary over a [`Registry`] of its providers).
#![forbid(unsafe_code)]

pub mod certify;
pub mod diagram;
pub mod harness;
pub mod merge;
pub mod model;
pub mod registry;
pub mod report;
pub mod scenario;

pub use certify::{certify, certify_subject, Config, External, Invocation, Subject};
pub use harness::ScenarioTests;
pub use model::{Certification, Finding, MinimalCase, Partition, Replayed, RuleStat, Verdict};
pub use registry::{Entry, Kind, ModuleRunner, Registry};
