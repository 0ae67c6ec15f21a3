//! Durability against power loss: the worker syncs what calls recorded, with no lock held
//! during the disk work.
//!
//! The small files (the device id, the tracking choice) are written to the page cache by the
//! calls that change them, initialize included, and synced by the worker like the rest: a caller
//! never waits for an fsync. A device id that a power cut takes back before that sync is
//! regenerated at the next start. Nothing is sent until the device id in use is durable, so the
//! collector never sees an id that the device then forgets (a host that read it through
//! `stint_get_device_id` in that window may hold one).

use super::*;

/// How soon the worker tries again when a sync failed while the device id is not durable yet
/// (nothing is sent until it is).
pub(super) const SYNC_RETRY: Duration = Duration::from_secs(5);

/// What the worker makes durable, and when.
#[derive(Debug, Default)]
pub(super) struct Durability {
    /// When the worker next makes everything durable against power loss (after
    /// `close_session`, within a flush interval of recording, and at once after a small file
    /// changed).
    pub sync_due: Option<Instant>,
    /// Counts writes of the small files.
    small_file_writes: u64,
    /// `small_file_writes` as of the last sync that succeeded.
    small_files_synced: u64,
    /// `small_file_writes` once the device id in use was written (0: it was read, durable).
    device_id_written: u64,
}

impl Durability {
    /// The tracking choice was written (page cache only).
    pub fn wrote_small_file(&mut self) {
        self.small_file_writes += 1;
    }

    /// A new device id was written (page cache only).
    pub fn wrote_device_id(&mut self) {
        self.wrote_small_file();
        self.device_id_written = self.small_file_writes;
    }

    /// Whether the device id in use survives a power cut: batches may carry it.
    pub fn device_id_durable(&self) -> bool {
        self.device_id_written <= self.small_files_synced
    }

    /// What a sync must cover: `Some(writes)` while a small file changed since the last one.
    fn small_files_to_sync(&self) -> Option<u64> {
        (self.small_file_writes > self.small_files_synced).then_some(self.small_file_writes)
    }

    /// A sync that began once `writes` small-file writes were made succeeded.
    fn synced_small_files(&mut self, writes: u64) {
        self.small_files_synced = self.small_files_synced.max(writes);
    }

    /// A sync failed at `now`: while the device id is not durable, sends wait for it, so the
    /// worker tries again within `SYNC_RETRY` rather than at the next recording.
    pub fn sync_failed(&mut self, now: Instant) {
        let retry = now + SYNC_RETRY;
        if !self.device_id_durable() && self.sync_due.is_none_or(|due| due > retry) {
            self.sync_due = Some(retry);
        }
    }
}

impl Engine {
    /// Asks the worker to sync now (the small files changed, or data was erased).
    pub(super) fn sync_soon(&self, state: &mut State) {
        state.durability.sync_due = Some(Instant::now());
        self.changed.notify_all();
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
            if state.journal.0.is_none() {
                return Ok(()); // a flush that raced shutdown: it synced and released storage
            }
            let small_files = state
                .durability
                .small_files_to_sync()
                .zip(state.data_dir.as_ref().map(|d| d.path.clone()));
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
            .as_ref()
            .map_or(Ok(()), |(_, dir)| DataDir::sync_small_files(dir))
            .and_then(|()| later.iter().try_for_each(Flusher::flush));
        if let Err(error) = synced {
            if let Some(journal) = self.state.lock().journal.0.as_mut() {
                journal.forget_synced();
            }
            return Err(Error::storage("cannot sync the data directory", error));
        }
        if let Some((writes, _)) = small_files {
            self.state.lock().durability.synced_small_files(writes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Harness;
    use super::*;
    use crate::delivery::worker::Engine as _;

    const REMOTE: &str = r#""baseUrl":"http://127.0.0.1:9""#;

    /// Whether the worker may send now (tracking, the network and a durable device id).
    fn may_send(h: &Harness) -> bool {
        <Engine as worker::Engine>::may_send(&h.engine().state.lock())
    }

    /// What the worker does when a sync is due; returns whether one was.
    fn worker_syncs(h: &Harness) -> bool {
        let mut state = h.engine().state.lock();
        h.engine().sync_if_due(&mut state)
    }

    fn data_dir(h: &Harness) -> std::path::PathBuf {
        let state = h.engine().state.lock();
        state.data_dir.as_ref().expect("open").path.clone()
    }

    #[test]
    fn a_new_device_id_is_synced_by_the_worker_before_anything_is_sent() {
        let mut h = Harness::new("sync-device-id", REMOTE);
        h.call(Action::OpenSession);
        h.engine().request_flush().unwrap();
        {
            let state = h.engine().state.lock();
            assert!(!state.durability.device_id_durable(), "written, not synced");
            assert!(state
                .durability
                .sync_due
                .is_some_and(|due| due <= Instant::now()));
        }
        assert!(!may_send(&h), "no batch before the device id is durable");
        let due = h.engine().next_due(&h.engine().state.lock()).unwrap();
        assert!(due <= Instant::now(), "the worker syncs at once");
        assert!(worker_syncs(&h));
        assert!(h.engine().state.lock().durability.device_id_durable());
        assert!(may_send(&h), "sends may start once it is synced");
        assert!(!worker_syncs(&h), "nothing due any more");

        // The next start reads it back: durable from the start, no sync asked for.
        let device = h.engine().device_id().unwrap();
        h.restart();
        assert_eq!(h.engine().device_id().unwrap(), device);
        assert!(may_send(&h));
        assert!(h.engine().state.lock().durability.sync_due.is_none());
    }

    #[test]
    fn a_device_id_lost_to_a_power_cut_before_its_sync_is_created_anew() {
        let mut h = Harness::new("sync-device-id-lost", REMOTE);
        let lost = h.engine().device_id().unwrap();
        // What a power cut can leave of a file written but never synced: nothing, or a part.
        std::fs::write(data_dir(&h).join("device_id"), &lost.as_bytes()[..10]).unwrap();
        h.restart();
        let new = h.engine().device_id().unwrap();
        assert_ne!(new, lost);
        assert_eq!(new.len(), lost.len());
        assert!(!may_send(&h), "the new one waits for its sync too");
        assert!(worker_syncs(&h));
        assert!(may_send(&h));
        h.restart();
        assert_eq!(h.engine().device_id().unwrap(), new, "and it is kept");
    }

    #[test]
    fn a_failed_sync_keeps_sends_back_and_is_retried_soon() {
        let h = Harness::new("sync-device-id-failed", REMOTE);
        let dir = data_dir(&h);
        let set_path = |path: &std::path::Path| {
            let mut state = h.engine().state.lock();
            state.data_dir.as_mut().unwrap().path = path.to_owned();
        };
        // A data directory whose device id cannot be opened to be synced (a directory in its
        // place): the sync fails on every platform.
        let broken = dir.join("broken");
        std::fs::create_dir_all(broken.join("device_id")).unwrap();
        set_path(&broken);
        let before = Instant::now();
        assert!(worker_syncs(&h), "a sync was due");
        let retry = h.engine().state.lock().durability.sync_due;
        assert!(
            retry.is_some_and(|at| at >= before + SYNC_RETRY && at <= Instant::now() + SYNC_RETRY),
            "retried within SYNC_RETRY: {retry:?}"
        );
        assert!(!may_send(&h), "still not durable");
        set_path(&dir);
        h.engine().sync_now().unwrap();
        assert!(may_send(&h));
    }

    #[test]
    fn a_wipe_holds_sends_back_until_the_new_device_id_is_synced() {
        let h = Harness::new("sync-wipe", REMOTE);
        assert!(worker_syncs(&h));
        assert!(may_send(&h), "a positive control");
        h.engine().wipe_data().unwrap();
        assert!(!may_send(&h));
        assert!(worker_syncs(&h));
        assert!(may_send(&h));
        // Changing the tracking choice writes a small file too, but sends need not wait.
        h.engine().set_tracking_enabled(true).unwrap();
        assert!(may_send(&h));
    }

    #[test]
    fn a_sync_moves_lane_records_into_the_journal() {
        let h = Harness::new("sync-lanes", "");
        h.call(Action::OpenSession);
        h.event("opens-the-lane");
        h.event("in-the-lane");
        let pending = || h.engine().state.lock().journal.pending();
        assert_eq!(pending(), 2, "one event waits in a lane");
        h.engine().sync().unwrap();
        assert_eq!(pending(), 3);
    }

    #[test]
    fn closing_the_session_asks_the_worker_to_sync_soon() {
        let h = Harness::new("sync-close", "");
        h.call(Action::OpenSession);
        h.engine().state.lock().durability.sync_due = None;
        let before = Instant::now();
        h.engine().close_session().unwrap();
        let due = h
            .engine()
            .state
            .lock()
            .durability
            .sync_due
            .expect("a sync is due");
        assert!(
            due >= before + super::super::calls::CLOSE_SYNC_DELAY
                && due <= Instant::now() + super::super::calls::CLOSE_SYNC_DELAY
        );
    }
}
