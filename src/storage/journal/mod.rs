//! The durable queue of datapoints waiting for delivery (byte map: `format`, docs/format.md).
//!
//! Records are appended to memory-mapped segment files (`journal/<n>.seg`), so an append is a
//! copy into the page cache: it survives SIGKILL at memory speed, and `sync` (msync) makes it
//! survive power loss. Each record carries a CRC-32; recovery keeps every intact record, skips
//! torn or corrupted bytes, and never refuses to start. Delivered datapoints are acknowledged
//! in order through a cursor (`journal/cursor`); a datapoint dropped because the queue is full is
//! marked in place by one byte outside its checksum. A segment is deleted once nothing in it is
//! pending.
//!
//! Records moved from the lanes in bulk (`append`) are gathered in memory and written to the
//! active segment's file with one `pwrite` per batch (`commit`): the kernel then fills fresh
//! page-cache pages in large folios, where storing through the mapping took one page fault per
//! 4 KB page (several µs each here, and the worker's largest cost per event). A batch is
//! committed before the lane records it holds are cleared, so it is as kill-safe as a store.
//! Records of a call (`append_with`) still go straight into the mapping: durable on return,
//! with no system call.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::datapoint::StoredHead;
use super::format::{names, record::HEADER_LEN as HEADER, record::LEN as LEN_AT, segment};
use super::mapping::{Flusher, MappedFile};
use super::record::{self, record_len, scan};
use super::slot_file::SlotFile;
use crate::platform::{self, create_private_dir, write_all_at, PAGE};

pub use super::record::{Kind, Recovery};

mod append;
mod index;
mod recovery;
mod segments;
mod spare;
mod unwritten;

pub use index::SpareChunk;
use index::{Entry, Index};
use segments::Segments;
use unwritten::Unwritten;

/// Segment size; a record never spans segments (the largest datapoint is ~60 KB).
const SEGMENT_LEN: usize = segment::LEN;
const ALIGN: usize = super::format::record::ALIGN;
/// The next segment, created and faulted in ahead of time by the worker, so that rolling over
/// costs a caller one rename instead of creating, allocating and faulting in a megabyte.
const SPARE: &str = names::SPARE_SEGMENT;
/// The room the newest segment must have left to be resumed at start-up.
const RESUME_ROOM: usize = segment::RESUME_ROOM;
/// Bulk appends are written out once this much is gathered (and at every `commit`).
const COMMIT_BYTES: usize = 256 * 1024;
/// Calls' records (`append_with`) go into pages the worker faulted in ahead of them: once fewer
/// than `AHEAD_LOW` bytes past the end are faulted in, it faults in up to `AHEAD_HIGH` past it
/// (`ahead`), so that it is woken for that about once per segment while calls record (with
/// 256 KB, four times as often: each wake-up hands the lock back and forth with the callers,
/// and `change_user`'s p99 went from 2.5 to 3-3.5 µs). Bulk appends alone never ask for it.
const AHEAD_LOW: usize = 64 * 1024;
const AHEAD_HIGH: usize = 1024 * 1024;
/// Faulted-in pages past the end a drained journal keeps for calls (`release_memory`): twice
/// `AHEAD_LOW`, so the next call's record does not send the worker faulting in at once.
const KEEP_AHEAD: usize = 2 * AHEAD_LOW;

struct Segment {
    map: MappedFile,
    /// Datapoints in this segment still pending; at 0 (and not active) the file is deleted.
    live: u64,
    /// Where the next record goes.
    end: usize,
    /// `end` at the last sync: what is already durable against power loss.
    synced_end: usize,
    /// Its API key records: where each is and the key (an index in `Journal::keys`); the
    /// datapoints after one were recorded under it.
    keys: Vec<(usize, u16)>,
    /// Counts the segments this journal opened, in number order (modulo 2^32): what an index
    /// entry names its segment by. Not the number itself, which a damaged file name could put
    /// 2^32 past the others.
    ordinal: u32,
}

impl Segment {
    fn new(
        map: MappedFile,
        ordinal: u32,
        live: u64,
        end: usize,
        keys: Vec<(usize, u16)>,
    ) -> Segment {
        Segment {
            map,
            live,
            end,
            synced_end: end,
            keys,
            ordinal,
        }
    }

    /// The key of the datapoint at `offset`.
    fn key_at(&self, offset: usize) -> u16 {
        let after = self.keys.partition_point(|&(at, _)| at < offset);
        after.checked_sub(1).map_or(0, |i| self.keys[i].1)
    }
}

/// One datapoint handed to the uploader.
pub struct Pending<'a> {
    /// Its sequence number: acknowledging it acknowledges all before it.
    pub seq: u64,
    /// The API key it was recorded under.
    pub api_key: &'a str,
    /// The datapoint as stored (see `datapoint`).
    pub payload: &'a [u8],
}

/// The journal of one data directory (see the module doc).
pub struct Journal {
    dir: PathBuf,
    segments: Segments,
    entries: Index,
    live: u64,
    next_seq: u64,
    cursor: SlotFile,
    acked_through: u64,
    keys: Vec<String>,
    current_key: u16,
    max_live: u64,
    /// Where to look for the oldest droppable custom event (entries before it have none).
    drop_scan_from: u64,
    spare: Option<MappedFile>,
    /// The active segment for which a spare was last asked for (asked once per segment).
    spare_asked_for: u64,
    /// The active segment's file, for `pwrite`.
    writer: Option<File>,
    /// Records appended in bulk and not yet written: they end the active segment (at its
    /// `end`), and `commit` writes them.
    unwritten: Unwritten,
    /// The active segment's pages before this offset are faulted in (see `prefault_ahead`).
    faulted_to: usize,
    /// A call stored a record since the last `prefault_ahead`.
    stored_directly: bool,
    /// Calls stored session datapoints in the active segment: its spare is faulted in when
    /// made (`spare_wants_faulting`), so that a roll-over never lands on cold pages.
    calls_store: bool,
    /// The spare's pages are faulted in.
    spare_faulted: bool,
    /// The seq of the newest datapoint in the files (not in `unwritten`).
    written_through: u64,
    /// The next segment's `Segment::ordinal`.
    next_ordinal: u32,
}

impl Journal {
    /// Opens the journal in `dir`, recovering what is there. New datapoints are recorded under
    /// `api_key`; at most `max_live` are kept.
    pub fn open(dir: &Path, api_key: &str, max_live: u64) -> io::Result<(Journal, Recovery)> {
        create_private_dir(dir)?;
        let (cursor, acked) = SlotFile::open(&dir.join(names::CURSOR))?;
        let acked_through = acked
            .and_then(|v| v.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0);
        let mut journal = Journal {
            dir: dir.to_owned(),
            segments: Segments::default(),
            entries: Index::default(),
            live: 0,
            next_seq: acked_through + 1,
            cursor,
            acked_through,
            keys: Vec::new(),
            current_key: 0,
            max_live,
            drop_scan_from: 0,
            spare: None,
            spare_asked_for: 0,
            writer: None,
            unwritten: Unwritten::default(),
            faulted_to: 0,
            stored_directly: false,
            calls_store: false,
            spare_faulted: false,
            written_through: 0,
            next_ordinal: 0,
        };
        let _ = fs::remove_file(dir.join(SPARE)); // unfinished or unused: made anew
        let recovery = journal.recover()?;
        journal.written_through = journal.next_seq - 1;
        journal.current_key = journal.key_index(api_key);
        journal.resume_or_start_segment()?;
        Ok((journal, recovery))
    }

    /// Whether `bytes` more fit in the active segment.
    fn active_fits(&self, bytes: usize) -> bool {
        let active = self.active_segment();
        active.end + bytes <= active.map.bytes().len()
    }

    /// The segment records go to: the newest, as numbers only grow. (Reached without a
    /// search: a lookup by number was a measurable part of every call.)
    fn active_segment(&self) -> &Segment {
        self.segments.last().expect("an active segment").1
    }

    fn active_segment_mut(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("an active segment")
    }

    fn active_number(&self) -> u64 {
        self.segments.last().expect("an active segment").0
    }

    /// Datapoints recorded and not yet delivered or dropped.
    pub fn pending(&self) -> u64 {
        self.live
    }

    /// How many more datapoints fit before a full queue drops the oldest.
    pub fn room(&self) -> u64 {
        self.max_live.saturating_sub(self.live)
    }

    /// The seq of the newest datapoint recorded (0 if none ever).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Whether everything up to `seq` is delivered or dropped.
    pub fn is_done_through(&self, seq: u64) -> bool {
        self.entries
            .iter()
            .find(|e| !e.dropped())
            .is_none_or(|e| e.seq > seq)
    }

    /// Whether a datapoint recorded after `seq` is pending (the first one after it nearly
    /// always is).
    pub fn has_pending_after(&self, seq: u64) -> bool {
        let from = self.entries.partition_point(|e| e.seq <= seq);
        self.entries.iter_from(from).any(|e| !e.dropped())
    }

    /// The oldest pending datapoints, in order, up to `max_count` and `max_bytes` of payload (at
    /// least one), all recorded under the same API key.
    #[cfg(any(test, feature = "internals"))]
    pub fn oldest(&self, max_count: usize, max_bytes: usize) -> Vec<Pending<'_>> {
        self.oldest_after(0, max_count, max_bytes)
    }

    /// As `oldest`, for the pending datapoints recorded after `seq` (a batch in flight).
    pub fn oldest_after(&self, seq: u64, max_count: usize, max_bytes: usize) -> Vec<Pending<'_>> {
        let mut batch: Vec<Pending<'_>> = Vec::new();
        let mut bytes = 0;
        let from = self.entries.partition_point(|e| e.seq <= seq);
        for entry in self.entries.iter_from(from).filter(|e| !e.dropped()) {
            let (payload, key) = self.record_of(entry);
            let api_key = self.keys[key as usize].as_str();
            let len = payload.len() + 1;
            if batch.len() == max_count
                || (!batch.is_empty() && (bytes + len > max_bytes || batch[0].api_key != api_key))
            {
                break;
            }
            bytes += len;
            batch.push(Pending {
                seq: entry.seq,
                api_key,
                payload,
            });
        }
        batch
    }

    /// The datapoint ids of the pending datapoints (see `lane`: recovery skips those).
    pub fn pending_ids(&self) -> HashSet<[u8; 16]> {
        self.entries
            .iter()
            .filter(|entry| !entry.dropped())
            .filter_map(|entry| StoredHead::of(self.record_of(entry).0))
            .map(|head| head.id)
            .collect()
    }

    /// An entry's segment number (none if the segment is gone: only a dropped entry's can be).
    fn segment_of(&self, entry: &Entry) -> Option<u64> {
        self.segments.number_of(entry.ordinal())
    }

    /// The ordinal for a segment opened now.
    fn take_ordinal(&mut self) -> u32 {
        let ordinal = self.next_ordinal;
        self.next_ordinal = ordinal.wrapping_add(1);
        ordinal
    }

    /// A pending entry's payload and API key (its segment lives as long as it is pending). The
    /// length is the record header's, written before the entry was.
    fn record_of(&self, entry: &Entry) -> (&[u8], u16) {
        let number = self.segment_of(entry).expect("a pending entry's segment");
        let offset = entry.offset();
        let segment = self
            .segments
            .get(number)
            .expect("a pending entry's segment");
        let record = match self.unwritten_at(number, offset) {
            Some(at) => &self.unwritten.bytes()[at..],
            None => &segment.map.bytes()[offset..],
        };
        let len = u32::from_le_bytes(record[LEN_AT..LEN_AT + 4].try_into().expect("4 bytes"));
        let payload = &record[HEADER..HEADER + len as usize];
        (payload, segment.key_at(offset))
    }

    /// Marks everything up to `seq` done (delivered or rejected). Returns how many of those were
    /// still pending.
    pub fn acknowledge_through(&mut self, seq: u64) -> u64 {
        let mut done = 0;
        while self.entries.front().is_some_and(|e| e.seq <= seq) {
            let entry = self.entries.pop_front().expect("front");
            if !entry.dropped() {
                done += 1;
                let number = self.segment_of(&entry);
                if let Some(segment) = number.and_then(|n| self.segments.get_mut(n)) {
                    segment.live -= 1;
                }
            }
        }
        self.live -= done;
        if seq > self.acked_through {
            self.acked_through = seq;
            self.cursor.write(&seq.to_le_bytes());
        }
        self.release_done_segments();
        done
    }

    /// The seq of the newest datapoint delivered or dropped by an acknowledgement.
    pub fn acked_through(&self) -> u64 {
        self.acked_through
    }

    /// Gives back, once nothing is pending, the memory the backlog needed (for the worker,
    /// never for a call): the index's chunks, the bulk buffer's pages, and the active segment's pages
    /// from the process's resident set: those before its end (records are only ever appended
    /// after them; delivery read them through the mapping) and those faulted in ahead of calls
    /// beyond `KEEP_AHEAD` (the worker faults them in again once calls get near). File-backed
    /// pages stay resident while mapped, clean or not; releasing them changes no byte.
    pub fn release_memory(&mut self) {
        if self.live > 0 {
            return;
        }
        self.entries.retain(|e| !e.dropped()); // nothing live: only dropped entries are left
        self.entries.release();
        self.unwritten.release();
        let active = self.active_segment();
        let (end, len) = (active.end, active.map.bytes().len());
        let keep_to = (end + KEEP_AHEAD).next_multiple_of(PAGE).min(len);
        active.map.release(0..end);
        active.map.release(keep_to..len);
        self.faulted_to = self.faulted_to.min(keep_to);
        if let Some(spare) = self.spare.as_ref().filter(|_| self.spare_faulted) {
            spare.release(0..spare.bytes().len());
            self.spare_faulted = false;
        }
    }

    /// Deletes every pending datapoint (tracking disabled, data wiped): nothing of it is sent,
    /// and its bytes are gone from the files too. Memory work only (the older segments'
    /// files are unlinked); the worker syncs the result. Returns how many were pending.
    pub fn erase_all(&mut self) -> u64 {
        let erased = self.acknowledge_through(self.last_seq());
        self.entries.clear();
        self.drop_scan_from = 0;
        // The active segment stays; its records (delivered ones too) are zeroed and it starts
        // over with its key record, so the file holds nothing recorded before.
        let active = self.active_segment_mut();
        let end = active.end;
        active.map.bytes_mut()[..end].fill(0);
        active.end = 0;
        active.synced_end = usize::MAX; // zeroes to sync
        active.live = 0;
        active.keys.clear();
        let _ = self.write_key_record(); // fits: a fresh segment always holds its key record
        erased
    }

    /// Deletes segments that hold nothing pending any more.
    fn release_done_segments(&mut self) {
        let Some((active, _)) = self.segments.last() else {
            return;
        };
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|(n, segment)| segment.live == 0 && *n != active)
            .map(|(n, _)| n)
            .collect();
        for number in done {
            self.segments.remove(number);
            let _ = fs::remove_file(segment_path(&self.dir, number));
        }
    }

    /// Makes everything appended so far durable against power loss (see `MappedFile::sync`:
    /// through `later` where the platform allows). Bulk appends are written first; an fsync of
    /// the segment's file covers them as it covers stores through the mapping.
    pub fn sync(&mut self, later: &mut Vec<Flusher>) -> io::Result<()> {
        self.commit()?;
        for segment in self.segments.values_mut() {
            if segment.synced_end != segment.end {
                segment.map.sync(later)?;
                segment.synced_end = segment.end;
            }
        }
        self.cursor.sync(later)
    }

    /// A sync through `later` failed: the next one covers every segment again.
    pub fn forget_synced(&mut self) {
        for segment in self.segments.values_mut() {
            segment.synced_end = usize::MAX;
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Bulk appends are committed by their caller; this is only a safety net.
        let _ = self.commit();
    }
}

/// A second handle on a segment, for `pwrite`.
fn open_writer(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).open(path)
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.{}", names::SEGMENT_EXTENSION))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_dir;

    fn open(dir: &Path) -> Journal {
        Journal::open(dir, "key-1", 1000).unwrap().0
    }

    fn payloads(journal: &Journal) -> Vec<String> {
        journal
            .oldest(usize::MAX, usize::MAX)
            .iter()
            .map(|p| String::from_utf8(p.payload.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn appended_records_survive_reopening_in_order() {
        let dir = temp_dir("journal-reopen");
        let mut j = open(&dir);
        for i in 0..5 {
            j.append(Kind::CustomEvent, format!("{{\"i\":{i}}}").as_bytes())
                .unwrap();
        }
        drop(j);
        let j = open(&dir);
        assert_eq!(j.pending(), 5);
        assert_eq!(payloads(&j)[4], "{\"i\":4}");
    }

    #[test]
    fn erased_datapoints_leave_no_bytes_behind_and_numbering_goes_on() {
        let dir = temp_dir("journal-erase");
        let mut j = open(&dir);
        let mut last = 0;
        // Enough to fill several segments, so older files are deleted and the active zeroed.
        let secret = format!("{{\"secret\":\"{}\"}}", "s".repeat(2000));
        while count_segments(&dir) < 3 {
            last = j.append(Kind::CustomEvent, secret.as_bytes()).unwrap().0;
        }
        let pending = j.pending();
        assert!(pending > 0);
        assert_eq!(j.erase_all(), pending);
        assert_eq!(j.pending(), 0);
        assert!(j.oldest(10, usize::MAX).is_empty());
        let (seq, _) = j.append(Kind::CustomEvent, b"{\"after\":1}").unwrap();
        assert_eq!(seq, last + 1);
        drop(j);
        let on_disk: Vec<u8> = fs::read_dir(&dir)
            .unwrap()
            .flat_map(|e| fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert!(
            !on_disk.windows(6).any(|w| w == b"secret"),
            "erased bytes remain on disk"
        );
        let j = open(&dir);
        assert_eq!(payloads(&j), ["{\"after\":1}"]);
    }

    #[test]
    fn acknowledged_records_do_not_come_back() {
        let dir = temp_dir("journal-ack");
        let mut j = open(&dir);
        for _ in 0..10 {
            j.append(Kind::CustomEvent, b"{}").unwrap();
        }
        let third = j.oldest(3, usize::MAX)[2].seq;
        assert_eq!(j.acknowledge_through(third), 3);
        assert_eq!(j.pending(), 7);
        drop(j);
        let j = open(&dir);
        assert_eq!(j.pending(), 7);
        assert_eq!(j.oldest(1, usize::MAX)[0].seq, third + 1);
    }

    #[test]
    fn a_batch_after_one_in_flight_starts_past_it() {
        let dir = temp_dir("journal-after");
        let mut j = open(&dir);
        for _ in 0..6 {
            j.append(Kind::CustomEvent, b"{}").unwrap();
        }
        let first = j.oldest(4, usize::MAX);
        let in_flight = first[3].seq;
        let next: Vec<u64> = j
            .oldest_after(in_flight, 4, usize::MAX)
            .iter()
            .map(|p| p.seq)
            .collect();
        assert_eq!(next, [in_flight + 1, in_flight + 2]);
        assert!(j.has_pending_after(in_flight));
        assert!(!j.has_pending_after(in_flight + 2));
        j.acknowledge_through(in_flight);
        assert_eq!(j.oldest(4, usize::MAX)[0].seq, in_flight + 1);
    }

    #[test]
    fn batches_respect_count_bytes_and_api_key() {
        let dir = temp_dir("journal-batch");
        let mut j = open(&dir);
        for _ in 0..10 {
            j.append(Kind::CustomEvent, &[b'x'; 99]).unwrap();
        }
        assert_eq!(j.oldest(4, usize::MAX).len(), 4);
        assert_eq!(j.oldest(100, 500).len(), 5);
        assert_eq!(j.oldest(100, 1).len(), 1, "always at least one");
        drop(j);
        let (mut j, _) = Journal::open(&dir, "key-2", 1000).unwrap();
        j.append(Kind::CustomEvent, b"{}").unwrap();
        let batch = j.oldest(100, usize::MAX);
        assert_eq!(batch.len(), 10);
        assert!(batch.iter().all(|p| p.api_key == "key-1"));
        j.acknowledge_through(batch[9].seq);
        assert_eq!(j.oldest(100, usize::MAX)[0].api_key, "key-2");
    }

    #[test]
    fn full_queue_drops_oldest_custom_events_before_session_datapoints() {
        let dir = temp_dir("journal-full");
        let (mut j, _) = Journal::open(&dir, "k", 3).unwrap();
        j.append(Kind::SessionStart, b"ss").unwrap();
        j.append(Kind::CustomEvent, b"c1").unwrap();
        j.append(Kind::CustomEvent, b"c2").unwrap();
        assert_eq!(j.append(Kind::SessionEnd, b"se").unwrap().1, 1);
        assert_eq!(payloads(&j), ["ss", "c2", "se"]);
        assert_eq!(j.append(Kind::SessionStart, b"s2").unwrap().1, 1);
        assert_eq!(payloads(&j), ["ss", "se", "s2"]);
        // Only session datapoints left: the oldest of them goes.
        j.append(Kind::SessionEnd, b"e2").unwrap();
        assert_eq!(payloads(&j), ["se", "s2", "e2"]);
        drop(j);
        let (j, _) = Journal::open(&dir, "k", 3).unwrap();
        assert_eq!(payloads(&j), ["se", "s2", "e2"], "drops survive a restart");
    }

    #[test]
    fn a_full_queue_that_is_never_delivered_keeps_the_disk_bounded() {
        let dir = temp_dir("journal-bounded");
        let (mut j, _) = Journal::open(&dir, "k", 100).unwrap();
        j.append(Kind::SessionStart, b"ss").unwrap();
        for _ in 0..20_000 {
            j.append(Kind::CustomEvent, &[b'x'; 500]).unwrap();
        }
        assert_eq!(j.pending(), 100);
        assert!(j.entries.len() < 400, "the index forgets dropped entries");
        let bytes: u64 = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(bytes <= 4 * SEGMENT_LEN as u64, "{bytes} bytes on disk");
        drop(j);
        let (j, _) = Journal::open(&dir, "k", 100).unwrap();
        assert_eq!(j.pending(), 100);
        assert_eq!(payloads(&j)[0], "ss", "the session datapoint is kept");
    }

    #[test]
    fn dropped_datapoints_at_the_front_leave_the_index_at_once() {
        let dir = temp_dir("journal-forget-front");
        let (mut j, _) = Journal::open(&dir, "k", 100).unwrap();
        for _ in 0..1_000 {
            j.append(Kind::CustomEvent, b"x").unwrap();
        }
        assert_eq!(j.pending(), 100);
        assert_eq!(j.entries.len(), 100, "only the live entries are kept");
        assert!(j.entries.iter().all(|e| !e.dropped()));
    }

    #[test]
    fn the_index_gives_its_memory_back_once_a_backlog_drains() {
        let dir = temp_dir("journal-shrink");
        let (mut j, _) = Journal::open(&dir, "k", 1_000_000).unwrap();
        for _ in 0..100_000 {
            j.append_bulk(Kind::CustomEvent, b"x").unwrap();
        }
        j.commit().unwrap();
        let peak = j.entries.capacity();
        assert!(peak >= 100_000);
        let last = j.last_seq();
        // Delivered batch by batch, as the worker acknowledges them.
        for through in (500..=last).step_by(500) {
            j.acknowledge_through(through);
        }
        assert_eq!(j.pending(), 0);
        // Delivered chunks are unmapped as they empty: one is kept in use and one as the spare.
        assert!(
            j.entries.capacity() <= 2 * index::CHUNK,
            "{} entries' room kept of {peak}",
            j.entries.capacity()
        );
    }

    #[test]
    fn a_drained_journal_gives_its_memory_back_and_records_on() {
        let dir = temp_dir("journal-release");
        let (mut j, _) = Journal::open(&dir, "k", 1_000_000).unwrap();
        for _ in 0..20_000 {
            j.append_bulk(Kind::CustomEvent, &[b'x'; 40]).unwrap();
        }
        j.commit().unwrap();
        j.append(Kind::SessionStart, b"ss").unwrap();
        let ahead = j.ahead();
        if !ahead.fault_in() {
            j.touch(&ahead);
        }
        assert!(j.faulted_to > j.active_segment().end + KEEP_AHEAD);
        j.release_memory();
        assert!(j.entries.capacity() > 0, "nothing released while pending");
        j.acknowledge_through(j.last_seq());
        j.release_memory();
        assert_eq!(j.entries.capacity(), 0, "the index's chunks are unmapped");
        assert!(!j.unwritten.holds_memory());
        let end = j.active_segment().end;
        assert!(j.faulted_to <= (end + KEEP_AHEAD).next_multiple_of(PAGE));
        // What is recorded next is kept as before.
        j.append(Kind::SessionEnd, b"se").unwrap();
        j.append_bulk(Kind::CustomEvent, b"after").unwrap();
        j.commit().unwrap();
        drop(j);
        assert_eq!(payloads(&open(&dir)), ["se", "after"]);
    }

    fn count_segments(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let path = e.as_ref().unwrap().path();
                path.extension().is_some_and(|x| x == "seg")
            })
            .count()
    }

    #[test]
    fn reopening_resumes_the_newest_segment_under_the_new_key() {
        let dir = temp_dir("journal-resume");
        for (run, key) in ["key-1", "key-2", "key-1"].into_iter().enumerate() {
            let (mut j, _) = Journal::open(&dir, key, 1000).unwrap();
            j.append(Kind::CustomEvent, format!("run-{run}").as_bytes())
                .unwrap();
        }
        assert_eq!(count_segments(&dir), 1, "no new file per start");
        let (mut j, _) = Journal::open(&dir, "key-3", 1000).unwrap();
        assert_eq!(j.pending(), 3);
        for (payload, key) in [("run-0", "key-1"), ("run-1", "key-2"), ("run-2", "key-1")] {
            let batch = j.oldest(100, usize::MAX);
            assert_eq!((batch.len(), batch[0].payload), (1, payload.as_bytes()));
            assert_eq!(
                batch[0].api_key, key,
                "each under the key it was recorded with"
            );
            let seq = batch[0].seq;
            j.acknowledge_through(seq);
        }
    }

    #[test]
    fn a_nearly_full_newest_segment_is_not_resumed() {
        let dir = temp_dir("journal-no-resume");
        let mut j = open(&dir);
        let room = SEGMENT_LEN - j.active_segment().end;
        j.append(Kind::CustomEvent, &vec![b'x'; room - RESUME_ROOM])
            .unwrap();
        drop(j);
        let mut j = open(&dir);
        assert_eq!(count_segments(&dir), 2);
        j.append(Kind::CustomEvent, b"next").unwrap();
        assert_eq!(j.pending(), 2);
    }

    #[test]
    fn what_a_torn_write_left_is_cleared_before_resuming() {
        let dir = temp_dir("journal-debris");
        let mut j = open(&dir);
        j.append(Kind::CustomEvent, b"before").unwrap();
        let end = j.active_segment().end;
        drop(j);
        // A record killed mid-write: payload and checksum written, the length not yet.
        let path = segment_path(&dir, 1);
        let mut bytes = fs::read(&path).unwrap();
        bytes[end + 4..end + HEADER + 300].fill(0xab);
        fs::write(&path, &bytes).unwrap();
        let (mut j, recovery) = Journal::open(&dir, "key-1", 1000).unwrap();
        assert!(recovery.corrupt_bytes_skipped > 0);
        j.append(Kind::CustomEvent, b"after").unwrap();
        drop(j);
        let (j, recovery) = Journal::open(&dir, "key-1", 1000).unwrap();
        assert_eq!(
            recovery.corrupt_bytes_skipped, 0,
            "nothing left of the torn write"
        );
        assert_eq!(payloads(&j), ["before", "after"]);
    }

    /// Writes `n` datapoints of 40 KB (about 25 a segment), numbered in their first 5 bytes.
    fn write_numbered(dir: &Path, n: usize) {
        let (mut j, _) = Journal::open(dir, "k", 1_000_000).unwrap();
        for i in 0..n {
            let payload = format!("{i:05}{}", "x".repeat(40_000));
            j.append(Kind::CustomEvent, payload.as_bytes()).unwrap();
        }
    }

    /// The numbers `write_numbered` gave the pending datapoints, in order, against `0..n`.
    fn numbered(j: &Journal, n: usize) -> (Vec<String>, Vec<String>) {
        let firsts = payloads(j).iter().map(|p| p[..5].to_owned()).collect();
        (firsts, (0..n).map(|i| format!("{i:05}")).collect())
    }

    #[test]
    fn segments_out_of_order_are_recovered_in_seq_order_and_counted_each() {
        let dir = temp_dir("journal-swapped");
        write_numbered(&dir, 60);
        assert!(count_segments(&dir) >= 3);
        // The first two segments trade names: recovery meets the newer seqs first.
        let (first, second) = (segment_path(&dir, 1), segment_path(&dir, 2));
        let aside = dir.join("aside");
        fs::rename(&first, &aside).unwrap();
        fs::rename(&second, &first).unwrap();
        fs::rename(&aside, &second).unwrap();
        let (mut j, _) = Journal::open(&dir, "k", 1_000_000).unwrap();
        assert_eq!(j.pending(), 60);
        let seqs: Vec<u64> = j
            .oldest(usize::MAX, usize::MAX)
            .iter()
            .map(|p| p.seq)
            .collect();
        assert!(seqs.is_sorted(), "{seqs:?}");
        let (firsts, expected) = numbered(&j, 60);
        assert_eq!(firsts, expected);
        // Each segment's count is right: acknowledging half deletes only segments left empty.
        j.acknowledge_through(seqs[29]);
        assert_eq!(j.pending(), 30);
        j.acknowledge_through(j.last_seq());
        assert_eq!(count_segments(&dir), 1);
        assert_eq!(j.pending(), 0);
    }

    #[test]
    fn a_segment_named_far_past_the_others_is_recovered_with_them() {
        let dir = temp_dir("journal-far-name");
        write_numbered(&dir, 30);
        assert_eq!(count_segments(&dir), 2);
        // A damaged file name: the newer segment now sorts 2^33 past the older one.
        fs::rename(segment_path(&dir, 2), segment_path(&dir, 1 << 33)).unwrap();
        let (mut j, _) = Journal::open(&dir, "k", 1_000_000).unwrap();
        assert_eq!(j.pending(), 30);
        let (firsts, expected) = numbered(&j, 30);
        assert_eq!(firsts, expected);
        j.append(Kind::CustomEvent, b"after").unwrap();
        j.acknowledge_through(j.last_seq() - 1);
        assert_eq!(payloads(&j), ["after"]);
        assert_eq!(
            count_segments(&dir),
            1,
            "the older segment is deleted once delivered"
        );
    }

    #[test]
    fn segments_roll_over_and_are_deleted_once_delivered() {
        let dir = temp_dir("journal-roll");
        let (mut j, _) = Journal::open(&dir, "k", 1_000_000).unwrap();
        let payload = vec![b'x'; 40_000];
        for _ in 0..60 {
            j.append(Kind::CustomEvent, &payload).unwrap();
        }
        assert!(count_segments(&dir) >= 3);
        j.acknowledge_through(j.last_seq());
        assert_eq!(count_segments(&dir), 1);
        assert_eq!(j.pending(), 0);
        drop(j);
        assert_eq!(open(&dir).pending(), 0);
    }

    #[test]
    fn a_torn_tail_is_dropped_and_the_rest_kept_at_every_offset() {
        let dir = temp_dir("journal-torn");
        let mut j = open(&dir);
        for i in 0..4 {
            j.append(Kind::CustomEvent, format!("record-{i}").as_bytes())
                .unwrap();
        }
        let last = j.oldest(4, usize::MAX)[3].payload.len();
        drop(j);
        let path = segment_path(&dir.clone(), 1);
        let original = fs::read(&path).unwrap();
        let data_end = original.iter().rposition(|&b| b != 0).unwrap() + 1;
        let last_start = data_end - HEADER - last;
        for cut in last_start..data_end {
            let mut torn = original.clone();
            torn[cut..].fill(0);
            fs::write(&path, &torn).unwrap();
            let j = open(&dir);
            assert_eq!(j.pending(), 3, "cut at {cut}");
        }
    }

    #[test]
    fn a_corrupted_record_is_skipped_and_later_ones_kept() {
        let dir = temp_dir("journal-corrupt");
        let mut j = open(&dir);
        for i in 0..3 {
            j.append(Kind::CustomEvent, format!("record-{i}").as_bytes())
                .unwrap();
        }
        let second = j.entries.get(1).unwrap().offset();
        drop(j);
        let path = segment_path(&dir, 1);
        let mut raw = fs::read(&path).unwrap();
        raw[second + HEADER + 2] ^= 0x40;
        fs::write(&path, &raw).unwrap();
        let j = open(&dir);
        assert_eq!(payloads(&j), ["record-0", "record-2"]);
    }
}
