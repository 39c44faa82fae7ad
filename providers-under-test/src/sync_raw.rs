//! `sync-raw`: a correct provider written directly on the raw ABI
//! (`cpsim_sim::ffi` and an `extern "system"` dispatch table) that finishes
//! every call synchronously.
//!
//! Instead of a rendezvous it shares an in-process [`Directory`] between the
//! hosts of one simulated world: which instance holds which transport ID,
//! and whether that instance is active. Every answer is therefore read from
//! the truth at the moment of the call: ADD fails for an ID someone else
//! holds (TID-4); REACH and SEND succeed only towards an ID another active
//! instance holds (TID-6, and no datagram is sent with S_OK towards a
//! dormant peer). SEND is a plain datagram: the bytes go to the holder's
//! node over the simulated network and the call returns S_OK; the receiver
//! de-duplicates and indicates them if the holding instance is still active.
//!
//! The directory lives in the factory: one factory serves one simulated
//! world at a time (`infrastructure` starts a fresh directory for each run).

use crate::reference::wire::DataRef;
use cpsim_sim::abi::*;
use cpsim_sim::net::NetAddr;
use cpsim_sim::{edge, ffi};
use cpsim_sim::{Cx, Nanos, Provider, ProviderFactory, Tid};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_void;
use std::sync::Arc;

/// The port sync-raw peers exchange datagrams on.
pub const PORT: u16 = 4100;
const SEEN_PER_SENDER: usize = 4096;

/// Which instance holds which ID, and which instances are active: the
/// ground truth every sync-raw host of one world shares.
#[derive(Default)]
pub struct Directory {
    inner: Mutex<DirState>,
}

#[derive(Default)]
struct DirState {
    next_key: u64,
    /// Transport ID → (holder key, holder's network node).
    holders: BTreeMap<Tid, (u64, u8)>,
    /// Instance keys that are active.
    active: BTreeSet<u64>,
}

impl Directory {
    fn new_key(&self) -> u64 {
        let mut d = self.inner.lock();
        d.next_key += 1;
        d.next_key
    }
    /// ADD: succeeds unless another instance holds the ID; unchecked
    /// (`check` false), it succeeds then too, the first holder staying on
    /// record.
    fn add(&self, key: u64, node: u8, t: Tid, check: bool) -> bool {
        let mut d = self.inner.lock();
        match d.holders.get(&t) {
            Some((k, _)) if *k != key => !check,
            _ => {
                d.holders.insert(t, (key, node));
                true
            }
        }
    }
    fn remove(&self, key: u64, t: Tid) {
        let mut d = self.inner.lock();
        if d.holders.get(&t).is_some_and(|(k, _)| *k == key) {
            d.holders.remove(&t);
        }
    }
    /// Forgets everything about an instance (its session ended).
    fn forget(&self, key: u64) {
        let mut d = self.inner.lock();
        d.holders.retain(|_, (k, _)| *k != key);
        d.active.remove(&key);
    }
    fn set_active(&self, key: u64, on: bool) {
        let mut d = self.inner.lock();
        if on {
            d.active.insert(key);
        } else {
            d.active.remove(&key);
        }
    }
    /// The node of the active instance other than `asker` that holds `t`.
    fn reachable(&self, asker: u64, t: Tid) -> Option<u8> {
        let d = self.inner.lock();
        d.holders
            .get(&t)
            .filter(|(k, _)| *k != asker && d.active.contains(k))
            .map(|(_, n)| *n)
    }
    /// Whether some active instance holds `t`.
    fn held_active(&self, t: Tid) -> bool {
        let d = self.inner.lock();
        d.holders.get(&t).is_some_and(|(k, _)| d.active.contains(k))
    }
    /// Whether instance `key` holds `t` and is active.
    fn holds_active(&self, key: u64, t: Tid) -> bool {
        let d = self.inner.lock();
        d.holders.get(&t).is_some_and(|(k, _)| *k == key) && d.active.contains(&key)
    }
}

/// Subtle single-bug variants of sync-raw, on the raw ABI: each breaks a
/// MUST rule only under a rare condition (see `scenarios/subtle/`).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub enum RawSubtle {
    /// The correct sync-raw provider.
    #[default]
    None,
    /// LIFE-1: the receive path caches the instance handle per local ID and
    /// reuses it while some instance holds the ID actively, even after the
    /// cached instance was replaced (destroyed) after a platform-ended session.
    StaleHandle,
    /// COMP-4: datagrams over 1,400 bytes are sent as segments from a 1 ms
    /// timer, SEND_BUFFERS pended meanwhile; TERMINATE and stop fail the
    /// pended SENDs, but the timer completes them again.
    SegmentTimer,
    /// COMP-3: TRANSITION_ACTIVE is pended for a 2 ms handshake; within a
    /// second of the node's previous activation it returns S_OK at once
    /// ("warm"), but the handshake timer, already armed, completes it too.
    WarmActivation,
    /// TID-4: IPv6 addresses are taken as globally unique, so an IPv6 ADD
    /// is granted without asking whether another instance holds the ID
    /// (IPv4 ADDs are checked).
    V6DuplicateAdd,
    /// COMP-2: REMOVE of an IPv6 ID returns what its IPv6 table answers,
    /// 1 for "removed", as the HRESULT: S_FALSE (IPv4 REMOVEs return S_OK).
    V6RemoveSFalse,
    /// TID-2: a removed ID lingers for half a second so that data already
    /// on its way is not lost; such data is indicated with the removed ID.
    LingerAfterRemove,
}

impl RawSubtle {
    /// Every variant.
    pub const ALL: [RawSubtle; 6] = [
        RawSubtle::StaleHandle,
        RawSubtle::SegmentTimer,
        RawSubtle::WarmActivation,
        RawSubtle::V6DuplicateAdd,
        RawSubtle::V6RemoveSFalse,
        RawSubtle::LingerAfterRemove,
    ];
    /// The rule it breaks.
    pub fn rule(self) -> Option<cpsim_sim::RuleId> {
        use cpsim_sim::rules::id;
        Some(match self {
            RawSubtle::None => return None,
            RawSubtle::StaleHandle => id::LIFE_1,
            RawSubtle::SegmentTimer => id::COMP_4,
            RawSubtle::WarmActivation => id::COMP_3,
            RawSubtle::V6DuplicateAdd => id::TID_4,
            RawSubtle::V6RemoveSFalse => id::COMP_2,
            RawSubtle::LingerAfterRemove => id::TID_2,
        })
    }
    /// The provider's name.
    pub fn name(self) -> String {
        match self {
            RawSubtle::None => "sync-raw".into(),
            RawSubtle::StaleHandle => "subtle-life-1-raw-stale-handle".into(),
            RawSubtle::SegmentTimer => "subtle-comp-4-raw-segment-timer".into(),
            RawSubtle::WarmActivation => "subtle-comp-3-raw-warm-activation".into(),
            RawSubtle::V6DuplicateAdd => "subtle-tid-4-raw-v6-duplicate-add".into(),
            RawSubtle::V6RemoveSFalse => "subtle-comp-2-raw-v6-remove-s-false".into(),
            RawSubtle::LingerAfterRemove => "subtle-tid-2-raw-linger-after-remove".into(),
        }
    }
    /// What the bug does and when it shows.
    pub fn describe(self) -> &'static str {
        match self {
            RawSubtle::None => "raw ABI, every call synchronous, correct",
            RawSubtle::StaleHandle => {
                "raw ABI: indicates received data on a cached handle destroyed when its session was replaced"
            }
            RawSubtle::SegmentTimer => {
                "raw ABI: a large SEND pended for 1 ms is completed twice if its session ends or the provider stops meanwhile"
            }
            RawSubtle::WarmActivation => {
                "raw ABI: an activation within a second of the previous one returns S_OK and is completed too"
            }
            RawSubtle::V6DuplicateAdd => {
                "raw ABI: grants an IPv6 ADD of an ID another instance holds (no duplicate check for IPv6)"
            }
            RawSubtle::V6RemoveSFalse => "raw ABI: REMOVE of an IPv6 ID returns S_FALSE",
            RawSubtle::LingerAfterRemove => {
                "raw ABI: data arriving within half a second of an ID's REMOVE is indicated with the removed ID"
            }
        }
    }
}

/// Makes sync-raw providers sharing one directory per world.
#[derive(Default)]
pub struct SyncRawFactory {
    dir: Mutex<Arc<Directory>>,
    subtle: RawSubtle,
}

impl SyncRawFactory {
    pub fn new() -> Arc<SyncRawFactory> {
        Arc::default()
    }
    /// sync-raw with one subtle bug.
    pub fn with_subtle(subtle: RawSubtle) -> Arc<SyncRawFactory> {
        Arc::new(SyncRawFactory {
            dir: Mutex::default(),
            subtle,
        })
    }
}

impl ProviderFactory for SyncRawFactory {
    fn name(&self) -> String {
        self.subtle.name()
    }
    fn infrastructure(&self, _cx: &Cx) {
        // A new world: a fresh directory.
        *self.dir.lock() = Arc::default();
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(SyncRaw {
            dir: self.dir.lock().clone(),
            subtle: self.subtle,
            node: None,
        })
    }
}

struct SyncRaw {
    dir: Arc<Directory>,
    subtle: RawSubtle,
    node: Option<Arc<RawNode>>,
}

/// One host's sync-raw provider.
struct RawNode {
    subtle: RawSubtle,
    me: u8,
    incarnation: u64,
    dir: Arc<Directory>,
    st: Mutex<RawState>,
}

#[derive(Default)]
struct RawState {
    stopped: bool,
    next_msg: u64,
    /// Live instances by directory key.
    insts: BTreeMap<u64, RawInst>,
    seen: BTreeMap<(u8, u64), BTreeSet<u64>>,
    /// Pended calls (variants that pend): id → the call.
    pended: BTreeMap<u64, RawPended>,
    next_pended: u64,
    /// When this node last activated an instance (warm-activation variant).
    last_activation: Option<Nanos>,
    /// Local ID → instance handle (stale-handle variant).
    handles: BTreeMap<Tid, CPNATFWT_PROVIDER_INSTANCE>,
    /// Removed ID → (its instance's key, until when it takes data)
    /// (linger-after-remove variant).
    lingering: BTreeMap<Tid, (u64, Nanos)>,
}

/// A call a variant pended, with what completes it.
struct RawPended {
    key: u64,
    cctx: usize,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
}

impl RawPended {
    fn complete(&self, hr: HRESULT) {
        if let Some(r) = self.routine {
            // SAFETY: the platform's routine with the context it gave for
            // this call.
            unsafe { r(self.cctx as *mut c_void, hr) };
        }
    }
}

struct RawInst {
    handle: CPNATFWT_PROVIDER_INSTANCE,
    /// The user context (a leaked `Box<UserCtx>`), freed after Destroy.
    ctx: usize,
    registered: bool,
    luid: u64,
}

/// What each instance's user context points at.
struct UserCtx {
    node: Arc<RawNode>,
    key: u64,
}

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

impl Provider for SyncRaw {
    fn start(&mut self, cx: &Cx) {
        let node = Arc::new(RawNode {
            subtle: self.subtle,
            me: cx.host_index(),
            incarnation: cx.random(),
            dir: self.dir.clone(),
            st: Mutex::default(),
        });
        let n = node.clone();
        // Free on a fresh start (the platform unbinds stopped providers' ports).
        let _ = cx.bind(PORT, move |cx, from, data| {
            n.on_datagram(cx.now(), from, data)
        });
        node.open_instance(0);
        self.node = Some(node);
    }

    fn stop(&mut self, cx: &Cx) {
        let Some(node) = self.node.take() else { return };
        let (insts, pended) = {
            let mut st = node.st.lock();
            st.stopped = true;
            (
                std::mem::take(&mut st.insts),
                std::mem::take(&mut st.pended),
            )
        };
        // Pended calls are failed before their instances go (LIFE-8).
        for p in pended.values() {
            p.complete(E_FAIL);
        }
        for (key, i) in insts {
            node.dir.forget(key);
            node.close(i);
        }
        cx.unbind(PORT);
    }
}

impl RawNode {
    /// Creates and registers an instance (on interface `luid`, or a new one).
    fn open_instance(self: &Arc<Self>, luid: u64) {
        if self.st.lock().stopped {
            return;
        }
        let key = self.dir.new_key();
        let ctx = Box::into_raw(Box::new(UserCtx {
            node: self.clone(),
            key,
        })) as *mut c_void;
        let mut h = CPNATFWT_PROVIDER_INSTANCE::NULL;
        // SAFETY: a full static table, a user context that stays valid
        // until after Destroy, and a writable out pointer.
        let hr = unsafe { ffi::CPNatfwtCreateProviderInstance(&TABLE, ctx, &mut h) };
        if hr != S_OK {
            // SAFETY: Create failed, so the platform never saw the context.
            drop(unsafe { Box::from_raw(ctx as *mut UserCtx) });
            return;
        }
        // Recorded before Register: ESTABLISH may arrive inside it.
        self.st.lock().insts.insert(
            key,
            RawInst {
                handle: h,
                ctx: ctx as usize,
                registered: false,
                luid: 0,
            },
        );
        let mut out = IF_LUID { Value: luid };
        // SAFETY: NULL name and SDDL (both optional), a LUID that outlives the call.
        let hr = unsafe {
            ffi::CPNatfwtRegisterProviderInstance(
                h,
                std::ptr::null_mut(),
                &mut out,
                0,
                std::ptr::null_mut(),
            )
        };
        let mut st = self.st.lock();
        if hr == S_OK {
            if let Some(i) = st.insts.get_mut(&key) {
                i.registered = true;
                i.luid = out.Value;
            }
        } else if let Some(i) = st.insts.remove(&key) {
            drop(st);
            self.close(i);
        }
    }

    /// Deregisters (if registered) and destroys an instance, then frees its context.
    fn close(&self, i: RawInst) {
        if i.registered {
            // SAFETY: a handle Create returned and that is not destroyed yet.
            unsafe { ffi::CPNatfwtDeregisterProviderInstance(i.handle) };
        }
        // SAFETY: as above; destroyed exactly once, here.
        unsafe { ffi::CPNatfwtDestroyProviderInstance(i.handle) };
        // SAFETY: the Box leaked at Create; after Destroy the platform calls
        // this instance no more, so nothing else uses the context.
        drop(unsafe { Box::from_raw(i.ctx as *mut UserCtx) });
    }

    /// After a platform-ended session: deregister, destroy, and open a fresh
    /// instance on the same interface unless the platform shut down.
    fn replace(self: &Arc<Self>, key: u64, reopen: bool) {
        let old = {
            let mut st = self.st.lock();
            if st.stopped {
                return;
            }
            st.insts.remove(&key)
        };
        let Some(old) = old else { return };
        let luid = old.luid;
        self.close(old);
        if reopen {
            self.open_instance(luid);
        }
    }

    /// Peer datagrams: indicate data for an active instance holding its ID, once.
    fn on_datagram(&self, now: Nanos, from: NetAddr, data: &[u8]) {
        let Some(DataRef {
            req,
            incarnation,
            dst,
            src,
            payload,
        }) = DataRef::decode(data)
        else {
            return;
        };
        let sender = (from.node, incarnation);
        let handle = {
            let mut st = self.st.lock();
            if st.seen.get(&sender).is_some_and(|s| s.contains(&req)) {
                return;
            }
            let cached = if self.subtle == RawSubtle::StaleHandle {
                // The bug: the cache is trusted while the ID is held
                // actively by whichever instance, and never cleared.
                st.handles
                    .get(&dst)
                    .copied()
                    .filter(|_| self.dir.held_active(dst))
            } else {
                None
            };
            let found = cached.or_else(|| {
                st.insts
                    .iter()
                    .find(|(k, _)| self.dir.holds_active(**k, dst))
                    .map(|(_, i)| i.handle)
            });
            if let (RawSubtle::StaleHandle, Some(h)) = (self.subtle, found) {
                st.handles.insert(dst, h);
            }
            found.or_else(|| {
                // The bug: an ID removed a moment ago still takes data.
                let (key, until) = st.lingering.get(&dst).copied()?;
                let active = self.dir.inner.lock().active.contains(&key);
                st.insts
                    .get(&key)
                    .filter(|_| active && now < until)
                    .map(|i| i.handle)
            })
        };
        // Not held here, or not active: dropped (DATA-1).
        let Some(handle) = handle else { return };
        if indicate(handle, dst, src, payload) == S_OK {
            let mut st = self.st.lock();
            let seen = st.seen.entry(sender).or_default();
            seen.insert(req);
            if seen.len() > SEEN_PER_SENDER {
                seen.pop_first();
            }
        }
    }
}

/// `CPNatfwtIndicateReceivedBuffers` without a completion routine.
fn indicate(h: CPNATFWT_PROVIDER_INSTANCE, local: Tid, remote: Tid, data: &[u8]) -> HRESULT {
    let (mut lb, mut rb) = ([0u8; 16], [0u8; 16]);
    lb[..local.as_bytes().len()].copy_from_slice(local.as_bytes());
    rb[..remote.as_bytes().len()].copy_from_slice(remote.as_bytes());
    let mut l = CPNATFWT_TRANSPORT_ID {
        size: local.as_bytes().len() as u16,
        transportId: lb.as_mut_ptr(),
    };
    let mut r = CPNATFWT_TRANSPORT_ID {
        size: remote.as_bytes().len() as u16,
        transportId: rb.as_mut_ptr(),
    };
    let mut buf = CPNATFWT_BUFFER {
        next: std::ptr::null_mut(),
        size: data.len() as u32,
        buffer: data.as_ptr() as *mut u8,
    };
    // SAFETY: every pointer is to a local that outlives the call; without a
    // completion routine the platform is done with them when it returns.
    unsafe {
        ffi::CPNatfwtIndicateReceivedBuffers(
            h,
            &mut l,
            &mut r,
            &mut buf,
            std::ptr::null_mut(),
            None,
        )
    }
}

// ---------------------------------------------------------------------------
// The dispatch table

/// # Safety
/// `ctx` is a user context made by [`RawNode::open_instance`] whose instance
/// is not destroyed yet.
unsafe fn user<'a>(ctx: *mut c_void) -> &'a UserCtx {
    // SAFETY: per the function's contract.
    unsafe { &*(ctx as *const UserCtx) }
}

/// The longest buffer chain read (elements).
const MAX_CHAIN: usize = 4096;

/// Deep-copies a transport ID the platform passed.
///
/// # Safety
/// `t` is NULL or points at a transport ID valid for the duration of the call.
unsafe fn read_tid(t: *const CPNATFWT_TRANSPORT_ID) -> Option<Tid> {
    // SAFETY: per the function's contract.
    unsafe { edge::transport_id(t) }
}

/// Copies a buffer chain the platform passed.
///
/// # Safety
/// `chain` is NULL or a chain valid for the duration of the call.
unsafe fn read_chain(chain: *const CPNATFWT_BUFFER) -> Vec<u8> {
    // SAFETY: per the function's contract.
    unsafe { edge::chain_bytes(chain, MAX_CHAIN) }
}

/// Runs a callback body without letting a panic unwind into the platform.
fn guarded(f: impl FnOnce() -> HRESULT) -> HRESULT {
    edge::guard(E_FAIL, f)
}

fn ok_or_fail(ok: bool) -> HRESULT {
    if ok {
        S_OK
    } else {
        E_FAIL
    }
}

unsafe extern "system" fn establish(_h: CPNATFWT_PROVIDER_INSTANCE, _ctx: *mut c_void) {
    // Nothing to set up: the instance starts dormant and holds nothing.
}

unsafe extern "system" fn terminate(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    reason: CPNATFWT_SESSION_TERMINATION_REASON,
) {
    // SAFETY: our user context; the instance is not destroyed (it is being called).
    let u = unsafe { user(ctx) };
    guarded(|| {
        u.node.dir.forget(u.key);
        // Calls this variant pended for the instance fail with the session.
        let mine: Vec<RawPended> = {
            let mut st = u.node.st.lock();
            let keys: Vec<u64> = st
                .pended
                .iter()
                .filter(|(_, p)| p.key == u.key)
                .map(|(k, _)| *k)
                .collect();
            keys.iter().filter_map(|k| st.pended.remove(k)).collect()
        };
        for p in &mine {
            p.complete(E_FAIL);
        }
        if reason != CPNATFWT_SESSION_TERMINATION_REASON::ProviderRequest {
            if let Some(cx) = Cx::current() {
                let (node, key) = (u.node.clone(), u.key);
                let reopen = reason != CPNATFWT_SESSION_TERMINATION_REASON::PlatformShutdown;
                // Deregister from a timer, not from inside TERMINATE (LIFE-7).
                cx.after(Nanos::from_millis(1), move |_| node.replace(key, reopen));
            }
        }
        S_OK
    });
}

unsafe extern "system" fn transition_active(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    cctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: our user context.
    let u = unsafe { user(ctx) };
    guarded(|| {
        if u.node.subtle == RawSubtle::WarmActivation {
            if let Some(cx) = Cx::current() {
                return u.node.handshake(&cx, u.key, cctx as usize, routine);
            }
        }
        u.node.dir.set_active(u.key, true);
        S_OK
    })
}

unsafe extern "system" fn transition_dormant(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    _cctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: our user context.
    let u = unsafe { user(ctx) };
    guarded(|| {
        u.node.dir.set_active(u.key, false);
        S_OK
    })
}

unsafe extern "system" fn add_transport_id(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    t: *mut CPNATFWT_TRANSPORT_ID,
    _cctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: our user context, and the platform's ID valid during the call.
    let (u, t) = unsafe { (user(ctx), read_tid(t)) };
    let Some(t) = t else { return E_INVALIDARG };
    // The bug: no duplicate check for IPv6 IDs.
    let check = u.node.subtle != RawSubtle::V6DuplicateAdd || t.is_v4();
    guarded(|| ok_or_fail(u.node.dir.add(u.key, u.node.me, t, check)))
}

unsafe extern "system" fn remove_transport_id(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    t: *mut CPNATFWT_TRANSPORT_ID,
    _cctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: our user context, and the platform's ID valid during the call.
    let (u, t) = unsafe { (user(ctx), read_tid(t)) };
    let Some(t) = t else { return E_INVALIDARG };
    guarded(|| {
        u.node.dir.remove(u.key, t);
        match u.node.subtle {
            RawSubtle::V6RemoveSFalse if !t.is_v4() => return S_FALSE,
            RawSubtle::LingerAfterRemove => {
                if let Some(cx) = Cx::current() {
                    let until = cx.now().saturating_add(Nanos::from_millis(500));
                    u.node.st.lock().lingering.insert(t, (u.key, until));
                }
            }
            _ => {}
        }
        S_OK
    })
}

unsafe extern "system" fn reach_transport_id(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    t: *mut CPNATFWT_TRANSPORT_ID,
    _cctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: our user context, and the platform's ID valid during the call.
    let (u, t) = unsafe { (user(ctx), read_tid(t)) };
    let Some(t) = t else { return E_INVALIDARG };
    guarded(|| ok_or_fail(u.node.dir.reachable(u.key, t).is_some()))
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn send_buffers(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    ctx: *mut c_void,
    local: *mut CPNATFWT_TRANSPORT_ID,
    remote: *mut CPNATFWT_TRANSPORT_ID,
    _endpoint_luid: u64,
    chain: *mut CPNATFWT_BUFFER,
    cctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: our user context, and the platform's arguments, valid during
    // the call; everything is copied before returning (COMP-7).
    let (u, l, r, payload) = unsafe {
        (
            user(ctx),
            read_tid(local),
            read_tid(remote),
            read_chain(chain),
        )
    };
    let (Some(l), Some(r)) = (l, r) else {
        return E_INVALIDARG;
    };
    guarded(|| {
        let Some(node) = u.node.dir.reachable(u.key, r) else {
            return E_FAIL;
        };
        let Some(cx) = Cx::current() else {
            return E_FAIL;
        };
        let req = {
            let mut st = u.node.st.lock();
            st.next_msg += 1;
            st.next_msg
        };
        let datagram = DataRef {
            req,
            incarnation: u.node.incarnation,
            dst: r,
            src: l,
            payload: &payload,
        }
        .encode();
        if u.node.subtle == RawSubtle::SegmentTimer && payload.len() > SEGMENT {
            return u
                .node
                .send_segmented(&cx, u.key, node, datagram, cctx as usize, routine);
        }
        cx.send_vec(PORT, NetAddr { node, port: PORT }, datagram);
        S_OK
    })
}

/// Above this many payload bytes the segment-timer variant pends its SEND.
const SEGMENT: usize = 1_400;

impl RawNode {
    fn pend(&self, key: u64, cctx: usize, routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE) -> u64 {
        let mut st = self.st.lock();
        st.next_pended += 1;
        let id = st.next_pended;
        st.pended.insert(id, RawPended { key, cctx, routine });
        id
    }

    /// Warm-activation variant: a 2 ms handshake, skipped when warm.
    fn handshake(
        self: &Arc<Self>,
        cx: &Cx,
        key: u64,
        cctx: usize,
        routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> HRESULT {
        let id = self.pend(key, cctx, routine);
        let node = self.clone();
        cx.after(Nanos::from_millis(2), move |_| {
            let p = node.st.lock().pended.remove(&id);
            if let Some(p) = p {
                node.dir.set_active(p.key, true);
                p.complete(S_OK);
            }
        });
        let now = cx.now();
        let warm = {
            let mut st = self.st.lock();
            let warm = st
                .last_activation
                .is_some_and(|t| now.saturating_sub(t) < Nanos::from_secs(1));
            st.last_activation = Some(now);
            warm
        };
        if warm {
            // The bug: the handshake timer armed above still completes it.
            self.dir.set_active(key, true);
            return S_OK;
        }
        E_PENDING_IO
    }

    /// Segment-timer variant: the datagram goes out from a 1 ms timer.
    fn send_segmented(
        self: &Arc<Self>,
        cx: &Cx,
        key: u64,
        to: u8,
        datagram: Vec<u8>,
        cctx: usize,
        routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> HRESULT {
        let id = self.pend(key, cctx, routine);
        let node = self.clone();
        cx.after(Nanos::from_millis(1), move |cx| {
            // The bug: completes from what it captured, whether or not the
            // call is still pended (TERMINATE or stop may have failed it).
            let p = node.st.lock().pended.remove(&id);
            cx.send_vec(
                PORT,
                NetAddr {
                    node: to,
                    port: PORT,
                },
                datagram,
            );
            let done = RawPended { key, cctx, routine };
            let _ = p;
            done.complete(S_OK);
        });
        E_PENDING_IO
    }
}
