//! Instances, their sessions and interfaces: the platform's per-instance state.

use super::faults::SessionFaults;
use super::machine::{self, Effects, Input, Machine, Stage};
use crate::abi::CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE as Table;
use crate::config::Callback;
use crate::time::Nanos;
use crate::transport_id::Tid;

/// Where an instance is in its life (docs/CONTRACT.md §2).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Life {
    Created,
    Registered,
    Destroyed,
}

/// A CP interface (one per registration; reused through its LUID, REG-6).
pub struct Interface {
    pub luid: u64,
    pub name: Vec<u16>,
    /// The instance registered on it now, if any.
    pub owner: Option<u32>,
    /// Its addresses (the platform's truth), which the platform ADDs when active.
    pub addrs: Vec<Tid>,
    /// Which instance number of this host first got it (for LUID ownership).
    pub index: u8,
}

/// Platform work that needs a callback.
#[derive(Copy, Clone, Debug)]
pub enum Op {
    Activate,
    Deactivate,
    Add(Tid),
    Remove(Tid),
    Reach(Tid),
    Send {
        local: Tid,
        remote: Tid,
        datagram: u32,
    },
}

impl Op {
    pub fn callback(&self) -> Callback {
        match self {
            Op::Activate => Callback::TransitionActive,
            Op::Deactivate => Callback::TransitionDormant,
            Op::Add(_) => Callback::AddTransportId,
            Op::Remove(_) => Callback::RemoveTransportId,
            Op::Reach(_) => Callback::ReachTransportId,
            Op::Send { .. } => Callback::SendBuffers,
        }
    }
}

/// One session: from a successful Register to its end. Where it is in its
/// life and whether it is active is its state machine (`machine.rs`); the
/// rest is what the platform's work queue needs.
pub struct Session {
    pub no: u32,
    machine: Machine,
    /// The platform faults that bend its state machine (`faults.rs`).
    faults: SessionFaults,
    /// When the session last became active (STATE-6 ground truth).
    pub active_since: Nanos,
    /// Open calls other than transitions.
    pub open: u32,
    /// IDs whose ADD succeeded and that were not removed.
    pub added: Vec<Tid>,
    /// IDs with an ADD or REMOVE in flight.
    pub changing: Vec<Tid>,
    /// Remote IDs whose REACH succeeded (forgotten when dormant).
    pub reached: Vec<Tid>,
    pub reaching: Vec<Tid>,
    pub last_activity: Nanos,
    /// IDs whose ADD the provider failed (not offered again this session).
    pub rejected: Vec<Tid>,
    /// Transitions started this session (for the platform faults).
    pub transitions: u32,
    /// A removed ID the next send of its family uses anyway (the platform
    /// fault `KeepRemovedId`, TID-5).
    pub stale: Option<Tid>,
}

impl Session {
    pub fn new(no: u32, now: Nanos, faults: SessionFaults) -> Session {
        Session {
            no,
            machine: Machine::NEW,
            faults,
            active_since: now,
            open: 0,
            added: Vec::new(),
            changing: Vec::new(),
            reached: Vec::new(),
            reaching: Vec::new(),
            last_activity: now,
            stale: None,
            rejected: Vec::new(),
            transitions: 0,
        }
    }

    /// Moves the state machine one step (bent by the platform faults, if
    /// any); the caller applies the effects.
    #[inline]
    pub fn step(&mut self, input: Input) -> Effects {
        let (next, effects) = machine::step(self.machine, input);
        let (next, effects) = if self.faults.any() {
            self.faults
                .bend(self.machine, self.transitions, input, next, effects)
        } else {
            (next, effects)
        };
        self.machine = next;
        effects
    }

    /// The state machine's state.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Established and not ended: callbacks may start.
    pub fn live(&self) -> bool {
        self.machine.live()
    }

    pub fn ended(&self) -> bool {
        self.machine.ended()
    }

    /// Active (STATE-3), possibly with a transition in flight.
    pub fn active(&self) -> bool {
        self.machine.is_active()
    }

    /// A transition is in flight (STATE-4).
    pub fn changing_activity(&self) -> bool {
        self.machine.changing()
    }

    pub fn stage(&self) -> Stage {
        self.machine.state.stage()
    }
}

/// One provider instance.
pub struct Instance {
    pub host: u8,
    /// Per-host number, from 1 (`A#1`).
    pub n: u32,
    pub handle: u64,
    pub table: Table,
    pub user_context: usize,
    pub life: Life,
    pub iface: Option<usize>,
    pub session: Option<Session>,
    pub sessions: u32,
    /// A session the platform ended whose Deregister is still owed (LIFE-7).
    pub owes_deregister: Option<u32>,
    /// A Register of this instance failed before (for the LIFE-3 platform fault).
    pub failed_register: bool,
    /// Marked for the next `pump_host` of its host (see `World::mark`).
    pub dirty: bool,
}
