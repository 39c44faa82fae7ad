//! Virtual time: nanoseconds since the start of a run.
//!
//! In a deterministic run the clock only moves when the event queue says so
//! (or a provider simulates blocking work with `Cx::block_for`); in a
//! real-time run it is the wall clock since the run began.

use serde::{Deserialize, Serialize};

/// A point in virtual time, in nanoseconds since the run began.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nanos(pub u64);

impl Nanos {
    pub const ZERO: Nanos = Nanos(0);
    pub const MAX: Nanos = Nanos(u64::MAX);
    pub const fn from_millis(ms: u64) -> Nanos {
        Nanos(ms * 1_000_000)
    }
    pub const fn from_secs(s: u64) -> Nanos {
        Nanos(s * 1_000_000_000)
    }
    pub const fn from_micros(us: u64) -> Nanos {
        Nanos(us * 1_000)
    }
    pub fn saturating_add(self, d: Nanos) -> Nanos {
        Nanos(self.0.saturating_add(d.0))
    }
    pub fn saturating_sub(self, d: Nanos) -> Nanos {
        Nanos(self.0.saturating_sub(d.0))
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }
    pub fn from_std(d: std::time::Duration) -> Nanos {
        Nanos(d.as_nanos().min(u64::MAX as u128) as u64)
    }
}

impl std::ops::Add for Nanos {
    type Output = Nanos;
    fn add(self, o: Nanos) -> Nanos {
        self.saturating_add(o)
    }
}

impl std::fmt::Debug for Nanos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Nanos {
    /// `12.345678s`, `3.5ms`: short and exact enough for traces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        if n >= 1_000_000_000 {
            write!(
                f,
                "{}.{:06}s",
                n / 1_000_000_000,
                (n % 1_000_000_000) / 1000
            )
        } else if n >= 1_000_000 {
            write!(f, "{}.{:03}ms", n / 1_000_000, (n % 1_000_000) / 1000)
        } else {
            write!(f, "{}us", n / 1000)
        }
    }
}
