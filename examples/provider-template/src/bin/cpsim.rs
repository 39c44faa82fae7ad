//! This crate's own `cpsim`: the whole command line (certify, run, replay,
//! kill-matrix, reports) over this crate's providers.
//!
//! ```sh
//! cargo run --features cli -- providers
//! cargo run --features cli -- certify --provider my-provider --report-dir target/cpsim-report
//! cargo run --features cli -- run scenarios/
//! cargo run --features cli -- replay cpsim-regressions/FILE.json
//! ```

use cpsim::{Entry, Registry};

fn main() {
    // Every provider this binary knows, by name: what scenario files and
    // `certify --provider` name. `Entry::of` takes the factory's own name.
    let providers = Registry::new().with(Entry::of(my_provider::factory));
    std::process::exit(cpsim::main_with(providers, std::env::args_os()));
}
