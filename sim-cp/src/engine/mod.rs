//! The engine: simulated hosts, each with its own platform, driven by one
//! event queue in virtual (or real) time.
//!
//! Invariants this module keeps:
//! - The world lock is never held while provider code runs (callbacks, tasks,
//!   network handlers, start/stop). Provider calls into the platform can come
//!   from any thread at any time, including from inside a callback (SESS-3).
//! - A completion never calls back into the provider: it updates state and
//!   queues follow-up events, which the driver runs (no re-entrancy deadlock).
//! - Every state change and call is recorded in the trace at the moment it
//!   happens, under the lock, with the step number that orders it.

mod args;
mod completion;
mod dispatch;
mod facilities;
mod faults;
mod instance;
pub(crate) mod lifecycle;
mod machine;
mod platform_actions;
mod session;
mod traffic;

pub(crate) use facilities::{Payload, Placed};
pub use traffic::Family;

use crate::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use crate::config::{ClockMode, Config, NetFaults};
use crate::event_queue::{EventQueue, Kept};
use crate::handle::{self, WorldId};
use crate::net::{NetAddr, Network, Packet};
use crate::platform::{Platform, Simulated, SIMULATED};
use crate::rng::Rng;
use crate::rules::RuleId;
use crate::runtime::{Cx, Handler, Task};
use crate::time::Nanos;
use crate::trace::{self, What};
use crate::violation::Violation;
use args::ArgPool;
use completion::Calls;
use faults::PlatformFaults;
use instance::Instance;
use parking_lot::{Condvar, Mutex, MutexGuard};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use traffic::Traffic;

/// A provider running on one simulated host: the equivalent of a C module's
/// `CpsimProviderStart` / `CpsimProviderStop`.
pub trait Provider: Send {
    /// Creates and registers the provider's instances (now or later, from
    /// tasks or its own threads).
    fn start(&mut self, cx: &Cx);
    /// Completes pended calls, deregisters and destroys every instance, and
    /// stops its workers before returning (LIFE-8).
    fn stop(&mut self, cx: &Cx);
}

/// Makes providers: one per simulated host, plus optional infrastructure.
pub trait ProviderFactory: Send + Sync {
    /// The provider's name in reports.
    fn name(&self) -> String;
    /// Starts infrastructure services (a rendezvous, a relay) on the
    /// infrastructure node; called once per run before any provider starts.
    fn infrastructure(&self, _cx: &Cx) {}
    /// A fresh provider for `host`.
    fn create(&self, host: &str) -> Box<dyn Provider>;
    /// Applies a provider configuration (a scenario's `provider_config`,
    /// JSON). The default accepts only `null`.
    fn configure(&self, config: &serde_json::Value) -> Result<(), String> {
        if config.is_null() {
            Ok(())
        } else {
            Err(format!("provider `{}` takes no configuration", self.name()))
        }
    }
    /// Whether the provider only uses the simulator's facilities (so that a
    /// seed reproduces a run exactly). Black-box providers answer false.
    fn deterministic(&self) -> bool {
        true
    }
}

/// A host's name in an [`Action`] (and a scenario's step): a string kept
/// inline up to 24 bytes, so building, cloning and dropping an action
/// allocates nothing for the short names hosts have. Made from a `&str` or
/// a `String` with `.into()`; reads as a `&str`.
pub type HostName = compact_str::CompactString;

/// Something a schedule or scenario makes happen on the platform side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Start the provider on a host.
    StartProvider { host: HostName },
    /// Stop the provider on a host (LIFE-8 is checked when stop returns).
    StopProvider { host: HostName },
    /// An application on `host` starts or stops listening with edge traversal.
    Listen { host: HostName, on: bool },
    /// An application on `from` sends `bytes` random bytes to `to`'s first
    /// interface address of `family` (with `newest`, to the one of `family`
    /// added last: an extra address, if it has one of that family).
    Send {
        from: HostName,
        to: HostName,
        #[serde(default)]
        family: Family,
        bytes: u32,
        #[serde(default)]
        newest: bool,
    },
    /// A stable-unicast-address notification: the host's first interface
    /// gets another address of `family`.
    AddressAdd {
        host: HostName,
        #[serde(default)]
        family: Family,
    },
    /// The host's first interface loses its most recently added extra
    /// address (of either family).
    AddressRemove { host: HostName },
    /// The host's first interface gets back the extra address removed
    /// from it last (of either family), with the same transport ID: an
    /// address that went away and came back (a DHCP renewal, a roam back).
    /// Repeated, it gives back the ones removed before, in turn.
    AddressReturn { host: HostName },
    /// The host's first interface goes down: every address it has is
    /// removed (the newest first), as that many removal notifications
    /// (Wi-Fi lost, cable out, sleep).
    InterfaceDown { host: HostName },
    /// The host's first interface comes up again: every address the
    /// downs since it was last up took (and no return gave back yet) comes
    /// back with the same transport ID, in the interface's order.
    InterfaceUp { host: HostName },
    /// The host's first interface is given the first address of `family`
    /// that `of` already holds (TID-4).
    DuplicateAddress {
        host: HostName,
        of: HostName,
        #[serde(default)]
        family: Family,
    },
    /// The platform sends the host's active instances dormant.
    Dormant { host: HostName },
    /// The platform shuts down on the host.
    Shutdown { host: HostName },
    /// An infrastructure fault on the host: its sessions end with
    /// OTHER_COMMUNICATION_ERROR (the platform stays up).
    CommunicationError { host: HostName },
    /// The network drops everything between two nodes.
    Partition { a: HostName, b: HostName },
    /// All partitions end.
    Heal,
    /// New network fault settings.
    NetFaults { faults: NetFaults },
    /// New timing for provider tasks from now on: forces completions to be
    /// delivered before the callback's return, late, after a timeout, or never.
    TaskTiming { timing: crate::config::TaskTiming },
    /// Nothing: lets time pass to here.
    Advance,
}

pub(crate) type Task2 = Task;

/// Events of the simulation queue.
pub(crate) enum Ev {
    /// Call a callback for an operation the platform wants done: the
    /// operation, its instance and session wait in `World::issued`, in the
    /// slot named.
    Invoke(u32),
    /// Deliver ESTABLISH (when not delivered inside Register).
    Establish { inst: u32, session: u32 },
    /// Deliver TERMINATE.
    Terminate {
        inst: u32,
        session: u32,
        reason: Reason,
    },
    /// A call's time limit.
    Deadline { serial: u32 },
    /// The provider should have deregistered by now (LIFE-7).
    DeregisterDue { inst: u32, session: u32 },
    /// The platform checks whether an instance has been idle long enough.
    IdleCheck { inst: u32, session: u32 },
    /// A provider task or timer: the task waits in `World::tasks`, in the
    /// slot named.
    Task { host: u8, stalled: bool, task: u32 },
    /// A packet arrives: it waits in `World::packets`, in the slot named.
    Net(u32),
    /// The platform is done with buffers indicated with a provider routine.
    IndicateDone { pending: u32 },
    /// A scheduled action (or the next of its repetitions): it waits in
    /// `World::actions`, in the slot named.
    Action(u32),
}

// Whatever an event carries beyond a few numbers is kept aside, in a slot
// of one of `World`'s `Kept` tables, so that an `Ev` is 12 bytes: moved into
// the queue and out again for every callback, it is built and copied in
// registers. (At 48 bytes, with an `Op`'s transport IDs of 17 bytes at odd
// offsets, it was built in pieces on the stack and copied whole into the
// queue right away, which stalled on store forwarding: `World::issue` was
// 13% of the dispatch bench's samples, the driver loop's reads of it 6%.)
const _: () = assert!(std::mem::size_of::<Ev>() <= 16);

/// An operation issued to an instance's session and not yet called
/// (`World::issue`).
#[derive(Clone, Copy)]
struct Issued {
    inst: u32,
    session: u32,
    op: instance::Op,
}

/// A scheduled action waiting in `World::actions`: the next of `left`
/// repetitions, due at `at` and then `every` apart, with sequence numbers
/// reserved from `seq` on (see `Sim::schedule_repeated`; a single action
/// has `left` 1).
struct Scheduled {
    action: Action,
    at: Nanos,
    every: Nanos,
    left: u64,
    seq: u64,
    /// Which call of `Sim::schedule`/`schedule_repeated` made it (from 0).
    order: u32,
}

/// A scheduled action that did nothing when it ran (a provider started
/// twice, stopped when not running, dormancy asked of a host with no live
/// session, …). Nothing is recorded in the trace for it; the list lets a
/// scenario runner tell its author.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleAction {
    /// Which call of [`Sim::schedule`] or [`Sim::schedule_repeated`]
    /// scheduled it, counting from 0.
    pub order: u32,
    /// When it ran.
    pub at: Nanos,
    /// Why it did nothing, as a clause (`b's provider is not running`).
    pub why: String,
}

/// A simulated host.
pub(crate) struct Host {
    name: String,
    /// False for the infrastructure node (no platform, no provider).
    has_platform: bool,
    provider: ProviderLife,
    shutdown: bool,
    created: u32,
    /// How many times its provider was started (DATA-5 across a restart).
    starts: u32,
    default_names: u32,
    interfaces: Vec<instance::Interface>,
    listening: bool,
    /// Provider tasks the harness is holding back (timeouts are excused while > 0).
    stalls: u32,
    endpoints: BTreeMap<u16, Handler>,
    /// Extra addresses added by notifications (for AddressRemove).
    extra_addrs: u8,
    /// The host's instances (indices into `World::insts`), in creation order.
    insts: Vec<u32>,
    /// Instances marked for the next `pump_host` (see `World::mark`).
    dirty: Vec<u32>,
}

/// Where a host's provider is in its life, as the driver starts and stops it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum ProviderLife {
    /// Never started, or stopped.
    Stopped,
    Running,
    /// Its `stop` was called and has not returned: it may fail whatever it
    /// still has open (decision `quiet-when-asked`).
    Stopping,
}

/// The whole simulated world behind one lock.
///
/// Its fields belong to the engine (this module and its submodules); the
/// rest of the crate asks for what it needs by name: the provider
/// facilities of `runtime.rs` (`facilities.rs`), the ABI edge (`ffi.rs`:
/// `lifecycle.rs`, `traffic.rs`, `completion.rs`), `observe.rs` and the
/// watchdog. The recorder (`rec`: the step counter, the trace, the
/// violations) is the one field read directly, by `observe.rs`.
pub(crate) struct World {
    cfg: Config,
    id: WorldId,
    now: Nanos,
    queue: EventQueue<Ev>,
    rng: Rng,
    hosts: Vec<Host>,
    insts: Vec<Instance>,
    calls: Calls,
    args: ArgPool,
    net: Network,
    traffic: Traffic,
    /// The step counter, the trace and the violations: what the engine's
    /// parts borrow to record what they saw.
    rec: trace::Recorder,
    start: Instant,
    /// Randomness for task timing and provider use.
    task_rng: Rng,
    /// Tasks the harness decided never to run (kept until the world ends).
    limbo: Vec<Task2>,
    /// A cleared vector `pump_host` reuses (no allocation per pump).
    spare_marks: Vec<u32>,
    /// A second one, for the instances the pump's datagram pass marked.
    spare_more: Vec<u32>,
    /// What events name by slot (see `Kept`): scheduled actions waiting
    /// for their time, operations issued and not yet called, provider tasks
    /// and timers, packets in flight.
    actions: Kept<Option<Scheduled>>,
    /// How many actions were scheduled (the next one's `Scheduled::order`).
    scheduled: u32,
    /// The scheduled actions that did nothing, in the order they ran.
    idle: Vec<IdleAction>,
    issued: Kept<Issued>,
    tasks: Kept<Option<Task2>>,
    packets: Kept<Option<Packet>>,
    /// The platform faults of this world (`faults.rs`): none in a normal run.
    faults: PlatformFaults,
    /// Instances whose TRANSITION_ACTIVE completed with S_OK while still in
    /// its callback: they may indicate already (decision `early-success`);
    /// cleared when the callback returns.
    reported_active: Vec<u32>,
}

/// What every handle and context points back to. Its fields belong to the
/// engine; the rest of the crate uses the methods below.
pub(crate) struct Shared {
    /// The world's identity (also in `World::id`; here to be read unlocked).
    id: WorldId,
    world: Mutex<World>,
    wake: Condvar,
    providers: Mutex<Vec<Option<Box<dyn Provider>>>>,
    factory: Arc<dyn ProviderFactory>,
    /// The platform the providers' calls go to (the simulator's own, or a
    /// native one: see `crate::platform`).
    platform: &'static dyn Platform,
    /// Safe-API user contexts, kept for the world's lifetime.
    keepalive: Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>>,
    /// What the watchdog watches: odd while a callback runs (see
    /// `watchdog`); written only with `world` locked (`dispatch::InCallback`).
    cb_epoch: std::sync::atomic::AtomicU64,
    /// The instance and callback running: `inst << 8 | callback index`.
    cb_what: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// The world's identity (read unlocked).
    pub(crate) fn id(&self) -> WorldId {
        self.id
    }

    /// The world, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock()
    }

    /// The world, if its lock is free now.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, World>> {
        self.world.try_lock()
    }

    /// The world, if its lock comes free within `wait`.
    pub(crate) fn try_lock_for(&self, wait: std::time::Duration) -> Option<MutexGuard<'_, World>> {
        self.world.try_lock_for(wait)
    }

    /// Wakes the driver: something may be due (a real-time run waits for it).
    pub(crate) fn wake(&self) {
        self.wake.notify_all();
    }

    /// The platform the providers' calls go to.
    pub(crate) fn platform(&self) -> &'static dyn Platform {
        self.platform
    }

    /// Keeps a safe-API user context alive for the world's lifetime.
    pub(crate) fn keep_alive(&self, user_context: Arc<dyn std::any::Any + Send + Sync>) {
        self.keepalive.lock().push(user_context);
    }

    /// A number that changes whenever a callback starts or returns, odd
    /// while one runs (see `watchdog`).
    pub(crate) fn callback_epoch(&self) -> u64 {
        self.cb_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The instance slot and callback that ran last (or run now, if the
    /// epoch is odd): two relaxed atomic reads, no lock.
    pub(crate) fn callback_running(&self) -> (u32, crate::config::Callback) {
        let what = self.cb_what.load(std::sync::atomic::Ordering::Relaxed);
        let all = crate::config::Callback::ALL;
        ((what >> 8) as u32, all[(what & 0xFF) as usize % all.len()])
    }
}

impl World {
    /// Appends an event to the trace, now (and counts the step): see
    /// [`trace::Recorder::record`].
    #[inline]
    pub fn record(&mut self, host: u8, inst: u32, what: What) {
        self.rec.record(self.now, host, inst, what);
    }

    /// [`record`](Self::record) for the events of every callback and
    /// datagram (see [`trace::Recorder::record_hot`]).
    #[inline(always)]
    pub fn record_hot(&mut self, host: u8, inst: u32, what: What) {
        self.rec.record_hot(self.now, host, inst, what);
    }

    /// Whether host `host`'s provider is inside its `stop`: asked to stop,
    /// it may fail what it still has open (decision `quiet-when-asked`).
    pub fn stopping(&self, host: u8) -> bool {
        self.hosts[host as usize].provider == ProviderLife::Stopping
    }

    /// Records a violation, now: in the list and in the trace (see
    /// [`trace::Recorder::violate`]).
    pub fn violate(
        &mut self,
        rule: RuleId,
        host: u8,
        inst: u32,
        callback: Option<&str>,
        message: String,
    ) {
        self.rec
            .violate(self.now, rule, host, inst, callback, message);
    }

    pub fn host_index(&self, name: &str) -> Option<u8> {
        self.hosts
            .iter()
            .position(|h| h.name == name)
            .map(|i| i as u8)
    }

    pub fn schedule(&mut self, at: Nanos, ev: Ev) {
        if at <= self.now {
            // Due at once: no heap round trip (same order, see `EventQueue`).
            self.queue.push_now(self.now, ev);
        } else {
            self.queue.push(at, ev);
        }
    }

    /// The current time (real-time runs read the wall clock).
    pub fn sync_clock(&mut self) {
        if self.cfg.clock == ClockMode::RealTime {
            let real = Nanos::from_std(self.start.elapsed());
            if real > self.now {
                self.now = real;
            }
        }
    }

    /// Instance `inst`'s host and per-host number, if it exists.
    pub fn inst_location(&self, inst: u32) -> Option<(u8, u32)> {
        self.insts.get(inst as usize).map(|i| (i.host(), i.n()))
    }

    pub fn inst_name(&self, inst: u32) -> String {
        let i = &self.insts[inst as usize];
        trace::instance_name(self.rec.hosts(), i.host(), i.n())
    }
}

/// A simulation: hosts, their platforms, the network, the clock.
///
/// `Sim` is the harness's handle; providers see only [`Cx`] and the ABI.
pub struct Sim {
    pub(crate) shared: Arc<Shared>,
    /// One context per host, for the dispatch path (not one per callback).
    cxs: Vec<Cx>,
}

/// What a finished run leaves: its violations and its trace.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub violations: Vec<Violation>,
    pub trace: trace::Trace,
    /// Virtual time at the end of the run.
    pub end: Nanos,
    /// Application datagrams sent, delivered.
    pub sent: u32,
    pub delivered: u32,
    /// The scheduled actions that did nothing (see [`IdleAction`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idle: Vec<IdleAction>,
}

/// From a thread with no simulated host: the first host of the only live
/// world, if exactly one is alive (a black-box provider's own thread).
pub(crate) fn only_world_first_host() -> Option<Cx> {
    handle::only_live_world().map(|s| Cx::new(s, 0))
}

/// A safe-API callback panicked (CRASH-1): report it and end the session
/// with PROVIDER_OTHER_FAILURE.
pub(crate) fn report_crash(handle: u64, cb: crate::config::Callback, msg: &str) {
    let Some((world, idx)) = handle::decode(handle::Kind::Instance, handle) else {
        return;
    };
    let Some(shared) = handle::lookup(world) else {
        return;
    };
    let mut w = shared.world.lock();
    let Some(i) = w.insts.get(idx as usize) else {
        return;
    };
    let (host, n) = (i.host(), i.n());
    w.violate(
        crate::rules::id::CRASH_1,
        host,
        n,
        Some(cb.name()),
        format!("the callback panicked: {msg}"),
    );
    w.end_session(
        idx,
        Reason::ProviderOtherFailure,
        "the provider crashed in a callback",
    );
    drop(w);
    shared.wake.notify_all();
}

/// A safe-API `Pending` was dropped without completing (COMP-4).
pub(crate) fn report_dropped_completion(ctx: usize) {
    let Some((world, serial)) = handle::decode(handle::Kind::Completion, ctx as u64) else {
        return;
    };
    let Some(shared) = handle::lookup(world) else {
        return;
    };
    // A token dropped by a thread that holds the world lock (the world
    // tearing down) must not deadlock: then the report is skipped.
    let Some(mut w) = shared
        .world
        .try_lock_for(std::time::Duration::from_millis(50))
    else {
        return;
    };
    if let Some((rule, tag)) = w.calls.dropped(serial) {
        let (inst, cb) = (tag.inst(), tag.cb());
        let (host, n) = (w.insts[inst as usize].host(), w.insts[inst as usize].n());
        w.violate(
            rule,
            host,
            n,
            Some(cb.name()),
            format!("the Pending token of call {serial} was dropped without completing"),
        );
    }
}

/// The name of the infrastructure node every world has.
pub const INFRA: &str = "infra";

impl Sim {
    /// A world with these hosts (each with a platform) plus the
    /// infrastructure node, running providers made by `factory`.
    pub fn new(cfg: Config, hosts: &[&str], factory: Arc<dyn ProviderFactory>) -> Sim {
        Sim::with_platform(cfg, hosts, factory, &SIMULATED)
    }

    /// A world whose providers call `platform` instead of the simulator's
    /// (see [`crate::platform`]): the world supplies only their tasks,
    /// timers and network, and runs in real time (`cfg.clock` is set to
    /// [`ClockMode::RealTime`]), since another platform keeps its own time.
    /// Its hosts' simulated platforms stay idle; what the other platform
    /// does is that platform's business (the native backend records it).
    /// [`Sim::finish`] drains for `cfg.drain_ms` of real time: keep it short.
    pub fn with_platform(
        mut cfg: Config,
        hosts: &[&str],
        factory: Arc<dyn ProviderFactory>,
        platform: &'static dyn Platform,
    ) -> Sim {
        if !Simulated::is(platform) {
            cfg.clock = ClockMode::RealTime;
        }
        assert!(!hosts.is_empty() && hosts.len() < 200, "1 to 199 hosts");
        let seed = cfg.seed;
        let mut all: Vec<Host> = hosts.iter().map(|n| Host::new(n, true)).collect();
        all.push(Host::new(INFRA, false));
        let net = Network::new(cfg.net.clone(), seed);
        let n_hosts = all.len();
        let shared = handle::register_world(|id| {
            Arc::new(Shared {
                id,
                world: Mutex::new(World {
                    id,
                    now: Nanos::ZERO,
                    queue: EventQueue::default(),
                    rng: Rng::stream(seed, "platform"),
                    task_rng: Rng::stream(seed, "tasks"),
                    limbo: Vec::new(),
                    spare_marks: Vec::new(),
                    spare_more: Vec::new(),
                    actions: Kept::new(),
                    scheduled: 0,
                    idle: Vec::new(),
                    issued: Kept::new(),
                    tasks: Kept::new(),
                    packets: Kept::new(),
                    rec: trace::Recorder::new(
                        all.iter().map(|h| h.name.clone()).collect(),
                        cfg.trace,
                        cfg.trace_limit,
                    ),
                    hosts: all,
                    insts: Vec::new(),
                    calls: Calls::default(),
                    args: ArgPool::new(),
                    net,
                    traffic: Traffic::default(),
                    start: Instant::now(),
                    faults: PlatformFaults::of(&cfg),
                    reported_active: Vec::new(),
                    cfg,
                }),
                wake: Condvar::new(),
                providers: Mutex::new((0..n_hosts).map(|_| None).collect()),
                factory,
                platform,
                keepalive: Mutex::new(Vec::new()),
                cb_epoch: Default::default(),
                cb_what: Default::default(),
            })
        });
        crate::watchdog::watch(&shared);
        let cxs = (0..n_hosts)
            .map(|h| Cx::new(shared.clone(), h as u8))
            .collect();
        let sim = Sim { shared, cxs };
        let infra = Cx::new(sim.shared.clone(), (n_hosts - 1) as u8);
        crate::runtime::with_current(&infra, || sim.shared.factory.infrastructure(&infra));
        sim
    }

    /// Schedules an action at a virtual time.
    pub fn schedule(&self, at: Nanos, action: Action) {
        let mut w = self.shared.world.lock();
        let order = w.scheduled;
        w.scheduled += 1;
        let slot = w.actions.keep(Some(Scheduled {
            action,
            at,
            every: Nanos::ZERO,
            left: 1,
            seq: 0,
            order,
        }));
        w.schedule(at, Ev::Action(slot));
    }

    /// Schedules `count` repetitions of an action: at `at`, `at + every`,
    /// `at + 2 × every`… Exactly as if each had been scheduled now, in that
    /// order (their sequence numbers are reserved now: at an instant they
    /// share with other events, they come where those schedules would have
    /// put them), but one event is queued at a time.
    pub fn schedule_repeated(&self, at: Nanos, every: Nanos, count: u64, action: Action) {
        if count == 0 {
            return;
        }
        let mut w = self.shared.world.lock();
        let order = w.scheduled;
        w.scheduled += 1;
        let seq = w.queue.reserve_block(count);
        let at = at.max(w.now);
        let slot = w.actions.keep(Some(Scheduled {
            action,
            at,
            every,
            left: count,
            seq,
            order,
        }));
        w.queue.push_reserved(at, seq, Ev::Action(slot));
    }

    /// The current virtual time.
    pub fn now(&self) -> Nanos {
        self.shared.world.lock().now
    }

    /// Violations so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared.world.lock().rec.violations().to_vec()
    }

    /// A context for `host` (to call the platform as that host's provider would).
    pub fn cx(&self, host: &str) -> Cx {
        let h = self
            .shared
            .world
            .lock()
            .host_index(host)
            .expect("no such host");
        Cx::new(self.shared.clone(), h)
    }

    /// Runs every event due up to `until` (inclusive), then sets the clock there.
    pub fn run_until(&self, until: Nanos) {
        // One lock taken for the loop: an event is handed the guard and
        // hands it back (released only around provider code), so events
        // that run no provider code cost no extra lock round trip.
        let _driving = crate::runtime::Driving::enter(&self.cxs);
        drop(self.drive(self.shared.world.lock(), until));
    }

    /// The driver loop of [`run_until`](Self::run_until), given the
    /// world's guard and handing it back at the end (the caller holds a
    /// [`Driving`](crate::runtime::Driving)).
    fn drive<'a>(&'a self, mut w: MutexGuard<'a, World>, until: Nanos) -> MutexGuard<'a, World> {
        loop {
            w.sync_clock();
            let realtime = w.cfg.clock == ClockMode::RealTime;
            let limit = if realtime { w.now } else { until };
            match w.queue.pop_due(limit) {
                Some((at, ev)) => {
                    if at > w.now {
                        w.now = at;
                    }
                    w = self.execute(ev, w);
                }
                None => {
                    if !realtime || w.now >= until {
                        if w.now < until {
                            w.now = until;
                        }
                        return w;
                    }
                    let next = w.queue.peek_time().unwrap_or(until).min(until);
                    let wait = next
                        .saturating_sub(w.now)
                        .to_std()
                        .min(std::time::Duration::from_millis(5));
                    self.shared.wake.wait_for(&mut w, wait);
                }
            }
        }
    }

    /// Runs for `d` more.
    pub fn run_for(&self, d: Nanos) {
        let t = self.now().saturating_add(d);
        self.run_until(t);
    }

    /// Lets in-flight work drain, checks end-to-end delivery (DATA-5),
    /// stops every running provider (LIFE-8), and returns the outcome.
    pub fn finish(self) -> Outcome {
        let drain = Nanos::from_millis(self.shared.world.lock().cfg.drain_ms);
        self.run_for(drain);
        self.shared.world.lock().check_losses();
        let running: Vec<String> = {
            let w = self.shared.world.lock();
            w.hosts
                .iter()
                .filter(|h| h.provider == ProviderLife::Running)
                .map(|h| h.name.clone())
                .collect()
        };
        for host in running {
            let w = self.shared.world.lock();
            drop(
                self.action(&Action::StopProvider { host: host.into() }, w)
                    .0,
            );
        }
        // What the stops set off: a second of virtual time, free; in real
        // time only what is already due (no fixed wait of the wall clock).
        let realtime = self.shared.world.lock().cfg.clock == ClockMode::RealTime;
        self.run_for(if realtime {
            Nanos::ZERO
        } else {
            Nanos::from_secs(1)
        });
        let mut w = self.shared.world.lock();
        w.check_unfinished_calls();
        Outcome {
            violations: w.rec.take_violations(),
            trace: w.rec.take(),
            end: w.now,
            sent: w.traffic.sent(),
            delivered: w.traffic.delivered(),
            idle: std::mem::take(&mut w.idle),
        }
    }

    /// Benchmark hook: issues `n` REACH_TRANSPORT_ID calls, one after the
    /// other, on the first active instance that holds a transport ID, towards
    /// an ID another instance holds, each through the normal path (the
    /// platform's work queue, the event queue, the dispatch path with every
    /// check and the trace as configured). Returns the number of calls made
    /// (the call serials issued). Panics if no such pair of instances exists.
    #[doc(hidden)]
    pub fn bench_dispatch(&self, n: u32) -> u32 {
        let (inst, target) = {
            let w = self.shared.world.lock();
            let found = (0..w.insts.len() as u32).find_map(|i| {
                let s = w.insts[i as usize].session()?;
                let settled = s.machine().activation == machine::Activation::Active;
                let first = s.first_held().filter(|_| s.live() && settled)?;
                let family = first.is_v4();
                w.traffic.held_by_other(i, family).map(|t| (i, t))
            });
            found.expect("bench_dispatch: no active instance with a reachable peer")
        };
        // Issued as the platform's own events issue operations: under the
        // driver loop's lock, which then runs the call.
        let _driving = crate::runtime::Driving::enter(&self.cxs);
        let mut w = self.shared.world.lock();
        // (Routing numbers the ID once for a REACH it issues: so here.)
        let target = w.traffic.tids.number(target);
        for _ in 0..n {
            w.issue(inst, instance::Op::Reach(target));
            let now = w.now;
            w = self.drive(w, now);
        }
        n
    }

    /// Benchmark hook: application datagrams sent and delivered so far, and
    /// the violations so far.
    #[doc(hidden)]
    pub fn bench_counts(&self) -> (u32, u32, usize) {
        let w = self.shared.world.lock();
        (
            w.traffic.sent(),
            w.traffic.delivered(),
            w.rec.violations().len(),
        )
    }

    /// Test hook: how many waiting datagrams the routing has examined so
    /// far (each look at one in `World::pump_datagrams` counts one).
    #[doc(hidden)]
    pub fn datagrams_examined(&self) -> u64 {
        self.shared.world.lock().traffic.examined()
    }

    /// Test hook: from now on every routing walk examines every waiting
    /// datagram, as it did before it learned which ones need no second
    /// look (to compare the two).
    #[doc(hidden)]
    pub fn examine_every_waiting_datagram(&self) {
        self.shared.world.lock().traffic.set_walk_all(true);
    }

    /// Runs one event, given the world's guard and handing it back (the
    /// lock is released only while provider code runs).
    fn execute<'a>(&'a self, ev: Ev, mut w: MutexGuard<'a, World>) -> MutexGuard<'a, World> {
        match ev {
            Ev::Invoke(k) => return dispatch::invoke_op(&self.shared, &self.cxs, w, k),
            Ev::Establish { inst, session } => {
                drop(w);
                dispatch::deliver_establish(&self.shared, inst, session)
            }
            Ev::Terminate {
                inst,
                session,
                reason,
            } => {
                drop(w);
                dispatch::deliver_terminate(&self.shared, inst, session, reason)
            }
            Ev::Deadline { serial } => {
                w.deadline(serial);
                return w;
            }
            Ev::DeregisterDue { inst, session } => {
                w.deregister_due(inst, session);
                return w;
            }
            Ev::IdleCheck { inst, session } => {
                w.idle_check(inst, session);
                return w;
            }
            Ev::Task {
                host,
                stalled,
                task,
            } => {
                let task = w.tasks.take(task);
                if stalled {
                    w.hosts[host as usize].stalls -= 1;
                }
                drop(w);
                let cx = &self.cxs[host as usize];
                crate::runtime::run_provider_code(cx, "task", || task(cx));
            }
            Ev::Net(p) => {
                let p = w.packets.take(p);
                let handler = w
                    .hosts
                    .get(p.to.node as usize)
                    .and_then(|h| h.endpoints.get(&p.to.port).cloned());
                drop(w);
                if let Some(h) = handler {
                    let cx = &self.cxs[p.to.node as usize];
                    let from: NetAddr = p.from;
                    crate::runtime::run_provider_code(cx, "network handler", || {
                        h(cx, from, &p.data)
                    });
                }
            }
            Ev::IndicateDone { pending } => {
                drop(w);
                traffic::indicate_done(&self.shared, pending)
            }
            Ev::Action(slot) => return self.scheduled_action(slot, w),
        }
        self.shared.world.lock()
    }

    /// Runs the scheduled action in slot `slot` of `World::actions` and
    /// queues its next repetition, if any. (Out of line: `execute`, which
    /// runs every event, stays small.)
    #[inline(never)]
    fn scheduled_action<'a>(
        &'a self,
        slot: u32,
        mut w: MutexGuard<'a, World>,
    ) -> MutexGuard<'a, World> {
        let s = w.actions.take(slot);
        let (mut w, idle) = self.action(&s.action, w);
        if let Some(why) = idle {
            let at = w.now;
            w.idle.push(IdleAction {
                order: s.order,
                at,
                why,
            });
        }
        if s.left > 1 {
            // Its sequence number was reserved: queued now or before
            // the action ran, it pops in the same place (whichever slot
            // it waits in).
            let next = s.at.saturating_add(s.every);
            let seq = s.seq + 1;
            let slot = w.actions.keep(Some(Scheduled {
                at: next,
                left: s.left - 1,
                seq,
                ..s
            }));
            w.queue.push_reserved(next, seq, Ev::Action(slot));
        }
        w
    }

    /// Runs action `a`; with it, why it did nothing, if it did nothing.
    fn action<'a>(
        &'a self,
        a: &Action,
        mut w: MutexGuard<'a, World>,
    ) -> (MutexGuard<'a, World>, Option<String>) {
        let idle = match a {
            Action::StartProvider { host } => {
                drop(w);
                self.start_provider(host)
            }
            Action::StopProvider { host } => {
                drop(w);
                self.stop_provider(host)
            }
            other => {
                let idle = w.platform_action(other);
                return (w, idle);
            }
        };
        (self.shared.world.lock(), idle)
    }

    /// Starts `host`'s provider; if it was running already, says so.
    fn start_provider(&self, host: &str) -> Option<String> {
        let h = {
            let mut w = self.shared.world.lock();
            let Some(h) = w
                .host_index(host)
                .filter(|&h| w.hosts[h as usize].has_platform)
            else {
                w.record(
                    0,
                    0,
                    What::Note {
                        text: format!("start: no platform host `{host}`"),
                    },
                );
                return Some(format!("`{host}` is not a host with a platform"));
            };
            if w.hosts[h as usize].provider != ProviderLife::Stopped {
                return Some(format!("{host}'s provider is already running"));
            }
            w.hosts[h as usize].provider = ProviderLife::Running;
            w.hosts[h as usize].starts += 1;
            w.hosts[h as usize].shutdown = false;
            w.record(h, 0, What::ProviderStart);
            h
        };
        let mut p = self.shared.factory.create(host);
        let cx = Cx::new(self.shared.clone(), h);
        crate::runtime::run_provider_code(&cx, "start", || p.start(&cx));
        self.shared.providers.lock()[h as usize] = Some(p);
        None
    }

    /// Stops `host`'s provider; if it was not running, says so.
    fn stop_provider(&self, host: &str) -> Option<String> {
        let h = match self.shared.world.lock().host_index(host) {
            Some(h) => h,
            None => return Some(format!("there is no host `{host}`")),
        };
        let Some(mut p) = self.shared.providers.lock()[h as usize].take() else {
            return Some(format!("{host}'s provider is not running"));
        };
        self.shared.world.lock().hosts[h as usize].provider = ProviderLife::Stopping;
        let cx = Cx::new(self.shared.clone(), h);
        crate::runtime::run_provider_code(&cx, "stop", || p.stop(&cx));
        drop(p);
        let mut w = self.shared.world.lock();
        w.record(h, 0, What::ProviderStop);
        w.hosts[h as usize].provider = ProviderLife::Stopped;
        let endpoints = std::mem::take(&mut w.hosts[h as usize].endpoints);
        w.check_stopped(h);
        drop(w);
        // Provider state is dropped unlocked: it may call back into the platform.
        drop(endpoints);
        None
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Providers may hold Cx clones (and so the world); break the cycle.
        let providers: Vec<_> = self
            .shared
            .providers
            .lock()
            .iter_mut()
            .map(Option::take)
            .collect();
        drop(providers);
        let mut w = self.shared.world.lock();
        let endpoints: Vec<_> = w
            .hosts
            .iter_mut()
            .map(|h| std::mem::take(&mut h.endpoints))
            .collect();
        let queue = std::mem::take(&mut w.queue);
        let limbo = std::mem::take(&mut w.limbo);
        drop(w);
        // Dropped unlocked: provider state may call back into the platform.
        drop((endpoints, queue, limbo));
    }
}

impl Host {
    fn new(name: &str, has_platform: bool) -> Host {
        Host {
            name: name.to_string(),
            has_platform,
            provider: ProviderLife::Stopped,
            shutdown: false,
            created: 0,
            starts: 0,
            default_names: 0,
            interfaces: Vec::new(),
            listening: false,
            stalls: 0,
            endpoints: BTreeMap::new(),
            extra_addrs: 0,
            insts: Vec::new(),
            dirty: Vec::new(),
        }
    }
}
