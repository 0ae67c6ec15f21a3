//! Opening the journal: every intact record of every segment recovered (torn or corrupted
//! bytes skipped, never a refusal to start), and the newest segment resumed or a new one begun.

use super::*;

impl Journal {
    pub(super) fn recover(&mut self) -> io::Result<Recovery> {
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
            // One system call instead of a page fault per 4 KB read by the scan below.
            crate::platform::populate_read(map.bytes());
            let mut keys = Vec::new();
            let before = self.entries.len();
            let ordinal = self.take_ordinal();
            let mut indexed = Ok(());
            let end = scan(map.bytes(), &mut recovery, |record| match record.kind {
                Kind::ApiKey => {
                    // A key that is not text: what follows goes under the first key, as before.
                    let key = std::str::from_utf8(record.payload).map_or(0, |k| self.key_index(k));
                    keys.push((record.offset, key));
                }
                kind => {
                    self.next_seq = self.next_seq.max(record.seq + 1);
                    // Past `MAX_OFFSET` only in a file far longer than any segment written.
                    let indexable = record.offset <= index::MAX_OFFSET;
                    if record.seq > self.acked_through && !record.dropped && indexable {
                        let entry = Entry::new(record.seq, ordinal, record.offset, kind);
                        if indexed.is_ok() {
                            indexed = self.entries.reserve_one();
                            if indexed.is_ok() {
                                self.entries.push_back(entry);
                            }
                        }
                    }
                }
            });
            indexed?;
            // Counted here rather than by a lookup per entry after the sort below (a tenth of
            // the scan's instructions): the sort moves none to another segment.
            let live = (self.entries.len() - before) as u64;
            self.segments
                .insert(number, Segment::new(map, ordinal, live, end, keys));
        }
        // Crash recovery may meet records out of order only if segments were; keep seq order.
        if !self.entries.iter().is_sorted_by_key(|e| e.seq) {
            self.entries.sort_by_seq();
        }
        self.live = self.entries.len() as u64;
        self.release_done_segments();
        Ok(recovery)
    }

    pub(super) fn key_index(&mut self, key: &str) -> u16 {
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
    pub(super) fn resume_or_start_segment(&mut self) -> io::Result<()> {
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
    pub(super) fn start_segment(&mut self) -> io::Result<()> {
        self.commit()?;
        let number = self.segments.last().map_or(1, |(n, _)| n + 1);
        let path = segment_path(&self.dir, number);
        let spare = self
            .spare
            .take()
            .filter(|_| fs::rename(self.dir.join(SPARE), &path).is_ok());
        // A spare made faulted in needs no pages faulted in ahead (`spare_wants_faulting`).
        let spare_faulted = std::mem::take(&mut self.spare_faulted);
        let (map, faulted_to) = match spare {
            Some(map) if spare_faulted => (map, SEGMENT_LEN),
            Some(map) => (map, 0),
            None => (MappedFile::open(&path, SEGMENT_LEN)?, 0),
        };
        let writer = open_writer(&path)?;
        self.writer = Some(writer);
        self.faulted_to = faulted_to;
        self.calls_store = false;
        let ordinal = self.take_ordinal();
        self.segments
            .insert(number, Segment::new(map, ordinal, 0, 0, Vec::new()));
        self.write_key_record()
    }

    /// The record saying which API key the datapoints after it were recorded under.
    pub(super) fn write_key_record(&mut self) -> io::Result<()> {
        let key = self.keys[self.current_key as usize].clone();
        let (_, offset) = self.write_record(Kind::ApiKey, 0, key.len(), |out| {
            out.copy_from_slice(key.as_bytes())
        })?;
        let current = self.current_key;
        self.active_segment_mut().keys.push((offset, current));
        Ok(())
    }
}
