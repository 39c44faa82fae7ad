//! The contract-state coverage map: which situations of the contract a case
//! reached, read off its trace.
//!
//! Rule coverage (`coverage.rs`) says whether a rule's precondition was met
//! at all; this map says *in which situation*: each callback by the
//! instance's phase (dormant, activating, active, …), which calls of that
//! instance were pended at the time and what happened on its host in the
//! few milliseconds before (an activation, a session ended, a restart…);
//! each return and completion mode; each platform-side event (a step that
//! arrived) by the phase and pended calls of the host it hit; each function
//! the provider called, from inside a callback or not; datagram sizes;
//! timeouts; and pairs of host events within a few milliseconds of each
//! other (a stop right after a platform-ended session).
//!
//! A key is a `u64` (see [`describe`]). The guided case source keeps every
//! case that reached a key no earlier case of its lane reached, and mutates
//! it further; the report gives how many keys a certification reached.

use cpsim_sim::abi::{CPNATFWT_SESSION_TERMINATION_REASON as Reason, E_PENDING_IO};
use cpsim_sim::trace::{Activity, PlatformFn, What};
use cpsim_sim::{Callback, Nanos, Trace};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// One situation of the contract (see the module docs and [`describe`]).
pub type Key = u64;

/// A set of keys (a lane's, in the guided source): hashed by one
/// multiplication, since keys are hashed on every case and never come
/// from outside (the set's order is never read).
pub type KeySet = HashSet<Key, BuildHasherDefault<KeyHasher>>;

/// The hasher of [`KeySet`]: a key's bits folded, multiplied by an odd
/// constant, and the product's high half folded back onto its low half.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    #[inline]
    fn write_u64(&mut self, k: u64) {
        self.0 = (self.0.rotate_left(5) ^ k ^ (k >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // The product's high bits depend on every bit of the key; the
        // table takes its slot from the low ones.
        self.0 ^ (self.0 >> 32)
    }
}

/// What happens on a host that later events are placed relative to.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Cue {
    None = 0,
    ProviderStart,
    ProviderStop,
    Established,
    Active,
    Dormant,
    SessionEnded,
    Terminated,
    Shutdown,
    CommunicationError,
    AppSend,
    Listen,
    DormancyRequest,
    Network,
    Completion,
    Timeout,
    Address,
}

const CUES: [&str; 17] = [
    "-",
    "provider started",
    "provider stopped",
    "established",
    "activated",
    "went dormant",
    "session ended",
    "terminate returned",
    "platform shut down",
    "infrastructure fault",
    "application sent",
    "listen changed",
    "dormancy requested",
    "network changed",
    "a completion",
    "a timeout",
    "address changed",
];

/// An instance's phase, as far as the trace shows it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Phase {
    Created = 0,
    Establishing,
    Dormant,
    Activating,
    Active,
    Deactivating,
    Ended,
    Gone,
}

const PHASES: [&str; 8] = [
    "created",
    "establishing",
    "dormant",
    "activating",
    "active",
    "deactivating",
    "ended",
    "gone",
];

#[derive(Default)]
struct Inst {
    phase: Option<Phase>,
    /// Open calls: (serial, callback, returned ERROR_IO_PENDING), at most
    /// one entry per serial. A handful at a time, so a list searched from
    /// its end (the newest calls are the ones returning and completing).
    open: Vec<(u32, Callback, bool)>,
}

impl Inst {
    fn phase(&self) -> Phase {
        self.phase.unwrap_or(Phase::Created)
    }
    /// Bit `i` set: a call of `Callback::ALL[i]` is pended.
    fn pended(&self) -> u8 {
        self.open
            .iter()
            .filter(|(_, _, p)| *p)
            .fold(0, |m, (_, cb, _)| m | 1 << cb_index(*cb))
    }
    /// How many SEND_BUFFERS are pended: 0, 1, 2, or 3 for more.
    fn sends(&self) -> u8 {
        self.open
            .iter()
            .filter(|(_, cb, p)| *p && *cb == Callback::SendBuffers)
            .count()
            .min(3) as u8
    }
    fn open_call(&mut self, call: u32, cb: Callback) {
        match self.open.iter_mut().rev().find(|c| c.0 == call) {
            Some(c) => *c = (call, cb, false),
            None => self.open.push((call, cb, false)),
        }
    }
    fn call_mut(&mut self, call: u32) -> Option<&mut (u32, Callback, bool)> {
        self.open.iter_mut().rev().find(|c| c.0 == call)
    }
    fn close_call(&mut self, call: u32) {
        if let Some(k) = self.open.iter().rposition(|c| c.0 == call) {
            self.open.remove(k);
        }
    }
}

fn cb_index(cb: Callback) -> u8 {
    Callback::ALL.iter().position(|c| *c == cb).unwrap_or(0) as u8
}

/// An instance of a host, in order of appearance.
struct Slot {
    n: u32,
    /// Whether an event of the instance's own was read into `inst` (an
    /// instance only named by events that change nothing has no state
    /// and does not count as the host's newest instance).
    present: bool,
    inst: Inst,
}

#[derive(Default)]
struct Host {
    /// The last cue and when it happened.
    cue: (u8, Nanos),
    /// The instances of the host (numbers other than 0), in order of
    /// appearance. A case has a few per host, so a list searched from its
    /// end.
    insts: Vec<Slot>,
    /// The state of events with no instance (number 0).
    none: Inst,
    /// Callbacks running now (between their call and return).
    running: u32,
}

impl Host {
    /// Where instance `n` is in `insts` (usize::MAX for 0), added if new.
    fn slot(&mut self, n: u32) -> usize {
        if n == 0 {
            return usize::MAX;
        }
        match self.insts.iter().rposition(|s| s.n == n) {
            Some(k) => k,
            None => {
                self.insts.push(Slot {
                    n,
                    present: false,
                    inst: Inst::default(),
                });
                self.insts.len() - 1
            }
        }
    }
    /// The instance at `slot`, marked present.
    fn inst(&mut self, slot: usize) -> &mut Inst {
        match self.insts.get_mut(slot) {
            Some(s) => {
                s.present = true;
                &mut s.inst
            }
            None => &mut self.none,
        }
    }
    /// The instance at `slot` if present.
    fn present(&mut self, slot: usize) -> Option<&mut Inst> {
        match self.insts.get_mut(slot) {
            Some(s) => s.present.then_some(&mut s.inst),
            None => Some(&mut self.none),
        }
    }
    /// The host's situation: its newest instance that is not gone.
    fn view(&self) -> (u8, u8, u8) {
        self.insts
            .iter()
            .rev()
            .filter(|s| s.present)
            .map(|s| &s.inst)
            .find(|i| i.phase() != Phase::Gone)
            .map(|i| (i.phase() as u8, i.pended(), i.sends()))
            .unwrap_or((Phase::Gone as u8, 0, 0))
    }
}

/// A cue counts as "just before" an event within this long.
const RECENT: Nanos = Nanos::from_millis(5);

/// Kinds of key (the top four bits).
mod kind {
    pub const CALL: u64 = 1;
    pub const RETURN: u64 = 2;
    pub const COMPLETE: u64 = 3;
    pub const EVENT: u64 = 4;
    pub const FUNCTION: u64 = 5;
    pub const TIMEOUT: u64 = 6;
    pub const SIZE: u64 = 7;
    pub const PAIR: u64 = 8;
    pub const ENDED: u64 = 9;
}

fn key(kind: u64, fields: [u8; 6]) -> Key {
    let mut k = kind << 60;
    for (i, f) in fields.iter().enumerate() {
        k |= u64::from(*f) << (i * 8);
    }
    k
}

fn size_class(bytes: u32) -> u8 {
    match bytes {
        0 => 0,
        1 => 1,
        2..=16 => 2,
        17..=1399 => 3,
        1400..=1600 => 4,
        1601..=59_999 => {
            if bytes.is_power_of_two()
                || (bytes + 1).is_power_of_two()
                || (bytes - 1).is_power_of_two()
            {
                5
            } else {
                6
            }
        }
        60_000..=65_506 => 7,
        _ => 8,
    }
}

fn reason_index(r: Reason) -> u8 {
    match r {
        Reason::ProviderRequest => 0,
        Reason::PlatformShutdown => 1,
        Reason::ProviderTimeout => 2,
        Reason::ProviderOtherFailure => 3,
        Reason::OtherCommunicationError => 4,
    }
}

/// The keys a trace reached, sorted, without repeats.
///
/// One pass over the events; the state it keeps (hosts by number, each
/// host's instances in a short list, each instance's open calls in a
/// shorter one) needs no map and no allocation per event.
pub fn keys(trace: &Trace) -> Vec<Key> {
    let mut out = Distinct::default();
    let mut hosts: Vec<Host> = Vec::new();
    for e in &trace.events {
        let h = usize::from(e.host);
        if hosts.len() <= h {
            hosts.resize_with(h + 1, Host::default);
        }
        let host = &mut hosts[h];
        let slot = host.slot(e.inst);
        let recent = if e.at.saturating_sub(host.cue.1) <= RECENT && host.cue.0 != 0 {
            host.cue.0
        } else {
            0
        };
        let mut cue = Cue::None;
        match &e.what {
            What::Call { cb, call, .. } => {
                host.running += 1;
                let i = host.inst(slot);
                out.push(key(
                    kind::CALL,
                    [
                        cb_index(*cb),
                        i.phase() as u8,
                        i.pended(),
                        recent,
                        i.sends(),
                        0,
                    ],
                ));
                match cb {
                    Callback::EstablishSessionIndication => i.phase = Some(Phase::Establishing),
                    Callback::TransitionActive => i.phase = Some(Phase::Activating),
                    Callback::TransitionDormant => i.phase = Some(Phase::Deactivating),
                    Callback::TerminateSessionIndication => {}
                    cb => i.open_call(*call, *cb),
                }
                if matches!(cb, Callback::TransitionActive | Callback::TransitionDormant) {
                    i.open_call(*call, *cb);
                }
            }
            What::Return { cb, call, hr } => {
                host.running = host.running.saturating_sub(1);
                let i = host.inst(slot);
                let mode = match hr {
                    None => 3,
                    Some(hr) if *hr == E_PENDING_IO => 2,
                    Some(0) => 0,
                    Some(_) => 1,
                };
                out.push(key(
                    kind::RETURN,
                    [cb_index(*cb), mode, i.phase() as u8, 0, 0, 0],
                ));
                match mode {
                    2 => {
                        if let Some(c) = i.call_mut(*call) {
                            c.2 = true;
                        }
                    }
                    _ => i.close_call(*call),
                }
                match cb {
                    Callback::EstablishSessionIndication => cue = Cue::Established,
                    Callback::TerminateSessionIndication => cue = Cue::Terminated,
                    _ => {}
                }
            }
            What::Complete {
                cb,
                call,
                status,
                early,
                ignored,
                ..
            } => {
                let i = host.inst(slot);
                let flags =
                    u8::from(*early) | u8::from(*ignored) << 1 | u8::from(*status == 0) << 2;
                out.push(key(
                    kind::COMPLETE,
                    [cb_index(*cb), flags, i.phase() as u8, i.pended(), recent, 0],
                ));
                i.close_call(*call);
                cue = Cue::Completion;
            }
            What::Outcome { call, .. } => {
                if let Some(i) = host.present(slot) {
                    i.close_call(*call);
                }
            }
            What::Timeout { cb, call, excused } => {
                let i = host.inst(slot);
                out.push(key(
                    kind::TIMEOUT,
                    [cb_index(*cb), u8::from(*excused), i.phase() as u8, 0, 0, 0],
                ));
                i.close_call(*call);
                cue = Cue::Timeout;
            }
            What::State { to } => {
                let i = host.inst(slot);
                match to {
                    Activity::Active => {
                        i.phase = Some(Phase::Active);
                        cue = Cue::Active;
                    }
                    Activity::Dormant => {
                        if i.phase() != Phase::Establishing {
                            cue = Cue::Dormant;
                        }
                        i.phase = Some(Phase::Dormant);
                    }
                }
            }
            What::SessionEnded { reason, .. } => {
                let i = host.inst(slot);
                out.push(key(
                    kind::ENDED,
                    [
                        reason_index(*reason),
                        i.phase() as u8,
                        i.pended(),
                        recent,
                        i.sends(),
                        0,
                    ],
                ));
                i.phase = Some(Phase::Ended);
                cue = Cue::SessionEnded;
            }
            What::Function { f, hr, .. } => {
                let running = u8::from(host.running > 0);
                let i = host.inst(slot);
                let f_index = match f {
                    PlatformFn::CPNatfwtCreateProviderInstance => 0,
                    PlatformFn::CPNatfwtRegisterProviderInstance => 1,
                    PlatformFn::CPNatfwtDeregisterProviderInstance => 2,
                    PlatformFn::CPNatfwtDestroyProviderInstance => 3,
                    PlatformFn::CPNatfwtIndicateReceivedBuffers => 4,
                    PlatformFn::PlatformCompletionRoutine => 5,
                };
                out.push(key(
                    kind::FUNCTION,
                    [
                        f_index,
                        u8::from(*hr == 0) | u8::from(*hr == E_PENDING_IO) << 1,
                        i.phase() as u8,
                        running,
                        u8::from(i.pended() != 0),
                        recent,
                    ],
                ));
                if *f == PlatformFn::CPNatfwtDeregisterProviderInstance && *hr == 0 {
                    i.phase = Some(Phase::Gone);
                }
                if *f == PlatformFn::CPNatfwtDestroyProviderInstance {
                    i.phase = Some(Phase::Gone);
                    i.open.clear();
                }
            }
            What::Registered { .. } => {
                host.inst(slot).phase = Some(Phase::Establishing);
            }
            What::AppSend { bytes, .. } => {
                let (phase, _, _) = host.view();
                out.push(key(kind::SIZE, [size_class(*bytes), phase, 0, 0, 0, 0]));
                cue = Cue::AppSend;
            }
            What::ProviderStart => cue = Cue::ProviderStart,
            What::ProviderStop => cue = Cue::ProviderStop,
            What::Shutdown => cue = Cue::Shutdown,
            What::CommunicationError => cue = Cue::CommunicationError,
            What::Listen { .. } => cue = Cue::Listen,
            What::Address { .. } => cue = Cue::Address,
            What::Note { text } => {
                if text.starts_with("platform: dormancy") {
                    cue = Cue::DormancyRequest;
                } else if text.starts_with("network:") {
                    cue = Cue::Network;
                }
            }
            _ => {}
        }
        if cue != Cue::None {
            // Platform-side events: which situation of the host they hit.
            if !matches!(cue, Cue::Established | Cue::Terminated | Cue::Completion) {
                let (phase, pended, sends) = host.view();
                out.push(key(kind::EVENT, [cue as u8, phase, pended, sends, 0, 0]));
            }
            out.push(key(kind::PAIR, [recent, cue as u8, 0, 0, 0, 0]));
            host.cue = (cue as u8, e.at);
        }
    }
    let mut out = out.keys;
    out.sort_unstable();
    out
}

/// The keys met so far, each once: a trace meets the same few keys many
/// times over, so repeats are dropped as they come (an open-addressing
/// table of the keys, never 0), and only the distinct ones are sorted.
/// The table lives on the stack while it is small (a case meets about a
/// hundred distinct keys): no allocation, so no work for the allocator.
struct Distinct {
    /// The table while at most half of it is used; 0 is an empty slot.
    small: [Key; 256],
    /// The table once `small` is outgrown (empty until then), a power of
    /// two long, at most half full.
    big: Vec<Key>,
    keys: Vec<Key>,
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct {
            small: [0; 256],
            big: Vec::new(),
            keys: Vec::with_capacity(128),
        }
    }
}

impl Distinct {
    fn push(&mut self, k: Key) {
        debug_assert_ne!(k, 0, "every key has a kind");
        let table: &mut [Key] = if self.big.is_empty() {
            &mut self.small
        } else {
            &mut self.big
        };
        if !insert(table, k) {
            return;
        }
        self.keys.push(k);
        if self.keys.len() * 2 > table.len() {
            // Grow: every key again into a table twice as long.
            let mut big = vec![0; table.len() * 2];
            for &k in &self.keys {
                insert(&mut big, k);
            }
            self.big = big;
        }
    }
}

/// Puts `k` into the open-addressing `table` (a power of two long, not
/// full); whether it was not there yet.
fn insert(table: &mut [Key], k: Key) -> bool {
    let mask = table.len() - 1;
    let mut i = ((k ^ k >> 29).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & mask;
    loop {
        match table[i] {
            0 => break,
            x if x == k => return false,
            _ => i = (i + 1) & mask,
        }
    }
    table[i] = k;
    true
}

fn cb_name(i: u8) -> &'static str {
    Callback::ALL
        .get(i as usize)
        .map(|c| c.name())
        .unwrap_or("?")
}

fn mask(m: u8) -> String {
    if m == 0 {
        return "none".into();
    }
    let v: Vec<&str> = (0..8)
        .filter(|b| m & (1 << b) != 0)
        .map(|b| cb_name(b as u8))
        .collect();
    v.join("+")
}

fn name<'a>(names: &'a [&'a str], i: u8) -> &'a str {
    names.get(i as usize).copied().unwrap_or("?")
}

/// A key in words (for reports and debugging).
pub fn describe(k: Key) -> String {
    let f = |i: usize| ((k >> (i * 8)) & 0xFF) as u8;
    match k >> 60 {
        kind::CALL => format!(
            "{} while {} (pended: {}; {} sends; just after: {})",
            cb_name(f(0)),
            name(&PHASES, f(1)),
            mask(f(2)),
            f(4),
            name(&CUES, f(3))
        ),
        kind::RETURN => format!(
            "{} returned {} while {}",
            cb_name(f(0)),
            ["S_OK", "a failure", "ERROR_IO_PENDING", "(void)"][f(1).min(3) as usize],
            name(&PHASES, f(2))
        ),
        kind::COMPLETE => format!(
            "{} completed ({}{}{}) while {} (pended: {}; just after: {})",
            cb_name(f(0)),
            if f(1) & 4 != 0 { "ok" } else { "failed" },
            if f(1) & 1 != 0 { ", early" } else { "" },
            if f(1) & 2 != 0 { ", ignored" } else { "" },
            name(&PHASES, f(2)),
            mask(f(3)),
            name(&CUES, f(4))
        ),
        kind::EVENT => format!(
            "{} on a host whose instance is {} (pended: {}; {} sends)",
            name(&CUES, f(0)),
            name(&PHASES, f(1)),
            mask(f(2)),
            f(3)
        ),
        kind::FUNCTION => format!(
            "{} {} while {}{}{} (just after: {})",
            [
                "Create",
                "Register",
                "Deregister",
                "Destroy",
                "IndicateReceivedBuffers",
                "the completion routine"
            ][f(0).min(5) as usize],
            match f(1) {
                1 => "succeeded",
                2 => "pended",
                _ => "failed",
            },
            name(&PHASES, f(2)),
            if f(3) != 0 { ", inside a callback" } else { "" },
            if f(4) != 0 { ", calls pended" } else { "" },
            name(&CUES, f(5))
        ),
        kind::TIMEOUT => format!(
            "{} timed out{} while {}",
            cb_name(f(0)),
            if f(1) != 0 { " (excused)" } else { "" },
            name(&PHASES, f(2))
        ),
        kind::SIZE => format!(
            "a datagram of {} bytes sent from a host whose instance is {}",
            [
                "0",
                "1",
                "2-16",
                "17-1399",
                "1400-1600",
                "a power of two ±1",
                "1601-59999",
                "60000-65506",
                "65507"
            ][f(0).min(8) as usize],
            name(&PHASES, f(1))
        ),
        kind::PAIR => format!(
            "{} within 5 ms after {}",
            name(&CUES, f(1)),
            name(&CUES, f(0))
        ),
        kind::ENDED => format!(
            "session ended ({}) while {} (pended: {}; {} sends; just after: {})",
            [
                "PROVIDER_REQUEST",
                "PLATFORM_SHUTDOWN",
                "PROVIDER_TIMEOUT",
                "PROVIDER_OTHER_FAILURE",
                "OTHER_COMMUNICATION_ERROR"
            ][f(0).min(4) as usize],
            name(&PHASES, f(1)),
            mask(f(2)),
            f(4),
            name(&CUES, f(3))
        ),
        _ => format!("unknown key {k:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Distinct` keeps each key once, in the order first met, on its stack
    /// table and after outgrowing it (more than 128 distinct keys).
    #[test]
    fn distinct_keys_are_kept_once_whether_few_or_many() {
        for n in [1u64, 5, 128, 129, 1_000, 5_000] {
            let mut d = Distinct::default();
            let mut want = Vec::new();
            for round in 0..3 {
                for i in 0..n {
                    // Keys of every kind, close together and far apart.
                    let k = (i % 9 + 1) << 60 | (i * 0x0101) | (i << 40);
                    d.push(k);
                    if round == 0 {
                        want.push(k);
                    }
                }
            }
            assert_eq!(d.keys, want, "{n} distinct keys");
        }
    }
}
