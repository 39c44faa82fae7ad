//! Argument memory: the transport IDs and buffer chains the platform hands
//! to callbacks, owned by the platform, reused without allocating, and kept
//! in quarantine after their call completes.
//!
//! Quarantine is how COMP-7 and TID-3 are caught: a retired block is
//! poisoned, not freed, for the next [`QUARANTINE`] calls. A provider that
//! later passes one of its pointers back (IndicateReceivedBuffers) is found
//! by address; one that writes into it is found when the poison is checked.
//!
//! This is the FFI edge: the blocks are shared with provider code through raw
//! pointers, so they are only touched through raw pointers here too.

use super::traffic::Content;
use crate::abi::{CPNATFWT_BUFFER, CPNATFWT_TRANSPORT_ID};
use crate::fxhash::FxHashMap as HashMap;
use crate::transport_id::Tid;

/// Retired blocks kept poisoned before reuse.
pub const QUARANTINE: usize = 64;
const POISON: u8 = 0xDD;
const CHAIN: usize = 3;

/// One call's argument memory.
pub struct Block {
    tids: [CPNATFWT_TRANSPORT_ID; 2],
    bytes: [[u8; 16]; 2],
    chain: [CPNATFWT_BUFFER; CHAIN],
    /// A SEND_BUFFERS' payload: the datagram's own buffer, moved here (not
    /// copied) and given back when the block is taken again.
    payload: Vec<u8>,
    /// The call that used it last, and its instance.
    serial: u32,
    inst: u32,
}

/// Which part of a block an address points at.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Part {
    /// A `CPNATFWT_TRANSPORT_ID` struct (keeping it is COMP-7).
    TidStruct,
    /// A transport ID's bytes (a shallow copy of the struct: TID-3).
    TidBytes,
}

/// What a retired block's owner did wrong, found when it left quarantine.
pub struct Tampered {
    pub serial: u32,
    pub inst: u32,
}

/// Index of a block in the pool.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Slot(usize);

/// What the provider could see of a block when its call started: compared
/// when the call completes (COMP-8, DATA-6). The transport IDs and the
/// chain's structure exactly; the payload by its [`Content`], the
/// datagram's own, known when it was generated. A generated payload's
/// content is exact (its stream's key, or its bytes if at most 8), so any
/// change of its bytes is found (the `args-seal-content` decision), and
/// reading it back costs one pass at completion, with no copy.
#[derive(Default, PartialEq)]
struct Seal {
    tids: [(u16, usize); 2],
    bytes: [[u8; 16]; 2],
    chain: [(u32, usize); CHAIN],
    payload: Option<Content>,
}

/// What [`ArgPool::retire`] found.
pub struct Retired {
    /// The block was as sealed when its call ended (COMP-8, DATA-6).
    pub intact: bool,
    /// A block evicted from quarantine whose poison was disturbed (COMP-7).
    pub tampered: Option<Tampered>,
}

#[derive(Default)]
pub struct ArgPool {
    /// Every block this pool holds; the first `made` are this world's (the
    /// rest were kept from a pool dropped earlier on this thread, see
    /// [`ArgPool::new`], and are used, in order, before any is allocated).
    blocks: Vec<*mut Block>,
    made: usize,
    /// Per block: its seal (platform memory, never handed out).
    seals: Vec<Seal>,
    free: Vec<usize>,
    /// Retired blocks, oldest first from `oldest` (a ring of at most
    /// [`QUARANTINE`], written over in place once full).
    quarantine: Vec<usize>,
    oldest: usize,
    live: Vec<bool>,
    by_addr: HashMap<usize, (usize, Part)>,
    /// The lowest and one past the highest address in `by_addr`: an
    /// address outside (a provider's own memory, as a rule) is answered
    /// without a lookup.
    addr_lo: usize,
    addr_hi: usize,
}

// SAFETY: the blocks are plain memory owned by the pool; the pool lives
// inside the world's mutex, so only one thread touches its bookkeeping at a
// time. Provider threads only get raw pointers into the blocks.
unsafe impl Send for ArgPool {}

thread_local! {
    /// The blocks of the last pool dropped on this thread, reset, for the
    /// next pool made on it: a certification case builds a world and its
    /// pool per case, and allocating, mapping and freeing each block was
    /// a per-case cost.
    static KEPT: std::cell::RefCell<Option<ArgPool>> = const { std::cell::RefCell::new(None) };
}

/// The most blocks a dropped pool may keep for the next (~170 bytes each).
const KEPT_MAX: usize = 4096;

impl ArgPool {
    /// A pool with no block of this world yet. It holds the blocks of the
    /// last pool dropped on this thread, if any, each as fresh as a newly
    /// allocated one (only its address differs): block `i` of this world
    /// is the kept block `i` while there is one, so slots are handed out
    /// in the same order as by a pool that allocates them.
    pub fn new() -> ArgPool {
        KEPT.try_with(|k| k.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// A block for call `serial` of instance `inst`, with no payload (the
    /// one it held last goes back to the thread's pool of buffers). Only
    /// the slot comes back, in a register: a struct returned through
    /// memory and read back at once with wider loads than it was written
    /// with costs a store-forwarding stall on every call.
    #[inline]
    pub fn take(&mut self, serial: u32, inst: u32) -> Slot {
        let i = match self.free.pop() {
            Some(i) => i,
            None if self.made < self.blocks.len() => {
                // A kept block, already mapped by address.
                self.made += 1;
                self.made - 1
            }
            None => {
                let b = Box::into_raw(Box::new(Block {
                    tids: [CPNATFWT_TRANSPORT_ID {
                        size: 0,
                        transportId: std::ptr::null_mut(),
                    }; 2],
                    bytes: [[0; 16]; 2],
                    chain: [CPNATFWT_BUFFER {
                        next: std::ptr::null_mut(),
                        size: 0,
                        buffer: std::ptr::null_mut(),
                    }; CHAIN],
                    payload: Vec::new(),
                    serial: 0,
                    inst: 0,
                }));
                let i = self.blocks.len();
                self.blocks.push(b);
                self.made += 1;
                self.seals.push(Seal::default());
                self.live.push(false);
                // SAFETY: `b` was just allocated and is exclusively ours; we
                // only take field addresses.
                unsafe {
                    for k in 0..2 {
                        for (a, part) in [
                            (std::ptr::addr_of!((*b).tids[k]) as usize, Part::TidStruct),
                            (std::ptr::addr_of!((*b).bytes[k]) as usize, Part::TidBytes),
                        ] {
                            self.by_addr.insert(a, (i, part));
                            if self.by_addr.len() == 1 {
                                (self.addr_lo, self.addr_hi) = (a, a + 1);
                            }
                            self.addr_lo = self.addr_lo.min(a);
                            self.addr_hi = self.addr_hi.max(a + 1);
                        }
                    }
                }
                i
            }
        };
        // SAFETY: block `i` is not live, so no provider holds a valid claim
        // on it; its quarantine is over, so its old payload can go.
        unsafe {
            (*self.blocks[i]).serial = serial;
            (*self.blocks[i]).inst = inst;
            let payload = &mut *std::ptr::addr_of_mut!((*self.blocks[i]).payload);
            if payload.capacity() != 0 {
                crate::net::give_back(std::mem::take(payload));
            }
        }
        // The seal starts as the block is (untouched since its quarantine
        // began); `tid` and `chain` write each field to both.
        Self::read_seal(self.blocks[i], &mut self.seals[i]);
        self.seals[i].payload = None;
        self.live[i] = true;
        Slot(i)
    }

    /// Writes transport ID `tid` into position `k` (0 or 1) and returns its struct.
    ///
    /// The ID's 16-byte slot is written whole, its bytes past the ID's
    /// length kept as they were (the poison of its last quarantine): one
    /// 16-byte store, which the seal's 16-byte read right after can take
    /// from the store buffer (a 4-byte copy read back 16 bytes wide stalls).
    #[inline]
    pub fn tid(&mut self, s: Slot, k: usize, tid: Tid) -> *mut CPNATFWT_TRANSPORT_ID {
        let b = self.blocks[s.0];
        // SAFETY: the block is live and ours; the provider has not been given
        // this call's pointers yet.
        unsafe {
            let len = tid.as_bytes().len();
            let old = u128::from_le_bytes((*b).bytes[k]);
            let mask = if len >= 16 {
                u128::MAX
            } else {
                (1u128 << (8 * len)) - 1
            };
            let new = (u128::from_le_bytes(tid.padded()) & mask | old & !mask).to_le_bytes();
            let id = std::ptr::addr_of_mut!((*b).bytes[k]) as *mut u8;
            (*b).bytes[k] = new;
            (*b).tids[k] = CPNATFWT_TRANSPORT_ID {
                size: len as u16,
                transportId: id,
            };
            let seal = &mut self.seals[s.0];
            seal.bytes[k] = new;
            seal.tids[k] = (len as u16, id as usize);
            std::ptr::addr_of_mut!((*b).tids[k])
        }
    }

    /// Makes `payload` (whose content is `content`) the block's, as a chain
    /// of `pieces` (1..=3) elements, and returns its head. The bytes are not
    /// copied: the buffer itself is handed to the provider.
    pub fn chain(
        &mut self,
        s: Slot,
        payload: Vec<u8>,
        content: Content,
        pieces: usize,
    ) -> *mut CPNATFWT_BUFFER {
        debug_assert!(Content::of(&payload) == content, "the datagram's content");
        let b = self.blocks[s.0];
        let pieces = pieces.clamp(1, CHAIN);
        self.seals[s.0].payload = Some(content);
        // SAFETY: as in `tid`; the payload vector is put in place before any
        // pointer into it is handed out.
        unsafe {
            let p = &mut *std::ptr::addr_of_mut!((*b).payload);
            debug_assert!(p.is_empty(), "taken blocks hold no payload");
            let n = payload.len();
            *p = payload;
            let base = p.as_mut_ptr();
            let mut start = 0;
            for k in 0..pieces {
                let end = if k + 1 == pieces {
                    n
                } else {
                    n * (k + 1) / pieces
                };
                let next = if k + 1 == pieces {
                    std::ptr::null_mut()
                } else {
                    std::ptr::addr_of_mut!((*b).chain[k + 1])
                };
                (*b).chain[k] = CPNATFWT_BUFFER {
                    next,
                    size: (end - start) as u32,
                    buffer: base.add(start),
                };
                self.seals[s.0].chain[k] = ((end - start) as u32, next as usize);
                start = end;
            }
            std::ptr::addr_of_mut!((*b).chain[0])
        }
    }

    /// Reads the fields the provider could see of block `b` into `seal`.
    fn read_seal(b: *mut Block, seal: &mut Seal) {
        // SAFETY: reading plain bytes of a block we own.
        unsafe {
            let blk = &*b;
            for k in 0..2 {
                seal.tids[k] = (blk.tids[k].size, blk.tids[k].transportId as usize);
            }
            seal.bytes = blk.bytes;
            for k in 0..CHAIN {
                seal.chain[k] = (blk.chain[k].size, blk.chain[k].next as usize);
            }
        }
    }

    /// The block is as the provider is about to be shown it: its seal is
    /// complete. (The seal is not read back from the block here: it was
    /// read when the block was taken and written beside every field since,
    /// by [`tid`](Self::tid) and [`chain`](Self::chain), so the fields just
    /// written are not loaded again, wider than they were stored, which
    /// would stall the store buffer.) Debug builds check it against the block.
    #[inline]
    pub fn seal(&mut self, s: Slot) {
        #[cfg(debug_assertions)]
        {
            let mut read = Seal {
                payload: self.seals[s.0].payload,
                ..Seal::default()
            };
            Self::read_seal(self.blocks[s.0], &mut read);
            assert!(read == self.seals[s.0], "the seal is the block as shown");
        }
        let _ = s;
    }

    /// Deliberately damages a live block (the ClobberPendedArgs platform fault).
    pub fn clobber(&mut self, s: Slot) {
        // SAFETY: a platform bug on purpose, but memory-safe: the bytes stay valid.
        unsafe { (&mut *self.blocks[s.0]).bytes[0][0] ^= 0xFF };
    }

    /// Deliberately changes the middle byte of a live block's payload, if
    /// it has one (the ClobberPendedPayload platform fault).
    pub fn clobber_payload(&mut self, s: Slot) {
        // SAFETY: a platform bug on purpose, but memory-safe: the block is
        // live and ours, its payload stays allocated and the byte in bounds.
        unsafe {
            let p = &mut *std::ptr::addr_of_mut!((*self.blocks[s.0]).payload);
            let mid = p.len() / 2;
            if let Some(b) = p.get_mut(mid) {
                *b ^= 0xFF;
            }
        }
    }

    /// The call is over: check the block against its seal (every transport
    /// ID's size, pointer and bytes, the chain's sizes and links, the
    /// payload's content, read back against its stream), poison it and
    /// quarantine it.
    pub fn retire(&mut self, s: Slot) -> Retired {
        let b = self.blocks[s.0];
        let seal = &self.seals[s.0];
        // SAFETY: the platform is done with the block; the provider must be too.
        let intact = unsafe {
            let blk = &mut *b;
            let fields = (0..2)
                .all(|k| seal.tids[k] == (blk.tids[k].size, blk.tids[k].transportId as usize))
                && (0..2).all(|k| {
                    u128::from_ne_bytes(seal.bytes[k]) == u128::from_ne_bytes(blk.bytes[k])
                })
                && (0..CHAIN)
                    .all(|k| seal.chain[k] == (blk.chain[k].size, blk.chain[k].next as usize));
            blk.bytes = [[POISON; 16]; 2];
            let payload = match seal.payload {
                Some(content) => content_and_poison(&mut blk.payload) == content,
                None => blk.payload.is_empty(),
            };
            fields && payload
        };
        self.live[s.0] = false;
        let mut tampered = None;
        if self.quarantine.len() < QUARANTINE {
            self.quarantine.push(s.0);
        } else {
            // The oldest leaves quarantine, the block takes its place.
            let i = std::mem::replace(&mut self.quarantine[self.oldest], s.0);
            self.oldest = (self.oldest + 1) % QUARANTINE;
            tampered = self.tampered(i);
            self.free.push(i);
        }
        Retired { intact, tampered }
    }

    /// Checks every quarantined block's poison (end of run).
    pub fn sweep(&mut self) -> Vec<Tampered> {
        self.quarantine.rotate_left(self.oldest);
        self.oldest = 0;
        let q: Vec<usize> = self.quarantine.drain(..).collect();
        let bad = q.iter().filter_map(|&i| self.tampered(i)).collect();
        self.free.extend(q);
        bad
    }

    fn tampered(&self, i: usize) -> Option<Tampered> {
        let b = self.blocks[i];
        // SAFETY: reading our own quarantined block.
        unsafe {
            let blk = &*b;
            let ok = blk.bytes == [[POISON; 16]; 2] && all_poison(&blk.payload);
            (!ok).then_some(Tampered {
                serial: blk.serial,
                inst: blk.inst,
            })
        }
    }

    /// If `addr` points into a retired block, which call's and which part.
    pub fn retired_owner(&self, addr: usize) -> Option<(u32, u32, Part)> {
        if !(self.addr_lo..self.addr_hi).contains(&addr) {
            return None;
        }
        let &(i, part) = self.by_addr.get(&addr)?;
        if self.live[i] || i >= self.made {
            return None;
        }
        // SAFETY: reading bookkeeping fields of our own block.
        unsafe { Some(((*self.blocks[i]).serial, (*self.blocks[i]).inst, part)) }
    }
}

/// A page of [`POISON`], what a quarantined payload is compared with.
static POISON_PAGE: [u8; 4096] = [POISON; 4096];

/// Whether every byte is [`POISON`]: each 4 KiB compared with
/// [`POISON_PAGE`] (the C library's `memcmp`, which takes the widest
/// vectors the machine has: half the instructions of an OR-fold of the
/// bytes, which the compiler vectorises for SSE2 only; exact).
fn all_poison(bytes: &[u8]) -> bool {
    bytes.chunks(4096).all(|c| c == &POISON_PAGE[..c.len()])
}

/// The content of `bytes` as they are now, then every byte set to
/// [`POISON`]. A generated payload is read as its stream (block by block
/// against its key, no hashing), each block overwritten as soon as it is
/// read (one pass, not a read then a `memset`).
fn content_and_poison(bytes: &mut [u8]) -> Content {
    Content::of_then_fill(bytes, POISON)
}

impl Drop for ArgPool {
    fn drop(&mut self) {
        // The world (and so every call) is gone. Every payload goes back to
        // the thread's buffers; the blocks are kept for the next pool made
        // on this thread if it has none yet (and they are not too many),
        // else freed.
        let keep = self.blocks.len() <= KEPT_MAX
            && KEPT
                .try_with(|k| k.try_borrow().is_ok_and(|k| k.is_none()))
                .unwrap_or(false);
        if !keep {
            for &b in &self.blocks {
                // SAFETY: every block came from Box::into_raw and is freed
                // once, here.
                let block = unsafe { Box::from_raw(b) };
                crate::net::give_back(block.payload);
            }
            return;
        }
        for &b in &self.blocks {
            // SAFETY: the block is ours and no call uses it any more; it is
            // written back to what `take` allocates (only the payload's
            // buffer, given back, is not reused).
            unsafe {
                let blk = &mut *b;
                crate::net::give_back(std::mem::take(&mut blk.payload));
                blk.tids = [CPNATFWT_TRANSPORT_ID {
                    size: 0,
                    transportId: std::ptr::null_mut(),
                }; 2];
                blk.bytes = [[0; 16]; 2];
                blk.chain = [CPNATFWT_BUFFER {
                    next: std::ptr::null_mut(),
                    size: 0,
                    buffer: std::ptr::null_mut(),
                }; CHAIN];
                blk.serial = 0;
                blk.inst = 0;
            }
        }
        self.live.fill(false);
        let kept = ArgPool {
            blocks: std::mem::take(&mut self.blocks),
            made: 0,
            seals: std::mem::take(&mut self.seals),
            free: {
                let mut f = std::mem::take(&mut self.free);
                f.clear();
                f
            },
            quarantine: {
                let mut q = std::mem::take(&mut self.quarantine);
                q.clear();
                q
            },
            oldest: 0,
            live: std::mem::take(&mut self.live),
            by_addr: std::mem::take(&mut self.by_addr),
            addr_lo: self.addr_lo,
            addr_hi: self.addr_hi,
        };
        let _ = KEPT.try_with(|k| *k.borrow_mut() = Some(kept));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A block of a SEND_BUFFERS with `len` payload bytes, sealed.
    fn send(pool: &mut ArgPool, serial: u32, len: usize) -> (Slot, *mut CPNATFWT_BUFFER) {
        let s = pool.take(serial, 0);
        pool.tid(s, 0, Tid::v4(10, 0, 1));
        pool.tid(s, 1, Tid::v4(10, 0, 2));
        let mut payload = Vec::new();
        let content = Content::fill(&mut Rng::new(serial as u64), &mut payload, len);
        let chain = pool.chain(s, payload, content, 3);
        pool.seal(s);
        (s, chain)
    }

    #[test]
    fn comp_8_an_untouched_payload_is_intact_and_poisoned_after() {
        for len in [1000, 10_000] {
            let mut pool = ArgPool::default();
            let (s, chain) = send(&mut pool, 1, len);
            assert!(pool.retire(s).intact);
            // SAFETY: the block is ours and alive (quarantined); reading it back.
            let first = unsafe { *(*chain).buffer };
            assert_eq!(first, POISON);
        }
    }

    #[test]
    fn comp_8_a_payload_byte_changed_during_the_call_is_found() {
        for (len, at) in [
            (1000, 0),
            (1000, 7),
            (1000, 999),
            (10_000, 0),
            (10_000, 8),
            (10_000, 9_999),
        ] {
            let mut pool = ArgPool::default();
            let (s, chain) = send(&mut pool, 1, len);
            // SAFETY: as a provider would, through the chain's first
            // element, which covers a third of the 1000 bytes, then the rest.
            unsafe {
                let mut p = chain;
                let mut k = at;
                while k >= (*p).size as usize {
                    k -= (*p).size as usize;
                    p = (*p).next;
                }
                *(*p).buffer.add(k) ^= 1;
            }
            assert!(!pool.retire(s).intact, "length {len}, byte {at}");
        }
    }

    #[test]
    fn comp_8_platform_fault_clobber_pended_payload_is_found_at_any_length() {
        for (len, intact) in [
            (0, true),
            (1, false),
            (8, false),
            (9, false),
            (100, false),
            (10_000, false),
        ] {
            let mut pool = ArgPool::default();
            let (s, _) = send(&mut pool, 1, len);
            pool.clobber_payload(s);
            assert_eq!(pool.retire(s).intact, intact, "length {len}");
        }
    }

    /// Sends and retires a quarantine's worth of calls from serial `first`
    /// on: the serial of the last tampered block they pushed out, if any.
    fn tampered_within_a_quarantine(pool: &mut ArgPool, first: u32) -> Option<u32> {
        let mut found = None;
        for serial in first..first + QUARANTINE as u32 {
            let (s, _) = send(pool, serial, 10);
            if let Some(t) = pool.retire(s).tampered {
                found = Some(t.serial);
            }
        }
        found
    }

    #[test]
    fn comp_7_a_payload_write_after_completion_is_found_when_it_leaves_quarantine() {
        let mut pool = ArgPool::default();
        let (s, chain) = send(&mut pool, 1, 100);
        assert!(pool.retire(s).intact);
        // SAFETY: the block stays allocated (quarantined); a provider's late write.
        unsafe { *(*chain).buffer.add(99) = 0 };
        assert_eq!(tampered_within_a_quarantine(&mut pool, 2), Some(1));
        assert!(pool.sweep().is_empty());
    }

    #[test]
    fn comp_7_a_pool_made_after_another_was_dropped_reuses_its_blocks_as_fresh_ones() {
        // A thread of its own: nothing kept from another pool yet.
        std::thread::spawn(|| {
            let mut first = ArgPool::new();
            let s = first.take(1, 7);
            let id = first.tid(s, 0, Tid::v4(10, 0, 9));
            // SAFETY: the block is live and ours.
            let fresh = unsafe { (*id).transportId.add(15).read() };
            assert!(first.retire(s).intact);
            assert_eq!(
                first.retired_owner(id as usize),
                Some((1, 7, Part::TidStruct))
            );
            drop(first);

            let mut next = ArgPool::new();
            // Kept, but not handed out in this world: no call's.
            assert_eq!(next.retired_owner(id as usize), None);
            let s = next.take(2, 3);
            let again = next.tid(s, 0, Tid::v4(10, 0, 9));
            assert_eq!(again, id, "the kept block, first");
            // SAFETY: as above.
            let byte = unsafe { (*again).transportId.add(15).read() };
            assert_eq!(byte, fresh, "as fresh as an allocated block (no poison)");
            assert_eq!(next.retired_owner(id as usize), None, "live");
            assert!(next.retire(s).intact);
            assert_eq!(
                next.retired_owner(id as usize),
                Some((2, 3, Part::TidStruct))
            );
            // A late write into it is still found when it leaves quarantine.
            // SAFETY: the block stays allocated (quarantined).
            unsafe { *(*again).transportId = 0 };
            assert_eq!(tampered_within_a_quarantine(&mut next, 3), Some(2));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn content_and_poison_gives_the_content_before_poisoning() {
        for len in [0usize, 1, 63, 64, 65, 1000] {
            let mut p = Vec::new();
            let c = Content::fill(&mut Rng::new(5), &mut p, len);
            assert_eq!(content_and_poison(&mut p), c, "length {len}");
            assert!(all_poison(&p));
        }
    }
}
