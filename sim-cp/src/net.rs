//! The simulated datagram network that providers use for their own peer and
//! infrastructure traffic, with seeded loss, delay, duplication, reordering
//! and partitions. Pure bookkeeping: the engine schedules the deliveries.

use crate::config::NetFaults;
use crate::rng::Rng;
use crate::time::Nanos;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// A network address: a node (host index) and a port.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct NetAddr {
    pub node: u8,
    pub port: u16,
}

/// A packet in flight.
pub struct Packet {
    pub from: NetAddr,
    pub to: NetAddr,
    pub data: Vec<u8>,
}

impl Drop for Packet {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.data));
    }
}

/// The network's state: faults, partitions, and counters.
pub struct Network {
    pub faults: NetFaults,
    rng: Rng,
    /// Unordered node pairs that cannot talk.
    cut: BTreeSet<(u8, u8)>,
    /// Packets dropped so far (loss or partition), and when the last was.
    pub dropped: u64,
    pub last_drop: Option<Nanos>,
    /// Whether any partition has existed since this time (for loss excuses).
    pub last_partition: Option<Nanos>,
    pub sent: u64,
}

impl Network {
    pub fn new(faults: NetFaults, seed: u64) -> Network {
        Network {
            faults,
            rng: Rng::stream(seed, "net"),
            cut: BTreeSet::new(),
            dropped: 0,
            last_drop: None,
            last_partition: None,
            sent: 0,
        }
    }
    fn key(a: u8, b: u8) -> (u8, u8) {
        (a.min(b), a.max(b))
    }
    pub fn partition(&mut self, a: u8, b: u8, now: Nanos) {
        self.cut.insert(Self::key(a, b));
        self.last_partition = Some(now);
    }
    pub fn heal(&mut self, now: Nanos) {
        if !self.cut.is_empty() {
            self.last_partition = Some(now);
        }
        self.cut.clear();
    }
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }
    /// Whether anything could have lost a packet since `t`: a drop, a
    /// partition (now or since), or a lossy configuration.
    pub fn disturbed_since(&self, t: Nanos) -> bool {
        self.is_lossy()
            || self.last_drop.is_some_and(|d| d >= t)
            || self.last_partition.is_some_and(|p| p >= t)
    }

    pub fn is_lossy(&self) -> bool {
        self.faults.loss > 0.0 || self.is_partitioned()
    }
    /// Decides the fate of a packet sent now: the delays (one per copy) at
    /// which it arrives; empty if it is dropped.
    pub fn route(&mut self, from: u8, to: u8, now: Nanos) -> Vec<Nanos> {
        let mut v = Vec::new();
        self.route_each(from, to, now, |d| v.push(d));
        v
    }

    /// [`route`](Self::route) without a vector: `f` gets each delay.
    pub fn route_each(&mut self, from: u8, to: u8, now: Nanos, mut f: impl FnMut(Nanos)) {
        self.sent += 1;
        if self.cut.contains(&Self::key(from, to)) || self.rng.chance(self.faults.loss) {
            self.dropped += 1;
            self.last_drop = Some(now);
            return;
        }
        let copies = if self.rng.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        for copy in 0..copies {
            let mut ms = self.faults.delay_ms;
            if self.faults.jitter_ms > 0 {
                ms += self.rng.range(0, self.faults.jitter_ms);
            }
            if self.rng.chance(self.faults.reorder) {
                ms += self.rng.range(1, 20);
            }
            // Drawn only when set, so that runs without it keep their
            // random sequence (and their traces).
            if copy == 1 && self.faults.duplicate_lag_ms > 0 {
                ms += self.rng.range(0, self.faults.duplicate_lag_ms);
            }
            f(Nanos::from_millis(ms).saturating_add(Nanos::from_micros(self.rng.range(0, 999))));
        }
    }
}

// Byte buffers kept for reuse on this thread: packets' data, application
// payloads and argument blocks' payloads take from and give back to it, so
// a datagram does not allocate (and, up to 64 KiB, page-fault) fresh memory
// each time, within a world or from one world (certification case) to the
// next. A fresh buffer has room for at least [`SPARE_MIN_BYTES`], so small
// payloads and packets circulate too; from 4 KiB on it is rounded up to a
// power of two (or to [`FRESH_MAX_BYTES`]), so that a kept buffer of a size
// class serves the requests of that class. Bounded: at
// most [`SPARE_BUFFERS`] buffers of at most [`SPARE_MAX_BYTES`] each, and at
// most [`SPARE_TOTAL_BYTES`] of capacity in all, are kept.
thread_local! {
    static SPARE: RefCell<Spare> = const {
        RefCell::new(Spare { classes: [const { Vec::new() }; CLASSES], count: 0, bytes: 0 })
    };
}

struct Spare {
    /// Kept buffers by size class: class `k` holds capacities from
    /// `SPARE_MIN_BYTES << k` up to twice that, the last kept last (the
    /// one taken first: the most likely still in cache).
    classes: [Vec<Vec<u8>>; CLASSES],
    /// Buffers kept, over every class.
    count: usize,
    /// The kept buffers' capacity, summed.
    bytes: usize,
}

/// Buffers kept per thread at most.
pub const SPARE_BUFFERS: usize = 1024;
/// The largest buffer kept (bytes of capacity).
pub const SPARE_MAX_BYTES: usize = 1 << 17;
/// The capacity of all the buffers kept, at most.
pub const SPARE_TOTAL_BYTES: usize = 4 << 20;
/// The capacity of a fresh buffer, at least (smaller ones are not kept).
const SPARE_MIN_BYTES: usize = 512;
/// The capacity of a fresh buffer, at most, unless more is asked for.
const FRESH_MAX_BYTES: usize = SPARE_MAX_BYTES - 4096;
/// Size classes, one per power of two from [`SPARE_MIN_BYTES`] to
/// [`SPARE_MAX_BYTES`].
const CLASSES: usize = (SPARE_MAX_BYTES / SPARE_MIN_BYTES).ilog2() as usize + 1;

/// The class of a buffer of capacity `cap` (within the kept bounds).
fn class_of(cap: usize) -> usize {
    (cap / SPARE_MIN_BYTES).ilog2() as usize
}

/// An empty buffer with room for `len` bytes: the last kept of `len`'s
/// size class or the next that is large enough, else a fresh one. (Filled
/// by `extend`, so nothing is zeroed first.)
pub fn spare_buffer(len: usize) -> Vec<u8> {
    let want = len.max(SPARE_MIN_BYTES);
    let spare = (want <= SPARE_MAX_BYTES)
        .then(|| {
            SPARE
                .try_with(|s| {
                    let s = &mut *s.borrow_mut();
                    // A buffer of `want`'s own class may be smaller than it;
                    // the next class's never are, and a fresh buffer made for
                    // `want` is of one or the other. Larger ones are left for
                    // larger requests.
                    let first = class_of(want);
                    let k = (first..CLASSES.min(first + 2))
                        .find(|&k| s.classes[k].last().is_some_and(|b| b.capacity() >= want))?;
                    let b = s.classes[k].pop()?;
                    s.count -= 1;
                    s.bytes -= b.capacity();
                    Some(b)
                })
                .ok()
                .flatten()
        })
        .flatten();
    match spare {
        Some(mut b) => {
            b.clear();
            b
        }
        // Under 4 KiB, the size asked for (rounding 1,400 bytes up to
        // 2 KiB made the 1,400-byte datagram bench ~4% slower: more memory
        // in use for the same bytes). Larger, the largest of its class, so
        // that it serves every later request of its class; but under
        // 128 KiB: the system allocator (glibc's, by default) maps a request
        // of 128 KiB or more on its own, with a system call and fresh pages
        // each time.
        None if want < 4096 => Vec::with_capacity(want),
        None if want <= SPARE_MAX_BYTES => {
            Vec::with_capacity(want.next_power_of_two().min(FRESH_MAX_BYTES).max(want))
        }
        None => Vec::with_capacity(want),
    }
}

/// Keeps `b` for a later [`spare_buffer`] of this thread (or frees it).
pub fn give_back(b: Vec<u8>) {
    let cap = b.capacity();
    if (SPARE_MIN_BYTES..=SPARE_MAX_BYTES).contains(&cap) {
        let _ = SPARE.try_with(|s| {
            let s = &mut *s.borrow_mut();
            if s.count < SPARE_BUFFERS && s.bytes + cap <= SPARE_TOTAL_BYTES {
                s.count += 1;
                s.bytes += cap;
                s.classes[class_of(cap)].push(b);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both copies' delays of `n` packets sent through a network that
    /// duplicates every one.
    fn copies(faults: NetFaults, n: usize) -> Vec<(Nanos, Nanos)> {
        let mut net = Network::new(faults, 7);
        (0..n)
            .map(|_| {
                let d = net.route(0, 1, Nanos::ZERO);
                assert_eq!(d.len(), 2, "every packet duplicated");
                (d[0], d[1])
            })
            .collect()
    }

    #[test]
    fn data_5_a_duplicate_copy_lags_up_to_duplicate_lag_ms() {
        let base = NetFaults {
            duplicate: 1.0,
            delay_ms: 5,
            jitter_ms: 10,
            ..NetFaults::default()
        };
        // Without the lag both copies keep within the delay and jitter.
        let within = Nanos::from_millis(5 + 10 + 1);
        for (a, b) in copies(base.clone(), 500) {
            assert!(a < within && b < within, "{a:?} {b:?}");
        }
        // With it the second copy comes up to the lag later, spread over it.
        let lagged = copies(
            NetFaults {
                duplicate_lag_ms: 400,
                ..base
            },
            500,
        );
        let most = within.saturating_add(Nanos::from_millis(400));
        assert!(lagged.iter().all(|(a, b)| *a < within && *b < most));
        let late = lagged
            .iter()
            .filter(|(_, b)| *b > Nanos::from_millis(200))
            .count();
        assert!((150..350).contains(&late), "{late} of 500 past 200 ms");
    }

    #[test]
    fn a_kept_buffer_serves_a_request_of_its_size_class_whatever_was_kept_after_it() {
        // A thread of its own: its pool starts empty.
        std::thread::spawn(|| {
            let big = spare_buffer(60_000);
            assert_eq!(
                big.capacity(),
                1 << 16,
                "a fresh buffer: its class's largest"
            );
            let at = big.as_ptr();
            let small: Vec<Vec<u8>> = (0..20).map(|_| spare_buffer(64)).collect();
            give_back(big);
            // More small ones kept after it than a look at the last few sees.
            for b in small {
                give_back(b);
            }
            let again = spare_buffer(65_507);
            assert_eq!(
                again.as_ptr(),
                at,
                "the kept 64 KiB buffer, not a fresh one"
            );
            assert!(again.is_empty());
            // Nothing kept is large enough: a fresh one, the largest of its
            // class under 128 KiB.
            assert_eq!(spare_buffer(70_000).capacity(), FRESH_MAX_BYTES);
            assert_eq!(spare_buffer(SPARE_MAX_BYTES).capacity(), SPARE_MAX_BYTES);
            // Beyond the largest kept: exactly the size asked for, never kept.
            let huge = spare_buffer(SPARE_MAX_BYTES + 1);
            assert_eq!(huge.capacity(), SPARE_MAX_BYTES + 1);
            give_back(huge);
            SPARE.with(|s| assert!(s.borrow().bytes <= SPARE_TOTAL_BYTES));
        })
        .join()
        .unwrap();
    }
}
