//! Appending: a call's records straight into the mapping, bulk records gathered and written
//! with one `pwrite` per batch (`commit`), and a full queue dropping its oldest datapoints.

use super::*;

impl Journal {
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
            Some(writer) => write_all_at(writer, self.unwritten.bytes(), at as u64),
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
    pub(super) fn undo_unwritten(&mut self) {
        let unwritten = self.unwritten.len();
        let active = self.active_segment_mut();
        let written_end = active.end - unwritten;
        let ordinal = active.ordinal;
        active.end = written_end;
        self.unwritten.clear();
        while let Some(entry) = self.entries.back().copied() {
            if entry.ordinal() != ordinal || entry.offset() < written_end {
                break;
            }
            self.entries.pop_back();
            if !entry.dropped() {
                self.live -= 1;
                self.active_segment_mut().live -= 1;
            }
        }
    }

    /// Where a record at `offset` of `segment` is not in the file yet: its place in
    /// `unwritten`.
    pub(super) fn unwritten_at(&self, segment: u64, offset: usize) -> Option<usize> {
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

    pub(super) fn append_inner(
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
        // The index's room first: once the record is written, its entry cannot fail.
        self.entries.reserve_one()?;
        let seq = self.next_seq;
        let (_, offset) = if bulk {
            self.write_unwritten(kind, seq, len, fill)?
        } else {
            let written = self.write_record(kind, seq, len, fill)?;
            self.written_through = seq;
            // A session datapoint of a call (not a segment's key record, nor a custom event
            // that found its lane full: faulting in ahead for those kept the worker from
            // emptying the lanes, and more lanes filled).
            self.stored_directly |= kind != Kind::CustomEvent;
            self.calls_store |= kind != Kind::CustomEvent;
            written
        };
        self.next_seq += 1;
        self.entries
            .push_back(Entry::new(seq, self.active_segment().ordinal, offset, kind));
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
    pub(super) fn write_unwritten(
        &mut self,
        kind: Kind,
        seq: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<(u64, usize)> {
        if !self.active_fits(record_len(len)) {
            self.start_segment()?;
        }
        let room = self.unwritten.extend_zeroed(record_len(len))?;
        let used = record::put_record(room, kind, seq, len, fill);
        let segment = self.active_segment_mut();
        let offset = segment.end;
        segment.end += used;
        Ok((self.active_number(), offset))
    }

    pub(super) fn write_record(
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
    pub(super) fn drop_oldest(&mut self) -> io::Result<bool> {
        let from = self
            .entries
            .partition_point(|e| e.seq < self.drop_scan_from);
        let victim = self
            .entries
            .iter_from(from)
            .position(|e| !e.dropped() && e.kind() == Kind::CustomEvent)
            .map(|i| i + from)
            .or_else(|| self.entries.iter().position(|e| !e.dropped()));
        let Some(index) = victim else {
            return Ok(false);
        };
        let entry = *self.entries.get(index).expect("found");
        if entry.kind() == Kind::CustomEvent {
            self.drop_scan_from = entry.seq + 1;
        }
        let (number, offset) = (self.segment_of(&entry), entry.offset());
        let unwritten = number.and_then(|n| self.unwritten_at(n, offset));
        if let Some(segment) = number.and_then(|n| self.segments.get_mut(n)) {
            match unwritten {
                Some(at) => record::mark_dropped(self.unwritten.bytes_mut(), at),
                None => record::mark_dropped(segment.map.bytes_mut(), offset),
            }
            segment.live -= 1;
        }
        self.entries.get_mut(index).expect("found").mark_dropped();
        self.live -= 1;
        // Dropped entries at the front are forgotten at once (the record is marked on disk, so
        // recovery skips it too); the others wait for `forget_dropped`.
        while self.entries.front().is_some_and(|e| e.dropped()) {
            self.entries.pop_front();
        }
        Ok(true)
    }

    /// Keeps a full queue's memory and disk bounded: dropped entries leave the index once they
    /// outnumber the live ones, and segments left with nothing live are deleted.
    pub(super) fn forget_dropped(&mut self) {
        if (self.entries.len() as u64) > 2 * self.live + 64 {
            self.entries.retain(|e| !e.dropped());
        }
        self.release_done_segments();
    }
}
