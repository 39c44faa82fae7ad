//! `cpsim`: certify CP providers, run and replay scenario files, read the
//! rule catalogue. See `cpsim --help`.

#![forbid(unsafe_code)]

/// A certification allocates and frees several hundred blocks per case,
/// from a few bytes to a 64 KiB payload, on every worker thread. mimalloc
/// does that in about 12% less CPU time than the C library's allocator on
/// Linux (`/usr/bin/time -f %U cpsim certify --provider sync-raw --threads
/// 1 --seed S`, BENCHMARKS.md section 3). Only this binary chooses it: a
/// provider's own test binary keeps whatever allocator it has. Windows
/// builds keep the system's.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cpsim::main(std::env::args_os()));
}
