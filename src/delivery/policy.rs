//! The retry policy (glean-core's `upload/policy.rs`): when the next send is due, exponential
//! backoff with jitter after a failure, `Retry-After` as a floor, and halving the batch when
//! the collector refuses it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::response::Outcome;

/// The most datapoints one request carries.
pub const MAX_BATCH_DATAPOINTS: usize = 500;
/// The most bytes of datapoints (their JSON) one request carries.
pub const MAX_BATCH_BYTES: usize = 512 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The retry state between attempts.
pub struct Delivery {
    /// When the next regular send is due (set when something becomes pending).
    scheduled: Option<Instant>,
    /// After a failure: no regular attempt before this.
    backoff_until: Option<Instant>,
    /// Retry-After: no attempt at all before this, even on request.
    not_before: Option<Instant>,
    failures: u32,
    /// Batch size limit, halved by 413 and rejections, doubled back by successes.
    pub batch_limit: usize,
    /// A send was asked for (flush, request, shutdown).
    pub requested: bool,
    /// The request being sent, if any (a queue of at most one, taken in order).
    pub in_flight: VecDeque<InFlight>,
    /// Why the latest attempt failed, while failures last (for flush's message).
    pub last_failure: Option<String>,
}

/// The batch being sent: the datapoints up to `last_seq`, `count` of them.
pub struct InFlight {
    /// Which request this is: unique in the process, so that the outcome of a request abandoned
    /// (by an erasure, or a failure before it) is never taken for another's.
    pub id: u64,
    /// Its result, set by the request thread.
    pub outcome: Option<Outcome>,
    /// The last datapoint it covers.
    pub last_seq: u64,
    /// How many datapoints it carries.
    pub count: usize,
    /// The id of the only datapoint, when the batch has one (named when it is dropped).
    pub single_id: Option<String>,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            scheduled: None,
            backoff_until: None,
            not_before: None,
            failures: 0,
            batch_limit: MAX_BATCH_DATAPOINTS,
            requested: false,
            in_flight: VecDeque::new(),
            last_failure: None,
        }
    }
}

impl Delivery {
    /// Something was recorded: make sure a send is scheduled within the flush interval.
    /// Returns whether that scheduled one (the worker may have to wake sooner).
    pub fn note_recorded(&mut self, flush_interval: Duration) -> bool {
        if self.scheduled.is_some() {
            return false;
        }
        self.scheduled = Some(Instant::now() + flush_interval);
        true
    }

    /// When the next attempt is due, given whether anything is pending.
    pub fn due(&self, pending: bool) -> Option<Instant> {
        if !pending || !self.in_flight.is_empty() {
            return None;
        }
        let regular = if self.requested {
            None
        } else {
            Some(
                self.scheduled?
                    .max(self.backoff_until.unwrap_or(self.scheduled?)),
            )
        };
        let earliest = [regular, self.not_before].into_iter().flatten().max();
        Some(earliest.unwrap_or_else(Instant::now))
    }

    /// Whether to prepare the next batch behind the request in flight (if the journal holds
    /// more after it): only behind a full batch that is still running, with no failure,
    /// backoff or halving in effect, that is while a backlog drains, when the next batch
    /// goes at once on its success.
    pub fn may_prepare_next(&self) -> bool {
        self.in_flight.len() == 1
            && self.in_flight[0].outcome.is_none()
            && self.in_flight[0].count >= self.batch_limit
            && self.batch_limit == MAX_BATCH_DATAPOINTS
            && self.failures == 0
            && self.backoff_until.is_none()
            && self.not_before.is_none()
    }

    /// The batch was acknowledged (delivered, or dropped as rejected).
    pub fn succeeded(&mut self, still_pending: bool) {
        self.failures = 0;
        self.backoff_until = None;
        self.not_before = None;
        self.batch_limit = (self.batch_limit * 2).min(MAX_BATCH_DATAPOINTS);
        // A backlog drains batch after batch; otherwise wait for the next recording.
        self.scheduled = still_pending.then(Instant::now);
        if !still_pending {
            self.requested = false;
        }
    }

    /// A failed attempt: back off exponentially with jitter (`fraction` in [0, 1)).
    pub fn failed(&mut self, retry_after: Option<Duration>, long: bool, fraction: f64) {
        self.failures = self.failures.saturating_add(1);
        let exponential = FIRST_BACKOFF
            .checked_mul(1u32 << (self.failures - 1).min(16))
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF);
        let base = if long { MAX_BACKOFF } else { exponential };
        // Jitter within [base/2, base) spreads a fleet's retries.
        let wait = base.mul_f64(0.5 + fraction / 2.0);
        let now = Instant::now();
        self.backoff_until = Some(now + wait);
        self.not_before = retry_after.map(|after| now + after);
        self.requested = false;
    }

    /// Halves the batch; returns false when it is already a single datapoint.
    pub fn shrink(&mut self, sent: usize) -> bool {
        if sent <= 1 {
            return false;
        }
        self.batch_limit = (sent / 2).max(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_retry_after_is_the_floor() {
        let mut delivery = Delivery::default();
        delivery.note_recorded(Duration::ZERO);
        let mut waits = Vec::new();
        for _ in 0..12 {
            delivery.failed(None, false, 0.999);
            waits.push(delivery.backoff_until.unwrap() - Instant::now());
        }
        assert!(waits[0] <= Duration::from_secs(1) && waits[0] > Duration::from_millis(900));
        assert!(waits[1] > Duration::from_millis(1900));
        assert!(waits[11] <= MAX_BACKOFF && waits[11] > Duration::from_secs(290));
        delivery.failed(Some(Duration::from_secs(2)), false, 0.0);
        delivery.requested = true;
        let due = delivery.due(true).unwrap();
        assert!(
            due > Instant::now() + Duration::from_millis(1900),
            "a request still waits for Retry-After"
        );
    }
}
