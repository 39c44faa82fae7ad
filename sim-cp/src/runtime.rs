//! The provider's side of the simulator: [`Cx`], the facilities a provider
//! may use (tasks, timers, the simulated network, randomness, simulated
//! blocking) and the thread-local context that routes ABI calls to the right
//! simulated host.
//!
//! A provider that uses only these facilities runs on the driver thread and
//! is reproducible from the seed. A provider may also run its own OS
//! threads; then it should run with `ClockMode::RealTime`.

use crate::config::ClockMode;
use crate::engine::{Placed, Shared};
use crate::net::NetAddr;
use crate::rules::id;
use crate::time::Nanos;
use std::cell::RefCell;
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

/// What a thread knows of the provider code it runs, in one thread-local
/// (one access per change, not one per field).
struct Local {
    /// The contexts of the provider code running on this thread, innermost last.
    current: Vec<Cx>,
    /// Tasks to run when a running callback returns (before the platform
    /// sees its return value): those of the innermost callback are the ones
    /// from `callback_base` on.
    before_return: Vec<Task>,
    /// Where the innermost running callback's tasks start in
    /// `before_return` (None: no callback runs on this thread).
    callback_base: Option<usize>,
    /// Contexts popped while a driver loop runs on this thread (see
    /// [`Driving`]), kept for the next callback of the same host: the
    /// dispatch path then sets the current context without an `Arc` clone.
    spare: Vec<Cx>,
    /// How many driver loops ([`Driving`]) are running on this thread.
    driving: u32,
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            current: Vec::new(),
            before_return: Vec::new(),
            callback_base: None,
            spare: Vec::new(),
            driving: 0,
        })
    };
}

/// Spare contexts kept per thread at most.
const MAX_SPARE: usize = 8;

impl Local {
    /// Makes `cx` current: a spare copy of it if there is one, else a clone.
    fn push(&mut self, cx: &Cx) {
        let own = match self
            .spare
            .iter()
            .rposition(|x| x.host == cx.host && Arc::ptr_eq(&x.shared, &cx.shared))
        {
            Some(k) => self.spare.swap_remove(k),
            None => cx.clone(),
        };
        self.current.push(own);
    }

    /// Ends the innermost context: kept as a spare while a driver loop
    /// runs, else handed back to be dropped outside the borrow.
    fn pop(&mut self) -> Option<Cx> {
        let cx = self.current.pop()?;
        if self.driving > 0 && self.spare.len() < MAX_SPARE {
            self.spare.push(cx);
            return None;
        }
        Some(cx)
    }
}

/// A driver loop running on this thread: while one does, contexts that
/// [`with_current`] pops are kept for reuse (the world is alive while its
/// driver runs); when the outermost loop ends they are dropped, so that no
/// thread-local keeps a world alive.
pub(crate) struct Driving(());

impl Driving {
    pub(crate) fn enter() -> Driving {
        LOCAL.with(|l| l.borrow_mut().driving += 1);
        Driving(())
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        let left = LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            l.driving -= 1;
            l.driving
        });
        if left == 0 {
            // One at a time, outside the borrow (dropping the last context
            // of a world may run provider code); the vector is kept.
            while let Some(cx) = LOCAL.with(|l| l.borrow_mut().spare.pop()) {
                drop(cx);
            }
        }
    }
}

/// Makes panics inside provider code silent on stderr (they are reported
/// as CRASH-1 violations with their message instead); panics anywhere else
/// still go to the previous hook. Idempotent.
pub fn quiet_provider_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // (A panic while the thread-local is borrowed is not provider code's.)
            let in_provider = LOCAL
                .try_with(|l| l.try_borrow().is_ok_and(|l| !l.current.is_empty()))
                .unwrap_or(false);
            if !in_provider {
                previous(info);
            }
        }));
    });
}

/// Ends the innermost current context when dropped (also on unwinding).
struct Pop;
impl Drop for Pop {
    fn drop(&mut self) {
        let popped = LOCAL.with(|l| l.borrow_mut().pop());
        drop(popped);
    }
}

/// Runs `f` with `cx` as the current context of this thread.
pub(crate) fn with_current<R>(cx: &Cx, f: impl FnOnce() -> R) -> R {
    LOCAL.with(|l| l.borrow_mut().push(cx));
    let _pop = Pop;
    f()
}

/// Runs `f` with the current context of this thread, borrowed (no `Arc`
/// clone). `f` must not run provider code (which would set a context).
pub(crate) fn with_current_ref<R>(f: impl FnOnce(Option<&Cx>) -> R) -> R {
    LOCAL.with(|l| f(l.borrow().current.last()))
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

/// Ends a callback's context and takes the tasks it spawned for "before
/// return", restoring the outer callback's (`outer`): one access to the
/// thread-local. Also run when unwinding, the tasks then dropped.
struct EndCallback {
    outer: Option<usize>,
    ended: bool,
}

impl EndCallback {
    fn end(&mut self) -> Option<Vec<Task>> {
        self.ended = true;
        let (popped, tasks) = LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            let popped = l.pop();
            let base = std::mem::replace(&mut l.callback_base, self.outer)
                .expect("a callback's base is set while it runs");
            let tasks = (l.before_return.len() > base).then(|| l.before_return.split_off(base));
            (popped, tasks)
        });
        // Dropped outside the borrow (dropping a context may run provider code).
        drop(popped);
        tasks
    }
}

impl Drop for EndCallback {
    fn drop(&mut self) {
        if !self.ended {
            drop(self.end());
        }
    }
}

/// Runs a callback: context set, tasks spawned for "before return" run
/// after it returns. Returns what the callback returned.
pub(crate) fn run_callback<R>(cx: &Cx, f: impl FnOnce() -> R) -> R {
    let outer = LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        l.push(cx);
        let base = l.before_return.len();
        l.callback_base.replace(base)
    });
    let mut end = EndCallback {
        outer,
        ended: false,
    };
    let r = f();
    if let Some(tasks) = end.end() {
        for t in tasks {
            run_provider_code(cx, "task", || t(cx));
        }
    }
    r
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

impl Cx {
    pub(crate) fn new(shared: Arc<Shared>, host: u8) -> Cx {
        Cx { shared, host }
    }

    /// The context of the simulated host whose provider code runs on this thread.
    pub fn current() -> Option<Cx> {
        LOCAL.with(|l| l.borrow().current.last().cloned())
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
        let in_callback = LOCAL.with(|l| l.borrow().callback_base.is_some());
        let placed = self.shared.lock().place_task(self.host, task, in_callback);
        match placed {
            Placed::BeforeReturn(task) => LOCAL.with(|l| l.borrow_mut().before_return.push(task)),
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
            .send_datagram(self.host, from_port, to, data);
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
