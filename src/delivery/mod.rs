//! Delivery: getting what the journal holds to the collector, at least once (glean-core's
//! `upload/` is the model).
//!
//! - `worker`: the background loop, driving the engine through the `worker::Engine` trait;
//! - `batch`: the oldest datapoints in their wire form, and the request body around them;
//! - `policy`: when to send, backoff and `Retry-After`, halving refused batches;
//! - `request`: compression and the HTTPS POST;
//! - `response`: what a status means for the batch.

pub(crate) mod batch;
pub(crate) mod policy;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod worker;
