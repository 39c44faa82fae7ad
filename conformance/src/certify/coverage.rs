//! Rule coverage: for each rule, whether a case met its precondition (the
//! rule was *exercised*: the provider could have broken it), read off the
//! trace. A MUST rule in [`REQUIRED`] that no case exercised fails
//! certification, so a weak run cannot pass by accident.

use cpsim_sim::abi::{CPNATFWT_SESSION_TERMINATION_REASON as Reason, E_PENDING_IO};
use cpsim_sim::rules::{id, RuleId};
use cpsim_sim::trace::{PlatformFn, What};
use cpsim_sim::{Callback, Trace};
use std::collections::BTreeSet;

/// Provider rules whose precondition any schedule can bring about for any
/// provider (the platform drives it): certification requires each to be
/// exercised. The others depend on what the provider chooses to do (pend a
/// call, pass a LUID or SDDL, indicate with a completion routine): when it
/// never does, it cannot break them.
pub const REQUIRED: &[RuleId] = &[
    id::LIFE_1,
    id::LIFE_2,
    id::LIFE_4,
    id::LIFE_5,
    id::LIFE_6,
    id::LIFE_7,
    id::LIFE_8,
    id::LIFE_9,
    id::SESS_7,
    id::COMP_7,
    id::TIME_1,
    id::TID_2,
    id::TID_3,
    id::DATA_2,
    id::DATA_5,
    id::CRASH_1,
];

/// The rules whose precondition this trace meets.
pub fn exercised(trace: &Trace) -> BTreeSet<RuleId> {
    exercised_list(trace).into_iter().collect()
}

/// [`exercised`] as a list, in catalogue order (which is `RuleId`'s order,
/// so the same order as the set's), with no set built.
pub(crate) fn exercised_list(trace: &Trace) -> Vec<RuleId> {
    // Marked by catalogue position (several per event), collected at the end.
    let mut seen = vec![false; RuleId::all().count()];
    let mut add = |r: RuleId| seen[r.index()] = true;
    for e in &trace.events {
        match &e.what {
            What::Function { f, hr, .. } => match f {
                PlatformFn::CPNatfwtCreateProviderInstance => add(id::LIFE_9),
                PlatformFn::CPNatfwtRegisterProviderInstance => {
                    add(id::LIFE_1);
                    add(id::LIFE_2);
                    add(id::REG_7);
                    add(id::REG_8);
                    add(id::LIFE_3);
                }
                PlatformFn::CPNatfwtDeregisterProviderInstance => {
                    add(id::LIFE_1);
                    add(id::LIFE_6);
                }
                PlatformFn::CPNatfwtDestroyProviderInstance => {
                    add(id::LIFE_1);
                    add(id::LIFE_4);
                    add(id::LIFE_5);
                }
                PlatformFn::CPNatfwtIndicateReceivedBuffers => {
                    add(id::LIFE_1);
                    add(id::TID_2);
                    add(id::TID_3);
                    add(id::COMP_7);
                    add(id::DATA_1);
                    add(id::DATA_2);
                    add(id::STATE_3);
                    if *hr == E_PENDING_IO {
                        add(id::DATA_3);
                        add(id::DATA_4);
                    }
                }
                PlatformFn::PlatformCompletionRoutine => {}
            },
            What::Registered {
                requested_luid,
                name_was_null,
                ..
            } => {
                add(id::REG_4);
                add(id::REG_9);
                add(if *name_was_null { id::REG_1 } else { id::REG_2 });
                add(id::REG_3);
                if *requested_luid != 0 {
                    add(id::REG_5);
                    add(id::REG_6);
                }
            }
            What::Call { cb, .. } => {
                add(id::CRASH_1);
                add(id::SESS_6);
                match cb {
                    Callback::EstablishSessionIndication => {
                        add(id::SESS_1);
                        add(id::SESS_2);
                        add(id::SESS_3);
                        add(id::SESS_7);
                        add(id::STATE_1);
                    }
                    Callback::TerminateSessionIndication => {
                        add(id::SESS_4);
                        add(id::SESS_5);
                        add(id::SESS_7);
                    }
                    cb => {
                        add(id::TIME_1);
                        add(id::COMP_1);
                        add(id::COMP_2);
                        add(id::COMP_9);
                        add(id::STATE_4);
                        if !matches!(cb, Callback::TransitionActive | Callback::TransitionDormant) {
                            add(id::STATE_5);
                            add(id::TID_1);
                            add(id::COMP_7);
                            add(id::COMP_8);
                        }
                        match cb {
                            Callback::TransitionActive => add(id::STATE_2),
                            Callback::AddTransportId => add(id::TID_4),
                            Callback::RemoveTransportId => add(id::TID_5),
                            Callback::ReachTransportId => {
                                add(id::TID_6);
                                add(id::STATE_6);
                            }
                            Callback::SendBuffers => {
                                add(id::TID_7);
                                add(id::DATA_6);
                                add(id::STATE_6);
                            }
                            _ => {}
                        }
                    }
                }
            }
            What::Return { hr: Some(hr), .. } => {
                if *hr == E_PENDING_IO {
                    add(id::COMP_4);
                    add(id::COMP_5);
                    add(id::COMP_6);
                } else {
                    add(id::COMP_3);
                }
            }
            What::Complete { early, ignored, .. } => {
                if *early {
                    add(id::COMP_10);
                }
                if *ignored {
                    add(id::COMP_11);
                }
            }
            What::SessionEnded { reason, .. } if *reason != Reason::ProviderRequest => {
                add(id::LIFE_7)
            }
            What::Timeout { .. } => add(id::TIME_2),
            What::ProviderStop => add(id::LIFE_8),
            What::AppReceive { .. } => add(id::DATA_5),
            What::AppSend { .. } => add(id::DATA_5),
            _ => {}
        }
    }
    RuleId::all().filter(|r| seen[r.index()]).collect()
}
