//! [`NativePlatform`]: the library's five functions, called through the
//! recording bridge, and the bridge as a [`Platform`] for sim-cp's providers.

use crate::bridge::BRIDGE_TABLE;
use crate::calls::{self, IndPend};
use crate::record::{Inner, Rec, Shim, SHIMS, SHIM_ADDRS};
use crate::{standin, NativeError, EXPORTS};
use cpsim_sim::abi::*;
use cpsim_sim::edge::wide_string;
use cpsim_sim::rules::id;
use cpsim_sim::trace::{PlatformFn, Trace, What};
use cpsim_sim::{Callback, Cx, Platform, Violation};
use libloading::Library;
use parking_lot::Mutex;
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_void, OsStr};
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// The longest string read from the caller's memory (UTF-16 units).
const MAX_WIDE: usize = 32_768;

/// The library's five functions.
#[derive(Copy, Clone)]
pub(crate) struct Fns {
    create: PFN_CPNatfwtCreateProviderInstance,
    register: PFN_CPNatfwtRegisterProviderInstance,
    deregister: PFN_CPNatfwtDeregisterProviderInstance,
    destroy: PFN_CPNatfwtDestroyProviderInstance,
    indicate: PFN_CPNatfwtIndicateReceivedBuffers,
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
        Ok(NativePlatform::with_fns(fns, path))
    }

    /// A bridge over the library functions `fns`.
    fn with_fns(fns: Fns, path: PathBuf) -> NativePlatform {
        NativePlatform {
            inner: Arc::new(Inner {
                bridge: crate::record::next_bridge(),
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
        }
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
        let before = unsafe { (wide_string(name, MAX_WIDE), wide_string(sddl, MAX_WIDE)) };
        self.inner.rec.lock().in_call.insert(n, Vec::new());
        // SAFETY: forwarded under this function's contract.
        let hr = unsafe { (self.inner.fns.register)(handle, name, luid, flags, sddl) };
        // SAFETY: the same strings, still the caller's.
        let after = unsafe { (wide_string(name, MAX_WIDE), wide_string(sddl, MAX_WIDE)) };
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
                let id = calls::next_ind_ctx();
                let shim = SHIMS
                    .lock()
                    .get(&handle.as_u64())
                    .map_or(0, |s| Arc::as_ptr(s) as usize);
                calls::IND_PENDS.lock().insert(
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
                    Some(calls::bridge_provider_completion as unsafe extern "system" fn(_, _)),
                )
            }
            None => (ctx, None),
        };
        // SAFETY: forwarded under this function's contract.
        let hr = unsafe { (self.inner.fns.indicate)(handle, local, remote, chain, ctx2, routine2) };
        if routine.is_some() && hr != E_PENDING_IO {
            // Not pended: the platform will not call the routine.
            calls::IND_PENDS.lock().remove(&(ctx2 as usize));
        }
        self.function(n, PlatformFn::CPNatfwtIndicateReceivedBuffers, hr);
        hr
    }
}

#[cfg(test)]
impl NativePlatform {
    /// A bridge whose library refuses every call: for unit tests of the
    /// bridge's own bookkeeping.
    pub(crate) fn refusing() -> NativePlatform {
        unsafe extern "system" fn create(
            _: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
            _: *mut c_void,
            _: *mut CPNATFWT_PROVIDER_INSTANCE,
        ) -> HRESULT {
            E_FAIL
        }
        unsafe extern "system" fn register(
            _: CPNATFWT_PROVIDER_INSTANCE,
            _: *mut WCHAR,
            _: *mut IF_LUID,
            _: u32,
            _: *mut WCHAR,
        ) -> HRESULT {
            E_FAIL
        }
        unsafe extern "system" fn deregister(_: CPNATFWT_PROVIDER_INSTANCE) -> HRESULT {
            E_FAIL
        }
        unsafe extern "system" fn destroy(_: CPNATFWT_PROVIDER_INSTANCE) {}
        unsafe extern "system" fn indicate(
            _: CPNATFWT_PROVIDER_INSTANCE,
            _: *mut CPNATFWT_TRANSPORT_ID,
            _: *mut CPNATFWT_TRANSPORT_ID,
            _: *mut CPNATFWT_BUFFER,
            _: *mut c_void,
            _: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
        ) -> HRESULT {
            E_FAIL
        }
        let fns = Fns {
            create,
            register,
            deregister,
            destroy,
            indicate,
        };
        NativePlatform::with_fns(fns, PathBuf::from("refusing"))
    }

    /// The bridge's shared state.
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
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
        let found = calls::CALLS.lock().dropped(calls::serial_of(ctx as usize));
        if let Some((rule, calls::Who { n, cb, call, .. })) = found {
            self.inner.provider_violation(
                rule,
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
