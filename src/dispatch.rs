//! Calls into the host (session listener, log handler) happen here, on one library thread,
//! in the order things happened, and never while the library holds a lock: a callback may call
//! any function of the library. Once a callback is replaced, the old one is never called again
//! (if replaced from inside a callback: once that callback returns).

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};

use crate::session::Millis;

/// How much is logged (`logLevel`), and the level of a log message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LogLevel {
    /// Nothing is logged.
    Off = 0,
    /// Something failed: data was refused or lost, or the host's input is wrong.
    Error = 1,
    /// Something the host should know (the default).
    Warn = 2,
    /// The lifecycle: initialized, delivery retried.
    Info = 3,
    /// Everything, for development.
    Debug = 4,
}

impl LogLevel {
    /// The level of a `logLevel` option's value.
    pub fn from_name(name: &str) -> Option<LogLevel> {
        Some(match name {
            "off" => LogLevel::Off,
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            _ => return None,
        })
    }

    /// The level's name, as in the `logLevel` option.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

/// What happened to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// It started.
    Started,
    /// It ended.
    Ended,
}

/// A session started or ended: what the session listener receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionNotice {
    /// Started or ended.
    pub change: SessionChange,
    /// The session's id.
    pub session_id: String,
    /// The user, if one was set.
    pub user_id: Option<String>,
    /// When the session started, ms since the Unix epoch.
    pub start: Millis,
    /// The end, for `Ended`.
    pub end: Option<Millis>,
}

/// Receives session notices, on the dispatch thread.
pub type SessionListener = Arc<dyn Fn(&SessionNotice) + Send + Sync>;
/// Receives log messages at or above `logLevel`, on the dispatch thread.
pub type LogHandler = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

enum Notice {
    Session(SessionNotice),
    Log(LogLevel, String),
}

/// Beyond this many undelivered notices (a stuck host callback), new log lines are discarded.
const MAX_QUEUED: usize = 10_000;

#[derive(Default)]
struct State {
    queue: VecDeque<Notice>,
    listener: Option<SessionListener>,
    log_handler: Option<LogHandler>,
    /// Bumped whenever a callback is replaced.
    generation: u64,
    /// The generation of the callback being called right now, if any.
    calling: Option<u64>,
    thread: Option<ThreadId>,
}

struct Dispatcher {
    state: Mutex<State>,
    /// Signals new notices to the thread, and finished calls to those waiting on them.
    changed: Condvar,
}

static DISPATCHER: Lazy<Dispatcher> = Lazy::new(|| Dispatcher {
    state: Mutex::new(State::default()),
    changed: Condvar::new(),
});

/// Sets (or with `None` removes) the session listener.
pub fn set_session_listener(listener: Option<SessionListener>) {
    replace(|state| state.listener = listener);
}

/// Sets (or with `None` removes) the log handler; without one, messages go to stderr.
pub fn set_log_handler(handler: Option<LogHandler>) {
    replace(|state| state.log_handler = handler);
}

fn replace(change: impl FnOnce(&mut State)) {
    let mut state = DISPATCHER.state.lock();
    change(&mut state);
    state.generation += 1;
    let generation = state.generation;
    if state.thread == Some(std::thread::current().id()) {
        return; // inside a callback: the next notice already sees the new one
    }
    while state.calling.is_some_and(|g| g < generation) {
        DISPATCHER.changed.wait(&mut state);
    }
}

/// Queues a session notice for the listener, if there is one.
pub(crate) fn session(notice: SessionNotice) {
    let mut state = DISPATCHER.state.lock();
    if state.listener.is_some() {
        push(&mut state, Notice::Session(notice));
    }
}

/// Queues a log message for the handler (or stderr).
pub(crate) fn log(level: LogLevel, message: String) {
    let mut state = DISPATCHER.state.lock();
    if state.queue.len() < MAX_QUEUED {
        push(&mut state, Notice::Log(level, message));
    }
}

fn push(state: &mut State, notice: Notice) {
    state.queue.push_back(notice);
    if state.thread.is_none() {
        match std::thread::Builder::new()
            .name("stint-dispatch".into())
            .spawn(run)
        {
            Ok(handle) => state.thread = Some(handle.thread().id()),
            Err(_) => {
                state.queue.clear();
                return;
            }
        }
    }
    DISPATCHER.changed.notify_all();
}

/// Waits until every notice queued so far has been delivered, for at most `timeout`.
/// Returns at once when called from a callback.
pub fn wait_until_idle(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut state = DISPATCHER.state.lock();
    if state.thread == Some(std::thread::current().id()) {
        return state.queue.is_empty();
    }
    while !state.queue.is_empty() || state.calling.is_some() {
        if DISPATCHER
            .changed
            .wait_until(&mut state, deadline)
            .timed_out()
        {
            return false;
        }
    }
    true
}

fn run() {
    let mut state = DISPATCHER.state.lock();
    loop {
        let Some(notice) = state.queue.pop_front() else {
            if state.listener.is_none() && state.log_handler.is_none() {
                // Nothing registered: end the thread (the next notice starts another), so a
                // host runtime can unload code that registered callbacks (Mono domain reload).
                state.thread = None;
                DISPATCHER.changed.notify_all();
                return;
            }
            DISPATCHER.changed.wait(&mut state);
            continue;
        };
        let listener = state.listener.clone();
        let log_handler = state.log_handler.clone();
        state.calling = Some(state.generation);
        drop(state);
        // A panicking callback must not take the dispatch thread down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &notice {
            Notice::Session(session) => {
                if let Some(listener) = &listener {
                    listener(session);
                }
            }
            Notice::Log(level, message) => match &log_handler {
                Some(handler) => handler(*level, message),
                None => eprintln!("stint [{}] {}", level.name(), message),
            },
        }));
        drop((listener, log_handler));
        state = DISPATCHER.state.lock();
        state.calling = None;
        DISPATCHER.changed.notify_all();
    }
}
