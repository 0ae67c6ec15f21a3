//! The one process-wide tracker behind the C API. Initialize and shutdown are serialised; every
//! other call borrows the current tracker briefly and never waits for a lifecycle change.
//!
//! The current tracker is an `ArcSwapOption`: borrowing it writes nothing shared (a read lock
//! would count readers in one shared word, which two threads calling at once pass back and forth
//! between their cores on every call). A call that borrowed a tracker just before a shutdown
//! finishes on it, and finds it closed if it gets there after the shutdown did.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;

use crate::error::Error;
use crate::options::Options;
use crate::tracker::Tracker;

static CURRENT: ArcSwapOption<Tracker> = ArcSwapOption::const_empty();
static LIFECYCLE: Mutex<()> = Mutex::new(());

pub fn initialize(api_key: &str, options_json: Option<&str>) -> Result<(), Error> {
    crate::input::api_key(api_key)?;
    let options = Options::parse(options_json).map_err(Error::InvalidArgument)?;
    let _lifecycle = LIFECYCLE.lock();
    if CURRENT.load().is_some() {
        return Err(Error::AlreadyInitialized);
    }
    let tracker = Tracker::start(api_key, options)?;
    CURRENT.store(Some(Arc::new(tracker)));
    Ok(())
}

pub fn shutdown(timeout: Duration) -> Result<(), Error> {
    let _lifecycle = LIFECYCLE.lock();
    let tracker = CURRENT.swap(None).ok_or(Error::NotInitialized)?;
    tracker.shutdown(timeout)
}

/// Runs a quick call on the current tracker.
pub fn with<R>(call: impl FnOnce(&Tracker) -> Result<R, Error>) -> Result<R, Error> {
    match CURRENT.load().as_deref() {
        Some(tracker) => call(tracker),
        None => Err(Error::NotInitialized),
    }
}

/// The current tracker, for calls that block (flush): they must not hold up shutdown.
pub fn current() -> Result<Arc<Tracker>, Error> {
    CURRENT.load_full().ok_or(Error::NotInitialized)
}
