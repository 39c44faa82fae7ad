//! Compiles every `*.c` of this directory into a provider module
//! (`lib<name>.so` in OUT_DIR), with the C compiler the `cc` crate finds,
//! against `sim-cp/include/cpnatfwt.h` (and `cpsim_module.h`) and nothing
//! else. On Windows (mingw-w64) the modules of [`WINDOWS`] are built as
//! DLLs (`<name>.dll`), importing the five `CPNatfwt*` functions from
//! `iphlpapi.dll` (`-liphlpapi`, as an author's DLL for Windows 7 does) and
//! the facilities of `cpsim_module.h` from `cpsimrt.dll` (an import library
//! made from `sim-cp/include/cpsimrt.def` with dlltool).

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
    // The directory itself, so that a module added to it is built.
    println!("cargo:rerun-if-changed=.");
    println!("cargo:rerun-if-changed=sample_directory.h");
    println!("cargo:rerun-if-changed=../../sim-cp/include/cpsimrt.def");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        windows(&out, &sources);
        return;
    }
    if std::env::var_os("CARGO_CFG_UNIX").is_none() {
        return;
    }
    let compiler = cc::Build::new().get_compiler();
    for src in &sources {
        let stem = src.file_stem().expect("a file name").to_string_lossy();
        if stem.starts_with("win_") {
            continue; // Windows only
        }
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

/// The modules whose sources build for Windows (`win_*.c`: Windows only).
const WINDOWS: &[&str] = &[
    "sample_vt",
    "vt_broken_comp4",
    "vt_sleep",
    "vt_sneaky",
    "vt_subtle_comp4_one_reach",
    "vt_subtle_data5_max_payload",
    "vt_subtle_life8_established_only",
    "vt_thread",
    "win_vt_iphlpapi",
];

/// The real-time modules built for Windows too: besides, they link
/// winpthreads (statically, so that the DLL needs nothing Windows lacks)
/// and winsock ([`REAL_TIME_LIBS`]).
const REAL_TIME: &[&str] = &[
    "sample",
    "crash",
    "hang",
    "broken_comp3",
    "broken_comp4",
    "broken_life5",
    "hostile_exit",
    "hostile_fork",
];

/// What the modules of [`REAL_TIME`] link on Windows besides.
const REAL_TIME_LIBS: &[&str] = &["-Wl,-Bstatic", "-lpthread", "-Wl,-Bdynamic", "-lws2_32"];

/// The Windows DLLs, with mingw-w64 (the GNU target only).
fn windows(out: &std::path::Path, sources: &[PathBuf]) {
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("gnu") {
        return;
    }
    let gcc = cc::Build::new().get_compiler().path().to_path_buf();
    let dlltool = {
        let name = gcc.file_name().expect("a compiler name").to_string_lossy();
        gcc.with_file_name(name.replace("gcc", "dlltool"))
    };
    let mut cmd = std::process::Command::new(&dlltool);
    cmd.args(["-d", "../../sim-cp/include/cpsimrt.def", "-l"])
        .arg(out.join("libcpsimrt.a"));
    let status = cmd.status().expect("dlltool runs");
    assert!(status.success(), "making libcpsimrt.a failed: {cmd:?}");
    for src in sources {
        let stem = src.file_stem().expect("a file name").to_string_lossy();
        let real_time = REAL_TIME.contains(&stem.as_ref());
        if !WINDOWS.contains(&stem.as_ref()) && !real_time {
            continue;
        }
        let dll = out.join(format!("{stem}.dll"));
        let mut cmd = std::process::Command::new(&gcc);
        cmd.args([
            "-shared",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-static-libgcc",
            "-I",
            "../../sim-cp/include",
            "-o",
        ])
        .arg(&dll)
        .arg(src)
        .arg("-L")
        .arg(out)
        .args(["-lcpsimrt", "-liphlpapi"]);
        if real_time {
            cmd.args(REAL_TIME_LIBS);
        }
        let status = cmd.status().expect("the C compiler runs");
        assert!(
            status.success(),
            "compiling {} failed: {cmd:?}",
            src.display()
        );
    }
}
