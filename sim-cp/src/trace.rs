//! The trace: every event of a run, in order, serialisable to JSON.
//!
//! A trace is what replays compare, what reports draw, and what the platform
//! checker (`oracle`) reads to hold a platform to the C-rules. Events carry no
//! addresses or wall-clock times, so a deterministic run's trace is a pure
//! function of its seed.

use crate::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use crate::config::Callback;
use crate::rules::RuleId;
use crate::time::Nanos;
use crate::transport_id::Tid;
use crate::violation::Violation;
use serde::{Deserialize, Serialize};

/// A function the provider calls on the platform.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum PlatformFn {
    CPNatfwtCreateProviderInstance,
    CPNatfwtRegisterProviderInstance,
    CPNatfwtDeregisterProviderInstance,
    CPNatfwtDestroyProviderInstance,
    CPNatfwtIndicateReceivedBuffers,
    /// The platform's completion routine, called by the provider.
    PlatformCompletionRoutine,
}

impl PlatformFn {
    pub fn name(self) -> &'static str {
        match self {
            PlatformFn::CPNatfwtCreateProviderInstance => "CPNatfwtCreateProviderInstance",
            PlatformFn::CPNatfwtRegisterProviderInstance => "CPNatfwtRegisterProviderInstance",
            PlatformFn::CPNatfwtDeregisterProviderInstance => "CPNatfwtDeregisterProviderInstance",
            PlatformFn::CPNatfwtDestroyProviderInstance => "CPNatfwtDestroyProviderInstance",
            PlatformFn::CPNatfwtIndicateReceivedBuffers => "CPNatfwtIndicateReceivedBuffers",
            PlatformFn::PlatformCompletionRoutine => "completion routine",
        }
    }
    /// Short label for diagrams.
    pub fn short(self) -> &'static str {
        match self {
            PlatformFn::CPNatfwtCreateProviderInstance => "Create",
            PlatformFn::CPNatfwtRegisterProviderInstance => "Register",
            PlatformFn::CPNatfwtDeregisterProviderInstance => "Deregister",
            PlatformFn::CPNatfwtDestroyProviderInstance => "Destroy",
            PlatformFn::CPNatfwtIndicateReceivedBuffers => "Indicate",
            PlatformFn::PlatformCompletionRoutine => "complete",
        }
    }
}

/// The activity state of a session.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Dormant,
    Active,
}

/// What happened.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// The provider was started or stopped on a host.
    ProviderStart,
    ProviderStop,
    /// The platform called a callback. `call` is the call serial (0 for the
    /// two indications); `user_context` is what the callback received.
    Call {
        cb: Callback,
        call: u32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        tid: Option<Tid>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        remote: Option<Tid>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        bytes: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<Reason>,
        /// The user context passed, XOR the one given to Create: 0 when
        /// intact (SESS-6). Kept as a difference so traces hold no addresses.
        #[serde(skip_serializing_if = "is_zero64", default)]
        context_delta: u64,
        /// Whether the platform passed a completion routine (COMP-9).
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        routine: bool,
    },
    /// A callback returned (hr is absent for the two VOID indications).
    Return {
        cb: Callback,
        call: u32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        hr: Option<i32>,
    },
    /// A pended call was completed through the platform's routine.
    Complete {
        cb: Callback,
        call: u32,
        status: i32,
        /// The completion arrived before the callback returned (COMP-10).
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        early: bool,
        /// It arrived after the session ended and was ignored (COMP-11).
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        ignored: bool,
        /// The call's pointer arguments were intact at completion (COMP-8, DATA-6).
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        args_clobbered: bool,
    },
    /// How the platform read a finished call: success or failure (COMP-1).
    Outcome {
        cb: Callback,
        call: u32,
        ok: bool,
    },
    /// The provider called a platform function and got `hr`.
    Function {
        f: PlatformFn,
        hr: i32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
    },
    /// The platform called the provider's completion routine of an Indicate.
    ProviderCompletion {
        status: i32,
    },
    /// The caller's string arguments of `f` (friendly name, SDDL) were
    /// changed by the call (REG-9), as seen at the ABI edge.
    ArgsWritten {
        f: PlatformFn,
    },
    /// A registration succeeded: the interface's name and LUID.
    Registered {
        name: String,
        luid: u64,
        requested_luid: u64,
        name_was_null: bool,
        addrs: Vec<Tid>,
    },
    /// An address notification changed an interface's addresses.
    Address {
        tid: Tid,
        added: bool,
    },
    /// The session's activity changed.
    State {
        to: Activity,
    },
    /// The platform ended the session (TERMINATE follows).
    SessionEnded {
        reason: Reason,
        cause: String,
    },
    /// The platform noticed a timeout of call `call`.
    Timeout {
        cb: Callback,
        call: u32,
        excused: bool,
    },
    /// The platform shut down on this host.
    Shutdown,
    /// An infrastructure fault on this host ends its sessions.
    CommunicationError,
    /// A native platform is about to end this instance's session for a
    /// cause a provider cannot see (its own shutdown, an infrastructure
    /// fault): recorded by the native backend's bridge just before the
    /// TERMINATE, and taken by the platform checker as the session's cause.
    UnseenCause {
        reason: Reason,
    },
    /// An application sent a datagram (`id` names it in later events).
    AppSend {
        id: u32,
        to: Tid,
        bytes: u32,
    },
    /// An application received a datagram.
    AppReceive {
        id: u32,
        from: Tid,
        to: Tid,
        bytes: u32,
    },
    /// The platform dropped an application datagram (no route, session ended…).
    AppDrop {
        id: u32,
        why: String,
    },
    /// An application started or stopped listening.
    Listen {
        on: bool,
    },
    /// A scenario or harness event (address notification, partition, …).
    Note {
        text: String,
    },
    /// A rule was broken; `Violation` has the details.
    Violation {
        rule: RuleId,
        message: String,
    },
}

/// One event.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Event {
    pub step: u64,
    pub at: Nanos,
    pub host: u8,
    /// The instance's per-host number (0: none).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub inst: u32,
    #[serde(flatten)]
    pub what: What,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_zero64(v: &u64) -> bool {
    *v == 0
}

/// A whole run's trace.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct Trace {
    /// Host names, indexed by `Event::host`.
    pub hosts: Vec<String>,
    pub events: Vec<Event>,
    /// Set only when the run recorded more events than its trace keeps
    /// (`Config::trace_limit`); absent from the JSON otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<Omitted>,
}

/// What a trace that outgrew its limit left out: a run's first events and
/// its last ones are kept, with a gap between them. Since the platform
/// checker cannot judge a gap, it judged every event as it was recorded,
/// and its verdict travels with the trace ([`crate::oracle::check`]
/// returns it).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Omitted {
    /// Where the gap is: the index in `events` of the first event after it.
    pub at: usize,
    /// How many events were recorded in the gap and left out.
    pub events: u64,
    /// What the platform checker found over every event of the run.
    pub platform_violations: Vec<Violation>,
}

impl Trace {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a trace always serialises")
    }
    pub fn from_json(s: &str) -> Result<Trace, serde_json::Error> {
        serde_json::from_str(s)
    }
    /// `A#1` for host 0 instance 1.
    pub fn instance_name(&self, host: u8, inst: u32) -> String {
        instance_name(&self.hosts, host, inst)
    }
    /// A 64-bit digest of the trace (FNV-1a over its JSON), for quick comparisons.
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in serde_json::to_vec(self).unwrap_or_default() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        h
    }
}

/// Where a run's events and violations go: the step counter that orders
/// them, the trace, and the violations found, in one place that the
/// engine's parts borrow (`&mut Recorder`) to write what they saw.
///
/// Events are kept compact ([`Packed`], 32 bytes, no heap for the common
/// ones) and turned into [`Event`]s when the trace is taken or looked at.
/// The trace is kept whole up to `limit` events. Past the limit the
/// recorder keeps the first `limit / 2` events and, in the rest of the
/// limit, a window of the latest ones (a ring: memory stays at `limit`
/// events); those in between are dropped. From the moment the limit is
/// reached, every event is fed to the platform checker as it comes (the
/// events kept so far first), so a run of any length is judged on all of
/// its events.
pub(crate) struct Recorder {
    /// Events recorded so far (traced or not): the last event's step.
    step: u64,
    /// Whether events are kept (`Config::trace`); the step counts either way.
    on: bool,
    violations: Vec<Violation>,
    hosts: Vec<String>,
    /// The kept events, in arrival order (past the limit: the head, then
    /// the window as a ring).
    store: Store,
    /// The step of the first event kept: since every step is kept while
    /// the trace is on, the `k`th event to arrive has step `first + k`.
    first: u64,
    /// Events kept at most (0: no limit).
    limit: usize,
    /// Past the limit: where in the window (`limit / 2..limit`) its
    /// oldest event is, which the next event replaces.
    oldest: usize,
    omitted: u64,
    /// Past the limit: the platform checker, fed each event as it comes.
    checker: Option<crate::oracle::Checker>,
}

impl Recorder {
    /// A recorder for a run on `hosts`, keeping its trace if `on`, at most
    /// `limit` events of it (0: no limit).
    pub fn new(hosts: Vec<String>, on: bool, limit: u64) -> Recorder {
        Recorder {
            step: 0,
            on,
            violations: Vec::new(),
            hosts,
            store: Store::default(),
            first: 1,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            oldest: 0,
            omitted: 0,
            checker: None,
        }
    }

    /// The run's host names.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Records the run's next event, at virtual time `at`, on host `host`
    /// (instance `inst`, 0 for none); the step is counted even when the
    /// trace is off.
    pub fn record(&mut self, at: Nanos, host: u8, inst: u32, what: What) {
        self.step += 1;
        if self.on {
            self.push(at, host, inst, what);
        }
    }

    /// [`record`](Self::record), inlined: for the events of every callback
    /// (the call, its return, its outcome) and of every datagram (its
    /// application's send and receipt), whose compact form is then built
    /// straight from the fields at the call site.
    #[inline(always)]
    pub fn record_hot(&mut self, at: Nanos, host: u8, inst: u32, what: What) {
        debug_assert!(matches!(
            what,
            What::Call { .. }
                | What::Return { .. }
                | What::Outcome { .. }
                | What::AppSend { .. }
                | What::AppReceive { .. }
        ));
        // These kinds own no heap memory: where the event is not handed on,
        // there is nothing to drop (no call to `What`'s drop glue).
        let what = std::mem::ManuallyDrop::new(what);
        self.step += 1;
        if !self.on {
            return;
        }
        if self.checker.is_none()
            && (self.limit == 0 || self.store.len() < self.limit)
            && self.store.push_hot(at, host, inst, &what)
        {
            return;
        }
        self.push(at, host, inst, std::mem::ManuallyDrop::into_inner(what));
    }

    /// Records a platform function's call that passed a datagram's bytes
    /// (`IndicateReceivedBuffers`): the event is `What::Function` with the
    /// detail `64 bytes FROM -> TO`, kept compact and written out only
    /// when the trace is read.
    pub fn record_indication(&mut self, at: Nanos, host: u8, inst: u32, i: Indication) {
        self.step += 1;
        if !self.on {
            return;
        }
        if self.checker.is_none() && (self.limit == 0 || self.store.len() < self.limit) {
            let (b, lit_b) = self.store.tid(i.from);
            let (c, lit_c) = self.store.tid(i.to);
            self.store.push(Packed {
                at,
                inst,
                host,
                kind: Kind::Indication,
                x: i.f as u8,
                y: lit_b | lit_c << 1,
                a: i.hr as u32,
                b,
                c,
                d: i.len,
            });
            return;
        }
        self.push(at, host, inst, i.what());
    }

    /// Records a violation of `rule` found at `at` on `host` (instance
    /// `inst`, 0 for none; in `callback`, the callback or function it
    /// happened in): an event in the trace and, located, in the list.
    pub fn violate(
        &mut self,
        at: Nanos,
        rule: RuleId,
        host: u8,
        inst: u32,
        callback: Option<&str>,
        message: String,
    ) {
        self.record(
            at,
            host,
            inst,
            What::Violation {
                rule,
                message: message.clone(),
            },
        );
        let hosts = self.hosts();
        let instance = (inst != 0).then(|| instance_name(hosts, host, inst));
        let host = hosts.get(host as usize).cloned().unwrap_or_default();
        self.violations.push(Violation {
            rule,
            host,
            instance,
            callback: callback.map(str::to_string),
            step: self.step,
            at,
            message,
        });
    }

    /// The violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The violations found so far (the list starts afresh).
    pub fn take_violations(&mut self) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    /// Keeps the run's next event (its step is `self.step`).
    #[inline(never)]
    fn push(&mut self, at: Nanos, host: u8, inst: u32, what: What) {
        let head = self.limit / 2;
        if let Some(checker) = &mut self.checker {
            let e = Event {
                step: self.step,
                at,
                host,
                inst,
                what,
            };
            checker.event(&e);
            let p = self.store.pack(e.at, e.host, e.inst, e.what);
            let old = self.store.set(head + self.oldest, p);
            self.store.forget(&old);
            self.oldest = (self.oldest + 1) % (self.limit - head);
            self.omitted += 1;
            return;
        }
        let len = self.store.len();
        if self.limit == 0 || len < self.limit {
            let p = self.store.pack(at, host, inst, what);
            self.store.push(p);
            return;
        }
        // The limit is reached: judge what was kept, then go on with every
        // event as it comes.
        let mut checker = crate::oracle::Checker::new(self.hosts.clone());
        for k in 0..len {
            checker.event(&self.store.event(k, self.first + k as u64));
        }
        self.checker = Some(checker);
        self.push(at, host, inst, what);
    }

    /// The kept events' places in the store, in order, with their steps.
    fn order(&self) -> impl Iterator<Item = (usize, u64)> + use<> {
        let len = self.store.len();
        let first = self.first;
        let (head, window, oldest, arrived) = if self.checker.is_some() {
            let head = self.limit / 2;
            let window = self.limit - head;
            (head, window, self.oldest, self.limit as u64 + self.omitted)
        } else {
            (len, 0, 0, len as u64)
        };
        let heads = (0..head).map(move |k| (k, first + k as u64));
        let windows = (0..window).map(move |i| {
            (
                head + (oldest + i) % window,
                first + arrived - window as u64 + i as u64,
            )
        });
        heads.chain(windows)
    }

    fn omitted(&self, platform_violations: Vec<Violation>) -> Option<Omitted> {
        self.checker.as_ref().map(|_| Omitted {
            at: self.limit / 2,
            events: self.omitted,
            platform_violations,
        })
    }

    /// A copy of the trace so far, the recorder left as it is: how a run
    /// that cannot finish is looked at (`crate::observe`). Past the limit,
    /// the window is put in order; what the checker found is not included.
    pub fn snapshot(&self) -> Trace {
        let events = self
            .order()
            .map(|(k, step)| self.store.event(k, step))
            .collect();
        Trace {
            hosts: self.hosts.clone(),
            events,
            omitted: self.omitted(Vec::new()),
        }
    }

    /// The trace of the run so far (the recorder starts afresh). The
    /// compact store is released as it is read.
    pub fn take(&mut self) -> Trace {
        let first = self.first;
        let mut events = Vec::new();
        if self.checker.is_some() {
            // The window in order, oldest first (a rotation by three
            // reversals), then the head's steps and the window's.
            let head = self.limit / 2;
            let window = self.limit - head;
            let split = head + self.oldest;
            self.store.reverse(head, split);
            self.store.reverse(split, self.limit);
            self.store.reverse(head, self.limit);
            let arrived = self.limit as u64 + self.omitted;
            let step = |k: usize| {
                if k < head {
                    first + k as u64
                } else {
                    first + arrived - window as u64 + (k - head) as u64
                }
            };
            self.store.drain(step, &mut events);
        } else {
            self.store.drain(|k| first + k as u64, &mut events);
        }
        let checker = self.checker.take();
        let omitted = checker.map(|c| Omitted {
            at: self.limit / 2,
            events: self.omitted,
            platform_violations: c.finish(),
        });
        self.store = Store::default();
        self.first = self.step + 1;
        self.oldest = 0;
        self.omitted = 0;
        Trace {
            hosts: self.hosts.clone(),
            events,
            omitted,
        }
    }
}

/// A kept event: 32 bytes, no heap. The common events are held whole in
/// their fields (transport IDs by their number in [`Store::tids`]); an
/// event with a string or a list (registration, session end, note,
/// violation, a function's detail…) or an unusual value (a wrong user
/// context) is kept aside in [`Store::side`]. The step is not kept: it
/// follows from the event's place (see [`Recorder::first`]).
#[derive(Clone, Copy)]
struct Packed {
    at: Nanos,
    inst: u32,
    host: u8,
    kind: Kind,
    /// The callback, function, activity or reason.
    x: u8,
    /// Flags (which optional fields are present, booleans).
    y: u8,
    a: u32,
    b: u32,
    c: u32,
    d: u32,
}

const _: () = assert!(std::mem::size_of::<Packed>() == 32);

impl Packed {
    /// An event of `host`'s instance `inst` at `at`, its kind and fields
    /// not filled in yet.
    #[inline(always)]
    fn blank(at: Nanos, host: u8, inst: u32) -> Packed {
        Packed {
            at,
            inst,
            host,
            kind: Kind::Side,
            x: 0,
            y: 0,
            a: 0,
            b: 0,
            c: 0,
            d: 0,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    ProviderStart,
    ProviderStop,
    Call,
    Return,
    Complete,
    Outcome,
    Function,
    ProviderCompletion,
    ArgsWritten,
    Address,
    State,
    Timeout,
    Shutdown,
    CommunicationError,
    UnseenCause,
    AppSend,
    AppReceive,
    Listen,
    /// A function with a datagram's bytes ([`Indication`]).
    Indication,
    /// Kept aside: `a` is its place in `Store::side`.
    Side,
}

/// A platform function's call that passed a datagram's bytes, as
/// [`Recorder::record_indication`] records it.
pub(crate) struct Indication {
    pub f: PlatformFn,
    pub hr: i32,
    /// The datagram's length, its sender and its receiver.
    pub len: u32,
    pub from: Tid,
    pub to: Tid,
}

impl Indication {
    fn what(&self) -> What {
        What::Function {
            f: self.f,
            hr: self.hr,
            detail: Some(bytes_detail(self.len, self.from, self.to)),
        }
    }
}

/// `64 bytes 10.0.0.2 -> 10.0.0.1`: an indication's detail in the trace,
/// written into one allocation of the right size.
fn bytes_detail(len: u32, from: Tid, to: Tid) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(96);
    write!(s, "{len} bytes {from} -> {to}").expect("writing to a String");
    s
}

/// The indications' details as a trace is taken: each address is written
/// out once (a run indicates between a few addresses, many times), and
/// each detail is put together from the length's digits and those texts,
/// in one allocation. The text is exactly [`bytes_detail`]'s.
#[derive(Default)]
struct Details {
    /// (an address's packed code and whether it is literal, its text).
    tids: Vec<((u32, u8), String)>,
    /// Where each code is in `tids`, once there are more than
    /// [`Details::SCAN`] (a run with thousands of addresses would otherwise
    /// make reading its trace quadratic).
    index: crate::fxhash::FxHashMap<(u32, u8), usize>,
}

impl Details {
    /// Up to this many addresses are found by a scan.
    const SCAN: usize = 16;

    /// The text of the address packed as `code` (`lit`: its bytes).
    fn tid(&mut self, tids: &[Tid], code: u32, lit: u8) -> usize {
        let key = (code, lit);
        let found = if self.tids.len() <= Self::SCAN {
            self.tids.iter().position(|(c, _)| *c == key)
        } else {
            self.index.get(&key).copied()
        };
        if let Some(k) = found {
            return k;
        }
        let tid = if lit != 0 {
            Tid::from_bytes(&code.to_be_bytes()).expect("four bytes")
        } else {
            tids[code as usize]
        };
        self.tids.push((key, tid.to_string()));
        let k = self.tids.len() - 1;
        if self.tids.len() == Self::SCAN + 1 {
            self.index = self
                .tids
                .iter()
                .enumerate()
                .map(|(k, (c, _))| (*c, k))
                .collect();
        } else if self.tids.len() > Self::SCAN {
            self.index.insert(key, k);
        }
        k
    }

    fn what(&mut self, p: &Packed, tids: &[Tid]) -> What {
        let from = self.tid(tids, p.b, p.y & 1);
        let to = self.tid(tids, p.c, p.y >> 1 & 1);
        let (from, to) = (&self.tids[from].1, &self.tids[to].1);
        // The length's decimal digits, from the last.
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut n = p.d;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = std::str::from_utf8(&digits[at..]).expect("ASCII digits");
        let mut detail =
            String::with_capacity(len.len() + " bytes ".len() + from.len() + 4 + to.len());
        detail.push_str(len);
        detail.push_str(" bytes ");
        detail.push_str(from);
        detail.push_str(" -> ");
        detail.push_str(to);
        What::Function {
            f: PLATFORM_FNS[p.x as usize],
            hr: p.a as i32,
            detail: Some(detail),
        }
    }
}

/// No transport ID (`Option<Tid>::None`).
const NO_TID: u32 = u32::MAX;

const PLATFORM_FNS: [PlatformFn; 6] = [
    PlatformFn::CPNatfwtCreateProviderInstance,
    PlatformFn::CPNatfwtRegisterProviderInstance,
    PlatformFn::CPNatfwtDeregisterProviderInstance,
    PlatformFn::CPNatfwtDestroyProviderInstance,
    PlatformFn::CPNatfwtIndicateReceivedBuffers,
    PlatformFn::PlatformCompletionRoutine,
];

const REASONS: [Reason; 5] = [
    Reason::ProviderRequest,
    Reason::PlatformShutdown,
    Reason::ProviderTimeout,
    Reason::ProviderOtherFailure,
    Reason::OtherCommunicationError,
];

fn activity(a: Activity) -> u8 {
    a as u8
}

fn activity_of(x: u8) -> Activity {
    if x == Activity::Active as u8 {
        Activity::Active
    } else {
        Activity::Dormant
    }
}

/// Events kept in chunks (a growing trace never copies what it holds), the
/// transport IDs they name, and the events kept aside.
///
/// The first chunk holds [`FIRST`] events, every later one [`BIG`]: so
/// large that the allocator maps it on its own, which lets `take` give
/// its memory back as it reads it (see [`Store::drain`]), and a trace
/// past the first chunk turned into `Event`s never holds both forms whole
/// (one chunk, at most 256 KiB, is read first to last and then freed).
#[derive(Default)]
struct Store {
    chunks: Vec<Vec<Packed>>,
    len: usize,
    /// Every transport ID an event named, numbered in order of first use.
    tids: Vec<Tid>,
    tid_numbers: crate::fxhash::FxHashMap<Tid, u32>,
    /// The last transport ID numbered (most events name the same few).
    last_tid: Option<(Tid, u32)>,
    /// Events kept aside, with the places freed by the ring (past the limit).
    side: Vec<What>,
    side_free: Vec<u32>,
}

/// Events in the first chunk (256 KiB).
const FIRST: usize = 8192;
/// Events in each later chunk (32 MiB, of which only what is written is
/// ever touched).
const BIG: usize = 1 << 20;
/// How many events `drain` reads before giving back what it read.
const GIVE_BACK: usize = 1 << 16;

impl Store {
    fn len(&self) -> usize {
        self.len
    }

    /// Pushes a blank event and returns it, to be filled in where it lies.
    #[inline(always)]
    fn push_blank(&mut self, at: Nanos, host: u8, inst: u32) -> &mut Packed {
        if !matches!(self.chunks.last(), Some(last) if last.len() < last.capacity()) {
            self.grow(Packed::blank(at, host, inst));
        } else {
            let last = self.chunks.last_mut().expect("a chunk with room");
            last.push(Packed::blank(at, host, inst));
        }
        self.len += 1;
        let last = self.chunks.last_mut().expect("just pushed");
        last.last_mut().expect("just pushed")
    }

    #[inline(always)]
    fn push(&mut self, p: Packed) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < last.capacity() => last.push(p),
            _ => self.grow(p),
        }
        self.len += 1;
    }

    #[cold]
    fn grow(&mut self, p: Packed) {
        let size = if self.chunks.is_empty() { FIRST } else { BIG };
        let mut chunk = Vec::with_capacity(size);
        chunk.push(p);
        self.chunks.push(chunk);
    }

    /// Where event `k` is: its chunk and its place in it.
    fn place(k: usize) -> (usize, usize) {
        if k < FIRST {
            (0, k)
        } else {
            (1 + (k - FIRST) / BIG, (k - FIRST) % BIG)
        }
    }

    fn get(&self, k: usize) -> &Packed {
        let (c, i) = Store::place(k);
        &self.chunks[c][i]
    }

    fn set(&mut self, k: usize, p: Packed) -> Packed {
        let (c, i) = Store::place(k);
        std::mem::replace(&mut self.chunks[c][i], p)
    }

    fn swap(&mut self, j: usize, k: usize) {
        let pj = *self.get(j);
        let pk = self.set(k, pj);
        self.set(j, pk);
    }

    /// Reverses the events at `from..to`.
    fn reverse(&mut self, from: usize, to: usize) {
        let (mut j, mut k) = (from, to);
        while j + 1 < k {
            k -= 1;
            self.swap(j, k);
            j += 1;
        }
    }

    /// Frees what an overwritten event kept aside.
    fn forget(&mut self, p: &Packed) {
        if p.kind == Kind::Side {
            self.side[p.a as usize] = What::Shutdown;
            self.side_free.push(p.a);
        }
    }

    /// A transport ID's code: an IPv4-sized ID is its own four bytes
    /// (the flag is 1), any other its number in `tids` (the flag is 0).
    #[inline(always)]
    fn tid(&mut self, t: Tid) -> (u32, u8) {
        match *t.as_bytes() {
            [a, b, c, d] => (u32::from_be_bytes([a, b, c, d]), 1),
            _ => (self.tid_number(t), 0),
        }
    }

    /// (A plain match, inlined, on a borrowed ID: `map_or` was left out of
    /// line and the ID copied into it, read back wider than written.)
    #[inline(always)]
    fn opt_tid(&mut self, t: &Option<Tid>) -> (u32, u8) {
        match t {
            None => (NO_TID, 0),
            Some(t) => self.tid(*t),
        }
    }

    #[inline(never)]
    fn tid_number(&mut self, t: Tid) -> u32 {
        if let Some((last, n)) = self.last_tid {
            if last == t {
                return n;
            }
        }
        let next = self.tids.len() as u32;
        let n = *self.tid_numbers.entry(t).or_insert(next);
        if n == next {
            self.tids.push(t);
        }
        self.last_tid = Some((t, n));
        n
    }

    fn aside(&mut self, what: What) -> u32 {
        match self.side_free.pop() {
            Some(k) => {
                self.side[k as usize] = what;
                k
            }
            None => {
                self.side.push(what);
                (self.side.len() - 1) as u32
            }
        }
    }

    /// The compact form of a call, a return, an outcome, an application's
    /// send or receipt (`None` for any other event, or a call with a wrong
    /// user context).
    #[inline(always)]
    fn pack_hot(&mut self, at: Nanos, host: u8, inst: u32, what: &What) -> Option<Packed> {
        let (kind, x, y, a, b, c, d) = self.hot_fields(what)?;
        Some(Packed {
            at,
            inst,
            host,
            kind,
            x,
            y,
            a,
            b,
            c,
            d,
        })
    }

    /// The fields of [`pack_hot`](Self::pack_hot)'s event after the time,
    /// host and instance: kind, x, y, a, b, c, d.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn hot_fields(&mut self, what: &What) -> Option<(Kind, u8, u8, u32, u32, u32, u32)> {
        Some(match *what {
            What::Call {
                cb,
                call,
                ref tid,
                ref remote,
                bytes,
                reason,
                context_delta: 0,
                routine,
            } => {
                let (b, lit_b) = self.opt_tid(tid);
                let (c, lit_c) = self.opt_tid(remote);
                let y = u8::from(bytes.is_some())
                    | u8::from(routine) << 1
                    | reason.map_or(0, |r| (r as u8 + 1) << 2)
                    | lit_b << 5
                    | lit_c << 6;
                (Kind::Call, cb as u8, y, call, b, c, bytes.unwrap_or(0))
            }
            What::Return { cb, call, hr } => (
                Kind::Return,
                cb as u8,
                u8::from(hr.is_some()),
                call,
                hr.unwrap_or(0) as u32,
                0,
                0,
            ),
            What::Outcome { cb, call, ok } => {
                (Kind::Outcome, cb as u8, u8::from(ok), call, 0, 0, 0)
            }
            What::AppSend { id, to, bytes } => {
                let (b, lit_b) = self.tid(to);
                (Kind::AppSend, 0, lit_b, id, b, 0, bytes)
            }
            What::AppReceive {
                id,
                from,
                to,
                bytes,
            } => {
                let (b, lit_b) = self.tid(from);
                let (c, lit_c) = self.tid(to);
                (Kind::AppReceive, 0, lit_b | lit_c << 1, id, b, c, bytes)
            }
            _ => return None,
        })
    }

    /// Stores the compact form of a `pack_hot` event straight into its
    /// chunk (false, nothing stored, for any other event): a blank
    /// event is pushed and its fields written where it lies, so that it is
    /// never built in memory elsewhere and copied 16 bytes at a time, which
    /// stalls the store buffer (three times a callback).
    #[inline(always)]
    fn push_hot(&mut self, at: Nanos, host: u8, inst: u32, what: &What) -> bool {
        let Some((kind, x, y, a, b, c, d)) = self.hot_fields(what) else {
            return false;
        };
        let p = self.push_blank(at, host, inst);
        (p.kind, p.x, p.y, p.a, p.b, p.c, p.d) = (kind, x, y, a, b, c, d);
        true
    }

    /// The compact form of an event.
    fn pack(&mut self, at: Nanos, host: u8, inst: u32, what: What) -> Packed {
        if let Some(p) = self.pack_hot(at, host, inst, &what) {
            return p;
        }
        let mut p = Packed::blank(at, host, inst);
        match what {
            What::ProviderStart => p.kind = Kind::ProviderStart,
            What::ProviderStop => p.kind = Kind::ProviderStop,
            What::Complete {
                cb,
                call,
                status,
                early,
                ignored,
                args_clobbered,
            } => {
                p.kind = Kind::Complete;
                p.x = cb as u8;
                p.a = call;
                p.b = status as u32;
                p.y = u8::from(early) | u8::from(ignored) << 1 | u8::from(args_clobbered) << 2;
            }
            What::Function {
                f,
                hr,
                detail: None,
            } => {
                p.kind = Kind::Function;
                p.x = f as u8;
                p.a = hr as u32;
            }
            What::ProviderCompletion { status } => {
                p.kind = Kind::ProviderCompletion;
                p.a = status as u32;
            }
            What::ArgsWritten { f } => {
                p.kind = Kind::ArgsWritten;
                p.x = f as u8;
            }
            What::Address { tid, added } => {
                p.kind = Kind::Address;
                let (a, lit) = self.tid(tid);
                p.a = a;
                p.y = u8::from(added) | lit << 1;
            }
            What::State { to } => {
                p.kind = Kind::State;
                p.x = activity(to);
            }
            What::Timeout { cb, call, excused } => {
                p.kind = Kind::Timeout;
                p.x = cb as u8;
                p.a = call;
                p.y = u8::from(excused);
            }
            What::Shutdown => p.kind = Kind::Shutdown,
            What::CommunicationError => p.kind = Kind::CommunicationError,
            What::UnseenCause { reason } => {
                p.kind = Kind::UnseenCause;
                p.x = reason as u8;
            }
            What::Listen { on } => {
                p.kind = Kind::Listen;
                p.y = u8::from(on);
            }
            other => p.a = self.aside(other),
        }
        p
    }

    /// The event kept at `k`, whose step is `step` (what was kept aside is
    /// copied, or moved out by `take`).
    fn event(&self, k: usize, step: u64) -> Event {
        let p = self.get(k);
        let what = unpack(p, &self.tids, &mut |n| self.side[n as usize].clone());
        Event {
            step,
            at: p.at,
            host: p.host,
            inst: p.inst,
            what,
        }
    }

    /// Moves every event into `out`, in order; the event at `k` has step
    /// `step(k)`. A trace of one chunk (up to [`FIRST`] events, as most
    /// runs are) is read from the first event, each written where it
    /// belongs; a longer one is read from the last, its chunks giving
    /// their memory back as they are read, and put in order at the end.
    fn drain(&mut self, step: impl Fn(usize) -> u64, out: &mut Vec<Event>) {
        out.reserve_exact(self.len);
        let mut details = Details::default();
        let (tids, side) = (&self.tids, &mut self.side);
        // The event at `k`, what was kept aside moved out.
        let mut event = |k: usize, p: &Packed| Event {
            step: step(k),
            at: p.at,
            host: p.host,
            inst: p.inst,
            what: match p.kind {
                Kind::Indication => details.what(p, tids),
                _ => unpack(p, tids, &mut |n| {
                    std::mem::replace(&mut side[n as usize], What::Shutdown)
                }),
            },
        };
        let len = std::mem::take(&mut self.len);
        if self.chunks.len() <= 1 {
            let chunk = self.chunks.pop().unwrap_or_default();
            out.extend(chunk.iter().enumerate().map(|(k, p)| event(k, p)));
            return;
        }
        let mut read = 0;
        for k in (0..len).rev() {
            let chunk = self.chunks.last_mut().expect("an event is in a chunk");
            let p = chunk.pop().expect("the last chunk is not empty");
            read += 1;
            if chunk.is_empty() {
                self.chunks.pop();
            } else if read % GIVE_BACK == 0 {
                chunk.shrink_to_fit();
            }
            out.push(event(k, &p));
        }
        out.reverse();
    }
}
/// The event a [`Packed`] holds (`side` gives what was kept aside).
fn unpack(p: &Packed, tids: &[Tid], side: &mut dyn FnMut(u32) -> What) -> What {
    let tid_at = |code: u32, lit: u8| {
        if lit != 0 {
            Tid::from_bytes(&code.to_be_bytes()).expect("four bytes")
        } else {
            tids[code as usize]
        }
    };
    let tid = |code: u32, lit: u8| (lit != 0 || code != NO_TID).then(|| tid_at(code, lit));
    let cb = || Callback::ALL[p.x as usize];
    match p.kind {
        Kind::ProviderStart => What::ProviderStart,
        Kind::ProviderStop => What::ProviderStop,
        Kind::Call => What::Call {
            cb: cb(),
            call: p.a,
            tid: tid(p.b, p.y >> 5 & 1),
            remote: tid(p.c, p.y >> 6 & 1),
            bytes: (p.y & 1 != 0).then_some(p.d),
            reason: (p.y >> 2 & 7).checked_sub(1).map(|r| REASONS[r as usize]),
            context_delta: 0,
            routine: p.y & 2 != 0,
        },
        Kind::Return => What::Return {
            cb: cb(),
            call: p.a,
            hr: (p.y & 1 != 0).then_some(p.b as i32),
        },
        Kind::Complete => What::Complete {
            cb: cb(),
            call: p.a,
            status: p.b as i32,
            early: p.y & 1 != 0,
            ignored: p.y & 2 != 0,
            args_clobbered: p.y & 4 != 0,
        },
        Kind::Outcome => What::Outcome {
            cb: cb(),
            call: p.a,
            ok: p.y != 0,
        },
        Kind::Function => What::Function {
            f: PLATFORM_FNS[p.x as usize],
            hr: p.a as i32,
            detail: None,
        },
        Kind::ProviderCompletion => What::ProviderCompletion { status: p.a as i32 },
        Kind::ArgsWritten => What::ArgsWritten {
            f: PLATFORM_FNS[p.x as usize],
        },
        Kind::Address => What::Address {
            tid: tid_at(p.a, p.y >> 1 & 1),
            added: p.y & 1 != 0,
        },
        Kind::State => What::State {
            to: activity_of(p.x),
        },
        Kind::Timeout => What::Timeout {
            cb: cb(),
            call: p.a,
            excused: p.y != 0,
        },
        Kind::Shutdown => What::Shutdown,
        Kind::CommunicationError => What::CommunicationError,
        Kind::UnseenCause => What::UnseenCause {
            reason: REASONS[p.x as usize],
        },
        Kind::AppSend => What::AppSend {
            id: p.a,
            to: tid_at(p.b, p.y),
            bytes: p.d,
        },
        Kind::AppReceive => What::AppReceive {
            id: p.a,
            from: tid_at(p.b, p.y & 1),
            to: tid_at(p.c, p.y >> 1 & 1),
            bytes: p.d,
        },
        Kind::Listen => What::Listen { on: p.y != 0 },
        Kind::Indication => Indication {
            f: PLATFORM_FNS[p.x as usize],
            hr: p.a as i32,
            len: p.d,
            from: tid_at(p.b, p.y & 1),
            to: tid_at(p.c, p.y >> 1 & 1),
        }
        .what(),
        Kind::Side => side(p.a),
    }
}

/// `A#1` for host 0 instance 1 of a run on `hosts`.
pub fn instance_name(hosts: &[String], host: u8, inst: u32) -> String {
    let h = hosts.get(host as usize).map(String::as_str).unwrap_or("?");
    if inst == 0 {
        h.to_string()
    } else {
        format!("{h}#{inst}")
    }
}

/// Formats an HRESULT the way traces and reports show it.
pub fn hr_name(hr: i32) -> String {
    use crate::abi::*;
    match hr {
        S_OK => "S_OK".into(),
        S_FALSE => "S_FALSE".into(),
        E_PENDING_IO => "ERROR_IO_PENDING".into(),
        E_HANDLE => "E_HANDLE".into(),
        E_POINTER => "E_POINTER".into(),
        E_INVALIDARG => "E_INVALIDARG".into(),
        E_FAIL => "E_FAIL".into(),
        E_INVALID_STATE => "ERROR_INVALID_STATE".into(),
        E_NOT_FOUND => "ERROR_NOT_FOUND".into(),
        other => format!("0x{:08X}", other as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::id;

    /// One event of every kind, with every optional field both ways.
    fn every_kind() -> Vec<What> {
        let t4 = Tid::v4(1, 0, 1);
        let t6 = Tid::v6(2, 0, 1);
        let mut v = vec![
            What::ProviderStart,
            What::ProviderStop,
            What::Shutdown,
            What::CommunicationError,
            What::ProviderCompletion { status: -5 },
            What::ArgsWritten {
                f: PlatformFn::CPNatfwtRegisterProviderInstance,
            },
            What::Address {
                tid: t6,
                added: true,
            },
            What::Listen { on: true },
            What::Listen { on: false },
            What::AppSend {
                id: 7,
                to: t4,
                bytes: 64,
            },
            What::AppReceive {
                id: 7,
                from: t6,
                to: t4,
                bytes: 1400,
            },
            What::AppDrop {
                id: 8,
                why: "no route".into(),
            },
            What::Note { text: "a".into() },
            What::Violation {
                rule: id::COMP_3,
                message: "m".into(),
            },
            What::Registered {
                name: "n".into(),
                luid: 3,
                requested_luid: 0,
                name_was_null: true,
                addrs: vec![t4, t6],
            },
            What::SessionEnded {
                reason: Reason::ProviderTimeout,
                cause: "c".into(),
            },
        ];
        for (k, &cb) in Callback::ALL.iter().enumerate() {
            let k = k as u32;
            v.push(What::Call {
                cb,
                call: k,
                tid: k.is_multiple_of(2).then_some(t4),
                remote: k.is_multiple_of(3).then_some(t6),
                bytes: (k % 2 == 1).then_some(k * 10),
                reason: REASONS.get(k as usize).copied(),
                context_delta: if k == 5 { 0x10 } else { 0 },
                routine: k.is_multiple_of(2),
            });
            v.push(What::Return {
                cb,
                call: k,
                hr: k.is_multiple_of(2).then_some(-(k as i32)),
            });
            v.push(What::Complete {
                cb,
                call: k,
                status: k as i32 - 3,
                early: k & 1 != 0,
                ignored: k & 2 != 0,
                args_clobbered: k & 4 != 0,
            });
            v.push(What::Outcome {
                cb,
                call: k,
                ok: k.is_multiple_of(2),
            });
            v.push(What::Timeout {
                cb,
                call: k,
                excused: k % 2 == 1,
            });
        }
        for f in PLATFORM_FNS {
            v.push(What::Function {
                f,
                hr: -7,
                detail: None,
            });
            v.push(What::Function {
                f,
                hr: 0,
                detail: Some("d".into()),
            });
        }
        for r in REASONS {
            v.push(What::UnseenCause { reason: r });
        }

        v.push(What::State {
            to: Activity::Active,
        });
        v.push(What::State {
            to: Activity::Dormant,
        });
        v
    }

    /// Records `whats` (every 7th event an indication instead), and
    /// returns the events expected back.
    fn record_all(limit: u64, whats: &[What]) -> (Recorder, Vec<Event>) {
        let mut r = Recorder::new(vec!["A".into(), "B".into()], true, limit);
        let mut all = Vec::new();
        let tids = [Tid::v4(1, 0, 1), Tid::v6(2, 0, 1)];
        for (k, w) in whats.iter().enumerate() {
            let at = Nanos(k as u64 * 3);
            let (host, inst) = ((k % 2) as u8, k as u32 % 5);
            let what = if k % 7 == 3 {
                let i = Indication {
                    f: PlatformFn::CPNatfwtIndicateReceivedBuffers,
                    hr: -(k as i32),
                    len: k as u32,
                    from: tids[k % 2],
                    to: tids[k / 2 % 2],
                };
                let what = i.what();
                r.record_indication(at, host, inst, i);
                what
            } else {
                r.record(at, host, inst, w.clone());
                w.clone()
            };
            all.push(Event {
                step: k as u64 + 1,
                at,
                host,
                inst,
                what,
            });
        }
        (r, all)
    }

    /// An indication's detail read back from the store is exactly
    /// `bytes_detail`'s text: lengths of one to ten digits, literal and
    /// numbered addresses, each pair in both directions and repeated.
    #[test]
    fn indication_details_read_back_as_bytes_detail_writes_them() {
        let tids = [
            Tid::v4(1, 0, 1),
            Tid::v6(2, 0, 1),
            Tid::v4(3, 255, 100),
            Tid::v6(4, 7, 9),
        ];
        let lens = [0, 7, 10, 99, 1_400, 65_507, 1_000_000, u32::MAX];
        details_read_back(
            lens.iter()
                .cycle()
                .take(40)
                .enumerate()
                .map(|(k, &len)| (k as i32, len, tids[k % 4], tids[(k / 4 + 1) % 4])),
        );
    }

    /// Records an indication for each (result, length, from, to) and
    /// checks that the taken trace reads each detail back as
    /// `Indication::what` writes it.
    fn details_read_back(indications: impl Iterator<Item = (i32, u32, Tid, Tid)>) {
        let mut r = Recorder::new(vec!["A".into(), "B".into()], true, 0);
        let mut want = Vec::new();
        for (k, (hr, len, from, to)) in indications.enumerate() {
            let i = Indication {
                f: PlatformFn::CPNatfwtIndicateReceivedBuffers,
                hr,
                len,
                from,
                to,
            };
            want.push(i.what());
            r.record_indication(Nanos(k as u64), 0, 1, i);
        }
        let got: Vec<What> = r.take().events.into_iter().map(|e| e.what).collect();
        assert_eq!(got, want);
    }

    /// Past `Details::SCAN` distinct addresses the texts are found by
    /// the index, and still match: 300 addresses, literal and numbered,
    /// each indicated several times in a shuffled order.
    #[test]
    fn indication_details_of_many_addresses_read_back_as_bytes_detail_writes_them() {
        let tids: Vec<Tid> = (0..300u32)
            .map(|k| {
                let (a, b) = ((k / 256) as u8, (k % 256) as u8);
                if k % 2 == 0 {
                    Tid::v4(1, a, b)
                } else {
                    Tid::v6(2, a, b)
                }
            })
            .collect();
        details_read_back(
            (0..2_000usize).map(|k| (0, k as u32, tids[k * 7 % 300], tids[k * 13 % 300])),
        );
    }

    #[test]
    fn compact_events_read_back_as_recorded() {
        // Within the first chunk (`FIRST` events, read from the first),
        // and past it into a second (read from the last).
        for n in [1_000, 10_000] {
            let whats: Vec<What> = every_kind().into_iter().cycle().take(n).collect();
            let (mut r, all) = record_all(0, &whats);
            assert_eq!(r.snapshot().events, all);
            let t = r.take();
            assert_eq!(t.events, all);
            assert_eq!(t.omitted, None);
            // The recorder starts afresh, its steps going on.
            r.record(Nanos(1), 0, 0, What::Shutdown);
            assert_eq!(r.take().events[0].step, all.len() as u64 + 1);
        }
    }

    #[test]
    fn past_the_limit_the_head_and_the_latest_window_are_kept_in_order() {
        // 20,000 events: past the first chunk (`FIRST`) into a second.
        let whats: Vec<What> = every_kind().into_iter().cycle().take(20_000).collect();
        for limit in [7u64, 10, 64, 15_000] {
            let (mut r, all) = record_all(limit, &whats);
            let head = limit as usize / 2;
            let window = limit as usize - head;
            let mut kept: Vec<Event> = all[..head].to_vec();
            kept.extend_from_slice(&all[all.len() - window..]);
            let mut checker = crate::oracle::Checker::new(vec!["A".into(), "B".into()]);
            for e in &all {
                checker.event(e);
            }
            // What the ring overwrote was freed for reuse: the events kept
            // aside stay within the limit (one more while one is replaced).
            assert!(r.store.side.len() <= limit as usize + 1, "limit {limit}");
            let snap = r.snapshot();
            assert_eq!(snap.events, kept, "limit {limit}");
            let t = r.take();
            assert_eq!(t.events, kept, "limit {limit}");
            let omitted = t.omitted.expect("past the limit");
            assert_eq!((omitted.at, omitted.events), (head, (20_000 - limit)));
            assert_eq!(omitted.platform_violations, checker.finish());
        }
    }
}
