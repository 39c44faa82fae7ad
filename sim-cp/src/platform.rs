//! Which Connectivity Platform a provider's calls go to.
//!
//! Provider code that should run on more than the simulator does not name
//! the five `CPNatfwt*` functions directly: it calls them through a
//! [`Platform`], which it gets from [`Cx::platform`]. The safe API does
//! exactly that, so a [`SessionHandler`](crate::safe::SessionHandler) runs
//! unchanged on any platform.
//!
//! - [`SIMULATED`]: the simulator's own functions ([`crate::ffi`]). Every
//!   world made with [`Sim::new`](crate::Sim::new) hands it to its providers.
//! - Any other implementation, given to
//!   [`Sim::with_platform`](crate::Sim::with_platform): the world then runs
//!   in real time and only supplies the provider's facilities (tasks,
//!   timers, the simulated network between its hosts and the
//!   infrastructure node); every platform call goes to that
//!   implementation. The native backend (crate `cpsim-native`) implements
//!   it for a real `iphlpapi.dll` (or the simulator's stand-in DLL), and
//!   records and checks what that platform does.
//!
//! The methods are the C functions with the same arguments, hence `unsafe`:
//! this trait *is* the FFI edge, seen from the provider's side.

use crate::abi::*;
use crate::config::Callback;
use crate::runtime::Cx;
use std::any::Any;
use std::ffi::c_void;
use std::sync::Arc;

/// A Connectivity Platform: the five exported functions, plus the few
/// things a safe provider reports that the functions cannot see.
pub trait Platform: Send + Sync + 'static {
    /// A short description for messages ("the simulator", a library path).
    fn describe(&self) -> String;

    /// `CPNatfwtCreateProviderInstance`.
    ///
    /// # Safety
    /// As the C function: `table` points at a dispatch table of the size it
    /// declares (or is NULL), `out` is writable (or NULL), and `user` stays
    /// valid for as long as the platform may pass it to a callback.
    unsafe fn create_provider_instance(
        &self,
        table: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
        user: *mut c_void,
        out: *mut CPNATFWT_PROVIDER_INSTANCE,
    ) -> HRESULT;

    /// `CPNatfwtRegisterProviderInstance`.
    ///
    /// # Safety
    /// As the C function: strings are NULL or NUL-terminated, `luid` is NULL
    /// or writable.
    unsafe fn register_provider_instance(
        &self,
        handle: CPNATFWT_PROVIDER_INSTANCE,
        name: *mut WCHAR,
        luid: *mut IF_LUID,
        flags: u32,
        sddl: *mut WCHAR,
    ) -> HRESULT;

    /// `CPNatfwtDeregisterProviderInstance`.
    ///
    /// # Safety
    /// As the C function (any handle value may be passed; the platform checks it).
    unsafe fn deregister_provider_instance(&self, handle: CPNATFWT_PROVIDER_INSTANCE) -> HRESULT;

    /// `CPNatfwtDestroyProviderInstance`.
    ///
    /// # Safety
    /// As the C function.
    unsafe fn destroy_provider_instance(&self, handle: CPNATFWT_PROVIDER_INSTANCE);

    /// `CPNatfwtIndicateReceivedBuffers`.
    ///
    /// # Safety
    /// As the C function: the IDs and the chain are valid until the call
    /// returns (no routine) or until the routine is called.
    unsafe fn indicate_received_buffers(
        &self,
        handle: CPNATFWT_PROVIDER_INSTANCE,
        local: *mut CPNATFWT_TRANSPORT_ID,
        remote: *mut CPNATFWT_TRANSPORT_ID,
        chain: *mut CPNATFWT_BUFFER,
        ctx: *mut c_void,
        routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
    ) -> HRESULT;

    /// A safe-API callback of `handle` panicked (CRASH-1). The simulator
    /// also ends the session with PROVIDER_OTHER_FAILURE; a native platform
    /// can only record it.
    fn provider_crashed(&self, handle: CPNATFWT_PROVIDER_INSTANCE, cb: Callback, message: &str);

    /// A safe-API `Pending` token for the call whose completion context is
    /// `ctx` was dropped without completing (COMP-4).
    fn completion_dropped(&self, ctx: *mut c_void);

    /// Keeps a safe instance's user context alive for as long as this
    /// platform may pass it to a callback (`cx` is the creating host).
    fn keep_alive(&self, cx: &Cx, user_context: Arc<dyn Any + Send + Sync>);
}

/// The simulator's platform.
pub struct Simulated;

/// The simulator's platform, as every simulated world's providers see it.
pub static SIMULATED: Simulated = Simulated;

impl Simulated {
    /// Whether `p` is the simulator's platform.
    pub fn is(p: &dyn Platform) -> bool {
        std::ptr::addr_eq(p as *const dyn Platform, &SIMULATED as *const Simulated)
    }
}

impl Platform for Simulated {
    fn describe(&self) -> String {
        "the simulator".into()
    }

    unsafe fn create_provider_instance(
        &self,
        table: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
        user: *mut c_void,
        out: *mut CPNATFWT_PROVIDER_INSTANCE,
    ) -> HRESULT {
        // SAFETY: forwarded under this method's contract.
        unsafe { crate::ffi::CPNatfwtCreateProviderInstance(table, user, out) }
    }

    unsafe fn register_provider_instance(
        &self,
        handle: CPNATFWT_PROVIDER_INSTANCE,
        name: *mut WCHAR,
        luid: *mut IF_LUID,
        flags: u32,
        sddl: *mut WCHAR,
    ) -> HRESULT {
        // SAFETY: forwarded under this method's contract.
        unsafe { crate::ffi::CPNatfwtRegisterProviderInstance(handle, name, luid, flags, sddl) }
    }

    unsafe fn deregister_provider_instance(&self, handle: CPNATFWT_PROVIDER_INSTANCE) -> HRESULT {
        // SAFETY: forwarded under this method's contract.
        unsafe { crate::ffi::CPNatfwtDeregisterProviderInstance(handle) }
    }

    unsafe fn destroy_provider_instance(&self, handle: CPNATFWT_PROVIDER_INSTANCE) {
        // SAFETY: forwarded under this method's contract.
        unsafe { crate::ffi::CPNatfwtDestroyProviderInstance(handle) }
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
        // SAFETY: forwarded under this method's contract.
        unsafe {
            crate::ffi::CPNatfwtIndicateReceivedBuffers(handle, local, remote, chain, ctx, routine)
        }
    }

    fn provider_crashed(&self, handle: CPNATFWT_PROVIDER_INSTANCE, cb: Callback, message: &str) {
        crate::engine::report_crash(handle.as_u64(), cb, message);
    }

    fn completion_dropped(&self, ctx: *mut c_void) {
        crate::engine::report_dropped_completion(ctx as usize);
    }

    fn keep_alive(&self, cx: &Cx, user_context: Arc<dyn Any + Send + Sync>) {
        cx.shared.keep_alive(user_context);
    }
}
