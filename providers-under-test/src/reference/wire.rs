//! The overlay's datagram format: what peers and the rendezvous say to each
//! other over the simulated network.
//!
//! Every message is one datagram: a tag byte, then fixed-width little-endian
//! fields; a transport ID is written as its length (4 or 16) and its bytes.
//! Requests carry a `req` number chosen by the sender; the answer echoes it,
//! which is how a reply finds the pended call (or background job) it belongs
//! to. Anything that does not decode is ignored by the receiver.

use cpsim_sim::Tid;

/// Who holds a transport ID at the rendezvous: a host (network node) and the
/// interface (LUID) the ID belongs to. An instance re-created on the same
/// interface is the same owner, so it can take its addresses back at once.
#[derive(Copy, Clone, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub struct Owner {
    pub node: u8,
    pub luid: u64,
}

/// One datagram of the overlay protocol.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Msg {
    /// Peer → rendezvous: are you there? (before TRANSITION_ACTIVE succeeds)
    Ping { req: u64 },
    /// Rendezvous → peer.
    Pong { req: u64 },
    /// Peer → rendezvous: `owner` now holds `tid` (registration number `reg`).
    Register {
        req: u64,
        tid: Tid,
        owner: Owner,
        reg: u64,
    },
    /// Rendezvous → peer: whether the registration was accepted (with the
    /// registration echoed, so that an answer nobody waits for any more can
    /// still be undone).
    RegisterAck {
        req: u64,
        tid: Tid,
        owner: Owner,
        reg: u64,
        ok: bool,
    },
    /// Peer → rendezvous: `owner` gives up `tid` (registrations up to `reg`).
    Unregister {
        req: u64,
        tid: Tid,
        owner: Owner,
        reg: u64,
    },
    /// Rendezvous → peer.
    UnregisterAck { req: u64 },
    /// Peer → rendezvous: which node holds `tid`?
    Lookup { req: u64, tid: Tid },
    /// Rendezvous → peer: the node that holds (or most recently held) it.
    LookupAck { req: u64, node: Option<u8> },
    /// Peer → peer: do you hold `tid` on an active instance (other than
    /// `asker`, the asking slot, when you are the asking node)? `sent` is the
    /// asker's clock when it sent this, echoed back to judge freshness.
    Probe {
        req: u64,
        tid: Tid,
        sent: u64,
        asker: u32,
    },
    /// Peer → peer.
    ProbeAck { req: u64, held: bool, sent: u64 },
    /// Peer → peer: application bytes from `src` (the sender's local ID) to
    /// `dst` (the receiver's local ID). `(sender node, incarnation, req)`
    /// names the datagram for de-duplication of retransmissions.
    Data {
        req: u64,
        incarnation: u64,
        dst: Tid,
        src: Tid,
        payload: Vec<u8>,
    },
    /// Peer → peer: whether the receiver handed the bytes to its platform.
    DataAck { req: u64, ok: bool },
}

const PING: u8 = 1;
const PONG: u8 = 2;
const REGISTER: u8 = 3;
const REGISTER_ACK: u8 = 4;
const UNREGISTER: u8 = 5;
const UNREGISTER_ACK: u8 = 6;
const LOOKUP: u8 = 7;
const LOOKUP_ACK: u8 = 8;
const PROBE: u8 = 9;
const PROBE_ACK: u8 = 10;
const DATA: u8 = 11;
const DATA_ACK: u8 = 12;

struct Writer(Vec<u8>);

impl Writer {
    /// Room for the largest message but `Data`'s (tag, three `u64`s, an
    /// owner, a 16-byte ID and its length, a flag): no reallocation.
    const ROOM: usize = 64;

    fn new(tag: u8) -> Writer {
        Writer::with_room(tag, Self::ROOM)
    }
    fn with_room(tag: u8, room: usize) -> Writer {
        let mut v = Vec::with_capacity(room);
        v.push(tag);
        Writer(v)
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn tid(mut self, t: &Tid) -> Self {
        self.0.push(t.as_bytes().len() as u8);
        self.0.extend_from_slice(t.as_bytes());
        self
    }
    fn owner(self, o: &Owner) -> Self {
        self.u8(o.node).u64(o.luid)
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn tid(&mut self) -> Option<Tid> {
        let n = self.u8()? as usize;
        Tid::from_bytes(self.take(n)?)
    }
    fn owner(&mut self) -> Option<Owner> {
        Some(Owner {
            node: self.u8()?,
            luid: self.u64()?,
        })
    }
    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

impl Msg {
    /// The datagram for this message.
    pub fn encode(&self) -> Vec<u8> {
        let w = match self {
            Msg::Ping { req } => Writer::new(PING).u64(*req),
            Msg::Pong { req } => Writer::new(PONG).u64(*req),
            Msg::Register {
                req,
                tid,
                owner,
                reg,
            } => Writer::new(REGISTER)
                .u64(*req)
                .tid(tid)
                .owner(owner)
                .u64(*reg),
            Msg::RegisterAck {
                req,
                tid,
                owner,
                reg,
                ok,
            } => Writer::new(REGISTER_ACK)
                .u64(*req)
                .tid(tid)
                .owner(owner)
                .u64(*reg)
                .u8(*ok as u8),
            Msg::Unregister {
                req,
                tid,
                owner,
                reg,
            } => Writer::new(UNREGISTER)
                .u64(*req)
                .tid(tid)
                .owner(owner)
                .u64(*reg),
            Msg::UnregisterAck { req } => Writer::new(UNREGISTER_ACK).u64(*req),
            Msg::Lookup { req, tid } => Writer::new(LOOKUP).u64(*req).tid(tid),
            Msg::LookupAck { req, node } => match node {
                Some(n) => Writer::new(LOOKUP_ACK).u64(*req).u8(1).u8(*n),
                None => Writer::new(LOOKUP_ACK).u64(*req).u8(0),
            },
            Msg::Probe {
                req,
                tid,
                sent,
                asker,
            } => Writer::new(PROBE)
                .u64(*req)
                .tid(tid)
                .u64(*sent)
                .u64(*asker as u64),
            Msg::ProbeAck { req, held, sent } => {
                Writer::new(PROBE_ACK).u64(*req).u8(*held as u8).u64(*sent)
            }
            Msg::Data { .. } => return self.as_data().expect("a data message").encode(),
            Msg::DataAck { req, ok } => Writer::new(DATA_ACK).u64(*req).u8(*ok as u8),
        };
        w.0
    }

    /// The message in a datagram; `None` if it is not one of ours.
    pub fn decode(data: &[u8]) -> Option<Msg> {
        let mut r = Reader(data);
        let msg = match r.u8()? {
            PING => Msg::Ping { req: r.u64()? },
            PONG => Msg::Pong { req: r.u64()? },
            REGISTER => Msg::Register {
                req: r.u64()?,
                tid: r.tid()?,
                owner: r.owner()?,
                reg: r.u64()?,
            },
            REGISTER_ACK => Msg::RegisterAck {
                req: r.u64()?,
                tid: r.tid()?,
                owner: r.owner()?,
                reg: r.u64()?,
                ok: r.flag()?,
            },
            UNREGISTER => Msg::Unregister {
                req: r.u64()?,
                tid: r.tid()?,
                owner: r.owner()?,
                reg: r.u64()?,
            },
            UNREGISTER_ACK => Msg::UnregisterAck { req: r.u64()? },
            LOOKUP => Msg::Lookup {
                req: r.u64()?,
                tid: r.tid()?,
            },
            LOOKUP_ACK => {
                let req = r.u64()?;
                let node = if r.flag()? { Some(r.u8()?) } else { None };
                Msg::LookupAck { req, node }
            }
            PROBE => Msg::Probe {
                req: r.u64()?,
                tid: r.tid()?,
                sent: r.u64()?,
                asker: u32::try_from(r.u64()?).ok()?,
            },
            PROBE_ACK => Msg::ProbeAck {
                req: r.u64()?,
                held: r.flag()?,
                sent: r.u64()?,
            },
            DATA => return DataRef::decode(data).map(DataRef::to_msg),
            DATA_ACK => Msg::DataAck {
                req: r.u64()?,
                ok: r.flag()?,
            },
            _ => return None,
        };
        r.end()?;
        Some(msg)
    }
}

/// A [`Msg::Data`] whose payload is borrowed: what a sender writes from
/// the bytes where they lie, and a receiver reads without copying them.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct DataRef<'a> {
    pub req: u64,
    pub incarnation: u64,
    pub dst: Tid,
    pub src: Tid,
    pub payload: &'a [u8],
}

impl Msg {
    /// A data message, borrowed; `None` for any other message.
    pub fn as_data(&self) -> Option<DataRef<'_>> {
        match self {
            Msg::Data {
                req,
                incarnation,
                dst,
                src,
                payload,
            } => Some(DataRef {
                req: *req,
                incarnation: *incarnation,
                dst: *dst,
                src: *src,
                payload,
            }),
            _ => None,
        }
    }
}

impl<'a> DataRef<'a> {
    /// The message, owning a copy of the payload.
    pub fn to_msg(self) -> Msg {
        Msg::Data {
            req: self.req,
            incarnation: self.incarnation,
            dst: self.dst,
            src: self.src,
            payload: self.payload.to_vec(),
        }
    }

    /// The datagram, in one allocation of its exact size.
    pub fn encode(&self) -> Vec<u8> {
        let head = 1 + 8 + 8 + 2 + self.dst.as_bytes().len() + self.src.as_bytes().len();
        Writer::with_room(DATA, head + self.payload.len())
            .u64(self.req)
            .u64(self.incarnation)
            .tid(&self.dst)
            .tid(&self.src)
            .bytes(self.payload)
            .0
    }

    /// The data message in a datagram; `None` if it is not one.
    pub fn decode(data: &'a [u8]) -> Option<DataRef<'a>> {
        let mut r = Reader(data);
        (r.u8()? == DATA).then_some(())?;
        Some(DataRef {
            req: r.u64()?,
            incarnation: r.u64()?,
            dst: r.tid()?,
            src: r.tid()?,
            payload: r.rest(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let a = Tid::v4(1, 1, 1);
        let b = Tid::v6(2, 1, 1);
        let o = Owner { node: 3, luid: 77 };
        let all = [
            Msg::Ping { req: 1 },
            Msg::Pong { req: 2 },
            Msg::Register {
                req: 3,
                tid: a,
                owner: o,
                reg: 9,
            },
            Msg::RegisterAck {
                req: 4,
                tid: b,
                owner: o,
                reg: 9,
                ok: true,
            },
            Msg::Unregister {
                req: 5,
                tid: b,
                owner: o,
                reg: 10,
            },
            Msg::UnregisterAck { req: 6 },
            Msg::Lookup { req: 7, tid: a },
            Msg::LookupAck {
                req: 8,
                node: Some(4),
            },
            Msg::LookupAck { req: 8, node: None },
            Msg::Probe {
                req: 9,
                tid: b,
                sent: 123,
                asker: 2,
            },
            Msg::ProbeAck {
                req: 10,
                held: false,
                sent: 123,
            },
            Msg::Data {
                req: 11,
                incarnation: 5,
                dst: a,
                src: b,
                payload: vec![1, 2, 3],
            },
            Msg::Data {
                req: 11,
                incarnation: 5,
                dst: a,
                src: b,
                payload: vec![],
            },
            Msg::DataAck { req: 12, ok: true },
        ];
        for m in all {
            let bytes = m.encode();
            assert_eq!(Msg::decode(&bytes), Some(m.clone()), "{m:?}");
            // The borrowed form reads data messages alike, and nothing else.
            assert_eq!(DataRef::decode(&bytes), m.as_data(), "{m:?}");
            if m.as_data().is_some() {
                assert_eq!(bytes.capacity(), bytes.len(), "one exact allocation");
            }
        }
    }

    #[test]
    fn garbage_is_ignored() {
        assert_eq!(Msg::decode(&[]), None);
        assert_eq!(Msg::decode(&[200, 1, 2]), None);
        assert_eq!(Msg::decode(&[PING, 1, 2]), None);
        let mut long = Msg::Pong { req: 1 }.encode();
        long.push(0);
        assert_eq!(Msg::decode(&long), None);
        assert_eq!(
            Msg::decode(&[LOOKUP, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5]),
            None
        );
    }
}
