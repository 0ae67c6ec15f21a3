//! The index of pending datapoints: 16-byte entries in fixed-size chunks of anonymous memory
//! (`platform::AnonPages`), never from `malloc`. A queue that grew to 200,000 entries in one
//! `VecDeque` faulted in a new page on a call every 128 entries, and freeing its 8 MB raised
//! glibc's mmap and trim thresholds so that no thread's arena was trimmed afterwards. Chunks
//! come and go whole: the worker prepares the next one, faulted in, before calls need it
//! (`wants_spare`), an emptied front chunk becomes the spare, and a drained index gives all its
//! chunks back (`release`).

use std::collections::VecDeque;
use std::io;

use super::{Kind, ALIGN, SEGMENT_LEN};
use crate::platform::AnonPages;

/// Entries per chunk: 256 KB, 64 pages to fault in ahead (the worker is woken for the next one
/// once per 8,192 entries: a change of user records two).
pub(super) const CHUNK: usize = 16384;
const CHUNK_BYTES: usize = CHUNK * size_of::<Entry>();

/// Bits of `Entry::bits` holding the offset in `ALIGN` units, then the kind (a datapoint's kind
/// byte is 1 to 3), then the dropped flag.
const OFFSET_BITS: u32 = 29;
const KIND_SHIFT: u32 = OFFSET_BITS;
const DROPPED: u32 = 1 << (KIND_SHIFT + 2);
/// The largest offset an entry holds (a segment written here is `SEGMENT_LEN`; recovery indexes
/// nothing past this in a longer file).
pub(super) const MAX_OFFSET: usize = ((1 << OFFSET_BITS) - 1) * ALIGN;
const _: () = assert!(SEGMENT_LEN <= MAX_OFFSET);
const _: () = assert!(size_of::<Entry>() == 16);

/// A pending datapoint: where its record is. The payload's length is read from the record's
/// header, and the API key from the segment's key records (`Segment::keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Entry {
    pub(super) seq: u64,
    /// Its segment's `Segment::ordinal` (`Segments::number_of` finds the segment).
    ordinal: u32,
    bits: u32,
}

impl Entry {
    pub(super) fn new(seq: u64, ordinal: u32, offset: usize, kind: Kind) -> Entry {
        debug_assert!(offset.is_multiple_of(ALIGN) && offset <= MAX_OFFSET);
        debug_assert!(kind.is_datapoint());
        Entry {
            seq,
            ordinal,
            bits: (offset / ALIGN) as u32 | (kind as u32) << KIND_SHIFT,
        }
    }

    pub(super) fn ordinal(&self) -> u32 {
        self.ordinal
    }

    /// Where the record starts in its segment.
    pub(super) fn offset(&self) -> usize {
        (self.bits & ((1 << OFFSET_BITS) - 1)) as usize * ALIGN
    }

    pub(super) fn kind(&self) -> Kind {
        Kind::from_u8((self.bits >> KIND_SHIFT) as u8 & 3).expect("an indexed kind")
    }

    pub(super) fn dropped(&self) -> bool {
        self.bits & DROPPED != 0
    }

    pub(super) fn mark_dropped(&mut self) {
        self.bits |= DROPPED;
    }
}

/// One chunk's memory.
struct Chunk(AnonPages);

impl Chunk {
    fn new() -> io::Result<Chunk> {
        AnonPages::new(CHUNK_BYTES).map(Chunk)
    }

    fn entries(&self) -> &[Entry] {
        let bytes = self.0.bytes();
        // SAFETY: the pages are page-aligned (more than `Entry`'s alignment), `CHUNK_BYTES`
        // long, owned by this chunk and borrowed with it; every bit pattern is a valid `Entry`
        // (integers only), and fresh anonymous pages read as zeros.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<Entry>(), CHUNK) }
    }

    fn entries_mut(&mut self) -> &mut [Entry] {
        let bytes = self.0.bytes_mut();
        // SAFETY: as in `entries`, borrowed mutably with the chunk.
        unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<Entry>(), CHUNK) }
    }
}

/// A chunk faulted in by the worker without the lock, for `Journal::install_index_chunk`.
pub struct SpareChunk(Chunk);

impl SpareChunk {
    /// Maps a chunk and faults its pages in (for the worker, never for a call).
    pub fn prepare() -> io::Result<SpareChunk> {
        let mut chunk = Chunk::new()?;
        chunk.0.fault_in();
        Ok(SpareChunk(chunk))
    }
}

/// The entries in seq order, as a deque over chunks.
#[derive(Default)]
pub(super) struct Index {
    chunks: VecDeque<Chunk>,
    /// The first entry's slot in the first chunk.
    head: usize,
    len: usize,
    /// The next chunk to use: prepared by the worker, or the last one emptied.
    spare: Option<Chunk>,
    /// The worker was asked for a spare since the last chunk was added (asked once a chunk).
    asked: bool,
}

impl Index {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Entries' room in the chunks held (a spare included), for tests of memory given back.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        (self.chunks.len() + usize::from(self.spare.is_some())) * CHUNK
    }

    fn slot(&self, i: usize) -> (usize, usize) {
        let at = self.head + i;
        (at / CHUNK, at % CHUNK)
    }

    pub(super) fn get(&self, i: usize) -> Option<&Entry> {
        (i < self.len).then(|| self.at(i))
    }

    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut Entry> {
        (i < self.len).then(|| {
            let (chunk, slot) = self.slot(i);
            &mut self.chunks[chunk].entries_mut()[slot]
        })
    }

    pub(super) fn front(&self) -> Option<&Entry> {
        self.get(0)
    }

    pub(super) fn back(&self) -> Option<&Entry> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.iter_from(0)
    }

    pub(super) fn iter_from(&self, from: usize) -> impl Iterator<Item = &Entry> + '_ {
        (from..self.len).map(move |i| self.at(i))
    }

    fn at(&self, i: usize) -> &Entry {
        let (chunk, slot) = self.slot(i);
        &self.chunks[chunk].entries()[slot]
    }

    /// The number of leading entries for which `pred` holds (it must hold for a prefix).
    pub(super) fn partition_point(&self, pred: impl Fn(&Entry) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len);
        while low < high {
            let mid = low + (high - low) / 2;
            if pred(self.at(mid)) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    /// Makes sure one more entry fits, so that `push_back` cannot fail: a chunk is taken from
    /// the spare (faulted in ahead by the worker) or mapped now.
    pub(super) fn reserve_one(&mut self) -> io::Result<()> {
        if self.head + self.len < self.chunks.len() * CHUNK {
            return Ok(());
        }
        let chunk = match self.spare.take() {
            Some(chunk) => chunk,
            None => Chunk::new()?,
        };
        self.chunks.push_back(chunk);
        self.asked = false;
        Ok(())
    }

    /// Appends an entry; `reserve_one` made room for it.
    pub(super) fn push_back(&mut self, entry: Entry) {
        let (chunk, slot) = self.slot(self.len);
        self.chunks[chunk].entries_mut()[slot] = entry;
        self.len += 1;
    }

    pub(super) fn pop_front(&mut self) -> Option<Entry> {
        let entry = *self.front()?;
        self.head += 1;
        self.len -= 1;
        if self.head == CHUNK {
            self.head = 0;
            let emptied = self.chunks.pop_front().expect("the front chunk");
            self.keep_as_spare(emptied);
        }
        Some(entry)
    }

    pub(super) fn pop_back(&mut self) -> Option<Entry> {
        let entry = *self.back()?;
        self.len -= 1;
        self.drop_unused_chunks();
        Some(entry)
    }

    /// Keeps the entries for which `keep` holds, in order.
    pub(super) fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        let mut kept = 0;
        for i in 0..self.len {
            let entry = *self.at(i);
            if keep(&entry) {
                *self.get_mut(kept).expect("in range") = entry;
                kept += 1;
            }
        }
        self.len = kept;
        self.drop_unused_chunks();
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.drop_unused_chunks();
    }

    /// Puts the entries in seq order (recovery, after segments out of order: rare). The seqs
    /// are sorted as plain numbers and each entry placed by its seq's rank: the library
    /// already holds that sort (recovery's segment numbers), where sorting entries added one.
    pub(super) fn sort_by_seq(&mut self) {
        let mut seqs: Vec<u64> = self.iter().map(|e| e.seq).collect();
        seqs.sort_unstable();
        // Seq 0 marks a free place: a datapoint's seq is at least 1.
        let free = Entry {
            seq: 0,
            ordinal: 0,
            bits: 0,
        };
        let mut sorted = vec![free; self.len];
        for entry in self.iter() {
            let mut at = seqs.partition_point(|&seq| seq < entry.seq);
            while sorted[at].seq != 0 {
                at += 1; // the same seq twice (a segment copied): side by side
            }
            sorted[at] = *entry;
        }
        for (i, entry) in sorted.into_iter().enumerate() {
            *self.get_mut(i).expect("in range") = entry;
        }
    }

    /// Chunks past the last entry go (one kept as the spare); an empty index starts at the
    /// front of its first chunk again.
    fn drop_unused_chunks(&mut self) {
        if self.len == 0 {
            self.head = 0;
        }
        let needed = (self.head + self.len).div_ceil(CHUNK).max(1);
        while self.chunks.len() > needed {
            let unused = self.chunks.pop_back().expect("a chunk");
            self.keep_as_spare(unused);
        }
    }

    fn keep_as_spare(&mut self, chunk: Chunk) {
        if self.spare.is_none() {
            self.spare = Some(chunk);
        }
    }

    /// Whether the worker should prepare the next chunk: none is spare, none was asked for
    /// since the last chunk was added, and that one is past half full (calls then record
    /// ~4,000 more before they need it).
    pub(super) fn wants_spare(&self) -> bool {
        self.spare.is_none()
            && !self.asked
            && self.len > 0
            && (self.head + self.len - 1) % CHUNK >= CHUNK / 2
    }

    /// `wants_spare`, marking it asked (so a failed preparation is not retried at once).
    pub(super) fn ask_for_spare(&mut self) -> bool {
        let wanted = self.wants_spare();
        self.asked |= wanted;
        wanted
    }

    /// Keeps a chunk the worker prepared (unless one is spare already: then it is unmapped).
    pub(super) fn install_spare(&mut self, spare: SpareChunk) {
        self.keep_as_spare(spare.0);
    }

    /// Gives back the memory a drained index does not need: every chunk when it is empty, the
    /// spare always.
    pub(super) fn release(&mut self) {
        self.spare = None;
        if self.len == 0 {
            self.chunks.clear();
            self.chunks.shrink_to_fit();
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry::new(
            seq,
            (seq / 1000) as u32,
            (seq as usize * ALIGN) % SEGMENT_LEN,
            Kind::CustomEvent,
        )
    }

    fn push(index: &mut Index, seq: u64) {
        index.reserve_one().unwrap();
        index.push_back(entry(seq));
    }

    #[test]
    fn an_entry_keeps_its_fields_in_16_bytes() {
        let mut e = Entry::new(u64::MAX - 1, u32::MAX, MAX_OFFSET, Kind::SessionEnd);
        assert_eq!((e.seq, e.ordinal()), (u64::MAX - 1, u32::MAX));
        assert_eq!(e.offset(), MAX_OFFSET);
        assert_eq!(e.kind(), Kind::SessionEnd);
        assert!(!e.dropped());
        e.mark_dropped();
        assert!(e.dropped());
        assert_eq!((e.kind(), e.offset()), (Kind::SessionEnd, MAX_OFFSET));
        for kind in [Kind::SessionStart, Kind::CustomEvent] {
            assert_eq!(Entry::new(1, 0, 8, kind).kind(), kind);
        }
    }

    #[test]
    fn a_deque_across_chunks_keeps_order_and_gives_chunks_back() {
        let mut index = Index::default();
        let n = 3 * CHUNK as u64 + 17;
        for seq in 1..=n {
            push(&mut index, seq);
        }
        assert_eq!(index.len(), n as usize);
        assert!(index.iter().map(|e| e.seq).eq(1..=n));
        assert!(index
            .iter_from(CHUNK + 5)
            .map(|e| e.seq)
            .eq(CHUNK as u64 + 6..=n));
        assert_eq!(index.partition_point(|e| e.seq < 5000), 4999);
        for seq in 1..=2 * CHUNK as u64 {
            assert_eq!(index.pop_front().unwrap().seq, seq);
        }
        assert_eq!(index.chunks.len(), 2, "emptied chunks leave the front");
        assert_eq!(index.pop_back().unwrap().seq, n);
        index.retain(|e| e.seq % 2 == 0);
        assert!(index.iter().all(|e| e.seq % 2 == 0));
        assert_eq!(index.front().unwrap().seq, 2 * CHUNK as u64 + 2);
        assert_eq!(index.back().unwrap().seq, n - 1);
        assert_eq!(index.chunks.len(), 1);
        while index.pop_front().is_some() {}
        assert_eq!(index.len(), 0);
        index.release();
        assert_eq!(index.capacity(), 0, "a drained index holds no memory");
        push(&mut index, 1);
        assert_eq!(index.front().unwrap().seq, 1);
    }

    #[test]
    fn the_worker_prepares_a_chunk_before_calls_need_it() {
        let mut index = Index::default();
        for seq in 1..=CHUNK as u64 / 2 {
            push(&mut index, seq);
        }
        assert!(!index.wants_spare());
        push(&mut index, CHUNK as u64 / 2 + 1);
        assert!(index.wants_spare());
        assert!(index.ask_for_spare());
        assert!(!index.ask_for_spare(), "asked once");
        index.install_spare(SpareChunk::prepare().unwrap());
        assert!(!index.wants_spare());
        for seq in CHUNK as u64 / 2 + 2..=CHUNK as u64 + 1 {
            push(&mut index, seq);
        }
        assert!(index.spare.is_none(), "the spare became the next chunk");
        assert_eq!(index.chunks.len(), 2);
    }

    #[test]
    fn sorting_puts_entries_in_seq_order() {
        let mut index = Index::default();
        for seq in (1..=CHUNK as u64 + 10).rev() {
            push(&mut index, seq);
        }
        push(&mut index, 7);
        index.sort_by_seq();
        let mut expected: Vec<u64> = (1..=CHUNK as u64 + 10).collect();
        expected.insert(7, 7);
        assert!(index.iter().map(|e| e.seq).eq(expected));
        assert_eq!(index.get(7).unwrap(), index.get(6).unwrap(), "both kept");
    }
}
