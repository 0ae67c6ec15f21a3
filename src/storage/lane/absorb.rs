//! Moving lane records into the journal: all lanes at once, held, in time order (`Held::absorb`),
//! or the worker's swapped-out buffers with the lanes free (`Lanes::take_for_worker`,
//! `Lanes::absorb_taken`); each absorbed buffer zeroed from its end backwards.

use super::*;

/// Full buffers the worker takes from a lane in one pass (`Lanes::take_for_worker`).
const TAKE_AT_ONCE: usize = 2;

impl Lanes {
    /// For the worker, holding the engine's lock: takes every full buffer out of its lane, and
    /// swaps out every buffer that holds records if its lane's other buffer is free, each
    /// lane's lock held only for the swap. Absorb them with `absorb_taken` before releasing
    /// the engine's lock (calls that hold every lane expect no buffer outside its lane).
    /// A lane that holds nothing (its backlog drained) gives up its extra spare buffers.
    pub fn take_for_worker(&self) -> Taken {
        self.wants_absorb.store(false, Ordering::SeqCst);
        let mut taken = Vec::new();
        let mut extra = Vec::new();
        for (index, lane) in self.lanes.iter().enumerate() {
            let mut lane = lane.0.lock();
            let lane = &mut *lane;
            if !lane.retired.is_empty() {
                // A few at a time, oldest first: each comes back as a spare once copied, so a
                // caller far ahead finds one sooner; the rest wait for the next pass.
                let now = lane.retired.len().min(TAKE_AT_ONCE);
                taken.extend(lane.retired.drain(..now).map(|buffer| (index, buffer)));
                if !lane.retired.is_empty() {
                    self.wants_absorb.store(true, Ordering::SeqCst);
                }
            } else if lane.end == lane.absorbed && lane.spare.len() > 1 {
                extra.extend(lane.spare.drain(1..));
            } else if lane.end > lane.absorbed && !lane.spare.is_empty() {
                let (Some(file), Some(empty)) = (&mut lane.file, lane.spare.pop()) else {
                    continue;
                };
                let file = std::mem::replace(file, empty);
                taken.push((
                    index,
                    Buffer {
                        file,
                        end: lane.end,
                        absorbed: lane.absorbed,
                        recovered: lane.recovered,
                    },
                ));
                (lane.end, lane.absorbed, lane.recovered) = (0, 0, false);
            }
        }
        extra.into_iter().for_each(remove_buffer);
        Taken(taken)
    }

    /// Moves the records of buffers from `take_for_worker` into the journal, oldest first,
    /// then gives each buffer back to its lane: emptied and zeroed, or (storage refused midway)
    /// with what is left, for the next absorb. Extra buffers stay as spares until the lane has
    /// drained (`take_for_worker`): a caller still ahead of the worker would create them again.
    pub fn absorb_taken(&self, taken: Taken, journal: &mut Journal) -> Absorbed {
        let mut taken = taken.0;
        let sources: Vec<Source<'_>> = taken
            .iter()
            .map(|(_, buffer)| Source {
                bytes: buffer.file.bytes(),
                from: buffer.absorbed,
                to: buffer.end,
                verify: buffer.recovered,
            })
            .collect();
        let (absorbed, done) = absorb_sources(&sources, journal, None);
        drop(sources);
        let complete = absorbed.error.is_none();
        for ((_, buffer), done) in taken.iter_mut().zip(done) {
            settle(&mut buffer.absorbed, buffer.end, done, complete);
            if buffer.absorbed == buffer.end {
                zero_backwards(&mut buffer.file.bytes_mut()[..buffer.end]);
                (buffer.end, buffer.absorbed, buffer.recovered) = (0, 0, false);
            }
        }
        // Per lane, where the next buffer left over goes: before any its lane retired meanwhile
        // (their records are newer).
        let mut put_back = [0; LANES];
        for (index, buffer) in taken {
            let mut lane = self.lanes[index].0.lock();
            if buffer.end > 0 {
                // Left for the next absorb (not asked for: storage refused, so no loop).
                lane.retired.insert(put_back[index], buffer);
                put_back[index] += 1;
            } else {
                lane.spare.push(buffer.file);
            }
        }
        absorbed
    }
}

impl Held<'_> {
    /// Moves every lane's records into the journal, oldest first, except those whose datapoint
    /// id is in `skip` (already in the journal: recovery after a kill during an absorb).
    pub fn absorb(&mut self, journal: &mut Journal, skip: Option<&HashSet<[u8; 16]>>) -> Absorbed {
        if self.is_empty() {
            // The common case of a call that changes the session: nothing to move.
            self.owner.holding.store(false, Ordering::SeqCst);
            self.owner.wants_absorb.store(false, Ordering::SeqCst);
            return Absorbed {
                last_activity: Millis::MIN,
                ..Absorbed::default()
            };
        }
        // Each lane's retired buffer (older) before its current one.
        let mut sources = Vec::with_capacity(2 * LANES);
        for lane in &self.lanes {
            for retired in &lane.retired {
                sources.push(Source {
                    bytes: retired.file.bytes(),
                    from: retired.absorbed,
                    to: retired.end,
                    verify: retired.recovered,
                });
            }
            if let Some(file) = &lane.file {
                sources.push(Source {
                    bytes: file.bytes(),
                    from: lane.absorbed,
                    to: lane.end,
                    verify: lane.recovered,
                });
            }
        }
        let (absorbed, done) = absorb_sources(&sources, journal, skip);
        drop(sources);
        let complete = absorbed.error.is_none();
        let mut done = done.into_iter();
        for lane in self.lanes.iter_mut() {
            let lane = &mut **lane;
            for retired in &mut lane.retired {
                settle(
                    &mut retired.absorbed,
                    retired.end,
                    done.next().flatten(),
                    complete,
                );
            }
            // Kept as spares: the worker gives up the extra ones once the lane has drained.
            for mut buffer in lane.retired.extract_if(.., |b| b.absorbed == b.end) {
                zero_backwards(&mut buffer.file.bytes_mut()[..buffer.end]);
                lane.spare.push(buffer.file);
            }
            if lane.file.is_none() {
                continue;
            }
            settle(
                &mut lane.absorbed,
                lane.end,
                done.next().flatten(),
                complete,
            );
            if lane.absorbed == lane.end {
                lane.last_activity = Millis::MIN;
                lane.recovered = false;
                let end = lane.end;
                if let Some(file) = &mut lane.file {
                    zero_backwards(&mut file.bytes_mut()[..end]);
                }
                lane.end = 0;
                lane.absorbed = 0;
            }
        }
        self.owner.holding.store(!self.is_empty(), Ordering::SeqCst);
        self.owner.wants_absorb.store(false, Ordering::SeqCst);
        absorbed
    }

    /// Clears what follows the records of every lane: after a kill during zeroing, stale bytes
    /// there could otherwise be read back as records after new ones (start-up only).
    pub fn clear_tails(&mut self) {
        for lane in &mut self.lanes {
            let lane = &mut **lane;
            let end = lane.end;
            if let Some(file) = &mut lane.file {
                zero_backwards(&mut file.bytes_mut()[end..]);
            }
            for spare in &mut lane.spare {
                zero_backwards(spare.bytes_mut());
            }
            for retired in &mut lane.retired {
                zero_backwards(&mut retired.file.bytes_mut()[retired.end..]);
            }
        }
    }
}

/// Records of one buffer, for the merge of `absorb_sources`.
pub(super) struct Source<'a> {
    bytes: &'a [u8],
    from: usize,
    to: usize,
    /// Check each record's checksum (records of a previous run); otherwise they were written
    /// by this process and are read without.
    verify: bool,
}

/// Where an absorb of a buffer got to: `done` is the end of its last record moved (`None`:
/// none), `complete` whether every buffer was read to its end.
pub(super) fn settle(absorbed: &mut usize, end: usize, done: Option<usize>, complete: bool) {
    match done {
        // Everything up to `end` was read (any bytes that are no record included).
        _ if complete => *absorbed = end,
        Some(done) => *absorbed = done,
        None => {}
    }
}

/// Moves the records of `sources` into the journal, oldest first (each buffer's records in
/// their own order, ties to the earlier source), except those whose datapoint id is in `skip`.
/// Returns, for each source, the end of its last record moved: what is moved is always a
/// prefix of every buffer, even when storage refuses midway.
pub(super) fn absorb_sources(
    sources: &[Source<'_>],
    journal: &mut Journal,
    skip: Option<&HashSet<[u8; 16]>>,
) -> (Absorbed, Vec<Option<usize>>) {
    let mut absorbed = Absorbed {
        last_activity: Millis::MIN,
        ..Absorbed::default()
    };
    let mut queues: Vec<Vec<LaneRecord>> = Vec::with_capacity(sources.len());
    for (index, source) in sources.iter().enumerate() {
        let mut queue = Vec::new();
        let from = source.from;
        let bytes = &source.bytes[from..source.to];
        let each = |record: record::RawRecord<'_>| {
            let offset = from + record.offset;
            let len = record.payload.len();
            // Only a corrupted file holds what does not read: skipped, in its place.
            let head = StoredHead::of(record.payload);
            queue.push(LaneRecord {
                time: head.map_or(Millis::MIN, |h| h.time),
                source: index,
                start: offset + record::record_len(0),
                len,
                end: offset + record::record_len(len),
                id: head.map(|h| h.id),
                in_session: head.is_some_and(|h| h.in_session),
            });
        };
        // The checksum is checked again by the journal's recovery once the record is there;
        // a live lane's records were written by this process and need no check on the way.
        if source.verify {
            record::scan(bytes, &mut Recovery::default(), each);
        } else {
            record::scan_written(bytes, each);
        }
        queues.push(queue);
    }
    let mut heads = vec![0; sources.len()];
    // Each record dealt with, in order: the seq of the newest datapoint appended by then (it
    // is in the file once that one is), its source and where it ends.
    let mut moved: Vec<(u64, usize, usize)> = Vec::new();
    let mut newest = 0;
    while let Some(record) = (0..sources.len())
        .filter_map(|source| queues[source].get(heads[source]))
        .min_by_key(|record| (record.time, record.source))
    {
        heads[record.source] += 1;
        let payload = &sources[record.source].bytes[record.start..record.start + record.len];
        let known = record
            .id
            .is_some_and(|id| skip.is_some_and(|s| s.contains(&id)));
        if record.id.is_none() {
            log::error(|| "skipped an unreadable record in a lane".into());
        } else if !known {
            match journal.append_bulk(Kind::CustomEvent, payload) {
                Ok((seq, dropped)) => {
                    newest = seq;
                    absorbed.dropped += dropped;
                }
                Err(error) => {
                    absorbed.error = Some(error);
                    break;
                }
            }
        }
        if record.in_session {
            absorbed.last_activity = absorbed.last_activity.max(record.time);
        }
        moved.push((newest, record.source, record.end));
    }
    // In the file before the lanes let go of these records. What storage refused to write
    // (a failed commit undoes it) stays in its lane; what was written, once, does not.
    if let Err(error) = journal.commit() {
        absorbed.error.get_or_insert(error);
    }
    let written = journal.written_through();
    let mut done = vec![None; sources.len()];
    let mut last_counted = 0;
    for &(seq, source, end) in &moved {
        if seq > written {
            break;
        }
        if seq > last_counted {
            absorbed.recorded += 1;
            last_counted = seq;
        }
        done[source] = Some(end);
    }
    (absorbed, done)
}

/// Zeroes `bytes` from the end, page by page: a kill midway leaves intact records only at the
/// start, where recovery finds them (and skips those already in the journal).
pub(super) fn zero_backwards(bytes: &mut [u8]) {
    for chunk in bytes.rchunks_mut(4096) {
        chunk.fill(0);
    }
}
