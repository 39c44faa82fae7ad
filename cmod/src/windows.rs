//! The Windows side of module loading.
//!
//! A provider DLL imports the five `CPNatfwt*` functions from
//! `iphlpapi.dll`, which has not exported them since Windows 7 (Windows
//! 10/11 refuse to load such a DLL; Wine binds them to stubs that abort).
//! So each host's private copy is the DLL's bytes with its import
//! directory's `IPHLPAPI.DLL` renamed to `cpsimrt.dll` (the same length or
//! shorter: [`crate::pe::rebind`]), written under a file name of its own in
//! a private directory and loaded with `LoadLibraryExW`. `cpsimrt.dll` is
//! the router (`c/router.c`), loaded first from the same directory: it
//! defines the five functions and the facilities of `cpsim_module.h`, and
//! forwards every other `iphlpapi.dll` export to the system's DLL. Two
//! copies are two images at two addresses, each with its own globals; the
//! router names the calling copy by its return address
//! (`GetModuleHandleExW(FROM_ADDRESS)`: the module handle is its load
//! address), as `dladdr` does on unix.
//!
//! The private directory is `%TEMP%\cpsim-dll-<pid>-<n>`. A copy's file is
//! deleted when the copy is unloaded; a loaded image's file cannot be
//! deleted, so what a process leaves loaded (the router, copies kept for
//! good) is deleted by the next process that loads modules: each directory
//! holds an `owner.lock` its process keeps open without sharing, and a
//! directory whose lock file can be deleted has no live owner.

use crate::image::{ModuleImage, START, STOP};
use crate::loader::{in_phase, Copy, Phase, RouterTable, StartFn, StopFn, TABLE};
use crate::pe;
use crate::ModuleError;
use std::ffi::{c_char, c_void};
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The router, built from `c/router.c` by build.rs (empty when this build
/// has none).
static ROUTER_DLL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cpsimrt.dll"));
/// The router's file name: what each copy's `iphlpapi.dll` imports become.
pub(crate) const ROUTER_NAME: &str = "cpsimrt.dll";
/// The DLL whose imports are bound to the router.
const IPHLPAPI: &str = "iphlpapi.dll";

type Hmodule = *mut c_void;
const LOAD_WITH_ALTERED_SEARCH_PATH: u32 = 0x0000_0008;
const FROM_ADDRESS: u32 = 0x0000_0004;
const UNCHANGED_REFCOUNT: u32 = 0x0000_0002;

#[link(name = "kernel32")]
extern "system" {
    fn LoadLibraryExW(name: *const u16, file: *mut c_void, flags: u32) -> Hmodule;
    fn GetProcAddress(module: Hmodule, name: *const c_char) -> *mut c_void;
    fn FreeLibrary(module: Hmodule) -> i32;
    fn GetModuleHandleExW(flags: u32, name: *const u16, module: *mut Hmodule) -> i32;
}

/// The load address of the module holding `addr`.
pub(crate) fn base_of(addr: *const c_void) -> Option<usize> {
    let mut module: Hmodule = std::ptr::null_mut();
    // SAFETY: with FROM_ADDRESS the "name" is only an address to look up;
    // UNCHANGED_REFCOUNT takes no reference; `module` is writable.
    let ok = unsafe {
        GetModuleHandleExW(
            FROM_ADDRESS | UNCHANGED_REFCOUNT,
            addr as *const u16,
            &mut module,
        )
    };
    (ok != 0 && !module.is_null()).then_some(module as usize)
}

fn wide(p: &Path) -> Vec<u16> {
    p.as_os_str().encode_wide().chain(Some(0)).collect()
}

/// `LoadLibraryExW` of `path`; an error says why, in the system's words.
fn load(path: &Path) -> Result<Hmodule, String> {
    let name = wide(path);
    // SAFETY: a NUL-terminated wide path; loading runs the DLL's
    // initialisers (module code, which the harness only loads in a child
    // process of its own).
    let m = unsafe {
        LoadLibraryExW(
            name.as_ptr(),
            std::ptr::null_mut(),
            LOAD_WITH_ALTERED_SEARCH_PATH,
        )
    };
    if m.is_null() {
        let e = std::io::Error::last_os_error();
        let hint = match e.raw_os_error() {
            Some(126) => " (a DLL it imports was not found)",
            Some(127) => " (a function it imports is missing from its DLL)",
            Some(193) => " (not a DLL for this machine)",
            // The loader reports an exception in DllMain (or a static
            // initialiser) as ERROR_NOACCESS.
            Some(998) => {
                " (an exception in its DllMain or a static initialiser while it was loaded)"
            }
            _ => "",
        };
        return Err(format!("{e}{hint}"));
    }
    Ok(m)
}

/// The address of export `name` (NUL-terminated) of `module`.
fn export(module: Hmodule, name: &[u8]) -> *mut c_void {
    debug_assert!(name.ends_with(b"\0"));
    // SAFETY: a loaded module's handle and a NUL-terminated name.
    unsafe { GetProcAddress(module, name.as_ptr() as *const c_char) }
}

/// This process's private directory, with its lock file held open.
struct Private {
    dir: PathBuf,
    _lock: std::fs::File,
}

fn private() -> Result<&'static Private, ModuleError> {
    static DIR: OnceLock<Result<Private, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let temp = std::env::temp_dir();
        sweep(&temp);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = temp.join(format!("cpsim-dll-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let lock = {
            use std::os::windows::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .share_mode(0)
                .open(dir.join("owner.lock"))
                .map_err(|e| format!("cannot create {}: {e}", dir.join("owner.lock").display()))?
        };
        Ok(Private { dir, _lock: lock })
    })
    .as_ref()
    .map_err(|e| ModuleError(e.clone()))
}

/// Deletes private directories of processes that have ended: their lock
/// file is no longer open. A directory without one is another process's
/// being made (or one whose lock is gone already), deleted only once it is
/// a minute old.
fn sweep(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with("cpsim-dll-") {
            continue;
        }
        let dir = e.path();
        let gone = match std::fs::remove_file(dir.join("owner.lock")) {
            Ok(()) => true,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 60),
            Err(_) => false,
        };
        if gone {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The router's exports (the names a copy's iphlpapi imports may have).
fn router_exports() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| pe::read(ROUTER_DLL).map(|d| d.exports).unwrap_or_default())
}

/// Loads the router once per process from the private directory and
/// installs the table.
fn router(table: &'static RouterTable) -> Result<(), ModuleError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        if ROUTER_DLL.is_empty() {
            return Err(
                "this build of cpsim has no C module router (cpsim-cmod is built with \
                        mingw-w64, target x86_64-pc-windows-gnu)"
                    .into(),
            );
        }
        let dir = &private().map_err(|e| e.0)?.dir;
        let path = dir.join(ROUTER_NAME);
        std::fs::write(&path, ROUTER_DLL)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let m = load(&path)
            .map_err(|e| format!("cannot load the C module router {}: {e}", path.display()))?;
        let install = export(m, b"cpsim_router_install\0");
        if install.is_null() {
            return Err("the router lacks cpsim_router_install".into());
        }
        // SAFETY: the export has this signature in c/router.c.
        let install: unsafe extern "C" fn(*const RouterTable) -> i32 =
            unsafe { std::mem::transmute(install) };
        // SAFETY: a 'static table of the layout the router expects.
        if unsafe { install(table) } != 0 {
            return Err("the router rejected the routing table".into());
        }
        // Kept loaded for the life of the process: copies bind to it.
        Ok(())
    })
    .clone()
    .map_err(ModuleError)
}

/// The bytes of a copy of `image` whose `iphlpapi.dll` imports are bound
/// to the router; an error names an import the router cannot answer.
fn rebound(image: &ModuleImage) -> Result<Vec<u8>, ModuleError> {
    let shown = image.path().display();
    let Some(dll) = image.pe() else {
        return Err(ModuleError(format!("{shown}: not a Windows DLL")));
    };
    let router = router_exports();
    for i in dll.imports_from(IPHLPAPI) {
        if let Some(o) = i.ordinals.first() {
            return Err(ModuleError(format!(
                "{shown}: imports ordinal {o} of {} (by number, not name); cpsim binds \
                 iphlpapi.dll imports by name only (link with an import library that names them)",
                i.dll
            )));
        }
        if let Some(n) = i.names.iter().find(|n| !router.contains(n)) {
            return Err(ModuleError(format!(
                "{shown}: imports {n} from {}, which cpsim's stand-in for it ({ROUTER_NAME}) \
                 does not forward (it forwards the iphlpapi.dll functions mingw-w64 lists)",
                i.dll
            )));
        }
    }
    pe::rebind(image.bytes(), IPHLPAPI, ROUTER_NAME)
        .map(|(b, _)| b)
        .map_err(|e| ModuleError(format!("{shown}: {e}")))
}

/// Loads a private copy of `image`.
pub(crate) fn load_copy(image: &ModuleImage) -> Result<Copy, ModuleError> {
    router(&TABLE)?;
    let shown = image.path().display();
    let bytes = rebound(image)?;
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = &private()?.dir;
    let path = dir.join(format!(
        "{}-{}.dll",
        image.name(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, &bytes)
        .map_err(|e| ModuleError(format!("cannot write {}: {e}", path.display())))?;
    let module = match in_phase(Phase::Loading, || load(&path)) {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(ModuleError(format!("cannot load {shown}: {e}")));
        }
    };
    let held = Held { module, path };
    let (start, stop) = (
        export(module, b"CpsimProviderStart\0"),
        export(module, b"CpsimProviderStop\0"),
    );
    if start.is_null() || stop.is_null() {
        let missing = if start.is_null() { START } else { STOP };
        held.unload();
        return Err(ModuleError(format!("{shown} does not export {missing}")));
    }
    // SAFETY: the module interface of cpnatfwt.h declares these types.
    let (start, stop) = unsafe {
        (
            std::mem::transmute::<*mut c_void, StartFn>(start),
            std::mem::transmute::<*mut c_void, StopFn>(stop),
        )
    };
    Ok(Copy {
        start,
        stop,
        base: module as usize,
        held: Some(held),
    })
}

/// A loaded copy's module handle and file.
pub(crate) struct Held {
    module: Hmodule,
    path: PathBuf,
}

// SAFETY: a module handle is an address, usable from any thread.
unsafe impl Send for Held {}

impl Held {
    /// Unloads the copy and deletes its file; false if the image stays
    /// mapped (its file then cannot be deleted, and stays until the next
    /// process's sweep).
    pub(crate) fn unload(self) -> bool {
        // SAFETY: a handle LoadLibraryExW returned, released once.
        unsafe { FreeLibrary(self.module) };
        std::fs::remove_file(&self.path).is_ok()
    }

    /// Leaves the copy loaded for good (its file goes with the private
    /// directory, after the process).
    pub(crate) fn keep(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(bytes: Vec<u8>) -> ModuleImage {
        ModuleImage::from_bytes(PathBuf::from("C:\\m\\tiny.dll"), bytes).unwrap()
    }

    #[test]
    fn an_iphlpapi_import_by_ordinal_is_refused_naming_it() {
        let e = rebound(&image(pe::tests::tiny_dll())).unwrap_err();
        assert!(e.0.contains("tiny.dll") && e.0.contains("ordinal 7"), "{e}");
    }

    #[test]
    fn an_iphlpapi_import_the_router_does_not_forward_is_refused_naming_it() {
        let mut b = pe::tests::tiny_dll();
        // Drop the ordinal import; rename the imported function.
        let at = 0x200 + 0x148;
        b[at..at + 8].fill(0);
        let at = 0x200 + 0x1A2;
        b[at..at + 30].copy_from_slice(b"NoSuchIphlpapiFunctionAtAll\0\0\0");
        let e = rebound(&image(b)).unwrap_err();
        assert!(
            e.0.contains("NoSuchIphlpapiFunctionAtAll") && e.0.contains(ROUTER_NAME),
            "{e}"
        );
    }

    #[test]
    fn a_copy_s_file_is_deleted_when_unloaded_and_ended_processes_directories_are_swept() {
        let path = cpsim_c_providers::module("sample_vt").expect("built for Windows");
        let image = ModuleImage::read(&path).unwrap();
        let copy = load_copy(&image).unwrap();
        let file = copy.held.as_ref().map(|h| h.path.clone()).unwrap();
        assert!(file.exists(), "{}", file.display());
        let dir = file.parent().unwrap().to_path_buf();
        assert!(dir.join(ROUTER_NAME).exists());
        copy.unload();
        assert!(!file.exists(), "{} left behind", file.display());

        // A directory of a process that has ended (its lock file not open)
        // goes; this process's own (lock held, router loaded) stays.
        let temp = std::env::temp_dir();
        let dead = temp.join("cpsim-dll-4000000000-0");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("owner.lock"), b"").unwrap();
        std::fs::write(dead.join("m-0.dll"), b"MZ").unwrap();
        sweep(&temp);
        assert!(!dead.exists(), "{} not swept", dead.display());
        assert!(dir.join("owner.lock").exists() && dir.join(ROUTER_NAME).exists());
    }

    #[test]
    fn the_router_exports_the_five_functions_and_forwards_the_rest_of_iphlpapi() {
        let names = router_exports();
        for f in [
            "CPNatfwtCreateProviderInstance",
            "CpsimNow",
            "cpsim_router_install",
        ] {
            assert!(names.iter().any(|n| n == f), "{f}");
        }
        assert!(names.iter().any(|n| n == "GetAdaptersAddresses"));
        assert!(names.len() > 300, "{} exports", names.len());
    }
}
