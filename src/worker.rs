//! The background worker: ends sessions the moment they expire, and drives delivery. It sleeps
//! until the earliest deadline (expiry, scheduled send, backoff) or a notification, and
//! indefinitely when nothing is due: no polling.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use crate::clock;
use crate::datapoint;
use crate::journal::{Journal, Pending};
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
        Some(_) if inner.network && inner.tracking => inner.delivery.due(shared.has_pending(inner)),
        _ => None,
    };
    [expiry, send, inner.sync_due].into_iter().flatten().min()
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
        if inner.sync_due.is_some_and(|due| due <= Instant::now()) {
            // Power-loss durability is the worker's job: callers never wait for a sync.
            inner.sync_due = None;
            drop(inner);
            if let Err(error) = shared.sync_now() {
                log::warn(|| format!("{error}; retrying at the next sync"));
            }
            inner = shared.inner.lock();
            continue;
        }
        if shared.lanes.wants_absorb() {
            // Storage refused: the records stay in their lanes, and calls record in the journal.
            let _ = shared.absorb_lanes(&mut inner);
            continue;
        }
        if let Some(outcome) = inner.delivery.outcome.take() {
            settle(&shared, &mut inner, outcome);
            shared.changed.notify_all();
            continue;
        }
        let due = next_due(&shared, &inner);
        if let (Some(agent), Some(due)) = (&agent, due) {
            if inner.network
                && inner.tracking
                && inner.delivery.in_flight.is_none()
                && due <= Instant::now()
                && inner
                    .delivery
                    .due(shared.has_pending(&inner))
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

/// Copies the oldest batch out of the journal and sends it, in its wire form, on a request
/// thread.
fn start_request(shared: &Arc<Shared>, inner: &mut MutexGuard<'_, Inner>, agent: ureq::Agent) {
    let absorbed = shared.absorb_lanes(inner);
    let limit = inner.delivery.batch_limit;
    let Some(stored) = StoredBatch::copy(&inner.journal.oldest(limit, MAX_BATCH_BYTES)) else {
        if absorbed.is_err() {
            // All that waits is in lanes storage refuses to empty: retried with the backoff
            // of a failed request, not in a loop.
            let fraction = inner.ids.next_fraction();
            inner.delivery.failed(None, false, fraction);
        }
        return;
    };
    // Writing the JSON costs many times the copy: callers must not wait for it. (Meanwhile a
    // full queue may mark some of these dropped; they are sent all the same, nothing is lost.)
    let device_id = inner.device_id.clone();
    let erasures = inner.erasures;
    let (wire, body) = MutexGuard::unlocked(inner, || {
        let wire = WireBatch::of(&stored);
        let events: Vec<&[u8]> = wire.events.iter().collect();
        let body = upload::body(&stored.api_key, &device_id, &events);
        (wire, body)
    });
    // Erased meanwhile (tracking disabled, data wiped): what was copied must not be sent.
    if inner.stop_worker || inner.erasures != erasures || !inner.tracking || !inner.network {
        return;
    }
    let count = wire.events.len();
    if count == 0 {
        // Nothing readable (a bug, not a torn write): drop it rather than stall the queue.
        let dropped = inner.journal.acknowledge_through(wire.last_seq);
        inner.stats.datapoints_dropped += dropped;
        return;
    }
    let in_flight = InFlight {
        last_seq: wire.last_seq,
        count,
        single_id: (count == 1).then(|| datapoint::id_of(wire.events.get(0)).to_owned()),
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

/// The collector's URL for messages: without its query (which could carry a secret).
fn shown_url(base_url: &str) -> String {
    let end = base_url.find(['?', '#']).unwrap_or(base_url.len());
    format!("{}/api/v3/data", &base_url[..end])
}

/// `reason` with the base URL's query (if any) taken out, as the transport may quote the URL.
fn without_query(reason: &str, base_url: Option<&str>) -> String {
    match base_url {
        Some(url) if url.contains(['?', '#']) => {
            let end = url.find(['?', '#']).unwrap_or(url.len());
            reason.replace(url, &url[..end])
        }
        _ => reason.to_owned(),
    }
}

/// Byte strings one after another in one buffer (a batch without an allocation per datapoint).
#[derive(Default)]
struct Packed {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Packed {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.ends.push(self.bytes.len());
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// The oldest batch as stored, copied out of the journal so that the lock can be released.
struct StoredBatch {
    api_key: String,
    seqs: Vec<u64>,
    payloads: Packed,
}

impl StoredBatch {
    fn copy(batch: &[Pending<'_>]) -> Option<StoredBatch> {
        let mut stored = StoredBatch {
            api_key: batch.first()?.api_key.to_owned(),
            seqs: batch.iter().map(|p| p.seq).collect(),
            payloads: Packed::default(),
        };
        for pending in batch {
            stored.payloads.push(pending.payload);
        }
        Some(stored)
    }
}

/// A batch's datapoints in their wire form, at most `MAX_BATCH_BYTES` of them (and at least
/// one).
struct WireBatch {
    events: Packed,
    /// The last datapoint covered, sent or skipped as unreadable.
    last_seq: u64,
}

impl WireBatch {
    fn of(stored: &StoredBatch) -> WireBatch {
        let mut wire = WireBatch {
            events: Packed::default(),
            last_seq: 0,
        };
        let json = &mut wire.events.bytes;
        json.reserve(2 * stored.payloads.bytes.len());
        for (&seq, payload) in stored.seqs.iter().zip(stored.payloads.iter()) {
            let start = json.len();
            if datapoint::stored_to_json(payload, json).is_err() {
                json.truncate(start);
                log::error(|| format!("datapoint {seq} is unreadable; skipped"));
            } else if !wire.events.ends.is_empty() && json.len() > MAX_BATCH_BYTES {
                json.truncate(start);
                break;
            } else {
                wire.events.ends.push(json.len());
            }
            wire.last_seq = seq;
        }
        wire
    }
}

/// Applies the outcome of the request in flight.
fn settle(shared: &Shared, inner: &mut Inner, outcome: Outcome) {
    let Some(sent) = inner.delivery.in_flight.take() else {
        return;
    };
    let fraction = inner.ids.next_fraction();
    let url = shown_url(shared.config.base_url.as_deref().unwrap_or_default());
    let first_failure = inner.last_failure.is_none();
    match outcome {
        Outcome::Delivered => {
            let delivered = inner.journal.acknowledge_through(sent.last_seq);
            inner.stats.datapoints_delivered += delivered;
            let pending = shared.has_pending(inner);
            inner.delivery.succeeded(pending);
            if inner.last_failure.take().is_some() {
                log::info(|| format!("delivery to {url} works again"));
            }
            log::debug(|| format!("delivered {delivered} datapoints"));
        }
        Outcome::Retry {
            reason,
            retry_after,
        } => {
            inner.delivery.failed(retry_after, false, fraction);
            let reason = without_query(&reason, shared.config.base_url.as_deref());
            // The first failure of a streak is worth a warning; the retries after it are not.
            let level = if first_failure {
                log::LogLevel::Warn
            } else {
                log::LogLevel::Debug
            };
            log::log(level, || {
                format!("delivery to {url} failed: {reason}; datapoints are kept and retried")
            });
            inner.last_failure = Some(reason);
        }
        Outcome::Unauthorized { status } => {
            inner.delivery.failed(None, true, fraction);
            inner.last_failure = Some(format!("HTTP {status}: the API key was refused"));
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
            let pending = shared.has_pending(inner);
            inner.delivery.succeeded(pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapoint::Datapoint;
    use crate::input::CustomEvent;
    use crate::session::Record;

    fn stored_event(properties: &str) -> Vec<u8> {
        let event = CustomEvent::new("big", Some(properties)).unwrap();
        let record = Record::CustomEvent {
            session_id: None,
            user: None,
            time: 0,
        };
        let datapoint = Datapoint::new(&record, [1; 16], Some(&event));
        let mut stored = vec![0; datapoint.stored_len()];
        datapoint.store(&mut stored);
        stored
    }

    fn pending(seq: u64, payload: &[u8]) -> Pending<'_> {
        Pending {
            seq,
            api_key: "key",
            payload,
        }
    }

    fn to_wire(batch: &[Pending<'_>]) -> WireBatch {
        WireBatch::of(&StoredBatch::copy(batch).unwrap())
    }

    #[test]
    fn a_wire_batch_stops_at_the_byte_limit_of_its_json() {
        let big = stored_event(&format!("{{\"x\":\"{}\"}}", "a".repeat(40 * 1024)));
        let batch: Vec<_> = (1..=20).map(|seq| pending(seq, &big)).collect();
        let wire = to_wire(&batch);
        let json = wire.events.bytes.len();
        assert!(json <= MAX_BATCH_BYTES);
        assert!(
            json + wire.events.get(0).len() > MAX_BATCH_BYTES,
            "as many as fit"
        );
        assert_eq!(wire.last_seq, wire.events.len() as u64);
        for event in wire.events.iter() {
            let value: serde_json::Value = serde_json::from_slice(event).unwrap();
            assert_eq!(value["data"]["n"], "big");
        }
        let huge = format!("{{\"legacy\":\"{}\"}}", "a".repeat(600 * 1024));
        let alone = to_wire(&[pending(9, huge.as_bytes())]);
        assert_eq!((alone.events.len(), alone.last_seq), (1, 9), "at least one");
    }

    #[test]
    fn unreadable_payloads_are_skipped_and_covered() {
        let good = stored_event("{}");
        let batch = [
            pending(1, b"\x01garbage"),
            pending(2, &good),
            pending(3, b""),
        ];
        let wire = to_wire(&batch);
        assert_eq!(wire.events.len(), 1);
        let mut json = Vec::new();
        datapoint::stored_to_json(&good, &mut json).unwrap();
        assert_eq!(wire.events.get(0), json);
        assert_eq!(
            wire.last_seq, 3,
            "acknowledging the batch covers the skipped ones"
        );
        let none = to_wire(&[pending(4, b"\x02")]);
        assert_eq!(none.events.len(), 0);
        assert_eq!(none.last_seq, 4);
    }
}
