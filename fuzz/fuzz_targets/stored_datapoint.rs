//! A stored datapoint (what the journal and the lanes hold) from arbitrary bytes: decoding never
//! panics, and what decodes is stored back to exactly the same bytes and written as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stint::datapoint::{stored_to_json, Datapoint};

fuzz_target!(|data: &[u8]| {
    if let Ok(datapoint) = Datapoint::load(data) {
        let mut stored = vec![0u8; datapoint.stored_len()];
        datapoint.store(&mut stored);
        assert_eq!(stored, data, "stored back to the same bytes");
        let mut json = Vec::new();
        stored_to_json(data, &mut json).expect("it loaded");
        assert!(json.starts_with(b"{\"id\":\""), "{}", String::from_utf8_lossy(&json));
    }
});
