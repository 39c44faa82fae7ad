//! Threads an in-process provider leaves running (LIFE-8, decision
//! `threads-left-in-process`).
//!
//! A provider run in this process on the virtual clock says it starts no
//! thread of its own ([`ProviderFactory::deterministic`]). One that does and
//! never joins them leaves one or more threads per case; thousands of cases
//! later the process can no longer start a thread and aborts with no
//! verdict. The run watches the process's thread count every [`EVERY`]
//! cases and stops once it grew past [`limit`]; the first cases of one lane
//! are then rerun alone to name the one that leaves threads.
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
/// ending 10 ms to end.
pub(super) fn left_since(before: usize) -> usize {
    let mut left = 0;
    for _ in 0..10 {
        left = count().unwrap_or(before).saturating_sub(before);
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    left
}
