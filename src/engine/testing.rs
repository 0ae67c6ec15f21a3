//! Builds the engine directly for its unit tests, as glean-core's tests build `Glean`: a fresh
//! data directory, a simulated clock that moves only when a test moves it, seeded ids, and no
//! worker (a test applies what the worker would, such as the expiry check, itself).

use std::path::PathBuf;

use serde_json::Value;

use super::*;
use crate::delivery::batch::WireBatch;
use crate::test_support::temp_dir;

/// 2026-01-01T00:00:00Z, where every simulated clock starts.
pub(super) const START: Millis = 1_767_225_600_000;

/// An engine on a simulated clock in a directory of its own (removed on drop).
pub(super) struct Harness {
    engine: Option<Engine>,
    pub clock: Clock,
    dir: PathBuf,
    options: Options,
    starts: u64,
}

impl Harness {
    /// An engine with the options `members` (JSON object members, may be empty) in a fresh
    /// directory.
    pub fn new(name: &str, members: &str) -> Harness {
        let dir = temp_dir(name);
        let data_directory = serde_json::to_string(&dir.join("data")).unwrap();
        let separator = if members.is_empty() { "" } else { "," };
        let json = format!(r#"{{"dataDirectory":{data_directory}{separator}{members}}}"#);
        let options = Options::parse(Some(&json)).expect("valid test options");
        let mut harness = Harness {
            engine: None,
            clock: Clock::simulated(START),
            dir,
            options,
            starts: 0,
        };
        harness.start();
        harness
    }

    fn start(&mut self) {
        self.starts += 1;
        let ids = IdGenerator::from_seed(self.starts);
        let engine = Engine::open_with("test-key", &self.options, self.clock.clone(), ids)
            .expect("the engine opens");
        self.engine = Some(engine);
    }

    /// The engine under test.
    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("started")
    }

    /// Moves the simulated clock.
    pub fn advance_secs(&self, seconds: i64) {
        self.clock.advance(seconds * 1000);
    }

    /// Shuts the engine down as the tracker does (close, sync, unlock) and opens it again on the
    /// same directory: the app's next run.
    pub fn restart(&mut self) {
        let engine = self.engine.take().expect("started");
        engine.close();
        engine.sync_now().expect("synced");
        engine.release_storage();
        drop(engine);
        self.start();
    }

    /// Runs a session call, which must succeed.
    pub fn call(&self, action: Action<'_>) {
        self.engine()
            .apply(action, None)
            .expect("the call succeeds");
    }

    /// Logs a custom event named `name`, which must succeed.
    pub fn event(&self, name: &str) {
        let event = CustomEvent::new(name, None).unwrap();
        self.engine().log_custom_event(event).expect("recorded");
    }

    /// What is queued for delivery, oldest first, in its wire form (the lanes moved into the
    /// journal first, as before a send).
    pub fn queued(&self) -> Vec<Value> {
        let engine = self.engine();
        let mut state = engine.state.lock();
        Engine::absorb_lanes(engine, &mut state).expect("absorbed");
        let Some(stored) = <Engine as worker::Engine>::oldest_batch(&state, 0, usize::MAX) else {
            return Vec::new();
        };
        let wire = WireBatch::of(&stored);
        wire.events
            .iter()
            .map(|json| serde_json::from_slice(json).expect("wire JSON"))
            .collect()
    }

    /// The names of what is queued, oldest first ("ss", "se", or a custom event's name).
    pub fn queued_names(&self) -> Vec<String> {
        self.queued()
            .iter()
            .map(|d| match d["name"].as_str() {
                Some("ce") => d["data"]["n"].as_str().unwrap().to_owned(),
                other => other.unwrap().to_owned(),
            })
            .collect()
    }

    /// The current session's id, if one is open.
    pub fn session_id(&self) -> Option<String> {
        self.engine().session_id().expect("open")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.close();
            engine.release_storage();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A datapoint's time in ms (the wire gives seconds with ms precision).
pub(super) fn time_ms(datapoint: &Value) -> Millis {
    (datapoint["time"].as_f64().expect("a time") * 1000.0).round() as Millis
}
