//! `conformance`: property-based certification of CP providers against the
//! simulated platform of `sim-cp`, and the `cpsim` CLI.

pub mod model;
pub mod scenario;
pub mod diagram;
pub mod report;
