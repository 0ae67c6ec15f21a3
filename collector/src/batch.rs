//! The wire format of `POST /api/v3/data`: body decoding and schema validation. A batch is
//! accepted or rejected whole, which is what lets the SDK bisect a 400 down to one datapoint.

use flate2::read::GzDecoder;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Display;
use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

/// A gzip body may not inflate past this (a compression bomb would otherwise fill memory).
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub status: u16,
    pub message: String,
}

impl Rejection {
    fn bad_request(message: impl Into<String>) -> Rejection {
        Rejection {
            status: 400,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub api_key: String,
    pub device_id: String,
    pub sdk_version: String,
    pub time: f64,
    pub events: Vec<Datapoint>,
    /// The request body as received, when the batch came over HTTP: a store may keep it once
    /// per batch instead of each datapoint's `raw` (its `events[i]` is `events[i].raw`).
    pub body: Option<WireBody>,
}

/// A request body as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct WireBody {
    pub bytes: Vec<u8>,
    /// `Content-Encoding: gzip`; else the JSON text itself.
    pub gzip: bool,
}

impl WireBody {
    /// The `events` of the body, each as its JSON text (what `raw` holds).
    pub fn events(&self) -> Result<Vec<Box<RawValue>>, Rejection> {
        #[derive(Deserialize)]
        struct Events {
            events: Vec<Box<RawValue>>,
        }
        let decoded = decode_body(&self.bytes, self.gzip.then_some("gzip"))?;
        let body: Events = serde_json::from_slice(&decoded)
            .map_err(|e| Rejection::bad_request(format!("body is not valid JSON: {e}")))?;
        Ok(body.events)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SessionStart,
    SessionEnd,
    Custom,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    pub id: String,
    /// `id`'s 16 bytes (read here, outside any lock: a store may key by them).
    pub id_bytes: [u8; 16],
    pub kind: Kind,
    pub time: f64,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    /// `data.d` of a session end.
    pub duration: Option<f64>,
    /// `data.n` of a custom event.
    pub custom_name: Option<String>,
    /// The device and app a session started on (`ss` only; empty otherwise).
    pub context: SessionContext,
    /// The datapoint as received, as JSON text (read here, before any lock is taken).
    pub raw: RawText,
}

/// A datapoint's JSON text: a range of its batch's decoded body, shared by the batch's
/// datapoints rather than copied for each (a store that keeps the body never reads it).
#[derive(Clone, Default)]
pub struct RawText {
    text: Arc<String>,
    range: Range<usize>,
}

impl RawText {
    pub fn as_str(&self) -> &str {
        &self.text[self.range.clone()]
    }
}

impl From<String> for RawText {
    fn from(text: String) -> RawText {
        RawText {
            range: 0..text.len(),
            text: Arc::new(text),
        }
    }
}

impl std::ops::Deref for RawText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for RawText {
    fn eq(&self, other: &RawText) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for RawText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Datapoint {
    /// The wire `name` ("ss", "se", "ce").
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::SessionStart => "ss",
            Kind::SessionEnd => "se",
            Kind::Custom => "ce",
        }
    }
}

/// The keys an `ss` datapoint's `data` may carry about the device and app, each optional.
pub const CONTEXT_KEYS: [&str; 6] = [
    "app_version",
    "os_name",
    "os_version",
    "device_model",
    "arch",
    "locale",
];

/// `data` of a session start: whichever of [`CONTEXT_KEYS`] the SDK knew on its platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionContext {
    pub app_version: Option<String>,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub device_model: Option<String>,
    pub arch: Option<String>,
    pub locale: Option<String>,
}

impl SessionContext {
    /// The values in [`CONTEXT_KEYS`] order.
    pub fn values(&self) -> [Option<&str>; 6] {
        [
            self.app_version.as_deref(),
            self.os_name.as_deref(),
            self.os_version.as_deref(),
            self.device_model.as_deref(),
            self.arch.as_deref(),
            self.locale.as_deref(),
        ]
    }
}

/// Undoes `Content-Encoding` (absent, `identity` or `gzip`).
pub fn decode_body(body: &[u8], content_encoding: Option<&str>) -> Result<Vec<u8>, Rejection> {
    match content_encoding.map(str::trim) {
        None | Some("") => Ok(body.to_vec()),
        Some(encoding) if encoding.eq_ignore_ascii_case("identity") => Ok(body.to_vec()),
        Some(encoding) if encoding.eq_ignore_ascii_case("gzip") => {
            let mut decoded = Vec::new();
            GzDecoder::new(body)
                .take(MAX_DECODED_BYTES as u64 + 1)
                .read_to_end(&mut decoded)
                .map_err(|e| Rejection::bad_request(format!("body is not valid gzip: {e}")))?;
            if decoded.len() > MAX_DECODED_BYTES {
                return Err(Rejection {
                    status: 413,
                    message: format!("gzip body inflates past {MAX_DECODED_BYTES} bytes"),
                });
            }
            Ok(decoded)
        }
        Some(other) => Err(Rejection::bad_request(format!(
            "unsupported Content-Encoding {other:?} (use gzip or none)"
        ))),
    }
}

pub fn parse_json(bytes: &[u8]) -> Result<Value, Rejection> {
    serde_json::from_slice(bytes)
        .map_err(|e| Rejection::bad_request(format!("body is not valid JSON: {e}")))
}

/// The body as the SDK sends it, read straight into borrowed fields (no `Value` tree): the
/// ingest hot path. Escaped strings come out owned; `raw` is each datapoint's bytes as received.
#[derive(Deserialize)]
struct WireBatch<'a> {
    #[serde(borrow)]
    api_key: Cow<'a, str>,
    #[serde(borrow)]
    device_id: Cow<'a, str>,
    #[serde(borrow)]
    sdk_version: Cow<'a, str>,
    time: f64,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireDatapoint<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    time: f64,
    #[serde(borrow, default)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: WireData<'a>,
}

/// `data`: only what some kind reads; any other key is ignored, as in [`validate`].
#[derive(Deserialize)]
struct WireData<'a> {
    #[serde(default)]
    d: Option<f64>,
    #[serde(borrow, default)]
    n: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    app_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    os_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    os_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    device_model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arch: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    locale: Option<Cow<'a, str>>,
}

/// The batch in a decoded body and the log's summary of it. A valid body takes the typed path;
/// anything it cannot take (a wrong type, a missing field, a duplicate key, a rule broken) goes
/// through [`parse_json`] and [`validate`], which accept exactly what is valid and name the first
/// offending field, so both paths give the same answer.
pub fn read_batch(bytes: Vec<u8>) -> (Summary, Result<Batch, Rejection>) {
    // JSON outside its strings is ASCII, and inside them serde_json would check UTF-8 anyway:
    // checked once here, the body is then shared as text by its datapoints.
    let text = match String::from_utf8(bytes) {
        Ok(text) => Arc::new(text),
        Err(error) => {
            return match parse_json(error.as_bytes()) {
                Ok(body) => (summarize(&body), validate(&body)),
                Err(rejection) => (Summary::default(), Err(rejection)),
            }
        }
    };
    if let Some(batch) = typed_batch(&text) {
        let summary = Summary {
            api_key: Some(batch.api_key.clone()),
            device_id: Some(batch.device_id.clone()),
            sdk_version: Some(batch.sdk_version.clone()),
            event_count: batch.events.len(),
            event_ids: batch.events.iter().map(|d| d.id.clone()).collect(),
        };
        return (summary, Ok(batch));
    }
    match parse_json(text.as_bytes()) {
        Ok(body) => (summarize(&body), validate(&body)),
        Err(rejection) => (Summary::default(), Err(rejection)),
    }
}

/// The typed path of [`read_batch`]: `None` whenever the batch is not valid.
fn typed_batch(text: &Arc<String>) -> Option<Batch> {
    let wire: WireBatch = serde_json::from_str(text).ok()?;
    if !wire.sdk_version.starts_with("stint/") {
        return None;
    }
    let events = wire
        .events
        .iter()
        .map(|raw| {
            // `raw` is borrowed from `text`: its offset there (checked all the same).
            let start = (raw.get().as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
            let range = start..start + raw.get().len();
            if text.get(range.clone()).map(str::as_ptr) != Some(raw.get().as_ptr()) {
                return None;
            }
            let raw_text = RawText {
                text: Arc::clone(text),
                range,
            };
            typed_datapoint(raw, raw_text)
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Batch {
        api_key: wire.api_key.into_owned(),
        device_id: wire.device_id.into_owned(),
        sdk_version: wire.sdk_version.into_owned(),
        time: wire.time,
        events,
        body: None,
    })
}

fn typed_datapoint(raw: &RawValue, raw_text: RawText) -> Option<Datapoint> {
    let wire: WireDatapoint = serde_json::from_str(raw.get()).ok()?;
    let id_bytes = uuid_bytes(&wire.id)?;
    let kind = match &*wire.name {
        "ss" => Kind::SessionStart,
        "se" => Kind::SessionEnd,
        "ce" => Kind::Custom,
        _ => return None,
    };
    if kind != Kind::Custom && wire.session_id.is_none() {
        return None;
    }
    let data = wire.data;
    let duration = match kind {
        Kind::SessionEnd => Some(data.d.filter(|d| *d >= 0.0)?),
        _ => None,
    };
    let custom_name = match kind {
        Kind::Custom => Some(data.n?.into_owned()),
        _ => None,
    };
    let context = match kind {
        Kind::SessionStart => SessionContext {
            app_version: data.app_version.map(Cow::into_owned),
            os_name: data.os_name.map(Cow::into_owned),
            os_version: data.os_version.map(Cow::into_owned),
            device_model: data.device_model.map(Cow::into_owned),
            arch: data.arch.map(Cow::into_owned),
            locale: data.locale.map(Cow::into_owned),
        },
        _ => SessionContext::default(),
    };
    Some(Datapoint {
        id: wire.id.into_owned(),
        id_bytes,
        kind,
        time: wire.time,
        session_id: wire.session_id.map(Cow::into_owned),
        user_id: wire.user_id.map(Cow::into_owned),
        duration,
        custom_name,
        context,
        raw: raw_text,
    })
}

/// Checks the whole batch against the schema; the message names the first offending field.
pub fn validate(body: &Value) -> Result<Batch, Rejection> {
    let top = body
        .as_object()
        .ok_or_else(|| Rejection::bad_request("body must be a JSON object"))?;
    let field = |name: &str| top.get(name).unwrap_or(&Value::Null);
    let api_key = required_string(field("api_key"), "api_key")?;
    let device_id = required_string(field("device_id"), "device_id")?;
    let sdk_version = required_string(field("sdk_version"), "sdk_version")?;
    if !sdk_version.starts_with("stint/") {
        return Err(Rejection::bad_request(format!(
            "sdk_version: expected \"stint/<version>\", got {sdk_version:?}"
        )));
    }
    let time = required_number(field("time"), "time")?;
    let events = field("events")
        .as_array()
        .ok_or_else(|| Rejection::bad_request("events: expected an array"))?
        .iter()
        .enumerate()
        .map(|(index, event)| validate_datapoint(event, &format!("events[{index}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Batch {
        api_key,
        device_id,
        sdk_version,
        time,
        events,
        body: None,
    })
}

fn validate_datapoint(event: &Value, path: &str) -> Result<Datapoint, Rejection> {
    let object = event
        .as_object()
        .ok_or_else(|| Rejection::bad_request(format!("{path}: expected an object")))?;
    let field = |name: &str| object.get(name).unwrap_or(&Value::Null);
    let id = required_string(field("id"), format_args!("{path}.id"))?;
    let Some(id_bytes) = uuid_bytes(&id) else {
        return Err(Rejection::bad_request(format!(
            "{path}.id: expected a UUID, got {id:?}"
        )));
    };
    let name = required_string(field("name"), format_args!("{path}.name"))?;
    let kind = match name.as_str() {
        "ss" => Kind::SessionStart,
        "se" => Kind::SessionEnd,
        "ce" => Kind::Custom,
        other => {
            return Err(Rejection::bad_request(format!(
                "{path}.name: expected \"ss\", \"se\" or \"ce\", got {other:?}"
            )))
        }
    };
    let time = required_number(field("time"), format_args!("{path}.time"))?;
    let session_id = optional_string(field("session_id"), format_args!("{path}.session_id"))?;
    if kind != Kind::Custom && session_id.is_none() {
        return Err(Rejection::bad_request(format!(
            "{path}.session_id: required for \"{name}\""
        )));
    }
    let user_id = optional_string(field("user_id"), format_args!("{path}.user_id"))?;
    let data = field("data")
        .as_object()
        .ok_or_else(|| Rejection::bad_request(format!("{path}.data: expected an object")))?;
    let data_field = |name: &str| data.get(name).unwrap_or(&Value::Null);
    let duration = match kind {
        Kind::SessionEnd => {
            let duration = required_number(data_field("d"), format_args!("{path}.data.d"))?;
            if duration < 0.0 {
                return Err(Rejection::bad_request(format!(
                    "{path}.data.d: a session length cannot be negative ({duration})"
                )));
            }
            Some(duration)
        }
        _ => None,
    };
    let custom_name = match kind {
        Kind::Custom => Some(required_string(
            data_field("n"),
            format_args!("{path}.data.n"),
        )?),
        _ => None,
    };
    let context = match kind {
        Kind::SessionStart => {
            let text =
                |key: &str| optional_string(data_field(key), format_args!("{path}.data.{key}"));
            SessionContext {
                app_version: text("app_version")?,
                os_name: text("os_name")?,
                os_version: text("os_version")?,
                device_model: text("device_model")?,
                arch: text("arch")?,
                locale: text("locale")?,
            }
        }
        _ => SessionContext::default(),
    };
    Ok(Datapoint {
        id,
        id_bytes,
        kind,
        time,
        session_id,
        user_id,
        duration,
        custom_name,
        context,
        raw: event.to_string().into(),
    })
}

// Paths are `impl Display` (often `format_args!`) so that no message is formatted unless a
// field is actually wrong: validation runs for every datapoint of every batch.
fn required_string(value: &Value, path: impl Display) -> Result<String, Rejection> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Err(Rejection::bad_request(format!("{path}: missing"))),
        other => Err(Rejection::bad_request(format!(
            "{path}: expected a string, got {}",
            type_name(other)
        ))),
    }
}

fn optional_string(value: &Value, path: impl Display) -> Result<Option<String>, Rejection> {
    match value {
        Value::Null => Ok(None),
        _ => required_string(value, path).map(Some),
    }
}

fn required_number(value: &Value, path: impl Display) -> Result<f64, Rejection> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| Rejection::bad_request(format!("{path}: number out of range"))),
        Value::Null => Err(Rejection::bad_request(format!("{path}: missing"))),
        other => Err(Rejection::bad_request(format!(
            "{path}: expected a number, got {}",
            type_name(other)
        ))),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The 16 bytes of a UUID in its canonical 8-4-4-4-12 hex form (either case; the version
/// nibble is not checked), or `None` for any other text.
pub fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let text = text.as_bytes();
    if text.len() != 36 || [8, 13, 18, 23].iter().any(|&i| text[i] != b'-') {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut bytes = [0; 16];
    let mut digits = text.iter().filter(|&&c| c != b'-');
    for byte in &mut bytes {
        let (high, low) = (digits.next()?, digits.next()?);
        *byte = digit(*high)? << 4 | digit(*low)?;
    }
    Some(bytes)
}

/// Best-effort header fields of a body, kept in the request log even when the batch is rejected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub api_key: Option<String>,
    pub device_id: Option<String>,
    pub sdk_version: Option<String>,
    pub event_count: usize,
    pub event_ids: Vec<String>,
}

pub fn summarize(body: &Value) -> Summary {
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(String::from);
    let events = body.get("events").and_then(Value::as_array);
    Summary {
        api_key: text("api_key"),
        device_id: text("device_id"),
        sdk_version: text("sdk_version"),
        event_count: events.map_or(0, Vec::len),
        event_ids: events
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("id").and_then(Value::as_str).map(String::from))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "6f1c2d3e-4a5b-4c6d-8e7f-001122334455";
    const SESSION: &str = "0a1b2c3d-4e5f-4a6b-9c7d-8e9fa0b1c2d3";

    fn batch_with(event: Value) -> Value {
        json!({"api_key": "k", "device_id": "dev", "sdk_version": "stint/0.1.0",
               "time": 1764190200.5, "events": [event]})
    }

    fn session_end() -> Value {
        json!({"id": ID, "name": "se", "time": 1764190123.456, "session_id": SESSION,
               "user_id": "alice", "data": {"d": 123.333}})
    }

    fn rejection_of(body: Value) -> String {
        validate(&body).unwrap_err().message
    }

    #[test]
    fn accepts_each_kind_of_datapoint() {
        let body = json!({"api_key": "k", "device_id": "dev", "sdk_version": "stint/0.1.0",
            "time": 1764190200.5, "events": [
                {"id": ID, "name": "ss", "time": 1.0, "session_id": SESSION, "user_id": null, "data": {}},
                session_end(),
                {"id": ID, "name": "ce", "time": 2.0, "session_id": null, "user_id": "alice",
                 "data": {"n": "level_up", "p": {"level": 3}}}]});
        let batch = validate(&body).unwrap();
        let kinds: Vec<_> = batch.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [Kind::SessionStart, Kind::SessionEnd, Kind::Custom]);
        assert_eq!(batch.events[1].duration, Some(123.333));
        assert_eq!(batch.events[2].custom_name.as_deref(), Some("level_up"));
        assert_eq!(batch.events[0].user_id, None);
        assert_eq!(
            serde_json::from_str::<Value>(&batch.events[1].raw).unwrap(),
            session_end()
        );
    }

    /// Both readings of `body`: the typed hot path (`None` if it declined) and `validate`'s.
    fn both_paths(body: &Value) -> (Option<Batch>, Result<Batch, Rejection>) {
        let text = Arc::new(serde_json::to_string(body).unwrap());
        (typed_batch(&text), validate(body))
    }

    #[test]
    fn typed_path_reads_a_valid_batch_as_validate_does() {
        let start = json!({"id": ID, "name": "ss", "time": 1.0, "session_id": SESSION,
            "user_id": "café \"quoted\"", "data": {"app_version": "2.1", "os_name": "Android",
            "os_version": "14", "device_model": "Pixel", "arch": "aarch64", "locale": "en-GB",
            "extra": [1, {"x": null}]}});
        let custom = json!({"id": ID, "name": "ce", "time": 2, "user_id": null,
            "data": {"n": "buy", "p": {"price": 1.5}}});
        let body = json!({"api_key": "k", "device_id": "dev", "sdk_version": "stint/0.1.0",
            "time": 1764190200, "extra": true, "events": [start, session_end(), custom]});
        let (typed, checked) = both_paths(&body);
        let (typed, checked) = (typed.expect("the typed path takes it"), checked.unwrap());
        assert_eq!(typed.events.len(), 3);
        // Everything but `raw`, which is the bytes as received on the typed path.
        for (a, b) in typed.events.iter().zip(&checked.events) {
            assert_eq!(
                Datapoint {
                    raw: RawText::default(),
                    ..a.clone()
                },
                Datapoint {
                    raw: RawText::default(),
                    ..b.clone()
                }
            );
            assert_eq!(
                serde_json::from_str::<Value>(&a.raw).unwrap(),
                serde_json::from_str::<Value>(&b.raw).unwrap()
            );
        }
        assert_eq!(typed.events[0].user_id.as_deref(), Some("café \"quoted\""));
        assert_eq!(
            Batch {
                events: vec![],
                ..typed
            },
            Batch {
                events: vec![],
                ..checked
            }
        );

        let (summary, read) = read_batch(serde_json::to_vec(&body).unwrap());
        assert_eq!(summary, summarize(&body));
        assert!(read.is_ok());
    }

    #[test]
    fn typed_path_declines_what_validate_rejects() {
        let mut cases = Vec::new();
        for (field, value) in [
            ("id", json!("not-a-uuid")),
            ("name", json!("xx")),
            ("time", json!("1")),
            ("session_id", Value::Null),
            ("data", json!([])),
        ] {
            let mut event = session_end();
            event[field] = value;
            cases.push(batch_with(event));
        }
        let mut negative = session_end();
        negative["data"]["d"] = json!(-1.0);
        cases.push(batch_with(negative));
        cases.push(batch_with(
            json!({"id": ID, "name": "ce", "time": 2.0, "data": {}}),
        ));
        let mut version = batch_with(session_end());
        version["sdk_version"] = json!("other/1");
        cases.push(version);
        cases.push(json!([1, 2]));
        for body in cases {
            let (typed, checked) = both_paths(&body);
            assert!(typed.is_none(), "typed path took {body}");
            let bytes = serde_json::to_vec(&body).unwrap();
            assert_eq!(read_batch(bytes).1.unwrap_err(), checked.unwrap_err());
        }
        // A repeated key: the typed path declines, `validate` keeps the last, as before.
        let repeated = r#"{"api_key":"a","api_key":"k","device_id":"d","sdk_version":"stint/1","time":1,"events":[]}"#;
        assert!(typed_batch(&Arc::new(repeated.to_string())).is_none());
        assert_eq!(read_batch(repeated.into()).1.unwrap().api_key, "k");
        // A context key of another type where no context is read (a `ce`): declined, accepted.
        let odd = batch_with(json!({"id": ID, "name": "ce", "time": 2.0,
            "data": {"n": "buy", "app_version": 7}}));
        assert!(both_paths(&odd).0.is_none());
        let bytes = serde_json::to_vec(&odd).unwrap();
        assert_eq!(
            read_batch(bytes).1.unwrap().events[0]
                .custom_name
                .as_deref(),
            Some("buy")
        );
        assert_eq!(read_batch(b"{".to_vec()).1.unwrap_err().status, 400);
    }

    #[test]
    fn names_the_offending_field() {
        let mut no_duration = session_end();
        no_duration["data"] = json!({});
        assert_eq!(
            rejection_of(batch_with(no_duration)),
            "events[0].data.d: missing"
        );

        let mut text_duration = session_end();
        text_duration["data"]["d"] = json!("12");
        assert!(rejection_of(batch_with(text_duration)).contains("expected a number"));

        let mut unknown_name = session_end();
        unknown_name["name"] = json!("xx");
        assert!(rejection_of(batch_with(unknown_name)).starts_with("events[0].name"));

        let mut custom_without_name = session_end();
        custom_without_name["name"] = json!("ce");
        custom_without_name["data"] = json!({"n": 5});
        assert!(rejection_of(batch_with(custom_without_name)).starts_with("events[0].data.n"));

        let mut bad_id = session_end();
        bad_id["id"] = json!("not-a-uuid");
        assert!(rejection_of(batch_with(bad_id)).starts_with("events[0].id"));

        let mut start_without_session = session_end();
        start_without_session["name"] = json!("ss");
        start_without_session["session_id"] = Value::Null;
        assert!(rejection_of(batch_with(start_without_session)).contains("session_id"));

        let mut no_device = batch_with(session_end());
        no_device.as_object_mut().unwrap().remove("device_id");
        assert_eq!(rejection_of(no_device), "device_id: missing");

        let mut events_not_array = batch_with(session_end());
        events_not_array["events"] = json!({});
        assert!(rejection_of(events_not_array).starts_with("events"));

        assert!(rejection_of(json!([])).contains("object"));
    }

    #[test]
    fn a_session_start_carries_its_device_context() {
        let start = json!({"id": ID, "name": "ss", "time": 1.0, "session_id": SESSION,
            "user_id": null, "data": {"app_version": "2.4.1", "os_name": "Android",
            "os_version": "14", "device_model": "Pixel 8", "arch": "aarch64", "locale": "de-DE"}});
        let batch = validate(&batch_with(start.clone())).unwrap();
        let context = &batch.events[0].context;
        assert_eq!(context.app_version.as_deref(), Some("2.4.1"));
        assert_eq!(context.os_name.as_deref(), Some("Android"));
        assert_eq!(context.locale.as_deref(), Some("de-DE"));
        assert_eq!(context.values().iter().flatten().count(), 6);

        // Each key is optional; one that is present must be a string.
        let mut partial = start.clone();
        partial["data"] = json!({"os_name": "Linux"});
        let batch = validate(&batch_with(partial)).unwrap();
        assert_eq!(batch.events[0].context.app_version, None);
        let mut wrong = start;
        wrong["data"]["os_version"] = json!(14);
        assert_eq!(
            rejection_of(batch_with(wrong)),
            "events[0].data.os_version: expected a string, got a number"
        );
    }

    #[test]
    fn decodes_gzip_and_rejects_broken_gzip() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(b"{}").unwrap();
        let gzipped = encoder.finish().unwrap();
        assert_eq!(decode_body(&gzipped, Some("gzip")).unwrap(), b"{}");
        assert_eq!(decode_body(b"{}", None).unwrap(), b"{}");
        assert_eq!(
            decode_body(b"not gzip", Some("gzip")).unwrap_err().status,
            400
        );
        assert_eq!(decode_body(b"{}", Some("br")).unwrap_err().status, 400);
    }

    #[test]
    fn uuid_bytes_reads_the_text_form_and_refuses_anything_else() {
        assert_eq!(
            uuid_bytes("00112233-4455-6677-8899-AABBCCDDEEFF"),
            Some([
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ])
        );
        assert_eq!(uuid_bytes(ID).unwrap()[15], 0x55);
        for bad in [
            "",
            "not-a-uuid",
            "00112233-4455-6677-8899-aabbccddeeff0",
            "00112233-4455-6677-8899-aabbccddeefg",
            "001122334-455-6677-8899-aabbccddeeff",
            "00112233-4455-6677-8899-aabbccdde-ff",
            "00112233-4455-6677-8899-aabbccddeeé",
        ] {
            assert_eq!(uuid_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn summarizes_even_an_invalid_body() {
        let summary = summarize(&json!({"device_id": "dev", "events": [{"id": "a"}, {"x": 1}]}));
        assert_eq!(summary.device_id.as_deref(), Some("dev"));
        assert_eq!(summary.api_key, None);
        assert_eq!(summary.event_count, 2);
        assert_eq!(summary.event_ids, ["a"]);
    }
}
