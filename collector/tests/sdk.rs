//! The SDK (the `stint` crate) delivering to the collector end to end: a key the collector does
//! not know gets 401 while the SDK keeps the data and says why, and delivery over HTTPS to a
//! collector whose certificate comes from a test CA that the SDK is made to trust.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stint::dispatch::{self, LogLevel};
use stint::input::CustomEvent;
use stint::{Options, Tracker};
use stint_collector::{Collector, CollectorOptions};

/// One tracker per process: the tests take turns.
static TURN: Mutex<()> = Mutex::new(());

const RIGHT_KEY: &str = "app-key-right";
const WRONG_KEY: &str = "app-key-wrong";
/// Generous: a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stint-collector-sdk-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tracker(key: &str, collector_url: String, dir: &Path) -> Tracker {
    let options = Options {
        data_directory: Some(dir.join("data")),
        base_url: Some(collector_url),
        // Only explicit flushes send.
        flush_interval_seconds: 3600,
        ..Options::default()
    };
    Tracker::start(key, options).expect("starting the SDK")
}

fn record(tracker: &Tracker, count: usize) {
    tracker.open_session().unwrap();
    for n in 0..count {
        tracker
            .log_custom_event(CustomEvent::new(&format!("e{n}"), None).unwrap())
            .unwrap();
    }
}

/// Log lines of the SDK, while the test runs.
fn capture_logs() -> Arc<Mutex<Vec<(LogLevel, String)>>> {
    let lines: Arc<Mutex<Vec<(LogLevel, String)>>> = Arc::default();
    let sink = Arc::clone(&lines);
    dispatch::set_log_handler(Some(Arc::new(move |level, message: &str| {
        sink.lock().unwrap().push((level, message.to_string()));
    })));
    lines
}

#[test]
fn a_wrong_key_gets_401_nothing_is_stored_and_the_sdk_keeps_the_data() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let collector =
        Collector::start_with(CollectorOptions::default().with_api_keys([RIGHT_KEY])).unwrap();
    let dir = fresh_dir("401");
    let logs = capture_logs();

    let wrong = tracker(WRONG_KEY, collector.url(), &dir);
    record(&wrong, 5);
    // The refused flush does not complete: the data stays queued.
    assert!(wrong.flush(Duration::from_secs(3)).is_err());
    let stats = wrong.stats().unwrap();
    assert_eq!(stats.datapoints_delivered, 0);
    assert_eq!(stats.datapoints_dropped, 0, "a 401 never drops data");
    assert_eq!(
        stats.datapoints_pending, 6,
        "the session start and 5 events are kept"
    );
    let requests = collector.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| r.status == 401), "{requests:?}");
    assert_eq!(
        collector.datapoint_count(),
        0,
        "nothing of a refused batch is stored"
    );
    assert_eq!(collector.datapoints_received_total(), 0);
    // The SDK says why, without the key.
    let deadline = std::time::Instant::now() + PATIENCE;
    let said = loop {
        let said = logs.lock().unwrap().iter().any(|(level, message)| {
            *level == LogLevel::Error && message.to_lowercase().contains("api key")
        });
        if said || std::time::Instant::now() > deadline {
            break said;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        said,
        "no error about the API key: {:?}",
        logs.lock().unwrap()
    );
    assert!(logs
        .lock()
        .unwrap()
        .iter()
        .all(|(_, message)| !message.contains(WRONG_KEY)));
    wrong.shutdown(Duration::from_secs(5)).ok();

    // The right key delivers, and its datapoints are stored under it as the app.
    let right = tracker(RIGHT_KEY, collector.url(), &fresh_dir("401-right"));
    record(&right, 3);
    right.flush(PATIENCE).expect("the right key delivers");
    assert_eq!(right.stats().unwrap().datapoints_delivered, 4);
    right.shutdown(Duration::from_secs(5)).ok();
    assert_eq!(collector.datapoint_count(), 4);
    assert_eq!(collector.requests().last().unwrap().status, 200);
    dispatch::set_log_handler(None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA, and a certificate for localhost that it signed, as PEM files in `dir`:
/// (ca.pem, cert.pem, key.pem).
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Stint collector test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();

    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

/// On Linux x86_64 the SDK verifies with OpenSSL (native-tls), whose default trust store
/// `SSL_CERT_FILE` replaces: pointing it at the test CA makes the collector's certificate
/// trusted, as a deployment's real CA would be.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn the_sdk_delivers_over_https_with_a_ca_it_trusts() {
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = fresh_dir("tls");
    let (ca, cert, key) = test_pki(&dir);
    // The tests take turns, so no other tracker reads the environment meanwhile.
    std::env::set_var("SSL_CERT_FILE", &ca);
    let collector = Collector::start_with(
        CollectorOptions::default()
            .with_api_keys([RIGHT_KEY])
            .with_tls(&cert, &key),
    )
    .unwrap();
    assert!(collector.url().starts_with("https://localhost:"));

    let sdk = tracker(RIGHT_KEY, collector.url(), &dir);
    record(&sdk, 10);
    sdk.flush(PATIENCE).expect("delivery over HTTPS");
    let stats = sdk.stats().unwrap();
    sdk.shutdown(Duration::from_secs(5)).ok();
    assert_eq!(stats.datapoints_delivered, 11);
    assert_eq!(collector.datapoint_count(), 11);
    let custom: Vec<Value> = collector
        .datapoints()
        .into_iter()
        .filter(|d| d["name"] == "ce")
        .collect();
    assert_eq!(custom.len(), 10);

    // Plain HTTP to the HTTPS port gets no HTTP answer: the port really speaks TLS.
    use std::io::{Read, Write};
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", collector.port())).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served"
    );
    std::env::remove_var("SSL_CERT_FILE");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A certificate that is not PEM, or a key that does not go with it: a clear error at start.
#[test]
fn unusable_tls_files_are_named_at_start() {
    let dir = fresh_dir("tls-bad");
    let (_, cert, key) = test_pki(&dir);
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let error = Collector::start_with(CollectorOptions::default().with_tls(&not_pem, &key))
        .err()
        .expect("refused");
    assert!(error.to_string().contains("not.pem"), "{error}");
    let other_key = KeyPairPem::new(&dir);
    let error = Collector::start_with(CollectorOptions::default().with_tls(&cert, &other_key.0))
        .err()
        .expect("refused");
    assert!(error.to_string().contains("does not go with"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A key pair's private key, written as PEM, that no certificate here goes with.
struct KeyPairPem(PathBuf);

impl KeyPairPem {
    fn new(dir: &Path) -> KeyPairPem {
        let path = dir.join("other-key.pem");
        std::fs::write(&path, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
        KeyPairPem(path)
    }
}

/// The binary's flags: `--tls-cert` and `--tls-key` serve HTTPS (the banner says so), and a
/// missing file stops it at start with the file named.
#[test]
fn the_binary_serves_https_with_its_tls_flags() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = fresh_dir("tls-binary");
    let (_, cert, key) = test_pki(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_stint-collector"))
        .args(["--port", "0", "--db", ":memory:", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        first.starts_with("stint-collector listening on https://localhost:"),
        "{first}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_stint-collector"))
        .args(["--port", "0", "--db", ":memory:", "--tls-key"])
        .arg(&key)
        .arg("--tls-cert")
        .arg(dir.join("missing.pem"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.pem"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
