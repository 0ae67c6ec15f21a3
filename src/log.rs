//! Log messages: filtered by `logLevel`, handed to the host's log handler (or stderr) on the
//! dispatch thread, never on the caller's.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::dispatch::{self, LogLevel};

static MAX_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);

/// Sets the most verbose level that is logged (from the `logLevel` option).
pub fn set_max_level(level: LogLevel) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages at `level` are logged.
pub fn enabled(level: LogLevel) -> bool {
    level != LogLevel::Off && level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Logs `message` at `level`; built lazily so disabled levels cost one load.
pub fn log(level: LogLevel, message: impl FnOnce() -> String) {
    if enabled(level) {
        dispatch::log(level, message());
    }
}

/// Logs at `error`.
pub fn error(message: impl FnOnce() -> String) {
    log(LogLevel::Error, message)
}

/// Logs at `warn`.
pub fn warn(message: impl FnOnce() -> String) {
    log(LogLevel::Warn, message)
}

/// Logs at `info`.
pub fn info(message: impl FnOnce() -> String) {
    log(LogLevel::Info, message)
}

/// Logs at `debug`.
pub fn debug(message: impl FnOnce() -> String) {
    log(LogLevel::Debug, message)
}
