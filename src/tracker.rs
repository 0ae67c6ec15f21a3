//! The Rust API: a `Tracker` is one running Stint, its engine (`engine`) and its background
//! worker (`delivery::worker`). Every method is one short call into the engine; nothing here
//! waits on the network except `flush` and `shutdown`, up to their timeout.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::delivery::worker;
use crate::dispatch;
use crate::engine::Engine;
pub use crate::engine::Stats;
use crate::error::Error;
use crate::input::{CustomEvent, UserId};
use crate::log;
use crate::options::Options;
use crate::session::Action;

/// One running Stint: the session state, the journal on disk and the delivery worker.
pub struct Tracker {
    engine: Arc<Engine>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Tracker {
    /// Opens the data directory, recovers the journal and the session, checks expiry, and starts
    /// the worker.
    pub fn start(api_key: &str, options: Options) -> Result<Tracker, Error> {
        log::set_max_level(options.log_level);
        let engine = Arc::new(Engine::open(api_key, &options)?);
        let worker = worker::spawn(engine.clone())
            .map_err(|e| Error::internal_io("cannot start the worker thread", e))?;
        log::info(|| format!("Stint {} initialized", crate::VERSION));
        Ok(Tracker {
            engine,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// The app came to the foreground: starts a session unless one is open.
    pub fn open_session(&self) -> Result<(), Error> {
        self.engine.apply(Action::OpenSession, None)
    }

    /// The app went to the background. What it recorded is already safe from a kill; the worker
    /// makes it durable against power loss shortly after (the caller never waits for a sync).
    pub fn close_session(&self) -> Result<(), Error> {
        self.engine.close_session()
    }

    /// Sets the current user: a different one ends the open session and starts a new one.
    pub fn change_user(&self, user_id: UserId<'_>) -> Result<(), Error> {
        self.engine
            .apply(Action::ChangeUser(user_id.as_str()), None)
    }

    /// Records a custom event in the open session (or outside any, if none is open).
    pub fn log_custom_event(&self, event: CustomEvent<'_>) -> Result<(), Error> {
        self.engine.log_custom_event(event)
    }

    /// The open session's id (after the expiry check), if any.
    pub fn session_id(&self) -> Result<Option<String>, Error> {
        self.engine.session_id()
    }

    /// The counters.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.engine.stats()
    }

    /// Enables or disables tracking, and saves the choice in the data directory. Disabling
    /// drops the open session (no `se`) and erases every undelivered datapoint; while disabled,
    /// calls record nothing and nothing is sent. Never waits on the disk.
    pub fn set_tracking_enabled(&self, enabled: bool) -> Result<(), Error> {
        self.engine.set_tracking_enabled(enabled)
    }

    /// The current tracking choice.
    pub fn tracking_enabled(&self) -> Result<bool, Error> {
        self.engine.tracking_enabled()
    }

    /// Deletes every undelivered datapoint, the saved session, the user and the device id, and
    /// goes on with a new device id, no user and no session. Keeps the tracking choice.
    pub fn wipe_data(&self) -> Result<(), Error> {
        self.engine.wipe_data()
    }

    /// The device id sent with every batch.
    pub fn device_id(&self) -> Result<String, Error> {
        self.engine.device_id()
    }

    /// Allows or stops requests (not saved: each start allows them). Recording goes on.
    pub fn set_network_enabled(&self, enabled: bool) -> Result<(), Error> {
        self.engine.set_network_enabled(enabled)
    }

    /// Asks the worker to send now; never blocks.
    pub fn request_flush(&self) -> Result<(), Error> {
        self.engine.request_flush()
    }

    /// Returns once everything recorded before the call is delivered (or dropped), or
    /// `Timeout` with the data still queued. Without a `baseUrl`, only makes data durable.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.engine.check_network()?;
        self.engine.sync()?;
        self.engine.wait_delivered(timeout)
    }

    /// Tries to deliver for at most `timeout`, then persists and stops. Records no datapoint.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let delivered = match self.flush(timeout) {
            // The network switch is off: a timeout only if something stays queued.
            Err(Error::Timeout(_))
                if self.engine.check_network().is_err()
                    && self.stats().is_ok_and(|s| s.datapoints_pending == 0) =>
            {
                Ok(())
            }
            other => other,
        };
        self.engine.close();
        if let Some(worker) = self.worker.lock().take() {
            let _ = worker.join();
        }
        let synced = self.engine.sync_now();
        // Unmap, close and unlock now: a request thread, or another thread's cached tracker
        // (`instance`), may hold on to the engine for a while yet.
        self.engine.release_storage();
        dispatch::wait_until_idle(deadline.saturating_duration_since(Instant::now()));
        synced.and(delivered)
    }

    /// How often the worker has woken up (for the idle benchmark).
    pub fn worker_wakeups(&self) -> u64 {
        self.engine.worker_wakeups()
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.engine.abandon();
    }
}
