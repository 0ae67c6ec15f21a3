//! The Rust API: a `Tracker` owns the session state, the journal and the background worker.
//! Every call takes one short lock, applies the session rules, appends what they record to the
//! journal (a memory copy) and returns; nothing here waits on the network.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::clock;
use crate::data_dir::DataDir;
use crate::datapoint::Datapoint;
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
    /// A send is scheduled (`Delivery::note_recorded`): a lane call that recorded the first
    /// event since the lanes were empty need not take the lock to schedule one. Only ever true
    /// while one is; written under `inner`'s lock.
    pub send_scheduled: AtomicBool,
    /// The worker is about to sleep or sleeps: a lane call that wants it must take the lock to
    /// wake it (see `nudge_worker`).
    pub worker_asleep: AtomicBool,
}

pub(crate) struct Config {
    pub device_id: String,
    pub rules: Rules,
    pub base_url: Option<String>,
    pub flush_interval: Duration,
}

pub(crate) struct Inner {
    /// Set by shutdown: every later call is `NotInitialized`.
    pub closed: bool,
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
            device_id,
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
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                closed: false,
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
            send_scheduled: AtomicBool::new(send_scheduled),
            worker_asleep: AtomicBool::new(false),
        });
        shared.recover_lanes();
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

    /// Makes the session state and journal durable (fsync) before returning: a backgrounded
    /// app may be killed without notice.
    pub fn close_session(&self) -> Result<(), Error> {
        self.shared.apply(Action::CloseSession, None)?;
        self.shared.sync()
    }

    pub fn change_user(&self, user_id: UserId<'_>) -> Result<(), Error> {
        self.shared
            .apply(Action::ChangeUser(user_id.as_str()), None)
    }

    pub fn log_custom_event(&self, event: CustomEvent<'_>) -> Result<(), Error> {
        let rules = self.shared.config.rules;
        match self.shared.lanes.record_custom_event(&event, rules) {
            Recorded::Here { first, wake } => {
                // The lock only to schedule the first send since the lanes were empty; the
                // worker may be copying under it, so nothing else here takes it unless the
                // worker sleeps (`nudge_worker`).
                if first
                    && self.shared.config.base_url.is_some()
                    && !self.shared.send_scheduled.load(Ordering::SeqCst)
                {
                    self.shared.lane_needs_worker(first);
                } else if wake {
                    self.shared.nudge_worker();
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

    /// Asks the worker to send now; never blocks.
    pub fn request_flush(&self) -> Result<(), Error> {
        let mut inner = self.shared.lock_open()?;
        // Already asked: the worker knows (it clears `requested` only once nothing waits).
        if self.shared.config.base_url.is_some() && !inner.delivery.requested {
            inner.delivery.requested = true;
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    /// Returns once everything recorded before the call is delivered (or dropped), or
    /// `Timeout` with the data still queued. Without a `baseUrl`, only makes data durable.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
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
                return Err(Error::Timeout(format!(
                    "flush did not finish within {} ms; {} datapoints stay queued",
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
        let room = room_needed(&inner.session, action, event);
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
        if inner.journal.wants_spare() || inner.journal.wants_prefault() {
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
        self.absorbed(inner, absorbed)
    }

    /// Counts what an absorb moved, brings the session's last activity up to date and
    /// schedules a send.
    fn absorbed(&self, inner: &mut Inner, absorbed: crate::lane::Absorbed) -> Result<(), Error> {
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

    /// For the worker: moves the lanes' full buffers (and any that hold records, when their
    /// lane can swap) into the journal without holding the lanes: callers keep recording into
    /// their other buffer meanwhile.
    pub fn absorb_full_lanes(&self, inner: &mut Inner) -> Result<(), Error> {
        let taken = self.lanes.take_for_worker();
        if taken.is_empty() {
            return Ok(());
        }
        let absorbed = self.lanes.absorb_taken(taken, &mut inner.journal);
        self.absorbed(inner, absorbed)
    }

    /// A lane call wants the worker (a buffer is half full or full). The worker, before it
    /// sleeps, says so and then reads `wants_absorb`; this call set that and then reads
    /// whether it sleeps, so one of the two sees the other. Only when the worker sleeps (or is
    /// about to) is the lock taken, and the worker holds it only until it is asleep.
    pub fn nudge_worker(&self) {
        if self.worker_asleep.load(Ordering::SeqCst) {
            let _inner = self.inner.lock();
            self.changed.notify_all();
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
            let datapoint = Datapoint::new(record, inner.ids.uuid_raw(), event);
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
        if self.config.base_url.is_none() {
            return false;
        }
        let newly = inner.delivery.note_recorded(self.config.flush_interval);
        self.send_scheduled.store(true, Ordering::SeqCst);
        newly
    }

    /// A send succeeded (or its batch was dropped): a backlog in the journal is sent at once,
    /// batch after batch; events recorded into the lanes while the request ran wait a whole
    /// flush interval, like any first event (at most one request per interval while events
    /// trickle in); with nothing pending, nothing is scheduled. `send_scheduled` is cleared
    /// before the lanes are read, so a lane call that starts holding records meanwhile either
    /// is seen here or sees the flag cleared (and schedules itself).
    pub fn delivery_succeeded(&self, inner: &mut Inner) {
        self.send_scheduled.store(false, Ordering::SeqCst);
        let backlog = inner.journal.pending() > 0;
        let held = self.lanes.holding();
        inner.delivery.succeeded(backlog);
        if backlog {
            self.send_scheduled.store(true, Ordering::SeqCst);
        } else if held {
            self.schedule_send(inner);
        }
    }

    /// Notifies the worker only if it sleeps past the new earliest deadline.
    fn wake_worker_if_sooner(&self, inner: &mut Inner) {
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

    fn sync_now(&self) -> Result<(), Error> {
        let mut inner = self.inner.lock();
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
