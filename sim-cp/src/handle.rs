//! Instance handles and completion contexts: opaque integers the simulator
//! hands to providers, and the process-wide registry of live worlds that
//! turns them back into a world.
//!
//! Layout of both (64 bits): `slot:10 | generation:14 | tag:8 | index:32`.
//! `slot`+`generation` name the world, `index` the instance (handles) or the
//! call serial (contexts), and `tag` is a keyed checksum of the rest, so a
//! made-up or altered value is recognised as such (LIFE-1, COMP-5) instead of
//! silently naming another instance or call. Handles are never reused within
//! a world.
//!
//! A slot's generation counts 1, 2, …, 16383 and then starts again at 1
//! (never 0, which [`decode`] rejects), so any number of worlds can be made
//! one after another: a value of a world that ended names a live world only
//! if the provider kept it across 16,383 later worlds of the same slot.

use crate::engine::Shared;
use parking_lot::RwLock;
use std::sync::{Arc, Weak};

const SLOTS: usize = 1024;

/// Which kind of value is encoded (keys the tag, so a handle is never a valid context).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Kind {
    Instance,
    Completion,
}

/// A world's identity: registry slot and generation.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub struct WorldId {
    slot: u16,
    generation: u16,
}

struct Registry {
    worlds: Vec<(u16, Weak<Shared>)>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry { worlds: Vec::new() });

/// Registers a world; its ID is released when the world is dropped.
pub(crate) fn register_world(make: impl FnOnce(WorldId) -> Arc<Shared>) -> Arc<Shared> {
    let mut reg = REGISTRY.write();
    let slot = match reg.worlds.iter().position(|(_, w)| w.strong_count() == 0) {
        Some(s) => s,
        None => {
            assert!(
                reg.worlds.len() < SLOTS,
                "more than {SLOTS} simulated worlds alive at once"
            );
            reg.worlds.push((0, Weak::new()));
            reg.worlds.len() - 1
        }
    };
    let generation = next_generation(reg.worlds[slot].0);
    let id = WorldId {
        slot: slot as u16,
        generation,
    };
    let shared = make(id);
    reg.worlds[slot] = (generation, Arc::downgrade(&shared));
    shared
}

/// The generation after `g`: 1..=0x3FFF, wrapping to 1 (0 marks a made-up value).
fn next_generation(g: u16) -> u16 {
    g % GENERATIONS + 1
}

/// How many generations a slot counts through before it starts again at 1.
const GENERATIONS: u16 = 0x3FFF;

/// The live world with this ID, if any.
pub(crate) fn lookup(id: WorldId) -> Option<Arc<Shared>> {
    let reg = REGISTRY.read();
    let (generation, w) = reg.worlds.get(id.slot as usize)?;
    if *generation != id.generation {
        return None;
    }
    w.upgrade()
}

/// The only live world, if exactly one is alive.
pub(crate) fn only_live_world() -> Option<Arc<Shared>> {
    let reg = REGISTRY.read();
    let mut live = reg.worlds.iter().filter_map(|(_, w)| w.upgrade());
    let first = live.next()?;
    live.next().is_none().then_some(first)
}

fn tag(kind: Kind, high: u64, index: u32) -> u64 {
    let mut h = high
        ^ (index as u64).rotate_left(17)
        ^ if kind == Kind::Instance {
            0x5bd1_e995
        } else {
            0x1b87_3593
        };
    h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 56) & 0xFF
}

/// Encodes (world, index) as an opaque non-zero value.
pub fn encode(kind: Kind, world: WorldId, index: u32) -> u64 {
    let high = ((world.slot as u64) << 54) | ((world.generation as u64) << 40);
    high | (tag(kind, high, index) << 32) | index as u64
}

/// Decodes a value made by [`encode`] with the same kind; `None` if it was
/// made up or altered.
pub fn decode(kind: Kind, v: u64) -> Option<(WorldId, u32)> {
    let high = v & !0xFF_FFFF_FFFF;
    let index = v as u32;
    let world = WorldId {
        slot: (v >> 54) as u16,
        generation: ((v >> 40) & 0x3FFF) as u16,
    };
    if v == 0 || world.generation == 0 || (v >> 32) & 0xFF != tag(kind, high, index) {
        return None;
    }
    Some((world, index))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip_and_tamper_detection() {
        let w = WorldId {
            slot: 3,
            generation: 77,
        };
        for i in [0u32, 1, 2, 1000, u32::MAX] {
            let h = encode(Kind::Instance, w, i);
            assert_eq!(decode(Kind::Instance, h), Some((w, i)));
            // a handle is not a completion context
            assert_eq!(decode(Kind::Completion, h), None);
        }
        let c = encode(Kind::Completion, w, 5);
        let tampered = (1..=64u64)
            .filter(|d| decode(Kind::Completion, c.wrapping_add(*d)).is_some())
            .count();
        assert!(tampered <= 2, "{tampered} of 64 neighbours decode");
        assert_eq!(decode(Kind::Instance, 0), None);
    }

    #[test]
    fn generations_wrap_to_one_never_to_the_invalid_zero() {
        let mut g = 0u16;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 * GENERATIONS as u32 + 7 {
            g = next_generation(g);
            assert!((1..=GENERATIONS).contains(&g), "generation {g}");
            seen.insert(g);
            let w = WorldId {
                slot: 1023,
                generation: g,
            };
            for kind in [Kind::Instance, Kind::Completion] {
                assert_eq!(decode(kind, encode(kind, w, 7)), Some((w, 7)));
            }
        }
        assert_eq!(seen.len(), GENERATIONS as usize);
    }
}
