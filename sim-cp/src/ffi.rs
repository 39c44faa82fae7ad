//! The ABI edge: the five `CPNatfwt*` functions and the platform's
//! completion routine as `extern "system"` functions with the exact C
//! signatures of docs/CONTRACT.md §1.3.
//!
//! A raw-ABI provider calls these. C provider modules reach them through the
//! router of the `cpsim-cmod` crate, and the `cpsim-capi` crate exports them
//! unmangled as a C library. Routing: a handle or completion context names
//! its world; Create, which has neither, goes to the simulated host whose
//! provider code is running on this thread (`Cx::current`), or, from a
//! provider's own thread, to the only live world's first host.
#![allow(non_snake_case)]

use crate::abi::*;
use crate::edge::wide_string as read_wide;
use crate::engine::{lifecycle as lc, Shared};
use crate::handle::{self, Kind};
use crate::runtime::Cx;
use crate::trace::PlatformFn;
use std::ffi::c_void;
use std::sync::Arc;

/// Longest string read from provider memory (WCHARs).
const MAX_WIDE: usize = 65_536;

fn current() -> Option<Cx> {
    Cx::current()
}

/// The world and host a handle-less call belongs to.
fn route_by_handle(handle: u64) -> Option<(Arc<Shared>, u8)> {
    let world = handle::decode(Kind::Instance, handle).map(|(w, _)| w);
    // The usual case, without the registry: the caller runs in that world
    // (one `Arc` clone, of the world).
    let here = crate::runtime::with_current_ref(|cx| {
        cx.filter(|c| world.is_none_or(|w| c.shared.id() == w))
            .map(|c| (c.shared.clone(), c.host))
    });
    if here.is_some() {
        return here;
    }
    if let Some(shared) = world.and_then(handle::lookup) {
        let host = crate::runtime::with_current_ref(|cx| {
            cx.filter(|c| Arc::ptr_eq(&c.shared, &shared))
                .map(|c| c.host)
        })
        .unwrap_or(0);
        return Some((shared, host));
    }
    current().map(|c| (c.shared.clone(), c.host))
}

/// `CPNatfwtCreateProviderInstance`.
///
/// # Safety
/// The pointers follow the C API: `dispatchTable` points at a table of the
/// size it declares; `providerInstance` is writable. NULL is reported, not UB.
pub unsafe extern "system" fn CPNatfwtCreateProviderInstance(
    dispatch_table: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
    user_context: *mut c_void,
    provider_instance: *mut CPNATFWT_PROVIDER_INSTANCE,
) -> HRESULT {
    let Some(cx) = current().or_else(crate::engine::only_world_first_host) else {
        eprintln!("cpsim: CPNatfwtCreateProviderInstance called from a thread with no simulated host (use Cx::spawn or call it from start/callbacks)");
        return E_FAIL;
    };
    let mut w = cx.shared.lock();
    // SAFETY: forwarded under the same contract.
    unsafe {
        w.create(
            cx.host,
            dispatch_table,
            user_context as usize,
            provider_instance,
        )
    }
}

/// `CPNatfwtRegisterProviderInstance`.
///
/// # Safety
/// String pointers are NULL or NUL-terminated; `interfaceLuid` is NULL or writable.
pub unsafe extern "system" fn CPNatfwtRegisterProviderInstance(
    provider_instance: CPNATFWT_PROVIDER_INSTANCE,
    interface_friendly_name: *mut WCHAR,
    interface_luid: *mut IF_LUID,
    flags: u32,
    sddl: *mut WCHAR,
) -> HRESULT {
    let Some((shared, host)) = route_by_handle(provider_instance.as_u64()) else {
        return E_HANDLE;
    };
    let inst = match shared.lock().resolve(
        provider_instance.as_u64(),
        host,
        PlatformFn::CPNatfwtRegisterProviderInstance,
    ) {
        Ok(i) => i,
        Err(hr) => return hr,
    };
    // SAFETY: per this function's contract.
    let (name, sddl_read) = unsafe {
        (
            read_wide(interface_friendly_name, MAX_WIDE),
            read_wide(sddl, MAX_WIDE),
        )
    };
    let luid_in = if interface_luid.is_null() {
        None
    } else {
        // SAFETY: non-NULL in/out parameter.
        Some(unsafe { interface_luid.read_unaligned().Value })
    };
    let before = (name.clone(), sddl_read.clone());
    let args = lc::RegisterArgs {
        name,
        luid_in,
        flags,
        sddl: sddl_read.map(|s| String::from_utf16_lossy(&s)),
    };
    let (hr, luid) = lc::register_now(&shared, inst, args);
    if let Some(read) = &before.0 {
        // The name as the platform leaves it: as read (REG-9), unless a
        // platform fault bends it; any unit that differs is written back.
        let after = shared.lock().callers_name_after(read);
        for (i, (&new, &old)) in after.iter().zip(read).enumerate() {
            if new != old {
                // SAFETY: `i` is within the caller's string as read above
                // (non-NULL, before its NUL); one unit written in place.
                unsafe { interface_friendly_name.add(i).write_unaligned(new) };
            }
        }
    }
    // REG-9, seen at the ABI edge as a provider would see it (the native
    // bridge does the same): the caller's strings are as they were.
    // SAFETY: the same strings as above, still the caller's.
    let after = unsafe {
        (
            read_wide(interface_friendly_name, MAX_WIDE),
            read_wide(sddl, MAX_WIDE),
        )
    };
    if after != before {
        shared
            .lock()
            .args_written(inst, PlatformFn::CPNatfwtRegisterProviderInstance);
    }
    if hr == S_OK && !interface_luid.is_null() {
        // SAFETY: non-NULL out parameter (REG-4).
        unsafe { interface_luid.write_unaligned(IF_LUID { Value: luid }) };
    }
    hr
}

/// `CPNatfwtDeregisterProviderInstance`.
///
/// # Safety
/// None beyond the C API: any handle value is accepted and checked.
pub unsafe extern "system" fn CPNatfwtDeregisterProviderInstance(
    provider_instance: CPNATFWT_PROVIDER_INSTANCE,
) -> HRESULT {
    let Some((shared, host)) = route_by_handle(provider_instance.as_u64()) else {
        return E_HANDLE;
    };
    let inst = match shared.lock().resolve(
        provider_instance.as_u64(),
        host,
        PlatformFn::CPNatfwtDeregisterProviderInstance,
    ) {
        Ok(i) => i,
        Err(hr) => return hr,
    };
    lc::deregister_now(&shared, inst)
}

/// `CPNatfwtDestroyProviderInstance`.
///
/// # Safety
/// None beyond the C API: any handle value is accepted and checked.
pub unsafe extern "system" fn CPNatfwtDestroyProviderInstance(
    provider_instance: CPNATFWT_PROVIDER_INSTANCE,
) {
    let Some((shared, host)) = route_by_handle(provider_instance.as_u64()) else {
        return;
    };
    let inst = match shared.lock().resolve(
        provider_instance.as_u64(),
        host,
        PlatformFn::CPNatfwtDestroyProviderInstance,
    ) {
        Ok(i) => i,
        Err(_) => return,
    };
    lc::destroy_now(&shared, inst);
}

/// `CPNatfwtIndicateReceivedBuffers`.
///
/// # Safety
/// Transport IDs and the chain follow the C API; every pointer is checked
/// for NULL, for being one of the platform's retired arguments, and the
/// chain for cycles, before it is read.
pub unsafe extern "system" fn CPNatfwtIndicateReceivedBuffers(
    provider_instance: CPNATFWT_PROVIDER_INSTANCE,
    local_transport_id: *mut CPNATFWT_TRANSPORT_ID,
    remote_transport_id: *mut CPNATFWT_TRANSPORT_ID,
    buffer_chain: *mut CPNATFWT_BUFFER,
    completion_context: *mut c_void,
    completion_routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
) -> HRESULT {
    let handle = provider_instance.as_u64();
    let world = handle::decode(Kind::Instance, handle).map(|(w, _)| w);
    // The usual case: the caller runs in the instance's world, whose
    // context is borrowed (no `Arc` clone; `indicate` runs no provider code).
    let here = crate::runtime::with_current_ref(|cx| {
        let c = cx.filter(|c| world.is_some_and(|w| c.shared.id() == w))?;
        // SAFETY: forwarded under this function's contract.
        Some(unsafe {
            indicate_in(
                &c.shared,
                c.host,
                handle,
                local_transport_id,
                remote_transport_id,
                buffer_chain,
                completion_context,
                completion_routine,
            )
        })
    });
    if let Some(hr) = here {
        return hr;
    }
    let Some((shared, host)) = route_by_handle(handle) else {
        return E_HANDLE;
    };
    // SAFETY: forwarded under this function's contract.
    unsafe {
        indicate_in(
            &shared,
            host,
            handle,
            local_transport_id,
            remote_transport_id,
            buffer_chain,
            completion_context,
            completion_routine,
        )
    }
}

/// `CPNatfwtIndicateReceivedBuffers` in the world it was routed to.
///
/// # Safety
/// As `CPNatfwtIndicateReceivedBuffers`.
#[allow(clippy::too_many_arguments)]
unsafe fn indicate_in(
    shared: &Shared,
    host: u8,
    handle: u64,
    local_transport_id: *mut CPNATFWT_TRANSPORT_ID,
    remote_transport_id: *mut CPNATFWT_TRANSPORT_ID,
    buffer_chain: *mut CPNATFWT_BUFFER,
    completion_context: *mut c_void,
    completion_routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
) -> HRESULT {
    let mut w = shared.lock();
    let inst = match w.resolve(handle, host, PlatformFn::CPNatfwtIndicateReceivedBuffers) {
        Ok(i) => i,
        Err(hr) => return hr,
    };
    w.sync_clock();
    // SAFETY: forwarded under this function's contract.
    let hr = unsafe {
        w.indicate(
            inst,
            local_transport_id,
            remote_transport_id,
            buffer_chain,
            completion_context,
            completion_routine,
        )
    };
    drop(w);
    shared.wake();
    hr
}

/// The platform's completion routine, handed to every async-capable callback.
///
/// # Safety
/// Safe for any arguments: the context is decoded and checked, never dereferenced.
pub unsafe extern "system" fn platform_completion_routine(
    completion_context: *mut c_void,
    status: HRESULT,
) {
    let ctx = completion_context as usize as u64;
    let decoded = handle::decode(Kind::Completion, ctx);
    // The usual case, without the registry: the caller runs in that world.
    let cx = current();
    let own = decoded.and_then(|(w, _)| cx.as_ref().filter(|c| c.shared.id() == w).cloned());
    let shared = match own {
        Some(c) => Some(c.shared),
        None => decoded.and_then(|(w, _)| handle::lookup(w)),
    };
    let (shared, host, serial) = match (shared, decoded) {
        (Some(s), Some((_, serial))) => {
            let host = cx
                .filter(|c| Arc::ptr_eq(&c.shared, &s))
                .map(|c| c.host)
                .unwrap_or(0);
            (s, host, serial)
        }
        _ => match current().or_else(crate::engine::only_world_first_host) {
            // An altered context: report it in the world of the calling code.
            Some(cx) => (cx.shared.clone(), cx.host, 0),
            None => {
                eprintln!("cpsim: completion routine called with an unknown completionContext 0x{ctx:x} from a thread with no simulated host (COMP-5)");
                return;
            }
        },
    };
    let mut w = shared.lock();
    w.sync_clock();
    w.completion_routine(serial, status, host);
    drop(w);
    shared.wake();
}
