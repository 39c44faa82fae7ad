//! Every bundled scenario file as a test of its own, named after its path
//! (`rules::comp_3`, `stories::two_hosts_traffic`), through
//! [`cpsim_certify::ScenarioTests`]: `cargo test -p cpsim-certify --test
//! scenario_dir comp_3` runs one.

fn main() {
    cpsim_certify::ScenarioTests::new(cpsim_providers::registry())
        .dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"))
        .run();
}
