//! A std-only HTTP client and wire-format builders shared by the integration tests.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Generous: only a bug makes a loopback answer take this long.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the collector");
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

/// Raw request bytes with `Content-Length`.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One request on a fresh connection that closes after it.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = connect(port);
    let mut all_headers = headers.to_vec();
    all_headers.push(("Connection", "close"));
    stream
        .write_all(&request_bytes(method, path, &all_headers, body))
        .unwrap();
    let response = read_response(&mut BufReader::new(&mut stream));
    assert_eq!(response.header("connection"), Some("close"));
    response
}

pub fn get(port: u16, path: &str) -> HttpResponse {
    request(port, "GET", path, &[], b"")
}

pub fn post_json(port: u16, path: &str, body: &Value) -> HttpResponse {
    request(
        port,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

pub fn post_batch(port: u16, batch: &Value) -> HttpResponse {
    post_json(port, "/api/v3/data", batch)
}

/// Reads one `Content-Length`-framed response (the collector's ordinary answers all are).
pub fn read_response<R: BufRead>(reader: &mut R) -> HttpResponse {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header colon");
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.parse().unwrap())
        .expect("Content-Length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Everything the server sends until it closes (or resets) the connection.
pub fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut buffer = [0; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return bytes,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return bytes,
            Err(e) => panic!("reading until the server closes: {e}"),
        }
    }
}

/// A UUID-shaped datapoint id, distinct per `n`.
pub fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

pub fn session_start(n: u32, session: &str, user: Option<&str>, time: f64) -> Value {
    json!({"id": id(n), "name": "ss", "time": time, "session_id": session, "user_id": user,
           "data": {}})
}

pub fn session_end(n: u32, session: &str, user: Option<&str>, time: f64, length: f64) -> Value {
    json!({"id": id(n), "name": "se", "time": time, "session_id": session, "user_id": user,
           "data": {"d": length}})
}

pub fn custom_event(n: u32, name: &str, session: Option<&str>, user: Option<&str>) -> Value {
    json!({"id": id(n), "name": "ce", "time": 1764190050.0, "session_id": session,
           "user_id": user, "data": {"n": name, "p": {"level": 3}}})
}

pub fn batch(device: &str, events: Vec<Value>) -> Value {
    json!({"api_key": "test-key", "device_id": device, "sdk_version": "stint/0.1.0",
           "time": 1764190200.5, "events": events})
}

/// Alice on device "dev": three sessions (two ended, 60 s and 90.5 s) and custom events.
pub fn alice_scenario() -> Value {
    let alice = Some("alice");
    batch(
        "dev",
        vec![
            session_start(1, "s1", alice, 1764190000.0),
            custom_event(2, "level_up", Some("s1"), alice),
            session_end(3, "s1", alice, 1764190060.0, 60.0),
            session_start(4, "s2", alice, 1764190100.0),
            custom_event(5, "level_up", Some("s2"), alice),
            custom_event(6, "purchase", Some("s2"), alice),
            session_end(7, "s2", alice, 1764190190.5, 90.5),
            session_start(8, "s3", alice, 1764190300.0),
        ],
    )
}

pub fn user<'a>(users: &'a Value, user_id: &str) -> &'a Value {
    users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == user_id)
        .unwrap_or_else(|| panic!("no user {user_id:?} in {users}"))
}
