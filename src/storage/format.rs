//! The byte map of every file Stint keeps, as named constants: the one place where offsets and
//! sizes are defined. `docs/format.md` describes the same files in prose and points here. All
//! integers are little-endian; every offset is derived from the fields before it.

use std::mem::size_of;

/// Names in the data directory.
pub mod names {
    /// Empty; held locked (`File::try_lock`) by the one process using the directory.
    pub const LOCK: &str = "lock";
    /// The device id: 36 ASCII characters, a UUID v4 in its text form (`DEVICE_ID_LEN`).
    pub const DEVICE_ID: &str = "device_id";
    /// The user's tracking choice (`stint_set_tracking_enabled`): the ASCII text `enabled` or
    /// `disabled`; anything else, or no file, means no choice was made.
    pub const TRACKING: &str = "tracking";
    /// The user and the open session, a slot file (see `slot` and `saved_session`).
    pub const SESSION: &str = "session";
    /// The journal's directory: segments, the cursor and the spare segment.
    pub const JOURNAL: &str = "journal";
    /// The lanes' directory: `<index>.lane`, index 0..LANES.
    pub const LANES: &str = "lanes";
    /// In the journal: the seq acknowledged through, a slot file holding one u64.
    pub const CURSOR: &str = "cursor";
    /// In the journal: the next segment, created ahead of time (never holds records).
    pub const SPARE_SEGMENT: &str = "next.spare";
    /// In the journal: segment files are `<number, 20 decimal digits>.seg`.
    pub const SEGMENT_EXTENSION: &str = "seg";
    /// In the lanes' directory: a lane's first buffer is `<index>.lane`, its others
    /// `<index>.<letter>.lane` (`LANE_BUFFER_LETTERS`).
    pub const LANE_EXTENSION: &str = "lane";
    /// The letters naming a lane's second to last buffers (see `LANE_EXTENSION`).
    pub const LANE_BUFFER_LETTERS: [&str; 25] = [
        "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s",
        "t", "u", "v", "w", "x", "y", "z",
    ];
    /// A file being replaced (`device_id.tmp`): renamed over the real one once synced.
    pub const TEMPORARY_EXTENSION: &str = "tmp";
}

/// The text length of the device id.
pub const DEVICE_ID_LEN: usize = 36;

/// A record: how journal segments and lanes frame what they hold. Records follow one another
/// from offset 0, each `HEADER_LEN` bytes of header and its payload, padded with zeros to
/// `ALIGN`. An all-zero header ends the records.
///
/// ```text
/// 0   len      u32  payload bytes (never 0); written last, so a torn record has none
/// 4   crc      u32  the checksum `version` names, of bytes SEQ..FLAGS and of the payload
/// 8   seq      u64  the datapoint's sequence number (0 in lanes and for the key record)
/// 16  kind     u8   `Kind`
/// 17  flags    u8   bit 0: dropped (a full queue); outside the checksum, set in place
/// 18  version  u8   VERSION_CRC32C (written now) or VERSION_CRC32 (before); outside the
///                   checksum, but any other value, or the wrong one, fails it
/// 19  reserved [u8; 5], zero
/// 24  payload  `len` bytes, then zeros up to a multiple of 8
/// ```
pub mod record {
    use super::size_of;

    /// Offset of the payload length.
    pub const LEN: usize = 0;
    /// Offset of the checksum.
    pub const CRC: usize = LEN + size_of::<u32>();
    /// Offset of the sequence number; the checksum covers `SEQ..FLAGS`.
    pub const SEQ: usize = CRC + size_of::<u32>();
    /// Offset of the kind byte.
    pub const KIND: usize = SEQ + size_of::<u64>();
    /// Offset of the flags byte (outside the checksum).
    pub const FLAGS: usize = KIND + size_of::<u8>();
    /// Offset of the format version, which names the checksum.
    pub const VERSION: usize = FLAGS + size_of::<u8>();
    /// Offset of the reserved bytes.
    pub const RESERVED: usize = VERSION + size_of::<u8>();
    /// Header length: the payload starts here.
    pub const HEADER_LEN: usize = RESERVED + 5;
    /// Records start at multiples of this.
    pub const ALIGN: usize = 8;
    /// The flag of a datapoint dropped because the queue was full.
    pub const DROPPED: u8 = 1;
    /// Version 0: the checksum is CRC-32 (IEEE). Every record written before version 1 (the
    /// byte was reserved and zero); still read, never written.
    pub const VERSION_CRC32: u8 = 0;
    /// Version 1: the checksum is CRC-32C (Castagnoli), the CPU's own instruction. Written now.
    pub const VERSION_CRC32C: u8 = 1;

    const _: () = assert!(HEADER_LEN == 24 && HEADER_LEN.is_multiple_of(ALIGN));
}

/// The record kinds (`record::KIND`).
pub mod kind {
    /// A session start datapoint.
    pub const SESSION_START: u8 = 1;
    /// A session end datapoint.
    pub const SESSION_END: u8 = 2;
    /// A custom event datapoint.
    pub const CUSTOM_EVENT: u8 = 3;
    /// The API key (UTF-8) the following datapoints of the segment were recorded under.
    pub const API_KEY: u8 = 16;
}

/// Journal segment files: records (`record`), the first of each run an API key record.
pub mod segment {
    /// The size of a segment file; a record never spans two.
    pub const LEN: usize = 1 << 20;
    /// The room the newest segment must have left to be resumed at start-up.
    pub const RESUME_ROOM: usize = 4096;
}

/// Lane files: records (`record`) of custom events, seq 0, not yet moved to the journal.
pub mod lane {
    /// The size of a lane file (one buffer): room for ~3,800 typical custom events.
    pub const LEN: usize = 512 * 1024;
    /// Buffers a lane may have at once: two normally, more created by a caller that finds
    /// them all full (the worker got no core), removed again once the worker empties them.
    /// Beyond four only while the lane's records fit the queue's room (`Lanes::buffer_cap`).
    pub const BUFFERS: usize = 1 + super::names::LANE_BUFFER_LETTERS.len();
    /// Lanes (so lane files) in a data directory.
    pub const COUNT: usize = 4;
}

/// Slot files (the cursor, the saved session): two slots, each written whole in turn, so a torn
/// write leaves the other one intact. The newest intact slot (highest generation) is the value.
///
/// ```text
/// slot at 0 and at SLOT_LEN:
/// 0   generation u64  0: never written; odd generations in slot 1, even in slot 0
/// 8   crc        u32  CRC-32 (IEEE) of the generation's 8 bytes and of the value
/// 12  len        u32  value bytes, at most MAX_VALUE
/// 16  value      `len` bytes
/// ```
pub mod slot {
    use super::size_of;

    /// The size of a slot file.
    pub const FILE_LEN: usize = 8192;
    /// The size of one slot.
    pub const SLOT_LEN: usize = FILE_LEN / 2;
    /// Offset of the generation in a slot.
    pub const GENERATION: usize = 0;
    /// Offset of the checksum in a slot.
    pub const CRC: usize = GENERATION + size_of::<u64>();
    /// Offset of the value's length in a slot.
    pub const LEN: usize = CRC + size_of::<u32>();
    /// Offset of the value in a slot.
    pub const VALUE: usize = LEN + size_of::<u32>();
    /// The largest value a slot holds.
    pub const MAX_VALUE: usize = SLOT_LEN - VALUE;
}

/// The saved session, the value of the `session` slot file. Fields one after another:
///
/// ```text
/// version   u8   SAVED_SESSION_VERSION
/// has_user  u8   1: a user is set
/// user_len  u16  then the user id, UTF-8 (empty without a user)
/// open      u8   1: a session is open, and then:
///   id_len  u8   then the session id, UTF-8
///   start   i64  ms since the Unix epoch
///   last    i64  the last activity, ms since the Unix epoch
/// ```
pub mod saved_session {
    /// The first byte of a saved session; any other value reads as no saved session.
    pub const VERSION: u8 = 1;
}

/// A stored datapoint: the payload of a datapoint record (journal and lanes).
///
/// ```text
/// 0   format     u8        FORMAT (a payload starting with `{` is legacy JSON, sent as is)
/// 1   kind       u8        as the record's kind
/// 2   id         [u8; 16]  UUID v4
/// 18  time       i64       ms since the Unix epoch
/// 26  session_id string    (a string: u32 length, ABSENT for none, then UTF-8 bytes)
/// ..  user_id    string
/// then, by kind: session end: duration i64 (ms); custom event: name string, properties
/// string (a JSON object); session start: the device context string (JSON object members), or
/// nothing when none is known.
/// ```
pub mod datapoint {
    use super::size_of;

    /// The format byte of a stored datapoint.
    pub const FORMAT: u8 = 1;
    /// Offset of the format byte.
    pub const FORMAT_AT: usize = 0;
    /// Offset of the kind byte.
    pub const KIND: usize = FORMAT_AT + size_of::<u8>();
    /// Offset of the datapoint id.
    pub const ID: usize = KIND + size_of::<u8>();
    /// The length of a datapoint id.
    pub const ID_LEN: usize = 16;
    /// Offset of the time.
    pub const TIME: usize = ID + ID_LEN;
    /// Offset of the session id's length (the first variable field).
    pub const SESSION_ID: usize = TIME + size_of::<i64>();
    /// The length prefix of a string.
    pub const STRING_LEN: usize = size_of::<u32>();
    /// The length that marks an absent string.
    pub const ABSENT: u32 = u32::MAX;
}
