//! The Rust side of `cpsim_module.h`: the clock, randomness, timers and
//! tasks, and datagrams on the simulated network, for C modules. The
//! router (`c/router.c`) passes each call with the load address of the
//! module copy that made it; the call acts on that copy's host.

use crate::loader::{copy_at, copy_based, host_of, Routed};
use cpsim_sim::abi::{E_FAIL, E_INVALIDARG, E_POINTER, HRESULT, S_OK};
use cpsim_sim::net::NetAddr;
use cpsim_sim::{Cx, Nanos};
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::Ordering;

/// `CPSIM_ADDRESS`.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct CpsimAddress {
    pub node: u16,
    pub port: u16,
}

/// `CPSIM_TASK_ROUTINE`.
pub type TaskRoutine = unsafe extern "C" fn(*mut c_void);
/// `CPSIM_RECEIVE_ROUTINE`.
pub type ReceiveRoutine = unsafe extern "C" fn(*mut c_void, *const CpsimAddress, *const u8, u32);

/// A context pointer that crosses to the simulator's thread (the module
/// promises it stays valid until its routine runs or its host stops).
#[derive(Copy, Clone)]
struct Ptr(usize);

/// Runs `f` for the host of the calling copy; `or` without one (a call
/// from outside any module run), or if `f` panics.
fn with_host<R>(caller: *mut c_void, or: R, f: impl FnOnce(&Cx) -> R) -> R {
    let Some(cx) = host_of(caller) else {
        return or;
    };
    cpsim_sim::edge::guard(or, || cx.enter(|| f(&cx)))
}

/// The copy a routine belongs to (by its code address), else the caller's:
/// its `alive` flag says whether the routine may still be called.
fn owner(routine: *const c_void, caller: *mut c_void) -> Option<Routed> {
    copy_at(routine).or_else(|| copy_based(caller))
}

pub(crate) unsafe extern "C" fn now(caller: *mut c_void) -> u64 {
    with_host(caller, 0, |cx| cx.now().0)
}

pub(crate) unsafe extern "C" fn random(caller: *mut c_void) -> u64 {
    with_host(caller, 0, |cx| cx.random())
}

/// A task of a module copy: called only while the copy is alive.
fn task(routine: TaskRoutine, ctx: Ptr, owner: Option<Routed>) -> impl FnOnce(&Cx) + Send {
    let alive = owner.map(|o| o.alive);
    move |_cx: &Cx| {
        if alive.as_ref().is_some_and(|a| !a.load(Ordering::Acquire)) {
            return;
        }
        // SAFETY: the module's routine with the context it gave, on the
        // simulator's thread, while its copy is loaded and not stopped.
        unsafe { routine(ctx.0 as *mut c_void) }
    }
}

pub(crate) unsafe extern "C" fn after(
    caller: *mut c_void,
    delay_ns: u64,
    routine: Option<TaskRoutine>,
    ctx: *mut c_void,
) -> HRESULT {
    let Some(routine) = routine else {
        return E_POINTER;
    };
    let owner = owner(routine as *const c_void, caller);
    let ctx = Ptr(ctx as usize);
    with_host(caller, E_FAIL, |cx| {
        cx.after(Nanos(delay_ns), task(routine, ctx, owner));
        S_OK
    })
}

pub(crate) unsafe extern "C" fn spawn(
    caller: *mut c_void,
    routine: Option<TaskRoutine>,
    ctx: *mut c_void,
) -> HRESULT {
    let Some(routine) = routine else {
        return E_POINTER;
    };
    let owner = owner(routine as *const c_void, caller);
    let ctx = Ptr(ctx as usize);
    with_host(caller, E_FAIL, |cx| {
        cx.spawn(task(routine, ctx, owner));
        S_OK
    })
}

pub(crate) unsafe extern "C" fn bind(
    caller: *mut c_void,
    port: u16,
    routine: Option<ReceiveRoutine>,
    ctx: *mut c_void,
) -> HRESULT {
    let Some(routine) = routine else {
        return E_POINTER;
    };
    let alive = owner(routine as *const c_void, caller).map(|o| o.alive);
    let ctx = Ptr(ctx as usize);
    with_host(caller, E_FAIL, |cx| {
        let bound = cx.bind(port, move |_cx, from: NetAddr, data: &[u8]| {
            if alive.as_ref().is_some_and(|a| !a.load(Ordering::Acquire)) {
                return;
            }
            let from = CpsimAddress {
                node: from.node.into(),
                port: from.port,
            };
            // SAFETY: the module's routine with its context, the sender's
            // address and the datagram, all valid during the call.
            unsafe {
                routine(
                    ctx.0 as *mut c_void,
                    &from,
                    data.as_ptr(),
                    data.len() as u32,
                )
            }
        });
        if bound.is_ok() {
            S_OK
        } else {
            E_FAIL
        }
    })
}

pub(crate) unsafe extern "C" fn unbind(caller: *mut c_void, port: u16) {
    with_host(caller, (), |cx| cx.unbind(port))
}

pub(crate) unsafe extern "C" fn address_of(
    caller: *mut c_void,
    host: *const c_char,
    port: u16,
    out: *mut CpsimAddress,
) -> HRESULT {
    if out.is_null() {
        return E_POINTER;
    }
    let name = if host.is_null() {
        None
    } else {
        // SAFETY: the module passes a NUL-terminated string.
        Some(
            unsafe { CStr::from_ptr(host) }
                .to_string_lossy()
                .into_owned(),
        )
    };
    with_host(caller, E_FAIL, |cx| {
        let addr = match &name {
            None => Some(NetAddr {
                node: cx.host_index(),
                port,
            }),
            Some(n) => cx.addr_of(n, port),
        };
        match addr {
            Some(a) => {
                // SAFETY: checked non-NULL; the module's writable out value.
                unsafe {
                    *out = CpsimAddress {
                        node: a.node.into(),
                        port: a.port,
                    }
                };
                S_OK
            }
            None => E_INVALIDARG,
        }
    })
}

pub(crate) unsafe extern "C" fn send_to(
    caller: *mut c_void,
    from_port: u16,
    to: *const CpsimAddress,
    data: *const c_void,
    size: u32,
) -> HRESULT {
    if to.is_null() || (data.is_null() && size > 0) {
        return E_POINTER;
    }
    // SAFETY: checked non-NULL; the module's address.
    let to = unsafe { *to };
    let Ok(node) = u8::try_from(to.node) else {
        return E_INVALIDARG;
    };
    let bytes: &[u8] = if size == 0 {
        &[]
    } else {
        // SAFETY: the module says `size` bytes live at `data` during the call.
        unsafe { std::slice::from_raw_parts(data as *const u8, size as usize) }
    };
    with_host(caller, E_FAIL, |cx| {
        // The hosts with a platform, then the infrastructure node.
        if usize::from(node) > cx.hosts().len() {
            return E_INVALIDARG;
        }
        cx.send_to(
            from_port,
            NetAddr {
                node,
                port: to.port,
            },
            bytes,
        );
        S_OK
    })
}
