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

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::datapoint::StoredHead;
use super::format::{names, record::HEADER_LEN as HEADER, segment};
use super::mapping::{Flusher, MappedFile};
use super::record::{self, record_len, scan};
use super::slot_file::SlotFile;
use crate::platform::{self, create_private_dir, write_all_at, PAGE};

pub use super::record::{Kind, Recovery};

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

/// A pending datapoint: where its bytes are.
#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: u64,
    segment: u64,
    offset: u32,
    len: u32,
    key: u16,
    kind: Kind,
    dropped: bool,
}

struct Segment {
    map: MappedFile,
    /// Datapoints in this segment still pending; at 0 (and not active) the file is deleted.
    live: u64,
    /// Where the next record goes.
    end: usize,
    /// `end` at the last sync: what is already durable against power loss.
    synced_end: usize,
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
    segments: BTreeMap<u64, Segment>,
    entries: VecDeque<Entry>,
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
    unwritten: Vec<u8>,
    /// The active segment's pages before this offset are faulted in (see `prefault_ahead`).
    faulted_to: usize,
    /// A call stored a record since the last `prefault_ahead`.
    stored_directly: bool,
    /// The seq of the newest datapoint in the files (not in `unwritten`).
    written_through: u64,
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
            segments: BTreeMap::new(),
            entries: VecDeque::new(),
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
            unwritten: Vec::new(),
            faulted_to: 0,
            stored_directly: false,
            written_through: 0,
        };
        let _ = fs::remove_file(dir.join(SPARE)); // unfinished or unused: made anew
        let recovery = journal.recover()?;
        journal.written_through = journal.next_seq - 1;
        journal.current_key = journal.key_index(api_key);
        journal.resume_or_start_segment()?;
        Ok((journal, recovery))
    }

    fn recover(&mut self) -> io::Result<Recovery> {
        let mut numbers: Vec<u64> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (number, extension) = name.split_once('.')?;
                (extension == names::SEGMENT_EXTENSION).then(|| number.parse().ok())?
            })
            .collect();
        numbers.sort_unstable();
        let mut recovery = Recovery::default();
        for number in numbers {
            let path = segment_path(&self.dir, number);
            if fs::metadata(&path)?.len() < HEADER as u64 {
                // Killed while creating it: nothing was ever written there.
                fs::remove_file(&path)?;
                continue;
            }
            let map = MappedFile::open(&path, 0)?;
            let mut key = None;
            let end = scan(map.bytes(), &mut recovery, |record| match record.kind {
                Kind::ApiKey => {
                    key = std::str::from_utf8(record.payload)
                        .ok()
                        .map(|k| self.key_index(k))
                }
                kind => {
                    self.next_seq = self.next_seq.max(record.seq + 1);
                    if record.seq > self.acked_through && !record.dropped {
                        self.entries.push_back(Entry {
                            seq: record.seq,
                            segment: number,
                            offset: record.offset as u32,
                            len: record.payload.len() as u32,
                            key: key.unwrap_or(0),
                            kind,
                            dropped: false,
                        });
                    }
                }
            });
            self.segments.insert(
                number,
                Segment {
                    map,
                    live: 0,
                    end,
                    synced_end: end,
                },
            );
        }
        // Crash recovery may meet records out of order only if segments were; keep seq order.
        self.entries.make_contiguous().sort_by_key(|e| e.seq);
        for entry in &self.entries {
            if let Some(segment) = self.segments.get_mut(&entry.segment) {
                segment.live += 1;
            }
        }
        self.live = self.entries.len() as u64;
        self.release_done_segments();
        Ok(recovery)
    }

    fn key_index(&mut self, key: &str) -> u16 {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i as u16,
            None => {
                self.keys.push(key.to_owned());
                (self.keys.len() - 1) as u16
            }
        }
    }

    /// Continues in the newest segment if it has room, or starts a new one. Not a new file at
    /// every start: an app launched often while offline would leave a mostly empty megabyte
    /// per launch, and with the disk full it could not start at all.
    fn resume_or_start_segment(&mut self) -> io::Result<()> {
        let key = &self.keys[self.current_key as usize];
        let key_record = record_len(key.len());
        if self.segments.is_empty() || !self.active_fits(key_record + RESUME_ROOM) {
            return self.start_segment();
        }
        self.writer = Some(open_writer(&segment_path(&self.dir, self.active_number()))?);
        self.faulted_to = 0;
        // What a kill left after the last intact record (a torn one) is cleared, so that the
        // free part is all zero as in a fresh segment and new records read back cleanly.
        let active = self.active_segment_mut();
        let end = active.end;
        let free = &mut active.map.bytes_mut()[end..];
        const CHUNK: usize = 256;
        let dirty = free
            .chunks(CHUNK)
            .rposition(|chunk| chunk.iter().fold(0, |any, &b| any | b) != 0);
        if let Some(last) = dirty {
            let debris = ((last + 1) * CHUNK).min(free.len());
            free[..debris].fill(0);
        }
        self.write_key_record()
    }

    /// Starts a fresh segment, opened by the current API key record.
    fn start_segment(&mut self) -> io::Result<()> {
        self.commit()?;
        let number = self.segments.keys().next_back().map_or(1, |n| n + 1);
        let path = segment_path(&self.dir, number);
        let spare = self
            .spare
            .take()
            .filter(|_| fs::rename(self.dir.join(SPARE), &path).is_ok());
        let map = match spare {
            Some(map) => map,
            None => MappedFile::open(&path, SEGMENT_LEN)?,
        };
        let writer = open_writer(&path)?;
        self.writer = Some(writer);
        self.faulted_to = 0;
        self.segments.insert(
            number,
            Segment {
                map,
                live: 0,
                end: 0,
                synced_end: 0,
            },
        );
        self.write_key_record()
    }

    /// The record saying which API key the datapoints after it were recorded under.
    fn write_key_record(&mut self) -> io::Result<()> {
        let key = self.keys[self.current_key as usize].clone();
        self.write_record(Kind::ApiKey, 0, key.len(), |out| {
            out.copy_from_slice(key.as_bytes())
        })?;
        Ok(())
    }

    /// Whether `bytes` more fit in the active segment.
    fn active_fits(&self, bytes: usize) -> bool {
        let active = self.active_segment();
        active.end + bytes <= active.map.bytes().len()
    }

    /// The segment records go to: the newest, as numbers only grow. (Reached without a
    /// search: a lookup by number was a measurable part of every call.)
    fn active_segment(&self) -> &Segment {
        self.segments.last_key_value().expect("an active segment").1
    }

    fn active_segment_mut(&mut self) -> &mut Segment {
        self.segments
            .last_entry()
            .expect("an active segment")
            .into_mut()
    }

    fn active_number(&self) -> u64 {
        *self.segments.last_key_value().expect("an active segment").0
    }

    /// Whether the worker should prepare the next segment now: the active one is half full and
    /// no spare was asked for it yet. Asking marks it asked.
    pub fn ask_for_spare(&mut self) -> Option<PathBuf> {
        if !self.wants_spare() {
            return None;
        }
        self.spare_asked_for = self.active_number();
        Some(self.dir.join(SPARE))
    }

    /// Cheap check for callers: would `ask_for_spare` ask?
    pub fn wants_spare(&self) -> bool {
        let active = self.active_segment();
        self.spare.is_none()
            && self.spare_asked_for != self.active_number()
            && active.end * 2 >= active.map.bytes().len()
    }

    /// Creates the spare segment at `path` (from `ask_for_spare`); call without the lock.
    /// Its blocks are reserved (a full disk fails here) but its pages are not faulted in: bulk
    /// appends fill them by `pwrite`, which costs a fraction of faulting in a megabyte.
    pub fn prepare_spare(path: &Path) -> io::Result<MappedFile> {
        let _ = fs::remove_file(path);
        MappedFile::open(path, SEGMENT_LEN)
    }

    /// Keeps the spare segment made by `prepare_spare` for the next roll-over.
    pub fn install_spare(&mut self, spare: MappedFile) {
        self.spare = Some(spare);
    }

    /// Whether the worker should fault in more of the active segment for calls' records: calls
    /// stored records, and fewer than `AHEAD_LOW` bytes past the end are faulted in.
    pub fn wants_prefault(&self) -> bool {
        let active = self.active_segment();
        self.stored_directly
            && self.faulted_to < active.map.bytes().len()
            && active.end + AHEAD_LOW > self.faulted_to
    }

    /// The part of the active segment to fault in next: up to `AHEAD_HIGH` bytes past its end
    /// (for the worker: a call that stores into a page not faulted in waits several µs). The
    /// worker faults it in with the lock released (`Ahead::fault_in`), or, on kernels without
    /// `MADV_POPULATE_WRITE`, with `touch` under the lock.
    pub fn ahead(&mut self) -> Ahead {
        let (from, to) = self.ahead_range();
        let start = self.active_segment_mut().map.bytes_mut()[from..].as_mut_ptr();
        Ahead {
            start,
            len: to - from,
        }
    }

    /// Faults in what `ahead` returned by touching each page, under the lock (kernels without
    /// `MADV_POPULATE_WRITE`): every store into the journal's mappings is made under it. Does
    /// nothing if another segment became the active one meanwhile.
    pub fn touch(&mut self, ahead: &Ahead) {
        let bytes = self.active_segment_mut().map.bytes_mut();
        let base = bytes.as_mut_ptr() as usize;
        let start = ahead.start as usize;
        if start >= base && start + ahead.len <= base + bytes.len() {
            let from = start - base;
            platform::prefault(&mut bytes[from..from + ahead.len]);
        }
    }

    /// The range `ahead` covers, from now on counted as faulted in.
    fn ahead_range(&mut self) -> (usize, usize) {
        self.stored_directly = false;
        let active = self.active_segment();
        let len = active.map.bytes().len();
        let from = self.faulted_to.max(active.end / PAGE * PAGE).min(len);
        let to = (active.end + AHEAD_HIGH)
            .next_multiple_of(PAGE)
            .clamp(from, len);
        self.faulted_to = self.faulted_to.max(to);
        (from, to)
    }

    /// Makes sure records of `payload_bytes` in all (at most three of them) fit in the active
    /// segment, starting a new one if not: after `Ok`, those appends cannot fail.
    pub fn make_room(&mut self, payload_bytes: usize) -> io::Result<()> {
        if self.active_fits(payload_bytes + 3 * (HEADER + ALIGN)) {
            return Ok(());
        }
        self.start_segment()
    }

    /// Appends a datapoint. Returns its seq and the number of datapoints dropped to make room.
    /// (The engine appends with `append_with` and `append_bulk`.)
    #[cfg(any(test, feature = "internals"))]
    pub fn append(&mut self, kind: Kind, payload: &[u8]) -> io::Result<(u64, u64)> {
        self.append_with(kind, payload.len(), |out| out.copy_from_slice(payload))
    }

    /// Appends a datapoint in bulk: it is written to the file by the next `commit` (or once
    /// enough is gathered), and is not kill-safe before. Returns its seq and the number of
    /// datapoints dropped to make room.
    pub fn append_bulk(&mut self, kind: Kind, payload: &[u8]) -> io::Result<(u64, u64)> {
        self.append_inner(kind, payload.len(), true, |out| {
            out.copy_from_slice(payload)
        })
    }

    /// Writes what bulk appends gathered to the active segment's file: from then on it
    /// survives the process being killed. If that fails, those appends are undone.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        let at = self.active_segment().end - self.unwritten.len();
        let written = match &self.writer {
            Some(writer) => write_all_at(writer, &self.unwritten, at as u64),
            None => Err(io::Error::other("no journal segment to write to")),
        };
        if let Err(error) = written {
            self.undo_unwritten();
            return Err(error);
        }
        self.unwritten.clear();
        self.written_through = self.next_seq - 1;
        Ok(())
    }

    /// The seq of the newest datapoint written to the files: bulk appends after it were not
    /// committed (or were undone).
    pub fn written_through(&self) -> u64 {
        self.written_through
    }

    /// Forgets the bulk appends not written yet (their writing failed).
    fn undo_unwritten(&mut self) {
        let number = self.active_number();
        let unwritten = self.unwritten.len();
        let active = self.active_segment_mut();
        let written_end = active.end - unwritten;
        active.end = written_end;
        self.unwritten.clear();
        while let Some(entry) = self.entries.back().copied() {
            if entry.segment != number || (entry.offset as usize) < written_end {
                break;
            }
            self.entries.pop_back();
            if !entry.dropped {
                self.live -= 1;
                self.active_segment_mut().live -= 1;
            }
        }
    }

    /// Where a record at `offset` of `segment` is not in the file yet: its place in
    /// `unwritten`.
    fn unwritten_at(&self, segment: u64, offset: usize) -> Option<usize> {
        let active = self.active_segment();
        let written_end = active.end - self.unwritten.len();
        (segment == self.active_number() && offset >= written_end).then(|| offset - written_end)
    }

    /// Appends a datapoint of `len` bytes that `fill` writes straight into the journal (no
    /// intermediate copy). Returns its seq and the number of datapoints dropped to make room.
    pub fn append_with(
        &mut self,
        kind: Kind,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<(u64, u64)> {
        // Stored after what bulk appends gathered, which must be in the file first.
        self.commit()?;
        self.append_inner(kind, len, false, fill)
    }

    fn append_inner(
        &mut self,
        kind: Kind,
        len: usize,
        bulk: bool,
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<(u64, u64)> {
        debug_assert!(kind.is_datapoint());
        let mut dropped = 0;
        while self.live >= self.max_live && self.drop_oldest()? {
            dropped += 1;
        }
        let seq = self.next_seq;
        let (segment, offset) = if bulk {
            self.write_unwritten(kind, seq, len, fill)?
        } else {
            let written = self.write_record(kind, seq, len, fill)?;
            self.written_through = seq;
            // A session datapoint of a call (not a segment's key record, nor a custom event
            // that found its lane full: faulting in ahead for those kept the worker from
            // emptying the lanes, and more lanes filled).
            self.stored_directly |= kind != Kind::CustomEvent;
            written
        };
        self.next_seq += 1;
        self.entries.push_back(Entry {
            seq,
            segment,
            offset: offset as u32,
            len: len as u32,
            key: self.current_key,
            kind,
            dropped: false,
        });
        self.live += 1;
        self.active_segment_mut().live += 1;
        if dropped > 0 {
            self.forget_dropped();
        }
        if self.unwritten.len() >= COMMIT_BYTES {
            self.commit()?;
        }
        Ok((seq, dropped))
    }

    /// `write_record` for bulk appends: into `unwritten`, at the end of the active segment.
    fn write_unwritten(
        &mut self,
        kind: Kind,
        seq: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<(u64, usize)> {
        if !self.active_fits(record_len(len)) {
            self.start_segment()?;
        }
        let start = self.unwritten.len();
        self.unwritten.resize(start + record_len(len), 0);
        let used = record::put_record(&mut self.unwritten[start..], kind, seq, len, fill);
        let segment = self.active_segment_mut();
        let offset = segment.end;
        segment.end += used;
        Ok((self.active_number(), offset))
    }

    fn write_record(
        &mut self,
        kind: Kind,
        seq: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<(u64, usize)> {
        debug_assert!(self.unwritten.is_empty());
        if !self.active_fits(record_len(len)) {
            if kind == Kind::ApiKey {
                return Err(io::Error::other("journal segment too small"));
            }
            self.start_segment()?;
        }
        let segment = self.active_segment_mut();
        let offset = segment.end;
        let bytes = &mut segment.map.bytes_mut()[offset..];
        segment.end += record::put_record(bytes, kind, seq, len, fill);
        Ok((self.active_number(), offset))
    }

    /// Drops the oldest pending custom event, or failing that the oldest datapoint.
    fn drop_oldest(&mut self) -> io::Result<bool> {
        let from = self
            .entries
            .partition_point(|e| e.seq < self.drop_scan_from);
        let victim = self
            .entries
            .iter()
            .skip(from)
            .position(|e| !e.dropped && e.kind == Kind::CustomEvent)
            .map(|i| i + from)
            .or_else(|| self.entries.iter().position(|e| !e.dropped));
        let Some(index) = victim else {
            return Ok(false);
        };
        let seq = self.entries[index].seq;
        if self.entries[index].kind == Kind::CustomEvent {
            self.drop_scan_from = seq + 1;
        }
        let entry = self.entries[index];
        let unwritten = self.unwritten_at(entry.segment, entry.offset as usize);
        if let Some(segment) = self.segments.get_mut(&entry.segment) {
            match unwritten {
                Some(at) => record::mark_dropped(&mut self.unwritten, at),
                None => record::mark_dropped(segment.map.bytes_mut(), entry.offset as usize),
            }
            segment.live -= 1;
        }
        self.entries[index].dropped = true;
        self.live -= 1;
        Ok(true)
    }

    /// Keeps a full queue's memory and disk bounded: dropped entries leave the index once they
    /// outnumber the live ones, and segments left with nothing live are deleted.
    fn forget_dropped(&mut self) {
        if (self.entries.len() as u64) > 2 * self.live + 64 {
            self.entries.retain(|e| !e.dropped);
        }
        self.release_done_segments();
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
            .find(|e| !e.dropped)
            .is_none_or(|e| e.seq > seq)
    }

    /// The oldest pending datapoints, in order, up to `max_count` and `max_bytes` of payload (at
    /// least one), all recorded under the same API key.
    pub fn oldest(&self, max_count: usize, max_bytes: usize) -> Vec<Pending<'_>> {
        let mut batch: Vec<Pending<'_>> = Vec::new();
        let mut bytes = 0;
        for entry in self.entries.iter().filter(|e| !e.dropped) {
            let api_key = self.keys[entry.key as usize].as_str();
            let len = entry.len as usize + 1;
            if batch.len() == max_count
                || (!batch.is_empty() && (bytes + len > max_bytes || batch[0].api_key != api_key))
            {
                break;
            }
            bytes += len;
            batch.push(Pending {
                seq: entry.seq,
                api_key,
                payload: self.payload(entry),
            });
        }
        batch
    }

    /// The datapoint ids of the pending datapoints (see `lane`: recovery skips those).
    pub fn pending_ids(&self) -> HashSet<[u8; 16]> {
        self.entries
            .iter()
            .filter(|entry| !entry.dropped)
            .filter_map(|entry| StoredHead::of(self.payload(entry)))
            .map(|head| head.id)
            .collect()
    }

    /// A pending entry's payload (its segment lives as long as it is pending).
    fn payload(&self, entry: &Entry) -> &[u8] {
        let len = entry.len as usize;
        if let Some(at) = self.unwritten_at(entry.segment, entry.offset as usize) {
            return &self.unwritten[at + HEADER..at + HEADER + len];
        }
        let start = entry.offset as usize + HEADER;
        &self.segments[&entry.segment].map.bytes()[start..start + len]
    }

    /// Marks everything up to `seq` done (delivered or rejected). Returns how many of those were
    /// still pending.
    pub fn acknowledge_through(&mut self, seq: u64) -> u64 {
        let mut done = 0;
        while self.entries.front().is_some_and(|e| e.seq <= seq) {
            let entry = self.entries.pop_front().expect("front");
            if !entry.dropped {
                done += 1;
                if let Some(segment) = self.segments.get_mut(&entry.segment) {
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
        let _ = self.write_key_record(); // fits: a fresh segment always holds its key record
        erased
    }

    /// Deletes segments that hold nothing pending any more.
    fn release_done_segments(&mut self) {
        let Some(active) = self.segments.keys().next_back().copied() else {
            return;
        };
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|(&n, segment)| segment.live == 0 && n != active)
            .map(|(&n, _)| n)
            .collect();
        for number in done {
            self.segments.remove(&number);
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

/// Pages of the active segment to fault in (`Journal::ahead`).
pub struct Ahead {
    start: *mut u8,
    len: usize,
}

// SAFETY: only an address range: `fault_in` passes it to madvise and writes nothing through it.
unsafe impl Send for Ahead {}

impl Ahead {
    /// Faults the pages in for writing, without writing to them, so it needs no lock: calls may
    /// store into them meanwhile. Should the segment be unmapped meanwhile (delivered and
    /// deleted), the kernel refuses or faults in whatever is mapped there now: nothing is
    /// written either way. Returns false where the kernel cannot (before Linux 5.14).
    pub fn fault_in(&self) -> bool {
        if self.len == 0 {
            return true;
        }
        // SAFETY: the range was taken from the active segment's mapping (`Journal::ahead`);
        // if that was unmapped since, the kernel refuses it, and populating writes nothing.
        let populated = unsafe { platform::populate_write(self.start, self.len) };
        !matches!(populated, Err(e) if e.kind() == std::io::ErrorKind::Unsupported)
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
        let second = j.entries[1].offset as usize;
        drop(j);
        let path = segment_path(&dir, 1);
        let mut raw = fs::read(&path).unwrap();
        raw[second + HEADER + 2] ^= 0x40;
        fs::write(&path, &raw).unwrap();
        let j = open(&dir);
        assert_eq!(payloads(&j), ["record-0", "record-2"]);
    }
}
