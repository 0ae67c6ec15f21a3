//! Delivery against the loopback collector: retries that lose nothing, batches, splits,
//! rejections, hanging servers, the wire format, and the session datapoints' order on the wire.
//! Every test checks that nothing recorded is lost and that, after the collector's
//! de-duplication by id, nothing is delivered twice.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::ffi::{c_char, c_void, CStr};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use serde_json::Value;
use stint_collector::{Collector, Faults, RequestRecord};

/// Generous bound for anything that should take well under a second on an idle machine.
const PATIENCE: Duration = Duration::from_secs(30);
const PATIENCE_MS: u32 = 30_000;

fn collector() -> Collector {
    Collector::start().expect("start the collector")
}

fn base_url(collector: &Collector) -> String {
    format!("\"baseUrl\":\"{}\"", collector.url())
}

/// While nothing can be delivered: all `recorded` are still pending, none dropped.
fn assert_all_kept(recorded: u64) {
    let kept = stats();
    assert_eq!(kept.datapoints_pending, recorded, "{kept:?}");
    assert_eq!(kept.datapoints_dropped, 0, "{kept:?}");
    assert_eq!(kept.datapoints_delivered, 0, "{kept:?}");
}

/// Records `count` custom events named `{prefix}{i:05}`, in order; returns the names.
fn record_events(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let name = format!("{prefix}{i:05}");
            assert_eq!(event(&name, None), StintStatus::Ok, "{}", last_error());
            name
        })
        .collect()
}

/// The custom event names (`data.n`) of `datapoints`, in their order.
fn ce_names(datapoints: &[Value]) -> Vec<String> {
    named(datapoints, "ce")
        .iter()
        .map(|d| d["data"]["n"].as_str().expect("ce has a name").to_owned())
        .collect()
}

fn ids(datapoints: &[Value]) -> Vec<String> {
    datapoints
        .iter()
        .map(|d| d["id"].as_str().expect("datapoint id").to_owned())
        .collect()
}

/// The collector holds exactly the custom events `expected` (and no other datapoint), each once.
fn assert_exactly_delivered(collector: &Collector, expected: &[String]) {
    let datapoints = collector.datapoints();
    let names = ce_names(&datapoints);
    assert_eq!(
        datapoints.len(),
        expected.len(),
        "distinct datapoints delivered vs recorded"
    );
    assert_eq!(names.len(), expected.len(), "only custom events expected");
    let delivered: BTreeSet<&String> = names.iter().collect();
    assert_eq!(delivered.len(), names.len(), "an event was recorded twice");
    let wanted: BTreeSet<&String> = expected.iter().collect();
    assert_eq!(
        delivered, wanted,
        "delivered names differ from recorded ones"
    );
}

/// Stats after everything is settled: nothing pending, delivered = recorded - dropped.
fn assert_settled_stats(recorded: u64, dropped: u64) {
    let stats = stats();
    assert_eq!(stats.datapoints_pending, 0, "{stats:?}");
    assert_eq!(stats.datapoints_recorded, recorded, "{stats:?}");
    assert_eq!(stats.datapoints_dropped, dropped, "{stats:?}");
    assert_eq!(stats.datapoints_delivered, recorded - dropped, "{stats:?}");
}

/// Calls `stint_flush` again and again (each explicit flush bypasses backoff) until it is OK.
fn flush_until_ok(bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        let status = stint_flush(1_000);
        if status == StintStatus::Ok {
            return;
        }
        assert_eq!(status, StintStatus::Timeout, "{}", last_error());
        assert!(
            Instant::now() < deadline,
            "flush never succeeded within {bound:?}; stats {:?}",
            stats()
        );
    }
}

fn shutdown_ok() {
    assert_eq!(stint_shutdown(10_000), StintStatus::Ok, "{}", last_error());
}

fn statuses(requests: &[RequestRecord]) -> Vec<u16> {
    requests.iter().map(|r| r.status).collect()
}

// ---- log capture ---------------------------------------------------------------------------

static LOGS: Mutex<Vec<(StintLogLevel, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn capture_log(level: StintLogLevel, message: *const c_char, _: *mut c_void) {
    let message = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    LOGS.lock().push((level, message));
}

/// Captures the library's log lines until dropped (the handler is process-wide and survives
/// shutdown, so it is always unset again, even when the test fails).
struct LogCapture;

impl LogCapture {
    fn start() -> LogCapture {
        LOGS.lock().clear();
        assert_eq!(
            unsafe { stint_set_log_handler(Some(capture_log), std::ptr::null_mut()) },
            StintStatus::Ok
        );
        LogCapture
    }

    fn lines(&self) -> Vec<(StintLogLevel, String)> {
        LOGS.lock().clone()
    }

    /// Waits (log lines arrive on a library thread) for a line at `level` matching `pred`.
    fn wait_for_line(&self, level: StintLogLevel, pred: impl Fn(&str) -> bool) -> Option<String> {
        let mut found = None;
        wait_for(PATIENCE, || {
            found = LOGS
                .lock()
                .iter()
                .find(|(l, m)| *l == level && pred(m))
                .map(|(_, m)| m.clone());
            found.is_some()
        });
        found
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        unsafe { stint_set_log_handler(None, std::ptr::null_mut()) };
    }
}

// ---- retries ---------------------------------------------------------------------------------

#[test]
fn server_errors_three_times_then_success_delivers_everything_once() {
    let _turn = serial();
    let collector = collector();
    collector.set_faults(Faults {
        fail_next: 3,
        fail_status: 500,
        ..Faults::default()
    });
    let dir = fresh_dir("500x3");
    init_ok(&dir, &base_url(&collector));
    let recorded = record_events("e", 50);

    flush_until_ok(Duration::from_secs(120));

    assert_exactly_delivered(&collector, &recorded);
    let requests = collector.requests();
    assert!(requests.len() >= 4, "{:?}", statuses(&requests));
    assert_eq!(statuses(&requests[..3]), [500, 500, 500]);
    assert_eq!(requests.last().unwrap().status, 200);
    assert_eq!(collector.datapoints_received_total(), recorded.len());
    assert_settled_stats(50, 0);
    shutdown_ok();
}

#[test]
fn retry_after_is_honoured_even_by_an_explicit_flush() {
    let _turn = serial();
    let collector = collector();
    collector.set_faults(Faults {
        fail_next: 1,
        fail_status: 429,
        retry_after: Some("2".into()),
        ..Faults::default()
    });
    let dir = fresh_dir("429");
    init_ok(&dir, &base_url(&collector));
    let recorded = record_events("e", 20);

    // The 429 comes back at once; nothing may be sent again for 2 s, however hard we push.
    let started = Instant::now();
    assert_eq!(stint_flush(500), StintStatus::Timeout);
    while started.elapsed() < Duration::from_millis(2_500) {
        assert_eq!(stint_request_immediate_data_flush(), StintStatus::Ok);
        let _ = stint_flush(100);
    }
    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );

    let requests = collector.requests();
    assert_eq!(requests[0].status, 429, "{:?}", statuses(&requests));
    let refused_at = requests[0].at;
    for later in &requests[1..] {
        let gap = later.at.duration_since(refused_at);
        assert!(
            gap >= Duration::from_secs(2),
            "a request came {gap:?} after the 429 with Retry-After: 2"
        );
    }
    assert_eq!(requests.last().unwrap().status, 200);
    assert_exactly_delivered(&collector, &recorded);
    assert_settled_stats(20, 0);
    shutdown_ok();
}

#[test]
fn connection_refused_then_the_server_comes_up() {
    let _turn = serial();
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = fresh_dir("refused");
    init_ok(&dir, &format!("\"baseUrl\":\"http://127.0.0.1:{port}\""));
    let recorded = record_events("e", 30);

    assert_eq!(stint_flush(1_000), StintStatus::Timeout);
    let before = stats();
    assert_eq!(before.datapoints_pending, 30, "{before:?}");
    assert_eq!(before.datapoints_delivered, 0);
    assert_eq!(before.datapoints_dropped, 0);

    let collector = Collector::start_on_port(port).expect("the free port is still free");
    flush_until_ok(Duration::from_secs(60));

    assert_exactly_delivered(&collector, &recorded);
    assert_settled_stats(30, 0);
    shutdown_ok();
}

#[test]
fn shutdown_returns_in_time_against_a_hanging_server_and_nothing_is_lost() {
    let _turn = serial();
    let hanging = collector();
    hanging.set_faults(Faults {
        hang_all: true,
        ..Faults::default()
    });
    let dir = fresh_dir("hang");
    init_ok(&dir, &base_url(&hanging));
    let recorded = record_events("e", 40);
    assert_eq!(stint_request_immediate_data_flush(), StintStatus::Ok);
    assert!(
        hanging.wait_until(PATIENCE, |c| c.request_count() >= 1),
        "the request never reached the hanging server"
    );

    let started = Instant::now();
    let status = stint_shutdown(1_500);
    let took = started.elapsed();
    assert_eq!(status, StintStatus::Timeout, "{}", last_error());
    assert!(
        took < Duration::from_secs(6),
        "shutdown(1500) took {took:?} against a hanging server"
    );
    assert!(
        took >= Duration::from_millis(1_400),
        "gave up early: {took:?}"
    );
    assert_eq!(hanging.datapoint_count(), 0);

    let healthy = collector();
    init_ok(&dir, &base_url(&healthy));
    assert_eq!(stats().datapoints_pending, 40);
    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );
    assert_exactly_delivered(&healthy, &recorded);
    assert_eq!(healthy.datapoints_received_total(), recorded.len());
    let after = stats();
    assert_eq!(after.datapoints_pending, 0, "{after:?}");
    assert_eq!(after.datapoints_delivered, 40, "{after:?}");
    assert_eq!(after.datapoints_dropped, 0, "{after:?}");
    shutdown_ok();
    drop(hanging);
}

// ---- rejections and splits ---------------------------------------------------------------------

#[test]
fn a_poison_datapoint_among_200_is_the_only_one_dropped() {
    let _turn = serial();
    let logs = LogCapture::start();
    let collector = collector();
    collector.set_faults(Faults {
        reject_event_name: Some("poison".into()),
        ..Faults::default()
    });
    let dir = fresh_dir("poison");
    init_ok(&dir, &base_url(&collector));
    let mut recorded = record_events("a", 137);
    assert_eq!(event("poison", None), StintStatus::Ok);
    recorded.extend(record_events("b", 62));

    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );

    assert_exactly_delivered(&collector, &recorded);
    assert_eq!(recorded.len(), 199);
    let requests = collector.requests();
    let isolated: Vec<&RequestRecord> = requests
        .iter()
        .filter(|r| r.status == 400 && r.event_count == 1)
        .collect();
    assert_eq!(isolated.len(), 1, "{:?}", statuses(&requests));
    let poison_id = &isolated[0].event_ids[0];
    assert!(!ids(&collector.datapoints()).contains(poison_id));
    assert!(
        logs.wait_for_line(StintLogLevel::Warn, |m| m.contains(poison_id.as_str()))
            .is_some(),
        "no warning names the dropped datapoint {poison_id}: {:?}",
        logs.lines()
    );
    assert_settled_stats(200, 1);
    shutdown_ok();
}

#[test]
fn payload_too_large_splits_the_batch() {
    let _turn = serial();
    let collector = collector();
    collector.set_faults(Faults {
        max_events_per_batch: Some(100),
        ..Faults::default()
    });
    let dir = fresh_dir("413");
    init_ok(&dir, &base_url(&collector));
    let recorded = record_events("e", 300);

    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );

    assert_exactly_delivered(&collector, &recorded);
    let requests = collector.requests();
    assert!(
        requests.iter().any(|r| r.status == 413),
        "{:?}",
        statuses(&requests)
    );
    for accepted in requests.iter().filter(|r| r.status == 200) {
        assert!(accepted.event_count <= 100, "{}", accepted.event_count);
    }
    let first_ok = requests.iter().position(|r| r.status == 200).unwrap();
    assert!(requests[first_ok..]
        .iter()
        .all(|r| r.status != 200 || r.event_count <= 100));
    assert_eq!(ce_names(&collector.datapoints()), recorded, "in order");
    assert_settled_stats(300, 0);
    shutdown_ok();
}

// ---- API key refused ---------------------------------------------------------------------------

const SECRET_KEY: &str = "sk-live-7f3a9c1e-DO-NOT-LOG";

fn assert_key_error_logged(logs: &LogCapture) {
    let line = logs.wait_for_line(StintLogLevel::Error, |m| {
        let m = m.to_lowercase();
        m.contains("api key") || m.contains("api_key")
    });
    assert!(
        line.is_some(),
        "no error about the API key: {:?}",
        logs.lines()
    );
    for (_, message) in logs.lines() {
        assert!(
            !message.contains(SECRET_KEY),
            "the key was logged: {message}"
        );
    }
}

/// The 401 test as the contract states it: the flush during which the key is refused does not
/// hammer the server (long backoff), and a later explicit flush retries.
#[test]
fn unauthorized_keeps_the_data_and_a_later_flush_delivers_it() {
    let _turn = serial();
    let logs = LogCapture::start();
    let collector = collector();
    collector.set_faults(Faults {
        fail_next: 1,
        fail_status: 401,
        ..Faults::default()
    });
    let dir = fresh_dir("401");
    assert_eq!(
        init(SECRET_KEY, &options(&dir, &base_url(&collector))),
        StintStatus::Ok
    );
    let recorded = record_events("e", 25);

    assert_eq!(stint_flush(1_500), StintStatus::Timeout);
    assert_all_kept(25);
    assert_eq!(
        statuses(&collector.requests()),
        [401],
        "one refused request, then the long backoff"
    );
    assert_key_error_logged(&logs);

    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );
    assert_exactly_delivered(&collector, &recorded);
    assert_settled_stats(25, 0);
    shutdown_ok();
}

/// What holds today whatever the retry pacing: while the key is refused nothing is dropped, the
/// error is logged without the key, and once the key is accepted everything arrives once.
#[test]
fn unauthorized_never_drops_data_nor_logs_the_key() {
    let _turn = serial();
    let logs = LogCapture::start();
    let collector = collector();
    collector.set_faults(Faults {
        fail_next: u32::MAX,
        fail_status: 403,
        ..Faults::default()
    });
    let dir = fresh_dir("403");
    assert_eq!(
        init(SECRET_KEY, &options(&dir, &base_url(&collector))),
        StintStatus::Ok
    );
    let recorded = record_events("e", 25);

    assert_eq!(stint_flush(1_000), StintStatus::Timeout);
    assert_all_kept(25);
    assert!(collector.request_count() >= 1);
    assert!(collector.requests().iter().all(|r| r.status == 403));
    assert_eq!(collector.datapoint_count(), 0);
    assert_key_error_logged(&logs);

    collector.set_faults(Faults::default());
    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );
    assert_exactly_delivered(&collector, &recorded);
    assert_eq!(
        collector.requests().last().unwrap().api_key.as_deref(),
        Some(SECRET_KEY)
    );
    assert_settled_stats(25, 0);
    shutdown_ok();
}

// ---- backlog ---------------------------------------------------------------------------------

#[test]
fn a_backlog_of_10000_arrives_in_order_in_batches_of_at_most_500() {
    let _turn = serial();
    let dir = fresh_dir("backlog");
    init_ok(&dir, "");
    let recorded = record_events("e", 10_000);
    shutdown_ok();

    let collector = collector();
    init_ok(&dir, &base_url(&collector));
    assert_eq!(stats().datapoints_pending, 10_000);
    assert_eq!(stint_flush(120_000), StintStatus::Ok, "{}", last_error());

    let datapoints = collector.datapoints();
    let names = ce_names(&datapoints);
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "delivered out of order"
    );
    assert_exactly_delivered(&collector, &recorded);
    let requests = collector.requests();
    assert!(requests.len() >= 20, "{} requests", requests.len());
    for request in &requests {
        assert!(request.event_count <= 500, "{}", request.event_count);
        assert_eq!(request.status, 200);
    }
    let sent: Vec<String> = requests
        .iter()
        .flat_map(|r| r.event_ids.iter().cloned())
        .collect();
    assert_eq!(sent, ids(&datapoints), "each sent once, in recorded order");
    let after = stats();
    assert_eq!(after.datapoints_pending, 0, "{after:?}");
    assert_eq!(after.datapoints_delivered, 10_000, "{after:?}");
    assert_eq!(after.datapoints_dropped, 0, "{after:?}");
    shutdown_ok();
}

// ---- session datapoints on the wire -----------------------------------------------------------

fn time_of(datapoint: &Value) -> f64 {
    datapoint["time"].as_f64().expect("time")
}

#[test]
fn the_end_of_a_session_precedes_the_next_start_on_the_wire() {
    let _turn = serial();
    let collector = collector();
    let dir = fresh_dir("se-before-ss");
    init_ok(
        &dir,
        &format!("{},\"sessionTimeoutInSeconds\":1", base_url(&collector)),
    );
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert_eq!(event("last-activity", None), StintStatus::Ok);
    // Until the session has expired (the rule is unit-tested on simulated time).
    assert!(wait_for(PATIENCE, || session_id().is_none()));
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );

    let datapoints = collector.datapoints();
    let kinds: Vec<&str> = datapoints
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ss", "ce", "se", "ss"], "arrival order");
    let (ss1, ce, se, ss2) = (
        &datapoints[0],
        &datapoints[1],
        &datapoints[2],
        &datapoints[3],
    );
    let first = ss1["session_id"].as_str().unwrap();
    assert_eq!(ce["session_id"], first);
    assert_eq!(se["session_id"], first);
    assert_ne!(ss2["session_id"], first);
    assert_eq!(
        time_of(se),
        time_of(ce),
        "se is stamped at the last activity"
    );
    let duration = se["data"]["d"].as_f64().unwrap();
    let expected = time_of(ce) - time_of(ss1);
    assert!(
        (duration - expected).abs() < 0.0015,
        "d = {duration}, last activity - start = {expected}"
    );
    assert_eq!(collector.datapoints_received_total(), 4);
    let stats = stats();
    assert_eq!(
        (stats.sessions_started, stats.sessions_ended),
        (2, 1),
        "{stats:?}"
    );
    assert_settled_stats(4, 0);
    shutdown_ok();
}

#[test]
fn the_eagerly_expired_session_end_is_delivered_without_another_call() {
    let _turn = serial();
    let collector = collector();
    let dir = fresh_dir("eager-se");
    init_ok(
        &dir,
        &format!(
            "{},\"sessionTimeoutInSeconds\":1,\"flushIntervalInSeconds\":1",
            base_url(&collector)
        ),
    );
    assert_eq!(stint_open_session(), StintStatus::Ok);
    // From here on, no call into the library until the se has arrived.
    assert!(
        collector.wait_until(Duration::from_secs(20), |c| !named(&c.datapoints(), "se")
            .is_empty()),
        "no se arrived; got {:?}",
        collector.datapoints()
    );

    let datapoints = collector.datapoints();
    let kinds: Vec<&str> = datapoints
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ss", "se"]);
    let (ss, se) = (&datapoints[0], &datapoints[1]);
    assert_eq!(se["session_id"], ss["session_id"]);
    assert_eq!(time_of(se), time_of(ss), "no activity after the open");
    assert_eq!(se["data"]["d"].as_f64(), Some(0.0));
    assert!(wait_for(PATIENCE, || stats().datapoints_pending == 0));
    assert_settled_stats(2, 0);
    assert_eq!(session_id(), None);
    shutdown_ok();
}

// ---- the request format ------------------------------------------------------------------------

#[test]
fn requests_carry_the_recorded_key_device_version_and_gzip() {
    let _turn = serial();
    let collector = collector();
    let dir = fresh_dir("format");
    // Run 1, no baseUrl: a large backlog recorded under key A.
    assert_eq!(init("key-A", &options(&dir, "")), StintStatus::Ok);
    let padding = format!("{{\"padding\":\"{}\"}}", "x".repeat(200));
    let under_a: Vec<String> = (0..300)
        .map(|i| {
            let name = format!("a{i:05}");
            assert_eq!(event(&name, Some(&padding)), StintStatus::Ok);
            name
        })
        .collect();
    shutdown_ok();

    // Run 2, key B: the backlog still goes out under key A, new events under key B.
    assert_eq!(
        init("key-B", &options(&dir, &base_url(&collector))),
        StintStatus::Ok
    );
    let under_b = record_events("b", 3);
    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );
    let run2 = collector.request_count();
    shutdown_ok();

    // Run 3, same data directory: the same device id.
    assert_eq!(
        init("key-B", &options(&dir, &base_url(&collector))),
        StintStatus::Ok
    );
    let under_b3 = record_events("c", 1);
    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );
    shutdown_ok();

    let all: Vec<String> = [under_a.clone(), under_b.clone(), under_b3.clone()].concat();
    assert_exactly_delivered(&collector, &all);

    let datapoints = collector.datapoints();
    let name_of_id: std::collections::HashMap<String, String> = datapoints
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["data"]["n"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let requests = collector.requests();
    assert!(run2 >= 2 && requests.len() > run2, "{}", requests.len());
    let version = concat!("stint/", env!("CARGO_PKG_VERSION"));
    for request in &requests {
        assert_eq!(request.status, 200);
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        let agent = request.user_agent.as_deref().unwrap_or_default();
        assert!(agent.starts_with("stint/"), "user agent {agent:?}");
        assert_eq!(request.sdk_version.as_deref(), Some(version));
        let key = request.api_key.as_deref().unwrap();
        for id in &request.event_ids {
            let name = &name_of_id[id];
            let expected = if name.starts_with('a') {
                "key-A"
            } else {
                "key-B"
            };
            assert_eq!(key, expected, "{name} went out under the wrong key");
        }
    }
    let device_ids: HashSet<&str> = requests
        .iter()
        .map(|r| r.device_id.as_deref().unwrap())
        .collect();
    assert_eq!(
        device_ids.len(),
        1,
        "one device id across runs: {device_ids:?}"
    );
    let device_id = *device_ids.iter().next().unwrap();
    assert!(!device_id.is_empty());
    assert_eq!(
        requests[run2..][0].device_id.as_deref(),
        requests[0].device_id.as_deref()
    );
    let big = requests
        .iter()
        .find(|r| r.event_count >= 100)
        .expect("a large batch");
    assert_eq!(big.content_encoding.as_deref(), Some("gzip"));
}

// ---- network faults ----------------------------------------------------------------------------

fn survive_network_faults(commit_before_fault: bool) {
    let collector = collector();
    collector.set_faults(Faults {
        drop_next: 2,
        garbage_next: 1,
        commit_before_fault,
        ..Faults::default()
    });
    let dir = fresh_dir("network");
    init_ok(&dir, &base_url(&collector));
    let recorded = record_events("e", 60);

    flush_until_ok(Duration::from_secs(120));

    assert_exactly_delivered(&collector, &recorded);
    let requests = collector.requests();
    let faults: Vec<Option<&str>> = requests.iter().map(|r| r.fault.as_deref()).collect();
    assert_eq!(
        faults[..3],
        [Some("drop"), Some("drop"), Some("garbage")],
        "{faults:?}"
    );
    assert_eq!(requests.last().unwrap().status, 200);
    if commit_before_fault {
        assert!(
            collector.datapoints_received_total() > collector.datapoint_count(),
            "the committed-then-lost batches were re-sent"
        );
    } else {
        assert_eq!(collector.datapoints_received_total(), recorded.len());
    }
    assert_settled_stats(60, 0);
    shutdown_ok();
}

#[test]
fn dropped_connections_and_garbage_answers_are_retried() {
    let _turn = serial();
    survive_network_faults(false);
}

#[test]
fn re_sends_after_lost_acknowledgements_are_absorbed_by_de_duplication() {
    let _turn = serial();
    survive_network_faults(true);
}

// ---- stats -------------------------------------------------------------------------------------

#[test]
fn stats_stay_consistent_throughout_delivery() {
    let _turn = serial();
    let collector = collector();
    collector.set_faults(Faults {
        reject_event_name: Some("poison".into()),
        ..Faults::default()
    });
    let dir = fresh_dir("stats");
    init_ok(
        &dir,
        &format!("{},\"flushIntervalInSeconds\":86400", base_url(&collector)),
    );
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let mut recorded = record_events("a", 2_000);
    let before = stats();
    assert_eq!(before.datapoints_recorded, 2_001, "{before:?}");
    assert_eq!(before.datapoints_pending, 2_001, "{before:?}");
    assert_eq!(before.datapoints_delivered, 0, "{before:?}");

    // Watch the counters while the worker drains the queue: they always add up.
    assert_eq!(stint_request_immediate_data_flush(), StintStatus::Ok);
    let mut observations = 0;
    let drained = wait_for(Duration::from_secs(60), || {
        let now = stats();
        observations += 1;
        assert_eq!(
            now.datapoints_delivered + now.datapoints_dropped + now.datapoints_pending,
            now.datapoints_recorded,
            "{now:?}"
        );
        now.datapoints_pending == 0
    });
    assert!(drained && observations > 1);
    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );
    assert_settled_stats(2_001, 0);

    // A second wave with one rejected datapoint.
    recorded.extend(record_events("b", 50));
    assert_eq!(event("poison", None), StintStatus::Ok);
    recorded.extend(record_events("c", 49));
    let mid = stats();
    assert_eq!(mid.datapoints_pending, 100, "{mid:?}");
    assert_eq!(mid.datapoints_delivered, 2_001, "{mid:?}");
    assert_eq!(
        stint_flush(PATIENCE_MS),
        StintStatus::Ok,
        "{}",
        last_error()
    );
    assert_settled_stats(2_101, 1);

    let datapoints = collector.datapoints();
    assert_eq!(named(&datapoints, "ss").len(), 1);
    assert_eq!(datapoints.len(), 2_100);
    assert_eq!(ce_names(&datapoints), recorded);
    shutdown_ok();
}

/// A loopback proxy in front of `collector` that forwards everything but holds the answer to
/// the first request until the test sends on the returned channel: the explicit signal that
/// keeps that request in flight, however slow the machine. Returns its base URL.
fn hold_first_answer(collector: &Collector) -> (String, std::sync::mpsc::Sender<()>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = ("127.0.0.1", collector.port());
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let mut gate = Some(gate);
    // Ends with the test binary (a blocked accept costs nothing).
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let server = TcpStream::connect(upstream).unwrap();
            let (mut from_client, mut to_server) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_client, &mut to_server);
                let _ = to_server.shutdown(Shutdown::Write);
            });
            let gate = gate.take();
            std::thread::spawn(move || {
                let (mut from_server, mut to_client) = (server, client);
                if let Some(gate) = gate {
                    let mut first = [0u8; 4096];
                    let Ok(n) = from_server.read(&mut first) else {
                        return;
                    };
                    let _ = gate.recv_timeout(Duration::from_secs(120));
                    if to_client.write_all(&first[..n]).is_err() {
                        return;
                    }
                }
                let _ = std::io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(Shutdown::Write);
            });
        }
    });
    (url, release)
}

/// An event recorded while a request is in flight goes out in the next one by itself: no later
/// call, flush or query is needed to send it.
#[test]
fn an_event_recorded_during_a_request_is_sent_after_it_without_help() {
    let _turn = serial();
    let collector = collector();
    let (url, release) = hold_first_answer(&collector);
    let dir = fresh_dir("during-request");
    init_ok(
        &dir,
        &format!(r#""baseUrl":"{url}","flushIntervalInSeconds":1"#),
    );
    assert_eq!(event("first", None), StintStatus::Ok);
    // Sent after ~1 s; the collector logs it at once, and its answer is held.
    assert!(wait_for(PATIENCE, || collector.request_count() == 1));
    assert_eq!(event("second", None), StintStatus::Ok);
    let during = stats();
    assert_eq!(
        (during.datapoints_delivered, during.datapoints_pending),
        (0, 2),
        "recorded while the first request is unanswered: {during:?}"
    );
    release.send(()).unwrap();
    let arrived = wait_for(PATIENCE, || {
        ce_names(&collector.datapoints()).contains(&"second".to_owned())
    });
    assert!(arrived, "{:?}", ce_names(&collector.datapoints()));
    assert_eq!(ce_names(&collector.datapoints()), ["first", "second"]);
    let requests = collector.requests();
    assert_eq!(
        requests[0].event_count, 1,
        "the first request carried only the first"
    );
    assert_eq!(requests.len(), 2, "the second went out by itself");
    assert!(wait_for(PATIENCE, || stats().datapoints_pending == 0));
    assert_settled_stats(2, 0);
    shutdown_ok();
}
