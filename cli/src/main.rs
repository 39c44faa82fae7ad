//! `cpsim`: certify CP providers, run and replay scenario files, read the
//! rule catalogue. See `cpsim --help`.

#![forbid(unsafe_code)]

fn main() {
    std::process::exit(cpsim::main(std::env::args_os()));
}
