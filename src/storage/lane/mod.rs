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
//! Each lane has two buffers (files). When the one being written fills, the caller swaps in the
//! other (emptied and zeroed by the worker) and hands the full one to the worker: no caller
//! waits while a lane is copied. If the worker has not given the other back yet (it got no
//! core), the caller creates a third buffer, a fourth, and more while they fit the queue's room
//! (`Lanes::buffer_cap`, at most `lane::BUFFERS`), rather than wait for the engine's lock that
//! the worker holds while it copies; the worker removes the extra ones once it has emptied
//! them, so a drained backlog leaves two buffers per lane. The worker takes full buffers (and swaps out buffers that hold
//! records) under each lane's lock only for the swap, then copies them into the journal with
//! the lanes free (`Lanes::take_for_worker`, `Lanes::absorb_taken`).
//!
//! An absorbed lane is zeroed from its end backwards. A kill in between leaves records that the
//! journal already holds; recovery skips those by datapoint id (`Journal::pending_ids`), so each
//! datapoint is queued exactly once.

use std::cell::Cell;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};

use super::datapoint::{Datapoint, StoredHead};
use super::format::lane::BUFFERS;
use super::format::{lane, names};
use super::journal::Journal;
use super::mapping::{Flusher, MappedFile};
use super::record::{self, Kind, Recovery};
use crate::clock::Clock;
use crate::ids::IdGenerator;
use crate::input::CustomEvent;
use crate::log;
use crate::platform::create_private_dir;
use crate::session::{self, Millis, Rules, SessionId, SessionState, UserName};

mod absorb;

/// Enough for the threads that record at once in practice; more threads share lanes.
pub const LANES: usize = lane::COUNT;
/// One buffer: room for ~3,800 typical custom events; the worker is woken when it is half
/// full. 512 KB rather than 256: with 256 the caller found both buffers full (and waited for
/// the worker) 13-34 times per 1,000,000 events at full speed, with 512 twice.
const LANE_LEN: usize = lane::LEN;
/// Buffers a lane may have whatever the queue's room (`Lanes::buffer_cap`).
const MIN_BUFFER_CAP: usize = 4;
/// What a drained lane keeps resident where it records next (`Lanes::release_memory`): room
/// for some 500 events.
const KEEP_RESIDENT: usize = 64 * 1024;

/// The times of a buffer's first and last records.
type Span = (Millis, Millis);

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
    /// Unabsorbed bytes beyond which one lane's records may not fit the queue's room (each
    /// lane gets an equal share; counted at the smallest record, so never too late).
    drop_watch: AtomicU64,
    /// A lane passed `drop_watch`: the worker absorbs soon, so a drop is announced in time.
    drop_check: AtomicBool,
    /// The engine's clock: lane records are stamped with it.
    clock: Clock,
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
    /// The lane's other buffers, empty and zeroed: one is swapped in when `file` is full. More
    /// than one only while a backlog lasts (see `Lanes::take_for_worker`).
    spare: Vec<MappedFile>,
    /// Full buffers swapped out by callers, for the worker, oldest first (their records are
    /// older than `file`'s).
    retired: Vec<Buffer>,
    /// `file` holds records a previous run left (a kill may have torn some): checksums are
    /// checked when it is absorbed, until it is emptied.
    recovered: bool,
    view: View,
    /// The newest activity recorded in this lane since it was last absorbed.
    last_activity: Millis,
    ids: IdGenerator,
}

/// A lane buffer taken out of its lane: records `[absorbed, end)` are not in the journal yet.
pub(crate) struct Buffer {
    file: MappedFile,
    end: usize,
    absorbed: usize,
    /// It holds records a previous run left (see `Lane::recovered`).
    recovered: bool,
}

/// Buffers the worker took out of their lanes (see `Lanes::take_for_worker`).
pub(crate) struct Taken(Vec<(usize, Buffer)>);

impl Taken {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
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
    /// Recorded. `first`: no lane held records before (delivery may not be scheduled yet);
    /// `wake`: a buffer is half full or was swapped out full, or the lane may hold more than
    /// the queue has room for (`Lanes::drop_check`): the worker should absorb.
    Here { first: bool, wake: bool },
    /// Not recorded: the call must take the engine's lock (the session may have expired, the
    /// engine is closed, or this lane is full or has no file).
    NotHere,
}

/// A record found in a lane, in the order `Held::absorb` sorts them.
struct LaneRecord {
    time: Millis,
    /// Its buffer (index into the sources of `absorb_sources`): the tie-break, oldest first.
    source: usize,
    /// Where its payload is in its buffer, how long, and where the record ends.
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
    pub fn open(dir: PathBuf, ids: &mut IdGenerator, clock: Clock) -> Lanes {
        let created = create_private_dir(&dir);
        if let Err(error) = &created {
            log::warn(|| format!("custom events take the slower path: no lane directory: {error}"));
        }
        // One listing, not a lookup per possible buffer name (a few files: a Vec will do).
        let present: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let lanes = std::array::from_fn(|index| {
            let mut lane = Lane {
                file: None,
                end: 0,
                absorbed: 0,
                spare: Vec::new(),
                retired: Vec::new(),
                recovered: false,
                // Closed until the engine gives its view (`refresh`).
                view: View {
                    closed: true,
                    ..View::default()
                },
                last_activity: Millis::MIN,
                ids: IdGenerator::seeded(ids),
            };
            // Every buffer, oldest records first (a retired buffer's all precede the next's);
            // empty ones last.
            let mut found: Vec<(Option<Span>, usize, Buffer)> = (0..BUFFERS)
                .map(|buffer| (buffer, lane_path(&dir, index, buffer)))
                .filter(|(_, path)| present.contains(path))
                .filter_map(|(buffer, path)| match MappedFile::open(&path, LANE_LEN) {
                    Ok(file) => {
                        let mut times = None;
                        let end = record::scan(file.bytes(), &mut Recovery::default(), |r| {
                            let time = StoredHead::of(r.payload).map_or(Millis::MIN, |h| h.time);
                            let (first, _) = times.unwrap_or((time, time));
                            times = Some((first, time));
                        });
                        Some((
                            times,
                            buffer,
                            Buffer {
                                file,
                                end,
                                absorbed: 0,
                                recovered: end > 0,
                            },
                        ))
                    }
                    Err(error) => {
                        log::warn(|| format!("cannot open a lane: {error}"));
                        None
                    }
                })
                .collect();
            // Unstable with the file's place as the last key: the same order as a stable sort,
            // without linking a second sort's code (-4 KB).
            found.sort_unstable_by_key(|(times, buffer, _)| (times.is_none(), *times, *buffer));
            let (mut holding, empty): (Vec<Buffer>, Vec<Buffer>) = found
                .into_iter()
                .map(|(_, _, b)| b)
                .partition(|b| b.end > 0);
            let mut empty = empty.into_iter();
            // The newest buffer that holds records is written on; the older ones are retired.
            if let Some(active) = holding.pop().or_else(|| empty.next()) {
                lane.end = active.end;
                lane.recovered = active.recovered;
                lane.file = Some(active.file);
                lane.retired = holding;
                lane.spare.extend(empty.next().map(|b| b.file));
            }
            for extra in empty {
                remove_buffer(extra.file);
            }
            Padded(Mutex::new(lane))
        });
        Lanes {
            dir: created.is_ok().then_some(dir),
            lanes,
            last_activity: Padded(AtomicI64::new(Millis::MIN)),
            holding: AtomicBool::new(true), // until the first absorb has looked
            wants_absorb: AtomicBool::new(false),
            drop_watch: AtomicU64::new(u64::MAX), // until the engine knows the queue's room
            drop_check: AtomicBool::new(false),
            clock,
        }
    }

    /// Tells the lanes how many datapoints the queue has room for (see `drop_watch`).
    pub fn watch_for_drops(&self, room: u64) {
        let share = room / LANES as u64;
        let bytes = share.saturating_mul(record::record_len(0) as u64);
        self.drop_watch.store(bytes, Ordering::Relaxed);
    }

    /// How many buffers a lane may have: four, and more (up to `BUFFERS`) while they hold no
    /// more than the lane's share of the queue's room (`drop_watch`), so that a caller far
    /// ahead of the worker takes another buffer rather than the engine's lock, which the
    /// worker holds while it copies. Beyond the room the journal drops the oldest anyway.
    fn buffer_cap(&self) -> usize {
        let room = self.drop_watch.load(Ordering::Relaxed) / LANE_LEN as u64;
        usize::try_from(room)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .clamp(MIN_BUFFER_CAP, BUFFERS)
    }

    /// A lane may hold more records than the queue has room for; clears the flag.
    pub fn take_drop_check(&self) -> bool {
        self.drop_check.swap(false, Ordering::SeqCst)
    }

    /// As `take_drop_check`, without clearing it.
    pub fn drop_check(&self) -> bool {
        self.drop_check.load(Ordering::SeqCst)
    }

    /// Records a custom event in the calling thread's lane if that needs nothing but the lane.
    pub fn record_custom_event(&self, event: &CustomEvent<'_>, rules: Rules) -> Recorded {
        let index = lane_of_this_thread();
        let mut guard = self.lanes[index].0.lock();
        let Lane {
            file: Some(file),
            end,
            absorbed,
            spare,
            retired,
            recovered,
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
        let now = self.clock.now_ms();
        let newest = (*last_activity).max(self.last_activity.0.load(Ordering::Relaxed));
        let open = view.session_id.is_some();
        let Some(time) = session::custom_event_time(open, view.foreground, newest, now, rules)
        else {
            return Recorded::NotHere;
        };
        let (session_id, user) = (view.session_id.as_deref(), view.user.as_deref());
        let datapoint = Datapoint::custom(ids.uuid_raw(), time, session_id, user, event);
        let len = datapoint.stored_len();
        let mut swapped = false;
        if *end + record::record_len(len) > file.bytes().len() {
            // Full: swap in the other buffer if the worker has emptied it, or else a new one,
            // and hand this one over; only with every buffer full does the call take the
            // engine's lock (and wait for the worker).
            if record::record_len(len) > LANE_LEN {
                return Recorded::NotHere;
            }
            let empty = match spare.pop() {
                Some(empty) => empty,
                None if retired.len() + 1 < self.buffer_cap() => {
                    match self.dir.as_deref().and_then(|dir| new_buffer(dir, index)) {
                        Some(empty) => empty,
                        None => return Recorded::NotHere,
                    }
                }
                None => return Recorded::NotHere,
            };
            let full = std::mem::replace(file, empty);
            retired.push(Buffer {
                file: full,
                end: *end,
                absorbed: *absorbed,
                recovered: *recovered,
            });
            (*end, *absorbed, *recovered) = (0, 0, false);
            swapped = true;
        }
        let before = *end;
        let bytes = file.bytes_mut();
        *end += record::put_record(&mut bytes[before..], Kind::CustomEvent, 0, len, |out| {
            datapoint.store(out)
        });
        if open {
            *last_activity = time;
        }
        // One atomic read-modify-write per buffer, not per call.
        let first = before == *absorbed && !swapped && !self.holding.swap(true, Ordering::SeqCst);
        let half = LANE_LEN / 2;
        let wake = swapped || (before < half && *end >= half);
        if wake {
            self.wants_absorb.store(true, Ordering::SeqCst);
        }
        // Passing the watch asks the worker once (until it has checked), not on every call.
        let watch = self.drop_watch.load(Ordering::Relaxed);
        let unabsorbed = |at: usize| (at - *absorbed) as u64;
        let check = unabsorbed(before) <= watch
            && unabsorbed(*end) > watch
            && !self.drop_check.swap(true, Ordering::SeqCst);
        Recorded::Here {
            first,
            wake: wake || check,
        }
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

    /// A lane is half full or has a full buffer waiting. (Sequentially consistent: the worker
    /// reads it after saying it is about to sleep, a caller writes it before reading that.)
    pub fn wants_absorb(&self) -> bool {
        self.wants_absorb.load(Ordering::SeqCst)
    }

    /// For the worker once a backlog has drained: drops the lane buffers' pages from the
    /// process's resident set (a mapped file page counts as resident, clean or not), except
    /// `KEEP_RESIDENT` bytes where each lane records next, so that events logged now and then
    /// never wait on a page fault. No byte changes; a burst faults the rest back in. Each lane
    /// is held only while its own buffers are released.
    pub fn release_memory(&self) {
        for lane in &self.lanes {
            let lane = lane.0.lock();
            if let Some(file) = &lane.file {
                let len = file.bytes().len();
                file.release((lane.end + KEEP_RESIDENT).min(len)..len);
            }
            for spare in &lane.spare {
                spare.release(0..spare.bytes().len());
            }
        }
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
        self.lanes
            .iter()
            .all(|lane| lane.end == lane.absorbed && lane.retired.is_empty())
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
            for retired in &lane.retired {
                retired.file.sync(later)?;
            }
        }
        Ok(())
    }

    /// Unmaps every buffer, for a closed engine that may outlive its shutdown (`Engine::
    /// release_storage`); records not absorbed stay in their files for the next run.
    pub fn close_files(&mut self) {
        for lane in &mut self.lanes {
            (lane.file, lane.end, lane.absorbed) = (None, 0, 0);
            lane.spare.clear();
            lane.retired.clear();
        }
    }

    /// Gives the calling thread's lane its two buffers, if it has not got them yet.
    pub fn open_lane_of_this_thread(&mut self) {
        let index = lane_of_this_thread();
        let (Some(dir), lane) = (&self.owner.dir, &mut *self.lanes[index]) else {
            return;
        };
        let open =
            |buffer| match MappedFile::open_prefaulted(&lane_path(dir, index, buffer), LANE_LEN) {
                Ok(map) => Some(map),
                Err(error) => {
                    log::debug(|| format!("cannot create a lane: {error}"));
                    None
                }
            };
        if lane.file.is_none() {
            lane.file = open(0);
        }
        if lane.file.is_some() && lane.spare.is_empty() && lane.retired.is_empty() {
            // The other buffer goes to whichever name is free (a lane from an older version
            // has only the first).
            let free = (0..BUFFERS).find(|&b| !lane_path(dir, index, b).exists());
            lane.spare.extend(free.and_then(open));
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

/// A lane's buffer files: `<lane>.lane`, `<lane>.b.lane`, `<lane>.c.lane`...
fn lane_path(dir: &Path, index: usize, buffer: usize) -> PathBuf {
    match buffer.checked_sub(1) {
        None => dir.join(format!("{index}.{}", names::LANE_EXTENSION)),
        Some(letter) => dir.join(format!(
            "{index}.{}.{}",
            names::LANE_BUFFER_LETTERS[letter],
            names::LANE_EXTENSION
        )),
    }
}

/// A buffer for a caller that found both of its lane's full, under a free name. Not
/// prefaulted: that takes milliseconds here, the page faults spread over the calls that fill it.
fn new_buffer(dir: &Path, index: usize) -> Option<MappedFile> {
    let path = (0..BUFFERS)
        .map(|buffer| lane_path(dir, index, buffer))
        .find(|path| !path.exists())?;
    MappedFile::open(&path, LANE_LEN)
        .inspect_err(|error| log::debug(|| format!("cannot create a lane buffer: {error}")))
        .ok()
}

/// Deletes an emptied buffer a drained lane no longer needs (it keeps one spare).
fn remove_buffer(file: MappedFile) {
    let path = file.path().to_owned();
    if let Err(error) = file.remove() {
        log::debug(|| format!("cannot remove {}: {error}", path.display()));
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
        let lanes = Lanes::open(
            dir.join("lanes"),
            &mut IdGenerator::from_os().unwrap(),
            Clock::System,
        );
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
        let state = open_session(crate::clock::now_ms());
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
        assert_lane_files_zeroed(&dir);
    }

    fn assert_lane_files_zeroed(dir: &Path) {
        for entry in fs::read_dir(dir.join("lanes")).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            assert!(bytes.iter().all(|&b| b == 0), "a cleared lane is all zero");
        }
    }

    #[test]
    fn released_lanes_keep_their_records_and_record_on() {
        let dir = temp_dir("lanes-release");
        let lanes = lanes_viewing(&dir, &open_session(crate::clock::now_ms()));
        let (mut journal, _) = Journal::open(&dir.join("journal"), "key", 1_000_000).unwrap();
        let mut names = record_many(&lanes, "a", 100);
        // Releasing changes no byte, even of records not absorbed yet.
        lanes.release_memory();
        names.extend(record_many(&lanes, "b", OVER_A_BUFFER));
        lanes.release_memory();
        lanes.absorb_taken(lanes.take_for_worker(), &mut journal);
        lanes.hold_all().absorb(&mut journal, None);
        assert_eq!(journal_names(&journal), names);
        lanes.release_memory();
        assert!(record(&lanes, "after"), "a released lane records again");
        lanes.hold_all().absorb(&mut journal, None);
        names.push("after".into());
        assert_eq!(journal_names(&journal), names);
        assert_lane_files_zeroed(&dir);
    }

    #[test]
    fn a_closed_view_or_a_session_that_may_have_expired_records_nothing_here() {
        let dir = temp_dir("lanes-refuse");
        let stale = open_session(crate::clock::now_ms() - RULES.session_timeout);
        let lanes = lanes_viewing(&dir, &stale);
        assert!(
            !record(&lanes, "late"),
            "only the tracker may end the session"
        );
        lanes
            .hold_all()
            .refresh(&open_session(crate::clock::now_ms()), true);
        assert!(!record(&lanes, "closed"));
        lanes
            .hold_all()
            .refresh(&open_session(crate::clock::now_ms()), false);
        assert!(record(&lanes, "fresh"));
    }

    #[test]
    fn what_a_previous_run_left_is_moved_once_and_an_unreadable_record_skipped() {
        let dir = temp_dir("lanes-recover");
        let state = open_session(crate::clock::now_ms());
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

        let lanes = Lanes::open(
            dir.join("lanes"),
            &mut IdGenerator::from_os().unwrap(),
            Clock::System,
        );
        let skip = journal.pending_ids();
        let absorbed = lanes.hold_all().absorb(&mut journal, Some(&skip));
        assert_eq!(absorbed.recorded, 1, "only the event not moved before");
        assert_eq!(journal_names(&journal), ["already-moved", "kept"]);
        assert!(lanes.hold_all().is_empty());
    }

    /// Records `count` events named `<prefix><n>` in the calling thread's lane.
    fn record_many(lanes: &Lanes, prefix: &str, count: usize) -> Vec<String> {
        (0..count)
            .map(|n| {
                let name = format!("{prefix}{n}");
                assert!(record(lanes, &name), "{name} recorded in the lane");
                name
            })
            .collect()
    }

    /// More events than one buffer holds, fewer than two (records of ~90-120 bytes).
    const OVER_A_BUFFER: usize = LANE_LEN / 64;

    fn this_lane(lanes: &Lanes) -> parking_lot::MutexGuard<'_, Lane> {
        lanes.lanes[lane_of_this_thread()].0.lock()
    }

    #[test]
    fn a_full_buffer_is_swapped_for_the_other_and_both_move_in_order() {
        let dir = temp_dir("lanes-swap");
        let lanes = lanes_viewing(&dir, &open_session(crate::clock::now_ms()));
        let (mut journal, _) = Journal::open(&dir.join("journal"), "key", 1_000_000).unwrap();
        let names = record_many(&lanes, "e", OVER_A_BUFFER);
        {
            let lane = this_lane(&lanes);
            assert!(lane.retired.len() == 1 && lane.spare.is_empty(), "swapped");
        }
        assert!(lanes.wants_absorb());
        let absorbed = lanes.hold_all().absorb(&mut journal, None);
        assert_eq!(absorbed.recorded as usize, names.len());
        assert_eq!(journal_names(&journal), names);
        let lane = this_lane(&lanes);
        assert!(
            lane.retired.is_empty() && lane.spare.len() == 1,
            "given back"
        );
        assert!(lane.spare[0].bytes().iter().all(|&b| b == 0));
    }

    #[test]
    fn the_worker_moves_buffers_it_took_while_the_lane_keeps_recording() {
        let dir = temp_dir("lanes-take");
        let lanes = lanes_viewing(&dir, &open_session(crate::clock::now_ms()));
        let (mut journal, _) = Journal::open(&dir.join("journal"), "key", 1_000_000).unwrap();
        let mut names = record_many(&lanes, "a", 10);
        let taken = lanes.take_for_worker();
        assert!(!taken.is_empty());
        // The lane is not held meanwhile: its other buffer records.
        let later = record_many(&lanes, "b", 10);
        let absorbed = lanes.absorb_taken(taken, &mut journal);
        assert_eq!(absorbed.recorded, 10);
        assert_eq!(journal_names(&journal), names);
        assert!(lanes.holding());
        lanes.hold_all().absorb(&mut journal, None);
        names.extend(later);
        assert_eq!(journal_names(&journal), names);
        assert!(lanes.hold_all().is_empty());
        assert!(
            this_lane(&lanes).spare.len() == 1,
            "the taken buffer is back"
        );
    }

    #[test]
    fn after_a_kill_both_buffers_of_a_lane_are_recovered_oldest_first() {
        let dir = temp_dir("lanes-two-recover");
        let lanes = lanes_viewing(&dir, &open_session(crate::clock::now_ms()));
        let mut names = record_many(&lanes, "old", OVER_A_BUFFER);
        std::thread::sleep(std::time::Duration::from_millis(2));
        names.extend(record_many(&lanes, "new", 5));
        assert!(!this_lane(&lanes).retired.is_empty());
        drop(lanes); // killed: nothing moved, nothing cleared
        let lanes = Lanes::open(
            dir.join("lanes"),
            &mut IdGenerator::from_os().unwrap(),
            Clock::System,
        );
        let (mut journal, _) = Journal::open(&dir.join("journal"), "key", 1_000_000).unwrap();
        let absorbed = lanes.hold_all().absorb(&mut journal, None);
        assert_eq!(absorbed.recorded as usize, names.len());
        assert_eq!(journal_names(&journal), names);
    }

    /// The lane files in `dir`'s lanes directory, by name.
    fn lane_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.join("lanes"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The calling thread's lane files, named as `lane_path` names the first `count`.
    fn first_buffers(count: usize) -> Vec<String> {
        let index = lane_of_this_thread();
        let mut names: Vec<String> = (0..count)
            .map(|b| {
                let path = lane_path(Path::new(""), index, b);
                path.to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// Records events until the calling thread's lane has retired `retired` buffers.
    fn record_until_retired(lanes: &Lanes, retired: usize) -> Vec<String> {
        let mut names = Vec::new();
        while this_lane(lanes).retired.len() < retired {
            let name = format!("e{}", names.len());
            assert!(record(lanes, &name), "{name} recorded in the lane");
            names.push(name);
        }
        names
    }

    #[test]
    fn with_both_buffers_full_a_caller_takes_new_ones_and_the_worker_removes_them_once_empty() {
        let dir = temp_dir("lanes-extra");
        let lanes = lanes_viewing(&dir, &open_session(crate::clock::now_ms()));
        let (mut journal, _) = Journal::open(&dir.join("journal"), "key", 10_000_000).unwrap();
        // The worker gets no core: the caller creates buffers rather than wait for it.
        let mut names = record_until_retired(&lanes, BUFFERS - 1);
        assert_eq!(lane_files(&dir), first_buffers(BUFFERS));
        // Only with every buffer full does a call need the engine (and wait for the worker).
        let mut refused = false;
        for n in 0..OVER_A_BUFFER {
            let name = format!("last{n}");
            if !record(&lanes, &name) {
                refused = true;
                break;
            }
            names.push(name);
        }
        assert!(refused, "a lane has at most BUFFERS buffers");
        assert_eq!(this_lane(&lanes).retired.len(), BUFFERS - 1);

        // The worker takes the full buffers with the lane free, then a call holding every lane
        // moves the rest.
        let taken = lanes.take_for_worker();
        let absorbed = lanes.absorb_taken(taken, &mut journal);
        assert!(absorbed.error.is_none());
        let in_full_buffers = absorbed.recorded as usize;
        assert!(in_full_buffers > 0 && in_full_buffers < names.len());
        assert_eq!(journal_names(&journal), names[..in_full_buffers]);
        let absorbed = lanes.hold_all().absorb(&mut journal, None);
        assert_eq!(in_full_buffers + absorbed.recorded as usize, names.len());
        assert_eq!(journal_names(&journal), names);
        assert_eq!(
            lane_files(&dir).len(),
            BUFFERS,
            "kept while the backlog lasted"
        );
        // The worker's next look finds the lane drained: one spare kept, the extras removed.
        assert!(lanes.take_for_worker().is_empty());
        {
            let lane = this_lane(&lanes);
            assert!(lane.retired.is_empty() && lane.spare.len() == 1);
        }
        assert_eq!(lane_files(&dir).len(), 2, "two buffers left");
        assert!(record(&lanes, "after"), "the lane records again");
    }

    /// Records until a call is refused (every buffer full); returns the names recorded.
    fn record_until_refused(lanes: &Lanes) -> Vec<String> {
        let mut names = Vec::new();
        loop {
            let name = format!("e{}", names.len());
            if !record(lanes, &name) {
                return names;
            }
            names.push(name);
        }
    }

    #[test]
    fn a_lane_takes_more_buffers_only_while_the_queue_has_room_for_them() {
        // A small queue: the lane's share is under a buffer, so four buffers, as ever.
        let dir = temp_dir("lanes-cap-small");
        let lanes = lanes_viewing(&dir, &open_session(crate::clock::now_ms()));
        lanes.watch_for_drops(1_000);
        record_until_refused(&lanes);
        assert_eq!(this_lane(&lanes).retired.len(), MIN_BUFFER_CAP - 1);
        assert_eq!(lane_files(&dir).len(), MIN_BUFFER_CAP);

        // Room for six buffers' worth of the smallest records per lane: seven buffers.
        let dir = temp_dir("lanes-cap-room");
        let lanes = lanes_viewing(&dir, &open_session(crate::clock::now_ms()));
        let share = (6 * LANE_LEN).div_ceil(record::record_len(0)) as u64;
        lanes.watch_for_drops(share * LANES as u64);
        let names = record_until_refused(&lanes);
        assert_eq!(this_lane(&lanes).retired.len(), 6);
        assert_eq!(lane_files(&dir), first_buffers(7));

        // And whatever the room, never more than `BUFFERS`; every record moves, in order.
        lanes.watch_for_drops(u64::MAX / 2);
        let mut more = record_until_refused(&lanes);
        assert_eq!(this_lane(&lanes).retired.len(), BUFFERS - 1);
        let (mut journal, _) = Journal::open(&dir.join("journal"), "key", 100_000_000).unwrap();
        lanes.absorb_taken(lanes.take_for_worker(), &mut journal);
        lanes.hold_all().absorb(&mut journal, None);
        let mut all = names;
        all.append(&mut more);
        assert_eq!(journal_names(&journal), all);
    }

    #[test]
    fn after_a_kill_every_extra_buffer_is_recovered_in_order_and_then_removed() {
        let dir = temp_dir("lanes-extra-recover");
        let lanes = lanes_viewing(&dir, &open_session(crate::clock::now_ms()));
        // More buffers than a lane has whatever the queue's room (the room is unknown here).
        let mut names = record_until_retired(&lanes, MIN_BUFFER_CAP + 1);
        names.extend(record_many(&lanes, "new", 5));
        assert_eq!(lane_files(&dir), first_buffers(MIN_BUFFER_CAP + 2));
        drop(lanes); // killed: nothing moved, nothing cleared
        let lanes = Lanes::open(
            dir.join("lanes"),
            &mut IdGenerator::from_os().unwrap(),
            Clock::System,
        );
        let (mut journal, _) = Journal::open(&dir.join("journal"), "key", 10_000_000).unwrap();
        let absorbed = lanes.hold_all().absorb(&mut journal, None);
        assert_eq!(absorbed.recorded as usize, names.len());
        assert_eq!(journal_names(&journal), names);
        assert_eq!(
            lane_files(&dir).len(),
            MIN_BUFFER_CAP + 2,
            "emptied, kept until the worker looks"
        );
        // The worker finds the lane drained and gives up the extra spare.
        let taken = lanes.take_for_worker();
        assert!(taken.is_empty());
        assert_eq!(lane_files(&dir).len(), 2, "two buffers left");
        lanes
            .hold_all()
            .refresh(&open_session(crate::clock::now_ms()), false);
        assert!(record(&lanes, "after"), "the lane records again");
    }
}
