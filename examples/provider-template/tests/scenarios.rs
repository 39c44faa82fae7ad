//! Every scenario file under `scenarios/` as a test of its own, named after
//! its path: `cargo test two_hosts` runs `scenarios/two-hosts.json`.

use cpsim_certify::{Entry, Registry, ScenarioTests};

fn main() {
    // The providers scenario files may name (the same as src/bin/cpsim.rs).
    let providers = Registry::new().with(Entry::of(my_provider::factory));
    ScenarioTests::new(providers)
        .dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
        .run();
}
