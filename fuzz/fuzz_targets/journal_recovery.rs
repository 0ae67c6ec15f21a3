//! Journal recovery from arbitrary bytes, as if they were a segment file: never panics, and
//! never claims more than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let recovery = stint::record::recover_from_bytes(data);
    assert!(recovery.corrupt_bytes_skipped <= data.len());
    assert!(recovery.records <= data.len() / 24);
});
