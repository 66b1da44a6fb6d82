//! Time as the program sees it: a [`Duration`] since start.
//!
//! The state machine never reads a clock; the threads at the edge stamp events with a
//! [`Clock`]. `run` uses [`RealClock`]; `sim --virtual-time` and tests use
//! [`ManualClock`], which moves only when told, so a 20 s hold takes no time at all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source of "time since start".
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
    /// `true` when time only moves by [`ManualClock::advance`]: nothing should wait on it.
    fn is_manual(&self) -> bool {
        false
    }
}

/// Wall-clock time since the clock was made (monotonic).
#[derive(Clone, Copy, Debug)]
pub struct RealClock {
    start: Instant,
}

impl RealClock {
    pub fn new() -> Self {
        RealClock {
            start: Instant::now(),
        }
    }
}

impl Default for RealClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(
            by.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::SeqCst,
        );
    }

    /// Sets the time; never moves it backwards.
    pub fn set(&self, to: Duration) {
        self.nanos.fetch_max(
            to.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
    fn is_manual(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward_and_is_shared() {
        let c = ManualClock::new();
        let d = c.clone();
        c.advance(Duration::from_millis(1500));
        assert_eq!(d.now(), Duration::from_millis(1500));
        d.set(Duration::from_millis(1000));
        assert_eq!(c.now(), Duration::from_millis(1500));
        d.set(Duration::from_secs(3));
        assert_eq!(c.now(), Duration::from_secs(3));
    }
}
