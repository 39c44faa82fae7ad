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
            Completion::Early | Completion::Ends | Completion::AfterAbandon => None,
        }
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
}
