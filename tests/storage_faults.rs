//! Disk full and unwritable storage: writes that fail with EFBIG (`RLIMIT_FSIZE`), ENOSPC (a
//! tiny tmpfs) and EACCES (a read-only directory) give STINT_STATUS_STORAGE_ERROR or a logged
//! error, never a crash, and once the space or the permission returns, Stint works again and
//! everything recorded before is still there.
//!
//! Each fault is staged in a child process (this test binary re-run in a role), so that limits,
//! mounts and identities never touch the test runner:
//! - EFBIG: the child lowers its own soft `RLIMIT_FSIZE` and ignores SIGXFSZ (which would
//!   otherwise kill it), then raises the limit back.
//! - ENOSPC: the child runs under `unshare --mount` with a private 6 MB tmpfs as its data
//!   directory's file system; a filler file takes the free space and is deleted again. Skipped
//!   (with a note) where mounting is not permitted.
//! - EACCES: the tests run as root, for whom permission bits do not bite, so the child first
//!   drops to the user `nobody` (setgid/setuid; as a non-root user it stays who it is) and then
//!   meets directories it may not write.

mod common;

use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use stint_collector::Collector;

/// Large enough properties that a 1 MB journal segment fills after a few dozen events.
fn big_properties() -> String {
    format!(r#"{{"blob":"{}"}}"#, "x".repeat(40 * 1024))
}

fn child_dir() -> PathBuf {
    PathBuf::from(std::env::var("STINT_DIR").unwrap())
}

// ---- log capture (in the child) ----------------------------------------------------------------

static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn capture_log(_: StintLogLevel, message: *const c_char, _: *mut c_void) {
    let message = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    LOGS.lock().push(message);
}

fn logged(fragment: &str) -> bool {
    wait_for(Duration::from_secs(10), || {
        LOGS.lock().iter().any(|line| line.contains(fragment))
    })
}

// ---- child processes ---------------------------------------------------------------------------

/// What a child said (its `> ` lines) and how it ended.
struct ChildRun {
    said: Vec<String>,
    status: ExitStatus,
}

impl ChildRun {
    fn collect(mut child: std::process::Child) -> ChildRun {
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let said = stdout
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix("> ").map(str::to_owned))
            .collect();
        let status = child.wait().unwrap();
        ChildRun { said, status }
    }

    /// The child ran to its end: no crash, no signal (SIGXFSZ, SIGBUS, SIGSEGV), no failed assert.
    fn assert_clean(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what}: the child ended with {:?} (signal {:?}); it said {:?}",
            self.status,
            std::os::unix::process::ExitStatusExt::signal(&self.status),
            self.said
        );
    }

    fn values(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key} ");
        self.said
            .iter()
            .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }

    fn value(&self, key: &str) -> String {
        let values = self.values(key);
        assert_eq!(values.len(), 1, "{key}: {:?}", self.said);
        values.into_iter().next().unwrap()
    }
}

fn run_child(test: &str, role: &str, dir: &Path) -> ChildRun {
    ChildRun::collect(spawn_child(
        test,
        role,
        &[("STINT_DIR", dir.display().to_string())],
    ))
}

/// Re-initializes on `dir` (no limits now) against a collector and checks that every event the
/// child confirmed arrives exactly once, and nothing the child was refused.
fn assert_recovered(dir: &Path, run: &ChildRun) -> usize {
    let confirmed = run.values("ok");
    let refused = run.values("refused");
    let collector = Collector::start().unwrap();
    init_ok(dir, &format!(r#""baseUrl":"{}""#, collector.url()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while stint_flush(5_000) != StintStatus::Ok {
        assert!(Instant::now() < deadline, "{}", last_error());
    }
    let delivered: Vec<String> = named(&collector.datapoints(), "ce")
        .iter()
        .map(|d| d["data"]["n"].as_str().unwrap().to_owned())
        .collect();
    for name in &confirmed {
        assert_eq!(
            delivered.iter().filter(|d| *d == name).count(),
            1,
            "{name} (returned OK) delivered once"
        );
    }
    for name in &refused {
        assert!(
            !delivered.contains(name),
            "{name} was refused yet delivered"
        );
    }
    assert_eq!(
        collector.datapoints_received_total(),
        collector.datapoints().len(),
        "nothing delivered twice"
    );
    assert_sessions_whole(&collector.datapoints(), run.values("carol").len());
    assert_eq!(stint_shutdown(10_000), StintStatus::Ok);
    confirmed.len()
}

/// On the wire, every session's end and events come after its start, and carol's sessions
/// started as often as the child changed to her.
fn assert_sessions_whole(datapoints: &[serde_json::Value], carol_sessions: usize) {
    let mut started = std::collections::HashSet::new();
    for datapoint in datapoints {
        let session = datapoint["session_id"].as_str();
        match datapoint["name"].as_str().unwrap() {
            "ss" => assert!(started.insert(session.unwrap().to_owned()), "started twice"),
            _ => {
                if let Some(session) = session {
                    assert!(
                        started.contains(session),
                        "{datapoint} before its session's start"
                    );
                }
            }
        }
    }
    let carol = named(datapoints, "ss")
        .iter()
        .filter(|d| d["user_id"] == "carol")
        .count();
    assert_eq!(carol, carol_sessions, "carol's sessions");
}

/// Records big events until one is refused (or `max` tries); prints each outcome.
fn record_until_refused(prefix: &str, max: usize) -> Option<String> {
    let properties = big_properties();
    for i in 0..max {
        let name = format!("{prefix}-{i}");
        match event(&name, Some(&properties)) {
            StintStatus::Ok => println!("> ok {name}"),
            StintStatus::StorageError => {
                println!("> refused {name}");
                return Some(last_error());
            }
            other => panic!("{name}: {other:?} {}", last_error()),
        }
    }
    None
}

/// With the journal full, fills what room is left with small events, then checks that a call
/// that would record session datapoints is refused whole (no state change) while activity alone
/// still works. Needs an open session. The events have short names (`p123` for prefix "p..."):
/// one then needs no more room than a change of user, so once one is refused, so is the change.
fn session_changes_are_refused_whole(prefix: &str) {
    let mut i = 0;
    loop {
        let name = format!("{}{i}", &prefix[..1]);
        match event(&name, None) {
            StintStatus::Ok => println!("> ok {name}"),
            StintStatus::StorageError => {
                println!("> refused {name}");
                break;
            }
            other => panic!("{name}: {other:?} {}", last_error()),
        }
        i += 1;
        assert!(i < 100_000, "the journal never filled up");
    }
    let before = session_id();
    assert!(before.is_some());
    assert_eq!(change_user("carol"), StintStatus::StorageError);
    assert_eq!(
        session_id(),
        before,
        "a refused change of user changes nothing"
    );
    assert_eq!(
        stint_open_session(),
        StintStatus::Ok,
        "activity alone needs no room"
    );
    assert_eq!(session_id(), before);
}

/// Once storage works again, the change of user goes through.
fn change_user_after_recovery() {
    let before = session_id();
    assert_eq!(change_user("carol"), StintStatus::Ok, "{}", last_error());
    assert_ne!(session_id(), before, "a new session for the new user");
    println!("> carol changed");
}

fn record_ok(prefix: &str, count: usize) {
    let properties = big_properties();
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        assert_eq!(
            event(&name, Some(&properties)),
            StintStatus::Ok,
            "{}",
            last_error()
        );
        println!("> ok {name}");
    }
}

// ---- EFBIG: RLIMIT_FSIZE -------------------------------------------------------------------------

fn set_file_size_limit(bytes: libc::rlim_t) {
    // SAFETY: plain syscalls on this process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = bytes.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

fn lift_file_size_limit() {
    // SAFETY: raising the soft limit back to the hard one.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

/// At each limit some file of a fresh data directory cannot be written: initialize refuses with
/// STORAGE_ERROR naming what failed, initializes nothing, and works once the limit is lifted.
fn fsize_at_initialize_child() {
    let base = child_dir();
    for (limit, fails) in [
        (0, "device id"),
        (100, "session state"),
        (16 * 1024, "journal"),
        (512 * 1024, "journal"),
    ] {
        let dir = base.join(format!("limit-{limit}"));
        set_file_size_limit(limit);
        let status = init("k", &options(&dir, ""));
        let message = last_error();
        lift_file_size_limit();
        println!("> limit {limit} {status:?} {message}");
        assert_eq!(
            status,
            StintStatus::StorageError,
            "limit {limit}: {message}"
        );
        assert!(message.contains(fails), "limit {limit}: {message}");
        assert_eq!(stint_open_session(), StintStatus::NotInitialized);
        init_ok(&dir, "");
        assert_eq!(event("after", None), StintStatus::Ok);
        assert_eq!(stint_shutdown(5_000), StintStatus::Ok);
    }
}

#[test]
fn a_file_size_limit_at_initialize_is_a_storage_error_and_lifting_it_works() {
    if child_role().as_deref() == Some("fsize-init") {
        return fsize_at_initialize_child();
    }
    // No serial(): only child processes use Stint here, never this one.
    let dir = fresh_dir("fsize-init");
    let run = run_child(
        "a_file_size_limit_at_initialize_is_a_storage_error_and_lifting_it_works",
        "fsize-init",
        &dir,
    );
    run.assert_clean("RLIMIT_FSIZE at initialize");
    assert_eq!(run.values("limit").len(), 4, "{:?}", run.said);
}

/// Running, the journal needs a new segment it cannot create: the event is refused with
/// STORAGE_ERROR and an error is logged; other calls go on; once the limit is lifted recording
/// works again.
fn fsize_while_running_child() {
    unsafe { stint_set_log_handler(Some(capture_log), std::ptr::null_mut()) };
    init_ok(&child_dir(), "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    record_ok("before", 5);
    set_file_size_limit(64 * 1024);
    let refusal = record_until_refused("limited", 200).expect("the limit bit");
    println!("> message {refusal}");
    assert!(refusal.contains("cannot record"), "{refusal}");
    assert!(logged("cannot record a datapoint"), "{:?}", LOGS.lock());
    session_changes_are_refused_whole("limited");
    // Calls that write nothing new still work while the limit holds.
    assert_eq!(stint_close_session(), StintStatus::Ok, "{}", last_error());
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert_eq!(stint_flush(1_000), StintStatus::Ok, "{}", last_error());
    lift_file_size_limit();
    change_user_after_recovery();
    record_ok("after", 30);
    assert_eq!(stint_shutdown(5_000), StintStatus::Ok, "{}", last_error());
}

#[test]
fn a_file_size_limit_while_running_refuses_events_and_lifting_it_loses_nothing() {
    if child_role().as_deref() == Some("fsize-running") {
        return fsize_while_running_child();
    }
    let _turn = serial();
    let dir = fresh_dir("fsize-running");
    let run = run_child(
        "a_file_size_limit_while_running_refuses_events_and_lifting_it_loses_nothing",
        "fsize-running",
        &dir,
    );
    run.assert_clean("RLIMIT_FSIZE while running");
    assert!(
        run.value("message").contains("File too large"),
        "{:?}",
        run.said
    );
    let recovered = assert_recovered(&dir, &run);
    eprintln!(
        "RLIMIT_FSIZE: {} calls refused with STORAGE_ERROR (events and a change of user), \
         {recovered} events recorded and delivered once",
        run.values("refused").len() + 1
    );
}

/// CPU time this process has used.
fn cpu_time() -> Duration {
    // SAFETY: plain query into a zeroed struct.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A session that expires while storage refuses its end: the worker retries calmly (no busy
/// loop) and records the end once storage works again, stamped at the last activity.
fn expiry_while_full_child() {
    unsafe { stint_set_log_handler(Some(capture_log), std::ptr::null_mut()) };
    // `info`: the marker below is logged at that level.
    init_ok(
        &child_dir(),
        r#""sessionTimeoutInSeconds":1,"logLevel":"info""#,
    );
    assert_eq!(stint_open_session(), StintStatus::Ok);
    // A one-byte user and, last, one-byte event names: then the room left once an event is
    // refused is too little for the session's end as well (tracker::room_needed).
    assert_eq!(change_user("u"), StintStatus::Ok);
    set_file_size_limit(64 * 1024);
    record_until_refused("expiring", 200).expect("the limit bit");
    let mut i = 0;
    while event(&format!("expiring-small-{i}"), None) == StintStatus::Ok {
        println!("> ok expiring-small-{i}");
        i += 1;
    }
    while event("z", None) == StintStatus::Ok {}
    // Log lines arrive in order on the dispatch thread: once this marker (no baseUrl here, so
    // the network switch changes nothing else) has arrived, every refusal of the calls above
    // has too, and each one counted from here on is the worker's.
    assert_eq!(stint_set_network_enabled(false), StintStatus::Ok);
    assert!(logged("network disabled"), "{:?}", LOGS.lock());
    let refusals = || {
        LOGS.lock()
            .iter()
            .filter(|line| line.contains("cannot record a datapoint"))
            .count()
    };
    let before = refusals();
    let (started, cpu_before) = (Instant::now(), cpu_time());
    // The end falls due 1 s after the last activity, and the worker retries it once a second
    // (EXPIRY_RETRY). Three refused attempts are the positive control (the worker kept trying,
    // so it could have spun) and the window over which its CPU is measured.
    assert!(
        wait_for(Duration::from_secs(30), || refusals() >= before + 3),
        "the worker tried to record the end: {} refusals in {:?}",
        refusals() - before,
        started.elapsed()
    );
    let (window, busy, attempts) = (
        started.elapsed(),
        cpu_time() - cpu_before,
        refusals() - before,
    );
    println!(
        "> cpu {} ms, {attempts} attempts in {} ms",
        busy.as_millis(),
        window.as_millis()
    );
    assert!(
        attempts as u128 <= window.as_millis() / 500 + 3,
        "the worker spun: {attempts} attempts in {window:?}"
    );
    assert!(
        busy < Duration::from_millis(500),
        "the worker spun: {busy:?} of CPU in {window:?}"
    );
    assert_eq!(
        stats().sessions_ended,
        1,
        "the end could not be recorded yet (if it was, the fill above left room for it)"
    );
    lift_file_size_limit();
    assert!(
        wait_for(Duration::from_secs(20), || stats().sessions_ended == 2),
        "the worker recorded the end once storage worked again"
    );
    assert_eq!(stint_shutdown(5_000), StintStatus::Ok, "{}", last_error());
}

#[test]
fn a_session_that_expires_while_storage_is_full_ends_once_it_works_again() {
    if child_role().as_deref() == Some("fsize-expiry") {
        return expiry_while_full_child();
    }
    let _turn = serial();
    let dir = fresh_dir("fsize-expiry");
    let run = run_child(
        "a_session_that_expires_while_storage_is_full_ends_once_it_works_again",
        "fsize-expiry",
        &dir,
    );
    run.assert_clean("expiry while storage is full");
    assert_recovered(&dir, &run);
    eprintln!(
        "expiry while storage is full: the worker's CPU {}",
        run.value("cpu")
    );
}

// ---- ENOSPC: a tiny tmpfs ----------------------------------------------------------------------

/// Fills the file system holding `dir` with `dir/filler` until ENOSPC.
fn fill(dir: &Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0xaau8; 4096];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(error) => {
                assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
                break;
            }
        }
    }
    written
}

fn disk_full_child() {
    let mount = child_dir();
    unsafe { stint_set_log_handler(Some(capture_log), std::ptr::null_mut()) };
    let dir = mount.join("data");
    init_ok(&dir, "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    record_ok("before", 5);
    let filled = fill(&mount);
    println!("> filled {filled}");

    // Full: a new data directory cannot even be initialized (in another process, say).
    assert_eq!(stint_shutdown(5_000), StintStatus::Ok);
    let status = init("k", &options(&mount.join("other"), ""));
    println!("> full-init {status:?} {}", last_error());
    assert_eq!(status, StintStatus::StorageError);
    // The same directory still starts: its newest segment has room and is resumed, so events
    // are recorded until that room runs out.
    init_ok(&dir, "");
    let refusal = record_until_refused("full", 200).expect("the disk filled up");
    println!("> message {refusal}");
    assert!(refusal.contains("No space left"), "{refusal}");
    assert!(logged("cannot record a datapoint"), "{:?}", LOGS.lock());
    session_changes_are_refused_whole("full");
    assert_eq!(stint_close_session(), StintStatus::Ok, "{}", last_error());
    assert_eq!(stint_open_session(), StintStatus::Ok);

    // Space returns.
    std::fs::remove_file(mount.join("filler")).unwrap();
    change_user_after_recovery();
    record_ok("after", 10);
    assert_eq!(stint_shutdown(5_000), StintStatus::Ok, "{}", last_error());

    // Everything confirmed is still there: delivered from this process (the tmpfs dies with it).
    let collector = Collector::start().unwrap();
    init_ok(&dir, &format!(r#""baseUrl":"{}""#, collector.url()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while stint_flush(5_000) != StintStatus::Ok {
        assert!(Instant::now() < deadline, "{}", last_error());
    }
    let delivered = named(&collector.datapoints(), "ce").len();
    println!("> delivered {delivered}");
    assert_sessions_whole(&collector.datapoints(), 1);
    assert_eq!(
        collector.datapoints_received_total(),
        collector.datapoints().len()
    );
    assert_eq!(stint_shutdown(5_000), StintStatus::Ok);
}

#[test]
fn a_full_disk_refuses_events_and_freeing_space_loses_nothing() {
    if child_role().as_deref() == Some("disk-full") {
        return disk_full_child();
    }
    // No serial(): only child processes use Stint here, never this one.
    let mount = fresh_dir("enospc");
    std::fs::create_dir_all(&mount).unwrap();
    let test = "a_full_disk_refuses_events_and_freeing_space_loses_nothing";
    let script = r#"mount -t tmpfs -o size=6m stint-enospc "$STINT_DIR" || exit 77; exec "$@""#;
    let spawned = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("STINT_CHILD_ROLE", "disk-full")
        .env("STINT_DIR", &mount)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let Ok(child) = spawned else {
        eprintln!("SKIPPED: `unshare` is not available here, so no tmpfs can be mounted");
        return;
    };
    let run = ChildRun::collect(child);
    if matches!(run.status.code(), Some(77) | Some(1)) && run.said.is_empty() {
        eprintln!(
            "SKIPPED: mounting a private tmpfs is not permitted here ({:?})",
            run.status
        );
        return;
    }
    run.assert_clean("a full tmpfs");
    assert!(
        run.value("full-init").starts_with("StorageError"),
        "{:?}",
        run.said
    );
    assert!(
        run.value("message").contains("No space left"),
        "{:?}",
        run.said
    );
    let confirmed = run.values("ok").len();
    assert_eq!(
        run.value("delivered").parse::<usize>().unwrap(),
        confirmed,
        "every event that returned OK is delivered: {:?}",
        run.said
    );
    eprintln!(
        "ENOSPC: an initialize and {} calls refused with STORAGE_ERROR, {confirmed} events \
         recorded and delivered once",
        run.values("refused").len() + 1
    );
}

// ---- EACCES: read-only directories ---------------------------------------------------------------

/// The uid and gid of `nobody`.
fn nobody() -> (libc::uid_t, libc::gid_t) {
    let name = CString::new("nobody").unwrap();
    // SAFETY: getpwnam returns NULL or a pointer to a static record.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        (65534, 65534)
    } else {
        unsafe { ((*entry).pw_uid, (*entry).pw_gid) }
    }
}

fn is_root() -> bool {
    // SAFETY: plain query.
    unsafe { libc::geteuid() == 0 }
}

/// In a child: as root, become `nobody` so that permission bits apply.
fn drop_root() {
    if !is_root() {
        return;
    }
    let (uid, gid) = nobody();
    // SAFETY: changing this (child) process's identity; groups first, then gid, then uid.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
        assert_eq!(libc::setgid(gid), 0);
        assert_eq!(libc::setuid(uid), 0);
    }
    assert!(!is_root());
}

/// In the parent: make `path` belong to the child's future identity.
fn give_to_child(path: &Path) {
    if is_root() {
        let (uid, gid) = nobody();
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn read_only_child() {
    let base = child_dir();
    drop_root();
    unsafe { stint_set_log_handler(Some(capture_log), std::ptr::null_mut()) };

    // A data directory this user may not enter, and one it may not create.
    for (what, dir) in [
        ("cannot use", base.join("not-mine")),
        ("cannot create", base.join("read-only-parent").join("data")),
    ] {
        let status = init("k", &options(&dir, ""));
        let message = last_error();
        println!("> refused-init {status:?} {message}");
        assert_eq!(status, StintStatus::StorageError, "{message}");
        assert!(
            message.contains(what) && message.contains("Permission denied"),
            "{message}"
        );
        assert_eq!(stint_open_session(), StintStatus::NotInitialized);
    }

    // Writable at initialize, read-only later: the journal cannot start a new segment.
    let dir = base.join("mine");
    init_ok(&dir, "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    record_ok("before", 5);
    chmod(&dir.join("journal"), 0o500);
    let refusal = record_until_refused("read-only", 200).expect("the directory is read-only");
    println!("> message {refusal}");
    assert!(refusal.contains("Permission denied"), "{refusal}");
    assert!(logged("cannot record a datapoint"), "{:?}", LOGS.lock());
    session_changes_are_refused_whole("read-only");
    assert_eq!(stint_close_session(), StintStatus::Ok, "{}", last_error());
    chmod(&dir.join("journal"), 0o700);
    change_user_after_recovery();
    record_ok("after", 10);
    assert_eq!(stint_shutdown(5_000), StintStatus::Ok, "{}", last_error());

    // Read-only files: initialize refuses, and works once they are writable again.
    chmod(&dir.join("lock"), 0o400);
    let status = init("k", &options(&dir, ""));
    println!("> read-only-lock {status:?} {}", last_error());
    assert_eq!(status, StintStatus::StorageError);
    chmod(&dir.join("lock"), 0o600);
    init_ok(&dir, "");
    record_ok("reopened", 3);
    assert_eq!(stint_shutdown(5_000), StintStatus::Ok, "{}", last_error());
}

#[test]
fn read_only_storage_is_a_storage_error_and_writable_storage_loses_nothing() {
    if child_role().as_deref() == Some("read-only") {
        return read_only_child();
    }
    let _turn = serial();
    let base = fresh_dir("eacces");
    std::fs::create_dir_all(base.join("not-mine")).unwrap();
    std::fs::create_dir_all(base.join("read-only-parent")).unwrap();
    std::fs::create_dir_all(base.join("mine")).unwrap();
    chmod(&base, 0o755);
    give_to_child(&base.join("mine"));
    if is_root() {
        chmod(&base.join("not-mine"), 0o700);
        chmod(&base.join("read-only-parent"), 0o755);
    } else {
        chmod(&base.join("not-mine"), 0o000);
        chmod(&base.join("read-only-parent"), 0o555);
    }
    let run = run_child(
        "read_only_storage_is_a_storage_error_and_writable_storage_loses_nothing",
        "read-only",
        &base,
    );
    chmod(&base.join("not-mine"), 0o700);
    chmod(&base.join("read-only-parent"), 0o755);
    run.assert_clean("read-only storage");
    assert_eq!(run.values("refused-init").len(), 2, "{:?}", run.said);
    assert!(run.value("read-only-lock").starts_with("StorageError"));
    let recovered = assert_recovered(&base.join("mine"), &run);
    eprintln!(
        "EACCES (as {}): 3 initializes and {} calls refused with STORAGE_ERROR, {recovered} \
         events recorded and delivered once",
        if is_root() {
            "nobody"
        } else {
            "the current user"
        },
        run.values("refused").len() + 1
    );
}
