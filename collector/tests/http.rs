//! The server as an HTTP/1.1 peer: keep-alive, framing, routing, lifecycle.

mod common;

use common::*;
use std::io::{BufReader, Write};
use std::time::{Duration, Instant};
use stint_collector::Collector;

/// Stopping must not wait on clients; this bound is only there to fail instead of hanging.
const STOP_BOUND: Duration = Duration::from_secs(20);

#[test]
fn a_kept_alive_connection_serves_requests_until_the_client_asks_to_close() {
    let collector = Collector::start().unwrap();
    let mut stream = connect(collector.port());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let body = alice_scenario().to_string();

    stream
        .write_all(&request_bytes("POST", "/api/v3/data", &[], body.as_bytes()))
        .unwrap();
    let first = read_response(&mut reader);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), Some("keep-alive"));

    // Two pipelined requests in one write, answered in order.
    let mut pipelined = request_bytes("GET", "/api/users", &[], b"");
    pipelined.extend(request_bytes("GET", "/", &[("Connection", "close")], b""));
    stream.write_all(&pipelined).unwrap();
    assert_eq!(read_response(&mut reader).json(), collector.users_json());
    let page = read_response(&mut reader);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("connection"), Some("close"));
    assert!(
        read_until_closed(&mut stream).is_empty(),
        "closed after the last answer"
    );
}

#[test]
fn a_chunked_upload_that_expects_100_continue_is_accepted() {
    let collector = Collector::start().unwrap();
    let mut stream = connect(collector.port());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    stream
        .write_all(
            b"POST /api/v3/data HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
              Expect: 100-continue\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut interim = String::new();
    std::io::BufRead::read_line(&mut reader, &mut interim).unwrap();
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n");
    let mut blank = String::new();
    std::io::BufRead::read_line(&mut reader, &mut blank).unwrap();

    let body = alice_scenario().to_string();
    let (front, back) = body.split_at(body.len() / 2);
    for part in [front, back] {
        write!(stream, "{:x}\r\n{part}\r\n", part.len()).unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut reader).status, 200);
    assert_eq!(collector.datapoints().len(), 8);
}

#[test]
fn unknown_paths_and_methods_are_refused() {
    let collector = Collector::start().unwrap();
    assert_eq!(get(collector.port(), "/nope").status, 404);
    assert_eq!(get(collector.port(), "/api/v3/data").status, 405);
    assert_eq!(
        request(collector.port(), "DELETE", "/api/users", &[], b"").status,
        405
    );
    assert_eq!(get(collector.port(), "/healthz").text(), "ok\n");
}

#[test]
fn a_malformed_request_gets_400_and_a_closed_connection() {
    let collector = Collector::start().unwrap();
    let mut stream = connect(collector.port());
    stream.write_all(b"NONSENSE\r\n\r\n").unwrap();
    let answer = String::from_utf8(read_until_closed(&mut stream)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

#[test]
fn an_oversized_body_is_refused_before_it_is_read() {
    let collector = Collector::start().unwrap();
    let mut stream = connect(collector.port());
    stream
        .write_all(b"POST /api/v3/data HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n")
        .unwrap();
    let answer = String::from_utf8(read_until_closed(&mut stream)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
}

#[test]
fn it_listens_on_loopback_and_a_port_can_be_reused_after_stop() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    assert_ne!(port, 0);
    assert_eq!(collector.url(), format!("http://127.0.0.1:{port}"));
    assert!(
        Collector::start_on_port(port).is_err(),
        "a taken port is an error"
    );
    collector.stop();
    // What "connection refused, then the server comes up" tests rely on.
    let again = Collector::start_on_port(port).unwrap();
    assert_eq!(again.port(), port);
    assert_eq!(get(port, "/healthz").status, 200);
}

#[test]
fn stopping_does_not_wait_for_idle_kept_alive_clients() {
    let collector = Collector::start().unwrap();
    let mut stream = connect(collector.port());
    stream
        .write_all(&request_bytes("GET", "/api/users", &[], b""))
        .unwrap();
    assert_eq!(
        read_response(&mut BufReader::new(stream.try_clone().unwrap())).status,
        200
    );
    let started = Instant::now();
    collector.stop();
    assert!(started.elapsed() < STOP_BOUND);
    assert!(read_until_closed(&mut stream).is_empty());
}

#[test]
fn concurrent_clients_are_all_counted() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    let senders: Vec<_> = (0..8u32)
        .map(|client| {
            std::thread::spawn(move || {
                for round in 0..5u32 {
                    let n = client * 100 + round;
                    let body = batch(
                        "dev",
                        vec![session_start(n, &format!("s{n}"), Some("c"), 1.0)],
                    );
                    assert_eq!(post_batch(port, &body).status, 200);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(collector.datapoints().len(), 40);
    assert_eq!(user(&collector.users_json(), "c")["sessions"], 40);
}

#[test]
fn the_binary_prints_its_address_and_serves_until_killed() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stint-collector"))
        .args(["--port", "0", "--db", ":memory:"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("stint-collector listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let second = lines.next().unwrap().unwrap();
    assert_eq!(second, format!("dashboard: {url}/"));
    let third = lines.next().unwrap().unwrap();
    assert_eq!(third, "database: in memory (kept until exit)");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(url.starts_with("http://127.0.0.1:") && port != 0);
    let served = get(port, "/healthz").status;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(served, 200);
}
