//! The open segments by number: a vector kept in number order. There are a handful, new ones
//! always get the highest number, and the active one is the last; a `BTreeMap` did the same
//! with about 12 KB more code in the library (its insert, remove and rebalancing).

use super::Segment;

#[derive(Default)]
pub(super) struct Segments(Vec<(u64, Segment)>);

impl Segments {
    fn find(&self, number: u64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&number, |(n, _)| *n)
    }

    pub(super) fn get(&self, number: u64) -> Option<&Segment> {
        self.find(number).ok().map(|i| &self.0[i].1)
    }

    pub(super) fn get_mut(&mut self, number: u64) -> Option<&mut Segment> {
        self.find(number).ok().map(|i| &mut self.0[i].1)
    }

    /// Adds (or replaces) segment `number`.
    pub(super) fn insert(&mut self, number: u64, segment: Segment) {
        match self.find(number) {
            Ok(i) => self.0[i].1 = segment,
            Err(i) => self.0.insert(i, (number, segment)),
        }
    }

    pub(super) fn remove(&mut self, number: u64) -> Option<Segment> {
        self.find(number).ok().map(|i| self.0.remove(i).1)
    }

    /// The number of the segment with `ordinal` (`Segment::ordinal`). Ordinals grow with the
    /// numbers (segments are added in number order), modulo 2^32: counted back from the newest,
    /// they fall along the vector, so a binary search finds one.
    pub(super) fn number_of(&self, ordinal: u32) -> Option<u64> {
        let newest = self.0.last()?.1.ordinal;
        let back = newest.wrapping_sub(ordinal);
        let i = self
            .0
            .partition_point(|(_, s)| newest.wrapping_sub(s.ordinal) > back);
        self.0
            .get(i)
            .filter(|(_, s)| s.ordinal == ordinal)
            .map(|&(n, _)| n)
    }

    /// The highest-numbered segment (the active one) and its number.
    pub(super) fn last(&self) -> Option<(u64, &Segment)> {
        self.0.last().map(|(n, s)| (*n, s))
    }

    pub(super) fn last_mut(&mut self) -> Option<&mut Segment> {
        self.0.last_mut().map(|(_, s)| s)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &Segment)> {
        self.0.iter().map(|(n, s)| (*n, s))
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Segment> {
        self.0.iter_mut().map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mapping::MappedFile;
    use crate::test_support::temp_dir;

    #[test]
    fn a_segment_is_found_by_its_ordinal_across_a_wrap() {
        let dir = temp_dir("segments-ordinal");
        let mut segments = Segments::default();
        assert_eq!(segments.number_of(0), None);
        let numbers = [1, 2, 1 << 40, (1 << 40) + 1];
        let ordinals = [u32::MAX - 1, u32::MAX, 0, 1];
        for (n, ordinal) in numbers.into_iter().zip(ordinals) {
            let map = MappedFile::open(&dir.join(format!("{n}")), 4096).unwrap();
            segments.insert(n, Segment::new(map, ordinal, 0, 0, Vec::new()));
        }
        for (n, ordinal) in numbers.into_iter().zip(ordinals) {
            assert_eq!(segments.number_of(ordinal), Some(n));
        }
        assert_eq!(segments.number_of(7), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn kept_in_number_order_whatever_the_order_of_insertion() {
        let dir = temp_dir("segments");
        let segment = |n: u64| {
            let map = MappedFile::open(&dir.join(format!("{n}")), 4096).unwrap();
            Segment::new(map, n as u32, n, 0, Vec::new())
        };
        let mut segments = Segments::default();
        assert!(segments.is_empty() && segments.last().is_none());
        for n in [3, 1, 7, 5] {
            segments.insert(n, segment(n));
        }
        let numbers: Vec<u64> = segments.iter().map(|(n, _)| n).collect();
        assert_eq!(numbers, [1, 3, 5, 7]);
        assert_eq!(segments.last().map(|(n, s)| (n, s.live)), Some((7, 7)));
        assert_eq!(segments.get(5).map(|s| s.live), Some(5));
        assert!(segments.get(4).is_none() && segments.remove(4).is_none());
        assert_eq!(segments.remove(7).map(|s| s.live), Some(7));
        segments.get_mut(5).unwrap().live = 50;
        assert_eq!(segments.last().map(|(n, s)| (n, s.live)), Some((5, 50)));
        segments.last_mut().unwrap().live = 51;
        let lives: Vec<u64> = segments.values_mut().map(|s| s.live).collect();
        assert_eq!(lives, [1, 3, 51]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
