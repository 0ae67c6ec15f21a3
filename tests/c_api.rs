//! The C API's contract: statuses, messages, limits, options and listener rules.

mod common;

use std::ffi::{c_char, c_void};
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::ptr::null;
use std::time::Duration;

use common::*;

#[test]
fn every_entry_point_before_initialize_is_not_initialized() {
    let _turn = serial();
    let user = cstring("u");
    let name = cstring("e");
    let mut buffer = [0 as c_char; 64];
    let mut stats = StintStats::default();
    unsafe {
        assert_eq!(stint_open_session(), StintStatus::NotInitialized);
        assert_eq!(stint_close_session(), StintStatus::NotInitialized);
        assert_eq!(
            stint_change_user(user.as_ptr()),
            StintStatus::NotInitialized
        );
        assert_eq!(
            stint_log_custom_event(name.as_ptr(), null()),
            StintStatus::NotInitialized
        );
        assert_eq!(
            stint_request_immediate_data_flush(),
            StintStatus::NotInitialized
        );
        assert_eq!(stint_flush(10), StintStatus::NotInitialized);
        assert_eq!(
            stint_get_session_id(buffer.as_mut_ptr(), 64),
            StintStatus::NotInitialized
        );
        assert_eq!(stint_get_stats(&mut stats), StintStatus::NotInitialized);
        assert_eq!(stint_shutdown(10), StintStatus::NotInitialized);
    }
    assert!(last_error().contains("not initialized"));
    assert_eq!(
        stats,
        StintStats::default(),
        "out-parameter untouched on error"
    );
    assert_eq!(
        unsafe { stint_set_session_listener(None, std::ptr::null_mut()) },
        StintStatus::Ok
    );
    assert_eq!(
        unsafe { stint_set_log_handler(None, std::ptr::null_mut()) },
        StintStatus::Ok
    );
    let version = unsafe { std::ffi::CStr::from_ptr(stint_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn initialize_shutdown_initialize_works_and_double_initialize_is_refused() {
    let _turn = serial();
    let dir = fresh_dir("reinit");
    init_ok(&dir, "");
    assert_eq!(
        init("test-key", &options(&dir, "")),
        StintStatus::AlreadyInitialized
    );
    assert!(last_error().contains("already initialized"));
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
    assert_eq!(stint_open_session(), StintStatus::NotInitialized);
    init_ok(&dir, "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
}

#[test]
fn bad_api_keys_are_invalid_and_initialize_nothing() {
    let _turn = serial();
    let dir = fresh_dir("keys");
    let options = cstring(&options(&dir, ""));
    assert_eq!(
        unsafe { stint_initialize(null(), options.as_ptr()) },
        StintStatus::InvalidArgument
    );
    assert!(last_error().contains("api_key"), "{}", last_error());
    for key in [String::new(), "k".repeat(257), "line\nbreak".into()] {
        assert_eq!(
            init(&key, &options_str(&dir)),
            StintStatus::InvalidArgument,
            "{key:?}"
        );
        assert!(last_error().contains("api_key"));
        assert!(!last_error().contains("break"), "the key is never echoed");
    }
    let invalid_utf8 = [0xffu8, 0xfe, 0];
    assert_eq!(
        unsafe { stint_initialize(invalid_utf8.as_ptr().cast(), options.as_ptr()) },
        StintStatus::InvalidArgument
    );
    assert!(last_error().contains("UTF-8"));
    assert_eq!(init(&"k".repeat(256), &options_str(&dir)), StintStatus::Ok);
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
}

fn options_str(dir: &std::path::Path) -> String {
    options(dir, "")
}

#[test]
fn bad_options_name_the_key_and_initialize_nothing() {
    let _turn = serial();
    let dir = fresh_dir("options");
    let cases = [
        (
            r#""sessionTimeoutInSeconds":0"#,
            "sessionTimeoutInSeconds must be an integer >= 1, got 0",
        ),
        (
            r#""sessionTimeoutInSeconds":900.5"#,
            "sessionTimeoutInSeconds",
        ),
        (
            r#""sessionTimeoutInSeconds":"900""#,
            "sessionTimeoutInSeconds",
        ),
        (
            r#""sessionTimeoutInSeconds":31536001"#,
            "sessionTimeoutInSeconds",
        ),
        (
            r#""keepOpenWhileForeground":"yes""#,
            "keepOpenWhileForeground",
        ),
        (r#""baseUrl":"http://example.com""#, "baseUrl"),
        (r#""baseUrl":"ftp://127.0.0.1""#, "baseUrl"),
        (r#""flushIntervalInSeconds":0"#, "flushIntervalInSeconds"),
        (
            r#""flushIntervalInSeconds":86401"#,
            "flushIntervalInSeconds",
        ),
        (r#""maxQueuedDatapoints":99"#, "maxQueuedDatapoints"),
        (r#""maxQueuedDatapoints":10000001"#, "maxQueuedDatapoints"),
        (r#""logLevel":"trace""#, "logLevel"),
        (r#""sessionTimeoutInSecond":5"#, "sessionTimeoutInSecond"),
    ];
    for (extra, expected) in cases {
        assert_eq!(
            init("k", &options(&dir, extra)),
            StintStatus::InvalidArgument,
            "{extra}"
        );
        assert!(last_error().contains(expected), "{extra}: {}", last_error());
        assert_eq!(stint_open_session(), StintStatus::NotInitialized, "{extra}");
    }
    for json in ["[1]", "\"x\"", "{", "null"] {
        assert_eq!(init("k", json), StintStatus::InvalidArgument, "{json}");
        assert!(last_error().contains("options_json"), "{}", last_error());
    }
    assert_eq!(
        init("k", r#"{"dataDirectory":"relative/path"}"#),
        StintStatus::InvalidArgument
    );
    assert!(last_error().contains("dataDirectory"));
    assert_eq!(stint_open_session(), StintStatus::NotInitialized);
}

// Unix: XDG_DATA_HOME and permission bits (Windows: the profile's ACL, docs/platforms.md).
#[cfg(unix)]
#[test]
fn null_options_mean_defaults_and_a_directory_is_created_0700() {
    let _turn = serial();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let home = fresh_dir("home");
    std::fs::create_dir_all(&home).unwrap();
    // The default data directory follows XDG_DATA_HOME.
    std::env::set_var("XDG_DATA_HOME", &home);
    let key = cstring("k");
    assert_eq!(
        unsafe { stint_initialize(key.as_ptr(), null()) },
        StintStatus::Ok
    );
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
    // One directory per app: named by a hash of the API key, never the key itself.
    let dir = home
        .join("stint")
        .join(stint::options::app_directory_name("k"));
    assert!(dir.join("device_id").exists());
    assert_eq!(mode(&home.join("stint")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    for entry in walk(&dir) {
        if entry.is_file() {
            assert_eq!(mode(&entry), 0o600, "{}", entry.display());
        }
    }
}

#[cfg(unix)]
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn unusable_data_directory_is_a_storage_error() {
    let _turn = serial();
    let file = fresh_dir("file");
    std::fs::write(&file, b"not a directory").unwrap();
    assert_eq!(
        init("k", &options(&file.join("sub"), "")),
        StintStatus::StorageError
    );
    assert!(last_error().contains("dataDirectory"), "{}", last_error());
    assert!(
        last_error().contains("is not a directory"),
        "{}",
        last_error()
    );
    assert_eq!(stint_open_session(), StintStatus::NotInitialized);
    // The file itself as the data directory.
    assert_eq!(init("k", &options(&file, "")), StintStatus::StorageError);
    assert!(
        last_error().contains("is not a directory"),
        "{}",
        last_error()
    );
    assert!(!last_error().contains("os error"), "{}", last_error());
}

#[test]
fn options_that_are_not_json_or_repeat_a_key_are_refused_saying_so() {
    let _turn = serial();
    let dir = fresh_dir("options-text");
    assert_eq!(init("k", "logLevel: debug"), StintStatus::InvalidArgument);
    let message = last_error();
    assert!(message.contains("must be a JSON object"), "{message}");
    assert!(message.contains("at line 1 column 1"), "{message}");
    assert_eq!(
        init(
            "k",
            &options(&dir, r#""logLevel":"info","logLevel":"debug""#)
        ),
        StintStatus::InvalidArgument
    );
    assert!(last_error().contains("`logLevel`"), "{}", last_error());
    assert_eq!(stint_open_session(), StintStatus::NotInitialized);
}

#[test]
fn bad_inputs_are_invalid_and_change_nothing() {
    let _turn = serial();
    let dir = fresh_dir("inputs");
    init_ok(&dir, "");
    assert_eq!(change_user("alice"), StintStatus::Ok);
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let id = session_id();
    let recorded = stats().datapoints_recorded;

    assert_eq!(
        unsafe { stint_change_user(null()) },
        StintStatus::InvalidArgument
    );
    assert!(last_error().contains("user_id"));
    for user in [String::new(), "u".repeat(998)] {
        assert_eq!(change_user(&user), StintStatus::InvalidArgument);
        assert!(last_error().contains("user_id"), "{}", last_error());
    }
    let bad_utf8 = [b'a', 0xc3, 0x28, 0];
    assert_eq!(
        unsafe { stint_change_user(bad_utf8.as_ptr().cast()) },
        StintStatus::InvalidArgument
    );
    assert!(last_error().contains("UTF-8"));

    assert_eq!(
        unsafe { stint_log_custom_event(null(), null()) },
        StintStatus::InvalidArgument
    );
    assert!(last_error().contains("name"));
    assert_eq!(event("", None), StintStatus::InvalidArgument);
    assert_eq!(event(&"n".repeat(256), None), StintStatus::InvalidArgument);
    for properties in ["[1,2]", "{\"a\":", "3", "{\"a\":1} trailing"] {
        assert_eq!(
            event("e", Some(properties)),
            StintStatus::InvalidArgument,
            "{properties}"
        );
        assert!(last_error().contains("properties_json"), "{}", last_error());
    }
    let huge = format!("{{\"a\":\"{}\"}}", "x".repeat(50 * 1024));
    assert_eq!(event("e", Some(&huge)), StintStatus::InvalidArgument);

    assert_eq!(session_id(), id, "no state change");
    assert_eq!(stats().datapoints_recorded, recorded, "nothing recorded");

    // The limits themselves are allowed.
    assert_eq!(
        change_user(&"ü".repeat(498).chars().take(498).collect::<String>()[..996]),
        StintStatus::Ok
    );
    assert_eq!(
        event(&"n".repeat(255), Some("{\"level\":3}")),
        StintStatus::Ok
    );
    let max = format!("{{\"a\":\"{}\"}}", "x".repeat(50 * 1024 - 8));
    assert_eq!(max.len(), 50 * 1024);
    assert_eq!(event("big", Some(&max)), StintStatus::Ok);
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
}

#[test]
fn last_error_message_truncates_and_reports_the_full_length() {
    let _turn = serial();
    // A fresh thread has no error yet.
    let none = std::thread::spawn(|| unsafe { stint_last_error_message(std::ptr::null_mut(), 0) })
        .join()
        .unwrap();
    assert_eq!(none, 0);
    assert_eq!(stint_open_session(), StintStatus::NotInitialized);
    let full = last_error();
    let len = unsafe { stint_last_error_message(std::ptr::null_mut(), 0) };
    assert_eq!(len, full.len());
    let mut small = [0x7f as c_char; 8];
    assert_eq!(
        unsafe { stint_last_error_message(small.as_mut_ptr(), 8) },
        full.len()
    );
    let copied = unsafe { std::ffi::CStr::from_ptr(small.as_ptr()) };
    assert_eq!(copied.to_str().unwrap(), &full[..7]);
    let mut one = [0x7f as c_char; 1];
    unsafe { stint_last_error_message(one.as_mut_ptr(), 1) };
    assert_eq!(one[0], 0);
}

#[test]
fn session_id_needs_37_bytes_and_is_empty_without_a_session() {
    let _turn = serial();
    let dir = fresh_dir("session-id");
    init_ok(&dir, "");
    let mut small = [0x55 as c_char; 36];
    assert_eq!(
        unsafe { stint_get_session_id(small.as_mut_ptr(), 36) },
        StintStatus::InvalidArgument
    );
    assert!(small.iter().all(|&b| b == 0x55), "untouched on error");
    assert_eq!(
        unsafe { stint_get_session_id(std::ptr::null_mut(), 37) },
        StintStatus::InvalidArgument
    );
    assert_eq!(
        unsafe { stint_get_stats(std::ptr::null_mut()) },
        StintStatus::InvalidArgument
    );
    assert_eq!(session_id(), None);
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let id = session_id().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4", "a UUID v4");
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
}

#[test]
fn listener_sees_starts_and_ends_in_order_with_times() {
    let _turn = serial();
    listen(); // set before initialize
    let dir = fresh_dir("listener");
    init_ok(&dir, "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let first = session_id().unwrap();
    assert_eq!(change_user("bob"), StintStatus::Ok);
    let second = session_id().unwrap();
    assert_ne!(first, second);
    assert!(wait_for(Duration::from_secs(10), || SEEN.lock().len() == 3));
    let seen = SEEN.lock().clone();
    assert_eq!(seen[0].0, StintSessionEventKind::Started);
    assert_eq!(
        (seen[0].1.as_str(), seen[0].2.as_deref(), seen[0].4),
        (first.as_str(), None, 0.0)
    );
    assert_eq!(seen[1].0, StintSessionEventKind::Ended);
    assert_eq!(seen[1].1, first);
    assert_eq!(seen[1].3, seen[0].3, "the end carries the session's start");
    assert!(seen[1].4 >= seen[1].3);
    assert_eq!(seen[2].0, StintSessionEventKind::Started);
    assert_eq!(
        (seen[2].1.as_str(), seen[2].2.as_deref()),
        (second.as_str(), Some("bob"))
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - seen[0].3).abs() < 60.0,
        "times are seconds since the epoch"
    );

    // Unset: no more calls.
    unsafe { stint_set_session_listener(None, std::ptr::null_mut()) };
    assert_eq!(change_user("carol"), StintStatus::Ok);
    assert_eq!(stint_shutdown(2000), StintStatus::Ok);
    assert_eq!(SEEN.lock().len(), 3);
    assert_eq!(
        stats_after_shutdown_is_not_initialized(),
        StintStatus::NotInitialized
    );
}

fn stats_after_shutdown_is_not_initialized() -> StintStatus {
    let mut stats = StintStats::default();
    unsafe { stint_get_stats(&mut stats) }
}

static REENTRANT: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());

unsafe extern "C" fn calls_back_into_the_library(event: *const StintSessionEvent, _: *mut c_void) {
    let kind = unsafe { (*event).kind };
    let id = session_id();
    let stats = stats();
    let status = event_in_listener();
    REENTRANT.lock().push(format!(
        "{kind:?} id={} started={} event={status:?}",
        id.is_some(),
        stats.sessions_started
    ));
    // Replacing itself from inside a listener must not deadlock.
    unsafe { stint_set_session_listener(Some(calls_back_into_the_library), std::ptr::null_mut()) };
}

fn event_in_listener() -> StintStatus {
    event("from-listener", None)
}

#[test]
fn a_listener_may_call_any_function() {
    let _turn = serial();
    REENTRANT.lock().clear();
    unsafe { stint_set_session_listener(Some(calls_back_into_the_library), std::ptr::null_mut()) };
    let dir = fresh_dir("reentrant");
    init_ok(&dir, "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert!(wait_for(Duration::from_secs(10), || !REENTRANT
        .lock()
        .is_empty()));
    assert_eq!(REENTRANT.lock()[0], "Started id=true started=1 event=Ok");
    unsafe { stint_set_session_listener(None, std::ptr::null_mut()) };
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
}

static LOGS: parking_lot::Mutex<Vec<(StintLogLevel, String)>> = parking_lot::Mutex::new(Vec::new());

unsafe extern "C" fn collect_log(level: StintLogLevel, message: *const c_char, _: *mut c_void) {
    let message = unsafe { std::ffi::CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    LOGS.lock().push((level, message));
}

#[test]
fn full_queue_drops_oldest_custom_events_first_and_logs_a_warning() {
    let _turn = serial();
    LOGS.lock().clear();
    unsafe { stint_set_log_handler(Some(collect_log), std::ptr::null_mut()) };
    let dir = fresh_dir("full");
    init_ok(&dir, r#""maxQueuedDatapoints":100"#);
    assert_eq!(stint_open_session(), StintStatus::Ok);
    for i in 0..150 {
        assert_eq!(event(&format!("e{i}"), None), StintStatus::Ok);
    }
    assert_eq!(change_user("alice"), StintStatus::Ok);
    let stats = stats();
    assert_eq!(stats.datapoints_recorded, 153);
    assert_eq!(stats.datapoints_pending, 100);
    assert_eq!(stats.datapoints_dropped, 53);
    assert!(wait_for(Duration::from_secs(10), || LOGS
        .lock()
        .iter()
        .any(
            |(level, m)| *level == StintLogLevel::Warn && m.contains("maxQueuedDatapoints")
        )));
    assert!(LOGS.lock().iter().all(|(_, m)| !m.contains("test-key")));
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
    unsafe { stint_set_log_handler(None, std::ptr::null_mut()) };

    // What is kept: the session datapoints and the newest custom events.
    let collector = stint_collector::Collector::start().unwrap();
    init_ok(&dir, &format!(r#""baseUrl":"{}""#, collector.url()));
    assert_eq!(stint_flush(30_000), StintStatus::Ok, "{}", last_error());
    let datapoints = collector.datapoints();
    assert_eq!(datapoints.len(), 100);
    assert_eq!(named(&datapoints, "ss").len(), 2);
    assert_eq!(named(&datapoints, "se").len(), 1);
    let events = named(&datapoints, "ce");
    assert_eq!(events[0]["data"]["n"], "e53");
    assert_eq!(events.last().unwrap()["data"]["n"], "e149");
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
}

/// Overflows a queue of 100 with custom events (recorded in the lanes, not the journal), then
/// makes no call at all: the library must announce the drops by itself.
fn drops_are_announced_without_a_host_call(
    name: &str,
    options: &str,
    before: fn(),
    shutdown: StintStatus,
) {
    let _turn = serial();
    LOGS.lock().clear();
    unsafe { stint_set_log_handler(Some(collect_log), std::ptr::null_mut()) };
    let dir = fresh_dir(name);
    init_ok(&dir, &format!(r#""maxQueuedDatapoints":100{options}"#));
    before();
    assert_eq!(stint_open_session(), StintStatus::Ok);
    for i in 0..150 {
        assert_eq!(event(&format!("e{i}"), None), StintStatus::Ok);
    }
    let last_event = std::time::Instant::now();
    let announced = || {
        LOGS.lock().iter().any(|(level, m)| {
            *level == StintLogLevel::Warn && m.contains("queue full") && m.contains("dropped the")
        })
    };
    // Generous for a loaded machine; the worker looks within 0.5 s (unit-tested in
    // engine::drops), and before this change nothing came in 12 s.
    assert!(
        wait_for(Duration::from_secs(5), announced),
        "no drop warning without a host call: {:?}",
        LOGS.lock()
    );
    println!(
        "{name}: drops announced {:?} after the last event",
        last_event.elapsed()
    );
    let stats = stats();
    assert_eq!(
        stats.datapoints_dropped, 51,
        "150 events and a start into 100"
    );
    assert_eq!(stats.datapoints_pending, 100);
    assert_eq!(stint_shutdown(0), shutdown);
    unsafe { stint_set_log_handler(None, std::ptr::null_mut()) };
}

#[test]
fn drops_are_announced_by_the_library_with_no_base_url() {
    drops_are_announced_without_a_host_call("drops-local", "", || {}, StintStatus::Ok);
}

#[test]
fn drops_are_announced_by_the_library_with_the_network_off() {
    drops_are_announced_without_a_host_call(
        "drops-offline",
        r#","baseUrl":"http://127.0.0.1:9""#,
        || assert_eq!(stint_set_network_enabled(false), StintStatus::Ok),
        // Shutdown with the network off times out while data stays queued.
        StintStatus::Timeout,
    );
}

#[test]
fn flush_without_base_url_only_makes_data_durable() {
    let _turn = serial();
    let dir = fresh_dir("flush-local");
    init_ok(&dir, "");
    assert_eq!(event("e", None), StintStatus::Ok);
    assert_eq!(stint_flush(1000), StintStatus::Ok);
    assert_eq!(stint_request_immediate_data_flush(), StintStatus::Ok);
    assert_eq!(stats().datapoints_pending, 1);
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
}

#[test]
fn a_data_directory_used_by_another_process_is_locked() {
    if child_role().as_deref() == Some("hold-lock") {
        let dir = std::path::PathBuf::from(std::env::var("STINT_DIR").unwrap());
        init_ok(&dir, "");
        println!("READY");
        wait_for_parent();
        return;
    }
    let _turn = serial();
    let dir = fresh_dir("locked");
    let mut child = spawn_child(
        "a_data_directory_used_by_another_process_is_locked",
        "hold-lock",
        &[("STINT_DIR", dir.display().to_string())],
    );
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    while !line.contains("READY") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0,
            "child died"
        );
    }
    assert_eq!(
        init("k", &options(&dir, "")),
        StintStatus::DataDirectoryLocked
    );
    assert!(last_error().contains("in use"), "{}", last_error());
    child.kill().unwrap();
    child.wait().unwrap();
    init_ok(&dir, "");
    assert_eq!(stint_shutdown(1000), StintStatus::Ok);
}
