//! Errors of the Rust API; the C API maps each to its status code and words its message for C
//! (`ffi::boundary`).

use std::fmt;
use std::io;
use std::sync::Arc;

/// Why a call failed; each variant is one C status code. The messages name Rust items; an I/O
/// failure keeps the `io::Error` as its `source()`.
#[derive(Clone, Debug)]
pub enum Error {
    /// An argument or option is refused; the message names it.
    InvalidArgument(String),
    /// The tracker was shut down (or, in the C API, never initialized).
    NotInitialized,
    /// The process-wide tracker of the C API is already running.
    AlreadyInitialized,
    /// The data directory is unusable (disk full, permissions, I/O error).
    Storage {
        /// What could not be done, e.g. "cannot open the journal".
        context: String,
        /// The operating system's reason (shared so that `Error` stays `Clone`).
        source: Arc<io::Error>,
    },
    /// Another process or Stint instance uses the data directory.
    DataDirectoryLocked(String),
    /// A flush or shutdown ran out of time; the data stays queued.
    Timeout(String),
    /// A bug, or the OS refused a thread or randomness.
    Internal {
        /// What went wrong.
        context: String,
        /// The operating system's reason, when there is one.
        source: Option<Arc<io::Error>>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInitialized => f.write_str(
                "Stint is not initialized: the Tracker was shut down; start another with \
                 Tracker::start",
            ),
            Error::AlreadyInitialized => f.write_str(
                "Stint is already initialized: shut the running Tracker down before starting \
                 another",
            ),
            Error::InvalidArgument(message)
            | Error::DataDirectoryLocked(message)
            | Error::Timeout(message) => f.write_str(message),
            Error::Storage { context, .. } | Error::Internal { context, .. } => {
                f.write_str(context)
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage { source, .. } => Some(source.as_ref()),
            Error::Internal {
                source: Some(source),
                ..
            } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl Error {
    /// A storage error: `context` failed because of `error`.
    pub fn storage(context: &str, error: io::Error) -> Error {
        Error::Storage {
            context: context.to_owned(),
            source: Arc::new(error),
        }
    }

    /// An internal error with no OS cause (a bug, or randomness refused).
    pub fn internal(context: impl Into<String>) -> Error {
        Error::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// An internal error caused by the OS (a thread it would not start).
    pub fn internal_io(context: &str, error: io::Error) -> Error {
        Error::Internal {
            context: context.to_owned(),
            source: Some(Arc::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_storage_error_keeps_the_io_error_as_its_source() {
        let error = Error::storage(
            "cannot open the journal",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(error.to_string(), "cannot open the journal");
        let source = error.source().expect("the io::Error is the source");
        let io_error = source.downcast_ref::<io::Error>().expect("an io::Error");
        assert_eq!(io_error.kind(), io::ErrorKind::PermissionDenied);
        assert!(error.clone().source().is_some(), "a clone keeps its source");
    }

    #[test]
    fn an_internal_error_has_a_source_only_when_the_os_gave_one() {
        assert!(Error::internal("a bug").source().is_none());
        let spawn = Error::internal_io("cannot start the worker thread", io::Error::other("no"));
        assert_eq!(spawn.to_string(), "cannot start the worker thread");
        assert!(spawn.source().is_some());
    }

    #[test]
    fn rust_messages_name_rust_items_not_c_functions() {
        for error in [Error::NotInitialized, Error::AlreadyInitialized] {
            let message = error.to_string();
            assert!(!message.contains("stint_"), "{message}");
        }
        assert!(Error::NotInitialized.to_string().contains("Tracker::start"));
    }
}
