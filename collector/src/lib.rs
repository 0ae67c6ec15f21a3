//! Stint's local collector: the loopback server that integrators run to watch their sessions
//! arrive, and that every test suite uses as its fixture (with fault injection).
//!
//! ```no_run
//! let collector = stint_collector::Collector::start().unwrap();
//! println!("send to {}/api/v3/data, watch {}/", collector.url(), collector.url());
//! collector.wait_for_datapoints(3, std::time::Duration::from_secs(10));
//! ```
//!
//! HTTP endpoints: `POST /api/v3/data`, `GET /` (dashboard), `GET /api/users`,
//! `GET /api/stats`, `GET /api/datapoints`, `GET /api/requests`, `GET|POST /admin/faults`,
//! `POST /admin/reset`, `GET /healthz`.

mod batch;
mod dashboard;
mod faults;
mod http;
mod server;
mod store;

pub use faults::{Faults, DEFAULT_REDIRECT_LOCATION, HUGE_BODY_BYTES};

use server::Shared;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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
    accept_thread: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl Collector {
    /// Starts on a free port.
    pub fn start() -> std::io::Result<Collector> {
        Collector::start_on_port(0)
    }

    /// Starts on `port` (0 picks a free one). Fails if the port is taken.
    pub fn start_on_port(port: u16) -> std::io::Result<Collector> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::new());
        let for_thread = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("stint-collector-accept".into())
            .spawn(move || server::accept_loop(listener, for_thread))?;
        Ok(Collector {
            port,
            shared,
            accept_thread: Some(accept_thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "http://127.0.0.1:PORT": the SDK's base URL, and the dashboard's address.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Accepted datapoints, de-duplicated by id, in arrival order, exactly as sent.
    pub fn datapoints(&self) -> Vec<serde_json::Value> {
        self.shared.state().store.datapoints().to_vec()
    }

    /// `datapoints().len()` without the copy (cheap enough to poll).
    pub fn datapoint_count(&self) -> usize {
        self.shared.state().store.datapoints().len()
    }

    /// Datapoints in accepted batches, duplicates included.
    pub fn datapoints_received_total(&self) -> usize {
        self.shared.state().store.received_total()
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
        self.shared.state().store.users_json()
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
        let mut state = self.shared.state();
        state.store = Default::default();
        state.requests.clear();
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
        let Some(accept_thread) = self.accept_thread.take() else {
            return;
        };
        // accept() has no timeout: a connection of our own wakes it up to see the flag.
        let woke = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            Duration::from_secs(5),
        )
        .is_ok();
        if !woke {
            return; // Leave the thread behind rather than block the caller forever.
        }
        let workers = accept_thread.join().unwrap_or_default();
        self.shared.shut_down_connections();
        for worker in workers {
            let _ = worker.join();
        }
    }
}
