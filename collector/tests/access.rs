//! Who may do what: API keys on ingest, the dashboard token on the pages and the `/api/` reads
//! and deletes, test controls only on request, the bind address, deletion and retention, and
//! the command line (`--help`, `--version`, timestamped log lines).

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Lines};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use stint_collector::{Collector, CollectorOptions};

const TOKEN: &str = "tok-3f9a";

fn with_key(mut batch: Value, key: &str) -> Value {
    batch["api_key"] = json!(key);
    batch
}

fn basic(user: &str, password: &str) -> String {
    use std::fmt::Write;
    // Base64 by hand: the test must not share the code it checks.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = write!(
                    out,
                    "{}",
                    ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
                );
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn only_configured_keys_are_stored_each_as_its_app() {
    let collector =
        Collector::start_with(CollectorOptions::default().with_api_keys(["key-a", "key-b"]))
            .unwrap();
    let port = collector.port();
    let refused = post_batch(port, &with_key(alice_scenario(), "key-c"));
    assert_eq!(refused.status, 401);
    assert!(refused.text().contains("api_key"), "{}", refused.text());
    assert_eq!(collector.datapoint_count(), 0);
    assert_eq!(collector.datapoints_received_total(), 0);
    assert_eq!(collector.requests()[0].status, 401);

    assert_eq!(
        post_batch(port, &with_key(alice_scenario(), "key-a")).status,
        200
    );
    assert_eq!(
        post_batch(
            port,
            &with_key(
                batch("dev-b", vec![session_start(90, "sb", Some("alice"), 5.0)]),
                "key-b"
            )
        )
        .status,
        200
    );
    assert_eq!(
        get(port, "/api/apps").json(),
        json!({"apps": ["key-a", "key-b"]})
    );
    // The same user id under two apps is two users.
    let all = get(port, "/api/users").json();
    assert_eq!(all["users"].as_array().unwrap().len(), 2);
    let b = get(port, "/api/users?app=key-b").json();
    assert_eq!(b["users"].as_array().unwrap().len(), 1);
    assert_eq!(b["users"][0]["device_id"], "dev-b");
    let a = get(port, "/api/user?app=key-a&device=dev&user=alice").json();
    assert_eq!(a["user"]["sessions"], 3);
    assert_eq!(
        get(port, "/api/user?app=key-b&device=dev&user=alice").status,
        404
    );
}

#[test]
fn without_keys_every_key_is_accepted() {
    let collector = Collector::start().unwrap();
    assert_eq!(
        post_batch(collector.port(), &with_key(alice_scenario(), "anything")).status,
        200
    );
    assert_eq!(collector.datapoint_count(), 8);
}

#[test]
fn test_controls_exist_only_when_asked_for() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    post_batch(port, &alice_scenario());
    assert_eq!(get(port, "/admin/faults").status, 404);
    assert_eq!(
        post_json(port, "/admin/faults", &json!({"fail_next": 5})).status,
        404
    );
    assert_eq!(request(port, "POST", "/admin/reset", &[], b"").status, 404);
    assert_eq!(
        collector.datapoint_count(),
        8,
        "a refused reset deletes nothing"
    );
    assert_eq!(collector.faults().fail_next, 0);

    let testing = Collector::start_with(CollectorOptions::default().with_test_controls()).unwrap();
    assert_eq!(get(testing.port(), "/admin/faults").status, 200);
    assert_eq!(
        request(testing.port(), "POST", "/admin/reset", &[], b"").status,
        200
    );
}

#[test]
fn the_dashboard_token_guards_pages_and_api_reads_and_deletes_but_not_ingest() {
    let collector =
        Collector::start_with(CollectorOptions::default().with_dashboard_token(TOKEN)).unwrap();
    let port = collector.port();
    assert_eq!(
        post_batch(port, &alice_scenario()).status,
        200,
        "ingest needs no token"
    );
    assert_eq!(get(port, "/healthz").status, 200);
    for path in [
        "/",
        "/user?device=dev&user=alice",
        "/api/users",
        "/api/datapoints",
        "/api/live",
        "/api/apps",
        "/api/requests",
    ] {
        let refused = get(port, path);
        assert_eq!(refused.status, 401, "{path}");
        assert!(
            refused
                .header("www-authenticate")
                .unwrap()
                .starts_with("Basic "),
            "{path}"
        );
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            request(port, "GET", path, &[("Authorization", &bearer)], b"").status,
            200,
            "{path}"
        );
        let browser = basic("anyone", TOKEN);
        assert_eq!(
            request(port, "GET", path, &[("Authorization", &browser)], b"").status,
            200,
            "{path}"
        );
        for wrong in [
            format!("Bearer {TOKEN}x"),
            basic(TOKEN, "nope"),
            "Bearer".to_string(),
            "Digest x".to_string(),
        ] {
            assert_eq!(
                request(port, "GET", path, &[("Authorization", &wrong)], b"").status,
                401,
                "{path} {wrong}"
            );
        }
    }
    assert_eq!(
        request(port, "DELETE", "/api/devices/dev", &[], b"").status,
        401
    );
    assert_eq!(collector.datapoint_count(), 8);
    let bearer = format!("Bearer {TOKEN}");
    let deleted = request(
        port,
        "DELETE",
        "/api/devices/dev",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(deleted.status, 200);
    assert_eq!(collector.datapoint_count(), 0);
}

#[test]
fn deleting_a_device_returns_the_count_and_leaves_others() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    post_batch(port, &alice_scenario());
    let odd = "phone 1/é";
    post_batch(
        port,
        &batch(
            odd,
            vec![
                session_start(70, "s70", None, 9.0),
                custom_event(71, "x", None, None),
            ],
        ),
    );
    let deleted = request(port, "DELETE", "/api/devices/phone%201%2F%C3%A9", &[], b"");
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.json(), json!({"device_id": odd, "deleted": 2}));
    assert_eq!(collector.datapoint_count(), 8);
    let again = request(port, "DELETE", "/api/devices/phone%201%2F%C3%A9", &[], b"");
    assert_eq!(again.json()["deleted"], 0);
    assert_eq!(
        request(port, "DELETE", "/api/devices/dev", &[], b"").json()["deleted"],
        8
    );
    assert_eq!(collector.users_json(), json!({"users": []}));
    assert_eq!(get(port, "/api/devices/dev").status, 405);
    assert_eq!(
        request(port, "DELETE", "/api/devices/", &[], b"").status,
        400
    );
}

#[test]
fn a_non_loopback_bind_needs_a_token() {
    let open = CollectorOptions {
        bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ..CollectorOptions::default()
    };
    let error = Collector::start_with(open.clone()).err().expect("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("dashboard token"), "{error}");
    let guarded = Collector::start_with(open.with_dashboard_token(TOKEN)).unwrap();
    assert_eq!(get(guarded.port(), "/healthz").status, 200);

    let output = Command::new(env!("CARGO_BIN_EXE_stint-collector"))
        .args(["--bind", "0.0.0.0", "--port", "0", "--db", ":memory:"])
        .env_remove("STINT_DASHBOARD_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--dashboard-token"), "{stderr}");
}

/// The binary, started with `args`; its banner read, the rest of stdout left to the test.
struct Running {
    child: Child,
    port: u16,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Running {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stint-collector"));
        command
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .env_remove("STINT_DASHBOARD_TOKEN");
        for (name, value) in envs {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a banner").unwrap();
        let url = first
            .strip_prefix("stint-collector listening on ")
            .unwrap_or_else(|| panic!("{first:?}"))
            .to_string();
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        lines.next();
        lines.next();
        Running { child, port, lines }
    }

    /// The next log line containing `needle` (each line is checked for its timestamp).
    fn line_with(&mut self, needle: &str) -> String {
        for line in &mut self.lines {
            let line = line.unwrap();
            assert!(is_timestamped(&line), "no UTC timestamp: {line:?}");
            if line.contains(needle) {
                return line;
            }
        }
        panic!("the collector exited before logging {needle:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// "2026-12-04T16:50:07.123Z " at the start.
fn is_timestamped(line: &str) -> bool {
    let b = line.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        range
            .into_iter()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && &line[23..25] == "Z "
}

#[test]
fn help_and_version_go_to_stdout_and_exit_zero() {
    for flag in ["--help", "-h"] {
        let output = Command::new(env!("CARGO_BIN_EXE_stint-collector"))
            .arg(flag)
            .output()
            .unwrap();
        assert!(output.status.success(), "{flag}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        for option in [
            "--api-key",
            "--api-keys-file",
            "--bind",
            "--dashboard-token",
            "--tls-cert",
            "--tls-key",
            "--retain-days",
            "--test-controls",
            "--db",
        ] {
            assert!(stdout.contains(option), "{flag} does not mention {option}");
        }
        assert!(output.stderr.is_empty());
    }
    let output = Command::new(env!("CARGO_BIN_EXE_stint-collector"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("stint-collector {}", env!("CARGO_PKG_VERSION"))
    );
    let output = Command::new(env!("CARGO_BIN_EXE_stint-collector"))
        .arg("--nope")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_binary_warns_without_keys_and_logs_with_utc_timestamps() {
    let mut open = Running::start(&["--db", ":memory:"], &[]);
    let warning = open.line_with("API key");
    assert!(warning.contains(" WARN "), "{warning}");
    assert!(warning.contains("every key is accepted"), "{warning}");
    assert_eq!(post_batch(open.port, &alice_scenario()).status, 200);
    let logged = open.line_with("POST /api/v3/data");
    assert!(logged.contains("-> 200 (8 datapoints"), "{logged}");
}

#[test]
fn the_binary_reads_keys_from_a_file_and_the_token_from_the_environment() {
    let dir = std::env::temp_dir().join(format!("stint-collector-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.txt");
    std::fs::write(
        &file,
        "# production\nkey-prod\n\n  key-beta   # the beta app\n#key-old\n",
    )
    .unwrap();
    let mut running = Running::start(
        &[
            "--db",
            ":memory:",
            "--api-keys-file",
            file.to_str().unwrap(),
            "--api-key",
            "key-flag",
        ],
        &[("STINT_DASHBOARD_TOKEN", TOKEN)],
    );
    let port = running.port;
    for (n, (key, status)) in [
        ("key-prod", 200),
        ("key-beta", 200),
        ("key-flag", 200),
        ("key-old", 401),
        ("# production", 401),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = with_key(batch("dev", vec![custom_event(1, "x", None, None)]), key);
        body["events"][0]["id"] = json!(id(n as u32));
        assert_eq!(post_batch(port, &body).status, status, "{key}");
    }
    let refused = running.line_with("-> 401");
    assert!(refused.contains("api_key"), "{refused}");
    assert_eq!(
        get(port, "/api/stats").status,
        401,
        "the token came from the environment"
    );
    let bearer = format!("Bearer {TOKEN}");
    let stats = request(
        port,
        "GET",
        "/api/stats",
        &[("Authorization", &bearer)],
        b"",
    )
    .json();
    assert_eq!(stats["datapoints"], 3);
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn retention_deletes_old_datapoints_at_start_up() {
    let dir = std::env::temp_dir().join(format!("stint-collector-retain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("retain.db");
    let _ = std::fs::remove_file(&db);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    {
        let collector =
            Collector::start_with(CollectorOptions::default().with_db_file(&db)).unwrap();
        let old = now - 40.0 * 86_400.0;
        let events = vec![
            session_start(1, "old", Some("u"), old),
            session_end(2, "old", Some("u"), old + 10.0, 10.0),
            session_start(3, "new", Some("u"), now - 86_400.0),
        ];
        assert_eq!(
            post_batch(collector.port(), &batch("dev", events)).status,
            200
        );
        // The library's own call: nothing is younger than 60 days here.
        assert_eq!(
            collector
                .delete_older_than(Duration::from_secs(60 * 86_400))
                .unwrap(),
            0
        );
    }
    let mut running = Running::start(&["--db", db.to_str().unwrap(), "--retain-days", "30"], &[]);
    let line = running.line_with("retention");
    assert!(
        line.contains("deleted 2 datapoints older than 30 days"),
        "{line}"
    );
    let users = get(running.port, "/api/users").json();
    assert_eq!(users["users"][0]["sessions"], 1);
    assert_eq!(users["users"][0]["last_sessions"][0]["session_id"], "new");
    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}
