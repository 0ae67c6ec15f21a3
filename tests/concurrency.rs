//! The threading promise: every function may be called from any thread at any time, including
//! while another thread shuts the library down and initializes it again. Eight threads call
//! every entry point at random (a small seeded PRNG) while a ninth loops
//! stint_shutdown/stint_initialize on the same data directory, delivering to a loopback
//! collector. The run is bounded (`STINT_STORM_SECONDS`, default 5) and watched: if it does not
//! finish within a generous bound, that is a deadlock and the test fails.
//!
//! Afterwards: every call returned a status from the set allowed for its function, every custom
//! event whose call returned OK is delivered exactly once, sessions are consistent on the wire,
//! and the counters of a single run add up (delivered + dropped + pending = recovered + recorded).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{c_char, c_void, CStr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use stint_collector::{Collector, Faults};

const CALLERS: usize = 8;

/// xorshift64*: small, seeded, good enough to pick calls.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

use StintStatus::*;

/// The statuses each function may return in this storm (valid arguments unless marked).
fn allowed(function: &str) -> &'static [StintStatus] {
    match function {
        "stint_initialize" => &[Ok, AlreadyInitialized],
        "stint_shutdown" => &[Ok, NotInitialized, Timeout],
        "stint_flush" => &[Ok, NotInitialized, Timeout],
        "stint_change_user(invalid)" | "stint_log_custom_event(invalid)" => &[InvalidArgument],
        "stint_set_session_listener" | "stint_set_log_handler" => &[Ok],
        _ => &[Ok, NotInitialized],
    }
}

/// What the storm saw: status counts per function, violations, and the events that returned OK.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<String, BTreeMap<String, u64>>,
    violations: Vec<String>,
    confirmed: Vec<String>,
}

impl Tally {
    fn note(&mut self, function: &str, status: StintStatus) {
        *self
            .statuses
            .entry(function.to_owned())
            .or_default()
            .entry(format!("{status:?}"))
            .or_default() += 1;
        if !allowed(function).contains(&status) {
            self.violations
                .push(format!("{function} returned {status:?}: {}", last_error()));
        }
    }

    fn merge(&mut self, other: Tally) {
        for (function, counts) in other.statuses {
            let mine = self.statuses.entry(function).or_default();
            for (status, count) in counts {
                *mine.entry(status).or_default() += count;
            }
        }
        self.violations.extend(other.violations);
        self.confirmed.extend(other.confirmed);
    }

    fn calls(&self) -> u64 {
        self.statuses.values().flat_map(|c| c.values()).sum()
    }
}

static LISTENER_CALLS: AtomicU64 = AtomicU64::new(0);
static LOG_LINES: AtomicU64 = AtomicU64::new(0);

/// A listener that calls back into the library, as a listener may.
unsafe extern "C" fn reentrant_listener(event: *const StintSessionEvent, _: *mut c_void) {
    let event = unsafe { &*event };
    assert!(!event.session_id.is_null());
    let mut buffer = [0 as c_char; 37];
    let _ = unsafe { stint_get_session_id(buffer.as_mut_ptr(), buffer.len()) };
    LISTENER_CALLS.fetch_add(1, Ordering::Relaxed);
}

unsafe extern "C" fn counting_log(_: StintLogLevel, message: *const c_char, _: *mut c_void) {
    assert!(!message.is_null());
    LOG_LINES.fetch_add(1, Ordering::Relaxed);
}

unsafe extern "C" fn counting_log_too(
    level: StintLogLevel,
    message: *const c_char,
    _: *mut c_void,
) {
    unsafe { counting_log(level, message, std::ptr::null_mut()) }
}

/// One caller: random calls until `stop`, each counted in `calls`.
fn caller(
    index: usize,
    seed: u64,
    options_json: Arc<String>,
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
) -> Tally {
    let mut rng = Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0x1000_0000_01b3));
    let mut tally = Tally::default();
    let users = ["alice", "bob", "carol"];
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        calls.fetch_add(1, Ordering::Relaxed);
        // Out of 1000: lifecycle calls are rare here (the lifecycle thread does most of them),
        // so the library is initialized for most of the run.
        let pick = rng.below(1000);
        if pick < 2 {
            tally.note("stint_shutdown", stint_shutdown(rng.below(50) as u32));
            continue;
        }
        if pick < 10 {
            tally.note("stint_initialize", init("storm-key", &options_json));
            continue;
        }
        match rng.below(100) {
            0..=9 => tally.note("stint_open_session", stint_open_session()),
            10..=14 => tally.note("stint_close_session", stint_close_session()),
            15..=19 => {
                let user = users[rng.below(users.len() as u64) as usize];
                tally.note("stint_change_user", change_user(user));
            }
            20 => tally.note("stint_change_user(invalid)", change_user("")),
            21..=54 => {
                sequence += 1;
                let name = format!("c{index}-{sequence}");
                let properties = (rng.below(2) == 0).then_some(r#"{"k":[1,2,{"x":"y"}]}"#);
                let status = event(&name, properties);
                tally.note("stint_log_custom_event", status);
                if status == Ok {
                    tally.confirmed.push(name);
                }
            }
            55 => tally.note(
                "stint_log_custom_event(invalid)",
                event("bad", Some(r#"{"unterminated":"#)),
            ),
            56..=59 => tally.note(
                "stint_request_immediate_data_flush",
                stint_request_immediate_data_flush(),
            ),
            60..=62 => tally.note("stint_flush", stint_flush(rng.below(100) as u32)),
            63..=72 => {
                let mut buffer = [0x55 as c_char; 37];
                let status = unsafe { stint_get_session_id(buffer.as_mut_ptr(), buffer.len()) };
                tally.note("stint_get_session_id", status);
                if status == Ok {
                    let id = unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_str().unwrap();
                    if !(id.is_empty() || id.len() == 36) {
                        tally.violations.push(format!("session id {id:?}"));
                    }
                }
            }
            73..=82 => {
                let mut stats = StintStats::default();
                let status = unsafe { stint_get_stats(&mut stats) };
                tally.note("stint_get_stats", status);
                if status == Ok
                    && stats.datapoints_delivered + stats.datapoints_dropped > 10_000_000
                {
                    tally.violations.push(format!("absurd stats {stats:?}"));
                }
            }
            83..=89 => {
                let mut buffer = [0 as c_char; 256];
                let len = unsafe { stint_last_error_message(buffer.as_mut_ptr(), buffer.len()) };
                let copied = unsafe { CStr::from_ptr(buffer.as_ptr()) };
                if len > 1024 || copied.to_str().is_err() {
                    tally.violations.push(format!("last error of {len} bytes"));
                }
                *tally
                    .statuses
                    .entry("stint_last_error_message".into())
                    .or_default()
                    .entry("length".into())
                    .or_default() += 1;
            }
            90..=93 => {
                let listener = (rng.below(2) == 0).then_some(reentrant_listener as _);
                tally.note("stint_set_session_listener", unsafe {
                    stint_set_session_listener(listener, std::ptr::null_mut())
                });
            }
            94..=96 => {
                // Two handlers in turn (unsetting would send the debug log to stderr).
                let handler = if rng.below(2) == 0 {
                    counting_log as unsafe extern "C" fn(_, _, _)
                } else {
                    counting_log_too
                };
                tally.note("stint_set_log_handler", unsafe {
                    stint_set_log_handler(Some(handler), std::ptr::null_mut())
                });
            }
            _ => {
                let version = unsafe { CStr::from_ptr(stint_version()) };
                if version.to_bytes() != env!("CARGO_PKG_VERSION").as_bytes() {
                    tally.violations.push("stint_version changed".into());
                }
                *tally
                    .statuses
                    .entry("stint_version".into())
                    .or_default()
                    .entry("string".into())
                    .or_default() += 1;
            }
        }
    }
    tally
}

/// Waits until the callers have made `n` more calls (their progress, not the clock, paces the
/// lifecycle thread); a stalled caller is the watchdog's to report, so the wait is bounded.
fn let_callers_make(calls: &AtomicU64, n: u64) {
    let target = calls.load(Ordering::Relaxed) + n;
    spin_until(Duration::from_secs(30), || {
        calls.load(Ordering::Relaxed) >= target
    });
}

/// The lifecycle thread: shutdown, initialize, over and over, with a random number of the
/// callers' calls between them, until `seconds` have passed; then it stops the callers.
fn lifecycle(
    seconds: u64,
    seed: u64,
    options_json: Arc<String>,
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
) -> (Tally, u64) {
    let mut rng = Rng::new(seed ^ 0x5151);
    let mut tally = Tally::default();
    let mut cycles = 0;
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        // About as many calls as 20-80 ms gave under load on this VM (debug build), then a
        // short window in which the callers meet an uninitialized library.
        let_callers_make(&calls, 200 + rng.below(800));
        tally.note("stint_shutdown", stint_shutdown(rng.below(200) as u32));
        let_callers_make(&calls, rng.below(30));
        let status = init("storm-key", &options_json);
        tally.note("stint_initialize", status);
        cycles += 1;
    }
    stop.store(true, Ordering::Relaxed);
    (tally, cycles)
}

struct StormReport {
    tally: Tally,
    cycles: u64,
}

fn storm(seconds: u64, seed: u64, options_json: String) -> StormReport {
    let options_json = Arc::new(options_json);
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..CALLERS)
        .map(|index| {
            let (options_json, stop, calls) = (options_json.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || caller(index, seed, options_json, stop, calls))
        })
        .collect();
    let (lifecycle_tally, cycles) = lifecycle(seconds, seed, options_json, stop, calls);
    let mut tally = Tally::default();
    for caller in callers {
        tally.merge(caller.join().expect("a caller thread panicked"));
    }
    tally.merge(lifecycle_tally);
    StormReport { tally, cycles }
}

fn flush_until_ok(bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        let status = stint_flush(5_000);
        if status == Ok {
            return;
        }
        assert_eq!(status, Timeout, "{}", last_error());
        assert!(
            Instant::now() < deadline,
            "flush never succeeded: {:?}",
            stats()
        );
    }
}

fn custom_event_names(collector: &Collector) -> Vec<String> {
    named(&collector.datapoints(), "ce")
        .iter()
        .map(|d| d["data"]["n"].as_str().unwrap().to_owned())
        .collect()
}

/// Each session id starts at most once and ends at most once, after its start, on the wire.
fn assert_sessions_consistent(collector: &Collector) -> (usize, usize) {
    let mut started: HashMap<String, usize> = HashMap::new();
    let mut ended: HashSet<String> = HashSet::new();
    for (position, datapoint) in collector.datapoints().iter().enumerate() {
        let session = datapoint["session_id"].as_str().map(str::to_owned);
        match datapoint["name"].as_str().unwrap() {
            "ss" => {
                let id = session.expect("ss has a session");
                assert!(
                    started.insert(id.clone(), position).is_none(),
                    "{id} started twice"
                );
            }
            "se" => {
                let id = session.expect("se has a session");
                let start = started
                    .get(&id)
                    .unwrap_or_else(|| panic!("{id} ended, never started"));
                assert!(*start < position, "{id} ended before it started");
                assert!(ended.insert(id.clone()), "{id} ended twice");
            }
            _ => {}
        }
    }
    (started.len(), ended.len())
}

fn options_for(dir: &Path, collector: &Collector) -> String {
    options(
        dir,
        &format!(
            r#""baseUrl":"{}","flushIntervalInSeconds":1,"logLevel":"debug""#,
            collector.url()
        ),
    )
}

#[test]
fn eight_threads_and_a_shutdown_loop_never_crash_deadlock_or_lose_a_datapoint() {
    let _turn = serial();
    let seconds: u64 = std::env::var("STINT_STORM_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("STINT_STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("storm: {seconds} s, seed {seed} (STINT_STORM_SEED reproduces the call sequence)");
    let collector = Collector::start().unwrap();
    // Now and then the collector fails a few requests, so retries run during the storm too.
    collector.set_faults(Faults {
        fail_next: 3,
        fail_status: 503,
        ..Faults::default()
    });
    unsafe { stint_set_log_handler(Some(counting_log), std::ptr::null_mut()) };
    let dir = fresh_dir("storm");
    let options_json = options_for(&dir, &collector);
    assert_eq!(init("storm-key", &options_json), Ok, "{}", last_error());

    // The storm runs on its own thread, watched: a deadlock fails the test instead of hanging it.
    let (done, finished) = mpsc::channel();
    let storm_options = options_json.clone();
    std::thread::spawn(move || {
        let report = storm(seconds, seed, storm_options);
        let _ = done.send(report);
    });
    let bound = Duration::from_secs(seconds + 180);
    let report = match finished.recv_timeout(bound) {
        Result::Ok(report) => report,
        Err(_) => panic!("the storm did not finish within {bound:?}: a deadlock (seed {seed})"),
    };
    let tally = report.tally;
    for (function, counts) in &tally.statuses {
        eprintln!("  {function:<36} {counts:?}");
    }
    assert!(
        tally.violations.is_empty(),
        "{} calls outside their allowed statuses, e.g. {:?}",
        tally.violations.len(),
        &tally.violations[..tally.violations.len().min(5)]
    );
    assert!(
        report.cycles >= 3,
        "the lifecycle thread cycled {} times",
        report.cycles
    );
    assert!(!tally.confirmed.is_empty(), "some events were recorded");

    // A single final run: counters add up, and everything returned OK arrives exactly once.
    unsafe { stint_set_session_listener(None, std::ptr::null_mut()) };
    unsafe { stint_set_log_handler(None, std::ptr::null_mut()) };
    let _ = stint_shutdown(10_000);
    collector.set_faults(Faults::default());
    assert_eq!(init("storm-key", &options_json), Ok, "{}", last_error());
    let at_start = stats();
    assert_eq!(at_start.datapoints_recorded, 0, "{at_start:?}");
    let recovered = at_start.datapoints_pending;
    let mut confirmed = tally.confirmed.clone();
    for i in 0..10 {
        let name = format!("final-{i}");
        assert_eq!(event(&name, None), Ok);
        confirmed.push(name);
    }
    flush_until_ok(Duration::from_secs(120));
    let end = stats();
    assert_eq!(end.datapoints_pending, 0, "{end:?}");
    assert_eq!(end.datapoints_dropped, 0, "{end:?}");
    assert_eq!(
        end.datapoints_delivered + end.datapoints_dropped + end.datapoints_pending,
        recovered + end.datapoints_recorded,
        "counters of the final run: {end:?}, {recovered} recovered"
    );

    let delivered = custom_event_names(&collector);
    let distinct: HashSet<&String> = delivered.iter().collect();
    assert_eq!(
        distinct.len(),
        delivered.len(),
        "an event was recorded twice"
    );
    let wanted: HashSet<&String> = confirmed.iter().collect();
    let lost: Vec<&&String> = wanted.difference(&distinct).collect();
    assert!(
        lost.is_empty(),
        "lost {} events, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let unexpected: Vec<&&String> = distinct.difference(&wanted).collect();
    assert!(
        unexpected.is_empty(),
        "delivered events whose call did not return OK: {:?}",
        &unexpected[..unexpected.len().min(5)]
    );
    let (sessions_started, sessions_ended) = assert_sessions_consistent(&collector);
    assert_eq!(stint_shutdown(10_000), Ok, "{}", last_error());

    eprintln!(
        "storm: {} calls from {CALLERS} threads, {} shutdown/initialize cycles, {} events \
         confirmed and delivered once, {sessions_started} sessions started and \
         {sessions_ended} ended on the wire, {} listener calls, {} log lines, \
         {} requests to the collector ({} de-duplicated re-sends), 0 lost",
        tally.calls(),
        report.cycles,
        confirmed.len(),
        LISTENER_CALLS.load(Ordering::Relaxed),
        LOG_LINES.load(Ordering::Relaxed),
        collector.request_count(),
        collector.datapoints_received_total() - collector.datapoints().len(),
    );
}

/// Events logged on two threads while a third changes user over and over: every event carries
/// a session that was open (started before it on the wire, with the event's user) and is
/// delivered before that session's end.
#[test]
fn events_racing_changes_of_user_land_inside_their_own_session() {
    let _turn = serial();
    let collector = Collector::start().unwrap();
    let dir = fresh_dir("race-change-user");
    assert_eq!(
        init("race-key", &options_for(&dir, &collector)),
        Ok,
        "{}",
        last_error()
    );
    assert_eq!(stint_open_session(), Ok);
    // Each logger stops by itself at its cap (2 × 20,000 stays well under
    // maxQueuedDatapoints: no drops to account for), or when told to.
    const CAP: u64 = 20_000;
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let loggers: Vec<_> = (0..2)
        .map(|thread| {
            let (stop, progress) = (stop.clone(), progress.clone());
            std::thread::spawn(move || {
                let mut count = 0u64;
                while count < CAP && !stop.load(Ordering::Relaxed) {
                    assert_eq!(event(&format!("t{thread}-{count}"), None), Ok);
                    count += 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                count
            })
        })
        .collect();
    // Each change of user waits for the loggers to record a few events since the last one (or
    // for both to reach their cap), so that changes and events interleave.
    let mut seen = 0;
    for round in 0..40 {
        assert!(wait_for(Duration::from_secs(30), || {
            let now = progress.load(Ordering::Relaxed);
            now >= seen + 16 || now == 2 * CAP
        }));
        seen = progress.load(Ordering::Relaxed);
        let user = if round % 2 == 0 { "alice" } else { "bob" };
        assert_eq!(change_user(user), Ok);
    }
    stop.store(true, Ordering::Relaxed);
    let logged: u64 = loggers.into_iter().map(|t| t.join().unwrap()).sum();
    flush_until_ok(Duration::from_secs(60));

    let datapoints = collector.datapoints();
    let mut users: HashMap<String, Value> = HashMap::new();
    let mut ended: HashSet<String> = HashSet::new();
    let mut events = 0u64;
    for datapoint in &datapoints {
        let session = datapoint["session_id"].as_str().unwrap().to_owned();
        match datapoint["name"].as_str().unwrap() {
            "ss" => {
                users.insert(session, datapoint["user_id"].clone());
            }
            "se" => {
                assert!(ended.insert(session));
            }
            _ => {
                events += 1;
                let name = &datapoint["data"]["n"];
                assert!(
                    !ended.contains(&session),
                    "{name} after the end of {session}"
                );
                let user = users
                    .get(&session)
                    .unwrap_or_else(|| panic!("{name}: no start"));
                assert_eq!(&datapoint["user_id"], user, "{name}");
            }
        }
    }
    assert_eq!(events, logged, "every event delivered once");
    assert_eq!(ended.len(), 40, "one end per change of user");
    assert_eq!(stint_shutdown(5_000), Ok);
}

/// A thread that runs the calls it is sent, so that its cached tracker (the library caches the
/// current tracker per thread) lives across the caller's shutdown and initialize.
struct CallingThread {
    calls: mpsc::Sender<Box<dyn FnOnce() -> StintStatus + Send>>,
    results: mpsc::Receiver<StintStatus>,
}

impl CallingThread {
    fn start() -> CallingThread {
        let (calls, incoming) = mpsc::channel::<Box<dyn FnOnce() -> StintStatus + Send>>();
        let (done, results) = mpsc::channel();
        std::thread::spawn(move || {
            for call in incoming {
                done.send(call()).unwrap();
            }
        });
        CallingThread { calls, results }
    }

    fn run(&self, call: impl FnOnce() -> StintStatus + Send + 'static) -> StintStatus {
        self.calls.send(Box::new(call)).unwrap();
        self.results.recv_timeout(Duration::from_secs(30)).unwrap()
    }
}

/// What the process still has mapped or open below `dir` (Linux: /proc/self/maps and fd).
fn still_open_below(dir: &Path) -> Vec<String> {
    let dir = dir.to_str().unwrap();
    let mut open: Vec<String> = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| line.contains(dir))
        .map(str::to_owned)
        .collect();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Result::Ok(target) = std::fs::read_link(fd.path()) {
            if target.to_str().is_some_and(|t| t.contains(dir)) {
                open.push(format!("fd {:?} -> {}", fd.file_name(), target.display()));
            }
        }
    }
    open
}

#[test]
fn a_thread_that_called_before_a_shutdown_keeps_nothing_open_and_calls_the_next_tracker() {
    let _serial = serial();
    let dir = fresh_dir("cached-tracker");
    let thread = CallingThread::start();
    init_ok(&dir, "");
    assert_eq!(thread.run(|| event("before", None)), Ok);
    assert_eq!(stint_shutdown(5_000), Ok);
    // The thread has not called since: whatever it caches keeps no file mapped or open, and
    // the directory's lock is free.
    assert_eq!(still_open_below(&dir), Vec::<String>::new());
    let lock = std::fs::File::open(dir.join("lock")).unwrap();
    lock.try_lock()
        .expect("the shut-down tracker still holds the directory's lock");
    drop(lock);
    // The next tracker on the same directory: the thread's call lands in it.
    init_ok(&dir, "");
    assert_eq!(thread.run(|| event("after", None)), Ok);
    let counted = stats();
    assert_eq!(counted.datapoints_recorded, 1, "{counted:?}");
    assert_eq!(counted.datapoints_pending, 2, "{counted:?}");
    // Shut down again: the thread's stale tracker is refused, never recorded into.
    assert_eq!(stint_shutdown(5_000), Ok);
    assert_eq!(still_open_below(&dir), Vec::<String>::new());
    assert_eq!(thread.run(|| event("refused", None)), NotInitialized);
    // And the directory can be removed and created afresh while the thread lives on.
    std::fs::remove_dir_all(&dir).unwrap();
    init_ok(&dir, "");
    assert_eq!(thread.run(|| event("fresh", None)), Ok);
    assert_eq!(stats().datapoints_pending, 1);
    assert_eq!(stint_shutdown(5_000), Ok);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn events_racing_shutdowns_are_each_recorded_once_in_the_directory() {
    let _serial = serial();
    let dir = fresh_dir("cached-race");
    // Room for every call the callers can make meanwhile: none may be dropped.
    const QUEUE: &str = r#""maxQueuedDatapoints":10000000"#;
    init_ok(&dir, QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, accepted) = (stop.clone(), accepted.clone());
            std::thread::spawn(move || {
                let mut refused = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match event("race", None) {
                        Ok => accepted.fetch_add(1, Ordering::Relaxed),
                        NotInitialized => {
                            refused += 1;
                            0
                        }
                        other => panic!("{other:?}: {}", last_error()),
                    };
                }
                refused
            })
        })
        .collect();
    for round in 0..40 {
        // Let the callers make calls on this tracker, then shut it down under them.
        let_callers_make(&accepted, 50);
        assert_eq!(stint_shutdown(5_000), Ok, "round {round}");
        init_ok(&dir, QUEUE);
    }
    stop.store(true, Ordering::Relaxed);
    let refused: u64 = callers.into_iter().map(|c| c.join().unwrap()).sum();
    // Everything accepted is in the directory once: recovered by this tracker or recorded in
    // it (nothing was delivered, and the queue has room for all).
    assert_eq!(stint_shutdown(5_000), Ok);
    init_ok(&dir, QUEUE);
    let stats = stats();
    let accepted = accepted.load(Ordering::Relaxed);
    assert_eq!(
        stats.datapoints_pending, accepted,
        "{stats:?}, {refused} refused"
    );
    assert_eq!(stint_shutdown(5_000), Ok);
    let _ = std::fs::remove_dir_all(&dir);
}
