//! Compiles every `*.c` of this directory into a provider module
//! (`lib<name>.so` in OUT_DIR), with the C compiler the `cc` crate finds,
//! against `sim-cp/include/cpnatfwt.h` (and `cpsim_module.h`) and nothing
//! else. Unix targets only.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=../../sim-cp/include/cpnatfwt.h");
    println!("cargo:rerun-if-changed=../../sim-cp/include/cpsim_module.h");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(".")
        .expect("the crate directory is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
    }
    println!("cargo:rerun-if-changed=sample_directory.h");
    if std::env::var_os("CARGO_CFG_UNIX").is_none() {
        return;
    }
    let compiler = cc::Build::new().get_compiler();
    for src in &sources {
        let stem = src.file_stem().expect("a file name").to_string_lossy();
        let so = out.join(format!("lib{stem}.so"));
        let mut cmd = compiler.to_command();
        cmd.args([
            "-shared",
            "-fPIC",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            "../../sim-cp/include",
            "-o",
        ])
        .arg(&so)
        .arg(src)
        .args(["-lpthread", "-ldl"]);
        let status = cmd.status().expect("the C compiler runs");
        assert!(
            status.success(),
            "compiling {} failed: {cmd:?}",
            src.display()
        );
    }
}
