//! The real-time watchdog: notices a callback that does not return.
//!
//! The dispatch path bumps a per-world counter on entry and exit (odd means
//! "inside a callback"), with the world locked: a plain atomic load and
//! store each, no read-modify-write and no clock read.
//! One background thread samples every world's counter; a counter that stays
//! odd and unchanged for `Config::watchdog_ms` is a hung callback: the
//! watchdog records TIME-1 (SESS-7 for ESTABLISH/TERMINATE) in that world.
//! After ten times the limit it cannot recover the thread, so it says what
//! hangs and ends the process with exit code 3 instead of hanging CI.

use crate::engine::Shared;
use crate::rules::id;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

struct Watched {
    world: Weak<Shared>,
    epoch: u64,
    since: Instant,
    reported: bool,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());

/// What the runs under way in this process say of themselves (e.g. the
/// command that reruns a certification), by key: printed when the
/// watchdog ends the process, so a hang can be rerun.
static NOTES: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
static NEXT_NOTE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Says `note` (one line) if the watchdog must end the process while the
/// returned guard lives.
pub fn note_while_running(note: String) -> NoteGuard {
    let key = NEXT_NOTE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    NOTES.lock().push((key, note));
    NoteGuard(key)
}

/// Withdraws its note when dropped (see [`note_while_running`]).
#[must_use = "the note is withdrawn when the guard is dropped"]
pub struct NoteGuard(u64);

impl Drop for NoteGuard {
    fn drop(&mut self) {
        NOTES.lock().retain(|(k, _)| *k != self.0);
    }
}
static STARTED: std::sync::Once = std::sync::Once::new();

/// Starts watching a world (and the watchdog thread, the first time).
pub(crate) fn watch(shared: &Arc<Shared>) {
    WATCHED.lock().push(Watched {
        world: Arc::downgrade(shared),
        epoch: 0,
        since: Instant::now(),
        reported: false,
    });
    STARTED.call_once(|| {
        // Wait until the thread runs: its name is set by then, so a count
        // of a process's threads that leaves out the watchdog by name
        // (the case runner's, after each case) never takes a watchdog
        // not yet scheduled for a thread of the provider's.
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("cpsim-watchdog".into())
            .spawn(move || {
                let _ = ready.send(());
                run()
            })
            .expect("the watchdog thread starts");
        let _ = started.recv();
    });
}

fn run() {
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let mut list = WATCHED.lock();
        list.retain(|w| w.world.strong_count() > 0);
        for w in list.iter_mut() {
            let Some(shared) = w.world.upgrade() else {
                continue;
            };
            let epoch = shared.callback_epoch();
            if epoch != w.epoch || epoch % 2 == 0 {
                *w = Watched {
                    world: w.world.clone(),
                    epoch,
                    since: Instant::now(),
                    reported: false,
                };
                continue;
            }
            let limit =
                Duration::from_millis(shared.try_lock().map(|w| w.watchdog_ms()).unwrap_or(2_000));
            let stuck = w.since.elapsed();
            let (inst, cb) = shared.callback_running();
            if stuck >= limit && !w.reported {
                w.reported = true;
                if let Some(mut world) = shared.try_lock_for(Duration::from_millis(100)) {
                    let (host, n) = world.inst_location(inst).unwrap_or((0, 0));
                    let rule = if cb.is_async() {
                        id::TIME_1
                    } else {
                        id::SESS_7
                    };
                    world.violate(
                        rule,
                        host,
                        n,
                        Some(cb.name()),
                        format!(
                            "the callback has not returned after {} ms of real time (watchdog)",
                            stuck.as_millis()
                        ),
                    );
                }
            }
            if stuck >= limit * 10 {
                let mut report = format!(
                    "cpsim: watchdog: {} (instance slot {inst}) has not returned for {:.1} s; the provider hangs (TIME-1). \
                     An in-process provider cannot be interrupted, so cpsim exits with code 3.\n",
                    cb.name(),
                    stuck.as_secs_f64()
                );
                for (_, note) in NOTES.lock().iter() {
                    report.push_str(&format!("cpsim: running when it hung: {note}\n"));
                }
                // Straight to the process's stderr: `eprintln!` in a thread
                // started inside a test goes to that test's captured output,
                // which `cargo test` shows only when the test ends, never
                // once the process exits here.
                let mut err = std::io::stderr().lock();
                let _ = std::io::Write::write_all(&mut err, report.as_bytes());
                let _ = std::io::Write::flush(&mut err);
                std::process::exit(3);
            }
        }
    }
}
