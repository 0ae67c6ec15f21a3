//! The quickstart: a short app life against a local collector, then what the collector saw.
//!
//!     cargo run --example quickstart            # prints the result and exits
//!     cargo run --example quickstart -- --serve # keeps the dashboard up until Ctrl-C
//!     cargo run --example quickstart -- --serve --db stint.db  # ... and keeps the data in a file
//!
//! The session timeout is 2 seconds so the whole story takes a few seconds.

use std::sync::Arc;
use std::time::Duration;

use stint::dispatch::{self, SessionChange, SessionNotice};
use stint::input::{CustomEvent, UserId};
use stint::{Options, Tracker};
use stint_collector::{Collector, CollectorOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let serve = args.iter().any(|a| a == "--serve");
    // `--db PATH`: keep what the collector receives in that SQLite file (default: in memory).
    let collector = match args.iter().position(|a| a == "--db") {
        Some(i) => Collector::start_with(
            CollectorOptions::default().with_db_file(args.get(i + 1).ok_or("--db needs a path")?),
        )?,
        None => Collector::start()?,
    };
    let data_directory =
        std::env::temp_dir().join(format!("stint-quickstart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_directory);

    dispatch::set_session_listener(Some(Arc::new(|notice: &SessionNotice| {
        let user = notice.user_id.as_deref().unwrap_or("anonymous");
        match notice.change {
            SessionChange::Started => println!("  listener: session started for {user}"),
            SessionChange::Ended => println!(
                "  listener: session ended for {user} after {:.3} s",
                (notice.end.unwrap_or(notice.start) - notice.start) as f64 / 1000.0
            ),
        }
    })));

    let options = Options {
        session_timeout_seconds: 2,
        data_directory: Some(data_directory.clone()),
        base_url: Some(collector.url()),
        ..Options::default()
    };
    let stint = Tracker::start("quickstart-api-key", options)?;
    println!("Stint {} -> collector {}", stint::VERSION, collector.url());

    println!("app opens");
    stint.open_session()?;
    stint.log_custom_event(CustomEvent::new("tutorial_done", None)?)?;
    stint.log_custom_event(CustomEvent::new("level_up", Some(r#"{"level":2}"#))?)?;
    std::thread::sleep(Duration::from_millis(500));

    println!("app goes to the background for 2.5 s (longer than the 2 s timeout)");
    stint.close_session()?;
    std::thread::sleep(Duration::from_millis(2500));

    println!("app comes back: a new session; the old one ended when the app went away");
    stint.open_session()?;
    stint.log_custom_event(CustomEvent::new("level_up", Some(r#"{"level":3}"#))?)?;
    std::thread::sleep(Duration::from_millis(300));

    println!("user signs in as alice: the anonymous session ends, alice's begins");
    stint.change_user(UserId::new("alice")?)?;
    stint.log_custom_event(CustomEvent::new("purchase", Some(r#"{"sku":"gems_100"}"#))?)?;
    std::thread::sleep(Duration::from_millis(200));

    stint.flush(Duration::from_secs(10))?;
    let stats = stint.stats()?;
    stint.shutdown(Duration::from_secs(5))?;

    println!();
    println!(
        "delivered {} datapoints ({} pending, {} dropped)",
        stats.datapoints_delivered, stats.datapoints_pending, stats.datapoints_dropped
    );
    println!(
        "{:<12} {:>8} {:>8}  session lengths",
        "user", "sessions", "ended"
    );
    for user in collector.users_json()["users"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let lengths: Vec<String> = user["last_sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .map(|s| match s["duration"].as_f64() {
                Some(d) => format!("{d:.3} s"),
                None => "open".into(),
            })
            .collect();
        println!(
            "{:<12} {:>8} {:>8}  {}",
            user["user_id"].as_str().unwrap_or("anonymous"),
            user["sessions"].as_u64().unwrap_or(0),
            user["sessions_ended"].as_u64().unwrap_or(0),
            lengths.join(", ")
        );
    }
    println!();
    println!(
        "dashboard: {}/ (add `-- --serve` to keep it up)",
        collector.url()
    );
    if let Some(alice) = collector.users_json()["users"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|user| user["user_id"] == "alice")
    {
        let device = alice["device_id"].as_str().unwrap_or_default();
        println!(
            "alice's App Usage: {}",
            collector.user_page_url(device, Some("alice"))
        );
    }
    let _ = std::fs::remove_dir_all(&data_directory);
    if serve {
        println!("serving the dashboard; press Ctrl-C to stop");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    Ok(())
}
