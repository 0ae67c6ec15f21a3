//! Each injected fault, set through the Rust API or the admin endpoint.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use stint_collector::{
    Collector, CollectorOptions, Faults, DEFAULT_REDIRECT_LOCATION, HUGE_BODY_BYTES,
};

/// Stopping must not wait on clients; this bound is only there to fail instead of hanging.
const STOP_BOUND: Duration = Duration::from_secs(20);

fn one_start(n: u32) -> Value {
    batch(
        "dev",
        vec![session_start(n, &format!("s{n}"), Some("u"), 1.0)],
    )
}

/// Sends a batch on a connection left open, for faults that never answer properly.
fn send_batch_raw(port: u16, body: &Value) -> TcpStream {
    let mut stream = connect(port);
    stream
        .write_all(&request_bytes(
            "POST",
            "/api/v3/data",
            &[],
            body.to_string().as_bytes(),
        ))
        .unwrap();
    stream
}

#[test]
fn failing_requests_carry_the_status_and_retry_after_then_recover() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        fail_next: 2,
        fail_status: 429,
        retry_after: Some("2".into()),
        ..Faults::default()
    });
    for _ in 0..2 {
        let response = post_batch(collector.port(), &one_start(1));
        assert_eq!(response.status, 429);
        assert_eq!(response.header("retry-after"), Some("2"));
    }
    assert_eq!(
        collector.datapoints().len(),
        0,
        "a failed request stores nothing"
    );
    assert_eq!(collector.faults().fail_next, 0);

    let response = post_batch(collector.port(), &one_start(1));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("retry-after"), None);
    assert_eq!(collector.datapoints().len(), 1);
    let statuses: Vec<u16> = collector.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    assert_eq!(collector.requests()[0].fault.as_deref(), Some("fail"));
}

#[test]
fn each_chosen_status_is_sent_and_500_is_the_default() {
    let collector = Collector::start().unwrap();
    for status in [500, 413, 401, 403, 408, 503] {
        collector.set_faults(Faults {
            fail_next: 1,
            fail_status: status,
            ..Faults::default()
        });
        assert_eq!(post_batch(collector.port(), &one_start(1)).status, status);
    }
    let http_date = "Wed, 21 Oct 2015 07:28:00 GMT";
    collector.set_faults(Faults {
        fail_next: 1,
        retry_after: Some(http_date.into()),
        ..Faults::default()
    });
    let response = post_batch(collector.port(), &one_start(1));
    assert_eq!(response.status, 500);
    assert_eq!(response.header("retry-after"), Some(http_date));
}

#[test]
fn exactly_the_batches_holding_the_poison_are_rejected() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        reject_event_name: Some("poison".into()),
        ..Faults::default()
    });
    let events: Vec<Value> = (1..=4)
        .map(|n| {
            let name = if n == 3 { "poison" } else { "fine" };
            custom_event(n, name, None, Some("u"))
        })
        .collect();
    // What a client bisecting the batch would send.
    let halves = [
        (events.clone(), 400),
        (events[..2].to_vec(), 200),
        (events[2..].to_vec(), 400),
        (events[2..3].to_vec(), 400),
        (events[3..].to_vec(), 200),
    ];
    for (part, expected) in halves {
        let response = post_batch(collector.port(), &batch("dev", part));
        assert_eq!(response.status, expected, "{}", response.text());
    }
    assert!(collector.requests()[0]
        .rejection
        .as_deref()
        .unwrap()
        .contains(&id(3)));
    let stored: Vec<String> = collector
        .datapoints()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, [id(1), id(2), id(4)]);

    // A datapoint name matches as well as a custom event name.
    collector.set_faults(Faults {
        reject_event_name: Some("se".into()),
        ..Faults::default()
    });
    let with_end = batch("dev", vec![session_end(9, "s", None, 2.0, 1.0)]);
    assert_eq!(post_batch(collector.port(), &with_end).status, 400);
    assert_eq!(post_batch(collector.port(), &one_start(10)).status, 200);
}

#[test]
fn batches_over_the_limit_get_413() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        max_events_per_batch: Some(2),
        ..Faults::default()
    });
    let events: Vec<Value> = (1..=3).map(|n| custom_event(n, "x", None, None)).collect();
    assert_eq!(
        post_batch(collector.port(), &batch("d", events.clone())).status,
        413
    );
    assert_eq!(
        post_batch(collector.port(), &batch("d", events[..2].to_vec())).status,
        200
    );
    assert_eq!(
        post_batch(collector.port(), &batch("d", events[2..].to_vec())).status,
        200
    );
    assert_eq!(collector.datapoints().len(), 3);
}

#[test]
fn a_hung_request_never_answers_but_blocks_neither_others_nor_stop() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        hang_next: 1,
        ..Faults::default()
    });
    let mut hung = send_batch_raw(collector.port(), &one_start(1));
    assert!(collector.wait_until(STOP_BOUND, |c| c.requests().len() == 1));
    assert_eq!(collector.requests()[0].status, 0);
    assert_eq!(collector.requests()[0].fault.as_deref(), Some("hang"));

    // Other connections are served meanwhile, and the counter is used up.
    assert_eq!(get(collector.port(), "/api/users").status, 200);
    assert_eq!(post_batch(collector.port(), &one_start(2)).status, 200);

    hung.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waited = hung.read(&mut byte);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "no answer expected, got {waited:?}"
    );
    assert_eq!(
        collector.datapoints().len(),
        1,
        "the hung batch was not stored"
    );

    let started = Instant::now();
    collector.stop();
    assert!(started.elapsed() < STOP_BOUND);
    hung.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    assert!(read_until_closed(&mut hung).is_empty(), "released by stop");
}

#[test]
fn hang_all_lasts_until_the_faults_are_cleared() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        hang_all: true,
        ..Faults::default()
    });
    let mut hung: Vec<TcpStream> = (1..=3)
        .map(|n| send_batch_raw(collector.port(), &one_start(n)))
        .collect();
    assert!(collector.wait_until(STOP_BOUND, |c| c.requests().len() == 3));
    collector.set_faults(Faults::default());
    assert_eq!(post_batch(collector.port(), &one_start(4)).status, 200);
    // A client giving up ends its hung connection; nothing was answered.
    for stream in &mut hung {
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(read_until_closed(stream).is_empty());
    }
}

#[test]
fn a_dropped_connection_gets_no_answer_and_stores_nothing() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        drop_next: 1,
        ..Faults::default()
    });
    let mut stream = send_batch_raw(collector.port(), &one_start(1));
    assert!(read_until_closed(&mut stream).is_empty());
    assert_eq!(collector.datapoints().len(), 0);
    assert_eq!(collector.requests()[0].fault.as_deref(), Some("drop"));
    assert_eq!(post_batch(collector.port(), &one_start(1)).status, 200);
}

#[test]
fn commit_before_fault_keeps_the_data_of_an_unanswered_request() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        drop_next: 1,
        commit_before_fault: true,
        ..Faults::default()
    });
    let mut stream = send_batch_raw(collector.port(), &one_start(1));
    assert!(read_until_closed(&mut stream).is_empty());
    assert_eq!(collector.datapoints().len(), 1);
    // The client's retry is absorbed by de-duplication.
    assert_eq!(post_batch(collector.port(), &one_start(1)).status, 200);
    assert_eq!(collector.datapoints().len(), 1);
    assert_eq!(collector.datapoints_received_total(), 2);
}

#[test]
fn garbage_is_not_http() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        garbage_next: 1,
        ..Faults::default()
    });
    let mut stream = send_batch_raw(collector.port(), &one_start(1));
    let answer = read_until_closed(&mut stream);
    assert!(!answer.is_empty());
    assert!(!answer.starts_with(b"HTTP/"));
    assert_eq!(collector.datapoints().len(), 0);
}

#[test]
fn a_redirect_points_at_another_host() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        redirect_next: 2,
        ..Faults::default()
    });
    let response = post_batch(collector.port(), &one_start(1));
    assert_eq!(response.status, 307);
    assert_eq!(response.header("location"), Some(DEFAULT_REDIRECT_LOCATION));
    collector.set_faults(Faults {
        redirect_next: 1,
        redirect_location: Some("http://elsewhere.invalid/x".into()),
        ..Faults::default()
    });
    let response = post_batch(collector.port(), &one_start(1));
    assert_eq!(
        response.header("location"),
        Some("http://elsewhere.invalid/x")
    );
    assert_eq!(collector.datapoints().len(), 0);
}

#[test]
fn an_endless_body_keeps_coming_until_the_client_leaves() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        endless_body_next: 1,
        ..Faults::default()
    });
    let mut stream = send_batch_raw(collector.port(), &one_start(1));
    let mut received = vec![0u8; 4 << 20];
    stream.read_exact(&mut received).unwrap();
    assert!(received.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    assert!(!head.contains("content-length"), "{head}");
    drop(stream);
    // The writer notices the closed socket; stopping must not hang on it either way.
    let started = Instant::now();
    collector.stop();
    assert!(started.elapsed() < STOP_BOUND);
}

#[test]
fn a_huge_body_is_ten_megabytes_and_2xx_means_stored() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        huge_body_next: 1,
        ..Faults::default()
    });
    let mut stream = send_batch_raw(collector.port(), &one_start(1));
    let answer = read_until_closed(&mut stream);
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&answer[..head_end]);
    assert!(head.starts_with("HTTP/1.1 200 OK"));
    assert!(head.contains(&format!("Content-Length: {HUGE_BODY_BYTES}")));
    assert_eq!(answer.len() - head_end, HUGE_BODY_BYTES);
    assert_eq!(collector.datapoints().len(), 1);

    collector.set_faults(Faults {
        huge_body_next: 1,
        hostile_status: 503,
        ..Faults::default()
    });
    let mut stream = send_batch_raw(collector.port(), &one_start(2));
    let answer = read_until_closed(&mut stream);
    assert!(answer.starts_with(b"HTTP/1.1 503 "));
    assert_eq!(collector.datapoints().len(), 1, "a 503 stores nothing");
}

#[test]
fn a_response_delay_holds_the_answer_back() {
    let collector = Collector::start().unwrap();
    collector.set_faults(Faults {
        response_delay_ms: 300,
        ..Faults::default()
    });
    let started = Instant::now();
    assert_eq!(post_batch(collector.port(), &one_start(1)).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn the_admin_endpoint_sets_and_reports_faults() {
    let collector =
        Collector::start_with(CollectorOptions::default().with_test_controls()).unwrap();
    let port = collector.port();
    let response = post_json(
        port,
        "/admin/faults",
        &json!({"fail_next": 1, "fail_status": 503, "retry_after": "7",
                "reject_event_name": "bad"}),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        collector.faults(),
        Faults {
            fail_next: 1,
            fail_status: 503,
            retry_after: Some("7".into()),
            reject_event_name: Some("bad".into()),
            ..Faults::default()
        }
    );
    let response = post_batch(port, &one_start(1));
    assert_eq!(
        (response.status, response.header("retry-after")),
        (503, Some("7"))
    );

    let current = get(port, "/admin/faults").json();
    assert_eq!(current["fail_next"], 0, "the counter was consumed");
    assert_eq!(current["reject_event_name"], "bad");

    let typo = post_json(port, "/admin/faults", &json!({"fial_next": 1}));
    assert_eq!(typo.status, 400);
    assert!(typo.text().contains("fail_next"), "{}", typo.text());
    assert_eq!(
        collector.faults().reject_event_name.as_deref(),
        Some("bad"),
        "unchanged"
    );

    assert_eq!(post_json(port, "/admin/faults", &json!({})).status, 200);
    assert_eq!(collector.faults(), Faults::default());
}

#[test]
fn faults_apply_only_to_uploads() {
    let collector =
        Collector::start_with(CollectorOptions::default().with_test_controls()).unwrap();
    collector.set_faults(Faults {
        fail_next: 1,
        drop_next: 1,
        hang_all: true,
        ..Faults::default()
    });
    assert_eq!(get(collector.port(), "/api/users").status, 200);
    assert_eq!(get(collector.port(), "/").status, 200);
    let mut reader = BufReader::new(connect(collector.port()));
    reader
        .get_mut()
        .write_all(&request_bytes("GET", "/admin/faults", &[], b""))
        .unwrap();
    assert_eq!(read_response(&mut reader).json()["drop_next"], 1);
}
