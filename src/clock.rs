//! The one clock. `Instant::now()` and `SystemTime::now()` are read here and nowhere else.
//!
//! The reactor reads [`Clock::now`] once per loop turn and passes the value down; the engine
//! works only with [`Millis`] values it is given. A virtual clock (deterministic mode) moves
//! only when told to.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Culex time: milliseconds since the broker started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    pub const ZERO: Self = Self(0);

    pub fn saturating_add_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    pub fn saturating_add_secs(self, secs: u64) -> Self {
        self.saturating_add_ms(secs.saturating_mul(1000))
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn since(self, earlier: Self) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The wall time a virtual clock starts at: 2020-01-01T00:00:00Z, the same for every run.
pub const VIRTUAL_WALL_START_MS: u64 = 1_577_836_800_000;

pub enum Clock {
    /// The operating system's monotonic clock.
    System { start: Instant, wall_start_ms: u64 },
    /// A clock that moves only through [`Clock::advance`].
    Virtual { now: Millis, wall_start_ms: u64 },
}

impl Clock {
    pub fn system() -> Self {
        Self::System {
            start: Instant::now(),
            wall_start_ms: wall_now_ms(),
        }
    }

    /// A virtual clock starting at 0 whose wall time starts at `wall_start_ms`.
    pub fn virtual_at(wall_start_ms: u64) -> Self {
        Self::Virtual {
            now: Millis::ZERO,
            wall_start_ms,
        }
    }

    pub fn now(&self) -> Millis {
        match self {
            Self::System { start, .. } => {
                Millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
            }
            Self::Virtual { now, .. } => *now,
        }
    }

    /// Unix time in milliseconds, for state whose expiry must survive a restart.
    pub fn wall(&self) -> u64 {
        match self {
            Self::System { wall_start_ms, .. } | Self::Virtual { wall_start_ms, .. } => {
                wall_start_ms.saturating_add(self.now().0)
            }
        }
    }

    /// The wall-clock time of [`Millis::ZERO`], in Unix milliseconds.
    pub fn wall_start_ms(&self) -> u64 {
        match self {
            Self::System { wall_start_ms, .. } | Self::Virtual { wall_start_ms, .. } => {
                *wall_start_ms
            }
        }
    }

    /// Whether the clock is virtual (deterministic mode).
    pub fn is_virtual(&self) -> bool {
        matches!(self, Self::Virtual { .. })
    }

    /// Moves a virtual clock forward; a system clock ignores it.
    pub fn advance(&mut self, ms: u64) {
        if let Self::Virtual { now, .. } = self {
            *now = now.saturating_add_ms(ms);
        }
    }
}

fn wall_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Entropy for the random source when no seed is given: the sub-second wall clock mixed with
/// the process id. Called once at start-up.
pub fn entropy_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}
