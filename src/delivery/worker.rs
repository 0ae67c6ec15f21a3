//! The background worker: ends sessions the moment they expire, and drives delivery. It sleeps
//! until the earliest deadline (expiry, scheduled send, backoff) or a notification, and
//! indefinitely when nothing is due: no polling.
//!
//! The worker knows the engine only through the `Engine` trait below: it asks for each step by
//! a method and never touches the engine's fields, and `delivery` imports nothing above it.

use std::collections::VecDeque;
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
    /// The oldest pending datapoints, at most `limit`, copied out of the journal.
    fn oldest_batch(state: &Self::State, limit: usize) -> Option<StoredBatch>;
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
        if let Some(outcome) = E::delivery(&mut state).outcome.take() {
            settle(&**engine, &mut state, outcome);
            engine.notify();
            continue;
        }
        let due = engine.next_due(&state);
        if let (Some(agent), Some(due)) = (&agent, due) {
            let pending = engine.has_pending(&state);
            let may_send = E::may_send(&state);
            let delivery = E::delivery(&mut state);
            // `Delivery::due` answers `Instant::now()` for "at once": compare with a later now.
            if may_send
                && delivery.in_flight.is_none()
                && due <= Instant::now()
                && delivery.due(pending).is_some_and(|d| d <= Instant::now())
            {
                start_request(engine, &mut state, agent.clone(), &mut requests);
                continue;
            }
        }
        if engine.release_if_drained(&mut state) {
            continue;
        }
        engine.sleep(&mut state, due);
    }
}

/// Copies the oldest batch out of the journal and sends it, in its wire form, on a request
/// thread.
fn start_request<E: Engine>(
    engine: &Arc<E>,
    state: &mut MutexGuard<'_, E::State>,
    agent: ureq::Agent,
    requests: &mut Requests,
) {
    let absorbed = engine.absorb_lanes(state);
    let limit = E::delivery(state).batch_limit;
    let Some(stored) = E::oldest_batch(state, limit) else {
        if !absorbed {
            // All that waits is in lanes storage refuses to empty: retried with the backoff
            // of a failed request, not in a loop.
            let fraction = E::jitter(state);
            E::delivery(state).failed(None, false, fraction);
        }
        return;
    };
    // Writing the JSON costs many times the copy: callers must not wait for it. (Meanwhile a
    // full queue may mark some of these dropped; they are sent all the same, nothing is lost.)
    let device_id = E::device_id(state);
    let erasures = E::erasures(state);
    let (wire, body) = MutexGuard::unlocked(state, || {
        let wire = WireBatch::of(&stored);
        let events: Vec<&[u8]> = wire.events.iter().collect();
        let body = super::batch::body(&stored.api_key, &device_id, &events);
        (wire, body)
    });
    // Erased meanwhile (tracking disabled, data wiped): what was copied must not be sent.
    if E::stopping(state) || E::erasures(state) != erasures || !E::may_send(state) {
        return;
    }
    let count = wire.events.len();
    if count == 0 {
        // Nothing readable (a bug, not a torn write): drop it rather than stall the queue.
        E::settle(state, wire.last_seq, Settled::Dropped);
        return;
    }
    let in_flight = InFlight {
        last_seq: wire.last_seq,
        count,
        single_id: (count == 1).then(|| datapoint::id_of(wire.events.get(0)).to_owned()),
    };
    E::delivery(state).in_flight = Some(in_flight);
    let base_url = engine.base_url().unwrap_or_default().to_owned();
    let weak: Weak<E> = Arc::downgrade(engine);
    let spawned = requests.run(Box::new(move || {
        let outcome = request::send(&agent, &base_url, body);
        // The engine may be gone (shutdown gave up waiting): then the outcome is moot.
        if let Some(engine) = weak.upgrade() {
            E::delivery(&mut engine.lock()).outcome = Some(outcome);
            engine.notify();
        }
    }));
    if let Err(error) = spawned {
        let fraction = E::jitter(state);
        let delivery = E::delivery(state);
        delivery.in_flight = None;
        delivery.failed(None, false, fraction);
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

/// Applies the outcome of the request in flight.
fn settle<E: Engine>(engine: &E, state: &mut E::State, outcome: Outcome) {
    let Some(sent) = E::delivery(state).in_flight.take() else {
        return;
    };
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
    use parking_lot::Mutex;

    const BASE_URL: &str = "https://collector.example/?token=secret";

    #[derive(Default)]
    struct FakeState {
        delivery: Delivery,
        settled: Vec<(u64, Settled)>,
        pending: bool,
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
        fn may_send(_: &FakeState) -> bool {
            true
        }
        fn erasures(_: &FakeState) -> u64 {
            0
        }
        fn device_id(_: &FakeState) -> String {
            "device".into()
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
        fn oldest_batch(_: &FakeState, _: usize) -> Option<StoredBatch> {
            None
        }
        fn settle(state: &mut FakeState, last_seq: u64, how: Settled) -> u64 {
            state.settled.push((last_seq, how));
            1
        }
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

    /// Settles a request of `count` datapoints through seq 7 with `outcome`.
    fn settle_request(engine: &Fake, count: usize, outcome: Outcome) {
        let mut state = engine.lock();
        state.delivery.in_flight = Some(InFlight {
            last_seq: 7,
            count,
            single_id: None,
        });
        settle(engine, &mut state, outcome);
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
        settle(&engine, &mut engine.lock(), Outcome::Delivered);
        assert!(engine.lock().settled.is_empty());
    }
}
