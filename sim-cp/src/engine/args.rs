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

use crate::abi::{CPNATFWT_BUFFER, CPNATFWT_TRANSPORT_ID};
use crate::fxhash::FxHashMap as HashMap;
use crate::transport_id::Tid;
use std::collections::VecDeque;

/// Retired blocks kept poisoned before reuse.
pub const QUARANTINE: usize = 64;
const POISON: u8 = 0xDD;
const CHAIN: usize = 3;

/// One call's argument memory.
pub struct Block {
    tids: [CPNATFWT_TRANSPORT_ID; 2],
    bytes: [[u8; 16]; 2],
    chain: [CPNATFWT_BUFFER; CHAIN],
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
/// field by field when the call completes (COMP-8, DATA-6). An exact copy,
/// so any change is found, and cheaper than hashing the bytes.
#[derive(Default, PartialEq)]
struct Seal {
    tids: [(u16, usize); 2],
    bytes: [[u8; 16]; 2],
    chain: [(u32, usize); CHAIN],
    payload: Vec<u8>,
}

#[derive(Default)]
pub struct ArgPool {
    blocks: Vec<*mut Block>,
    /// Per block: its seal (platform memory, never handed out).
    seals: Vec<Seal>,
    free: Vec<usize>,
    quarantine: VecDeque<usize>,
    live: Vec<bool>,
    by_addr: HashMap<usize, (usize, Part)>,
}

// SAFETY: the blocks are plain memory owned by the pool; the pool lives
// inside the world's mutex, so only one thread touches its bookkeeping at a
// time. Provider threads only get raw pointers into the blocks.
unsafe impl Send for ArgPool {}

impl ArgPool {
    /// A block for call `serial` of instance `inst`.
    pub fn take(&mut self, serial: u32, inst: u32) -> Slot {
        let i = match self.free.pop() {
            Some(i) => i,
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
                self.seals.push(Seal::default());
                self.live.push(false);
                // SAFETY: `b` was just allocated and is exclusively ours; we
                // only take field addresses.
                unsafe {
                    for k in 0..2 {
                        self.by_addr.insert(
                            std::ptr::addr_of!((*b).tids[k]) as usize,
                            (i, Part::TidStruct),
                        );
                        self.by_addr.insert(
                            std::ptr::addr_of!((*b).bytes[k]) as usize,
                            (i, Part::TidBytes),
                        );
                    }
                }
                i
            }
        };
        // SAFETY: block `i` is not live, so no provider holds a valid claim on it.
        unsafe {
            (*self.blocks[i]).serial = serial;
            (*self.blocks[i]).inst = inst;
        }
        self.live[i] = true;
        Slot(i)
    }

    /// Writes transport ID `tid` into position `k` (0 or 1) and returns its struct.
    pub fn tid(&mut self, s: Slot, k: usize, tid: Tid) -> *mut CPNATFWT_TRANSPORT_ID {
        let b = self.blocks[s.0];
        // SAFETY: the block is live and ours; the provider has not been given
        // this call's pointers yet.
        unsafe {
            let bytes = tid.as_bytes();
            let dst = std::ptr::addr_of_mut!((*b).bytes[k]) as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            (*b).tids[k] = CPNATFWT_TRANSPORT_ID {
                size: bytes.len() as u16,
                transportId: std::ptr::addr_of_mut!((*b).bytes[k]) as *mut u8,
            };
            std::ptr::addr_of_mut!((*b).tids[k])
        }
    }

    /// Writes `payload` as a chain of `pieces` (1..=3) elements and returns its head.
    pub fn chain(&mut self, s: Slot, payload: &[u8], pieces: usize) -> *mut CPNATFWT_BUFFER {
        let b = self.blocks[s.0];
        let pieces = pieces.clamp(1, CHAIN);
        // SAFETY: as in `tid`; the payload vector is re-filled before any
        // pointer into it is handed out.
        unsafe {
            let p = &mut *std::ptr::addr_of_mut!((*b).payload);
            p.clear();
            p.extend_from_slice(payload);
            let base = p.as_mut_ptr();
            let n = payload.len();
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
            seal.payload.clear();
            // (An empty copy is skipped: libc's zero-length calls are not free.)
            if !blk.payload.is_empty() {
                seal.payload.extend_from_slice(&blk.payload);
            }
        }
    }

    /// Records what the provider is about to be shown of the block.
    pub fn seal(&mut self, s: Slot) {
        Self::read_seal(self.blocks[s.0], &mut self.seals[s.0]);
    }

    /// Whether the block is as it was sealed: every transport ID (size,
    /// pointer, bytes), the chain's structure (sizes and links) and the
    /// payload bytes.
    pub fn intact(&self, s: Slot) -> bool {
        let b = self.blocks[s.0];
        let seal = &self.seals[s.0];
        // SAFETY: reading plain bytes of a live block we own.
        unsafe {
            let blk = &*b;
            (0..2).all(|k| seal.tids[k] == (blk.tids[k].size, blk.tids[k].transportId as usize))
                && (0..2).all(|k| {
                    u128::from_ne_bytes(seal.bytes[k]) == u128::from_ne_bytes(blk.bytes[k])
                })
                && (0..CHAIN)
                    .all(|k| seal.chain[k] == (blk.chain[k].size, blk.chain[k].next as usize))
                && (seal.payload.is_empty() && blk.payload.is_empty()
                    || seal.payload == blk.payload)
        }
    }

    /// Deliberately damages a live block (the ClobberPendedArgs platform fault).
    pub fn clobber(&mut self, s: Slot) {
        // SAFETY: a platform bug on purpose, but memory-safe: the bytes stay valid.
        unsafe { (&mut *self.blocks[s.0]).bytes[0][0] ^= 0xFF };
    }

    /// The call is over: poison the block and quarantine it. Returns a block
    /// evicted from quarantine whose poison was disturbed (COMP-7), if any.
    pub fn retire(&mut self, s: Slot) -> Option<Tampered> {
        let b = self.blocks[s.0];
        // SAFETY: the platform is done with the block; the provider must be too.
        unsafe {
            let blk = &mut *b;
            blk.bytes = [[POISON; 16]; 2];
            // (Skipped when empty: libc's zero-length calls are not free.)
            if !blk.payload.is_empty() {
                blk.payload.fill(POISON);
            }
        }
        self.live[s.0] = false;
        self.quarantine.push_back(s.0);
        if self.quarantine.len() > QUARANTINE {
            let i = self.quarantine.pop_front().unwrap();
            let bad = self.tampered(i);
            self.free.push(i);
            return bad;
        }
        None
    }

    /// Checks every quarantined block's poison (end of run).
    pub fn sweep(&mut self) -> Vec<Tampered> {
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
        let &(i, part) = self.by_addr.get(&addr)?;
        if self.live[i] {
            return None;
        }
        // SAFETY: reading bookkeeping fields of our own block.
        unsafe { Some(((*self.blocks[i]).serial, (*self.blocks[i]).inst, part)) }
    }
}

/// Whether every byte is [`POISON`] (compared in blocks, not byte by byte).
fn all_poison(bytes: &[u8]) -> bool {
    const BLOCK: [u8; 256] = [POISON; 256];
    bytes.chunks(BLOCK.len()).all(|c| c == &BLOCK[..c.len()])
}

impl Drop for ArgPool {
    fn drop(&mut self) {
        for &b in &self.blocks {
            // SAFETY: every block came from Box::into_raw and is freed once,
            // here, when the world (and so every call) is gone.
            drop(unsafe { Box::from_raw(b) });
        }
    }
}
