//! Drops are announced by the library itself, not when the host next asks: a warn line says
//! how many datapoints a full queue dropped, at most once per `WARNING_INTERVAL` (the ones
//! held back are announced when it ends), and lane records that may overflow the queue are
//! moved into the journal, where drops are decided, within `CHECK_INTERVAL`. The worker does
//! both, so they need neither a `baseUrl` nor the network. Time is passed in: the rules are
//! tested here on a simulated clock.

use std::time::{Duration, Instant};

/// At most one queue-full warning per interval, not one per event.
pub(crate) const WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// How soon (and at most how often) the worker moves lane records into a full journal.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Queue-full drops not yet announced, and when the worker may next look at the lanes.
#[derive(Debug, Default)]
pub(crate) struct Drops {
    unreported: u64,
    last_warning: Option<Instant>,
    next_check: Option<Instant>,
}

impl Drops {
    /// Counts `dropped` datapoints a full queue dropped at `now`; returns the warning to log
    /// now, unless one was logged less than an interval ago.
    pub fn count(&mut self, dropped: u64, now: Instant) -> Option<String> {
        self.unreported += dropped;
        self.warning_if_due(now)
    }

    /// The warning held back by the interval, if its time has come.
    pub fn warning_if_due(&mut self, now: Instant) -> Option<String> {
        if self.warning_due(now).is_none_or(|due| due > now) {
            return None;
        }
        let count = std::mem::take(&mut self.unreported);
        self.last_warning = Some(now);
        Some(format!(
            "queue full (maxQueuedDatapoints): dropped the {count} oldest datapoint(s); \
             custom events go first, session datapoints last"
        ))
    }

    /// When the worker must log a held-back warning (`None`: nothing to announce).
    pub fn warning_due(&self, now: Instant) -> Option<Instant> {
        (self.unreported > 0).then(|| {
            self.last_warning
                .map_or(now, |last| (last + WARNING_INTERVAL).max(now))
        })
    }

    /// When the worker may move lane records into the journal because the lanes asked
    /// (`lanes_ask`: a lane may hold more than the queue has room for).
    pub fn check_due(&self, lanes_ask: bool, now: Instant) -> Option<Instant> {
        lanes_ask.then(|| self.next_check.map_or(now, |next| next.max(now)))
    }

    /// Whether the worker may check now; if so, the next check waits an interval.
    pub fn start_check(&mut self, now: Instant) -> bool {
        if self.next_check.is_some_and(|next| next > now) {
            return false;
        }
        self.next_check = Some(now + CHECK_INTERVAL);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_drop_is_announced_at_once_with_its_count() {
        let start = Instant::now();
        let mut drops = Drops::default();
        let warning = drops.count(53, start).expect("announced at once");
        assert!(warning.contains("dropped the 53 oldest"), "{warning}");
        assert!(warning.contains("maxQueuedDatapoints"), "{warning}");
        assert_eq!(drops.warning_due(start), None, "nothing left to announce");
    }

    #[test]
    fn drops_within_the_interval_are_announced_when_it_ends_without_another_drop() {
        let start = Instant::now();
        let mut drops = Drops::default();
        assert!(drops.count(1, start).is_some());
        // Positive control above; now the rate limit holds the next ones back.
        assert_eq!(drops.count(5, start + Duration::from_secs(1)), None);
        assert_eq!(drops.count(2, start + Duration::from_secs(3)), None);
        let later = start + Duration::from_secs(4);
        assert_eq!(drops.warning_due(later), Some(start + WARNING_INTERVAL));
        let early = start + WARNING_INTERVAL - Duration::from_millis(1);
        assert_eq!(drops.warning_if_due(early), None);
        let warning = drops
            .warning_if_due(start + WARNING_INTERVAL)
            .expect("due when the interval ends");
        assert!(warning.contains("dropped the 7 oldest"), "{warning}");
        assert_eq!(drops.warning_due(start + WARNING_INTERVAL), None);
    }

    #[test]
    fn lane_checks_run_at_once_then_at_most_once_per_interval() {
        let start = Instant::now();
        let mut drops = Drops::default();
        assert_eq!(
            drops.check_due(false, start),
            None,
            "only when the lanes ask"
        );
        assert_eq!(drops.check_due(true, start), Some(start));
        assert!(drops.start_check(start));
        let soon = start + Duration::from_millis(100);
        assert!(!drops.start_check(soon), "held back within the interval");
        assert_eq!(drops.check_due(true, soon), Some(start + CHECK_INTERVAL));
        assert!(drops.start_check(start + CHECK_INTERVAL));
    }
}
