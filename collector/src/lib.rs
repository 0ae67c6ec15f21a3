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
//! HTTP endpoints: `POST /api/v3/data` (guarded by the API keys), `GET /` (overview, `?app=`),
//! `GET /user?app=&device=&user=` (App Usage), `GET /api/live`, `GET /api/overview`,
//! `GET /api/user`, `GET /api/users`, `GET /api/apps`, `GET /api/stats`, `GET /api/datapoints`,
//! `GET /api/requests`, `DELETE /api/devices/{device_id}` (these need the dashboard token when
//! one is set), `GET|POST /admin/faults` and `POST /admin/reset` (only with test controls), and
//! `GET /healthz`.
//!
//! Layers, each using only those below it: `text` (escaping, dates), `batch` (the wire format),
//! `store` (the `Store` and `Reader` traits, SQLite), `chart` and `dashboard` (the pages),
//! `server` (routing, ingest, keys, the token, TLS).

mod batch;
mod chart;
mod dashboard;
mod faults;
mod server;
mod store;
mod text;
mod tls;

pub use batch::CONTEXT_KEYS;
pub use faults::{Faults, DEFAULT_REDIRECT_LOCATION, HUGE_BODY_BYTES};
pub use store::Database;
pub use text::utc_timestamp;
pub use tls::TlsFiles;

use server::Shared;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// The address to listen on (127.0.0.1 by default). Any other than a loopback address needs
    /// a dashboard token.
    pub bind: IpAddr,
    pub database: Database,
    /// The API keys a batch may carry; empty: any key (each is still stored as the app).
    pub api_keys: Vec<String>,
    /// What the pages and the `/api/` reads and deletes need, when set.
    pub dashboard_token: Option<String>,
    /// Whether `/admin/faults` and `/admin/reset` exist over HTTP (`set_faults` and `reset`
    /// work either way, in the same process).
    pub test_controls: bool,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsFiles>,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions {
            port: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            database: Database::Memory,
            api_keys: Vec::new(),
            dashboard_token: None,
            test_controls: false,
            tls: None,
        }
    }
}

impl CollectorOptions {
    /// Keeps the data in `path` (created if missing), across restarts.
    pub fn with_db_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.database = Database::File(path.into());
        self
    }

    /// Turns on `/admin/faults` and `/admin/reset` over HTTP.
    pub fn with_test_controls(mut self) -> Self {
        self.test_controls = true;
        self
    }

    /// Accepts only batches carrying one of `keys`.
    pub fn with_api_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.api_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Guards the pages and the `/api/` reads and deletes with `token`.
    pub fn with_dashboard_token(mut self, token: impl Into<String>) -> Self {
        self.dashboard_token = Some(token.into());
        self
    }

    /// Serves HTTPS with a PEM certificate chain and its PEM private key.
    pub fn with_tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        });
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
    /// "http://127.0.0.1:PORT" or "https://localhost:PORT" (see `url`).
    url: String,
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
        if !options.bind.is_loopback() && options.dashboard_token.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "refusing to listen on {} without a dashboard token: anyone who can reach \
                     it could read and delete the data. Set --dashboard-token (or \
                     STINT_DASHBOARD_TOKEN), or bind to 127.0.0.1",
                    options.bind
                ),
            ));
        }
        let acceptor = options.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener = TcpListener::bind(SocketAddr::from((options.bind, options.port)))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let (store, reader) = store::open(&options.database).map_err(|error| {
            std::io::Error::other(format!(
                "cannot open the database {}: {error}",
                options.database
            ))
        })?;
        let ingest_writers = store::open_ingest_writers(&options.database).map_err(|error| {
            std::io::Error::other(format!(
                "cannot open the database {}: {error}",
                options.database
            ))
        })?;
        let access = server::Access {
            api_keys: options.api_keys.iter().cloned().collect(),
            dashboard_token: options.dashboard_token.clone(),
            test_controls: options.test_controls,
        };
        let shared = Arc::new(Shared::new(store, ingest_writers, reader, access));
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
        runtime.spawn(server::accept_loop(listener, Arc::clone(&shared), acceptor));
        // Certificates name hosts rather than addresses, so HTTPS is addressed as localhost.
        let host = match (options.bind, options.tls.is_some()) {
            (bind, false) if !bind.is_unspecified() => match bind {
                IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            },
            (_, false) => "127.0.0.1".to_string(),
            (_, true) => "localhost".to_string(),
        };
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        Ok(Collector {
            port,
            url: format!("{scheme}://{host}:{port}"),
            shared,
            runtime: Some(runtime),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "http://127.0.0.1:PORT" (the bind address, when it is not 0.0.0.0), or
    /// "https://localhost:PORT" with TLS: the SDK's base URL, and the dashboard's address.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The address of the "App Usage" page of a user (`None`: the anonymous user) on a device.
    pub fn user_page_url(&self, device_id: &str, user_id: Option<&str>) -> String {
        format!(
            "{}{}",
            self.url(),
            dashboard::user_link(None, device_id, user_id)
        )
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
            .read(|reader| store::users_json(reader, None))
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

    /// Deletes the datapoints older than `age` (what `--retain-days` runs at start-up and
    /// hourly); returns how many.
    pub fn delete_older_than(&self, age: Duration) -> std::io::Result<usize> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let cutoff = now.saturating_sub(age).as_secs_f64();
        self.shared
            .store()
            .delete_before(cutoff)
            .map_err(|error| std::io::Error::other(format!("deleting old datapoints: {error}")))
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
