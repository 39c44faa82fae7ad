//! The raw-ABI layer for broken providers: the mistakes the safe API will
//! not let anyone write, injected where they happen in real code, at the
//! `extern "system"` edge.
//!
//! A mutant instance is created with [`TABLE`], a dispatch table of
//! trampolines. Each trampoline turns the raw arguments into the safe types
//! ([`Completion::from_raw`], [`Buffers::new`], [`InstanceRef::from_raw`])
//! and calls the reference provider's [`SessionHandler`], so the provider
//! behaves exactly like the reference except for the one bug its
//! [`Bug`] names. The bug is applied to what goes back to the platform: the
//! returned HRESULT, the completion routine the handler will call, or the
//! pointers passed to `CPNatfwtIndicateReceivedBuffers`.
//!
//! Like the safe API, the layer calls the platform of the host that created
//! the instance ([`Cx::platform`]), so the mutants run on a native platform
//! too, where callbacks arrive on the platform's own threads.
//!
//! Mutant user contexts are leaked on purpose: the platform may in principle
//! call an instance until it is destroyed, and a test mutant is not worth a
//! lifetime protocol.

use crate::reference::Bug;
use cpsim_sim::abi::*;
use cpsim_sim::runtime::WeakCx;
use cpsim_sim::safe::{Buffers, Completion, InstanceRef, RegisterOptions, SessionHandler};
use cpsim_sim::{Cx, Platform, Tid, SIMULATED};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a mutant instance's user context points at.
struct MutantCtx {
    handler: Arc<dyn SessionHandler>,
    bug: Bug,
    /// Set once the provider's one-shot bug (COMP-6) has fired.
    fired: Arc<AtomicBool>,
    platform: &'static dyn Platform,
    /// The creating host, for callbacks from the platform's own threads.
    home: Option<WeakCx>,
}

/// The mutant dispatch table.
static TABLE: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE =
    CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
        size: DISPATCH_TABLE_SIZE,
        establishSessionIndication: Some(establish),
        terminateSessionIndication: Some(terminate),
        transitionActive: Some(transition_active),
        transitionDormant: Some(transition_dormant),
        addTransportId: Some(add_transport_id),
        removeTransportId: Some(remove_transport_id),
        reachTransportId: Some(reach_transport_id),
        sendBuffers: Some(send_buffers),
    };

/// An instance created through the mutant table (the raw twin of
/// `cpsim_sim::safe::Instance`).
pub struct RawInstance {
    handle: CPNATFWT_PROVIDER_INSTANCE,
    platform: &'static dyn Platform,
}

impl RawInstance {
    /// Creates an instance whose callbacks go to `handler` through the
    /// mutant trampolines. Must be called from provider code (start, a task,
    /// a callback), where the platform knows the current host.
    pub fn create(
        handler: Arc<dyn SessionHandler>,
        bug: Bug,
        fired: Arc<AtomicBool>,
    ) -> Result<RawInstance, HRESULT> {
        let cx = Cx::current();
        let platform = cx
            .as_ref()
            .map_or(&SIMULATED as &dyn Platform, Cx::platform);
        let ctx = Box::into_raw(Box::new(MutantCtx {
            handler,
            bug,
            fired,
            platform,
            home: cx.as_ref().map(Cx::downgrade),
        })) as *mut c_void;
        let mut h = CPNATFWT_PROVIDER_INSTANCE::NULL;
        if bug == Bug::Life9 {
            // The bug: a table declared with the size of an older, shorter
            // layout (one callback fewer).
            let mut stale = TABLE;
            stale.size = DISPATCH_TABLE_SIZE - std::mem::size_of::<usize>() as u32;
            // SAFETY: a valid table (the platform reads only what the size
            // field declares) and a writable out pointer.
            let hr = unsafe { platform.create_provider_instance(&stale, ctx, &mut h) };
            if hr == S_OK {
                return Ok(RawInstance {
                    handle: h,
                    platform,
                });
            }
        }
        // SAFETY: a full static table and a writable out pointer; `ctx` is
        // leaked, so it stays valid for every callback.
        let hr = unsafe { platform.create_provider_instance(&TABLE, ctx, &mut h) };
        if hr == S_OK {
            Ok(RawInstance {
                handle: h,
                platform,
            })
        } else {
            Err(hr)
        }
    }

    /// The shareable handle.
    pub fn as_ref(&self) -> InstanceRef {
        InstanceRef::from_raw_on(self.platform, self.handle)
    }

    /// `CPNatfwtRegisterProviderInstance` with flags 0.
    pub fn register(&self, opts: &RegisterOptions) -> Result<u64, HRESULT> {
        register_raw(self.as_ref(), opts, 0)
    }

    /// `CPNatfwtDeregisterProviderInstance`.
    pub fn deregister(&self) -> Result<(), HRESULT> {
        self.as_ref().deregister()
    }

    /// `CPNatfwtDestroyProviderInstance`, once (consumes the handle).
    pub fn destroy(self) {
        // SAFETY: a handle value; the platform checks it.
        unsafe { self.platform.destroy_provider_instance(self.handle) };
    }
}

/// `CPNatfwtRegisterProviderInstance` with any `flags` (REG-7 needs a non-zero one).
pub fn register_raw(inst: InstanceRef, opts: &RegisterOptions, flags: u32) -> Result<u64, HRESULT> {
    let wide = |s: &Option<String>| -> Option<Vec<u16>> {
        s.as_ref().map(|s| s.encode_utf16().chain([0]).collect())
    };
    let mut name = wide(&opts.friendly_name);
    let mut sddl = wide(&opts.sddl);
    let np = name
        .as_mut()
        .map_or(std::ptr::null_mut(), |v| v.as_mut_ptr());
    let sp = sddl
        .as_mut()
        .map_or(std::ptr::null_mut(), |v| v.as_mut_ptr());
    let mut luid = IF_LUID {
        Value: opts.luid.unwrap_or(0),
    };
    // SAFETY: NUL-terminated strings and a LUID that outlive the call.
    let hr = unsafe {
        inst.platform()
            .register_provider_instance(inst.raw(), np, &mut luid, flags, sp)
    };
    if hr == S_OK {
        Ok(luid.Value)
    } else {
        Err(hr)
    }
}

/// `CPNatfwtDestroyProviderInstance` on a handle value (LIFE-5 calls it a second time).
pub fn destroy_raw(inst: InstanceRef) {
    // SAFETY: a handle value; the platform checks it and reports misuse.
    unsafe { inst.platform().destroy_provider_instance(inst.raw()) };
}

// ---------------------------------------------------------------------------
// Trampolines

/// # Safety
/// `ctx` is a user context made by [`RawInstance::create`] (leaked, so valid forever).
unsafe fn mutant<'a>(ctx: *mut c_void) -> &'a MutantCtx {
    // SAFETY: per the function's contract.
    unsafe { &*(ctx as *const MutantCtx) }
}

/// Runs a callback body; a panic must not unwind into the platform.
fn guarded(f: impl FnOnce() -> HRESULT) -> HRESULT {
    cpsim_sim::edge::guard(E_FAIL, f)
}

/// The host's context for a callback: the simulator sets it; from a
/// native platform's thread, the creating host's.
fn current(m: &MutantCtx) -> Option<Cx> {
    Cx::current().or_else(|| m.home.as_ref()?.upgrade())
}

/// The instance as the handler sees it.
fn iref(m: &MutantCtx, h: CPNATFWT_PROVIDER_INSTANCE) -> InstanceRef {
    InstanceRef::from_raw_on(m.platform, h)
}

/// Deep-copies a platform transport ID.
///
/// # Safety
/// `t` points at a transport ID valid for the duration of the call.
unsafe fn read_tid(t: *const CPNATFWT_TRANSPORT_ID) -> Tid {
    // SAFETY: per the function's contract; the platform's IDs are 4 or 16 bytes.
    unsafe { cpsim_sim::edge::transport_id(t) }.unwrap_or(Tid::v4(0, 0, 0))
}

unsafe extern "system" fn establish(h: CPNATFWT_PROVIDER_INSTANCE, ctx: *mut c_void) {
    // SAFETY: the user context this instance was created with.
    let m = unsafe { mutant(ctx) };
    if let Some(cx) = current(m) {
        guarded(|| {
            m.handler.establish(&cx, &iref(m, h));
            S_OK
        });
    }
}

unsafe extern "system" fn terminate(
    h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    reason: CPNATFWT_SESSION_TERMINATION_REASON,
) {
    // SAFETY: the user context this instance was created with.
    let m = unsafe { mutant(ctx) };
    if let Some(cx) = current(m) {
        guarded(|| {
            m.handler.terminate(&cx, &iref(m, h), reason);
            S_OK
        });
    }
}

unsafe extern "system" fn transition_active(
    h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    cctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: the user context this instance was created with.
    let m = unsafe { mutant(ctx) };
    let Some(cx) = current(m) else { return E_FAIL };
    let interpose = match m.bug {
        Bug::Comp4 | Bug::Comp5 => true,
        Bug::Comp6 => !m.fired.swap(true, Ordering::SeqCst),
        _ => false,
    };
    let done = if interpose {
        INTERPOSED.lock().insert(
            cctx as usize,
            Interposed {
                real: routine,
                bug: m.bug,
            },
        );
        // SAFETY: the platform's context with a routine of the same type
        // that forwards (wrongly, on purpose) to the platform's routine.
        unsafe { Completion::from_raw_on(m.platform, cctx, Some(interposed_routine)) }
    } else {
        // SAFETY: the context and routine the platform passed to this call.
        unsafe { Completion::from_raw_on(m.platform, cctx, routine) }
    };
    guarded(|| {
        let hr = m
            .handler
            .transition_active(&cx, &iref(m, h), done)
            .hresult();
        if m.bug == Bug::Comp3 && hr == E_PENDING_IO {
            // The bug: report success now although the work is pended; the
            // handler will still call the routine when it is done.
            S_OK
        } else {
            hr
        }
    })
}

unsafe extern "system" fn transition_dormant(
    h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    cctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: the user context this instance was created with.
    let m = unsafe { mutant(ctx) };
    let Some(cx) = current(m) else { return E_FAIL };
    if m.bug == Bug::Comp2 {
        // The bug: "nothing to do, the instance stays ready" as S_FALSE,
        // which the platform reads as a failed transition.
        return S_FALSE;
    }
    // SAFETY: the context and routine the platform passed to this call.
    let done = unsafe { Completion::from_raw_on(m.platform, cctx, routine) };
    guarded(|| {
        m.handler
            .transition_dormant(&cx, &iref(m, h), done)
            .hresult()
    })
}

macro_rules! tid_trampoline {
    ($name:ident, $method:ident, $capture:expr) => {
        unsafe extern "system" fn $name(
            h: CPNATFWT_PROVIDER_INSTANCE,
            ctx: *mut c_void,
            t: *mut CPNATFWT_TRANSPORT_ID,
            cctx: *mut c_void,
            routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
        ) -> HRESULT {
            // SAFETY: the user context this instance was created with.
            let m = unsafe { mutant(ctx) };
            let Some(cx) = current(m) else { return E_FAIL };
            // SAFETY: the platform's argument, valid during the call.
            let id = unsafe { read_tid(t) };
            if $capture {
                keep(m.bug, h, id, t);
            }
            // SAFETY: the context and routine the platform passed to this call.
            let done = unsafe { Completion::from_raw_on(m.platform, cctx, routine) };
            guarded(|| m.handler.$method(&cx, &iref(m, h), id, done).hresult())
        }
    };
}
tid_trampoline!(add_transport_id, add_transport_id, true);
tid_trampoline!(remove_transport_id, remove_transport_id, false);
tid_trampoline!(reach_transport_id, reach_transport_id, false);

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn send_buffers(
    h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    local: *mut CPNATFWT_TRANSPORT_ID,
    remote: *mut CPNATFWT_TRANSPORT_ID,
    _endpoint_luid: u64,
    chain: *mut CPNATFWT_BUFFER,
    cctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: the user context this instance was created with.
    let m = unsafe { mutant(ctx) };
    let Some(cx) = current(m) else { return E_FAIL };
    // SAFETY: the platform's arguments, valid during the call; the chain is
    // the platform's own, well formed.
    let (l, r, data) = unsafe { (read_tid(local), read_tid(remote), Buffers::new(chain)) };
    // SAFETY: the context and routine the platform passed to this call.
    let done = unsafe { Completion::from_raw_on(m.platform, cctx, routine) };
    guarded(|| {
        m.handler
            .send_buffers(&cx, &iref(m, h), l, r, &data, done)
            .hresult()
    })
}

// ---------------------------------------------------------------------------
// Interposed completion routines (COMP-4, COMP-5, COMP-6)

struct Interposed {
    real: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    bug: Bug,
}

/// Calls whose completion goes through [`interposed_routine`], by context.
static INTERPOSED: Mutex<BTreeMap<usize, Interposed>> = Mutex::new(BTreeMap::new());

unsafe extern "system" fn interposed_routine(ctx: *mut c_void, status: HRESULT) {
    let Some(i) = INTERPOSED.lock().remove(&(ctx as usize)) else {
        return;
    };
    let Some(real) = i.real else { return };
    // The platform's routine is called with values it accepts or checks:
    // it validates contexts and statuses and reports misuse.
    match i.bug {
        // The bug: two code paths both complete the call.
        // SAFETY: the platform's own routine; a second call with the same
        // context is a misuse it detects (COMP-4), not undefined behaviour.
        Bug::Comp4 => unsafe {
            real(ctx, status);
            real(ctx, status);
        },
        // The bug: the context went through a 32-bit field first.
        // SAFETY: the platform's own routine; it checks the (altered)
        // context's tag before using it (COMP-5).
        Bug::Comp5 => unsafe {
            real(ctx as usize as u32 as usize as *mut c_void, status);
            real(ctx, status);
        },
        // The bug: an inner "still pending" status forwarded as the result.
        // SAFETY: the platform's own routine with the context it gave us.
        Bug::Comp6 => unsafe { real(ctx, E_PENDING_IO) },
        // SAFETY: the platform's own routine with the context it gave us.
        _ => unsafe { real(ctx, status) },
    }
}

// ---------------------------------------------------------------------------
// Kept transport IDs (COMP-7, TID-3) and raw indications (DATA-2, DATA-3)

/// What a mutant kept of an ADD's transport ID past the call.
#[derive(Copy, Clone)]
enum Kept {
    /// The platform's struct pointer itself (COMP-7).
    Pointer(usize),
    /// A copy of the struct, still pointing at the platform's bytes (TID-3).
    Shallow { size: u16, bytes: usize },
}

/// IDs kept from one instance's ADD calls, and whether one was used.
#[derive(Default)]
struct KeptIds {
    ids: Vec<(Tid, Kept)>,
    used: bool,
}

/// What each mutant instance (by handle) kept.
static KEPT: Mutex<BTreeMap<u64, KeptIds>> = Mutex::new(BTreeMap::new());

fn keep(bug: Bug, h: CPNATFWT_PROVIDER_INSTANCE, id: Tid, t: *mut CPNATFWT_TRANSPORT_ID) {
    let kept = match bug {
        Bug::Comp7 => Kept::Pointer(t as usize),
        Bug::Tid3 => {
            // SAFETY: the platform's argument, valid during the call; only
            // the struct's two fields are copied (the bug is that the bytes are not).
            let s = unsafe { *t };
            Kept::Shallow {
                size: s.size,
                bytes: s.transportId as usize,
            }
        }
        _ => return,
    };
    KEPT.lock()
        .entry(h.as_u64())
        .or_default()
        .ids
        .push((id, kept));
}

/// Indicates received bytes the way mutant `bug` does; falls back to the
/// correct indication when the buggy one is refused, so that the data still
/// arrives and only the one rule is broken.
///
/// These bugs hand the platform memory that is no longer the provider's (or
/// a cyclic chain). Only the simulator is ever given it, since it refuses
/// such pointers before reading them; on any other platform the indication
/// is made correctly, and the mutant breaks nothing there.
pub fn indicate(
    bug: Bug,
    inst: InstanceRef,
    local: Tid,
    remote: Tid,
    data: &[u8],
) -> Result<(), HRESULT> {
    if !cpsim_sim::platform::Simulated::is(inst.platform()) {
        return inst.indicate(local, remote, data);
    }
    let hr = match bug {
        Bug::Comp7 | Bug::Tid3 => indicate_kept(inst, local, remote, data),
        Bug::Data2 => indicate_cycle(inst, local, remote, data),
        Bug::Data3 => return indicate_then_scribble(inst, local, remote, data),
        _ => None,
    };
    match hr {
        Some(S_OK) => Ok(()),
        _ => inst.indicate(local, remote, data),
    }
}

/// A transport ID struct of ours for `t`, with its bytes in `buf`.
fn tid_struct(t: &Tid, buf: &mut [u8; 16]) -> CPNATFWT_TRANSPORT_ID {
    buf[..t.as_bytes().len()].copy_from_slice(t.as_bytes());
    CPNATFWT_TRANSPORT_ID {
        size: t.as_bytes().len() as u16,
        transportId: buf.as_mut_ptr(),
    }
}

/// COMP-7 / TID-3: the first indication of an instance uses what was kept
/// from the ADD of `local`. `None` when nothing (unused) was kept for it.
fn indicate_kept(inst: InstanceRef, local: Tid, remote: Tid, data: &[u8]) -> Option<HRESULT> {
    let kept = {
        let mut all = KEPT.lock();
        let kept = all.get_mut(&inst.raw().as_u64())?;
        if kept.used {
            return None;
        }
        let k = kept
            .ids
            .iter()
            .find(|(t, _)| *t == local)
            .map(|(_, k)| *k)?;
        kept.used = true;
        k
    };
    let (mut rb, mut own) = ([0u8; 16], [0u8; 16]);
    let mut r = tid_struct(&remote, &mut rb);
    let mut shallow = tid_struct(&local, &mut own);
    let l: *mut CPNATFWT_TRANSPORT_ID = match kept {
        Kept::Pointer(p) => p as *mut CPNATFWT_TRANSPORT_ID,
        Kept::Shallow { size, bytes } => {
            shallow.size = size;
            shallow.transportId = bytes as *mut u8;
            &mut shallow
        }
    };
    let mut buf = CPNATFWT_BUFFER {
        next: std::ptr::null_mut(),
        size: data.len() as u32,
        buffer: data.as_ptr() as *mut u8,
    };
    // SAFETY: the bug is handing the platform a pointer (or byte pointer)
    // from a completed call. The platform recognises retired argument memory
    // by address and refuses before reading it; its argument pool is only
    // freed with the world, so even a read would stay in bounds. The other
    // pointers are locals that outlive the call, and without a completion
    // routine the platform is done with them before it returns.
    Some(unsafe {
        cpsim_sim::ffi::CPNatfwtIndicateReceivedBuffers(
            inst.raw(),
            l,
            &mut r,
            &mut buf,
            std::ptr::null_mut(),
            None,
        )
    })
}

/// DATA-2: a two-element chain whose second element links back to the first.
fn indicate_cycle(inst: InstanceRef, local: Tid, remote: Tid, data: &[u8]) -> Option<HRESULT> {
    let (mut lb, mut rb) = ([0u8; 16], [0u8; 16]);
    let mut l = tid_struct(&local, &mut lb);
    let mut r = tid_struct(&remote, &mut rb);
    let mut chain = [
        CPNATFWT_BUFFER {
            next: std::ptr::null_mut(),
            size: data.len() as u32,
            buffer: data.as_ptr() as *mut u8,
        },
        CPNATFWT_BUFFER {
            next: std::ptr::null_mut(),
            size: 0,
            buffer: std::ptr::null_mut(),
        },
    ];
    let base = chain.as_mut_ptr();
    // SAFETY: both elements live in `chain` for the whole call; linking the
    // second back to the first is the bug (the platform detects cycles
    // before following them).
    Some(unsafe {
        (*base).next = base.add(1);
        (*base.add(1)).next = base;
        cpsim_sim::ffi::CPNatfwtIndicateReceivedBuffers(
            inst.raw(),
            &mut l,
            &mut r,
            base,
            std::ptr::null_mut(),
            None,
        )
    })
}

/// Buffers lent to the platform with a provider completion routine.
struct Lent {
    data: Vec<u8>,
    buf: CPNATFWT_BUFFER,
}

/// The provider's completion routine for [`indicate_then_scribble`]: the
/// platform is done with the buffers, so they are freed.
unsafe extern "system" fn lent_done(ctx: *mut c_void, _status: HRESULT) {
    // SAFETY: `ctx` is the Box leaked for exactly this indication, and the
    // platform calls this routine once.
    drop(unsafe { Box::from_raw(ctx as *mut Lent) });
}

/// DATA-3: indicate with a completion routine, then write into the buffer
/// before the routine has been called.
fn indicate_then_scribble(
    inst: InstanceRef,
    local: Tid,
    remote: Tid,
    data: &[u8],
) -> Result<(), HRESULT> {
    let (mut lb, mut rb) = ([0u8; 16], [0u8; 16]);
    let mut l = tid_struct(&local, &mut lb);
    let mut r = tid_struct(&remote, &mut rb);
    let lent = Box::into_raw(Box::new(Lent {
        data: data.to_vec(),
        buf: CPNATFWT_BUFFER {
            next: std::ptr::null_mut(),
            size: 0,
            buffer: std::ptr::null_mut(),
        },
    }));
    // SAFETY: `lent` is a live Box of ours until `lent_done` frees it; the
    // buffer element points into its own vector, which is not resized.
    let hr = unsafe {
        (*lent).buf = CPNATFWT_BUFFER {
            next: std::ptr::null_mut(),
            size: (*lent).data.len() as u32,
            buffer: (*lent).data.as_mut_ptr(),
        };
        cpsim_sim::ffi::CPNatfwtIndicateReceivedBuffers(
            inst.raw(),
            &mut l,
            &mut r,
            std::ptr::addr_of_mut!((*lent).buf),
            lent as *mut c_void,
            Some(lent_done),
        )
    };
    if hr == E_PENDING_IO {
        // SAFETY: the routine has not run (it runs from the platform's
        // queue, never inside this call), so the Box is still ours to touch;
        // touching it now is the bug.
        unsafe {
            if let Some(b) = (*lent).data.first_mut() {
                *b ^= 0xFF;
            }
        }
        Ok(())
    } else {
        // Refused: the routine will never be called, so the buffers are ours again.
        // SAFETY: the Box was leaked above and nobody else holds it.
        drop(unsafe { Box::from_raw(lent) });
        if hr == S_OK {
            Ok(())
        } else {
            Err(hr)
        }
    }
}
