//! Subtle single-bug variants of the reference provider: each breaks a MUST
//! rule only under a rare condition (a stop within a millisecond of a
//! platform-ended session, a burst of sends to one peer, a datagram of one
//! byte, a dormancy request right after an activation, …), in a place where
//! a provider author could plausibly have made the mistake. Unlike the
//! planted [`super::Bug`]s, nothing here fires on an ordinary schedule.
//!
//! Each variant is tested in exactly one or two places of the provider
//! (`self.subtle == Subtle::X`); `scenarios/subtle/` has a directed scenario
//! per variant showing the bug is real, which the correct provider passes.

use cpsim_sim::rules::{id, RuleId};

/// One subtle mistake (or none).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Subtle {
    /// The correct reference provider.
    None,
    /// LIFE-8: stop skips instances whose session the platform just ended,
    /// leaving them to the replacement timer, which never runs after a stop.
    StopSkipsEnded,
    /// COMP-4: pended SENDs are indexed by peer; a second SEND to the same
    /// peer while the first is in flight supersedes it, and the first one's
    /// completion is dropped.
    SendPerPeer,
    /// DATA-5: received datagrams are de-duplicated by sender node alone
    /// (not by the sender's incarnation): after the sender's provider
    /// restarts, its new datagrams are acknowledged as duplicates and lost.
    DedupPerNode,
    /// DATA-5: a one-byte datagram is taken for the overlay's keepalive and
    /// acknowledged without being indicated.
    OneByteKeepalive,
    /// DATA-5: the data frame's length field has 15 bits: a datagram of
    /// 32 KiB or more is cut.
    ShortLength,
    /// LIFE-7: a session the platform ends while TRANSITION_ACTIVE is still
    /// pended is left to the activation worker, which never deregisters.
    EndWhileActivating,
    /// LIFE-2: after a failed activation (the rendezvous stayed unreachable
    /// for the whole retry budget) the provider first tries to revive the
    /// instance by registering it again, without deregistering it.
    ReviveAfterFailedActivation,
    /// TIME-1: at most two SENDs per peer are in flight; a third waits and
    /// is resumed by an acknowledgement, but not when an in-flight SEND fails.
    SendWindow,
    /// SESS-7: TERMINATE waits inline for every pended call's worker to
    /// notice (350 ms each): three or more pended calls overrun its limit.
    TerminateDrains,
    /// TIME-1: a TRANSITION_DORMANT within 20 ms of an activation is pended
    /// until the link settles; the settle timer completes it only if the
    /// instance is still active, which the dormancy itself has cleared.
    SettleDormancy,
    /// CRASH-1: SEND_BUFFERS copies the payload into a frame buffer that
    /// forgot the frame header: the largest datagrams overflow it.
    FrameOverflow,
    /// DATA-5: a dormancy clears the receive side's memory of datagram
    /// numbers ("a dormant instance takes no data"): a retransmission whose
    /// first copy was indicated before a dormancy cycle is indicated again.
    SeenResetAtDormancy,
    /// TIME-1: requests to the rendezvous back off exponentially (500 ms,
    /// doubling); with the rendezvous unreachable for several seconds, an
    /// ADD or an activation outlasts its time limit before it gives up.
    RetryBackoff,
    /// CRASH-1: after a re-activation the first SENDs time the link
    /// afresh in a two-entry table; the index is not bounded, so the third
    /// SEND after a re-activation (with no dormancy between) panics.
    ThirdSendAfterReactivation,
    /// LIFE-8: stop completes the pended calls it finds in its table of
    /// requests to the rendezvous, except a REMOVE: the goodbye it sends
    /// the rendezvous is meant to answer it, but no answer is handled
    /// after a stop, so a REMOVE still pended when the provider is stopped
    /// stays open.
    StopForgetsRemove,
    /// DATA-5: the receive side remembers the datagram numbers it has
    /// indicated by their low byte (the frame's sequence field is one
    /// byte): from a sender's 257th message on, a new datagram can be
    /// taken for one already indicated, acknowledged and dropped.
    ByteSequence,
    /// DATA-5: the receive side finds the local ID of a datagram in an
    /// 8-entry table per family, indexed by the low three bits of the
    /// address's last byte (an interface numbers its addresses in turn);
    /// an entry is taken for the destination when the rest of the address
    /// (the interface) matches, as if the index were the whole last byte.
    /// An ADD writes its entry whatever is there: once an interface has a
    /// ninth address, it takes the entry of the first one of its family,
    /// and data for that first address is indicated as for the new one.
    IdTable,
    /// DATA-5: the receive side keeps a replay window of 64 datagram
    /// numbers per sender, as a VPN's anti-replay check does: a datagram
    /// more than 64 numbers behind the newest one indicated is taken for a
    /// replay, acknowledged and dropped. Only a datagram overtaken by more
    /// than 64 later ones shows it: a long run in flight on a network that
    /// reorders.
    ReplayWindow,
    /// DATA-5: the receive side keeps a set of the IDs removed from an
    /// instance ("tombstones"), so that data still arriving for an address
    /// that went away is acknowledged (the peer stops resending) and
    /// dropped. The set is not cleared when the same ID is added again:
    /// once an address comes back (a DHCP renewal, a roam back), data for
    /// it is acknowledged and lost.
    Tombstone,
    /// DATA-5: the receive side keeps its peers in a table of three
    /// entries, indexed by the sender's node number modulo 3, as a
    /// deployment "never has more than three peers". An entry is claimed by
    /// the first node that sends through it (a restart of that node takes it
    /// over); a datagram from another node whose entry is taken is treated
    /// as a stale peer's: acknowledged so that the sender stops, and
    /// dropped. Only a host that hears from four or more hosts' worth of
    /// node numbers (two of them three apart) shows it.
    PeerTable,
    /// DATA-5: a peer the receive side has not heard from for three
    /// minutes is taken to be gone (as a VPN's idle timeout does); the
    /// first datagram from it after that is treated as its handshake to
    /// come back: acknowledged, so that it is not sent again, and not
    /// indicated. Only a silence of minutes between two hosts that
    /// exchanged data shows it.
    IdlePeer,
    /// TID-2: an instance's first ID (the first one the platform asked it
    /// to add, its interface's first address) is taken for its identity,
    /// for as long as the instance lives ("the overlay knows a node by its
    /// first address"): the receive side takes data for it as the
    /// instance's even after its REMOVE, and indicates it with the removed
    /// ID. Only a removal of an interface's first address shows it: an
    /// interface that goes down.
    FirstIdKept,
    /// DATA-5: while a REMOVE is pended at any instance of the host (the
    /// node rebuilds its table of local addresses), data frames for any of
    /// its IDs are acknowledged, so that the peer does not resend into the
    /// change, and dropped. Only data arriving for one address while
    /// another address of the host is being removed shows it.
    DeafWhileRemoving,
}

impl Subtle {
    /// Every subtle variant.
    pub const ALL: [Subtle; 23] = [
        Subtle::StopSkipsEnded,
        Subtle::SendPerPeer,
        Subtle::DedupPerNode,
        Subtle::OneByteKeepalive,
        Subtle::ShortLength,
        Subtle::EndWhileActivating,
        Subtle::ReviveAfterFailedActivation,
        Subtle::SendWindow,
        Subtle::TerminateDrains,
        Subtle::SettleDormancy,
        Subtle::FrameOverflow,
        Subtle::SeenResetAtDormancy,
        Subtle::RetryBackoff,
        Subtle::ThirdSendAfterReactivation,
        Subtle::StopForgetsRemove,
        Subtle::ByteSequence,
        Subtle::IdTable,
        Subtle::ReplayWindow,
        Subtle::Tombstone,
        Subtle::PeerTable,
        Subtle::IdlePeer,
        Subtle::FirstIdKept,
        Subtle::DeafWhileRemoving,
    ];

    /// The rule the variant breaks (`None` for the correct provider).
    pub fn rule(self) -> Option<RuleId> {
        Some(match self {
            Subtle::None => return None,
            Subtle::StopSkipsEnded | Subtle::StopForgetsRemove => id::LIFE_8,
            Subtle::SendPerPeer => id::COMP_4,
            Subtle::DedupPerNode
            | Subtle::OneByteKeepalive
            | Subtle::ShortLength
            | Subtle::SeenResetAtDormancy
            | Subtle::ByteSequence
            | Subtle::IdTable
            | Subtle::ReplayWindow
            | Subtle::Tombstone
            | Subtle::PeerTable
            | Subtle::IdlePeer
            | Subtle::DeafWhileRemoving => id::DATA_5,
            Subtle::EndWhileActivating => id::LIFE_7,
            Subtle::ReviveAfterFailedActivation => id::LIFE_2,
            Subtle::SendWindow | Subtle::SettleDormancy | Subtle::RetryBackoff => id::TIME_1,
            Subtle::TerminateDrains => id::SESS_7,
            Subtle::FrameOverflow | Subtle::ThirdSendAfterReactivation => id::CRASH_1,
            Subtle::FirstIdKept => id::TID_2,
        })
    }

    /// The provider's name: `subtle-<rule>-<what>`.
    pub fn name(self) -> String {
        let what = match self {
            Subtle::None => return "reference".into(),
            Subtle::StopSkipsEnded => "stop-skips-ended",
            Subtle::SendPerPeer => "send-per-peer",
            Subtle::DedupPerNode => "dedup-per-node",
            Subtle::OneByteKeepalive => "one-byte-keepalive",
            Subtle::ShortLength => "short-length",
            Subtle::EndWhileActivating => "end-while-activating",
            Subtle::ReviveAfterFailedActivation => "revive-after-failed-activation",
            Subtle::SendWindow => "send-window",
            Subtle::TerminateDrains => "terminate-drains",
            Subtle::SettleDormancy => "settle-dormancy",
            Subtle::FrameOverflow => "frame-overflow",
            Subtle::SeenResetAtDormancy => "seen-reset-at-dormancy",
            Subtle::RetryBackoff => "retry-backoff",
            Subtle::ThirdSendAfterReactivation => "third-send-after-reactivation",
            Subtle::StopForgetsRemove => "stop-forgets-remove",
            Subtle::ByteSequence => "byte-sequence",
            Subtle::IdTable => "id-table",
            Subtle::ReplayWindow => "replay-window",
            Subtle::Tombstone => "tombstone",
            Subtle::PeerTable => "peer-table",
            Subtle::IdlePeer => "idle-peer",
            Subtle::FirstIdKept => "first-id-kept",
            Subtle::DeafWhileRemoving => "deaf-while-removing",
        };
        let rule = self.rule().expect("a variant").as_str().to_lowercase();
        format!("subtle-{rule}-{what}")
    }

    /// What the bug does and when it shows (the registry's description).
    pub fn describe(self) -> &'static str {
        match self {
            Subtle::None => "the reference overlay provider, correct",
            Subtle::StopSkipsEnded => {
                "stopped within a millisecond of a platform-ended session, leaves that instance registered"
            }
            Subtle::SendPerPeer => {
                "a second SEND to a peer while the first is pended drops the first one's completion"
            }
            Subtle::DedupPerNode => {
                "de-duplicates by sender node only: after the sender restarts, its datagrams are lost"
            }
            Subtle::OneByteKeepalive => "acknowledges a one-byte datagram as a keepalive and drops it",
            Subtle::ShortLength => "cuts datagrams of 32 KiB or more (a 15-bit length field)",
            Subtle::EndWhileActivating => {
                "never deregisters a session the platform ended while TRANSITION_ACTIVE was pended"
            }
            Subtle::ReviveAfterFailedActivation => {
                "after a failed activation, registers the still-registered instance again"
            }
            Subtle::SendWindow => {
                "a third concurrent SEND to a peer waits for an acknowledgement that a failure never gives"
            }
            Subtle::TerminateDrains => {
                "TERMINATE blocks 350 ms per pended call: three pended calls overrun its limit"
            }
            Subtle::SettleDormancy => {
                "a dormancy request within 20 ms of an activation is pended and never completed"
            }
            Subtle::FrameOverflow => "panics copying a datagram of more than 65,472 bytes into its frame",
            Subtle::SeenResetAtDormancy => {
                "forgets which datagrams it indicated when it goes dormant: a late retransmission is indicated twice"
            }
            Subtle::RetryBackoff => {
                "backs off exponentially from an unreachable rendezvous: an ADD or activation overruns its limit"
            }
            Subtle::ThirdSendAfterReactivation => {
                "panics on the third SEND after a re-activation (an unbounded index into a two-entry table)"
            }
            Subtle::StopForgetsRemove => {
                "stopped while a REMOVE is pended, leaves that REMOVE open"
            }
            Subtle::ByteSequence => {
                "de-duplicates by the low byte of the datagram number: a sender's 257th message can be dropped as a duplicate"
            }
            Subtle::IdTable => {
                "keeps 8 IDs per family, by last byte: from an interface's ninth address on, data for its first is indicated as for the ninth"
            }
            Subtle::ReplayWindow => {
                "drops as a replay a datagram more than 64 numbers behind the newest indicated: one overtaken by 65 others is lost"
            }
            Subtle::Tombstone => {
                "never clears its tombstone of a removed ID: once the address comes back, data for it is acknowledged and dropped"
            }
            Subtle::IdlePeer => {
                "takes a peer silent for three minutes to be gone: its next datagram is acknowledged as a handshake and dropped"
            }
            Subtle::PeerTable => {
                "keeps its peers in three entries by node number modulo 3: a fourth host's data on a taken entry is acknowledged and dropped"
            }
            Subtle::FirstIdKept => {
                "keeps an instance's first ID after its REMOVE (its identity): data for it after an interface went down is indicated with the removed ID"
            }
            Subtle::DeafWhileRemoving => {
                "while a REMOVE is pended at its host, acknowledges and drops data for every one of its IDs"
            }
        }
    }
}
