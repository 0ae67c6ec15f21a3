//! Stint: session tracking with a C ABI. See README.md and docs/semantics.md.
//!
//! Layers: `ffi` (C API, thin) -> `instance` (the global tracker) -> `tracker` (Rust API) ->
//! `session` (pure rules) + `journal` (durable queue) + `worker`/`upload` (delivery).

pub mod clock;
mod context;
mod data_dir;
pub mod datapoint;
pub mod dispatch;
pub mod error;
pub mod ffi;
mod ids;
pub mod input;
pub mod instance;
pub mod journal;
mod json_check;
mod lane;
pub mod log;
mod mmap;
pub mod options;
mod saved_session;
pub mod session;
mod slot_file;
pub mod tracker;
pub mod upload;
mod worker;

#[cfg(test)]
mod test_support;

pub use error::Error;
pub use options::Options;
pub use tracker::{Stats, Tracker};

/// The library version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
