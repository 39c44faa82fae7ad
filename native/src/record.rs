//! What the bridge saw: its instances (shims), and the trace and provider
//! violations it records for each bridge.

use crate::platform::Fns;
use crate::standin;
use cpsim_sim::abi::*;
use cpsim_sim::rules::RuleId;
use cpsim_sim::trace::{Event, Trace, What};
use cpsim_sim::{Callback, Nanos, Tid, Violation};
use parking_lot::Mutex;
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// One provider instance as the bridge knows it. Its address is the user
/// context the platform sees; the provider's own is handed back to it.
pub(crate) struct Shim {
    pub(crate) inner: Arc<Inner>,
    /// The instance's number on this bridge (1, 2, ...).
    pub(crate) n: u32,
    pub(crate) table: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
    pub(crate) user: usize,
    pub(crate) terminated: AtomicBool,
}

pub(crate) struct Rec {
    pub(crate) start: Instant,
    pub(crate) step: u64,
    pub(crate) trace: Trace,
    pub(crate) next_call: u32,
    pub(crate) created: u32,
    pub(crate) seen: HashSet<Tid>,
    /// Instances whose Register has not returned: their events wait, so
    /// that the trace shows Register's result before ESTABLISH (SESS-1).
    pub(crate) in_call: HashMap<u32, Vec<What>>,
}

pub(crate) struct Inner {
    /// This bridge's number in the process, 1 to [`MAX_BRIDGE`] (the
    /// later ones share the last): the mark the call ledger keeps of each
    /// call older than its window, to know which bridge made it.
    pub(crate) bridge: u8,
    pub(crate) fns: Fns,
    pub(crate) path: PathBuf,
    pub(crate) rec: Mutex<Rec>,
    /// Rules a safe provider broke that only it could report.
    pub(crate) provider_violations: Mutex<Vec<Violation>>,
    /// Safe instances' user contexts: the platform may call with them at
    /// any time, so they live as long as the process.
    pub(crate) keep: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
    /// A multi-host stand-in: Creates go to the caller's host there.
    pub(crate) route: Mutex<Option<Arc<standin::StandIn>>>,
}

/// The highest bridge number: the ledger keeps 6 bits of it per old call.
pub(crate) const MAX_BRIDGE: u8 = 63;

/// The number of the next bridge made in this process.
pub(crate) fn next_bridge() -> u8 {
    static MADE: AtomicU32 = AtomicU32::new(0);
    let n = MADE.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    n.min(MAX_BRIDGE as u32) as u8
}

/// The bridges numbered `bridge` (one, or those past the last number)
/// that made a provider instance.
pub(crate) fn bridges_numbered(bridge: u8) -> Vec<Arc<Inner>> {
    let mut found: Vec<Arc<Inner>> = Vec::new();
    for s in SHIM_ADDRS.lock().values() {
        if s.inner.bridge == bridge && !found.iter().any(|i| Arc::ptr_eq(i, &s.inner)) {
            found.push(s.inner.clone());
        }
    }
    found
}

/// Every bridge's instances by handle, and the shims' addresses.
pub(crate) static SHIMS: LazyLock<Mutex<HashMap<u64, Arc<Shim>>>> = LazyLock::new(Default::default);
pub(crate) static SHIM_ADDRS: LazyLock<Mutex<HashMap<usize, Arc<Shim>>>> =
    LazyLock::new(Default::default);

/// Records a provider violation on the bridge that made call context's shim.
pub(crate) fn provider_violation_at(
    shim: usize,
    rule: RuleId,
    n: u32,
    cb: Callback,
    message: String,
) {
    let s = SHIM_ADDRS.lock().get(&shim).cloned();
    if let Some(s) = s {
        s.inner.provider_violation(rule, n, cb, message);
    }
}

impl Inner {
    pub(crate) fn record(&self, n: u32, what: What) {
        let mut r = self.rec.lock();
        if let Some(waiting) = r.in_call.get_mut(&n) {
            waiting.push(what);
            return;
        }
        r.push(n, what);
    }
}

impl Rec {
    pub(crate) fn push(&mut self, n: u32, what: What) {
        self.step += 1;
        let at = Nanos::from_std(self.start.elapsed());
        self.trace.events.push(Event {
            step: self.step,
            at,
            host: 0,
            inst: n,
            what,
        });
    }
    /// Records transport IDs the platform passed as issued by it.
    pub(crate) fn issued(&mut self, n: u32, tids: &[Tid]) {
        for t in tids {
            if self.seen.insert(*t) {
                self.push(
                    n,
                    What::Address {
                        tid: *t,
                        added: true,
                    },
                );
            }
        }
    }
}

/// The shim of a callback: by handle, else by the user context if it is one
/// of ours. Also the difference between the context passed and ours (SESS-6).
pub(crate) fn shim_of(
    handle: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
) -> Option<(Arc<Shim>, u64)> {
    let s = SHIMS
        .lock()
        .get(&handle.as_u64())
        .cloned()
        .or_else(|| SHIM_ADDRS.lock().get(&(user as usize)).cloned())?;
    let delta = (user as usize ^ Arc::as_ptr(&s) as usize) as u64;
    Some((s, delta))
}

impl Inner {
    /// Records a provider violation (and a note in the trace, where it happened).
    pub(crate) fn provider_violation(&self, rule: RuleId, n: u32, cb: Callback, message: String) {
        self.violation(rule, n, Some(cb), message)
    }

    /// Records a provider violation about a call of which only the rule
    /// and serial are known (one that ended before the ledger's window).
    pub(crate) fn provider_violation_unnamed(&self, rule: RuleId, message: String) {
        self.violation(rule, 0, None, message)
    }

    fn violation(&self, rule: RuleId, n: u32, cb: Option<Callback>, message: String) {
        let (step, at) = {
            let mut r = self.rec.lock();
            r.push(
                n,
                What::Note {
                    text: format!("{rule}: {message}"),
                },
            );
            (r.step, Nanos::from_std(r.start.elapsed()))
        };
        self.provider_violations.lock().push(Violation {
            rule,
            host: "local".into(),
            instance: (n > 0).then(|| format!("local#{n}")),
            callback: cb.map(|cb| cb.name().to_string()),
            step,
            at,
            message,
        });
    }
}
