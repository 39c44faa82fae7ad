//! The unix implementation: the embedded router, per-host copies of a
//! module, and the routing of calls by the caller's load address.

use crate::facility::{self, CpsimAddress, ReceiveRoutine, TaskRoutine};
use crate::image::{ModuleImage, START, STOP};
use crate::ModuleError;
use cpsim_sim::abi::*;
use cpsim_sim::{ffi, Cx, Provider, ProviderFactory};
use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LOCAL, RTLD_NOW};
use parking_lot::{Mutex, RwLock};
use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
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
    now: unsafe extern "C" fn(*mut c_void) -> u64,
    random: unsafe extern "C" fn(*mut c_void) -> u64,
    after: unsafe extern "C" fn(*mut c_void, u64, Option<TaskRoutine>, *mut c_void) -> HRESULT,
    spawn: unsafe extern "C" fn(*mut c_void, Option<TaskRoutine>, *mut c_void) -> HRESULT,
    bind: unsafe extern "C" fn(*mut c_void, u16, Option<ReceiveRoutine>, *mut c_void) -> HRESULT,
    unbind: unsafe extern "C" fn(*mut c_void, u16),
    address_of: unsafe extern "C" fn(*mut c_void, *const c_char, u16, *mut CpsimAddress) -> HRESULT,
    send_to:
        unsafe extern "C" fn(*mut c_void, u16, *const CpsimAddress, *const c_void, u32) -> HRESULT,
}

static TABLE: RouterTable = RouterTable {
    size: std::mem::size_of::<RouterTable>() as u32,
    create: route_create,
    register: route_register,
    deregister: route_deregister,
    destroy: route_destroy,
    indicate: route_indicate,
    now: facility::now,
    random: facility::random,
    after: facility::after,
    spawn: facility::spawn,
    bind: facility::bind,
    unbind: facility::unbind,
    address_of: facility::address_of,
    send_to: facility::send_to,
};

/// A loaded copy as the router sees it: its load address, its host, and
/// whether its code may still be called (false once its host stopped it).
#[derive(Clone)]
pub(crate) struct Routed {
    base: usize,
    pub(crate) cx: Cx,
    pub(crate) alive: Arc<AtomicBool>,
    virtual_time: bool,
}

/// Loaded module copies.
static COPIES: RwLock<Vec<Routed>> = RwLock::new(Vec::new());

/// How many module copies are registered for routing right now.
pub fn loaded_copies() -> usize {
    COPIES.read().len()
}

/// Calls into the simulator from threads it does not run, made by modules
/// that said they run on virtual time (see [`foreign_thread_calls`]).
static FOREIGN: AtomicU64 = AtomicU64::new(0);

/// How many calls virtual-time modules made from threads the simulator
/// does not run (their own): a module that says it runs on virtual time
/// and makes any has started a thread after all.
pub fn foreign_thread_calls() -> u64 {
    FOREIGN.load(Ordering::Relaxed)
}

/// The copy whose code is at `addr` (any address inside it).
pub(crate) fn copy_at(addr: *const c_void) -> Option<Routed> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: an all-zero Dl_info is a valid value to be overwritten.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address; `info` is writable.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 {
        return None;
    }
    copy_based(info.dli_fbase)
}

/// The copy loaded at `base`.
pub(crate) fn copy_based(base: *mut c_void) -> Option<Routed> {
    if base.is_null() {
        return None;
    }
    COPIES
        .read()
        .iter()
        .find(|r| r.base == base as usize)
        .cloned()
}

/// The host a call from the copy at `caller` belongs to: that copy's, or
/// else the host whose code runs on this thread.
pub(crate) fn host_of(caller: *mut c_void) -> Option<Cx> {
    let copy = copy_based(caller);
    let current = Cx::current();
    if current.is_none() && copy.as_ref().is_some_and(|c| c.virtual_time) {
        FOREIGN.fetch_add(1, Ordering::Relaxed);
    }
    copy.map(|c| c.cx).or(current)
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

/// A file holding `bytes` that `dlopen` can load, and that no other copy
/// shares (the dynamic linker hands back an already loaded object for a
/// path or file it has seen). On Linux an anonymous memory file: nothing
/// is written to disk, so nothing is left behind whatever happens.
struct Backing {
    path: PathBuf,
    #[cfg(target_os = "linux")]
    _fd: std::os::fd::OwnedFd,
    #[cfg(not(target_os = "linux"))]
    dir: PathBuf,
}

impl Backing {
    #[cfg(target_os = "linux")]
    fn new(what: &str, bytes: &[u8]) -> Result<Backing, ModuleError> {
        use std::io::Write;
        use std::os::fd::{AsRawFd, FromRawFd};
        let name = CString::new(format!("cpsim-{what}")).expect("no NUL in the name");
        // SAFETY: a valid NUL-terminated name; the flags are valid.
        let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(ModuleError(format!(
                "cannot make a memory file for a module copy: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: a descriptor memfd_create just returned, owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let mut file = std::fs::File::from(fd.try_clone().map_err(|e| ModuleError(e.to_string()))?);
        file.write_all(bytes)
            .map_err(|e| ModuleError(format!("cannot write a module copy: {e}")))?;
        let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        Ok(Backing { path, _fd: fd })
    }

    #[cfg(not(target_os = "linux"))]
    fn new(what: &str, bytes: &[u8]) -> Result<Backing, ModuleError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cpsim-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| ModuleError(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(format!("{what}.so"));
        if let Err(e) = std::fs::write(&path, bytes) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ModuleError(format!("cannot write {}: {e}", path.display())));
        }
        Ok(Backing { path, dir })
    }

    /// Once loaded: the file may go (the mapping stays). On Linux the
    /// memory file is kept open while the copy is loaded, so that its
    /// `/proc/self/fd` name stays unique.
    fn loaded(&self) {
        #[cfg(not(target_os = "linux"))]
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        #[cfg(not(target_os = "linux"))]
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Loads the router once per process (RTLD_GLOBAL, so that modules loaded
/// later bind their CPNatfwt* references to it) and installs the table.
fn router() -> Result<(), ModuleError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let backing = Backing::new("router", ROUTER_SO).map_err(|e| e.0)?;
        // SAFETY: our own library; its only initialiser is the C runtime's.
        let lib = unsafe { Library::open(Some(&backing.path), RTLD_NOW | RTLD_GLOBAL) }
            .map_err(|e| format!("cannot load the C module router: {e}"))?;
        backing.loaded();
        // SAFETY: the symbol has this signature in c/router.c.
        let install = unsafe {
            lib.get::<unsafe extern "C" fn(*const RouterTable) -> i32>(b"cpsim_router_install\0")
        }
        .map_err(|e| format!("the router lacks cpsim_router_install: {e}"))?;
        // SAFETY: a 'static table of the layout the router expects.
        let rc = unsafe { install(&TABLE) };
        if rc != 0 {
            return Err("the router rejected the routing table".to_string());
        }
        // Kept for the life of the process: modules bind to it.
        std::mem::forget(lib);
        std::mem::forget(backing);
        Ok(())
    })
    .clone()
    .map_err(ModuleError)
}

type StartFn = unsafe extern "C" fn(*const c_char, *const c_char) -> HRESULT;
type StopFn = unsafe extern "C" fn();

/// What module code runs right now on behalf of the simulator, for the
/// harness's messages when a module ends the process (see [`phase`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// No module entry point (a callback, a task, or nothing).
    Other = 0,
    /// A copy is being loaded: the module's initialisers run.
    Loading = 1,
    /// `CpsimProviderStart` runs.
    Starting = 2,
    /// `CpsimProviderStop` runs.
    Stopping = 3,
    /// A copy is being unloaded: the module's finalisers run.
    Unloading = 4,
}

static PHASE: AtomicU8 = AtomicU8::new(0);

/// The module entry point running now (an atomic read: safe in a signal
/// handler).
pub fn phase() -> Phase {
    match PHASE.load(Ordering::Relaxed) {
        1 => Phase::Loading,
        2 => Phase::Starting,
        3 => Phase::Stopping,
        4 => Phase::Unloading,
        _ => Phase::Other,
    }
}

fn in_phase<R>(p: Phase, f: impl FnOnce() -> R) -> R {
    let before = PHASE.swap(p as u8, Ordering::Relaxed);
    let r = f();
    PHASE.store(before, Ordering::Relaxed);
    r
}

/// Copies left loaded for good in this process (see [`resident_copies`]).
static RESIDENT: AtomicUsize = AtomicUsize::new(0);

/// How many module copies this process keeps loaded for good: real-time
/// copies (their threads might still run) and any the dynamic linker would
/// not unload. Each holds its mapping and a descriptor; a process that
/// serves many cases is replaced before they pile up.
pub fn resident_copies() -> usize {
    RESIDENT.load(Ordering::Relaxed)
}

/// One private copy of a module, loaded.
struct Copy {
    start: StartFn,
    stop: StopFn,
    base: usize,
    lib: Option<Library>,
    backing: Option<Backing>,
}

/// Loads a private copy of `image` (RTLD_LOCAL, so its symbols stay its own).
fn load_copy(image: &ModuleImage) -> Result<Copy, ModuleError> {
    router()?;
    let shown = image.path().display();
    let backing = Backing::new(image.name(), image.bytes())?;
    // SAFETY: loading runs the module's initialisers: module code, which
    // the harness only ever loads in a child process of its own.
    let lib = in_phase(Phase::Loading, || unsafe {
        Library::open(Some(&backing.path), RTLD_NOW | RTLD_LOCAL)
    })
    .map_err(|e| ModuleError(format!("cannot load {shown}: {e}")))?;
    backing.loaded();
    // SAFETY: the module interface of cpnatfwt.h declares these types.
    let (start, stop) = unsafe {
        let start = *lib
            .get::<StartFn>(b"CpsimProviderStart\0")
            .map_err(|_| ModuleError(format!("{shown} does not export {START}")))?;
        let stop = *lib
            .get::<StopFn>(b"CpsimProviderStop\0")
            .map_err(|_| ModuleError(format!("{shown} does not export {STOP}")))?;
        (start, stop)
    };
    // SAFETY: an all-zero Dl_info is a valid value to be overwritten.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address; `info` is writable.
    let found = unsafe { libc::dladdr(start as *const c_void, &mut info) };
    if found == 0 || info.dli_fbase.is_null() {
        return Err(ModuleError(format!("cannot find where {shown} was loaded")));
    }
    Ok(Copy {
        start,
        stop,
        base: info.dli_fbase as usize,
        lib: Some(lib),
        backing: Some(backing),
    })
}

impl Copy {
    /// Unloads the copy (a virtual-time module: none of its code can still
    /// run). If the dynamic linker keeps it loaded anyway, its file is kept
    /// open so that no later copy can be mistaken for it.
    fn unload(mut self) {
        let Some(lib) = self.lib.take() else { return };
        let backing = self.backing.take();
        let closed = in_phase(Phase::Unloading, || lib.close().is_ok());
        if let Some(b) = backing {
            // SAFETY: RTLD_NOLOAD only looks the name up; a handle it
            // returns is closed again at once.
            let still = unsafe { Library::open(Some(&b.path), RTLD_NOW | libc::RTLD_NOLOAD) };
            match (closed, still) {
                (true, Err(_)) => drop(b),
                (_, Ok(h)) => {
                    drop(h);
                    std::mem::forget(b);
                    RESIDENT.fetch_add(1, Ordering::Relaxed);
                }
                (false, Err(_)) => {
                    std::mem::forget(b);
                    RESIDENT.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Leaves the copy loaded for good (its threads may still run).
    fn keep(mut self) {
        std::mem::forget(self.lib.take());
        std::mem::forget(self.backing.take());
        RESIDENT.fetch_add(1, Ordering::Relaxed);
    }
}

/// A C provider module as a provider factory: one private copy per host
/// start. A module with the virtual-time marker runs on the virtual clock
/// (`deterministic() == true`); any other runs in real time.
pub struct ModuleFactory {
    image: Arc<ModuleImage>,
    config: Mutex<String>,
}

impl ModuleFactory {
    /// A factory for the module at `path`, in this process. Reads and checks
    /// the file, then loads one copy to check that it loads (this runs the
    /// module's initialisers here: the harness does this only in a child
    /// process; see [`ModuleFactory::from_image`]).
    pub fn new(path: &Path) -> Result<Arc<ModuleFactory>, ModuleError> {
        let image = Arc::new(ModuleImage::read(path)?);
        // Checked once per path and process: loading runs initialisers.
        static CHECKED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
        let key = image.path().to_path_buf();
        if !CHECKED.lock().contains(&key) {
            load_copy(&image)?.keep();
            CHECKED.lock().push(key);
        }
        Ok(ModuleFactory::from_image(image))
    }

    /// A factory for a module already read; loads nothing until a host
    /// starts it.
    pub fn from_image(image: Arc<ModuleImage>) -> Arc<ModuleFactory> {
        Arc::new(ModuleFactory {
            image,
            config: Mutex::new("{}".into()),
        })
    }

    /// Loads one copy and unloads it again (a virtual-time module) or
    /// keeps it (a real-time one): whether the module loads, exports both
    /// entry points and has no unresolved symbols. Runs its initialisers
    /// (and finalisers) in this process.
    pub fn check_loads(&self) -> Result<(), ModuleError> {
        let copy = load_copy(&self.image)?;
        if self.image.virtual_time() {
            copy.unload();
        } else {
            copy.keep();
        }
        Ok(())
    }

    /// The module's file.
    pub fn path(&self) -> &Path {
        self.image.path()
    }

    /// The module as read.
    pub fn image(&self) -> &Arc<ModuleImage> {
        &self.image
    }

    /// The configuration handed to `CpsimProviderStart` (JSON text).
    pub fn config_json(&self) -> String {
        self.config.lock().clone()
    }
}

impl ProviderFactory for ModuleFactory {
    fn name(&self) -> String {
        self.image.name().to_string()
    }
    fn create(&self, host: &str) -> Box<dyn Provider> {
        Box::new(ModuleProvider {
            image: self.image.clone(),
            host: host.to_string(),
            config: self.config_json(),
            copy: None,
            started: false,
            routed: None,
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
        self.image.virtual_time()
    }
}

/// One host's run of a module.
struct ModuleProvider {
    image: Arc<ModuleImage>,
    host: String,
    config: String,
    /// The loaded copy.
    copy: Option<Copy>,
    /// Start succeeded (so Stop is owed).
    started: bool,
    /// The copy as registered for routing.
    routed: Option<Routed>,
}

impl Provider for ModuleProvider {
    fn start(&mut self, cx: &Cx) {
        let copy = match load_copy(&self.image) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cpsim: host {}: {e}", self.host);
                return;
            }
        };
        let routed = Routed {
            base: copy.base,
            cx: cx.clone(),
            alive: Arc::new(AtomicBool::new(true)),
            virtual_time: self.image.virtual_time(),
        };
        COPIES.write().push(routed.clone());
        self.routed = Some(routed);
        let (host, config) = (
            CString::new(self.host.replace('\0', "")).unwrap_or_default(),
            CString::new(self.config.replace('\0', "")).unwrap_or_default(),
        );
        let start = copy.start;
        self.copy = Some(copy);
        // SAFETY: the module's entry point, with two NUL-terminated strings
        // that outlive the call (the module copies what it keeps).
        let hr = in_phase(Phase::Starting, || unsafe {
            start(host.as_ptr(), config.as_ptr())
        });
        if hr == S_OK {
            self.started = true;
        } else {
            eprintln!(
                "cpsim: host {}: CpsimProviderStart of {} failed with {}",
                self.host,
                self.image.path().display(),
                cpsim_sim::trace::hr_name(hr)
            );
        }
    }

    fn stop(&mut self, _cx: &Cx) {
        if !std::mem::take(&mut self.started) {
            return;
        }
        if let Some(copy) = &self.copy {
            let stop = copy.stop;
            // SAFETY: the module's entry point; Start succeeded and Stop
            // has not been called for this copy.
            in_phase(Phase::Stopping, || unsafe { stop() });
        }
        // Nothing of the module runs after Stop: its timers and tasks
        // still queued are dropped uncalled.
        if let Some(r) = &self.routed {
            r.alive.store(false, Ordering::Release);
        }
    }
}

impl Drop for ModuleProvider {
    fn drop(&mut self) {
        if let Some(r) = self.routed.take() {
            r.alive.store(false, Ordering::Release);
            COPIES.write().retain(|c| c.base != r.base);
        }
        if let Some(copy) = self.copy.take() {
            if self.image.virtual_time() && !self.started {
                // Stopped (or never started): none of its code can still run.
                copy.unload();
            } else {
                copy.keep();
            }
        }
    }
}
