//! A provider that deregisters its instance from inside a callback other
//! than ESTABLISH (decision `deregister-inside-a-callback`): the contract
//! promises deferral only inside ESTABLISH (SESS-3). The platform carries
//! the Deregister out at once, TERMINATE(PROVIDER_REQUEST) comes on the
//! calling thread, and the callback's answer, now for an ended session,
//! is accepted and ignored (COMP-11). No rule is broken.

mod common;
use common::*;
use cpsim_sim::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use cpsim_sim::trace::What;
use cpsim_sim::*;

/// A and B run the toy, A deregistering inside TRANSITION_ACTIVE; B
/// listens at 5 ms (A is activated when it first sends to B, at 50 ms).
fn run(asynchronous: bool) -> Outcome {
    let toy = ToyFactory::new(ToyOptions {
        deregister_in_activation: true,
        asynchronous,
        ..ToyOptions::default()
    });
    let sim = Sim::new(Config::with_seed(5), &["A", "B"], toy);
    start(&sim, &["A", "B"], "B", 5);
    sim.schedule(
        at(10),
        Action::Listen {
            host: "A".into(),
            on: true,
        },
    );
    sim.schedule(at(50), a_sends_b(false));
    sim.run_until(at(2_000));
    sim.finish()
}

/// The events of host A (host 1) in order, as (step, what).
fn a_events(out: &Outcome) -> Vec<(u64, &What)> {
    out.trace
        .events
        .iter()
        .filter(|e| e.host == 1)
        .map(|e| (e.step, &e.what))
        .collect()
}

fn check(out: &Outcome) -> usize {
    assert!(out.violations.is_empty(), "{:#?}", out.violations);
    let events = a_events(out);
    let called = |cb: Callback| {
        events
            .iter()
            .position(|(_, w)| matches!(w, What::Call { cb: c, .. } if *c == cb))
    };
    let active = called(Callback::TransitionActive).expect("TRANSITION_ACTIVE was called");
    let terminate = events
        .iter()
        .position(|(_, w)| {
            matches!(
                w,
                What::Call {
                    cb: Callback::TerminateSessionIndication,
                    reason: Some(Reason::ProviderRequest),
                    ..
                }
            )
        })
        .expect("TERMINATE(PROVIDER_REQUEST) was delivered");
    assert!(
        active < terminate,
        "TERMINATE comes after the activation began"
    );
    // Nothing but the answer to TRANSITION_ACTIVE is called on the ended
    // session after its TERMINATE (SESS-4).
    assert!(
        events[terminate + 1..].iter().all(|(_, w)| !matches!(
            w,
            What::Call {
                cb: Callback::AddTransportId
                    | Callback::ReachTransportId
                    | Callback::SendBuffers
                    | Callback::TransitionDormant,
                ..
            }
        )),
        "{events:#?}"
    );
    terminate
}

/// `check`, then: some event of A's after its TERMINATE is one `is` accepts.
fn check_then(out: &Outcome, is: impl Fn(&What) -> bool) {
    let terminate = check(out);
    let events = a_events(out);
    assert!(
        events[terminate..].iter().any(|(_, w)| is(w)),
        "{events:#?}"
    );
}

#[test]
fn sess_3_deregister_inside_transition_active_takes_effect_at_once_and_breaks_no_rule() {
    // TERMINATE came inside the callback: its return follows it.
    check_then(&run(false), |w| {
        matches!(
            w,
            What::Return {
                cb: Callback::TransitionActive,
                ..
            }
        )
    });
}

#[test]
fn sess_3_deregister_inside_a_pended_transition_active_completed_later_breaks_no_rule() {
    // Its completion, for the ended session, is recorded as ignored (COMP-11).
    check_then(&run(true), |w| {
        matches!(
            w,
            What::Complete {
                cb: Callback::TransitionActive,
                ignored: true,
                ..
            }
        )
    });
}
