//! Test support for sim-cp's own tests: a small, correct provider ("toy")
//! with a shared directory instead of a rendezvous, synchronous or
//! asynchronous by configuration.
#![allow(dead_code)]

use cpsim_sim::net::NetAddr;
use cpsim_sim::safe::*;
use cpsim_sim::{Cx, Provider, ProviderFactory, Tid};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

pub const PORT: u16 = 7;

/// Which transport ID lives at which network address (shared by all hosts).
pub type Directory = Arc<Mutex<HashMap<Tid, NetAddr>>>;

#[derive(Clone, Copy, Default)]
pub struct ToyOptions {
    /// Complete every async callback from a spawned task instead of inline.
    pub asynchronous: bool,
    /// Register this many instances per host.
    pub instances: usize,
    /// Try a malformed Register (bad SDDL) first, then a good one.
    pub bad_first_register: bool,
    /// Fail every TRANSITION_ACTIVE.
    pub fail_activation: bool,
    /// Indicate through the raw ABI with a provider completion routine.
    pub indicate_with_routine: bool,
    /// Register with this friendly name (None: the default name).
    pub name: Option<&'static str>,
    /// What the receiving side does wrong with every datagram (DATA-5).
    pub mangle: Mangle,
    /// Call Deregister from inside ESTABLISH (SESS-3), whatever it returns.
    pub deregister_in_establish: bool,
    /// Call Deregister from inside TRANSITION_ACTIVE, then answer it
    /// (decision `deregister-inside-a-callback`).
    pub deregister_in_activation: bool,
    /// Block the thread for this long of real time in every
    /// TRANSITION_ACTIVE before answering (the watchdog's TIME-1).
    pub block_activation: Option<std::time::Duration>,
    /// Fail every REACH that starts before this instant of virtual time (a
    /// provider that needs a while to learn where its peers are: STATE-6).
    pub reach_fails_before: Option<cpsim_sim::Nanos>,
    /// Keep what arrives while dormant, and in TRANSITION_ACTIVE complete
    /// with S_OK at once, indicate what was kept, then return pending.
    pub buffer_while_dormant: bool,
    /// ADD succeeds for an ID another instance holds (a duplicate address
    /// is not refused: TID-4).
    pub accept_duplicates: bool,
    /// On this host, publish an ID when ADD is called, then withdraw it
    /// and fail the ADD from a task (a peer's REACH may succeed meanwhile).
    pub fail_adds_on: Option<&'static str>,
    /// Register each instance with the LUID its host's last start got, so
    /// a restarted provider gets the same interface (and addresses) back.
    pub reuse_interface: bool,
    /// Remember removed IDs and never forget them, even when the same ID
    /// is added again (an address that came back).
    pub tombstone: Tombstone,
}

/// What a toy with a memory of removed IDs does with one added again.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum Tombstone {
    /// Nothing is remembered.
    #[default]
    None,
    /// Data for it is dropped (its SEND succeeded: DATA-5).
    Swallow,
    /// Its ADD succeeds but it is not published: a peer's REACH fails
    /// (STATE-6).
    Unpublished,
}

/// How a toy mishandles the datagrams it receives (DATA-5 tests).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub enum Mangle {
    /// Indicate each datagram once, as received.
    #[default]
    None,
    /// Indicate each datagram twice.
    Twice,
    /// Indicate each datagram as coming from the receiver's own ID.
    Misroute,
    /// Flip the first byte of each non-empty datagram.
    Corrupt,
    /// Never indicate anything (SEND still succeeds).
    Swallow,
}

pub struct ToyFactory {
    pub dir: Directory,
    pub opts: ToyOptions,
    /// Per host, the LUIDs its provider's instances got (`reuse_interface`).
    luids: Luids,
}

type Luids = Arc<Mutex<HashMap<String, Vec<u64>>>>;

impl ToyFactory {
    pub fn new(opts: ToyOptions) -> Arc<ToyFactory> {
        Arc::new(ToyFactory {
            dir: Arc::default(),
            opts,
            luids: Arc::default(),
        })
    }
}

impl ProviderFactory for ToyFactory {
    fn name(&self) -> String {
        "toy".into()
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(Toy {
            dir: self.dir.clone(),
            luids: self.luids.clone(),
            opts: self.opts,
            handlers: Arc::default(),
            instances: Vec::new(),
        })
    }
}

/// The toys' wire format, `[len][local][len][remote][payload]`, with the
/// IDs as the receiver will indicate them (its local ID is the sender's
/// remote one).
pub fn frame(local: Tid, remote: Tid, data: &Buffers<'_>) -> Vec<u8> {
    let mut msg = vec![remote.as_bytes().len() as u8];
    msg.extend_from_slice(remote.as_bytes());
    msg.push(local.as_bytes().len() as u8);
    msg.extend_from_slice(local.as_bytes());
    msg.extend_from_slice(&data.to_vec());
    msg
}

/// A [`frame`] read back: the receiver's local ID, the remote ID and the
/// payload (None: not a frame).
pub fn unframe(data: &[u8]) -> Option<(Tid, Tid, &[u8])> {
    let (l, rest) = data.split_at_checked(1 + *data.first()? as usize)?;
    let (r, payload) = rest.split_at_checked(1 + *rest.first()? as usize)?;
    Some((
        Tid::from_bytes(&l[1..])?,
        Tid::from_bytes(&r[1..])?,
        payload,
    ))
}

/// Each instance's handler and handle (the receive path finds them here).
type Handlers = Arc<Mutex<Vec<(Arc<ToySession>, InstanceRef)>>>;

pub struct Toy {
    dir: Directory,
    luids: Luids,
    opts: ToyOptions,
    handlers: Handlers,
    instances: Vec<Instance>,
}

pub struct ToySession {
    dir: Directory,
    addr: NetAddr,
    opts: ToyOptions,
    ids: Mutex<Vec<Tid>>,
    active: Mutex<bool>,
    /// Set when the platform ended the session: deregister is owed.
    ended: Mutex<bool>,
    /// What arrived while dormant (`buffer_while_dormant`).
    kept: Mutex<Vec<(Tid, Tid, Vec<u8>)>>,
    /// IDs removed so far (`tombstone`).
    removed: Mutex<Vec<Tid>>,
}

impl Provider for Toy {
    fn start(&mut self, cx: &Cx) {
        let handlers = self.handlers.clone();
        let addr = cx
            .bind(PORT, move |_cx, _from, data| {
                // Deliver to the instance owning `local`.
                let Some((local, remote, payload)) = unframe(data) else {
                    return;
                };
                for (h, inst) in handlers.lock().iter() {
                    if h.opts.buffer_while_dormant
                        && h.ids.lock().contains(&local)
                        && !*h.active.lock()
                    {
                        h.kept.lock().push((local, remote, payload.to_vec()));
                        continue;
                    }
                    if h.opts.tombstone == Tombstone::Swallow && h.removed.lock().contains(&local) {
                        continue;
                    }
                    if h.ids.lock().contains(&local) && *h.active.lock() {
                        let mut payload = payload.to_vec();
                        let (mut remote, mut times) = (remote, 1);
                        match h.opts.mangle {
                            Mangle::None => {}
                            Mangle::Twice => times = 2,
                            Mangle::Misroute => remote = local,
                            Mangle::Corrupt => {
                                if let Some(b) = payload.first_mut() {
                                    *b ^= 0x5a;
                                }
                            }
                            Mangle::Swallow => times = 0,
                        }
                        for _ in 0..times {
                            if h.opts.indicate_with_routine {
                                indicate_with_routine(*inst, local, remote, &payload);
                            } else {
                                let _ = inst.indicate(local, remote, &payload);
                            }
                        }
                    }
                }
            })
            .expect("port free");
        for _ in 0..self.opts.instances.max(1) {
            let s = Arc::new(ToySession {
                dir: self.dir.clone(),
                addr,
                opts: self.opts,
                ids: Mutex::default(),
                active: Mutex::new(false),
                ended: Mutex::new(false),
                kept: Mutex::default(),
                removed: Mutex::default(),
            });
            let inst = Instance::create(cx, s.clone()).expect("create");
            self.handlers.lock().push((s, inst.as_ref()));
            if self.opts.bad_first_register {
                let bad = RegisterOptions {
                    sddl: Some("D:(X;;GA;;;SY)".into()),
                    ..RegisterOptions::default()
                };
                assert!(inst.register(&bad).is_err());
            }
            let k = self.instances.len();
            let host = cx.host_name();
            let luid = self
                .opts
                .reuse_interface
                .then(|| self.luids.lock().get(&host).and_then(|l| l.get(k).copied()))
                .flatten();
            let opts = RegisterOptions {
                friendly_name: self.opts.name.map(str::to_string),
                luid,
                ..RegisterOptions::default()
            };
            if let Ok(got) = inst.register(&opts) {
                let mut luids = self.luids.lock();
                let l = luids.entry(host).or_default();
                if l.len() <= k {
                    l.resize(k + 1, 0);
                }
                l[k] = got;
            }
            self.instances.push(inst);
        }
    }
    fn stop(&mut self, _cx: &Cx) {
        let ended: Vec<bool> = self
            .handlers
            .lock()
            .iter()
            .map(|(h, _)| *h.ended.lock())
            .collect();
        for (k, inst) in self.instances.drain(..).enumerate() {
            // A platform-ended session was already deregistered by the terminate handler.
            if !ended.get(k).copied().unwrap_or(false) {
                let _ = inst.deregister();
            }
            inst.destroy();
        }
    }
}

impl ToySession {
    fn finish(&self, cx: &Cx, done: Completion, r: Result<(), Failure>) -> Reply {
        if self.opts.asynchronous {
            let (reply, p) = done.pend();
            cx.spawn(move |_| p.complete(r));
            reply
        } else {
            done.result(r)
        }
    }
}

impl SessionHandler for ToySession {
    fn establish(&self, _cx: &Cx, inst: &InstanceRef) {
        if self.opts.deregister_in_establish {
            let _ = inst.deregister();
        }
    }
    fn terminate(&self, cx: &Cx, inst: &InstanceRef, reason: TerminationReason) {
        *self.active.lock() = false;
        for id in self.ids.lock().drain(..) {
            self.dir.lock().remove(&id);
        }
        if reason != TerminationReason::ProviderRequest {
            *self.ended.lock() = true;
            let inst = *inst;
            cx.after(cpsim_sim::Nanos::from_millis(1), move |_| {
                let _ = inst.deregister();
            });
        }
    }
    fn transition_active(&self, cx: &Cx, inst: &InstanceRef, done: Completion) -> Reply {
        if self.opts.buffer_while_dormant {
            let (reply, p) = done.pend();
            p.complete(Ok(()));
            *self.active.lock() = true;
            for (local, remote, payload) in self.kept.lock().drain(..) {
                let _ = inst.indicate(local, remote, &payload);
            }
            return reply;
        }
        if let Some(block) = self.opts.block_activation {
            std::thread::sleep(block);
        }
        if self.opts.fail_activation {
            return self.finish(cx, done, Err(Failure::FAIL));
        }
        if self.opts.deregister_in_activation {
            let _ = inst.deregister();
            // Done: stop must not deregister it again.
            *self.ended.lock() = true;
        }
        *self.active.lock() = true;
        self.finish(cx, done, Ok(()))
    }
    fn transition_dormant(&self, cx: &Cx, _inst: &InstanceRef, done: Completion) -> Reply {
        *self.active.lock() = false;
        self.finish(cx, done, Ok(()))
    }
    fn add_transport_id(&self, cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let mut dir = self.dir.lock();
        if dir.contains_key(&id) && !self.opts.accept_duplicates {
            drop(dir);
            return self.finish(cx, done, Err(Failure::FAIL));
        }
        if !(self.opts.tombstone == Tombstone::Unpublished && self.removed.lock().contains(&id)) {
            dir.insert(id, self.addr);
        }
        drop(dir);
        if self.opts.fail_adds_on == Some(cx.host_name().as_str()) {
            let (reply, p) = done.pend();
            let dir = self.dir.clone();
            cx.spawn(move |_| {
                dir.lock().remove(&id);
                p.complete(Err(Failure::FAIL));
            });
            return reply;
        }
        self.ids.lock().push(id);
        self.finish(cx, done, Ok(()))
    }
    fn remove_transport_id(
        &self,
        cx: &Cx,
        _inst: &InstanceRef,
        id: Tid,
        done: Completion,
    ) -> Reply {
        self.ids.lock().retain(|x| *x != id);
        self.dir.lock().remove(&id);
        if self.opts.tombstone != Tombstone::None {
            self.removed.lock().push(id);
        }
        self.finish(cx, done, Ok(()))
    }
    fn reach_transport_id(&self, cx: &Cx, _inst: &InstanceRef, id: Tid, done: Completion) -> Reply {
        let learning = self.opts.reach_fails_before.is_some_and(|t| cx.now() < t);
        let known = !learning && self.dir.lock().contains_key(&id);
        self.finish(cx, done, if known { Ok(()) } else { Err(Failure::FAIL) })
    }
    fn send_buffers(
        &self,
        cx: &Cx,
        _inst: &InstanceRef,
        local: Tid,
        remote: Tid,
        data: &Buffers<'_>,
        done: Completion,
    ) -> Reply {
        let Some(to) = self.dir.lock().get(&remote).copied() else {
            return self.finish(cx, done, Err(Failure::FAIL));
        };
        cx.send_vec(PORT, to, frame(local, remote, data));
        self.finish(cx, done, Ok(()))
    }
}

/// Owned copies of an indication, freed by the provider's completion routine.
struct Held {
    ids: [[u8; 16]; 2],
    l: cpsim_sim::abi::CPNATFWT_TRANSPORT_ID,
    r: cpsim_sim::abi::CPNATFWT_TRANSPORT_ID,
    buf: cpsim_sim::abi::CPNATFWT_BUFFER,
    data: Vec<u8>,
}

/// Indications the platform still holds, by context (robust against a
/// platform that calls the routine twice: DATA-4).
static HELD: Mutex<Vec<usize>> = Mutex::new(Vec::new());

unsafe extern "system" fn free_held(ctx: *mut std::ffi::c_void, _status: i32) {
    let mut held = HELD.lock();
    if let Some(k) = held.iter().position(|p| *p == ctx as usize) {
        held.swap_remove(k);
        // SAFETY: ctx is a Box<Held> leaked by indicate_with_routine and
        // still listed in HELD, so it is freed exactly once.
        drop(unsafe { Box::from_raw(ctx as *mut Held) });
    }
}

/// Indicates through the raw ABI with a provider completion routine (DATA-3/4).
pub fn indicate_with_routine(inst: InstanceRef, local: Tid, remote: Tid, payload: &[u8]) {
    use cpsim_sim::abi::*;
    let mut h = Box::new(Held {
        ids: [[0; 16]; 2],
        l: CPNATFWT_TRANSPORT_ID {
            size: 0,
            transportId: std::ptr::null_mut(),
        },
        r: CPNATFWT_TRANSPORT_ID {
            size: 0,
            transportId: std::ptr::null_mut(),
        },
        buf: CPNATFWT_BUFFER {
            next: std::ptr::null_mut(),
            size: 0,
            buffer: std::ptr::null_mut(),
        },
        data: payload.to_vec(),
    });
    h.ids[0][..local.as_bytes().len()].copy_from_slice(local.as_bytes());
    h.ids[1][..remote.as_bytes().len()].copy_from_slice(remote.as_bytes());
    h.l = CPNATFWT_TRANSPORT_ID {
        size: local.as_bytes().len() as u16,
        transportId: h.ids[0].as_mut_ptr(),
    };
    h.r = CPNATFWT_TRANSPORT_ID {
        size: remote.as_bytes().len() as u16,
        transportId: h.ids[1].as_mut_ptr(),
    };
    h.buf = CPNATFWT_BUFFER {
        next: std::ptr::null_mut(),
        size: h.data.len() as u32,
        buffer: h.data.as_mut_ptr(),
    };
    let p = Box::into_raw(h);
    HELD.lock().push(p as usize);
    // SAFETY: p stays alive until free_held runs (DATA-3); on a synchronous
    // refusal the platform never calls the routine, so free it here.
    unsafe {
        let hr = CPNatfwtIndicateReceivedBuffers(
            inst.raw(),
            &mut (*p).l,
            &mut (*p).r,
            &mut (*p).buf,
            p as *mut _,
            Some(free_held),
        );
        if hr != E_PENDING_IO {
            free_held(p as *mut _, hr);
        }
    }
}

use cpsim_sim::ffi::CPNatfwtIndicateReceivedBuffers;

/// A raw-ABI provider that never dereferences its user context: one
/// instance, everything synchronous; TRANSITION_ACTIVE returns `ta_result`.
pub struct RawProbeFactory {
    pub ta_result: i32,
}

static TA_RESULT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

impl ProviderFactory for RawProbeFactory {
    fn name(&self) -> String {
        "raw-probe".into()
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        TA_RESULT.store(self.ta_result, std::sync::atomic::Ordering::Relaxed);
        Box::new(RawProbe { h: None })
    }
}

pub struct RawProbe {
    h: Option<cpsim_sim::abi::CPNATFWT_PROVIDER_INSTANCE>,
}

#[allow(unused_imports)]
pub use raw::TABLE as RAW_TABLE;

mod raw {
    use cpsim_sim::abi::*;
    use std::ffi::c_void;
    pub unsafe extern "system" fn establish(_: CPNATFWT_PROVIDER_INSTANCE, _: *mut c_void) {}
    pub unsafe extern "system" fn terminate(
        _: CPNATFWT_PROVIDER_INSTANCE,
        _: *mut c_void,
        _: CPNATFWT_SESSION_TERMINATION_REASON,
    ) {
    }
    pub unsafe extern "system" fn transition(
        _: CPNATFWT_PROVIDER_INSTANCE,
        _: *mut c_void,
        _: *mut c_void,
        _: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> HRESULT {
        super::TA_RESULT.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub unsafe extern "system" fn tid(
        _: CPNATFWT_PROVIDER_INSTANCE,
        _: *mut c_void,
        _: *mut CPNATFWT_TRANSPORT_ID,
        _: *mut c_void,
        _: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> HRESULT {
        S_OK
    }
    #[allow(clippy::too_many_arguments)]
    pub unsafe extern "system" fn send(
        _: CPNATFWT_PROVIDER_INSTANCE,
        _: *mut c_void,
        _: *mut CPNATFWT_TRANSPORT_ID,
        _: *mut CPNATFWT_TRANSPORT_ID,
        _: u64,
        _: *mut CPNATFWT_BUFFER,
        _: *mut c_void,
        _: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> HRESULT {
        E_FAIL
    }
    pub static TABLE: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE =
        CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
            size: DISPATCH_TABLE_SIZE,
            establishSessionIndication: Some(establish),
            terminateSessionIndication: Some(terminate),
            transitionActive: Some(transition),
            transitionDormant: Some(transition),
            addTransportId: Some(tid),
            removeTransportId: Some(tid),
            reachTransportId: Some(tid),
            sendBuffers: Some(send),
        };
}

impl Provider for RawProbe {
    fn start(&mut self, _cx: &Cx) {
        let mut h = cpsim_sim::abi::CPNATFWT_PROVIDER_INSTANCE::NULL;
        // SAFETY: a static table, a dummy context never dereferenced, a local out pointer.
        unsafe {
            cpsim_sim::ffi::CPNatfwtCreateProviderInstance(&raw::TABLE, 0x1000 as *mut _, &mut h);
            cpsim_sim::ffi::CPNatfwtRegisterProviderInstance(
                h,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            );
        }
        self.h = Some(h);
    }
    fn stop(&mut self, _cx: &Cx) {
        if let Some(h) = self.h.take() {
            // SAFETY: the handle Create gave us.
            unsafe {
                cpsim_sim::ffi::CPNatfwtDeregisterProviderInstance(h);
                cpsim_sim::ffi::CPNatfwtDestroyProviderInstance(h);
            }
        }
    }
}

/// Schedules the providers of `hosts` to start at 0 ms, in that order, and
/// `listener` to listen from `listen_ms`: the opening of most tests.
pub fn start(sim: &cpsim_sim::Sim, hosts: &[&str], listener: &str, listen_ms: u64) {
    use cpsim_sim::{Action, Nanos};
    for h in hosts {
        sim.schedule(Nanos::ZERO, Action::StartProvider { host: (*h).into() });
    }
    sim.schedule(
        Nanos::from_millis(listen_ms),
        Action::Listen {
            host: listener.into(),
            on: true,
        },
    );
}

/// `ms` milliseconds of virtual time.
pub fn at(ms: u64) -> cpsim_sim::Nanos {
    cpsim_sim::Nanos::from_millis(ms)
}

/// The action `action` makes for host B (`b(|host| Action::Dormant { host })`).
pub fn b(action: fn(cpsim_sim::HostName) -> cpsim_sim::Action) -> cpsim_sim::Action {
    action("B".into())
}

/// A 64-byte IPv4 datagram from A to B (with `newest`, to B's extra
/// address of that family added last).
pub fn a_sends_b(newest: bool) -> cpsim_sim::Action {
    cpsim_sim::Action::Send {
        from: "A".into(),
        to: "B".into(),
        family: cpsim_sim::Family::V4,
        bytes: 64,
        newest,
    }
}

/// The rules an outcome's violations name, in order.
pub fn rules(out: &cpsim_sim::Outcome) -> Vec<cpsim_sim::RuleId> {
    out.violations.iter().map(|v| v.rule).collect()
}
