//! Shared helpers for the integration tests: they drive the library through its C API only.
#![allow(dead_code)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use serde_json::Value;
pub use stint::ffi::*;

/// The C API is process-wide: tests of one binary take turns.
static SERIAL: Mutex<()> = Mutex::new(());

pub struct Serial(#[allow(dead_code)] MutexGuard<'static, ()>);

/// Takes the process-wide turn and makes sure no tracker is left from an earlier test.
pub fn serial() -> Serial {
    let guard = SERIAL.lock();
    let _ = stint_shutdown(5_000);
    unsafe { stint_set_session_listener(None, std::ptr::null_mut()) };
    Serial(guard)
}

/// A fresh directory below the system temp dir (not created: the library creates it).
pub fn fresh_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "stint-it-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn cstring(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// Options JSON with the data directory and extra keys (a JSON object body without braces).
pub fn options(dir: &Path, extra: &str) -> String {
    let dir = serde_json::to_string(dir.to_str().unwrap()).unwrap();
    if extra.is_empty() {
        format!("{{\"dataDirectory\":{dir}}}")
    } else {
        format!("{{\"dataDirectory\":{dir},{extra}}}")
    }
}

pub fn init(api_key: &str, options_json: &str) -> StintStatus {
    let key = cstring(api_key);
    let options = cstring(options_json);
    unsafe { stint_initialize(key.as_ptr(), options.as_ptr()) }
}

pub fn init_ok(dir: &Path, extra: &str) {
    let status = init("test-key", &options(dir, extra));
    assert_eq!(status, StintStatus::Ok, "{}", last_error());
}

pub fn change_user(user: &str) -> StintStatus {
    let user = cstring(user);
    unsafe { stint_change_user(user.as_ptr()) }
}

pub fn event(name: &str, properties: Option<&str>) -> StintStatus {
    let name = cstring(name);
    let properties = properties.map(cstring);
    unsafe {
        stint_log_custom_event(
            name.as_ptr(),
            properties.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
        )
    }
}

pub fn last_error() -> String {
    let mut buffer = vec![0u8; 2048];
    let len = unsafe { stint_last_error_message(buffer.as_mut_ptr().cast(), buffer.len()) };
    buffer.truncate(len.min(2047));
    String::from_utf8_lossy(&buffer).into_owned()
}

pub fn session_id() -> Option<String> {
    let mut buffer = [0 as c_char; 37];
    let status = unsafe { stint_get_session_id(buffer.as_mut_ptr(), buffer.len()) };
    assert_eq!(status, StintStatus::Ok, "{}", last_error());
    let id = unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    (!id.is_empty()).then_some(id)
}

pub fn stats() -> StintStats {
    let mut stats = StintStats::default();
    let status = unsafe { stint_get_stats(&mut stats) };
    assert_eq!(status, StintStatus::Ok, "{}", last_error());
    stats
}

/// Session events seen by a listener, as (kind, session id, user id, start, end).
pub type SeenEvent = (StintSessionEventKind, String, Option<String>, f64, f64);

pub static SEEN: Mutex<Vec<SeenEvent>> = Mutex::new(Vec::new());

pub unsafe extern "C" fn record_event(event: *const StintSessionEvent, _user_data: *mut c_void) {
    let event = unsafe { &*event };
    let text = |p: *const c_char| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned();
    let user = (!event.user_id.is_null()).then(|| text(event.user_id));
    SEEN.lock().push((
        event.kind,
        text(event.session_id),
        user,
        event.start_time,
        event.end_time,
    ));
}

pub fn listen() {
    SEEN.lock().clear();
    unsafe { stint_set_session_listener(Some(record_event), std::ptr::null_mut()) };
}

/// Waits for `cond`, polling; generous bounds for slow machines.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Waits for `cond` without sleeping, yielding the CPU between checks: for progress that other
/// threads of this process make in microseconds, where `wait_for`'s 20 ms tick is too coarse.
pub fn spin_until(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// In a child that must stay alive until the parent is done with it: blocks until the parent
/// kills it or goes away (its end of the piped stdin closes). The explicit signal, where a
/// sleep would only guess how long the parent needs.
pub fn wait_for_parent() {
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut rest);
}

/// Datapoints by name, from a collector's de-duplicated list.
pub fn named<'a>(datapoints: &'a [Value], name: &str) -> Vec<&'a Value> {
    datapoints.iter().filter(|d| d["name"] == name).collect()
}

/// Runs the named test of the current test binary as a child process with `role` in its
/// environment (the test checks `STINT_CHILD_ROLE` and plays that role). Its stdout and stdin
/// are pipes: the parent reads what it reports and may tell it when to go on.
pub fn spawn_child(test_name: &str, role: &str, envs: &[(&str, String)]) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("STINT_CHILD_ROLE", role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (key, value) in envs {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

/// The role this process plays, if it is a child. In a child, this also ends the test
/// harness's unfinished `test name ... ` line, so the child's own lines start clean.
pub fn child_role() -> Option<String> {
    let role = std::env::var("STINT_CHILD_ROLE").ok();
    if role.is_some() {
        println!();
    }
    role
}
