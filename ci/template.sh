#!/usr/bin/env bash
# The provider template (examples/provider-template) built and tested as a
# crate outside this repository would be: its own workspace and lockfile,
# path dependencies on the cpsim crates. Proves the getting-started path of
# the provider guide still works: the provider certifies from `cargo test`,
# its scenario files run as tests, its own `cpsim` binary certifies, runs and
# replays them, and the provider's dependency tree (normal and dev edges)
# holds none of the CLI, C, native or demo-provider crates.
#
# It shares the repository's target folder, so the registry crates the
# workspace already built are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
cd examples/provider-template
step() { echo "== [template] $*"; }

step "cargo fmt --check"
cargo fmt -- --check

step "dependency tree of the provider (normal and dev edges, default features)"
tree=$(cargo tree --locked -e normal,dev --prefix none --format '{p}')
banned='^(cpsim|clap|cpsim-cmod|cpsim-native|cpsim-providers|cpsim-c-providers|cc|libloading|indicatif) v'
if grep -E "$banned" <<<"$tree"; then
  echo "template: the provider's dependency tree holds the crates above; it must not" >&2
  exit 1
fi
grep -qE '^cpsim-certify v' <<<"$tree" || {
  echo "template: cpsim-certify is missing from the dev-dependencies" >&2
  exit 1
}

step "cargo clippy --all-targets --features cli -- -D warnings"
cargo clippy --locked --all-targets --features cli -- -D warnings

# One feature set for everything, so the crates build once: the tests, and
# the `cpsim` binary they sit next to.
step "cargo test --features cli"
cargo test --locked --features cli

if cargo nextest --version >/dev/null 2>&1; then
  step "cargo nextest run --features cli (the same tests, one process each)"
  cargo nextest run --locked --features cli
fi

step "its own cpsim: providers, certify, run, replay"
cpsim="$CARGO_TARGET_DIR/debug/cpsim"
[ "$("$cpsim" providers)" = "my-provider" ] || {
  echo "template: \`cpsim providers\` does not list exactly my-provider" >&2
  exit 1
}
"$cpsim" certify --provider my-provider --cases 64 --seed 1 --regressions "$CARGO_TARGET_DIR/template-regressions"
"$cpsim" run scenarios/
"$cpsim" replay scenarios/two-hosts.json

step "one case replayed alone from cargo test (CPSIM_REPLAY)"
out=$(CPSIM_REPLAY=scenarios/two-hosts.json cargo test --locked --features cli --test certify 2>&1) || {
  echo "$out"
  exit 1
}
grep -q "test my_provider_keeps_the_contract ... ok" <<<"$out" || {
  echo "$out"
  echo "template: CPSIM_REPLAY did not run the certification test" >&2
  exit 1
}
# A file that cannot be replayed fails the test, naming it: the variable is read.
bad="$CARGO_TARGET_DIR/template-not-a-scenario.json"
echo '{"version": 1' >"$bad"
if out=$(CPSIM_REPLAY="$bad" cargo test --locked --features cli --test certify 2>&1); then
  echo "$out"
  echo "template: CPSIM_REPLAY naming a broken file did not fail the test" >&2
  exit 1
fi
grep -q "saved failure $bad cannot be replayed" <<<"$out" || {
  echo "$out"
  echo "template: the failure does not name the file CPSIM_REPLAY gave" >&2
  exit 1
}

step "passed"
