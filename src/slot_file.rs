//! A small value overwritten in place, kill-safe: two checksummed slots in a mapped file, each
//! write goes to the older slot, so a write torn by a crash leaves the previous value intact.

use std::io;
use std::path::Path;

use crate::mmap::MappedFile;

const FILE_LEN: usize = 8192;
const SLOT_LEN: usize = FILE_LEN / 2;
const HEADER: usize = 16; // generation u64, crc u32, len u32

/// The largest value a slot holds.
pub(crate) const MAX_VALUE: usize = SLOT_LEN - HEADER;

pub struct SlotFile {
    map: MappedFile,
    generation: u64,
}

impl SlotFile {
    /// Opens the file and returns the newest intact value (`None` if there is none).
    pub fn open(path: &Path) -> io::Result<(SlotFile, Option<Vec<u8>>)> {
        let map = MappedFile::open(path, FILE_LEN)?;
        let newest = (0..2)
            .filter_map(|slot| read_slot(&map.bytes()[slot * SLOT_LEN..(slot + 1) * SLOT_LEN]))
            .max_by_key(|(generation, _)| *generation)
            .map(|(generation, value)| (generation, value.to_vec()));
        let generation = newest.as_ref().map_or(0, |(g, _)| *g);
        Ok((SlotFile { map, generation }, newest.map(|(_, v)| v)))
    }

    pub fn write(&mut self, value: &[u8]) {
        assert!(value.len() <= MAX_VALUE, "slot value too large");
        self.generation += 1;
        let slot = (self.generation % 2) as usize;
        let bytes = &mut self.map.bytes_mut()[slot * SLOT_LEN..(slot + 1) * SLOT_LEN];
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.generation.to_le_bytes());
        crc.update(value);
        bytes[HEADER..HEADER + value.len()].copy_from_slice(value);
        bytes[8..12].copy_from_slice(&crc.finalize().to_le_bytes());
        bytes[12..16].copy_from_slice(&(value.len() as u32).to_le_bytes());
        bytes[0..8].copy_from_slice(&self.generation.to_le_bytes());
    }

    /// Writes `value` into both slots, zeroing what follows it: nothing of an earlier value is
    /// left in the file (data wiped).
    pub fn scrub(&mut self, value: &[u8]) {
        for _ in 0..2 {
            self.write(value);
            let slot = (self.generation % 2) as usize;
            self.map.bytes_mut()[slot * SLOT_LEN + HEADER + value.len()..(slot + 1) * SLOT_LEN]
                .fill(0);
        }
    }

    pub fn sync(&self) -> io::Result<()> {
        self.map.sync()
    }
}

fn read_slot(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let generation = u64::from_le_bytes(bytes[0..8].try_into().ok()?);
    let crc = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    let len = u32::from_le_bytes(bytes[12..16].try_into().ok()?) as usize;
    if generation == 0 || len > MAX_VALUE {
        return None;
    }
    let value = &bytes[HEADER..HEADER + len];
    let mut check = crc32fast::Hasher::new();
    check.update(&generation.to_le_bytes());
    check.update(value);
    (check.finalize() == crc).then_some((generation, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_leaves_nothing_of_earlier_values() {
        let dir = crate::test_support::temp_dir("slot-scrub");
        let path = dir.join("s");
        let (mut file, _) = SlotFile::open(&path).unwrap();
        file.write(b"a-long-secret-value");
        file.write(b"another-long-secret");
        file.scrub(b"x");
        drop(file);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"secret"));
        assert_eq!(SlotFile::open(&path).unwrap().1.as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn the_newest_value_survives_reopening() {
        let dir = crate::test_support::temp_dir("slot");
        let path = dir.join("s");
        let (mut file, none) = SlotFile::open(&path).unwrap();
        assert!(none.is_none());
        file.write(b"one");
        file.write(b"two");
        drop(file);
        let (mut file, value) = SlotFile::open(&path).unwrap();
        assert_eq!(value.as_deref(), Some(&b"two"[..]));
        file.write(b"three");
        drop(file);
        assert_eq!(
            SlotFile::open(&path).unwrap().1.as_deref(),
            Some(&b"three"[..])
        );
    }

    #[test]
    fn a_torn_write_falls_back_to_the_previous_value() {
        let dir = crate::test_support::temp_dir("slot-torn");
        let path = dir.join("s");
        let (mut file, _) = SlotFile::open(&path).unwrap();
        file.write(b"old");
        file.write(b"new");
        drop(file);
        // Corrupt the slot holding "new" (generation 2 lives in slot 0).
        let mut raw = std::fs::read(&path).unwrap();
        raw[HEADER] ^= 0xff;
        std::fs::write(&path, &raw).unwrap();
        assert_eq!(
            SlotFile::open(&path).unwrap().1.as_deref(),
            Some(&b"old"[..])
        );
    }
}
