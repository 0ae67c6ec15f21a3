//! Getting ahead of the calls: the next segment prepared by the worker (a spare), and the pages
//! calls will store into faulted in before they need them.

use super::*;

impl Journal {
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

    /// Whether the spare should be faulted in when made: calls stored session datapoints in
    /// the active segment, so they will in the next one (bulk appends alone write by `pwrite`
    /// and need no pages faulted in).
    pub fn spare_wants_faulting(&self) -> bool {
        self.calls_store
    }

    /// Creates the spare segment at `path` (from `ask_for_spare`); call without the lock.
    /// Its blocks are reserved (a full disk fails here); its pages are faulted in if `fault_in`
    /// (`spare_wants_faulting`): otherwise bulk appends fill them by `pwrite`, which costs a
    /// fraction of faulting in a megabyte.
    pub fn prepare_spare(path: &Path, fault_in: bool) -> io::Result<MappedFile> {
        let _ = fs::remove_file(path);
        let mut spare = MappedFile::open(path, SEGMENT_LEN)?;
        if fault_in {
            spare.prefault();
        }
        Ok(spare)
    }

    /// Keeps the spare segment made by `prepare_spare` (faulted in or not) for the next
    /// roll-over.
    pub fn install_spare(&mut self, spare: MappedFile, faulted: bool) {
        self.spare = Some(spare);
        self.spare_faulted = faulted;
    }

    /// Whether the worker should prepare the index's next chunk (`index::Index::wants_spare`):
    /// calls that record wake it for that.
    pub fn wants_index_chunk(&self) -> bool {
        self.entries.wants_spare()
    }

    /// `wants_index_chunk`, for the worker: asks once per chunk.
    pub fn ask_for_index_chunk(&mut self) -> bool {
        self.entries.ask_for_spare()
    }

    /// Keeps the index chunk the worker prepared (`SpareChunk::prepare`, without the lock).
    pub fn install_index_chunk(&mut self, chunk: SpareChunk) {
        self.entries.install_spare(chunk);
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
    pub(super) fn ahead_range(&mut self) -> (usize, usize) {
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
