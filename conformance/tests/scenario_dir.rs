//! Every bundled scenario file as a test of its own, named after its path
//! and, for a rule's file, after its rule first (`comp_3_scenario::rules::comp_3`,
//! `comp_3_scenario::subtle::subtle_comp_3_raw_warm_activation`,
//! `stories::two_hosts_traffic`), through [`cpsim_certify::ScenarioTests`]:
//! `cargo test comp_3` runs COMP-3's files with the rule's other tests.

fn main() {
    cpsim_certify::ScenarioTests::new(cpsim_providers::registry())
        .dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"))
        .by_rule()
        .run();
}
