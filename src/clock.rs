//! The wall clock. Only the tracker reads it; the session rules take `now` as an argument.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::session::Millis;

pub fn now_ms() -> Millis {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_millis() as Millis,
        Err(before) => -(before.duration().as_millis() as Millis),
    }
}

/// Seconds with millisecond precision, as the wire format and the C API give times.
pub fn seconds(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}
