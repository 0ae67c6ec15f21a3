//! The C types of the API. Numbers are part of the ABI: never change or reuse one.

use std::ffi::{c_char, c_void};

/// The result of every Stint call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StintStatus {
    /// Success.
    Ok = 0,
    /// NULL, bad UTF-8, too long, bad JSON or a bad option; see stint_last_error_message().
    InvalidArgument = 1,
    /// Called before stint_initialize() or after stint_shutdown().
    NotInitialized = 2,
    /// stint_initialize() was already called.
    AlreadyInitialized = 3,
    /// The data directory is unusable: disk full, permissions, I/O error.
    StorageError = 4,
    /// Another process (or another Stint instance) uses this data directory.
    DataDirectoryLocked = 5,
    /// stint_flush() or stint_shutdown() did not finish in time; nothing is lost.
    Timeout = 6,
    /// A bug was caught (a panic); the library stays usable.
    InternalError = 7,
}

/// Counters. All but `datapoints_pending` count since stint_initialize().
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StintStats {
    /// Sessions started.
    pub sessions_started: u64,
    /// Sessions ended.
    pub sessions_ended: u64,
    /// Datapoints recorded.
    pub datapoints_recorded: u64,
    /// Recorded and not yet delivered (including those recovered from earlier runs).
    pub datapoints_pending: u64,
    /// Acknowledged by the collector.
    pub datapoints_delivered: u64,
    /// Dropped because the queue was full or the collector rejected them.
    pub datapoints_dropped: u64,
}

/// What happened to the session of a StintSessionEvent.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StintSessionEventKind {
    /// It started.
    Started = 0,
    /// It ended.
    Ended = 1,
}

/// A session started or ended. Pointers are valid only during the listener call.
#[repr(C)]
pub struct StintSessionEvent {
    /// Started or ended.
    pub kind: StintSessionEventKind,
    /// The session id (UUID text), NUL-terminated.
    pub session_id: *const c_char,
    /// The user, NUL-terminated UTF-8; NULL if anonymous.
    pub user_id: *const c_char,
    /// Seconds since the Unix epoch (millisecond precision).
    pub start_time: f64,
    /// Seconds since the Unix epoch; 0 for a started session.
    pub end_time: f64,
}

/// The level of a message passed to the log handler.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StintLogLevel {
    /// Something failed: data was refused or lost, or the host's input is wrong.
    Error = 1,
    /// Something the host should know.
    Warn = 2,
    /// The lifecycle: initialized, delivery retried.
    Info = 3,
    /// Everything, for development.
    Debug = 4,
}

/// Called on a library thread, in datapoint order, never while the library holds a lock: it may
/// call any stint_ function.
pub type StintSessionListener =
    Option<unsafe extern "C" fn(event: *const StintSessionEvent, user_data: *mut c_void)>;

/// Called on a library thread with a NUL-terminated message, valid only during the call.
pub type StintLogHandler = Option<
    unsafe extern "C" fn(level: StintLogLevel, message: *const c_char, user_data: *mut c_void),
>;
