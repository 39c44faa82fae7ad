//! The unix implementation: the embedded router, per-host copies of a
//! module, and the routing of calls by the caller's load address.

use crate::ModuleError;
use cpsim_sim::abi::*;
use cpsim_sim::{ffi, Cx, Provider, ProviderFactory};
use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LOCAL, RTLD_NOW};
use parking_lot::{Mutex, RwLock};
use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The router, built from `c/router.c` by build.rs.
static ROUTER_SO: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libcpsim_router.so"));

/// The table the router forwards to: `cpsim_router_table` of `c/router.c`.
#[repr(C)]
struct RouterTable {
    size: u32,
    create: unsafe extern "C" fn(
        *mut c_void,
        *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
        *mut c_void,
        *mut CPNATFWT_PROVIDER_INSTANCE,
    ) -> HRESULT,
    register: unsafe extern "C" fn(
        *mut c_void,
        CPNATFWT_PROVIDER_INSTANCE,
        *mut WCHAR,
        *mut IF_LUID,
        u32,
        *mut WCHAR,
    ) -> HRESULT,
    deregister: unsafe extern "C" fn(*mut c_void, CPNATFWT_PROVIDER_INSTANCE) -> HRESULT,
    destroy: unsafe extern "C" fn(*mut c_void, CPNATFWT_PROVIDER_INSTANCE),
    indicate: unsafe extern "C" fn(
        *mut c_void,
        CPNATFWT_PROVIDER_INSTANCE,
        *mut CPNATFWT_TRANSPORT_ID,
        *mut CPNATFWT_TRANSPORT_ID,
        *mut CPNATFWT_BUFFER,
        *mut c_void,
        CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
    ) -> HRESULT,
}

static TABLE: RouterTable = RouterTable {
    size: std::mem::size_of::<RouterTable>() as u32,
    create: route_create,
    register: route_register,
    deregister: route_deregister,
    destroy: route_destroy,
    indicate: route_indicate,
};

/// Loaded module copies: (load address, the host it belongs to).
static COPIES: RwLock<Vec<(usize, Cx)>> = RwLock::new(Vec::new());

/// How many module copies are registered for routing right now.
pub fn loaded_copies() -> usize {
    COPIES.read().len()
}

fn host_of(caller: *mut c_void) -> Option<Cx> {
    if caller.is_null() {
        return None;
    }
    COPIES
        .read()
        .iter()
        .find(|(base, _)| *base == caller as usize)
        .map(|(_, cx)| cx.clone())
}

/// Runs `f` as the host whose module copy made the call (if known), and
/// never lets a panic unwind into C.
fn routed<R>(caller: *mut c_void, on_panic: R, f: impl FnOnce() -> R) -> R {
    let cx = host_of(caller);
    catch_unwind(AssertUnwindSafe(|| match cx {
        Some(cx) => cx.enter(f),
        None => f(),
    }))
    .unwrap_or(on_panic)
}

unsafe extern "C" fn route_create(
    caller: *mut c_void,
    table: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
    user: *mut c_void,
    out: *mut CPNATFWT_PROVIDER_INSTANCE,
) -> HRESULT {
    routed(caller, E_FAIL, || {
        // SAFETY: the module's arguments, forwarded unchanged under the
        // C API's contract; the simulator checks every pointer it reads.
        unsafe { ffi::CPNatfwtCreateProviderInstance(table, user, out) }
    })
}

unsafe extern "C" fn route_register(
    caller: *mut c_void,
    inst: CPNATFWT_PROVIDER_INSTANCE,
    name: *mut WCHAR,
    luid: *mut IF_LUID,
    flags: u32,
    sddl: *mut WCHAR,
) -> HRESULT {
    routed(caller, E_FAIL, || {
        // SAFETY: as in `route_create`.
        unsafe { ffi::CPNatfwtRegisterProviderInstance(inst, name, luid, flags, sddl) }
    })
}

unsafe extern "C" fn route_deregister(
    caller: *mut c_void,
    inst: CPNATFWT_PROVIDER_INSTANCE,
) -> HRESULT {
    routed(caller, E_FAIL, || {
        // SAFETY: any handle value is accepted and checked.
        unsafe { ffi::CPNatfwtDeregisterProviderInstance(inst) }
    })
}

unsafe extern "C" fn route_destroy(caller: *mut c_void, inst: CPNATFWT_PROVIDER_INSTANCE) {
    routed(caller, (), || {
        // SAFETY: any handle value is accepted and checked.
        unsafe { ffi::CPNatfwtDestroyProviderInstance(inst) }
    })
}

unsafe extern "C" fn route_indicate(
    caller: *mut c_void,
    inst: CPNATFWT_PROVIDER_INSTANCE,
    local: *mut CPNATFWT_TRANSPORT_ID,
    remote: *mut CPNATFWT_TRANSPORT_ID,
    chain: *mut CPNATFWT_BUFFER,
    ctx: *mut c_void,
    routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
) -> HRESULT {
    routed(caller, E_FAIL, || {
        // SAFETY: as in `route_create`: the simulator checks each pointer
        // (NULL, retired platform memory, cycles) before reading it.
        unsafe { ffi::CPNatfwtIndicateReceivedBuffers(inst, local, remote, chain, ctx, routine) }
    })
}

/// A fresh private directory under the system's temporary directory.
fn private_dir(what: &str) -> Result<PathBuf, ModuleError> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cpsim-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ModuleError(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Loads the router once per process (RTLD_GLOBAL, so that modules loaded
/// later bind their CPNatfwt* references to it) and installs the table.
fn router() -> Result<(), ModuleError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = private_dir("router").map_err(|e| e.0)?;
        let file = dir.join("libcpsim_router.so");
        let loaded = (|| {
            std::fs::write(&file, ROUTER_SO).map_err(|e| format!("{}: {e}", file.display()))?;
            // SAFETY: our own library; its only initialiser is the C runtime's.
            let lib = unsafe { Library::open(Some(&file), RTLD_NOW | RTLD_GLOBAL) }
                .map_err(|e| format!("cannot load the C module router: {e}"))?;
            // SAFETY: the symbol has this signature in c/router.c.
            let install = unsafe {
                lib.get::<unsafe extern "C" fn(*const RouterTable) -> i32>(
                    b"cpsim_router_install\0",
                )
            }
            .map_err(|e| format!("the router lacks cpsim_router_install: {e}"))?;
            // SAFETY: a 'static table of the layout the router expects.
            let rc = unsafe { install(&TABLE) };
            if rc != 0 {
                return Err("the router rejected the routing table".to_string());
            }
            // Kept for the life of the process: modules bind to it.
            std::mem::forget(lib);
            Ok(())
        })();
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    })
    .clone()
    .map_err(ModuleError)
}

type StartFn = unsafe extern "C" fn(*const c_char, *const c_char) -> HRESULT;
type StopFn = unsafe extern "C" fn();

/// One private copy of a module, loaded.
struct Copy {
    start: StartFn,
    stop: StopFn,
    base: usize,
}

/// Copies `path` to a private directory and loads the copy (RTLD_LOCAL, so
/// its symbols stay its own). The copy's file is removed at once; its
/// mapping stays. The library is never unloaded: a module that broke its
/// contract may still have threads running its code.
fn load_copy(path: &Path) -> Result<Copy, ModuleError> {
    router()?;
    let dir = private_dir("module")?;
    let file = dir.join(path.file_name().unwrap_or_else(|| "module.so".as_ref()));
    let result = (|| {
        std::fs::copy(path, &file)
            .map_err(|e| ModuleError(format!("cannot copy {}: {e}", path.display())))?;
        // SAFETY: loading runs the module's initialisers; a module is
        // trusted code of the user's choosing (a crash is isolated by the
        // harness, which runs each case of a C module in a child process).
        let lib = unsafe { Library::open(Some(&file), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| ModuleError(format!("cannot load {}: {e}", path.display())))?;
        // SAFETY: the module interface of cpnatfwt.h declares these types.
        let (start, stop) = unsafe {
            let start = *lib.get::<StartFn>(b"CpsimProviderStart\0").map_err(|_| {
                ModuleError(format!(
                    "{} does not export CpsimProviderStart",
                    path.display()
                ))
            })?;
            let stop = *lib.get::<StopFn>(b"CpsimProviderStop\0").map_err(|_| {
                ModuleError(format!(
                    "{} does not export CpsimProviderStop",
                    path.display()
                ))
            })?;
            (start, stop)
        };
        // SAFETY: an all-zero Dl_info is a valid value to be overwritten.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        // SAFETY: dladdr only reads the address; `info` is writable.
        let found = unsafe { libc::dladdr(start as *const c_void, &mut info) };
        if found == 0 || info.dli_fbase.is_null() {
            return Err(ModuleError(format!(
                "cannot find where {} was loaded",
                path.display()
            )));
        }
        std::mem::forget(lib);
        Ok(Copy {
            start,
            stop,
            base: info.dli_fbase as usize,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A C provider module as a provider factory: one private copy per host
/// start. Runs in real time (`deterministic() == false`): a module may run
/// threads of its own.
pub struct ModuleFactory {
    path: PathBuf,
    name: String,
    config: Mutex<String>,
}

impl ModuleFactory {
    /// A factory for the module at `path`. Loads one copy to check that it
    /// loads and exports both entry points (without starting it).
    pub fn new(path: &Path) -> Result<Arc<ModuleFactory>, ModuleError> {
        let path = path
            .canonicalize()
            .map_err(|e| ModuleError(format!("{}: {e}", path.display())))?;
        // Checked once per path and process: loading runs initialisers.
        static CHECKED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
        if !CHECKED.lock().contains(&path) {
            load_copy(&path)?;
            CHECKED.lock().push(path.clone());
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().trim_start_matches("lib").to_string())
            .unwrap_or_else(|| "module".into());
        Ok(Arc::new(ModuleFactory {
            path,
            name,
            config: Mutex::new("{}".into()),
        }))
    }

    /// The module's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration handed to `CpsimProviderStart` (JSON text).
    pub fn config_json(&self) -> String {
        self.config.lock().clone()
    }
}

impl ProviderFactory for ModuleFactory {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn create(&self, host: &str) -> Box<dyn Provider> {
        Box::new(ModuleProvider {
            path: self.path.clone(),
            host: host.to_string(),
            config: self.config_json(),
            copy: None,
            registered: None,
        })
    }
    /// Any JSON value; `null` is handed to the module as `{}`.
    fn configure(&self, config: &serde_json::Value) -> Result<(), String> {
        *self.config.lock() = if config.is_null() {
            "{}".into()
        } else {
            config.to_string()
        };
        Ok(())
    }
    fn deterministic(&self) -> bool {
        false
    }
}

/// One host's run of a module.
struct ModuleProvider {
    path: PathBuf,
    host: String,
    config: String,
    /// Loaded, and Start succeeded (so Stop is owed).
    copy: Option<Copy>,
    /// The load address registered for routing.
    registered: Option<usize>,
}

impl Provider for ModuleProvider {
    fn start(&mut self, cx: &Cx) {
        let copy = match load_copy(&self.path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cpsim: host {}: {e}", self.host);
                return;
            }
        };
        COPIES.write().push((copy.base, cx.clone()));
        self.registered = Some(copy.base);
        let (host, config) = (
            CString::new(self.host.replace('\0', "")).unwrap_or_default(),
            CString::new(self.config.replace('\0', "")).unwrap_or_default(),
        );
        // SAFETY: the module's entry point, with two NUL-terminated strings
        // that outlive the call (the module copies what it keeps).
        let hr = unsafe { (copy.start)(host.as_ptr(), config.as_ptr()) };
        if hr == S_OK {
            self.copy = Some(copy);
        } else {
            eprintln!(
                "cpsim: host {}: CpsimProviderStart of {} failed with {}",
                self.host,
                self.path.display(),
                cpsim_sim::trace::hr_name(hr)
            );
        }
    }

    fn stop(&mut self, _cx: &Cx) {
        if let Some(copy) = self.copy.take() {
            // SAFETY: the module's entry point; Start succeeded and Stop
            // has not been called for this copy.
            unsafe { (copy.stop)() };
        }
    }
}

impl Drop for ModuleProvider {
    fn drop(&mut self) {
        if let Some(base) = self.registered.take() {
            COPIES.write().retain(|(b, _)| *b != base);
        }
    }
}
