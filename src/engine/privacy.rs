//! The user's choices: tracking enabled or not (saved), the network switch (not saved), and
//! wiping the data (a new device id).

use super::*;

impl Engine {
    /// Enables or disables tracking, and saves the choice in the data directory. Disabling
    /// drops the open session (no `se`) and erases every undelivered datapoint; while disabled,
    /// calls record nothing and nothing is sent. Never waits on the disk.
    pub(crate) fn set_tracking_enabled(&self, enabled: bool) -> Result<(), Error> {
        let mut guard = self.lock_open()?;
        let state = &mut *guard;
        if state.privacy.tracking_saved == Some(enabled) && state.privacy.tracking == enabled {
            return Ok(()); // saved and in force already: nothing to write, erase or sync
        }
        let saved = match &state.data_dir {
            Some(dir) if state.privacy.tracking_saved != Some(enabled) => {
                dir.save_tracking_choice(enabled)
            }
            _ => Ok(()),
        };
        if saved.is_ok() {
            state.privacy.tracking_saved = Some(enabled);
        }
        state.durability.wrote_small_file();
        let mut lanes = self.lanes.hold_all();
        state.privacy.tracking = enabled;
        self.tracking_shown
            .store(tracking_shown(enabled), Ordering::SeqCst);
        if enabled {
            lanes.refresh(&state.session, false);
        } else {
            state.session.session = None;
            self.erase(state, &mut lanes);
            lanes.refresh(&state.session, true);
        }
        drop(lanes);
        self.sync_soon(state);
        log::info(|| format!("tracking {}", if enabled { "enabled" } else { "disabled" }));
        saved.map_err(|e| Error::storage("cannot save the tracking choice", e))
    }

    /// The current tracking choice; takes no lock, as `device_id`.
    pub(crate) fn tracking_enabled(&self) -> Result<bool, Error> {
        match self.tracking_shown.load(Ordering::SeqCst) {
            TRACKING_CLOSED => Err(Error::NotInitialized),
            shown => Ok(shown == TRACKING_ON),
        }
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
        lanes.refresh(&state.session, !state.privacy.tracking);
        drop(lanes);
        state.device_id = state.ids.uuid();
        self.device_id_shown
            .store(Some(std::sync::Arc::new(state.device_id.clone())));
        let saved = match &state.data_dir {
            Some(dir) => dir.replace_device_id(&state.device_id),
            None => Ok(()),
        };
        state.durability.wrote_device_id();
        self.sync_soon(state);
        log::info(|| "local data wiped; new device id".into());
        saved.map_err(|e| Error::storage("cannot save the new device id", e))
    }

    /// The device id sent with every batch; takes no lock (a host may ask from a UI thread).
    pub(crate) fn device_id(&self) -> Result<String, Error> {
        let shown = self.device_id_shown.load();
        shown.as_deref().cloned().ok_or(Error::NotInitialized)
    }

    /// Allows or stops requests (not saved: each start allows them). Recording goes on.
    pub(crate) fn set_network_enabled(&self, enabled: bool) -> Result<(), Error> {
        let mut state = self.lock_open()?;
        if state.privacy.network != enabled {
            state.privacy.network = enabled;
            log::info(|| format!("network {}", if enabled { "enabled" } else { "disabled" }));
            self.changed.notify_all();
        }
        Ok(())
    }

    /// `Timeout` if the network is disabled: a flush that would send cannot finish then.
    pub(crate) fn check_network(&self) -> Result<(), Error> {
        let state = self.lock_open()?;
        if !state.privacy.network && self.config.base_url.is_some() {
            return Err(Error::Timeout(format!(
                "the network is disabled: nothing is sent; \
                 {} datapoints stay queued",
                state.journal.pending()
            )));
        }
        Ok(())
    }

    /// Erases every undelivered datapoint, in the lanes and the journal (memory work only;
    /// the worker syncs), and saves the session state.
    pub(super) fn erase(&self, state: &mut State, lanes: &mut Held<'_>) {
        // Moved into the journal first, which zeroes the lanes, then erased with the rest.
        let _ = self.absorb(state, lanes, None);
        let erased = state.journal.erase_all();
        state.privacy.erasures += 1;
        state.saved_session.scrub(&state.session);
        state.delivery = Delivery::default();
        log::debug(|| format!("erased {erased} undelivered datapoints"));
    }
}

#[cfg(test)]
mod tests {
    //! The privacy rules on simulated time, restarts included.

    use super::super::testing::Harness;
    use super::*;

    #[test]
    fn disabling_tracking_erases_the_queue_and_records_nothing_until_enabled() {
        let h = Harness::new("privacy-disable", "");
        h.call(Action::OpenSession);
        h.event("kept-nowhere");
        assert_eq!(
            h.queued_names(),
            ["ss", "kept-nowhere"],
            "a positive control"
        );
        h.engine().set_tracking_enabled(false).unwrap();
        assert_eq!(h.queued_names(), Vec::<String>::new());
        assert_eq!(h.session_id(), None, "the session is dropped, with no se");
        h.call(Action::OpenSession);
        h.event("ignored");
        assert_eq!(h.queued_names(), Vec::<String>::new());
        h.engine().set_tracking_enabled(true).unwrap();
        h.call(Action::OpenSession);
        assert_eq!(h.queued_names(), ["ss"]);
    }

    #[test]
    fn the_tracking_choice_survives_a_restart_and_beats_require_consent() {
        let mut h = Harness::new("privacy-restart", r#""requireConsent":true"#);
        assert!(
            !h.engine().tracking_enabled().unwrap(),
            "consent not given yet"
        );
        h.engine().set_tracking_enabled(true).unwrap();
        h.restart();
        assert!(
            h.engine().tracking_enabled().unwrap(),
            "the saved choice wins"
        );
        h.engine().set_tracking_enabled(false).unwrap();
        h.restart();
        assert!(!h.engine().tracking_enabled().unwrap());
        h.call(Action::OpenSession);
        assert_eq!(h.queued_names(), Vec::<String>::new());
    }

    #[test]
    fn wiping_data_erases_the_queue_and_the_user_and_gives_a_new_device_id() {
        let mut h = Harness::new("privacy-wipe", "");
        h.call(Action::ChangeUser("alice"));
        let device = h.engine().device_id().unwrap();
        h.engine().wipe_data().unwrap();
        assert_eq!(h.queued_names(), Vec::<String>::new());
        assert_eq!(h.session_id(), None);
        let new_device = h.engine().device_id().unwrap();
        assert_ne!(new_device, device);
        h.call(Action::OpenSession);
        assert_eq!(
            h.queued()[0]["user_id"],
            serde_json::Value::Null,
            "no user after a wipe"
        );
        h.restart();
        assert_eq!(
            h.engine().device_id().unwrap(),
            new_device,
            "the new id is saved"
        );
    }

    #[test]
    fn the_device_id_is_read_without_the_engines_lock_and_refused_once_closed() {
        let h = Harness::new("privacy-device-id-lockless", "");
        let engine = h.engine();
        let expected = engine.state.lock().device_id.clone();
        // The worker may hold the lock for a while: the id is still answered meanwhile (with
        // the lock taken, this would block; the bound makes a regression fail, not hang).
        let held = engine.state.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| tx.send(engine.device_id()).unwrap());
            let answered = rx.recv_timeout(Duration::from_secs(30));
            drop(held);
            assert_eq!(
                answered.expect("answered while the lock is held").unwrap(),
                expected
            );
        });
        engine.close();
        assert!(matches!(engine.device_id(), Err(Error::NotInitialized)));
    }

    #[test]
    fn the_tracking_choice_is_read_without_the_engines_lock_and_refused_once_closed() {
        let h = Harness::new("privacy-tracking-lockless", "");
        let engine = h.engine();
        engine.set_tracking_enabled(false).unwrap();
        // As for the device id: answered while the lock is held (bounded, so a regression
        // fails rather than hangs), and it follows the choice.
        let held = engine.state.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| tx.send(engine.tracking_enabled()).unwrap());
            let answered = rx.recv_timeout(Duration::from_secs(30));
            drop(held);
            assert!(!answered.expect("answered while the lock is held").unwrap());
        });
        engine.set_tracking_enabled(true).unwrap();
        assert!(engine.tracking_enabled().unwrap());
        engine.close();
        assert!(matches!(
            engine.tracking_enabled(),
            Err(Error::NotInitialized)
        ));
    }

    #[test]
    fn with_the_network_off_a_flush_that_would_send_times_out_at_once() {
        let h = Harness::new("privacy-network", r#""baseUrl":"http://127.0.0.1:9""#);
        assert!(h.engine().check_network().is_ok(), "a positive control");
        h.engine().set_network_enabled(false).unwrap();
        let error = h.engine().check_network().unwrap_err();
        assert!(matches!(error, Error::Timeout(_)), "{error:?}");
        assert!(error.to_string().contains("network is disabled"), "{error}");
        let local = Harness::new("privacy-network-local", "");
        local.engine().set_network_enabled(false).unwrap();
        assert!(
            local.engine().check_network().is_ok(),
            "nothing to send without a baseUrl"
        );
    }
}
