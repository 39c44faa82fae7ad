//! The backend for a *native* Connectivity Platform: Windows 7's
//! `iphlpapi.dll`, or any library exporting the five `CPNatfwt*` functions
//! (the simulator's own C library, `cpsim-capi`, is the stand-in the tests
//! use, on Linux and under Wine).
//!
//! [`NativePlatform::load`] loads the library from a path the caller picks
//! ([`NativePlatform::system`]: `iphlpapi.dll`, Windows only) and resolves
//! the five exports at run time, never at link time. Where they are missing
//! (every Windows after 7, and Wine) loading fails with
//! [`NativeError::NotAvailable`]: "the Connectivity Platform API is not
//! available on this system".
//!
//! **The bridge.** A raw-ABI provider calls the platform through the
//! methods of [`NativePlatform`] (same arguments as the C functions). The
//! bridge hands the platform its own dispatch table, whose entries record
//! each callback (arguments, return value) in a [`Trace`] and forward it to
//! the provider's; and its own completion routine, which records each
//! completion and forwards it to the platform's. Each exported function's
//! result is recorded too. [`NativePlatform::check`] then runs the very
//! checker that holds the simulator to the C-rules, [`cpsim_sim::oracle`], over
//! that trace: what the real platform did is judged by the same rules.
//!
//! **Safe providers.** [`NativePlatform`] implements
//! [`cpsim_sim::Platform`]: leak it ([`NativePlatform::into_static`]) and give
//! it to [`cpsim_sim::Sim::with_platform`], and every provider of that world,
//! safe [`SessionHandler`](cpsim_sim::safe::SessionHandler)s included, calls
//! this platform through the bridge. The world then runs in real time and
//! supplies only the providers' tasks, timers and (simulated) network. What
//! the type system cannot stop a safe provider doing (a panic in a callback,
//! CRASH-1; a `Pending` token dropped, COMP-4) is recorded as a provider
//! violation: [`NativePlatform::provider_violations`].
//!
//! What a provider cannot observe, the bridge cannot record, so some
//! C-rules are only partly checked on a native platform (see
//! `docs/c-providers.md`): how the platform *read* a call (COMP-1) is
//! assumed to follow the contract; interface names (REG-1..3) are not read;
//! every transport ID the platform passes counts as issued by it (TID-1).
//!
//! Every callback entry point catches panics (a panic must not unwind into
//! the platform). The library is never unloaded: the platform may still run
//! threads of its own.

pub mod standin;

use cpsim_sim::abi::*;
use cpsim_sim::rules::{id, RuleId};
use cpsim_sim::trace::{Event, PlatformFn, Trace, What};
use cpsim_sim::{Callback, Cx, Nanos, Platform, Tid, Violation};
use libloading::Library;
use parking_lot::Mutex;
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_void, OsStr};
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// The five exports, in CONTRACT order.
pub const EXPORTS: [&str; 5] = [
    "CPNatfwtCreateProviderInstance",
    "CPNatfwtRegisterProviderInstance",
    "CPNatfwtDeregisterProviderInstance",
    "CPNatfwtDestroyProviderInstance",
    "CPNatfwtIndicateReceivedBuffers",
];

/// Why a native platform cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeError {
    /// The library itself could not be loaded.
    Load { path: PathBuf, error: String },
    /// The library (or this operating system) lacks the API.
    NotAvailable { path: PathBuf, missing: Vec<String> },
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NativeError::Load { path, error } => {
                write!(f, "cannot load {}: {error}", path.display())
            }
            NativeError::NotAvailable { path, missing } => write!(
                f,
                "the Connectivity Platform API is not available on this system: {} does not export {} (only Windows 7's iphlpapi.dll has it)",
                path.display(),
                if missing.len() == EXPORTS.len() {
                    "any of the CPNatfwt* functions".to_string()
                } else {
                    missing.join(", ")
                }
            ),
        }
    }
}

impl std::error::Error for NativeError {}

#[derive(Copy, Clone)]
struct Fns {
    create: PFN_CPNatfwtCreateProviderInstance,
    register: PFN_CPNatfwtRegisterProviderInstance,
    deregister: PFN_CPNatfwtDeregisterProviderInstance,
    destroy: PFN_CPNatfwtDestroyProviderInstance,
    indicate: PFN_CPNatfwtIndicateReceivedBuffers,
}

/// One provider instance as the bridge knows it. Its address is the user
/// context the platform sees; the provider's own is handed back to it.
struct Shim {
    inner: Arc<Inner>,
    /// The instance's number on this bridge (1, 2, ...).
    n: u32,
    table: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
    user: usize,
    terminated: AtomicBool,
}

/// A pended (or pendable) call: the context the bridge gave the provider.
struct Pend {
    n: u32,
    cb: Callback,
    call: u32,
    real_ctx: usize,
    real_routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    shim: usize,
    in_callback: bool,
    /// Returned synchronously: a later completion is the provider's bug, not forwarded.
    sync: bool,
    done: bool,
    early: Option<HRESULT>,
    tid: Option<(usize, Tid)>,
}

/// A pended indication: the provider's routine and context.
struct IndPend {
    n: u32,
    shim: usize,
    ctx: usize,
    routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
}

struct Rec {
    start: Instant,
    step: u64,
    trace: Trace,
    next_call: u32,
    created: u32,
    seen: HashSet<Tid>,
    /// Instances whose Register has not returned: their events wait, so
    /// that the trace shows Register's result before ESTABLISH (SESS-1).
    in_call: HashMap<u32, Vec<What>>,
}

struct Inner {
    fns: Fns,
    path: PathBuf,
    rec: Mutex<Rec>,
    /// Rules a safe provider broke that only it could report.
    provider_violations: Mutex<Vec<Violation>>,
    /// Safe instances' user contexts: the platform may call with them at
    /// any time, so they live as long as the process.
    keep: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
    /// A multi-host stand-in: Creates go to the caller's host there.
    route: Mutex<Option<Arc<standin::StandIn>>>,
}

/// Every bridge's instances by handle, and the shims' addresses.
static SHIMS: LazyLock<Mutex<HashMap<u64, Arc<Shim>>>> = LazyLock::new(Default::default);
static SHIM_ADDRS: LazyLock<Mutex<HashMap<usize, Arc<Shim>>>> = LazyLock::new(Default::default);
static PENDS: LazyLock<Mutex<HashMap<usize, Pend>>> = LazyLock::new(Default::default);
/// Finished calls (the last [`RETIRED_KEPT`]), to name a late or second
/// completion (COMP-3, COMP-4).
static RETIRED: LazyLock<Mutex<Retired>> = LazyLock::new(Default::default);
const RETIRED_KEPT: usize = 1 << 16;

/// A finished call: whose, which, and whether it returned synchronously.
#[derive(Copy, Clone)]
struct Spent {
    shim: usize,
    n: u32,
    cb: Callback,
    call: u32,
    sync: bool,
}

#[derive(Default)]
struct Retired {
    by_ctx: HashMap<usize, Spent>,
    order: std::collections::VecDeque<usize>,
}

impl Retired {
    fn add(&mut self, ctx: usize, p: &Pend) {
        if self.order.len() == RETIRED_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_ctx.remove(&old);
            }
        }
        self.order.push_back(ctx);
        self.by_ctx.insert(
            ctx,
            Spent {
                shim: p.shim,
                n: p.n,
                cb: p.cb,
                call: p.call,
                sync: p.sync,
            },
        );
    }
}

/// Records a provider violation on the bridge that made call context's shim.
fn provider_violation_at(shim: usize, rule: RuleId, n: u32, cb: Callback, message: String) {
    let s = SHIM_ADDRS.lock().get(&shim).cloned();
    if let Some(s) = s {
        s.inner.provider_violation(rule, n, cb, message);
    }
}
static IND_PENDS: LazyLock<Mutex<HashMap<usize, IndPend>>> = LazyLock::new(Default::default);
/// Where the bridge's completion contexts start. They have high bits set,
/// so that a context cut to 32 bits on its way back (COMP-5) is not the
/// call's own any more: its low bits still tell which call it was cut from.
const CTX_BASE: u64 = 0x5EED_0000_0000_1000;
static NEXT_CTX: Mutex<usize> = Mutex::new(CTX_BASE as usize);

fn next_ctx() -> usize {
    let mut n = NEXT_CTX.lock();
    *n += 16;
    *n
}

impl Inner {
    fn record(&self, n: u32, what: What) {
        let mut r = self.rec.lock();
        if let Some(waiting) = r.in_call.get_mut(&n) {
            waiting.push(what);
            return;
        }
        r.push(n, what);
    }
}

impl Rec {
    fn push(&mut self, n: u32, what: What) {
        self.step += 1;
        let at = Nanos::from_std(self.start.elapsed());
        self.trace.events.push(Event {
            step: self.step,
            at,
            host: 0,
            inst: n,
            what,
        });
    }
    /// Records transport IDs the platform passed as issued by it.
    fn issued(&mut self, n: u32, tids: &[Tid]) {
        for t in tids {
            if self.seen.insert(*t) {
                self.push(
                    n,
                    What::Address {
                        tid: *t,
                        added: true,
                    },
                );
            }
        }
    }
}

/// A native platform behind the recording bridge.
pub struct NativePlatform {
    inner: Arc<Inner>,
}

impl NativePlatform {
    /// The system's platform: `iphlpapi.dll` on Windows. Elsewhere, and on
    /// every Windows but 7, [`NativeError::NotAvailable`].
    pub fn system() -> Result<NativePlatform, NativeError> {
        if cfg!(windows) {
            NativePlatform::load("iphlpapi.dll")
        } else {
            Err(NativeError::NotAvailable {
                path: PathBuf::from("iphlpapi.dll"),
                missing: EXPORTS.iter().map(|s| s.to_string()).collect(),
            })
        }
    }

    /// Loads the library at `path` (a bare name uses the system's search)
    /// and resolves the five exports.
    pub fn load(path: impl AsRef<OsStr>) -> Result<NativePlatform, NativeError> {
        let path = PathBuf::from(path.as_ref());
        // SAFETY: loading runs the library's initialisers; the caller chose it.
        let lib = unsafe { Library::new(path.as_os_str()) }.map_err(|e| NativeError::Load {
            path: path.clone(),
            error: e.to_string(),
        })?;
        let lib = ManuallyDrop::new(lib);
        let mut missing = Vec::new();
        let mut addr = |name: &str| -> usize {
            let mut sym = name.as_bytes().to_vec();
            sym.push(0);
            // SAFETY: only the address is taken; it is given its type below.
            match unsafe { lib.get::<*mut c_void>(&sym) } {
                Ok(s) if !s.is_null() => *s as usize,
                _ => {
                    missing.push(name.to_string());
                    0
                }
            }
        };
        let a: Vec<usize> = EXPORTS.iter().map(|n| addr(n)).collect();
        if !missing.is_empty() {
            return Err(NativeError::NotAvailable { path, missing });
        }
        // SAFETY: each address is the export of that name, whose C type the
        // contract fixes (cpnatfwt.h); the library is never unloaded.
        let fns = unsafe {
            Fns {
                create: std::mem::transmute::<usize, PFN_CPNatfwtCreateProviderInstance>(a[0]),
                register: std::mem::transmute::<usize, PFN_CPNatfwtRegisterProviderInstance>(a[1]),
                deregister: std::mem::transmute::<usize, PFN_CPNatfwtDeregisterProviderInstance>(
                    a[2],
                ),
                destroy: std::mem::transmute::<usize, PFN_CPNatfwtDestroyProviderInstance>(a[3]),
                indicate: std::mem::transmute::<usize, PFN_CPNatfwtIndicateReceivedBuffers>(a[4]),
            }
        };
        Ok(NativePlatform {
            inner: Arc::new(Inner {
                fns,
                path,
                rec: Mutex::new(Rec {
                    start: Instant::now(),
                    step: 0,
                    trace: Trace {
                        hosts: vec!["local".into()],
                        ..Trace::default()
                    },
                    next_call: 0,
                    created: 0,
                    seen: HashSet::new(),
                    in_call: HashMap::new(),
                }),
                provider_violations: Mutex::new(Vec::new()),
                keep: Mutex::new(Vec::new()),
                route: Mutex::new(None),
            }),
        })
    }

    /// This bridge for the life of the process, as a [`Platform`] for
    /// [`cpsim_sim::Sim::with_platform`] and [`cpsim_sim::safe`] handles (the
    /// library is never unloaded either).
    pub fn into_static(self) -> &'static NativePlatform {
        Box::leak(Box::new(self))
    }

    /// Makes each Create that provider code of a `Sim::with_platform` world
    /// makes through this bridge go to the host of `standin`'s world named
    /// like the caller's host (a real machine has one host: no routing).
    pub fn route_creates_to(&self, standin: Arc<standin::StandIn>) {
        *self.inner.route.lock() = Some(standin);
    }

    /// Rules the providers broke that the safe API reported (CRASH-1 for a
    /// panic in a callback, COMP-4 for a dropped `Pending`), in order.
    pub fn provider_violations(&self) -> Vec<Violation> {
        self.inner.provider_violations.lock().clone()
    }

    /// The library's path, as given.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What the bridge has seen so far.
    pub fn trace(&self) -> Trace {
        self.inner.rec.lock().trace.clone()
    }

    /// The C-rules the platform broke in what the bridge has seen, judged
    /// by the simulator's own platform checker.
    pub fn check(&self) -> Vec<Violation> {
        cpsim_sim::oracle::check(&self.trace())
    }

    fn n_of(handle: CPNATFWT_PROVIDER_INSTANCE) -> u32 {
        SHIMS.lock().get(&handle.as_u64()).map_or(0, |s| s.n)
    }

    fn function(&self, n: u32, f: PlatformFn, hr: HRESULT) {
        self.inner.record(
            n,
            What::Function {
                f,
                hr,
                detail: None,
            },
        );
    }

    /// `CPNatfwtCreateProviderInstance` through the bridge. A well-formed
    /// table is interposed; a malformed one goes to the platform as it is
    /// (the platform must refuse it: LIFE-9).
    ///
    /// # Safety
    /// As the C function: `table` points at a dispatch table of the size it
    /// declares (or is NULL), `out` is writable (or NULL).
    pub unsafe fn create_provider_instance(
        &self,
        table: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
        user: *mut c_void,
        out: *mut CPNATFWT_PROVIDER_INSTANCE,
    ) -> HRESULT {
        // SAFETY: the size is read first; the whole table only if it matches.
        let well_formed = !table.is_null()
            && unsafe { table.cast::<u32>().read_unaligned() } == DISPATCH_TABLE_SIZE
            && {
                // SAFETY: the table declares the full size.
                let t = unsafe { &*table };
                t.establishSessionIndication.is_some()
                    && t.terminateSessionIndication.is_some()
                    && t.transitionActive.is_some()
                    && t.transitionDormant.is_some()
                    && t.addTransportId.is_some()
                    && t.removeTransportId.is_some()
                    && t.reachTransportId.is_some()
                    && t.sendBuffers.is_some()
            };
        if !well_formed || out.is_null() {
            // SAFETY: forwarded as given.
            let hr = unsafe { (self.inner.fns.create)(table, user, out) };
            self.function(0, PlatformFn::CPNatfwtCreateProviderInstance, hr);
            return hr;
        }
        let n = {
            let mut r = self.inner.rec.lock();
            r.created += 1;
            r.created
        };
        let shim = Arc::new(Shim {
            inner: self.inner.clone(),
            n,
            // SAFETY: checked well formed above.
            table: unsafe { std::ptr::read(table) },
            user: user as usize,
            terminated: AtomicBool::new(false),
        });
        let addr = Arc::as_ptr(&shim) as usize;
        SHIM_ADDRS.lock().insert(addr, shim.clone());
        let mut h = CPNATFWT_PROVIDER_INSTANCE::NULL;
        // SAFETY: our static table and a user context (the shim) that lives
        // as long as the process.
        let hr = unsafe { (self.inner.fns.create)(&BRIDGE_TABLE, addr as *mut c_void, &mut h) };
        if hr == S_OK {
            SHIMS.lock().insert(h.as_u64(), shim);
            // SAFETY: checked non-NULL above; writable per the contract.
            unsafe { out.write_unaligned(h) };
            self.function(n, PlatformFn::CPNatfwtCreateProviderInstance, hr);
        } else {
            SHIM_ADDRS.lock().remove(&addr);
            self.function(0, PlatformFn::CPNatfwtCreateProviderInstance, hr);
        }
        hr
    }

    /// `CPNatfwtRegisterProviderInstance` through the bridge.
    ///
    /// # Safety
    /// As the C function.
    pub unsafe fn register_provider_instance(
        &self,
        handle: CPNATFWT_PROVIDER_INSTANCE,
        name: *mut WCHAR,
        luid: *mut IF_LUID,
        flags: u32,
        sddl: *mut WCHAR,
    ) -> HRESULT {
        let n = Self::n_of(handle);
        let requested = if luid.is_null() {
            0
        } else {
            // SAFETY: non-NULL in/out parameter, per the contract.
            unsafe { luid.read_unaligned().Value }
        };
        // REG-9: the platform only reads the caller's strings.
        // SAFETY: NULL or NUL-terminated strings, per the contract.
        let before = unsafe { (wide_copy(name), wide_copy(sddl)) };
        self.inner.rec.lock().in_call.insert(n, Vec::new());
        // SAFETY: forwarded under this function's contract.
        let hr = unsafe { (self.inner.fns.register)(handle, name, luid, flags, sddl) };
        // SAFETY: the same strings, still the caller's.
        let after = unsafe { (wide_copy(name), wide_copy(sddl)) };
        let mut r = self.inner.rec.lock();
        let waiting = r.in_call.remove(&n).unwrap_or_default();
        r.push(
            n,
            What::Function {
                f: PlatformFn::CPNatfwtRegisterProviderInstance,
                hr,
                detail: None,
            },
        );
        if after != before {
            r.push(
                n,
                What::ArgsWritten {
                    f: PlatformFn::CPNatfwtRegisterProviderInstance,
                },
            );
        }
        if hr == S_OK {
            let got = if luid.is_null() {
                None
            } else {
                // SAFETY: as above; the platform wrote the result.
                Some(unsafe { luid.read_unaligned().Value })
            };
            // The interface's name is not read: a unique stand-in keeps the
            // name checks (REG-1..3) quiet rather than wrong.
            r.push(
                n,
                What::Registered {
                    name: format!("interface of instance {n}"),
                    luid: got.unwrap_or(u64::MAX),
                    requested_luid: requested,
                    name_was_null: false,
                    addrs: Vec::new(),
                },
            );
        }
        for w in waiting {
            r.push(n, w);
        }
        hr
    }

    /// `CPNatfwtDeregisterProviderInstance` through the bridge.
    ///
    /// # Safety
    /// As the C function.
    pub unsafe fn deregister_provider_instance(
        &self,
        handle: CPNATFWT_PROVIDER_INSTANCE,
    ) -> HRESULT {
        let n = Self::n_of(handle);
        self.inner.rec.lock().in_call.insert(n, Vec::new());
        // SAFETY: forwarded under this function's contract.
        let hr = unsafe { (self.inner.fns.deregister)(handle) };
        let mut r = self.inner.rec.lock();
        let waiting = r.in_call.remove(&n).unwrap_or_default();
        r.push(
            n,
            What::Function {
                f: PlatformFn::CPNatfwtDeregisterProviderInstance,
                hr,
                detail: None,
            },
        );
        for w in waiting {
            r.push(n, w);
        }
        hr
    }

    /// `CPNatfwtDestroyProviderInstance` through the bridge.
    ///
    /// # Safety
    /// As the C function.
    pub unsafe fn destroy_provider_instance(&self, handle: CPNATFWT_PROVIDER_INSTANCE) {
        // SAFETY: forwarded under this function's contract.
        unsafe { (self.inner.fns.destroy)(handle) };
        self.function(
            Self::n_of(handle),
            PlatformFn::CPNatfwtDestroyProviderInstance,
            S_OK,
        );
    }

    /// `CPNatfwtIndicateReceivedBuffers` through the bridge (a provider
    /// completion routine is interposed, to record when it is called).
    ///
    /// # Safety
    /// As the C function.
    pub unsafe fn indicate_received_buffers(
        &self,
        handle: CPNATFWT_PROVIDER_INSTANCE,
        local: *mut CPNATFWT_TRANSPORT_ID,
        remote: *mut CPNATFWT_TRANSPORT_ID,
        chain: *mut CPNATFWT_BUFFER,
        ctx: *mut c_void,
        routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
    ) -> HRESULT {
        let n = Self::n_of(handle);
        let (ctx2, routine2) = match routine {
            Some(_) => {
                let id = next_ctx();
                let shim = SHIMS
                    .lock()
                    .get(&handle.as_u64())
                    .map_or(0, |s| Arc::as_ptr(s) as usize);
                IND_PENDS.lock().insert(
                    id,
                    IndPend {
                        n,
                        shim,
                        ctx: ctx as usize,
                        routine,
                    },
                );
                (
                    id as *mut c_void,
                    Some(bridge_provider_completion as unsafe extern "system" fn(_, _)),
                )
            }
            None => (ctx, None),
        };
        // SAFETY: forwarded under this function's contract.
        let hr = unsafe { (self.inner.fns.indicate)(handle, local, remote, chain, ctx2, routine2) };
        if routine.is_some() && hr != E_PENDING_IO {
            // Not pended: the platform will not call the routine.
            IND_PENDS.lock().remove(&(ctx2 as usize));
        }
        self.function(n, PlatformFn::CPNatfwtIndicateReceivedBuffers, hr);
        hr
    }
}

// ---------------------------------------------------------------------------
// The interposed dispatch table

static BRIDGE_TABLE: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE =
    CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
        size: DISPATCH_TABLE_SIZE,
        establishSessionIndication: Some(b_establish),
        terminateSessionIndication: Some(b_terminate),
        transitionActive: Some(b_transition_active),
        transitionDormant: Some(b_transition_dormant),
        addTransportId: Some(b_add),
        removeTransportId: Some(b_remove),
        reachTransportId: Some(b_reach),
        sendBuffers: Some(b_send),
    };

/// The shim of a callback: by handle, else by the user context if it is one
/// of ours. Also the difference between the context passed and ours (SESS-6).
fn shim_of(handle: CPNATFWT_PROVIDER_INSTANCE, user: *mut c_void) -> Option<(Arc<Shim>, u64)> {
    let s = SHIMS
        .lock()
        .get(&handle.as_u64())
        .cloned()
        .or_else(|| SHIM_ADDRS.lock().get(&(user as usize)).cloned())?;
    let delta = (user as usize ^ Arc::as_ptr(&s) as usize) as u64;
    Some((s, delta))
}

/// Deep-copies a transport ID the platform passed (NULL or malformed: None).
///
/// # Safety
/// `t` is NULL or points at a transport ID valid for the call.
unsafe fn tid_of(t: *const CPNATFWT_TRANSPORT_ID) -> Option<Tid> {
    if t.is_null() {
        return None;
    }
    // SAFETY: per the function's contract.
    let t = unsafe { t.read_unaligned() };
    if t.transportId.is_null() || t.size == 0 || t.size > 16 {
        return None;
    }
    // SAFETY: the ID says `size` bytes live there.
    Tid::from_bytes(unsafe { std::slice::from_raw_parts(t.transportId, t.size as usize) })
}

/// Total bytes of a chain (bounded walk).
///
/// # Safety
/// `c` is NULL or a chain valid for the call.
unsafe fn chain_len(mut c: *const CPNATFWT_BUFFER) -> u32 {
    let mut total = 0u32;
    for _ in 0..4096 {
        if c.is_null() {
            break;
        }
        // SAFETY: per the function's contract.
        let b = unsafe { c.read_unaligned() };
        total = total.saturating_add(b.size);
        c = b.next;
    }
    total
}

fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

unsafe extern "system" fn b_establish(h: CPNATFWT_PROVIDER_INSTANCE, user: *mut c_void) {
    guard((), || {
        let Some((s, delta)) = shim_of(h, user) else {
            return;
        };
        let cb = Callback::EstablishSessionIndication;
        s.inner
            .record(s.n, call_event(cb, 0, None, None, None, None, delta, false));
        if let Some(f) = s.table.establishSessionIndication {
            // SAFETY: the provider's callback with its own user context.
            unsafe { f(h, s.user as *mut c_void) };
        }
        s.inner.record(
            s.n,
            What::Return {
                cb,
                call: 0,
                hr: None,
            },
        );
    })
}

unsafe extern "system" fn b_terminate(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    reason: CPNATFWT_SESSION_TERMINATION_REASON,
) {
    guard((), || {
        let Some((s, delta)) = shim_of(h, user) else {
            return;
        };
        let cb = Callback::TerminateSessionIndication;
        s.terminated.store(true, Ordering::Release);
        if let Some(cause) = unseen_cause(&s, reason) {
            s.inner.record(s.n, cause);
        }
        s.inner.record(
            s.n,
            call_event(cb, 0, None, None, None, Some(reason), delta, false),
        );
        if let Some(f) = s.table.terminateSessionIndication {
            // SAFETY: the provider's callback with its own user context.
            unsafe { f(h, s.user as *mut c_void, reason) };
        }
        s.inner.record(
            s.n,
            What::Return {
                cb,
                call: 0,
                hr: None,
            },
        );
    })
}

/// What the bridge can say about why the platform ends a session whose
/// cause happened where no provider can see it. A timeout (the platform's
/// own timer) is put down to the oldest call still pended on the instance,
/// if any (with none, the checker rightly finds no cause: SESS-5); a
/// shutdown or an infrastructure fault is taken as given.
fn unseen_cause(s: &Arc<Shim>, reason: CPNATFWT_SESSION_TERMINATION_REASON) -> Option<What> {
    use CPNATFWT_SESSION_TERMINATION_REASON as R;
    match reason {
        R::ProviderTimeout => {
            let me = Arc::as_ptr(s) as usize;
            PENDS
                .lock()
                .values()
                .filter(|p| p.shim == me && !p.sync && !p.done)
                .min_by_key(|p| p.call)
                .map(|p| What::Timeout {
                    cb: p.cb,
                    call: p.call,
                    excused: false,
                })
        }
        R::PlatformShutdown | R::OtherCommunicationError => Some(What::UnseenCause { reason }),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn call_event(
    cb: Callback,
    call: u32,
    tid: Option<Tid>,
    remote: Option<Tid>,
    bytes: Option<u32>,
    reason: Option<CPNATFWT_SESSION_TERMINATION_REASON>,
    context_delta: u64,
    routine: bool,
) -> What {
    What::Call {
        cb,
        call,
        tid,
        remote,
        bytes,
        reason,
        context_delta,
        routine,
    }
}

/// The common part of every async-capable callback: record the call, hand
/// the provider the bridge's completion context and routine, record the
/// return (and how a finished call reads), forward the result.
#[allow(clippy::too_many_arguments)]
fn bridged_call(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    cb: Callback,
    tid_ptr: *const CPNATFWT_TRANSPORT_ID,
    tid: Option<Tid>,
    remote: Option<Tid>,
    bytes: Option<u32>,
    ctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    invoke: impl FnOnce(&Shim, *mut c_void, CPNATFWT_PLATFORM_COMPLETION_ROUTINE) -> HRESULT,
) -> HRESULT {
    let Some((s, delta)) = shim_of(h, user) else {
        return E_FAIL;
    };
    let (call, id) = {
        let mut r = s.inner.rec.lock();
        r.next_call += 1;
        let ids: Vec<Tid> = tid.into_iter().chain(remote).collect();
        r.issued(s.n, &ids);
        (r.next_call, next_ctx())
    };
    s.inner.record(
        s.n,
        call_event(cb, call, tid, remote, bytes, None, delta, routine.is_some()),
    );
    PENDS.lock().insert(
        id,
        Pend {
            n: s.n,
            cb,
            call,
            real_ctx: ctx as usize,
            real_routine: routine,
            shim: Arc::as_ptr(&s) as usize,
            in_callback: true,
            sync: false,
            done: false,
            early: None,
            tid: tid
                .filter(|_| !tid_ptr.is_null())
                .map(|t| (tid_ptr as usize, t)),
        },
    );
    let hr = invoke(&s, id as *mut c_void, Some(bridge_completion));
    s.inner.record(
        s.n,
        What::Return {
            cb,
            call,
            hr: Some(hr),
        },
    );
    let mut pends = PENDS.lock();
    let mut early_then_sync = false;
    if let Some(p) = pends.get_mut(&id) {
        p.in_callback = false;
        let read = if hr != E_PENDING_IO {
            p.sync = true;
            early_then_sync = p.early.is_some();
            Some(hr == S_OK)
        } else {
            p.early.map(|st| st == S_OK)
        };
        if let Some(ok) = read {
            s.inner.record(s.n, What::Outcome { cb, call, ok });
        }
        if p.sync || p.done {
            if let Some(p) = pends.remove(&id) {
                RETIRED.lock().add(id, &p);
            }
        }
    }
    drop(pends);
    if early_then_sync {
        s.inner.provider_violation(
            id::COMP_3,
            s.n,
            cb,
            format!("the completion routine was called, then the callback returned 0x{hr:08X} instead of ERROR_IO_PENDING"),
        );
    }
    hr
}

unsafe extern "system" fn b_transition_active(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    ctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    guard(E_FAIL, || {
        let cb = Callback::TransitionActive;
        bridged_call(
            h,
            user,
            cb,
            std::ptr::null(),
            None,
            None,
            None,
            ctx,
            routine,
            |s, c, r| {
                // SAFETY: the provider's callback, its user context, our completion.
                s.table
                    .transitionActive
                    .map_or(E_FAIL, |f| unsafe { f(h, s.user as *mut c_void, c, r) })
            },
        )
    })
}

unsafe extern "system" fn b_transition_dormant(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    ctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    guard(E_FAIL, || {
        let cb = Callback::TransitionDormant;
        bridged_call(
            h,
            user,
            cb,
            std::ptr::null(),
            None,
            None,
            None,
            ctx,
            routine,
            |s, c, r| {
                // SAFETY: the provider's callback, its user context, our completion.
                s.table
                    .transitionDormant
                    .map_or(E_FAIL, |f| unsafe { f(h, s.user as *mut c_void, c, r) })
            },
        )
    })
}

macro_rules! tid_callback {
    ($name:ident, $cb:expr, $field:ident) => {
        unsafe extern "system" fn $name(
            h: CPNATFWT_PROVIDER_INSTANCE,
            user: *mut c_void,
            t: *mut CPNATFWT_TRANSPORT_ID,
            ctx: *mut c_void,
            routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
        ) -> HRESULT {
            guard(E_FAIL, || {
                // SAFETY: the platform's argument, valid during the call.
                let tid = unsafe { tid_of(t) };
                bridged_call(h, user, $cb, t, tid, None, None, ctx, routine, |s, c, r| {
                    s.table.$field.map_or(E_FAIL, |f| {
                        // SAFETY: the provider's callback, the platform's ID,
                        // its user context, our completion.
                        unsafe { f(h, s.user as *mut c_void, t, c, r) }
                    })
                })
            })
        }
    };
}

tid_callback!(b_add, Callback::AddTransportId, addTransportId);
tid_callback!(b_remove, Callback::RemoveTransportId, removeTransportId);
tid_callback!(b_reach, Callback::ReachTransportId, reachTransportId);

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn b_send(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    local: *mut CPNATFWT_TRANSPORT_ID,
    remote: *mut CPNATFWT_TRANSPORT_ID,
    endpoint: u64,
    chain: *mut CPNATFWT_BUFFER,
    ctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    guard(E_FAIL, || {
        // SAFETY: the platform's arguments, valid during the call.
        let (l, r, bytes) = unsafe { (tid_of(local), tid_of(remote), chain_len(chain)) };
        let cb = Callback::SendBuffers;
        bridged_call(
            h,
            user,
            cb,
            local,
            l,
            r,
            Some(bytes),
            ctx,
            routine,
            |s, c, rt| {
                s.table.sendBuffers.map_or(E_FAIL, |f| {
                    // SAFETY: the provider's callback with the platform's
                    // arguments, its user context, our completion.
                    unsafe {
                        f(
                            h,
                            s.user as *mut c_void,
                            local,
                            remote,
                            endpoint,
                            chain,
                            c,
                            rt,
                        )
                    }
                })
            },
        )
    })
}

/// A copy of a NUL-terminated UTF-16 string (at most 32,768 units), or
/// None for NULL.
///
/// # Safety
/// `p` is NULL or points at a NUL-terminated string.
unsafe fn wide_copy(p: *const WCHAR) -> Option<Vec<u16>> {
    if p.is_null() {
        return None;
    }
    let mut v = Vec::new();
    for i in 0..32_768 {
        // SAFETY: per this function's contract; reading stops at the NUL.
        let c = unsafe { p.add(i).read_unaligned() };
        if c == 0 {
            break;
        }
        v.push(c);
    }
    Some(v)
}

/// The completion routine the bridge hands providers.
unsafe extern "system" fn bridge_completion(ctx: *mut c_void, status: HRESULT) {
    guard((), || {
        let id = ctx as usize;
        let (forward, shim_addr, n, what, outcome) = {
            let mut pends = PENDS.lock();
            let Some(p) = pends.get_mut(&id) else {
                // A finished call's context: the provider's bug, not
                // forwarded. A context the bridge never issued (COMP-5)
                // is put down to the open call it was cut from, if it is
                // one cut to 32 bits; any other is ignored (it names no
                // instance).
                let spent = RETIRED.lock().by_ctx.get(&id).copied();
                let cut = pends
                    .iter()
                    .find(|(k, _)| **k != id && **k as u32 as usize == id)
                    .map(|(_, p)| (p.shim, p.n, p.cb, p.call));
                drop(pends);
                if let (None, Some((shim, n, cb, call))) = (spent, cut) {
                    provider_violation_at(
                        shim,
                        id::COMP_5,
                        n,
                        cb,
                        format!("completion routine called with 0x{status:08X} and a context the bridge never issued (call {call}'s, cut to 32 bits); not passed on to the platform"),
                    );
                    return;
                }
                if let Some(x) = spent {
                    let (rule, what) = if x.sync {
                        (id::COMP_3, "for a call that had returned synchronously")
                    } else {
                        (id::COMP_4, "a second time for the same call")
                    };
                    provider_violation_at(
                        x.shim,
                        rule,
                        x.n,
                        x.cb,
                        format!("completion routine called with 0x{status:08X} {what} (call {}); not passed on to the platform", x.call),
                    );
                }
                return;
            };
            if p.done {
                // Twice before the callback returned: not forwarded again.
                let (shim, n, cb) = (p.shim, p.n, p.cb);
                drop(pends);
                provider_violation_at(
                    shim,
                    id::COMP_4,
                    n,
                    cb,
                    "completion routine called twice before the callback returned; the second is not passed on".into(),
                );
                return;
            }
            p.done = true;
            let shim = SHIM_ADDRS.lock().get(&p.shim).cloned();
            let terminated = shim
                .as_ref()
                .is_some_and(|s| s.terminated.load(Ordering::Acquire));
            let clobbered = p.tid.is_some_and(|(ptr, t)| {
                // SAFETY: the platform keeps a pended call's arguments valid
                // until it completes (COMP-8); this reads them one last time.
                let now = unsafe { tid_of(ptr as *const CPNATFWT_TRANSPORT_ID) };
                now != Some(t)
            });
            if p.in_callback {
                p.early = Some(status);
            }
            let what = What::Complete {
                cb: p.cb,
                call: p.call,
                status,
                early: p.in_callback,
                ignored: terminated,
                args_clobbered: clobbered,
            };
            let outcome = (!p.in_callback).then_some(What::Outcome {
                cb: p.cb,
                call: p.call,
                ok: status == S_OK,
            });
            let forward = (p.real_routine, p.real_ctx);
            let (shim_addr, n) = (p.shim, p.n);
            if !p.in_callback {
                if let Some(p) = pends.remove(&id) {
                    RETIRED.lock().add(id, &p);
                }
            }
            (forward, shim_addr, n, what, outcome)
        };
        if let Some(s) = SHIM_ADDRS.lock().get(&shim_addr).cloned() {
            s.inner.record(n, what);
            if let Some(o) = outcome {
                s.inner.record(n, o);
            }
        }
        if let (Some(f), real_ctx) = forward {
            // SAFETY: the platform's routine with the platform's context.
            unsafe { f(real_ctx as *mut c_void, status) };
        }
    })
}

/// The provider completion routine the bridge hands the platform.
unsafe extern "system" fn bridge_provider_completion(ctx: *mut c_void, status: HRESULT) {
    guard((), || {
        let Some(p) = IND_PENDS.lock().remove(&(ctx as usize)) else {
            return;
        };
        let shim = SHIM_ADDRS.lock().get(&p.shim).cloned();
        if let Some(s) = shim {
            s.inner.record(p.n, What::ProviderCompletion { status });
        }
        if let Some(f) = p.routine {
            // SAFETY: the provider's routine with its own context.
            unsafe { f(p.ctx as *mut c_void, status) };
        }
    })
}

// ---------------------------------------------------------------------------
// The bridge as a platform for sim-cp's providers

impl Inner {
    /// Records a provider violation (and a note in the trace, where it happened).
    fn provider_violation(&self, rule: RuleId, n: u32, cb: Callback, message: String) {
        let (step, at) = {
            let mut r = self.rec.lock();
            r.push(
                n,
                What::Note {
                    text: format!("{rule}: {message}"),
                },
            );
            (r.step, Nanos::from_std(r.start.elapsed()))
        };
        self.provider_violations.lock().push(Violation {
            rule,
            host: "local".into(),
            instance: (n > 0).then(|| format!("local#{n}")),
            callback: Some(cb.name().to_string()),
            step,
            at,
            message,
        });
    }
}

impl Platform for NativePlatform {
    fn describe(&self) -> String {
        format!("the native platform in {}", self.inner.path.display())
    }

    unsafe fn create_provider_instance(
        &self,
        table: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
        user: *mut c_void,
        out: *mut CPNATFWT_PROVIDER_INSTANCE,
    ) -> HRESULT {
        let route = self.inner.route.lock().clone();
        if let (Some(w), Some(cx)) = (route, Cx::current()) {
            // A host the stand-in lacks keeps the previous routing; the
            // stand-in's own checks then see the mismatch.
            let _ = w.use_host(&cx.host_name());
        }
        // SAFETY: the same contract.
        unsafe { NativePlatform::create_provider_instance(self, table, user, out) }
    }

    unsafe fn register_provider_instance(
        &self,
        handle: CPNATFWT_PROVIDER_INSTANCE,
        name: *mut WCHAR,
        luid: *mut IF_LUID,
        flags: u32,
        sddl: *mut WCHAR,
    ) -> HRESULT {
        // SAFETY: the same contract.
        unsafe { NativePlatform::register_provider_instance(self, handle, name, luid, flags, sddl) }
    }

    unsafe fn deregister_provider_instance(&self, handle: CPNATFWT_PROVIDER_INSTANCE) -> HRESULT {
        // SAFETY: the same contract.
        unsafe { NativePlatform::deregister_provider_instance(self, handle) }
    }

    unsafe fn destroy_provider_instance(&self, handle: CPNATFWT_PROVIDER_INSTANCE) {
        // SAFETY: the same contract.
        unsafe { NativePlatform::destroy_provider_instance(self, handle) }
    }

    unsafe fn indicate_received_buffers(
        &self,
        handle: CPNATFWT_PROVIDER_INSTANCE,
        local: *mut CPNATFWT_TRANSPORT_ID,
        remote: *mut CPNATFWT_TRANSPORT_ID,
        chain: *mut CPNATFWT_BUFFER,
        ctx: *mut c_void,
        routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
    ) -> HRESULT {
        // SAFETY: the same contract.
        unsafe {
            NativePlatform::indicate_received_buffers(
                self, handle, local, remote, chain, ctx, routine,
            )
        }
    }

    fn provider_crashed(&self, handle: CPNATFWT_PROVIDER_INSTANCE, cb: Callback, message: &str) {
        self.inner.provider_violation(
            id::CRASH_1,
            Self::n_of(handle),
            cb,
            format!(
                "the callback panicked: {message} (a native platform cannot be told; the session goes on)"
            ),
        );
    }

    fn completion_dropped(&self, ctx: *mut c_void) {
        // The provider holds the bridge's context for the call.
        let found = PENDS
            .lock()
            .get(&(ctx as usize))
            .map(|p| (p.n, p.cb, p.call));
        if let Some((n, cb, call)) = found {
            self.inner.provider_violation(
                id::COMP_4,
                n,
                cb,
                format!(
                    "the Pending token of call {call} was dropped without completing: the platform waits for it forever"
                ),
            );
        }
    }

    fn keep_alive(&self, _cx: &Cx, user_context: Arc<dyn Any + Send + Sync>) {
        self.inner.keep.lock().push(user_context);
    }
}
