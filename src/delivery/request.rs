//! Delivery over HTTPS: what a batch looks like on the wire, how a response is judged, and
//! when to try next. The worker drives it; requests run on their own short-lived thread so a
//! server that never answers cannot hold up shutdown.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime};

use crate::clock;

pub const SDK_VERSION: &str = concat!("stint/", env!("CARGO_PKG_VERSION"));
pub const MAX_BATCH_DATAPOINTS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 512 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const MAX_RESPONSE_BYTES: u64 = 16 * 1024;
/// Bodies smaller than this are not worth compressing.
const GZIP_THRESHOLD: usize = 512;

/// How a delivery attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the batch is acknowledged.
    Delivered,
    /// Network error, timeout, 408, 429, 5xx, 3xx: send the same batch again later.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// 413: send smaller batches.
    TooLarge,
    /// Other 4xx: something in the batch is rejected; bisect to find it.
    Rejected { status: u16 },
    /// 401/403: the API key is refused; keep everything.
    Unauthorized { status: u16 },
}

/// The retry state between attempts.
pub struct Delivery {
    /// When the next regular send is due (set when something becomes pending).
    scheduled: Option<Instant>,
    /// After a failure: no regular attempt before this.
    backoff_until: Option<Instant>,
    /// Retry-After: no attempt at all before this, even on request.
    not_before: Option<Instant>,
    failures: u32,
    /// Batch size limit, halved by 413 and rejections, doubled back by successes.
    pub batch_limit: usize,
    /// A send was asked for (flush, request, shutdown).
    pub requested: bool,
    pub in_flight: Option<InFlight>,
    /// The result of the request in flight, set by the request thread.
    pub outcome: Option<Outcome>,
}

/// The batch being sent: the datapoints up to `last_seq`, `count` of them.
pub struct InFlight {
    pub last_seq: u64,
    pub count: usize,
    /// The id of the only datapoint, when the batch has one (named when it is dropped).
    pub single_id: Option<String>,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            scheduled: None,
            backoff_until: None,
            not_before: None,
            failures: 0,
            batch_limit: MAX_BATCH_DATAPOINTS,
            requested: false,
            in_flight: None,
            outcome: None,
        }
    }
}

impl Delivery {
    /// Something was recorded: make sure a send is scheduled within the flush interval.
    /// Returns whether that scheduled one (the worker may have to wake sooner).
    pub fn note_recorded(&mut self, flush_interval: Duration) -> bool {
        if self.scheduled.is_some() {
            return false;
        }
        self.scheduled = Some(Instant::now() + flush_interval);
        true
    }

    /// When the next attempt is due, given whether anything is pending.
    pub fn due(&self, pending: bool) -> Option<Instant> {
        if !pending || self.in_flight.is_some() {
            return None;
        }
        let regular = if self.requested {
            None
        } else {
            Some(
                self.scheduled?
                    .max(self.backoff_until.unwrap_or(self.scheduled?)),
            )
        };
        let earliest = [regular, self.not_before].into_iter().flatten().max();
        Some(earliest.unwrap_or_else(Instant::now))
    }

    pub fn succeeded(&mut self, still_pending: bool) {
        self.failures = 0;
        self.backoff_until = None;
        self.not_before = None;
        self.batch_limit = (self.batch_limit * 2).min(MAX_BATCH_DATAPOINTS);
        // A backlog drains batch after batch; otherwise wait for the next recording.
        self.scheduled = still_pending.then(Instant::now);
        if !still_pending {
            self.requested = false;
        }
    }

    /// A failed attempt: back off exponentially with jitter (`fraction` in [0, 1)).
    pub fn failed(&mut self, retry_after: Option<Duration>, long: bool, fraction: f64) {
        self.failures = self.failures.saturating_add(1);
        let exponential = FIRST_BACKOFF
            .checked_mul(1u32 << (self.failures - 1).min(16))
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF);
        let base = if long { MAX_BACKOFF } else { exponential };
        // Jitter within [base/2, base) spreads a fleet's retries.
        let wait = base.mul_f64(0.5 + fraction / 2.0);
        let now = Instant::now();
        self.backoff_until = Some(now + wait);
        self.not_before = retry_after.map(|after| now + after);
        self.requested = false;
    }

    /// Halves the batch; returns false when it is already a single datapoint.
    pub fn shrink(&mut self, sent: usize) -> bool {
        if sent <= 1 {
            return false;
        }
        self.batch_limit = (sent / 2).max(1);
        true
    }
}

/// The request body: the envelope around datapoints in their wire form.
pub fn body(api_key: &str, device_id: &str, events: &[&[u8]]) -> Vec<u8> {
    let size: usize = events.iter().map(|e| e.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 200);
    out.extend_from_slice(b"{\"api_key\":");
    serde_json::to_writer(&mut out, api_key).expect("vec");
    out.extend_from_slice(b",\"device_id\":");
    serde_json::to_writer(&mut out, device_id).expect("vec");
    out.extend_from_slice(b",\"sdk_version\":\"");
    out.extend_from_slice(SDK_VERSION.as_bytes());
    let _ = write!(
        out,
        "\",\"time\":{:.3},\"events\":[",
        clock::seconds(clock::now_ms())
    );
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(event);
    }
    out.extend_from_slice(b"]}");
    out
}

/// Gzip-compresses `body` when that makes it smaller.
pub fn compress(body: Vec<u8>) -> (Vec<u8>, bool) {
    if body.len() < GZIP_THRESHOLD {
        return (body, false);
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    if encoder.write_all(&body).is_err() {
        return (body, false);
    }
    match encoder.finish() {
        Ok(compressed) if compressed.len() < body.len() => (compressed, true),
        _ => (body, false),
    }
}

pub fn agent() -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    // See Cargo.toml: the OS's TLS and trust store, except on Android.
    let tls = if cfg!(target_os = "android") {
        TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::WebPki)
    } else {
        TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(RootCerts::PlatformVerifier)
    }
    .build();
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(SDK_VERSION)
        .tls_config(tls)
        .build()
        .new_agent()
}

/// Sends one batch and judges the response; a panic in the HTTP stack is a failed attempt.
pub fn send(agent: &ureq::Agent, base_url: &str, body: Vec<u8>) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| post(agent, base_url, body)))
        .unwrap_or_else(|_| Outcome::Retry {
            reason: "internal error in the HTTP client".into(),
            retry_after: None,
        })
}

fn post(agent: &ureq::Agent, base_url: &str, body: Vec<u8>) -> Outcome {
    let (body, gzipped) = compress(body);
    let mut request = agent
        .post(format!("{base_url}/api/v3/data"))
        .header("Content-Type", "application/json");
    if gzipped {
        request = request.header("Content-Encoding", "gzip");
    }
    let mut response = match request.send(&body[..]) {
        Ok(response) => response,
        Err(error) => {
            return Outcome::Retry {
                reason: error.to_string(),
                retry_after: None,
            }
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    // Read a little of the body so the connection can be reused; never much.
    let mut sink = Vec::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut sink);
    judge(status, retry_after)
}

fn judge(status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        401 | 403 => Outcome::Unauthorized { status },
        413 => Outcome::TooLarge,
        408 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("HTTP {status}"),
            retry_after,
        },
        400..=499 => Outcome::Rejected { status },
        _ => Outcome::Retry {
            reason: format!("unexpected HTTP {status}"),
            retry_after,
        },
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(86_400)));
    }
    let at = parse_http_date(value)?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as u64
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else { return None };
    // Days from civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + (h * 3600 + m * 60 + s) as i64;
    let seconds = u64::try_from(seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_judged_as_the_contract_says() {
        assert_eq!(judge(200, None), Outcome::Delivered);
        assert_eq!(judge(204, None), Outcome::Delivered);
        assert_eq!(judge(401, None), Outcome::Unauthorized { status: 401 });
        assert_eq!(judge(403, None), Outcome::Unauthorized { status: 403 });
        assert_eq!(judge(413, None), Outcome::TooLarge);
        assert_eq!(judge(400, None), Outcome::Rejected { status: 400 });
        assert_eq!(judge(422, None), Outcome::Rejected { status: 422 });
        for retry in [408, 429, 500, 503, 302] {
            assert!(
                matches!(judge(retry, None), Outcome::Retry { .. }),
                "{retry}"
            );
        }
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_retry_after_is_the_floor() {
        let mut delivery = Delivery::default();
        delivery.note_recorded(Duration::ZERO);
        let mut waits = Vec::new();
        for _ in 0..12 {
            delivery.failed(None, false, 0.999);
            waits.push(delivery.backoff_until.unwrap() - Instant::now());
        }
        assert!(waits[0] <= Duration::from_secs(1) && waits[0] > Duration::from_millis(900));
        assert!(waits[1] > Duration::from_millis(1900));
        assert!(waits[11] <= MAX_BACKOFF && waits[11] > Duration::from_secs(290));
        delivery.failed(Some(Duration::from_secs(2)), false, 0.0);
        delivery.requested = true;
        let due = delivery.due(true).unwrap();
        assert!(
            due > Instant::now() + Duration::from_millis(1900),
            "a request still waits for Retry-After"
        );
    }

    #[test]
    fn bodies_are_compressed_only_when_smaller() {
        let small = body("k", "d", &[b"{}"]);
        assert!(!compress(small).1);
        let events: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("{{\"i\":{i}}}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = events.iter().map(|e| &e[..]).collect();
        let big = body("k", "d", &refs);
        let parsed: serde_json::Value = serde_json::from_slice(&big).unwrap();
        assert_eq!(parsed["events"].as_array().unwrap().len(), 100);
        assert_eq!(parsed["sdk_version"], SDK_VERSION);
        let (compressed, gzipped) = compress(big.clone());
        assert!(gzipped && compressed.len() < big.len());
    }
}
