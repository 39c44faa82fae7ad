//! Applications and their datagrams: the documented send path
//! (TRANSITION_ACTIVE if dormant, REACH, SEND_BUFFERS), IndicateReceivedBuffers
//! on the receiving side, and the end-to-end check of DATA-5.
//!
//! A datagram's payload is kept only until its SEND_BUFFERS is made; from
//! then on DATA-5 knows it by its [`Content`] (length and key), so a long
//! run keeps a small fixed-size record per datagram, not its bytes.

use super::instance::Op;
use super::machine::{Activation, Input};
use super::{Ev, Shared, World};
use crate::abi::*;
use crate::edge;
use crate::fxhash::FxHashMap as HashMap;
use crate::rng::Rng;
use crate::rules::id;
use crate::time::Nanos;
use crate::trace::{Indication, What};
use crate::transport_id::Tid;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::ffi::c_void;
use std::sync::Arc;

/// Address family of an application's destination.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Family {
    #[default]
    V4,
    V6,
}

impl Family {
    /// How the trace and notes name it: `IPv4` or `IPv6`.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// What the platform does with an IndicateReceivedBuffers whose
/// arguments are well formed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Admission {
    /// Taken (the instance is active).
    Take,
    /// Refused (it is not: STATE-3).
    Refuse,
    /// Answered S_OK and dropped (only a faulty platform, STATE-3).
    Swallow,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum State {
    Waiting,
    Sending,
    Sent,
    Failed,
    Dropped,
}

struct Datagram {
    src_host: u8,
    dst: Tid,
    /// The payload's [`Content`], its fields kept here to save padding.
    len: u32,
    form: Form,
    value: u64,
    sent_at: Nanos,
    state: State,
    via: Option<u32>,
    src: Option<Tid>,
    /// 0 until it is indicated; then the receiving host's provider start
    /// count ([`Host::starts`](super::Host)) at that time, so a second
    /// indication after a restart of that provider is known as such
    /// (decision `duplicate-across-restart`).
    delivered_in: u32,
    /// When it went to SEND_BUFFERS, as a count of datagrams before it
    /// (`NOT_SENT` until then): the order DATA-5 names duplicates in.
    send_order: u32,
}

const NOT_SENT: u32 = u32::MAX;

impl Datagram {
    fn content(&self) -> Content {
        Content {
            len: self.len,
            form: self.form,
            value: self.value,
        }
    }
}

/// What DATA-5 knows a payload by: its length and a value that stands for
/// its bytes, of one of three [`Form`]s.
///
/// Every payload the platform generates is a *stream* (see [`Stream`]):
/// word `i` is a bijective mix of `key + i·WEYL`, so the first word gives
/// the key back and the key gives every byte. Such a payload is known by
/// its key, exactly: two stream contents are equal only if the bytes are,
/// and a stream's bytes with any change are no stream of that key. Bytes
/// that are not a stream (a provider changed them) are known by a 64-bit
/// [`Digest`]; payloads of at most 8 bytes by the bytes themselves.
/// A content of one form never equals one of another.
///
/// The same content seals a SEND_BUFFERS' payload (COMP-8, DATA-6) and an
/// indication held for its completion routine (DATA-3). It is known when a
/// payload is written ([`Content::fill`]: no hashing) and read where the
/// bytes lie, piece by piece ([`Reader`]: the stream is checked word by
/// word against its key; the digest is computed only for bytes that are
/// not one).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Content {
    len: u32,
    form: Form,
    value: u64,
}

/// How a [`Content`]'s value stands for the bytes.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
enum Form {
    /// At most 8 bytes: the bytes (little-endian, zero-padded).
    Bytes,
    /// More than 8 bytes of a [`Stream`]: its key.
    Stream,
    /// More than 8 bytes of no stream: their [`Digest`].
    Digest,
}

impl Content {
    pub(crate) fn of(bytes: &[u8]) -> Content {
        let mut r = Reader::default();
        r.feed(bytes);
        r.finish()
    }

    /// The content of `bytes` as they are now (the same as
    /// [`of`](Self::of)), then every byte set to `fill`, in one pass over
    /// a generated stream: each whole block after the first word is
    /// compared with the stream and overwritten at once. Bytes that are no
    /// stream (from the first block that differs) are read as `of` reads
    /// them, then overwritten.
    pub(crate) fn of_then_fill(bytes: &mut [u8], fill: u8) -> Content {
        let mut r = Reader::default();
        // Short ones (most datagrams) are read, then filled by one `memset`:
        // as cheap, with less fixed cost.
        if bytes.len() < 2048 {
            r.feed(bytes);
            bytes.fill(fill);
            return r.finish();
        }
        // What `feed` would do with the whole slice: the first word gives
        // the key, then whole blocks as long as they are the stream's, then
        // the rest word by word (its first block is not the stream's, or
        // it is shorter than a block).
        r.feed(&bytes[..8]);
        let mut done = 8;
        if let Read::Stream { next, .. } = &mut r.state {
            let (n, x) = next.prefix_then_fill(&mut bytes[8..], fill);
            next.x = x;
            r.words += n as u64;
            r.len += 8 * n as u64;
            done += 8 * n;
        }
        r.feed(&bytes[done..]);
        bytes[..8].fill(fill);
        bytes[done..].fill(fill);
        r.finish()
    }

    /// Appends a `len`-byte payload to `buf`, a stream whose key is drawn
    /// from `rng`, and returns its content (one draw per payload; the bytes
    /// are written, not hashed).
    pub(crate) fn fill(rng: &mut Rng, buf: &mut Vec<u8>, len: usize) -> Content {
        let key = rng.next_u64();
        // Whole blocks of 8 words, written in place, each word from its own
        // lane (no multiplication, no dependency between words, no capacity
        // check per block: the loop compiles to vector code), after one
        // `memset` that zeroes the room. Measured on 65,000-byte payloads
        // into a reused buffer, 19-22 GB/s, against 12-15 GB/s for blocks
        // made word by word on the stack and appended.
        let start = buf.len();
        buf.resize(start + len, 0);
        let lanes = Stream::write_blocks(Stream::new(key).lanes(), &mut buf[start..]);
        let rest = &mut buf[start + len / 64 * 64..];
        // The last words (less than a block), at once.
        if !rest.is_empty() {
            let mut b = [0u8; 64];
            Stream::write_blocks(lanes, &mut b);
            rest.copy_from_slice(&b[..rest.len()]);
        }
        if len <= 8 {
            let mut w = Stream::new(key).next_word().to_le_bytes();
            w[len..].fill(0);
            return Content {
                len: len as u32,
                form: Form::Bytes,
                value: u64::from_le_bytes(w),
            };
        }
        Content {
            len: len as u32,
            form: Form::Stream,
            value: key,
        }
    }
}

/// The words of a generated payload: word `i` is `mix(key + i·WEYL)`,
/// `mix` a multiplication by an odd constant then a 32-bit xorshift, both
/// invertible, so the key is the inverse mix of the first word. The words
/// are all distinct (a Weyl sequence through a bijection) and look random
/// byte by byte.
#[derive(Clone)]
struct Stream {
    x: u64,
}

impl Stream {
    const WEYL: u64 = 0x9e37_79b9_7f4a_7c15;
    const MIX: u64 = 0xd6e8_feb8_6659_fd93;
    /// `MIX`'s inverse modulo 2^64 (Newton's iteration, exact after 5 steps).
    const MIX_INV: u64 = {
        let mut x = Self::MIX;
        let mut i = 0;
        while i < 5 {
            x = x.wrapping_mul(2u64.wrapping_sub(Self::MIX.wrapping_mul(x)));
            i += 1;
        }
        x
    };

    /// `WEYL · MIX`: a word's product before the xorshift is `key·MIX +
    /// i·STEP`, so the stream's products advance by an addition (the same
    /// bytes as multiplying each `key + i·WEYL`, modulo 2^64).
    const STEP: u64 = Self::WEYL.wrapping_mul(Self::MIX);
    /// Eight words on.
    const BLOCK_STEP: u64 = Self::STEP.wrapping_mul(8);

    fn new(key: u64) -> Stream {
        Stream { x: key }
    }
    /// The products of the next 8 words (before the xorshift), one per
    /// lane; each lane then moves on by [`BLOCK_STEP`](Self::BLOCK_STEP).
    #[inline(always)]
    fn lanes(&self) -> [u64; 8] {
        let y = self.x.wrapping_mul(Self::MIX);
        std::array::from_fn(|k| y.wrapping_add(Self::STEP.wrapping_mul(k as u64)))
    }
    /// Writes the words of `out`'s whole 64-byte blocks from `lanes` (see
    /// [`lanes`](Self::lanes)) and returns the lanes after them.
    #[inline(always)]
    fn write_blocks(mut lanes: [u64; 8], out: &mut [u8]) -> [u64; 8] {
        for b in out.chunks_exact_mut(64) {
            for (c, y) in b.chunks_exact_mut(8).zip(&mut lanes) {
                c.copy_from_slice(&Self::out(*y).to_le_bytes());
                *y = y.wrapping_add(Self::BLOCK_STEP);
            }
        }
        lanes
    }
    /// A word from its product.
    #[inline(always)]
    fn out(y: u64) -> u64 {
        y ^ (y >> 32)
    }
    /// The key of the stream whose first word is `w`.
    fn key_of(w: u64) -> u64 {
        (w ^ (w >> 32)).wrapping_mul(Self::MIX_INV)
    }
    /// The stream's word after `n` words from `key`.
    fn at(key: u64, n: u64) -> Stream {
        Stream {
            x: key.wrapping_add(n.wrapping_mul(Self::WEYL)),
        }
    }
    #[inline(always)]
    fn peek(&self) -> u64 {
        Self::out(self.x.wrapping_mul(Self::MIX))
    }
    /// How many words at the start of `bytes` (whole words) are this
    /// stream's, in whole blocks of 8 (a block with a word that is not is
    /// left for the caller to read word by word), and the stream's
    /// position after them.
    ///
    /// Each block is compared lane by lane (see [`lanes`](Self::lanes)):
    /// no multiplication and no branch per word, so the loop compiles to
    /// vector code.
    #[inline(always)]
    fn prefix(&self, bytes: &[u8]) -> (usize, u64) {
        let mut lanes = self.lanes();
        let mut n = 0;
        for b in bytes.chunks_exact(64) {
            if !Self::block_is(&lanes, b) {
                break;
            }
            Self::advance(&mut lanes);
            n += 8;
        }
        (n, self.x.wrapping_add((n as u64).wrapping_mul(Self::WEYL)))
    }
    /// [`prefix`](Self::prefix), overwriting each block found to be the
    /// stream's with `fill` as soon as it is compared (while it is in
    /// cache): a block not the stream's, and everything after it, are left
    /// as they are.
    #[inline(always)]
    fn prefix_then_fill(&self, bytes: &mut [u8], fill: u8) -> (usize, u64) {
        let mut lanes = self.lanes();
        let mut n = 0;
        for b in bytes.chunks_exact_mut(64) {
            if !Self::block_is(&lanes, b) {
                break;
            }
            b.fill(fill);
            Self::advance(&mut lanes);
            n += 8;
        }
        (n, self.x.wrapping_add((n as u64).wrapping_mul(Self::WEYL)))
    }
    /// Whether the 64 bytes of `b` are the block whose products are `lanes`.
    #[inline(always)]
    fn block_is(lanes: &[u64; 8], b: &[u8]) -> bool {
        let mut diff = [0u64; 8];
        for ((c, y), d) in b.chunks_exact(8).zip(lanes).zip(&mut diff) {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            *d = w ^ Self::out(*y);
        }
        diff.iter().fold(0, |a, d| a | d) == 0
    }
    /// The lanes of the next block.
    #[inline(always)]
    fn advance(lanes: &mut [u64; 8]) {
        for y in lanes {
            *y = y.wrapping_add(Self::BLOCK_STEP);
        }
    }
    #[inline(always)]
    fn next_word(&mut self) -> u64 {
        let w = self.peek();
        self.x = self.x.wrapping_add(Self::WEYL);
        w
    }
}

/// A [`Content`] read piece by piece (a buffer chain's elements): the same
/// value as [`Content::of`] over the concatenation, however it is cut.
/// While the bytes are a stream they are checked word by word against the
/// key the first word gives; at the first word that is not the stream's,
/// the words so far (the stream's) and everything after go to a [`Digest`].
#[derive(Clone, Default)]
pub(crate) struct Reader {
    state: Read,
    /// Whole words read (while `First` or `Stream`).
    words: u64,
    /// A word not complete yet: its bytes so far.
    part: [u8; 8],
    part_len: usize,
    len: u64,
}

#[derive(Clone, Default)]
enum Read {
    /// No whole word yet.
    #[default]
    First,
    /// Every whole word so far is the stream's; `next` gives the next one.
    Stream { key: u64, next: Stream },
    /// Not a stream: everything read is in the digest.
    Foreign(Digest),
}

impl Reader {
    /// Reads the next bytes.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        if let Read::Foreign(d) = &mut self.state {
            d.feed(bytes);
            self.len += bytes.len() as u64;
            return;
        }
        self.len += bytes.len() as u64;
        if self.part_len > 0 {
            let take = (8 - self.part_len).min(bytes.len());
            self.part[self.part_len..self.part_len + take].copy_from_slice(&bytes[..take]);
            self.part_len += take;
            bytes = &bytes[take..];
            if self.part_len < 8 {
                return;
            }
            self.part_len = 0;
            if !self.word(u64::from_le_bytes(self.part)) {
                self.feed_digest(bytes);
                return;
            }
        }
        let whole = bytes.len() / 8 * 8;
        let le = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let mut i = 0;
        // The first word gives the key.
        if matches!(self.state, Read::First) && whole > 0 {
            self.word(le(0));
            i = 8;
        }
        if let Read::Stream { next, .. } = &mut self.state {
            // The common case, a stream all along: whole blocks at once.
            let (n, x) = next.prefix(&bytes[i..whole]);
            next.x = x;
            self.words += n as u64;
            i += n * 8;
        }
        // The last words (less than a block), or the block with a word
        // not the stream's: word by word.
        while i < whole {
            let w = le(i);
            i += 8;
            if !self.word(w) {
                self.feed_digest(&bytes[i..]);
                return;
            }
        }
        let tail = &bytes[whole..];
        self.part[..tail.len()].copy_from_slice(tail);
        self.part_len = tail.len();
    }

    /// Takes whole word `w`; false if it ended the stream (the reader is
    /// then `Foreign`, with `w` in the digest).
    #[inline(always)]
    fn word(&mut self, w: u64) -> bool {
        match &mut self.state {
            Read::First => {
                let key = Stream::key_of(w);
                self.state = Read::Stream {
                    key,
                    next: Stream::at(key, 1),
                };
                self.words = 1;
                true
            }
            Read::Stream { next, .. } => {
                if next.next_word() == w {
                    self.words += 1;
                    true
                } else {
                    self.go_foreign();
                    self.feed_digest(&w.to_le_bytes());
                    false
                }
            }
            Read::Foreign(d) => {
                d.feed(&w.to_le_bytes());
                false
            }
        }
    }

    /// The bytes read so far were the stream's words: they go to a digest.
    fn go_foreign(&mut self) {
        let mut d = Digest::default();
        if let Read::Stream { key, .. } = self.state {
            let mut s = Stream::new(key);
            for _ in 0..self.words {
                d.feed(&s.next_word().to_le_bytes());
            }
        }
        self.state = Read::Foreign(d);
    }

    fn feed_digest(&mut self, bytes: &[u8]) {
        if let Read::Foreign(d) = &mut self.state {
            d.feed(bytes);
        }
    }

    /// The content of everything read.
    pub(crate) fn finish(mut self) -> Content {
        let len = self.len as u32;
        if self.len <= 8 {
            let mut w = match &self.state {
                Read::Stream { key, .. } => Stream::new(*key).peek().to_le_bytes(),
                _ => self.part,
            };
            w[self.len as usize..].fill(0);
            return Content {
                len,
                form: Form::Bytes,
                value: u64::from_le_bytes(w),
            };
        }
        if let Read::Stream { next, .. } = &self.state {
            let n = self.part_len;
            if self.part[..n] != next.peek().to_le_bytes()[..n] {
                let part = self.part;
                self.go_foreign();
                self.feed_digest(&part[..n]);
            }
        }
        match self.state {
            Read::Stream { key, .. } => Content {
                len,
                form: Form::Stream,
                value: key,
            },
            Read::Foreign(d) => d.finish(),
            Read::First => unreachable!("more than 8 bytes make a whole word"),
        }
    }
}

/// The content of bytes that are no generated stream: a 64-bit digest,
/// computed piece by piece (the same value as over the concatenation).
///
/// Eight lanes run over the 8-byte words (the last one padded with zeros;
/// word `i` goes to lane `i % 8`, so the lanes' multiplications overlap in
/// the processor). Each step of a lane is a bijection of the lane for a
/// given word and of the word for a given lane; the lanes are rotated,
/// folded by XOR and finalised by a bijection. So bytes of one length that
/// differ in a single word always differ in digest; other differences
/// collide with a probability of about 2^-64. It is not cryptographic: a
/// change computed against it can cancel; a provider's bug does not
/// compute one.
#[derive(Clone)]
struct Digest {
    lanes: [u64; LANES],
    /// Words absorbed so far (the next one goes to lane `words % LANES`).
    words: u64,
    /// A word not complete yet: its bytes so far.
    part: [u8; 8],
    part_len: usize,
    len: u64,
}

/// [`Digest`]'s lanes: one 8-byte word each, in turn.
const LANES: usize = 8;

impl Default for Digest {
    fn default() -> Self {
        Digest {
            lanes: [
                0x243f_6a88_85a3_08d3,
                0x1319_8a2e_0370_7344,
                0xa409_3822_299f_31d0,
                0x082e_fa98_ec4e_6c89,
                0x4528_21e6_38d0_1377,
                0xbe54_66cf_34e9_0c6c,
                0xc0ac_29b7_c97c_50dd,
                0x3f84_d5b5_b547_0917,
            ],
            words: 0,
            part: [0; 8],
            part_len: 0,
            len: 0,
        }
    }
}

impl Digest {
    /// One lane's step: a bijection of the lane for a given word and of the
    /// word for a given lane (XOR, then two multiply-xorshift rounds, each
    /// invertible), so that no fixed pattern of flipped bits in one word can
    /// be cancelled by a fixed pattern in the lane's next word: after the
    /// second multiplication the difference depends on the bytes.
    #[inline(always)]
    fn step(lane: u64, word: u64) -> u64 {
        const M1: u64 = 0x9e37_79b9_7f4a_7c15;
        const M2: u64 = 0xbf58_476d_1ce4_e5b9;
        let mut x = (lane ^ word).wrapping_mul(M1);
        x ^= x >> 32;
        x = x.wrapping_mul(M2);
        x ^ (x >> 29)
    }

    #[inline(always)]
    fn word(&mut self, w: u64) {
        let k = self.words as usize % LANES;
        self.lanes[k] = Self::step(self.lanes[k], w);
        self.words += 1;
    }

    /// A word for every lane at once (`words` a multiple of [`LANES`],
    /// nothing partial).
    #[inline(always)]
    fn block(&mut self, w: [u64; LANES]) {
        debug_assert!(self.words.is_multiple_of(LANES as u64) && self.part_len == 0);
        for (lane, w) in self.lanes.iter_mut().zip(w) {
            *lane = Self::step(*lane, w);
        }
        self.words += LANES as u64;
        self.len += 8 * LANES as u64;
    }

    /// Absorbs the next bytes.
    fn feed(&mut self, mut bytes: &[u8]) {
        let le = |c: &[u8]| u64::from_le_bytes(c.try_into().expect("8 bytes"));
        if self.part_len > 0 {
            let take = (8 - self.part_len).min(bytes.len());
            self.part[self.part_len..self.part_len + take].copy_from_slice(&bytes[..take]);
            self.part_len += take;
            self.len += take as u64;
            bytes = &bytes[take..];
            if self.part_len < 8 {
                return;
            }
            self.part_len = 0;
            self.word(u64::from_le_bytes(self.part));
        }
        // Whole words up to a lane boundary, then every lane at a time.
        let mut i = 0;
        while !self.words.is_multiple_of(LANES as u64) && i + 8 <= bytes.len() {
            self.word(le(&bytes[i..i + 8]));
            i += 8;
        }
        self.len += i as u64;
        let bytes = &bytes[i..];
        let mut blocks = bytes.chunks_exact(8 * LANES);
        for b in &mut blocks {
            let mut w = [0u64; LANES];
            for (c, w) in b.chunks_exact(8).zip(&mut w) {
                *w = le(c);
            }
            self.block(w);
        }
        let mut words = blocks.remainder().chunks_exact(8);
        for c in &mut words {
            self.word(le(c));
            self.len += 8;
        }
        let tail = words.remainder();
        self.part[..tail.len()].copy_from_slice(tail);
        self.part_len = tail.len();
        self.len += tail.len() as u64;
    }

    /// The content of everything fed (a last partial word padded with zeros).
    fn finish(mut self) -> Content {
        if self.part_len > 0 {
            self.part[self.part_len..].fill(0);
            self.word(u64::from_le_bytes(self.part));
        }
        fn fin(mut x: u64) -> u64 {
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            x ^ (x >> 33)
        }
        // The lanes, each rotated by its own amount, folded by XOR, then
        // one bijective finaliser: payloads whose lanes differ in one lane
        // only (one word) give different digests.
        let folded = (0..LANES).fold(0u64, |acc, k| acc ^ self.lanes[k].rotate_left(8 * k as u32));
        Content {
            len: self.len as u32,
            form: Form::Digest,
            value: fin(folded),
        }
    }
}

/// A transport ID by its number in [`Tids`].
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct TidNo(u32);

/// Transport IDs by number, given the first time an operation names one
/// and kept for the run. An operation ([`Op`]) carries the numbers, not
/// the 17-byte IDs, so that it is 8 bytes, built and copied in registers
/// (with the IDs inside, each one issued was built in pieces on the stack
/// and read back whole into its slot, a store-forwarding stall), and who
/// holds an ID is found by its number (`Traffic::owners_of`), with no
/// hashing per REACH.
#[derive(Default)]
pub struct Tids {
    ids: Vec<Tid>,
    numbers: HashMap<Tid, u32>,
}

impl Tids {
    /// `t`'s number (given now if it has none).
    pub fn number(&mut self, t: Tid) -> TidNo {
        let ids = &mut self.ids;
        TidNo(*self.numbers.entry(t).or_insert_with(|| {
            ids.push(t);
            (ids.len() - 1) as u32
        }))
    }
    /// `t`'s number, if it has one.
    pub fn find(&self, t: Tid) -> Option<TidNo> {
        self.numbers.get(&t).map(|&k| TidNo(k))
    }
    /// The ID numbered `k`.
    #[inline]
    pub fn get(&self, k: TidNo) -> Tid {
        self.ids[k.0 as usize]
    }
}

struct Ownership {
    tid: Tid,
    inst: u32,
    from: Nanos,
    to: Option<Nanos>,
}

/// A datagram's source and destination IDs and content: datagrams that
/// cannot be told apart share it.
type PendingKey = (Tid, Tid, Content);

/// Indicated buffers the platform still holds (provider completion routine given).
struct HeldIndicate {
    inst: u32,
    /// The chain's elements as they were when indicated: where each lies
    /// and what it held. DATA-3 reads them again at those places, never
    /// following a link the provider may have changed since (a chain on
    /// its stack, gone by then, would send the platform anywhere).
    elements: Vec<HeldElement>,
    /// What was indicated: the bytes are read again to check DATA-3.
    content: Content,
    local: Tid,
    remote: Tid,
    context: usize,
    routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
}

/// One element of a held chain: its address and its three fields, as
/// numbers (the world is shared between threads; raw pointers are not).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct HeldElement {
    at: usize,
    next: usize,
    size: u32,
    buffer: usize,
}

/// Application traffic and transport-ID ownership (the ground truth the
/// provider's answers are judged against).
pub struct Traffic {
    dgs: Vec<Datagram>,
    /// The payloads of datagrams whose SEND_BUFFERS has not been made yet,
    /// by datagram id, in id order (a new one goes at the back; one is
    /// taken usually near the front; no hashing).
    payloads: VecDeque<(u32, Vec<u8>)>,
    /// Per waiting datagram: the instances that could not reach its destination.
    skips: HashMap<u32, Vec<u32>>,
    /// Datagrams that have gone to SEND_BUFFERS (the next `send_order`).
    sends: u32,
    issued: BTreeSet<Tid>,
    /// The transport IDs operations name, by number.
    pub tids: Tids,
    owners: Vec<Ownership>,
    /// Per transport ID, by its number in `tids`: its entries in
    /// `owners`, in order.
    owners_of: Vec<Vec<u32>>,
    /// ADDs that failed: (ID, instance, call start, end). From its call the
    /// ID was the instance's (decision `add-when-asked`), so TID-6 counts
    /// that span in its window (`reach-grace`); nothing else reads it.
    asked: Vec<(TidNo, u32, Nanos, Nanos)>,
    /// Datagrams sent and not delivered yet, grouped by [`PendingKey`],
    /// each group in `send_order`.
    pending: HashMap<PendingKey, (u32, VecDeque<u32>)>,
    /// Every datagram by content, in id order: built when a DATA-5 message
    /// first needs it (an indication that matches nothing pending), then
    /// kept up to date.
    by_content: Option<HashMap<Content, Vec<u32>>>,
    held: HashMap<u32, HeldIndicate>,
    next_held: u32,
    rng: Rng,
    delivered: u32,
    /// Per host: the last time a session there ended, went dormant or lost
    /// an ID (what STATE-6 asks of a peer's host).
    pub disrupted: HashMap<u8, Nanos>,
    /// Per instance (by index): the last time its session ended, it went
    /// dormant or a TRANSITION_DORMANT of it was called (what excuses any
    /// loss through it at DATA-5: decision `quiet-when-asked`).
    quiet: Vec<Option<Nanos>>,
    /// Per instance and ID: the last time a REMOVE of the ID at the
    /// instance was called or finished (what excuses, at DATA-5, a loss
    /// of a datagram from or to that ID there only).
    removed: HashMap<(u32, TidNo), Nanos>,
    /// Per source host: its datagrams in state `Waiting`, in id order
    /// (ids only grow, so a new one goes at the back; one leaves wherever
    /// it is, usually near the front).
    waiting: Vec<VecDeque<u32>>,
    /// A list of waiting ids lent to [`World::pump_datagrams`] (kept for
    /// its allocation).
    scratch: Vec<u32>,
    /// Per instance (by index): how many `Waiting` datagrams are routed
    /// through it.
    waiting_via: Vec<u32>,
    /// Instances for which `waiting_on` changed (the platform re-examines
    /// them, unless their host listens: see `World::mark_touched`).
    pub touched: Vec<u32>,
    /// Per source host: what its last walk of waiting datagrams left
    /// known (see `World::pump_datagrams`); `None` once a waiting
    /// datagram of the host is rerouted, given a skip or leaves.
    walked: Vec<Option<Walked>>,
    /// Waiting datagrams the walks examined so far (a test hook).
    examined: u64,
    /// Every walk examines every waiting datagram (a test hook: the
    /// walk as it was before `Walked`).
    walk_all: bool,
}

/// What a walk of a host's waiting datagrams that changed nothing leaves
/// known: with the host's sessions at version `sessions` (the sum that
/// `World::sessions_version` returns), examining any of its waiting
/// datagrams numbered below `next` changes nothing.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct Walked {
    sessions: u64,
    next: u32,
}

impl Drop for Traffic {
    fn drop(&mut self) {
        for (_, b) in self.payloads.drain(..) {
            crate::net::give_back(b);
        }
    }
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            dgs: Vec::new(),
            payloads: VecDeque::new(),
            skips: HashMap::default(),
            sends: 0,
            issued: BTreeSet::new(),
            tids: Tids::default(),
            owners: Vec::new(),
            owners_of: Vec::new(),
            asked: Vec::new(),
            pending: HashMap::default(),
            by_content: None,
            held: HashMap::default(),
            next_held: 0,
            rng: Rng::new(0),
            delivered: 0,
            disrupted: HashMap::default(),
            quiet: Vec::new(),
            removed: HashMap::default(),
            waiting: Vec::new(),
            scratch: Vec::new(),
            waiting_via: Vec::new(),
            touched: Vec::new(),
            walked: Vec::new(),
            examined: 0,
            walk_all: false,
        }
    }
}

/// What the world knows about an ID when a REACH answers.
pub struct Truth {
    /// Some other instance held it at some time in the window.
    pub possibly_owned: bool,
    /// Two instances hold it now.
    pub ambiguous: bool,
    /// An active peer has held it for the whole window, and no other
    /// instance holds it now.
    pub surely_reachable: bool,
}

impl Traffic {
    /// Instance `inst` of host `host` was disrupted at `now`: with `id`, a
    /// REMOVE of that ID there was called or finished; without, its
    /// session ended, it went dormant or a TRANSITION_DORMANT was called.
    pub fn disrupt(&mut self, host: u8, inst: u32, id: Option<TidNo>, now: Nanos) {
        self.disrupted.insert(host, now);
        match id {
            Some(t) => {
                self.removed.insert((inst, t), now);
            }
            None => {
                let i = inst as usize;
                if self.quiet.len() <= i {
                    self.quiet.resize(i + 1, None);
                }
                self.quiet[i] = Some(now);
            }
        }
    }

    /// Whether a loss through instance `inst` of a datagram from or to
    /// `id` is excused by a disruption at or after `since`: the instance
    /// went quiet (its session ended, it went or was asked to go dormant),
    /// or a REMOVE of `id` itself there was called or finished (decision
    /// `quiet-when-asked`). A REMOVE of another of its IDs is no excuse.
    fn excused_at(&self, inst: u32, id: Option<TidNo>, since: Nanos) -> bool {
        let quiet = self
            .quiet
            .get(inst as usize)
            .copied()
            .flatten()
            .is_some_and(|t| t >= since);
        quiet || id.is_some_and(|t| self.removed.get(&(inst, t)).is_some_and(|&r| r >= since))
    }

    pub fn seed(&mut self, seed: u64) {
        self.rng = Rng::stream(seed, "apps");
    }
    pub fn sent(&self) -> u32 {
        self.dgs.len() as u32
    }
    pub fn delivered(&self) -> u32 {
        self.delivered
    }
    /// The platform made this ID (TID-1, TID-2).
    pub fn issue(&mut self, t: Tid) {
        self.issued.insert(t);
    }
    /// The ownership records of the ID numbered `t`, oldest first.
    fn owners_of(&self, t: TidNo) -> impl Iterator<Item = &Ownership> {
        self.owners_of
            .get(t.0 as usize)
            .into_iter()
            .flatten()
            .map(|&k| &self.owners[k as usize])
    }
    pub fn own(&mut self, t: TidNo, inst: u32, now: Nanos) {
        let k = t.0 as usize;
        if self.owners_of.len() <= k {
            self.owners_of.resize_with(k + 1, Vec::new);
        }
        self.owners_of[k].push(self.owners.len() as u32);
        self.owners.push(Ownership {
            tid: self.tids.get(t),
            inst,
            from: now,
            to: None,
        });
    }
    /// An ADD of `t` by `inst`, called at `from`, failed at `to`.
    pub fn add_failed(&mut self, t: TidNo, inst: u32, from: Nanos, to: Nanos) {
        self.asked.push((t, inst, from, to));
    }
    /// Whether an instance other than `asker` had an ADD of `t` in flight
    /// at some time from `start` on that then failed.
    fn asked_since(&self, t: TidNo, asker: u32, start: Nanos) -> bool {
        self.asked
            .iter()
            .any(|&(k, i, _, to)| k == t && i != asker && to >= start)
    }
    pub fn disown(&mut self, t: Tid, inst: u32, now: Nanos) {
        let Some(t) = self.tids.find(t) else {
            return; // never owned
        };
        for &k in self.owners_of.get(t.0 as usize).into_iter().flatten() {
            let o = &mut self.owners[k as usize];
            if o.inst == inst && o.to.is_none() {
                o.to = Some(now);
            }
        }
    }
    /// An instance other than `inst` holding `t` now, of those `counts`.
    pub fn owner_other_than(
        &self,
        t: TidNo,
        inst: u32,
        counts: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        self.owners_of(t)
            .find(|o| o.inst != inst && o.to.is_none() && counts(o.inst))
            .map(|o| o.inst)
    }
    /// A transport ID of `family` (v4: true) that an instance other than
    /// `inst` holds now (for the dispatch benchmark).
    pub fn held_by_other(&self, inst: u32, v4: bool) -> Option<Tid> {
        self.owners
            .iter()
            .find(|o| o.inst != inst && o.to.is_none() && o.tid.is_v4() == v4)
            .map(|o| o.tid)
    }
    /// The payload of datagram `d` and its content, for its SEND_BUFFERS
    /// (made once). Inlined with the common case of `remove_payload`: the
    /// pair returned through memory was written in pieces and read back at
    /// once in wider ones, a store-forwarding stall on every SEND_BUFFERS.
    #[inline]
    pub fn take_payload(&mut self, d: u32) -> (Vec<u8>, Content) {
        let p = self
            .remove_payload(d)
            .expect("a datagram's payload is kept until its one SEND_BUFFERS");
        (p, self.dgs[d as usize].content())
    }
    /// Datagram `d`'s payload, if it is still kept, taken out.
    #[inline]
    fn remove_payload(&mut self, d: u32) -> Option<Vec<u8>> {
        // Usually the oldest (datagrams are sent in the order they came).
        if self.payloads.front().is_some_and(|p| p.0 == d) {
            return self.payloads.pop_front().map(|p| p.1);
        }
        let k = self.payloads.binary_search_by_key(&d, |p| p.0).ok()?;
        self.payloads.remove(k).map(|p| p.1)
    }
    /// Datagram `d`'s source and destination IDs, once it goes to
    /// SEND_BUFFERS (the IDs its call names).
    #[inline]
    pub fn ends_of(&self, d: u32) -> (Tid, Tid) {
        let dg = &self.dgs[d as usize];
        (dg.src.expect("set when it goes to SEND_BUFFERS"), dg.dst)
    }
    pub fn sending(&mut self, d: u32, _serial: u32) {
        self.set_state(d, State::Sending);
    }
    /// Whether a datagram waits for instance `inst`.
    pub fn waiting_on(&self, inst: u32) -> bool {
        self.waiting_via.get(inst as usize).is_some_and(|&n| n > 0)
    }
    /// Host `host`'s waiting datagrams, by id.
    fn waiting_of(&self, host: u8) -> Vec<u32> {
        let mut v = Vec::new();
        self.waiting_into(host, 0, &mut v);
        v
    }
    /// Appends host `host`'s waiting datagrams numbered `from` or more,
    /// by id, to `out`.
    fn waiting_into(&self, host: u8, from: u32, out: &mut Vec<u32>) {
        if let Some(w) = self.waiting.get(host as usize) {
            let k = if from == 0 {
                0
            } else {
                w.partition_point(|&d| d < from)
            };
            out.extend(w.range(k..).copied());
        }
    }
    /// Where a walk of host `host`'s waiting datagrams starts, its
    /// sessions being at version `sessions`: past the datagrams the last
    /// walk left known to change nothing, if that still holds. The walk
    /// is recorded as begun (`Walked` at that start), so that any change
    /// to a waiting datagram of the host meanwhile clears it.
    fn begin_walk(&mut self, host: u8, sessions: u64) -> u32 {
        let h = host as usize;
        if self.walked.len() <= h {
            self.walked.resize(h + 1, None);
        }
        let from = match self.walked[h] {
            Some(w) if w.sessions == sessions && !self.walk_all => w.next,
            _ => 0,
        };
        self.walked[h] = Some(Walked {
            sessions,
            next: from,
        });
        from
    }
    /// The walk begun at `begin_walk` with the host's sessions at version
    /// `sessions` ended with them at `now`, having examined datagrams up
    /// to `last`: if nothing changed meanwhile, everything up to `last`
    /// is known to change nothing; otherwise nothing is.
    fn end_walk(&mut self, host: u8, sessions: u64, now: u64, last: Option<u32>) {
        let w = &mut self.walked[host as usize];
        match w {
            Some(k) if sessions == now && k.sessions == sessions => {
                if let Some(last) = last {
                    k.next = k.next.max(last + 1);
                }
            }
            _ => *w = None,
        }
    }
    /// Host `host`'s waiting datagrams changed (one rerouted, given a
    /// skip, or gone): what its last walk left known no longer holds.
    fn forget_walk(&mut self, host: u8) {
        if let Some(w) = self.walked.get_mut(host as usize) {
            *w = None;
        }
    }
    /// How many waiting datagrams the walks examined so far.
    pub(super) fn examined(&self) -> u64 {
        self.examined
    }
    /// Makes every walk examine every waiting datagram (`on`), as the
    /// walk did before `Walked`, or not.
    pub(super) fn set_walk_all(&mut self, on: bool) {
        self.walk_all = on;
    }
    /// Whether host `host` has no waiting datagram.
    pub(super) fn none_waiting(&self, host: u8) -> bool {
        self.waiting
            .get(host as usize)
            .is_none_or(VecDeque::is_empty)
    }
    fn count_via(&mut self, via: Option<u32>, up: bool) {
        if let Some(i) = via {
            if self.waiting_via.len() <= i as usize {
                self.waiting_via.resize(i as usize + 1, 0);
            }
            let n = &mut self.waiting_via[i as usize];
            if up {
                *n += 1;
            } else {
                *n -= 1;
            }
            // Only `waiting_on(i)` is read for the instance, and it changes
            // only when the count leaves or reaches zero.
            if *n == u32::from(up) {
                self.touched.push(i);
            }
        }
    }
    /// A new datagram (its id is the number of datagrams before it).
    fn push(&mut self, dg: Datagram, payload: Vec<u8>) -> u32 {
        let id = self.dgs.len() as u32;
        if let Some(index) = &mut self.by_content {
            index.entry(dg.content()).or_default().push(id);
        }
        self.dgs.push(dg);
        self.payloads.push_back((id, payload));
        id
    }
    /// A new datagram, waiting.
    fn push_waiting(&mut self, dg: Datagram, payload: Vec<u8>) {
        let (host, via) = (dg.src_host as usize, dg.via);
        let id = self.push(dg, payload);
        if self.waiting.len() <= host {
            self.waiting.resize_with(host + 1, VecDeque::new);
        }
        self.waiting[host].push_back(id);
        self.count_via(via, true);
    }
    /// Routes datagram `d` through `via`.
    fn set_via(&mut self, d: u32, via: Option<u32>) {
        let dg = &mut self.dgs[d as usize];
        let (old, waiting, host) = (dg.via, dg.state == State::Waiting, dg.src_host);
        dg.via = via;
        if waiting && old != via {
            self.forget_walk(host);
            self.count_via(old, false);
            self.count_via(via, true);
        }
    }
    /// Moves datagram `d` to `state`.
    fn set_state(&mut self, d: u32, state: State) {
        let dg = &mut self.dgs[d as usize];
        let (was, via, host) = (dg.state, dg.via, dg.src_host);
        dg.state = state;
        if was == State::Waiting && state != State::Waiting {
            self.forget_walk(host);
            let w = &mut self.waiting[host as usize];
            if let Ok(k) = w.binary_search(&d) {
                w.remove(k);
            }
            if !self.skips.is_empty() {
                self.skips.remove(&d);
            }
            self.count_via(via, false);
        }
        if matches!(state, State::Failed | State::Dropped) {
            if let Some(b) = self.remove_payload(d) {
                crate::net::give_back(b);
            }
        }
    }
    /// The instances that could not reach datagram `d`'s destination.
    fn skip_of(&self, d: u32) -> &[u32] {
        self.skips.get(&d).map_or(&[], Vec::as_slice)
    }
    /// Every datagram with this content, in id order (the index is built
    /// on first use).
    fn with_content(&mut self, c: Content) -> &[u32] {
        let dgs = &self.dgs;
        let index = self.by_content.get_or_insert_with(|| {
            let mut index: HashMap<Content, Vec<u32>> = HashMap::default();
            for (d, dg) in dgs.iter().enumerate() {
                index.entry(dg.content()).or_default().push(d as u32);
            }
            index
        });
        index.get(&c).map_or(&[], Vec::as_slice)
    }
    /// REACH of `t` by `inst` (on `host`) failed: its datagrams to `t` look
    /// for another route.
    pub fn reach_failed(&mut self, host: u8, inst: u32, t: Tid) {
        for d in self.waiting_of(host) {
            let dg = &self.dgs[d as usize];
            if dg.via == Some(inst) && dg.dst == t {
                self.forget_walk(host);
                self.skips.entry(d).or_default().push(inst);
                self.set_via(d, None);
            }
        }
    }
}

impl World {
    /// An application on `from` sends to `to`'s first address of `family`
    /// (`newest`: its last one of `family`).
    pub fn app_send(&mut self, from: u8, to: u8, family: Family, bytes: u32, newest: bool) {
        if self.traffic.dgs.is_empty() {
            let seed = self.cfg.seed;
            self.traffic.seed(seed);
        }
        let v4 = family == Family::V4;
        let iface = self.hosts[to as usize]
            .interfaces
            .iter()
            .find(|i| i.owner.is_some());
        let dst = iface.and_then(|i| {
            if newest {
                i.addrs.iter().rev().find(|a| a.is_v4() == v4).copied()
            } else {
                i.addrs.iter().find(|a| a.is_v4() == v4).copied()
            }
        });
        let Some(dst) = dst else {
            let to_name = &self.hosts[to as usize].name;
            let text = if iface.is_some() {
                // Its interface is down (or has only the other family).
                format!(
                    "application send: {to_name}'s interface has no {} address",
                    family.name()
                )
            } else {
                format!("application send: {to_name} has no registered interface")
            };
            self.record(from, 0, What::Note { text });
            return;
        };
        let len = bytes.min(65_507) as usize;
        let mut payload = crate::net::spare_buffer(len);
        let content = Content::fill(&mut self.traffic.rng, &mut payload, len);
        let id = self.traffic.dgs.len() as u32;
        self.record_hot(
            from,
            0,
            What::AppSend {
                id,
                to: dst,
                bytes: payload.len() as u32,
            },
        );
        let via = self.first_route(from, &[]);
        let at_once = via.and_then(|i| self.sends_at_once(from, i, dst));
        let dg = Datagram {
            src_host: from,
            dst,
            len: content.len,
            form: content.form,
            value: content.value,
            sent_at: self.now,
            state: if at_once.is_some() {
                State::Sending
            } else {
                State::Waiting
            },
            via,
            src: None,
            delivered_in: 0,
            send_order: NOT_SENT,
        };
        match at_once {
            Some((via, local)) => {
                let d = self.traffic.push(dg, payload);
                self.start_send(d, via, local, dst);
            }
            None => self.traffic.push_waiting(dg, payload),
        }
    }

    /// Whether a new datagram of host `host` to `dst`, routed through
    /// `via`, goes to SEND_BUFFERS from `local` at once: the host listens,
    /// nothing on it is marked, touched or waiting, and `via` would send it
    /// now (`Session::sends_now_from`, the pump's own test). Then the
    /// `pump_host` that follows the send would do exactly this and nothing
    /// else (the datagram waiting would touch `via`, which is not marked on
    /// a listening host, and no instance is examined), so the datagram
    /// skips the waiting list, its count and the pump's passes.
    fn sends_at_once(&self, host: u8, via: u32, dst: Tid) -> Option<(u32, Tid)> {
        let h = &self.hosts[host as usize];
        if !h.listening
            || !h.dirty.is_empty()
            || !self.traffic.touched.is_empty()
            || !self.traffic.none_waiting(host)
        {
            return None;
        }
        let local = self.insts[via as usize].session()?.sends_now_from(dst)?;
        Some((via, local))
    }

    /// Datagram `d`, now `Sending`, goes to SEND_BUFFERS on `via` from
    /// `local` to `dst`: DATA-5 expects it from now on.
    fn start_send(&mut self, d: u32, via: u32, local: Tid, dst: Tid) {
        let t = &mut self.traffic;
        let dg = &mut t.dgs[d as usize];
        dg.src = Some(local);
        dg.send_order = t.sends;
        t.sends += 1;
        let key = (local, dst, dg.content());
        match t.pending.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().1.push_back(d),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((d, VecDeque::new()));
            }
        }
        if let Some(s) = self.insts[via as usize].session_mut() {
            s.sending_from(local);
        }
        self.issue(via, Op::Send { datagram: d });
    }

    fn first_route(&self, host: u8, skip: &[u32]) -> Option<u32> {
        self.hosts[host as usize].insts.iter().copied().find(|&i| {
            !skip.contains(&i) && self.insts[i as usize].session().is_some_and(|s| s.live())
        })
    }

    fn drop_datagram(&mut self, d: u32, why: &str) {
        self.traffic.set_state(d, State::Dropped);
        let host = self.traffic.dgs[d as usize].src_host;
        self.record(
            host,
            0,
            What::AppDrop {
                id: d,
                why: why.to_string(),
            },
        );
    }

    /// The version of host `host`'s sessions: the number of its instances
    /// plus the sum of their `Instance::version`s. Each term only grows
    /// (instances are only ever added to a host), so the sum is the same
    /// only if no session of the host changed and no instance was added.
    fn sessions_version(&self, host: u8) -> u64 {
        let insts = &self.hosts[host as usize].insts;
        insts.iter().fold(insts.len() as u64, |v, &i| {
            v.wrapping_add(self.insts[i as usize].version())
        })
    }

    /// Moves the host's waiting datagrams forward (routing decision).
    ///
    /// Examining a waiting datagram reads only its own destination, route
    /// and skips, the host's instances and their sessions (never the time,
    /// the trace or another datagram). When it changes nothing (the
    /// datagram waits for a transition, or for a REACH under way), doing it
    /// again with all of that unchanged changes nothing either. So a walk
    /// that changed nothing leaves known (`Walked`) that the datagrams it
    /// examined, and those an earlier such walk left known, need no second
    /// look while the host's sessions keep their version (`Instance::version`
    /// counts every change of a session) and no waiting datagram of the
    /// host is rerouted, given a skip or leaves (each clears it). The next
    /// walk then starts after them: the old walk would have examined them
    /// first, in the same state, and changed nothing, so the new datagrams
    /// meet the same state either way. A burst of datagrams at one instant
    /// towards an instance that cannot take them yet costs one look per
    /// datagram, not one per datagram and per send.
    pub fn pump_datagrams(&mut self, host: u8) {
        if self.traffic.none_waiting(host) {
            return;
        }
        let sessions = self.sessions_version(host);
        let from = self.traffic.begin_walk(host, sessions);
        let mut waiting = std::mem::take(&mut self.traffic.scratch);
        self.traffic.waiting_into(host, from, &mut waiting);
        self.traffic.examined += waiting.len() as u64;
        for &d in &waiting {
            let dg = &self.traffic.dgs[d as usize];
            let dst = dg.dst;
            let via = match dg
                .via
                .filter(|&i| self.insts[i as usize].session().is_some_and(|s| s.live()))
            {
                Some(i) => i,
                None => match self.first_route(host, self.traffic.skip_of(d)) {
                    Some(i) => {
                        self.traffic.set_via(d, Some(i));
                        i
                    }
                    None => {
                        let why = if self.traffic.skip_of(d).is_empty() {
                            "no CP interface with a session"
                        } else {
                            "no instance could reach the destination"
                        };
                        self.drop_datagram(d, why);
                        continue;
                    }
                },
            };
            let s = self.insts[via as usize].session().expect("live");
            if let Some(local) = s.sends_now_from(dst) {
                self.traffic.set_state(d, State::Sending);
                self.start_send(d, via, local, dst);
                continue;
            }
            if s.machine().activation != Activation::Active {
                // Not active: the machine decides (a dormant instance is
                // activated first, STATE-5; during a transition the
                // datagram waits, STATE-4).
                let effects = self.insts[via as usize].step_session(Input::DatagramWaiting);
                for e in effects.expect("live") {
                    self.apply(via, e);
                }
                continue;
            }
            // Never from an ID whose REMOVE is under way: the datagram
            // waits for a settled ID of its family (see `source_for`).
            if s.source_for(dst).is_none() {
                if !s.changing_family_of(dst) {
                    self.drop_datagram(d, "no local transport ID of that family");
                }
                continue;
            }
            // Active with a source, so not yet allowed to send to `dst`.
            if !s.reaching(dst) {
                let dst = self.traffic.tids.number(dst);
                self.issue(via, Op::Reach(dst));
            }
        }
        let last = waiting.last().copied();
        waiting.clear();
        self.traffic.scratch = waiting;
        let now = self.sessions_version(host);
        self.traffic.end_walk(host, sessions, now, last);
    }

    /// Datagrams waiting on an instance whose session ended look for another route.
    pub fn reroute_from(&mut self, inst: u32) {
        let now = self.now;
        let host = self.insts[inst as usize].host();
        self.traffic.disrupt(host, inst, None, now);
        for d in self.traffic.waiting_of(host) {
            if self.traffic.dgs[d as usize].via == Some(inst) {
                self.traffic.set_via(d, None);
            }
        }
    }

    /// SEND_BUFFERS of datagram `d` finished.
    pub fn send_result_for(&mut self, d: u32, ok: bool) {
        self.traffic.send_result(d, ok, self.now);
        if !ok {
            let host = self.traffic.dgs[d as usize].src_host;
            self.record(
                host,
                0,
                What::AppDrop {
                    id: d,
                    why: "SEND_BUFFERS failed".into(),
                },
            );
        }
    }

    /// Whether a REACH or SEND of host `host` started at `started` and
    /// failed breaks STATE-6: its peer was surely reachable (`truth`), the
    /// network was not disturbed meanwhile, and the asker's provider was
    /// not inside its `stop` (decision `quiet-when-asked`).
    pub fn failure_breaks_state_6(&self, truth: &Truth, host: u8, started: Nanos) -> bool {
        truth.surely_reachable && !self.net.disturbed_since(started) && !self.stopping(host)
    }

    /// Whether an instance other than `asker` has an ADD of `t` in flight.
    pub fn adding_elsewhere(&self, t: Tid, asker: u32) -> bool {
        self.insts
            .iter()
            .enumerate()
            .any(|(i, x)| i as u32 != asker && x.session().is_some_and(|s| s.adding(t)))
    }

    /// The ground truth about `t` for a REACH (or SEND) by `asker`.
    /// The window runs from `reach_grace` before the call started to its end.
    /// `failed`: the call failed, so `surely_reachable` is wanted (STATE-6);
    /// for a call that succeeded it is not worked out (left false).
    ///
    /// A call that starts less than `reach_grace` after time 0 has a window
    /// cut short at 0: an ID held "since 0" was then held for less than the
    /// grace (perhaps since an ADD at the very instant the call started), so
    /// nothing is surely reachable then (DECISIONS: `reach-grace`).
    pub fn reachability(&self, t: TidNo, asker: u32, call_start: Nanos, failed: bool) -> Truth {
        let grace = Nanos::from_millis(self.cfg.reach_grace_ms);
        let start = call_start.saturating_sub(grace);
        let whole_window = call_start >= grace;
        let others = self.traffic.owners_of(t).filter(|o| o.inst != asker);
        let id = self.traffic.tids.get(t);
        let mut possibly = false;
        // The first instance holding it now, and whether another does too.
        let (mut holder, mut ambiguous) = (None, false);
        let mut surely = false;
        for o in others {
            if o.to.is_none_or(|to| to >= start) {
                possibly = true;
            }
            // One with a REMOVE of `t` in flight is giving it up: it makes
            // no ambiguity (DECISIONS).
            let leaving = self.insts[o.inst as usize]
                .session()
                .is_some_and(|s| s.changing_id(id));
            if o.to.is_none() && !leaving {
                match holder {
                    None => holder = Some(o.inst),
                    Some(h) if h != o.inst => ambiguous = true,
                    Some(_) => {}
                }
                if !failed {
                    continue;
                }
                let s = self.insts[o.inst as usize].session();
                // Active for the whole window, not only at its end, and not
                // asked meanwhile to go quiet or to give the ID up (a
                // TRANSITION_DORMANT or REMOVE in flight: DECISIONS).
                // (`leaving` is false here: the ID is not being given up.)
                let active = s.is_some_and(|s| {
                    s.live() && s.active() && s.active_since() <= start && !s.quiescing()
                });
                let host = self.insts[o.inst as usize].host();
                let calm = self.traffic.disrupted.get(&host).is_none_or(|&d| d < start);
                if whole_window && o.from <= start && active && calm {
                    surely = true;
                }
            }
        }
        // An ADD that was in flight within the window and then failed made
        // the ID the instance's meanwhile (decision `add-when-asked`).
        possibly = possibly || self.traffic.asked_since(t, asker, start);
        // The asker holds it too (a duplicate its ADD was granted while the
        // holder could not be heard, decision `duplicates-unheard`): the ID
        // names the asker as well as the peer.
        let asker_holds = failed
            && self
                .traffic
                .owners_of(t)
                .any(|o| o.inst == asker && o.to.is_none());
        Truth {
            possibly_owned: possibly,
            ambiguous,
            // An ID two instances hold is not reachable unambiguously: a
            // REACH that succeeded would be TID-6, so failing it is right
            // (decision `ambiguous-not-reachable`); nor is one the asker
            // holds itself.
            surely_reachable: surely && !ambiguous && !asker_holds,
        }
    }

    /// DATA-5's loss check at the end of a run: every datagram whose SEND
    /// succeeded arrived, unless something excuses its loss.
    pub fn check_losses(&mut self) {
        let dgs = &self.traffic.dgs;
        let lost: Vec<u32> = (0..dgs.len() as u32)
            .filter(|&d| {
                let dg = &dgs[d as usize];
                dg.state == State::Sent && dg.delivered_in == 0
            })
            .collect();
        if lost.is_empty() {
            return;
        }
        // Identical datagrams on the same pair cannot be told apart: each
        // lost one is judged from the earliest of them, and by every
        // instance that was asked to send one of them (one pass over all).
        type Same = (Option<Tid>, Tid, Content);
        let same = |dg: &Datagram| -> Same { (dg.src, dg.dst, dg.content()) };
        let mut earliest: HashMap<Same, (Nanos, Vec<u32>)> = lost
            .iter()
            .map(|&d| (same(&dgs[d as usize]), (Nanos::MAX, Vec::new())))
            .collect();
        // A delivery is credited when it happens, to a datagram whose SEND
        // is under way first; if that SEND then fails, the bytes may have
        // been those of an identical datagram sent with S_OK. Each such
        // delivery accounts for one lost identical datagram (the receiving
        // application got as many copies as SENDs succeeded).
        let mut credited_to_failed: HashMap<Same, u32> = HashMap::default();
        for dg in dgs {
            if let Some((t, vias)) = earliest.get_mut(&same(dg)) {
                *t = (*t).min(dg.sent_at);
                if let Some(v) = dg.via.filter(|v| !vias.contains(v)) {
                    vias.push(v);
                }
                if dg.state == State::Failed && dg.delivered_in != 0 {
                    *credited_to_failed.entry(same(dg)).or_default() += 1;
                }
            }
        }
        for d in lost {
            let dg = &self.traffic.dgs[d as usize];
            if let Some(n) = credited_to_failed.get_mut(&same(dg)).filter(|n| **n > 0) {
                *n -= 1;
                continue;
            }
            let (sent_at, vias) = &earliest[&same(dg)];
            let sent_at = *sent_at;
            // Every instance that held the destination ID (a duplicate
            // address has more than one): the datagram may have gone to
            // any. Only that instance's going quiet, or a REMOVE of the
            // destination ID there, excuses the loss: not a disruption of
            // another instance of its host, nor a REMOVE of another ID
            // (decision `quiet-when-asked`).
            let mut no_dst = true;
            let mut dst_disrupted = false;
            let dst = self.traffic.tids.find(dg.dst);
            if let Some(t) = dst {
                for o in self.traffic.owners_of(t) {
                    no_dst = false;
                    dst_disrupted |= self.traffic.excused_at(o.inst, Some(t), sent_at);
                }
            }
            let net_excuse = self.net.last_drop.is_some_and(|t| t >= sent_at)
                || self.net.last_partition.is_some_and(|t| t >= sent_at)
                || self.net.is_partitioned();
            // At the sender, likewise: the instance that was asked to SEND
            // it went quiet, or a REMOVE of its source ID there.
            let src = dg.src.and_then(|s| self.traffic.tids.find(s));
            let src_disrupted = vias
                .iter()
                .any(|&v| self.traffic.excused_at(v, src, sent_at));
            let host_excuse = src_disrupted || no_dst || dst_disrupted;
            if net_excuse || host_excuse {
                continue;
            }
            let (src, dst, len, host) = (dg.src, dg.dst, dg.len, dg.src_host);
            let via = dg.via.map(|i| self.insts[i as usize].n()).unwrap_or(0);
            let from = src.map(|s| s.to_string()).unwrap_or_default();
            self.violate(
                id::DATA_5,
                host,
                via,
                Some("SEND_BUFFERS"),
                format!("datagram {d} ({len} bytes, {from} -> {dst}) was sent with S_OK but never arrived, on a network that dropped nothing"),
            );
        }
    }

    /// The receiving side: a payload of content `data` indicated by `inst`
    /// from `remote` to `local`.
    fn deliver(&mut self, inst: u32, local: Tid, remote: Tid, data: Content) {
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        // Credit a datagram whose SEND is under way or succeeded first; one
        // whose SEND failed may still have been carried. Candidates are the
        // pair's undelivered datagrams with this content, in send order.
        let key = (remote, local, data);
        let t = &mut self.traffic;
        // One lookup (the key is hashed once).
        let found = match t.pending.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let dgs = &t.dgs;
                let sending =
                    |d: u32| matches!(dgs[d as usize].state, State::Sending | State::Sent);
                let (first, more) = e.get_mut();
                let k = std::iter::once(*first)
                    .chain(more.iter().copied())
                    .position(sending)
                    .unwrap_or(0);
                let d = if k == 0 {
                    let d = *first;
                    match more.pop_front() {
                        Some(next) => *first = next,
                        None => {
                            e.remove();
                        }
                    }
                    d
                } else {
                    more.remove(k - 1).expect("in the group")
                };
                Some(d)
            }
            std::collections::hash_map::Entry::Vacant(_) => None,
        };
        if let Some(d) = found {
            // A provider that indicates has been started (`starts` ≥ 1).
            self.traffic.dgs[d as usize].delivered_in = self.hosts[host as usize].starts.max(1);
            self.traffic.delivered += 1;
            if self.hosts[host as usize].listening {
                self.record_hot(
                    host,
                    n,
                    What::AppReceive {
                        id: d,
                        from: remote,
                        to: local,
                        bytes: data.len,
                    },
                );
            } else {
                self.record(
                    host,
                    n,
                    What::Note {
                        text: format!("datagram {d} arrived; no application listens"),
                    },
                );
            }
            return;
        }
        // Nothing undelivered matches: say what it was (the slow path).
        let same = self.traffic.with_content(data).to_vec();
        let dgs = &self.traffic.dgs;
        // The first of the pair's datagrams with it, in send order.
        let again = same
            .iter()
            .copied()
            .filter(|&d| {
                let dg = &dgs[d as usize];
                dg.src == Some(remote) && dg.dst == local && dg.send_order != NOT_SENT
            })
            .min_by_key(|&d| dgs[d as usize].send_order);
        // Indicated before this host's provider was last started: the
        // provider that indicated it is gone with all it knew, and the one
        // now running cannot tell a late copy from new data (decision
        // `duplicate-across-restart`).
        let starts = self.hosts[host as usize].starts;
        if let Some(d) = again.filter(|&d| {
            let first = dgs[d as usize].delivered_in;
            first != 0 && first != starts
        }) {
            // Once: a further copy in this start is judged.
            self.traffic.dgs[d as usize].delivered_in = starts;
            let text = format!(
                "datagram {d} ({} bytes, {remote} -> {local}) indicated again after {}'s provider restarted: not judged (decision `duplicate-across-restart`)",
                data.len, self.hosts[host as usize].name
            );
            self.record(host, n, What::Note { text });
            return;
        }
        let msg = if let Some(d) = again {
            format!(
                "datagram {d} ({} bytes, {remote} -> {local}) was indicated a second time",
                data.len
            )
        } else if let Some(&d) = same.first().filter(|_| data.len > 0) {
            let dg = &dgs[d as usize];
            let src = dg.src.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
            format!(
                "datagram {d} ({src} -> {}) was indicated as {remote} -> {local}",
                dg.dst
            )
        } else {
            format!("{} bytes from {remote} to {local} match nothing any application sent (corrupted or made up)", data.len)
        };
        self.violate(
            id::DATA_5,
            host,
            n,
            Some("CPNatfwtIndicateReceivedBuffers"),
            msg,
        );
    }

    /// CPNatfwtIndicateReceivedBuffers after the handle was resolved.
    ///
    /// # Safety
    /// The pointers are the provider's; each is checked before it is read.
    pub(crate) unsafe fn indicate(
        &mut self,
        inst: u32,
        local: *mut CPNATFWT_TRANSPORT_ID,
        remote: *mut CPNATFWT_TRANSPORT_ID,
        chain: *mut CPNATFWT_BUFFER,
        context: *mut c_void,
        routine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
    ) -> i32 {
        let f = crate::trace::PlatformFn::CPNatfwtIndicateReceivedBuffers;
        let (host, n) = (
            self.insts[inst as usize].host(),
            self.insts[inst as usize].n(),
        );
        let name = f.name();
        // The function's answer, recorded.
        let answer = |w: &mut World, hr: i32, detail: Option<&'static str>| {
            w.record(
                host,
                n,
                What::Function {
                    f,
                    hr,
                    detail: detail.map(Into::into),
                },
            );
            hr
        };
        let reject = |w: &mut World, rule: crate::rules::RuleId, hr: i32, msg: String| {
            w.violate(rule, host, n, Some(name), msg);
            answer(w, hr, None)
        };
        // Pointers kept from an earlier call (COMP-7, TID-3).
        for (p, which) in [(local, "localTransportId"), (remote, "remoteTransportId")] {
            if p.is_null() {
                return reject(self, id::TID_2, E_POINTER, format!("{which} is NULL"));
            }
            if let Some((serial, _, _)) = self.args.retired_owner(p as usize) {
                return reject(
                    self,
                    id::COMP_7,
                    E_INVALIDARG,
                    format!(
                        "{which} points at the transport ID of call {serial}, which has completed"
                    ),
                );
            }
            // SAFETY: non-NULL and not one of ours; the provider vouches for it.
            let bytes_ptr =
                unsafe { std::ptr::read_unaligned(std::ptr::addr_of!((*p).transportId)) };
            if let Some((serial, _, _)) = self.args.retired_owner(bytes_ptr as usize) {
                return reject(self, id::TID_3, E_INVALIDARG, format!("{which}'s bytes are those of call {serial}'s transport ID (a shallow copy)"));
            }
        }
        // SAFETY: non-NULL, checked above.
        let (lt, rt) = unsafe { (edge::transport_id(local), edge::transport_id(remote)) };
        let (Some(lt), Some(rt)) = (lt, rt) else {
            return reject(
                self,
                id::TID_2,
                E_INVALIDARG,
                "a transport ID is not 4 or 16 bytes at a non-NULL pointer".into(),
            );
        };
        if chain.is_null() {
            return reject(self, id::DATA_2, E_POINTER, "bufferChain is NULL".into());
        }
        // SAFETY: walks the provider's chain with bounds on length and cycles.
        let content = match unsafe { chain_content(chain) } {
            Ok(c) => c,
            Err(e) => return reject(self, id::DATA_2, E_INVALIDARG, e),
        };
        let s = self.insts[inst as usize].session();
        // Active, or told the platform it is: its TRANSITION_ACTIVE
        // completed with S_OK before its callback returned (decision
        // `early-success`; the transition itself is applied at the return).
        let active = s.is_some_and(|s| s.live())
            && (s.is_some_and(|s| s.active()) || self.reported_active.contains(&inst));
        let admission = if active {
            Admission::Take
        } else {
            Admission::Refuse
        };
        match self.faults.indication(admission) {
            Admission::Take => {}
            Admission::Swallow => {
                return answer(self, S_OK, Some("accepted while not active"));
            }
            Admission::Refuse if s.is_some_and(|s| s.machine().terminate_on_its_way()) => {
                // The session just ended but TERMINATE has not reached the
                // provider yet: it cannot know, so this is refused but not blamed.
                return answer(
                    self,
                    E_INVALID_STATE,
                    Some("session ended; TERMINATE on its way"),
                );
            }
            Admission::Refuse => {
                let why = match s {
                    Some(s) if s.live() => "the instance is dormant",
                    Some(_) => "the session has ended",
                    None => "the instance has no session",
                };
                return reject(
                    self,
                    id::DATA_1,
                    E_INVALID_STATE,
                    format!("IndicateReceivedBuffers refused: {why} (STATE-3)"),
                );
            }
        }
        // An ID whose ADD is in flight is the instance's already: the
        // platform said so when it called ADD (decision `add-when-asked`).
        let added = s.is_some_and(|s| s.holds(lt) || s.adding(lt));
        if !added {
            return reject(
                self,
                id::TID_2,
                E_INVALIDARG,
                format!("local ID {lt} is not an ID added to this instance"),
            );
        }
        if !self.traffic.issued.contains(&rt) {
            return reject(
                self,
                id::TID_2,
                E_INVALIDARG,
                format!("remote ID {rt} was not made by any platform"),
            );
        }
        if routine.is_some() {
            let key = self.traffic.next_held;
            self.traffic.next_held += 1;
            self.traffic.held.insert(
                key,
                HeldIndicate {
                    inst,
                    // SAFETY: the chain was just walked and found well formed.
                    elements: unsafe { held_elements(chain) },
                    content,
                    local: lt,
                    remote: rt,
                    context: context as usize,
                    routine,
                },
            );
            let delay = Nanos::from_micros(self.rng.range(1, 2_000));
            self.schedule(
                self.now.saturating_add(delay),
                Ev::IndicateDone { pending: key },
            );
            self.rec.record_indication(
                self.now,
                host,
                n,
                Indication {
                    f,
                    hr: E_PENDING_IO,
                    len: content.len,
                    from: rt,
                    to: lt,
                },
            );
            return E_PENDING_IO;
        }
        self.rec.record_indication(
            self.now,
            host,
            n,
            Indication {
                f,
                hr: S_OK,
                len: content.len,
                from: rt,
                to: lt,
            },
        );
        self.deliver(inst, lt, rt, content);
        S_OK
    }
}

impl Traffic {
    pub fn send_result(&mut self, d: u32, ok: bool, _now: Nanos) {
        self.set_state(d, if ok { State::Sent } else { State::Failed });
    }
}

/// The platform is done with indicated buffers: check DATA-3, deliver, and
/// call the provider's completion routine once (DATA-4).
pub(crate) fn indicate_done(shared: &Arc<Shared>, key: u32) {
    let mut w = shared.world.lock();
    let Some(h) = w.traffic.held.remove(&key) else {
        return;
    };
    let (host, n) = (
        w.insts[h.inst as usize].host(),
        w.insts[h.inst as usize].n(),
    );
    // SAFETY: DATA-3 obliges the provider to keep the chain intact until its
    // routine runs; re-reading it where it was is how a breach is detected.
    if let Err(what) = unsafe { held_intact(&h.elements, h.content) } {
        w.violate(
            id::DATA_3,
            host,
            n,
            Some("CPNatfwtIndicateReceivedBuffers"),
            format!("the provider changed indicated buffers before its completion routine was called: {what}"),
        );
    }
    w.deliver(h.inst, h.local, h.remote, h.content);
    let times = w.faults.provider_completions();
    for _ in 0..times {
        w.record(host, n, What::ProviderCompletion { status: S_OK });
    }
    drop(w);
    let cx = crate::runtime::Cx::new(shared.clone(), host);
    let routine = h.routine.expect("held only with a routine");
    for _ in 0..times {
        // SAFETY: the provider gave this routine and context for exactly this call.
        crate::runtime::run_callback(&cx, || unsafe { routine(h.context as *mut c_void, S_OK) });
    }
    shared.wake.notify_all();
}

/// The longest buffer chain the platform walks (decision `chain-length`).
/// A chain of one byte per element, with an empty element between each,
/// carries a 65,507-byte datagram in 131,013 elements; this is eight
/// times that. A longer one is DATA-2: taken for an unterminated list.
pub(crate) const MAX_CHAIN: usize = 1 << 20;

/// Walks a buffer chain, checking DATA-2, and returns the content of its
/// bytes: they are read where they lie ([`Reader`]), not copied.
///
/// # Safety
/// `head` is non-NULL; the provider vouches for every element it links.
unsafe fn chain_content(head: *mut CPNATFWT_BUFFER) -> Result<Content, String> {
    let mut content = Reader::default();
    let mut len = 0usize;
    // Cycles are found by Brent's method: `tortoise` is element
    // `tortoise_at`, moved to the walk's head each time the walk has gone
    // `power` elements past it (doubling `power`). A chain that comes back
    // meets it within twice its length: linear time, no memory.
    let (mut tortoise, mut tortoise_at) = (head, 0usize);
    let (mut power, mut lam) = (1usize, 0usize);
    let mut p = head;
    let mut i = 0usize;
    while !p.is_null() {
        if i >= MAX_CHAIN {
            return Err(format!(
                "the buffer chain has more than {MAX_CHAIN} elements (unterminated?)"
            ));
        }
        // SAFETY: p is non-NULL and part of the provider's chain.
        let b = unsafe { std::ptr::read_unaligned(p) };
        if b.size > 0 {
            if b.buffer.is_null() {
                return Err(format!("element {i} has size {} and a NULL buffer", b.size));
            }
            if len + b.size as usize > 16 << 20 {
                return Err("the buffer chain holds more than 16 MiB".into());
            }
            len += b.size as usize;
            // SAFETY: the provider says `size` bytes live at `buffer`.
            content.feed(unsafe { std::slice::from_raw_parts(b.buffer, b.size as usize) });
        }
        lam += 1;
        if b.next == tortoise {
            return Err(format!(
                "the buffer chain has a cycle (element {i} links back to element {tortoise_at})"
            ));
        }
        if lam == power {
            (tortoise, tortoise_at) = (b.next, i + 1);
            power *= 2;
            lam = 0;
        }
        p = b.next;
        i += 1;
    }
    Ok(content.finish())
}

/// The elements of a chain [`chain_content`] found well formed.
///
/// # Safety
/// As [`chain_content`], which returned `Ok` for `head` just before.
unsafe fn held_elements(head: *mut CPNATFWT_BUFFER) -> Vec<HeldElement> {
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: p is an element of the chain just walked (no cycle, bounded).
        let b = unsafe { std::ptr::read_unaligned(p) };
        out.push(HeldElement {
            at: p as usize,
            next: b.next as usize,
            size: b.size,
            buffer: b.buffer as usize,
        });
        p = b.next;
    }
    out
}

/// Whether a held chain is as it was indicated (DATA-3): each element read
/// again where it was, with the same link, size and buffer, and the bytes
/// of those buffers the same `content`. Only addresses that held the chain
/// when it was indicated are read: a changed link is reported, not
/// followed, and memory the provider freed and gave back to the system is
/// reported, not faulted on (`edge::MappedPages`: each page is probed
/// once with a checked copy, then read). Any change of a
/// generated payload's bytes is found (its content is exact); of other
/// bytes, a change of one aligned 8-byte word is always found, other
/// changes are missed with a probability of about 2^-64. The error says
/// what changed.
///
/// # Safety
/// The provider keeps the elements and their buffers alive until its
/// completion routine is called (DATA-3 itself): that is what is checked;
/// freed memory is either still mapped or not mapped at all.
unsafe fn held_intact(elements: &[HeldElement], content: Content) -> Result<(), String> {
    const ELEMENT: usize = std::mem::size_of::<CPNATFWT_BUFFER>();
    let mut mapped = crate::edge::MappedPages::default();
    for (i, e) in elements.iter().enumerate() {
        // SAFETY: this element lay here when indicated, and must still.
        if !unsafe { mapped.cover(e.at, ELEMENT) } {
            return Err(format!(
                "element {i} of the chain is no longer mapped memory (freed)"
            ));
        }
        // SAFETY: its pages are mapped (checked just above).
        let b = unsafe { std::ptr::read_unaligned(e.at as *const CPNATFWT_BUFFER) };
        let now = HeldElement {
            at: e.at,
            next: b.next as usize,
            size: b.size,
            buffer: b.buffer as usize,
        };
        if now != *e {
            return Err(format!(
                "element {i} of the chain was rewritten (next, size or buffer)"
            ));
        }
    }
    let mut reader = Reader::default();
    for (i, e) in elements.iter().enumerate().filter(|(_, e)| e.size > 0) {
        // SAFETY: the element still names these `size` bytes, as when
        // indicated (checked above).
        if !unsafe { mapped.cover(e.buffer, e.size as usize) } {
            return Err(format!(
                "the buffer of element {i} is no longer mapped memory (freed)"
            ));
        }
        // SAFETY: its pages are mapped (checked just above).
        reader.feed(unsafe { std::slice::from_raw_parts(e.buffer as *const u8, e.size as usize) });
    }
    if reader.finish() != content {
        return Err("the bytes of its buffers differ".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{chain_content, held_elements, held_intact, Content, Digest, Form, Reader, Stream};
    use crate::abi::CPNATFWT_BUFFER;
    use crate::rng::Rng;

    /// A held indication's chain, rewritten by its provider before the
    /// routine was called, is DATA-3 saying what changed, and a rewritten
    /// link is reported, never followed (the provider's chain may be gone:
    /// following a wild link would crash the harness).
    #[test]
    fn data_3_a_held_chain_is_reread_where_it_was_and_a_rewritten_link_is_not_followed() {
        let mut bytes = *b"abcdefghij";
        let (a, b) = bytes.split_at_mut(4);
        let mut second = CPNATFWT_BUFFER {
            next: std::ptr::null_mut(),
            size: b.len() as u32,
            buffer: b.as_mut_ptr(),
        };
        let mut first = CPNATFWT_BUFFER {
            next: &mut second,
            size: a.len() as u32,
            buffer: a.as_mut_ptr(),
        };
        let head: *mut CPNATFWT_BUFFER = &mut first;
        // SAFETY: a well-formed chain of live locals.
        let content = unsafe { chain_content(head) }.expect("well formed");
        // SAFETY: as above.
        let elements = unsafe { held_elements(head) };
        assert_eq!(elements.len(), 2);
        // SAFETY: the chain and its buffers are still alive (in every call below).
        assert_eq!(unsafe { held_intact(&elements, content) }, Ok(()));
        // SAFETY: the buffer is alive; a byte of it changes.
        unsafe { *second.buffer ^= 1 };
        // SAFETY: the chain and its buffers are alive.
        let e = unsafe { held_intact(&elements, content) }.unwrap_err();
        assert!(e.contains("bytes"), "{e}");
        // SAFETY: as above; the byte is restored.
        unsafe { *second.buffer ^= 1 };
        // A wild link where the second element was linked: reported, not read.
        // SAFETY: the first element is alive; its link is rewritten.
        unsafe { (*head).next = std::ptr::dangling_mut() };
        // SAFETY: only the elements' own places are read, which are alive.
        let e = unsafe { held_intact(&elements, content) }.unwrap_err();
        assert!(e.contains("element 0"), "{e}");
    }

    /// A chain as `sizes` says (element k has `sizes[k]` bytes, or none
    /// and a NULL buffer when 0), and the bytes, in one buffer.
    fn chain_of(sizes: &[u32]) -> (Vec<CPNATFWT_BUFFER>, Vec<u8>) {
        let total: usize = sizes.iter().map(|&s| s as usize).sum();
        let mut bytes: Vec<u8> = (0..total).map(|i| i as u8).collect();
        let mut elements: Vec<CPNATFWT_BUFFER> = Vec::with_capacity(sizes.len());
        let mut at = 0usize;
        for &size in sizes {
            elements.push(CPNATFWT_BUFFER {
                next: std::ptr::null_mut(),
                size,
                buffer: if size == 0 {
                    std::ptr::null_mut()
                } else {
                    bytes[at..].as_mut_ptr()
                },
            });
            at += size as usize;
        }
        let base = elements.as_mut_ptr();
        for k in 1..elements.len() {
            // SAFETY: k is in bounds; the links point into `elements`,
            // which is not moved while the chain is used.
            elements[k - 1].next = unsafe { base.add(k) };
        }
        (elements, bytes)
    }

    /// DATA-2's walk: any NULL-terminated chain of a datagram is well
    /// formed however finely it is cut (here a 65,507-byte datagram, one
    /// byte per element with an empty element between each); a cycle is
    /// found wherever it closes; only a chain past `MAX_CHAIN` is refused
    /// for its length (decision `chain-length`).
    #[test]
    fn data_2_a_long_chain_is_well_formed_and_a_cycle_anywhere_is_found() {
        let sizes: Vec<u32> = (0..2 * 65_507 - 1).map(|k| (k % 2 == 0) as u32).collect();
        let (mut elements, bytes) = chain_of(&sizes);
        let head = elements.as_mut_ptr();
        // SAFETY: a well-formed chain of live elements and bytes.
        let content = unsafe { chain_content(head) }.expect("well formed");
        assert_eq!(content, Content::of(&bytes));
        let n = elements.len();
        for (from, to) in [
            (0, 0),
            (1, 0),
            (n - 1, 0),
            (n - 1, n - 2),
            (n - 1, n / 2),
            (n / 3, 7),
        ] {
            let base = elements.as_mut_ptr();
            // SAFETY: both indices are in bounds; the chain stays in `elements`.
            elements[from].next = unsafe { base.add(to) };
            // SAFETY: a chain of live elements, now with a cycle.
            let e = unsafe { chain_content(base) }.unwrap_err();
            assert!(e.contains("has a cycle"), "{from} -> {to}: {e}");
            let next = if from + 1 < n {
                // SAFETY: in bounds.
                unsafe { base.add(from + 1) }
            } else {
                std::ptr::null_mut()
            };
            elements[from].next = next;
        }
        let (mut too_long, _) = chain_of(&vec![0; super::MAX_CHAIN + 1]);
        // SAFETY: a well-formed chain of live elements, one too many.
        let e = unsafe { chain_content(too_long.as_mut_ptr()) }.unwrap_err();
        assert!(e.contains("more than 1048576 elements"), "{e}");
    }

    /// A provider that freed a held chain and whose allocator unmapped it
    /// (a large allocation) gets DATA-3 saying so: re-reading the chain
    /// must not fault the process, which would end the whole test run
    /// with no report.
    #[cfg(target_os = "linux")]
    #[test]
    fn data_3_a_held_chain_freed_and_unmapped_is_reported_not_faulted_on() {
        const PAGE: usize = 4096;
        let map = |len: usize| {
            // SAFETY: a fresh anonymous private mapping, checked below.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            p.cast::<u8>()
        };
        for unmap_chain in [true, false] {
            // The element in one mapping, its bytes in another.
            let (chain, data) = (map(PAGE), map(PAGE));
            // SAFETY: both mappings are a page long and writable.
            let head = unsafe {
                data.write_bytes(7, 100);
                let head = chain.cast::<CPNATFWT_BUFFER>();
                head.write(CPNATFWT_BUFFER {
                    next: std::ptr::null_mut(),
                    size: 100,
                    buffer: data,
                });
                head
            };
            // SAFETY: a well-formed chain in live mappings.
            let content = unsafe { chain_content(head) }.expect("well formed");
            // SAFETY: as above.
            let elements = unsafe { held_elements(head) };
            // SAFETY: still mapped.
            assert_eq!(unsafe { held_intact(&elements, content) }, Ok(()));
            let gone = if unmap_chain { chain } else { data };
            // SAFETY: a mapping made above, unmapped once.
            assert_eq!(unsafe { libc::munmap(gone.cast(), PAGE) }, 0);
            // SAFETY: the rest is mapped; the unmapped part is the point.
            let e = unsafe { held_intact(&elements, content) }.unwrap_err();
            let want = if unmap_chain {
                "element 0 of the chain is no longer mapped"
            } else {
                "the buffer of element 0 is no longer mapped"
            };
            assert!(e.contains(want), "{e}");
            let kept = if unmap_chain { data } else { chain };
            // SAFETY: the other mapping, unmapped once.
            assert_eq!(unsafe { libc::munmap(kept.cast(), PAGE) }, 0);
        }
    }

    #[test]
    fn a_changed_byte_always_changes_the_digest() {
        let mut rng = Rng::new(1);
        for len in [1usize, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 129, 1400] {
            let mut p = vec![0u8; len];
            rng.fill(&mut p);
            let c = Content::of(&p);
            assert_eq!(c, Content::of(&p.clone()), "deterministic");
            for k in 0..len {
                for bit in 0..8 {
                    p[k] ^= 1 << bit;
                    assert_ne!(Content::of(&p), c, "len {len}, byte {k}, bit {bit}");
                    p[k] ^= 1 << bit;
                }
            }
        }
    }

    #[test]
    fn a_fixed_bit_pattern_over_two_words_of_a_lane_changes_the_digest() {
        // Word i and word i + LANES go through the same lane. With a single
        // multiply-xorshift step, flipping bit 63 of one word and bits 63
        // and 31 of the lane's next word cancelled for every payload; the
        // second round makes the difference depend on the bytes.
        let mut rng = Rng::new(3);
        for _ in 0..1_000 {
            let mut p = vec![0u8; 256];
            rng.fill(&mut p);
            let c = Content::of(&p);
            for first in [0usize, 5, 16] {
                let second = first + super::LANES;
                let mut q = p.clone();
                q[first * 8 + 7] ^= 0x80;
                q[second * 8 + 7] ^= 0x80;
                q[second * 8 + 3] ^= 0x80;
                assert_ne!(Content::of(&q), c, "words {first} and {second}");
            }
        }
    }

    /// Bytes to read piece by piece: random ones (a digest), generated
    /// payloads (streams) and generated payloads changed at one byte (a
    /// stream up to there, then a digest).
    fn samples() -> Vec<Vec<u8>> {
        let mut rng = Rng::new(4);
        let mut out = Vec::new();
        for len in [0usize, 1, 8, 9, 16, 17, 31, 32, 33, 100, 300] {
            let mut p = vec![0u8; len];
            rng.fill(&mut p);
            out.push(p);
            let mut g = Vec::new();
            Content::fill(&mut rng, &mut g, len);
            out.push(g.clone());
            for at in [0, 7, 8, 9, 15, 16, 40, len.saturating_sub(1)] {
                if at < len {
                    let mut c = g.clone();
                    c[at] ^= 0x10;
                    out.push(c);
                }
            }
        }
        out
    }

    /// Two places to cut `len` bytes into three pieces (some empty, some
    /// inside a word, some across words).
    fn cuts(len: usize) -> impl Iterator<Item = (usize, usize)> {
        [[0, 0], [1, 2], [3, 17], [8, 40], [7, 7], [31, 95], [9, 10]]
            .into_iter()
            .map(move |[a, b]| (a.min(len), b.min(len).max(a.min(len))))
    }

    #[test]
    fn a_content_read_piece_by_piece_equals_the_whole_ones() {
        for p in samples() {
            let len = p.len();
            let whole = Content::of(&p);
            for (a, b) in cuts(len) {
                let mut r = Reader::default();
                r.feed(&p[..a]);
                r.feed(&p[a..b]);
                r.feed(&p[b..len]);
                assert_eq!(r.finish(), whole, "len {len}, cuts {a} {b}");
            }
        }
    }

    #[test]
    fn a_digest_fed_piece_by_piece_equals_the_whole_one() {
        for p in samples() {
            let len = p.len();
            let mut d = Digest::default();
            d.feed(&p);
            let whole = d.finish();
            for (a, b) in cuts(len) {
                let mut d = Digest::default();
                d.feed(&p[..a]);
                d.feed(&p[a..b]);
                d.feed(&p[b..len]);
                assert_eq!(d.finish(), whole, "len {len}, cuts {a} {b}");
            }
        }
    }

    #[test]
    fn fill_writes_a_stream_and_returns_its_content() {
        for len in [0usize, 1, 7, 8, 9, 31, 32, 33, 64, 65, 1400, 65_507] {
            let mut a = vec![1, 2, 3];
            a.clear();
            let c = Content::fill(&mut Rng::new(9), &mut a, len);
            assert_eq!(a.len(), len);
            assert_eq!(c, Content::of(&a), "length {len}");
            let form = if len <= 8 { Form::Bytes } else { Form::Stream };
            assert_eq!(c.form, form, "length {len}");
            // The same seed, the same bytes; another draw, other bytes.
            let mut b = Vec::new();
            assert_eq!(Content::fill(&mut Rng::new(9), &mut b, len), c);
            assert_eq!(a, b);
            if len > 0 {
                let mut rng = Rng::new(9);
                rng.next_u64();
                let mut d = Vec::new();
                assert_ne!(Content::fill(&mut rng, &mut d, len), c, "length {len}");
            }
        }
    }

    #[test]
    fn fill_writes_word_i_as_the_mix_of_key_plus_i_weyl() {
        // The definition, word by word with a multiplication each, against
        // what `fill` writes (eight lanes advanced by additions).
        for len in [
            0usize, 1, 8, 9, 63, 64, 65, 127, 128, 1400, 2047, 2048, 2049, 2560, 2623, 4099, 65_507,
        ] {
            let mut rng = Rng::new(21);
            let key = rng.clone().next_u64();
            let mut p = Vec::new();
            Content::fill(&mut rng, &mut p, len);
            let mut want = Vec::new();
            for i in 0..len.div_ceil(8) as u64 {
                let y = key
                    .wrapping_add(i.wrapping_mul(Stream::WEYL))
                    .wrapping_mul(Stream::MIX);
                want.extend_from_slice(&(y ^ (y >> 32)).to_le_bytes());
            }
            want.truncate(len);
            assert_eq!(p, want, "length {len}");
        }
    }

    #[test]
    fn comp_8_of_then_fill_reads_the_content_of_then_fills_every_byte() {
        // The one-pass read and poison of a retired payload gives what
        // `of` gives, for streams and for streams changed anywhere (before,
        // in and after the blocks it overwrites as it reads), at every
        // length around the first word and the blocks.
        let mut rng = Rng::new(13);
        for len in [
            0usize, 1, 8, 9, 64, 71, 72, 73, 135, 136, 137, 200, 1400, 2047, 2048, 2049, 2055,
            2056, 2057, 2120, 4099, 65_507,
        ] {
            let mut p = Vec::new();
            Content::fill(&mut rng, &mut p, len);
            let mut changes = vec![None];
            for k in [
                0,
                7,
                8,
                9,
                71,
                72,
                100,
                135,
                136,
                len / 2,
                len.saturating_sub(1),
            ] {
                if k < len {
                    changes.push(Some(k));
                }
            }
            for change in changes {
                let mut q = p.clone();
                if let Some(k) = change {
                    q[k] ^= 0x10;
                }
                let want = Content::of(&q);
                assert_eq!(
                    Content::of_then_fill(&mut q, 0xDD),
                    want,
                    "length {len}, change {change:?}"
                );
                assert!(
                    q.iter().all(|&b| b == 0xDD),
                    "length {len}, change {change:?}"
                );
            }
        }
        // Bytes that are no stream at all.
        let mut q = vec![0u8; 1000];
        rng.fill(&mut q);
        let want = Content::of(&q);
        assert_eq!(Content::of_then_fill(&mut q, 0xDD), want);
        assert!(q.iter().all(|&b| b == 0xDD));
    }

    #[test]
    fn comp_8_data_5_any_change_to_a_generated_payload_changes_its_content() {
        // Exact, not probable: every bit of every byte, for payloads whose
        // content is their bytes (at most 8) and for streams.
        let mut rng = Rng::new(11);
        for len in [1usize, 8, 9, 16, 17, 100, 1400] {
            let mut p = Vec::new();
            let c = Content::fill(&mut rng, &mut p, len);
            for k in 0..len {
                for bit in 0..8 {
                    p[k] ^= 1 << bit;
                    assert_ne!(Content::of(&p), c, "len {len}, byte {k}, bit {bit}");
                    p[k] ^= 1 << bit;
                }
            }
            assert_eq!(Content::of(&p), c);
        }
        // A long one: a byte in every 4 KiB, and the words' order.
        let mut p = Vec::new();
        let c = Content::fill(&mut rng, &mut p, 65_507);
        for k in (0..p.len()).step_by(4093) {
            p[k] = p[k].wrapping_add(1);
            assert_ne!(Content::of(&p), c, "byte {k}");
            p[k] = p[k].wrapping_sub(1);
        }
        let mut q = p.clone();
        q[..8].copy_from_slice(&p[8..16]);
        q[8..16].copy_from_slice(&p[..8]);
        assert_ne!(Content::of(&q), c, "two words swapped");
        // One word short, or the stream one word on (another key), differ.
        assert_ne!(Content::of(&p[..p.len() - 1]), c);
        assert_ne!(Content::of(&p[8..]), c);
    }

    #[test]
    fn lengths_and_distinct_payloads_are_told_apart() {
        // Padding with zeros does not make a shorter payload equal a longer one.
        assert_ne!(Content::of(&[1, 2, 3]), Content::of(&[1, 2, 3, 0]));
        assert_ne!(Content::of(&[]), Content::of(&[0]));
        // Distinct random payloads of one length: no two digests equal.
        let mut rng = Rng::new(2);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            let mut p = [0u8; 16];
            rng.fill(&mut p);
            assert!(seen.insert(Content::of(&p).value));
        }
        // Swapped words (same bytes, another order) differ too.
        let a: Vec<u8> = (0..64).collect();
        let mut b = a.clone();
        b[..8].copy_from_slice(&a[32..40]);
        b[32..40].copy_from_slice(&a[..8]);
        assert_ne!(Content::of(&a), Content::of(&b));
    }
}
