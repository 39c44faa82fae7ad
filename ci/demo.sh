#!/usr/bin/env bash
# The main job on the bundled example: certify the reference provider
# (reports in target/cpsim-report/) and run every bundled scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cpsim --bin cpsim
./target/release/cpsim certify --provider reference --seed 1 --report-dir target/cpsim-report
./target/release/cpsim run scenarios/
