//! The collector on a real PostgreSQL server: the same answers as on SQLite, de-duplication
//! across two collectors sharing one database, deletion and retention, and the binary's
//! `--db postgres://`. Each test makes a database of its own on the server.
//!
//! Run with a server: `scripts/collector-postgres.sh cargo test -p stint-collector --test
//! postgres` starts a throwaway cluster and passes its URL in `STINT_TEST_POSTGRES_URL`. Without
//! that variable every test here fails, saying so: a skipped database test would look green.

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use stint_collector::{Collector, CollectorOptions, Database};

/// A database of its own on the test server, dropped at the end.
struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    fn new(test: &str) -> TestDatabase {
        let server = std::env::var("STINT_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "STINT_TEST_POSTGRES_URL is not set: these tests need a PostgreSQL server. Run \
                 `scripts/collector-postgres.sh cargo test -p stint-collector --test postgres`, \
                 which starts a throwaway cluster (Debian's postgresql) and sets it"
            )
        });
        let name = format!("stint_{test}_{}", std::process::id());
        let mut admin = postgres::Client::connect(&server, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {server}: {e}"));
        // One statement a call: neither may run in the transaction a multi-statement call makes.
        for statement in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.batch_execute(&statement).unwrap();
        }
        let (base, _) = server.rsplit_once('/').expect("a URL ending in /database");
        let url = format!("{base}/{name}");
        TestDatabase { server, name, url }
    }

    fn options(&self) -> CollectorOptions {
        CollectorOptions {
            database: Database::Postgres(self.url.clone()),
            ..CollectorOptions::default()
        }
    }

    fn collector(&self) -> Collector {
        Collector::start_with(self.options()).expect("a collector on PostgreSQL")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Batches exercising every rule: sessions across batches and users, an end before its start,
/// a user change mid-session, custom events, device context, duplicates, two apps.
fn scenario() -> Vec<Value> {
    let mut start = session_start(20, "ctx", Some("carol"), 86_400.0 * 3.0 + 5.0);
    start["data"] = json!({"app_version": "3.1.0", "os_name": "iOS", "os_version": "17.5",
                           "device_model": "iPhone15,2", "arch": "arm64", "locale": "fr-FR"});
    let mut other_app = batch("dev", vec![session_start(40, "o1", Some("alice"), 9.0)]);
    other_app["api_key"] = json!("second-app");
    vec![
        alice_scenario(),
        alice_scenario(),
        batch(
            "dev2",
            vec![session_end(11, "late", Some("bob"), 900.0, 800.0)],
        ),
        batch(
            "dev2",
            vec![
                session_start(10, "late", Some("bob"), 100.0),
                session_start(12, "switch", None, 1000.0),
                session_end(13, "switch", Some("bob"), 1010.0, 10.0),
                custom_event(14, "x", None, None),
                custom_event(15, "x", None, None),
            ],
        ),
        batch(
            "dev3",
            vec![start, custom_event(21, "buy", Some("ctx"), Some("carol"))],
        ),
        other_app,
    ]
}

fn answers(collector: &Collector) -> Vec<Value> {
    let port = collector.port();
    vec![
        collector.users_json(),
        json!(collector.datapoints()),
        json!([
            collector.datapoint_count(),
            collector.datapoints_received_total()
        ]),
        get(port, "/api/overview").json(),
        get(port, "/api/apps").json(),
        get(port, "/api/users?app=second-app").json(),
        get(port, "/api/user?device=dev2&user=bob").json(),
        get(port, "/api/user?device=dev2").json(),
        get(port, "/api/user?device=dev3&user=carol").json(),
        json!(get(port, "/?q=bob").status),
    ]
}

#[test]
fn postgres_gives_the_same_answers_as_sqlite() {
    let database = TestDatabase::new("parity");
    let on_postgres = database.collector();
    let on_sqlite = Collector::start().unwrap();
    for body in scenario() {
        let expected = post_batch(on_sqlite.port(), &body);
        let got = post_batch(on_postgres.port(), &body);
        assert_eq!((got.status, got.json()), (expected.status, expected.json()));
    }
    let (got, expected) = (answers(&on_postgres), answers(&on_sqlite));
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected);
    }
    // The overview page renders the same numbers.
    let page = |c: &Collector| get(c.port(), "/").text();
    assert_eq!(page(&on_postgres), page(&on_sqlite));
}

#[test]
fn two_collectors_on_one_database_store_a_batch_once() {
    let database = TestDatabase::new("two");
    let collectors = [database.collector(), database.collector()];
    // Many batches, each posted to both collectors at the same moment.
    let bodies: Vec<Value> = (0..20)
        .map(|b| {
            batch(
                &format!("dev{}", b % 3),
                (0..50)
                    .map(|i| {
                        let n = b * 100 + i;
                        match i % 3 {
                            0 => session_start(n, &format!("s{}", n / 3), Some("u"), f64::from(n)),
                            1 => session_end(
                                n,
                                &format!("s{}", n / 3),
                                Some("u"),
                                f64::from(n) + 1.0,
                                1.0,
                            ),
                            _ => custom_event(n, "tap", None, Some("u")),
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    let barrier = Arc::new(Barrier::new(2));
    std::thread::scope(|scope| {
        for collector in &collectors {
            let barrier = Arc::clone(&barrier);
            let bodies = &bodies;
            scope.spawn(move || {
                for body in bodies {
                    barrier.wait();
                    assert_eq!(post_batch(collector.port(), body).status, 200);
                }
            });
        }
    });
    for collector in &collectors {
        assert_eq!(collector.datapoint_count(), 1000);
        assert_eq!(collector.datapoints_received_total(), 2000);
        assert_eq!(collector.datapoints().len(), 1000);
    }
    let users = collectors[0].users_json();
    assert_eq!(users, collectors[1].users_json());
    let sessions: u64 = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["sessions"].as_u64().unwrap())
        .sum();
    let taps: u64 = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["custom_events"]["tap"].as_u64().unwrap())
        .sum();
    assert_eq!(sessions, 20 * 17, "each start counted once");
    assert_eq!(taps, 20 * 16, "each custom event counted once");
    // One summary per (app, device, user): no duplicate user rows from the race.
    assert_eq!(users["users"].as_array().unwrap().len(), 3);
}

/// A batch is one transaction whose statements go out pipelined: one failing (here the sessions
/// upsert, after the datapoints and the user went in) must leave nothing of the batch, answer
/// 500, and leave the connection fit for the next batch.
#[test]
fn a_failed_batch_leaves_nothing_and_the_next_is_stored() {
    let database = TestDatabase::new("failed");
    let collector = database.collector();
    let port = collector.port();
    let mut admin = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.session_id = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER poison BEFORE INSERT ON sessions
                 FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .unwrap();
    let poisoned = batch(
        "dev",
        vec![
            session_start(1, "poison", Some("u"), 10.0),
            custom_event(2, "tap", Some("poison"), Some("u")),
        ],
    );
    assert_eq!(post_batch(port, &poisoned).status, 500);
    assert_eq!(collector.datapoint_count(), 0);
    assert_eq!(collector.datapoints_received_total(), 0);
    assert!(collector.datapoints().is_empty());
    assert_eq!(collector.users_json(), json!({"users": []}));
    // Posted one at a time, each batch finds the first ingest connection free: the one that
    // failed.
    for n in 0..5 {
        let good = batch("dev", vec![session_start(10 + n, "fine", Some("u"), 20.0)]);
        assert_eq!(post_batch(port, &good).status, 200);
    }
    assert_eq!(collector.datapoint_count(), 5);
    admin
        .batch_execute("DROP TRIGGER poison ON sessions")
        .unwrap();
    // Nothing of the first attempt stayed: every datapoint of it is new now.
    assert_eq!(
        post_batch(port, &poisoned).json(),
        json!({"accepted": 2, "duplicates": 0})
    );
    assert_eq!(collector.datapoint_count(), 7);
    let users = collector.users_json();
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
    assert_eq!(user(&users, "u")["sessions"], json!(6));
    assert_eq!(user(&users, "u")["custom_events"], json!({"tap": 1}));
}

#[test]
fn deletion_and_retention_on_postgres() {
    let database = TestDatabase::new("delete");
    let collector = database.collector();
    let port = collector.port();
    for body in scenario() {
        post_batch(port, &body);
    }
    let before = collector.datapoint_count();
    let deleted = request(port, "DELETE", "/api/devices/dev2", &[], b"").json();
    assert_eq!(deleted, json!({"device_id": "dev2", "deleted": 6}));
    assert_eq!(collector.datapoint_count(), before - 6);
    assert!(collector.users_json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["device_id"] != "dev2"));
    // Alice's datapoints are at times 1000-1200 and 9 (the second app); carol's at day 3.
    let everything_old = collector.delete_older_than(Duration::from_secs(0)).unwrap();
    assert_eq!(everything_old, before - 6);
    assert_eq!(collector.datapoint_count(), 0);
    assert_eq!(collector.users_json(), json!({"users": []}));
}

#[test]
fn the_binary_runs_on_postgres_and_names_a_bad_url() {
    use std::io::{BufRead, BufReader};
    let database = TestDatabase::new("binary");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stint-collector"))
        .args(["--port", "0", "--db", &database.url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let status = post_batch(port, &alice_scenario()).status;
    let stats = get(port, "/api/stats").json();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200);
    assert_eq!(stats["datapoints"], 8);

    let (base, _) = database.url.rsplit_once('/').unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stint-collector"))
        .args(["--port", "0", "--db", &format!("{base}/no_such_database")])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no_such_database") && stderr.contains("does not exist"),
        "{stderr}"
    );
    let with_password = "postgresql://stint:hunter2@127.0.0.1:1/x";
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stint-collector"))
        .args(["--port", "0", "--db", with_password])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("postgresql://stint:***@127.0.0.1:1/x"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
