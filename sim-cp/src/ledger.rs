//! Where one async-capable call stands in the completion protocol, and what
//! each thing a provider does to it means — written once, as a pure state
//! machine, for every party that keeps a ledger of calls: the simulator
//! (`engine/completion.rs`) and the native bridge (`cpsim-native`), which
//! sees the same calls made by a real platform.
//!
//! A call starts [`CallPhase::InCallback`]. Two inputs move it on: the
//! callback returns ([`CallPhase::returned`]) and the provider calls the
//! completion routine ([`CallPhase::completed`]); the platform may also give
//! up on it when it stops the provider ([`CallPhase::abandon`]). Each
//! transition returns the next phase and what the input means, including
//! which rule it breaks (COMP-3, COMP-4, COMP-10); what to record, and
//! whether to pass the completion on, stays with the caller.

use crate::abi::{E_PENDING_IO, HRESULT};
use crate::rules::RuleId;

/// Where a call stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CallPhase {
    /// The callback has not returned, and the routine was not called.
    InCallback,
    /// The callback has not returned, and the routine was already called
    /// with this status (allowed, COMP-10: it takes effect when the callback
    /// returns `ERROR_IO_PENDING`).
    CompletedEarly(HRESULT),
    /// The callback returned `ERROR_IO_PENDING`; the routine is awaited.
    Pending,
    /// Over: the callback returned a result of its own.
    ReturnedSync,
    /// Over: the completion routine was called for the pending call.
    Completed,
    /// Over: the platform stopped the provider with the call pending
    /// (LIFE-8); a completion that comes later is accepted and ignored.
    Abandoned,
}

/// What a callback's return means for its call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Returned {
    /// `ERROR_IO_PENDING` and no completion yet: the call stays open.
    Pending,
    /// `ERROR_IO_PENDING` after an early completion: the call ends now
    /// with that completion's status (COMP-10).
    EndsWithEarlyStatus(HRESULT),
    /// A result of its own: the call ends with it.
    Sync,
    /// A result of its own after the routine had already been called:
    /// COMP-3 (the call ends with the returned result).
    SyncAfterCompletion,
    /// The call was not in its callback (already over, or never made): a
    /// second return cannot happen; nothing to do.
    NotInCallback,
}

/// What a call to the completion routine means.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Before the callback returned: kept, applied at the return (COMP-10).
    Early,
    /// The pending call ends with this status.
    Ends,
    /// A second call before the callback returned: COMP-4; not passed on.
    TwiceInCallback,
    /// For a call that had returned synchronously: COMP-3; not passed on.
    AfterSyncReturn,
    /// A second completion of a completed call: COMP-4; not passed on.
    Second,
    /// For a call the platform gave up on: accepted and ignored.
    AfterAbandon,
    /// The completion names no call the platform made (its context is not
    /// one the platform issued): COMP-5; not passed on.
    NoSuchCall,
}

impl CallPhase {
    /// The callback returned `hr`.
    pub fn returned(self, hr: HRESULT) -> (CallPhase, Returned) {
        match (self, hr == E_PENDING_IO) {
            (CallPhase::InCallback, true) => (CallPhase::Pending, Returned::Pending),
            (CallPhase::InCallback, false) => (CallPhase::ReturnedSync, Returned::Sync),
            (CallPhase::CompletedEarly(status), true) => {
                (CallPhase::Completed, Returned::EndsWithEarlyStatus(status))
            }
            (CallPhase::CompletedEarly(_), false) => {
                (CallPhase::ReturnedSync, Returned::SyncAfterCompletion)
            }
            (other, _) => (other, Returned::NotInCallback),
        }
    }

    /// The provider called the completion routine with `status`.
    pub fn completed(self, status: HRESULT) -> (CallPhase, Completion) {
        match self {
            CallPhase::InCallback => (CallPhase::CompletedEarly(status), Completion::Early),
            CallPhase::CompletedEarly(_) => (self, Completion::TwiceInCallback),
            CallPhase::Pending => (CallPhase::Completed, Completion::Ends),
            CallPhase::ReturnedSync => (self, Completion::AfterSyncReturn),
            CallPhase::Completed => (self, Completion::Second),
            CallPhase::Abandoned => (self, Completion::AfterAbandon),
        }
    }

    /// The platform stopped the provider; a pending call is given up.
    pub fn abandon(self) -> CallPhase {
        match self {
            CallPhase::Pending => CallPhase::Abandoned,
            other => other,
        }
    }

    /// Whether the call is over (nothing more is expected of it).
    pub fn is_over(self) -> bool {
        matches!(
            self,
            CallPhase::ReturnedSync | CallPhase::Completed | CallPhase::Abandoned
        )
    }

    /// Whether the callback is still running.
    pub fn in_callback(self) -> bool {
        matches!(self, CallPhase::InCallback | CallPhase::CompletedEarly(_))
    }
}

impl Completion {
    /// The rule such a completion breaks, if any.
    pub fn broken_rule(self) -> Option<crate::rules::RuleId> {
        use crate::rules::id;
        match self {
            Completion::TwiceInCallback | Completion::Second => Some(id::COMP_4),
            Completion::AfterSyncReturn => Some(id::COMP_3),
            Completion::NoSuchCall => Some(id::COMP_5),
            Completion::Early | Completion::Ends | Completion::AfterAbandon => None,
        }
    }
}

impl Completion {
    /// Whether the completion counts: it is kept (early) or ends the call,
    /// and is passed on to whoever waits for it. Any other is refused or,
    /// for a call given up, ignored.
    pub fn passed_on(self) -> bool {
        matches!(self, Completion::Early | Completion::Ends)
    }
}

impl Returned {
    /// The rule such a return breaks, if any.
    pub fn broken_rule(self) -> Option<crate::rules::RuleId> {
        match self {
            Returned::SyncAfterCompletion => Some(crate::rules::id::COMP_3),
            _ => None,
        }
    }
}

/// Every call one party made, by serial: the calls still open in full,
/// each with its [`CallPhase`] and the keeper's own data `O`, and every
/// call that ended in 4 bytes beside its tag `T` (8 with the simulator's):
/// its tag and how it ended, for the whole run, because a completion routine may name any past
/// call and COMP-3/COMP-4 need to know how it ended.
///
/// Every rule about the bookkeeping of calls is judged here: a completion
/// naming no call (COMP-5), after a synchronous return or completing a
/// return (COMP-3), a second one or none (COMP-4), an early one
/// (COMP-10), one after the platform gave up (accepted, ignored). What to
/// record, and whether to pass anything on, stays with the keeper: the
/// simulator (`engine/completion.rs`) and the native bridge
/// (`cpsim-native`), which maps its completion contexts to serials.
///
/// Serials start at 1 and are never reused; 0 names no call.
pub struct Ledger<O, T> {
    /// Open calls, in slots reused after they end.
    slab: Vec<Option<Open<O>>>,
    /// Free slots of `slab`.
    free: Vec<u32>,
    /// Every call, serial `s` at `s - 1`.
    calls: Vec<Rec<T>>,
    /// The status of each call [`begun`](Ledger::begin) that was completed
    /// in its callback ([`EARLY`]), by serial (rare, and few at a time).
    early: Vec<(u32, HRESULT)>,
}

/// An open call: its serial, where it stands, and the keeper's data.
struct Open<O> {
    serial: u32,
    phase: CallPhase,
    call: O,
}

/// One call of the run: its tag, and `state`: the slot of an open call,
/// [`IN_CALLBACK`] or [`EARLY`] for a call [`begun`](Ledger::begin) whose
/// callback runs (its data held by the keeper), or one of [`SYNC`],
/// [`COMPLETED`], [`ABANDONED`] for one that ended.
#[derive(Copy, Clone)]
struct Rec<T> {
    tag: T,
    state: u32,
}

/// Ended with a synchronous return.
const SYNC: u32 = u32::MAX;
/// Ended by its completion.
const COMPLETED: u32 = u32::MAX - 1;
/// Given up by the platform (LIFE-8).
const ABANDONED: u32 = u32::MAX - 2;
/// The first state of a call that ended.
const ENDED: u32 = ABANDONED;
/// A call begun, in its callback, not completed ([`CallPhase::InCallback`]).
const IN_CALLBACK: u32 = u32::MAX - 3;
/// A call begun, in its callback, completed early
/// ([`CallPhase::CompletedEarly`], the status in `Ledger::early`).
const EARLY: u32 = u32::MAX - 4;
/// The first state that is not a slot.
const MARKS: u32 = EARLY;

impl<O, T> Ledger<O, T> {
    /// An empty ledger.
    pub const fn new() -> Self {
        Ledger {
            slab: Vec::new(),
            free: Vec::new(),
            calls: Vec::new(),
            early: Vec::new(),
        }
    }
}

impl<O, T> Default for Ledger<O, T> {
    fn default() -> Self {
        Ledger::new()
    }
}

impl<O, T: Copy> Ledger<O, T> {
    /// The record of call `serial`, if it was made.
    #[inline]
    fn rec(&self, serial: u32) -> Option<&Rec<T>> {
        self.calls.get((serial as usize).wrapping_sub(1))
    }

    /// The slot of open call `serial` (none for a call begun and in its
    /// callback: its data are its keeper's).
    #[inline]
    fn slot(&self, serial: u32) -> Option<usize> {
        let r = self.rec(serial)?;
        (r.state < MARKS).then_some(r.state as usize)
    }

    /// Where the early status of begun call `serial` is kept, if it is.
    fn early_index(&self, serial: u32) -> Option<usize> {
        self.early.iter().position(|e| e.0 == serial)
    }

    /// The early status of begun call `serial`, taken out.
    fn take_early(&mut self, serial: u32) -> HRESULT {
        let k = self
            .early_index(serial)
            .expect("an early completion is kept until the return");
        self.early.swap_remove(k).1
    }

    #[inline]
    fn entry(&self, serial: u32) -> Option<&Open<O>> {
        self.slab[self.slot(serial)?].as_ref()
    }

    #[inline]
    fn entry_mut(&mut self, serial: u32) -> Option<&mut Open<O>> {
        let k = self.slot(serial)?;
        self.slab[k].as_mut()
    }

    /// A call starts (in its callback): its fresh serial.
    #[inline]
    pub fn open(&mut self, tag: T, call: O) -> u32 {
        let entry = Some(Open {
            serial: self.calls.len() as u32 + 1,
            phase: CallPhase::InCallback,
            call,
        });
        let slot = self.put(entry);
        self.calls.push(Rec { tag, state: slot });
        self.calls.len() as u32
    }

    /// An open call's entry in a free slot: the slot.
    #[inline]
    fn put(&mut self, entry: Option<Open<O>>) -> u32 {
        let slot = match self.free.pop() {
            Some(k) => {
                self.slab[k as usize] = entry;
                k
            }
            None => {
                self.slab.push(entry);
                (self.slab.len() - 1) as u32
            }
        };
        assert!(slot < MARKS, "more open calls than a ledger holds");
        slot
    }

    /// A call starts (in its callback) whose data `O` its keeper holds
    /// while the callback runs: its fresh serial. Only the call's 8-byte
    /// record is written; [`Ledger::returned_in`] then ends it, or, if it
    /// stays open, moves its data in. A completion in the callback
    /// ([`Ledger::complete`]) and a dropped handle ([`Ledger::dropped`])
    /// are judged as for a call [`open`](Ledger::open)ed; [`Ledger::get`]
    /// does not see it (its keeper has its data).
    #[inline]
    pub fn begin(&mut self, tag: T) -> u32 {
        self.calls.push(Rec {
            tag,
            state: IN_CALLBACK,
        });
        self.calls.len() as u32
    }

    /// The callback of call `serial`, [`begun`](Ledger::begin), returned
    /// `hr`; `call` is its data. What that means, as
    /// [`Ledger::returned_with`] (`bend` the same hook), and whether the
    /// call is over (true: it was never put in the open calls; its keeper
    /// finishes it with its data) or stays open (a copy of its data now
    /// kept here: [`Ledger::get`] sees it, and a later completion ends it).
    /// None for a call not in its callback.
    #[inline]
    pub fn returned_in(
        &mut self,
        serial: u32,
        hr: HRESULT,
        bend: impl FnOnce((CallPhase, Returned)) -> (CallPhase, Returned),
        call: &O,
    ) -> Option<(Returned, bool)>
    where
        O: Clone,
    {
        let state = self.rec(serial)?.state;
        let phase = match state {
            IN_CALLBACK => CallPhase::InCallback,
            EARLY => CallPhase::CompletedEarly(self.take_early(serial)),
            _ => return None,
        };
        let (phase, returned) = bend(phase.returned(hr));
        let (state, over) = match phase {
            CallPhase::ReturnedSync => (SYNC, true),
            CallPhase::Completed => (COMPLETED, true),
            CallPhase::Abandoned => (ABANDONED, true),
            CallPhase::InCallback | CallPhase::CompletedEarly(_) | CallPhase::Pending => {
                let call = call.clone();
                (
                    self.put(Some(Open {
                        serial,
                        phase,
                        call,
                    })),
                    false,
                )
            }
        };
        let k = (serial - 1) as usize;
        self.calls[k].state = state;
        Some((returned, over))
    }

    /// The open call `serial`, if it is open.
    #[inline]
    pub fn get(&self, serial: u32) -> Option<&O> {
        self.entry(serial).map(|e| &e.call)
    }

    /// The open call `serial`, if it is open.
    #[inline]
    pub fn get_mut(&mut self, serial: u32) -> Option<&mut O> {
        self.entry_mut(serial).map(|e| &mut e.call)
    }

    /// Whether call `serial` is open (begun and in its callback, too).
    #[inline]
    pub fn is_open(&self, serial: u32) -> bool {
        self.rec(serial).is_some_and(|r| r.state < ENDED)
    }

    /// The tag of call `serial`, open or ended, if it was made.
    #[inline]
    pub fn tag(&self, serial: u32) -> Option<T> {
        self.rec(serial).map(|r| r.tag)
    }

    /// Where call `serial` stands, open or ended, if it was made.
    pub fn phase(&self, serial: u32) -> Option<CallPhase> {
        let r = self.rec(serial)?;
        match r.state {
            SYNC => Some(CallPhase::ReturnedSync),
            COMPLETED => Some(CallPhase::Completed),
            ABANDONED => Some(CallPhase::Abandoned),
            IN_CALLBACK => Some(CallPhase::InCallback),
            EARLY => self
                .early_index(serial)
                .map(|k| CallPhase::CompletedEarly(self.early[k].1)),
            k => self.slab[k as usize].as_ref().map(|e| e.phase),
        }
    }

    /// The callback of open call `serial` returned `hr`: what that means
    /// (COMP-3 for a result after a completion, COMP-10 for a pend after
    /// one), and the call. `bend` sees the ledger's reading first (a
    /// faulty platform's hook; the correct one returns it as it is). A
    /// call the reading ends stays open until [`Ledger::finish`].
    #[inline]
    pub fn returned_with(
        &mut self,
        serial: u32,
        hr: HRESULT,
        bend: impl FnOnce((CallPhase, Returned)) -> (CallPhase, Returned),
    ) -> Option<(Returned, &mut O)> {
        let e = self.entry_mut(serial)?;
        let (phase, returned) = bend(e.phase.returned(hr));
        e.phase = phase;
        Some((returned, &mut e.call))
    }

    /// [`Ledger::returned_with`], read as the contract says.
    #[inline]
    pub fn returned(&mut self, serial: u32, hr: HRESULT) -> Option<(Returned, &mut O)> {
        self.returned_with(serial, hr, |read| read)
    }

    /// The provider called the completion routine for `serial` with
    /// `status`: what that means (see [`Completion::broken_rule`]), and the
    /// call's tag (none for a serial that names no call, COMP-5). An open
    /// call moves on; one the completion ends stays open until
    /// [`Ledger::finish`].
    pub fn complete(&mut self, serial: u32, status: HRESULT) -> (Completion, Option<T>) {
        let Some(&Rec { tag, state }) = self.rec(serial) else {
            return (Completion::NoSuchCall, None);
        };
        let phase = match state {
            SYNC => CallPhase::ReturnedSync,
            COMPLETED => CallPhase::Completed,
            ABANDONED => CallPhase::Abandoned,
            IN_CALLBACK | EARLY => {
                let phase = self.phase(serial).expect("a begun call");
                let (next, c) = phase.completed(status);
                if let CallPhase::CompletedEarly(early) = next {
                    if state == IN_CALLBACK {
                        self.early.push((serial, early));
                        self.calls[(serial - 1) as usize].state = EARLY;
                    }
                }
                return (c, Some(tag));
            }
            k => match self.slab[k as usize].as_mut() {
                Some(e) => {
                    let (phase, c) = e.phase.completed(status);
                    e.phase = phase;
                    return (c, Some(tag));
                }
                None => return (Completion::NoSuchCall, None),
            },
        };
        (phase.completed(status).1, Some(tag))
    }

    /// Takes call `serial` out of the open calls if it is over (its phase
    /// says how it ended: returned, completed, or given up); the ledger
    /// keeps its tag and how it ended. Nothing for a call still open.
    #[inline]
    pub fn finish(&mut self, serial: u32) -> Option<O> {
        let r = self.calls.get_mut((serial as usize).wrapping_sub(1))?;
        let k = r.state;
        let slot = self.slab.get_mut(k as usize)?;
        let end = match slot.as_ref()?.phase {
            CallPhase::ReturnedSync => SYNC,
            CallPhase::Completed => COMPLETED,
            CallPhase::Abandoned => ABANDONED,
            _ => return None,
        };
        r.state = end;
        self.free.push(k);
        slot.take().map(|e| e.call)
    }

    /// The platform stopped the provider: a pending call `serial` is given
    /// up (LIFE-8) and taken out of the open calls; a later completion of
    /// it is accepted and ignored.
    pub fn abandon(&mut self, serial: u32) -> Option<O> {
        let e = self.entry_mut(serial)?;
        e.phase = e.phase.abandon();
        self.finish(serial)
    }

    /// The provider's handle of open call `serial` was dropped without
    /// completing it (a safe provider's `Pending` token): COMP-4, and the
    /// call's tag. Nothing for a call that is not open.
    pub fn dropped(&self, serial: u32) -> Option<(RuleId, T)> {
        if !self.is_open(serial) {
            return None;
        }
        Some((crate::rules::id::COMP_4, self.rec(serial)?.tag))
    }

    /// The open calls in serial order: serial, phase, tag and data (not
    /// those [`begun`](Ledger::begin) and in their callback, whose data
    /// are their keeper's). Found among the open calls only, not the
    /// whole run's: a stop (LIFE-8) costs what is open, however many calls
    /// the run made.
    pub fn open_calls(&self) -> impl Iterator<Item = (u32, CallPhase, T, &O)> + '_ {
        let mut open: Vec<&Open<O>> = self.slab.iter().flatten().collect();
        open.sort_unstable_by_key(|e| e.serial);
        open.into_iter().map(|e| {
            let tag = self.calls[(e.serial - 1) as usize].tag;
            (e.serial, e.phase, tag, &e.call)
        })
    }

    /// The open calls, taken out with the ledger, in serial order: serial,
    /// phase, tag and data (as [`Ledger::open_calls`]). For a keeper that
    /// retires a ledger and keeps only its open calls in full
    /// ([`crate::window_ledger::WindowLedger`]).
    pub fn into_open_calls(self) -> Vec<(u32, CallPhase, T, O)> {
        let Ledger { slab, calls, .. } = self;
        let mut open: Vec<Open<O>> = slab.into_iter().flatten().collect();
        open.sort_unstable_by_key(|e| e.serial);
        open.into_iter()
            .map(|e| {
                (
                    e.serial,
                    e.phase,
                    calls[(e.serial - 1) as usize].tag,
                    e.call,
                )
            })
            .collect()
    }

    /// The bytes the ledger holds on the heap (its vectors' capacity; not
    /// what the keeper's data `O` themselves point to).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.slab.capacity() * size_of::<Option<Open<O>>>()
            + self.free.capacity() * size_of::<u32>()
            + self.calls.capacity() * size_of::<Rec<T>>()
            + self.early.capacity() * size_of::<(u32, HRESULT)>()
    }

    /// The calls that returned `ERROR_IO_PENDING` and are still waiting for
    /// their completion, in serial order.
    pub fn pending(&self) -> impl Iterator<Item = (u32, T, &O)> + '_ {
        self.open_calls()
            .filter(|(_, p, _, _)| *p == CallPhase::Pending)
            .map(|(s, _, t, c)| (s, t, c))
    }

    /// At the end of a run: each call pended and never completed, COMP-4.
    pub fn never_completed(&self) -> impl Iterator<Item = (RuleId, u32, T, &O)> + '_ {
        self.pending()
            .map(|(s, t, c)| (crate::rules::id::COMP_4, s, t, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{E_FAIL, S_OK};
    use crate::rules::id;

    #[test]
    fn comp_1_a_synchronous_return_ends_the_call_and_a_pending_one_waits() {
        assert_eq!(
            CallPhase::InCallback.returned(S_OK),
            (CallPhase::ReturnedSync, Returned::Sync)
        );
        assert_eq!(
            CallPhase::InCallback.returned(E_FAIL),
            (CallPhase::ReturnedSync, Returned::Sync)
        );
        let (p, r) = CallPhase::InCallback.returned(E_PENDING_IO);
        assert_eq!((p, r), (CallPhase::Pending, Returned::Pending));
        assert!(!p.is_over() && !p.in_callback());
        assert_eq!(p.completed(S_OK), (CallPhase::Completed, Completion::Ends));
    }

    #[test]
    fn comp_3_a_completion_after_a_synchronous_return_is_refused() {
        let (p, _) = CallPhase::InCallback.returned(S_OK);
        let (p2, c) = p.completed(S_OK);
        assert_eq!(
            (p2, c),
            (CallPhase::ReturnedSync, Completion::AfterSyncReturn)
        );
        assert_eq!(c.broken_rule(), Some(id::COMP_3));
    }

    #[test]
    fn comp_3_completing_then_returning_a_result_breaks_the_rule() {
        let (p, c) = CallPhase::InCallback.completed(S_OK);
        assert_eq!(c, Completion::Early);
        let (p2, r) = p.returned(S_OK);
        assert_eq!(
            (p2, r),
            (CallPhase::ReturnedSync, Returned::SyncAfterCompletion)
        );
        assert_eq!(r.broken_rule(), Some(id::COMP_3));
    }

    #[test]
    fn comp_4_a_second_completion_is_refused_before_and_after_the_return() {
        let (p, _) = CallPhase::InCallback.completed(S_OK);
        let (p, c) = p.completed(E_FAIL);
        assert_eq!(c, Completion::TwiceInCallback);
        assert_eq!(c.broken_rule(), Some(id::COMP_4));
        assert_eq!(
            p,
            CallPhase::CompletedEarly(S_OK),
            "the first status stands"
        );
        let (p, _) = CallPhase::Pending.completed(S_OK);
        let (_, c) = p.completed(S_OK);
        assert_eq!(c, Completion::Second);
        assert_eq!(c.broken_rule(), Some(id::COMP_4));
    }

    #[test]
    fn comp_10_an_early_completion_takes_effect_when_the_callback_pends() {
        let (p, c) = CallPhase::InCallback.completed(E_FAIL);
        assert_eq!(c, Completion::Early);
        assert!(p.in_callback());
        assert_eq!(c.broken_rule(), None);
        let (p, r) = p.returned(E_PENDING_IO);
        assert_eq!(
            (p, r),
            (CallPhase::Completed, Returned::EndsWithEarlyStatus(E_FAIL))
        );
        assert!(p.is_over());
    }

    #[test]
    fn life_8_a_completion_of_an_abandoned_call_is_ignored_without_a_finding() {
        let p = CallPhase::Pending.abandon();
        assert_eq!(p, CallPhase::Abandoned);
        let (_, c) = p.completed(S_OK);
        assert_eq!((c, c.broken_rule()), (Completion::AfterAbandon, None));
        // Only a pending call is given up.
        assert_eq!(CallPhase::ReturnedSync.abandon(), CallPhase::ReturnedSync);
    }

    #[test]
    fn a_return_of_a_call_not_in_its_callback_changes_nothing() {
        for p in [
            CallPhase::Pending,
            CallPhase::ReturnedSync,
            CallPhase::Completed,
            CallPhase::Abandoned,
        ] {
            assert_eq!(p.returned(S_OK), (p, Returned::NotInCallback));
        }
    }
    /// A ledger whose tag is a letter and whose data is a number.
    fn ledger() -> Ledger<u32, char> {
        Ledger::new()
    }

    #[test]
    fn comp_3_ledger_refuses_a_completion_of_a_call_that_returned_synchronously() {
        let mut l = ledger();
        let s = l.open('a', 7);
        let (r, data) = l.returned(s, S_OK).unwrap();
        assert_eq!((r, *data), (Returned::Sync, 7));
        assert_eq!(l.finish(s), Some(7));
        assert!(!l.is_open(s));
        let (c, tag) = l.complete(s, S_OK);
        assert_eq!((c, tag), (Completion::AfterSyncReturn, Some('a')));
        assert_eq!(c.broken_rule(), Some(id::COMP_3));
        assert!(!c.passed_on());
        assert_eq!(l.phase(s), Some(CallPhase::ReturnedSync));
    }

    #[test]
    fn comp_3_ledger_a_result_returned_after_an_early_completion_breaks_the_rule() {
        let mut l = ledger();
        let s = l.open('a', 7);
        assert_eq!(l.complete(s, S_OK), (Completion::Early, Some('a')));
        let (r, _) = l.returned(s, E_FAIL).unwrap();
        assert_eq!(r, Returned::SyncAfterCompletion);
        assert_eq!(r.broken_rule(), Some(id::COMP_3));
        assert_eq!(l.finish(s), Some(7));
        // The call ended with its returned result: a completion is refused.
        assert_eq!(l.complete(s, S_OK).0, Completion::AfterSyncReturn);
    }

    #[test]
    fn comp_4_ledger_a_second_completion_of_a_pended_call_is_refused() {
        let mut l = ledger();
        let s = l.open('b', 1);
        assert_eq!(l.returned(s, E_PENDING_IO).unwrap().0, Returned::Pending);
        assert_eq!(l.finish(s), None, "a pending call stays open");
        let (c, tag) = l.complete(s, S_OK);
        assert_eq!(
            (c, tag, c.broken_rule()),
            (Completion::Ends, Some('b'), None)
        );
        assert!(c.passed_on());
        assert_eq!(l.finish(s), Some(1));
        let (c, tag) = l.complete(s, E_FAIL);
        assert_eq!((c, tag), (Completion::Second, Some('b')));
        assert_eq!(c.broken_rule(), Some(id::COMP_4));
        assert!(!c.passed_on());
    }

    #[test]
    fn comp_4_ledger_a_second_completion_before_the_return_is_refused_and_the_first_stands() {
        let mut l = ledger();
        let s = l.open('c', 1);
        assert_eq!(l.complete(s, E_FAIL).0, Completion::Early);
        let (c, _) = l.complete(s, S_OK);
        assert_eq!(
            (c, c.broken_rule()),
            (Completion::TwiceInCallback, Some(id::COMP_4))
        );
        assert!(!c.passed_on());
        let (r, _) = l.returned(s, E_PENDING_IO).unwrap();
        assert_eq!(r, Returned::EndsWithEarlyStatus(E_FAIL));
    }

    #[test]
    fn comp_4_ledger_names_each_pended_call_never_completed_and_only_those() {
        let mut l = ledger();
        let pended = l.open('p', 1);
        let in_callback = l.open('i', 2);
        let completed = l.open('c', 3);
        let sync = l.open('s', 4);
        let pended_too = l.open('q', 5);
        for s in [pended, completed, pended_too] {
            l.returned(s, E_PENDING_IO);
        }
        l.complete(completed, S_OK);
        l.finish(completed);
        l.returned(sync, S_OK);
        l.finish(sync);
        let never: Vec<_> = l
            .never_completed()
            .map(|(r, s, t, d)| (r, s, t, *d))
            .collect();
        assert_eq!(
            never,
            [
                (id::COMP_4, pended, 'p', 1),
                (id::COMP_4, pended_too, 'q', 5)
            ]
        );
        // Still in its callback: not (yet) a broken promise.
        assert!(l.is_open(in_callback));
    }

    #[test]
    fn comp_4_ledger_a_dropped_handle_of_an_open_call_is_never_completed() {
        let mut l = ledger();
        let s = l.open('d', 1);
        l.returned(s, E_PENDING_IO);
        assert_eq!(l.dropped(s), Some((id::COMP_4, 'd')));
        l.complete(s, S_OK);
        l.finish(s);
        assert_eq!(l.dropped(s), None, "a completed call's handle may go");
        assert_eq!(l.dropped(0), None);
    }

    #[test]
    fn comp_5_ledger_a_completion_naming_no_call_is_refused_and_changes_nothing() {
        let mut l = ledger();
        let s = l.open('e', 1);
        for bogus in [0, s + 1, u32::MAX] {
            let (c, tag) = l.complete(bogus, S_OK);
            assert_eq!((c, tag), (Completion::NoSuchCall, None));
            assert_eq!(c.broken_rule(), Some(id::COMP_5));
            assert!(!c.passed_on());
            assert_eq!(l.phase(bogus), None);
        }
        assert_eq!(l.phase(s), Some(CallPhase::InCallback));
    }

    #[test]
    fn comp_10_ledger_an_early_completion_ends_the_call_when_its_callback_pends() {
        let mut l = ledger();
        let s = l.open('f', 9);
        let (c, _) = l.complete(s, E_FAIL);
        assert_eq!((c, c.broken_rule()), (Completion::Early, None));
        assert!(c.passed_on());
        assert_eq!(l.finish(s), None, "still in its callback");
        let (r, _) = l.returned(s, E_PENDING_IO).unwrap();
        assert_eq!(
            (r, r.broken_rule()),
            (Returned::EndsWithEarlyStatus(E_FAIL), None)
        );
        assert_eq!(l.finish(s), Some(9));
        assert_eq!(l.phase(s), Some(CallPhase::Completed));
        assert_eq!(l.complete(s, S_OK).0, Completion::Second);
    }

    /// The contract's reading (no platform fault).
    fn read(r: (CallPhase, Returned)) -> (CallPhase, Returned) {
        r
    }

    #[test]
    fn comp_3_ledger_a_begun_call_returned_at_once_ends_there_and_refuses_a_completion() {
        let mut l = ledger();
        let s = l.begin('a');
        assert!(l.is_open(s));
        assert_eq!(l.phase(s), Some(CallPhase::InCallback));
        assert_eq!(l.get(s), None, "its data are its keeper's");
        assert_eq!(l.open_calls().count(), 0);
        assert_eq!(
            l.returned_in(s, S_OK, read, &7),
            Some((Returned::Sync, true))
        );
        assert!(!l.is_open(s));
        assert_eq!(l.finish(s), None, "never in the open calls");
        let (c, tag) = l.complete(s, S_OK);
        assert_eq!(
            (c, tag, c.broken_rule()),
            (Completion::AfterSyncReturn, Some('a'), Some(id::COMP_3))
        );
        assert_eq!(
            l.returned_in(s, S_OK, read, &7),
            None,
            "a second return changes nothing"
        );
        assert!(l.slab.is_empty(), "no open call was ever kept");
    }

    #[test]
    fn comp_4_ledger_a_begun_call_that_pends_is_kept_and_its_completion_ends_it() {
        let mut l = ledger();
        let s = l.begin('b');
        assert_eq!(
            l.returned_in(s, E_PENDING_IO, read, &3),
            Some((Returned::Pending, false))
        );
        assert_eq!(l.get(s), Some(&3));
        assert_eq!(l.pending().map(|(s, ..)| s).collect::<Vec<_>>(), [s]);
        assert_eq!(l.complete(s, S_OK).0, Completion::Ends);
        assert_eq!(l.finish(s), Some(3));
        let (c, _) = l.complete(s, S_OK);
        assert_eq!((c, c.broken_rule()), (Completion::Second, Some(id::COMP_4)));
    }

    #[test]
    fn comp_4_ledger_a_begun_call_completed_twice_in_its_callback_keeps_the_first_and_a_dropped_handle_is_caught(
    ) {
        let mut l = ledger();
        let s = l.begin('c');
        assert_eq!(l.dropped(s).map(|d| d.0), Some(id::COMP_4));
        assert_eq!(l.complete(s, E_FAIL).0, Completion::Early);
        let (c, _) = l.complete(s, S_OK);
        assert_eq!(
            (c, c.broken_rule()),
            (Completion::TwiceInCallback, Some(id::COMP_4))
        );
        assert_eq!(l.phase(s), Some(CallPhase::CompletedEarly(E_FAIL)));
        assert_eq!(
            l.returned_in(s, E_PENDING_IO, read, &5),
            Some((Returned::EndsWithEarlyStatus(E_FAIL), true))
        );
        assert_eq!(l.phase(s), Some(CallPhase::Completed));
        assert!(
            l.early.is_empty(),
            "the early status is taken at the return"
        );
    }

    #[test]
    fn comp_3_comp_10_ledger_a_begun_call_completed_early_then_returning_a_result_or_bent_to_pend()
    {
        let mut l = ledger();
        let s = l.begin('d');
        l.complete(s, S_OK);
        let (r, over) = l.returned_in(s, S_OK, read, &1).unwrap();
        assert_eq!(
            (r, r.broken_rule(), over),
            (Returned::SyncAfterCompletion, Some(id::COMP_3), true)
        );
        // A platform that loses early completions keeps the call pending.
        let t = l.begin('e');
        l.complete(t, S_OK);
        let bent = l.returned_in(
            t,
            E_PENDING_IO,
            |_| (CallPhase::Pending, Returned::Pending),
            &2,
        );
        assert_eq!(bent, Some((Returned::Pending, false)));
        assert_eq!(l.pending().map(|(s, ..)| s).collect::<Vec<_>>(), [t]);
    }

    #[test]
    fn comp_10_ledger_a_platform_that_bends_the_reading_keeps_the_call_pending() {
        // What a platform that loses early completions reads (a fault hook).
        let mut l = ledger();
        let s = l.open('g', 1);
        l.complete(s, S_OK);
        let (r, _) = l
            .returned_with(s, E_PENDING_IO, |_| (CallPhase::Pending, Returned::Pending))
            .unwrap();
        assert_eq!(r, Returned::Pending);
        assert_eq!(l.finish(s), None);
        assert_eq!(l.pending().map(|(s, ..)| s).collect::<Vec<_>>(), [s]);
    }

    #[test]
    fn life_8_ledger_an_abandoned_pending_call_ends_and_its_completion_is_ignored() {
        let mut l = ledger();
        let s = l.open('h', 3);
        assert_eq!(l.abandon(s), None, "a call in its callback is not given up");
        l.returned(s, E_PENDING_IO);
        assert_eq!(l.abandon(s), Some(3));
        let (c, tag) = l.complete(s, S_OK);
        assert_eq!(
            (c, tag, c.broken_rule()),
            (Completion::AfterAbandon, Some('h'), None)
        );
        assert!(!c.passed_on());
        assert_eq!(l.never_completed().count(), 0);
    }

    #[test]
    fn ledger_keeps_an_ended_call_in_4_bytes_beside_its_tag_and_reuses_open_slots() {
        assert_eq!(std::mem::size_of::<Rec<u32>>(), 8);
        let mut l = ledger();
        for k in 0..1000 {
            let s = l.open('x', k);
            assert_eq!(s, k + 1, "serials from 1, never reused");
            l.returned(s, S_OK);
            assert_eq!(l.finish(s), Some(k));
        }
        assert_eq!(l.slab.len(), 1);
        assert_eq!(l.open_calls().count(), 0);
        assert_eq!(l.tag(1000), Some('x'));
    }

    #[test]
    fn ledger_lists_open_calls_in_serial_order_whatever_slot_they_hold() {
        let mut l = ledger();
        let a = l.open('a', 1);
        let b = l.open('b', 2);
        l.returned(a, S_OK);
        l.finish(a);
        let c = l.open('c', 3); // takes a's slot
        l.returned(c, E_PENDING_IO);
        let open: Vec<_> = l.open_calls().map(|(s, p, t, _)| (s, p, t)).collect();
        assert_eq!(
            open,
            [
                (b, CallPhase::InCallback, 'b'),
                (c, CallPhase::Pending, 'c')
            ]
        );
    }
}
