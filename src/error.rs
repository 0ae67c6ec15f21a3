//! Errors of the Rust API; the C API maps each to its status code.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    InvalidArgument(String),
    NotInitialized,
    AlreadyInitialized,
    Storage(String),
    DataDirectoryLocked(String),
    Timeout(String),
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
    pub fn storage(what: &str, error: std::io::Error) -> Error {
        Error::Storage(format!("{what}: {error}"))
    }
}
