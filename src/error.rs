//! Errors of the Rust API; the C API maps each to its status code.

use std::fmt;

/// Why a call failed; each variant is one C status code, its message the one
/// `stint_last_error_message` copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// An argument or option is refused; the message names it.
    InvalidArgument(String),
    /// Called before initialize or after shutdown.
    NotInitialized,
    /// Initialize was called twice.
    AlreadyInitialized,
    /// The data directory is unusable (disk full, permissions, I/O error).
    Storage(String),
    /// Another process or Stint instance uses the data directory.
    DataDirectoryLocked(String),
    /// A flush or shutdown ran out of time; the data stays queued.
    Timeout(String),
    /// A bug, or the OS refused a thread or randomness.
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInitialized => {
                f.write_str("Stint is not initialized: call stint_initialize first")
            }
            Error::AlreadyInitialized => f.write_str(
                "Stint is already initialized: call stint_shutdown before initializing again",
            ),
            Error::InvalidArgument(message)
            | Error::Storage(message)
            | Error::DataDirectoryLocked(message)
            | Error::Timeout(message)
            | Error::Internal(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// A storage error: `what` failed because of `error`.
    pub fn storage(what: &str, error: std::io::Error) -> Error {
        Error::Storage(format!("{what}: {error}"))
    }
}
