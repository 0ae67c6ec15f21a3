//! The Rust API: a `Tracker` owns the session state, the journal and the background worker.
//! Every call takes one short lock, applies the session rules, appends what they record to the
//! journal (a memory copy) and returns; nothing here waits on the network.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::clock;
use crate::context;
use crate::data_dir::DataDir;
use crate::datapoint::{Data, Datapoint};
use crate::dispatch::{self, SessionChange, SessionNotice};
use crate::error::Error;
use crate::ids::IdGenerator;
use crate::input::{self, CustomEvent, UserId};
use crate::journal::Journal;
use crate::lane::{Held, Lanes, Recorded};
use crate::log;
use crate::options::Options;
use crate::saved_session::SavedSession;
use crate::session::{self, Action, Millis, Record, Rules, SessionState};
use crate::upload::Delivery;
use crate::worker;

/// Counters; all but `datapoints_pending` count since `initialize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sessions_started: u64,
    pub sessions_ended: u64,
    pub datapoints_recorded: u64,
    pub datapoints_pending: u64,
    pub datapoints_delivered: u64,
    pub datapoints_dropped: u64,
}

pub struct Tracker {
    pub(crate) shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// What the worker and request threads share with the calling threads.
pub(crate) struct Shared {
    pub inner: Mutex<Inner>,
    /// Where custom events are recorded without `inner`'s lock (see `lane`).
    pub lanes: Lanes,
    /// Wakes the worker (work is due) and flush waiters (progress was made).
    pub changed: Condvar,
    pub config: Config,
}

pub(crate) struct Config {
    pub rules: Rules,
    /// The device and app context of each session start (see `context`).
    pub context: Option<String>,
    pub base_url: Option<String>,
    pub flush_interval: Duration,
}

pub(crate) struct Inner {
    /// Set by shutdown: every later call is `NotInitialized`.
    pub closed: bool,
    /// The user's tracking choice: while false, calls record nothing and nothing is sent.
    pub tracking: bool,
    /// `stint_set_network_enabled`: while false, no request starts.
    pub network: bool,
    /// Random, per data directory; replaced by a wipe.
    pub device_id: String,
    /// When the worker next makes everything durable against power loss (after
    /// `close_session`, and within a flush interval of recording).
    pub sync_due: Option<Instant>,
    /// The device id or the tracking choice changed since the last sync.
    small_files_dirty: bool,
    /// Counts erasures (tracking disabled, data wiped): a batch built across one is not sent.
    pub erasures: u64,
    /// Why the latest delivery attempt failed, while failures last (for flush's message).
    pub last_failure: Option<String>,
    pub stop_worker: bool,
    pub session: SessionState,
    saved_session: SavedSession,
    pub journal: Journal,
    pub ids: IdGenerator,
    pub stats: Stats,
    pub delivery: Delivery,
    /// What the sleeping worker will wake for (`None`: it is awake or sleeps until notified).
    pub worker_sleeps_until: Option<Option<Instant>>,
    /// Worker wake-ups, for the idle benchmark.
    pub worker_wakeups: u64,
    /// Datapoints dropped for a full queue since the last warning, and when that was: one
    /// warning per interval, not one per event.
    drops_unreported: u64,
    last_drop_warning: Option<Instant>,
    /// Storage refused to record an expired session's end: the worker tries again then.
    pub expiry_retry_at: Option<Instant>,
    records: Vec<Record>,
    data_dir: Option<DataDir>,
}

impl Tracker {
    /// Opens the data directory, recovers the journal and the session, checks expiry, and starts
    /// the worker.
    pub fn start(api_key: &str, options: Options) -> Result<Tracker, Error> {
        input::api_key(api_key)?;
        log::set_max_level(options.log_level);
        let data_dir = DataDir::open(&options.data_directory_for(api_key))?;
        let mut ids = IdGenerator::from_os();
        let device_id = data_dir.device_id(&mut ids)?;
        // A saved choice wins over the option.
        let tracking = data_dir
            .tracking_choice()
            .unwrap_or(!options.require_consent);
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
        if journal.pending() > 0 {
            delivery.note_recorded(config.flush_interval);
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                closed: false,
                tracking,
                network: true,
                device_id,
                sync_due: None,
                small_files_dirty: false,
                erasures: 0,
                last_failure: None,
                stop_worker: false,
                session,
                saved_session,
                journal,
                ids,
                stats,
                delivery,
                worker_sleeps_until: None,
                worker_wakeups: 0,
                drops_unreported: 0,
                last_drop_warning: None,
                expiry_retry_at: None,
                records: Vec::with_capacity(4),
                data_dir: Some(data_dir),
            }),
            lanes,
            changed: Condvar::new(),
            config,
        });
        shared.recover_lanes();
        if !tracking {
            // Disabled by the user (the queue was erased then) or awaiting consent (what is
            // queued is kept, unsent, until tracking is enabled).
            let mut inner = shared.inner.lock();
            shared.lanes.hold_all().refresh(&inner.session, true);
            inner.session.session = None;
        }
        shared.apply(Action::CheckExpiry, None)?;
        let worker = worker::spawn(shared.clone())
            .map_err(|e| Error::Internal(format!("cannot start the worker thread: {e}")))?;
        log::info(|| format!("Stint {} initialized", crate::VERSION));
        Ok(Tracker {
            shared,
            worker: Mutex::new(Some(worker)),
        })
    }

    pub fn open_session(&self) -> Result<(), Error> {
        self.shared.apply(Action::OpenSession, None)
    }

    /// The app leaves the foreground: what it recorded is already safe from a kill, and the
    /// worker makes it durable against power loss within `CLOSE_SYNC_DELAY` (never the caller:
    /// this is often the UI thread).
    pub fn close_session(&self) -> Result<(), Error> {
        self.shared.apply(Action::CloseSession, None)?;
        let mut inner = self.shared.lock_open()?;
        let due = Instant::now() + CLOSE_SYNC_DELAY;
        if inner.sync_due.is_none_or(|at| at > due) {
            inner.sync_due = Some(due);
            self.shared.wake_worker_if_sooner(&mut inner);
        }
        Ok(())
    }

    pub fn change_user(&self, user_id: UserId<'_>) -> Result<(), Error> {
        self.shared
            .apply(Action::ChangeUser(user_id.as_str()), None)
    }

    pub fn log_custom_event(&self, event: CustomEvent<'_>) -> Result<(), Error> {
        let rules = self.shared.config.rules;
        match self.shared.lanes.record_custom_event(&event, rules) {
            Recorded::Here { first, half_full } => {
                if first || half_full {
                    self.shared.lane_needs_worker(first);
                }
                Ok(())
            }
            Recorded::NotHere => self.shared.apply(Action::CustomEvent, Some(&event)),
        }
    }

    /// The open session's id (after the expiry check), if any.
    pub fn session_id(&self) -> Result<Option<String>, Error> {
        self.shared.apply(Action::CheckExpiry, None)?;
        let inner = self.shared.inner.lock();
        Ok(inner.session.session.as_ref().map(|s| s.id.to_string()))
    }

    pub fn stats(&self) -> Result<Stats, Error> {
        let mut inner = self.shared.lock_open()?;
        // Refused by storage: those records stay in their lanes, counted once they move.
        let _ = self.shared.absorb_lanes(&mut inner);
        Ok(Stats {
            datapoints_pending: inner.journal.pending(),
            ..inner.stats
        })
    }

    /// Enables or disables tracking, and saves the choice in the data directory. Disabling
    /// drops the open session (no `se`) and erases every undelivered datapoint; while disabled,
    /// calls record nothing and nothing is sent. Never waits on the disk.
    pub fn set_tracking_enabled(&self, enabled: bool) -> Result<(), Error> {
        let mut guard = self.shared.lock_open()?;
        let inner = &mut *guard;
        let saved = match &inner.data_dir {
            Some(dir) => dir.save_tracking_choice(enabled),
            None => Ok(()),
        };
        inner.small_files_dirty = true;
        let mut lanes = self.shared.lanes.hold_all();
        if enabled {
            inner.tracking = true;
            lanes.refresh(&inner.session, false);
        } else {
            inner.tracking = false;
            inner.session.session = None;
            self.shared.erase(inner, &mut lanes);
            lanes.refresh(&inner.session, true);
        }
        drop(lanes);
        self.shared.sync_soon(inner);
        log::info(|| format!("tracking {}", if enabled { "enabled" } else { "disabled" }));
        saved.map_err(|e| Error::storage("cannot save the tracking choice", e))
    }

    /// The current tracking choice.
    pub fn tracking_enabled(&self) -> Result<bool, Error> {
        Ok(self.shared.lock_open()?.tracking)
    }

    /// Deletes every undelivered datapoint, the saved session, the user and the device id, and
    /// goes on with a new device id, no user and no session. Keeps the tracking choice. Nothing
    /// recorded before is sent afterwards (a request already in flight may complete).
    pub fn wipe_data(&self) -> Result<(), Error> {
        let mut guard = self.shared.lock_open()?;
        let inner = &mut *guard;
        let mut lanes = self.shared.lanes.hold_all();
        inner.session = SessionState::default();
        self.shared.erase(inner, &mut lanes);
        lanes.refresh(&inner.session, !inner.tracking);
        drop(lanes);
        inner.device_id = inner.ids.uuid();
        let saved = match &inner.data_dir {
            Some(dir) => dir.replace_device_id(&inner.device_id),
            None => Ok(()),
        };
        inner.small_files_dirty = true;
        self.shared.sync_soon(inner);
        log::info(|| "local data wiped; new device id".into());
        saved.map_err(|e| Error::storage("cannot save the new device id", e))
    }

    /// The device id sent with every batch.
    pub fn device_id(&self) -> Result<String, Error> {
        Ok(self.shared.lock_open()?.device_id.clone())
    }

    /// Allows or stops requests (not saved: each start allows them). Recording goes on.
    pub fn set_network_enabled(&self, enabled: bool) -> Result<(), Error> {
        let mut inner = self.shared.lock_open()?;
        if inner.network != enabled {
            inner.network = enabled;
            log::info(|| format!("network {}", if enabled { "enabled" } else { "disabled" }));
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    /// Asks the worker to send now; never blocks.
    pub fn request_flush(&self) -> Result<(), Error> {
        let mut inner = self.shared.lock_open()?;
        if self.shared.config.base_url.is_some() {
            inner.delivery.requested = true;
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    /// Returns once everything recorded before the call is delivered (or dropped), or
    /// `Timeout` with the data still queued. Without a `baseUrl`, only makes data durable.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        {
            let inner = self.shared.lock_open()?;
            if !inner.network {
                return Err(Error::Timeout(format!(
                    "the network is disabled (stint_set_network_enabled(false)): nothing is sent; \
                     {} datapoints stay queued",
                    inner.journal.pending()
                )));
            }
        }
        self.shared.sync()?;
        if self.shared.config.base_url.is_none() {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        let mut inner = self.shared.lock_open()?;
        let target = inner.journal.last_seq();
        // One immediate attempt per flush; after a failure the normal backoff applies, so a
        // flush against a failing server waits instead of hammering it.
        if !inner.journal.is_done_through(target) {
            inner.delivery.requested = true;
            self.shared.changed.notify_all();
        }
        loop {
            if inner.journal.is_done_through(target) {
                return Ok(());
            }
            if inner.closed {
                return Err(Error::NotInitialized);
            }
            if self
                .shared
                .changed
                .wait_until(&mut inner, deadline)
                .timed_out()
                && !inner.journal.is_done_through(target)
            {
                let why = match &inner.last_failure {
                    Some(reason) => format!("; the last delivery attempt failed: {reason}"),
                    None if !inner.tracking => "; tracking is disabled".into(),
                    None => String::new(),
                };
                return Err(Error::Timeout(format!(
                    "flush did not finish within {} ms; {} datapoints stay queued{why}",
                    timeout.as_millis(),
                    inner.journal.pending()
                )));
            }
        }
    }

    /// Tries to deliver for at most `timeout`, then persists and stops. Records no datapoint.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let delivered = match self.flush(timeout) {
            Err(Error::Timeout(message)) => Err(Error::Timeout(message)),
            other => other.map(|_| ()),
        };
        {
            let mut inner = self.shared.inner.lock();
            let inner = &mut *inner;
            let mut lanes = self.shared.lanes.hold_all();
            // What storage refuses to move stays in the lanes, for the next start.
            let _ = self.shared.absorb(inner, &mut lanes, None);
            lanes.refresh(&inner.session, true);
            inner.closed = true;
            inner.stop_worker = true;
            self.shared.changed.notify_all();
        }
        if let Some(worker) = self.worker.lock().take() {
            let _ = worker.join();
        }
        let synced = self.shared.sync_now();
        // Unlock the directory now, even if a request thread still holds on to `shared`.
        self.shared.inner.lock().data_dir = None;
        dispatch::wait_until_idle(deadline.saturating_duration_since(Instant::now()));
        synced.and(delivered)
    }

    /// How often the worker has woken up (for the idle benchmark).
    pub fn worker_wakeups(&self) -> u64 {
        self.shared.inner.lock().worker_wakeups
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let mut inner = self.shared.inner.lock();
        self.shared.lanes.hold_all().refresh(&inner.session, true);
        inner.closed = true;
        inner.stop_worker = true;
        self.shared.changed.notify_all();
    }
}

impl Shared {
    pub fn lock_open(&self) -> Result<parking_lot::MutexGuard<'_, Inner>, Error> {
        let inner = self.inner.lock();
        if inner.closed {
            return Err(Error::NotInitialized);
        }
        Ok(inner)
    }

    /// One call's work: the session rules at the current time, then recording what they produce.
    pub fn apply(&self, action: Action<'_>, event: Option<&CustomEvent<'_>>) -> Result<(), Error> {
        let mut guard = self.lock_open()?;
        let inner = &mut *guard;
        if !inner.tracking {
            return Ok(()); // the user said no: record nothing (the lanes are closed too)
        }
        let now = clock::now_ms();
        // A call that may record or change the session holds the lanes and moves what they hold
        // into the journal first: their records come before its own, and its view of the last
        // activity is complete.
        let mut lanes =
            session::may_record_or_change(&inner.session, action, now, self.config.rules)
                .then(|| self.lanes.hold_all());
        let absorbed = match &mut lanes {
            Some(lanes) => self.absorb(inner, lanes, None),
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
        let room = room_needed(&inner.session, action, event) + 2 * context;
        let ready = absorbed.and_then(|()| inner.journal.make_room(room).map_err(refused));
        if let Err(error) = ready {
            let mut trial = inner.session.clone();
            rules(&mut trial, &mut inner.ids, &mut inner.records);
            if !inner.records.is_empty() {
                inner.records.clear();
                return Err(error);
            }
        }
        let before = (
            inner.session.session.as_ref().map(|s| s.last_activity),
            inner.session.foreground,
        );
        rules(&mut inner.session, &mut inner.ids, &mut inner.records);
        match &mut lanes {
            Some(lanes) => lanes.refresh(&inner.session, false),
            None => {
                debug_assert!(
                    inner.records.is_empty(),
                    "recorded without holding the lanes"
                );
                self.lanes.publish_last_activity(&inner.session);
            }
        }
        let after = (
            inner.session.session.as_ref().map(|s| s.last_activity),
            inner.session.foreground,
        );
        let session_changed = inner
            .records
            .iter()
            .any(|r| !matches!(r, Record::CustomEvent { .. }));
        if session_changed || matches!(action, Action::ChangeUser(_)) || before.0 != after.0 {
            inner.saved_session.save(&inner.session);
        }
        let mut newly_scheduled = false;
        if !inner.records.is_empty() {
            newly_scheduled = self.record(inner, event)?;
        }
        // The worker is woken only when its next deadline may have moved earlier (or the
        // journal wants its next segment prepared), not on every call.
        if inner.journal.wants_spare() {
            self.changed.notify_all();
        } else if session_changed || newly_scheduled || before.1 != after.1 {
            self.wake_worker_if_sooner(inner);
        }
        Ok(())
    }

    /// Moves the lanes' records into the journal (see `lane`), counted as recorded now, and brings
    /// the session's last activity up to date. `skip`: ids already in the journal (recovery).
    /// Storage refusing a record leaves it and those after it in their lanes, and is an error.
    pub fn absorb(
        &self,
        inner: &mut Inner,
        lanes: &mut Held<'_>,
        skip: Option<&HashSet<[u8; 16]>>,
    ) -> Result<(), Error> {
        let absorbed = lanes.absorb(&mut inner.journal, skip);
        count_recorded(inner, absorbed.recorded, absorbed.dropped);
        if let Some(session) = &mut inner.session.session {
            if absorbed.last_activity > session.last_activity {
                session.last_activity = absorbed.last_activity;
                inner.saved_session.save(&inner.session);
                self.lanes.publish_last_activity(&inner.session);
            }
        }
        if absorbed.recorded > 0 {
            self.schedule_send(inner);
        }
        match absorbed.error {
            Some(error) => Err(refused(error)),
            None => Ok(()),
        }
    }

    /// Whether anything waits for delivery, in the journal or in a lane.
    pub fn has_pending(&self, inner: &Inner) -> bool {
        inner.journal.pending() > 0 || self.lanes.holding()
    }

    /// `absorb` for callers that do not hold the lanes yet.
    pub fn absorb_lanes(&self, inner: &mut Inner) -> Result<(), Error> {
        if !self.lanes.holding() {
            return Ok(());
        }
        self.absorb(inner, &mut self.lanes.hold_all(), None)
    }

    /// At start-up: moves what a previous run left in the lanes into the journal, skipping what
    /// an absorb cut short by a kill had already moved.
    fn recover_lanes(&self) {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let mut lanes = self.lanes.hold_all();
        let skip = (!lanes.is_empty()).then(|| inner.journal.pending_ids());
        let recorded = inner.stats.datapoints_recorded;
        let absorbed = self.absorb(inner, &mut lanes, skip.as_ref());
        // Recorded by the previous run: pending now, not recorded since this initialize.
        inner.stats.datapoints_recorded = recorded;
        if let Err(error) = absorbed {
            log::warn(|| {
                format!("{error}; the custom events concerned stay queued in their lanes")
            });
        }
        lanes.clear_tails();
        lanes.refresh(&inner.session, false);
    }

    /// A lane call recorded the first event since the lanes were absorbed (delivery must be
    /// scheduled), or filled its lane halfway (the worker absorbs).
    fn lane_needs_worker(&self, first: bool) {
        let mut inner = self.inner.lock();
        if inner.closed {
            return;
        }
        if first && self.schedule_send(&mut inner) {
            self.wake_worker_if_sooner(&mut inner);
        }
        if self.lanes.wants_absorb() {
            self.changed.notify_all();
        }
    }

    /// Appends the records to the journal; returns whether that scheduled a send.
    fn record(&self, inner: &mut Inner, event: Option<&CustomEvent<'_>>) -> Result<bool, Error> {
        let records = std::mem::take(&mut inner.records);
        let mut result = Ok(());
        for record in &records {
            let mut datapoint = Datapoint::new(record, inner.ids.uuid_raw(), event);
            if let Data::Start { context } = &mut datapoint.data {
                *context = self.config.context.as_deref();
            }
            let stored = |out: &mut [u8]| datapoint.store(out);
            match inner
                .journal
                .append_with(datapoint.kind, datapoint.stored_len(), stored)
            {
                Ok((_, dropped)) => count_recorded(inner, 1, dropped),
                Err(error) => {
                    result = Err(refused(error));
                    continue;
                }
            }
            if let Some(notice) = notice(record) {
                match notice.change {
                    SessionChange::Started => inner.stats.sessions_started += 1,
                    SessionChange::Ended => inner.stats.sessions_ended += 1,
                }
                dispatch::session(notice);
            }
        }
        inner.records = records;
        inner.records.clear();
        let scheduled = self.schedule_send(inner);
        result.map(|()| scheduled)
    }

    /// Schedules a send for what was just recorded (with a `baseUrl`); returns whether that
    /// newly scheduled one.
    fn schedule_send(&self, inner: &mut Inner) -> bool {
        // Durable against power loss within a flush interval of being recorded.
        if inner.sync_due.is_none() {
            inner.sync_due = Some(Instant::now() + self.config.flush_interval);
        }
        self.config.base_url.is_some() && inner.delivery.note_recorded(self.config.flush_interval)
    }

    /// Erases every undelivered datapoint, in the lanes and the journal (memory work only;
    /// the worker syncs), and saves the session state.
    fn erase(&self, inner: &mut Inner, lanes: &mut Held<'_>) {
        // Moved into the journal first, which zeroes the lanes, then erased with the rest.
        let _ = self.absorb(inner, lanes, None);
        let erased = inner.journal.erase_all();
        inner.erasures += 1;
        inner.saved_session.save(&inner.session);
        inner.delivery = Delivery::default();
        inner.last_failure = None;
        log::debug(|| format!("erased {erased} undelivered datapoints"));
    }

    /// Asks the worker to sync now (the small files changed, or data was erased).
    fn sync_soon(&self, inner: &mut Inner) {
        inner.sync_due = Some(Instant::now());
        self.changed.notify_all();
    }

    /// Notifies the worker only if it sleeps past the new earliest deadline.
    pub fn wake_worker_if_sooner(&self, inner: &mut Inner) {
        let Some(sleeps_until) = inner.worker_sleeps_until else {
            return;
        };
        let due = worker::next_due(self, inner);
        if due.is_some_and(|due| sleeps_until.is_none_or(|until| due < until)) {
            self.changed.notify_all();
        }
    }

    pub fn sync(&self) -> Result<(), Error> {
        let mut inner = self.lock_open()?;
        // If storage refuses to move them, the records are synced in their lanes instead.
        let _ = self.absorb_lanes(&mut inner);
        drop(inner);
        self.sync_now()
    }

    pub fn sync_now(&self) -> Result<(), Error> {
        let mut inner = self.inner.lock();
        if std::mem::take(&mut inner.small_files_dirty) {
            if let Some(dir) = &inner.data_dir {
                dir.sync_small_files()
                    .map_err(|e| Error::storage("cannot sync the device id", e))?;
            }
        }
        inner
            .saved_session
            .sync()
            .map_err(|e| Error::storage("cannot sync the session state", e))?;
        inner
            .journal
            .sync()
            .map_err(|e| Error::storage("cannot sync the journal", e))?;
        self.lanes
            .hold_all()
            .sync()
            .map_err(|e| Error::storage("cannot sync the custom events' lanes", e))
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

const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Counts datapoints recorded and those a full queue dropped for them; drops are warned about
/// at most once per interval.
fn count_recorded(inner: &mut Inner, recorded: u64, dropped: u64) {
    inner.stats.datapoints_recorded += recorded;
    if dropped == 0 {
        return;
    }
    inner.stats.datapoints_dropped += dropped;
    inner.drops_unreported += dropped;
    let now = Instant::now();
    if inner
        .last_drop_warning
        .is_some_and(|last| now.duration_since(last) < DROP_WARNING_INTERVAL)
    {
        return;
    }
    let count = std::mem::take(&mut inner.drops_unreported);
    inner.last_drop_warning = Some(now);
    log::warn(|| {
        format!(
            "queue full (maxQueuedDatapoints): dropped the {count} oldest datapoint(s); \
             custom events go first, session datapoints last"
        )
    });
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
