//! The provider against every rule of the contract, over generated
//! schedules. Like proptest: saved failures (in `cpsim-regressions/`) are
//! replayed first, and the environment steers a run without editing code:
//!
//! ```sh
//! CPSIM_CASES=5000 cargo test --test certify          # a bigger budget
//! CPSIM_SEED=1234 cargo test --test certify           # one seed again
//! CPSIM_REPLAY=cpsim-regressions/FILE.json cargo test --test certify
//! ```

use cpsim_certify::{certify, Config};

#[test]
fn my_provider_keeps_the_contract() {
    certify(my_provider::factory, Config::default()).assert_pass();
}
