//! The background worker: ends sessions the moment they expire, and drives delivery. It sleeps
//! until the earliest deadline (expiry, scheduled send, backoff) or a notification, and
//! indefinitely when nothing is due: no polling.
//!
//! The worker knows the engine only through the `Engine` trait below: it asks for each step by
//! a method and never touches the engine's fields, and `delivery` imports nothing above it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::batch::{StoredBatch, WireBatch};
use super::policy::{Delivery, InFlight};
use super::request;
use super::response::Outcome;
use crate::dispatch::LogLevel;
use crate::log;
use crate::storage::datapoint;

/// What became of a batch that the journal may forget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The collector has it.
    Delivered,
    /// The collector refused it for good (or it is unreadable): it is dropped.
    Dropped,
}

/// What the worker asks of the engine. Methods taking the state run under the engine's lock,
/// which the worker holds through `lock` and releases in `sleep` (and around slow steps, which
/// the engine's methods do themselves).
pub trait Engine: Send + Sync + 'static {
    /// What the engine's lock guards.
    type State: Send;

    /// Takes the engine's lock.
    fn lock(&self) -> MutexGuard<'_, Self::State>;
    /// Wakes the worker and whoever waits for progress (flush).
    fn notify(&self);
    /// Releases the lock until notified or until `until` (`None`: until notified).
    fn sleep(&self, state: &mut MutexGuard<'_, Self::State>, until: Option<Instant>);
    /// The collector's base URL; without one, nothing is sent.
    fn base_url(&self) -> Option<&str>;

    /// The worker must return (shutdown).
    fn stopping(state: &Self::State) -> bool;
    /// Requests may start: tracking and the network are enabled.
    fn may_send(state: &Self::State) -> bool;
    /// Counts erasures of the queue: a batch copied before one must not be sent.
    fn erasures(state: &Self::State) -> u64;
    /// The device id, for the envelope.
    fn device_id(state: &Self::State) -> String;
    /// The delivery policy's state (owned by `delivery`, kept under the engine's lock).
    fn delivery(state: &mut Self::State) -> &mut Delivery;
    /// A fraction in [0, 1) for backoff jitter.
    fn jitter(state: &mut Self::State) -> f64;
    /// The earliest moment the worker has something to do, if any.
    fn next_due(&self, state: &Self::State) -> Option<Instant>;
    /// Whether anything waits for delivery.
    fn has_pending(&self, state: &Self::State) -> bool;

    /// Ends the open session if it has expired (unless a refused attempt waits to be retried).
    fn end_expired_session(&self, state: &mut MutexGuard<'_, Self::State>);
    /// Makes everything durable against power loss if a sync is due; returns whether it did.
    fn sync_if_due(&self, state: &mut MutexGuard<'_, Self::State>) -> bool;
    /// Prepares the journal's next segment (or the pages calls will store into next) if it
    /// wants one; returns whether it did.
    fn prepare_spare(&self, state: &mut MutexGuard<'_, Self::State>) -> bool;
    /// Once a backlog has drained (nothing pending, nothing in flight) and not since the last
    /// time: gives the memory it needed back; returns whether it did.
    fn release_if_drained(&self, state: &mut MutexGuard<'_, Self::State>) -> bool;
    /// Moves the lanes' records into the journal if a lane is half full; returns whether it did.
    fn absorb_if_wanted(&self, state: &mut Self::State) -> bool;
    /// Announces datapoints a full queue dropped (moving lane records that may overflow it into
    /// the journal first, if due): no host call and no network needed. Returns whether it moved
    /// records.
    fn announce_drops(&self, state: &mut Self::State) -> bool;
    /// A request succeeded (or its batch was dropped): schedules the next one.
    fn succeeded(&self, state: &mut Self::State) {
        let pending = self.has_pending(state);
        Self::delivery(state).succeeded(pending);
    }
    /// Moves the lanes' records into the journal; false if storage refused some.
    fn absorb_lanes(&self, state: &mut Self::State) -> bool;
    /// The oldest pending datapoints recorded after `after` (0: all), at most `limit`, copied
    /// out of the journal.
    fn oldest_batch(state: &Self::State, after: u64, limit: usize) -> Option<StoredBatch>;
    /// Whether a datapoint recorded after `seq` is pending in the journal.
    fn pending_after(state: &Self::State, seq: u64) -> bool;
    /// The newest datapoint acknowledged (delivered, or dropped as refused).
    fn acked_through(state: &Self::State) -> u64;
    /// How many datapoints were dropped (by a full queue, or refused).
    fn dropped(state: &Self::State) -> u64;
    /// Forgets every datapoint through `last_seq`; returns how many were still pending.
    fn settle(state: &mut Self::State, last_seq: u64, how: Settled) -> u64;
}

/// How long the worker waits before retrying to record an expired session's end that storage
/// refused.
pub const EXPIRY_RETRY: Duration = Duration::from_secs(1);

/// Starts the worker thread.
pub fn spawn<E: Engine>(engine: Arc<E>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("stint-worker".into())
        .spawn(move || {
            // A bug must not stop expiry and delivery for the rest of the process.
            while std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&engine))).is_err() {
                log::error(|| "the Stint worker recovered from an internal error".into());
                std::thread::sleep(Duration::from_secs(1)); // never a hot loop
            }
        })
}

/// Runs requests, one at a time, on a thread of their own, so that a server that never answers
/// holds up neither the worker nor shutdown. One long-lived thread rather than one per request:
/// a thread started while the last one was still exiting took a malloc arena of its own, and
/// each arena kept a few hundred KB resident after the backlog drained. The thread ends once
/// the worker drops this (after the request it is running, if any). A queue under a lock rather
/// than `std::sync::mpsc`: the worker has at most one request in flight, and the channel's
/// code cost the library 30 KB.
#[derive(Default)]
struct Requests(Option<Arc<RequestQueue>>);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct RequestQueue {
    /// The jobs not started yet, and whether the worker has gone.
    jobs: Mutex<(VecDeque<Job>, bool)>,
    more: Condvar,
}

impl Requests {
    /// Runs `job` on the request thread, starting it if there is none.
    fn run(&mut self, job: Job) -> std::io::Result<()> {
        if let Some(queue) = &self.0 {
            queue.jobs.lock().0.push_back(job);
            queue.more.notify_one();
            return Ok(());
        }
        let queue = Arc::new(RequestQueue::default());
        queue.jobs.lock().0.push_back(job);
        let theirs = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("stint-request".into())
            .spawn(move || loop {
                let job = {
                    let mut jobs = theirs.jobs.lock();
                    loop {
                        match jobs.0.pop_front() {
                            Some(job) => break job,
                            None if jobs.1 => return,
                            None => theirs.more.wait(&mut jobs),
                        }
                    }
                };
                // A job's panic must not end the thread (the jobs after it would never run).
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            })?;
        self.0 = Some(queue);
        Ok(())
    }
}

impl Drop for Requests {
    fn drop(&mut self) {
        if let Some(queue) = &self.0 {
            queue.jobs.lock().1 = true;
            queue.more.notify_one();
        }
    }
}

fn run<E: Engine>(engine: &Arc<E>) {
    let agent = engine.base_url().map(|_| request::agent());
    let mut requests = Requests::default();
    // The next batch's body, built while the request before it is in flight.
    let mut next: Option<Next> = None;
    let mut state = engine.lock();
    loop {
        if E::stopping(&state) {
            return;
        }
        // Ending an expired session is the same rule a call would apply. If storage refuses
        // the end (disk full), it is retried a little later, not in a busy loop.
        engine.end_expired_session(&mut state);
        if E::stopping(&state) {
            return;
        }
        if engine.prepare_spare(&mut state) || engine.sync_if_due(&mut state) {
            continue;
        }
        // Storage refused: the records stay in their lanes, and calls record in the journal.
        if engine.absorb_if_wanted(&mut state) || engine.announce_drops(&mut state) {
            continue;
        }
        if let Some((sent, outcome)) = take_settled(E::delivery(&mut state)) {
            if !matches!(outcome, Outcome::Delivered) {
                next = None; // built on the assumption that this batch would be acknowledged
            }
            settle(&**engine, &mut state, sent, outcome);
            engine.notify();
            continue;
        }
        let due = engine.next_due(&state);
        if let Some(agent) = &agent {
            if request_due(&**engine, &mut state, due) {
                let next = next.take().and_then(|n| n.prepared);
                start_request(engine, &mut state, agent.clone(), &mut requests, next);
                continue;
            }
            if let Some((behind, after)) = to_prepare::<E>(&mut state, next.as_ref()) {
                let prepared = Prepared::build::<E>(&mut state, after);
                next = Some(Next { behind, prepared });
                continue;
            }
        }
        if E::delivery(&mut state).in_flight.is_empty() {
            next = None; // nothing it could follow: not kept in memory while idle
        }
        if engine.release_if_drained(&mut state) {
            continue;
        }
        engine.sleep(&mut state, due);
    }
}

/// Whether the next request is due (none in flight).
fn request_due<E: Engine>(engine: &E, state: &mut E::State, due: Option<Instant>) -> bool {
    if !E::may_send(state) {
        return false;
    }
    let pending = engine.has_pending(state);
    let delivery = E::delivery(state);
    // `Delivery::due` answers `Instant::now()` for "at once": compare with a later now.
    delivery.in_flight.is_empty()
        && due.is_some_and(|due| due <= Instant::now())
        && delivery.due(pending).is_some_and(|d| d <= Instant::now())
}

/// The next batch, prepared behind the request in flight.
struct Next {
    /// The request it follows.
    behind: u64,
    /// `None`: nothing to prepare was found.
    prepared: Option<Prepared>,
}

/// Whether to prepare the next batch now, and then behind which request and past which
/// datapoint: once per request, while a full batch is in flight and the journal holds more.
fn to_prepare<E: Engine>(state: &mut E::State, next: Option<&Next>) -> Option<(u64, u64)> {
    let delivery = E::delivery(state);
    if !delivery.may_prepare_next() {
        return None;
    }
    let in_flight = &delivery.in_flight[0];
    let (behind, after) = (in_flight.id, in_flight.last_seq);
    if next.is_some_and(|n| n.behind == behind) || !E::pending_after(state, after) {
        return None;
    }
    Some((behind, after))
}

/// A request body (compressed if that pays) built without the lock, and what it was built
/// under: if any of it changed meanwhile, the body must not be sent.
struct Prepared {
    /// The batch starts past this datapoint: 0 for the oldest pending; for one prepared
    /// behind a request, that request's last.
    after: u64,
    erasures: u64,
    device_id: String,
    batch_limit: usize,
    dropped: u64,
    last_seq: u64,
    count: usize,
    single_id: Option<String>,
    body: Vec<u8>,
    gzipped: bool,
}

impl Prepared {
    /// Copies the batch after `after` out of the journal, and writes and compresses its body
    /// with the lock released (many times the copy: callers must not wait for it).
    fn build<E: Engine>(state: &mut MutexGuard<'_, E::State>, after: u64) -> Option<Prepared> {
        let batch_limit = E::delivery(state).batch_limit;
        let stored = E::oldest_batch(state, after, batch_limit)?;
        let device_id = E::device_id(state);
        let (erasures, dropped) = (E::erasures(state), E::dropped(state));
        let (wire, (body, gzipped)) = MutexGuard::unlocked(state, || {
            let wire = WireBatch::of(&stored);
            let events: Vec<&[u8]> = wire.events.iter().collect();
            let body = super::batch::body(&stored.api_key, &device_id, &events);
            (wire, request::compress(body))
        });
        let count = wire.events.len();
        Some(Prepared {
            after,
            erasures,
            device_id,
            batch_limit,
            dropped,
            last_seq: wire.last_seq,
            count,
            single_id: (count == 1).then(|| datapoint::id_of(wire.events.get(0)).to_owned()),
            body,
            gzipped,
        })
    }

    /// Whether it may be sent now: nothing erased (tracking disabled, data wiped), the same
    /// device id, requests allowed, none in flight, and no halving. One prepared behind a
    /// request also needs that request acknowledged (delivered), and nothing dropped since
    /// (a full queue's drop, or a refused datapoint's): else it is built again. (While a
    /// body is built for the oldest batch, a full queue may mark some of it dropped; it is
    /// sent all the same, nothing is lost.)
    fn still_valid<E: Engine>(&self, state: &mut E::State) -> bool {
        if E::stopping(state)
            || !E::may_send(state)
            || E::erasures(state) != self.erasures
            || E::device_id(state) != self.device_id
        {
            return false;
        }
        let behind_acknowledged =
            E::acked_through(state) == self.after && E::dropped(state) == self.dropped;
        let delivery = E::delivery(state);
        delivery.batch_limit == self.batch_limit
            && delivery.in_flight.is_empty()
            && (self.after == 0 || behind_acknowledged)
    }
}

/// Sends the oldest batch, in its wire form, on the request thread: `next` if it was prepared
/// for it and is still valid, else copied out of the journal now.
fn start_request<E: Engine>(
    engine: &Arc<E>,
    state: &mut MutexGuard<'_, E::State>,
    agent: ureq::Agent,
    requests: &mut Requests,
    next: Option<Prepared>,
) {
    let absorbed = engine.absorb_lanes(state);
    let next = next.filter(|n| n.still_valid::<E>(state));
    let Some(prepared) = next.or_else(|| Prepared::build::<E>(state, 0)) else {
        if !absorbed {
            // All that waits is in lanes storage refuses to empty: retried with the backoff
            // of a failed request, not in a loop.
            let fraction = E::jitter(state);
            E::delivery(state).failed(None, false, fraction);
        }
        return;
    };
    if !prepared.still_valid::<E>(state) {
        return;
    }
    if prepared.count == 0 {
        // Nothing readable (a bug, not a torn write): drop it rather than stall the queue.
        E::settle(state, prepared.last_seq, Settled::Dropped);
        return;
    }
    let id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
    E::delivery(state).in_flight.push_back(InFlight {
        id,
        outcome: None,
        last_seq: prepared.last_seq,
        count: prepared.count,
        single_id: prepared.single_id,
    });
    let base_url = engine.base_url().unwrap_or_default().to_owned();
    let weak: Weak<E> = Arc::downgrade(engine);
    let (body, gzipped) = (prepared.body, prepared.gzipped);
    let spawned = requests.run(Box::new(move || {
        let outcome = request::send(&agent, &base_url, body, gzipped);
        // The engine may be gone (shutdown gave up waiting): then the outcome is moot.
        if let Some(engine) = weak.upgrade() {
            record_outcome(E::delivery(&mut engine.lock()), id, outcome);
            engine.notify();
        }
    }));
    if let Err(error) = spawned {
        let fraction = E::jitter(state);
        let delivery = E::delivery(state);
        delivery.in_flight.clear();
        delivery.failed(None, false, fraction);
        log::warn(|| format!("cannot start a request thread: {error}"));
    }
}

/// Numbers the requests (see `InFlight::id`).
static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// Keeps the outcome of request `id` for the worker, unless the request was abandoned (its
/// state erased): an old request's outcome is never taken for a newer one's.
fn record_outcome(delivery: &mut Delivery, id: u64, outcome: Outcome) {
    if let Some(request) = delivery.in_flight.iter_mut().find(|r| r.id == id) {
        request.outcome = Some(outcome);
    }
}

/// The request in flight, once it has its outcome.
fn take_settled(delivery: &mut Delivery) -> Option<(InFlight, Outcome)> {
    let outcome = delivery.in_flight.front_mut()?.outcome.take()?;
    let sent = delivery.in_flight.pop_front()?;
    Some((sent, outcome))
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

/// Applies the outcome of the request that was in flight, `sent`.
fn settle<E: Engine>(engine: &E, state: &mut E::State, sent: InFlight, outcome: Outcome) {
    let fraction = E::jitter(state);
    let url = shown_url(engine.base_url().unwrap_or_default());
    let first_failure = E::delivery(state).last_failure.is_none();
    match outcome {
        Outcome::Delivered => {
            let delivered = E::settle(state, sent.last_seq, Settled::Delivered);
            engine.succeeded(state);
            let delivery = E::delivery(state);
            if delivery.last_failure.take().is_some() {
                log::info(|| format!("delivery to {url} works again"));
            }
            log::debug(|| format!("delivered {delivered} datapoints"));
        }
        Outcome::Retry {
            reason,
            retry_after,
        } => {
            let delivery = E::delivery(state);
            delivery.failed(retry_after, false, fraction);
            let reason = without_query(&reason, engine.base_url());
            // The first failure of a streak is worth a warning; the retries after it are not.
            let level = if first_failure {
                LogLevel::Warn
            } else {
                LogLevel::Debug
            };
            log::log(level, || {
                format!("delivery to {url} failed: {reason}; datapoints are kept and retried")
            });
            delivery.last_failure = Some(reason);
        }
        Outcome::Unauthorized { status } => {
            let delivery = E::delivery(state);
            delivery.failed(None, true, fraction);
            delivery.last_failure = Some(format!("HTTP {status}: the API key was refused"));
            log::error(|| {
                format!(
                    "the collector refused the API key (HTTP {status}): check the api_key passed \
                     to stint_initialize; datapoints are kept and retried"
                )
            });
        }
        Outcome::TooLarge | Outcome::Rejected { .. } => {
            let delivery = E::delivery(state);
            if delivery.shrink(sent.count) {
                delivery.requested = true; // bisect without waiting
                return;
            }
            E::settle(state, sent.last_seq, Settled::Dropped);
            let id = sent.single_id.unwrap_or_default();
            let why = match outcome {
                Outcome::Rejected { status } => format!("HTTP {status}"),
                _ => "HTTP 413 for a single datapoint".into(),
            };
            log::warn(|| format!("the collector rejected datapoint {id} ({why}); dropped it"));
            engine.succeeded(state);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The worker's decisions against a fake engine: no storage, no network, no clock.

    use super::*;
    use crate::input::CustomEvent;
    use crate::session::Record;
    use crate::storage::datapoint::Datapoint;
    use crate::storage::journal::Pending;
    use parking_lot::Mutex;

    const BASE_URL: &str = "https://collector.example/?token=secret";

    #[derive(Default)]
    struct FakeState {
        delivery: Delivery,
        settled: Vec<(u64, Settled)>,
        pending: bool,
        erasures: u64,
        network_off: bool,
        /// A wipe's new device id, if any.
        new_device_id: bool,
        /// Pending datapoints as stored, by seq.
        journal: Vec<(u64, Vec<u8>)>,
        acked_through: u64,
        dropped: u64,
    }

    #[derive(Default)]
    struct Fake {
        state: Mutex<FakeState>,
    }

    impl Engine for Fake {
        type State = FakeState;

        fn lock(&self) -> MutexGuard<'_, FakeState> {
            self.state.lock()
        }
        fn notify(&self) {}
        fn sleep(&self, _: &mut MutexGuard<'_, FakeState>, _: Option<Instant>) {}
        fn base_url(&self) -> Option<&str> {
            Some(BASE_URL)
        }
        fn stopping(_: &FakeState) -> bool {
            false
        }
        fn may_send(state: &FakeState) -> bool {
            !state.network_off
        }
        fn erasures(state: &FakeState) -> u64 {
            state.erasures
        }
        fn device_id(state: &FakeState) -> String {
            if state.new_device_id { "new" } else { "device" }.into()
        }
        fn delivery(state: &mut FakeState) -> &mut Delivery {
            &mut state.delivery
        }
        fn jitter(_: &mut FakeState) -> f64 {
            0.5
        }
        fn next_due(&self, _: &FakeState) -> Option<Instant> {
            None
        }
        fn has_pending(&self, state: &FakeState) -> bool {
            state.pending
        }
        fn end_expired_session(&self, _: &mut MutexGuard<'_, FakeState>) {}
        fn sync_if_due(&self, _: &mut MutexGuard<'_, FakeState>) -> bool {
            false
        }
        fn prepare_spare(&self, _: &mut MutexGuard<'_, FakeState>) -> bool {
            false
        }
        fn release_if_drained(&self, _: &mut MutexGuard<'_, FakeState>) -> bool {
            false
        }
        fn absorb_if_wanted(&self, _: &mut FakeState) -> bool {
            false
        }
        fn announce_drops(&self, _: &mut FakeState) -> bool {
            false
        }
        fn absorb_lanes(&self, _: &mut FakeState) -> bool {
            true
        }
        fn oldest_batch(state: &FakeState, after: u64, limit: usize) -> Option<StoredBatch> {
            let batch: Vec<Pending<'_>> = (state.journal.iter())
                .filter(|(seq, _)| *seq > after)
                .take(limit)
                .map(|(seq, payload)| Pending {
                    seq: *seq,
                    api_key: "key",
                    payload,
                })
                .collect();
            StoredBatch::copy(&batch)
        }
        fn pending_after(state: &FakeState, seq: u64) -> bool {
            state.journal.iter().any(|(s, _)| *s > seq)
        }
        fn acked_through(state: &FakeState) -> u64 {
            state.acked_through
        }
        fn dropped(state: &FakeState) -> u64 {
            state.dropped
        }
        fn settle(state: &mut FakeState, last_seq: u64, how: Settled) -> u64 {
            state.settled.push((last_seq, how));
            state.acked_through = last_seq;
            state.dropped += u64::from(how == Settled::Dropped);
            1
        }
    }

    /// A fake engine whose journal holds `count` custom events, seqs 1 to `count`.
    fn with_journal(count: u64) -> Fake {
        let event = CustomEvent::new("e", None).unwrap();
        let record = Record::CustomEvent {
            session_id: None,
            user: None,
            time: 0,
        };
        let engine = Fake::default();
        let mut state = engine.lock();
        for seq in 1..=count {
            let datapoint = Datapoint::new(&record, [seq as u8; 16], Some(&event));
            let mut stored = vec![0; datapoint.stored_len()];
            datapoint.store(&mut stored);
            state.journal.push((seq, stored));
        }
        state.pending = count > 0;
        drop(state);
        engine
    }

    /// Puts `prepared` in flight as `start_request` would (without sending it); returns its id.
    fn put_in_flight(state: &mut FakeState, prepared: &Prepared) -> u64 {
        let id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
        state.delivery.in_flight.push_back(InFlight {
            id,
            outcome: None,
            last_seq: prepared.last_seq,
            count: prepared.count,
            single_id: None,
        });
        id
    }

    /// Settles the request in flight with `outcome`, as the worker would.
    fn settle_with(engine: &Fake, id: u64, outcome: Outcome) {
        let mut state = engine.lock();
        record_outcome(&mut state.delivery, id, outcome);
        if let Some((sent, outcome)) = take_settled(&mut state.delivery) {
            settle(engine, &mut state, sent, outcome);
        }
    }

    /// A fake with 1,200 pending, the first 500 in flight, and the next 500 prepared behind
    /// them; returns the request's id and the prepared batch.
    fn prepared_behind_a_request() -> (Fake, u64, Prepared) {
        let engine = with_journal(1200);
        let mut state = engine.lock();
        let first = Prepared::build::<Fake>(&mut state, 0).unwrap();
        assert!(first.still_valid::<Fake>(&mut state));
        let id = put_in_flight(&mut state, &first);
        let (behind, after) = to_prepare::<Fake>(&mut state, None).unwrap();
        assert_eq!((behind, after), (id, 500));
        let next = Prepared::build::<Fake>(&mut state, after).unwrap();
        assert_eq!((next.count, next.last_seq), (500, 1000));
        assert!(
            !next.still_valid::<Fake>(&mut state),
            "not before the first's success"
        );
        drop(state);
        (engine, id, next)
    }

    #[test]
    fn requests_run_in_order_on_one_thread_that_outlives_a_panic() {
        let mut requests = Requests::default();
        let (sender, receiver) = std::sync::mpsc::channel();
        for i in 0..4 {
            let sender = sender.clone();
            requests
                .run(Box::new(move || {
                    sender.send((i, std::thread::current().id())).unwrap();
                    assert!(i != 1, "a job that panics");
                }))
                .unwrap();
        }
        let ran: Vec<_> = receiver.iter().take(4).collect();
        assert_eq!(ran.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert!(ran.iter().all(|r| r.1 == ran[0].1), "one thread");
        assert_ne!(ran[0].1, std::thread::current().id());
    }

    #[test]
    fn the_next_batch_is_prepared_once_behind_a_full_one_and_sent_after_its_success() {
        let (engine, id, next) = prepared_behind_a_request();
        {
            let mut state = engine.lock();
            let prepared = Next {
                behind: id,
                prepared: None,
            };
            assert_eq!(
                to_prepare::<Fake>(&mut state, Some(&prepared)),
                None,
                "once"
            );
        }
        settle_with(&engine, id, Outcome::Delivered);
        let mut state = engine.lock();
        assert_eq!(state.settled, [(500, Settled::Delivered)]);
        assert!(next.still_valid::<Fake>(&mut state));
        // Behind a batch that is not full there is no backlog: nothing is prepared.
        let last = Prepared::build::<Fake>(&mut state, 1000).unwrap();
        assert_eq!(last.count, 200);
        put_in_flight(&mut state, &last);
        assert_eq!(to_prepare::<Fake>(&mut state, None), None);
    }

    #[test]
    fn a_prepared_batch_is_not_sent_after_an_erasure_or_a_new_device_id() {
        let (engine, id, next) = prepared_behind_a_request();
        settle_with(&engine, id, Outcome::Delivered);
        let mut state = engine.lock();
        state.erasures += 1;
        assert!(!next.still_valid::<Fake>(&mut state));
        state.erasures -= 1;
        state.new_device_id = true;
        assert!(!next.still_valid::<Fake>(&mut state));
        state.new_device_id = false;
        assert!(next.still_valid::<Fake>(&mut state));
    }

    #[test]
    fn a_prepared_batch_is_not_sent_once_the_network_is_off() {
        let (engine, id, next) = prepared_behind_a_request();
        settle_with(&engine, id, Outcome::Delivered);
        let mut state = engine.lock();
        state.network_off = true;
        assert!(!next.still_valid::<Fake>(&mut state));
        assert!(!request_due(&engine, &mut state, Some(Instant::now())));
    }

    #[test]
    fn a_prepared_batch_is_not_sent_after_a_halving_a_failure_or_a_drop() {
        let (engine, id, next) = prepared_behind_a_request();
        settle_with(&engine, id, Outcome::Rejected { status: 400 });
        {
            let mut state = engine.lock();
            assert_eq!(state.delivery.batch_limit, 250);
            assert!(state.settled.is_empty());
            assert!(!next.still_valid::<Fake>(&mut state), "halved");
        }
        let (engine, id, next) = prepared_behind_a_request();
        let retry = Outcome::Retry {
            reason: "reset".into(),
            retry_after: None,
        };
        settle_with(&engine, id, retry);
        assert!(
            !next.still_valid::<Fake>(&mut engine.lock()),
            "not acknowledged"
        );
        let (engine, id, next) = prepared_behind_a_request();
        settle_with(&engine, id, Outcome::Delivered);
        let mut state = engine.lock();
        state.dropped += 1; // a full queue dropped one, maybe in the prepared range
        assert!(!next.still_valid::<Fake>(&mut state));
    }

    #[test]
    fn the_outcome_of_a_request_whose_state_was_erased_is_ignored() {
        let (engine, id, _) = prepared_behind_a_request();
        let mut state = engine.lock();
        state.delivery = Delivery::default(); // as an erasure does
        let newer = Prepared::build::<Fake>(&mut state, 0).unwrap();
        put_in_flight(&mut state, &newer);
        record_outcome(&mut state.delivery, id, Outcome::Delivered);
        assert!(
            take_settled(&mut state.delivery).is_none(),
            "not the newer one's"
        );
    }

    /// Settles a request of `count` datapoints through seq 7 with `outcome`.
    fn settle_request(engine: &Fake, count: usize, outcome: Outcome) {
        let mut state = engine.lock();
        state.delivery.in_flight.push_back(InFlight {
            id: 0,
            outcome: Some(outcome),
            last_seq: 7,
            count,
            single_id: None,
        });
        let (sent, outcome) = take_settled(&mut state.delivery).unwrap();
        settle(engine, &mut state, sent, outcome);
    }

    #[test]
    fn a_refused_batch_is_halved_and_a_refused_single_datapoint_dropped() {
        let engine = Fake::default();
        settle_request(&engine, 10, Outcome::Rejected { status: 400 });
        {
            let state = engine.lock();
            assert!(
                state.settled.is_empty(),
                "nothing is dropped while bisecting"
            );
            assert_eq!(state.delivery.batch_limit, 5);
            assert!(state.delivery.requested, "the halves go at once");
        }
        settle_request(&engine, 1, Outcome::TooLarge);
        assert_eq!(engine.lock().settled, [(7, Settled::Dropped)]);
    }

    #[test]
    fn a_failure_is_kept_without_the_url_query_until_a_delivery() {
        let engine = Fake::default();
        let reason = format!("connecting to {BASE_URL}: refused");
        settle_request(
            &engine,
            3,
            Outcome::Retry {
                reason,
                retry_after: None,
            },
        );
        {
            let state = engine.lock();
            let kept = state.delivery.last_failure.as_deref().unwrap();
            assert_eq!(kept, "connecting to https://collector.example/: refused");
            assert!(state.settled.is_empty(), "a failed batch is kept");
        }
        settle_request(&engine, 3, Outcome::Delivered);
        let state = engine.lock();
        assert_eq!(state.settled, [(7, Settled::Delivered)]);
        assert_eq!(state.delivery.last_failure, None);
    }

    #[test]
    fn an_outcome_without_a_request_in_flight_changes_nothing() {
        let engine = Fake::default();
        settle_with(&engine, 42, Outcome::Delivered);
        assert!(engine.lock().settled.is_empty());
    }
}
