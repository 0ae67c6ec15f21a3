//! The device side: what Stint keeps on disk, and how it survives kills and power loss.
//!
//! - `format`: the byte map of every file (docs/format.md describes it in prose);
//! - `mapping`: memory-mapped files (memmap2), sound because of the directory lock;
//! - `record`: checksummed record framing, shared by journal segments and lanes;
//! - `checksum`: the CRCs of records and slot files;
//! - `datapoint`: a datapoint's stored form (the payload of a record) and its wire JSON;
//! - `journal`: the durable queue of datapoints waiting for delivery;
//! - `lane`: per-thread files where custom events are recorded without the engine's lock;
//! - `slot_file`, `saved_session`: small values overwritten in place, kill-safe;
//! - `data_dir`: the directory itself, its lock and the device id.
//!
//! Nothing here knows about sessions' rules or delivery: the engine drives it.

pub(crate) mod checksum;
pub(crate) mod data_dir;
pub mod datapoint;
pub mod format;
pub mod journal;
pub(crate) mod lane;
pub(crate) mod mapping;
pub mod record;
pub(crate) mod saved_session;
pub(crate) mod slot_file;
