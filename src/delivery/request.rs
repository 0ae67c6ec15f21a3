//! The request: one batch's body, gzip-compressed when that pays, POSTed over HTTPS with the
//! platform's TLS (glean-core's `upload/request.rs`). Requests run on a thread of their own
//! (`worker::Requests`), so a server that never answers cannot hold up shutdown.

use std::io::{Read, Write};
use std::time::Duration;

use super::response::{judge, parse_retry_after, Outcome};

/// The `User-Agent` and the envelope's `sdk_version`.
pub const SDK_VERSION: &str = concat!("stint/", env!("CARGO_PKG_VERSION"));
const MAX_RESPONSE_BYTES: u64 = 16 * 1024;
/// Room for the response's headers (ureq's connection buffer; a larger head is an error).
const INPUT_BUFFER_BYTES: usize = 32 * 1024;
/// Bodies smaller than this are not worth compressing.
const GZIP_THRESHOLD: usize = 512;

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

/// The HTTP client: the OS's TLS, no redirects, bounded time.
pub fn agent() -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    // See Cargo.toml: the OS's TLS and trust store, except where only rustls is built (the
    // condition must match Cargo.toml's, or every HTTPS request panics inside ureq).
    let tls = if cfg!(any(
        target_os = "android",
        all(target_os = "linux", target_arch = "aarch64")
    )) {
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
        // ureq's 128 KB each are zero-filled and stay resident with the pooled connection;
        // the output only chunks the body, the input must hold the response's headers.
        .input_buffer_size(INPUT_BUFFER_BYTES)
        .output_buffer_size(16 * 1024)
        .max_response_header_size(INPUT_BUFFER_BYTES)
        .user_agent(SDK_VERSION)
        .tls_config(tls)
        .build()
        .new_agent()
}

/// Sends one batch's body (`gzipped` by `compress`, or not) and judges the response; a panic
/// in the HTTP stack is a failed attempt.
pub fn send(agent: &ureq::Agent, base_url: &str, body: Vec<u8>, gzipped: bool) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        post(agent, base_url, body, gzipped)
    }))
    .unwrap_or_else(|_| Outcome::Retry {
        reason: "internal error in the HTTP client".into(),
        retry_after: None,
    })
}

fn post(agent: &ureq::Agent, base_url: &str, body: Vec<u8>, gzipped: bool) -> Outcome {
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

#[cfg(test)]
mod tests {
    use super::super::batch::body;
    use super::*;

    #[test]
    fn an_https_request_uses_the_tls_stack_this_target_was_built_with() {
        // A server that closes each connection at once: the TLS handshake starts and fails
        // with a transport error, not a panic of the HTTP client over a TLS provider that was
        // not compiled in.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                drop(connection);
            }
        });
        match send(
            &agent(),
            &format!("https://127.0.0.1:{port}"),
            b"{}".to_vec(),
            false,
        ) {
            Outcome::Retry { reason, .. } => {
                assert_ne!(reason, "internal error in the HTTP client")
            }
            other => panic!("{other:?}"),
        }
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
