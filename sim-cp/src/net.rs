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
        for _ in 0..copies {
            let mut ms = self.faults.delay_ms;
            if self.faults.jitter_ms > 0 {
                ms += self.rng.range(0, self.faults.jitter_ms);
            }
            if self.rng.chance(self.faults.reorder) {
                ms += self.rng.range(1, 20);
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
// payloads and packets circulate too. Bounded: at most [`SPARE_BUFFERS`]
// buffers of at most [`SPARE_MAX_BYTES`] each, and at most
// [`SPARE_TOTAL_BYTES`] of capacity in all, are kept.
thread_local! {
    static SPARE: RefCell<Spare> = const { RefCell::new(Spare { bufs: Vec::new(), bytes: 0 }) };
}

struct Spare {
    bufs: Vec<Vec<u8>>,
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

/// An empty buffer with room for `len` bytes: one of the last few spare
/// ones this thread kept if one is large enough, else a fresh one. (Filled
/// by `extend`, so nothing is zeroed first.)
pub fn spare_buffer(len: usize) -> Vec<u8> {
    // One of the last few kept that is large enough (growing a smaller one
    // would copy its old capacity); else a fresh one.
    let spare = SPARE
        .try_with(|s| {
            let mut s = s.borrow_mut();
            let n = s.bufs.len();
            let k = (n.saturating_sub(SPARE_LOOK)..n)
                .rev()
                .find(|&k| s.bufs[k].capacity() >= len)?;
            let b = s.bufs.swap_remove(k);
            s.bytes -= b.capacity();
            Some(b)
        })
        .ok()
        .flatten();
    match spare {
        Some(mut b) => {
            b.clear();
            b
        }
        None => Vec::with_capacity(len.max(SPARE_MIN_BYTES)),
    }
}

/// How many of the most recently kept buffers [`spare_buffer`] looks at.
const SPARE_LOOK: usize = 8;

/// Keeps `b` for a later [`spare_buffer`] of this thread (or frees it).
pub fn give_back(b: Vec<u8>) {
    let cap = b.capacity();
    if (SPARE_MIN_BYTES..=SPARE_MAX_BYTES).contains(&cap) {
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.bufs.len() < SPARE_BUFFERS && s.bytes + cap <= SPARE_TOTAL_BYTES {
                s.bytes += cap;
                s.bufs.push(b);
            }
        });
    }
}
