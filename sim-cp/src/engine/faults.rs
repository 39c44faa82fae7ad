//! Where the platform faults bend the correct platform (`PlatformFault`,
//! config.rs: deliberate platform bugs that prove the oracle catches each
//! C-rule).
//!
//! `machine::step` is the correct session state machine; a faulty world
//! bends the step's result here (`SessionFaults::bend`, called by
//! `Session::step`), and nowhere else in the session code. Everything else
//! a platform fault changes goes through one hook of [`PlatformFaults`]
//! (the world's, read once from the configuration), [`RegisterFaults`] or
//! [`SessionFaults`] the same way: the correct platform computes its value
//! (a user context, a status, a reason, whether a call may start) and hands
//! it through the hook, which returns it unchanged unless the fault is set.
//! So the correct platform's code reads without fault branches, and each
//! fault is found here by name.

use super::args::Slot;
use super::lifecycle::Delivery;
use super::machine::{self, Activation, Effect, Effects, Input, Machine, Stage, State};
use super::traffic::Admission;
use super::World;
use crate::abi::{
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE as Routine, CPNATFWT_SESSION_TERMINATION_REASON as Reason,
    S_OK,
};
use crate::config::{Config, PlatformFault};
use crate::ledger::{CallPhase, Returned};
use crate::trace::Activity;
use crate::transport_id::Tid;
use std::borrow::Cow;

/// The world's platform faults, each behind the hook named by what the
/// platform does (read once from the configuration: `Config::has_fault`
/// scans a list).
#[derive(Copy, Clone, Default, PartialEq, Eq, Debug)]
pub struct PlatformFaults {
    /// Register's results (REG-1..4).
    pub register: RegisterFaults,
    /// The session state machine and a session's traffic.
    pub session: SessionFaults,
    /// The user context passed to callbacks is off by 0x10 (SESS-6).
    wrong_user_context: bool,
    /// No completion routine handed to async-capable callbacks (COMP-9).
    no_completion_routine: bool,
    /// ADD/REMOVE/REACH get an ID no platform issued (TID-1).
    foreign_transport_id: bool,
    /// The arguments of a pended call change after the callback returned (COMP-8).
    clobber_pended_args: bool,
    /// A SEND_BUFFERS' payload changes once the call pended (COMP-8, DATA-6).
    clobber_pended_payload: bool,
    /// TERMINATE for a timeout says PLATFORM_SHUTDOWN (SESS-5).
    wrong_termination_reason: bool,
    /// An early completion is forgotten: the call stays pending (COMP-10).
    lose_early_completion: bool,
    /// S_FALSE (any positive code) read as success (COMP-1).
    s_false_is_success: bool,
    /// A completion after TERMINATE applied (COMP-11).
    apply_late_completion: bool,
    /// A call past its time limit leaves the session alive (TIME-2).
    ignore_timeout: bool,
    /// IndicateReceivedBuffers accepted from a dormant instance (STATE-3).
    accept_indicate_when_dormant: bool,
    /// The provider's completion routine called twice (DATA-4).
    double_provider_completion: bool,
    /// ESTABLISH delivered although Register failed (SESS-1).
    establish_on_failed_register: bool,
    /// A Register retried after a failed one fails too (LIFE-3).
    poison_after_failed_register: bool,
    /// A LUID given back to Register gets a new interface (REG-6).
    fresh_luid_on_reuse: bool,
    /// Register writes to the caller's strings (REG-9).
    write_caller_strings: bool,
}

impl World {
    /// Seals a call's arguments in the pool (the checker compares them at
    /// completion); a faulty platform then writes over them (COMP-8).
    #[inline]
    pub(super) fn seal_args(&mut self, slot: Slot) {
        self.args.seal(slot);
        if self.faults.clobber_pended_args {
            self.args.clobber(slot);
        }
    }

    /// Call `serial`'s callback returned ERROR_IO_PENDING and the call is
    /// still open: its arguments stay as sealed until it completes; a
    /// faulty platform changes a byte of a SEND_BUFFERS' payload meanwhile
    /// (COMP-8, DATA-6), after the provider has read it.
    #[inline]
    pub(super) fn call_pended(&mut self, serial: u32) {
        if self.faults.clobber_pended_payload {
            if let Some(slot) = self.calls.get(serial).and_then(|c| c.args) {
                self.args.clobber_payload(slot);
            }
        }
    }
}

impl PlatformFaults {
    pub fn of(cfg: &Config) -> PlatformFaults {
        let f = |x| cfg.has_fault(x);
        PlatformFaults {
            register: RegisterFaults::of(cfg),
            session: SessionFaults::of(cfg),
            wrong_user_context: f(PlatformFault::WrongUserContext),
            no_completion_routine: f(PlatformFault::NoCompletionRoutine),
            foreign_transport_id: f(PlatformFault::ForeignTransportId),
            clobber_pended_args: f(PlatformFault::ClobberPendedArgs),
            clobber_pended_payload: f(PlatformFault::ClobberPendedPayload),
            wrong_termination_reason: f(PlatformFault::WrongTerminationReason),
            lose_early_completion: f(PlatformFault::LoseEarlyCompletion),
            s_false_is_success: f(PlatformFault::SFalseIsSuccess),
            apply_late_completion: f(PlatformFault::ApplyLateCompletion),
            ignore_timeout: f(PlatformFault::IgnoreTimeout),
            accept_indicate_when_dormant: f(PlatformFault::AcceptIndicateWhenDormant),
            double_provider_completion: f(PlatformFault::DoubleProviderCompletion),
            establish_on_failed_register: f(PlatformFault::EstablishOnFailedRegister),
            poison_after_failed_register: f(PlatformFault::PoisonAfterFailedRegister),
            fresh_luid_on_reuse: f(PlatformFault::FreshLuidOnReuse),
            write_caller_strings: f(PlatformFault::WriteCallerStrings),
        }
    }

    // The dispatch path.

    /// The user context a callback gets, given the provider's.
    #[inline]
    pub fn user_context(&self, ctx: usize) -> usize {
        if self.wrong_user_context {
            ctx ^ 0x10
        } else {
            ctx
        }
    }

    /// The completion routine a callback gets, given the platform's.
    #[inline]
    pub fn completion_routine(&self, routine: Routine) -> Routine {
        if self.no_completion_routine {
            None
        } else {
            routine
        }
    }

    /// The transport ID ADD/REMOVE/REACH get, given the operation's.
    #[inline]
    pub fn transport_id(&self, t: Tid) -> Tid {
        if self.foreign_transport_id {
            Tid::v4(0, 0, 0)
        } else {
            t
        }
    }

    /// The reason TERMINATE carries, given the session's.
    #[inline]
    pub fn termination_reason(&self, reason: Reason) -> Reason {
        if self.wrong_termination_reason && reason == Reason::ProviderTimeout {
            Reason::PlatformShutdown
        } else {
            reason
        }
    }

    // The completion protocol.

    /// What a callback's return means, given the ledger's reading (the
    /// call's next phase and what the return does).
    #[inline]
    pub fn returned(&self, read: (CallPhase, Returned)) -> (CallPhase, Returned) {
        match read {
            (_, Returned::EndsWithEarlyStatus(_)) if self.lose_early_completion => {
                (CallPhase::Pending, Returned::Pending)
            }
            read => read,
        }
    }

    /// The status a synchronous return `hr` is read as (the correct
    /// platform: `hr` itself, a positive code being a failure, COMP-1).
    #[inline]
    pub fn status(&self, hr: i32) -> i32 {
        if hr > 0 && self.s_false_is_success {
            S_OK
        } else {
            hr
        }
    }

    /// Whether a completion is applied, given whether its session is live.
    #[inline]
    pub fn completion_applied(&self, live: bool) -> bool {
        live || self.apply_late_completion
    }

    /// Whether a call over its time limit ends its session (the correct
    /// platform: always, TIME-2).
    #[inline]
    pub fn timeout_ends_session(&self) -> bool {
        !self.ignore_timeout
    }

    // Traffic.

    /// What becomes of an IndicateReceivedBuffers, given the correct
    /// platform's admission (taken exactly when the instance is active,
    /// STATE-3; a faulty platform answers S_OK to the others and drops them).
    #[inline]
    pub fn indication(&self, admission: Admission) -> Admission {
        match admission {
            Admission::Refuse if self.accept_indicate_when_dormant => Admission::Swallow,
            a => a,
        }
    }

    /// How often the provider's completion routine of an indication is
    /// called (the correct platform: once, DATA-4).
    #[inline]
    pub fn provider_completions(&self) -> u32 {
        if self.double_provider_completion {
            2
        } else {
            1
        }
    }

    // Register.

    /// Whether a Register that returns `hr` starts a session (whose
    /// ESTABLISH is then delivered), given whether the instance has one
    /// (the correct platform: exactly when it succeeds, SESS-1).
    #[inline]
    pub fn starts_session(&self, hr: i32, has_session: bool) -> bool {
        hr == S_OK || (self.establish_on_failed_register && !has_session)
    }

    /// Why Register is refused before it looks at the interface, given the
    /// correct platform's reason (if any) and whether an earlier Register
    /// of the instance failed (the correct platform: no matter, LIFE-3).
    #[inline]
    pub fn register_refusal(
        &self,
        why: Option<&'static str>,
        failed_before: bool,
    ) -> Option<&'static str> {
        why.or((self.poison_after_failed_register && failed_before)
            .then_some("(platform fault) Register refused after an earlier failure"))
    }

    /// The LUID Register looks up, given the one asked for (a faulty
    /// platform makes a new interface instead).
    #[inline]
    pub fn luid_looked_up(&self, luid: Option<u64>) -> Option<u64> {
        if self.fresh_luid_on_reuse {
            None
        } else {
            luid
        }
    }

    /// The caller's friendly name as Register leaves it, given it as read
    /// (the correct platform: as it was, REG-9; a faulty one normalises it
    /// to upper case in place). The ABI edge writes back what differs.
    pub fn callers_name_after<'a>(&self, name: &'a [u16]) -> Cow<'a, [u16]> {
        if !self.write_caller_strings {
            return Cow::Borrowed(name);
        }
        let lower = u16::from(b'a')..=u16::from(b'z');
        Cow::Owned(
            name.iter()
                .map(|&c| if lower.contains(&c) { c - 32 } else { c })
                .collect(),
        )
    }
}

/// The platform faults that bend what Register reports (REG-1..4).
#[derive(Copy, Clone, Default, PartialEq, Eq, Debug)]
pub struct RegisterFaults {
    /// NULL friendly name: "Adapter" instead of the default name (REG-1).
    bad_default_name: bool,
    /// A name in use kept as it is, only cut (REG-2).
    duplicate_name_kept: bool,
    /// A long name kept uncut (REG-3).
    long_name_uncut: bool,
    /// The LUID written back is 0 (REG-4).
    zero_luid: bool,
}

impl RegisterFaults {
    pub fn of(cfg: &Config) -> RegisterFaults {
        RegisterFaults {
            bad_default_name: cfg.has_fault(PlatformFault::BadDefaultName),
            duplicate_name_kept: cfg.has_fault(PlatformFault::DuplicateNameKept),
            long_name_uncut: cfg.has_fault(PlatformFault::LongNameUncut),
            zero_luid: cfg.has_fault(PlatformFault::ZeroLuid),
        }
    }

    /// The interface's name, given the name asked for and the correct one.
    pub fn interface_name(&self, wanted: Option<&[u16]>, correct: Vec<u16>) -> Vec<u16> {
        match wanted {
            None if self.bad_default_name => "Adapter".encode_utf16().collect(),
            Some(w) if self.duplicate_name_kept => w[..w.len().min(256)].to_vec(),
            Some(w) if self.long_name_uncut => w.to_vec(),
            _ => correct,
        }
    }

    /// The LUID Register writes back, given the interface's.
    pub fn luid_reported(&self, luid: u64) -> u64 {
        if self.zero_luid {
            0
        } else {
            luid
        }
    }
}

/// The platform faults that bend the session state machine.
#[derive(Copy, Clone, Default, PartialEq, Eq, Debug)]
pub struct SessionFaults {
    /// The first transition is TRANSITION_DORMANT (STATE-1).
    dormant_first: bool,
    /// TRANSITION_ACTIVE again after the first one succeeded (STATE-4).
    repeat_transition: bool,
    /// A failed TRANSITION_ACTIVE taken for a success (STATE-2).
    ignore_failed_activation: bool,
    /// Calls start before ESTABLISH returns (SESS-2): a shutdown meanwhile
    /// is not seen, and ESTABLISH's return does not examine the host.
    call_before_establish: bool,
    /// Deregister inside ESTABLISH is refused (SESS-3).
    refuse_calls_in_establish: bool,
    /// TERMINATE delivered twice (SESS-4).
    double_terminate: bool,
    /// A removed ID used once more by the next send of its family (TID-5).
    keep_removed_id: bool,
    /// SEND_BUFFERS to a remote ID that was never reached (TID-7).
    send_without_reach: bool,
}

impl SessionFaults {
    pub fn of(cfg: &Config) -> SessionFaults {
        SessionFaults {
            dormant_first: cfg.has_fault(PlatformFault::DormantFirst),
            repeat_transition: cfg.has_fault(PlatformFault::RepeatTransition),
            ignore_failed_activation: cfg.has_fault(PlatformFault::IgnoreFailedActivation),
            call_before_establish: cfg.has_fault(PlatformFault::CallBeforeEstablish),
            refuse_calls_in_establish: cfg.has_fault(PlatformFault::RefuseCallsInEstablish),
            double_terminate: cfg.has_fault(PlatformFault::DoubleTerminate),
            keep_removed_id: cfg.has_fault(PlatformFault::KeepRemovedId),
            send_without_reach: cfg.has_fault(PlatformFault::SendWithoutReach),
        }
    }

    /// Whether a call may start, given whether the session is established
    /// (the correct answer).
    #[inline]
    pub fn may_call(&self, established: bool) -> bool {
        established || self.call_before_establish
    }

    /// Whether a datagram may be sent, given whether its REACH succeeded
    /// (the correct answer).
    #[inline]
    pub fn may_send(&self, reached: bool) -> bool {
        reached || self.send_without_reach
    }

    /// Whether TERMINATE is delivered once more after this delivery,
    /// given whether this is the first (the correct platform: never, SESS-4).
    #[inline]
    pub fn terminates_again(&self, first: bool) -> bool {
        self.double_terminate && first
    }

    /// How Register delivers ESTABLISH, given the correct platform's
    /// choice (`correct`, drawn only if it is used: it takes the world's
    /// randomness). A faulty platform starts TRANSITION_ACTIVE first (SESS-2).
    #[inline]
    pub fn establish_delivery(&self, correct: impl FnOnce() -> Delivery) -> Delivery {
        if self.call_before_establish {
            Delivery::QueuedAfterActivate
        } else {
            correct()
        }
    }

    /// The ID a REMOVE of `t` leaves behind for the next send (none on the
    /// correct platform).
    #[inline]
    pub fn kept_after_remove(&self, t: Tid) -> Option<Tid> {
        self.keep_removed_id.then_some(t)
    }

    /// Whether any of them is set (the correct platform: none).
    #[inline]
    pub fn any(&self) -> bool {
        *self != SessionFaults::default()
    }

    /// The step of a faulty platform from `before` on `input`, given the
    /// correct platform's (`next`, `fx`); `transitions` is the number of
    /// transitions the session has started.
    #[inline]
    pub fn bend(
        &self,
        before: Machine,
        transitions: u32,
        input: Input,
        next: Machine,
        fx: Effects,
    ) -> (Machine, Effects) {
        match input {
            Input::Examine { .. } if self.dormant_first && transitions == 0 => (
                next,
                fx.map(|e| match e {
                    Effect::Issue(Activity::Active) => Effect::Issue(Activity::Dormant),
                    e => e,
                }),
            ),
            Input::TransitionDone {
                to: Activity::Active,
                ok: true,
            } if self.repeat_transition && transitions == 1 => {
                (next, fx.with(Effect::Issue(Activity::Active)))
            }
            Input::TransitionDone {
                to: Activity::Active,
                ok: false,
            } if self.ignore_failed_activation => {
                // Carries on as if it had worked (and says nothing).
                let mut next = next;
                next.activation = Activation::Active;
                (next, Effects::NONE)
            }
            Input::EstablishReturned { overran, .. } if self.call_before_establish => {
                let (next, fx) = machine::step(
                    before,
                    Input::EstablishReturned {
                        overran,
                        shutdown: false,
                    },
                );
                (next, fx.without(Effect::Pump))
            }
            Input::Deregister if self.refuse_calls_in_establish && fx.contains(Effect::Defer) => {
                (before, Effects::NONE.with(Effect::Refuse))
            }
            Input::Terminate
                if self.double_terminate
                    && matches!(
                        before.state,
                        State::Ended {
                            stage: Stage::Established,
                            terminated: true,
                            ..
                        }
                    ) =>
            {
                (next, Effects::NONE.with(Effect::Deliver))
            }
            _ => (next, fx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;

    fn bent(f: SessionFaults, m: Machine, transitions: u32, input: Input) -> (Machine, Effects) {
        let (next, fx) = machine::step(m, input);
        f.bend(m, transitions, input, next, fx)
    }

    fn established() -> Machine {
        let m = machine::step(Machine::NEW, Input::Establish).0;
        machine::step(
            m,
            Input::EstablishReturned {
                overran: false,
                shutdown: false,
            },
        )
        .0
    }

    #[test]
    fn reg_1_to_4_platform_faults_bend_registers_results_only_when_set() {
        let correct = RegisterFaults::default();
        let name: Vec<u16> = "x".repeat(300).encode_utf16().collect();
        let cut = name[..256].to_vec();
        assert_eq!(correct.interface_name(Some(&name), cut.clone()), cut);
        assert_eq!(correct.luid_reported(7), 7);
        let uncut = RegisterFaults {
            long_name_uncut: true,
            ..Default::default()
        };
        assert_eq!(uncut.interface_name(Some(&name), cut.clone()), name);
        let bad = RegisterFaults {
            bad_default_name: true,
            zero_luid: true,
            ..Default::default()
        };
        let adapter: Vec<u16> = "Adapter".encode_utf16().collect();
        assert_eq!(bad.interface_name(None, cut), adapter);
        assert_eq!(bad.luid_reported(7), 0);
    }

    #[test]
    fn sess_1_sess_2_state_3_life_3_reg_9_hooks_pass_the_correct_value_and_only_their_fault_bends_it(
    ) {
        let correct = PlatformFaults::default();
        let name: Vec<u16> = "vpn-1".encode_utf16().collect();
        let shout: Vec<u16> = "VPN-1".encode_utf16().collect();
        let by = |d| move || d;
        for a in [Admission::Take, Admission::Refuse] {
            assert_eq!(correct.indication(a), a);
        }
        assert!(correct.starts_session(S_OK, false));
        assert!(!correct.starts_session(crate::abi::E_INVALIDARG, false));
        assert_eq!(correct.register_refusal(None, true), None);
        assert_eq!(correct.register_refusal(Some("x"), false), Some("x"));
        assert_eq!(correct.callers_name_after(&name), Cow::Borrowed(&name[..]));
        for d in [Delivery::CallersThread, Delivery::Queued] {
            assert_eq!(correct.session.establish_delivery(by(d)), d);
        }
        let faulty = PlatformFaults {
            accept_indicate_when_dormant: true,
            establish_on_failed_register: true,
            poison_after_failed_register: true,
            write_caller_strings: true,
            session: SessionFaults {
                call_before_establish: true,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(faulty.indication(Admission::Take), Admission::Take);
        assert_eq!(faulty.indication(Admission::Refuse), Admission::Swallow);
        // SESS-1: a failed Register starts a session, unless one is there.
        assert!(faulty.starts_session(crate::abi::E_INVALIDARG, false));
        assert!(!faulty.starts_session(crate::abi::E_INVALIDARG, true));
        // LIFE-3: refused after a failure, the correct reason first.
        assert_eq!(faulty.register_refusal(None, false), None);
        assert!(faulty.register_refusal(None, true).is_some());
        assert_eq!(faulty.register_refusal(Some("x"), true), Some("x"));
        assert_eq!(faulty.callers_name_after(&name).as_ref(), &shout[..]);
        assert_eq!(
            faulty
                .session
                .establish_delivery(|| unreachable!("not drawn")),
            Delivery::QueuedAfterActivate
        );
    }

    #[test]
    fn the_correct_platform_is_not_bent() {
        let f = SessionFaults::default();
        let m = established();
        let input = Input::Examine { demand: true };
        assert_eq!(bent(f, m, 0, input), machine::step(m, input));
    }

    #[test]
    fn sess_3_platform_fault_refuse_calls_in_establish_refuses_instead_of_deferring() {
        let f = SessionFaults {
            refuse_calls_in_establish: true,
            ..Default::default()
        };
        let establishing = machine::step(Machine::NEW, Input::Establish).0;
        let (m, fx) = bent(f, establishing, 0, Input::Deregister);
        assert_eq!(m, establishing);
        assert!(fx.contains(Effect::Refuse) && !fx.contains(Effect::Defer));
    }

    #[test]
    fn state_2_platform_fault_ignore_failed_activation_keeps_the_session() {
        let f = SessionFaults {
            ignore_failed_activation: true,
            ..Default::default()
        };
        let m = machine::step(established(), Input::TransitionStarts(Activity::Active)).0;
        let input = Input::TransitionDone {
            to: Activity::Active,
            ok: false,
        };
        let (m, fx) = bent(f, m, 1, input);
        assert!(m.is_active() && m.live());
        assert!(fx.into_iter().next().is_none());
    }

    #[test]
    fn state_1_platform_fault_dormant_first_makes_the_first_transition_dormant() {
        let f = SessionFaults {
            dormant_first: true,
            ..Default::default()
        };
        let input = Input::Examine { demand: true };
        let (_, fx) = bent(f, established(), 0, input);
        assert!(fx.contains(Effect::Issue(Activity::Dormant)));
        let (_, fx) = bent(f, established(), 2, input);
        assert!(fx.contains(Effect::Issue(Activity::Active)));
    }

    #[test]
    fn sess_4_platform_fault_double_terminate_delivers_it_again() {
        let f = SessionFaults {
            double_terminate: true,
            ..Default::default()
        };
        let end = Input::End {
            reason: Reason::PlatformShutdown,
            notify: true,
        };
        let m = machine::step(established(), end).0;
        let (m, fx) = bent(f, m, 0, Input::Terminate);
        assert!(fx.contains(Effect::Deliver));
        let (_, fx) = bent(f, m, 0, Input::Terminate);
        assert!(fx.contains(Effect::Deliver));
    }
}
