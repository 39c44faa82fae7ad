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
}

impl World {
    /// A platform-side action of a schedule.
    pub fn platform_action(&mut self, a: &Action) {
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
                    return;
                };
                self.hosts[h as usize].listening = *on;
                self.mark_host(h);
                self.record(h, 0, What::Listen { on: *on });
                if !on {
                    self.request_dormancy_if_idle(h);
                }
                self.pump_host(h);
            }
            Action::Send {
                from,
                to,
                family,
                bytes,
                newest,
            } => {
                let (Some(f), Some(t)) = (host_of(self, from), host_of(self, to)) else {
                    return;
                };
                self.app_send(f, t, *family, *bytes, *newest);
                self.pump_host(f);
            }
            Action::AddressAdd { host, family } => {
                let Some(h) = host_of(self, host) else {
                    return;
                };
                self.address_change(h, Change::New(*family));
            }
            Action::AddressRemove { host } => {
                let Some(h) = host_of(self, host) else {
                    return;
                };
                self.address_change(h, Change::RemoveNewest);
            }
            Action::DuplicateAddress { host, of, family } => {
                let (Some(h), Some(o)) = (host_of(self, host), host_of(self, of)) else {
                    return;
                };
                let v4 = *family == Family::V4;
                let theirs = self.hosts[o as usize]
                    .interfaces
                    .iter()
                    .find(|i| i.owner.is_some())
                    .and_then(|i| i.addrs.iter().find(|a| a.is_v4() == v4).copied());
                match theirs {
                    Some(t) => self.address_change(h, Change::Given(t)),
                    None => self.record(
                        h,
                        0,
                        What::Note {
                            text: format!("duplicate address: {of} has no registered interface"),
                        },
                    ),
                }
            }
            Action::Dormant { host } => {
                let Some(h) = host_of(self, host) else {
                    return;
                };
                for k in 0..self.hosts[h as usize].insts.len() {
                    let inst = self.hosts[h as usize].insts[k];
                    if let Some(s) = self.insts[inst as usize].session_mut().filter(|s| s.live()) {
                        s.step(Input::DormancyWanted);
                        self.mark(inst);
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
            }
            Action::CommunicationError { host } => {
                let Some(h) = host_of(self, host) else {
                    return;
                };
                self.record(h, 0, What::CommunicationError);
                for k in 0..self.hosts[h as usize].insts.len() {
                    let inst = self.hosts[h as usize].insts[k];
                    if self.session_live(inst) {
                        self.end_session(
                            inst,
                            Reason::OtherCommunicationError,
                            "infrastructure fault",
                        );
                    }
                }
            }
            Action::Shutdown { host } => {
                let Some(h) = host_of(self, host) else {
                    return;
                };
                self.hosts[h as usize].shutdown = true;
                self.record(h, 0, What::Shutdown);
                for k in 0..self.hosts[h as usize].insts.len() {
                    let inst = self.hosts[h as usize].insts[k];
                    if self.session_live(inst) {
                        self.end_session(inst, Reason::PlatformShutdown, "platform shutdown");
                    }
                }
            }
            Action::Partition { a, b } => {
                let (Some(x), Some(y)) = (host_of(self, a), host_of(self, b)) else {
                    return;
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
            }
            Action::Heal => {
                let now = self.now;
                self.net.heal(now);
                self.record(
                    0,
                    0,
                    What::Note {
                        text: "network: partitions healed".into(),
                    },
                );
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
            }
            Action::Advance => {}
            Action::StartProvider { .. } | Action::StopProvider { .. } => {
                unreachable!("handled by the driver")
            }
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

    /// An address notification on the host's first registered interface.
    fn address_change(&mut self, h: u8, change: Change) {
        let Some(k) = self.hosts[h as usize]
            .interfaces
            .iter()
            .position(|i| i.owner.is_some())
        else {
            self.record(
                h,
                0,
                What::Note {
                    text: "address notification: no registered interface".into(),
                },
            );
            return;
        };
        let iface = &mut self.hosts[h as usize].interfaces[k];
        let (host_no, idx) = (h + 1, iface.index);
        let text;
        if let Change::New(_) | Change::Given(_) = change {
            let t = match change {
                Change::Given(t) => t,
                _ => {
                    self.hosts[h as usize].extra_addrs =
                        self.hosts[h as usize].extra_addrs.wrapping_add(1);
                    // One count for both families: an extra address's last
                    // part is unique on its interface whatever its family.
                    let n = 1 + self.hosts[h as usize].extra_addrs;
                    let t = match change {
                        Change::New(Family::V6) => Tid::v6(host_no, idx, n),
                        _ => Tid::v4(host_no, idx, n),
                    };
                    self.traffic.issue(t);
                    t
                }
            };
            let iface = &mut self.hosts[h as usize].interfaces[k];
            if !iface.addrs.contains(&t) {
                iface.addrs.push(t);
            }
            text = What::Address {
                tid: t,
                added: true,
            };
        } else {
            if iface.addrs.len() <= 2 {
                self.record(
                    h,
                    0,
                    What::Note {
                        text: "address notification: no extra address to remove".into(),
                    },
                );
                return;
            }
            let t = iface.addrs.pop().expect("checked");
            text = What::Address {
                tid: t,
                added: false,
            };
        }
        let owner = self.hosts[h as usize].interfaces[k].owner.expect("checked");
        if let Some(s) = self.insts[owner as usize]
            .session_mut()
            .filter(|s| s.live())
        {
            s.step(Input::AddressNotified);
            s.forget_rejected();
            self.mark(owner);
        }
        self.record(h, 0, text);
        self.pump_host(h);
    }
}
