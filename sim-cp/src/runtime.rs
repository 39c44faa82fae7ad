//! The provider's side of the simulator: [`Cx`], the facilities a provider
//! may use (tasks, timers, the simulated network, randomness, simulated
//! blocking) and the thread-local context that routes ABI calls to the right
//! simulated host.
//!
//! A provider that uses only these facilities runs on the driver thread and
//! is reproducible from the seed. A provider may also run its own OS
//! threads; then it should run with `ClockMode::RealTime`.

use crate::config::ClockMode;
use crate::engine::{Payload, Placed, Shared};
use crate::net::NetAddr;
use crate::rules::id;
use crate::time::Nanos;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// A provider task: runs later on the simulator's driver.
pub type Task = Box<dyn FnOnce(&Cx) + Send>;
/// A network receive handler: (context, sender, datagram).
pub type Handler = Arc<dyn Fn(&Cx, NetAddr, &[u8]) + Send + Sync>;

/// A provider's handle on its simulated host.
#[derive(Clone)]
pub struct Cx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) host: u8,
}

/// A host's context that does not keep its world alive ([`Cx::downgrade`]).
#[derive(Clone)]
pub struct WeakCx {
    shared: std::sync::Weak<Shared>,
    host: u8,
}

impl WeakCx {
    /// The context, if its world is still alive.
    pub fn upgrade(&self) -> Option<Cx> {
        self.shared.upgrade().map(|shared| Cx {
            shared,
            host: self.host,
        })
    }
}

/// What a thread knows of the provider code it runs, besides [`Now`].
struct Local {
    /// The contexts of their own (not a driver's, see [`Now`]) made
    /// current on this thread, innermost last.
    current: Vec<Cx>,
    /// Tasks to run when a running callback returns (before the platform
    /// sees its return value): those of the innermost callback are the ones
    /// from its [`Now::base`] on.
    before_return: Vec<Task>,
    /// The hosts' contexts of each driver loop ([`Driving`]) running on
    /// this thread, innermost last (level k at k - 1): copied once per
    /// driver run, so that the provider code a driver runs (every callback,
    /// task and handler) makes its host current by number ([`Now::host`]),
    /// with no `Arc` clone, no drop and no access to this borrow-checked
    /// thread-local.
    drivers: Vec<Vec<Cx>>,
}

/// The innermost driver loop on this thread, in a plain `Cell`: changed
/// only when a driver loop starts or ends ([`Driving`]), read when a
/// callback starts.
#[derive(Copy, Clone)]
struct Driver {
    /// Its world: the address of its `Shared`, only compared, never read
    /// through (a driver's copies of its contexts keep it alive).
    world: usize,
    /// Its level in [`Local::drivers`] (0: no driver loop runs).
    level: u32,
}

/// The part of a thread's state that every callback changes, in a plain
/// `Cell` (no destructor, no borrow flag): read and written when a
/// callback starts and again when it ends. [`Local`] is touched only by a context
/// of its own, a task spawned for "before return", and a driver loop's
/// start and end.
///
/// Six `u32`s, no padding; the driver loop's world and level, which a
/// callback only reads, are apart in [`Driver`]. A callback keeps its outer
/// `Now` on the stack while the provider runs and writes it back when it
/// returns: 24 bytes copied whole, rather than 40 with a `u8` and padding,
/// which the compiler copied in overlapping pieces of different sizes.
#[derive(Copy, Clone)]
struct Now {
    /// A driver's context is current: host `host` of the driver at
    /// `frame` (0: none), above the first `depth` contexts of their own;
    /// any of those pushed after it (`own > depth`) are inner to it.
    frame: u32,
    host: u32,
    depth: u32,
    /// How many contexts of their own are current (`Local::current`'s length).
    own: u32,
    /// A callback runs: where its "before return" tasks start in
    /// `Local::before_return` ([`NO_CALLBACK`]: no callback runs on this
    /// thread).
    base: u32,
    /// `Local::before_return`'s length.
    pending: u32,
}

impl Now {
    const IDLE: Now = Now {
        frame: 0,
        host: 0,
        depth: 0,
        own: 0,
        base: NO_CALLBACK,
        pending: 0,
    };

    /// Whether the innermost current context is a driver's (else the
    /// innermost of their own, if any).
    fn driver_current(self) -> bool {
        self.frame > 0 && self.own == self.depth
    }
}

impl Driver {
    const NONE: Driver = Driver { world: 0, level: 0 };

    /// Whether `cx` is one of this driver loop's contexts (then it is made
    /// current by number).
    fn runs(self, cx: &Cx) -> bool {
        self.level > 0 && self.world == Arc::as_ptr(&cx.shared) as usize
    }
}

/// [`Now::base`] when no callback runs.
const NO_CALLBACK: u32 = u32::MAX;

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            current: Vec::new(),
            before_return: Vec::new(),
            drivers: Vec::new(),
        })
    };
    static NOW: Cell<Now> = const { Cell::new(Now::IDLE) };
    static DRIVER: Cell<Driver> = const { Cell::new(Driver::NONE) };
    /// Where the last provider panic silenced by [`quiet_provider_panics`]
    /// on this thread happened (`file:line:col`), for its CRASH-1 message.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

impl Local {
    /// The innermost current context, given `now`.
    fn last(&self, now: Now) -> Option<&Cx> {
        if now.driver_current() {
            return Some(&self.drivers[now.frame as usize - 1][now.host as usize]);
        }
        self.current.last()
    }
}

/// A driver loop running on this thread, with its hosts' contexts
/// (`cxs`, host i at i): while it runs, the provider code it runs makes its
/// host's context current by number (see [`Now`]); when it ends, its
/// copies are dropped, so that no thread-local keeps a world alive.
pub(crate) struct Driving {
    /// The outer driver loop, restored at the end.
    outer: Driver,
}

impl Driving {
    pub(crate) fn enter(cxs: &[Cx]) -> Driving {
        let world = cxs.first().map_or(0, |cx| Arc::as_ptr(&cx.shared) as usize);
        let cxs = cxs.to_vec();
        let level = LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            l.drivers.push(cxs);
            l.drivers.len() as u32
        });
        let outer = DRIVER.replace(Driver { world, level });
        Driving { outer }
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVER.set(self.outer);
        // Dropped outside the borrow (dropping the last context of a world
        // may run provider code).
        let cxs = LOCAL.with(|l| l.borrow_mut().drivers.pop());
        drop(cxs);
    }
}

/// Makes panics inside provider code silent on stderr (they are reported
/// as CRASH-1 violations with their message instead); panics anywhere else
/// still go to the previous hook. Idempotent.
pub fn quiet_provider_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        let cwd = std::env::current_dir().ok();
        std::panic::set_hook(Box::new(move |info| {
            // (A panic while the borrow-checked stack is borrowed is the
            // harness's own, even while provider code is current.)
            let harness_borrow = LOCAL
                .try_with(|l| l.try_borrow_mut().is_err())
                .unwrap_or(false);
            let in_provider = !harness_borrow
                && NOW
                    .try_with(|n| {
                        let n = n.get();
                        n.own > 0 || n.frame > 0
                    })
                    .unwrap_or(false);
            if !in_provider {
                previous(info);
            } else if let Some(at) = info.location() {
                // Silenced, so say where in the message (panic_message).
                let file = short_path(at.file(), cwd.as_deref());
                let at = format!("{file}:{}:{}", at.line(), at.column());
                let _ = PANIC_AT.try_with(|p| p.replace(Some(at)));
            }
        }));
    });
}

/// A panic's source file as a reader can use it on any machine: the
/// compiler's path is kept when relative (a crate of the workspace), made
/// relative to the working directory when under it (a path dependency),
/// and cut to `crate-version/...` for a crate from a registry.
fn short_path<'a>(file: &'a str, cwd: Option<&std::path::Path>) -> &'a str {
    let path = std::path::Path::new(file);
    if let Some(rest) = cwd.and_then(|d| path.strip_prefix(d).ok()) {
        // A path under the working directory is valid UTF-8 (a suffix of
        // `file`), so its text is the end of `file`.
        return &file[file.len() - rest.as_os_str().len()..];
    }
    for registry in ["/registry/src/", "\\registry\\src\\"] {
        if let Some(i) = file.find(registry) {
            // Past the registry's own directory (e.g. `index.crates.io-…`).
            let after = &file[i + registry.len()..];
            if let Some(j) = after.find(['/', '\\']) {
                return &after[j + 1..];
            }
        }
    }
    file
}

/// Makes `cx` current in `now`: by number if it is the innermost driver
/// loop's, else pushed as a context of its own (true).
#[inline]
fn begin_context(cx: &Cx, now: &mut Now) -> bool {
    let driver = DRIVER.get();
    if driver.runs(cx) {
        (now.frame, now.host, now.depth) = (driver.level, u32::from(cx.host), now.own);
        return false;
    }
    push_own(cx);
    now.own += 1;
    true
}

/// Pushes `cx` as a context of its own. (It does not take the caller's
/// `Now`: a `&mut Now` passed out of line would keep that value in memory,
/// written field by field and read back wider, a store-forwarding stall on
/// every callback.)
#[cold]
fn push_own(cx: &Cx) {
    LOCAL.with(|l| l.borrow_mut().current.push(cx.clone()));
}

/// Pops the innermost context of its own; dropped outside the borrow
/// (dropping a context may run provider code).
#[cold]
fn pop_own() {
    let popped = LOCAL.with(|l| l.borrow_mut().current.pop());
    drop(popped);
}

/// Ends a context made current by [`with_current`] when dropped (also on
/// unwinding): [`Now`] as it was before (every inner change is undone by
/// then), but for the "before return" tasks spawned meanwhile.
struct EndFrame {
    outer: Now,
    own: bool,
}

impl Drop for EndFrame {
    fn drop(&mut self) {
        NOW.set(Now {
            pending: NOW.get().pending,
            ..self.outer
        });
        if self.own {
            pop_own();
        }
    }
}

/// Runs `f` with `cx` as the current context of this thread.
pub(crate) fn with_current<R>(cx: &Cx, f: impl FnOnce() -> R) -> R {
    let mut now = NOW.get();
    let outer = now;
    let own = begin_context(cx, &mut now);
    NOW.set(now);
    let _end = EndFrame { outer, own };
    f()
}

/// Runs `f` with the current context of this thread, borrowed (no `Arc`
/// clone). `f` must not run provider code (which would set a context).
pub(crate) fn with_current_ref<R>(f: impl FnOnce(Option<&Cx>) -> R) -> R {
    let now = NOW.get();
    if now.own == 0 && now.frame == 0 {
        return f(None);
    }
    LOCAL.with(|l| f(l.borrow().last(now)))
}

/// Runs provider code (a task, handler, start or stop): with the context
/// set and panics caught and reported as CRASH-1.
pub(crate) fn run_provider_code(cx: &Cx, what: &str, f: impl FnOnce()) {
    let r = with_current(cx, || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
    });
    if let Err(p) = r {
        let msg = panic_message(&*p);
        let mut w = cx.shared.lock();
        w.violate(
            id::CRASH_1,
            cx.host,
            0,
            None,
            format!("provider {what} panicked: {msg}"),
        );
    }
}

/// Ends a callback: [`Now`] as it was before it (every inner change is
/// undone by then; its "before return" tasks are taken, which leaves the
/// outer callback's), its context of its own popped if it had one. Also
/// run when unwinding, the tasks then dropped.
struct EndCallback {
    outer: Now,
    own: bool,
    ended: bool,
}

impl EndCallback {
    /// Whether the callback spawned "before return" tasks (then taken
    /// with [`take_tasks`]).
    #[inline]
    fn end(&mut self) -> bool {
        self.ended = true;
        let spawned = NOW.get().pending > self.outer.pending;
        NOW.set(self.outer);
        if self.own {
            pop_own();
        }
        spawned
    }
}

/// The "before return" tasks of a callback that just ended, whose tasks
/// started at `base`.
#[cold]
fn take_tasks(base: u32) -> Vec<Task> {
    LOCAL.with(|l| l.borrow_mut().before_return.split_off(base as usize))
}

impl Drop for EndCallback {
    fn drop(&mut self) {
        if !self.ended && self.end() {
            drop(take_tasks(self.outer.pending));
        }
    }
}

/// Runs a callback: context set, tasks spawned for "before return" run
/// after it returns. Returns what the callback returned. A callback the
/// driver loop runs for one of its hosts reads and writes one `Cell` at
/// its start and one at its end (see [`Now`]).
#[inline]
pub(crate) fn run_callback<R>(cx: &Cx, f: impl FnOnce() -> R) -> R {
    let outer = NOW.get();
    let mut now = outer;
    let own = begin_context(cx, &mut now);
    now.base = outer.pending;
    NOW.set(now);
    let mut end = EndCallback {
        outer,
        own,
        ended: false,
    };
    let r = f();
    if end.end() {
        for t in take_tasks(outer.pending) {
            run_provider_code(cx, "task", || t(cx));
        }
    }
    r
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let what = if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    };
    // Where it happened, when the quiet hook kept it from stderr.
    match PANIC_AT.try_with(|p| p.take()).ok().flatten() {
        Some(at) => format!("{what} (at {at})"),
        None => what,
    }
}

impl Cx {
    pub(crate) fn new(shared: Arc<Shared>, host: u8) -> Cx {
        Cx { shared, host }
    }

    /// The context of the simulated host whose provider code runs on this thread.
    pub fn current() -> Option<Cx> {
        with_current_ref(|cx| cx.cloned())
    }

    /// Runs `f` with this host as the current context of the calling thread:
    /// how a provider's own threads make their raw ABI calls reach the
    /// right simulated host.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        with_current(self, f)
    }

    /// The platform this host's provider calls: the simulator's, or the
    /// one the world was made with ([`crate::Sim::with_platform`]).
    pub fn platform(&self) -> &'static dyn crate::platform::Platform {
        self.shared.platform()
    }

    /// A weak handle on this host, for code the platform may call from
    /// threads of its own (a native platform does): it keeps no world alive.
    pub fn downgrade(&self) -> WeakCx {
        WeakCx {
            shared: Arc::downgrade(&self.shared),
            host: self.host,
        }
    }

    /// The host's name.
    pub fn host_name(&self) -> String {
        self.shared.lock().host_name(self.host).to_string()
    }

    /// The host's index (its network node).
    pub fn host_index(&self) -> u8 {
        self.host
    }

    /// Names of every host with a platform.
    pub fn hosts(&self) -> Vec<String> {
        self.shared.lock().platform_host_names()
    }

    /// The current (virtual) time.
    pub fn now(&self) -> Nanos {
        self.shared.lock().clock_now()
    }

    /// Whether this run uses virtual time (false: real time).
    pub fn is_virtual(&self) -> bool {
        self.shared.lock().clock_mode() == ClockMode::Virtual
    }

    /// Spawns a worker task. When it runs relative to the spawning callback
    /// is the harness's choice (`Config::tasks`): before the callback's return
    /// is seen, right after, late, after a timeout, or never.
    pub fn spawn(&self, f: impl FnOnce(&Cx) + Send + 'static) {
        let task: Task = Box::new(f);
        let in_callback = NOW.get().base != NO_CALLBACK;
        let placed = self.shared.lock().place_task(self.host, task, in_callback);
        match placed {
            Placed::BeforeReturn(task) => {
                LOCAL.with(|l| l.borrow_mut().before_return.push(task));
                NOW.set(Now {
                    pending: NOW.get().pending + 1,
                    ..NOW.get()
                });
            }
            Placed::Queued => self.shared.wake(),
            Placed::Never => {}
        }
    }

    /// Runs `f` after `d` of (virtual) time.
    pub fn after(&self, d: Nanos, f: impl FnOnce(&Cx) + Send + 'static) {
        self.shared.lock().timer(self.host, d, Box::new(f));
        self.shared.wake();
    }

    /// A random number from the run's seed.
    pub fn random(&self) -> u64 {
        self.shared.lock().random()
    }

    /// Simulates blocking work of duration `d` on the current thread: in
    /// virtual time the clock moves on (nothing else runs meanwhile); in real
    /// time the thread sleeps.
    pub fn block_for(&self, d: Nanos) {
        let moved = self.shared.lock().block_for(d);
        if !moved {
            std::thread::sleep(d.to_std());
        }
    }

    /// Binds `port` on this host's node; `handler` receives its datagrams.
    pub fn bind(
        &self,
        port: u16,
        handler: impl Fn(&Cx, NetAddr, &[u8]) + Send + Sync + 'static,
    ) -> Result<NetAddr, String> {
        self.shared.lock().bind(self.host, port, Arc::new(handler))
    }

    /// Closes `port` on this host.
    pub fn unbind(&self, port: u16) {
        self.shared.lock().unbind(self.host, port);
    }

    /// Sends a datagram from this host's `from_port` to `to` over the
    /// simulated network (loss, delay, duplication, partitions apply).
    pub fn send_to(&self, from_port: u16, to: NetAddr, data: &[u8]) {
        self.shared
            .lock()
            .send_datagram(self.host, from_port, to, Payload::Borrowed(data));
        self.shared.wake();
    }

    /// As [`send_to`](Self::send_to), for a datagram the provider built in
    /// a `Vec` of its own and no longer needs: the network keeps that
    /// buffer as the packet, so its bytes are not copied (only a
    /// duplicate the network makes is).
    pub fn send_vec(&self, from_port: u16, to: NetAddr, data: Vec<u8>) {
        self.shared
            .lock()
            .send_datagram(self.host, from_port, to, Payload::Owned(data));
        self.shared.wake();
    }

    /// The network address of `port` on the named host (or the infrastructure node).
    pub fn addr_of(&self, host: &str, port: u16) -> Option<NetAddr> {
        self.shared
            .lock()
            .host_index(host)
            .map(|node| NetAddr { node, port })
    }

    /// The address of `port` on the infrastructure node.
    pub fn infra(&self, port: u16) -> NetAddr {
        self.addr_of(crate::engine::INFRA, port)
            .expect("every world has an infrastructure node")
    }
}

#[cfg(test)]
mod tests {
    use super::short_path;
    use std::path::Path;

    #[test]
    fn crash_1_panic_paths_read_the_same_on_every_machine() {
        let cwd = Some(Path::new("/home/ann/provider"));
        // A workspace crate's path is relative already.
        assert_eq!(short_path("src/lib.rs", cwd), "src/lib.rs");
        // A path dependency under the working directory.
        assert_eq!(
            short_path("/home/ann/provider/vendor/x/src/a.rs", cwd),
            "vendor/x/src/a.rs"
        );
        // A registry crate: from the crate's directory on.
        assert_eq!(
            short_path(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/foo-1.2.3/src/b.rs",
                cwd
            ),
            "foo-1.2.3/src/b.rs"
        );
        assert_eq!(
            short_path(
                r"C:\Users\ann\.cargo\registry\src\index.crates.io-1949\foo-1.2.3\src\b.rs",
                None
            ),
            r"foo-1.2.3\src\b.rs"
        );
        // Anything else is left as it is.
        assert_eq!(
            short_path("/opt/other/src/c.rs", cwd),
            "/opt/other/src/c.rs"
        );
        assert_eq!(
            short_path("/home/ann/provider-two/src/d.rs", cwd),
            "/home/ann/provider-two/src/d.rs"
        );
    }
}
