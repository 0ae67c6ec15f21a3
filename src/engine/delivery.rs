//! Delivery as the engine sees it: flush, scheduling a send, and the `worker::Engine` trait the
//! background worker drives the engine through.

use super::*;

impl Engine {
    /// Asks the worker to send now; never blocks.
    pub(crate) fn request_flush(&self) -> Result<(), Error> {
        let mut state = self.lock_open()?;
        // Already asked: the worker knows (it clears `requested` only once nothing waits).
        if self.config.base_url.is_some() && !state.delivery.requested {
            state.delivery.requested = true;
            self.changed.notify_all();
        }
        Ok(())
    }

    /// Waits until everything recorded before the call is delivered (or dropped), or `Timeout`
    /// at `deadline`. Without a `baseUrl`, returns at once.
    pub(crate) fn wait_delivered(&self, timeout: Duration) -> Result<(), Error> {
        if self.config.base_url.is_none() {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        let mut state = self.lock_open()?;
        let target = state.journal.last_seq();
        // One immediate attempt per flush; after a failure the normal backoff applies, so a
        // flush against a failing server waits instead of hammering it.
        if !state.journal.is_done_through(target) {
            state.delivery.requested = true;
            self.changed.notify_all();
        }
        loop {
            // Released: shutdown ran meanwhile (and did its own flush).
            let Some(journal) = &state.journal.0 else {
                return Err(Error::NotInitialized);
            };
            if journal.is_done_through(target) {
                return Ok(());
            }
            if state.closed {
                return Err(Error::NotInitialized);
            }
            if self.changed.wait_until(&mut state, deadline).timed_out()
                && (state.journal.0.as_ref()).is_some_and(|j| !j.is_done_through(target))
            {
                let why = match &state.delivery.last_failure {
                    Some(reason) => format!("; the last delivery attempt failed: {reason}"),
                    None if !state.privacy.tracking => "; tracking is disabled".into(),
                    None => String::new(),
                };
                return Err(Error::Timeout(format!(
                    "flush did not finish within {} ms; {} datapoints stay queued{why}",
                    timeout.as_millis(),
                    state.journal.pending()
                )));
            }
        }
    }

    /// Schedules a send for what was just recorded (with a `baseUrl`); returns whether that
    /// newly scheduled one.
    pub(super) fn schedule_send(&self, state: &mut State) -> bool {
        // Durable against power loss within a flush interval of being recorded.
        if state.durability.sync_due.is_none() {
            state.durability.sync_due = Some(Instant::now() + self.config.flush_interval);
        }
        if self.config.base_url.is_none() {
            return false;
        }
        let newly = state.delivery.note_recorded(self.config.flush_interval);
        self.send_scheduled.store(true, Ordering::SeqCst);
        newly
    }

    /// Notifies the worker only if it sleeps past the new earliest deadline.
    pub(super) fn wake_worker_if_sooner(&self, state: &mut State) {
        let Some(sleeps_until) = state.worker.sleeps_until else {
            return;
        };
        let due = worker::Engine::next_due(self, state);
        if due.is_some_and(|due| sleeps_until.is_none_or(|until| due < until)) {
            self.changed.notify_all();
        }
    }
}

impl worker::Engine for Engine {
    type State = State;

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    fn notify(&self) {
        self.changed.notify_all();
    }

    fn sleep(&self, state: &mut MutexGuard<'_, State>, until: Option<Instant>) {
        // Lane calls wake the worker without the lock unless it sleeps (`nudge_worker`): say
        // so first, then look once more.
        self.worker_asleep.store(true, Ordering::SeqCst);
        let now = Instant::now();
        let drop_check = state.drops.check_due(self.lanes.drop_check(), now);
        let until = match (until, drop_check) {
            (Some(until), Some(check)) => Some(until.min(check)),
            (until, check) => until.or(check),
        };
        if self.lanes.wants_absorb() || until.is_some_and(|until| until <= now) {
            self.worker_asleep.store(false, Ordering::SeqCst);
            return;
        }
        state.worker.sleeps_until = Some(until);
        match until {
            Some(until) => {
                self.changed.wait_until(state, until);
            }
            None => self.changed.wait(state),
        }
        self.worker_asleep.store(false, Ordering::SeqCst);
        state.worker.sleeps_until = None;
        state.worker.wakeups += 1;
    }

    fn base_url(&self) -> Option<&str> {
        self.config.base_url.as_deref()
    }

    fn stopping(state: &State) -> bool {
        state.worker.stop
    }

    fn may_send(state: &State) -> bool {
        // No batch carries a device id that a power cut could still take back.
        state.privacy.network && state.privacy.tracking && state.durability.device_id_durable()
    }

    fn erasures(state: &State) -> u64 {
        state.privacy.erasures
    }

    fn device_id(state: &State) -> String {
        state.device_id.clone()
    }

    fn sync_if_due(&self, state: &mut MutexGuard<'_, State>) -> bool {
        if state
            .durability
            .sync_due
            .is_none_or(|due| due > Instant::now())
        {
            return false;
        }
        // Power-loss durability is the worker's job: callers never wait for a sync.
        state.durability.sync_due = None;
        if let Err(error) = MutexGuard::unlocked(state, || self.sync_now()) {
            log::warn(|| format!("{error}; retrying at the next sync"));
            state.durability.sync_failed(Instant::now());
        }
        true
    }

    fn delivery(state: &mut State) -> &mut Delivery {
        &mut state.delivery
    }

    fn jitter(state: &mut State) -> f64 {
        state.ids.next_fraction()
    }

    fn next_due(&self, state: &State) -> Option<Instant> {
        let expiry = session::expiry_deadline(&state.session, self.config.rules).map(|deadline| {
            let wait = (deadline - self.config.clock.now_ms()).max(0) as u64;
            let due = Instant::now() + Duration::from_millis(wait);
            state
                .worker
                .expiry_retry_at
                .map_or(due, |retry| due.max(retry))
        });
        let send = match self.config.base_url {
            Some(_) if <Engine as worker::Engine>::may_send(state) => {
                state.delivery.due(self.has_pending(state))
            }
            _ => None,
        };
        let now = Instant::now();
        let drops = [
            state.drops.warning_due(now),
            state.drops.check_due(self.lanes.drop_check(), now),
        ];
        [expiry, send, state.durability.sync_due]
            .into_iter()
            .chain(drops)
            .flatten()
            .min()
    }

    fn has_pending(&self, state: &State) -> bool {
        state.journal.pending() > 0 || self.lanes.holding()
    }

    fn end_expired_session(&self, state: &mut MutexGuard<'_, State>) {
        if state
            .worker
            .expiry_retry_at
            .is_some_and(|at| at > Instant::now())
        {
            return;
        }
        let checked = MutexGuard::unlocked(state, || self.apply(Action::CheckExpiry, None));
        state.worker.expiry_retry_at = checked.is_err().then(|| Instant::now() + EXPIRY_RETRY);
    }

    fn prepare_spare(&self, state: &mut MutexGuard<'_, State>) -> bool {
        if state.journal.ask_for_index_chunk() {
            // The index's next chunk, mapped and faulted in without the lock. Should that fail,
            // a call maps one when it needs it (and fails the same way if memory is short).
            if let Ok(chunk) = MutexGuard::unlocked(state, SpareChunk::prepare) {
                state.journal.install_index_chunk(chunk);
            }
            return true;
        }
        if state.journal.wants_prefault() {
            // The next pages calls' records will go to, faulted in without the lock.
            let ahead = state.journal.ahead();
            if !MutexGuard::unlocked(state, || ahead.fault_in()) {
                state.journal.touch(&ahead);
            }
            return true;
        }
        let Some(path) = state.journal.ask_for_spare() else {
            return false;
        };
        let fault_in = state.journal.spare_wants_faulting();
        let spare = MutexGuard::unlocked(state, || Journal::prepare_spare(&path, fault_in));
        match spare {
            Ok(spare) => state.journal.install_spare(spare, fault_in),
            Err(error) => log::debug(|| format!("cannot prepare the next segment: {error}")),
        }
        true
    }

    fn release_if_drained(&self, state: &mut MutexGuard<'_, State>) -> bool {
        let acked = state.journal.acked_through();
        if acked == state.worker.released_through
            || state.journal.pending() > 0
            || !state.delivery.in_flight.is_empty()
            || self.lanes.holding()
        {
            return false;
        }
        state.worker.released_through = acked;
        state.journal.release_memory();
        self.lanes.release_memory();
        // Freed batches and request bodies; a walk of the heap, so without the lock.
        MutexGuard::unlocked(state, platform::trim_heap);
        true
    }

    fn absorb_if_wanted(&self, state: &mut State) -> bool {
        if !self.lanes.wants_absorb() {
            return false;
        }
        let _ = self.absorb_full_lanes(state);
        true
    }

    fn announce_drops(&self, state: &mut State) -> bool {
        let now = Instant::now();
        // Lane records that may overflow the queue go to the journal, where drops are decided
        // (and counted, and announced at once unless a warning was logged an interval ago).
        let checked = self.lanes.drop_check() && state.drops.start_check(now);
        if checked {
            self.lanes.take_drop_check();
            let _ = self.absorb_full_lanes(state);
        }
        if let Some(warning) = state.drops.warning_if_due(now) {
            log::warn(|| warning);
        }
        self.lanes.watch_for_drops(state.journal.room());
        checked
    }

    /// A backlog in the journal is sent at once, batch after batch; events recorded into the
    /// lanes while the request ran wait a whole flush interval, like any first event (at most
    /// one request per interval while events trickle in); with nothing pending, nothing is
    /// scheduled. `send_scheduled` is cleared before the lanes are read, so a lane call that
    /// starts holding records meanwhile either is seen here or sees the flag cleared (and
    /// schedules itself).
    fn succeeded(&self, state: &mut State) {
        self.send_scheduled.store(false, Ordering::SeqCst);
        let backlog = state.journal.pending() > 0;
        let held = self.lanes.holding();
        state.delivery.succeeded(backlog);
        if backlog {
            self.send_scheduled.store(true, Ordering::SeqCst);
        } else if held {
            self.schedule_send(state);
        }
    }

    fn absorb_lanes(&self, state: &mut State) -> bool {
        Engine::absorb_lanes(self, state).is_ok()
    }

    fn oldest_batch(state: &State, after: u64, limit: usize) -> Option<StoredBatch> {
        StoredBatch::copy(&state.journal.oldest_after(after, limit, MAX_BATCH_BYTES))
    }

    fn pending_after(state: &State, seq: u64) -> bool {
        state.journal.has_pending_after(seq)
    }

    fn acked_through(state: &State) -> u64 {
        state.journal.acked_through()
    }

    fn dropped(state: &State) -> u64 {
        state.stats.datapoints_dropped
    }

    fn settle(state: &mut State, last_seq: u64, how: Settled) -> u64 {
        let done = state.journal.acknowledge_through(last_seq);
        match how {
            Settled::Delivered => state.stats.datapoints_delivered += done,
            Settled::Dropped => state.stats.datapoints_dropped += done,
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Harness;
    use super::*;
    use crate::delivery::worker::Engine as _;

    /// `next_due` with the sync deadline left out, as seconds from now.
    fn due_in_secs(h: &Harness) -> Option<f64> {
        let mut state = h.engine().state.lock();
        state.durability.sync_due = None;
        let due = h.engine().next_due(&state)?;
        Some(due.saturating_duration_since(Instant::now()).as_secs_f64())
    }

    #[test]
    fn the_worker_wakes_when_the_session_expires_on_the_engines_clock() {
        let h = Harness::new("due-expiry", r#""sessionTimeoutInSeconds":60"#);
        assert_eq!(due_in_secs(&h), None, "nothing due without a session");
        h.call(Action::OpenSession);
        h.engine().close_session().unwrap();
        let due = due_in_secs(&h).expect("the expiry is due");
        assert!((58.0..=60.0).contains(&due), "{due}");
        h.advance_secs(45);
        let due = due_in_secs(&h).expect("still due");
        assert!(
            (13.0..=15.0).contains(&due),
            "simulated time moves the deadline: {due}"
        );
        h.advance_secs(15);
        assert_eq!(due_in_secs(&h), Some(0.0), "due now");
    }

    #[test]
    fn a_send_is_scheduled_only_with_a_base_url() {
        let local = Harness::new("due-local", "");
        local.call(Action::OpenSession);
        local.call(Action::ChangeUser("alice"));
        let engine = local.engine();
        assert!(engine.has_pending(&engine.state.lock()));
        assert_eq!(
            engine.state.lock().delivery.due(true),
            None,
            "no baseUrl, no send"
        );

        let remote = Harness::new(
            "due-remote",
            r#""baseUrl":"http://127.0.0.1:9","flushIntervalInSeconds":5"#,
        );
        remote.call(Action::OpenSession);
        let engine = remote.engine();
        let due = engine
            .state
            .lock()
            .delivery
            .due(true)
            .expect("a send is scheduled");
        let wait = due.saturating_duration_since(Instant::now()).as_secs_f64();
        assert!(wait <= 5.0, "within the flush interval: {wait}");
    }

    #[test]
    fn with_the_network_off_no_send_falls_due() {
        let h = Harness::new(
            "due-offline",
            r#""baseUrl":"http://127.0.0.1:9","flushIntervalInSeconds":1"#,
        );
        // Only the session's expiry (half an hour away) is due otherwise.
        let send_due = || due_in_secs(&h).is_some_and(|secs| secs < 60.0);
        // What the worker does first: nothing is sent before the new device id is durable.
        h.engine().sync_now().unwrap();
        h.call(Action::OpenSession);
        h.engine().request_flush().unwrap();
        assert!(send_due(), "a positive control: online, a send is due");
        h.engine().set_network_enabled(false).unwrap();
        h.engine().request_flush().unwrap();
        assert!(!send_due(), "nothing is due while the network is off");
        assert!(!<Engine as worker::Engine>::may_send(
            &h.engine().state.lock()
        ));
        h.engine().set_network_enabled(true).unwrap();
        assert!(send_due(), "due again once it is back");
    }

    #[test]
    fn a_lane_event_that_may_overflow_the_queue_wakes_the_worker_at_once() {
        let h = Harness::new("due-drop-check", r#""maxQueuedDatapoints":100"#);
        h.call(Action::OpenSession);
        h.event("opens-the-lane");
        h.event("fits");
        assert!(
            !h.engine().lanes.drop_check(),
            "a positive control: room left, no check"
        );
        for i in 0..120 {
            h.event(&format!("e{i}"));
        }
        assert!(
            h.engine().lanes.drop_check(),
            "the lane passed its share of the room"
        );
        let due = due_in_secs(&h).expect("the worker has work");
        assert!(due < 1.0, "due at once, not at the expiry: {due}");
        // What the worker then does: the records move, the drops are counted and announced.
        let mut state = h.engine().state.lock();
        assert!(<Engine as worker::Engine>::announce_drops(
            h.engine(),
            &mut state
        ));
        assert_eq!(state.journal.pending(), 100);
        assert_eq!(state.stats.datapoints_dropped, 23);
        assert_eq!(state.drops.warning_due(Instant::now()), None, "announced");
    }

    #[test]
    fn drops_held_back_by_the_rate_limit_wake_the_worker_when_it_ends() {
        let h = Harness::new("due-drop-warning", r#""maxQueuedDatapoints":100"#);
        h.call(Action::OpenSession);
        for i in 0..110 {
            h.event(&format!("a{i}"));
        }
        h.engine().stats().unwrap(); // moves the lanes: drops counted, the first warning logged
        for i in 0..10 {
            h.event(&format!("b{i}"));
        }
        h.engine().stats().unwrap(); // more drops, within the interval: held back
        let state = h.engine().state.lock();
        let now = Instant::now();
        let due = state
            .drops
            .warning_due(now)
            .expect("a warning is held back");
        let wait = due.saturating_duration_since(now).as_secs_f64();
        assert!((9.0..=10.0).contains(&wait), "{wait}");
        drop(state);
        let next = due_in_secs(&h).expect("the worker will wake for it");
        assert!(next <= 10.0, "{next}");
    }
}
