//! The calls that apply the session rules: each takes the engine's lock, applies
//! `session::apply` at the clock's time, and records what the rules produce in the journal
//! (custom events on an open session go to the calling thread's lane instead).

use super::*;

impl Engine {
    /// Records a custom event: in the calling thread's lane when that needs nothing else (no
    /// lock shared with other threads), under the engine's lock otherwise.
    pub(crate) fn log_custom_event(&self, event: CustomEvent<'_>) -> Result<(), Error> {
        match self.lanes.record_custom_event(&event, self.config.rules) {
            Recorded::Here { first, wake } => {
                // The lock only to schedule the first send since the lanes were empty; the
                // worker may be copying under it, so nothing else here takes it unless the
                // worker sleeps (`nudge_worker`).
                if first
                    && self.config.base_url.is_some()
                    && !self.send_scheduled.load(Ordering::SeqCst)
                {
                    self.lane_needs_worker(first);
                } else if wake || self.nudge_pending() {
                    self.nudge_worker();
                }
                Ok(())
            }
            Recorded::NotHere => self.apply(Action::CustomEvent, Some(&event)),
        }
    }

    /// The app leaves the foreground: what it recorded is already safe from a kill, and the
    /// worker makes it durable against power loss within `CLOSE_SYNC_DELAY` (never the caller:
    /// this is often the UI thread).
    pub(crate) fn close_session(&self) -> Result<(), Error> {
        self.apply(Action::CloseSession, None)?;
        let mut state = self.lock_open()?;
        let due = Instant::now() + CLOSE_SYNC_DELAY;
        if state.durability.sync_due.is_none_or(|at| at > due) {
            state.durability.sync_due = Some(due);
            self.wake_worker_if_sooner(&mut state);
        }
        Ok(())
    }

    /// One call's work: the session rules at the current time, then recording what they produce.
    pub(crate) fn apply(
        &self,
        action: Action<'_>,
        event: Option<&CustomEvent<'_>>,
    ) -> Result<(), Error> {
        let mut guard = self.lock_open()?;
        let state = &mut *guard;
        if !state.privacy.tracking {
            return Ok(()); // the user said no: record nothing (the lanes are closed too)
        }
        let now = self.config.clock.now_ms();
        // A call that may record or change the session holds the lanes and moves what they hold
        // into the journal first: their records come before its own, and its view of the last
        // activity is complete.
        let mut lanes =
            session::may_record_or_change(&state.session, action, now, self.config.rules)
                .then(|| self.lanes.hold_all());
        let absorbed = match &mut lanes {
            Some(lanes) => self.absorb(state, lanes, None),
            None => Ok(()),
        };
        if let (Some(lanes), Action::CustomEvent) = (&mut lanes, action) {
            lanes.open_lane_of_this_thread();
        }
        // A call's datapoints are recorded all or none: room for them is made first (and the
        // lanes emptied), and if that fails (disk full, read-only), a call that would record is
        // refused before the session state changes, so the wire never shows an end without its
        // start, nor an event after the end of its session.
        let rules = |state: &mut SessionState, ids: &mut IdGenerator, out: &mut Vec<Record>| {
            session::apply(
                state,
                action,
                now,
                self.config.rules,
                &mut || ids.uuid().into(),
                out,
            )
        };
        let context = self.config.context.as_deref().map_or(0, str::len);
        let room = room_needed(&state.session, action, event) + 2 * context;
        let ready = absorbed.and_then(|()| state.journal.make_room(room).map_err(refused));
        if let Err(error) = ready {
            let mut trial = state.session.clone();
            rules(&mut trial, &mut state.ids, &mut state.records);
            if !state.records.is_empty() {
                state.records.clear();
                return Err(error);
            }
        }
        let before = (
            state.session.session.as_ref().map(|s| s.last_activity),
            state.session.foreground,
        );
        rules(&mut state.session, &mut state.ids, &mut state.records);
        match &mut lanes {
            Some(lanes) => lanes.refresh(&state.session, false),
            None => {
                debug_assert!(
                    state.records.is_empty(),
                    "recorded without holding the lanes"
                );
                self.lanes.publish_last_activity(&state.session);
            }
        }
        let after = (
            state.session.session.as_ref().map(|s| s.last_activity),
            state.session.foreground,
        );
        let session_changed = state
            .records
            .iter()
            .any(|r| !matches!(r, Record::CustomEvent { .. }));
        if session_changed || matches!(action, Action::ChangeUser(_)) || before.0 != after.0 {
            state.saved_session.save(&state.session);
        }
        let mut newly_scheduled = false;
        if !state.records.is_empty() {
            newly_scheduled = self.record(state, event)?;
        }
        // The worker is woken only when its next deadline may have moved earlier (or the
        // journal wants its next segment prepared), not on every call.
        if state.journal.wants_spare()
            || state.journal.wants_prefault()
            || state.journal.wants_index_chunk()
        {
            self.changed.notify_all();
        } else if session_changed || newly_scheduled || before.1 != after.1 {
            self.wake_worker_if_sooner(state);
        }
        Ok(())
    }

    /// Appends the records to the journal; returns whether that scheduled a send.
    pub(super) fn record(
        &self,
        state: &mut State,
        event: Option<&CustomEvent<'_>>,
    ) -> Result<bool, Error> {
        let records = std::mem::take(&mut state.records);
        let mut result = Ok(());
        for record in &records {
            let mut datapoint = Datapoint::new(record, state.ids.uuid_raw(), event);
            if let Data::Start { context } = &mut datapoint.data {
                *context = self.config.context.as_deref();
            }
            let stored = |out: &mut [u8]| datapoint.store(out);
            match state
                .journal
                .append_with(datapoint.kind, datapoint.stored_len(), stored)
            {
                Ok((_, dropped)) => count_recorded(state, 1, dropped),
                Err(error) => {
                    result = Err(refused(error));
                    continue;
                }
            }
            if let Some(notice) = notice(record) {
                match notice.change {
                    SessionChange::Started => state.stats.sessions_started += 1,
                    SessionChange::Ended => state.stats.sessions_ended += 1,
                }
                dispatch::session(notice);
            }
        }
        state.records = records;
        state.records.clear();
        self.lanes.watch_for_drops(state.journal.room());
        let scheduled = self.schedule_send(state);
        result.map(|()| scheduled)
    }
}

/// How soon after `close_session` the worker syncs: soon, yet a quick background/foreground
/// flicker costs one sync, not one per call.
pub(super) const CLOSE_SYNC_DELAY: Duration = Duration::from_millis(200);

/// An upper bound on the journal bytes one call records: at most an expired session's end, an
/// end and a start, or an end and a custom event (`Datapoint::stored_len`).
pub(super) fn room_needed(
    state: &SessionState,
    action: Action<'_>,
    event: Option<&CustomEvent<'_>>,
) -> usize {
    /// The fixed fields and a session id.
    const DATAPOINT: usize = 128;
    let current_user = state.user.as_deref().map_or(0, str::len);
    let new_user = match action {
        Action::ChangeUser(user) => user.len(),
        _ => 0,
    };
    let custom = event.map_or(0, |e| 8 + e.name.len() + e.properties.map_or(0, str::len));
    3 * (DATAPOINT + current_user.max(new_user)) + custom
}

/// Storage refused a datapoint: logged, and the call's error.
pub(super) fn refused(error: std::io::Error) -> Error {
    log::error(|| format!("cannot record a datapoint: {error}"));
    Error::storage("cannot record the datapoint", error)
}

/// Counts datapoints recorded and those a full queue dropped for them (announced by `drops`).
pub(super) fn count_recorded(state: &mut State, recorded: u64, dropped: u64) {
    state.stats.datapoints_recorded += recorded;
    if dropped == 0 {
        return;
    }
    state.stats.datapoints_dropped += dropped;
    if let Some(warning) = state.drops.count(dropped, Instant::now()) {
        log::warn(|| warning);
    }
}

pub(super) fn notice(record: &Record) -> Option<SessionNotice> {
    match record {
        Record::Started {
            session_id,
            user,
            time,
        } => Some(SessionNotice {
            change: SessionChange::Started,
            session_id: session_id.to_string(),
            user_id: user.as_deref().map(str::to_owned),
            start: *time,
            end: None,
        }),
        Record::Ended {
            session_id,
            user,
            start,
            time,
        } => Some(SessionNotice {
            change: SessionChange::Ended,
            session_id: session_id.to_string(),
            user_id: user.as_deref().map(str::to_owned),
            start: *start,
            end: Some(*time),
        }),
        Record::CustomEvent { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    //! The session rules as the engine applies and records them, on simulated time.

    use super::super::testing::{time_ms, Harness, START};
    use super::*;
    use serde_json::Value;

    const ONE_MINUTE: &str = r#""sessionTimeoutInSeconds":60"#;

    #[test]
    fn opening_starts_a_session_stamped_at_the_clock() {
        let h = Harness::new("calls-open", ONE_MINUTE);
        h.call(Action::OpenSession);
        let queued = h.queued();
        assert_eq!(h.queued_names(), ["ss"]);
        assert_eq!(time_ms(&queued[0]), START);
        assert_eq!(queued[0]["session_id"].as_str(), h.session_id().as_deref());
        assert_eq!(h.engine().stats().unwrap().sessions_started, 1);
    }

    #[test]
    fn returning_within_the_timeout_continues_the_session() {
        let h = Harness::new("calls-continue", ONE_MINUTE);
        h.call(Action::OpenSession);
        let first = h.session_id();
        h.engine().close_session().unwrap();
        h.advance_secs(59);
        h.call(Action::OpenSession);
        assert_eq!(h.session_id(), first);
        assert_eq!(h.queued_names(), ["ss"]);
    }

    #[test]
    fn returning_after_the_timeout_ends_the_session_when_the_user_went_away() {
        let h = Harness::new("calls-return", ONE_MINUTE);
        h.call(Action::OpenSession);
        let first = h.session_id().unwrap();
        h.advance_secs(10);
        h.engine().close_session().unwrap();
        h.advance_secs(60);
        h.call(Action::OpenSession);
        let queued = h.queued();
        assert_eq!(h.queued_names(), ["ss", "se", "ss"]);
        assert_eq!(queued[1]["session_id"], first.as_str());
        assert_eq!(
            time_ms(&queued[1]),
            START + 10_000,
            "stamped at the last activity"
        );
        assert_eq!(time_ms(&queued[2]), START + 70_000);
        assert_ne!(h.session_id().unwrap(), first);
    }

    #[test]
    fn the_expiry_check_ends_a_session_without_a_call_from_the_host() {
        let h = Harness::new("calls-expiry", ONE_MINUTE);
        h.call(Action::OpenSession);
        h.engine().close_session().unwrap();
        h.advance_secs(59);
        h.call(Action::CheckExpiry);
        assert!(
            h.session_id().is_some(),
            "not yet: a positive control for what follows"
        );
        h.advance_secs(1);
        h.call(Action::CheckExpiry);
        assert_eq!(h.session_id(), None);
        let queued = h.queued();
        assert_eq!(h.queued_names(), ["ss", "se"]);
        assert_eq!(time_ms(&queued[1]), START);
        assert_eq!(h.engine().stats().unwrap().sessions_ended, 1);
    }

    #[test]
    fn a_foreground_session_expires_unless_kept_open_while_foreground() {
        let h = Harness::new("calls-foreground", ONE_MINUTE);
        h.call(Action::OpenSession);
        h.advance_secs(61);
        h.call(Action::CheckExpiry);
        assert_eq!(
            h.session_id(),
            None,
            "inactivity ends it even in the foreground"
        );

        let kept = Harness::new(
            "calls-kept-open",
            r#""sessionTimeoutInSeconds":60,"keepOpenWhileForeground":true"#,
        );
        kept.call(Action::OpenSession);
        kept.advance_secs(3600);
        kept.call(Action::CheckExpiry);
        assert!(
            kept.session_id().is_some(),
            "kept open while in the foreground"
        );
        kept.engine().close_session().unwrap();
        kept.advance_secs(61);
        kept.call(Action::CheckExpiry);
        assert_eq!(
            kept.session_id(),
            None,
            "and ends a timeout after going away"
        );
    }

    #[test]
    fn changing_user_ends_the_session_and_starts_one_for_the_new_user() {
        let h = Harness::new("calls-user", ONE_MINUTE);
        h.call(Action::OpenSession);
        h.advance_secs(5);
        h.call(Action::ChangeUser("alice"));
        h.advance_secs(5);
        h.call(Action::ChangeUser("alice"));
        let queued = h.queued();
        assert_eq!(
            h.queued_names(),
            ["ss", "se", "ss"],
            "the same user is only activity"
        );
        assert_eq!(queued[1]["user_id"], Value::Null);
        assert_eq!(queued[2]["user_id"], "alice");
        assert_eq!(time_ms(&queued[2]), START + 5_000);
    }

    #[test]
    fn custom_events_belong_to_the_open_session() {
        let h = Harness::new("calls-events", ONE_MINUTE);
        h.event("before");
        h.call(Action::OpenSession);
        h.advance_secs(1);
        h.event("during");
        let queued = h.queued();
        assert_eq!(h.queued_names(), ["before", "ss", "during"]);
        assert_eq!(queued[0]["session_id"], Value::Null);
        assert_eq!(queued[2]["session_id"], queued[1]["session_id"]);
        assert_eq!(time_ms(&queued[2]), START + 1_000);
    }

    #[test]
    fn events_on_another_thread_keep_the_session_open() {
        let h = Harness::new("calls-other-thread", ONE_MINUTE);
        h.call(Action::OpenSession);
        let first = h.session_id();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // Ten minutes of events, 40 s apart: each within the timeout of the last.
                for i in 0..15 {
                    h.advance_secs(40);
                    h.event(&format!("tick{i}"));
                }
            });
        });
        h.call(Action::CheckExpiry);
        assert_eq!(h.session_id(), first, "still open after ten minutes");
        h.advance_secs(60);
        h.call(Action::CheckExpiry);
        assert_eq!(h.session_id(), None);
        let queued = h.queued();
        let end = queued.last().unwrap();
        assert_eq!(end["name"], "se");
        assert_eq!(
            time_ms(end),
            START + 15 * 40_000,
            "stamped at the last event"
        );
        assert_eq!(queued.len(), 17);
    }

    #[test]
    fn an_event_after_the_timeout_does_not_revive_the_session() {
        let h = Harness::new("calls-late-event", ONE_MINUTE);
        h.call(Action::OpenSession);
        h.engine().close_session().unwrap();
        h.advance_secs(120);
        h.event("late");
        assert_eq!(h.queued_names(), ["ss", "se", "late"]);
        assert_eq!(h.queued()[2]["session_id"], Value::Null);
        assert_eq!(h.session_id(), None);
    }
}
