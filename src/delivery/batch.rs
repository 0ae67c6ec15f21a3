//! A batch: the oldest datapoints copied out of the journal, turned into their wire form, and
//! the envelope around them (the request body; docs/semantics.md has the wire format).

use super::policy::MAX_BATCH_BYTES;
use super::request::SDK_VERSION;
use crate::clock;
use crate::log;
use crate::storage::datapoint::{stored_to_json, write_seconds};
use crate::storage::journal::Pending;

/// Byte strings one after another in one buffer (a batch without an allocation per datapoint).
#[derive(Default)]
pub struct Packed {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Packed {
    /// How many byte strings it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.ends.push(self.bytes.len());
    }

    /// The `i`th byte string.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// The byte strings, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// The oldest batch as stored, copied out of the journal so that the lock can be released.
pub struct StoredBatch {
    /// The API key they were recorded under.
    pub api_key: String,
    seqs: Vec<u64>,
    payloads: Packed,
}

impl StoredBatch {
    /// Copies `batch` (the journal's oldest); `None` if it is empty.
    pub fn copy(batch: &[Pending<'_>]) -> Option<StoredBatch> {
        let mut stored = StoredBatch {
            api_key: batch.first()?.api_key.to_owned(),
            seqs: batch.iter().map(|p| p.seq).collect(),
            payloads: Packed::default(),
        };
        for pending in batch {
            stored.payloads.push(pending.payload);
        }
        Some(stored)
    }
}

/// A batch's datapoints in their wire form, at most `MAX_BATCH_BYTES` of them (and at least
/// one).
pub struct WireBatch {
    /// The datapoints' JSON objects.
    pub events: Packed,
    /// The last datapoint covered, sent or skipped as unreadable.
    pub last_seq: u64,
}

impl WireBatch {
    /// The wire form of `stored`: as many datapoints as fit in `MAX_BATCH_BYTES`.
    pub fn of(stored: &StoredBatch) -> WireBatch {
        let mut wire = WireBatch {
            events: Packed::default(),
            last_seq: 0,
        };
        let json = &mut wire.events.bytes;
        json.reserve(2 * stored.payloads.bytes.len());
        for (&seq, payload) in stored.seqs.iter().zip(stored.payloads.iter()) {
            let start = json.len();
            if stored_to_json(payload, json).is_err() {
                json.truncate(start);
                log::error(|| format!("datapoint {seq} is unreadable; skipped"));
            } else if !wire.events.ends.is_empty() && json.len() > MAX_BATCH_BYTES {
                json.truncate(start);
                break;
            } else {
                wire.events.ends.push(json.len());
            }
            wire.last_seq = seq;
        }
        wire
    }
}

/// The request body: the envelope around datapoints in their wire form.
pub fn body(api_key: &str, device_id: &str, events: &[&[u8]]) -> Vec<u8> {
    let size: usize = events.iter().map(|e| e.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 200);
    out.extend_from_slice(b"{\"api_key\":");
    serde_json::to_writer(&mut out, api_key).expect("vec");
    out.extend_from_slice(b",\"device_id\":");
    serde_json::to_writer(&mut out, device_id).expect("vec");
    out.extend_from_slice(b",\"sdk_version\":\"");
    out.extend_from_slice(SDK_VERSION.as_bytes());
    // The datapoints' own three-decimal writer: `{:.3}` of an f64 linked float formatting in.
    out.extend_from_slice(b"\",\"time\":");
    write_seconds(&mut out, clock::now_ms());
    out.extend_from_slice(b",\"events\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(event);
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::CustomEvent;
    use crate::session::Record;
    use crate::storage::datapoint::{stored_to_json, Datapoint};

    fn stored_event(properties: &str) -> Vec<u8> {
        let event = CustomEvent::new("big", Some(properties)).unwrap();
        let record = Record::CustomEvent {
            session_id: None,
            user: None,
            time: 0,
        };
        let datapoint = Datapoint::new(&record, [1; 16], Some(&event));
        let mut stored = vec![0; datapoint.stored_len()];
        datapoint.store(&mut stored);
        stored
    }

    fn pending(seq: u64, payload: &[u8]) -> Pending<'_> {
        Pending {
            seq,
            api_key: "key",
            payload,
        }
    }

    fn to_wire(batch: &[Pending<'_>]) -> WireBatch {
        WireBatch::of(&StoredBatch::copy(batch).unwrap())
    }

    #[test]
    fn a_wire_batch_stops_at_the_byte_limit_of_its_json() {
        let big = stored_event(&format!("{{\"x\":\"{}\"}}", "a".repeat(40 * 1024)));
        let batch: Vec<_> = (1..=20).map(|seq| pending(seq, &big)).collect();
        let wire = to_wire(&batch);
        let json = wire.events.bytes.len();
        assert!(json <= MAX_BATCH_BYTES);
        assert!(
            json + wire.events.get(0).len() > MAX_BATCH_BYTES,
            "as many as fit"
        );
        assert_eq!(wire.last_seq, wire.events.len() as u64);
        for event in wire.events.iter() {
            let value: serde_json::Value = serde_json::from_slice(event).unwrap();
            assert_eq!(value["data"]["n"], "big");
        }
        let huge = format!("{{\"legacy\":\"{}\"}}", "a".repeat(600 * 1024));
        let alone = to_wire(&[pending(9, huge.as_bytes())]);
        assert_eq!((alone.events.len(), alone.last_seq), (1, 9), "at least one");
    }

    #[test]
    fn the_envelope_is_json_with_the_time_in_seconds_to_three_decimals() {
        let before = clock::now_ms();
        let out = body("k\"ey", "device", &[b"{}", b"[1]"]);
        let after = clock::now_ms();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["api_key"], "k\"ey");
        assert_eq!(value["events"], serde_json::json!([{}, [1]]));
        let text = std::str::from_utf8(&out).unwrap();
        let time = text
            .split("\"time\":")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        let (seconds, millis) = time.split_once('.').unwrap();
        assert_eq!(millis.len(), 3, "{time}");
        let ms: i64 = format!("{seconds}{millis}").parse().unwrap();
        assert!((before..=after).contains(&ms), "{time}");
    }

    #[test]
    fn unreadable_payloads_are_skipped_and_covered() {
        let good = stored_event("{}");
        let batch = [
            pending(1, b"\x01garbage"),
            pending(2, &good),
            pending(3, b""),
        ];
        let wire = to_wire(&batch);
        assert_eq!(wire.events.len(), 1);
        let mut json = Vec::new();
        stored_to_json(&good, &mut json).unwrap();
        assert_eq!(wire.events.get(0), json);
        assert_eq!(
            wire.last_seq, 3,
            "acknowledging the batch covers the skipped ones"
        );
        let none = to_wire(&[pending(4, b"\x02")]);
        assert_eq!(none.events.len(), 0);
        assert_eq!(none.last_seq, 4);
    }
}
