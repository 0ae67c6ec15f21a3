//! Two apps on one machine never share data: with the default data directory, each API key gets
//! its own directory, so two processes run at once and each delivers only its own datapoints,
//! with its own key, to its own collector.

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::*;
use stint_collector::Collector;

const TEST: &str = "two_apps_with_default_directories_run_at_once_and_deliver_only_their_own_data";

#[test]
fn two_apps_with_default_directories_run_at_once_and_deliver_only_their_own_data() {
    if let Some(role) = child_role() {
        // One app: default data directory (XDG_DATA_HOME is set by the parent), its own key.
        let url = std::env::var("STINT_URL").unwrap();
        let status = init(
            &role,
            &format!(r#"{{"baseUrl":"{url}","flushIntervalInSeconds":1}}"#),
        );
        assert_eq!(status, StintStatus::Ok, "{}", last_error());
        assert_eq!(stint_open_session(), StintStatus::Ok);
        assert_eq!(event(&format!("event-of-{role}"), None), StintStatus::Ok);
        println!("RECORDED");
        // Stay up until the parent has seen both apps running, then deliver and stop.
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).unwrap();
        assert_eq!(stint_flush(20_000), StintStatus::Ok, "{}", last_error());
        assert_eq!(stint_shutdown(5_000), StintStatus::Ok);
        println!("DONE");
        return;
    }
    // No serial(): only child processes use Stint here, never this one.
    let data_home = fresh_dir("isolation-home");
    std::fs::create_dir_all(&data_home).unwrap();
    let apps = ["app-one-key", "app-two-key"];
    let collectors = [Collector::start().unwrap(), Collector::start().unwrap()];
    let mut children = Vec::new();
    for (key, collector) in apps.iter().zip(&collectors) {
        let envs = [
            ("STINT_URL", collector.url()),
            ("XDG_DATA_HOME", data_home.display().to_string()),
            ("HOME", data_home.display().to_string()),
        ];
        let mut child = spawn_child(TEST, key, &envs);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("RECORDED") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "{key}: child died"
            );
        }
        children.push((child, stdout));
    }
    // Both are initialised and recording at the same time: neither was refused the directory.
    for (child, stdout) in &mut children {
        use std::io::Write;
        writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
        let mut line = String::new();
        while !line.contains("DONE") {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "child died");
        }
        assert!(child.wait().unwrap().success());
    }
    for (key, collector) in apps.iter().zip(&collectors) {
        assert!(collector.wait_for_datapoints(2, Duration::from_secs(10)));
        let names: Vec<String> = collector
            .datapoints()
            .iter()
            .filter(|d| d["name"] == "ce")
            .map(|d| d["data"]["n"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(names, [format!("event-of-{key}")], "{key} got {names:?}");
        for request in collector.requests() {
            assert_eq!(request.api_key.as_deref(), Some(*key));
        }
    }
    // Two directories under <data home>/stint, named by a hash: neither name holds a key.
    let mut names: Vec<String> = std::fs::read_dir(data_home.join("stint"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    for name in &names {
        assert_eq!(name.len(), 16);
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
    let _ = std::fs::remove_dir_all(&data_home);
}
