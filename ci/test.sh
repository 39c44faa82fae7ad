#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then
# the Linux tier (formatting, lints, every test of the workspace) and the
# Windows tier (ci/windows-tier.sh: lints for the Windows target, and the
# Windows test binaries under Wine).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
command -v xmllint >/dev/null 2>&1 || need_apt+=(libxml2-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ci/test.sh: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 || {
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null
  }
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The JUnit schema the report tests validate against (from a PyPI package),
# fetched while the build runs.
junit_log=$(mktemp)
bash ci/junit-schema.sh >"$junit_log" 2>&1 &
junit_schema=$!

echo "==== Linux tier"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== the JUnit schema (ci/junit-schema.sh)"
if ! wait "$junit_schema"; then
  cat "$junit_log"
  echo "ci/test.sh: could not get junit-10.xsd" >&2
  exit 1
fi
cat "$junit_log"
rm -f "$junit_log"
echo "== cargo test"
cargo test --workspace
echo "== certification at scale: 200,000 cases of each correct provider, no finding"
cargo test -p cpsim-certify --test at_scale -- --ignored --nocapture
echo "== the provider template, as a crate outside this repository (ci/template.sh)"
bash ci/template.sh
echo "==== Linux tier passed"

echo "==== Windows tier (clippy for x86_64-pc-windows-gnu, tests under Wine)"
bash ci/windows-tier.sh
