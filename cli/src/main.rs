//! `cpsim`: certify CP providers, run and replay scenario files, read the
//! rule catalogue. See `cpsim --help`.

fn main() {
    std::process::exit(conformance::cli::main(std::env::args_os()));
}
