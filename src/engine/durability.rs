//! Durability against power loss: the worker syncs what calls recorded, with no lock held
//! during the disk work.

use super::*;

impl Engine {
    /// Asks the worker to sync now (the small files changed, or data was erased).
    pub(super) fn sync_soon(&self, state: &mut State) {
        state.sync_due = Some(Instant::now());
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

#[cfg(test)]
mod tests {
    use super::super::testing::Harness;
    use super::*;

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
        h.engine().state.lock().sync_due = None;
        let before = Instant::now();
        h.engine().close_session().unwrap();
        let due = h.engine().state.lock().sync_due.expect("a sync is due");
        assert!(
            due >= before + super::super::calls::CLOSE_SYNC_DELAY
                && due <= Instant::now() + super::super::calls::CLOSE_SYNC_DELAY
        );
    }
}
