//! Instances at scale (BENCHMARKS.md, item 4), with a counting allocator.
//!
//! `cargo bench -p cpsim-sim --bench memory`
//!
//! - `instances_100k`: time to create, register and establish 100,000
//!   instances of the `tiny` provider on one host (Sim built and dropped
//!   outside the timing).
//! - Before the timed runs, the live heap bytes per idle registered
//!   instance (established, dormant) are measured with the counting
//!   allocator: (live bytes with N instances - live bytes with 1) / (N - 1),
//!   trace on, and printed with median, min and max of five runs.

#[path = "common/tiny.rs"]
mod tiny;

use cpsim_sim::{Action, Config, Nanos, Sim};
use divan::Bencher;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts live heap bytes.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

pub const N: u32 = 100_000;

/// One host with `n` tiny instances, each created, registered and established.
fn world(n: u32) -> Sim {
    let f = tiny::TinyFactory::new(n);
    let established = f.established.clone();
    let sim = Sim::new(Config::with_seed(3), &["A"], f);
    sim.schedule(Nanos::ZERO, Action::StartProvider { host: "A".into() });
    sim.run_until(Nanos::ZERO);
    assert_eq!(
        established.load(Ordering::Relaxed),
        n as u64,
        "every instance established"
    );
    sim
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn bytes_per_instance(n: u32) -> f64 {
    let before = live();
    let one = world(1);
    let with_one = live();
    drop(one);
    let many = world(n);
    let with_many = live();
    drop(many);
    let _ = before;
    (with_many - with_one) as f64 / (n - 1) as f64
}

fn main() {
    let n: u32 = std::env::var("CPSIM_BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N);
    let mut runs: Vec<f64> = (0..5).map(|_| bytes_per_instance(n)).collect();
    runs.sort_by(f64::total_cmp);
    println!(
        "memory per idle registered instance ({n} instances, trace on): \
         median {:.0} B, min {:.0} B, max {:.0} B",
        runs[2], runs[0], runs[4]
    );
    divan::main();
}

/// Item 4: 100,000 instances created, registered and established on one host.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn instances_100k(bencher: Bencher) {
    let n: u32 = std::env::var("CPSIM_BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N);
    bencher.with_inputs(|| ()).bench_local_values(|()| world(n));
}
