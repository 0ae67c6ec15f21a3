//! The engine: the session state, the journal, the lanes and the delivery state behind one
//! lock. Each call applies the session rules (`session::apply`) at the current time and records
//! what they produce; nothing here waits on the network. The facade (`tracker`) calls it, and
//! the worker (`delivery::worker`) drives it through the `worker::Engine` trait.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

mod drops;

use crate::clock;
use crate::delivery::batch::StoredBatch;
use crate::delivery::policy::{Delivery, MAX_BATCH_BYTES};
use crate::delivery::worker::{self, Settled, EXPIRY_RETRY};
use crate::dispatch::{self, SessionChange, SessionNotice};
use crate::error::Error;
use crate::ids::IdGenerator;
use crate::input::{self, CustomEvent};
use crate::log;
use crate::options::Options;
use crate::platform::context;
use crate::session::{self, Action, Millis, Record, Rules, SessionState};
use crate::storage::data_dir::DataDir;
use crate::storage::datapoint::{Data, Datapoint};
use crate::storage::journal::Journal;
use crate::storage::lane::{Absorbed, Held, Lanes, Recorded};
use crate::storage::mapping::Flusher;
use crate::storage::saved_session::SavedSession;
use drops::Drops;

/// Counters; all but `datapoints_pending` count since `initialize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sessions started.
    pub sessions_started: u64,
    /// Sessions ended.
    pub sessions_ended: u64,
    /// Datapoints recorded.
    pub datapoints_recorded: u64,
    /// Datapoints waiting for delivery, whenever recorded.
    pub datapoints_pending: u64,
    /// Datapoints the collector acknowledged.
    pub datapoints_delivered: u64,
    /// Datapoints dropped: a full queue, or refused by the collector.
    pub datapoints_dropped: u64,
}

/// What the calling threads, the worker and the request threads share.
pub(crate) struct Engine {
    state: Mutex<State>,
    /// Where custom events are recorded without `state`'s lock (see `storage::lane`).
    lanes: Lanes,
    /// Wakes the worker (work is due) and flush waiters (progress was made).
    changed: Condvar,
    config: Config,
    /// A send is scheduled (`Delivery::note_recorded`): a lane call that recorded the first
    /// event since the lanes were empty need not take the lock to schedule one. Only ever true
    /// while one is; written under `state`'s lock.
    send_scheduled: AtomicBool,
    /// The worker is about to sleep or sleeps: a lane call that wants it must take the lock to
    /// wake it (see `nudge_worker`).
    worker_asleep: AtomicBool,
}

struct Config {
    rules: Rules,
    /// The device and app context of each session start (see `platform::context`).
    context: Option<String>,
    base_url: Option<String>,
    flush_interval: Duration,
}

/// What the engine's lock guards.
pub(crate) struct State {
    /// Set by shutdown: every later call is `NotInitialized`.
    closed: bool,
    /// The user's tracking choice: while false, calls record nothing and nothing is sent.
    tracking: bool,
    /// `stint_set_network_enabled`: while false, no request starts.
    network: bool,
    /// Random, per data directory; replaced by a wipe.
    device_id: String,
    /// When the worker next makes everything durable against power loss (after
    /// `close_session`, and within a flush interval of recording).
    sync_due: Option<Instant>,
    /// The device id or the tracking choice changed since the last sync.
    small_files_dirty: bool,
    /// The tracking choice saved in the data directory, if any (so an unchanged choice is not
    /// written again: apps often set it at every start).
    tracking_saved: Option<bool>,
    /// Counts erasures (tracking disabled, data wiped): a batch built across one is not sent.
    erasures: u64,
    stop_worker: bool,
    session: SessionState,
    saved_session: SavedSession,
    journal: Journal,
    ids: IdGenerator,
    stats: Stats,
    delivery: Delivery,
    /// What the sleeping worker will wake for (`None`: it is awake or sleeps until notified).
    worker_sleeps_until: Option<Option<Instant>>,
    /// Worker wake-ups, for the idle benchmark.
    worker_wakeups: u64,
    /// Queue-full drops and their announcement (`drops`).
    drops: Drops,
    /// Storage refused to record an expired session's end: the worker tries again then.
    expiry_retry_at: Option<Instant>,
    records: Vec<Record>,
    data_dir: Option<DataDir>,
}

impl Engine {
    /// Opens the data directory, recovers the journal, the lanes and the session, and checks
    /// expiry. The worker is not started yet (`delivery::worker::spawn`).
    pub(crate) fn open(api_key: &str, options: &Options) -> Result<Engine, Error> {
        input::api_key(api_key)?;
        let data_dir = DataDir::open(&options.data_directory_for(api_key)?)?;
        let mut ids = IdGenerator::from_os()?;
        let device_id = data_dir.device_id(&mut ids)?;
        // A saved choice wins over the option.
        let tracking_saved = data_dir.tracking_choice();
        let tracking = tracking_saved.unwrap_or(!options.require_consent);
        let (saved_session, session) = SavedSession::open(&data_dir.session_state())?;
        let lanes = Lanes::open(data_dir.lanes(), &mut ids);
        let (journal, recovery) =
            Journal::open(&data_dir.journal(), api_key, options.max_queued_datapoints)
                .map_err(|e| Error::storage("cannot open the journal", e))?;
        if recovery.corrupt_bytes_skipped > 0 {
            log::warn(|| {
                format!(
                    "journal recovery skipped {} corrupted or torn bytes; kept {} intact records",
                    recovery.corrupt_bytes_skipped, recovery.records
                )
            });
        }
        let stats = Stats {
            datapoints_pending: journal.pending(),
            ..Stats::default()
        };
        let config = Config {
            context: context::members(options.app_version.as_deref()),
            rules: Rules {
                session_timeout: options.session_timeout_seconds as Millis * 1000,
                keep_open_while_foreground: options.keep_open_while_foreground,
            },
            base_url: options.base_url.clone(),
            flush_interval: Duration::from_secs(options.flush_interval_seconds),
        };
        let mut delivery = Delivery::default();
        let send_scheduled = journal.pending() > 0 && config.base_url.is_some();
        if journal.pending() > 0 {
            delivery.note_recorded(config.flush_interval);
        }
        let engine = Engine {
            state: Mutex::new(State {
                closed: false,
                tracking,
                network: true,
                device_id,
                sync_due: None,
                small_files_dirty: false,
                tracking_saved,
                erasures: 0,
                stop_worker: false,
                session,
                saved_session,
                journal,
                ids,
                stats,
                delivery,
                worker_sleeps_until: None,
                worker_wakeups: 0,
                drops: Drops::default(),
                expiry_retry_at: None,
                records: Vec::with_capacity(4),
                data_dir: Some(data_dir),
            }),
            lanes,
            changed: Condvar::new(),
            config,
            send_scheduled: AtomicBool::new(send_scheduled),
            worker_asleep: AtomicBool::new(false),
        };
        engine.recover_lanes();
        engine
            .lanes
            .watch_for_drops(engine.state.lock().journal.room());
        if !tracking {
            // Disabled by the user (the queue was erased then) or awaiting consent (what is
            // queued is kept, unsent, until tracking is enabled).
            let mut state = engine.state.lock();
            engine.lanes.hold_all().refresh(&state.session, true);
            state.session.session = None;
        }
        engine.apply(Action::CheckExpiry, None)?;
        Ok(engine)
    }

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
                } else if wake {
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
        if state.sync_due.is_none_or(|at| at > due) {
            state.sync_due = Some(due);
            self.wake_worker_if_sooner(&mut state);
        }
        Ok(())
    }

    /// Enables or disables tracking, and saves the choice in the data directory. Disabling
    /// drops the open session (no `se`) and erases every undelivered datapoint; while disabled,
    /// calls record nothing and nothing is sent. Never waits on the disk.
    pub(crate) fn set_tracking_enabled(&self, enabled: bool) -> Result<(), Error> {
        let mut guard = self.lock_open()?;
        let state = &mut *guard;
        if state.tracking_saved == Some(enabled) && state.tracking == enabled {
            return Ok(()); // saved and in force already: nothing to write, erase or sync
        }
        let saved = match &state.data_dir {
            Some(dir) if state.tracking_saved != Some(enabled) => dir.save_tracking_choice(enabled),
            _ => Ok(()),
        };
        if saved.is_ok() {
            state.tracking_saved = Some(enabled);
        }
        state.small_files_dirty = true;
        let mut lanes = self.lanes.hold_all();
        if enabled {
            state.tracking = true;
            lanes.refresh(&state.session, false);
        } else {
            state.tracking = false;
            state.session.session = None;
            self.erase(state, &mut lanes);
            lanes.refresh(&state.session, true);
        }
        drop(lanes);
        self.sync_soon(state);
        log::info(|| format!("tracking {}", if enabled { "enabled" } else { "disabled" }));
        saved.map_err(|e| Error::storage("cannot save the tracking choice", e))
    }

    /// The current tracking choice.
    pub(crate) fn tracking_enabled(&self) -> Result<bool, Error> {
        Ok(self.lock_open()?.tracking)
    }

    /// Deletes every undelivered datapoint, the saved session, the user and the device id, and
    /// goes on with a new device id, no user and no session. Keeps the tracking choice. Nothing
    /// recorded before is sent afterwards (a request already in flight may complete).
    pub(crate) fn wipe_data(&self) -> Result<(), Error> {
        let mut guard = self.lock_open()?;
        let state = &mut *guard;
        let mut lanes = self.lanes.hold_all();
        state.session = SessionState::default();
        self.erase(state, &mut lanes);
        lanes.refresh(&state.session, !state.tracking);
        drop(lanes);
        state.device_id = state.ids.uuid();
        let saved = match &state.data_dir {
            Some(dir) => dir.replace_device_id(&state.device_id),
            None => Ok(()),
        };
        state.small_files_dirty = true;
        self.sync_soon(state);
        log::info(|| "local data wiped; new device id".into());
        saved.map_err(|e| Error::storage("cannot save the new device id", e))
    }

    /// The device id sent with every batch.
    pub(crate) fn device_id(&self) -> Result<String, Error> {
        Ok(self.lock_open()?.device_id.clone())
    }

    /// Allows or stops requests (not saved: each start allows them). Recording goes on.
    pub(crate) fn set_network_enabled(&self, enabled: bool) -> Result<(), Error> {
        let mut state = self.lock_open()?;
        if state.network != enabled {
            state.network = enabled;
            log::info(|| format!("network {}", if enabled { "enabled" } else { "disabled" }));
            self.changed.notify_all();
        }
        Ok(())
    }

    /// `Timeout` if the network is disabled: a flush that would send cannot finish then.
    pub(crate) fn check_network(&self) -> Result<(), Error> {
        let state = self.lock_open()?;
        if !state.network && self.config.base_url.is_some() {
            return Err(Error::Timeout(format!(
                "the network is disabled: nothing is sent; \
                 {} datapoints stay queued",
                state.journal.pending()
            )));
        }
        Ok(())
    }

    /// The open session's id (after the expiry check), if any.
    pub(crate) fn session_id(&self) -> Result<Option<String>, Error> {
        self.apply(Action::CheckExpiry, None)?;
        let state = self.state.lock();
        Ok(state.session.session.as_ref().map(|s| s.id.to_string()))
    }

    /// The counters, with what the lanes hold counted as recorded.
    pub(crate) fn stats(&self) -> Result<Stats, Error> {
        let mut state = self.lock_open()?;
        // Refused by storage: those records stay in their lanes, counted once they move.
        let _ = self.absorb_lanes(&mut state);
        Ok(Stats {
            datapoints_pending: state.journal.pending(),
            ..state.stats
        })
    }

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
            if state.journal.is_done_through(target) {
                return Ok(());
            }
            if state.closed {
                return Err(Error::NotInitialized);
            }
            if self.changed.wait_until(&mut state, deadline).timed_out()
                && !state.journal.is_done_through(target)
            {
                let why = match &state.delivery.last_failure {
                    Some(reason) => format!("; the last delivery attempt failed: {reason}"),
                    None if !state.tracking => "; tracking is disabled".into(),
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

    /// Closes the engine: moves what the lanes hold into the journal (what storage refuses
    /// stays there, for the next start), refuses every later call and stops the worker.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock();
        let state = &mut *state;
        let mut lanes = self.lanes.hold_all();
        let _ = self.absorb(state, &mut lanes, None);
        lanes.refresh(&state.session, true);
        state.closed = true;
        state.stop_worker = true;
        self.changed.notify_all();
    }

    /// Refuses every later call and stops the worker, without touching storage (a dropped
    /// tracker).
    pub(crate) fn abandon(&self) {
        let mut state = self.state.lock();
        self.lanes.hold_all().refresh(&state.session, true);
        state.closed = true;
        state.stop_worker = true;
        self.changed.notify_all();
    }

    /// Unlocks the data directory now, even if a request thread still holds on to the engine.
    pub(crate) fn release_data_directory(&self) {
        self.state.lock().data_dir = None;
    }

    /// How often the worker has woken up (for the idle benchmark).
    pub(crate) fn worker_wakeups(&self) -> u64 {
        self.state.lock().worker_wakeups
    }

    /// The state, unless the tracker is closed.
    fn lock_open(&self) -> Result<MutexGuard<'_, State>, Error> {
        let state = self.state.lock();
        if state.closed {
            return Err(Error::NotInitialized);
        }
        Ok(state)
    }

    /// One call's work: the session rules at the current time, then recording what they produce.
    pub(crate) fn apply(
        &self,
        action: Action<'_>,
        event: Option<&CustomEvent<'_>>,
    ) -> Result<(), Error> {
        let mut guard = self.lock_open()?;
        let state = &mut *guard;
        if !state.tracking {
            return Ok(()); // the user said no: record nothing (the lanes are closed too)
        }
        let now = clock::now_ms();
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
        if state.journal.wants_spare() || state.journal.wants_prefault() {
            self.changed.notify_all();
        } else if session_changed || newly_scheduled || before.1 != after.1 {
            self.wake_worker_if_sooner(state);
        }
        Ok(())
    }

    /// Moves the lanes' records into the journal (see `lane`), counted as recorded now, and brings
    /// the session's last activity up to date. `skip`: ids already in the journal (recovery).
    /// Storage refusing a record leaves it and those after it in their lanes, and is an error.
    fn absorb(
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
    fn absorbed(&self, state: &mut State, absorbed: Absorbed) -> Result<(), Error> {
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
    fn absorb_full_lanes(&self, state: &mut State) -> Result<(), Error> {
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
    /// about to) is the lock taken, and the worker holds it only until it is asleep.
    fn nudge_worker(&self) {
        if self.worker_asleep.load(Ordering::SeqCst) {
            let _state = self.state.lock();
            self.changed.notify_all();
        }
    }

    /// `absorb` for callers that do not hold the lanes yet.
    fn absorb_lanes(&self, state: &mut State) -> Result<(), Error> {
        if !self.lanes.holding() {
            return Ok(());
        }
        self.absorb(state, &mut self.lanes.hold_all(), None)
    }

    /// At start-up: moves what a previous run left in the lanes into the journal, skipping what
    /// an absorb cut short by a kill had already moved.
    fn recover_lanes(&self) {
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

    /// Appends the records to the journal; returns whether that scheduled a send.
    fn record(&self, state: &mut State, event: Option<&CustomEvent<'_>>) -> Result<bool, Error> {
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

    /// Schedules a send for what was just recorded (with a `baseUrl`); returns whether that
    /// newly scheduled one.
    fn schedule_send(&self, state: &mut State) -> bool {
        // Durable against power loss within a flush interval of being recorded.
        if state.sync_due.is_none() {
            state.sync_due = Some(Instant::now() + self.config.flush_interval);
        }
        if self.config.base_url.is_none() {
            return false;
        }
        let newly = state.delivery.note_recorded(self.config.flush_interval);
        self.send_scheduled.store(true, Ordering::SeqCst);
        newly
    }

    /// Erases every undelivered datapoint, in the lanes and the journal (memory work only;
    /// the worker syncs), and saves the session state.
    fn erase(&self, state: &mut State, lanes: &mut Held<'_>) {
        // Moved into the journal first, which zeroes the lanes, then erased with the rest.
        let _ = self.absorb(state, lanes, None);
        let erased = state.journal.erase_all();
        state.erasures += 1;
        state.saved_session.scrub(&state.session);
        state.delivery = Delivery::default();
        log::debug(|| format!("erased {erased} undelivered datapoints"));
    }

    /// Asks the worker to sync now (the small files changed, or data was erased).
    fn sync_soon(&self, state: &mut State) {
        state.sync_due = Some(Instant::now());
        self.changed.notify_all();
    }

    /// Notifies the worker only if it sleeps past the new earliest deadline.
    fn wake_worker_if_sooner(&self, state: &mut State) {
        let Some(sleeps_until) = state.worker_sleeps_until else {
            return;
        };
        let due = worker::Engine::next_due(self, state);
        if due.is_some_and(|due| sleeps_until.is_none_or(|until| due < until)) {
            self.changed.notify_all();
        }
    }

    /// Makes everything recorded so far durable against power loss.
    pub(crate) fn sync(&self) -> Result<(), Error> {
        let mut state = self.lock_open()?;
        // If storage refuses to move them, the records are synced in their lanes instead.
        let _ = self.absorb_lanes(&mut state);
        drop(state);
        self.sync_now()
    }

    /// Makes everything recorded so far durable against power loss. The locks are held only to
    /// see what needs syncing; the disk work happens with none held (see `MappedFile::sync`),
    /// so calls on other threads never wait for it.
    pub(crate) fn sync_now(&self) -> Result<(), Error> {
        let mut later = Vec::new();
        let small_files = {
            let mut state = self.state.lock();
            let dirty = std::mem::take(&mut state.small_files_dirty);
            let small_files = state
                .data_dir
                .as_ref()
                .filter(|_| dirty)
                .map(|d| d.path.clone());
            state
                .saved_session
                .sync(&mut later)
                .map_err(|e| Error::storage("cannot sync the session state", e))?;
            state
                .journal
                .sync(&mut later)
                .map_err(|e| Error::storage("cannot sync the journal", e))?;
            self.lanes
                .hold_all()
                .sync(&mut later)
                .map_err(|e| Error::storage("cannot sync the custom events' lanes", e))?;
            small_files
        };
        let synced = small_files
            .map_or(Ok(()), |dir| DataDir::sync_small_files(&dir))
            .and_then(|()| later.iter().try_for_each(Flusher::flush));
        if let Err(error) = synced {
            let mut state = self.state.lock();
            state.journal.forget_synced();
            state.small_files_dirty = true;
            return Err(Error::storage("cannot sync the data directory", error));
        }
        Ok(())
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
        state.worker_sleeps_until = Some(until);
        match until {
            Some(until) => {
                self.changed.wait_until(state, until);
            }
            None => self.changed.wait(state),
        }
        self.worker_asleep.store(false, Ordering::SeqCst);
        state.worker_sleeps_until = None;
        state.worker_wakeups += 1;
    }

    fn base_url(&self) -> Option<&str> {
        self.config.base_url.as_deref()
    }

    fn stopping(state: &State) -> bool {
        state.stop_worker
    }

    fn may_send(state: &State) -> bool {
        state.network && state.tracking
    }

    fn erasures(state: &State) -> u64 {
        state.erasures
    }

    fn device_id(state: &State) -> String {
        state.device_id.clone()
    }

    fn sync_if_due(&self, state: &mut MutexGuard<'_, State>) -> bool {
        if state.sync_due.is_none_or(|due| due > Instant::now()) {
            return false;
        }
        // Power-loss durability is the worker's job: callers never wait for a sync.
        state.sync_due = None;
        if let Err(error) = MutexGuard::unlocked(state, || self.sync_now()) {
            log::warn(|| format!("{error}; retrying at the next sync"));
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
            let wait = (deadline - clock::now_ms()).max(0) as u64;
            let due = Instant::now() + Duration::from_millis(wait);
            state.expiry_retry_at.map_or(due, |retry| due.max(retry))
        });
        let send = match self.config.base_url {
            Some(_) if state.network && state.tracking => {
                state.delivery.due(self.has_pending(state))
            }
            _ => None,
        };
        let now = Instant::now();
        let drops = [
            state.drops.warning_due(now),
            state.drops.check_due(self.lanes.drop_check(), now),
        ];
        [expiry, send, state.sync_due]
            .into_iter()
            .chain(drops)
            .flatten()
            .min()
    }

    fn has_pending(&self, state: &State) -> bool {
        state.journal.pending() > 0 || self.lanes.holding()
    }

    fn end_expired_session(&self, state: &mut MutexGuard<'_, State>) {
        if state.expiry_retry_at.is_some_and(|at| at > Instant::now()) {
            return;
        }
        let checked = MutexGuard::unlocked(state, || self.apply(Action::CheckExpiry, None));
        state.expiry_retry_at = checked.is_err().then(|| Instant::now() + EXPIRY_RETRY);
    }

    fn prepare_spare(&self, state: &mut MutexGuard<'_, State>) -> bool {
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
        let spare = MutexGuard::unlocked(state, || Journal::prepare_spare(&path));
        match spare {
            Ok(spare) => state.journal.install_spare(spare),
            Err(error) => log::debug(|| format!("cannot prepare the next segment: {error}")),
        }
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

    fn oldest_batch(state: &State, limit: usize) -> Option<StoredBatch> {
        StoredBatch::copy(&state.journal.oldest(limit, MAX_BATCH_BYTES))
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

/// How soon after `close_session` the worker syncs: soon, yet a quick background/foreground
/// flicker costs one sync, not one per call.
const CLOSE_SYNC_DELAY: Duration = Duration::from_millis(200);

/// An upper bound on the journal bytes one call records: at most an expired session's end, an
/// end and a start, or an end and a custom event (`Datapoint::stored_len`).
fn room_needed(state: &SessionState, action: Action<'_>, event: Option<&CustomEvent<'_>>) -> usize {
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
fn refused(error: std::io::Error) -> Error {
    log::error(|| format!("cannot record a datapoint: {error}"));
    Error::storage("cannot record the datapoint", error)
}

/// Counts datapoints recorded and those a full queue dropped for them (announced by `drops`).
fn count_recorded(state: &mut State, recorded: u64, dropped: u64) {
    state.stats.datapoints_recorded += recorded;
    if dropped == 0 {
        return;
    }
    state.stats.datapoints_dropped += dropped;
    if let Some(warning) = state.drops.count(dropped, Instant::now()) {
        log::warn(|| warning);
    }
}

fn notice(record: &Record) -> Option<SessionNotice> {
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
