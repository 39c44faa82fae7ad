#!/usr/bin/env bash
# Puts the JUnit schema CI servers validate reports against — the Jenkins
# xUnit plugin's junit-10.xsd — where the report tests look for it:
# $CARGO_TARGET_DIR/junit-schema/junit-10.xsd (target/ by default).
#
# It comes from a package: pytest's source distribution on PyPI ships that
# schema (testing/example_scripts/junit-10.xsd; pytest checks its own JUnit
# output against it). The version is pinned and the file's SHA-256 checked,
# so every run validates against the same schema. Nothing is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

version=9.2.0
sha256=a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6
dest="${CARGO_TARGET_DIR:-target}/junit-schema/junit-10.xsd"

have() { [ -f "$dest" ] && echo "$sha256  $dest" | sha256sum --check --status; }
if have; then
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "ci/junit-schema.sh: installing pip (python3-pip)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends python3-pip >/dev/null 2>&1 || {
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends python3-pip >/dev/null
  }
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
  --no-binary :all: "pytest==$version" -d "$tmp"
member="pytest-$version/testing/example_scripts/junit-10.xsd"
tar -xzf "$tmp/pytest-$version.tar.gz" -C "$tmp" "$member"
got=$(sha256sum "$tmp/$member" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
  echo "ci/junit-schema.sh: $member has SHA-256 $got, expected $sha256" >&2
  exit 1
fi
mkdir -p "$(dirname "$dest")"
cp "$tmp/$member" "$dest"
have
echo "ci/junit-schema.sh: $dest (junit-10.xsd from pytest $version)"
