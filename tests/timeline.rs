//! The session rules observed through the C API, with the collector seeing the datapoints.
//! The rules themselves (timeouts, expiry, stamps) are unit-tested on a simulated clock in
//! `src/engine/calls.rs`; here nothing waits out a timeout with a sleep: a test that needs a
//! session to expire waits, with a bound, for the worker to end it (an outside event).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use stint_collector::Collector;

fn start(collector: &Collector, name: &str, extra: &str) {
    let dir = fresh_dir(name);
    let base = format!(
        r#""baseUrl":"{}","sessionTimeoutInSeconds":1"#,
        collector.url()
    );
    let extra = if extra.is_empty() {
        base
    } else {
        format!("{base},{extra}")
    };
    init_ok(&dir, &extra);
}

fn flushed(collector: &Collector) -> Vec<Value> {
    assert_eq!(stint_flush(30_000), StintStatus::Ok, "{}", last_error());
    collector.datapoints()
}

fn ms(value: &Value) -> i64 {
    (value.as_f64().unwrap() * 1000.0).round() as i64
}

#[test]
fn returning_after_the_timeout_ends_the_session_when_the_user_went_away() {
    let _turn = serial();
    let collector = Collector::start().unwrap();
    start(&collector, "timeline-return", "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let first = session_id().unwrap();
    assert_eq!(event("tap", None), StintStatus::Ok);
    assert_eq!(stint_close_session(), StintStatus::Ok);
    assert!(
        wait_for(Duration::from_secs(15), || session_id().is_none()),
        "the session ends once it has expired"
    );
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let second = session_id().unwrap();
    assert_ne!(first, second);
    let datapoints = flushed(&collector);
    let names: Vec<&str> = datapoints
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ss", "ce", "se", "ss"]);
    let (ss, ce, se) = (&datapoints[0], &datapoints[1], &datapoints[2]);
    assert_eq!(se["session_id"], first.as_str());
    assert!(
        ms(&se["time"]) >= ms(&ce["time"]),
        "ends at the last activity (close)"
    );
    assert!(ms(&se["time"]) - ms(&ce["time"]) < 1000);
    assert_eq!(ms(&se["data"]["d"]), ms(&se["time"]) - ms(&ss["time"]));
    assert!(ms(&datapoints[3]["time"]) - ms(&se["time"]) >= 1000);
    assert_eq!(ce["session_id"], first.as_str());
    assert_eq!(stint_shutdown(5000), StintStatus::Ok);
}

#[test]
fn returning_before_the_timeout_continues_the_session() {
    let _turn = serial();
    let collector = Collector::start().unwrap();
    let dir = fresh_dir("timeline-continue");
    init_ok(
        &dir,
        &format!(
            r#""baseUrl":"{}","sessionTimeoutInSeconds":5"#,
            collector.url()
        ),
    );
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let first = session_id().unwrap();
    // Back well within the 5 s timeout (the rule at its edge, 59 of 60 s, is unit-tested on
    // simulated time).
    for _ in 0..3 {
        assert_eq!(stint_close_session(), StintStatus::Ok);
        assert_eq!(stint_open_session(), StintStatus::Ok);
    }
    assert_eq!(session_id().unwrap(), first);
    let datapoints = flushed(&collector);
    assert_eq!(named(&datapoints, "ss").len(), 1);
    assert!(named(&datapoints, "se").is_empty());
    assert_eq!(stint_shutdown(5000), StintStatus::Ok);
}

#[test]
fn the_worker_ends_an_expired_session_without_any_call() {
    let _turn = serial();
    listen();
    let collector = Collector::start().unwrap();
    start(&collector, "timeline-eager", "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let id = session_id().unwrap();
    // No call at all until the listener reports the end.
    assert!(wait_for(Duration::from_secs(15), || SEEN
        .lock()
        .iter()
        .any(|e| e.0 == StintSessionEventKind::Ended)));
    let seen = SEEN.lock().clone();
    assert_eq!(seen[1].1, id);
    assert_eq!(
        seen[1].3, seen[1].4,
        "no activity after open: ends at its start"
    );
    assert_eq!(stats().sessions_ended, 1);
    let datapoints = flushed(&collector);
    let se = named(&datapoints, "se");
    assert_eq!(se.len(), 1);
    assert_eq!(se[0]["data"]["d"], 0.0);
    assert_eq!(stint_shutdown(5000), StintStatus::Ok);
    unsafe { stint_set_session_listener(None, std::ptr::null_mut()) };
}

#[test]
fn keep_open_while_foreground_holds_the_session_until_backgrounded() {
    let _turn = serial();
    let collector = Collector::start().unwrap();
    start(
        &collector,
        "timeline-foreground",
        r#""keepOpenWhileForeground":true"#,
    );
    assert_eq!(stint_open_session(), StintStatus::Ok);
    // Held open in the foreground past its timeout: unit-tested on an hour of simulated time
    // (engine::calls::a_foreground_session_expires_unless_kept_open_while_foreground). The black
    // box: it ends once the app goes to the background.
    assert_eq!(stint_close_session(), StintStatus::Ok);
    assert!(wait_for(Duration::from_secs(15), || session_id().is_none()));
    let datapoints = flushed(&collector);
    let se = named(&datapoints, "se");
    assert_eq!(se.len(), 1);
    assert_eq!(named(&datapoints, "ss").len(), 1, "one session, ended once");
    assert_eq!(stint_shutdown(5000), StintStatus::Ok);
}

#[test]
fn changing_user_ends_the_session_now_and_starts_one_for_the_new_user() {
    let _turn = serial();
    let collector = Collector::start().unwrap();
    let dir = fresh_dir("timeline-user");
    init_ok(&dir, &format!(r#""baseUrl":"{}""#, collector.url()));
    assert_eq!(change_user("alice"), StintStatus::Ok);
    assert_eq!(session_id(), None, "no session: only the user changes");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert_eq!(event("level_up", Some(r#"{"level":3}"#)), StintStatus::Ok);
    assert_eq!(change_user("alice"), StintStatus::Ok);
    let alice_session = session_id().unwrap();
    assert_eq!(change_user("bob"), StintStatus::Ok);
    assert_ne!(session_id().unwrap(), alice_session);
    let datapoints = flushed(&collector);
    let names: Vec<&str> = datapoints
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ss", "ce", "se", "ss"]);
    assert_eq!(datapoints[0]["user_id"], "alice");
    assert_eq!(
        datapoints[1]["data"],
        serde_json::json!({"n":"level_up","p":{"level":3}})
    );
    assert_eq!(datapoints[2]["user_id"], "alice");
    assert_eq!(datapoints[2]["session_id"], alice_session.as_str());
    assert_eq!(datapoints[3]["user_id"], "bob");
    assert_eq!(
        datapoints[2]["time"], datapoints[3]["time"],
        "ends and starts at the same now"
    );
    assert_eq!(
        ms(&datapoints[2]["data"]["d"]),
        ms(&datapoints[2]["time"]) - ms(&datapoints[0]["time"])
    );
    let ids: std::collections::HashSet<&str> = datapoints
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "datapoint ids are unique");
    assert_eq!(stint_shutdown(5000), StintStatus::Ok);
}

#[test]
fn custom_events_without_a_session_carry_null_and_start_none() {
    let _turn = serial();
    let collector = Collector::start().unwrap();
    let dir = fresh_dir("timeline-ce");
    init_ok(&dir, &format!(r#""baseUrl":"{}""#, collector.url()));
    assert_eq!(event("boot", None), StintStatus::Ok);
    assert_eq!(session_id(), None);
    let datapoints = flushed(&collector);
    assert_eq!(datapoints.len(), 1);
    assert_eq!(datapoints[0]["session_id"], Value::Null);
    assert_eq!(datapoints[0]["user_id"], Value::Null);
    assert_eq!(
        datapoints[0]["data"],
        serde_json::json!({"n":"boot","p":{}})
    );
    assert_eq!(stint_shutdown(5000), StintStatus::Ok);
}

/// Events logged on another thread (in its lane) are activity like any call: its end is
/// stamped at the last of them. That they keep the session open past its timeout is unit-tested
/// on simulated time (engine::calls::events_on_another_thread_keep_the_session_open).
#[test]
fn events_on_another_thread_keep_the_session_open_and_stamp_its_end() {
    let _turn = serial();
    let collector = Collector::start().unwrap();
    start(&collector, "timeline-other-thread", "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    let first = session_id().unwrap();
    std::thread::spawn(|| {
        for i in 0..16 {
            assert_eq!(event(&format!("tick{i}"), None), StintStatus::Ok);
        }
    })
    .join()
    .unwrap();
    assert_eq!(session_id().as_deref(), Some(first.as_str()));
    assert!(
        wait_for(Duration::from_secs(10), || session_id().is_none()),
        "ended by the worker once idle"
    );
    let datapoints = flushed(&collector);
    let names: Vec<&str> = datapoints
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    let mut expected = vec!["ss"];
    expected.extend(["ce"; 16]);
    expected.push("se");
    assert_eq!(names, expected);
    assert!(datapoints.iter().all(|d| d["session_id"] == first.as_str()));
    let (last_event, end) = (&datapoints[16], &datapoints[17]);
    assert_eq!(last_event["data"]["n"], "tick15");
    assert_eq!(end["time"], last_event["time"], "stamped at the last event");
    assert_eq!(stint_shutdown(5000), StintStatus::Ok);
}
