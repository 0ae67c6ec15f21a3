//! `POST /api/v3/data` end to end: validation, de-duplication and per-user statistics.

mod common;

use common::*;
use flate2::{write::GzEncoder, Compression};
use serde_json::{json, Value};
use std::io::Write;
use stint_collector::{Collector, CollectorOptions};

#[test]
fn a_valid_batch_is_accepted_and_summarized_per_user() {
    let collector = Collector::start().unwrap();
    let response = request(
        collector.port(),
        "POST",
        "/api/v3/data",
        &[
            ("Content-Type", "application/json"),
            ("User-Agent", "stint/0.1.0"),
        ],
        alice_scenario().to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["accepted"], 8);

    let users = get(collector.port(), "/api/users").json();
    assert_eq!(users, collector.users_json());
    let alice = user(&users, "alice");
    assert_eq!(alice["device_id"], "dev");
    assert_eq!(alice["sessions"], 3);
    assert_eq!(alice["sessions_ended"], 2);
    assert_eq!(alice["total_time"], 150.5);
    assert_eq!(
        alice["custom_events"],
        json!({"level_up": 2, "purchase": 1})
    );
    assert_eq!(
        alice["last_sessions"],
        json!([
            {"session_id": "s3", "start": 1764190300.0, "end": null, "duration": null,
             "context": {}},
            {"session_id": "s2", "start": 1764190100.0, "end": 1764190190.5, "duration": 90.5,
             "context": {}},
            {"session_id": "s1", "start": 1764190000.0, "end": 1764190060.0, "duration": 60.0,
             "context": {}},
        ])
    );

    let datapoints = collector.datapoints();
    assert_eq!(datapoints.len(), 8);
    assert_eq!(
        datapoints[0],
        alice_scenario()["events"][0],
        "stored as sent"
    );
    let ids: Vec<&str> = datapoints
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, (1..=8).map(id).collect::<Vec<_>>(), "in arrival order");

    let requests = collector.requests();
    assert_eq!(requests.len(), 1);
    let record = &requests[0];
    assert_eq!(record.status, 200);
    assert_eq!(record.event_count, 8);
    assert_eq!(record.user_agent.as_deref(), Some("stint/0.1.0"));
    assert_eq!(record.content_type.as_deref(), Some("application/json"));
    assert_eq!(record.content_encoding, None);
    assert_eq!(record.api_key.as_deref(), Some("test-key"));
    assert_eq!(record.device_id.as_deref(), Some("dev"));
    assert_eq!(record.sdk_version.as_deref(), Some("stint/0.1.0"));
    assert_eq!(record.event_ids, (1..=8).map(id).collect::<Vec<_>>());
    assert_eq!(record.body_bytes, alice_scenario().to_string().len());
}

#[test]
fn anonymous_users_and_devices_get_rows_of_their_own() {
    let collector = Collector::start().unwrap();
    post_batch(
        collector.port(),
        &batch("phone", vec![session_start(1, "a", None, 10.0)]),
    );
    post_batch(
        collector.port(),
        &batch("tablet", vec![session_start(2, "b", None, 20.0)]),
    );
    let users = collector.users_json()["users"].as_array().unwrap().clone();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["device_id"], "phone");
    assert_eq!(users[0]["user_id"], Value::Null);
    assert_eq!(users[1]["device_id"], "tablet");
}

#[test]
fn a_resent_datapoint_is_stored_once() {
    let collector = Collector::start().unwrap();
    let first = batch("dev", vec![session_start(1, "s1", Some("bob"), 1.0)]);
    let overlapping = batch(
        "dev",
        vec![
            session_start(1, "s1", Some("bob"), 1.0),
            session_end(2, "s1", Some("bob"), 5.0, 4.0),
            session_end(2, "s1", Some("bob"), 5.0, 4.0),
        ],
    );
    assert_eq!(post_batch(collector.port(), &first).status, 200);
    let response = post_batch(collector.port(), &overlapping);
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["duplicates"], 2);

    assert_eq!(collector.datapoints().len(), 2);
    assert_eq!(collector.datapoints_received_total(), 4);
    let bob = user(&collector.users_json(), "bob").clone();
    assert_eq!(
        (bob["sessions"].clone(), bob["sessions_ended"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(bob["total_time"], 4.0);
}

#[test]
fn malformed_json_is_refused_with_a_message() {
    let collector = Collector::start().unwrap();
    let response = request(
        collector.port(),
        "POST",
        "/api/v3/data",
        &[],
        b"{\"events\": [",
    );
    assert_eq!(response.status, 400);
    assert!(response
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        response.text().contains("not valid JSON"),
        "{}",
        response.text()
    );
    assert_eq!(collector.datapoints().len(), 0);
    let record = &collector.requests()[0];
    assert_eq!(record.status, 400);
    assert!(record.rejection.as_deref().unwrap().contains("JSON"));
}

#[test]
fn schema_violations_are_refused_whole() {
    let collector = Collector::start().unwrap();
    let good = session_start(1, "s1", Some("a"), 1.0);
    let mutate = |change: &dyn Fn(&mut Value)| {
        let mut event = session_end(2, "s1", Some("a"), 2.0, 1.0);
        change(&mut event);
        batch("dev", vec![good.clone(), event])
    };
    let cases: Vec<(&str, Value)> = vec![
        ("events[1].data.d", mutate(&|e| e["data"] = json!({}))),
        ("events[1].data.d", mutate(&|e| e["data"]["d"] = json!("1"))),
        ("events[1].name", mutate(&|e| e["name"] = json!("sx"))),
        (
            "events[1].id",
            mutate(&|e| {
                e.as_object_mut().unwrap().remove("id");
            }),
        ),
        (
            "events[1].time",
            mutate(&|e| e["time"] = json!("yesterday")),
        ),
        ("events[1].user_id", mutate(&|e| e["user_id"] = json!(7))),
        (
            "events[1].data.n",
            mutate(&|e| {
                e["name"] = json!("ce");
                e["data"] = json!({"d": 1});
            }),
        ),
        ("api_key", {
            let mut body = batch("dev", vec![good.clone()]);
            body["api_key"] = json!(null);
            body
        }),
        (
            "events",
            json!({"api_key": "k", "device_id": "d", "sdk_version": "stint/1", "time": 1}),
        ),
    ];
    for (field, body) in cases {
        let response = post_batch(collector.port(), &body);
        assert_eq!(response.status, 400, "{field}: {}", response.text());
        assert!(
            response.text().starts_with(field),
            "message should name {field}: {}",
            response.text()
        );
    }
    assert_eq!(
        collector.datapoints().len(),
        0,
        "a rejected batch stores nothing"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_gzip_body_is_accepted() {
    let collector = Collector::start().unwrap();
    let body = gzip(alice_scenario().to_string().as_bytes());
    let response = request(
        collector.port(),
        "POST",
        "/api/v3/data",
        &[
            ("Content-Encoding", "gzip"),
            ("Content-Type", "application/json"),
        ],
        &body,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(user(&collector.users_json(), "alice")["sessions"], 3);
    let record = &collector.requests()[0];
    assert_eq!(record.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(record.body_bytes, body.len());
    assert_eq!(record.event_count, 8);
}

#[test]
fn a_broken_gzip_body_is_refused() {
    let collector = Collector::start().unwrap();
    let mut body = gzip(alice_scenario().to_string().as_bytes());
    body.truncate(body.len() / 2);
    let response = request(
        collector.port(),
        "POST",
        "/api/v3/data",
        &[("Content-Encoding", "gzip")],
        &body,
    );
    assert_eq!(response.status, 400);
    assert!(response.text().contains("gzip"), "{}", response.text());
    let plain = request(
        collector.port(),
        "POST",
        "/api/v3/data",
        &[("Content-Encoding", "gzip")],
        alice_scenario().to_string().as_bytes(),
    );
    assert_eq!(plain.status, 400, "plain JSON labelled gzip");
    assert_eq!(collector.datapoints().len(), 0);
}

#[test]
fn reset_forgets_data_and_requests() {
    let collector =
        Collector::start_with(CollectorOptions::default().with_test_controls()).unwrap();
    post_batch(collector.port(), &alice_scenario());
    let response = request(collector.port(), "POST", "/admin/reset", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(collector.datapoints().len(), 0);
    assert_eq!(collector.requests().len(), 0);
    assert_eq!(collector.users_json(), json!({"users": []}));
    // The ids are forgotten too: the same batch counts again.
    post_batch(collector.port(), &alice_scenario());
    assert_eq!(collector.datapoints().len(), 8);
    collector.reset();
    assert_eq!(collector.datapoint_count(), 0);
}

#[test]
fn the_json_endpoints_report_what_was_stored() {
    let collector = Collector::start().unwrap();
    post_batch(collector.port(), &alice_scenario());
    post_batch(collector.port(), &alice_scenario());
    let stats = get(collector.port(), "/api/stats").json();
    assert_eq!(
        stats,
        json!({"datapoints": 8, "received_total": 16, "requests": 2})
    );
    let datapoints = get(collector.port(), "/api/datapoints").json();
    assert_eq!(datapoints["datapoints"].as_array().unwrap().len(), 8);
    let requests = get(collector.port(), "/api/requests").json();
    assert_eq!(requests["requests"][1]["status"], 200);
    assert_eq!(requests["requests"][1]["event_count"], 8);
}

#[test]
fn waiting_for_datapoints_sees_them_arrive() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    let sender = std::thread::spawn(move || post_batch(port, &alice_scenario()).status);
    assert!(collector.wait_for_datapoints(8, std::time::Duration::from_secs(30)));
    assert_eq!(sender.join().unwrap(), 200);
    assert!(!collector.wait_for_datapoints(9, std::time::Duration::from_millis(50)));
    assert!(
        collector.wait_until(std::time::Duration::from_secs(1), |c| c.requests().len()
            == 1)
    );
}

#[test]
fn concurrent_batches_with_overlapping_ids_are_stored_once_each_answered_after_its_commit() {
    // Group commit: batches posted at once share transactions; every datapoint id is stored
    // once whichever batch of a group (or which group) carries it first.
    for database in ["memory", "file"] {
        let dir = std::env::temp_dir().join(format!("stint-overlap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("overlap.db");
        let _ = std::fs::remove_file(&path);
        let options = match database {
            "file" => CollectorOptions::default().with_db_file(&path),
            _ => CollectorOptions::default(),
        };
        let collector = Collector::start_with(options).unwrap();
        let port = collector.port();
        let (clients, per_batch) = (16u32, 40u32);
        // Client c sends ids c*20 .. c*20+40: half shared with the next client's batch.
        let threads: Vec<_> = (0..clients)
            .map(|c| {
                std::thread::spawn(move || {
                    let events = (c * 20..c * 20 + per_batch)
                        .map(|n| custom_event(n, "tap", Some("s"), Some("u")))
                        .collect();
                    let response = post_batch(port, &batch("dev", events));
                    assert_eq!(response.status, 200, "{}", response.text());
                    response.json()
                })
            })
            .collect();
        let answers: Vec<Value> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let unique = (clients * 20 + 20) as usize;
        // Answered after the commit: every batch is in the database when its answer arrives.
        assert_eq!(collector.datapoint_count(), unique, "{database}");
        assert_eq!(
            collector.datapoints_received_total(),
            (clients * per_batch) as usize
        );
        let duplicates: u64 = answers
            .iter()
            .map(|a| a["duplicates"].as_u64().unwrap())
            .sum();
        assert_eq!(duplicates as usize, (clients * per_batch) as usize - unique);
        let users = get(port, "/api/users").json();
        assert_eq!(user(&users, "u")["custom_events"]["tap"], json!(unique));
        drop(collector);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
