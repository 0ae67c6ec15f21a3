//! A kill test that runs on every platform, Windows under Wine included (scripts/cross.sh): a
//! child process records, prints the sequence number of each call after it returned OK, and is
//! killed with `Child::kill` (SIGKILL on Unix, TerminateProcess on Windows) while it records.
//! The library restarted on the same data directory delivers every printed call to the local
//! collector, exactly once. (tests/durability.rs has the Unix kill storm with more threads.)
//! Rounds: `STINT_KILL_RESTART_ROUNDS` (default 6).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

use common::*;
use stint_collector::Collector;

const TEST: &str = "every_call_that_returned_ok_is_delivered_after_a_kill_and_restart";

#[test]
fn every_call_that_returned_ok_is_delivered_after_a_kill_and_restart() {
    if child_role().as_deref() == Some("record") {
        return record_child();
    }
    let _turn = serial();
    let rounds: u32 = std::env::var("STINT_KILL_RESTART_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    let dir = fresh_dir("kill-restart");
    let collector = Collector::start().unwrap();
    let options_json = format!(r#""baseUrl":"{}""#, collector.url());
    let mut seed = Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    let mut delivered_ids: HashSet<String> = HashSet::new();
    let mut confirmed_total = 0;
    for round in 0..rounds {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Kill after the child confirmed 1..=400 calls: the child goes on recording meanwhile,
        // so the kill lands mid-stream.
        let kill_after = 1 + (seed >> 33) as usize % 400;
        let mut child = spawn_child(
            TEST,
            "record",
            &[
                ("STINT_DIR", dir.display().to_string()),
                ("STINT_ROUND", round.to_string()),
            ],
        );
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut confirmed: Vec<String> = Vec::new();
        let mut killed = false;
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 || line.trim() == "DONE" {
                break; // the child's end: killed (or died or done, which the checks below catch)
            }
            if let Some(name) = line.trim().strip_prefix("> ") {
                confirmed.push(name.to_owned());
                if !killed && confirmed.len() >= kill_after {
                    child.kill().unwrap();
                    killed = true;
                }
            }
        }
        drop(child.stdin.take()); // a child that is done waits for this
        let status = child.wait().unwrap();
        assert!(killed, "round {round}: the child ended by itself: {status}");
        assert!(!status.success(), "round {round}: the child was killed");
        confirmed_total += confirmed.len();

        // The restart on the same directory delivers what the killed child left.
        init_ok(&dir, &options_json);
        assert_eq!(
            stint_flush(60_000),
            StintStatus::Ok,
            "round {round}: {}",
            last_error()
        );
        assert_eq!(stint_shutdown(5_000), StintStatus::Ok);
        let arrived = collector.datapoints();
        assert_eq!(
            collector.datapoints_received_total(),
            arrived.len(),
            "round {round}: nothing was delivered twice"
        );
        let mut delivered: HashSet<String> = HashSet::new();
        for datapoint in &arrived {
            let id = datapoint["id"].as_str().unwrap().to_owned();
            assert!(
                delivered_ids.insert(id),
                "round {round}: {datapoint} was delivered again"
            );
            if datapoint["name"] == "ce" {
                delivered.insert(datapoint["data"]["n"].as_str().unwrap().to_owned());
            }
        }
        let lost: Vec<&String> = confirmed
            .iter()
            .filter(|name| !delivered.contains(*name))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} confirmed calls lost, e.g. {:?}",
            lost.len(),
            confirmed.len(),
            lost.first()
        );
        assert!(
            !named(&arrived, "ss").is_empty(),
            "round {round}: the child's session start arrived"
        );
        collector.reset();
    }
    eprintln!(
        "kill and restart: {rounds} rounds, {confirmed_total} confirmed calls, all delivered once"
    );
}

/// The child: store only (no collector), a session, then custom events until it is killed; each
/// event's name is printed after its call returned OK.
fn record_child() {
    let dir = std::path::PathBuf::from(std::env::var("STINT_DIR").unwrap());
    let round = std::env::var("STINT_ROUND").unwrap();
    init_ok(&dir, "");
    assert_eq!(stint_open_session(), StintStatus::Ok);
    assert_eq!(change_user(&format!("user-{round}")), StintStatus::Ok);
    let stdout = std::io::stdout();
    // Bounded: the parent kills the child long before the end.
    for i in 0..200_000 {
        let name = format!("r{round}-{i}");
        if event(&name, Some(r#"{"k":1}"#)) == StintStatus::Ok {
            let mut out = stdout.lock();
            let _ = writeln!(out, "> {name}");
            let _ = out.flush();
        }
    }
    // Not reached in a passing run: the parent fails the round when it reads this.
    println!("DONE");
    wait_for_parent();
}
