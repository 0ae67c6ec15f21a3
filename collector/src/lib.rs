//! Stint's local collector: the loopback server that integrators run to watch their sessions
//! arrive, and that every test suite uses as its fixture (with fault injection).
//!
//! ```no_run
//! let collector = stint_collector::Collector::start().unwrap();
//! println!("send to {}/api/v3/data, watch {}/", collector.url(), collector.url());
//! collector.wait_for_datapoints(3, std::time::Duration::from_secs(10));
//! ```
//!
//! Data lives in SQLite: in memory by default (each test's collector is independent), or in a
//! file that survives restarts (`CollectorOptions::with_db_file`, `stint-collector --db`).
//!
//! HTTP endpoints: `POST /api/v3/data`, `GET /` (overview), `GET /user?device=&user=` (App
//! Usage), `GET /api/live`, `GET /api/overview`, `GET /api/user`, `GET /api/users`,
//! `GET /api/stats`, `GET /api/datapoints`, `GET /api/requests`, `GET|POST /admin/faults`,
//! `POST /admin/reset`, `GET /healthz`.

mod batch;
mod chart;
mod dashboard;
mod faults;
mod server;
mod store;

pub use batch::CONTEXT_KEYS;
pub use faults::{Faults, DEFAULT_REDIRECT_LOCATION, HUGE_BODY_BYTES};
pub use store::Database;

use server::Shared;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use store::Store;

/// The database file `stint-collector` uses without `--db`: in the working directory.
pub const DEFAULT_DB_FILE: &str = "stint-collector.db";

/// How long stopping waits for threads still misbehaving on a socket (they notice within
/// milliseconds; this only bounds a bug).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How to start a collector: `CollectorOptions::default()` is a free port and a private
/// in-memory database, which is what tests want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorOptions {
    /// 0 picks a free port.
    pub port: u16,
    pub database: Database,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions {
            port: 0,
            database: Database::Memory,
        }
    }
}

impl CollectorOptions {
    /// Keeps the data in `path` (created if missing), across restarts.
    pub fn with_db_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.database = Database::File(path.into());
        self
    }
}

/// One `POST /api/v3/data` as the collector saw it, whatever it answered.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub at: Instant,
    /// The status answered; 0 when no HTTP response was sent (drop, hang, garbage).
    pub status: u16,
    /// Length of the body's `events` array (0 if the body could not be read as JSON).
    pub event_count: usize,
    pub content_encoding: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    pub api_key: Option<String>,
    pub device_id: Option<String>,
    pub sdk_version: Option<String>,
    /// Size of the body as sent (compressed, if it was).
    pub body_bytes: usize,
    /// The `id` of each datapoint, in body order.
    pub event_ids: Vec<String>,
    /// The injected per-request fault, if any ("fail", "hang", "drop", ...).
    pub fault: Option<String>,
    /// Why the batch was refused (400/413 message), if it was.
    pub rejection: Option<String>,
}

impl RequestRecord {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status,
            "event_count": self.event_count,
            "content_encoding": self.content_encoding,
            "content_type": self.content_type,
            "user_agent": self.user_agent,
            "api_key": self.api_key,
            "device_id": self.device_id,
            "sdk_version": self.sdk_version,
            "body_bytes": self.body_bytes,
            "event_ids": self.event_ids,
            "fault": self.fault,
            "rejection": self.rejection,
        })
    }
}

/// A running collector on 127.0.0.1. Dropping it stops the server and joins its threads.
pub struct Collector {
    port: u16,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Collector {
    /// Starts on a free port, with an in-memory database of its own.
    pub fn start() -> std::io::Result<Collector> {
        Collector::start_with(CollectorOptions::default())
    }

    /// Starts on `port` (0 picks a free one), in memory. Fails if the port is taken.
    pub fn start_on_port(port: u16) -> std::io::Result<Collector> {
        Collector::start_with(CollectorOptions {
            port,
            ..CollectorOptions::default()
        })
    }

    /// Starts with a port and a database; fails if the port is taken or the database cannot
    /// be opened (or is not a collector database).
    pub fn start_with(options: CollectorOptions) -> std::io::Result<Collector> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let store = Store::open(&options.database).map_err(|error| {
            std::io::Error::other(format!(
                "cannot open the database {}: {error}",
                options.database
            ))
        })?;
        let reader = store::open_reader(&options.database).map_err(|error| {
            std::io::Error::other(format!(
                "cannot open the database {}: {error}",
                options.database
            ))
        })?;
        let shared = Arc::new(Shared::new(store, reader));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stint-collector")
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(server::accept_loop(listener, Arc::clone(&shared)));
        Ok(Collector {
            port,
            shared,
            runtime: Some(runtime),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "http://127.0.0.1:PORT": the SDK's base URL, and the dashboard's address.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The address of the "App Usage" page of a user (`None`: the anonymous user) on a device.
    pub fn user_page_url(&self, device_id: &str, user_id: Option<&str>) -> String {
        format!("{}{}", self.url(), dashboard::user_link(device_id, user_id))
    }

    /// Accepted datapoints, de-duplicated by id, in arrival order, exactly as sent.
    pub fn datapoints(&self) -> Vec<serde_json::Value> {
        self.shared
            .read(|reader| reader.datapoints())
            .expect("reading the collector's database")
    }

    /// `datapoints().len()` without the copy (cheap enough to poll).
    pub fn datapoint_count(&self) -> usize {
        self.shared.store().datapoint_count()
    }

    /// Datapoints in accepted batches, duplicates included.
    pub fn datapoints_received_total(&self) -> usize {
        self.shared.store().received_total()
    }

    /// Every `POST /api/v3/data` seen, in order, including refused and faulted ones.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().requests.clone()
    }

    /// `requests().len()` without the copy.
    pub fn request_count(&self) -> usize {
        self.shared.state().requests.len()
    }

    /// The requests from index `start` on (for following the log without copying it all).
    pub fn requests_since(&self, start: usize) -> Vec<RequestRecord> {
        let state = self.shared.state();
        state.requests.get(start..).unwrap_or_default().to_vec()
    }

    /// The same document as `GET /api/users`.
    pub fn users_json(&self) -> serde_json::Value {
        self.shared
            .read(|reader| reader.users_json())
            .expect("reading the collector's database")
    }

    /// Replaces the fault configuration (`Faults::default()` clears it).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.state().faults = faults;
    }

    /// The current configuration, with counters as far as requests have consumed them.
    pub fn faults(&self) -> Faults {
        self.shared.state().faults.clone()
    }

    /// Forgets stored datapoints and the request log (faults are kept), like `POST /admin/reset`.
    pub fn reset(&self) {
        self.shared
            .store()
            .reset()
            .expect("resetting the collector's database");
        self.shared.state().requests.clear();
    }

    /// Polls `cond` until it holds or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, cond: impl Fn(&Collector) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until at least `n` distinct datapoints have been accepted.
    pub fn wait_for_datapoints(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |collector| collector.datapoint_count() >= n)
    }

    /// Stops the server (same as dropping it).
    pub fn stop(self) {}
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.shared.begin_stop();
        self.shared.shut_down_connections();
        if let Some(runtime) = self.runtime.take() {
            // Drops every task (the listener with the accept loop, every hyper connection) and
            // waits for the threads that misbehave on a raw socket, now shut down.
            runtime.shutdown_timeout(STOP_GRACE);
        }
    }
}
