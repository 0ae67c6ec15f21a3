//! Moving the lanes' records into the journal: before a call that may record or change the
//! session, when a lane fills, at start-up (recovery) and before sending.

use super::calls::{count_recorded, refused};
use super::*;

impl Engine {
    /// Moves the lanes' records into the journal (see `lane`), counted as recorded now, and brings
    /// the session's last activity up to date. `skip`: ids already in the journal (recovery).
    /// Storage refusing a record leaves it and those after it in their lanes, and is an error.
    pub(super) fn absorb(
        &self,
        state: &mut State,
        lanes: &mut Held<'_>,
        skip: Option<&HashSet<[u8; 16]>>,
    ) -> Result<(), Error> {
        let absorbed = lanes.absorb(&mut state.journal, skip);
        self.absorbed(state, absorbed)
    }

    /// Counts what an absorb moved, brings the session's last activity up to date and
    /// schedules a send.
    pub(super) fn absorbed(&self, state: &mut State, absorbed: Absorbed) -> Result<(), Error> {
        count_recorded(state, absorbed.recorded, absorbed.dropped);
        self.lanes.watch_for_drops(state.journal.room());
        if let Some(session) = &mut state.session.session {
            if absorbed.last_activity > session.last_activity {
                session.last_activity = absorbed.last_activity;
                state.saved_session.save(&state.session);
                self.lanes.publish_last_activity(&state.session);
            }
        }
        if absorbed.recorded > 0 {
            self.schedule_send(state);
        }
        match absorbed.error {
            Some(error) => Err(refused(error)),
            None => Ok(()),
        }
    }

    /// For the worker: moves the lanes' full buffers (and any that hold records, when their
    /// lane can swap) into the journal without holding the lanes: callers keep recording into
    /// their other buffer meanwhile.
    pub(super) fn absorb_full_lanes(&self, state: &mut State) -> Result<(), Error> {
        let taken = self.lanes.take_for_worker();
        if taken.is_empty() {
            return Ok(());
        }
        let absorbed = self.lanes.absorb_taken(taken, &mut state.journal);
        self.absorbed(state, absorbed)
    }

    /// A lane call wants the worker (a buffer is half full or full). The worker, before it
    /// sleeps, says so and then reads `wants_absorb`; this call set that and then reads
    /// whether it sleeps, so one of the two sees the other. Only when the worker sleeps (or is
    /// about to) is the lock taken, and never waited for: found taken, it is most likely held
    /// by the worker just woken and copying (it looks at `wants_absorb` again before it
    /// sleeps), which a caller waited on for milliseconds. It may instead be held between that
    /// look and the wait, where a notification is lost: then the next lane call nudges again
    /// (`nudge_pending`), and the worker's own deadline (a send or sync is due once lanes hold
    /// records) bounds the delay if no call follows.
    pub(super) fn nudge_worker(&self) {
        self.nudge_pending.store(false, Ordering::Relaxed);
        if self.worker_asleep.load(Ordering::SeqCst) {
            if let Some(_state) = self.state.try_lock() {
                self.changed.notify_all();
            } else {
                self.changed.notify_all();
                self.nudge_pending.store(true, Ordering::Relaxed);
            }
        }
    }

    /// A previous nudge may have been missed (`nudge_worker`).
    pub(super) fn nudge_pending(&self) -> bool {
        self.nudge_pending.load(Ordering::Relaxed)
    }

    /// `absorb` for callers that do not hold the lanes yet.
    pub(super) fn absorb_lanes(&self, state: &mut State) -> Result<(), Error> {
        if !self.lanes.holding() {
            return Ok(());
        }
        self.absorb(state, &mut self.lanes.hold_all(), None)
    }

    /// At start-up: moves what a previous run left in the lanes into the journal, skipping what
    /// an absorb cut short by a kill had already moved.
    pub(super) fn recover_lanes(&self) {
        let mut state = self.state.lock();
        let state = &mut *state;
        let mut lanes = self.lanes.hold_all();
        let skip = (!lanes.is_empty()).then(|| state.journal.pending_ids());
        let recorded = state.stats.datapoints_recorded;
        let absorbed = self.absorb(state, &mut lanes, skip.as_ref());
        // Recorded by the previous run: pending now, not recorded since this initialize.
        state.stats.datapoints_recorded = recorded;
        if let Err(error) = absorbed {
            log::warn(|| {
                format!("{error}; the custom events concerned stay queued in their lanes")
            });
        }
        lanes.clear_tails();
        lanes.refresh(&state.session, false);
    }

    /// A lane call recorded the first event since the lanes were absorbed (delivery must be
    /// scheduled), or filled its lane halfway (the worker absorbs).
    pub(crate) fn lane_needs_worker(&self, first: bool) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        if first && self.schedule_send(&mut state) {
            self.wake_worker_if_sooner(&mut state);
        }
        if self.lanes.wants_absorb() || self.lanes.drop_check() {
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Harness;
    use super::*;

    #[test]
    fn lane_events_land_before_what_the_next_call_records() {
        let h = Harness::new("absorb-order", "");
        h.call(Action::OpenSession);
        // The first event opens this thread's lane (under the lock); the next ones wait in it.
        h.event("one");
        h.event("two");
        h.event("three");
        {
            let state = h.engine().state.lock();
            assert_eq!(state.journal.pending(), 2, "two and three wait in a lane");
        }
        h.call(Action::ChangeUser("alice"));
        assert_eq!(h.queued_names(), ["ss", "one", "two", "three", "se", "ss"]);
    }

    #[test]
    fn a_nudge_never_waits_for_the_lock_and_is_repeated_by_the_next_lane_call() {
        let h = Harness::new("absorb-nudge", "");
        h.call(Action::OpenSession);
        h.event("first"); // opens this thread's lane
        let engine = h.engine();
        engine.worker_asleep.store(true, Ordering::SeqCst);
        {
            // Held as by the worker: the nudge returns and leaves itself for the next call.
            let _state = engine.state.lock();
            engine.nudge_worker();
            assert!(engine.nudge_pending());
        }
        h.event("next");
        assert!(!engine.nudge_pending(), "the next lane call nudged again");
        engine.worker_asleep.store(false, Ordering::SeqCst);
    }

    #[test]
    fn lane_records_are_queued_once_across_a_restart() {
        let mut h = Harness::new("absorb-restart", "");
        h.call(Action::OpenSession);
        for i in 0..100 {
            h.event(&format!("e{i}"));
        }
        h.restart();
        let names = h.queued_names();
        assert_eq!(names.len(), 101);
        assert_eq!(names.last().map(String::as_str), Some("e99"));
        assert_eq!(h.engine().stats().unwrap().datapoints_pending, 101);
    }
}
