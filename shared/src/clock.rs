//! Where time and randomness come from: injected, never read from the system.
//!
//! `SystemTime::now()` panics inside a Cloudflare Worker, and tests need fixed
//! times and repeatable jitter, so every function in this crate that needs the
//! time or a random number takes one of these traits.

use std::cell::Cell;

use crate::timestamp::Timestamp;

/// A source of the current time.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// A clock that always reads the same instant, for tests and replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// A source of random bits: the Worker's `crypto.getRandomValues`, the OS on
/// the regional side, a seeded generator in tests.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// A random `u64`.
    fn next_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}

/// A small deterministic generator (SplitMix64): repeatable jitter and ids in
/// tests and benchmarks. Not for anything that must be unpredictable.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    state: Cell<u64>,
}

impl SeededRandom {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: Cell::new(seed) }
    }

    fn step(&self) -> u64 {
        let s = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.step().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn next_u64(&self) -> u64 {
        self.step()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_is_repeatable_and_seed_dependent() {
        let (a, b, c) = (SeededRandom::new(7), SeededRandom::new(7), SeededRandom::new(8));
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs[0], c.next_u64());
        let mut buf = [0u8; 13];
        SeededRandom::new(1).fill(&mut buf);
        assert!(buf.iter().any(|&x| x != 0));
    }

    #[test]
    fn fixed_clock_reads_its_instant() {
        assert_eq!(FixedClock(Timestamp(42)).now(), Timestamp(42));
    }
}
