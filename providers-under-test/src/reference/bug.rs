//! The single deliberate bug a broken variant of the reference provider
//! carries. `Bug::None` is the reference itself.
//!
//! Each variant names the rule it breaks and is tested in exactly one place
//! of the provider (`if self.bug == Bug::X`). Bugs that the safe API makes
//! impossible to write are injected one level down, in
//! [`crate::mutant_abi`], which talks to the platform through the raw ABI.

use cpsim_sim::rules::{id, RuleId};

/// One deliberate mistake (or none).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Bug {
    /// The correct reference provider.
    None,
    /// LIFE-1: at stop, Deregister is called once more after Destroy.
    Life1,
    /// LIFE-2: Register is called twice on the same instance at start.
    Life2,
    /// LIFE-4: at stop, instances are destroyed without Deregister.
    Life4,
    /// LIFE-5: at stop, Destroy is called twice (raw handle).
    Life5,
    /// LIFE-6: at stop, Deregister is called twice.
    Life6,
    /// LIFE-7: after a TERMINATE from the platform the provider cleans up
    /// but never deregisters (it only deregisters at stop).
    Life7,
    /// LIFE-8: at stop, the first instance is left registered.
    Life8,
    /// LIFE-9: Create is first tried with a dispatch table of a stale size.
    Life9,
    /// REG-5: Register is first tried with an uninitialised (made-up) LUID.
    Reg5,
    /// REG-7: Register is first tried with a non-zero flags value (raw ABI).
    Reg7,
    /// REG-8: Register is first tried with an SDDL string missing its last `)`.
    Reg8,
    /// SESS-7: the first ESTABLISH of the provider blocks for 2 s.
    Sess7,
    /// STATE-6: TRANSITION_ACTIVE succeeds but every SEND_BUFFERS fails.
    State6,
    /// COMP-2: TRANSITION_DORMANT returns S_FALSE ("nothing to do").
    Comp2,
    /// COMP-3: TRANSITION_ACTIVE returns S_OK although the work is pended
    /// (and later completed through the routine).
    Comp3,
    /// COMP-4: TRANSITION_ACTIVE's completion routine is called twice.
    Comp4,
    /// COMP-5: TRANSITION_ACTIVE is first completed with a context cut to 32 bits.
    Comp5,
    /// COMP-6: the provider's first TRANSITION_ACTIVE completes with ERROR_IO_PENDING.
    Comp6,
    /// COMP-7: the CPNATFWT_TRANSPORT_ID pointer of an ADD is kept and
    /// passed to IndicateReceivedBuffers later.
    Comp7,
    /// TIME-1: the provider's first REACH is pended and never worked on.
    Time1,
    /// TID-2: received data is first indicated with local and remote IDs swapped.
    Tid2,
    /// TID-3: an ADD's transport ID struct is copied shallowly and its byte
    /// pointer used later.
    Tid3,
    /// TID-4: the rendezvous acknowledges a duplicate registration without
    /// checking (the first holder stays on record).
    Tid4,
    /// TID-6: a REACH for an ID nobody answers for succeeds anyway.
    Tid6,
    /// DATA-1: the receive side ignores the activity state: probes are
    /// answered and data indicated while dormant.
    Data1,
    /// DATA-2: received data is first indicated as a chain with a cycle.
    Data2,
    /// DATA-3: received data is indicated with a provider completion routine
    /// and the buffer is changed right after the call returns.
    Data3,
    /// DATA-5: every third received datagram (the first, the fourth, …) has
    /// its first byte flipped.
    Data5,
    /// CRASH-1: REACH panics on an IPv6 transport ID.
    Crash1,
}

impl Bug {
    /// Every bug, in catalogue order of the rule it breaks.
    pub const ALL: [Bug; 29] = [
        Bug::Life1,
        Bug::Life2,
        Bug::Life4,
        Bug::Life5,
        Bug::Life6,
        Bug::Life7,
        Bug::Life8,
        Bug::Life9,
        Bug::Reg5,
        Bug::Reg7,
        Bug::Reg8,
        Bug::Sess7,
        Bug::State6,
        Bug::Comp2,
        Bug::Comp3,
        Bug::Comp4,
        Bug::Comp5,
        Bug::Comp6,
        Bug::Comp7,
        Bug::Time1,
        Bug::Tid2,
        Bug::Tid3,
        Bug::Tid4,
        Bug::Tid6,
        Bug::Data1,
        Bug::Data2,
        Bug::Data3,
        Bug::Data5,
        Bug::Crash1,
    ];

    /// The rule this bug breaks (`None` for the correct provider).
    pub fn rule(self) -> Option<RuleId> {
        Some(match self {
            Bug::None => return None,
            Bug::Life1 => id::LIFE_1,
            Bug::Life2 => id::LIFE_2,
            Bug::Life4 => id::LIFE_4,
            Bug::Life5 => id::LIFE_5,
            Bug::Life6 => id::LIFE_6,
            Bug::Life7 => id::LIFE_7,
            Bug::Life8 => id::LIFE_8,
            Bug::Life9 => id::LIFE_9,
            Bug::Reg5 => id::REG_5,
            Bug::Reg7 => id::REG_7,
            Bug::Reg8 => id::REG_8,
            Bug::Sess7 => id::SESS_7,
            Bug::State6 => id::STATE_6,
            Bug::Comp2 => id::COMP_2,
            Bug::Comp3 => id::COMP_3,
            Bug::Comp4 => id::COMP_4,
            Bug::Comp5 => id::COMP_5,
            Bug::Comp6 => id::COMP_6,
            Bug::Comp7 => id::COMP_7,
            Bug::Time1 => id::TIME_1,
            Bug::Tid2 => id::TID_2,
            Bug::Tid3 => id::TID_3,
            Bug::Tid4 => id::TID_4,
            Bug::Tid6 => id::TID_6,
            Bug::Data1 => id::DATA_1,
            Bug::Data2 => id::DATA_2,
            Bug::Data3 => id::DATA_3,
            Bug::Data5 => id::DATA_5,
            Bug::Crash1 => id::CRASH_1,
        })
    }

    /// Whether the instance must be driven through the raw-ABI mutant table
    /// (the bug lives in a callback's ABI-level behaviour).
    pub fn needs_raw_table(self) -> bool {
        matches!(
            self,
            Bug::Life9
                | Bug::Comp2
                | Bug::Comp3
                | Bug::Comp4
                | Bug::Comp5
                | Bug::Comp6
                | Bug::Comp7
                | Bug::Tid3
        )
    }

    /// Whether received data goes through a raw-ABI indication with the bug.
    pub fn raw_indicate(self) -> bool {
        matches!(self, Bug::Comp7 | Bug::Tid3 | Bug::Data2 | Bug::Data3)
    }

    /// What the bug does, for the registry's description.
    pub fn describe(self) -> &'static str {
        match self {
            Bug::None => "the reference overlay provider, correct",
            Bug::Life1 => "calls Deregister once more after Destroy when stopped",
            Bug::Life2 => "calls Register twice on its instance when it starts",
            Bug::Life4 => "destroys its instances without deregistering them when stopped",
            Bug::Life5 => "destroys each instance twice when stopped",
            Bug::Life6 => "deregisters each instance twice when stopped",
            Bug::Life7 => "does not deregister after the platform ends a session",
            Bug::Life8 => "leaves its first instance registered when stopped",
            Bug::Life9 => "first calls Create with a dispatch table of a stale size",
            Bug::Reg5 => "first calls Register with an uninitialised LUID",
            Bug::Reg7 => "first calls Register with flags = 1",
            Bug::Reg8 => "first calls Register with a malformed SDDL string",
            Bug::Sess7 => "blocks for 2 s in its first ESTABLISH",
            Bug::State6 => "activates fine but fails every SEND_BUFFERS",
            Bug::Comp2 => "returns S_FALSE from TRANSITION_DORMANT",
            Bug::Comp3 => "returns S_OK from TRANSITION_ACTIVE and completes it later anyway",
            Bug::Comp4 => "calls TRANSITION_ACTIVE's completion routine twice",
            Bug::Comp5 => "first completes TRANSITION_ACTIVE with a context cut to 32 bits",
            Bug::Comp6 => "completes its first TRANSITION_ACTIVE with ERROR_IO_PENDING",
            Bug::Comp7 => "keeps an ADD's transport ID pointer and indicates data with it",
            Bug::Time1 => "never works on its first REACH_TRANSPORT_ID",
            Bug::Tid2 => "first indicates received data with local and remote swapped",
            Bug::Tid3 => "keeps a shallow copy of an ADD's transport ID and indicates with it",
            Bug::Tid4 => "its rendezvous acknowledges an ID another peer already holds",
            Bug::Tid6 => "succeeds a REACH even when nobody answers for the ID",
            Bug::Data1 => "takes peer traffic and indicates it while dormant",
            Bug::Data2 => "first indicates received data as a chain with a cycle",
            Bug::Data3 => "changes indicated buffers before its completion routine runs",
            Bug::Data5 => "flips a byte of every third datagram it receives",
            Bug::Crash1 => "panics in REACH_TRANSPORT_ID for an IPv6 ID",
        }
    }
}
