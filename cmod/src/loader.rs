//! What both systems share: the table the router forwards to, the routing
//! of calls by the caller's load address to the host whose copy made them,
//! the module entry points' phases, and the factory that gives each host a
//! private copy. Loading a copy and finding which loaded object holds an
//! address is each system's own (`unix.rs`, `windows.rs`).

use crate::facility::{self, CpsimAddress, ReceiveRoutine, TaskRoutine};
use crate::image::ModuleImage;
use crate::ModuleError;
use cpsim_sim::abi::*;
use cpsim_sim::{ffi, Cx, Provider, ProviderFactory};
use parking_lot::{Mutex, RwLock};
use std::ffi::{c_char, c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

/// The table the router forwards to: `cpsim_router_table` of `c/router.c`.
#[repr(C)]
pub(crate) struct RouterTable {
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

pub(crate) static TABLE: RouterTable = RouterTable {
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

/// The first failed `CpsimProviderStart` in this process (host, result),
/// for the harness to tell an author whose module never ran.
static START_FAILED: Mutex<Option<String>> = Mutex::new(None);

/// The first `CpsimProviderStart` that failed in this process, if any:
/// which host and what it returned.
pub fn first_start_failure() -> Option<String> {
    START_FAILED.lock().clone()
}

/// The copy whose code is at `addr` (any address inside it).
pub(crate) fn copy_at(addr: *const c_void) -> Option<Routed> {
    if addr.is_null() {
        return None;
    }
    copy_based(crate::os::base_of(addr)? as *mut c_void)
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
    cpsim_sim::edge::guard(on_panic, || match cx {
        Some(cx) => cx.enter(f),
        None => f(),
    })
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

pub(crate) type StartFn = unsafe extern "C" fn(*const c_char, *const c_char) -> HRESULT;
pub(crate) type StopFn = unsafe extern "C" fn();

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

pub(crate) fn in_phase<R>(p: Phase, f: impl FnOnce() -> R) -> R {
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
pub(crate) struct Copy {
    pub(crate) start: StartFn,
    pub(crate) stop: StopFn,
    /// Its load address (what the router reports for its calls).
    pub(crate) base: usize,
    /// What keeps it loaded (the system's handle and file).
    pub(crate) held: Option<crate::os::Held>,
}

impl Copy {
    /// Unloads the copy (a virtual-time module: none of its code can still
    /// run). If the system keeps it loaded anyway, it stays resident, its
    /// file kept so that no later copy can be mistaken for it.
    pub(crate) fn unload(mut self) {
        let Some(held) = self.held.take() else { return };
        if !in_phase(Phase::Unloading, || held.unload()) {
            RESIDENT.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Leaves the copy loaded for good (its threads may still run).
    fn keep(mut self) {
        if let Some(held) = self.held.take() {
            held.keep();
            RESIDENT.fetch_add(1, Ordering::Relaxed);
        }
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
            crate::os::load_copy(&image)?.keep();
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
        let copy = crate::os::load_copy(&self.image)?;
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
        let copy = match crate::os::load_copy(&self.image) {
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
            let what = format!(
                "CpsimProviderStart on host {} returned {}",
                self.host,
                cpsim_sim::trace::hr_name(hr)
            );
            eprintln!("cpsim: {what} ({})", self.image.path().display());
            START_FAILED.lock().get_or_insert(what);
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
