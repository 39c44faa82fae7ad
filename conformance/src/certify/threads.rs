//! Threads an in-process provider leaves running (LIFE-8, decision
//! `threads-left-in-process`).
//!
//! On the virtual clock:
//! A provider run in this process on the virtual clock says it starts no
//! thread of its own ([`ProviderFactory::deterministic`]). One that does and
//! never joins them leaves one or more threads per case; thousands of cases
//! later the process can no longer start a thread and aborts with no
//! verdict. The run watches the process's thread count every [`EVERY`]
//! cases and stops once it grew past [`limit`]; the first cases of one lane
//! are then rerun alone to name the one that leaves threads.
//!
//! In real time (a provider whose factory is not deterministic: threads of
//! its own are allowed, but stop must join them), and only when the
//! certification is alone in its process ([`super::Config::alone_in_process`],
//! which `cpsim certify` sets; under `cargo test` other tests start and end
//! threads of their own at any time), the count is read before the run and
//! again once every case has ended, each thread given [`REAL_TIME_GRACE`] to
//! end. More than [`REAL_TIME_SLACK`] threads over the count it began with is
//! LIFE-8 once one of the first cases of the lanes, rerun alone, leaves
//! threads too (none: a pool kept for the whole process, no finding).
//!
//! Only Linux counts threads (`/proc/self/status`); elsewhere [`count`] is
//! `None` and nothing is watched, as before.
//!
//! [`ProviderFactory::deterministic`]: cpsim_sim::ProviderFactory::deterministic

use std::time::Duration;

/// Cases between two reads of the thread count (over all workers). A read
/// costs a few microseconds; a case well under a millisecond.
pub(super) const EVERY: u64 = 64;

/// Cases of one lane rerun alone to find one that leaves threads.
pub(super) const PROBE_CASES: u64 = 64;

/// Cases rerun alone in real time (each takes up to a few seconds), the
/// first ones of every lane in turn, to find one that leaves threads.
pub(super) const REAL_TIME_PROBE_CASES: u64 = 32;

/// How long threads are given to end after a real-time run (or one rerun
/// case): a thread a provider's stop told to end, but did not wait for,
/// is still ending.
pub(super) const REAL_TIME_GRACE: Duration = Duration::from_secs(2);

/// Threads a real-time run may leave over the count it began with and still
/// pass. What the harness itself starts during a run and keeps is one
/// watchdog thread; its workers are joined before the count. 8 is far above
/// that, and far below what a provider leaving one thread per start leaves
/// in the default 64 cases (each starts the provider on two or more hosts).
pub(super) const REAL_TIME_SLACK: usize = 8;

/// Cases of every certification in this process run under a read guard of
/// this lock; the rerun that names a case leaving threads holds it for
/// writing. So while one certification counts threads case by case, no
/// other certification of the process (another test under `cargo test`)
/// runs a provider that could start some.
pub(super) static CASES: parking_lot::RwLock<()> = parking_lot::RwLock::new(());

/// How many times a run on the virtual clock goes on after its thread count
/// grew past the limit but no case of its provider, rerun alone, left a
/// thread (the threads are another certification's of the same process).
pub(super) const RESUMES: u32 = 3;

/// The thread count past which the run stops, from the count when it began.
///
/// The harness's own threads are bounded: at most [`super::LANES`] workers
/// per certification, one watchdog, and under `cargo test` other tests of
/// the same binary (one per test thread, by default one per core) may run
/// certifications of their own at the same time. 256 covers sixteen such
/// certifications at full width; 16 more per core covers wider machines.
/// A process runs out of threads (memory maps, stacks) only some thousands
/// further, so the run stops long before that.
pub(super) fn limit(baseline: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    baseline + 256 + 16 * cores
}

/// The process's thread count (None: not counted on this system).
#[cfg(target_os = "linux")]
pub(super) fn count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Not counted here: other systems keep no such count in a file, and the
/// run goes on as it always did.
#[cfg(not(target_os = "linux"))]
pub(super) fn count() -> Option<usize> {
    None
}

/// How many threads more than `before` still run, giving threads that are
/// ending up to `grace` to end: read every millisecond, done as soon as at
/// most `slack` more run.
pub(super) fn left_after(before: usize, slack: usize, grace: Duration) -> usize {
    let since = std::time::Instant::now();
    loop {
        let left = count().unwrap_or(before).saturating_sub(before);
        if left <= slack || since.elapsed() >= grace {
            return left;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
