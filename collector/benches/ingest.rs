//! Collector ingest throughput: 1,000,000 datapoints (override with `STINT_BENCH_DATAPOINTS`)
//! posted as the SDK posts them, by `STINT_BENCH_CLIENTS` (default 16) concurrent clients on
//! kept-alive connections, into a collector with a file database (WAL), as deployed; and, when
//! `STINT_TEST_POSTGRES_URL` names a server, the same into a fresh PostgreSQL database there:
//!
//!     scripts/collector-postgres.sh cargo bench -p stint-collector --bench ingest
//!
//! The wire format is the SDK's (`src/delivery/batch.rs`, `src/storage/datapoint.rs`): batches of at most 500
//! datapoints from one device, gzip (fast) above 512 bytes, `Content-Type: application/json`,
//! `User-Agent: stint/<version>`. Each simulated session is an `ss` with the device context, three
//! custom events and an `se`. Bodies are built and compressed before the clock starts: on a real
//! deployment the devices do that work, not the collector's machine. The run then checks that
//! every datapoint was stored exactly once, and re-sends a tenth of the batches to measure
//! duplicate absorption.

use flate2::write::GzEncoder;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stint_collector::{Collector, CollectorOptions, Database};

const BATCH_DATAPOINTS: usize = 500;
const DEVICES: usize = 2_000;
const SDK_VERSION: &str = "stint/0.1.0";
/// 2025-11-01 00:00:00 UTC; sessions spread over the following 30 days.
const FIRST_DAY: f64 = 1_761_955_200.0;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn uuid(n: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n >> 32) as u32,
        (n >> 16) & 0xffff,
        (n >> 4) & 0xfff,
        n & 0xfff,
        n
    )
}

/// One device's datapoints in the SDK's wire form, `sessions` sessions of five datapoints.
fn device_datapoints(device: usize, sessions: usize, next_id: &mut u64) -> Vec<String> {
    let mut out = Vec::with_capacity(sessions * 5);
    let user = format!("\"user-{device}\"");
    for s in 0..sessions {
        let session = uuid(0xfeed_0000_0000 + (device * 100_000 + s) as u64);
        let start = FIRST_DAY + ((device * 7 + s * 13) % 30) as f64 * 86_400.0 + (s * 600) as f64;
        let length = 20.0 + ((device + s * 31) % 1800) as f64;
        let mut id = || {
            *next_id += 1;
            uuid(*next_id)
        };
        out.push(format!(
            "{{\"id\":\"{}\",\"name\":\"ss\",\"time\":{start:.3},\"session_id\":\"{session}\",\
\"user_id\":{user},\"data\":{{\"app_version\":\"2.{}.0\",\"os_name\":\"Android\",\
\"os_version\":\"14\",\"device_model\":\"Pixel 8\",\"arch\":\"aarch64\",\"locale\":\"en-GB\"}}}}",
            id(),
            device % 5
        ));
        for (k, name) in ["level_up", "purchase", "level_up"].iter().enumerate() {
            out.push(format!(
                "{{\"id\":\"{}\",\"name\":\"ce\",\"time\":{:.3},\"session_id\":\"{session}\",\
\"user_id\":{user},\"data\":{{\"n\":\"{name}\",\"p\":{{\"level\":{k}}}}}}}",
                id(),
                start + k as f64
            ));
        }
        out.push(format!(
            "{{\"id\":\"{}\",\"name\":\"se\",\"time\":{:.3},\"session_id\":\"{session}\",\
\"user_id\":{user},\"data\":{{\"d\":{length:.3}}}}}",
            id(),
            start + length
        ));
    }
    out
}

/// The envelope of `src/delivery/batch.rs`, gzipped as `src/delivery/request.rs` does.
fn request_body(device: usize, events: &[String]) -> (Vec<u8>, bool) {
    let body = format!(
        "{{\"api_key\":\"bench-key\",\"device_id\":\"device-{device}\",\"sdk_version\":\"{SDK_VERSION}\",\
\"time\":{:.3},\"events\":[{}]}}",
        FIRST_DAY + 31.0 * 86_400.0,
        events.join(",")
    );
    if body.len() < 512 {
        return (body.into_bytes(), false);
    }
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body.as_bytes()).unwrap();
    (encoder.finish().unwrap(), true)
}

fn request_bytes(body: &(Vec<u8>, bool)) -> Vec<u8> {
    let mut head = format!(
        "POST /api/v3/data HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {SDK_VERSION}\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.0.len()
    );
    if body.1 {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body.0);
    bytes
}

/// Reads one Content-Length-framed response; returns its status.
fn read_status(reader: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    status
}

/// The calling thread's CPU time (Linux; elsewhere zero: the clients' share is then counted as
/// the collector's).
fn thread_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    return cpu_time(libc::RUSAGE_THREAD);
    #[cfg(not(target_os = "linux"))]
    return Duration::ZERO;
}

/// User + system CPU time of this process (`libc::RUSAGE_SELF`: every thread, ended ones
/// included) or of the calling thread (`libc::RUSAGE_THREAD`).
fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// What one [`send_all`] took: wall time, the process's CPU time meanwhile and its clients'
/// share of it (the rest is the collector's, since nothing else runs in this process then).
struct Sent {
    elapsed: Duration,
    process_cpu: Duration,
    clients_cpu: Duration,
}

/// Sends every request across `clients` kept-alive connections.
fn send_all(port: u16, requests: &Arc<Vec<Vec<u8>>>, clients: usize) -> Sent {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_time(libc::RUSAGE_SELF);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let requests = Arc::clone(requests);
            let next = Arc::clone(&next);
            std::thread::spawn(move || {
                let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(index) else {
                        return thread_cpu();
                    };
                    writer.write_all(request).unwrap();
                    assert_eq!(read_status(&mut reader), 200, "batch {index} refused");
                }
            })
        })
        .collect();
    let clients_cpu = workers.into_iter().map(|w| w.join().unwrap()).sum();
    Sent {
        elapsed: started.elapsed(),
        process_cpu: cpu_time(libc::RUSAGE_SELF).saturating_sub(cpu_before),
        clients_cpu,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing to run.
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let total = env_number("STINT_BENCH_DATAPOINTS", 1_000_000);
    let clients = env_number("STINT_BENCH_CLIENTS", 16);
    let sessions_total = total.div_ceil(5);
    println!("building {total} datapoints ({sessions_total} sessions on {DEVICES} devices) ...");
    let mut next_id = 0;
    let mut bodies = Vec::new();
    let mut batch_sizes = Vec::new();
    let mut datapoints = 0;
    let mut raw_bytes = 0;
    for device in 0..DEVICES {
        let sessions = sessions_total / DEVICES + usize::from(device < sessions_total % DEVICES);
        let mut events = device_datapoints(device, sessions, &mut next_id);
        events.truncate(total - datapoints);
        datapoints += events.len();
        for chunk in events.chunks(BATCH_DATAPOINTS) {
            raw_bytes += chunk.iter().map(|e| e.len() + 1).sum::<usize>();
            bodies.push(request_bytes(&request_body(device, chunk)));
            batch_sizes.push(chunk.len());
        }
    }
    let wire_bytes: usize = bodies.iter().map(Vec::len).sum();
    let requests = Arc::new(bodies);

    // STINT_BENCH_DB=path keeps the database afterwards (to try the dashboard on it).
    let kept = std::env::var_os("STINT_BENCH_DB").map(std::path::PathBuf::from);
    let dir = std::env::temp_dir().join(format!("stint-collector-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = kept.clone().unwrap_or_else(|| dir.join("bench.db"));
    if kept.is_some() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    println!(
        "{} batches ({:.1} MB JSON, {:.1} MB gzipped), {clients} clients",
        requests.len(),
        raw_bytes as f64 / 1e6,
        wire_bytes as f64 / 1e6,
    );
    let run = Run {
        requests: &requests,
        batch_sizes: &batch_sizes,
        datapoints,
        clients,
    };
    run.measure(
        &format!("SQLite {}", db.display()),
        CollectorOptions::default().with_db_file(&db),
    );
    let db_bytes = std::fs::metadata(&db).map_or(0, |m| m.len())
        + std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len());
    println!("SQLite database: {:.1} MB", db_bytes as f64 / 1e6);
    let _ = std::fs::remove_dir_all(&dir);

    if let Ok(server) = std::env::var("STINT_TEST_POSTGRES_URL") {
        let name = format!("stint_bench_{}", std::process::id());
        let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let (base, _) = server.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        run.measure(
            &format!("PostgreSQL {url}"),
            CollectorOptions {
                database: Database::Postgres(url),
                ..CollectorOptions::default()
            },
        );
        let size: i64 = admin
            .query_one("SELECT pg_database_size($1)", &[&name])
            .unwrap()
            .get(0);
        println!("PostgreSQL database: {:.1} MB", size as f64 / 1e6);
        admin
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
    } else {
        println!("PostgreSQL: not measured (run through scripts/collector-postgres.sh)");
    }
}

/// One measurement's inputs.
struct Run<'a> {
    requests: &'a Arc<Vec<Vec<u8>>>,
    batch_sizes: &'a [usize],
    datapoints: usize,
    clients: usize,
}

impl Run<'_> {
    /// Ingest, duplicates and dashboard polls against a fresh collector with `options`.
    fn measure(&self, label: &str, options: CollectorOptions) {
        let (requests, datapoints, clients) = (self.requests, self.datapoints, self.clients);
        let collector = Collector::start_with(options).unwrap();
        println!("== {label}");
        let sent = send_all(collector.port(), requests, clients);
        let elapsed = sent.elapsed;
        let stored = collector.datapoint_count();
        assert_eq!(stored, datapoints, "every datapoint stored exactly once");
        let users = collector.users_json()["users"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(users, DEVICES.min(datapoints.div_ceil(5)));
        let rate = datapoints as f64 / elapsed.as_secs_f64();
        println!(
            "ingest: {datapoints} datapoints in {:.2} s = {rate:.0} datapoints/s ({:.0} batches/s)",
            elapsed.as_secs_f64(),
            requests.len() as f64 / elapsed.as_secs_f64()
        );
        // Load-independent: CPU time per datapoint, the collector's (all its threads) and the
        // 16 clients' (sending, reading answers), from getrusage.
        let collector_cpu = sent.process_cpu.saturating_sub(sent.clients_cpu);
        let per_datapoint = |cpu: Duration| cpu.as_secs_f64() * 1e6 / datapoints as f64;
        println!(
            "ingest CPU: collector {:.2} s = {:.2} us/datapoint; clients {:.2} s = {:.2} us/datapoint",
            collector_cpu.as_secs_f64(),
            per_datapoint(collector_cpu),
            sent.clients_cpu.as_secs_f64(),
            per_datapoint(sent.clients_cpu),
        );

        // Re-sent batches (a client retrying after a lost answer): de-duplicated, nothing stored.
        let resent: Vec<Vec<u8>> = requests.iter().step_by(10).cloned().collect();
        let resent_datapoints: usize = self.batch_sizes.iter().step_by(10).sum();
        let resent = Arc::new(resent);
        let elapsed = send_all(collector.port(), &resent, clients).elapsed;
        assert_eq!(
            collector.datapoint_count(),
            datapoints,
            "duplicates absorbed"
        );
        println!(
            "re-sent: {} batches ({resent_datapoints} duplicate datapoints) in {:.2} s = {:.0} datapoints/s",
            resent.len(),
            elapsed.as_secs_f64(),
            resent_datapoints as f64 / elapsed.as_secs_f64()
        );

        // What a dashboard poll costs on this much data (on the read connection: ingest goes
        // on meanwhile).
        for path in [
            "/api/live?view=overview",
            "/api/live?view=user&device=device-7&user=user-7",
        ] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes();
            let stream = TcpStream::connect(("127.0.0.1", collector.port())).unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut best = Duration::MAX;
            for _ in 0..5 {
                let started = Instant::now();
                writer.write_all(&request).unwrap();
                assert_eq!(read_status(&mut reader), 200);
                best = best.min(started.elapsed());
            }
            println!("GET {path}: {:.1} ms (best of 5)", best.as_secs_f64() * 1e3);
        }
    }
}
