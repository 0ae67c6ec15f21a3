//! The one process-wide tracker behind the C API. Initialize and shutdown are serialised; every
//! other call borrows the current tracker briefly and never waits for a lifecycle change.
//!
//! Each thread caches the current tracker with the generation it was current at: on a warm
//! thread a call costs one acquire load of `GENERATION` and a compare, and writes nothing
//! shared. Every change of `CURRENT` bumps `GENERATION` after it, so a thread that sees the new
//! generation reloads the new tracker; only then, or while none is initialized, does a call
//! take `CURRENT`'s lock (briefly: it is never held across a tracker's start or shutdown).
//!
//! A cached tracker outlives its shutdown on threads that do not call again, so shutdown
//! releases the engine's storage and directory lock itself (`Tracker::shutdown`): what a stale
//! cache keeps is closed memory. A call that borrowed a tracker just before a shutdown
//! finishes on it, and finds it closed if it gets there after the shutdown did.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::Error;
use crate::options::Options;
use crate::tracker::Tracker;

/// Locked only briefly, and on a warm thread only after a change (initialize, shutdown).
static CURRENT: Mutex<Option<Arc<Tracker>>> = Mutex::new(None);
/// Bumped after every store to `CURRENT` (under `LIFECYCLE`).
static GENERATION: AtomicU64 = AtomicU64::new(0);
static LIFECYCLE: Mutex<()> = Mutex::new(());

thread_local! {
    /// This thread's tracker and the generation it was current at. Taken out for the call and
    /// put back after, so a call made from inside one (a callback) never sees it borrowed.
    static CACHED: Cell<Option<(u64, Arc<Tracker>)>> = const { Cell::new(None) };
}

pub fn initialize(api_key: &str, options_json: Option<&str>) -> Result<(), Error> {
    crate::input::api_key(api_key)?;
    let options = Options::parse(options_json).map_err(Error::InvalidArgument)?;
    let _lifecycle = LIFECYCLE.lock();
    if CURRENT.lock().is_some() {
        return Err(Error::AlreadyInitialized);
    }
    let tracker = Tracker::start(api_key, options)?;
    *CURRENT.lock() = Some(Arc::new(tracker));
    GENERATION.fetch_add(1, Ordering::Release);
    Ok(())
}

pub fn shutdown(timeout: Duration) -> Result<(), Error> {
    let _lifecycle = LIFECYCLE.lock();
    let tracker = CURRENT.lock().take().ok_or(Error::NotInitialized)?;
    GENERATION.fetch_add(1, Ordering::Release);
    // The calling thread's own cache need not wait for its next call to let go.
    let _ = CACHED.try_with(Cell::take);
    tracker.shutdown(timeout)
}

/// Runs a quick call on the current tracker.
pub fn with<R>(call: impl FnOnce(&Tracker) -> Result<R, Error>) -> Result<R, Error> {
    let (generation, tracker) = borrow().ok_or(Error::NotInitialized)?;
    let result = call(&tracker);
    give_back(generation, tracker);
    result
}

/// This thread's cached tracker if it is still current, or else the current one, with the
/// generation it is current at.
#[inline]
fn borrow() -> Option<(u64, Arc<Tracker>)> {
    // Loaded before `CURRENT`: a tracker cached under it is current at it or later.
    let generation = GENERATION.load(Ordering::Acquire);
    // Err: this thread's locals are being destroyed; the uncached path still works.
    match CACHED.try_with(Cell::take) {
        Ok(Some((at, tracker))) if at == generation => Some((generation, tracker)),
        // A stale tracker is dropped here.
        _ => Some((generation, current().ok()?)),
    }
}

/// Caches the tracker `borrow` gave for this thread's next call.
#[inline]
fn give_back(generation: u64, tracker: Arc<Tracker>) {
    // If the locals are gone, the closure is dropped uncalled, and the tracker with it.
    let _ = CACHED.try_with(|cell| cell.set(Some((generation, tracker))));
}

/// The current tracker, for calls that block (flush): they must not hold up shutdown.
pub fn current() -> Result<Arc<Tracker>, Error> {
    CURRENT.lock().clone().ok_or(Error::NotInitialized)
}
