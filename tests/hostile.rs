//! The hostile input corpus: every entry point fed NULLs, invalid UTF-8, embedded NULs, strings
//! at and just past each limit, unterminated strings that end at an unmapped page, deep and huge
//! JSON, numbers out of range, wrong types, buffers of length 0 and 1, and calls before
//! initialize and after shutdown. Each case states its documented status and the argument its
//! message must name; after each, a probe checks that the library still works and that a
//! refused call changed nothing.
//!
//! Embedded NULs: a C string ends at its first NUL, so the library sees (and uses) only the
//! prefix; "alice\0mallory" is the user "alice". The cases below pin that down.

mod common;

use std::ffi::{c_char, c_void, CStr};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::time::Duration;

use common::*;
use stint_collector::{Collector, Faults};

/// What a message may be at most: hostile input must not be able to flood a log.
const MAX_MESSAGE_BYTES: usize = 1024;

// ---- memory that ends at an unmapped page ----------------------------------------------------

/// Bytes placed so that the last one is followed by a page that cannot be read or written: a
/// read or write one byte too far is a crash, not a silent overrun.
struct Guarded {
    base: *mut u8,
    total: usize,
    data: *mut u8,
    len: usize,
}

impl Guarded {
    fn page() -> usize {
        // SAFETY: plain libc query.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
    }

    fn new(len: usize, fill: u8) -> Guarded {
        let page = Guarded::page();
        let data_pages = len.div_ceil(page).max(1);
        let total = (data_pages + 1) * page;
        // SAFETY: a fresh anonymous mapping, then the last page made inaccessible.
        let base = unsafe {
            let base = libc::mmap(
                null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED);
            let guard = base.cast::<u8>().add(data_pages * page);
            assert_eq!(libc::mprotect(guard.cast(), page, libc::PROT_NONE), 0);
            base.cast::<u8>()
        };
        // SAFETY: `len` bytes before the guard page are mapped.
        let data = unsafe { base.add(data_pages * page - len) };
        unsafe { std::ptr::write_bytes(data, fill, len) };
        Guarded {
            base,
            total,
            data,
            len,
        }
    }

    /// `bytes` with no terminating NUL: the next byte is the guard page.
    fn unterminated(bytes: &[u8]) -> Guarded {
        let guarded = Guarded::new(bytes.len(), 0);
        // SAFETY: `len` writable bytes at `data`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), guarded.data, bytes.len()) };
        guarded
    }

    fn ptr(&self) -> *const c_char {
        self.data.cast()
    }

    fn mut_ptr(&self) -> *mut c_char {
        self.data.cast()
    }

    fn bytes(&self) -> Vec<u8> {
        // SAFETY: `len` readable bytes at `data`.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }.to_vec()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(self.base.cast(), self.total) };
    }
}

// ---- the table -------------------------------------------------------------------------------

type Call = Box<dyn Fn() -> StintStatus>;

/// One hostile input: what it does, its documented status, what its message must name, and how
/// many datapoints it records when it is accepted.
struct Case {
    what: String,
    expected: StintStatus,
    names: &'static str,
    records: u64,
    call: Call,
}

fn case(
    what: impl Into<String>,
    expected: StintStatus,
    names: &'static str,
    call: impl Fn() -> StintStatus + 'static,
) -> Case {
    Case {
        what: what.into(),
        expected,
        names,
        records: 0,
        call: Box::new(call),
    }
}

/// An accepted input that records `records` datapoints.
fn accepted(
    what: impl Into<String>,
    records: u64,
    call: impl Fn() -> StintStatus + 'static,
) -> Case {
    Case {
        records,
        ..case(what, StintStatus::Ok, "", call)
    }
}

fn invalid(
    what: impl Into<String>,
    names: &'static str,
    call: impl Fn() -> StintStatus + 'static,
) -> Case {
    case(what, StintStatus::InvalidArgument, names, call)
}

/// Runs each case, checks its status and message, then `probe` (which checks that the library
/// still works and that nothing changed beyond what the case records). Returns how many ran.
fn run(phase: &str, cases: Vec<Case>, mut probe: impl FnMut(&Case)) -> usize {
    let count = cases.len();
    for case in &cases {
        let status = (case.call)();
        assert_eq!(
            status,
            case.expected,
            "[{phase}] {}: {}",
            case.what,
            last_error()
        );
        if case.expected != StintStatus::Ok {
            let message = last_error();
            assert!(
                message.contains(case.names),
                "[{phase}] {}: message {message:?} does not name {:?}",
                case.what,
                case.names
            );
            assert!(
                message.len() <= MAX_MESSAGE_BYTES,
                "[{phase}] {}: a {}-byte message",
                case.what,
                message.len()
            );
        }
        probe(case);
    }
    count
}

// ---- raw calls -------------------------------------------------------------------------------

fn with_nul(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.push(0);
    v
}

fn initialize_raw(api_key: &[u8], options_json: Option<&[u8]>) -> StintStatus {
    let key = with_nul(api_key);
    let options = options_json.map(with_nul);
    unsafe {
        stint_initialize(
            key.as_ptr().cast(),
            options.as_ref().map_or(null(), |o| o.as_ptr().cast()),
        )
    }
}

fn change_user_raw(user: &[u8]) -> StintStatus {
    let user = with_nul(user);
    unsafe { stint_change_user(user.as_ptr().cast()) }
}

fn event_raw(name: &[u8], properties: Option<&[u8]>) -> StintStatus {
    let name = with_nul(name);
    let properties = properties.map(with_nul);
    unsafe {
        stint_log_custom_event(
            name.as_ptr().cast(),
            properties.as_ref().map_or(null(), |p| p.as_ptr().cast()),
        )
    }
}

fn options_bytes(dir: &Path, extra: &str) -> Vec<u8> {
    options(dir, extra).into_bytes()
}

/// `{"a":{"a":...1...}}` nested `depth` objects deep.
fn nested_objects(depth: usize) -> String {
    "{\"a\":".repeat(depth - 1) + "{\"a\":1}" + &"}".repeat(depth - 1)
}

/// A JSON object of exactly `len` bytes.
fn object_of_len(len: usize) -> String {
    let padding = len - "{\"a\":\"\"}".len();
    format!("{{\"a\":\"{}\"}}", "x".repeat(padding))
}

/// Invalid UTF-8 in its classic forms, each with a description.
fn bad_utf8() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a lone 0xff byte", b"ab\xffcd".to_vec()),
        ("a lone continuation byte", b"ab\x80cd".to_vec()),
        ("an overlong encoding of '/'", b"ab\xc0\xafcd".to_vec()),
        ("an encoded UTF-16 surrogate", b"ab\xed\xa0\x80cd".to_vec()),
        (
            "a code point above U+10FFFF",
            b"ab\xf4\x90\x80\x80".to_vec(),
        ),
        ("a sequence truncated at the end", b"abc\xe2\x82".to_vec()),
    ]
}

// ---- phases ----------------------------------------------------------------------------------

/// Every entry point while nothing is initialized: NOT_INITIALIZED (argument errors first).
fn uninitialized_cases(state: &'static str) -> Vec<Case> {
    let not_init = |what: &str, call: fn() -> StintStatus| {
        case(
            format!("{what} {state}"),
            StintStatus::NotInitialized,
            "not initialized",
            call,
        )
    };
    vec![
        not_init("stint_open_session", || stint_open_session()),
        not_init("stint_close_session", || stint_close_session()),
        not_init("stint_change_user(\"u\")", || change_user("u")),
        not_init("stint_log_custom_event(\"e\", NULL)", || event("e", None)),
        not_init("stint_log_custom_event(\"e\", \"{}\")", || {
            event("e", Some("{}"))
        }),
        not_init("stint_request_immediate_data_flush", || {
            stint_request_immediate_data_flush()
        }),
        not_init("stint_flush(0)", || stint_flush(0)),
        not_init("stint_flush(UINT32_MAX) returns at once", || {
            stint_flush(u32::MAX)
        }),
        not_init("stint_shutdown(0)", || stint_shutdown(0)),
        not_init("stint_shutdown(UINT32_MAX) returns at once", || {
            stint_shutdown(u32::MAX)
        }),
        case(
            format!("stint_get_session_id(37-byte buffer) {state}: buffer untouched"),
            StintStatus::NotInitialized,
            "not initialized",
            || {
                let buffer = Guarded::new(37, 0x55);
                let status = unsafe { stint_get_session_id(buffer.mut_ptr(), 37) };
                assert!(buffer.bytes().iter().all(|&b| b == 0x55), "untouched");
                status
            },
        ),
        case(
            format!("stint_get_stats {state}: out_stats untouched"),
            StintStatus::NotInitialized,
            "not initialized",
            || {
                let mut stats = StintStats {
                    sessions_started: 7,
                    ..StintStats::default()
                };
                let status = unsafe { stint_get_stats(&mut stats) };
                assert_eq!(stats.sessions_started, 7, "untouched");
                status
            },
        ),
        invalid(
            format!("stint_change_user(NULL) {state}"),
            "user_id",
            || unsafe { stint_change_user(null()) },
        ),
        invalid(
            format!("stint_log_custom_event(NULL) {state}"),
            "name",
            || unsafe { stint_log_custom_event(null(), null()) },
        ),
        invalid(
            format!("stint_log_custom_event(\"e\", \"[]\") {state}"),
            "properties_json",
            || event("e", Some("[]")),
        ),
        invalid(
            format!("stint_get_session_id(NULL, 37) {state}"),
            "buffer",
            || unsafe { stint_get_session_id(null_mut(), 37) },
        ),
        invalid(
            format!("stint_get_session_id(buffer, 1) {state}"),
            "buffer_len",
            || {
                let buffer = Guarded::new(1, 0x55);
                unsafe { stint_get_session_id(buffer.mut_ptr(), 1) }
            },
        ),
        invalid(
            format!("stint_get_stats(NULL) {state}"),
            "out_stats",
            || unsafe { stint_get_stats(null_mut()) },
        ),
        accepted(
            format!("stint_set_session_listener(NULL, junk user_data) {state}"),
            0,
            || unsafe { stint_set_session_listener(None, usize::MAX as *mut c_void) },
        ),
        accepted(
            format!("stint_set_log_handler(NULL, junk user_data) {state}"),
            0,
            || unsafe { stint_set_log_handler(None, usize::MAX as *mut c_void) },
        ),
    ]
}

/// After a refused initialize, nothing is initialized.
fn still_uninitialized(case: &Case) {
    assert_eq!(
        stint_open_session(),
        StintStatus::NotInitialized,
        "{}: something was initialized",
        case.what
    );
    let version = unsafe { CStr::from_ptr(stint_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// Hostile arguments to stint_initialize. Accepted ones are shut down again by the probe.
fn initialize_cases(scratch: &Path) -> Vec<Case> {
    let dir = scratch.join("init");
    let good = move || options_bytes(&dir, "");
    let mut cases = Vec::new();
    let key = |what: &str, api_key: Vec<u8>, expected: StintStatus| {
        let good = good.clone();
        case(format!("api_key {what}"), expected, "api_key", move || {
            initialize_raw(&api_key, Some(&good()))
        })
    };
    cases.push({
        let good = good.clone();
        invalid("api_key NULL", "api_key", move || {
            let options = with_nul(&good());
            unsafe { stint_initialize(null(), options.as_ptr().cast()) }
        })
    });
    cases.push(key("empty", b"".to_vec(), StintStatus::InvalidArgument));
    cases.push(key(
        "of 256 bytes (the limit)",
        vec![b'k'; 256],
        StintStatus::Ok,
    ));
    cases.push(key(
        "of 257 bytes",
        vec![b'k'; 257],
        StintStatus::InvalidArgument,
    ));
    cases.push(key(
        "of 128 two-byte characters (256 bytes)",
        "é".repeat(128).into_bytes(),
        StintStatus::Ok,
    ));
    cases.push(key(
        "of 128 two-byte characters and one more byte",
        ("é".repeat(128) + "x").into_bytes(),
        StintStatus::InvalidArgument,
    ));
    cases.push(key(
        "with a newline",
        b"key\nkey".to_vec(),
        StintStatus::InvalidArgument,
    ));
    cases.push(key(
        "with DEL",
        b"key\x7f".to_vec(),
        StintStatus::InvalidArgument,
    ));
    cases.push(key(
        "with U+0085 (a C1 control)",
        "key\u{85}".as_bytes().to_vec(),
        StintStatus::InvalidArgument,
    ));
    cases.push(key(
        "\"key\\0secret\": the prefix before the NUL is the key",
        b"key\0secret".to_vec(),
        StintStatus::Ok,
    ));
    for (what, bytes) in bad_utf8() {
        cases.push(key(what, bytes, StintStatus::InvalidArgument));
    }
    cases.push({
        let good = good.clone();
        invalid(
            "api_key of 257 bytes with no NUL, ending at an unmapped page",
            "api_key",
            move || {
                let key = Guarded::unterminated(&[b'k'; 257]);
                let options = with_nul(&good());
                unsafe { stint_initialize(key.ptr(), options.as_ptr().cast()) }
            },
        )
    });

    // options_json as a whole.
    let scratch = scratch.to_owned();
    let opts = |what: &str, json: Vec<u8>, expected: StintStatus, names: &'static str| {
        case(format!("options_json {what}"), expected, names, move || {
            initialize_raw(b"k", Some(&json))
        })
    };
    cases.push(accepted("options_json NULL means defaults", 0, || {
        initialize_raw(b"k", None)
    }));
    for (what, json) in [
        ("empty", ""),
        ("null", "null"),
        ("an array", "[]"),
        ("a number", "42"),
        ("a string", "\"{}\""),
        ("unterminated", "{"),
        ("with trailing garbage", "{}x"),
        ("with a trailing comma", r#"{"logLevel":"warn",}"#),
        ("with single quotes", "{'logLevel':'warn'}"),
        (
            "with a number out of f64 range",
            r#"{"sessionTimeoutInSeconds":1e400}"#,
        ),
    ] {
        cases.push(opts(
            what,
            json.as_bytes().to_vec(),
            StintStatus::InvalidArgument,
            "options_json",
        ));
    }
    for (what, bytes) in bad_utf8() {
        let mut json = br#"{"logLevel":""#.to_vec();
        json.extend_from_slice(&bytes);
        json.extend_from_slice(br#""}"#);
        cases.push(opts(
            what,
            json,
            StintStatus::InvalidArgument,
            "options_json",
        ));
    }
    let at_limit = {
        let mut json = options_bytes(&scratch.join("limit"), "");
        json.pop();
        json.resize(64 * 1024 - 1, b' ');
        json.push(b'}');
        json
    };
    assert_eq!(at_limit.len(), 64 * 1024);
    cases.push(opts(
        "of exactly 64 KB (padded with whitespace)",
        at_limit.clone(),
        StintStatus::Ok,
        "",
    ));
    let mut past_limit = at_limit.clone();
    past_limit.insert(1, b' ');
    cases.push(opts(
        "of 64 KB + 1",
        past_limit.clone(),
        StintStatus::InvalidArgument,
        "options_json",
    ));
    cases.push(invalid(
        "options_json of 64 KB + 1 with no NUL, ending at an unmapped page",
        "options_json",
        move || {
            let options = Guarded::unterminated(&past_limit);
            unsafe { stint_initialize(c"k".as_ptr(), options.ptr()) }
        },
    ));
    cases.push(opts(
        "nested 30,000 arrays deep",
        format!(r#"{{"x":{}{}}}"#, "[".repeat(30_000), "]".repeat(30_000)).into_bytes(),
        StintStatus::InvalidArgument,
        "options_json",
    ));
    {
        let mut json = options_bytes(&scratch.join("nul"), "");
        json.extend_from_slice(b"\0{\"logLevel\":\"nope\"}");
        cases.push(opts(
            "followed by a NUL and more: the prefix is used",
            json,
            StintStatus::Ok,
            "",
        ));
    }
    cases.push(opts(
        "cut by a NUL inside",
        b"{\"logLevel\"\0:\"warn\"}".to_vec(),
        StintStatus::InvalidArgument,
        "options_json",
    ));

    // Each option: wrong types, out of range, hostile values.
    let option = |what: &str, extra: &str, expected: StintStatus, names: &'static str| {
        let json = options_bytes(&scratch.join("opt"), extra);
        case(format!("option {what}"), expected, names, move || {
            initialize_raw(b"k", Some(&json))
        })
    };
    let bad = |what: &str, extra: &str, names: &'static str| {
        option(what, extra, StintStatus::InvalidArgument, names)
    };
    let timeout = "sessionTimeoutInSeconds";
    for value in [
        "0",
        "-1",
        "31536001",
        "18446744073709551616",
        "-9223372036854775809",
        "1e3",
        "1.0",
        "900.5",
        "\"900\"",
        "true",
        "null",
        "[]",
        "{}",
    ] {
        cases.push(bad(
            &format!("{timeout}: {value}"),
            &format!("\"{timeout}\":{value}"),
            timeout,
        ));
    }
    cases.push(option(
        "sessionTimeoutInSeconds: 1 (lower bound)",
        r#""sessionTimeoutInSeconds":1"#,
        StintStatus::Ok,
        "",
    ));
    cases.push(option(
        "sessionTimeoutInSeconds: 31536000 (upper bound)",
        r#""sessionTimeoutInSeconds":31536000"#,
        StintStatus::Ok,
        "",
    ));
    for (key, value) in [
        ("flushIntervalInSeconds", "0"),
        ("flushIntervalInSeconds", "86401"),
        ("flushIntervalInSeconds", "\"10\""),
        ("maxQueuedDatapoints", "99"),
        ("maxQueuedDatapoints", "10000001"),
        ("maxQueuedDatapoints", "-100"),
        ("maxQueuedDatapoints", "1e30"),
        ("keepOpenWhileForeground", "\"true\""),
        ("keepOpenWhileForeground", "1"),
        ("keepOpenWhileForeground", "null"),
        ("logLevel", "\"DEBUG\""),
        ("logLevel", "\"\""),
        ("logLevel", "3"),
        ("dataDirectory", "\"relative/dir\""),
        ("dataDirectory", "\"\""),
        ("dataDirectory", "5"),
        ("dataDirectory", "null"),
        ("dataDirectory", "\"/tmp/a\\u0000b\""),
        ("baseUrl", "\"http://example.com\""),
        ("baseUrl", "\"ftp://127.0.0.1\""),
        ("baseUrl", "\"https://\""),
        ("baseUrl", "\"\""),
        ("baseUrl", "5"),
        ("baseUrl", "\"https://user:pw@example.com\""),
        ("baseUrl", "\"https://exa mple.com\""),
        ("baseUrl", "\"https://example.com\\n\""),
    ] {
        // dataDirectory is given twice here (the later one wins, as in any JSON object).
        cases.push(bad(
            &format!("{key}: {value}"),
            &format!("\"{key}\":{value}"),
            key,
        ));
    }
    cases.push(bad("unknown key apiKey", r#""apiKey":"k""#, "apiKey"));
    let long_key = format!(r#""{}":1"#, "k".repeat(60_000));
    cases.push(bad(
        "an unknown key of 60,000 bytes",
        &long_key,
        "unknown option",
    ));
    cases.push(bad(
        "a duplicated key whose last value is bad",
        r#""logLevel":"debug","logLevel":"nope""#,
        "logLevel",
    ));
    let long_relative = format!(r#""dataDirectory":"{}""#, "d".repeat(60_000));
    cases.push(bad(
        "dataDirectory: a 60,000-byte relative path",
        &long_relative,
        "dataDirectory",
    ));
    let long_url = format!(r#""baseUrl":"http://{}.example""#, "h".repeat(60_000));
    cases.push(bad("baseUrl: a 60,000-byte host", &long_url, "baseUrl"));
    for (what, path) in [
        (
            "under /proc (cannot be created)",
            PathBuf::from("/proc/stint-hostile/data"),
        ),
        (
            "through a regular file",
            scratch.join("a-file").join("data"),
        ),
        (
            "with a component longer than NAME_MAX",
            scratch.join("n".repeat(300)),
        ),
        (
            "longer than PATH_MAX",
            PathBuf::from(format!("/tmp/{}", "p/".repeat(3000))),
        ),
    ] {
        let json = options(&path, "").into_bytes();
        cases.push(case(
            format!("dataDirectory {what}"),
            StintStatus::StorageError,
            "dataDirectory",
            move || initialize_raw(b"k", Some(&json)),
        ));
    }
    cases
}

/// Hostile arguments while running. `alice` is the current user and a session is open.
fn running_cases() -> Vec<Case> {
    let mut cases = vec![
        invalid("stint_change_user(NULL)", "user_id", || unsafe {
            stint_change_user(null())
        }),
        invalid("user_id empty", "user_id", || change_user("")),
        accepted("user_id of 997 bytes (the limit): a new user", 2, || {
            change_user(&"u".repeat(997))
        }),
        invalid("user_id of 998 bytes", "user_id", || {
            change_user(&"u".repeat(998))
        }),
        accepted(
            "user_id of 498 two-byte characters and one byte (997)",
            2,
            || change_user(&("ü".repeat(498) + "a")),
        ),
        invalid(
            "user_id of 499 two-byte characters (998)",
            "user_id",
            || change_user(&"ü".repeat(499)),
        ),
        invalid(
            "user_id of 996 bytes and a two-byte character (998)",
            "user_id",
            || change_user(&("u".repeat(996) + "ü")),
        ),
        invalid(
            "user_id of 998 bytes with no NUL, ending at an unmapped page",
            "user_id",
            || {
                let user = Guarded::unterminated(&[b'u'; 998]);
                unsafe { stint_change_user(user.ptr()) }
            },
        ),
        accepted("user_id alice again (setup for the next case)", 2, || {
            change_user("alice")
        }),
        accepted(
            "user_id \"alice\\0mallory\": the prefix, alice, is the same user",
            0,
            || change_user_raw(b"alice\0mallory"),
        ),
        accepted(
            "user_id with a newline, tab, quote and backslash",
            2,
            || change_user("bob\n\t\"\\"),
        ),
        accepted("user_id of a BOM and a right-to-left override", 2, || {
            change_user("\u{feff}\u{202e}evil")
        }),
        accepted("user_id alice (back to alice)", 2, || change_user("alice")),
        invalid("stint_log_custom_event(NULL, NULL)", "name", || unsafe {
            stint_log_custom_event(null(), null())
        }),
        invalid("event name empty", "name", || event("", None)),
        accepted("event name of 255 bytes (the limit)", 1, || {
            event(&"n".repeat(255), None)
        }),
        invalid("event name of 256 bytes", "name", || {
            event(&"n".repeat(256), None)
        }),
        invalid(
            "event name of 256 bytes with no NUL, ending at an unmapped page",
            "name",
            || {
                let name = Guarded::unterminated(&[b'n'; 256]);
                unsafe { stint_log_custom_event(name.ptr(), null()) }
            },
        ),
        accepted(
            "event name \"nul-prefix\\0junk\": recorded as nul-prefix",
            1,
            || event_raw(b"nul-prefix\0junk", None),
        ),
        accepted(
            "event name with quotes, backslash and control characters",
            1,
            || event("q\"\\\n\u{1}", None),
        ),
    ];
    for (what, bytes) in bad_utf8() {
        let user = bytes.clone();
        cases.push(invalid(
            format!("user_id with {what}"),
            "UTF-8",
            move || change_user_raw(&user),
        ));
        let name = bytes.clone();
        cases.push(invalid(
            format!("event name with {what}"),
            "name",
            move || event_raw(&name, None),
        ));
        let mut properties = br#"{"a":""#.to_vec();
        properties.extend_from_slice(&bytes);
        properties.extend_from_slice(br#""}"#);
        cases.push(invalid(
            format!("properties with {what}"),
            "properties_json",
            move || event_raw(b"e", Some(&properties)),
        ));
    }
    for (what, json) in [
        ("empty", ""),
        ("null", "null"),
        ("an array", "[1,2]"),
        ("a string", "\"{}\""),
        ("a number", "3"),
        ("a bare number out of f64 range", "1e999"),
        ("unterminated", "{\"a\":"),
        ("with an extra closing brace", "{}}"),
        ("with a trailing comma", "{\"a\":1,}"),
        ("with single quotes", "{'a':1}"),
        ("with NaN", "{\"a\":NaN}"),
        ("with a number out of f64 range", "{\"a\":1e999}"),
        ("with a lone surrogate escape", "{\"a\":\"\\ud800\"}"),
        ("after a byte-order mark", "\u{feff}{}"),
        ("nested 33 objects deep", &nested_objects(33)),
        (
            "nested 25,000 arrays deep",
            &format!("{{\"a\":{}{}}}", "[".repeat(25_000), "]".repeat(25_000)),
        ),
        ("50 KB + 1", &object_of_len(50 * 1024 + 1)),
    ] {
        let json = json.to_owned();
        cases.push(invalid(
            format!("properties {what}"),
            "properties_json",
            move || event("e", Some(&json)),
        ));
    }
    cases.push(invalid(
        "properties of 50 KB + 1 with no NUL, ending at an unmapped page",
        "properties_json",
        || {
            let properties = Guarded::unterminated(object_of_len(50 * 1024 + 1).as_bytes());
            unsafe { stint_log_custom_event(c"e".as_ptr(), properties.ptr()) }
        },
    ));
    cases.push(invalid(
        "properties cut by a NUL: {\"a\":\\0 1}",
        "properties_json",
        || event_raw(b"e", Some(b"{\"a\":\0 1}")),
    ));
    for (what, json) in [
        ("nested 32 objects deep (the limit)", nested_objects(32)),
        (
            "with 10,000 brackets inside a string (not nesting)",
            format!("{{\"a\":\"{}{}\"}}", "[".repeat(5000), "]".repeat(5000)),
        ),
        ("of exactly 50 KB", object_of_len(50 * 1024)),
        (
            "of 45 KB in 3,500 keys",
            format!(
                "{{{}}}",
                (0..3500)
                    .map(|i| format!("\"k{i:04}\":{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        (
            "with integers beyond 64 bits",
            r#"{"a":123456789012345678901234567890,"b":-9223372036854775809}"#.into(),
        ),
        ("with an escaped NUL", r#"{"a":"\u0000"}"#.into()),
        ("after whitespace", " \t\r\n{}".into()),
    ] {
        assert!(json.len() <= 50 * 1024, "{what}");
        cases.push(accepted(format!("properties {what}"), 1, move || {
            event("e", Some(&json))
        }));
    }
    cases.push(accepted(
        "properties {\"a\":1} followed by a NUL and junk: the prefix is used",
        1,
        || event_raw(b"e", Some(b"{\"a\":1}\0{junk")),
    ));

    // Buffers.
    cases.push(invalid(
        "stint_get_session_id(NULL, 37)",
        "buffer",
        || unsafe { stint_get_session_id(null_mut(), 37) },
    ));
    for len in [0, 1, 36] {
        cases.push(invalid(
            format!("stint_get_session_id(buffer, {len}): untouched"),
            "buffer_len",
            move || {
                let buffer = Guarded::new(len.max(1), 0x55);
                let status = unsafe { stint_get_session_id(buffer.mut_ptr(), len) };
                assert!(buffer.bytes().iter().all(|&b| b == 0x55), "untouched");
                status
            },
        ));
    }
    cases.push(accepted(
        "stint_get_session_id(37 bytes ending at an unmapped page, 37)",
        0,
        || {
            let buffer = Guarded::new(37, 0x55);
            let status = unsafe { stint_get_session_id(buffer.mut_ptr(), 37) };
            assert_eq!(buffer.bytes()[36], 0, "NUL-terminated");
            status
        },
    ));
    cases.push(accepted(
        "stint_get_session_id(37 bytes, SIZE_MAX): writes only the id and its NUL",
        0,
        || {
            let buffer = Guarded::new(37, 0x55);
            unsafe { stint_get_session_id(buffer.mut_ptr(), usize::MAX) }
        },
    ));
    cases.push(invalid("stint_get_stats(NULL)", "out_stats", || unsafe {
        stint_get_stats(null_mut())
    }));

    // Numbers at their extremes, and lifecycle calls at the wrong time.
    cases.push(case(
        "stint_flush(0) with data pending (the collector is failing)",
        StintStatus::Timeout,
        "flush",
        || stint_flush(0),
    ));
    cases.push(case(
        "stint_flush(1) with data pending",
        StintStatus::Timeout,
        "flush",
        || stint_flush(1),
    ));
    cases.push(accepted("stint_request_immediate_data_flush", 0, || {
        stint_request_immediate_data_flush()
    }));
    cases.push(case(
        "stint_initialize again",
        StintStatus::AlreadyInitialized,
        "already initialized",
        || init("k", "{}"),
    ));
    cases.push(invalid(
        "stint_initialize again with a bad api_key: arguments are checked first",
        "api_key",
        || init("", "{}"),
    ));
    cases.push(invalid(
        "stint_initialize again with bad options",
        "logLevel",
        || init("k", r#"{"logLevel":5}"#),
    ));
    cases.push(accepted(
        "stint_set_session_listener(NULL, junk user_data)",
        0,
        || unsafe { stint_set_session_listener(None, usize::MAX as *mut c_void) },
    ));
    cases.push(accepted(
        "stint_set_log_handler(NULL, junk user_data)",
        0,
        || unsafe { stint_set_log_handler(None, usize::MAX as *mut c_void) },
    ));
    cases
}

/// The names of custom events the running phase's accepted cases record.
fn accepted_event_names() -> Vec<String> {
    let mut names = vec![
        "n".repeat(255),
        "nul-prefix".to_owned(),
        "q\"\\\n\u{1}".to_owned(),
    ];
    names.extend(std::iter::repeat_n("e".to_owned(), 8));
    names
}

/// stint_last_error_message with hostile buffers. Returns how many inputs were tried.
fn last_error_message_inputs() -> usize {
    // A message with a two-byte character to cut through.
    assert_eq!(
        init("k", r#"{"logLevel":"ü"}"#),
        StintStatus::InvalidArgument
    );
    let full = last_error();
    let len = full.len();
    assert!(full.contains("\"ü\""), "{full}");
    let mut tried = 0;
    let mut check = |what: &str, buffer: *mut c_char, buffer_len: usize| {
        tried += 1;
        let returned = unsafe { stint_last_error_message(buffer, buffer_len) };
        assert_eq!(returned, len, "{what}: the full length is returned");
    };
    check("NULL, 0", null_mut(), 0);
    check("NULL, 100", null_mut(), 100);
    let untouched = Guarded::new(1, 0x55);
    check("buffer, 0: untouched", untouched.mut_ptr(), 0);
    assert_eq!(untouched.bytes(), [0x55]);
    let one = Guarded::new(1, 0x55);
    check("buffer, 1: only the NUL", one.mut_ptr(), 1);
    assert_eq!(one.bytes(), [0]);
    let two = Guarded::new(2, 0x55);
    check("buffer, 2: one byte and the NUL", two.mut_ptr(), 2);
    assert_eq!(two.bytes(), [full.as_bytes()[0], 0]);
    let exact = Guarded::new(len + 1, 0x55);
    check(
        "exactly len + 1 bytes ending at an unmapped page",
        exact.mut_ptr(),
        len + 1,
    );
    assert_eq!(&exact.bytes()[..len], full.as_bytes());
    let umlaut = full.find('ü').unwrap();
    let cut = Guarded::new(umlaut + 2, 0x55);
    check(
        "a buffer that would cut a character in two",
        cut.mut_ptr(),
        umlaut + 2,
    );
    let copied = unsafe { CStr::from_ptr(cut.ptr()) };
    assert_eq!(
        copied.to_str().unwrap(),
        &full[..umlaut],
        "cut before the character"
    );
    let fresh = std::thread::spawn(|| unsafe { stint_last_error_message(null_mut(), 0) });
    assert_eq!(fresh.join().unwrap(), 0, "a thread with no failed call");
    tried + 1
}

#[test]
fn every_hostile_input_gets_its_documented_status_and_the_library_keeps_working() {
    let _turn = serial();
    let scratch = fresh_dir("hostile");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("a-file"), b"not a directory").unwrap();
    // NULL options use the default directory: keep it inside the scratch directory.
    std::env::set_var("XDG_DATA_HOME", scratch.join("xdg"));
    let mut tried = 0;

    tried += run(
        "before initialize",
        uninitialized_cases("before initialize"),
        still_uninitialized,
    );

    tried += run("initialize", initialize_cases(&scratch), |case| {
        if case.expected == StintStatus::Ok {
            assert_eq!(stint_open_session(), StintStatus::Ok, "{}", case.what);
            assert_eq!(stint_shutdown(5_000), StintStatus::Ok, "{}", case.what);
        }
        still_uninitialized(case);
    });

    // Running: the collector fails every request until the end, so data stays pending.
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        fail_next: u32::MAX,
        fail_status: 503,
        ..Faults::default()
    });
    let dir = scratch.join("running");
    init_ok(
        &dir,
        &format!(
            r#""baseUrl":"{}","flushIntervalInSeconds":86400"#,
            collector.url()
        ),
    );
    assert_eq!(change_user("alice"), StintStatus::Ok);
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let mut recorded = stats().datapoints_recorded;
    let mut probes = Vec::new();
    tried += run("running", running_cases(), |case| {
        let now = stats().datapoints_recorded;
        assert_eq!(
            now - recorded,
            case.records,
            "{}: datapoints recorded by the case",
            case.what
        );
        let probe = format!("probe-{}", probes.len());
        assert_eq!(event(&probe, None), StintStatus::Ok, "after {}", case.what);
        assert!(
            session_id().is_some(),
            "after {}: the session is open",
            case.what
        );
        probes.push(probe);
        recorded = now + 1;
    });
    tried += last_error_message_inputs();

    // Everything accepted arrives once the collector recovers, exactly as the C strings' prefixes.
    collector.set_faults(Faults::default());
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while stint_flush(5_000) != StintStatus::Ok {
        assert!(std::time::Instant::now() < deadline, "{}", last_error());
    }
    let mut delivered: Vec<String> = named(&collector.datapoints(), "ce")
        .iter()
        .map(|d| d["data"]["n"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = accepted_event_names();
    expected.extend(probes);
    delivered.sort();
    expected.sort();
    assert_eq!(delivered, expected);
    let users: std::collections::BTreeSet<String> = named(&collector.datapoints(), "ss")
        .iter()
        .filter_map(|d| d["user_id"].as_str().map(str::to_owned))
        .collect();
    assert!(users.contains("bob\n\t\"\\"), "{users:?}");
    assert!(!users.iter().any(|u| u.contains("mallory")), "{users:?}");
    let with_nul_prefix = named(&collector.datapoints(), "ce")
        .into_iter()
        .filter(|d| d["data"]["p"] == serde_json::json!({"a": 1}))
        .count();
    assert_eq!(with_nul_prefix, 1, "properties cut at the NUL");
    assert_eq!(stint_shutdown(5_000), StintStatus::Ok);

    tried += run(
        "after shutdown",
        uninitialized_cases("after shutdown"),
        still_uninitialized,
    );
    eprintln!("hostile input: {tried} inputs tried, each with its documented status, 0 crashes");
    assert!(tried >= 60, "{tried}");
}
