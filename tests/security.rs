//! Security checks: what Stint leaves on disk is private to the user (directories 0700, files
//! 0600, whatever the umask), the API key never appears in a log line or an error message, and
//! plain http:// goes nowhere but loopback.

mod common;

use std::ffi::{c_char, c_void, CStr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use stint_collector::{Collector, Faults};

/// A key no message may contain, nor any long piece of it.
const SECRET_KEY: &str = "sk_live_S3CR3T7f3a9cNEVERLOGGED";
const SECRET_PIECE: &str = "S3CR3T";

static LOGS: Mutex<Vec<(StintLogLevel, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn capture_log(level: StintLogLevel, message: *const c_char, _: *mut c_void) {
    let message = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    LOGS.lock().push((level, message));
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        }
        out.push(path);
    }
}

fn flush_until_ok() {
    let deadline = Instant::now() + Duration::from_secs(120);
    while stint_flush(5_000) != StintStatus::Ok {
        assert!(Instant::now() < deadline, "{}", last_error());
    }
}

/// With a umask of 0 (the most permissive a host could have), everything the library creates
/// is still private: the data directory and every directory above it that it creates are 0700,
/// every file 0600 (lock, device_id, session, journal cursor and segments).
#[test]
fn the_data_directory_is_0700_and_its_files_0600_whatever_the_umask() {
    let _turn = serial();
    // SAFETY: sets this test process's umask; this binary's tests take turns (serial()).
    let previous = unsafe { libc::umask(0) };
    let top = fresh_dir("private");
    let dir = top.join("a").join("b").join("stint");
    let collector = Collector::start().unwrap();
    let options_json = format!(r#""baseUrl":"{}""#, collector.url());
    init_ok(&dir, &options_json);
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert_eq!(change_user("alice"), StintStatus::Ok);
    // Enough to roll over to more journal segments, then deliver (the cursor moves).
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(40 * 1024));
    for i in 0..60 {
        assert_eq!(event(&format!("e{i}"), Some(&big)), StintStatus::Ok);
    }
    flush_until_ok();
    for i in 0..60 {
        assert_eq!(event(&format!("f{i}"), Some(&big)), StintStatus::Ok);
    }
    assert_eq!(stint_close_session(), StintStatus::Ok);
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let rolled_over = files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "seg"))
        .count();
    assert!(
        rolled_over >= 2,
        "several segments while running: {files:?}"
    );
    for file in &files {
        let expected = if file.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(file), expected, "{}", file.display());
    }
    assert_eq!(stint_shutdown(10_000), StintStatus::Ok);
    init_ok(&dir, "");
    assert_eq!(stint_shutdown(10_000), StintStatus::Ok);
    unsafe { libc::umask(previous) };

    walk(&dir, &mut files);
    files.sort();
    files.dedup();
    files.retain(|f| f.exists());
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(&dir).unwrap().display().to_string())
        .collect();
    for expected in ["lock", "device_id", "session", "journal", "journal/cursor"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let segments = names.iter().filter(|n| n.ends_with(".seg")).count();
    assert!(segments >= 1, "{names:?}");
    for directory in [
        top.join("a"),
        top.join("a/b"),
        dir.clone(),
        dir.join("journal"),
    ] {
        assert_eq!(mode(&directory), 0o700, "{}", directory.display());
    }
    for file in &files {
        let expected = if file.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(file), expected, "{}", file.display());
    }
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "no temporary file is left: {names:?}"
    );
    eprintln!(
        "permissions: {} entries checked under umask 0 ({rolled_over} segments while running, \
         {segments} after), all 0700/0600",
        files.len() + 3
    );
}

/// Every message the host can see, across a scenario that makes many: debug logging, refused
/// keys (401/403), rejected and failed batches, a full queue, a recovered corrupt journal,
/// timeouts, and every kind of bad argument. None contains the key.
#[test]
fn the_api_key_never_appears_in_a_log_line_or_an_error_message() {
    let _turn = serial();
    LOGS.lock().clear();
    unsafe { stint_set_log_handler(Some(capture_log), std::ptr::null_mut()) };
    listen();
    let mut messages: Vec<String> = Vec::new();
    let mut expect = |status: StintStatus, wanted: StintStatus, what: &str| {
        assert_eq!(status, wanted, "{what}: {}", last_error());
        if wanted != StintStatus::Ok {
            messages.push(last_error());
        }
    };

    // Refused keys: too long, control characters, invalid UTF-8; each one carrying the secret.
    let dir = fresh_dir("secret");
    let options_json = options(&dir, r#""logLevel":"debug""#);
    for key in [
        format!("{SECRET_KEY}{}", "x".repeat(300)),
        format!("{SECRET_KEY}\n"),
        format!("{SECRET_KEY}\u{7f}"),
    ] {
        expect(
            init(&key, &options_json),
            StintStatus::InvalidArgument,
            "bad key",
        );
    }
    let mut invalid_utf8 = SECRET_KEY.as_bytes().to_vec();
    invalid_utf8.extend_from_slice(b"\xff\0");
    let options_c = cstring(&options_json);
    expect(
        unsafe { stint_initialize(invalid_utf8.as_ptr().cast(), options_c.as_ptr()) },
        StintStatus::InvalidArgument,
        "invalid UTF-8 key",
    );
    // The key where an option belongs, and options where the key belongs.
    for bad in [
        format!(r#"{{"apiKey":"{SECRET_KEY}"}}"#),
        format!(r#"{{"baseUrl":"https://{SECRET_KEY}@example.com"}}"#),
        format!(r#"{{"baseUrl":"http://user:{SECRET_KEY}@127.0.0.1:9"}}"#),
        SECRET_KEY.to_owned(),
    ] {
        expect(init(SECRET_KEY, &bad), StintStatus::InvalidArgument, &bad);
    }

    // A run that the collector makes miserable.
    let collector = Collector::start().unwrap();
    let options_json = options(
        &dir,
        &format!(
            r#""baseUrl":"{}","logLevel":"debug","maxQueuedDatapoints":100"#,
            collector.url()
        ),
    );
    expect(init(SECRET_KEY, &options_json), StintStatus::Ok, "init");
    expect(
        init(SECRET_KEY, &options_json),
        StintStatus::AlreadyInitialized,
        "again",
    );
    expect(stint_open_session(), StintStatus::Ok, "open");
    expect(change_user("alice"), StintStatus::Ok, "user");
    for i in 0..150 {
        expect(event(&format!("e{i}"), None), StintStatus::Ok, "event");
    }
    expect(event("poison", None), StintStatus::Ok, "poison");
    expect(event("", None), StintStatus::InvalidArgument, "empty name");
    expect(
        event("e", Some("[")),
        StintStatus::InvalidArgument,
        "bad json",
    );
    expect(change_user(""), StintStatus::InvalidArgument, "empty user");
    expect(
        unsafe { stint_get_stats(std::ptr::null_mut()) },
        StintStatus::InvalidArgument,
        "null stats",
    );
    for status in [401, 403, 500] {
        collector.set_faults(Faults {
            fail_next: 1,
            fail_status: status,
            ..Faults::default()
        });
        expect(stint_flush(300), StintStatus::Timeout, "failing flush");
    }
    collector.set_faults(Faults {
        garbage_next: 1,
        reject_event_name: Some("poison".into()),
        ..Faults::default()
    });
    expect(stint_flush(300), StintStatus::Timeout, "garbage");
    flush_until_ok();
    collector.set_faults(Faults {
        hang_all: true,
        ..Faults::default()
    });
    expect(event("late", None), StintStatus::Ok, "late");
    expect(
        stint_shutdown(500),
        StintStatus::Timeout,
        "hanging shutdown",
    );
    collector.set_faults(Faults::default());

    // A corrupted journal is recovered from with a warning.
    let segment = std::fs::read_dir(dir.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let used = bytes.iter().rposition(|&b| b != 0).unwrap();
    bytes[used - 10] ^= 0x5a;
    std::fs::write(&segment, &bytes).unwrap();
    expect(init(SECRET_KEY, &options_json), StintStatus::Ok, "recover");
    flush_until_ok();
    expect(stint_shutdown(10_000), StintStatus::Ok, "shutdown");
    expect(stint_open_session(), StintStatus::NotInitialized, "after");

    assert!(wait_for(Duration::from_secs(10), || {
        let logs = LOGS.lock();
        logs.iter().any(|(_, m)| m.contains("API key"))
            && logs.iter().any(|(_, m)| m.contains("journal recovery"))
    }));
    unsafe { stint_set_log_handler(None, std::ptr::null_mut()) };
    unsafe { stint_set_session_listener(None, std::ptr::null_mut()) };
    let logs = LOGS.lock().clone();
    let levels = |level: StintLogLevel| logs.iter().filter(|(l, _)| *l == level).count();
    assert!(levels(StintLogLevel::Error) > 0 && levels(StintLogLevel::Debug) > 0);
    for (_, line) in &logs {
        assert!(
            !line.contains(SECRET_PIECE),
            "a log line holds the key: {line}"
        );
    }
    for message in &messages {
        assert!(
            !message.contains(SECRET_PIECE),
            "a message holds the key: {message}"
        );
    }
    for event in SEEN.lock().iter() {
        assert!(!format!("{event:?}").contains(SECRET_PIECE));
    }
    for request in collector.requests() {
        let agent = request.user_agent.unwrap_or_default();
        assert!(!agent.contains(SECRET_PIECE), "User-Agent: {agent}");
    }
    eprintln!(
        "API key: absent from {} log lines ({} error, {} warn, {} info, {} debug) and {} error \
         messages",
        logs.len(),
        levels(StintLogLevel::Error),
        levels(StintLogLevel::Warn),
        levels(StintLogLevel::Info),
        levels(StintLogLevel::Debug),
        messages.len()
    );
}

/// Plain http:// only to loopback: every other host, and every trick that would make a
/// loopback-looking URL reach another host, is INVALID_ARGUMENT naming baseUrl, and nothing is
/// initialized.
#[test]
fn plain_http_is_refused_for_anything_but_loopback() {
    let _turn = serial();
    let dir = fresh_dir("http");
    let refused = [
        "http://example.com",
        "HTTP://EXAMPLE.COM",
        "http://example.com:443",
        "http://10.0.0.1",
        "http://192.168.1.1:8080",
        "http://169.254.169.254/latest",
        "http://0.0.0.0:80",
        "http://[fe80::1]",
        "http://[::ffff:7f00:1]",
        "http://127.1",
        "http://2130706433",
        "http://0x7f.0.0.1",
        "http://127.0.0.1.evil.com",
        "http://localhost.evil.com",
        "http://127.0.0.1%2eevil.com",
        "http://[::1]evil.com",
        "http://[::1].evil.com:80",
        "http://127.0.0.1@evil.com",
        "http://127.0.0.1:80@evil.com",
        "http://localhost\\\\@evil.com",
        "http://user:pass@127.0.0.1",
        " http://127.0.0.1",
        "http://127.0.0.1 ",
        "http:/127.0.0.1",
        "http:127.0.0.1",
        "ws://127.0.0.1",
        "file:///etc/passwd",
        "javascript:alert(1)",
    ];
    for url in refused {
        let options_json = options(&dir, &format!(r#""baseUrl":"{url}""#));
        assert_eq!(
            init("k", &options_json),
            StintStatus::InvalidArgument,
            "{url} was accepted"
        );
        let message = last_error();
        assert!(message.starts_with("baseUrl"), "{url}: {message}");
        assert_eq!(stint_open_session(), StintStatus::NotInitialized, "{url}");
    }
    let allowed = [
        "http://127.0.0.1:1",
        "http://127.8.9.10:1",
        "http://localhost:1",
        "HTTP://LOCALHOST:1/",
        "http://[::1]:1",
        // Nothing is recorded in this directory, so nothing is ever sent to these.
        "https://collector.invalid",
        "https://collector.invalid:8443/base",
    ];
    for url in allowed {
        let options_json = options(&dir, &format!(r#""baseUrl":"{url}""#));
        assert_eq!(
            init("k", &options_json),
            StintStatus::Ok,
            "{url}: {}",
            last_error()
        );
        assert_eq!(stint_shutdown(0), StintStatus::Ok);
    }
    eprintln!(
        "baseUrl: {} URLs refused, {} allowed",
        refused.len(),
        allowed.len()
    );
}
