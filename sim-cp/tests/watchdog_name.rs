//! The watchdog thread is named from the moment the first world of a
//! process exists (alone in its binary: it needs that world to be the
//! process's first). Linux only: threads are counted by name in /proc.
#![cfg(target_os = "linux")]

mod common;

use common::{ToyFactory, ToyOptions};
use cpsim_sim::*;

/// The threads of this process named `name` (Linux).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|e| e.ok())
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .count()
}

#[test]
fn the_watchdog_thread_has_its_name_as_soon_as_the_first_world_exists() {
    // A case runner counts the threads left after a case and leaves out
    // the watchdog by name: one not yet scheduled (still bearing its
    // creator's name) was taken for a thread the module left running.
    // Alone in its test binary, so this world is the process's first.
    let before = threads_named("cpsim-watchdog");
    let sim = Sim::new(
        Config::with_seed(1),
        &["A"],
        ToyFactory::new(ToyOptions::default()),
    );
    assert_eq!(
        threads_named("cpsim-watchdog"),
        1,
        "right after the first world ({before} watchdog before it)"
    );
    sim.finish();
}
