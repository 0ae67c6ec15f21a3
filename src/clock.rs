//! The wall clock. Only the tracker reads it; the session rules take `now` as an argument.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::session::Millis;

pub fn now_ms() -> Millis {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        // Seconds and millis apart: `as_millis` goes through u128, measurable on the hot path.
        Ok(since) => since.as_secs() as Millis * 1000 + since.subsec_millis() as Millis,
        Err(before) => {
            let before = before.duration();
            -(before.as_secs() as Millis * 1000 + before.subsec_millis() as Millis)
        }
    }
}

/// Seconds with millisecond precision, as the wire format and the C API give times.
pub fn seconds(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}
