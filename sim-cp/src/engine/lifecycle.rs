//! Create, Register, Deregister, Destroy: the platform side of an
//! instance's life (LIFE-*, REG-*, SESS-1/3), called from the ABI edge.
//!
//! Each function takes the lock itself, because Register and Deregister may
//! deliver a callback on the caller's thread, which must happen unlocked.

use super::instance::{Instance, Interface, Life};
use super::machine::{Effect, Input};
use super::{Ev, Shared, World};
use crate::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use crate::abi::*;
use crate::handle::{self, Kind};
use crate::interface_name;
use crate::rules::id;
use crate::trace::{PlatformFn, What};
use crate::transport_id::Tid;
use std::borrow::Cow;
use std::sync::Arc;

/// How a successful Register delivers ESTABLISH.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Delivery {
    /// On the caller's thread, before Register returns.
    CallersThread,
    /// Through the event queue, after Register returned.
    Queued,
    /// Queued, with TRANSITION_ACTIVE started first (only a faulty
    /// platform, SESS-2).
    QueuedAfterActivate,
}

/// The five platform functions as the engine implements them; `ffi` calls these.
impl World {
    /// The caller's strings changed during `f` (seen at the ABI edge): the
    /// platform wrote to them (REG-9).
    pub(crate) fn args_written(&mut self, inst: u32, f: PlatformFn) {
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        self.record(host, n, What::ArgsWritten { f });
    }

    /// The caller's friendly name as Register leaves it, given it as read
    /// (unchanged: REG-9); the ABI edge writes back what differs.
    pub(crate) fn callers_name_after<'a>(&self, name: &'a [u16]) -> Cow<'a, [u16]> {
        self.faults.callers_name_after(name)
    }

    fn function(&mut self, host: u8, inst: u32, f: PlatformFn, hr: i32) -> i32 {
        self.record(
            host,
            inst,
            What::Function {
                f,
                hr,
                detail: None,
            },
        );
        hr
    }

    /// Resolves a handle to a live instance, reporting LIFE-1 (or LIFE-5 for
    /// a second Destroy) otherwise.
    pub(crate) fn resolve(
        &mut self,
        handle: u64,
        host_hint: u8,
        f: PlatformFn,
    ) -> Result<u32, i32> {
        let found = handle::decode(Kind::Instance, handle)
            .filter(|(w, _)| *w == self.id)
            .map(|(_, i)| i)
            .filter(|i| (*i as usize) < self.insts.len());
        match found {
            Some(i) if self.insts[i as usize].life() != Life::Destroyed => Ok(i),
            Some(i) => {
                let (host, n) = (self.insts[i as usize].host(), self.insts[i as usize].n());
                let (rule, what) = if f == PlatformFn::CPNatfwtDestroyProviderInstance {
                    (id::LIFE_5, "Destroy called again on a destroyed instance")
                } else {
                    (id::LIFE_1, "the instance was already destroyed")
                };
                self.violate(rule, host, n, Some(f.name()), what.into());
                Err(self.function(host, n, f, E_HANDLE))
            }
            None => {
                self.violate(
                    id::LIFE_1,
                    host_hint,
                    0,
                    Some(f.name()),
                    format!(
                        "handle 0x{handle:x} was never returned by CPNatfwtCreateProviderInstance"
                    ),
                );
                Err(self.function(host_hint, 0, f, E_HANDLE))
            }
        }
    }

    /// CPNatfwtCreateProviderInstance on `host`.
    ///
    /// # Safety
    /// `table` and `out` are the caller's pointers, checked for NULL here.
    pub(crate) unsafe fn create(
        &mut self,
        host: u8,
        table: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
        user_context: usize,
        out: *mut CPNATFWT_PROVIDER_INSTANCE,
    ) -> i32 {
        let f = PlatformFn::CPNatfwtCreateProviderInstance;
        let bad = |w: &mut World, hr: i32, msg: String| {
            w.violate(id::LIFE_9, host, 0, Some(f.name()), msg);
            w.function(host, 0, f, hr)
        };
        if out.is_null() {
            return bad(
                self,
                E_POINTER,
                "providerInstance (the out pointer) is NULL".into(),
            );
        }
        if table.is_null() {
            return bad(self, E_POINTER, "dispatchTable is NULL".into());
        }
        // SAFETY: non-NULL; the size field comes first and is read alone
        // before anything larger is trusted.
        let size = unsafe { std::ptr::read_unaligned(table as *const u32) };
        if size != DISPATCH_TABLE_SIZE {
            return bad(
                self,
                E_INVALIDARG,
                format!("dispatch table size is {size}, expected {DISPATCH_TABLE_SIZE}"),
            );
        }
        // SAFETY: the caller declared a table of the full size.
        let t = unsafe { std::ptr::read_unaligned(table) };
        let missing: Vec<&str> = [
            (
                "establishSessionIndication",
                t.establishSessionIndication.is_none(),
            ),
            (
                "terminateSessionIndication",
                t.terminateSessionIndication.is_none(),
            ),
            ("transitionActive", t.transitionActive.is_none()),
            ("transitionDormant", t.transitionDormant.is_none()),
            ("addTransportId", t.addTransportId.is_none()),
            ("removeTransportId", t.removeTransportId.is_none()),
            ("reachTransportId", t.reachTransportId.is_none()),
            ("sendBuffers", t.sendBuffers.is_none()),
        ]
        .into_iter()
        .filter(|(_, null)| *null)
        .map(|(n, _)| n)
        .collect();
        if !missing.is_empty() {
            return bad(
                self,
                E_INVALIDARG,
                format!(
                    "NULL callback(s) in the dispatch table: {}",
                    missing.join(", ")
                ),
            );
        }
        let idx = self.insts.len() as u32;
        let h = &mut self.hosts[host as usize];
        h.created += 1;
        let n = h.created;
        let handle = handle::encode(Kind::Instance, self.id, idx);
        self.insts
            .push(Instance::new(host, n, handle, t, user_context));
        self.hosts[host as usize].insts.push(idx);
        // SAFETY: checked non-NULL above.
        unsafe { out.write_unaligned(CPNATFWT_PROVIDER_INSTANCE::from_u64(handle)) };
        self.function(host, n, f, S_OK)
    }

    /// CPNatfwtRegisterProviderInstance. Returns the HRESULT and, when
    /// ESTABLISH is to be delivered on the caller's thread, the session.
    pub(crate) fn register(&mut self, inst: u32, args: RegisterArgs) -> (i32, Option<u32>) {
        self.mark(inst);
        let f = PlatformFn::CPNatfwtRegisterProviderInstance;
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        let fail = |w: &mut World, rule: Option<crate::rules::RuleId>, hr: i32, msg: String| {
            if let Some(r) = rule {
                w.violate(r, host, n, Some(f.name()), msg);
            } else {
                w.record(host, n, What::Note { text: msg });
            }
            if w.faults
                .starts_session(hr, w.insts[inst as usize].session().is_some())
            {
                let (now, faults) = (w.now, w.faults.session);
                let i = &mut w.insts[inst as usize];
                let no = i.start_session(now, faults);
                i.register_failed();
                // Delivered on the caller's thread, before the failure returns.
                return (w.function(host, n, f, hr), Some(no));
            }
            w.insts[inst as usize].register_failed();
            (w.function(host, n, f, hr), None)
        };
        if self.insts[inst as usize].life() == Life::Registered {
            return fail(
                self,
                Some(id::LIFE_2),
                E_INVALID_STATE,
                "Register called on an instance that is already registered".into(),
            );
        }
        if args.flags != 0 {
            return fail(
                self,
                Some(id::REG_7),
                E_INVALIDARG,
                format!("flags is 0x{:x}; no flag is defined", args.flags),
            );
        }
        if let Some(s) = &args.sddl {
            if let Err(e) = crate::sddl::validate(s) {
                return fail(
                    self,
                    Some(id::REG_8),
                    E_INVALIDARG,
                    format!("sddl `{s}` is not well formed: {e}"),
                );
            }
        }
        let shutdown = self.hosts[host as usize].shutdown;
        let why = shutdown.then_some("Register refused: the platform has shut down on this host");
        if let Some(why) = self
            .faults
            .register_refusal(why, self.insts[inst as usize].failed_register_before())
        {
            return fail(self, None, E_INVALID_STATE, why.into());
        }
        let iface = match self.faults.luid_looked_up(args.luid_in) {
            Some(l) if l != 0 => {
                match self.hosts[host as usize]
                    .interfaces
                    .iter()
                    .position(|i| i.luid == l)
                {
                    Some(k) if self.hosts[host as usize].interfaces[k].owner.is_none() => k,
                    Some(_) => {
                        return fail(
                            self,
                            Some(id::REG_5),
                            E_NOT_FOUND,
                            format!("LUID 0x{l:x} is in use by another registered instance"),
                        )
                    }
                    None => {
                        return fail(
                            self,
                            Some(id::REG_5),
                            E_NOT_FOUND,
                            format!("LUID 0x{l:x} was never given to this provider"),
                        )
                    }
                }
            }
            _ => self.new_interface(host, args.name.as_deref()),
        };
        // Success.
        let now = self.now;
        let hst = &mut self.hosts[host as usize];
        hst.interfaces[iface].owner = Some(inst);
        let (luid, name) = (
            self.faults
                .register
                .luid_reported(hst.interfaces[iface].luid),
            String::from_utf16_lossy(&hst.interfaces[iface].name),
        );
        let i = &mut self.insts[inst as usize];
        i.registered(iface);
        let no = i.start_session(now, self.faults.session);
        self.record(
            host,
            n,
            What::Registered {
                name,
                luid,
                requested_luid: args.luid_in.unwrap_or(0),
                name_was_null: args.name.is_none(),
                addrs: self.hosts[host as usize].interfaces[iface].addrs.clone(),
            },
        );
        let hr = self.function(host, n, f, S_OK);
        // Either way is the contract's: chosen by chance.
        let rng = &mut self.rng;
        let delivery = self.faults.session.establish_delivery(|| {
            if rng.chance(0.5) {
                Delivery::CallersThread
            } else {
                Delivery::Queued
            }
        });
        match delivery {
            Delivery::CallersThread => (hr, Some(no)),
            Delivery::Queued => {
                self.schedule(now, Ev::Establish { inst, session: no });
                (hr, None)
            }
            Delivery::QueuedAfterActivate => {
                self.issue(inst, super::instance::Op::Activate);
                self.schedule(now, Ev::Establish { inst, session: no });
                (hr, None)
            }
        }
    }

    fn new_interface(&mut self, host: u8, wanted: Option<&[u16]>) -> usize {
        let h = &mut self.hosts[host as usize];
        let correct = match wanted {
            None => {
                h.default_names += 1;
                interface_name::default_name(h.default_names)
            }
            Some(w) => {
                let used: Vec<Vec<u16>> = h.interfaces.iter().map(|i| i.name.clone()).collect();
                interface_name::assign(w, &|n| used.iter().any(|u| u == n))
            }
        };
        let name = self.faults.register.interface_name(wanted, correct);
        let k = h.interfaces.len();
        let idx = (k + 1) as u8;
        let luid = 0x0083_0000_0000_0000u64 | ((host as u64 + 1) << 24) | idx as u64;
        let addrs = vec![Tid::v4(host + 1, idx, 1), Tid::v6(host + 1, idx, 1)];
        for a in &addrs {
            self.traffic.issue(*a);
        }
        self.hosts[host as usize].interfaces.push(Interface {
            luid,
            name,
            owner: None,
            addrs,
            removed: Vec::new(),
            down: Vec::new(),
            index: idx,
        });
        k
    }

    /// Deregister's bookkeeping. Returns the HRESULT and, if TERMINATE must
    /// be delivered on the caller's thread first, the session.
    pub(crate) fn deregister(&mut self, inst: u32) -> (i32, Option<u32>) {
        self.mark(inst);
        let f = PlatformFn::CPNatfwtDeregisterProviderInstance;
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        if let Some(s) = self.insts[inst as usize].session_mut() {
            // SESS-3: inside ESTABLISH, deferred until it returns.
            let effects = s.step(Input::Deregister);
            if effects.contains(Effect::Refuse) {
                return (self.function(host, n, f, E_INVALID_STATE), None);
            }
            if effects.contains(Effect::Defer) {
                self.record(
                    host,
                    n,
                    What::Note {
                        text: "Deregister inside ESTABLISH: deferred until it returns".into(),
                    },
                );
                return (self.function(host, n, f, S_OK), None);
            }
        }
        if self.insts[inst as usize].life() != Life::Registered {
            self.violate(
                id::LIFE_6,
                host,
                n,
                Some(f.name()),
                "Deregister called on an instance that is not registered".into(),
            );
            return (self.function(host, n, f, E_INVALID_STATE), None);
        }
        if let Some(k) = self.insts[inst as usize].deregistered() {
            self.hosts[host as usize].interfaces[k].owner = None;
        }
        let i = &mut self.insts[inst as usize];
        let terminate = match i.session() {
            Some(s) if s.live() => Some(s.no()),
            _ => None,
        };
        if terminate.is_some() {
            self.end_session_quietly(inst, Reason::ProviderRequest, "the provider deregistered");
        } else {
            self.insts[inst as usize].drop_session();
        }
        (self.function(host, n, f, S_OK), terminate)
    }

    /// After TERMINATE(PROVIDER_REQUEST) of a Deregister was delivered.
    pub(crate) fn deregister_finished(&mut self, inst: u32, session: u32) {
        let i = &mut self.insts[inst as usize];
        if i.session().is_some_and(|s| s.no() == session) {
            i.drop_session();
        }
    }

    /// CPNatfwtDestroyProviderInstance's bookkeeping.
    pub(crate) fn destroy(&mut self, inst: u32) {
        self.mark(inst);
        let f = PlatformFn::CPNatfwtDestroyProviderInstance;
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        if let Some(s) = self.insts[inst as usize].session_mut() {
            // SESS-3: inside ESTABLISH, deferred until it returns.
            if s.step(Input::Destroy).contains(Effect::Defer) {
                self.record(
                    host,
                    n,
                    What::Note {
                        text: "Destroy inside ESTABLISH: deferred until it returns".into(),
                    },
                );
                self.function(host, n, f, S_OK);
                return;
            }
        }
        if self.insts[inst as usize].life() == Life::Registered {
            self.violate(
                id::LIFE_4,
                host,
                n,
                Some(f.name()),
                "Destroy called on a registered instance (Deregister first)".into(),
            );
            if let Some(k) = self.insts[inst as usize].iface() {
                self.hosts[host as usize].interfaces[k].owner = None;
            }
            if self.insts[inst as usize]
                .session()
                .is_some_and(|s| !s.ended())
            {
                // No TERMINATE: the session goes with the instance.
                self.end_session_quietly(
                    inst,
                    Reason::ProviderRequest,
                    "destroyed while registered",
                );
            }
        }
        self.insts[inst as usize].destroyed();
        self.function(host, n, f, S_OK);
    }
}

/// Register's arguments, already read from provider memory.
pub(crate) struct RegisterArgs {
    pub name: Option<Vec<u16>>,
    pub luid_in: Option<u64>,
    pub flags: u32,
    pub sddl: Option<String>,
}

/// Deregister on the current thread, delivering TERMINATE unlocked.
pub(crate) fn deregister_now(shared: &Arc<Shared>, inst: u32) -> i32 {
    let (hr, terminate) = shared.world.lock().deregister(inst);
    if let Some(session) = terminate {
        super::dispatch::deliver_terminate(shared, inst, session, Reason::ProviderRequest);
        shared.world.lock().deregister_finished(inst, session);
    }
    hr
}

/// Destroy on the current thread.
pub(crate) fn destroy_now(shared: &Arc<Shared>, inst: u32) {
    shared.world.lock().destroy(inst);
}

/// Register on the current thread, delivering ESTABLISH inline when
/// chosen. Returns the HRESULT and the interface's LUID.
pub(crate) fn register_now(shared: &Arc<Shared>, inst: u32, args: RegisterArgs) -> (i32, u64) {
    let (hr, inline, luid) = {
        let mut w = shared.world.lock();
        let (hr, inline) = w.register(inst, args);
        let luid = w.insts[inst as usize]
            .iface()
            .map(|k| w.hosts[w.insts[inst as usize].host() as usize].interfaces[k].luid)
            .map(|l| w.faults.register.luid_reported(l));
        (hr, inline, luid.unwrap_or(0))
    };
    if let Some(session) = inline {
        super::dispatch::deliver_establish(shared, inst, session);
    }
    shared.wake.notify_all();
    (hr, luid)
}
