//! `conformance`: property-based certification of CP providers against the
//! simulated platform of `sim-cp`, and the `cpsim` CLI.

pub mod certify;
pub mod cli;
pub mod diagram;
pub mod isolate;
pub mod model;
pub mod report;
pub mod scenario;

pub use certify::{certify, certify_subject, Config, Subject};
pub use model::{Certification, Finding, MinimalCase, RuleStat, Verdict};
