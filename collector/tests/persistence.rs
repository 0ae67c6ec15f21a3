//! The SQLite store over HTTP: restarts keep every count, concurrent uploads all land, and the
//! session start's device context reaches the API.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use stint_collector::{Collector, CollectorOptions};

/// A fresh directory for one test's database, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "stint-collector-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("collector.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_on(db: &std::path::Path) -> Collector {
    Collector::start_with(CollectorOptions::default().with_db_file(db)).unwrap()
}

/// Everything a restart must keep, as the API reports it.
fn counts(collector: &Collector) -> (Value, Vec<Value>, usize, Value) {
    (
        collector.users_json(),
        collector.datapoints(),
        collector.datapoints_received_total(),
        get(collector.port(), "/api/overview").json(),
    )
}

#[test]
fn a_restart_on_the_same_database_keeps_every_count() {
    let dir = TempDir::new("restart");
    let collector = start_on(&dir.db());
    assert_eq!(post_batch(collector.port(), &alice_scenario()).status, 200);
    // A re-sent batch: received twice, stored once.
    assert_eq!(post_batch(collector.port(), &alice_scenario()).status, 200);
    let bob = batch(
        "dev2",
        vec![
            session_start(20, "b1", Some("bob"), 1764290000.0),
            session_end(21, "b1", Some("bob"), 1764290042.0, 42.0),
        ],
    );
    assert_eq!(post_batch(collector.port(), &bob).status, 200);
    let before = counts(&collector);
    assert_eq!(before.1.len(), 10);
    assert_eq!(before.2, 18);
    assert_eq!(user(&before.0, "alice")["sessions"], 3);
    collector.stop();

    let restarted = start_on(&dir.db());
    assert_eq!(counts(&restarted), before);
    // De-duplication spans the restart: the first run's datapoints are still known.
    let response = post_batch(restarted.port(), &alice_scenario());
    assert_eq!(response.json()["duplicates"], 8);
    assert_eq!(restarted.datapoints().len(), 10);
    assert_eq!(user(&restarted.users_json(), "alice")["sessions"], 3);
    let page = get(restarted.port(), "/user?device=dev&user=alice").text();
    assert!(
        page.contains("id=\"metric-sessions\" data-value=\"3\""),
        "{page}"
    );
}

#[test]
fn separate_in_memory_collectors_share_nothing() {
    let first = Collector::start().unwrap();
    let second = Collector::start().unwrap();
    post_batch(first.port(), &alice_scenario());
    assert_eq!(first.datapoints().len(), 8);
    assert_eq!(second.datapoints().len(), 0);
    assert_eq!(second.users_json(), json!({"users": []}));
}

#[test]
fn many_concurrent_clients_on_a_file_database_all_land_exactly_once() {
    let dir = TempDir::new("concurrent");
    let collector = start_on(&dir.db());
    let port = collector.port();
    const CLIENTS: u32 = 12;
    const BATCHES: u32 = 10;
    let senders: Vec<_> = (0..CLIENTS)
        .map(|client| {
            std::thread::spawn(move || {
                for round in 0..BATCHES {
                    let n = 10_000 + client * 100 + round;
                    let session = format!("c{client}r{round}");
                    let user_id = format!("user{client}");
                    let body = batch(
                        &format!("dev{client}"),
                        vec![
                            session_start(2 * n, &session, Some(&user_id), 1764190000.0),
                            session_end(2 * n + 1, &session, Some(&user_id), 1764190010.0, 10.0),
                        ],
                    );
                    assert_eq!(post_batch(port, &body).status, 200);
                    // Every other batch is re-sent, as a client retrying after a lost answer.
                    if round % 2 == 0 {
                        assert_eq!(post_batch(port, &body).json()["duplicates"], 2);
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    let total = (CLIENTS * BATCHES * 2) as usize;
    assert_eq!(collector.datapoints().len(), total);
    assert_eq!(collector.datapoints_received_total(), total + total / 2);
    let users = collector.users_json();
    assert_eq!(users["users"].as_array().unwrap().len(), CLIENTS as usize);
    for client in 0..CLIENTS {
        let row = user(&users, &format!("user{client}"));
        assert_eq!(row["sessions"], BATCHES);
        assert_eq!(row["sessions_ended"], BATCHES);
        assert_eq!(row["total_time"], f64::from(BATCHES) * 10.0);
    }
}

#[test]
fn the_session_start_context_reaches_the_api_and_the_pages() {
    let collector = Collector::start().unwrap();
    let mut start = session_start(1, "s1", Some("carol"), 1764190000.0);
    start["data"] = json!({"app_version": "4.2.0", "os_name": "Android", "os_version": "14",
                           "device_model": "Pixel 8", "arch": "aarch64", "locale": "en-GB"});
    let mut bare = session_start(2, "s2", Some("carol"), 1764100000.0);
    bare["data"] = json!({"os_name": "Linux"});
    assert_eq!(
        post_batch(collector.port(), &batch("dev", vec![start, bare])).status,
        200
    );
    let carol = user(&collector.users_json(), "carol").clone();
    assert_eq!(
        carol["last_sessions"][0]["context"],
        json!({"app_version": "4.2.0", "os_name": "Android", "os_version": "14",
               "device_model": "Pixel 8", "arch": "aarch64", "locale": "en-GB"})
    );
    assert_eq!(
        carol["last_sessions"][1]["context"],
        json!({"os_name": "Linux"})
    );

    let page = get(collector.port(), "/user?device=dev&user=carol").text();
    assert!(page.contains("<td class=\"app-version\">4.2.0</td><td class=\"os\">Android 14</td>"));
    assert!(page.contains("<td class=\"app-version\">—</td><td class=\"os\">Linux</td>"));
    let overview = get(collector.port(), "/").text();
    assert!(
        overview.contains("<td class=\"app-version\">4.2.0</td><td class=\"os\">Android 14</td>")
    );

    // A context value that is not a string is refused, naming the field.
    let mut wrong = session_start(3, "s3", Some("carol"), 1.0);
    wrong["data"] = json!({"app_version": 4});
    let response = post_batch(collector.port(), &batch("dev", vec![wrong]));
    assert_eq!(response.status, 400);
    assert!(response.text().contains("events[0].data.app_version"));
}

#[test]
fn a_database_that_is_not_sqlite_is_an_error_at_start() {
    let dir = TempDir::new("garbage");
    std::fs::write(dir.db(), vec![0x42; 8192]).unwrap();
    let error = Collector::start_with(CollectorOptions::default().with_db_file(dir.db()))
        .err()
        .expect("a file that is not a database must be refused");
    assert!(error.to_string().contains("database"), "{error}");
}

#[test]
fn the_binary_keeps_its_data_in_the_db_file_across_runs() {
    use std::io::BufRead;
    let dir = TempDir::new("binary");
    let run = |scenario: Option<Value>| -> Value {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stint-collector"))
            .args(["--port", "0", "--db"])
            .arg(dir.db())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let port: u16 = first.rsplit(':').next().unwrap().parse().unwrap();
        if let Some(body) = scenario {
            assert_eq!(post_batch(port, &body).status, 200);
        }
        let users = get(port, "/api/users").json();
        child.kill().unwrap();
        child.wait().unwrap();
        users
    };
    let first = run(Some(alice_scenario()));
    assert_eq!(user(&first, "alice")["sessions"], 3);
    // Killed, not stopped: what was answered 200 was committed.
    assert_eq!(run(None), first);
}
