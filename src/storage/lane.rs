//! Lanes: where `log_custom_event` records without taking the engine's lock.
//!
//! Two threads recording through one lock take turns, and every call then pulls the engine's
//! state (some twenty cache lines) across the cores: a call cost 2-2.5× its one-thread time. A
//! lane is a small memory-mapped file used by one thread (threads are spread over `LANES` of
//! them). A custom event on a session that cannot have expired is written there, as a journal
//! record and so as kill-safe as the journal, under the lane's own lock, which no other thread
//! normally takes.
//!
//! The engine moves lane records into the journal, in time order (`Held::absorb`), before any
//! call that may record or change the session, before sending, and when a lane is half full.
//! Such a call holds every lane, so a lane's view of the session is replaced only when the lane
//! is empty and no lane call is running: a lane record always belongs to the session its view
//! shows, and lands in the journal before anything the call records.
//!
//! An absorbed lane is zeroed from its end backwards. A kill in between leaves records that the
//! journal already holds; recovery skips those by datapoint id (`Journal::pending_ids`), so each
//! datapoint is queued exactly once.

use std::cell::Cell;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};

use super::datapoint::{Datapoint, StoredHead};
use super::format::{lane, names};
use super::journal::Journal;
use super::mapping::{Flusher, MappedFile};
use super::record::{self, Kind, Recovery};
use crate::clock;
use crate::ids::IdGenerator;
use crate::input::CustomEvent;
use crate::log;
use crate::platform::create_private_dir;
use crate::session::{self, Millis, Rules, SessionId, SessionState, UserName};

/// Enough for the threads that record at once in practice; more threads share lanes.
pub const LANES: usize = lane::COUNT;
/// Room for ~1,800 typical custom events; absorbed when half full.
const LANE_LEN: usize = lane::LEN;

/// The lanes of one data directory.
pub(crate) struct Lanes {
    /// `None`: lanes are off (no directory for them) and every call takes the engine's lock.
    dir: Option<PathBuf>,
    lanes: [Padded<Mutex<Lane>>; LANES],
    /// The open session's last activity as the engine last saw it: a lane stamps no event
    /// earlier (activity never moves back) and uses it to know the session has not expired.
    last_activity: Padded<AtomicI64>,
    /// Some lane holds records not yet in the journal.
    holding: AtomicBool,
    /// A lane is half full: the worker absorbs.
    wants_absorb: AtomicBool,
}

/// Keeps each lane's lock and state on cache lines of its own.
#[repr(align(128))]
struct Padded<T>(T);

struct Lane {
    file: Option<MappedFile>,
    /// Where the next record goes: records fill `[0, end)`, zeros follow.
    end: usize,
    /// Records before this offset are in the journal already (an absorb storage refused midway).
    absorbed: usize,
    view: View,
    /// The newest activity recorded in this lane since it was last absorbed.
    last_activity: Millis,
    ids: IdGenerator,
}

/// What a lane may assume about the engine; replaced only while every lane is held.
#[derive(Default)]
struct View {
    closed: bool,
    session_id: Option<SessionId>,
    user: Option<UserName>,
    foreground: bool,
}

/// What a lane did with a custom event.
pub(crate) enum Recorded {
    /// Recorded. `first`: the first since the lanes were absorbed (delivery is not scheduled
    /// yet); `half_full`: the worker should absorb.
    Here { first: bool, half_full: bool },
    /// Not recorded: the call must take the engine's lock (the session may have expired, the
    /// engine is closed, or this lane is full or has no file).
    NotHere,
}

/// A record found in a lane, in the order `Held::absorb` sorts them.
struct LaneRecord {
    time: Millis,
    lane: usize,
    /// Where its payload is in its lane, how long, and where the record ends.
    start: usize,
    len: usize,
    end: usize,
    /// `None`: it is not a stored datapoint (a corrupted file).
    id: Option<[u8; 16]>,
    /// It carries a session id: it was activity in the open session.
    in_session: bool,
}

/// What `Held::absorb` moved into the journal.
#[derive(Default)]
pub(crate) struct Absorbed {
    pub recorded: u64,
    pub dropped: u64,
    /// The newest time of a moved record that belongs to the open session (`Millis::MIN` if
    /// none): activity the session state has not seen yet.
    pub last_activity: Millis,
    /// Storage refused a record: it and the records after it stay in their lanes.
    pub error: Option<io::Error>,
}

impl Lanes {
    /// Opens the lanes in `dir`, with what a previous run left in them (absorb it next).
    pub fn open(dir: PathBuf, ids: &mut IdGenerator) -> Lanes {
        let created = create_private_dir(&dir);
        if let Err(error) = &created {
            log::warn(|| format!("custom events take the slower path: no lane directory: {error}"));
        }
        let lanes = std::array::from_fn(|index| {
            let mut lane = Lane {
                file: None,
                end: 0,
                absorbed: 0,
                // Closed until the engine gives its view (`refresh`).
                view: View {
                    closed: true,
                    ..View::default()
                },
                last_activity: Millis::MIN,
                ids: IdGenerator::seeded(ids),
            };
            let path = lane_path(&dir, index);
            if path.exists() {
                match MappedFile::open(&path, LANE_LEN) {
                    Ok(map) => {
                        lane.end = record::scan(map.bytes(), &mut Recovery::default(), |_| {});
                        lane.file = Some(map);
                    }
                    Err(error) => log::warn(|| format!("cannot open a lane: {error}")),
                }
            }
            Padded(Mutex::new(lane))
        });
        Lanes {
            dir: created.is_ok().then_some(dir),
            lanes,
            last_activity: Padded(AtomicI64::new(Millis::MIN)),
            holding: AtomicBool::new(true), // until the first absorb has looked
            wants_absorb: AtomicBool::new(false),
        }
    }

    /// Records a custom event in the calling thread's lane if that needs nothing but the lane.
    pub fn record_custom_event(&self, event: &CustomEvent<'_>, rules: Rules) -> Recorded {
        let mut guard = self.lanes[lane_of_this_thread()].0.lock();
        let Lane {
            file: Some(file),
            end,
            absorbed,
            view,
            last_activity,
            ids,
        } = &mut *guard
        else {
            return Recorded::NotHere;
        };
        if view.closed {
            return Recorded::NotHere;
        }
        let now = clock::now_ms();
        let newest = (*last_activity).max(self.last_activity.0.load(Ordering::Relaxed));
        let open = view.session_id.is_some();
        let Some(time) = session::custom_event_time(open, view.foreground, newest, now, rules)
        else {
            return Recorded::NotHere;
        };
        let (session_id, user) = (view.session_id.as_deref(), view.user.as_deref());
        let datapoint = Datapoint::custom(ids.uuid_raw(), time, session_id, user, event);
        let len = datapoint.stored_len();
        let bytes = file.bytes_mut();
        if *end + record::record_len(len) > bytes.len() {
            return Recorded::NotHere;
        }
        let before = *end;
        *end += record::put_record(&mut bytes[before..], Kind::CustomEvent, 0, len, |out| {
            datapoint.store(out)
        });
        if open {
            *last_activity = time;
        }
        let first = before == *absorbed;
        if first {
            self.holding.store(true, Ordering::Release);
        }
        let half = LANE_LEN / 2;
        let half_full = before < half && *end >= half;
        if half_full {
            self.wants_absorb.store(true, Ordering::Release);
        }
        Recorded::Here { first, half_full }
    }

    /// Holds every lane: no lane call runs until the returned value is dropped.
    pub fn hold_all(&self) -> Held<'_> {
        Held {
            lanes: self.lanes.each_ref().map(|lane| lane.0.lock()),
            owner: self,
        }
    }

    /// Some lane may hold records not yet in the journal.
    pub fn holding(&self) -> bool {
        self.holding.load(Ordering::Acquire)
    }

    /// A lane is half full.
    pub fn wants_absorb(&self) -> bool {
        self.wants_absorb.load(Ordering::Acquire)
    }

    /// Publishes the open session's last activity (`Millis::MIN` for none).
    pub fn publish_last_activity(&self, state: &SessionState) {
        let last = state
            .session
            .as_ref()
            .map_or(Millis::MIN, |s| s.last_activity);
        if self.last_activity.0.load(Ordering::Relaxed) != last {
            self.last_activity.0.store(last, Ordering::Relaxed);
        }
    }
}

/// Every lane, held.
pub(crate) struct Held<'a> {
    lanes: [MutexGuard<'a, Lane>; LANES],
    owner: &'a Lanes,
}

impl Held<'_> {
    /// Whether no lane holds records.
    pub fn is_empty(&self) -> bool {
        self.lanes.iter().all(|lane| lane.end == lane.absorbed)
    }

    /// Moves every lane's records into the journal, oldest first, except those whose datapoint
    /// id is in `skip` (already in the journal: recovery after a kill during an absorb).
    pub fn absorb(&mut self, journal: &mut Journal, skip: Option<&HashSet<[u8; 16]>>) -> Absorbed {
        let mut absorbed = Absorbed {
            last_activity: Millis::MIN,
            ..Absorbed::default()
        };
        let mut queues: [Vec<LaneRecord>; LANES] = Default::default();
        for ((lane, queue), index) in self.lanes.iter().zip(&mut queues).zip(0..) {
            let Some(file) = &lane.file else { continue };
            let from = lane.absorbed;
            let bytes = &file.bytes()[from..lane.end];
            record::scan(bytes, &mut Recovery::default(), |record| {
                let offset = from + record.offset;
                let len = record.payload.len();
                // Only a corrupted file holds what does not read: skipped, in its place.
                let head = StoredHead::of(record.payload);
                queue.push(LaneRecord {
                    time: head.map_or(Millis::MIN, |h| h.time),
                    lane: index,
                    start: offset + record::record_len(0),
                    len,
                    end: offset + record::record_len(len),
                    id: head.map(|h| h.id),
                    in_session: head.is_some_and(|h| h.in_session),
                });
            });
        }
        // Merged oldest first, each lane's records in their own order, so what is moved is
        // always a prefix of every lane.
        let mut heads = [0; LANES];
        let mut done = [None; LANES];
        while let Some(record) = (0..LANES)
            .filter_map(|lane| queues[lane].get(heads[lane]))
            .min_by_key(|record| (record.time, record.lane))
        {
            heads[record.lane] += 1;
            let file = self.lanes[record.lane].file.as_ref().expect("scanned");
            let payload = &file.bytes()[record.start..record.start + record.len];
            let known = record
                .id
                .is_some_and(|id| skip.is_some_and(|s| s.contains(&id)));
            if record.id.is_none() {
                log::error(|| "skipped an unreadable record in a lane".into());
            } else if !known {
                match journal.append(Kind::CustomEvent, payload) {
                    Ok((_, dropped)) => {
                        absorbed.recorded += 1;
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
            done[record.lane] = Some(record.end);
        }
        let complete = absorbed.error.is_none();
        for (lane, done) in self.lanes.iter_mut().zip(done) {
            match done {
                // Everything up to `end` was read (any bytes that are no record included).
                _ if complete => lane.absorbed = lane.end,
                Some(done) => lane.absorbed = done,
                None => {}
            }
            if lane.absorbed == lane.end {
                lane.last_activity = Millis::MIN;
                let end = lane.end;
                if let Some(file) = &mut lane.file {
                    zero_backwards(&mut file.bytes_mut()[..end]);
                }
                lane.end = 0;
                lane.absorbed = 0;
            }
        }
        self.owner
            .holding
            .store(!self.is_empty(), Ordering::Release);
        self.owner.wants_absorb.store(false, Ordering::Release);
        absorbed
    }

    /// Clears what follows the records of every lane: after a kill during zeroing, stale bytes
    /// there could otherwise be read back as records after new ones (start-up only).
    pub fn clear_tails(&mut self) {
        for lane in &mut self.lanes {
            let end = lane.end;
            if let Some(file) = &mut lane.file {
                zero_backwards(&mut file.bytes_mut()[end..]);
            }
        }
    }

    /// Gives the lanes the engine's current view (after absorbing: a view changes only while
    /// its lane holds nothing recorded under it).
    pub fn refresh(&mut self, state: &SessionState, closed: bool) {
        for lane in &mut self.lanes {
            let view = &mut lane.view;
            view.closed = closed;
            view.foreground = state.foreground;
            let session_id = state.session.as_ref().map(|s| &s.id);
            if view.session_id.as_ref() != session_id {
                view.session_id = session_id.cloned();
            }
            if view.user != state.user {
                view.user = state.user.clone();
            }
        }
        self.owner.publish_last_activity(state);
    }

    /// Makes the records still in lanes (storage refused to move them) durable in place.
    pub fn sync(&self, later: &mut Vec<Flusher>) -> io::Result<()> {
        for lane in &self.lanes {
            if let (Some(file), true) = (&lane.file, lane.end > 0) {
                file.sync(later)?;
            }
        }
        Ok(())
    }

    /// Gives the calling thread's lane its file, if it has none yet.
    pub fn open_lane_of_this_thread(&mut self) {
        let index = lane_of_this_thread();
        let (Some(dir), lane) = (&self.owner.dir, &mut self.lanes[index]) else {
            return;
        };
        if lane.file.is_some() {
            return;
        }
        match MappedFile::open_prefaulted(&lane_path(dir, index), LANE_LEN) {
            Ok(map) => lane.file = Some(map),
            Err(error) => log::debug(|| format!("cannot create a lane: {error}")),
        }
    }
}

/// Which lane the calling thread uses: assigned in turn at its first custom event.
fn lane_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static LANE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    LANE.with(|lane| {
        if lane.get() == usize::MAX {
            lane.set(NEXT.fetch_add(1, Ordering::Relaxed) % LANES);
        }
        lane.get()
    })
}

fn lane_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("{index}.{}", names::LANE_EXTENSION))
}

/// Zeroes `bytes` from the end, page by page: a kill midway leaves intact records only at the
/// start, where recovery finds them (and skips those already in the journal).
fn zero_backwards(bytes: &mut [u8]) {
    for chunk in bytes.rchunks_mut(4096) {
        chunk.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::OpenSession;
    use crate::test_support::temp_dir;
    use std::fs;

    const RULES: Rules = Rules {
        session_timeout: 1_800_000,
        keep_open_while_foreground: false,
    };

    fn open_session(last_activity: Millis) -> SessionState {
        SessionState {
            user: Some("alice".into()),
            session: Some(OpenSession {
                id: "s1".into(),
                start: last_activity,
                last_activity,
            }),
            foreground: true,
        }
    }

    /// Lanes in `dir`, the calling thread's lane with a file, viewing `state`.
    fn lanes_viewing(dir: &Path, state: &SessionState) -> Lanes {
        let lanes = Lanes::open(dir.join("lanes"), &mut IdGenerator::from_os().unwrap());
        let mut held = lanes.hold_all();
        held.open_lane_of_this_thread();
        held.refresh(state, false);
        drop(held);
        lanes
    }

    fn record(lanes: &Lanes, name: &str) -> bool {
        let event = CustomEvent::new(name, Some(r#"{"k":1}"#)).unwrap();
        matches!(
            lanes.record_custom_event(&event, RULES),
            Recorded::Here { .. }
        )
    }

    /// The custom event names in the journal, in order.
    fn journal_names(journal: &Journal) -> Vec<String> {
        let mut names = Vec::new();
        for pending in journal.oldest(usize::MAX, usize::MAX) {
            let datapoint = Datapoint::load(pending.payload).unwrap();
            if let crate::storage::datapoint::Data::Custom { name, .. } = datapoint.data {
                names.push(name.to_owned());
            }
        }
        names
    }

    #[test]
    fn records_move_to_the_journal_oldest_first_and_the_lanes_are_cleared() {
        let dir = temp_dir("lanes-absorb");
        let state = open_session(clock::now_ms());
        let lanes = lanes_viewing(&dir, &state);
        let (mut journal, _) = Journal::open(&dir.join("journal"), "key", 1000).unwrap();
        assert!(record(&lanes, "a1"));
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut held = lanes.hold_all();
                held.open_lane_of_this_thread();
                held.refresh(&state, false);
                drop(held);
                assert!(record(&lanes, "b1"));
            });
        });
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(record(&lanes, "a2"));
        assert!(lanes.holding());

        let absorbed = lanes.hold_all().absorb(&mut journal, None);
        assert_eq!(absorbed.recorded, 3);
        assert!(absorbed.error.is_none());
        assert!(absorbed.last_activity >= state.session.unwrap().last_activity);
        assert_eq!(journal_names(&journal), ["a1", "b1", "a2"]);
        assert!(!lanes.holding());
        assert!(lanes.hold_all().is_empty());
        for entry in fs::read_dir(dir.join("lanes")).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            assert!(bytes.iter().all(|&b| b == 0), "a cleared lane is all zero");
        }
    }

    #[test]
    fn a_closed_view_or_a_session_that_may_have_expired_records_nothing_here() {
        let dir = temp_dir("lanes-refuse");
        let stale = open_session(clock::now_ms() - RULES.session_timeout);
        let lanes = lanes_viewing(&dir, &stale);
        assert!(
            !record(&lanes, "late"),
            "only the tracker may end the session"
        );
        lanes
            .hold_all()
            .refresh(&open_session(clock::now_ms()), true);
        assert!(!record(&lanes, "closed"));
        lanes
            .hold_all()
            .refresh(&open_session(clock::now_ms()), false);
        assert!(record(&lanes, "fresh"));
    }

    #[test]
    fn what_a_previous_run_left_is_moved_once_and_an_unreadable_record_skipped() {
        let dir = temp_dir("lanes-recover");
        let state = open_session(clock::now_ms());
        let lanes = lanes_viewing(&dir, &state);
        assert!(record(&lanes, "kept"));
        assert!(record(&lanes, "already-moved"));
        let (mut journal, _) = Journal::open(&dir.join("journal"), "key", 1000).unwrap();
        // The previous run moved "already-moved" and was killed before clearing the lane; its
        // lane file also holds a checksummed record that is not a datapoint.
        let mut held = lanes.hold_all();
        let lane = held.lanes.iter_mut().find(|l| l.end > 0).unwrap();
        let Lane {
            file: Some(file),
            end,
            ..
        } = &mut **lane
        else {
            panic!("the lane has its file")
        };
        let mut moved = Vec::new();
        record::scan(&file.bytes()[..*end], &mut Recovery::default(), |r| {
            moved = r.payload.to_vec();
        });
        journal.append(Kind::CustomEvent, &moved).unwrap();
        *end += record::put_record(
            &mut file.bytes_mut()[*end..],
            Kind::CustomEvent,
            0,
            3,
            |out| out.copy_from_slice(b"xyz"),
        );
        drop(held);
        drop(lanes);

        let lanes = Lanes::open(dir.join("lanes"), &mut IdGenerator::from_os().unwrap());
        let skip = journal.pending_ids();
        let absorbed = lanes.hold_all().absorb(&mut journal, Some(&skip));
        assert_eq!(absorbed.recorded, 1, "only the event not moved before");
        assert_eq!(journal_names(&journal), ["already-moved", "kept"]);
        assert!(lanes.hold_all().is_empty());
    }
}
