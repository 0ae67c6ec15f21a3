//! The one process-wide tracker behind the C API. Initialize and shutdown are serialised; every
//! other call borrows the current tracker briefly and never waits for a lifecycle change.

use std::sync::Arc;
use std::time::Duration;

use once_cell::sync::Lazy;
use parking_lot::{Mutex, RwLock};

use crate::error::Error;
use crate::options::Options;
use crate::tracker::Tracker;

static CURRENT: Lazy<RwLock<Option<Arc<Tracker>>>> = Lazy::new(|| RwLock::new(None));
static LIFECYCLE: Mutex<()> = Mutex::new(());

pub fn initialize(api_key: &str, options_json: Option<&str>) -> Result<(), Error> {
    crate::input::api_key(api_key)?;
    let options = Options::parse(options_json).map_err(Error::InvalidArgument)?;
    let _lifecycle = LIFECYCLE.lock();
    if CURRENT.read().is_some() {
        return Err(Error::AlreadyInitialized);
    }
    let tracker = Tracker::start(api_key, options)?;
    *CURRENT.write() = Some(Arc::new(tracker));
    Ok(())
}

pub fn shutdown(timeout: Duration) -> Result<(), Error> {
    let _lifecycle = LIFECYCLE.lock();
    let tracker = CURRENT.write().take().ok_or(Error::NotInitialized)?;
    tracker.shutdown(timeout)
}

/// Runs a quick call on the current tracker.
pub fn with<R>(call: impl FnOnce(&Tracker) -> Result<R, Error>) -> Result<R, Error> {
    match CURRENT.read().as_deref() {
        Some(tracker) => call(tracker),
        None => Err(Error::NotInitialized),
    }
}

/// The current tracker, for calls that block (flush): they must not hold up shutdown.
pub fn current() -> Result<Arc<Tracker>, Error> {
    CURRENT.read().clone().ok_or(Error::NotInitialized)
}
