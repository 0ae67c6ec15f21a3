//! The listener and routing. HTTP/1.1 itself is hyper's (`http1::Builder::serve_connection`),
//! but the collector accepts each socket itself and keeps a duplicate of it, for two reasons:
//! stopping shuts every socket down, which unblocks anything parked on one (keep-alive idle,
//! `hang`, `endless_body` to a client that stopped reading); and a fault that is not a proper
//! HTTP answer (hang, drop, garbage, endless or huge body) ends hyper's connection without a
//! response and then misbehaves on the raw socket, as a broken server would.

use crate::batch::{self, Batch, Rejection};
use crate::dashboard::{self, Overview, UserKey};
use crate::faults::{Faults, RequestFault, HUGE_BODY_BYTES};
use crate::store::{
    self, AppFilter, IngestOutcome, Reader, SeparateReader, Store, StoreError, StoreResult,
};
use crate::RequestRecord;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, TryLockError};
use std::thread;
use std::time::{Duration, Instant};
use tokio_rustls::TlsAcceptor;

/// Compressed or not, a request body above this is refused with 413 (the SDK's own cap is 512 KB).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Stop point for `endless_body`, so that a client that reads forever still ends.
const ENDLESS_BODY_CAP: usize = 1 << 30;

pub(crate) struct Shared {
    state: Mutex<State>,
    store: Writer,
    /// More writers for ingest alone, on a database that commits several at once (PostgreSQL);
    /// empty: ingest uses `store`.
    ingest_writers: Vec<Writer>,
    /// Where a request that finds every ingest writer busy queues.
    next_writer: AtomicUsize,
    /// A second connection for the pages and the API, for a file database (WAL): reads then
    /// never wait for ingest, nor ingest for them.
    reader: Option<Mutex<SeparateReader>>,
    pub access: Access,
    /// When this collector started (ns since the epoch), to tell its revisions from another's.
    started: u128,
    stopping: AtomicBool,
    /// A duplicate of every open connection's socket, for `shut_down_connections`.
    connections: Mutex<HashMap<u64, Arc<TcpStream>>>,
}

/// What lives only in memory: the request log (a debugging aid for tests) and the faults.
#[derive(Default)]
pub(crate) struct State {
    pub requests: Vec<RequestRecord>,
    pub faults: Faults,
}

/// Who may do what: fixed when the collector starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Access {
    /// The API keys a batch may carry; empty: any key.
    pub api_keys: HashSet<String>,
    /// What the pages and the `/api/` reads and deletes need (Basic password or Bearer).
    pub dashboard_token: Option<String>,
    /// Whether `/admin/faults` and `/admin/reset` exist.
    pub test_controls: bool,
}

impl Access {
    /// Whether a request carries the dashboard token (always, when there is none).
    fn admits(&self, request: &Request) -> bool {
        let Some(token) = &self.dashboard_token else {
            return true;
        };
        let Some(header) = request.header("authorization") else {
            return false;
        };
        let (scheme, credentials) = header.trim().split_once(' ').unwrap_or((header, ""));
        let credentials = credentials.trim();
        let presented = if scheme.eq_ignore_ascii_case("bearer") {
            Some(credentials.to_string())
        } else if scheme.eq_ignore_ascii_case("basic") {
            // Any user name; the token is the password.
            BASE64
                .decode(credentials)
                .ok()
                .and_then(|decoded| String::from_utf8(decoded).ok())
                .and_then(|pair| {
                    pair.split_once(':')
                        .map(|(_, password)| password.to_string())
                })
        } else {
            None
        };
        presented.is_some_and(|presented| constant_time_eq(presented.as_bytes(), token.as_bytes()))
    }

    fn accepts_key(&self, api_key: &str) -> bool {
        self.api_keys.is_empty() || self.api_keys.contains(api_key)
    }
}

/// Batches in a group beyond which the writer commits even with more queued: bounds how long
/// the first batch of a busy stream waits for its answer.
pub(crate) const MAX_GROUP_BATCHES: usize = 64;

/// A store that commits in groups. A batch is written inside the writer's open transaction (a
/// savepoint of its own); if another ingest request is already queued for the writer, the
/// transaction is left open for it and the batch's request waits, else the batch's request
/// commits the group and wakes every request in it. So, under load, one transaction (one
/// commit, one update of the counters) takes every batch that arrived while the previous one
/// was written, and each request is answered only once its batch is committed.
pub(crate) struct Writer {
    state: Mutex<WriterState>,
    /// Ingest requests waiting for `state`'s lock.
    queued: AtomicUsize,
    /// Signalled at each group's end.
    group_ended: Condvar,
    /// Batches in a group at most (1: no grouping).
    max_group: usize,
}

pub(crate) struct WriterState {
    store: Box<dyn Store>,
    /// The open group: its outcome, set at its end, and its batches so far.
    group: Option<(Arc<OnceLock<StoreResult<()>>>, usize)>,
}

impl WriterState {
    /// Commits the open group, if any, and tells its members.
    fn end_group(&mut self, ended: &Condvar) {
        if let Some((outcome, _)) = self.group.take() {
            let _ = outcome.set(self.store.commit_group());
            ended.notify_all();
        }
    }
}

/// The store of a [`Writer`] with no group open.
pub(crate) struct StoreGuard<'a>(MutexGuard<'a, WriterState>);

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Box<dyn Store>;
    fn deref(&self) -> &Self::Target {
        &self.0.store
    }
}

impl std::ops::DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0.store
    }
}

impl Writer {
    fn new(store: Box<dyn Store>, max_group: usize) -> Writer {
        Writer {
            state: Mutex::new(WriterState { store, group: None }),
            queued: AtomicUsize::new(0),
            group_ended: Condvar::new(),
            max_group,
        }
    }

    fn lock_closed(&self) -> StoreGuard<'_> {
        let mut state = lock(&self.state);
        state.end_group(&self.group_ended);
        StoreGuard(state)
    }

    /// Writes `batch` in the open group (or a new one), and answers once the group committed.
    /// `state`: the lock, if the caller holds it already.
    fn ingest(
        &self,
        batch: &Batch,
        state: Option<MutexGuard<'_, WriterState>>,
    ) -> StoreResult<IngestOutcome> {
        let mut state = state.unwrap_or_else(|| {
            self.queued.fetch_add(1, Ordering::SeqCst);
            let state = lock(&self.state);
            self.queued.fetch_sub(1, Ordering::SeqCst);
            state
        });
        if state.group.is_none() {
            state.store.begin_group()?;
            state.group = Some((Arc::new(OnceLock::new()), 0));
        }
        let written = {
            let store = &mut state.store;
            // A panic in the store must not leave the group open with its members waiting.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                store.ingest_in_group(&batch.api_key, batch)
            }))
            .unwrap_or_else(|_| {
                Err(StoreError(
                    "the store failed (panicked) on this batch".into(),
                ))
            })
        };
        let Some((group, members)) = state.group.as_mut() else {
            unreachable!("the group was opened above, under the same lock");
        };
        *members += 1;
        let group = Arc::clone(group);
        if written.is_ok() && *members < self.max_group && self.queued.load(Ordering::SeqCst) > 0 {
            // A queued request will take the lock next and carry on the group (or commit it).
            let _state = self
                .group_ended
                .wait_while(state, |_| group.get().is_none())
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        } else {
            state.end_group(&self.group_ended);
        }
        let outcome = written?;
        match group.get() {
            Some(Ok(())) => Ok(outcome),
            Some(Err(error)) => Err(error.clone()),
            None => unreachable!("waited for the group's end"),
        }
    }
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A lock that survives a panicking holder: a failed test must not cascade into the others
/// sharing this collector.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(
        store: Box<dyn Store>,
        ingest_writers: Vec<Box<dyn Store>>,
        reader: Option<SeparateReader>,
        access: Access,
    ) -> Shared {
        Shared {
            state: Mutex::new(State::default()),
            store: Writer::new(store, MAX_GROUP_BATCHES),
            // Side by side, each batch alone: grouping piled the batches onto whichever
            // connection was free while its group waited, leaving PostgreSQL's other server
            // processes idle (45,800-50,500 datapoints/s grouped, 65,000 not).
            ingest_writers: ingest_writers
                .into_iter()
                .map(|store| Writer::new(store, 1))
                .collect(),
            next_writer: AtomicUsize::new(0),
            reader: reader.map(Mutex::new),
            access,
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The store, with no group open (anything but ingest runs in a transaction of its own).
    pub fn store(&self) -> StoreGuard<'_> {
        self.store.lock_closed()
    }

    /// Stores a batch on a free ingest writer (or, with none, the store), in a group with the
    /// batches queued behind it (see [`Writer`]).
    fn ingest(&self, batch: &Batch) -> StoreResult<IngestOutcome> {
        let writers = &self.ingest_writers;
        if writers.is_empty() {
            return self.store.ingest(batch, None);
        }
        for writer in writers {
            match writer.state.try_lock() {
                Ok(state) => return writer.ingest(batch, Some(state)),
                Err(TryLockError::Poisoned(poisoned)) => {
                    return writer.ingest(batch, Some(poisoned.into_inner()))
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let queue = self.next_writer.fetch_add(1, Ordering::Relaxed) % writers.len();
        writers[queue].ingest(batch, None)
    }

    /// Identifies the data the pages show: this collector's start and its store's revision,
    /// so a page left open across a restart refreshes.
    pub fn revision(&self) -> String {
        format!("{}-{}", self.started, self.store().revision())
    }

    /// Runs queries on the read connection, or on the writer's when there is no other.
    pub fn read<T>(&self, query: impl FnOnce(&dyn Reader) -> T) -> T {
        match &self.reader {
            Some(reader) => query(&**lock(reader)),
            None => query(self.store().reader()),
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Unblocks every connection and every misbehaving thread.
    pub fn shut_down_connections(&self) {
        for stream in lock(&self.connections).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Accepts until the runtime shuts down (which drops this task and with it the listener).
pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) {
    let mut next_id: u64 = 0;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if shared.stopping() {
            return;
        }
        let Some((stream, raw)) = duplicate(stream) else {
            continue;
        };
        next_id += 1;
        let id = next_id;
        lock(&shared.connections).insert(id, Arc::clone(&raw));
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                // The handshake happens in this connection's task, never in the accept loop.
                Some(tls) => {
                    if let Ok(stream) = tls.accept(stream).await {
                        serve_connection(stream, Arc::clone(&raw), Arc::clone(&shared)).await;
                    }
                }
                None => serve_connection(stream, Arc::clone(&raw), Arc::clone(&shared)).await,
            }
            lock(&shared.connections).remove(&id);
        });
    }
}

/// The socket for hyper, and a duplicate descriptor of it that outlives hyper's.
fn duplicate(stream: tokio::net::TcpStream) -> Option<(tokio::net::TcpStream, Arc<TcpStream>)> {
    let _ = stream.set_nodelay(true);
    let std_stream = stream.into_std().ok()?;
    let raw = std_stream.try_clone().ok()?;
    let stream = tokio::net::TcpStream::from_std(std_stream).ok()?;
    Some((stream, Arc::new(raw)))
}

/// Ends hyper's connection without a response so the raw socket can misbehave.
#[derive(Debug)]
struct Hijacked;

impl std::fmt::Display for Hijacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection taken over by an injected fault")
    }
}

impl std::error::Error for Hijacked {}

async fn serve_connection<S>(stream: S, raw: Arc<TcpStream>, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let hijacked: Arc<Mutex<Option<RequestFault>>> = Arc::default();
    let service = {
        let shared = Arc::clone(&shared);
        let hijacked = Arc::clone(&hijacked);
        service_fn(move |request| handle(request, Arc::clone(&shared), Arc::clone(&hijacked)))
    };
    // No header timeout: an idle kept-alive client is closed by stop or by itself (ureq gives
    // up on idle connections after 15 s), and the hang fault relies on no timer interfering.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .half_close(false)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    // hyper has dropped its descriptor without a shutdown; the socket is still open through
    // `raw`, with the request read and nothing answered.
    let fault = lock(&hijacked).take();
    if let Some(fault) = fault {
        let _ = tokio::task::spawn_blocking(move || {
            if raw.set_nonblocking(false).is_ok() {
                misbehave(fault, &raw, &shared);
            }
        })
        .await;
    }
}

/// A request as `route` sees it: the body read whole.
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    /// First value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The first value of a query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn text(status: u16, message: impl Into<String>) -> Response {
        let mut body = message.into();
        body.push('\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn json(status: u16, value: &Value) -> Response {
        Response::new(status, "application/json", value.to_string())
    }

    pub fn html(status: u16, body: String) -> Response {
        Response::new(status, "text/html; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type HyperResponse = hyper::Response<Full<Bytes>>;

async fn handle(
    request: hyper::Request<Incoming>,
    shared: Arc<Shared>,
    hijacked: Arc<Mutex<Option<RequestFault>>>,
) -> Result<HyperResponse, Hijacked> {
    let (parts, body) = request.into_parts();
    let connection = parts
        .headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    let close = match parts.version {
        hyper::Version::HTTP_10 => !connection.iter().any(|t| t == "keep-alive"),
        _ => connection.iter().any(|t| t == "close"),
    };
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        Ok(to_hyper(
            Response::text(413, format!("body exceeds {MAX_BODY_BYTES} bytes")),
            true,
        ))
    };
    // Refused before it is read; the connection closes, the rest of the body unread.
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => return too_large(),
        // The client went away mid-body: nothing to answer.
        Err(_) => return Err(Hijacked),
    };
    let request = Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect(),
        body,
    };
    // Routing touches SQLite and may sleep (`response_delay_ms`): off the async threads.
    let reply = tokio::task::spawn_blocking(move || route(&shared, &request))
        .await
        .unwrap_or_else(|_| Reply::Respond(Response::text(500, "the handler panicked")));
    match reply {
        Reply::Respond(response) => Ok(to_hyper(response, close)),
        Reply::Hostile(fault) => {
            *lock(&hijacked) = Some(fault);
            Err(Hijacked)
        }
    }
}

fn to_hyper(response: Response, close: bool) -> HyperResponse {
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let headers = out.headers_mut();
    for (name, value) in response.headers {
        // A header value from the fault configuration that HTTP cannot carry is left out.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static(if close { "close" } else { "keep-alive" }),
    );
    out
}

pub(crate) enum Reply {
    Respond(Response),
    /// Something that is not a well-formed answer; the connection ends afterwards.
    Hostile(RequestFault),
}

fn database_error(error: StoreError) -> Reply {
    Reply::Respond(Response::text(500, format!("database error: {error}")))
}

/// Every path the collector serves (others are 404; a known path with the wrong method, 405).
const PATHS: [&str; 14] = [
    "/",
    "/index.html",
    "/user",
    "/api/live",
    "/api/overview",
    "/api/user",
    "/api/users",
    "/api/apps",
    "/api/stats",
    "/api/datapoints",
    "/api/requests",
    "/admin/faults",
    "/admin/reset",
    "/healthz",
];

/// `DELETE /api/devices/{device_id}`.
const DEVICES: &str = "/api/devices/";

fn route(shared: &Shared, request: &Request) -> Reply {
    let method = request.method.as_str();
    let path = request.path.as_str();
    if path == "/api/v3/data" {
        // Ingest is guarded by the API keys, not the dashboard token.
        return match method {
            "POST" => handle_data(shared, request),
            _ => not_allowed(method, path),
        };
    }
    if path == "/healthz" {
        return match method {
            "GET" | "HEAD" => Reply::Respond(Response::text(200, "ok")),
            _ => not_allowed(method, path),
        };
    }
    let known = PATHS.contains(&path) || path.starts_with(DEVICES);
    if !known || (path.starts_with("/admin/") && !shared.access.test_controls) {
        return Reply::Respond(Response::text(404, format!("no such page: {path}")));
    }
    if !shared.access.admits(request) {
        return Reply::Respond(
            Response::text(
                401,
                "this collector needs its dashboard token: HTTP Basic with the token as the \
                 password, or Authorization: Bearer TOKEN",
            )
            .with_header(
                "WWW-Authenticate",
                "Basic realm=\"stint-collector\", charset=\"UTF-8\"",
            ),
        );
    }
    if let Some(device_id) = path.strip_prefix(DEVICES) {
        return match method {
            "DELETE" => delete_device(shared, device_id),
            _ => not_allowed(method, path),
        };
    }
    let read = method == "GET" || method == "HEAD";
    let ok = |value: Value| Reply::Respond(Response::json(200, &value));
    let app = request.param("app");
    let app = app.as_deref();
    let result = match (path, read, method) {
        ("/" | "/index.html", true, _) => {
            let query = request.param("q").unwrap_or_default();
            overview(shared, app, &query).map(|overview| {
                Reply::Respond(Response::html(
                    200,
                    dashboard::overview_page(&overview.view(&query)),
                ))
            })
        }
        ("/user", true, _) => match request.param("device") {
            None => Ok(Reply::Respond(Response::text(
                400,
                "missing ?device= (and &user= unless the user is anonymous)",
            ))),
            Some(device_id) => {
                let user_id = request.param("user");
                let key = UserKey {
                    app,
                    device_id: &device_id,
                    user_id: user_id.as_deref(),
                };
                shared
                    .read(|reader| reader.user_usage(app, &device_id, user_id.as_deref()))
                    .map(|usage| {
                        let status = if usage.is_some() { 200 } else { 404 };
                        Reply::Respond(Response::html(
                            status,
                            dashboard::user_page(&key, usage.as_ref()),
                        ))
                    })
            }
        },
        ("/api/live", true, _) => live(shared, request).map(ok),
        ("/api/overview", true, _) => shared.read(|reader| reader.days(app)).map(|days| {
            ok(json!({
                "sessions_per_day": store::days_json(&days),
                "datapoints": shared.store().datapoint_count(),
            }))
        }),
        ("/api/user", true, _) => {
            let device_id = request.param("device").unwrap_or_default();
            let user_id = request.param("user");
            shared
                .read(|reader| reader.user_usage(app, &device_id, user_id.as_deref()))
                .map(|usage| match usage {
                    Some(usage) => ok(usage.to_json()),
                    None => Reply::Respond(Response::text(404, "no such user on that device")),
                })
        }
        ("/api/users", true, _) => shared.read(|reader| store::users_json(reader, app)).map(ok),
        ("/api/apps", true, _) => shared
            .read(|reader| reader.apps())
            .map(|apps| ok(json!({ "apps": apps }))),
        ("/api/stats", true, _) => {
            let (datapoints, received_total) = {
                let store = shared.store();
                (store.datapoint_count(), store.received_total())
            };
            Ok(ok(json!({
                "datapoints": datapoints,
                "received_total": received_total,
                "requests": shared.state().requests.len(),
            })))
        }
        ("/api/datapoints", true, _) => {
            shared.read(|reader| reader.datapoints()).map(|datapoints| {
                ok(json!({
                    "datapoints": datapoints,
                    "received_total": shared.store().received_total(),
                }))
            })
        }
        ("/api/requests", true, _) => Ok(ok(json!({
            "requests": shared.state().requests.iter().map(RequestRecord::to_json).collect::<Vec<_>>()
        }))),
        ("/admin/faults", true, _) => Ok(ok(shared.state().faults.to_json())),
        ("/admin/faults", _, "POST") => {
            let parsed = serde_json::from_slice::<Value>(&request.body)
                .map_err(|e| format!("body is not valid JSON: {e}"))
                .and_then(|value| Faults::from_json(&value));
            Ok(match parsed {
                Ok(faults) => {
                    let body = faults.to_json();
                    shared.state().faults = faults;
                    ok(body)
                }
                Err(message) => Reply::Respond(Response::text(400, message)),
            })
        }
        ("/admin/reset", _, "POST") => shared.store().reset().map(|()| {
            shared.state().requests.clear();
            ok(json!({"reset": true}))
        }),
        _ => Ok(not_allowed(method, path)),
    };
    result.unwrap_or_else(database_error)
}

fn not_allowed(method: &str, path: &str) -> Reply {
    Reply::Respond(Response::text(
        405,
        format!("{method} is not allowed on {path}"),
    ))
}

fn delete_device(shared: &Shared, device_id: &str) -> Reply {
    let device_id = percent_decode(device_id);
    if device_id.is_empty() {
        return Reply::Respond(Response::text(
            400,
            "missing the device id: DELETE /api/devices/{device_id}",
        ));
    }
    match shared.store().delete_device(&device_id) {
        Ok(deleted) => Reply::Respond(Response::json(
            200,
            &json!({"device_id": device_id, "deleted": deleted}),
        )),
        Err(error) => database_error(error),
    }
}

/// A path segment's `%XX` escapes undone (a device id may hold any character).
fn percent_decode(segment: &str) -> String {
    form_urlencoded::parse(format!("d={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// What the overview is made of.
struct OverviewData {
    apps: Vec<String>,
    app: Option<String>,
    users: Vec<store::UserSummary>,
    matching: usize,
    total_users: usize,
    days: Vec<store::DayCount>,
    datapoints: usize,
}

impl OverviewData {
    fn view<'a>(&'a self, query: &'a str) -> Overview<'a> {
        Overview {
            apps: &self.apps,
            app: self.app.as_deref(),
            users: &self.users,
            matching: self.matching,
            total_users: self.total_users,
            days: &self.days,
            datapoints: self.datapoints,
            query,
        }
    }
}

fn overview(shared: &Shared, app: AppFilter, query: &str) -> Result<OverviewData, StoreError> {
    let (apps, users, matching, total_users, days) = shared.read(|reader| {
        let (users, matching) = reader.overview_users(app, query, dashboard::USERS_LISTED)?;
        let (_, total_users) = reader.overview_users(app, "", 0)?;
        Ok::<_, StoreError>((
            reader.apps()?,
            users,
            matching,
            total_users,
            reader.days(app)?,
        ))
    })?;
    Ok(OverviewData {
        apps,
        app: app.map(String::from),
        users,
        matching,
        total_users,
        days,
        datapoints: shared.store().datapoint_count(),
    })
}

/// `GET /api/live?view=overview|user&...`: the page's `#live` fragment, re-rendered.
fn live(shared: &Shared, request: &Request) -> Result<Value, StoreError> {
    // Taken before reading: a change racing the read shows up at the next poll.
    let revision = shared.revision();
    let datapoints = shared.store().datapoint_count();
    if request.param("revision").as_deref() == Some(revision.as_str()) {
        return Ok(json!({"revision": revision, "datapoints": datapoints}));
    }
    let app = request.param("app");
    let app = app.as_deref();
    let html = match request.param("view").as_deref() {
        Some("user") => {
            let device_id = request.param("device").unwrap_or_default();
            let user_id = request.param("user");
            let usage =
                shared.read(|reader| reader.user_usage(app, &device_id, user_id.as_deref()))?;
            dashboard::user_fragment(usage.as_ref())
        }
        _ => {
            let query = request.param("q").unwrap_or_default();
            let data = overview(shared, app, &query)?;
            dashboard::overview_fragment(&data.view(&query))
        }
    };
    Ok(json!({"html": html, "revision": revision, "datapoints": datapoints}))
}

fn handle_data(shared: &Shared, request: &Request) -> Reply {
    let content_encoding = request.header("content-encoding");
    let (summary, validated) = match batch::decode_body(&request.body, content_encoding) {
        Ok(decoded) => batch::read_batch(decoded),
        Err(rejection) => (Default::default(), Err(rejection)),
    };
    let validated: Result<Batch, Rejection> = validated.and_then(|batch| {
        if shared.access.accepts_key(&batch.api_key) {
            // Decoding succeeded: the encoding is gzip, identity or none.
            let gzip = content_encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"));
            let body = batch::WireBody {
                bytes: request.body.to_vec(),
                gzip,
            };
            Ok(Batch {
                body: Some(body),
                ..batch
            })
        } else {
            Err(Rejection {
                status: 401,
                message: "api_key: not one of this collector's API keys".into(),
            })
        }
    });

    let (fault, commit_before_fault, delay, accepted) = {
        let mut state = shared.state();
        let fault = state.faults.take_request_fault();
        // Without a per-request fault: the batch, or why it is refused.
        let accepted: Result<&Batch, (u16, String)> = match &validated {
            Err(r) => Err((r.status, r.message.clone())),
            Ok(batch) => state.faults.batch_rejection(batch).map_or(Ok(batch), Err),
        };
        (
            fault,
            state.faults.commit_before_fault,
            Duration::from_millis(state.faults.response_delay_ms),
            accepted,
        )
    };
    // Stored before the request is logged, so whoever sees the log entry sees the data.
    let ingest = |batch: &Batch| shared.ingest(batch);
    let mut rejection = None;
    let (status, reply) = match &fault {
        Some(fault) => {
            let status = fault.status();
            // A 2xx means the server kept the data, however badly it then answers.
            let mut stored = Ok(());
            if commit_before_fault || (200..300).contains(&status) {
                if let Ok(batch) = &validated {
                    stored = ingest(batch).map(drop);
                }
            }
            match stored {
                Ok(()) => (status, fault_reply(fault.clone())),
                Err(error) => (500, database_error(error)),
            }
        }
        None => match accepted {
            Ok(batch) => match ingest(batch) {
                Ok(outcome) => {
                    let body =
                        json!({"accepted": batch.events.len(), "duplicates": outcome.duplicates});
                    (200, Reply::Respond(Response::json(200, &body)))
                }
                Err(error) => (500, database_error(error)),
            },
            Err((status, message)) => {
                rejection = Some(message.clone());
                (status, Reply::Respond(Response::text(status, message)))
            }
        },
    };
    shared.state().requests.push(RequestRecord {
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

/// The reason phrase of a status line written by hand.
fn reason_phrase(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Status")
}

/// Carries out a fault that is not a proper HTTP answer, then lets the connection end.
fn misbehave(fault: RequestFault, mut stream: &TcpStream, shared: &Shared) {
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
                reason_phrase(status)
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
                reason_phrase(status)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate;

    /// Records what the writer asks of it; a batch under the API key "fail" fails.
    #[derive(Default)]
    struct Recorder {
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Store for Recorder {
        fn begin_group(&mut self) -> StoreResult<()> {
            lock(&self.log).push("begin".into());
            Ok(())
        }
        fn ingest_in_group(&mut self, app: &str, batch: &Batch) -> StoreResult<IngestOutcome> {
            if app == "fail" {
                return Err(StoreError("refused".into()));
            }
            lock(&self.log).push(batch.device_id.clone());
            Ok(IngestOutcome {
                new: batch.events.len(),
                duplicates: 0,
            })
        }
        fn commit_group(&mut self) -> StoreResult<()> {
            lock(&self.log).push("commit".into());
            Ok(())
        }
        fn reset(&mut self) -> StoreResult<()> {
            unimplemented!()
        }
        fn delete_device(&mut self, _: &str) -> StoreResult<usize> {
            unimplemented!()
        }
        fn delete_before(&mut self, _: f64) -> StoreResult<usize> {
            unimplemented!()
        }
        fn revision(&self) -> u64 {
            0
        }
        fn datapoint_count(&self) -> usize {
            0
        }
        fn received_total(&self) -> usize {
            0
        }
        fn reader(&self) -> &dyn Reader {
            unimplemented!()
        }
    }

    fn batch(key: &str, device: &str) -> Batch {
        validate(&serde_json::json!({"api_key": key, "device_id": device,
            "sdk_version": "stint/0.1.0", "time": 0.0, "events": []}))
        .unwrap()
    }

    #[test]
    fn batches_queued_behind_the_writer_commit_together_and_a_failing_one_alone_is_refused() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::new(Writer::new(
            Box::new(Recorder { log: log.clone() }),
            MAX_GROUP_BATCHES,
        ));
        let held = lock(&writer.state);
        let requests = 8;
        let threads: Vec<_> = (0..requests)
            .map(|n| {
                let writer = writer.clone();
                thread::spawn(move || {
                    let key = if n == 3 { "fail" } else { "ok" };
                    writer.ingest(&batch(key, &format!("d{n}")), None)
                })
            })
            .collect();
        // Every request queued behind the held lock (generous: a slow machine starts threads late).
        let deadline = Instant::now() + Duration::from_secs(60);
        while writer.queued.load(Ordering::SeqCst) < requests {
            assert!(Instant::now() < deadline, "the requests never queued");
            thread::sleep(Duration::from_millis(5));
        }
        drop(held);
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for (n, result) in results.iter().enumerate() {
            assert_eq!(result.is_ok(), n != 3, "request {n}: {result:?}");
        }
        let log = lock(&log).clone();
        // The failing batch ends its group (the store may be unusable after an error), so at
        // most two groups; every other batch inside one, and committed.
        let commits = log.iter().filter(|entry| *entry == "commit").count();
        assert!((1..=2).contains(&commits), "{log:?}");
        assert_eq!(log.first().map(String::as_str), Some("begin"));
        assert_eq!(log.last().map(String::as_str), Some("commit"));
        let stored: HashSet<&str> = log
            .iter()
            .map(String::as_str)
            .filter(|e| e.starts_with('d'))
            .collect();
        assert_eq!(stored.len(), requests - 1, "{log:?}");
        assert!(!stored.contains("d3"));
    }

    #[test]
    fn another_user_of_the_store_closes_the_open_group_first() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::new(Writer::new(
            Box::new(Recorder { log: log.clone() }),
            MAX_GROUP_BATCHES,
        ));
        let held = lock(&writer.state);
        // One request queued: pretend a second one is, so the first leaves its group open.
        writer.queued.fetch_add(1, Ordering::SeqCst);
        let request = {
            let writer = writer.clone();
            thread::spawn(move || writer.ingest(&batch("ok", "d1"), None))
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while writer.queued.load(Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline, "the request never queued");
            thread::sleep(Duration::from_millis(5));
        }
        drop(held);
        while lock(&log).len() < 2 {
            assert!(Instant::now() < deadline, "the batch was never written");
            thread::sleep(Duration::from_millis(5));
        }
        assert!(
            !request.is_finished(),
            "answered before its group committed"
        );
        writer.queued.fetch_sub(1, Ordering::SeqCst);
        drop(writer.lock_closed());
        assert!(request.join().unwrap().is_ok());
        assert_eq!(*lock(&log), ["begin", "d1", "commit"]);
    }
}
