//! The rendezvous service: runs on the infrastructure node and knows which
//! peer holds which transport ID.
//!
//! It is the overlay's single source of truth for ownership, and it is
//! conservative: an ID held by one owner is refused to every other owner
//! (TID-4), and an ID just given up stays reserved for its last owner for a
//! short quarantine, so that a REMOVE still pending on the old owner's
//! platform never overlaps with someone else's ADD. Registrations are
//! numbered per owner (`reg`): an unregistration only undoes registrations
//! up to its own number, so a late or duplicated message can never undo a
//! newer registration, and a stale registration can never resurrect an ID
//! that was given up after it.
//!
//! A lookup names the node that holds the ID, or that held it recently (a
//! tombstone); the asker then probes that node, so the answer it gives its
//! platform is always first-hand.

use super::wire::{Msg, Owner};
use super::Bug;
use cpsim_sim::{Cx, Nanos, Tid};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The rendezvous' port on the infrastructure node.
pub const RV_PORT: u16 = 3478;
/// How long a given-up ID is remembered (and its last holder named by lookups).
const TOMBSTONE_TTL: Nanos = Nanos::from_secs(15);
/// How long a given-up ID stays reserved for its last holder: longer than
/// the holder's whole REMOVE retry budget (6 sends, 500 ms apart, 3 s), so
/// that the holder's REMOVE has finished, successfully or not, before
/// anyone else is granted the ID. The platform counts the ID as the
/// holder's until that REMOVE completes; with a shorter reserve, an
/// unregistration that arrived while its acknowledgements were lost let
/// another instance's ADD succeed while the holder still held the ID (TID-4).
const QUARANTINE: Nanos = Nanos::from_millis(3_500);

enum Entry {
    Held {
        owner: Owner,
        reg: u64,
    },
    Gone {
        owner: Owner,
        reg: u64,
        since: Nanos,
    },
}

/// The rendezvous' state.
pub struct Rendezvous {
    entries: BTreeMap<Tid, Entry>,
    bug: Bug,
}

/// Starts the rendezvous on the infrastructure node (`cx` is the infra context).
pub fn start(cx: &Cx, bug: Bug) {
    let rv = Arc::new(Mutex::new(Rendezvous {
        entries: BTreeMap::new(),
        bug,
    }));
    // A fresh world has this port free; if it were taken, peers would simply
    // find no rendezvous and fail their activations, which is the honest outcome.
    let _ = cx.bind(RV_PORT, move |cx, from, data| {
        let Some(msg) = Msg::decode(data) else {
            return;
        };
        let reply = rv.lock().handle(cx.now(), msg);
        if let Some(reply) = reply {
            cx.send_vec(RV_PORT, from, reply.encode());
        }
    });
}

impl Rendezvous {
    /// Answers one request (`None` for messages that are not requests).
    fn handle(&mut self, now: Nanos, msg: Msg) -> Option<Msg> {
        Some(match msg {
            Msg::Ping { req } => Msg::Pong { req },
            Msg::Register {
                req,
                tid,
                owner,
                reg,
            } => {
                let ok = self.register(now, tid, owner, reg);
                Msg::RegisterAck {
                    req,
                    tid,
                    owner,
                    reg,
                    ok,
                }
            }
            Msg::Unregister {
                req,
                tid,
                owner,
                reg,
            } => {
                self.unregister(now, tid, owner, reg);
                Msg::UnregisterAck { req }
            }
            Msg::Lookup { req, tid } => Msg::LookupAck {
                req,
                node: self.lookup(now, tid),
            },
            _ => return None,
        })
    }

    fn register(&mut self, now: Nanos, tid: Tid, owner: Owner, reg: u64) -> bool {
        let granted = match self.entries.get_mut(&tid) {
            None => true,
            Some(Entry::Held { owner: o, reg: r }) if *o == owner => {
                *r = (*r).max(reg);
                return true;
            }
            // The TID-4 bug: a duplicate is acknowledged without a check
            // (the first holder stays on record).
            Some(Entry::Held { .. }) => return self.bug == Bug::Tid4,
            Some(Entry::Gone {
                owner: o,
                reg: r,
                since,
            }) => {
                if *o == owner {
                    // A registration older than the unregistration is stale.
                    reg > *r
                } else {
                    now >= since.saturating_add(QUARANTINE)
                }
            }
        };
        if granted {
            self.entries.insert(tid, Entry::Held { owner, reg });
        }
        granted
    }

    fn unregister(&mut self, now: Nanos, tid: Tid, owner: Owner, reg: u64) {
        if let Some(Entry::Held { owner: o, reg: r }) = self.entries.get(&tid) {
            if *o == owner && *r <= reg {
                self.entries.insert(
                    tid,
                    Entry::Gone {
                        owner,
                        reg,
                        since: now,
                    },
                );
            }
        }
    }

    fn lookup(&mut self, now: Nanos, tid: Tid) -> Option<u8> {
        match self.entries.get(&tid)? {
            Entry::Held { owner, .. } => Some(owner.node),
            Entry::Gone { owner, since, .. } => {
                if now < since.saturating_add(TOMBSTONE_TTL) {
                    Some(owner.node)
                } else {
                    self.entries.remove(&tid);
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv() -> Rendezvous {
        Rendezvous {
            entries: BTreeMap::new(),
            bug: Bug::None,
        }
    }
    const A: Owner = Owner { node: 0, luid: 1 };
    const B: Owner = Owner { node: 1, luid: 2 };

    #[test]
    fn one_owner_at_a_time() {
        let mut r = rv();
        let t = Tid::v4(1, 1, 1);
        let s = Nanos::from_secs;
        assert!(r.register(s(0), t, A, 1));
        assert!(r.register(s(0), t, A, 1), "a retransmission is accepted");
        assert!(!r.register(s(0), t, B, 5), "a duplicate is refused (TID-4)");
        assert_eq!(r.lookup(s(0), t), Some(0));
        r.unregister(s(1), t, B, 9);
        assert_eq!(r.lookup(s(1), t), Some(0), "only the owner can unregister");
        r.unregister(s(1), t, A, 1);
        assert!(!r.register(s(1), t, B, 5), "quarantined for the last owner");
        assert!(
            !r.register(s(1), t, A, 1),
            "a stale registration stays dead"
        );
        assert_eq!(r.lookup(s(1), t), Some(0), "tombstones still name the node");
        assert!(
            !r.register(s(3), t, B, 5),
            "still reserved: the owner's REMOVE may still be retrying"
        );
        assert!(r.register(s(5), t, B, 5));
        assert_eq!(r.lookup(s(5), t), Some(1));
    }

    #[test]
    fn newer_registrations_survive_older_unregistrations() {
        let mut r = rv();
        let t = Tid::v6(1, 1, 1);
        assert!(r.register(Nanos::ZERO, t, A, 1));
        assert!(r.register(Nanos::ZERO, t, A, 4));
        r.unregister(Nanos::ZERO, t, A, 1);
        assert_eq!(r.lookup(Nanos::ZERO, t), Some(0));
        assert!(!r.register(Nanos::ZERO, t, B, 9));
    }

    #[test]
    fn tombstones_expire() {
        let mut r = rv();
        let t = Tid::v4(9, 9, 9);
        assert!(r.register(Nanos::ZERO, t, A, 1));
        r.unregister(Nanos::ZERO, t, A, 1);
        assert_eq!(r.lookup(Nanos::from_secs(16), t), None);
    }
}
