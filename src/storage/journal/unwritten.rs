//! The bulk appends gathered and not yet written (`Journal::commit`), in anonymous memory of
//! their own (`platform::AnonPages`) rather than a `Vec`: a buffer of 256 KB and more freed to
//! `malloc` once a backlog drains raised glibc's mmap and trim thresholds, and no thread's
//! arena was trimmed afterwards. Only the pages written count as resident; a drained journal
//! unmaps them (`release`).

use std::io;

use super::SEGMENT_LEN;
use crate::platform::AnonPages;

#[derive(Default)]
pub(super) struct Unwritten {
    pages: Option<AnonPages>,
    len: usize,
}

impl Unwritten {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn bytes(&self) -> &[u8] {
        self.pages.as_ref().map_or(&[], |p| &p.bytes()[..self.len])
    }

    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.pages {
            Some(pages) => &mut pages.bytes_mut()[..self.len],
            None => &mut [],
        }
    }

    /// Adds `n` zero bytes at the end and returns them. The records gathered end the active
    /// segment, so a segment's length is room enough; a longer one (a segment from a larger
    /// build) moves them to a larger mapping.
    pub(super) fn extend_zeroed(&mut self, n: usize) -> io::Result<&mut [u8]> {
        let needed = self.len + n;
        let room = self.pages.as_ref().map_or(0, |p| p.bytes().len());
        if needed > room {
            let mut larger = AnonPages::new(needed.next_power_of_two().max(SEGMENT_LEN))?;
            larger.bytes_mut()[..self.len].copy_from_slice(self.bytes());
            self.pages = Some(larger);
        }
        let start = self.len;
        self.len = needed;
        let added = &mut self.bytes_mut()[start..];
        added.fill(0); // reused pages hold earlier records; padding must read as zeros
        Ok(added)
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    /// Unmaps the buffer if it holds nothing (a drained journal).
    pub(super) fn release(&mut self) {
        if self.len == 0 {
            self.pages = None;
        }
    }

    /// Whether it holds memory (for tests of memory given back).
    #[cfg(test)]
    pub(super) fn holds_memory(&self) -> bool {
        self.pages.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_bytes_come_back_zeroed_and_growth_keeps_what_was_there() {
        let mut buffer = Unwritten::default();
        assert!(buffer.bytes().is_empty() && !buffer.holds_memory());
        buffer.extend_zeroed(10).unwrap().fill(7);
        buffer.clear();
        assert!(buffer.extend_zeroed(10).unwrap().iter().all(|&b| b == 0));
        buffer.bytes_mut()[..3].copy_from_slice(b"abc");
        buffer.extend_zeroed(SEGMENT_LEN).unwrap();
        assert_eq!(buffer.len(), SEGMENT_LEN + 10);
        assert_eq!(&buffer.bytes()[..3], b"abc");
        buffer.release();
        assert!(buffer.holds_memory(), "kept while it holds records");
        buffer.clear();
        buffer.release();
        assert!(!buffer.holds_memory());
    }
}
