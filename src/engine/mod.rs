//! The engine: the session state, the journal, the lanes and the delivery state behind one
//! lock. Each call applies the session rules (`session::apply`) at the current time and records
//! what they produce; nothing here waits on the network. The facade (`tracker`) calls it, and
//! the worker (`delivery::worker`) drives it through the `worker::Engine` trait.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use parking_lot::{Condvar, Mutex, MutexGuard};

mod absorb;
mod calls;
mod delivery;
mod drops;
mod durability;
mod privacy;
#[cfg(test)]
mod testing;

use crate::clock::Clock;
use crate::delivery::batch::StoredBatch;
use crate::delivery::policy::{Delivery, MAX_BATCH_BYTES};
use crate::delivery::worker::{self, Settled, EXPIRY_RETRY};
use crate::dispatch::{self, SessionChange, SessionNotice};
use crate::error::Error;
use crate::ids::IdGenerator;
use crate::input::{self, CustomEvent};
use crate::log;
use crate::options::Options;
use crate::platform::{self, context};
use crate::session::{self, Action, Millis, Record, Rules, SessionState};
use crate::storage::data_dir::DataDir;
use crate::storage::datapoint::{Data, Datapoint};
use crate::storage::journal::{Journal, SpareChunk};
use crate::storage::lane::{Absorbed, Held, Lanes, Recorded};
use crate::storage::mapping::Flusher;
use crate::storage::saved_session::SavedSession;
use drops::Drops;
use durability::Durability;

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
    /// A lane call's nudge found the lock taken and may have been missed: the next lane call
    /// nudges again (see `nudge_worker`).
    nudge_pending: AtomicBool,
    /// The device id for `device_id`, readable without `state`'s lock (which the worker may
    /// hold for a while after a burst); `None` once closed. Written under `state`'s lock.
    device_id_shown: ArcSwapOption<String>,
    /// The tracking choice for `tracking_enabled`, read without `state`'s lock for the same
    /// reason: `TRACKING_*`. Written under `state`'s lock.
    tracking_shown: AtomicU8,
}

/// `Engine::tracking_shown`: closed (calls refused), tracking disabled, enabled.
const TRACKING_CLOSED: u8 = 0;
const TRACKING_OFF: u8 = 1;
const TRACKING_ON: u8 = 2;

/// `tracking` as `Engine::tracking_shown` holds it.
fn tracking_shown(tracking: bool) -> u8 {
    if tracking {
        TRACKING_ON
    } else {
        TRACKING_OFF
    }
}

struct Config {
    /// The wall clock the rules run on (simulated in tests).
    clock: Clock,
    rules: Rules,
    /// The device and app context of each session start (see `platform::context`).
    context: Option<String>,
    base_url: Option<String>,
    flush_interval: Duration,
}

/// A file the engine uses until `release_storage`; only calls on an open engine reach it.
struct Closable<T>(Option<T>);

impl<T> std::ops::Deref for Closable<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().unwrap_or_else(|| used_after_release())
    }
}

impl<T> std::ops::DerefMut for Closable<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().unwrap_or_else(|| used_after_release())
    }
}

#[cold]
#[inline(never)]
fn used_after_release() -> ! {
    panic!("the engine's storage was used after shutdown released it")
}

/// What the engine's lock guards.
pub(crate) struct State {
    /// Set by shutdown: every later call is `NotInitialized`.
    closed: bool,
    /// Random, per data directory; replaced by a wipe.
    device_id: String,
    session: SessionState,
    saved_session: Closable<SavedSession>,
    journal: Closable<Journal>,
    ids: IdGenerator,
    stats: Stats,
    delivery: Delivery,
    /// Queue-full drops and their announcement (`drops`).
    drops: Drops,
    /// The user's choices (`privacy`).
    privacy: Privacy,
    /// What the worker makes durable against power loss, and when (`durability`).
    durability: Durability,
    /// When the worker runs (`delivery`).
    worker: WorkerSchedule,
    records: Vec<Record>,
    data_dir: Option<DataDir>,
}

/// The user's choices: tracking, saved in the data directory, and the network switch, not
/// saved.
struct Privacy {
    /// While false, calls record nothing and nothing is sent.
    tracking: bool,
    /// The tracking choice saved in the data directory, if any (so an unchanged choice is not
    /// written again: apps often set it at every start).
    tracking_saved: Option<bool>,
    /// `stint_set_network_enabled`: while false, no request starts.
    network: bool,
    /// Counts erasures (tracking disabled, data wiped): a batch built across one is not sent.
    erasures: u64,
}

/// The worker's schedule, as calls and the worker itself see it.
#[derive(Default)]
struct WorkerSchedule {
    /// Set by shutdown: the worker returns.
    stop: bool,
    /// What the sleeping worker will wake for (`None`: it is awake or sleeps until notified).
    sleeps_until: Option<Option<Instant>>,
    /// Worker wake-ups, for the idle benchmark.
    wakeups: u64,
    /// Storage refused to record an expired session's end: the worker tries again then.
    expiry_retry_at: Option<Instant>,
    /// The journal's `acked_through` when the worker last gave a drained backlog's memory back.
    released_through: u64,
}

impl Engine {
    /// Opens the data directory, recovers the journal, the lanes and the session, and checks
    /// expiry, on the system clock with ids from the OS's randomness. The worker is not started
    /// yet (`delivery::worker::spawn`).
    pub(crate) fn open(api_key: &str, options: &Options) -> Result<Engine, Error> {
        Engine::open_with(api_key, options, Clock::System, IdGenerator::from_os()?)
    }

    /// `open` with the clock and the id source given: tests pass a simulated clock and seeded
    /// ids.
    pub(crate) fn open_with(
        api_key: &str,
        options: &Options,
        clock: Clock,
        mut ids: IdGenerator,
    ) -> Result<Engine, Error> {
        input::api_key(api_key)?;
        let data_dir = DataDir::open(&options.data_directory_for(api_key)?)?;
        let (device_id, created) = data_dir.device_id(&mut ids)?;
        let mut durability = Durability::default();
        if created {
            // Written to the page cache only: the worker syncs it at once, and sends nothing
            // before (`Durability::device_id_durable`).
            durability.wrote_device_id();
            durability.sync_due = Some(Instant::now());
        }
        // A saved choice wins over the option.
        let tracking_saved = data_dir.tracking_choice();
        let tracking = tracking_saved.unwrap_or(!options.require_consent);
        let (saved_session, session) = SavedSession::open(&data_dir.session_state())?;
        let lanes = Lanes::open(data_dir.lanes(), &mut ids, clock.clone());
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
            clock,
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
            device_id_shown: ArcSwapOption::from_pointee(device_id.clone()),
            tracking_shown: AtomicU8::new(tracking_shown(tracking)),
            state: Mutex::new(State {
                closed: false,
                device_id,
                session,
                saved_session: Closable(Some(saved_session)),
                journal: Closable(Some(journal)),
                ids,
                stats,
                delivery,
                drops: Drops::default(),
                privacy: Privacy {
                    tracking,
                    tracking_saved,
                    network: true,
                    erasures: 0,
                },
                durability,
                worker: WorkerSchedule::default(),
                records: Vec::with_capacity(4),
                data_dir: Some(data_dir),
            }),
            lanes,
            changed: Condvar::new(),
            config,
            send_scheduled: AtomicBool::new(send_scheduled),
            worker_asleep: AtomicBool::new(false),
            nudge_pending: AtomicBool::new(false),
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

    /// Closes the engine: moves what the lanes hold into the journal (what storage refuses
    /// stays there, for the next start), refuses every later call and stops the worker.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock();
        let state = &mut *state;
        let mut lanes = self.lanes.hold_all();
        let _ = self.absorb(state, &mut lanes, None);
        lanes.refresh(&state.session, true);
        self.refuse_calls(state);
    }

    /// Refuses every later call and stops the worker, without touching storage (a dropped
    /// tracker).
    pub(crate) fn abandon(&self) {
        let mut state = self.state.lock();
        self.lanes.hold_all().refresh(&state.session, true);
        self.refuse_calls(&mut state);
    }

    /// Closing's common end: every later call is refused (the lockless reads too) and the
    /// worker stops.
    fn refuse_calls(&self, state: &mut State) {
        state.closed = true;
        self.device_id_shown.store(None);
        self.tracking_shown.store(TRACKING_CLOSED, Ordering::SeqCst);
        state.worker.stop = true;
        self.changed.notify_all();
    }

    /// After `close` and the last sync: unmaps and closes every file, then unlocks the data
    /// directory, even while a request thread or a thread's cached tracker (`instance`) still
    /// holds on to the engine, so the next tracker can open the directory (Windows refuses to
    /// delete a mapped file). Nothing reaches storage once closed; records still in a lane stay
    /// in its file for the next run.
    pub(crate) fn release_storage(&self) {
        let mut state = self.state.lock();
        state.journal.0 = None; // its drop writes what was appended in bulk
        state.saved_session.0 = None;
        self.lanes.hold_all().close_files();
        state.data_dir = None;
    }

    /// How often the worker has woken up (for the idle benchmark).
    pub(crate) fn worker_wakeups(&self) -> u64 {
        self.state.lock().worker.wakeups
    }

    /// The state, unless the tracker is closed.
    fn lock_open(&self) -> Result<MutexGuard<'_, State>, Error> {
        let state = self.state.lock();
        if state.closed {
            return Err(Error::NotInitialized);
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    //! Restarts, on simulated time: what the saved session and the journal carry over.

    use super::testing::{time_ms, Harness, START};
    use super::*;

    #[test]
    fn a_session_within_its_timeout_continues_across_a_restart() {
        let mut h = Harness::new("restart-continue", r#""sessionTimeoutInSeconds":60"#);
        h.call(Action::ChangeUser("alice"));
        h.call(Action::OpenSession);
        let session = h.session_id();
        assert!(session.is_some());
        h.engine().close_session().unwrap();
        h.restart();
        h.advance_secs(30);
        h.call(Action::OpenSession);
        assert_eq!(h.session_id(), session);
        let queued = h.queued();
        assert_eq!(
            h.queued_names(),
            ["ss"],
            "the queue survives, nothing new recorded"
        );
        assert_eq!(queued[0]["user_id"], "alice");
    }

    #[test]
    fn a_session_that_expired_while_the_app_was_away_ends_at_its_last_activity_on_start() {
        let mut h = Harness::new("restart-expired", r#""sessionTimeoutInSeconds":60"#);
        h.call(Action::OpenSession);
        h.advance_secs(10);
        h.event("before");
        h.advance_secs(10);
        h.event("last");
        h.engine().close_session().unwrap();
        h.advance_secs(3600);
        h.restart();
        assert_eq!(h.session_id(), None, "ended by the start-up check alone");
        let queued = h.queued();
        assert_eq!(h.queued_names(), ["ss", "before", "last", "se"]);
        assert_eq!(time_ms(&queued[3]), START + 20_000);
        assert_eq!(h.engine().stats().unwrap().sessions_ended, 1);
    }

    #[test]
    fn a_closed_engine_refuses_calls_as_not_initialized() {
        let h = Harness::new("closed", "");
        h.call(Action::OpenSession);
        h.engine().close();
        let refused = h.engine().apply(Action::OpenSession, None);
        assert!(matches!(refused, Err(Error::NotInitialized)), "{refused:?}");
    }
}
