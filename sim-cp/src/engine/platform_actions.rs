//! What a schedule makes the platform, its applications and its network
//! do (the platform-side `Action`s): listening, sends, address
//! notifications, dormancy, infrastructure faults, shutdowns, partitions
//! and heals, network and task settings. Each changes the world and marks
//! what it changed; sessions react through their state machine
//! (`machine.rs`).

use super::machine::Input;
use super::{Action, Ev, World};
use crate::abi::CPNATFWT_SESSION_TERMINATION_REASON as Reason;
use crate::time::Nanos;
use crate::trace::What;
use crate::transport_id::Tid;
use crate::Family;

/// What an address notification does to a host's first interface.
#[derive(Copy, Clone)]
enum Change {
    /// A new address of this family.
    New(Family),
    /// This address (another host's: a duplicate).
    Given(Tid),
    /// The most recently added extra address goes.
    RemoveNewest,
    /// The extra address removed last comes back.
    ReturnRemoved,
}

impl World {
    /// A platform-side action of a schedule. Returns why it did nothing,
    /// when it did nothing (see `IdleAction`): nothing else tells, since
    /// such an action leaves the trace as it would be anyway.
    pub fn platform_action(&mut self, a: &Action) -> Option<String> {
        let host_of = |w: &mut World, name: &str| -> Option<u8> {
            let h = w.host_index(name);
            if h.is_none() {
                w.record(
                    0,
                    0,
                    What::Note {
                        text: format!("no host named `{name}`: action ignored"),
                    },
                );
            }
            h
        };
        match a {
            Action::Listen { host, on } => {
                let Some(h) = host_of(self, host) else {
                    return Some(format!("there is no host `{host}`"));
                };
                self.hosts[h as usize].listening = *on;
                self.mark_host(h);
                self.record(h, 0, What::Listen { on: *on });
                if !on {
                    self.request_dormancy_if_idle(h);
                }
                self.pump_host(h);
                None
            }
            Action::Send {
                from,
                to,
                family,
                bytes,
                newest,
            } => {
                let (Some(f), Some(t)) = (host_of(self, from), host_of(self, to)) else {
                    return Some(format!("there is no host `{from}` or `{to}`"));
                };
                self.app_send(f, t, *family, *bytes, *newest);
                self.pump_host(f);
                None
            }
            Action::AddressAdd { host, family } => {
                let Some(h) = host_of(self, host) else {
                    return Some(format!("there is no host `{host}`"));
                };
                self.address_change(h, Change::New(*family))
            }
            Action::AddressRemove { host } => {
                let Some(h) = host_of(self, host) else {
                    return Some(format!("there is no host `{host}`"));
                };
                self.address_change(h, Change::RemoveNewest)
            }
            Action::AddressReturn { host } => {
                let Some(h) = host_of(self, host) else {
                    return Some(format!("there is no host `{host}`"));
                };
                self.address_change(h, Change::ReturnRemoved)
            }
            Action::InterfaceDown { host } => {
                let Some(h) = host_of(self, host) else {
                    return Some(format!("there is no host `{host}`"));
                };
                self.interface_down(h)
            }
            Action::InterfaceUp { host } => {
                let Some(h) = host_of(self, host) else {
                    return Some(format!("there is no host `{host}`"));
                };
                self.interface_up(h)
            }
            Action::DuplicateAddress { host, of, family } => {
                let (Some(h), Some(o)) = (host_of(self, host), host_of(self, of)) else {
                    return Some(format!("there is no host `{host}` or `{of}`"));
                };
                let v4 = *family == Family::V4;
                let iface = self.hosts[o as usize]
                    .interfaces
                    .iter()
                    .find(|i| i.owner.is_some());
                let theirs = iface.map(|i| i.addrs.iter().find(|a| a.is_v4() == v4).copied());
                let (note, why) = match theirs {
                    Some(Some(t)) => return self.address_change(h, Change::Given(t)),
                    // Its interface is down (or has only the other family).
                    Some(None) => (
                        format!("{of}'s interface has no {} address", family.name()),
                        format!("{of}'s interface has no {} address to copy", family.name()),
                    ),
                    None => (
                        format!("{of} has no registered interface"),
                        format!("{of} has no registered interface to copy an address from"),
                    ),
                };
                self.record(
                    h,
                    0,
                    What::Note {
                        text: format!("duplicate address: {note}"),
                    },
                );
                Some(why)
            }
            Action::Dormant { host } => {
                let Some(h) = host_of(self, host) else {
                    return Some(format!("there is no host `{host}`"));
                };
                let mut asked = false;
                for k in 0..self.hosts[h as usize].insts.len() {
                    let inst = self.hosts[h as usize].insts[k];
                    if let Some(s) = self.insts[inst as usize].session_mut().filter(|s| s.live()) {
                        s.step(Input::DormancyWanted);
                        self.mark(inst);
                        asked = true;
                    }
                }
                self.record(
                    h,
                    0,
                    What::Note {
                        text: "platform: dormancy requested".into(),
                    },
                );
                self.pump_host(h);
                (!asked).then(|| self.no_live_session(h))
            }
            Action::CommunicationError { host } => {
                let Some(h) = host_of(self, host) else {
                    return Some(format!("there is no host `{host}`"));
                };
                self.record(h, 0, What::CommunicationError);
                let mut ended = false;
                for k in 0..self.hosts[h as usize].insts.len() {
                    let inst = self.hosts[h as usize].insts[k];
                    if self.session_live(inst) {
                        self.end_session(
                            inst,
                            Reason::OtherCommunicationError,
                            "infrastructure fault",
                        );
                        ended = true;
                    }
                }
                (!ended).then(|| self.no_live_session(h))
            }
            Action::Shutdown { host } => {
                let Some(h) = host_of(self, host) else {
                    return Some(format!("there is no host `{host}`"));
                };
                self.hosts[h as usize].shutdown = true;
                self.record(h, 0, What::Shutdown);
                for k in 0..self.hosts[h as usize].insts.len() {
                    let inst = self.hosts[h as usize].insts[k];
                    if self.session_live(inst) {
                        self.end_session(inst, Reason::PlatformShutdown, "platform shutdown");
                    }
                }
                // Never idle: the host stays shut down until its provider
                // starts again (Register then fails).
                None
            }
            Action::Partition { a, b } => {
                let (Some(x), Some(y)) = (host_of(self, a), host_of(self, b)) else {
                    return Some(format!("there is no host `{a}` or `{b}`"));
                };
                let now = self.now;
                self.net.partition(x, y, now);
                self.record(
                    x,
                    0,
                    What::Note {
                        text: format!("network: partition {a} | {b}"),
                    },
                );
                None
            }
            Action::Heal => {
                let now = self.now;
                let cut = self.net.is_partitioned();
                self.net.heal(now);
                self.record(
                    0,
                    0,
                    What::Note {
                        text: "network: partitions healed".into(),
                    },
                );
                (!cut).then(|| "no partition is in place".to_string())
            }
            Action::NetFaults { faults } => {
                self.record(
                    0,
                    0,
                    What::Note {
                        text: format!("network: faults now {faults:?}"),
                    },
                );
                if faults.loss > 0.0 {
                    self.net.last_drop = Some(self.now);
                }
                self.net.faults = faults.clone();
                None
            }
            Action::TaskTiming { timing } => {
                self.record(
                    0,
                    0,
                    What::Note {
                        text: format!("harness: task timing now {timing:?}"),
                    },
                );
                self.cfg.tasks = timing.clone();
                None
            }
            Action::Advance => None,
            Action::StartProvider { .. } | Action::StopProvider { .. } => {
                unreachable!("handled by the driver")
            }
        }
    }

    /// Why an action for the live sessions of host `h` found none.
    fn no_live_session(&self, h: u8) -> String {
        let host = &self.hosts[h as usize];
        if host.provider == super::ProviderLife::Stopped {
            format!("{}'s provider is not running", host.name)
        } else {
            format!("no instance on {} has a live session", host.name)
        }
    }

    fn request_dormancy_if_idle(&mut self, h: u8) {
        if self.cfg.idle_dormancy_ms == 0 {
            return;
        }
        let at = self
            .now
            .saturating_add(Nanos::from_millis(self.cfg.idle_dormancy_ms));
        for k in 0..self.hosts[h as usize].insts.len() {
            let inst = self.hosts[h as usize].insts[k];
            if let Some(s) = self.insts[inst as usize].session().filter(|s| s.live()) {
                let session = s.no();
                self.schedule(at, Ev::IdleCheck { inst, session });
            }
        }
    }

    /// An address notification on the host's first registered interface;
    /// why it did nothing, if it did nothing.
    fn address_change(&mut self, h: u8, change: Change) -> Option<String> {
        let Some(k) = self.registered_interface(h) else {
            return self.address_idle(h, "no registered interface", " has no registered interface");
        };
        let iface = &mut self.hosts[h as usize].interfaces[k];
        let (host_no, idx) = (h + 1, iface.index);
        let (t, added) = match change {
            Change::Given(t) => (t, true),
            Change::ReturnRemoved => match iface.removed.pop() {
                Some(t) => (t, true),
                None => {
                    return self.address_idle(
                        h,
                        "no removed address to give back",
                        "'s interface has no removed address to give back",
                    )
                }
            },
            Change::New(family) => {
                let host = &mut self.hosts[h as usize];
                host.extra_addrs = host.extra_addrs.wrapping_add(1);
                // One count for both families: an extra address's last
                // part is unique on its interface whatever its family.
                let n = 1 + host.extra_addrs;
                let t = match family {
                    Family::V6 => Tid::v6(host_no, idx, n),
                    Family::V4 => Tid::v4(host_no, idx, n),
                };
                self.traffic.issue(t);
                (t, true)
            }
            Change::RemoveNewest => {
                // The base pair (the interface's first IPv4 and IPv6 IDs)
                // is never removed on its own; it goes with the interface.
                let base = [Tid::v4(host_no, idx, 1), Tid::v6(host_no, idx, 1)];
                if !matches!(iface.addrs.last(), Some(t) if !base.contains(t)) {
                    return self.address_idle(
                        h,
                        "no extra address to remove",
                        "'s interface has no extra address to remove",
                    );
                }
                let t = iface.addrs.pop().expect("checked");
                iface.removed.push(t);
                (t, false)
            }
        };
        let iface = &mut self.hosts[h as usize].interfaces[k];
        if added && !iface.addrs.contains(&t) {
            iface.addrs.push(t);
        }
        self.notify_addresses(h, k, &[(t, added)]);
        None
    }

    /// The host's first registered interface goes down: each of its
    /// addresses is removed, the newest first, and kept to come back
    /// (`removed`, for `AddressReturn`; `down`, for `InterfaceUp`).
    fn interface_down(&mut self, h: u8) -> Option<String> {
        let Some(k) = self.registered_interface(h) else {
            return self.address_idle(h, "no registered interface", " has no registered interface");
        };
        let iface = &mut self.hosts[h as usize].interfaces[k];
        if iface.addrs.is_empty() {
            return self.address_idle(
                h,
                "no address to take down",
                "'s interface has no address to take down",
            );
        }
        let taken = std::mem::take(&mut iface.addrs);
        iface.removed.extend(taken.iter().rev());
        iface.down.extend_from_slice(&taken);
        self.record(
            h,
            0,
            What::Note {
                text: "platform: interface down".into(),
            },
        );
        let changes: Vec<(Tid, bool)> = taken.iter().rev().map(|&t| (t, false)).collect();
        self.notify_addresses(h, k, &changes);
        None
    }

    /// The host's first registered interface comes up again: what the
    /// downs since it was last up took comes back, in the interface's
    /// order, except what a return already gave back.
    fn interface_up(&mut self, h: u8) -> Option<String> {
        let Some(k) = self.registered_interface(h) else {
            return self.address_idle(h, "no registered interface", " has no registered interface");
        };
        let iface = &mut self.hosts[h as usize].interfaces[k];
        let mut back = Vec::new();
        for t in std::mem::take(&mut iface.down) {
            if let Some(p) = iface.removed.iter().rposition(|&r| r == t) {
                iface.removed.remove(p);
                back.push(t);
            }
        }
        if back.is_empty() {
            return self.address_idle(
                h,
                "no address taken down to bring back",
                "'s interface has no address taken down to bring back",
            );
        }
        for &t in &back {
            if !iface.addrs.contains(&t) {
                iface.addrs.push(t);
            }
        }
        self.record(
            h,
            0,
            What::Note {
                text: "platform: interface up".into(),
            },
        );
        let changes: Vec<(Tid, bool)> = back.iter().map(|&t| (t, true)).collect();
        self.notify_addresses(h, k, &changes);
        None
    }

    /// The host's first interface with an instance registered on it.
    fn registered_interface(&self, h: u8) -> Option<usize> {
        self.hosts[h as usize]
            .interfaces
            .iter()
            .position(|i| i.owner.is_some())
    }

    /// Interface `k` of host `h` changed its addresses (`changes`: each
    /// address, and whether it was added): its instance is told, if its
    /// session is live, each change is written in the trace, and the host
    /// is pumped (its instance ADDs and REMOVEs to match).
    fn notify_addresses(&mut self, h: u8, k: usize, changes: &[(Tid, bool)]) {
        let owner = self.hosts[h as usize].interfaces[k].owner.expect("checked");
        if let Some(s) = self.insts[owner as usize]
            .session_mut()
            .filter(|s| s.live())
        {
            s.step(Input::AddressNotified);
            s.forget_rejected();
            self.mark(owner);
        }
        for &(tid, added) in changes {
            self.record(h, 0, What::Address { tid, added });
        }
        self.pump_host(h);
    }

    /// An address notification that found nothing to do: a note in the
    /// trace, and why, after the host's name (see `IdleAction`).
    fn address_idle(&mut self, h: u8, note: &str, why: &str) -> Option<String> {
        self.record(
            h,
            0,
            What::Note {
                text: format!("address notification: {note}"),
            },
        );
        Some(format!("{}{why}", self.hosts[h as usize].name))
    }
}
