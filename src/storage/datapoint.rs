//! Datapoints in two forms. The stored form is what a call copies into the journal: the fields
//! as raw bytes, so the caller's thread never formats ids, times or escapes. The wire form is
//! one JSON object, written from the stored form when the worker builds a batch. Byte map of
//! the stored form: `format::datapoint`.

use super::format::datapoint::{ABSENT, ID, ID_LEN, SESSION_ID, STRING_LEN, TIME};
use super::record::Kind;
use crate::ids;
use crate::input::CustomEvent;
use crate::session::{Millis, Record};

/// The first byte of a stored datapoint. Journals written before the stored form held the JSON
/// itself, which starts with `{`: those are sent as they are.
const STORED_FORMAT: u8 = super::format::datapoint::FORMAT;

/// One datapoint's fields, borrowed from a record and its event or from stored bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datapoint<'a> {
    /// Its id, a UUID v4.
    pub id: [u8; 16],
    /// What it is.
    pub kind: Kind,
    /// When it happened.
    pub time: Millis,
    /// The session it belongs to, if any.
    pub session_id: Option<&'a str>,
    /// The user, if any.
    pub user: Option<&'a str>,
    /// What its `data` object holds.
    pub data: Data<'a>,
}

/// What a datapoint's `data` object holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data<'a> {
    /// A session start.
    Start {
        /// The device and app context's JSON members (see `platform::context`), stored with
        /// the session's start.
        context: Option<&'a str>,
    },
    /// A session end: how long the session lasted.
    End {
        /// Milliseconds.
        duration: Millis,
    },
    /// A custom event.
    Custom {
        /// Its name.
        name: &'a str,
        /// Its properties, a JSON object.
        properties: Option<&'a str>,
    },
}

/// Stored bytes that are neither the stored form nor legacy JSON (a bug, not a torn write:
/// the journal's checksum covers those).
#[derive(Debug, PartialEq, Eq)]
pub struct Undecodable;

impl<'a> Datapoint<'a> {
    /// A custom event's datapoint.
    pub fn custom(
        id: [u8; 16],
        time: Millis,
        session_id: Option<&'a str>,
        user: Option<&'a str>,
        event: &CustomEvent<'a>,
    ) -> Self {
        Datapoint {
            id,
            kind: Kind::CustomEvent,
            time,
            session_id,
            user,
            data: Data::Custom {
                name: event.name,
                // Checked JSON: only JSON's (ASCII) white space can surround it, so the byte
                // trim equals `str::trim`, without decoding chars.
                properties: event.properties.map(str::trim_ascii),
            },
        }
    }

    /// The datapoint of `record`; a custom event record comes with its `event`.
    pub fn new(record: &'a Record, id: [u8; 16], event: Option<&CustomEvent<'a>>) -> Self {
        let (kind, time, session_id, user, data) = match record {
            Record::Started {
                session_id,
                user,
                time,
            } => (
                Kind::SessionStart,
                *time,
                Some(session_id),
                user,
                Data::Start { context: None },
            ),
            Record::Ended {
                session_id,
                user,
                start,
                time,
            } => {
                let duration = Record::duration(*start, *time);
                let data = Data::End { duration };
                (Kind::SessionEnd, *time, Some(session_id), user, data)
            }
            Record::CustomEvent {
                session_id,
                user,
                time,
            } => {
                let event = event.expect("a custom event record comes with its event");
                let (session_id, user) = (session_id.as_deref(), user.as_deref());
                return Datapoint::custom(id, *time, session_id, user, event);
            }
        };
        Datapoint {
            id,
            kind,
            time,
            session_id: session_id.map(|s| &**s),
            user: user.as_deref(),
            data,
        }
    }

    /// The size of the stored form.
    pub fn stored_len(&self) -> usize {
        let optional = |s: Option<&str>| STRING_LEN + s.map_or(0, str::len);
        let data = match self.data {
            // Without a context nothing is stored: the form of journals written before it.
            Data::Start { context } => context.map_or(0, |c| STRING_LEN + c.len()),
            Data::End { .. } => size_of::<Millis>(),
            Data::Custom { name, properties } => optional(Some(name)) + optional(properties),
        };
        SESSION_ID + optional(self.session_id) + optional(self.user) + data
    }

    /// Writes the stored form into `out`, which is exactly `stored_len()` bytes.
    pub fn store(&self, out: &mut [u8]) {
        let mut out = Writer { out, at: 0 };
        out.put(&[STORED_FORMAT, self.kind as u8]);
        out.put(&self.id);
        out.put(&self.time.to_le_bytes());
        out.optional(self.session_id);
        out.optional(self.user);
        match self.data {
            Data::Start { context: None } => {}
            Data::Start { context } => out.optional(context),
            Data::End { duration } => out.put(&duration.to_le_bytes()),
            Data::Custom { name, properties } => {
                out.optional(Some(name));
                out.optional(properties);
            }
        }
        debug_assert_eq!(out.at, out.out.len());
    }

    /// Reads a stored form back.
    pub fn load(stored: &'a [u8]) -> Result<Self, Undecodable> {
        let mut input = Reader { input: stored };
        let [format, kind] = input.array()?;
        if format != STORED_FORMAT {
            return Err(Undecodable);
        }
        let kind = Kind::from_u8(kind)
            .filter(|kind| kind.is_datapoint())
            .ok_or(Undecodable)?;
        let id = input.array()?;
        let time = input.millis()?;
        let session_id = input.optional()?;
        let user = input.optional()?;
        let data = match kind {
            Kind::SessionStart if input.input.is_empty() => Data::Start { context: None },
            Kind::SessionStart => Data::Start {
                context: Some(input.optional()?.ok_or(Undecodable)?),
            },
            Kind::SessionEnd => Data::End {
                duration: input.millis()?,
            },
            _ => Data::Custom {
                name: input.optional()?.ok_or(Undecodable)?,
                properties: input.optional()?,
            },
        };
        if !input.input.is_empty() {
            return Err(Undecodable);
        }
        Ok(Datapoint {
            id,
            kind,
            time,
            session_id,
            user,
            data,
        })
    }

    /// Appends the wire form: one JSON object.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let name = match self.kind {
            Kind::SessionStart => "ss",
            Kind::SessionEnd => "se",
            _ => "ce",
        };
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(&ids::format_uuid(&self.id));
        out.extend_from_slice(b"\",\"name\":\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\",\"time\":");
        write_seconds(out, self.time);
        out.extend_from_slice(b",\"session_id\":");
        write_optional_string(out, self.session_id);
        out.extend_from_slice(b",\"user_id\":");
        write_optional_string(out, self.user);
        out.extend_from_slice(b",\"data\":{");
        match self.data {
            Data::Start { context } => out.extend_from_slice(context.unwrap_or("").as_bytes()),
            Data::End { duration } => {
                out.extend_from_slice(b"\"d\":");
                write_seconds(out, duration);
            }
            Data::Custom { name, properties } => {
                out.extend_from_slice(b"\"n\":");
                write_string(out, name);
                out.extend_from_slice(b",\"p\":");
                out.extend_from_slice(properties.unwrap_or("{}").as_bytes());
            }
        }
        out.extend_from_slice(b"}}");
    }
}

/// The fields of a stored datapoint that moving and de-duplicating it needs, read without
/// decoding the rest (`None` for legacy JSON payloads and anything too short).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredHead {
    /// The datapoint id.
    pub id: [u8; 16],
    /// Its time.
    pub time: Millis,
    /// It carries a session id.
    pub in_session: bool,
}

impl StoredHead {
    /// The head of a stored datapoint, if `stored` is one.
    pub fn of(stored: &[u8]) -> Option<StoredHead> {
        if stored.first() != Some(&STORED_FORMAT) {
            return None;
        }
        let session_len = stored.get(SESSION_ID..SESSION_ID + STRING_LEN)?;
        let session_len = u32::from_le_bytes(session_len.try_into().ok()?);
        Some(StoredHead {
            id: stored.get(ID..ID + ID_LEN)?.try_into().ok()?,
            time: Millis::from_le_bytes(stored.get(TIME..SESSION_ID)?.try_into().ok()?),
            in_session: session_len != ABSENT,
        })
    }
}

/// The `id` of a datapoint's wire form (it is always the first field).
pub fn id_of(json: &[u8]) -> &str {
    json.get(7..43)
        .and_then(|id| std::str::from_utf8(id).ok())
        .unwrap_or("?")
}

/// Appends the wire form of a journal payload: a stored datapoint, or legacy JSON as it is.
pub fn stored_to_json(stored: &[u8], out: &mut Vec<u8>) -> Result<(), Undecodable> {
    if stored.first() == Some(&b'{') {
        out.extend_from_slice(stored);
        return Ok(());
    }
    Datapoint::load(stored)?.write_json(out);
    Ok(())
}

struct Writer<'b> {
    out: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    fn optional(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.put(&(text.len() as u32).to_le_bytes());
                self.put(text.as_bytes());
            }
            None => self.put(&ABSENT.to_le_bytes()),
        }
    }
}

struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Undecodable> {
        if self.input.len() < n {
            return Err(Undecodable);
        }
        let (taken, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Undecodable> {
        self.take(N)?.try_into().map_err(|_| Undecodable)
    }

    fn millis(&mut self) -> Result<Millis, Undecodable> {
        self.array().map(Millis::from_le_bytes)
    }

    fn optional(&mut self) -> Result<Option<&'a str>, Undecodable> {
        let len = u32::from_le_bytes(self.array()?);
        if len == ABSENT {
            return Ok(None);
        }
        let bytes = self.take(len as usize)?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Undecodable)
    }
}

/// Seconds since the epoch with exactly three decimals: `1764190000.123`.
pub fn write_seconds(out: &mut Vec<u8>, ms: Millis) {
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

    const ID: [u8; 16] = [
        0x0b, 0x6e, 0x3c, 0x1e, 0x8f, 0x5a, 0x4c, 0x7d, 0x9e, 0x2b, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e,
        0x6f,
    ];

    fn stored(record: &Record, event: Option<&CustomEvent<'_>>) -> Vec<u8> {
        let datapoint = Datapoint::new(record, ID, event);
        let mut stored = vec![0; datapoint.stored_len()];
        datapoint.store(&mut stored);
        assert_eq!(Datapoint::load(&stored), Ok(datapoint));
        stored
    }

    /// The wire form, by way of the stored form, as the worker sends it.
    fn encoded(record: &Record, event: Option<&CustomEvent<'_>>) -> Value {
        let mut out = Vec::new();
        stored_to_json(&stored(record, event), &mut out).unwrap();
        assert_eq!(id_of(&out), "0b6e3c1e-8f5a-4c7d-9e2b-1a2b3c4d5e6f");
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["id"], "0b6e3c1e-8f5a-4c7d-9e2b-1a2b3c4d5e6f");
        value
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
    fn properties_are_stored_without_the_white_space_around_them() {
        let text = "\r\n {\"a\":\" x \"}\t\n ";
        let event = CustomEvent::new("n", Some(text)).unwrap();
        let datapoint = Datapoint::custom([0; 16], 0, None, None, &event);
        let Data::Custom { properties, .. } = datapoint.data else {
            panic!("a custom event");
        };
        assert_eq!(properties, Some(text.trim()));
        assert_eq!(properties, Some("{\"a\":\" x \"}"));
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

    #[test]
    fn legacy_json_payloads_are_sent_as_they_are() {
        let legacy = br#"{"id":"x","name":"ce"}"#;
        let mut out = Vec::new();
        stored_to_json(legacy, &mut out).unwrap();
        assert_eq!(out, legacy);
    }

    #[test]
    fn damaged_stored_forms_are_refused_not_misread() {
        let record = Record::Ended {
            session_id: "s".into(),
            user: Some("alice".into()),
            start: 0,
            time: 5,
        };
        let good = stored(&record, None);
        let mut out = Vec::new();
        for cut in 0..good.len() {
            assert_eq!(
                stored_to_json(&good[..cut], &mut out),
                Err(Undecodable),
                "{cut}"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(Datapoint::load(&longer), Err(Undecodable));
        let mut unknown_kind = good.clone();
        unknown_kind[1] = 16;
        assert_eq!(Datapoint::load(&unknown_kind), Err(Undecodable));
        let mut bad_utf8 = good;
        let at = bad_utf8.len() - 8 - 5; // the user "alice", before the duration
        bad_utf8[at] = 0xff;
        assert_eq!(Datapoint::load(&bad_utf8), Err(Undecodable));
    }

    #[test]
    fn the_stored_head_reads_what_a_full_load_reads() {
        let event = CustomEvent {
            name: "tap",
            properties: None,
        };
        let in_session = Record::CustomEvent {
            session_id: Some("s".into()),
            user: None,
            time: 7,
        };
        let no_session = Record::CustomEvent {
            session_id: None,
            user: Some("alice".into()),
            time: 9,
        };
        for record in [in_session, no_session] {
            let bytes = stored(&record, Some(&event));
            let full = Datapoint::load(&bytes).unwrap();
            let head = StoredHead::of(&bytes).unwrap();
            assert_eq!(head.id, full.id);
            assert_eq!(head.time, full.time);
            assert_eq!(head.in_session, full.session_id.is_some());
        }
        assert_eq!(StoredHead::of(br#"{"id":"legacy"}"#), None);
        assert_eq!(StoredHead::of(&[STORED_FORMAT, 3, 0]), None);
    }
}
