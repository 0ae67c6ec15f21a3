//! A hostile network: a collector that answers garbage, an endless body, a 10 MB body or a
//! redirect to another host, and an https:// endpoint with an untrusted certificate or no TLS
//! at all. Whatever it does, nothing is marked delivered that was not acknowledged with a 2xx
//! (`datapoints_delivered` stays 0 and `datapoints_pending` unchanged while the fault lasts), the
//! process's peak memory stays bounded, and once the fault clears everything is delivered once.
//! (Linux: it reads /proc/self and uses OpenSSL for its TLS fixture, which Linux aarch64, on
//! rustls, does not build: Cargo.toml.)
#![cfg(all(target_os = "linux", not(target_arch = "aarch64")))]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};
use parking_lot::Mutex;
use stint_collector::{Collector, Faults};

const EVENTS: usize = 50;
/// How much the peak resident memory may grow while a fault is served. A client that buffered
/// the 10 MB body would exceed it; the endless body would exceed any bound.
const MAX_PEAK_GROWTH_KB: u64 = 8 * 1024;

// ---- memory ------------------------------------------------------------------------------------

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Measures the peak resident memory reached from now on, relative to now.
struct PeakMemory {
    rss_before_kb: u64,
    resettable: bool,
}

impl PeakMemory {
    fn start() -> PeakMemory {
        // Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS (Linux >= 4.0).
        let resettable = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        PeakMemory {
            rss_before_kb: status_kb("VmRSS:"),
            resettable,
        }
    }

    /// Growth in KB of the peak (or, where the peak cannot be reset, of the current RSS).
    fn growth_kb(&self) -> u64 {
        let now = if self.resettable {
            status_kb("VmHWM:")
        } else {
            status_kb("VmRSS:")
        };
        now.saturating_sub(self.rss_before_kb)
    }
}

// ---- log capture ---------------------------------------------------------------------------------

static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn capture_log(
    _: StintLogLevel,
    message: *const std::ffi::c_char,
    _: *mut std::ffi::c_void,
) {
    let message = unsafe { std::ffi::CStr::from_ptr(message) };
    LOGS.lock().push(message.to_string_lossy().into_owned());
}

fn is_failure(line: &str) -> bool {
    line.contains("delivery to") && line.contains(" failed: ")
}

/// The reasons the library logged for failed attempts so far (then forgets them).
fn failure_reasons() -> Vec<String> {
    assert!(wait_for(Duration::from_secs(10), || LOGS
        .lock()
        .iter()
        .any(|l| is_failure(l))));
    std::mem::take(&mut *LOGS.lock())
        .into_iter()
        .filter(|l| is_failure(l))
        .collect()
}

/// Waits until the library has settled `attempts` failed attempts: each is logged once settled
/// (the log level is debug: every one, not only the first of a streak). The explicit signal
/// that no attempt is still running when a test checks that nothing was delivered.
fn wait_settled(what: &str, attempts: usize) {
    let settled = || LOGS.lock().iter().filter(|l| is_failure(l)).count();
    assert!(
        wait_for(Duration::from_secs(60), || settled() >= attempts),
        "{what}: {} of {attempts} attempts settled",
        settled()
    );
}

// ---- helpers -------------------------------------------------------------------------------------

fn record(prefix: &str) -> Vec<String> {
    (0..EVENTS)
        .map(|i| {
            let name = format!("{prefix}-{i:03}");
            assert_eq!(event(&name, Some(r#"{"k":1}"#)), StintStatus::Ok);
            name
        })
        .collect()
}

/// Delivery is only ever by request here (the interval is a day), so every attempt is ours.
fn init_against(dir: &std::path::Path, base_url: &str) {
    LOGS.lock().clear();
    unsafe { stint_set_log_handler(Some(capture_log), std::ptr::null_mut()) };
    init_ok(
        dir,
        &format!(r#""baseUrl":"{base_url}","flushIntervalInSeconds":86400,"logLevel":"debug""#),
    );
}

fn assert_nothing_delivered(what: &str) {
    let stats = stats();
    assert_eq!(stats.datapoints_delivered, 0, "{what}: {stats:?}");
    assert_eq!(stats.datapoints_pending, EVENTS as u64, "{what}: {stats:?}");
    assert_eq!(stats.datapoints_dropped, 0, "{what}: {stats:?}");
}

/// Flushes (each flush asks for an attempt at once, past any backoff) until `done`; every flush
/// must time out, and nothing may count as delivered meanwhile.
fn flush_while_faulty(what: &str, mut done: impl FnMut() -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut flushes = 0;
    while !done() {
        assert_eq!(
            stint_flush(500),
            StintStatus::Timeout,
            "{what}: {}",
            last_error()
        );
        assert_nothing_delivered(what);
        flushes += 1;
        assert!(
            Instant::now() < deadline,
            "{what}: the fault was never served"
        );
    }
    flushes
}

fn flush_until_ok() {
    let deadline = Instant::now() + Duration::from_secs(120);
    while stint_flush(5_000) != StintStatus::Ok {
        assert!(Instant::now() < deadline, "{}", last_error());
    }
}

/// The collector holds exactly `names`, each once, and the counters agree.
fn assert_delivered_once(collector: &Collector, names: &[String]) {
    let mut delivered: Vec<String> = named(&collector.datapoints(), "ce")
        .iter()
        .map(|d| d["data"]["n"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    let mut expected = names.to_vec();
    expected.sort();
    assert_eq!(delivered, expected);
    let stats = stats();
    assert_eq!(stats.datapoints_delivered, names.len() as u64, "{stats:?}");
    assert_eq!(stats.datapoints_pending, 0, "{stats:?}");
}

/// Runs one collector fault: `faults` must consume a counter per faulted request, and
/// `remaining` reads that counter.
fn survive_collector_fault(
    name: &str,
    faults: Faults,
    remaining: fn(&Faults) -> u32,
    fault_label: &str,
) -> (usize, u64) {
    let collector = Collector::start().unwrap();
    let dir = fresh_dir(name);
    init_against(&dir, &collector.url());
    let names = record(name);
    collector.set_faults(faults);
    let memory = PeakMemory::start();
    let flushes = flush_while_faulty(name, || remaining(&collector.faults()) == 0);
    let growth = memory.growth_kb();
    let faulted = collector
        .requests()
        .iter()
        .filter(|r| r.fault.as_deref() == Some(fault_label))
        .count();
    assert!(faulted >= 1, "{name}: {:?}", collector.requests());
    // The attempt that met the last fault may still be settling: it must not count either.
    wait_settled(name, faulted);
    assert_nothing_delivered(name);
    assert!(
        growth <= MAX_PEAK_GROWTH_KB,
        "{name}: peak memory grew by {growth} KB"
    );
    assert_eq!(collector.datapoint_count(), 0, "{name}: nothing stored yet");

    flush_until_ok();
    assert_delivered_once(&collector, &names);
    assert_eq!(stint_shutdown(10_000), StintStatus::Ok);
    eprintln!("{name}: {faulted} faulted attempts over {flushes} flushes, peak memory +{growth} KB, then {EVENTS} delivered once");
    (faulted, growth)
}

// ---- the collector's faults ------------------------------------------------------------------

#[test]
fn garbage_answers_deliver_nothing_until_a_real_answer_comes() {
    let _turn = serial();
    survive_collector_fault(
        "garbage",
        Faults {
            garbage_next: 3,
            ..Faults::default()
        },
        |f| f.garbage_next,
        "garbage",
    );
}

#[test]
fn an_endless_error_body_is_not_read_to_its_end() {
    let _turn = serial();
    survive_collector_fault(
        "endless-503",
        Faults {
            endless_body_next: 3,
            hostile_status: 503,
            ..Faults::default()
        },
        |f| f.endless_body_next,
        "endless_body",
    );
}

#[test]
fn a_10_mb_error_body_is_not_buffered() {
    let _turn = serial();
    survive_collector_fault(
        "huge-500",
        Faults {
            huge_body_next: 3,
            hostile_status: 500,
            ..Faults::default()
        },
        |f| f.huge_body_next,
        "huge_body",
    );
}

/// A 2xx is an acknowledgement even with a hostile body: delivered, once, without reading the
/// body to its end (the collector stores the batch before streaming the body, as a real server
/// that committed it would).
#[test]
fn a_2xx_with_an_endless_or_10_mb_body_is_an_acknowledgement_read_only_in_part() {
    let _turn = serial();
    for (name, faults) in [
        (
            "endless-200",
            Faults {
                endless_body_next: 1,
                ..Faults::default()
            },
        ),
        (
            "huge-200",
            Faults {
                huge_body_next: 1,
                ..Faults::default()
            },
        ),
    ] {
        let collector = Collector::start().unwrap();
        collector.set_faults(faults);
        init_against(&fresh_dir(name), &collector.url());
        let names = record(name);
        let memory = PeakMemory::start();
        let started = Instant::now();
        assert_eq!(
            stint_flush(60_000),
            StintStatus::Ok,
            "{name}: {}",
            last_error()
        );
        let took = started.elapsed();
        let growth = memory.growth_kb();
        assert_eq!(collector.requests()[0].status, 200, "{name}");
        assert_delivered_once(&collector, &names);
        assert!(
            growth <= MAX_PEAK_GROWTH_KB,
            "{name}: peak memory grew by {growth} KB"
        );
        assert!(took < Duration::from_secs(30), "{name}: took {took:?}");
        assert_eq!(stint_shutdown(10_000), StintStatus::Ok);
        eprintln!("{name}: acknowledged in {took:?}, peak memory +{growth} KB");
    }
}

/// Counts connections to another loopback host, to prove that a redirect is never followed.
struct Sniffer {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sniffer {
    fn start(host: &str) -> Sniffer {
        let listener = TcpListener::bind((host, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (connections, stop) = (connections.clone(), stop.clone());
            // Blocking accepts; `drop` wakes the last one with a connection of its own.
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if stream.is_ok() {
                        connections.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        Sniffer {
            address,
            connections,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_redirect_to_another_host_is_not_followed_and_delivers_nothing() {
    let _turn = serial();
    let other_host = Sniffer::start("127.0.0.2");
    survive_collector_fault(
        "redirect",
        Faults {
            redirect_next: 3,
            redirect_location: Some(format!("http://{}/api/v3/data", other_host.address)),
            ..Faults::default()
        },
        |f| f.redirect_next,
        "redirect",
    );
    // A positive control that is also the signal: our own connection is counted, and the
    // sniffer accepts in order, so any connection the library made was counted before it.
    let _ours = TcpStream::connect(other_host.address).unwrap();
    assert!(wait_for(Duration::from_secs(30), || other_host
        .connections
        .load(Ordering::Relaxed)
        >= 1));
    assert_eq!(
        other_host.connections.load(Ordering::Relaxed),
        1,
        "the other host was contacted (the API key would have gone with the batch)"
    );
}

// ---- TLS -------------------------------------------------------------------------------------

/// A certificate for 127.0.0.1 and localhost, signed by its own key, valid for a day.
fn self_signed_certificate() -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "127.0.0.1").unwrap();
    let name = name.build();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder
        .set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    let names = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&builder.x509v3_context(None, None))
        .unwrap();
    builder.append_extension(names).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    (builder.build(), key)
}

/// An https:// endpoint on loopback that is not to be trusted: what it saw.
#[derive(Default)]
struct Seen {
    connections: usize,
    /// Bytes of application data (the HTTP request) that reached the server.
    request_bytes: usize,
    first_request_line: Option<String>,
    errors: Vec<String>,
}

struct HostileTls {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HostileTls {
    /// A real TLS server (OpenSSL) whose certificate is self-signed, generated now (so no CA trusts it).
    /// Its certificate, in PEM, goes to `pem_file` if given.
    fn self_signed(pem_file: Option<&std::path::Path>) -> HostileTls {
        let (certificate, key) = self_signed_certificate();
        if let Some(pem_file) = pem_file {
            std::fs::write(pem_file, certificate.to_pem().unwrap()).unwrap();
        }
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acceptor.set_private_key(&key).unwrap();
        acceptor.set_certificate(&certificate).unwrap();
        let acceptor = acceptor.build();
        HostileTls::serve(move |stream, seen| match acceptor.accept(stream) {
            Ok(mut tls) => {
                let mut buffer = [0u8; 4096];
                let n = tls.read(&mut buffer).unwrap_or(0);
                let mut seen = seen.lock();
                seen.request_bytes += n;
                let text = String::from_utf8_lossy(&buffer[..n]);
                seen.first_request_line = text.lines().next().map(str::to_owned);
            }
            Err(error) => seen.lock().errors.push(error.to_string()),
        })
    }

    /// Not TLS at all: reads the ClientHello and answers with a plaintext "200 OK".
    fn plaintext_liar() -> HostileTls {
        HostileTls::serve(|mut stream, seen| {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"accepted\":1}\n",
            );
            seen.lock()
                .errors
                .push("answered a ClientHello with HTTP".into());
        })
    }

    fn serve(handle: impl Fn(TcpStream, &Mutex<Seen>) + Send + 'static) -> HostileTls {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            // Blocking accepts; `drop` wakes the last one with a connection of its own.
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    seen.lock().connections += 1;
                    handle(stream, &seen);
                }
            })
        };
        HostileTls {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for HostileTls {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Against `server`, nothing is delivered and no request byte crosses; then, pointed at the
/// real collector, everything arrives once.
fn survive_untrusted_tls(name: &str, server: HostileTls, reason: &str) {
    let dir = fresh_dir(name);
    init_against(&dir, &server.url());
    let names = record(name);
    let flushes = flush_while_faulty(name, || server.seen.lock().connections >= 3);
    // Every connection the server saw was an attempt: wait until each is settled.
    let connections = server.seen.lock().connections;
    wait_settled(name, connections);
    assert_nothing_delivered(name);
    let reasons = failure_reasons();
    assert!(
        reasons.iter().all(|r| r.contains(reason)),
        "{name}: attempts failed for other reasons than {reason:?}: {reasons:?}"
    );
    // Shutdown gives up in time; the data stays for the next run.
    let status = stint_shutdown(1_000);
    assert!(
        matches!(status, StintStatus::Timeout | StintStatus::Ok),
        "{status:?}"
    );
    let (connections, request_bytes, errors) = {
        let seen = server.seen.lock();
        (seen.connections, seen.request_bytes, seen.errors.clone())
    };
    assert_eq!(
        request_bytes, 0,
        "{name}: the request (and its API key) reached the server"
    );

    let collector = Collector::start().unwrap();
    init_against(&dir, &collector.url());
    flush_until_ok();
    assert_delivered_once(&collector, &names);
    assert_eq!(stint_shutdown(10_000), StintStatus::Ok);
    eprintln!(
        "{name}: {connections} connections over {flushes} flushes, 0 request bytes sent, \
         client said {:?}, server saw {:?}; then {EVENTS} delivered once",
        reasons.first(),
        errors.first()
    );
}

/// The control: with the same kind of server's certificate in the trust store (`SSL_CERT_FILE`,
/// set in a child process only), the request does reach it. So the refusal above is the
/// certificate's doing, not a broken test server.
fn trusted_certificate_child() {
    let pem = std::path::PathBuf::from(std::env::var("STINT_DIR").unwrap()).join("ca.pem");
    std::fs::create_dir_all(pem.parent().unwrap()).unwrap();
    let server = HostileTls::self_signed(Some(&pem));
    std::env::set_var("SSL_CERT_FILE", &pem);
    init_against(&pem.parent().unwrap().join("data"), &server.url());
    record("trusted");
    assert_eq!(stint_request_immediate_data_flush(), StintStatus::Ok);
    assert!(wait_for(Duration::from_secs(30), || server
        .seen
        .lock()
        .request_bytes
        > 0));
    let line = server
        .seen
        .lock()
        .first_request_line
        .clone()
        .unwrap_or_default();
    println!("> request {line}");
    let _ = stint_shutdown(1_000);
}

#[test]
fn an_untrusted_certificate_is_refused_and_nothing_is_sent_over_it() {
    if child_role().as_deref() == Some("trusted-tls") {
        return trusted_certificate_child();
    }
    let _turn = serial();
    survive_untrusted_tls("self-signed", HostileTls::self_signed(None), "certificate");

    let mut control = spawn_child(
        "an_untrusted_certificate_is_refused_and_nothing_is_sent_over_it",
        "trusted-tls",
        &[("STINT_DIR", fresh_dir("trusted-tls").display().to_string())],
    );
    let mut output = String::new();
    control
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    assert!(control.wait().unwrap().success(), "{output}");
    assert!(
        output.contains("> request POST /api/v3/data HTTP/1.1"),
        "the control reached the trusted server: {output}"
    );
}

#[test]
fn an_https_endpoint_that_speaks_plaintext_delivers_nothing() {
    let _turn = serial();
    survive_untrusted_tls("plaintext-on-https", HostileTls::plaintext_liar(), "");
}
