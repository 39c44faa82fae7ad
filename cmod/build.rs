//! Builds the router (`c/router.c`) in OUT_DIR; the crate embeds it and
//! loads it at run time. Unix: `libcpsim_router.so`. Windows (mingw-w64):
//! `cpsimrt.dll`, whose export list is generated here: the router's own
//! functions, the facilities of `sim-cp/include/cpsimrt.def`, and a
//! forwarder to the system's `iphlpapi.dll` for every other name that
//! mingw's import library `libiphlpapi.a` lists (each provider copy's
//! `iphlpapi.dll` imports are bound to the router, so the router must
//! answer for all of them).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The five functions the router defines itself.
const CPNATFWT: [&str; 5] = [
    "CPNatfwtCreateProviderInstance",
    "CPNatfwtRegisterProviderInstance",
    "CPNatfwtDeregisterProviderInstance",
    "CPNatfwtDestroyProviderInstance",
    "CPNatfwtIndicateReceivedBuffers",
];

fn main() {
    println!("cargo:rerun-if-changed=c/router.c");
    println!("cargo:rerun-if-changed=../sim-cp/include/cpnatfwt.h");
    println!("cargo:rerun-if-changed=../sim-cp/include/cpsim_module.h");
    println!("cargo:rerun-if-changed=../sim-cp/include/cpsimrt.def");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let so = out.join("libcpsim_router.so");
    let dll = out.join("cpsimrt.dll");
    // What is not built for this target is an empty file (the crate embeds
    // both names).
    std::fs::write(&so, b"").expect("OUT_DIR is writable");
    std::fs::write(&dll, b"").expect("OUT_DIR is writable");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        windows_router(&out, &dll);
        return;
    }
    if std::env::var_os("CARGO_CFG_UNIX").is_none() {
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

/// `cpsimrt.dll`, with mingw-w64's gcc. Only the GNU toolchain's target
/// builds it (an MSVC build of cpsim embeds an empty router and refuses C
/// modules, saying so).
fn windows_router(out: &Path, dll: &Path) {
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() != Ok("gnu") {
        println!("cargo:warning=cpsim-cmod: the Windows router is built with mingw-w64 (target *-windows-gnu) only");
        return;
    }
    let compiler = cc::Build::new().get_compiler();
    let gcc = compiler.path().to_path_buf();
    let lib = Command::new(&gcc)
        .arg("-print-file-name=libiphlpapi.a")
        .output()
        .expect("the C compiler runs");
    let lib = PathBuf::from(String::from_utf8_lossy(&lib.stdout).trim());
    let bytes = std::fs::read(&lib).unwrap_or_else(|e| {
        panic!(
            "mingw-w64's libiphlpapi.a ({}): {e}; install mingw-w64",
            lib.display()
        )
    });
    let mut forwarded: Vec<String> = archive_symbols(&bytes)
        .into_iter()
        .filter_map(|s| s.strip_prefix("__imp_").map(str::to_string))
        .filter(|s| !CPNATFWT.contains(&s.as_str()))
        .collect();
    forwarded.sort();
    forwarded.dedup();
    assert!(
        forwarded.len() > 100,
        "{} lists only {} iphlpapi functions",
        lib.display(),
        forwarded.len()
    );
    let facilities = std::fs::read_to_string("../sim-cp/include/cpsimrt.def")
        .expect("sim-cp/include/cpsimrt.def is readable");
    let own: Vec<&str> = facilities
        .lines()
        .skip_while(|l| l.trim() != "EXPORTS")
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .collect();
    let mut def = String::from("LIBRARY cpsimrt.dll\nEXPORTS\n    cpsim_router_install\n");
    for n in CPNATFWT.iter().chain(own.iter()) {
        def.push_str(&format!("    {n}\n"));
    }
    for n in &forwarded {
        def.push_str(&format!("    {n} = iphlpapi.{n}\n"));
    }
    let def_path = out.join("cpsimrt.def");
    std::fs::write(&def_path, def).expect("OUT_DIR is writable");
    let mut cmd = Command::new(&gcc);
    cmd.args([
        "-shared",
        "-O2",
        "-static-libgcc",
        "-I",
        "../sim-cp/include",
        "-o",
    ])
    .arg(dll)
    .arg("c/router.c")
    .arg(&def_path);
    let status = cmd.status().expect("the C compiler runs");
    assert!(status.success(), "building c/router.c failed: {cmd:?}");
}

/// The names in a GNU `ar` archive's symbol table (its first member, `/`).
fn archive_symbols(b: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    if !b.starts_with(b"!<arch>\n") || b.len() < 68 {
        return names;
    }
    let header = &b[8..68];
    if &header[..2] != b"/ " {
        return names;
    }
    let size: usize = String::from_utf8_lossy(&header[48..58])
        .trim()
        .parse()
        .unwrap_or(0);
    let body = &b[68..(68 + size).min(b.len())];
    if body.len() < 4 {
        return names;
    }
    let count = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    let strings = body.get(4 + count * 4..).unwrap_or(&[]);
    for s in strings.split(|&c| c == 0) {
        if !s.is_empty() {
            names.push(String::from_utf8_lossy(s).into_owned());
        }
    }
    names
}
