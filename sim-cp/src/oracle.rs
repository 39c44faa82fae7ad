//! The platform checker: holds a platform to the C-rules by reading a trace.
//!
//! It sees only what a provider could observe (callbacks with their
//! arguments, return values of the platform's functions, how each call was
//! read), plus the few platform-side facts every trace records (timeouts,
//! shutdowns, address notifications). It never asks the engine, so the same
//! checker can judge the simulator and a real platform driven through the
//! Windows backend. A violation it reports is a *platform* bug.
//!
//! It reads the events once, in order ([`Checker`] takes them one at a
//! time), keeping per instance and per call only what a later event can
//! be judged against: its cost is linear in the trace. Events are taken
//! in trace order, which is step order in every trace a recorder makes.
//!
//! REG-9 (strings never written) is seen at the ABI edge: the recorder (the
//! simulator's C functions, the native bridge) compares the caller's
//! strings before and after Register and records `ArgsWritten` when they
//! changed.

use crate::abi::{
    CPNATFWT_SESSION_TERMINATION_REASON as Reason, E_INVALID_STATE, E_PENDING_IO, S_OK,
};
use crate::config::Callback;
use crate::fxhash::{FxHashMap as HashMap, FxHashSet};
use crate::rules::{id, RuleId};
use crate::time::Nanos;
use crate::trace::{Event, PlatformFn, Trace, What};
use crate::transport_id::Tid;
use crate::violation::Violation;
use std::collections::BTreeSet;

#[derive(Default)]
struct Inst {
    registered: bool,
    failed_register: bool,
    /// ESTABLISH is running.
    establishing: bool,
    established: bool,
    terminated: bool,
    active: bool,
    /// Its TRANSITION_ACTIVE completed with S_OK before its callback
    /// returned: it may indicate already (decision `early-success`).
    reported_active: bool,
    transition: Option<u32>,
    transitions: u32,
    /// What should end the session, by the first observable cause.
    cause: Option<Reason>,
    /// A TRANSITION_ACTIVE failed: TERMINATE must follow (STATE-2).
    failed_activation: Option<u64>,
    /// A call timed out: TERMINATE(PROVIDER_TIMEOUT) must follow (TIME-2).
    timed_out: Option<u64>,
    added: BTreeSet<Tid>,
    removed: BTreeSet<Tid>,
    reached: BTreeSet<Tid>,
    pending_indications: u32,
    name: Option<String>,
}

impl Inst {
    /// The name this instance holds as a registered interface, if any.
    fn registered_name(&self) -> Option<&str> {
        self.name.as_deref().filter(|_| self.registered)
    }
}

/// The instances seen, by (host, number). Recorders number a host's
/// instances 1, 2, 3…, so each host's are kept in a vector indexed by
/// number (no hashing per event); a number of `DENSE` or more goes to a
/// map instead. Where they are iterated, the order does not matter (or
/// the keys are sorted first).
#[derive(Default)]
struct Insts {
    dense: Vec<Vec<Option<Inst>>>,
    sparse: HashMap<(u8, u32), Inst>,
}

/// Instance numbers below this are kept in `Insts::dense`.
const DENSE: u32 = 1 << 12;

/// An instance's place in [`Insts`], as `HashMap::entry` gives it.
struct InstEntry<'a> {
    insts: &'a mut Insts,
    key: (u8, u32),
}

impl<'a> InstEntry<'a> {
    fn or_default(self) -> &'a mut Inst {
        let (host, n) = self.key;
        if n >= DENSE {
            return self.insts.sparse.entry(self.key).or_default();
        }
        let (host, n) = (usize::from(host), n as usize);
        let dense = &mut self.insts.dense;
        if dense.len() <= host {
            dense.resize_with(host + 1, Vec::new);
        }
        let row = &mut dense[host];
        if row.len() <= n {
            row.resize_with(n + 1, || None);
        }
        row[n].get_or_insert_with(Inst::default)
    }
}

impl Insts {
    fn entry(&mut self, key: (u8, u32)) -> InstEntry<'_> {
        InstEntry { insts: self, key }
    }

    fn get(&self, key: &(u8, u32)) -> Option<&Inst> {
        if key.1 >= DENSE {
            return self.sparse.get(key);
        }
        self.dense
            .get(usize::from(key.0))?
            .get(key.1 as usize)?
            .as_ref()
    }

    /// Every instance with its key.
    fn iter(&self) -> impl Iterator<Item = ((u8, u32), &Inst)> {
        let dense = self.dense.iter().enumerate().flat_map(|(h, row)| {
            row.iter()
                .enumerate()
                .filter_map(move |(n, i)| Some(((h as u8, n as u32), i.as_ref()?)))
        });
        dense.chain(self.sparse.iter().map(|(k, i)| (*k, i)))
    }

    /// Every instance of `host`, changed by `f`.
    fn each_of_host(&mut self, host: u8, mut f: impl FnMut(&mut Inst)) {
        if let Some(row) = self.dense.get_mut(usize::from(host)) {
            row.iter_mut().flatten().for_each(&mut f);
        }
        self.sparse
            .iter_mut()
            .filter(|(k, _)| k.0 == host)
            .for_each(|(_, i)| f(i));
    }

    /// The keys of `host`'s instances.
    fn keys_of_host(&self, host: u8) -> Vec<(u8, u32)> {
        self.iter()
            .filter(|(k, _)| k.0 == host)
            .map(|(k, _)| k)
            .collect()
    }
}

/// What a call's later events are judged against. One is kept for every
/// call of a run, so it is kept small (24 bytes).
struct CallInfo {
    host: u8,
    inst: u32,
    /// The call's transport ID: 1 + its index in `Checker::tids` (0: none).
    tid: u32,
    /// Which of the three statuses below are set (`EARLY`, …).
    set: u8,
    /// The status of an early completion (before the callback returned).
    early: i32,
    /// What the callback returned.
    returned: i32,
    /// The status of the call's latest normal (not early) completion.
    completed: i32,
}

const EARLY: u8 = 1;
const RETURNED: u8 = 2;
const COMPLETED: u8 = 4;
/// The entry holds a call (`BySerial` has room for calls not seen).
const PRESENT: u8 = 8;

/// The calls seen, by serial. Recorders number calls 1, 2, 3… as they
/// start them, so calls are kept in a vector indexed by serial (appended
/// to, read near its end: cache-friendly, 24 bytes a call); a serial far
/// beyond its end goes to a map instead.
#[derive(Default)]
struct BySerial {
    dense: Vec<CallInfo>,
    sparse: HashMap<u32, CallInfo>,
}

impl BySerial {
    /// How far past the end of `dense` a serial may be and still extend it.
    const REACH: usize = 4096;

    fn get(&self, serial: u32) -> Option<&CallInfo> {
        match self.dense.get(serial as usize) {
            Some(c) => (c.set & PRESENT != 0).then_some(c),
            None => self.sparse.get(&serial),
        }
    }

    fn get_mut(&mut self, serial: u32) -> Option<&mut CallInfo> {
        match self.dense.get_mut(serial as usize) {
            Some(c) => (c.set & PRESENT != 0).then_some(c),
            None => self.sparse.get_mut(&serial),
        }
    }

    fn insert(&mut self, serial: u32, mut info: CallInfo) {
        info.set |= PRESENT;
        let k = serial as usize;
        if k >= self.dense.len() + Self::REACH {
            self.sparse.insert(serial, info);
            return;
        }
        while self.dense.len() <= k {
            // Serials the vector now covers leave the map.
            let next = self.dense.len() as u32;
            let moved = self.sparse.remove(&next);
            self.dense.push(moved.unwrap_or(CallInfo::ABSENT));
        }
        self.dense[k] = info;
    }
}

impl CallInfo {
    const ABSENT: CallInfo = CallInfo {
        host: 0,
        inst: 0,
        tid: 0,
        set: 0,
        early: 0,
        returned: 0,
        completed: 0,
    };
    fn key(&self) -> (u8, u32) {
        (self.host, self.inst)
    }
    fn get(&self, which: u8) -> Option<i32> {
        (self.set & which != 0).then_some(match which {
            EARLY => self.early,
            RETURNED => self.returned,
            _ => self.completed,
        })
    }
    fn put(&mut self, which: u8, status: i32) {
        self.set |= which;
        match which {
            EARLY => self.early = status,
            RETURNED => self.returned = status,
            _ => self.completed = status,
        }
    }
}

/// The platform checker, fed one event at a time: [`Checker::event`] for
/// each event of a run, in order, then [`Checker::finish`]. [`check`] does
/// this over a whole trace; the simulator's recorder does it as events are
/// recorded once a run outgrows its trace limit (`Config::trace_limit`).
pub struct Checker {
    hosts: Vec<String>,
    insts: Insts,
    calls: BySerial,
    /// The transport IDs calls were given (`CallInfo::tid` indexes it).
    tids: Vec<Tid>,
    tid_index: HashMap<Tid, u32>,
    /// Normal completions of calls not (yet) seen started, by serial.
    orphan_completions: HashMap<u32, i32>,
    issued: FxHashSet<Tid>,
    shutdown: BTreeSet<u8>,
    /// The previous event was a provider violation (explains a refusal).
    after_violation: bool,
    default_name_used: BTreeSet<(u8, String)>,
    /// Per host (by number), per interface name: how many instances hold
    /// it registered (looked up by `&str`, no copy of the name).
    names_in_use: Vec<HashMap<String, u32>>,
    /// The step and time of the last event seen.
    last: Option<(u64, Nanos)>,
    out: Vec<Violation>,
}

/// Checks every C-rule the trace can show; returns the platform's violations.
///
/// A trace that left events out (a run longer than its limit: see
/// [`crate::trace::Omitted`]) cannot be judged from what it kept; the
/// checker judged its events as they were recorded, and that verdict is
/// returned.
pub fn check(trace: &Trace) -> Vec<Violation> {
    if let Some(omitted) = &trace.omitted {
        return omitted.platform_violations.clone();
    }
    let mut c = Checker::new(trace.hosts.clone());
    for e in &trace.events {
        c.event(e);
    }
    c.finish()
}

/// A scalar copy of an instance's state, read before the flags it raises.
#[derive(Clone, Copy)]
struct Snap {
    registered: bool,
    establishing: bool,
    established: bool,
    terminated: bool,
    active: bool,
    transition: Option<u32>,
    transitions: u32,
    cause: Option<Reason>,
    failed_activation: Option<u64>,
    timed_out: Option<u64>,
}

impl Checker {
    /// A checker for a run on these hosts (indexed by `Event::host`).
    pub fn new(hosts: Vec<String>) -> Checker {
        Checker {
            hosts,
            insts: Insts::default(),
            calls: BySerial::default(),
            tids: Vec::new(),
            tid_index: HashMap::default(),
            orphan_completions: HashMap::default(),
            issued: FxHashSet::default(),
            shutdown: BTreeSet::new(),
            after_violation: false,
            default_name_used: BTreeSet::new(),
            names_in_use: Vec::new(),
            last: None,
            out: Vec::new(),
        }
    }

    /// Takes the run's next event.
    pub fn event(&mut self, e: &Event) {
        self.judge(e);
        self.after_violation = matches!(e.what, What::Violation { .. });
        self.last = Some((e.step, e.at));
    }

    /// The end of the run: what is still owed is reported at the last
    /// event's step. Returns every violation found, in the order found
    /// (what was owed at the end by host, then instance).
    pub fn finish(mut self) -> Vec<Violation> {
        self.owed_at_end();
        self.out
    }

    fn flag(&mut self, rule: RuleId, e: &Event, cb: Option<&str>, msg: String) {
        self.flag_at(rule, (e.host, e.inst), (e.step, e.at), cb, msg);
    }

    fn flag_at(
        &mut self,
        rule: RuleId,
        (host, inst): (u8, u32),
        (step, at): (u64, Nanos),
        cb: Option<&str>,
        msg: String,
    ) {
        self.out.push(Violation {
            rule,
            host: self.hosts.get(host as usize).cloned().unwrap_or_default(),
            instance: (inst != 0).then(|| crate::trace::instance_name(&self.hosts, host, inst)),
            callback: cb.map(str::to_string),
            step,
            at,
            message: msg,
        });
    }

    /// Changes an instance, keeping the index of registered names true.
    fn update_registration(&mut self, key: (u8, u32), f: impl FnOnce(&mut Inst)) {
        let i = self.insts.entry(key).or_default();
        let before = i.registered_name().map(str::to_string);
        f(i);
        let after = i.registered_name();
        if before.as_deref() == after {
            return;
        }
        let host = usize::from(key.0);
        if self.names_in_use.len() <= host {
            self.names_in_use.resize_with(host + 1, HashMap::default);
        }
        let names = &mut self.names_in_use[host];
        if let Some(name) = before {
            if let Some(n) = names.get_mut(&name) {
                *n -= 1;
                if *n == 0 {
                    names.remove(&name);
                }
            }
        }
        if let Some(name) = after {
            match names.get_mut(name) {
                Some(n) => *n += 1,
                None => {
                    names.insert(name.to_string(), 1);
                }
            }
        }
    }

    fn inst(&mut self, e: &Event) -> &mut Inst {
        self.insts.entry((e.host, e.inst)).or_default()
    }

    fn set_cause(&mut self, key: (u8, u32), r: Reason) {
        let i = self.insts.entry(key).or_default();
        if i.established && !i.terminated && i.cause.is_none() {
            i.cause = Some(r);
        }
    }

    fn judge(&mut self, e: &Event) {
        let key = (e.host, e.inst);
        match &e.what {
            What::Registered {
                name,
                luid,
                requested_luid,
                name_was_null,
                addrs,
            } => {
                self.registered(e, name, *luid, *requested_luid, *name_was_null);
                self.issued.extend(addrs.iter().copied());
            }
            What::Address { tid, added: true } => {
                self.issued.insert(*tid);
            }
            What::Function { f, hr, .. } => self.function(e, *f, *hr),
            What::ArgsWritten { f } => self.flag(
                id::REG_9,
                e,
                Some(f.name()),
                "the call wrote to the caller's friendly-name or SDDL string".into(),
            ),
            What::ProviderStart => {
                // A platform that shut down is up again for a new start.
                self.shutdown.remove(&e.host);
            }
            What::ProviderStop => {
                // The platform cleans up after a stopped provider, silently.
                self.insts.each_of_host(e.host, |i| {
                    i.failed_activation = None;
                    i.timed_out = None;
                });
            }
            What::Shutdown => {
                self.shutdown.insert(e.host);
                for k in self.insts.keys_of_host(e.host) {
                    self.set_cause(k, Reason::PlatformShutdown);
                }
            }
            What::Timeout { cb, call, .. } => {
                let lost = self.calls.get(*call).and_then(|c| {
                    (c.get(RETURNED) == Some(E_PENDING_IO))
                        .then(|| c.get(EARLY))
                        .flatten()
                });
                if let Some(status) = lost {
                    self.flag(
                        id::COMP_10,
                        e,
                        Some(cb.name()),
                        format!(
                            "call {call} was completed with 0x{status:08X} before its callback returned ERROR_IO_PENDING, yet it timed out: the completion was lost"
                        ),
                    );
                }
                // A session some earlier cause already ends keeps that
                // cause's reason (SESS-5); TIME-2 asks PROVIDER_TIMEOUT only
                // of a timeout that is the first cause (decision
                // "first-cause").
                let doomed = self.insts.get(&key).is_some_and(|i| i.cause.is_some());
                self.set_cause(key, Reason::ProviderTimeout);
                let i = self.insts.entry(key).or_default();
                if !i.terminated && i.established && !doomed {
                    i.timed_out.get_or_insert(e.step);
                }
            }
            What::CommunicationError => {
                for k in self.insts.keys_of_host(e.host) {
                    self.set_cause(k, Reason::OtherCommunicationError);
                }
            }
            What::UnseenCause { reason } => self.set_cause(key, *reason),
            What::Violation { rule, .. } if *rule == id::CRASH_1 => {
                self.set_cause(key, Reason::ProviderOtherFailure)
            }
            What::Call {
                cb,
                call,
                tid,
                remote,
                reason,
                context_delta,
                routine,
                ..
            } => self.call(
                e,
                *cb,
                *call,
                *tid,
                *remote,
                *reason,
                *context_delta,
                *routine,
            ),
            What::Return { cb, call, hr } => self.returned(e, *cb, *call, *hr),
            What::Complete {
                cb,
                call,
                status,
                early,
                ignored,
                args_clobbered,
            } => self.complete(e, *cb, *call, *status, *early, *ignored, *args_clobbered),
            What::Outcome { cb, call, ok } => self.outcome(e, *cb, *call, *ok),
            What::ProviderCompletion { .. } => {
                let i = self.inst(e);
                if i.pending_indications == 0 {
                    self.flag(id::DATA_4, e, Some("provider completion routine"), "the provider's completion routine was called more often than IndicateReceivedBuffers pended".into());
                } else {
                    i.pending_indications -= 1;
                }
            }
            _ => {}
        }
    }

    fn registered(&mut self, e: &Event, name: &str, luid: u64, requested: u64, was_null: bool) {
        let units = name.encode_utf16().count();
        if units > crate::abi::CPNATFWT_MAX_INTERFACE_NAME_LENGTH {
            self.flag(
                id::REG_3,
                e,
                Some("CPNatfwtRegisterProviderInstance"),
                format!("the interface name is {units} WCHARs long"),
            );
        }
        // Held by another registered instance of this host: by all that
        // hold it, less this one if it does.
        let holders = self
            .names_in_use
            .get(usize::from(e.host))
            .and_then(|names| names.get(name))
            .copied()
            .unwrap_or(0);
        let itself = self
            .insts
            .get(&(e.host, e.inst))
            .is_some_and(|i| i.registered_name() == Some(name));
        let in_use = holders > u32::from(itself);
        if in_use {
            let rule = if was_null { id::REG_1 } else { id::REG_2 };
            self.flag(
                rule,
                e,
                Some("CPNatfwtRegisterProviderInstance"),
                format!("the name `{name}` is already used by a registered interface on this host"),
            );
        }
        if was_null {
            let ok = name
                .strip_prefix("Microsoft Connectivity Platform Adapter #")
                .is_some_and(|n| n.parse::<u32>().is_ok());
            if !ok {
                self.flag(
                    id::REG_1,
                    e,
                    Some("CPNatfwtRegisterProviderInstance"),
                    format!("a NULL friendly name gave `{name}`"),
                );
            }
            if !self.default_name_used.insert((e.host, name.to_string())) && requested == 0 {
                self.flag(
                    id::REG_1,
                    e,
                    Some("CPNatfwtRegisterProviderInstance"),
                    format!("the default name `{name}` was handed out twice"),
                );
            }
        }
        if luid == 0 {
            self.flag(
                id::REG_4,
                e,
                Some("CPNatfwtRegisterProviderInstance"),
                "a successful Register gave LUID 0".into(),
            );
        }
        if requested != 0 && luid != requested {
            self.flag(
                id::REG_6,
                e,
                Some("CPNatfwtRegisterProviderInstance"),
                format!("asked for LUID 0x{requested:x}, got 0x{luid:x}"),
            );
        }
        let name = name.to_string();
        self.update_registration((e.host, e.inst), |i| i.name = Some(name));
    }

    fn function(&mut self, e: &Event, f: PlatformFn, hr: i32) {
        let key = (e.host, e.inst);
        match f {
            PlatformFn::CPNatfwtRegisterProviderInstance => {
                let shut = self.shutdown.contains(&e.host);
                // A failure the provider caused is preceded by its violation.
                let explained = self.after_violation;
                if hr == S_OK {
                    self.update_registration(key, |i| {
                        *i = Inst {
                            registered: true,
                            name: i.name.take(),
                            ..Inst::default()
                        }
                    });
                } else {
                    let i = self.insts.entry(key).or_default();
                    if hr == E_INVALID_STATE
                        && i.failed_register
                        && !i.registered
                        && !shut
                        && !explained
                    {
                        self.flag(
                            id::LIFE_3,
                            e,
                            Some(f.name()),
                            "Register was refused after an earlier failed Register".into(),
                        );
                    }
                    self.insts.entry(key).or_default().failed_register = true;
                }
            }
            PlatformFn::CPNatfwtDeregisterProviderInstance
                if hr != S_OK
                    && self
                        .insts
                        .get(&key)
                        .is_some_and(|i| i.establishing && i.registered && !i.terminated) =>
            {
                self.flag(
                    id::SESS_3,
                    e,
                    Some(f.name()),
                    format!(
                        "Deregister called from inside ESTABLISH was refused with 0x{hr:08X}; it may be deferred until ESTABLISH returns, not refused"
                    ),
                );
            }
            PlatformFn::CPNatfwtDeregisterProviderInstance if hr == S_OK => {
                self.update_registration(key, |i| {
                    if i.established && !i.terminated && i.cause.is_none() {
                        i.cause = Some(Reason::ProviderRequest);
                    }
                    // The provider ended the session itself: nothing is owed any more.
                    i.registered = false;
                    i.failed_activation = None;
                    i.timed_out = None;
                });
            }
            PlatformFn::CPNatfwtDestroyProviderInstance => {
                // Destroy ends any session silently: nothing is owed any more.
                self.update_registration(key, |i| {
                    i.registered = false;
                    i.failed_activation = None;
                    i.timed_out = None;
                });
            }
            PlatformFn::CPNatfwtIndicateReceivedBuffers => {
                let active = self
                    .insts
                    .get(&key)
                    .is_some_and(|i| (i.active || i.reported_active) && !i.terminated);
                if !active && (hr == S_OK || hr == E_PENDING_IO) {
                    self.flag(
                        id::STATE_3,
                        e,
                        Some(f.name()),
                        "IndicateReceivedBuffers was accepted while the instance was not active"
                            .into(),
                    );
                }
                if hr == E_PENDING_IO {
                    self.insts.entry(key).or_default().pending_indications += 1;
                }
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        e: &Event,
        cb: Callback,
        call: u32,
        tid: Option<Tid>,
        remote: Option<Tid>,
        reason: Option<Reason>,
        delta: u64,
        routine: bool,
    ) {
        let key = (e.host, e.inst);
        let name = Some(cb.name());
        if delta != 0 {
            self.flag(
                id::SESS_6,
                e,
                name,
                format!("the user context differs from Create's (xor 0x{delta:x})"),
            );
        }
        let i = {
            let i = self.insts.entry(key).or_default();
            Snap {
                registered: i.registered,
                establishing: i.establishing,
                established: i.established,
                terminated: i.terminated,
                active: i.active,
                transition: i.transition,
                transitions: i.transitions,
                cause: i.cause,
                failed_activation: i.failed_activation,
                timed_out: i.timed_out,
            }
        };
        if i.establishing {
            self.flag(
                id::SESS_2,
                e,
                name,
                "a callback started while ESTABLISH was still running".into(),
            );
        }
        match cb {
            Callback::EstablishSessionIndication => {
                if !i.registered {
                    self.flag(
                        id::SESS_1,
                        e,
                        name,
                        "ESTABLISH without a successful Register".into(),
                    );
                }
                let s = self.insts.entry(key).or_default();
                s.establishing = true;
                return;
            }
            Callback::TerminateSessionIndication => {
                if !i.established {
                    self.flag(id::SESS_4, e, name, "TERMINATE before ESTABLISH".into());
                } else if i.terminated {
                    self.flag(
                        id::SESS_4,
                        e,
                        name,
                        "TERMINATE delivered twice in one session".into(),
                    );
                }
                let expected = i.cause;
                if let Some(r) = reason {
                    match expected {
                        Some(x) if x != r => self.flag(
                            id::SESS_5,
                            e,
                            name,
                            format!("reason {r:?}, but the cause was {x:?}"),
                        ),
                        None if i.established && !i.terminated => self.flag(
                            id::SESS_5,
                            e,
                            name,
                            format!("reason {r:?} with no visible cause"),
                        ),
                        _ => {}
                    }
                    if i.timed_out.is_some() && !i.terminated && r != Reason::ProviderTimeout {
                        self.flag(
                            id::TIME_2,
                            e,
                            name,
                            format!("a call timed out but the session ended with {r:?}"),
                        );
                    }
                }
                let s = self.insts.entry(key).or_default();
                s.terminated = true;
                s.timed_out = None;
                s.failed_activation = None;
                return;
            }
            _ => {}
        }
        if !routine {
            self.flag(
                id::COMP_9,
                e,
                name,
                "no completion routine was passed".into(),
            );
        }
        if let Some(step) = i.failed_activation {
            self.flag(
                id::STATE_2,
                e,
                name,
                format!("the session went on after TRANSITION_ACTIVE failed at step {step}"),
            );
            self.insts.entry(key).or_default().failed_activation = None;
        }
        if let Some(step) = i.timed_out {
            self.flag(
                id::TIME_2,
                e,
                name,
                format!("the session went on after a call timed out at step {step}"),
            );
            self.insts.entry(key).or_default().timed_out = None;
        }
        if !i.established {
            self.flag(
                id::SESS_2,
                e,
                name,
                "a callback before ESTABLISH had returned".into(),
            );
        }
        if i.terminated {
            self.flag(id::SESS_4, e, name, "a callback after TERMINATE".into());
        }
        if let Some(t) = tid {
            if !self.issued.contains(&t) {
                self.flag(
                    id::TID_1,
                    e,
                    name,
                    format!("transport ID {t} was not issued by the platform"),
                );
            }
        }
        match cb {
            Callback::TransitionActive | Callback::TransitionDormant => {
                let to_active = cb == Callback::TransitionActive;
                if i.transition.is_some() {
                    self.flag(
                        id::STATE_4,
                        e,
                        name,
                        "a transition while another is outstanding".into(),
                    );
                } else if i.active == to_active {
                    self.flag(
                        id::STATE_4,
                        e,
                        name,
                        format!(
                            "{} while already {}",
                            cb.name(),
                            if to_active { "active" } else { "dormant" }
                        ),
                    );
                }
                if i.transitions == 0 && !to_active {
                    self.flag(
                        id::STATE_1,
                        e,
                        name,
                        "the first transition after ESTABLISH was TRANSITION_DORMANT".into(),
                    );
                }
                let s = self.insts.entry(key).or_default();
                s.transition = Some(call);
                s.transitions += 1;
            }
            _ => {
                if !i.active || i.transition.is_some() {
                    self.flag(
                        id::STATE_5,
                        e,
                        name,
                        "called while the instance was not active".into(),
                    );
                }
                if cb == Callback::SendBuffers {
                    let (l, r) = (
                        tid.unwrap_or(Tid::v4(0, 0, 0)),
                        remote.unwrap_or(Tid::v4(0, 0, 0)),
                    );
                    let (removed, added, reached) =
                        self.insts.get(&key).map_or((false, false, false), |i| {
                            (
                                i.removed.contains(&l),
                                i.added.contains(&l),
                                i.reached.contains(&r),
                            )
                        });
                    if removed && !added {
                        self.flag(
                            id::TID_5,
                            e,
                            name,
                            format!("sent from {l}, which was removed"),
                        );
                    } else if !added {
                        self.flag(
                            id::TID_7,
                            e,
                            name,
                            format!("sent from {l}, which was never added"),
                        );
                    }
                    if !reached {
                        self.flag(
                            id::TID_7,
                            e,
                            name,
                            format!("sent to {r}, which no REACH succeeded for in this session"),
                        );
                    }
                }
            }
        }
        // A normal completion already seen for this serial still counts.
        let completed = match self.calls.get(call) {
            Some(old) => old.get(COMPLETED),
            None => self.orphan_completions.remove(&call),
        };
        let tid = match tid {
            Some(t) => {
                1 + *self.tid_index.entry(t).or_insert_with(|| {
                    self.tids.push(t);
                    self.tids.len() as u32 - 1
                })
            }
            None => 0,
        };
        let mut info = CallInfo {
            host: key.0,
            inst: key.1,
            tid,
            set: 0,
            early: 0,
            returned: 0,
            completed: 0,
        };
        if let Some(status) = completed {
            info.put(COMPLETED, status);
        }
        self.calls.insert(call, info);
    }

    fn returned(&mut self, e: &Event, cb: Callback, call: u32, hr: Option<i32>) {
        let key = (e.host, e.inst);
        if cb == Callback::EstablishSessionIndication {
            let i = self.insts.entry(key).or_default();
            i.establishing = false;
            i.established = true;
            i.active = false;
            // A shutdown that came while ESTABLISH was on its way ends the
            // session as soon as it is established.
            if self.shutdown.contains(&e.host) {
                self.set_cause(key, Reason::PlatformShutdown);
            }
            return;
        }
        if cb == Callback::TransitionActive {
            self.insts.entry(key).or_default().reported_active = false;
        }
        if let (Some(c), Some(hr)) = (self.calls.get_mut(call), hr) {
            c.put(RETURNED, hr);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn complete(
        &mut self,
        e: &Event,
        cb: Callback,
        call: u32,
        status: i32,
        early: bool,
        ignored: bool,
        clobbered: bool,
    ) {
        let terminated = self
            .calls
            .get(call)
            .and_then(|c| self.insts.get(&c.key()))
            .is_some_and(|i| i.terminated);
        if clobbered {
            let rule = if cb == Callback::SendBuffers {
                id::DATA_6
            } else {
                id::COMP_8
            };
            self.flag(
                rule,
                e,
                Some(cb.name()),
                format!("the arguments of pended call {call} changed before it completed"),
            );
        }
        if terminated && !ignored && !early {
            self.flag(
                id::COMP_11,
                e,
                Some(cb.name()),
                format!("call {call} completed after TERMINATE was not ignored"),
            );
        }
        if early && cb == Callback::TransitionActive && status == S_OK {
            self.insts
                .entry((e.host, e.inst))
                .or_default()
                .reported_active = true;
        }
        match self.calls.get_mut(call) {
            Some(c) if early => c.put(EARLY, status),
            Some(c) => c.put(COMPLETED, status),
            None if !early => {
                self.orphan_completions.insert(call, status);
            }
            None => {}
        }
    }

    fn outcome(&mut self, e: &Event, cb: Callback, call: u32, ok: bool) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let key = c.key();
        let tid = c.tid.checked_sub(1).map(|k| self.tids[k as usize]);
        let (returned, early) = (c.get(RETURNED), c.get(EARLY));
        let expected = match (returned, early) {
            (Some(hr), _) if hr != E_PENDING_IO => Some(hr == S_OK),
            (_, Some(st)) => Some(st == S_OK),
            _ => None,
        };
        let pended_early = returned == Some(E_PENDING_IO) && early.is_some();
        // The status of a normal pended completion: its latest Complete event.
        let expected = expected.or(c.get(COMPLETED).map(|s| s == S_OK));
        if let Some(exp) = expected {
            if exp != ok {
                let rule = if pended_early {
                    id::COMP_10
                } else {
                    id::COMP_1
                };
                self.flag(
                    rule,
                    e,
                    Some(cb.name()),
                    format!(
                        "call {call} was read as {} but its result said {}",
                        if ok { "success" } else { "failure" },
                        if exp { "success" } else { "failure" }
                    ),
                );
            }
        }
        let i = self.insts.entry(key).or_default();
        match cb {
            Callback::TransitionActive => {
                i.transition = None;
                if ok {
                    i.active = true;
                } else {
                    i.failed_activation.get_or_insert(e.step);
                    if i.cause.is_none() && !i.terminated {
                        i.cause = Some(Reason::ProviderOtherFailure);
                    }
                }
            }
            Callback::TransitionDormant => {
                i.transition = None;
                if ok {
                    i.active = false;
                    i.reached.clear();
                }
            }
            Callback::AddTransportId if ok => {
                i.added.extend(tid);
                if let Some(t) = tid {
                    i.removed.remove(&t);
                }
            }
            Callback::RemoveTransportId => {
                if let Some(t) = tid {
                    i.added.remove(&t);
                    i.removed.insert(t);
                }
            }
            Callback::ReachTransportId if ok => i.reached.extend(tid),
            _ => {}
        }
    }

    /// What the run still owed at its end, reported at its last event's
    /// step, instance by instance (host, then instance number).
    fn owed_at_end(&mut self) {
        let Some(last) = self.last else { return };
        type Owed = ((u8, u32), Option<u64>, Option<u64>, u32);
        let mut pending: Vec<Owed> = self
            .insts
            .iter()
            .map(|(k, i)| (k, i.failed_activation, i.timed_out, i.pending_indications))
            .collect();
        pending.sort_unstable_by_key(|p| p.0);
        for (key, failed, timed, ind) in pending {
            if failed.is_some() {
                self.flag_at(
                    id::STATE_2,
                    key,
                    last,
                    Some("TRANSITION_ACTIVE"),
                    "TRANSITION_ACTIVE failed but the session was never terminated".into(),
                );
            }
            if timed.is_some() {
                self.flag_at(
                    id::TIME_2,
                    key,
                    last,
                    None,
                    "a call timed out but the session was never terminated".into(),
                );
            }
            if ind > 0 {
                self.flag_at(
                    id::DATA_4,
                    key,
                    last,
                    Some("provider completion routine"),
                    format!(
                        "{ind} pended indication(s) never got the provider's completion routine"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BySerial, CallInfo, RETURNED};
    use std::collections::HashMap;

    /// Calls by serial behave as a map whatever order serials come in:
    /// in order, with gaps, far apart, back again.
    #[test]
    fn calls_by_serial_behave_as_a_map() {
        let mut rng = crate::rng::Rng::new(9);
        let mut calls = BySerial::default();
        let mut model: HashMap<u32, u32> = HashMap::new();
        let mut next = 1u32;
        for k in 0..20_000u32 {
            let serial = match rng.below(10) {
                0 => rng.below(u32::MAX as u64) as u32,
                1 => next + 3000 + rng.below(3000) as u32,
                2 => rng.below(next as u64 + 1) as u32,
                _ => {
                    next += 1;
                    next
                }
            };
            let mut info = CallInfo {
                inst: k,
                ..CallInfo::ABSENT
            };
            info.put(RETURNED, k as i32);
            calls.insert(serial, info);
            model.insert(serial, k);
            let probe = rng.below(next as u64 + 8000) as u32;
            for s in [serial, probe] {
                let got = calls.get(s).map(|c| (c.inst, c.get(RETURNED)));
                assert_eq!(
                    got,
                    model.get(&s).map(|&k| (k, Some(k as i32))),
                    "serial {s}"
                );
            }
        }
        for (&s, &k) in &model {
            assert_eq!(calls.get_mut(s).map(|c| c.inst), Some(k));
        }
    }
}
