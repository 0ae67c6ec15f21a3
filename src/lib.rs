//! Stint: session tracking with a C ABI. See README.md and docs/semantics.md.
//!
//! Layers, top to bottom; a module imports only from below it:
//!
//! - `ffi`: the C API (thin: arguments, panic boundary, status codes), over `instance`, the
//!   process-wide tracker;
//! - `tracker`: the Rust API (facade), over `engine`: the session rules applied and recorded;
//! - `delivery`: the worker, batches, retry policy, request and response; it drives the engine
//!   through a trait of its own (`delivery::worker::Engine`);
//! - `storage`: journal, lanes, saved session, data directory (byte map: docs/format.md);
//! - `session` (the rules: a pure state machine), `options`, `input`, `dispatch` and `log`
//!   (calls into the host), `ids`, `clock`, `error`;
//! - `platform`: what differs between operating systems.
//!
//! The exports for the fuzz targets and the benchmark are behind the `internals` feature.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

/// Declares modules that the `internals` feature exports (hidden from the docs, for the fuzz
/// targets and the benchmark) and that are private otherwise.
macro_rules! internal_mod {
    ($($name:ident),*) => {$(
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

internal_mod!(clock, options, session);
mod delivery;
pub mod dispatch;
mod engine;
mod error;
pub mod ffi;
mod ids;
pub mod input;
mod instance;
mod json_check;
mod log;
mod platform;
mod storage;
mod tracker;

#[cfg(test)]
mod test_support;

pub use dispatch::LogLevel;
pub use error::Error;
pub use options::Options;
pub use tracker::{Stats, Tracker};

/// The library version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// For the fuzz targets (fuzz/) and the benchmark (benches/): not part of the API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use storage::{datapoint, journal, record};
