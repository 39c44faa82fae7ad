//! The case runner: the child process (`cpsim __run-case`) that loads a C
//! module and runs cases of it, so that nothing the module does — a
//! crash, an `exit`, a hang, output without end — reaches the harness.
//!
//! It keeps the protocol pipes to itself (fd 0 and 1 are moved away; the
//! module's stdout goes to stderr, which the harness captures, bounded),
//! sets up network isolation ([`super::sandbox`]), then serves what the
//! harness sends, one case at a time, each on a fresh thread with its own
//! network namespace. A case that runs past its deadline is reported with
//! what it recorded so far, and the runner ends itself; so does a module
//! that calls `exit` (reported from an exit handler) or crashes (a signal
//! handler writes which signal, and where, before the signal ends it).
//!
//! On Windows the same, through [`super::win`]: the protocol off the
//! standard handles, an unhandled-exception filter instead of the signal
//! handler (it names the exception code), an exit handler of the C
//! runtime, and no network namespace (cases share the machine's network).

use super::proto::{self, CaseMsg, CheckMsg, FromChild, Where};
use super::sandbox::{self, Isolation};
use cpsim_certify::scenario::{self, Scenario};
use cpsim_cmod::{ModuleFactory, ModuleImage};
use cpsim_sim::observe::Observer;
use cpsim_sim::{Callback, ClockMode, Nanos, Outcome, ProviderFactory, Sim};
use parking_lot::Mutex;
use std::fs::File;
#[cfg(unix)]
use std::os::fd::FromRawFd;
#[cfg(unix)]
use std::sync::atomic::AtomicI32;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The protocol's write end (a private copy of the original stdout).
static OUT: Mutex<Option<File>> = Mutex::new(None);
/// Its descriptor, for the signal handler (which cannot lock).
#[cfg(unix)]
static OUT_FD: AtomicI32 = AtomicI32::new(-1);
/// Whether a case (or load check) runs now.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The running case's world, for the exit handler.
static CURRENT: Mutex<Option<Observer>> = Mutex::new(None);
/// The same, for the signal handler (leaked, one per case: never freed
/// while a handler might read it).
static SIG_OBSERVER: AtomicPtr<Observer> = AtomicPtr::new(std::ptr::null_mut());

fn send(msg: &FromChild) {
    let payload = serde_json::to_vec(msg).expect("a runner message serialises");
    if let Some(out) = OUT.lock().as_mut() {
        let _ = proto::write_frame(out, proto::JSON, &payload);
    }
}

fn callback_index(cb: Callback) -> u8 {
    Callback::ALL.iter().position(|c| *c == cb).unwrap_or(255) as u8
}

/// Where module code is now (lock-free: also used by the signal handler).
pub(super) fn where_now() -> Where {
    let p = SIG_OBSERVER.load(Ordering::Acquire);
    // SAFETY: a pointer stored from a leaked Box, never freed.
    let cb = (!p.is_null())
        .then(|| unsafe { &*p }.running_callback())
        .flatten();
    Where {
        phase: cpsim_cmod::phase() as u8,
        callback: cb.map(callback_index),
    }
}

#[cfg(unix)]
extern "C" fn on_fatal_signal(sig: libc::c_int) {
    let at = where_now();
    let body = proto::fatal_body(sig, at.phase, at.callback);
    let mut frame = [0u8; 11];
    frame[0] = proto::FATAL;
    frame[1..5].copy_from_slice(&(body.len() as u32).to_le_bytes());
    frame[5..].copy_from_slice(&body);
    let fd = OUT_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the buffer is on the stack.
        let _ = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
    }
    // The handler was reset to the default on entry (SA_RESETHAND), and
    // SA_NODEFER lets this signal through at once: the process ends with it.
    // SAFETY: raise is async-signal-safe.
    unsafe { libc::raise(sig) };
}

#[cfg(unix)]
extern "C" fn on_exit() {
    report_exit();
}

/// Module code is ending the process (`exit`): reports where, with the
/// case's trace so far (from the C runtime's exit handlers).
pub(super) fn report_exit() {
    if !ACTIVE.load(Ordering::Acquire) {
        return;
    }
    let at = where_now();
    let partial = CURRENT
        .try_lock_for(Duration::from_millis(200))
        .and_then(|c| c.clone())
        .and_then(|o| o.snapshot(Duration::from_millis(300)));
    let msg = FromChild::Exiting {
        partial: partial.map(Box::new),
        at,
    };
    let payload = serde_json::to_vec(&msg).expect("a runner message serialises");
    if let Some(mut out) = OUT.try_lock_for(Duration::from_millis(200)) {
        if let Some(out) = out.as_mut() {
            let _ = proto::write_frame(out, proto::JSON, &payload);
        }
    }
}

/// Moves the protocol off fd 0 and 1: returns (requests, replies); fd 0
/// becomes /dev/null and fd 1 a copy of stderr.
#[cfg(unix)]
fn take_stdio() -> Result<(File, File), String> {
    // SAFETY: duplicating the process's own descriptors to fresh ones
    // (close-on-exec) and re-pointing 0 and 1; nothing else uses them yet.
    unsafe {
        let inp = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        let out = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if inp < 0 || out < 0 {
            return Err(format!(
                "cannot keep the protocol pipes: {}",
                std::io::Error::last_os_error()
            ));
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
        libc::dup2(2, 1);
        Ok((File::from_raw_fd(inp), File::from_raw_fd(out)))
    }
}

#[cfg(unix)]
fn install_handlers() {
    for sig in [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGABRT,
        libc::SIGTRAP,
        libc::SIGSYS,
    ] {
        // SAFETY: a zeroed sigaction with a handler of the right type;
        // sigaction only reads it.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fatal_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    // SAFETY: registers a plain function to run at exit.
    unsafe { libc::atexit(on_exit) };
}

#[cfg(windows)]
use super::win::{install_handlers, take_stdio};

/// Ends the runner at once, without running the module's exit handlers or
/// destructors.
fn exit_now(code: i32) -> ! {
    #[cfg(unix)]
    // SAFETY: _exit ends the process at once.
    unsafe {
        libc::_exit(code)
    }
    #[cfg(windows)]
    super::win::exit_now(code as u32)
}

/// The runner's own threads before any module code ran (Windows, where
/// threads have no /proc entry to tell them apart).
#[cfg(windows)]
static BASELINE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Threads of this process that are neither the main thread nor the
/// simulator's watchdog: after a case, threads the module left running. A
/// thread that is just ending may still be listed for a moment: a count
/// above zero is taken only if it stays for a few milliseconds.
fn module_threads() -> usize {
    let mut n = count_module_threads();
    for _ in 0..10 {
        if n == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
        n = count_module_threads();
    }
    n
}

#[cfg(windows)]
fn count_module_threads() -> usize {
    super::win::new_threads(&BASELINE.lock())
}

#[cfg(unix)]
fn count_module_threads() -> usize {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy() != me)
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .map(|c| c.trim() != "cpsim-watchdog")
                .unwrap_or(false)
        })
        .count()
}

/// Plays a scenario like `cpsim_certify::scenario::run`, handing the
/// world's observer out first.
fn play(
    s: &Scenario,
    factory: Arc<dyn ProviderFactory>,
    clock: ClockMode,
    seen: impl FnOnce(Observer),
) -> Result<Outcome, String> {
    if s.hosts.is_empty() || s.hosts.len() >= 200 {
        return Err(format!("the scenario has {} hosts", s.hosts.len()));
    }
    factory.configure(&s.provider_config)?;
    let hosts: Vec<&str> = s.hosts.iter().map(|h| h.as_str()).collect();
    let sim = Sim::new(scenario::sim_config(s, clock), &hosts, factory);
    seen(sim.observer());
    let last = scenario::schedule_steps(&sim, s);
    sim.run_until(Nanos::from_millis(last));
    let mut outcome = sim.finish();
    for v in cpsim_sim::oracle::check(&outcome.trace) {
        if !outcome
            .violations
            .iter()
            .any(|w| w.rule == v.rule && w.step == v.step)
        {
            outcome.violations.push(v);
        }
    }
    outcome.violations.sort_by_key(|v| v.step);
    Ok(outcome)
}

/// Runs `work` on a fresh thread (with a network of its own when the
/// runner isolates cases); past `deadline`, reports what the case recorded
/// and ends the runner.
fn on_case_thread<T: Send + 'static>(
    isolation: Isolation,
    deadline: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    ACTIVE.store(true, Ordering::Release);
    let spawned = std::thread::Builder::new()
        .name("cpsim-case".into())
        .spawn(move || {
            if isolation.isolated() {
                if let Err(e) = sandbox::fresh_case_network() {
                    eprintln!("cpsim runner: no network namespace for this case: {e}");
                }
            }
            let _ = tx.send(work());
        });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => {
            ACTIVE.store(false, Ordering::Release);
            return Err(format!("cannot start a case thread: {e}"));
        }
    };
    let until = Instant::now() + deadline;
    // A callback that has run this long without returning (the simulator's
    // watchdog reported it at 2 s) ends the case before its deadline.
    let stuck_after = Duration::from_millis(cpsim_sim::Config::default().watchdog_ms + 300);
    let mut seen: Option<(u64, Instant)> = None;
    let got = loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(100))) {
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {
                let epoch = CURRENT.lock().as_ref().and_then(|o| o.callback_epoch());
                match (epoch, seen) {
                    (Some(e), Some((s, since))) if e == s && e % 2 == 1 => {
                        if since.elapsed() >= stuck_after {
                            break Err(mpsc::RecvTimeoutError::Timeout);
                        }
                    }
                    (Some(e), _) if e % 2 == 1 => seen = Some((e, Instant::now())),
                    _ => seen = None,
                }
            }
            other => break other,
        }
    };
    match got {
        Ok(v) => {
            let _ = handle.join();
            ACTIVE.store(false, Ordering::Release);
            Ok(v)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let at = where_now();
            let partial = CURRENT
                .lock()
                .clone()
                .and_then(|o| o.snapshot(Duration::from_millis(500)));
            ACTIVE.store(false, Ordering::Release);
            send(&FromChild::Hung {
                partial: partial.map(Box::new),
                at,
            });
            // The stuck thread cannot be recovered: end here, without
            // running the module's exit handlers.
            exit_now(0)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            ACTIVE.store(false, Ordering::Release);
            Err("the case thread panicked".into())
        }
    }
}

fn run_case(image: &Arc<ModuleImage>, msg: CaseMsg, isolation: Isolation) -> FromChild {
    let factory = ModuleFactory::from_image(image.clone());
    let CaseMsg {
        scenario,
        clock,
        deadline_ms,
    } = msg;
    // A virtual-time module opens no sockets: no namespace to pay for.
    let isolation = match clock {
        ClockMode::Virtual => Isolation::None,
        ClockMode::RealTime => isolation,
    };
    let result = on_case_thread(isolation, Duration::from_millis(deadline_ms), move || {
        play(&scenario, factory, clock, |o| {
            *CURRENT.lock() = Some(o.clone());
            SIG_OBSERVER.store(Box::into_raw(Box::new(o)), Ordering::Release);
        })
    });
    *CURRENT.lock() = None;
    match result {
        Ok(Ok(outcome)) => FromChild::Done {
            outcome,
            leftover_threads: module_threads(),
            foreign_calls: cpsim_cmod::foreign_thread_calls(),
            resident_copies: cpsim_cmod::resident_copies(),
            start_failure: cpsim_cmod::first_start_failure(),
        },
        Ok(Err(message)) | Err(message) => FromChild::Failed { message },
    }
}

fn run_check(image: &Arc<ModuleImage>, msg: CheckMsg, isolation: Isolation) -> FromChild {
    let factory = ModuleFactory::from_image(image.clone());
    let result = on_case_thread(
        isolation,
        Duration::from_millis(msg.deadline_ms),
        move || factory.check_loads().map_err(|e| e.to_string()),
    );
    match result {
        Ok(r) => FromChild::Checked { error: r.err() },
        Err(message) => FromChild::Failed { message },
    }
}

/// `cpsim __run-case`: serves the harness on fd 0/1 until end of file.
pub fn child_main() -> i32 {
    let (mut requests, replies) = match take_stdio() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cpsim runner: {e}");
            return 2;
        }
    };
    // Isolation first: a user namespace needs a single-threaded process.
    let (isolation, note) = sandbox::setup();
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        OUT_FD.store(replies.as_raw_fd(), Ordering::Relaxed);
    }
    *OUT.lock() = Some(replies);
    install_handlers();
    #[cfg(windows)]
    {
        *BASELINE.lock() = super::win::thread_ids();
    }
    send(&FromChild::Hello { isolation, note });
    let mut image: Option<Arc<ModuleImage>> = None;
    loop {
        let (kind, payload) = match proto::read_frame(&mut requests) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                send(&FromChild::Failed {
                    message: format!("reading a request: {e}"),
                });
                // Its channel is gone (module code closed or replaced the
                // pipes): say so by the exit code, the only word left.
                exit_now(super::CHANNEL_LOST_EXIT);
            }
        };
        let reply = match (kind, &image) {
            (proto::LOAD, _) => match proto::parse_load(&payload).and_then(|(m, bytes)| {
                ModuleImage::from_bytes(m.path, bytes).map_err(|e| e.to_string())
            }) {
                Ok(i) => {
                    image = Some(Arc::new(i));
                    continue;
                }
                Err(message) => FromChild::Failed { message },
            },
            (proto::CASE, Some(img)) => match serde_json::from_slice::<CaseMsg>(&payload) {
                Ok(m) => run_case(img, m, isolation),
                Err(e) => FromChild::Failed {
                    message: format!("an unreadable case: {e}"),
                },
            },
            (proto::CHECK, Some(img)) => match serde_json::from_slice::<CheckMsg>(&payload) {
                Ok(m) => run_check(img, m, isolation),
                Err(e) => FromChild::Failed {
                    message: format!("an unreadable check: {e}"),
                },
            },
            (k, None) if k == proto::CASE || k == proto::CHECK => FromChild::Failed {
                message: "no module was sent before the case".into(),
            },
            (k, _) => FromChild::Failed {
                message: format!("an unknown request kind {k}"),
            },
        };
        send(&reply);
    }
    if let Some(out) = OUT.lock().as_mut() {
        use std::io::Write;
        let _ = out.flush();
    }
    // Without running the module's exit handlers or destructors.
    exit_now(0)
}
