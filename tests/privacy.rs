//! The user decides, over the C ABI: the tracking switch (saved across restarts, with
//! `requireConsent`), wiping local data, the device id, the network switch. Restarts run in
//! child processes, as an app restarting would.

mod common;

use std::ffi::{c_char, c_void, CStr};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use stint_collector::Collector;

fn tracking_enabled() -> bool {
    let mut enabled = false;
    let status = unsafe { stint_get_tracking_enabled(&mut enabled) };
    assert_eq!(status, StintStatus::Ok, "{}", last_error());
    enabled
}

fn device_id() -> String {
    let mut buffer = [0 as c_char; 37];
    let status = unsafe { stint_get_device_id(buffer.as_mut_ptr(), buffer.len()) };
    assert_eq!(status, StintStatus::Ok, "{}", last_error());
    unsafe { CStr::from_ptr(buffer.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// Runs `test` of this binary as a child playing `role` (an app's run), and waits for it.
fn run_child(test: &str, role: &str, envs: &[(&str, String)]) {
    let output = spawn_child(test, role, envs).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child {role} failed:\n{stdout}");
    assert!(
        stdout.contains("CHILD OK"),
        "child {role} did not finish:\n{stdout}"
    );
}

/// Every byte under `dir`, for checking that erased data is gone from the disk.
fn bytes_on_disk(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(bytes_on_disk(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

fn on_disk(dir: &Path, needle: &str) -> bool {
    bytes_on_disk(dir)
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn url_option(url: &str) -> String {
    format!(r#""baseUrl":"{url}","flushIntervalInSeconds":1"#)
}

fn env_dir() -> std::path::PathBuf {
    std::env::var("STINT_DIR").unwrap().into()
}

const DISABLE: &str = "disabling_tracking_erases_the_queue_and_the_choice_survives_a_restart";

#[test]
fn disabling_tracking_erases_the_queue_and_the_choice_survives_a_restart() {
    match child_role().as_deref() {
        Some("record-then-disable") => {
            listen();
            init_ok(&env_dir(), "");
            assert!(tracking_enabled(), "enabled by default");
            assert_eq!(stint_open_session(), StintStatus::Ok);
            for _ in 0..3 {
                assert_eq!(event("secret-before-optout", None), StintStatus::Ok);
            }
            assert_eq!(stats().datapoints_pending, 4);
            let listened = SEEN.lock().len();
            assert_eq!(stint_set_tracking_enabled(false), StintStatus::Ok);
            assert!(!tracking_enabled());
            assert_eq!(stats().datapoints_pending, 0, "the queue is erased");
            assert_eq!(session_id(), None, "the session is dropped");
            // Every tracker call succeeds and records nothing.
            let recorded = stats().datapoints_recorded;
            assert_eq!(stint_open_session(), StintStatus::Ok);
            assert_eq!(event("while-disabled", None), StintStatus::Ok);
            assert_eq!(change_user("bob"), StintStatus::Ok);
            assert_eq!(stint_close_session(), StintStatus::Ok);
            assert_eq!(session_id(), None);
            let after = stats();
            assert_eq!(after.datapoints_recorded, recorded);
            assert_eq!(after.datapoints_pending, 0);
            assert_eq!(after.sessions_ended, 0, "dropped without an `se`");
            assert_eq!(SEEN.lock().len(), listened);
            assert_eq!(stint_shutdown(2_000), StintStatus::Ok);
            println!("CHILD OK");
        }
        Some("restart-still-disabled") => {
            let url = std::env::var("STINT_URL").unwrap();
            init_ok(&env_dir(), &url_option(&url));
            assert!(!tracking_enabled(), "the choice survived the restart");
            assert_eq!(stint_open_session(), StintStatus::Ok);
            assert_eq!(event("while-disabled", None), StintStatus::Ok);
            assert_eq!(stint_flush(5_000), StintStatus::Ok, "{}", last_error());
            assert_eq!(stats().datapoints_recorded, 0);
            // Enabled again: the next open_session starts a new session.
            assert_eq!(stint_set_tracking_enabled(true), StintStatus::Ok);
            assert!(tracking_enabled());
            assert_eq!(stint_open_session(), StintStatus::Ok);
            assert!(session_id().is_some());
            assert_eq!(event("after-optin", None), StintStatus::Ok);
            assert_eq!(stint_flush(20_000), StintStatus::Ok, "{}", last_error());
            assert_eq!(stint_shutdown(2_000), StintStatus::Ok);
            println!("CHILD OK");
        }
        Some(role) => panic!("unknown role {role}"),
        None => {
            // No serial(): only child processes use Stint here, never this one.
            let dir = fresh_dir("optout");
            let envs = [("STINT_DIR", dir.display().to_string())];
            run_child(DISABLE, "record-then-disable", &envs);
            assert!(
                !on_disk(&dir, "secret-before-optout"),
                "erased datapoints are still on disk"
            );
            let collector = Collector::start().unwrap();
            let envs = [
                ("STINT_DIR", dir.display().to_string()),
                ("STINT_URL", collector.url()),
            ];
            run_child(DISABLE, "restart-still-disabled", &envs);
            let datapoints = collector.datapoints();
            let names: Vec<&str> = datapoints
                .iter()
                .map(|d| d["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["ss", "ce"], "{datapoints:?}");
            assert_eq!(datapoints[1]["data"]["n"], "after-optin");
        }
    }
}

const CONSENT: &str = "require_consent_starts_disabled_until_enabled_and_a_saved_choice_wins";

#[test]
fn require_consent_starts_disabled_until_enabled_and_a_saved_choice_wins() {
    let consent = |url: &str| format!(r#"{},"requireConsent":true"#, url_option(url));
    match child_role().as_deref() {
        Some("first-run") => {
            let url = std::env::var("STINT_URL").unwrap();
            init_ok(&env_dir(), &consent(&url));
            assert!(
                !tracking_enabled(),
                "no choice saved yet: waiting for consent"
            );
            assert_eq!(stint_open_session(), StintStatus::Ok);
            assert_eq!(event("before-consent", None), StintStatus::Ok);
            assert_eq!(stats().datapoints_recorded, 0);
            assert_eq!(stint_set_tracking_enabled(true), StintStatus::Ok);
            assert_eq!(stint_open_session(), StintStatus::Ok);
            assert_eq!(event("after-consent", None), StintStatus::Ok);
            assert_eq!(stint_flush(20_000), StintStatus::Ok, "{}", last_error());
            assert_eq!(stint_shutdown(2_000), StintStatus::Ok);
            println!("CHILD OK");
        }
        Some("second-run") => {
            let url = std::env::var("STINT_URL").unwrap();
            init_ok(&env_dir(), &consent(&url));
            assert!(
                tracking_enabled(),
                "the saved choice wins over requireConsent"
            );
            assert_eq!(stint_shutdown(2_000), StintStatus::Ok);
            println!("CHILD OK");
        }
        Some(role) => panic!("unknown role {role}"),
        None => {
            let _turn = serial();
            let collector = Collector::start().unwrap();
            let dir = fresh_dir("consent");
            let envs = [
                ("STINT_DIR", dir.display().to_string()),
                ("STINT_URL", collector.url()),
            ];
            run_child(CONSENT, "first-run", &envs);
            run_child(CONSENT, "second-run", &envs);
            let names: Vec<String> = collector
                .datapoints()
                .iter()
                .filter(|d| d["name"] == "ce")
                .map(|d| d["data"]["n"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(names, ["after-consent"]);

            // Without the option, a new directory starts enabled.
            let fresh = fresh_dir("consent-default");
            init_ok(&fresh, "");
            assert!(tracking_enabled());
            assert_eq!(stint_shutdown(1_000), StintStatus::Ok);
        }
    }
}

const WIPE: &str = "a_wipe_erases_data_user_session_and_device_id_on_disk_too";

#[test]
fn a_wipe_erases_data_user_session_and_device_id_on_disk_too() {
    match child_role().as_deref() {
        Some("record-then-wipe") => {
            init_ok(&env_dir(), "");
            assert_eq!(change_user("wiped-user-alice"), StintStatus::Ok);
            assert_eq!(stint_open_session(), StintStatus::Ok);
            assert_eq!(event("secret-before-wipe", None), StintStatus::Ok);
            let old_device = device_id();
            let old_session = session_id().unwrap();
            assert_eq!(stint_wipe_data(), StintStatus::Ok);
            assert_eq!(stats().datapoints_pending, 0);
            assert_eq!(session_id(), None, "no session after a wipe");
            let new_device = device_id();
            assert_eq!(new_device.len(), 36);
            assert_ne!(new_device, old_device);
            assert!(tracking_enabled(), "the tracking choice is kept");
            // Stint goes on: a new session, with no user. (Checked on disk before this run
            // saves anything else: the wipe alone must leave nothing of the user behind.)
            println!("WIPED");
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            assert_eq!(stint_open_session(), StintStatus::Ok);
            assert_ne!(session_id().unwrap(), old_session);
            assert_eq!(event("after-wipe", None), StintStatus::Ok);
            println!("OLD DEVICE {old_device}");
            println!("NEW DEVICE {new_device}");
            // Killed, not shut down: the wipe must hold without a clean exit.
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            println!("CHILD OK");
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            std::process::exit(0);
        }
        Some("restart") => {
            let url = std::env::var("STINT_URL").unwrap();
            init_ok(&env_dir(), &url_option(&url));
            println!("DEVICE {}", device_id());
            assert_eq!(stint_flush(20_000), StintStatus::Ok, "{}", last_error());
            assert_eq!(stint_shutdown(2_000), StintStatus::Ok);
            println!("CHILD OK");
        }
        Some(role) => panic!("unknown role {role}"),
        None => {
            // No serial(): only child processes use Stint here, never this one.
            let dir = fresh_dir("wipe");
            let envs = [("STINT_DIR", dir.display().to_string())];
            let mut child = spawn_child(WIPE, "record-then-wipe", &envs);
            let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            while !line.contains("WIPED") {
                line.clear();
                let read = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
                assert!(read > 0, "child died before the wipe");
            }
            for gone in ["secret-before-wipe", "wiped-user-alice"] {
                assert!(
                    !on_disk(&dir, gone),
                    "{gone} is still on disk right after a wipe"
                );
            }
            writeln!(child.stdin.take().unwrap(), "go").unwrap();
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
            let output = child.wait_with_output().unwrap();
            let output = std::process::Output {
                stdout: rest.into_bytes(),
                ..output
            };
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(stdout.contains("CHILD OK"), "{stdout}");
            let line = |prefix: &str| {
                stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .unwrap()
                    .trim()
                    .to_owned()
            };
            let (old_device, new_device) = (line("OLD DEVICE "), line("NEW DEVICE "));
            for gone in [
                "secret-before-wipe",
                "wiped-user-alice",
                old_device.as_str(),
            ] {
                assert!(!on_disk(&dir, gone), "{gone} is still on disk after a wipe");
            }
            let collector = Collector::start().unwrap();
            let envs = [
                ("STINT_DIR", dir.display().to_string()),
                ("STINT_URL", collector.url()),
            ];
            let output = spawn_child(WIPE, "restart", &envs)
                .wait_with_output()
                .unwrap();
            let restarted = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(restarted.contains("CHILD OK"), "{restarted}");
            assert!(restarted.contains(&format!("DEVICE {new_device}")));
            let datapoints = collector.datapoints();
            let text = serde_json::to_string(&datapoints).unwrap();
            assert!(!text.contains("secret-before-wipe"), "{text}");
            assert!(!text.contains("wiped-user-alice"), "{text}");
            assert!(text.contains("after-wipe"), "{text}");
            assert!(datapoints.iter().all(|d| d["user_id"].is_null()));
            for request in collector.requests() {
                assert_eq!(request.device_id.as_deref(), Some(new_device.as_str()));
            }
        }
    }
}

#[test]
fn network_disabled_then_enabled_delivers_everything() {
    let _turn = serial();
    let collector = Collector::start().unwrap();
    let dir = fresh_dir("network");
    init_ok(&dir, &url_option(&collector.url()));
    assert_eq!(stint_set_network_enabled(false), StintStatus::Ok);
    assert_eq!(stint_open_session(), StintStatus::Ok);
    for i in 0..20 {
        assert_eq!(event(&format!("offline-{i}"), None), StintStatus::Ok);
    }
    let started = Instant::now();
    assert_eq!(stint_flush(30_000), StintStatus::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "flush returns at once while the network is disabled"
    );
    assert!(
        last_error().contains("network is disabled"),
        "{}",
        last_error()
    );
    assert_eq!(stint_request_immediate_data_flush(), StintStatus::Ok);
    // That no send falls due while the network is off, however long, is unit-tested
    // (engine::delivery::with_the_network_off_no_send_falls_due); recording went on.
    assert_eq!(collector.request_count(), 0);
    assert_eq!(stats().datapoints_pending, 21);
    assert_eq!(stint_set_network_enabled(true), StintStatus::Ok);
    assert_eq!(stint_flush(20_000), StintStatus::Ok, "{}", last_error());
    assert_eq!(
        named(&collector.datapoints(), "ce").len(),
        20,
        "everything recorded offline is delivered"
    );
    assert_eq!(stint_shutdown(2_000), StintStatus::Ok);

    // Shutting down with the network off: a timeout only while something stays queued.
    init_ok(&dir, &url_option(&collector.url()));
    assert_eq!(stint_set_network_enabled(false), StintStatus::Ok);
    assert_eq!(stint_shutdown(2_000), StintStatus::Ok, "{}", last_error());
    init_ok(&dir, &url_option(&collector.url()));
    assert_eq!(stint_set_network_enabled(false), StintStatus::Ok);
    assert_eq!(event("kept-for-next-run", None), StintStatus::Ok);
    assert_eq!(stint_shutdown(2_000), StintStatus::Timeout);

    // Not saved: the next initialize starts with the network enabled, and delivers.
    init_ok(&dir, &url_option(&collector.url()));
    assert_eq!(event("next-run", None), StintStatus::Ok);
    assert_eq!(stint_flush(20_000), StintStatus::Ok, "{}", last_error());
    assert_eq!(stint_shutdown(2_000), StintStatus::Ok);
    let names: Vec<String> = named(&collector.datapoints(), "ce")
        .iter()
        .map(|d| d["data"]["n"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"kept-for-next-run".to_owned()), "{names:?}");
    assert!(names.contains(&"next-run".to_owned()), "{names:?}");
}

#[test]
fn session_start_carries_the_device_and_app_context() {
    let _turn = serial();
    let collector = Collector::start().unwrap();
    let dir = fresh_dir("context");
    let options = format!(
        r#"{},"appVersion":"4.5.6 (78)""#,
        url_option(&collector.url())
    );
    init_ok(&dir, &options);
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert_eq!(event("level_up", Some(r#"{"level":3}"#)), StintStatus::Ok);
    assert_eq!(change_user("carol"), StintStatus::Ok);
    assert_eq!(stint_flush(20_000), StintStatus::Ok, "{}", last_error());
    assert_eq!(stint_shutdown(2_000), StintStatus::Ok);
    let datapoints = collector.datapoints();
    let starts = named(&datapoints, "ss");
    assert_eq!(starts.len(), 2);
    for start in starts {
        let data = start["data"].as_object().unwrap();
        assert_eq!(data["app_version"], "4.5.6 (78)");
        assert_eq!(data["os_name"], "Linux");
        assert!(data["os_version"].as_str().is_some_and(|v| !v.is_empty()));
        assert_eq!(data["arch"], std::env::consts::ARCH);
        let allowed = [
            "app_version",
            "os_name",
            "os_version",
            "device_model",
            "arch",
            "locale",
        ];
        assert!(
            data.keys().all(|k| allowed.contains(&k.as_str())),
            "{data:?}"
        );
    }
    // `se` and `ce` data are unchanged.
    let end = named(&datapoints, "se")[0]["data"]
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(end.keys().collect::<Vec<_>>(), ["d"]);
    let custom = named(&datapoints, "ce")[0]["data"]
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(custom.keys().collect::<Vec<_>>(), ["n", "p"]);
}

static LOGS: Mutex<Vec<(StintLogLevel, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect_log(level: StintLogLevel, message: *const c_char, _: *mut c_void) {
    let message = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    LOGS.lock().push((level, message));
}

#[test]
fn an_unreachable_collector_warns_once_with_the_reason_and_never_the_key() {
    let _turn = serial();
    LOGS.lock().clear();
    unsafe { stint_set_log_handler(Some(collect_log), std::ptr::null_mut()) };
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let key = "sk-private-key-4711";
    let dir = fresh_dir("unreachable");
    let options = options(&dir, &format!(r#"{},"logLevel":"info""#, url_option(&url)));
    assert_eq!(init(key, &options), StintStatus::Ok, "{}", last_error());
    assert_eq!(event("e", None), StintStatus::Ok);
    // A refused connection fails at once: 1.5 s is ample for the attempt the flush starts.
    assert_eq!(stint_flush(1_500), StintStatus::Timeout);
    assert!(
        last_error().contains("the last delivery attempt failed"),
        "flush says why: {}",
        last_error()
    );
    let expected = format!("delivery to {url}/api/v3/data failed");
    assert!(wait_for(Duration::from_secs(10), || LOGS
        .lock()
        .iter()
        .any(
            |(level, m)| *level == StintLogLevel::Warn && m.contains(&expected)
        )));
    // The collector comes up on that port: delivery recovers, and says so at `info`.
    let collector = Collector::start_on_port(port).unwrap();
    assert_eq!(stint_flush(30_000), StintStatus::Ok, "{}", last_error());
    assert!(wait_for(Duration::from_secs(10), || LOGS
        .lock()
        .iter()
        .any(
            |(level, m)| *level == StintLogLevel::Info && m.contains("works again")
        )));
    assert_eq!(stint_shutdown(2_000), StintStatus::Ok);
    unsafe { stint_set_log_handler(None, std::ptr::null_mut()) };
    let logs = LOGS.lock();
    let warnings = logs
        .iter()
        .filter(|(level, m)| *level == StintLogLevel::Warn && m.contains("delivery to"))
        .count();
    assert_eq!(warnings, 1, "one warning per streak: {logs:?}");
    assert!(logs.iter().all(|(_, m)| !m.contains(key)), "{logs:?}");
    assert_eq!(collector.datapoint_count(), 1);
}

#[test]
fn the_privacy_calls_need_initialize_and_check_their_pointers() {
    let _turn = serial();
    let mut enabled = true;
    let mut buffer = [0 as c_char; 37];
    assert_eq!(
        stint_set_tracking_enabled(false),
        StintStatus::NotInitialized
    );
    assert_eq!(
        unsafe { stint_get_tracking_enabled(&mut enabled) },
        StintStatus::NotInitialized
    );
    assert!(enabled, "untouched on error");
    assert_eq!(stint_wipe_data(), StintStatus::NotInitialized);
    assert_eq!(
        unsafe { stint_get_device_id(buffer.as_mut_ptr(), buffer.len()) },
        StintStatus::NotInitialized
    );
    assert_eq!(
        stint_set_network_enabled(false),
        StintStatus::NotInitialized
    );

    let dir = fresh_dir("privacy-args");
    init_ok(&dir, "");
    assert_eq!(
        unsafe { stint_get_tracking_enabled(std::ptr::null_mut()) },
        StintStatus::InvalidArgument
    );
    assert!(last_error().contains("out_enabled"), "{}", last_error());
    assert_eq!(
        unsafe { stint_get_device_id(std::ptr::null_mut(), 37) },
        StintStatus::InvalidArgument
    );
    buffer[0] = 42;
    assert_eq!(
        unsafe { stint_get_device_id(buffer.as_mut_ptr(), 36) },
        StintStatus::InvalidArgument
    );
    assert!(last_error().contains("buffer_len"), "{}", last_error());
    assert_eq!(buffer[0], 42, "untouched on error");
    // The id stays the same across restarts.
    let id = device_id();
    assert_eq!(stint_shutdown(1_000), StintStatus::Ok);
    init_ok(&dir, "");
    assert_eq!(device_id(), id);
    assert_eq!(stint_shutdown(1_000), StintStatus::Ok);
}

/// The listener calls back into the privacy API: no deadlock, and the calls take effect.
unsafe extern "C" fn privacy_from_listener(event: *const StintSessionEvent, _: *mut c_void) {
    if unsafe { (*event).kind } == StintSessionEventKind::Started {
        let mut buffer = [0 as c_char; 37];
        let _ = unsafe { stint_get_device_id(buffer.as_mut_ptr(), buffer.len()) };
        let _ = stint_set_network_enabled(true);
        let _ = stint_set_tracking_enabled(false);
        SEEN.lock().push((
            StintSessionEventKind::Started,
            String::new(),
            None,
            0.0,
            0.0,
        ));
    }
}

#[test]
fn the_privacy_calls_work_from_a_listener_and_from_many_threads() {
    let _turn = serial();
    SEEN.lock().clear();
    let dir = fresh_dir("privacy-threads");
    init_ok(&dir, "");
    unsafe { stint_set_session_listener(Some(privacy_from_listener), std::ptr::null_mut()) };
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert!(wait_for(Duration::from_secs(10), || !SEEN
        .lock()
        .is_empty()));
    assert!(wait_for(Duration::from_secs(10), || !tracking_enabled()));
    unsafe { stint_set_session_listener(None, std::ptr::null_mut()) };
    assert_eq!(stint_set_tracking_enabled(true), StintStatus::Ok);

    // Every privacy call at once with recording on other threads: all succeed.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..200 {
                    let status = match (t + i) % 6 {
                        0 => stint_set_tracking_enabled(i % 3 != 0),
                        1 => stint_set_network_enabled(i % 2 == 0),
                        2 => stint_wipe_data(),
                        3 => event("busy", None),
                        4 => stint_open_session(),
                        _ => {
                            let mut buffer = [0 as c_char; 37];
                            unsafe { stint_get_device_id(buffer.as_mut_ptr(), buffer.len()) }
                        }
                    };
                    assert_eq!(status, StintStatus::Ok, "{}", last_error());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(stint_set_tracking_enabled(true), StintStatus::Ok);
    // Without a `baseUrl` there is nothing to send: a disabled network is no reason to wait.
    assert_eq!(stint_set_network_enabled(false), StintStatus::Ok);
    assert_eq!(stint_flush(1_000), StintStatus::Ok);
    assert_eq!(stint_shutdown(2_000), StintStatus::Ok);
}
