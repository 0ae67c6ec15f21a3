//! Datapoints in their wire form: one JSON object each, written straight to bytes.

use crate::input::CustomEvent;
use crate::journal::Kind;
use crate::session::{Millis, Record};

/// Encodes `record` as a datapoint with id `id` into `out` (cleared first); returns its kind.
pub fn encode(
    record: &Record,
    id: &[u8; 36],
    event: Option<&CustomEvent<'_>>,
    out: &mut Vec<u8>,
) -> Kind {
    out.clear();
    let (kind, name, time, session_id, user) = match record {
        Record::Started {
            session_id,
            user,
            time,
        } => (Kind::SessionStart, "ss", *time, Some(session_id), user),
        Record::Ended {
            session_id,
            user,
            time,
            ..
        } => (Kind::SessionEnd, "se", *time, Some(session_id), user),
        Record::CustomEvent {
            session_id,
            user,
            time,
        } => (Kind::CustomEvent, "ce", *time, session_id.as_ref(), user),
    };
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(id);
    out.extend_from_slice(b"\",\"name\":\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\",\"time\":");
    write_seconds(out, time);
    out.extend_from_slice(b",\"session_id\":");
    match session_id {
        // Session ids are UUIDs this library made: nothing to escape.
        Some(id) => {
            out.push(b'"');
            out.extend_from_slice(id.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"user_id\":");
    write_optional_string(out, user.as_deref());
    out.extend_from_slice(b",\"data\":{");
    match record {
        Record::Started { .. } => {}
        Record::Ended { start, time, .. } => {
            out.extend_from_slice(b"\"d\":");
            write_seconds(out, Record::duration(*start, *time));
        }
        Record::CustomEvent { .. } => {
            let event = event.expect("a custom event record comes with its event");
            out.extend_from_slice(b"\"n\":");
            write_string(out, event.name);
            out.extend_from_slice(b",\"p\":");
            out.extend_from_slice(event.properties.unwrap_or("{}").trim().as_bytes());
        }
    }
    out.extend_from_slice(b"}}");
    kind
}

/// The `id` of an encoded datapoint (it is always the first field).
pub fn id_of(json: &[u8]) -> &str {
    json.get(7..43)
        .and_then(|id| std::str::from_utf8(id).ok())
        .unwrap_or("?")
}

/// Seconds since the epoch with exactly three decimals: `1764190000.123`.
fn write_seconds(out: &mut Vec<u8>, ms: Millis) {
    if ms < 0 {
        out.push(b'-');
    }
    let ms = ms.unsigned_abs();
    write_integer(out, ms / 1000);
    let fraction = ms % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ]);
}

/// Decimal digits without going through `fmt` (this is on every call's path).
fn write_integer(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

fn write_optional_string(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => write_string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    // Ids and most names need no escaping: copy them as they are.
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    serde_json::to_writer(out, text).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn encoded(record: &Record, event: Option<&CustomEvent<'_>>) -> Value {
        let mut out = Vec::new();
        encode(
            record,
            b"0b6e3c1e-8f5a-4c7d-9e2b-1a2b3c4d5e6f",
            event,
            &mut out,
        );
        assert_eq!(id_of(&out), "0b6e3c1e-8f5a-4c7d-9e2b-1a2b3c4d5e6f");
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn session_start_matches_the_wire_format() {
        let v = encoded(
            &Record::Started {
                session_id: "s".into(),
                user: None,
                time: 1_764_190_000_123,
            },
            None,
        );
        assert_eq!(
            v,
            json!({"id":"0b6e3c1e-8f5a-4c7d-9e2b-1a2b3c4d5e6f","name":"ss","time":1764190000.123,
                   "session_id":"s","user_id":null,"data":{}})
        );
    }

    #[test]
    fn session_end_carries_duration_in_seconds() {
        let v = encoded(
            &Record::Ended {
                session_id: "s".into(),
                user: Some("alice".into()),
                start: 1_764_190_000_123,
                time: 1_764_190_123_456,
            },
            None,
        );
        assert_eq!(v["name"], "se");
        assert_eq!(v["time"], 1764190123.456);
        assert_eq!(v["user_id"], "alice");
        assert_eq!(v["data"], json!({"d": 123.333}));
    }

    #[test]
    fn custom_event_carries_name_and_properties() {
        let event = CustomEvent {
            name: "level \"up\"",
            properties: Some(" {\"level\":3} "),
        };
        let v = encoded(
            &Record::CustomEvent {
                session_id: None,
                user: Some("alice".into()),
                time: 1_764_190_050_000,
            },
            Some(&event),
        );
        assert_eq!(v["session_id"], Value::Null);
        assert_eq!(v["data"], json!({"n":"level \"up\"","p":{"level":3}}));
        let none = CustomEvent {
            name: "x",
            properties: None,
        };
        let record = Record::CustomEvent {
            session_id: None,
            user: None,
            time: 0,
        };
        assert_eq!(encoded(&record, Some(&none))["data"]["p"], json!({}));
    }

    #[test]
    fn times_always_have_three_decimals() {
        let mut out = Vec::new();
        write_seconds(&mut out, 1_764_190_050_000);
        write_seconds(&mut out, 7);
        write_seconds(&mut out, -1_500);
        assert_eq!(out, b"1764190050.0000.007-1.500");
    }
}
