//! Where the platform faults bend the correct platform (`PlatformFault`,
//! config.rs: deliberate platform bugs that prove the oracle catches each
//! C-rule).
//!
//! `machine::step` is the correct session state machine; a faulty world
//! bends the step's result here (`SessionFaults::bend`, called by
//! `Session::step`), and nowhere else in the session code. Register's
//! results (the interface's name, the LUID written back) are bent by
//! `RegisterFaults` the same way: the correct value is computed, then
//! handed through.

use super::machine::{self, Activation, Effect, Effects, Input, Machine, Stage, State};
use crate::config::{Config, PlatformFault};
use crate::trace::Activity;

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
        }
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
