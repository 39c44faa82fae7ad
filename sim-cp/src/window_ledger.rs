//! A call ledger for a process that runs as long as it likes (the native
//! bridge's): the same verdicts as [`Ledger`], in bounded memory per call,
//! with 64-bit serials.
//!
//! A completion routine may name any past call, so a ledger must remember
//! how every call ended (COMP-3 after a synchronous return, COMP-4 after a
//! completion, ignored after the platform gave up, COMP-5 for a call never
//! made). [`Ledger`] keeps each call's full tag for the whole run, which a
//! simulated run can afford (its runs end) and a process that bridges a
//! real platform for hours cannot. [`WindowLedger`] keeps two [`Ledger`]s of
//! `window` calls each, the recent calls in full; when the newer fills, the
//! older is retired: each of its ended calls shrinks to one byte (how it
//! ended, 2 bits, and a 6-bit mark the keeper picks from its tag; the
//! bridge's is which bridge made the call) and each call still open keeps
//! its phase, tag and data until it ends. Every verdict is the one
//! [`Ledger`] (and [`CallPhase`]) gives; only a call that ended more than
//! `window` calls ago is named by its mark instead of its tag
//! ([`Known::Mark`]).
//!
//! The simulator keeps the plain [`Ledger`]: its runs end, its serials are
//! 32-bit and its per-call path stays as it is.

use crate::abi::HRESULT;
use crate::ledger::{CallPhase, Completion, Ledger, Returned};
use crate::rules::RuleId;

/// What a ledger still knows of a call it was asked about.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Known<T> {
    /// Its full tag: the call is open, or ended within the window.
    Tag(T),
    /// Only its keeper's 6-bit mark: it ended before the window.
    Mark(u8),
}

/// Every call one party made, by 64-bit serial from 1, in memory bounded
/// per ended call: see the [module](self).
pub struct WindowLedger<O, T> {
    /// Calls per [`Ledger`] before it is retired.
    window: u32,
    /// The keeper's mark of a tag (its low 6 bits are kept).
    mark: fn(&T) -> u8,
    /// The newest calls: serial `recent_base + l` is its `l`.
    recent: Ledger<O, T>,
    recent_base: u64,
    /// How many calls `recent` holds.
    recent_len: u32,
    /// The `window` calls before those: serial `older_base + l` is its `l`.
    older: Ledger<O, T>,
    older_base: u64,
    /// The first serial this ledger issues.
    first: u64,
    /// Each call from `first` to `older_base`, one byte: how it ended
    /// ([`OPEN`], [`SYNC`], [`COMPLETED`], [`ABANDONED`]) and its mark
    /// above; one slice of `window` bytes per retired ledger (so that
    /// growing never copies them, nor keeps spare room).
    old: Vec<Box<[u8]>>,
    /// The calls among `old` still [`OPEN`], in serial order.
    lingering: Vec<(u64, Linger<O, T>)>,
}

/// A retired call still open: kept in full until it ends.
struct Linger<O, T> {
    phase: CallPhase,
    tag: T,
    call: O,
}

/// How an old call ended (the low 2 bits of its byte); [`OPEN`] is one
/// among `lingering`.
const OPEN: u8 = 0;
const SYNC: u8 = 1;
const COMPLETED: u8 = 2;
const ABANDONED: u8 = 3;

/// Where a serial is kept.
enum At {
    Recent(u32),
    Older(u32),
    Old(usize),
    Nowhere,
}

/// The byte of how an ended call ended.
fn end_of(phase: CallPhase) -> u8 {
    match phase {
        CallPhase::ReturnedSync => SYNC,
        CallPhase::Completed => COMPLETED,
        CallPhase::Abandoned => ABANDONED,
        CallPhase::InCallback | CallPhase::CompletedEarly(_) | CallPhase::Pending => OPEN,
    }
}

/// The phase an ended call's byte says.
fn phase_of(end: u8) -> CallPhase {
    match end & 3 {
        SYNC => CallPhase::ReturnedSync,
        COMPLETED => CallPhase::Completed,
        _ => CallPhase::Abandoned,
    }
}

impl<O, T: Copy> WindowLedger<O, T> {
    /// An empty ledger whose serials start at 1, keeping between `window`
    /// and `2 × window` recent calls in full; `mark` gives the 6 bits kept
    /// of an older call's tag.
    pub const fn new(window: u32, mark: fn(&T) -> u8) -> Self {
        Self::starting_at(1, window, mark)
    }

    /// As [`WindowLedger::new`], with serials from `first` (at least 1):
    /// those below it name no call. A process's count may start anywhere;
    /// tests start it past `u32::MAX`.
    pub const fn starting_at(first: u64, window: u32, mark: fn(&T) -> u8) -> Self {
        assert!(first >= 1 && window >= 1);
        WindowLedger {
            window,
            mark,
            recent: Ledger::new(),
            recent_base: first - 1,
            recent_len: 0,
            older: Ledger::new(),
            older_base: first - 1,
            first,
            old: Vec::new(),
            lingering: Vec::new(),
        }
    }

    fn at(&self, serial: u64) -> At {
        if serial > self.recent_base {
            match serial - self.recent_base {
                l if l <= self.recent_len as u64 => At::Recent(l as u32),
                _ => At::Nowhere,
            }
        } else if serial > self.older_base {
            At::Older((serial - self.older_base) as u32)
        } else if serial >= self.first {
            At::Old((serial - self.first) as usize)
        } else {
            At::Nowhere
        }
    }

    /// The byte of old call `k` (its serial less `first`).
    fn byte(&self, k: usize) -> u8 {
        let w = self.window as usize;
        self.old[k / w][k % w]
    }

    fn lingering(&self, serial: u64) -> Option<&Linger<O, T>> {
        let k = self.lingering.binary_search_by_key(&serial, |e| e.0).ok()?;
        Some(&self.lingering[k].1)
    }

    fn lingering_mut(&mut self, serial: u64) -> Option<&mut Linger<O, T>> {
        let k = self.lingering.binary_search_by_key(&serial, |e| e.0).ok()?;
        Some(&mut self.lingering[k].1)
    }

    /// A call starts (in its callback): its fresh serial.
    pub fn open(&mut self, tag: T, call: O) -> u64 {
        if self.recent_len == self.window {
            self.retire();
        }
        self.recent_len = self.recent.open(tag, call);
        self.recent_base + self.recent_len as u64
    }

    /// The older ledger's calls shrink to their byte (the open ones keep
    /// everything, in `lingering`); the recent one becomes the older.
    fn retire(&mut self) {
        let fresh = std::mem::take(&mut self.recent);
        let older = std::mem::replace(&mut self.older, fresh);
        // Full (`window` calls), or empty at the first retirement.
        let n = (self.recent_base - self.older_base) as u32;
        if n > 0 {
            let mark = self.mark;
            let bytes = (1..=n).map(|l| {
                let tag = older
                    .tag(l)
                    .expect("every call of a retired ledger was made");
                let end = match older.phase(l) {
                    Some(p) if !older.is_open(l) => end_of(p),
                    _ => OPEN,
                };
                end | (mark(&tag) & 63) << 2
            });
            self.old.push(bytes.collect());
        }
        let base = self.older_base;
        for (l, phase, tag, call) in older.into_open_calls() {
            let linger = Linger { phase, tag, call };
            self.lingering.push((base + l as u64, linger));
        }
        self.older_base = self.recent_base;
        self.recent_base += self.recent_len as u64;
        self.recent_len = 0;
    }

    /// The callback of open call `serial` returned `hr`: as
    /// [`Ledger::returned`].
    pub fn returned(&mut self, serial: u64, hr: HRESULT) -> Option<(Returned, &mut O)> {
        match self.at(serial) {
            At::Recent(l) => self.recent.returned(l, hr),
            At::Older(l) => self.older.returned(l, hr),
            At::Old(_) => {
                let c = self.lingering_mut(serial)?;
                let (phase, r) = c.phase.returned(hr);
                c.phase = phase;
                Some((r, &mut c.call))
            }
            At::Nowhere => None,
        }
    }

    /// The provider called the completion routine for `serial` with
    /// `status`: as [`Ledger::complete`]; what the ledger still knows of
    /// the call (none for a serial that names no call, COMP-5).
    pub fn complete(&mut self, serial: u64, status: HRESULT) -> (Completion, Option<Known<T>>) {
        let (c, tag) = match self.at(serial) {
            At::Recent(l) => self.recent.complete(l, status),
            At::Older(l) => self.older.complete(l, status),
            At::Old(k) => {
                let b = self.byte(k);
                if b & 3 != OPEN {
                    let c = phase_of(b).completed(status).1;
                    return (c, Some(Known::Mark(b >> 2)));
                }
                let Some(e) = self.lingering_mut(serial) else {
                    return (Completion::NoSuchCall, None);
                };
                let (phase, c) = e.phase.completed(status);
                e.phase = phase;
                (c, Some(e.tag))
            }
            At::Nowhere => (Completion::NoSuchCall, None),
        };
        (c, tag.map(Known::Tag))
    }

    /// The open call `serial`, if it is open.
    pub fn get(&self, serial: u64) -> Option<&O> {
        match self.at(serial) {
            At::Recent(l) => self.recent.get(l),
            At::Older(l) => self.older.get(l),
            At::Old(_) => self.lingering(serial).map(|e| &e.call),
            At::Nowhere => None,
        }
    }

    /// Whether call `serial` is open.
    pub fn is_open(&self, serial: u64) -> bool {
        match self.at(serial) {
            At::Recent(l) => self.recent.is_open(l),
            At::Older(l) => self.older.is_open(l),
            At::Old(_) => self.lingering(serial).is_some(),
            At::Nowhere => false,
        }
    }

    /// Where call `serial` stands, open or ended, if it was made.
    pub fn phase(&self, serial: u64) -> Option<CallPhase> {
        match self.at(serial) {
            At::Recent(l) => self.recent.phase(l),
            At::Older(l) => self.older.phase(l),
            At::Old(k) => match self.byte(k) & 3 {
                OPEN => self.lingering(serial).map(|e| e.phase),
                end => Some(phase_of(end)),
            },
            At::Nowhere => None,
        }
    }

    /// Takes call `serial` out of the open calls if it is over: as
    /// [`Ledger::finish`].
    pub fn finish(&mut self, serial: u64) -> Option<O> {
        match self.at(serial) {
            At::Recent(l) => self.recent.finish(l),
            At::Older(l) => self.older.finish(l),
            At::Old(k) => {
                let i = self.lingering.binary_search_by_key(&serial, |e| e.0).ok()?;
                let end = end_of(self.lingering[i].1.phase);
                if end == OPEN {
                    return None;
                }
                let w = self.window as usize;
                self.old[k / w][k % w] |= end;
                Some(self.lingering.remove(i).1.call)
            }
            At::Nowhere => None,
        }
    }

    /// The platform gave up pending call `serial`: as [`Ledger::abandon`].
    pub fn abandon(&mut self, serial: u64) -> Option<O> {
        match self.at(serial) {
            At::Recent(l) => self.recent.abandon(l),
            At::Older(l) => self.older.abandon(l),
            At::Old(_) => {
                let e = self.lingering_mut(serial)?;
                e.phase = e.phase.abandon();
                self.finish(serial)
            }
            At::Nowhere => None,
        }
    }

    /// The provider's handle of open call `serial` was dropped: as
    /// [`Ledger::dropped`] (an open call is always known in full).
    pub fn dropped(&self, serial: u64) -> Option<(RuleId, T)> {
        match self.at(serial) {
            At::Recent(l) => self.recent.dropped(l),
            At::Older(l) => self.older.dropped(l),
            At::Old(_) => self
                .lingering(serial)
                .map(|e| (crate::rules::id::COMP_4, e.tag)),
            At::Nowhere => None,
        }
    }

    /// The open calls in serial order: serial, phase, tag and data.
    pub fn open_calls(&self) -> impl Iterator<Item = (u64, CallPhase, T, &O)> + '_ {
        let (older, recent) = (self.older_base, self.recent_base);
        let lingering = self
            .lingering
            .iter()
            .map(|(s, e)| (*s, e.phase, e.tag, &e.call));
        let shift = |base: u64| move |(l, p, t, c)| (base + l as u64, p, t, c);
        lingering
            .chain(self.older.open_calls().map(shift(older)))
            .chain(self.recent.open_calls().map(shift(recent)))
    }

    /// The bytes the ledger holds on the heap (its vectors' capacity; not
    /// what the keeper's data `O` themselves point to): at most two full
    /// windows, one byte per older call, and its calls still open.
    pub fn heap_bytes(&self) -> usize {
        self.recent.heap_bytes()
            + self.older.heap_bytes()
            + self.old.len() * self.window as usize
            + self.old.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.lingering.capacity() * std::mem::size_of::<(u64, Linger<O, T>)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{E_FAIL, E_PENDING_IO, S_OK};
    use crate::rules::id;

    /// A ledger of windows of 4 calls whose tag is a letter, marked by
    /// its position in the alphabet.
    fn ledger() -> WindowLedger<u32, char> {
        WindowLedger::new(4, |c| *c as u8 - b'a')
    }

    /// A call that returns synchronously.
    fn sync(l: &mut WindowLedger<u32, char>, tag: char) -> u64 {
        let s = l.open(tag, 0);
        l.returned(s, S_OK);
        l.finish(s);
        s
    }

    /// A call that pends and is completed.
    fn completed(l: &mut WindowLedger<u32, char>, tag: char) -> u64 {
        let s = l.open(tag, 0);
        l.returned(s, E_PENDING_IO);
        assert_eq!(l.complete(s, S_OK).0, Completion::Ends);
        l.finish(s);
        s
    }

    /// Calls that return synchronously, enough to retire every call so far.
    fn push_out(l: &mut WindowLedger<u32, char>) {
        for _ in 0..9 {
            sync(l, 'z');
        }
    }

    #[test]
    fn comp_3_a_completion_of_a_call_that_returned_long_ago_is_still_refused_by_its_mark() {
        let mut l = ledger();
        let s = sync(&mut l, 'c');
        assert_eq!(
            l.complete(s, S_OK),
            (Completion::AfterSyncReturn, Some(Known::Tag('c')))
        );
        push_out(&mut l);
        let (c, known) = l.complete(s, S_OK);
        assert_eq!(
            (c, known),
            (Completion::AfterSyncReturn, Some(Known::Mark(2)))
        );
        assert_eq!(c.broken_rule(), Some(id::COMP_3));
        assert_eq!(l.phase(s), Some(CallPhase::ReturnedSync));
        assert!(!l.is_open(s) && l.get(s).is_none());
    }

    #[test]
    fn comp_4_a_second_completion_of_a_call_completed_long_ago_is_still_refused() {
        let mut l = ledger();
        let s = completed(&mut l, 'b');
        push_out(&mut l);
        let (c, known) = l.complete(s, E_FAIL);
        assert_eq!((c, known), (Completion::Second, Some(Known::Mark(1))));
        assert_eq!(c.broken_rule(), Some(id::COMP_4));
    }

    #[test]
    fn life_8_a_completion_of_a_call_abandoned_long_ago_is_still_ignored() {
        let mut l = ledger();
        let s = l.open('h', 0);
        l.returned(s, E_PENDING_IO);
        assert_eq!(l.abandon(s), Some(0));
        push_out(&mut l);
        let (c, known) = l.complete(s, S_OK);
        assert_eq!(
            (c, known, c.broken_rule()),
            (Completion::AfterAbandon, Some(Known::Mark(7)), None)
        );
        assert!(!c.passed_on());
    }

    #[test]
    fn comp_5_a_serial_never_issued_names_no_call_before_and_after_retiring() {
        let mut l = WindowLedger::<u32, char>::starting_at(100, 4, |_| 0);
        for _ in 0..11 {
            l.open('a', 0);
        }
        for bogus in [0, 1, 99, 111, u64::MAX] {
            assert_eq!(
                l.complete(bogus, S_OK),
                (Completion::NoSuchCall, None),
                "{bogus}"
            );
            assert_eq!(l.phase(bogus), None);
        }
        assert_eq!(l.phase(100), Some(CallPhase::InCallback));
        assert_eq!(l.phase(110), Some(CallPhase::InCallback));
    }

    #[test]
    fn comp_4_a_call_open_longer_than_the_window_keeps_its_tag_and_is_judged_in_full() {
        let mut l = ledger();
        let pended = l.open('p', 7);
        l.returned(pended, E_PENDING_IO);
        let in_callback = l.open('i', 8);
        push_out(&mut l);
        assert_eq!(l.get(pended), Some(&7));
        assert_eq!(l.dropped(pended), Some((id::COMP_4, 'p')));
        let open: Vec<_> = l.open_calls().map(|(s, p, t, _)| (s, p, t)).collect();
        assert_eq!(
            open[..2],
            [
                (pended, CallPhase::Pending, 'p'),
                (in_callback, CallPhase::InCallback, 'i')
            ]
        );
        // The callback that ran all along completes early, then returns a
        // result: COMP-3, as in a ledger that keeps everything.
        assert_eq!(
            l.complete(in_callback, S_OK),
            (Completion::Early, Some(Known::Tag('i')))
        );
        let (r, data) = l.returned(in_callback, E_FAIL).unwrap();
        assert_eq!((r.broken_rule(), *data), (Some(id::COMP_3), 8));
        assert_eq!(l.finish(in_callback), Some(8));
        assert_eq!(
            l.complete(pended, S_OK),
            (Completion::Ends, Some(Known::Tag('p')))
        );
        assert_eq!(l.finish(pended), Some(7));
        assert_eq!(l.open_calls().count(), 0);
        // Once ended, they are known by their byte like any old call.
        assert_eq!(l.complete(pended, S_OK).0, Completion::Second);
        assert_eq!(l.complete(in_callback, S_OK).0, Completion::AfterSyncReturn);
        assert_eq!(l.complete(pended, S_OK).1, Some(Known::Mark(b'p' - b'a')));
    }

    #[test]
    fn a_window_ledger_gives_every_verdict_a_whole_run_ledger_gives() {
        // The same story in both, call after call; then every completion
        // of every call, in both.
        let mut whole = Ledger::<u32, char>::new();
        let mut win = ledger();
        for k in 0..40u32 {
            let (a, b) = (whole.open('a', k), win.open('a', k));
            assert_eq!(a as u64, b);
            let hr = [S_OK, E_PENDING_IO, E_FAIL][k as usize % 3];
            if k % 5 == 0 {
                assert_eq!(whole.complete(a, S_OK).0, win.complete(b, S_OK).0);
            }
            let r1 = whole.returned(a, hr).map(|r| r.0);
            let r2 = win.returned(b, hr).map(|r| r.0);
            assert_eq!(r1, r2);
            if k % 7 == 1 {
                assert_eq!(whole.abandon(a), win.abandon(b));
            } else if k % 4 == 1 {
                assert_eq!(whole.complete(a, E_FAIL).0, win.complete(b, E_FAIL).0);
            }
            assert_eq!(whole.finish(a), win.finish(b));
        }
        for s in 0..45u32 {
            assert_eq!(whole.phase(s), win.phase(s as u64), "phase of {s}");
            assert_eq!(whole.is_open(s), win.is_open(s as u64));
            let (c1, t1) = whole.complete(s, S_OK);
            let (c2, t2) = win.complete(s as u64, S_OK);
            assert_eq!(c1, c2, "completion of {s}");
            assert_eq!(t1.is_some(), t2.is_some());
        }
    }

    #[test]
    fn serials_past_u32_max_are_issued_and_judged() {
        let start = u32::MAX as u64 - 2;
        let mut l = WindowLedger::<u32, char>::starting_at(start, 4, |_| 0);
        let serials: Vec<u64> = (0..12).map(|_| sync(&mut l, 'a')).collect();
        assert_eq!(serials[0], start);
        assert_eq!(serials[11], start + 11);
        assert!(serials[11] > u32::MAX as u64);
        for s in serials {
            assert_eq!(l.complete(s, S_OK).0, Completion::AfterSyncReturn, "{s}");
        }
    }

    #[test]
    fn a_window_ledger_holds_two_windows_and_one_byte_per_older_call() {
        let mut l = WindowLedger::<u32, u32>::new(1024, |_| 0);
        for k in 0..100_000 {
            let s = l.open(k, k);
            l.returned(s, S_OK);
            l.finish(s);
        }
        // Two windows of 8-byte records and their open slot, a byte per
        // older call, and 16 bytes per retired window (in a vector that
        // doubles as it grows).
        let windows = 2 * (1024 * 8 + 64);
        assert!(
            l.heap_bytes() <= windows + 100_000 + 2 * 16 * 100,
            "{} bytes",
            l.heap_bytes()
        );
    }
}
