//! Builds the router (`c/router.c`) as a shared library in OUT_DIR; the
//! crate embeds it and loads it at run time (unix targets only).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=c/router.c");
    println!("cargo:rerun-if-changed=../sim-cp/include/cpnatfwt.h");
    println!("cargo:rerun-if-changed=../sim-cp/include/cpsim_module.h");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let so = out.join("libcpsim_router.so");
    if std::env::var_os("CARGO_CFG_UNIX").is_none() {
        // No C modules on this target: embed an empty file.
        std::fs::write(&so, b"").expect("OUT_DIR is writable");
        return;
    }
    let compiler = cc::Build::new().get_compiler();
    let mut cmd: Command = compiler.to_command();
    cmd.args([
        "-shared",
        "-fPIC",
        "-O2",
        "-fvisibility=hidden",
        "-I",
        "../sim-cp/include",
        "-o",
    ])
    .arg(&so)
    .arg("c/router.c")
    .arg("-ldl");
    let status = cmd.status().expect("the C compiler runs");
    assert!(status.success(), "building c/router.c failed: {cmd:?}");
}
