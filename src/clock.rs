//! The wall clock. The engine and the lanes read it through a `Clock` they are given, so that
//! tests can run the session rules on simulated time; the rules themselves take `now` as an
//! argument.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::session::Millis;

/// Where the engine reads the time: the system's wall clock, or a simulated one that only
/// moves when a test moves it.
#[derive(Clone, Debug, Default)]
// Simulated only in tests (the engine's, and the internals feature's users).
#[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// Milliseconds since the Unix epoch, set by the test that holds a clone.
    Simulated(Arc<AtomicI64>),
}

#[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
impl Clock {
    /// A simulated clock reading `start` until it is moved.
    pub fn simulated(start: Millis) -> Clock {
        Clock::Simulated(Arc::new(AtomicI64::new(start)))
    }

    /// The time, in ms since the Unix epoch.
    #[inline]
    pub fn now_ms(&self) -> Millis {
        match self {
            Clock::System => now_ms(),
            Clock::Simulated(now) => now.load(Ordering::Relaxed),
        }
    }

    /// Moves a simulated clock by `by` ms (back, if negative: wall clocks do); the system
    /// clock cannot be moved, which is a bug in the caller.
    pub fn advance(&self, by: Millis) {
        match self {
            Clock::System => panic!("the system clock cannot be moved"),
            Clock::Simulated(now) => {
                now.fetch_add(by, Ordering::Relaxed);
            }
        }
    }
}

/// The system's wall clock, in ms since the Unix epoch.
pub fn now_ms() -> Millis {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        // Seconds and millis apart: `as_millis` goes through u128, measurable on the hot path.
        Ok(since) => since.as_secs() as Millis * 1000 + since.subsec_millis() as Millis,
        Err(before) => {
            let before = before.duration();
            -(before.as_secs() as Millis * 1000 + before.subsec_millis() as Millis)
        }
    }
}

/// Seconds with millisecond precision, as the wire format and the C API give times.
pub fn seconds(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_clock_moves_only_when_moved_and_clones_share_it() {
        let clock = Clock::simulated(1_000);
        let seen_by_the_engine = clock.clone();
        assert_eq!(seen_by_the_engine.now_ms(), 1_000);
        clock.advance(1_800_000);
        assert_eq!(seen_by_the_engine.now_ms(), 1_801_000);
        clock.advance(-1_000);
        assert_eq!(seen_by_the_engine.now_ms(), 1_800_000);
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = now_ms();
        let read = Clock::System.now_ms();
        assert!(read >= before && read - before < 60_000);
    }
}
