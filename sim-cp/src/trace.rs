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
/// The trace is kept whole up to `limit` events. Past the limit the
/// recorder keeps the first `limit / 2` events and, in the rest of the
/// limit, a window of the latest ones (a ring in the same vector: memory
/// stays at `limit` events); those in between are dropped. From the moment
/// the limit is reached, every event is fed to the platform checker as it
/// comes (the events kept so far first), so a run of any length is judged
/// on all of its events.
pub(crate) struct Recorder {
    /// Events recorded so far (traced or not): the last event's step.
    step: u64,
    /// Whether events are kept (`Config::trace`); the step counts either way.
    on: bool,
    violations: Vec<Violation>,
    trace: Trace,
    /// Events kept at most (0: no limit).
    limit: usize,
    /// Past the limit: where in the window (`events[limit / 2..]`) its
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
            trace: Trace {
                hosts,
                ..Trace::default()
            },
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            oldest: 0,
            omitted: 0,
            checker: None,
        }
    }

    /// The run's host names.
    pub fn hosts(&self) -> &[String] {
        &self.trace.hosts
    }

    /// Records the run's next event, at virtual time `at`, on host `host`
    /// (instance `inst`, 0 for none); the step is counted even when the
    /// trace is off.
    #[inline]
    pub fn record(&mut self, at: Nanos, host: u8, inst: u32, what: What) {
        self.step += 1;
        if self.on {
            self.push(Event {
                step: self.step,
                at,
                host,
                inst,
                what,
            });
        }
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

    /// Keeps the run's next event.
    fn push(&mut self, e: Event) {
        let head = self.limit / 2;
        if let Some(checker) = &mut self.checker {
            checker.event(&e);
            self.trace.events[head + self.oldest] = e;
            self.oldest = (self.oldest + 1) % (self.limit - head);
            self.omitted += 1;
            return;
        }
        let events = &mut self.trace.events;
        if self.limit == 0 || events.len() < self.limit {
            if self.limit > 0 && events.len() == head {
                // Half way: the vector will not need more than the limit.
                events.reserve_exact(self.limit - head);
            }
            events.push(e);
            return;
        }
        // The limit is reached: judge what was kept, then go on with every
        // event as it comes.
        let mut checker = crate::oracle::Checker::new(self.trace.hosts.clone());
        for kept in events.iter() {
            checker.event(kept);
        }
        self.checker = Some(checker);
        self.push(e);
    }

    /// A copy of the trace so far, the recorder left as it is: how a run
    /// that cannot finish is looked at (`crate::observe`). Past the limit,
    /// the window is put in order; what the checker found is not included.
    pub fn snapshot(&self) -> Trace {
        let mut trace = self.trace.clone();
        if self.checker.is_some() {
            let head = self.limit / 2;
            trace.events[head..].rotate_left(self.oldest);
            trace.omitted = Some(Omitted {
                at: head,
                events: self.omitted,
                platform_violations: Vec::new(),
            });
        }
        trace
    }

    /// The trace of the run so far (the recorder starts afresh).
    pub fn take(&mut self) -> Trace {
        let mut trace = Trace {
            hosts: self.trace.hosts.clone(),
            ..std::mem::take(&mut self.trace)
        };
        if let Some(checker) = self.checker.take() {
            let head = self.limit / 2;
            // The window in order, oldest first: a rotation by three
            // reversals (sequential passes over a large window).
            let window = &mut trace.events[head..];
            let oldest = std::mem::take(&mut self.oldest);
            window[..oldest].reverse();
            window[oldest..].reverse();
            window.reverse();
            trace.omitted = Some(Omitted {
                at: head,
                events: std::mem::take(&mut self.omitted),
                platform_violations: checker.finish(),
            });
        }
        trace
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
