//! The session state machine, pure: where a session is ([`State`],
//! [`Activation`]), what can happen to it ([`Input`]) and what the platform
//! must do about it ([`Effect`]). [`step`] decides; `session.rs` and
//! `lifecycle.rs` apply the effects to the world (trace, queue, routes).
//! No world, no lock, no clock here: each rule the machine keeps is
//! unit-tested on its own, by rule ID (`cargo test sess_4`).
//!
//! The life of a session (docs/CONTRACT.md §2):
//!
//! ```text
//!   Pending ──Establish──► Establishing ──EstablishReturned──► Established
//!      │                        │                                  │
//!      └────────────End─────────┴───────────────End────────────────┘
//!                                 ▼
//!        Ended { reason, stage, terminated } ──Terminate──► terminated
//! ```
//!
//! and, orthogonally, whether it carries traffic: `Dormant` ⇄ `Active`
//! through `Changing` (one transition at a time, STATE-4). The correct
//! platform only changes activation once established; the platform fault
//! `CallBeforeEstablish` does it earlier, which is why activation is its
//! own field rather than a part of `Established`.

use crate::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use crate::trace::Activity;

/// Deregister/Destroy calls made while ESTABLISH ran, run once it has
/// returned (SESS-3).
#[derive(Copy, Clone, Default, PartialEq, Eq, Debug)]
pub struct Deferred {
    pub deregister: bool,
    pub destroy: bool,
}

/// How far a session got with ESTABLISH.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Stage {
    /// Registered; ESTABLISH not yet delivered (SESS-1).
    Pending,
    /// ESTABLISH is running; Deregister and Destroy made inside it wait (SESS-3).
    Establishing(Deferred),
    /// ESTABLISH has returned.
    Established,
}

/// Where a session is in its life.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum State {
    /// Registered; ESTABLISH not yet delivered (SESS-1).
    Pending,
    /// ESTABLISH is running (SESS-2: nothing else starts).
    Establishing(Deferred),
    /// ESTABLISH returned: the session is live, callbacks may start.
    Established,
    /// The session is over (SESS-4): nothing starts for it any more.
    /// `reason` is TERMINATE's (SESS-5); `stage` how far ESTABLISH had got
    /// (ESTABLISH still returns into an ended session, and only an
    /// established one gets TERMINATE); `terminated`: TERMINATE was
    /// delivered.
    Ended {
        reason: Reason,
        stage: Stage,
        terminated: bool,
    },
}

impl State {
    /// How far ESTABLISH got, ended or not.
    pub fn stage(self) -> Stage {
        match self {
            State::Pending => Stage::Pending,
            State::Establishing(d) => Stage::Establishing(d),
            State::Established => Stage::Established,
            State::Ended { stage, .. } => stage,
        }
    }

    /// The same life, at another stage.
    fn at(self, stage: Stage) -> State {
        match self {
            State::Ended {
                reason, terminated, ..
            } => State::Ended {
                reason,
                stage,
                terminated,
            },
            _ => match stage {
                Stage::Pending => State::Pending,
                Stage::Establishing(d) => State::Establishing(d),
                Stage::Established => State::Established,
            },
        }
    }
}

/// Whether a session carries traffic (STATE-1..5).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Activation {
    Dormant,
    Active,
    /// A transition towards `to` is in flight (STATE-4: at most one); until
    /// it ends the instance is what `active` says.
    Changing {
        to: Activity,
        active: bool,
    },
}

impl Activation {
    /// Active (or still active while a transition runs).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Activation::Active | Activation::Changing { active: true, .. }
        )
    }

    /// What the instance is once no transition is in flight.
    fn resting(active: bool) -> Activation {
        if active {
            Activation::Active
        } else {
            Activation::Dormant
        }
    }
}

/// A session's state: its life, its activation, and two requests waiting
/// for the next examination of the instance.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Machine {
    pub state: State,
    pub activation: Activation,
    /// The platform wants the instance dormant (idle timer, a `dormant`
    /// action): TRANSITION_DORMANT once it is quiet.
    pub dormancy_wanted: bool,
    /// An address notification arrived: a trigger for TRANSITION_ACTIVE,
    /// or for offering the interface's addresses again.
    pub notified: bool,
}

/// What happens to a session.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Input {
    /// The platform is about to deliver ESTABLISH.
    Establish,
    /// ESTABLISH returned; it `overran` its time limit; the host had
    /// `shutdown` (while ESTABLISH waited or ran).
    EstablishReturned { overran: bool, shutdown: bool },
    /// The provider called Deregister.
    Deregister,
    /// The provider called Destroy.
    Destroy,
    /// The session ends with `reason`. `notify`: the platform owes
    /// TERMINATE (false when the caller delivers it itself, or none is due).
    End { reason: Reason, notify: bool },
    /// The platform is about to deliver TERMINATE.
    Terminate,
    /// The platform starts a transition towards `to`.
    TransitionStarts(Activity),
    /// The transition towards `to` finished, successfully or not.
    TransitionDone { to: Activity, ok: bool },
    /// The transition's call was abandoned (its session is over).
    TransitionAbandoned,
    /// The platform wants the instance dormant.
    DormancyWanted,
    /// An address notification for the instance's interface.
    AddressNotified,
    /// The instance is examined: `demand` is whether traffic waits for it
    /// or its host listens.
    Examine { demand: bool },
    /// The instance is examined for dormancy: `quiet` is whether nothing
    /// is open, waiting or listening.
    ExamineDormancy { quiet: bool },
    /// A datagram waits to go out through the instance (the platform's
    /// routing: it goes once the instance is active).
    DatagramWaiting,
}

/// Why the machine itself ends a session (the trace's words: `text`).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Cause {
    EstablishOverran,
    ShutdownBeforeEstablish,
    ActivationFailed,
}

impl Cause {
    pub fn text(self) -> &'static str {
        match self {
            Cause::EstablishOverran => "ESTABLISH over its time limit",
            Cause::ShutdownBeforeEstablish => "platform shut down before ESTABLISH returned",
            Cause::ActivationFailed => "TRANSITION_ACTIVE failed",
        }
    }
}

/// What the platform must do, in order.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Effect {
    /// Deliver the callback asked about (ESTABLISH, TERMINATE) now.
    Deliver,
    /// Trace: the instance is now dormant or active.
    Record(Activity),
    /// ESTABLISH ran over its time limit (SESS-7).
    Overran,
    /// End the session with this reason, for this cause (SESS-5).
    End(Reason, Cause),
    /// The session's end: its IDs disowned, the end traced (with the cause
    /// the caller of `Input::End` gave), its datagrams rerouted, its host
    /// examined.
    Close(Reason),
    /// The provider owes a Deregister (LIFE-7).
    OweDeregister,
    /// Queue TERMINATE with this reason (SESS-4).
    ScheduleTerminate(Reason),
    /// A Deregister or Destroy inside ESTABLISH: noted, answered S_OK,
    /// carried out once ESTABLISH returns (SESS-3).
    Defer,
    /// ESTABLISH returned: carry out what was deferred (SESS-3).
    RunDeferred(Deferred),
    /// Start a transition towards this activity.
    Issue(Activity),
    /// Offer the interface's addresses: ADD the new ones, REMOVE the gone.
    SyncAddresses,
    /// The instance became active now (STATE-6's ground truth).
    ActiveSince,
    /// The instance went dormant: REACHed IDs forgotten, its host's
    /// traffic disrupted.
    WentDormant,
    /// Examine the host's instances.
    Pump,
    /// Refuse the call (ERROR_INVALID_STATE): only a faulty platform does
    /// (`faults.rs`).
    Refuse,
}

/// The effects of one step (at most six; no allocation).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Effects {
    list: [Option<Effect>; 6],
    len: u8,
}

impl Effects {
    pub const NONE: Effects = Effects {
        list: [None; 6],
        len: 0,
    };

    #[inline]
    fn push(&mut self, e: Effect) {
        self.list[self.len as usize] = Some(e);
        self.len += 1;
    }

    /// These effects and `e` after them.
    pub fn with(mut self, e: Effect) -> Effects {
        self.push(e);
        self
    }

    /// These effects without `e`.
    pub fn without(self, e: Effect) -> Effects {
        let mut out = Effects::NONE;
        for x in self {
            if x != e {
                out.push(x);
            }
        }
        out
    }

    /// These effects, each replaced by `f` of it.
    pub fn map(self, f: impl Fn(Effect) -> Effect) -> Effects {
        let mut out = Effects::NONE;
        for x in self {
            out.push(f(x));
        }
        out
    }

    #[inline]
    pub fn contains(&self, e: Effect) -> bool {
        self.list[..self.len as usize].contains(&Some(e))
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl IntoIterator for Effects {
    type Item = Effect;
    type IntoIter = EffectsIter;
    #[inline]
    fn into_iter(self) -> EffectsIter {
        EffectsIter { fx: self, next: 0 }
    }
}

/// The effects of one step, in order.
pub struct EffectsIter {
    fx: Effects,
    next: u8,
}

impl Iterator for EffectsIter {
    type Item = Effect;
    #[inline]
    fn next(&mut self) -> Option<Effect> {
        if self.next >= self.fx.len {
            return None;
        }
        self.next += 1;
        self.fx.list[self.next as usize - 1]
    }
}

impl Machine {
    /// A fresh session: registered, ESTABLISH not yet delivered, dormant.
    pub const NEW: Machine = Machine {
        state: State::Pending,
        activation: Activation::Dormant,
        dormancy_wanted: false,
        notified: false,
    };

    /// Established and not ended: callbacks may start (SESS-2, SESS-4).
    pub fn live(&self) -> bool {
        self.state == State::Established
    }

    pub fn ended(&self) -> bool {
        matches!(self.state, State::Ended { .. })
    }

    /// Active (STATE-3), possibly with a transition in flight.
    pub fn is_active(&self) -> bool {
        self.activation.is_active()
    }

    /// A transition is in flight (STATE-4).
    #[cfg(any(test, debug_assertions))]
    pub fn changing(&self) -> bool {
        matches!(self.activation, Activation::Changing { .. })
    }

    /// Ended, and TERMINATE has not reached the provider yet.
    pub fn terminate_on_its_way(&self) -> bool {
        matches!(
            self.state,
            State::Ended {
                terminated: false,
                ..
            }
        )
    }
}

/// One step of the session state machine: the state after `input`, and
/// what the platform must do.
#[inline]
pub fn step(m: Machine, input: Input) -> (Machine, Effects) {
    let mut next = m;
    let mut fx = Effects::NONE;
    match input {
        Input::Establish => {
            // SESS-1: ESTABLISH once per session, from Pending.
            if m.state.stage() == Stage::Pending {
                next.state = m.state.at(Stage::Establishing(Deferred::default()));
                fx.push(Effect::Deliver);
            }
        }
        Input::EstablishReturned { overran, shutdown } => {
            let deferred = match m.state.stage() {
                Stage::Establishing(d) => d,
                _ => Deferred::default(),
            };
            next.state = m.state.at(Stage::Established);
            // STATE-1: dormant after ESTABLISH.
            fx.push(Effect::Record(Activity::Dormant));
            if overran {
                fx.push(Effect::Overran);
            }
            // The first cause ends the session (decision "first-cause"): a
            // shutdown that came while ESTABLISH waited or ran, else the
            // overrun.
            let end = if shutdown {
                Some((Reason::PlatformShutdown, Cause::ShutdownBeforeEstablish))
            } else if overran {
                Some((Reason::ProviderTimeout, Cause::EstablishOverran))
            } else {
                None
            };
            if let Some((reason, cause)) = end.filter(|_| !next.ended()) {
                fx.push(Effect::End(reason, cause));
            }
            fx.push(Effect::Pump);
            fx.push(Effect::RunDeferred(deferred));
        }
        Input::Deregister | Input::Destroy => {
            // SESS-3: inside ESTABLISH, deferred until it returns.
            if let Stage::Establishing(mut d) = m.state.stage() {
                if input == Input::Deregister {
                    d.deregister = true;
                } else {
                    d.destroy = true;
                }
                next.state = m.state.at(Stage::Establishing(d));
                fx.push(Effect::Defer);
            }
        }
        Input::End { reason, notify } => {
            if m.ended() {
                return (m, fx);
            }
            let stage = m.state.stage();
            next.state = State::Ended {
                reason,
                stage,
                terminated: false,
            };
            fx.push(Effect::Close(reason));
            if notify {
                if reason != Reason::ProviderRequest {
                    fx.push(Effect::OweDeregister);
                }
                // SESS-4: TERMINATE only after ESTABLISH.
                if stage == Stage::Established {
                    fx.push(Effect::ScheduleTerminate(reason));
                }
            }
        }
        Input::Terminate => {
            // SESS-4: once, for an established session that ended.
            if let State::Ended {
                reason,
                stage: Stage::Established,
                terminated: false,
            } = m.state
            {
                next.state = State::Ended {
                    reason,
                    stage: Stage::Established,
                    terminated: true,
                };
                fx.push(Effect::Deliver);
            }
        }
        Input::TransitionStarts(to) => {
            next.activation = Activation::Changing {
                to,
                active: m.is_active(),
            };
        }
        Input::TransitionDone { to, ok } => {
            let was = m.is_active();
            next.activation = Activation::resting(was);
            match (to, ok) {
                (Activity::Active, true) => {
                    next.activation = Activation::Active;
                    fx.push(Effect::ActiveSince);
                    fx.push(Effect::Record(Activity::Active));
                }
                // STATE-2: a failed TRANSITION_ACTIVE ends the session.
                (Activity::Active, false) => {
                    fx.push(Effect::End(
                        Reason::ProviderOtherFailure,
                        Cause::ActivationFailed,
                    ));
                }
                (Activity::Dormant, true) => {
                    next.activation = Activation::Dormant;
                    fx.push(Effect::WentDormant);
                    fx.push(Effect::Record(Activity::Dormant));
                }
                (Activity::Dormant, false) => {}
            }
        }
        Input::TransitionAbandoned => {
            next.activation = Activation::resting(m.is_active());
        }
        Input::DormancyWanted => {
            if m.live() {
                next.dormancy_wanted = true;
            }
        }
        Input::AddressNotified => {
            if m.live() {
                next.notified = true;
            }
        }
        Input::Examine { demand } => match m.activation {
            // STATE-4: one transition at a time.
            Activation::Changing { .. } => {}
            // STATE-5: work for a dormant instance activates it first.
            Activation::Dormant => {
                if demand || m.notified {
                    next.notified = false;
                    fx.push(Effect::Issue(Activity::Active));
                }
            }
            Activation::Active => {
                next.notified = false;
                fx.push(Effect::SyncAddresses);
            }
        },
        Input::ExamineDormancy { quiet } => {
            if m.dormancy_wanted && m.activation == Activation::Active && quiet {
                next.dormancy_wanted = false;
                fx.push(Effect::Issue(Activity::Dormant));
            }
        }
        // STATE-5: a datagram for a dormant instance activates it first;
        // while a transition runs it waits (STATE-4).
        Input::DatagramWaiting => {
            if m.live() && m.activation == Activation::Dormant {
                fx.push(Effect::Issue(Activity::Active));
            }
        }
    }
    (next, fx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: Machine, inputs: &[Input]) -> (Machine, Vec<Effect>) {
        let mut m = m;
        let mut all = Vec::new();
        for &i in inputs {
            let (n, fx) = step(m, i);
            m = n;
            all.extend(fx);
        }
        (m, all)
    }

    const RETURNED: Input = Input::EstablishReturned {
        overran: false,
        shutdown: false,
    };

    fn established() -> Machine {
        run(Machine::NEW, &[Input::Establish, RETURNED]).0
    }

    fn active() -> Machine {
        run(
            established(),
            &[
                Input::TransitionStarts(Activity::Active),
                Input::TransitionDone {
                    to: Activity::Active,
                    ok: true,
                },
            ],
        )
        .0
    }

    fn end(reason: Reason) -> Input {
        Input::End {
            reason,
            notify: true,
        }
    }

    #[test]
    fn sess_1_establish_is_delivered_once_from_pending() {
        let (m, fx) = step(Machine::NEW, Input::Establish);
        assert_eq!(fx.into_iter().collect::<Vec<_>>(), vec![Effect::Deliver]);
        assert_eq!(m.state, State::Establishing(Deferred::default()));
        assert!(step(m, Input::Establish).1.is_empty());
        assert!(step(established(), Input::Establish).1.is_empty());
    }

    #[test]
    fn sess_2_nothing_starts_before_establish_returned() {
        let establishing = step(Machine::NEW, Input::Establish).0;
        assert!(!Machine::NEW.live());
        assert!(!establishing.live());
        assert!(established().live());
    }

    #[test]
    fn sess_3_deregister_and_destroy_inside_establish_wait_for_its_return() {
        let (m, fx) = run(
            Machine::NEW,
            &[Input::Establish, Input::Deregister, Input::Destroy],
        );
        assert_eq!(fx, vec![Effect::Deliver, Effect::Defer, Effect::Defer]);
        let (m, fx) = step(m, RETURNED);
        assert!(m.live());
        assert!(fx.contains(Effect::RunDeferred(Deferred {
            deregister: true,
            destroy: true
        })));
        // Outside ESTABLISH they are not deferred.
        assert!(step(m, Input::Deregister).1.is_empty());
        assert!(step(Machine::NEW, Input::Destroy).1.is_empty());
    }

    #[test]
    fn sess_3_a_session_ended_inside_establish_still_runs_what_was_deferred() {
        let (m, _) = run(
            Machine::NEW,
            &[
                Input::Establish,
                Input::Deregister,
                end(Reason::ProviderOtherFailure),
            ],
        );
        let (m, fx) = step(m, RETURNED);
        assert!(!m.live());
        assert!(fx.contains(Effect::RunDeferred(Deferred {
            deregister: true,
            destroy: false
        })));
        assert!(!fx.into_iter().any(|e| matches!(e, Effect::End(..))));
    }

    #[test]
    fn sess_4_terminate_only_after_establish_and_at_most_once() {
        // Ended before ESTABLISH returned: no TERMINATE is owed or delivered.
        let (m, fx) = run(Machine::NEW, &[end(Reason::PlatformShutdown)]);
        assert!(!fx.iter().any(|e| matches!(e, Effect::ScheduleTerminate(_))));
        assert!(step(m, Input::Terminate).1.is_empty());
        // Established: scheduled once, delivered once.
        let (m, fx) = run(established(), &[end(Reason::PlatformShutdown)]);
        assert!(fx.contains(&Effect::ScheduleTerminate(Reason::PlatformShutdown)));
        let (m, fx) = step(m, Input::Terminate);
        assert!(fx.contains(Effect::Deliver));
        assert!(!m.terminate_on_its_way());
        assert!(step(m, Input::Terminate).1.is_empty());
        // A second end changes nothing.
        let (again, fx) = step(m, end(Reason::ProviderTimeout));
        assert!(fx.is_empty());
        assert_eq!(again, m);
    }

    #[test]
    fn sess_4_nothing_starts_for_an_ended_session() {
        let (m, _) = run(active(), &[end(Reason::OtherCommunicationError)]);
        assert!(!m.live());
        assert!(m.ended());
        assert!(m.terminate_on_its_way());
        let (m, fx) = run(m, &[Input::DormancyWanted, Input::AddressNotified]);
        assert!(fx.is_empty());
        assert!(!m.dormancy_wanted && !m.notified);
    }

    #[test]
    fn sess_5_terminate_carries_the_reason_of_the_end() {
        for reason in [
            Reason::PlatformShutdown,
            Reason::ProviderTimeout,
            Reason::ProviderOtherFailure,
            Reason::OtherCommunicationError,
        ] {
            let (m, fx) = step(established(), end(reason));
            assert_eq!(
                fx.into_iter().collect::<Vec<_>>(),
                vec![
                    Effect::Close(reason),
                    Effect::OweDeregister,
                    Effect::ScheduleTerminate(reason)
                ]
            );
            assert!(matches!(m.state, State::Ended { reason: r, .. } if r == reason));
        }
        // The provider's own Deregister: PROVIDER_REQUEST, nothing owed.
        let (_, fx) = step(
            established(),
            Input::End {
                reason: Reason::ProviderRequest,
                notify: false,
            },
        );
        assert_eq!(
            fx.into_iter().collect::<Vec<_>>(),
            vec![Effect::Close(Reason::ProviderRequest)]
        );
    }

    #[test]
    fn sess_5_the_first_cause_ends_a_session_whose_establish_overran_during_a_shutdown() {
        let establishing = step(Machine::NEW, Input::Establish).0;
        let (_, fx) = step(
            establishing,
            Input::EstablishReturned {
                overran: true,
                shutdown: true,
            },
        );
        assert!(fx.contains(Effect::Overran));
        let ends: Vec<_> = fx
            .into_iter()
            .filter(|e| matches!(e, Effect::End(..)))
            .collect();
        assert_eq!(
            ends,
            vec![Effect::End(
                Reason::PlatformShutdown,
                Cause::ShutdownBeforeEstablish
            )]
        );
    }

    #[test]
    fn sess_7_establish_over_its_limit_is_reported_and_ends_the_session() {
        let establishing = step(Machine::NEW, Input::Establish).0;
        let (_, fx) = step(
            establishing,
            Input::EstablishReturned {
                overran: true,
                shutdown: false,
            },
        );
        assert!(fx.contains(Effect::Overran));
        assert!(fx.contains(Effect::End(
            Reason::ProviderTimeout,
            Cause::EstablishOverran
        )));
    }

    #[test]
    fn state_1_after_establish_the_instance_is_dormant() {
        let establishing = step(Machine::NEW, Input::Establish).0;
        let (m, fx) = step(establishing, RETURNED);
        assert_eq!(
            fx.into_iter().collect::<Vec<_>>(),
            vec![
                Effect::Record(Activity::Dormant),
                Effect::Pump,
                Effect::RunDeferred(Deferred::default())
            ]
        );
        assert_eq!(m.activation, Activation::Dormant);
        // The first transition is TRANSITION_ACTIVE.
        let (_, fx) = step(m, Input::Examine { demand: true });
        assert_eq!(
            fx.into_iter().collect::<Vec<_>>(),
            vec![Effect::Issue(Activity::Active)]
        );
    }

    #[test]
    fn state_2_a_failed_activation_ends_the_session() {
        let (m, fx) = run(
            established(),
            &[
                Input::TransitionStarts(Activity::Active),
                Input::TransitionDone {
                    to: Activity::Active,
                    ok: false,
                },
            ],
        );
        assert_eq!(
            fx,
            vec![Effect::End(
                Reason::ProviderOtherFailure,
                Cause::ActivationFailed
            )]
        );
        assert!(!m.is_active());
    }

    #[test]
    fn state_3_active_only_once_activation_succeeded() {
        let (m, _) = step(established(), Input::TransitionStarts(Activity::Active));
        assert!(!m.is_active());
        let (m, fx) = step(
            m,
            Input::TransitionDone {
                to: Activity::Active,
                ok: true,
            },
        );
        assert!(m.is_active());
        assert_eq!(
            fx.into_iter().collect::<Vec<_>>(),
            vec![Effect::ActiveSince, Effect::Record(Activity::Active)]
        );
        // Still active while TRANSITION_DORMANT runs, dormant once it succeeded.
        let (m, _) = step(m, Input::TransitionStarts(Activity::Dormant));
        assert!(m.is_active());
        let (m, fx) = step(
            m,
            Input::TransitionDone {
                to: Activity::Dormant,
                ok: true,
            },
        );
        assert!(!m.is_active());
        assert_eq!(
            fx.into_iter().collect::<Vec<_>>(),
            vec![Effect::WentDormant, Effect::Record(Activity::Dormant)]
        );
    }

    #[test]
    fn state_4_transitions_alternate_one_at_a_time() {
        // While a transition runs, nothing else starts.
        let (m, _) = step(established(), Input::TransitionStarts(Activity::Active));
        assert!(m.changing());
        assert!(step(m, Input::Examine { demand: true }).1.is_empty());
        // No ACTIVE while active, no DORMANT while dormant.
        let (_, fx) = step(active(), Input::Examine { demand: true });
        assert!(!fx.contains(Effect::Issue(Activity::Active)));
        let mut dormant = established();
        dormant.dormancy_wanted = true;
        assert!(step(dormant, Input::ExamineDormancy { quiet: true })
            .1
            .is_empty());
        // A failed TRANSITION_DORMANT leaves the instance active; an
        // abandoned one leaves it as it was.
        let (m, _) = run(
            active(),
            &[
                Input::TransitionStarts(Activity::Dormant),
                Input::TransitionDone {
                    to: Activity::Dormant,
                    ok: false,
                },
            ],
        );
        assert_eq!(m.activation, Activation::Active);
        let (m, _) = run(
            established(),
            &[
                Input::TransitionStarts(Activity::Active),
                Input::TransitionAbandoned,
            ],
        );
        assert_eq!(m.activation, Activation::Dormant);
    }

    #[test]
    fn state_5_work_for_a_dormant_instance_activates_it_first() {
        assert!(step(established(), Input::Examine { demand: false })
            .1
            .is_empty());
        let (m, fx) = step(established(), Input::Examine { demand: true });
        assert!(fx.contains(Effect::Issue(Activity::Active)));
        assert_eq!(m.activation, Activation::Dormant);
        // An address notification is a trigger too, consumed once.
        let (m, _) = step(established(), Input::AddressNotified);
        let (m, fx) = step(m, Input::Examine { demand: false });
        assert!(fx.contains(Effect::Issue(Activity::Active)));
        assert!(!m.notified);
        // Active: the interface's addresses are offered.
        let (_, fx) = step(active(), Input::Examine { demand: false });
        assert_eq!(
            fx.into_iter().collect::<Vec<_>>(),
            vec![Effect::SyncAddresses]
        );
    }

    #[test]
    fn state_5_a_datagram_for_a_dormant_instance_activates_it_first() {
        let (m, fx) = step(established(), Input::DatagramWaiting);
        assert_eq!(
            fx.into_iter().collect::<Vec<_>>(),
            vec![Effect::Issue(Activity::Active)]
        );
        // Nothing else changes: the transition starts when it is issued.
        assert_eq!(m, established());
        // Active: the datagram goes, nothing to do for the machine.
        assert!(step(active(), Input::DatagramWaiting).1.is_empty());
        // A transition under way: the datagram waits (STATE-4).
        for to in [Activity::Active, Activity::Dormant] {
            let changing = step(established(), Input::TransitionStarts(to)).0;
            assert!(step(changing, Input::DatagramWaiting).1.is_empty());
        }
        // Not live (before ESTABLISH returned, or ended): nothing starts.
        assert!(step(Machine::NEW, Input::DatagramWaiting).1.is_empty());
        let ended = step(established(), end(Reason::PlatformShutdown)).0;
        assert!(step(ended, Input::DatagramWaiting).1.is_empty());
    }

    #[test]
    fn state_4_dormancy_waits_until_the_instance_is_quiet() {
        let (m, _) = step(active(), Input::DormancyWanted);
        assert!(step(m, Input::ExamineDormancy { quiet: false })
            .1
            .is_empty());
        let (m, fx) = step(m, Input::ExamineDormancy { quiet: true });
        assert_eq!(
            fx.into_iter().collect::<Vec<_>>(),
            vec![Effect::Issue(Activity::Dormant)]
        );
        assert!(!m.dormancy_wanted);
    }
}
