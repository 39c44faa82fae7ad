#!/usr/bin/env bash
# The Windows tier, on Linux: lint every crate for x86_64-pc-windows-gnu,
# then run the Windows test binaries of the native backend under Wine,
# against the stand-in iphlpapi-shaped DLL built from the simulator's C
# library (crate cpsim-capi), and those of cpsim-cmod: provider DLLs built
# with mingw-w64 from the same C sources as the Linux modules, loaded one
# private copy per host (their iphlpapi.dll imports bound to cpsim's router). Installs what it needs (rustup target, mingw,
# Wine); each trap of Wine on Linux it avoids is explained where it does.
#
# Runs as root with no stdin (CI=true) on a fresh machine. Exit status is
# non-zero on any failure; an install failure says so before any test runs.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
TIMEOUT=${CPSIM_WINDOWS_TIER_TIMEOUT:-900}
step() { echo "== [windows tier] $*"; }
started=$(date +%s)

step "installing the toolchain (rustup target, mingw-w64, Wine)"
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  rustup target add "$TARGET"
fi
need=()
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-x86-64-win32)
# Debian's wine64 has no command on PATH: ask dpkg.
dpkg -s wine64 >/dev/null 2>&1 || need+=(wine64)
for c in wine wineserver wineboot; do
  command -v "$c" >/dev/null 2>&1 || { need+=(wine); break; }
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${need[@]}" </dev/null >/tmp/cpsim-windows-apt.log 2>&1; then
    apt-get update </dev/null >/dev/null 2>&1 || true
    if ! apt-get install -y --no-install-recommends "${need[@]}" </dev/null >/tmp/cpsim-windows-apt.log 2>&1; then
      tail -20 /tmp/cpsim-windows-apt.log
      echo "windows tier: INSTALL FAILED (${need[*]}); no Windows test ran" >&2
      exit 1
    fi
  fi
fi

step "cargo clippy --target $TARGET --workspace --all-targets -- -D warnings"
cargo clippy --target "$TARGET" --workspace --all-targets -- -D warnings

step "building the stand-in DLL (cpsim-capi) and the Windows test binaries"
# cargo test does not build a workspace cdylib's .dll: build it first.
cargo build --target "$TARGET" -p cpsim-capi
cargo test --target "$TARGET" -p cpsim-native -p cpsim-cmod --tests --no-run

step "preparing a private Wine prefix"
WINEPREFIX=$(mktemp -d /tmp/cpsim-wine.XXXXXX)
export WINEPREFIX WINEARCH=win64 WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives=n,b"
cleanup() {
  wineserver -k </dev/null >/dev/null 2>&1 || true
  rm -rf "$WINEPREFIX"
}
trap cleanup EXIT
wineboot --init </dev/null >/dev/null 2>&1 || true
wineserver -w </dev/null >/dev/null 2>&1 || true
sys32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -d "$sys32" ]; then
  echo "windows tier: Wine did not create $sys32" >&2
  exit 1
fi
# Rust's std imports ProcessPrng, which Wine 8 lacks: a tiny stand-in DLL.
x86_64-w64-mingw32-gcc -shared -O2 -o "$sys32/bcryptprimitives.dll" ci/wine/processprng.c -ladvapi32
# A persistent server, so that the test runner does not wait on its pipes,
# and Wine's own services started once, away from the tests' output.
wineserver -p </dev/null >/dev/null 2>&1 || true
wine cmd /c exit </dev/null >/dev/null 2>&1 || true

step "running the Windows test binaries under Wine"
CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine \
  timeout "$TIMEOUT" cargo test --target "$TARGET" -p cpsim-native -p cpsim-cmod --tests </dev/null

step "passed in $(( $(date +%s) - started )) s"
