//! The listener, one thread per connection, and routing. Connections are registered so that
//! stopping the collector can shut every socket down, which unblocks any thread parked in a
//! read (keep-alive idle, `hang`) or a write (`endless_body` to a client that stopped reading).

use crate::batch::{self, Batch, Rejection};
use crate::dashboard;
use crate::faults::{Faults, RequestFault, HUGE_BODY_BYTES};
use crate::http::{self, ReadError, Request, Response};
use crate::store::Store;
use crate::RequestRecord;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longer than ureq's pool idle age (15 s by default), so the client always gives up on an idle
/// connection before the server does and never reuses a socket the server is closing.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(60);
/// Stop point for `endless_body`, so that a client that reads forever still ends.
const ENDLESS_BODY_CAP: usize = 1 << 30;

pub(crate) struct Shared {
    state: Mutex<State>,
    stopping: AtomicBool,
    connections: Mutex<HashMap<u64, TcpStream>>,
}

#[derive(Default)]
pub(crate) struct State {
    pub store: Store,
    pub requests: Vec<RequestRecord>,
    pub faults: Faults,
}

/// A lock that survives a panicking holder: a failed test must not cascade into the others
/// sharing this collector.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            state: Mutex::new(State::default()),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Unblocks every connection thread; called once the accept loop has ended, so no new
    /// connection can register afterwards.
    pub fn shut_down_connections(&self) {
        for stream in lock(&self.connections).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Runs until `begin_stop` plus a wake-up connection; returns the live connection threads.
pub(crate) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) -> Vec<JoinHandle<()>> {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id: u64 = 0;
    for incoming in listener.incoming() {
        if shared.stopping() {
            break;
        }
        let stream = match incoming {
            Ok(stream) => stream,
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        next_id += 1;
        let id = next_id;
        lock(&shared.connections).insert(id, registered);
        let for_thread = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("stint-collector-conn".into())
            .spawn(move || {
                serve_connection(stream, &for_thread);
                lock(&for_thread.connections).remove(&id);
            });
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(_) => {
                lock(&shared.connections).remove(&id);
            }
        }
        workers.retain(|handle| !handle.is_finished());
    }
    workers
}

enum Reply {
    Respond(Response),
    /// Something that is not a well-formed answer; the connection ends afterwards.
    Hostile(RequestFault),
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(KEEP_ALIVE_IDLE));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while !shared.stopping() {
        let request = match http::read_request(&mut reader, || {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        }) {
            Ok(request) => request,
            Err(ReadError::Closed) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Malformed(message)) => {
                let _ =
                    http::write_response(&mut writer, &Response::text(400, message), true, false);
                return;
            }
            Err(ReadError::TooLarge(message)) => {
                let _ =
                    http::write_response(&mut writer, &Response::text(413, message), true, false);
                return;
            }
        };
        let close = request.wants_close() || shared.stopping();
        match route(shared, &request) {
            Reply::Respond(response) => {
                let head_only = request.method == "HEAD";
                if http::write_response(&mut writer, &response, close, head_only).is_err() || close
                {
                    return;
                }
            }
            Reply::Hostile(fault) => {
                misbehave(fault, reader.into_inner(), shared);
                return;
            }
        }
    }
}

fn route(shared: &Shared, request: &Request) -> Reply {
    let method = request.method.as_str();
    let read = method == "GET" || method == "HEAD";
    let ok = |value: Value| Reply::Respond(Response::json(200, &value));
    match (request.path.as_str(), read, method) {
        ("/api/v3/data", _, "POST") => handle_data(shared, request),
        ("/" | "/index.html", true, _) => {
            let state = shared.state();
            let page = dashboard::render(&state.store.users(), state.store.datapoints().len());
            Reply::Respond(Response::html(page))
        }
        ("/api/users", true, _) => ok(shared.state().store.users_json()),
        ("/api/stats", true, _) => {
            let state = shared.state();
            ok(json!({
                "datapoints": state.store.datapoints().len(),
                "received_total": state.store.received_total(),
                "requests": state.requests.len(),
            }))
        }
        ("/api/datapoints", true, _) => {
            let state = shared.state();
            ok(json!({
                "datapoints": state.store.datapoints(),
                "received_total": state.store.received_total(),
            }))
        }
        ("/api/requests", true, _) => ok(json!({
            "requests": shared.state().requests.iter().map(RequestRecord::to_json).collect::<Vec<_>>()
        })),
        ("/admin/faults", true, _) => ok(shared.state().faults.to_json()),
        ("/admin/faults", _, "POST") => {
            let parsed = serde_json::from_slice::<Value>(&request.body)
                .map_err(|e| format!("body is not valid JSON: {e}"))
                .and_then(|value| Faults::from_json(&value));
            match parsed {
                Ok(faults) => {
                    let body = faults.to_json();
                    shared.state().faults = faults;
                    ok(body)
                }
                Err(message) => Reply::Respond(Response::text(400, message)),
            }
        }
        ("/admin/reset", _, "POST") => {
            let mut state = shared.state();
            state.store = Store::default();
            state.requests.clear();
            ok(json!({"reset": true}))
        }
        ("/healthz", true, _) => Reply::Respond(Response::text(200, "ok")),
        (
            "/" | "/index.html" | "/api/users" | "/api/stats" | "/api/datapoints" | "/api/requests"
            | "/admin/faults" | "/admin/reset" | "/healthz" | "/api/v3/data",
            _,
            _,
        ) => Reply::Respond(Response::text(
            405,
            format!("{method} is not allowed on {}", request.path),
        )),
        _ => Reply::Respond(Response::text(
            404,
            format!("no such page: {}", request.path),
        )),
    }
}

fn handle_data(shared: &Shared, request: &Request) -> Reply {
    let content_encoding = request.header("content-encoding");
    let parsed = batch::decode_body(&request.body, content_encoding)
        .and_then(|decoded| batch::parse_json(&decoded));
    let summary = parsed.as_ref().map(batch::summarize).unwrap_or_default();
    let validated: Result<Batch, Rejection> = parsed.and_then(|body| batch::validate(&body));

    let mut state = shared.state();
    let fault = state.faults.take_request_fault();
    let delay = Duration::from_millis(state.faults.response_delay_ms);
    let mut rejection = None;
    let (status, reply) = match &fault {
        Some(fault) => {
            let status = fault.status();
            // A 2xx means the server kept the data, however badly it then answers.
            if state.faults.commit_before_fault || (200..300).contains(&status) {
                if let Ok(batch) = &validated {
                    state.store.ingest(batch);
                }
            }
            (status, fault_reply(fault.clone()))
        }
        None => {
            let refused = match &validated {
                Err(r) => Err((r.status, r.message.clone())),
                Ok(batch) => state.faults.batch_rejection(batch).map_or(Ok(batch), Err),
            };
            match refused {
                Ok(batch) => {
                    let outcome = state.store.ingest(batch);
                    let body =
                        json!({"accepted": batch.events.len(), "duplicates": outcome.duplicates});
                    (200, Reply::Respond(Response::json(200, &body)))
                }
                Err((status, message)) => {
                    rejection = Some(message.clone());
                    (status, Reply::Respond(Response::text(status, message)))
                }
            }
        }
    };
    state.requests.push(RequestRecord {
        at: Instant::now(),
        status,
        event_count: summary.event_count,
        content_encoding: content_encoding.map(String::from),
        content_type: request.header("content-type").map(String::from),
        user_agent: request.header("user-agent").map(String::from),
        api_key: summary.api_key,
        device_id: summary.device_id,
        sdk_version: summary.sdk_version,
        body_bytes: request.body.len(),
        event_ids: summary.event_ids,
        fault: fault.as_ref().map(|f| f.name().to_string()),
        rejection,
    });
    drop(state);
    sleep_unless_stopping(shared, delay);
    reply
}

fn fault_reply(fault: RequestFault) -> Reply {
    match fault {
        RequestFault::Fail {
            status,
            retry_after,
        } => {
            let response = Response::text(status, format!("injected failure ({status})"));
            Reply::Respond(match retry_after {
                Some(value) => response.with_header("Retry-After", value),
                None => response,
            })
        }
        RequestFault::Redirect(location) => Reply::Respond(
            Response::text(307, format!("moved to {location}")).with_header("Location", location),
        ),
        other => Reply::Hostile(other),
    }
}

/// Carries out a fault that is not a proper HTTP answer, then lets the connection end.
fn misbehave(fault: RequestFault, mut stream: TcpStream, shared: &Shared) {
    match fault {
        RequestFault::Drop => {
            let _ = stream.shutdown(Shutdown::Both);
        }
        RequestFault::Hang => {
            // Block until the client gives up or the collector stops (which shuts the socket
            // down); whatever the client sends meanwhile is discarded.
            let _ = stream.set_read_timeout(None);
            let mut sink = [0u8; 4096];
            while !shared.stopping() {
                match stream.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        }
        RequestFault::Garbage => {
            let _ = stream.write_all(b"\x16\x03\x01\x00\xffNOT HTTP \x00\xfe\xfd garbage\r\n\r\n");
        }
        RequestFault::EndlessBody(status) => {
            // No Content-Length: the body is delimited by the close that never comes.
            let head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{{\"accepted\":",
                http::reason_phrase(status)
            );
            let chunk = [b' '; 64 * 1024];
            let mut sent = 0;
            let mut result = stream.write_all(head.as_bytes());
            while result.is_ok() && sent < ENDLESS_BODY_CAP && !shared.stopping() {
                result = stream.write_all(&chunk);
                sent += chunk.len();
            }
        }
        RequestFault::HugeBody(status) => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {HUGE_BODY_BYTES}\r\nConnection: close\r\n\r\n",
                http::reason_phrase(status)
            );
            let chunk = [b' '; 64 * 1024];
            let mut remaining = HUGE_BODY_BYTES;
            let mut result = stream.write_all(head.as_bytes());
            while result.is_ok() && remaining > 0 && !shared.stopping() {
                let size = remaining.min(chunk.len());
                result = stream.write_all(&chunk[..size]);
                remaining -= size;
            }
        }
        RequestFault::Fail { .. } | RequestFault::Redirect(_) => {
            unreachable!("answered as ordinary responses")
        }
    }
}

fn sleep_unless_stopping(shared: &Shared, duration: Duration) {
    let deadline = Instant::now() + duration;
    while !shared.stopping() {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(25)));
    }
}
