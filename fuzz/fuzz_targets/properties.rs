//! Custom events: a name, a user and properties from arbitrary bytes (split at 0xff bytes).
//! Never panics; and whatever is accepted is stored, read back unchanged, and sent as a
//! datapoint that a collector's JSON parser reads back exactly: the name, the user, and the
//! properties as one JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use stint::datapoint::{self, Datapoint};
use stint::input::{self, CustomEvent, UserId};
use stint::session::Record;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xff);
    let name = parts.next().unwrap_or_default();
    let user = parts.next().unwrap_or_default();
    let properties = parts.next();
    let (Ok(name), Ok(user)) = (std::str::from_utf8(name), std::str::from_utf8(user)) else {
        return;
    };
    let properties = match properties.map(std::str::from_utf8) {
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return,
        None => None,
    };
    if let Some(p) = properties {
        let checked = input::properties(p);
        if let Err(error) = &checked {
            assert!(error.to_string().starts_with("properties_json"), "{error}");
        }
    }
    let user = UserId::new(user).ok().map(|u| u.as_str().to_owned());
    let Ok(event) = CustomEvent::new(name, properties) else {
        return;
    };
    let record = Record::CustomEvent {
        session_id: Some("5f0c2a8e-1d3b-4c6e-8f9a-0b1c2d3e4f5a".into()),
        user: user.as_deref().map(Into::into),
        time: 1_764_190_000_123,
    };
    let datapoint = Datapoint::new(&record, [7; 16], Some(&event));
    let mut stored = vec![0; datapoint.stored_len()];
    datapoint.store(&mut stored);
    assert_eq!(Datapoint::load(&stored), Ok(datapoint), "the stored form reads back");
    let mut out = Vec::new();
    datapoint::stored_to_json(&stored, &mut out).expect("a stored datapoint converts");
    let parsed: Value = serde_json::from_slice(&out).expect("a datapoint is valid JSON");
    assert_eq!(parsed["data"]["n"], name);
    assert_eq!(parsed["user_id"].as_str(), user.as_deref());
    match properties {
        Some(p) => {
            let expected: Value = serde_json::from_str(p).expect("accepted properties parse");
            assert!(expected.is_object());
            assert_eq!(parsed["data"]["p"], expected);
        }
        None => assert_eq!(parsed["data"]["p"], serde_json::json!({})),
    }
});
