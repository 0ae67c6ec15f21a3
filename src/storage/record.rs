//! Record framing, shared by journal segments and lanes (byte map: `format::record`): a
//! checksummed header and a payload. Writing is kill-safe (the length goes last); reading skips
//! whatever does not check out and never panics.

use super::checksum;
use super::format::{kind, record};

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A session start datapoint.
    SessionStart = kind::SESSION_START,
    /// A session end datapoint.
    SessionEnd = kind::SESSION_END,
    /// A custom event datapoint.
    CustomEvent = kind::CUSTOM_EVENT,
    /// The API key the following datapoints of this segment were recorded under.
    ApiKey = kind::API_KEY,
}

impl Kind {
    /// The kind of a kind byte, if it is one.
    pub fn from_u8(byte: u8) -> Option<Kind> {
        Some(match byte {
            kind::SESSION_START => Kind::SessionStart,
            kind::SESSION_END => Kind::SessionEnd,
            kind::CUSTOM_EVENT => Kind::CustomEvent,
            kind::API_KEY => Kind::ApiKey,
            _ => return None,
        })
    }

    /// Whether records of this kind hold a datapoint.
    pub fn is_datapoint(self) -> bool {
        matches!(
            self,
            Kind::SessionStart | Kind::SessionEnd | Kind::CustomEvent
        )
    }
}

/// What a scan found, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Intact records.
    pub records: usize,
    /// Bytes skipped because no intact record was there (torn or corrupted).
    pub corrupt_bytes_skipped: usize,
}

/// The bytes a record of `len` payload bytes takes.
pub fn record_len(len: usize) -> usize {
    record::HEADER_LEN + len.next_multiple_of(record::ALIGN)
}

/// Writes a record at the start of `bytes` (which must hold `record_len(len)`), its payload by
/// `fill`; returns the bytes used. Kill-safe: the length is written last.
pub fn put_record(
    bytes: &mut [u8],
    kind: Kind,
    seq: u64,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> usize {
    let needed = record_len(len);
    let (header, payload) = bytes[..needed].split_at_mut(record::HEADER_LEN);
    fill(&mut payload[..len]);
    header[record::SEQ..record::KIND].copy_from_slice(&seq.to_le_bytes());
    header[record::KIND] = kind as u8;
    header[record::FLAGS] = 0;
    header[record::VERSION] = record::VERSION_CRC32C;
    let crc = checksum::crc32c(&header[record::SEQ..record::FLAGS], &payload[..len]);
    header[record::CRC..record::SEQ].copy_from_slice(&crc.to_le_bytes());
    // The length goes last: until it is written, recovery sees no record here.
    header[record::LEN..record::CRC].copy_from_slice(&(len as u32).to_le_bytes());
    needed
}

/// Marks the record at `offset` of `bytes` dropped, in place (one store, outside the checksum).
pub fn mark_dropped(bytes: &mut [u8], offset: usize) {
    bytes[offset + record::FLAGS] |= record::DROPPED;
}

/// The checksum of a record as its header's version names it: `None` for an unknown version.
fn checksum(header: &[u8], payload: &[u8]) -> Option<u32> {
    let covered = &header[record::SEQ..record::FLAGS];
    match header[record::VERSION] {
        record::VERSION_CRC32C => Some(checksum::crc32c(covered, payload)),
        // Records written before version 1: data on a device survives an upgrade.
        record::VERSION_CRC32 => Some(checksum::crc32_ieee(covered, payload)),
        _ => None,
    }
}

/// An intact record, as `scan` finds it.
pub struct RawRecord<'a> {
    /// Where the record starts.
    pub offset: usize,
    /// Its sequence number.
    pub seq: u64,
    /// Its kind.
    pub kind: Kind,
    /// It was dropped for a full queue.
    pub dropped: bool,
    /// Its payload.
    pub payload: &'a [u8],
}

/// Reads the records of one segment or lane, skipping corrupted bytes; returns where the data
/// ends.
pub fn scan(bytes: &[u8], recovery: &mut Recovery, mut each: impl FnMut(RawRecord<'_>)) -> usize {
    let mut offset = 0;
    let mut end = 0;
    while offset + record::HEADER_LEN <= bytes.len() {
        let header = &bytes[offset..offset + record::HEADER_LEN];
        if header.iter().all(|&b| b == 0) {
            break; // never written
        }
        match parse(bytes, offset) {
            Some(found) => {
                let next = offset + record_len(found.payload.len());
                if offset > end {
                    recovery.corrupt_bytes_skipped += offset - end;
                }
                recovery.records += 1;
                each(found);
                offset = next;
                end = next;
            }
            None => offset += record::ALIGN, // look for the next intact record
        }
    }
    if offset > end && end < bytes.len() {
        recovery.corrupt_bytes_skipped += offset.min(bytes.len()) - end;
    }
    end
}

/// `scan` for bytes this process wrote itself and that nothing could have torn (a lane's
/// records since it was last emptied): the records one after another, without checking their
/// checksums. Stops at the first place that holds no record.
pub fn scan_written(bytes: &[u8], mut each: impl FnMut(RawRecord<'_>)) {
    let mut offset = 0;
    while offset + record::HEADER_LEN <= bytes.len() {
        let header = &bytes[offset..offset + record::HEADER_LEN];
        let mut len = [0; 4];
        len.copy_from_slice(&header[record::LEN..record::CRC]);
        let len = u32::from_le_bytes(len) as usize;
        let start = offset + record::HEADER_LEN;
        let (Some(payload), Some(kind)) = (
            bytes.get(start..start + len),
            Kind::from_u8(header[record::KIND]),
        ) else {
            break;
        };
        if len == 0 {
            break;
        }
        let mut seq = [0; 8];
        seq.copy_from_slice(&header[record::SEQ..record::KIND]);
        each(RawRecord {
            offset,
            seq: u64::from_le_bytes(seq),
            kind,
            dropped: header[record::FLAGS] & record::DROPPED != 0,
            payload,
        });
        offset += record_len(len);
    }
}

fn parse(bytes: &[u8], offset: usize) -> Option<RawRecord<'_>> {
    let header = &bytes[offset..offset + record::HEADER_LEN];
    let len = u32::from_le_bytes(header[record::LEN..record::CRC].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[record::CRC..record::SEQ].try_into().ok()?);
    let start = offset + record::HEADER_LEN;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    if len == 0 || checksum(header, payload) != Some(crc) {
        return None;
    }
    Some(RawRecord {
        offset,
        seq: u64::from_le_bytes(header[record::SEQ..record::KIND].try_into().ok()?),
        kind: Kind::from_u8(header[record::KIND])?,
        dropped: header[record::FLAGS] & record::DROPPED != 0,
        payload,
    })
}

/// Recovery over arbitrary bytes, for the fuzzer: must never panic.
#[cfg(any(test, feature = "internals"))]
pub fn recover_from_bytes(bytes: &[u8]) -> Recovery {
    let mut recovery = Recovery::default();
    scan(bytes, &mut recovery, |_| {});
    recovery
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 12345u64;
        for len in [0, 1, 23, 24, 25, 100, 4096] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 56) as u8
                })
                .collect();
            recover_from_bytes(&bytes);
        }
    }

    #[test]
    fn a_record_reads_back_and_its_length_is_written_last() {
        let mut bytes = vec![0; 64];
        let used = put_record(&mut bytes, Kind::CustomEvent, 7, 3, |out| {
            out.copy_from_slice(b"abc")
        });
        assert_eq!(used, record_len(3));
        let mut found = Vec::new();
        let end = scan(&bytes, &mut Recovery::default(), |r| {
            found.push((r.seq, r.kind, r.payload.to_vec()))
        });
        assert_eq!(
            (end, found),
            (used, vec![(7, Kind::CustomEvent, b"abc".to_vec())])
        );
        bytes[record::LEN..record::CRC].fill(0);
        assert_eq!(
            recover_from_bytes(&bytes).records,
            0,
            "no length, no record"
        );
    }

    /// Rewrites the record at the start of `bytes` as a Stint before format version 1 wrote
    /// it: version byte 0 and a CRC-32 (IEEE) of the same bytes.
    fn as_version_0(bytes: &mut [u8]) {
        let len = u32::from_le_bytes(bytes[record::LEN..record::CRC].try_into().unwrap());
        let payload = &bytes[record::HEADER_LEN..record::HEADER_LEN + len as usize];
        let crc = checksum::crc32_ieee(&bytes[record::SEQ..record::FLAGS], payload);
        bytes[record::CRC..record::SEQ].copy_from_slice(&crc.to_le_bytes());
        bytes[record::VERSION] = record::VERSION_CRC32;
    }

    #[test]
    fn records_are_written_with_crc32c_and_those_of_version_0_still_read() {
        let mut bytes = vec![0; 128];
        let first = put_record(&mut bytes, Kind::CustomEvent, 3, 5, |out| {
            out.copy_from_slice(b"hello")
        });
        assert_eq!(bytes[record::VERSION], record::VERSION_CRC32C);
        let stored = u32::from_le_bytes(bytes[record::CRC..record::SEQ].try_into().unwrap());
        let header_tail = &bytes[record::SEQ..record::FLAGS];
        let payload = &bytes[record::HEADER_LEN..record::HEADER_LEN + 5];
        assert_eq!(stored, checksum::crc32c(header_tail, payload));
        assert_ne!(stored, checksum::crc32_ieee(header_tail, payload));
        // A journal an older Stint left: its records read, and new ones follow them.
        as_version_0(&mut bytes);
        put_record(&mut bytes[first..], Kind::SessionEnd, 4, 2, |out| {
            out.copy_from_slice(b"ok")
        });
        let mut found = Vec::new();
        let mut recovery = Recovery::default();
        scan(&bytes, &mut recovery, |r| {
            found.push((r.seq, r.payload.to_vec()))
        });
        assert_eq!(found, vec![(3, b"hello".to_vec()), (4, b"ok".to_vec())]);
        assert_eq!(recovery.corrupt_bytes_skipped, 0);
    }

    #[test]
    fn a_wrong_or_unknown_version_fails_the_checksum() {
        for version in [record::VERSION_CRC32, 2, 0xff] {
            let mut bytes = vec![0; 64];
            put_record(&mut bytes, Kind::CustomEvent, 1, 3, |out| {
                out.copy_from_slice(b"abc")
            });
            bytes[record::VERSION] = version;
            assert_eq!(recover_from_bytes(&bytes).records, 0, "version {version}");
        }
        let mut bytes = vec![0; 64];
        put_record(&mut bytes, Kind::CustomEvent, 1, 3, |out| {
            out.copy_from_slice(b"abc")
        });
        as_version_0(&mut bytes);
        bytes[record::VERSION] = record::VERSION_CRC32C;
        assert_eq!(recover_from_bytes(&bytes).records, 0);
    }
}
