//! Log messages: filtered by `logLevel`, handed to the host's log handler (or stderr) on the
//! dispatch thread, never on the caller's.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::dispatch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LogLevel {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl LogLevel {
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

static MAX_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);

/// Sets the most verbose level that is logged (from the `logLevel` option).
pub fn set_max_level(level: LogLevel) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: LogLevel) -> bool {
    level != LogLevel::Off && level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Logs `message` at `level`; built lazily so disabled levels cost one load.
pub fn log(level: LogLevel, message: impl FnOnce() -> String) {
    if enabled(level) {
        dispatch::log(level, message());
    }
}

pub fn error(message: impl FnOnce() -> String) {
    log(LogLevel::Error, message)
}

pub fn warn(message: impl FnOnce() -> String) {
    log(LogLevel::Warn, message)
}

pub fn info(message: impl FnOnce() -> String) {
    log(LogLevel::Info, message)
}

pub fn debug(message: impl FnOnce() -> String) {
    log(LogLevel::Debug, message)
}
