//! The background worker: ends sessions the moment they expire, and drives delivery. It sleeps
//! until the earliest deadline (expiry, scheduled send, backoff) or a notification, and
//! indefinitely when nothing is due: no polling.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock;
use crate::datapoint;
use crate::journal::Journal;
use crate::log;
use crate::session::{self, Action};
use crate::tracker::{Inner, Shared};
use crate::upload::{self, InFlight, Outcome, MAX_BATCH_BYTES};

/// How long the worker waits before retrying to record an expired session's end that storage
/// refused.
const EXPIRY_RETRY: Duration = Duration::from_secs(1);

pub fn spawn(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("stint-worker".into())
        .spawn(move || {
            // A bug must not stop expiry and delivery for the rest of the process.
            while std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(shared.clone())))
                .is_err()
            {
                log::error(|| "the Stint worker recovered from an internal error".into());
                std::thread::sleep(Duration::from_secs(1)); // never a hot loop
            }
        })
}

/// The earliest moment the worker has something to do, if any.
pub fn next_due(shared: &Shared, inner: &Inner) -> Option<Instant> {
    let expiry = session::expiry_deadline(&inner.session, shared.config.rules).map(|deadline| {
        let wait = (deadline - clock::now_ms()).max(0) as u64;
        let due = Instant::now() + Duration::from_millis(wait);
        inner.expiry_retry_at.map_or(due, |retry| due.max(retry))
    });
    let send = match shared.config.base_url {
        Some(_) => inner.delivery.due(inner.journal.pending() > 0),
        None => None,
    };
    [expiry, send].into_iter().flatten().min()
}

fn run(shared: Arc<Shared>) {
    let agent = shared.config.base_url.as_ref().map(|_| upload::agent());
    let mut inner = shared.inner.lock();
    loop {
        if inner.stop_worker {
            return;
        }
        // Ending an expired session is the same rule a call would apply. If storage refuses
        // the end (disk full), it is retried a little later, not in a busy loop.
        if inner.expiry_retry_at.is_none_or(|at| at <= Instant::now()) {
            drop(inner);
            let checked = shared.apply(Action::CheckExpiry, None);
            inner = shared.inner.lock();
            inner.expiry_retry_at = checked.is_err().then(|| Instant::now() + EXPIRY_RETRY);
            if inner.stop_worker {
                return;
            }
        }
        if let Some(path) = inner.journal.ask_for_spare() {
            drop(inner);
            let spare = Journal::prepare_spare(&path);
            inner = shared.inner.lock();
            match spare {
                Ok(spare) => inner.journal.install_spare(spare),
                Err(error) => log::debug(|| format!("cannot prepare the next segment: {error}")),
            }
            continue;
        }
        if let Some(outcome) = inner.delivery.outcome.take() {
            settle(&mut inner, outcome);
            shared.changed.notify_all();
            continue;
        }
        let due = next_due(&shared, &inner);
        if let (Some(agent), Some(due)) = (&agent, due) {
            if inner.delivery.in_flight.is_none()
                && due <= Instant::now()
                && inner
                    .delivery
                    .due(inner.journal.pending() > 0)
                    .is_some_and(|d| d <= Instant::now())
            {
                start_request(&shared, &mut inner, agent.clone());
                continue;
            }
        }
        inner.worker_sleeps_until = Some(due);
        match due {
            Some(due) => {
                shared.changed.wait_until(&mut inner, due);
            }
            None => shared.changed.wait(&mut inner),
        }
        inner.worker_sleeps_until = None;
        inner.worker_wakeups += 1;
    }
}

/// Copies the oldest batch out of the journal and sends it on a request thread.
fn start_request(shared: &Arc<Shared>, inner: &mut Inner, agent: ureq::Agent) {
    let limit = inner.delivery.batch_limit;
    let batch = inner.journal.oldest(limit, MAX_BATCH_BYTES);
    let Some(last) = batch.last() else {
        return;
    };
    let events: Vec<&[u8]> = batch.iter().map(|p| p.json).collect();
    let body = upload::body(batch[0].api_key, &shared.config.device_id, &events);
    let in_flight = InFlight {
        last_seq: last.seq,
        count: batch.len(),
        single_id: (batch.len() == 1).then(|| datapoint::id_of(batch[0].json).to_owned()),
    };
    inner.delivery.in_flight = Some(in_flight);
    let base_url = shared.config.base_url.clone().unwrap_or_default();
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let spawned = std::thread::Builder::new()
        .name("stint-request".into())
        .spawn(move || {
            let outcome = upload::send(&agent, &base_url, body);
            // The tracker may be gone (shutdown gave up waiting): then the outcome is moot.
            if let Some(shared) = weak.upgrade() {
                shared.inner.lock().delivery.outcome = Some(outcome);
                shared.changed.notify_all();
            }
        });
    if let Err(error) = spawned {
        inner.delivery.in_flight = None;
        let fraction = inner.ids.next_fraction();
        inner.delivery.failed(None, false, fraction);
        log::warn(|| format!("cannot start a request thread: {error}"));
    }
}

/// Applies the outcome of the request in flight.
fn settle(inner: &mut Inner, outcome: Outcome) {
    let Some(sent) = inner.delivery.in_flight.take() else {
        return;
    };
    let fraction = inner.ids.next_fraction();
    match outcome {
        Outcome::Delivered => {
            let delivered = inner.journal.acknowledge_through(sent.last_seq);
            inner.stats.datapoints_delivered += delivered;
            let pending = inner.journal.pending() > 0;
            inner.delivery.succeeded(pending);
            log::debug(|| format!("delivered {delivered} datapoints"));
        }
        Outcome::Retry {
            reason,
            retry_after,
        } => {
            inner.delivery.failed(retry_after, false, fraction);
            log::info(|| format!("delivery failed ({reason}); will retry"));
        }
        Outcome::Unauthorized { status } => {
            inner.delivery.failed(None, true, fraction);
            log::error(|| {
                format!(
                    "the collector refused the API key (HTTP {status}): check the api_key passed \
                     to stint_initialize; datapoints are kept and retried"
                )
            });
        }
        Outcome::TooLarge | Outcome::Rejected { .. } => {
            if inner.delivery.shrink(sent.count) {
                inner.delivery.requested = true; // bisect without waiting
                return;
            }
            let dropped = inner.journal.acknowledge_through(sent.last_seq);
            inner.stats.datapoints_dropped += dropped;
            let id = sent.single_id.unwrap_or_default();
            let why = match outcome {
                Outcome::Rejected { status } => format!("HTTP {status}"),
                _ => "HTTP 413 for a single datapoint".into(),
            };
            log::warn(|| format!("the collector rejected datapoint {id} ({why}); dropped it"));
            let pending = inner.journal.pending() > 0;
            inner.delivery.succeeded(pending);
        }
    }
}
