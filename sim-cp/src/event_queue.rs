//! The timer wheel of the simulation: events ordered by (virtual time, sequence).
//!
//! Ties are broken by insertion order, which makes a run a pure function of
//! its seed. (A binary heap: the queue is small and the order must be total.)

use crate::time::Nanos;
use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, VecDeque};

/// A heap entry: the event's time and sequence, and where the event waits.
/// (The heap moves only these 24 bytes; the events stay put in `slots`.)
struct Entry {
    at: Nanos,
    seq: u64,
    slot: u32,
}
impl Entry {
    /// (time, sequence) as one number: compared without a branch (the
    /// heap compares once or twice per level).
    #[inline(always)]
    fn key(&self) -> u128 {
        (u128::from(self.at.0) << 64) | u128::from(self.seq)
    }
}
impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl Eq for Entry {}
// Reversed: BinaryHeap is a max-heap and we pop the earliest.
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
    #[inline(always)]
    fn lt(&self, o: &Self) -> bool {
        o.key() < self.key()
    }
    #[inline(always)]
    fn le(&self, o: &Self) -> bool {
        o.key() <= self.key()
    }
    #[inline(always)]
    fn gt(&self, o: &Self) -> bool {
        o.key() > self.key()
    }
    #[inline(always)]
    fn ge(&self, o: &Self) -> bool {
        o.key() >= self.key()
    }
}
impl Ord for Entry {
    #[inline(always)]
    fn cmp(&self, o: &Self) -> Ordering {
        o.key().cmp(&self.key())
    }
}

/// Values kept aside for the events that name them by slot (the queue's
/// own events, and what `World`'s events carry): a slot is taken out
/// exactly once, and is free from then on. (A free slot keeps
/// its old value until it is reused; a table of values that are not `Copy`
/// holds them as `Option`s, taken out with `take`.)
pub(crate) struct Kept<T> {
    slots: Vec<T>,
    free: Vec<u32>,
}

impl<T> Kept<T> {
    pub(crate) fn new() -> Self {
        Kept {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Keeps `v`; the slot to take it from.
    pub(crate) fn keep(&mut self, v: T) -> u32 {
        match self.free.pop() {
            Some(k) => {
                self.slots[k as usize] = v;
                k
            }
            None => {
                self.slots.push(v);
                (self.slots.len() - 1) as u32
            }
        }
    }
}

impl<T: Copy> Kept<T> {
    /// The value kept in slot `k`, which is free from now on. (Copied out
    /// whole: an `Option` around it was checked and moved out in pieces,
    /// and the operation then copied whole from those pieces stalled on
    /// store forwarding.)
    pub(crate) fn copy_out(&mut self, k: u32) -> T {
        self.free.push(k);
        self.slots[k as usize]
    }
}

impl<T> Kept<Option<T>> {
    /// Takes the value kept in slot `k`, which is free from now on.
    pub(crate) fn take(&mut self, k: u32) -> T {
        self.free.push(k);
        self.slots[k as usize]
            .take()
            .expect("a kept value is taken once")
    }
}

/// Events waiting for their time.
///
/// Events due at once (pushed with [`push_now`](Self::push_now), at the
/// current time) skip the heap: they wait in a FIFO, which is in (time,
/// sequence) order by construction (the current time never goes back and
/// sequence numbers grow), and a pop takes whichever of the FIFO's front
/// and the heap's top comes first. The order is exactly the heap's alone.
///
/// Events pushed one after the other for the same time (a burst of
/// scheduled sends) share one heap entry: an event pushed at the time of
/// the previous push, with the sequence number right after it, joins that
/// push's *run* (a list through the slots), and the heap holds the run's
/// first event's time and sequence. Nothing else can come between two
/// events of a run (their keys are consecutive), so popping a run's events
/// in turn, each when its entry is the heap's top, is the heap's own order;
/// the entry then names the next event, still the smallest key, and a
/// heap of bursts is as deep as their number, not their events'.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry>,
    slots: Kept<Waiting<E>>,
    seq: u64,
    due: VecDeque<(Nanos, u64, E)>,
    /// The run the next push may join: the last event pushed into the
    /// heap, while it waits there.
    run: Option<Run>,
}

/// An event in the heap, and the slot of the next event of its run.
struct Waiting<E> {
    ev: Option<E>,
    next: u32,
}

/// [`Waiting::next`] of a run's last event.
const LAST: u32 = u32::MAX;

/// The latest run's time, its last event's sequence number and slot.
#[derive(Clone, Copy)]
struct Run {
    at: Nanos,
    seq: u64,
    tail: u32,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slots: Kept::new(),
            seq: 0,
            due: VecDeque::new(),
            run: None,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `ev` at `at`.
    pub fn push(&mut self, at: Nanos, ev: E) {
        self.seq += 1;
        let seq = self.seq;
        self.push_reserved(at, seq, ev);
    }
    /// Schedules `ev` at `now`, the current time: no earlier than anything
    /// pushed with `push_now` before (see the type's documentation).
    pub fn push_now(&mut self, now: Nanos, ev: E) {
        debug_assert!(self.due.back().is_none_or(|b| b.0 <= now));
        self.seq += 1;
        self.due.push_back((now, self.seq, ev));
    }
    /// Reserves the sequence number the next `push` would have used, for an
    /// event that may be queued later with [`push_reserved`](Self::push_reserved).
    pub fn reserve(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
    /// Reserves `n` consecutive sequence numbers (the next `n` pushes'
    /// would have used) and returns the first.
    pub fn reserve_block(&mut self, n: u64) -> u64 {
        let first = self.seq + 1;
        self.seq += n;
        first
    }
    /// Queues `ev` with a sequence number from [`reserve`](Self::reserve):
    /// it pops exactly where it would have, had it been pushed then.
    pub fn push_reserved(&mut self, at: Nanos, seq: u64, ev: E) {
        let slot = self.slots.keep(Waiting {
            ev: Some(ev),
            next: LAST,
        });
        match &mut self.run {
            // Right after the latest run's last event: it joins the run.
            Some(run) if run.at == at && run.seq.wrapping_add(1) == seq => {
                self.slots.slots[run.tail as usize].next = slot;
                (run.seq, run.tail) = (seq, slot);
            }
            _ => {
                self.heap.push(Entry { at, seq, slot });
                self.run = Some(Run {
                    at,
                    seq,
                    tail: slot,
                });
            }
        }
    }
    /// The time of the earliest event.
    pub fn peek_time(&self) -> Option<Nanos> {
        let heap = self.heap.peek().map(|e| e.at);
        match (self.due.front().map(|d| d.0), heap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    /// Removes the earliest event if it is due at or before `limit`.
    /// (Inlined: the driver calls it twice per callback, and an out-of-line
    /// call moves the large event through one more stack frame.)
    #[inline]
    pub fn pop_due(&mut self, limit: Nanos) -> Option<(Nanos, E)> {
        if let Some(&(at, seq, _)) = self.due.front() {
            let first = self.heap.peek().is_none_or(|e| (at, seq) < (e.at, e.seq));
            if first {
                if at > limit {
                    return None;
                }
                return self.due.pop_front().map(|(at, _, ev)| (at, ev));
            }
        }
        if self.heap.peek()?.at > limit {
            return None;
        }
        let mut top = self.heap.peek_mut()?;
        let (at, slot) = (top.at, top.slot);
        self.slots.free.push(slot);
        let w = &mut self.slots.slots[slot as usize];
        let ev = w.ev.take().expect("a waiting event is popped once");
        if w.next == LAST {
            PeekMut::pop(top);
            if self.run.is_some_and(|r| r.tail == slot) {
                self.run = None;
            }
        } else {
            // The run's next event: the next sequence number, still the
            // smallest key (the heap checks it against the top's children).
            (top.seq, top.slot) = (top.seq + 1, w.next);
        }
        Some((at, ev))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut q = EventQueue::default();
        q.push(Nanos(5), "b");
        q.push(Nanos(1), "a");
        q.push(Nanos(5), "c");
        q.push(Nanos(9), "d");
        assert_eq!(q.pop_due(Nanos(5)).map(|x| x.1), Some("a"));
        assert_eq!(q.pop_due(Nanos(5)).map(|x| x.1), Some("b"));
        assert_eq!(q.pop_due(Nanos(5)).map(|x| x.1), Some("c"));
        assert_eq!(q.pop_due(Nanos(5)).map(|x| x.1), None);
        assert_eq!(q.peek_time(), Some(Nanos(9)));
    }

    #[test]
    fn runs_of_events_at_one_time_pop_in_the_heap_order() {
        // Random pushes (plain, reserved, due now) and pops against a
        // model that sorts by (time, sequence): the same events come out
        // in the same order, however runs form, grow and drain.
        let mut q = EventQueue::default();
        let mut model: Vec<(Nanos, u64, u32)> = Vec::new();
        let mut reserved: Vec<u64> = Vec::new();
        let (mut now, mut next, mut x) = (0u64, 0u32, 0x9e37_79b9_7f4a_7c15u64);
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..20_000 {
            let at = Nanos(now + rand(4));
            match rand(10) {
                0..=4 => {
                    q.push(at, next);
                    model.push((at, q.seq, next));
                    next += 1;
                }
                5 => reserved.push(q.reserve()),
                6 if !reserved.is_empty() => {
                    let seq = reserved.swap_remove(rand(reserved.len() as u64) as usize);
                    let at = at.max(Nanos(now));
                    q.push_reserved(at, seq, next);
                    model.push((at, seq, next));
                    next += 1;
                }
                7 => {
                    q.push_now(Nanos(now), next);
                    model.push((Nanos(now), q.seq, next));
                    next += 1;
                }
                _ => {
                    let limit = Nanos(now + rand(3));
                    model.sort_by_key(|m| std::cmp::Reverse((m.0, m.1)));
                    let want = model.last().filter(|m| m.0 <= limit).map(|m| (m.0, m.2));
                    if want.is_some() {
                        model.pop();
                    }
                    let got = q.pop_due(limit);
                    assert_eq!(got, want);
                    if let Some((t, _)) = got {
                        now = now.max(t.0);
                    }
                }
            }
        }
        model.sort_by_key(|m| std::cmp::Reverse((m.0, m.1)));
        while let Some(m) = model.pop() {
            assert_eq!(q.pop_due(Nanos::MAX), Some((m.0, m.2)));
        }
        assert_eq!(q.pop_due(Nanos::MAX), None);
    }

    #[test]
    fn events_pushed_now_pop_in_the_same_order_as_through_the_heap() {
        let mut q = EventQueue::default();
        let r = q.reserve();
        q.push(Nanos(5), "b");
        q.push_now(Nanos(5), "c");
        q.push_reserved(Nanos(5), r, "a");
        q.push(Nanos(4), "x");
        q.push_now(Nanos(5), "d");
        q.push(Nanos(5), "e");
        assert_eq!(q.peek_time(), Some(Nanos(4)));
        assert_eq!(q.pop_due(Nanos(3)).map(|x| x.1), None);
        let got: Vec<_> = std::iter::from_fn(|| q.pop_due(Nanos(9)).map(|x| x.1)).collect();
        assert_eq!(got, ["x", "a", "b", "c", "d", "e"]);
        assert_eq!(q.peek_time(), None);
    }
}
