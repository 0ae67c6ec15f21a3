//! A small value overwritten in place, kill-safe: two checksummed slots in a mapped file, each
//! write goes to the older slot, so a write torn by a crash leaves the previous value intact.
//! Byte map: `format::slot`.

use std::io;
use std::path::Path;

use super::checksum::crc32_ieee;
use super::format::slot::{CRC, FILE_LEN, GENERATION, LEN, MAX_VALUE, SLOT_LEN, VALUE};
use super::mapping::{Flusher, MappedFile};

/// A slot file, open and mapped.
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

    /// Replaces the value (kill-safe at once; durable against power loss after `sync`).
    pub fn write(&mut self, value: &[u8]) {
        assert!(value.len() <= MAX_VALUE, "slot value too large");
        self.generation += 1;
        let slot = (self.generation % 2) as usize;
        let bytes = &mut self.map.bytes_mut()[slot * SLOT_LEN..(slot + 1) * SLOT_LEN];
        let crc = crc32_ieee(&self.generation.to_le_bytes(), value);
        bytes[VALUE..VALUE + value.len()].copy_from_slice(value);
        bytes[CRC..LEN].copy_from_slice(&crc.to_le_bytes());
        bytes[LEN..VALUE].copy_from_slice(&(value.len() as u32).to_le_bytes());
        // The generation goes last: until it is written, the slot reads as torn.
        bytes[GENERATION..CRC].copy_from_slice(&self.generation.to_le_bytes());
    }

    /// Writes `value` into both slots, zeroing what follows it: nothing of an earlier value is
    /// left in the file (data wiped).
    pub fn scrub(&mut self, value: &[u8]) {
        for _ in 0..2 {
            self.write(value);
            let slot = (self.generation % 2) as usize;
            self.map.bytes_mut()[slot * SLOT_LEN + VALUE + value.len()..(slot + 1) * SLOT_LEN]
                .fill(0);
        }
    }

    /// Makes the value durable against power loss.
    pub fn sync(&self, later: &mut Vec<Flusher>) -> io::Result<()> {
        self.map.sync(later)
    }
}

fn read_slot(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let generation = u64::from_le_bytes(bytes[GENERATION..CRC].try_into().ok()?);
    let crc = u32::from_le_bytes(bytes[CRC..LEN].try_into().ok()?);
    let len = u32::from_le_bytes(bytes[LEN..VALUE].try_into().ok()?) as usize;
    if generation == 0 || len > MAX_VALUE {
        return None;
    }
    let value = &bytes[VALUE..VALUE + len];
    (crc32_ieee(&generation.to_le_bytes(), value) == crc).then_some((generation, value))
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
        raw[VALUE] ^= 0xff;
        std::fs::write(&path, &raw).unwrap();
        assert_eq!(
            SlotFile::open(&path).unwrap().1.as_deref(),
            Some(&b"old"[..])
        );
    }
}
