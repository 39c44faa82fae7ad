//! The simulator's only source of randomness: a seeded xoshiro256** stream.
//!
//! Every random choice of a run (network faults, delivery order, ESTABLISH
//! placement, provider-visible randomness) draws from streams split off one
//! seed, so the same seed gives the same run.

/// A small, fast, seedable generator (xoshiro256**, seeded with SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for this seed.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        Rng {
            s: [
                splitmix(&mut x),
                splitmix(&mut x),
                splitmix(&mut x),
                splitmix(&mut x),
            ],
        }
    }
    /// An independent stream derived from this seed and a label.
    pub fn stream(seed: u64, label: &str) -> Rng {
        let mut h = seed ^ 0xA076_1D64_78BD_642F;
        for b in label.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x1000_0000_01B3);
        }
        Rng::new(h)
    }
    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }
    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        // Whole words as fixed-size copies (no memcpy call per word), then
        // the tail: the same bytes as filling word by word.
        let mut words = buf.chunks_exact_mut(8);
        for chunk in &mut words {
            let v: &mut [u8; 8] = chunk.try_into().expect("chunks of 8");
            *v = self.next_u64().to_le_bytes();
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let v = self.next_u64().to_le_bytes();
            tail.copy_from_slice(&v[..tail.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn fill_writes_the_stream_word_by_word_little_endian() {
        for len in [0usize, 1, 7, 8, 9, 64, 1400] {
            let mut buf = vec![0u8; len];
            Rng::new(3).fill(&mut buf);
            let mut r = Rng::new(3);
            let want: Vec<u8> = (0..len.div_ceil(8))
                .flat_map(|_| r.next_u64().to_le_bytes())
                .take(len)
                .collect();
            assert_eq!(buf, want, "length {len}");
        }
    }

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(
            Rng::stream(7, "net").next_u64(),
            Rng::stream(7, "platform").next_u64()
        );
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            assert!(r.below(10) < 10);
            let x = r.range(3, 5);
            assert!((3..=5).contains(&x));
        }
    }
}
