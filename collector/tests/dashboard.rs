//! The dashboard's pages over HTTP and in headless Chromium, after a scripted scenario: a user
//! with a known number of sessions over several days.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stint_collector::Collector;

const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// 2025-11-24 00:00:00 UTC: the scenario's first day.
const DAY0: f64 = 1_763_942_400.0;
const DAY: f64 = 86_400.0;

fn start_with_context(
    n: u32,
    session: &str,
    user: &str,
    time: f64,
    app: &str,
    os: (&str, &str),
) -> Value {
    let mut start = session_start(n, session, Some(user), time);
    start["data"] = json!({"app_version": app, "os_name": os.0, "os_version": os.1,
                           "device_model": "Pixel 8", "arch": "aarch64", "locale": "en-GB"});
    start
}

/// Maya on "phone-1": 2 sessions on day 0, none on day 1, 3 on day 2, 1 (still open) on
/// day 3, with lengths 25 s, 4 min, 40 s, 12 min, 90 min, and custom events. Leo on "tablet-9"
/// has one session on day 1.
fn scenario() -> Vec<Value> {
    let maya = "maya";
    let mut events = Vec::new();
    let mut n = 100;
    let mut session = |day: f64, offset: f64, length: Option<f64>, app: &str| {
        n += 2;
        let id = format!("m{n}");
        let start = DAY0 + day * DAY + offset;
        events.push(start_with_context(
            n,
            &id,
            maya,
            start,
            app,
            ("Android", "14"),
        ));
        if let Some(length) = length {
            events.push(session_end(n + 1, &id, Some(maya), start + length, length));
        }
    };
    session(0.0, 9.0 * 3600.0, Some(25.0), "2.3.0");
    session(0.0, 18.0 * 3600.0, Some(240.0), "2.3.0");
    session(2.0, 8.0 * 3600.0, Some(40.0), "2.4.0");
    session(2.0, 12.0 * 3600.0, Some(720.0), "2.4.0");
    session(2.0, 20.0 * 3600.0, Some(5400.0), "2.4.0");
    session(3.0, 7.0 * 3600.0, None, "2.4.1");
    events.push(custom_event(200, "level_up", Some("m102"), Some(maya)));
    events.push(custom_event(201, "level_up", Some("m106"), Some(maya)));
    events.push(custom_event(202, "purchase", Some("m106"), Some(maya)));
    let mut batches = vec![batch("phone-1", events)];
    batches.push(batch(
        "tablet-9",
        vec![
            start_with_context(
                300,
                "l1",
                "leo",
                DAY0 + DAY + 3600.0,
                "1.0.0",
                ("iOS", "17.5"),
            ),
            session_end(301, "l1", Some("leo"), DAY0 + DAY + 3700.0, 100.0),
        ],
    ));
    batches
}

fn collector_with_scenario() -> Collector {
    let collector = Collector::start().unwrap();
    for body in scenario() {
        assert_eq!(post_batch(collector.port(), &body).status, 200);
    }
    collector
}

const MAYA_PAGE: &str = "/user?device=phone-1&user=maya";

/// The value of attribute `name` in the start tag beginning at `tag`.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let end = tag.find('>')?;
    let start = tag[..end].find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// (key, value) of each `rect.bar` in the chart `figure#{chart_id}`, in DOM order; `key_name`
/// is the identifying attribute ("data-day", "data-bucket").
fn bars(html: &str, chart_id: &str, key_name: &str) -> Vec<(String, u64)> {
    let Some(start) = html.find(&format!("id=\"{chart_id}\"")) else {
        panic!("no chart {chart_id} in:\n{html}");
    };
    let figure = &html[start..start + html[start..].find("</figure>").unwrap()];
    figure
        .match_indices("<rect ")
        .map(|(i, _)| &figure[i..])
        .filter(|tag| attribute(tag, "class") == Some("bar"))
        .map(|tag| {
            (
                attribute(tag, key_name).unwrap().to_string(),
                attribute(tag, "data-value").unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// `data-value` of the element with this id.
fn metric(html: &str, id: &str) -> Option<u64> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..start].rfind('<')?;
    attribute(&html[tag_start..], "data-value")?.parse().ok()
}

/// The start tag of the overview row of `user_id`.
fn user_row<'a>(html: &'a str, user_id: &str) -> Option<&'a str> {
    let start = html.find(&format!("<tr class=\"user\" data-user-id=\"{user_id}\""))?;
    Some(&html[start..start + html[start..].find('>')? + 1])
}

/// The number in `td.sessions` of `user_id`'s overview row.
fn sessions_cell(html: &str, user_id: &str) -> Option<u64> {
    let row = html.find(&format!("<tr class=\"user\" data-user-id=\"{user_id}\""))?;
    let marker = "<td class=\"sessions num\">";
    let cell = row + html[row..].find(marker)? + marker.len();
    html[cell..].split('<').next()?.parse().ok()
}

fn days(values: &[(&str, u64)]) -> Vec<(String, u64)> {
    values.iter().map(|(d, v)| (d.to_string(), *v)).collect()
}

#[test]
fn the_app_usage_page_shows_the_sessions_metric_charts_and_latest_sessions() {
    let collector = collector_with_scenario();
    let page = get(collector.port(), MAYA_PAGE);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    assert_eq!(metric(&html, "metric-sessions"), Some(6));
    assert_eq!(metric(&html, "metric-sessions-ended"), Some(5));
    assert_eq!(metric(&html, "metric-custom-events"), Some(3));
    assert_eq!(
        bars(&html, "chart-sessions-per-day", "data-day"),
        days(&[
            ("2025-11-24", 2),
            ("2025-11-25", 0),
            ("2025-11-26", 3),
            ("2025-11-27", 1)
        ])
    );
    let lengths: Vec<u64> = bars(&html, "chart-session-length", "data-bucket")
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    // 25 s | 40 s | 4 min | 12 min | 90 min
    assert_eq!(lengths, [0, 1, 1, 1, 1, 0, 0, 1]);
    assert_eq!(html.matches("<tr class=\"session").count(), 6);
    assert!(html.contains(
        "<tr class=\"session open\" data-session-id=\"m112\"><td class=\"start\">\
2025-11-27 07:00:00 UTC</td><td class=\"end\">open</td>"
    ));
    assert!(html.contains(
        "<td class=\"duration num\">1 h 30 min 00 s</td><td class=\"app-version\">2.4.0</td>\
<td class=\"os\">Android 14</td>"
    ));
    assert!(html.contains("<tr class=\"custom-event\" data-name=\"level_up\"><td class=\"name\">level_up</td><td class=\"count num\">2</td>"));
    // Self-contained: nothing loaded from elsewhere.
    assert!(
        !html.contains("src=\"http"),
        "no external scripts or images"
    );
    assert!(!html.contains("<link"), "no external stylesheets");

    let unknown = get(collector.port(), "/user?device=phone-1&user=nobody");
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("id=\"no-data\""));
    assert_eq!(get(collector.port(), "/user").status, 400);
}

#[test]
fn the_overview_charts_all_users_per_day_and_lists_them() {
    let collector = collector_with_scenario();
    let html = get(collector.port(), "/").text();
    assert_eq!(
        bars(&html, "chart-sessions-per-day", "data-day"),
        days(&[
            ("2025-11-24", 2),
            ("2025-11-25", 1),
            ("2025-11-26", 3),
            ("2025-11-27", 1)
        ])
    );
    assert_eq!(
        bars(&html, "chart-daily-active-users", "data-day"),
        days(&[
            ("2025-11-24", 1),
            ("2025-11-25", 1),
            ("2025-11-26", 1),
            ("2025-11-27", 1)
        ])
    );
    assert_eq!(sessions_cell(&html, "maya"), Some(6));
    assert_eq!(sessions_cell(&html, "leo"), Some(1));
    assert!(html.contains("<a href=\"/user?device=phone-1&amp;user=maya\">maya</a>"));
    // The latest session's app version and OS.
    assert!(html.contains("<td class=\"app-version\">2.4.1</td><td class=\"os\">Android 14</td>"));
    assert!(html.contains("<td class=\"app-version\">1.0.0</td><td class=\"os\">iOS 17.5</td>"));

    // The search runs on the server too (the page filters as one types, then the next poll
    // brings the server's answer).
    let searched = get(collector.port(), "/?q=MAY").text();
    assert!(!user_row(&searched, "maya").unwrap().contains("hidden"));
    assert!(user_row(&searched, "leo").is_none());
    assert!(searched.contains("value=\"MAY\""));
    assert!(searched.contains("<span id=\"users-shown\">1</span>"));

    let live = get(
        collector.port(),
        "/api/live?view=user&device=phone-1&user=maya",
    )
    .json();
    assert!(live["html"]
        .as_str()
        .unwrap()
        .contains("id=\"metric-sessions\" data-value=\"6\""));
    let usage = get(collector.port(), "/api/user?device=phone-1&user=maya").json();
    assert_eq!(usage["user"]["sessions"], 6);
    assert_eq!(
        usage["sessions_per_day"][1],
        json!({"day": "2025-11-26", "sessions": 3, "active_users": 1})
    );
}

#[test]
fn a_poll_of_unchanged_data_gets_no_fragment_and_new_data_gets_one() {
    let collector = collector_with_scenario();
    let live = "/api/live?view=user&device=phone-1&user=maya";
    let first = get(collector.port(), live).json();
    assert!(first["html"]
        .as_str()
        .unwrap()
        .contains("id=\"metric-sessions\" data-value=\"6\""));
    let revision = first["revision"].as_str().unwrap().to_string();
    let same = format!("{live}&revision={revision}");
    assert_eq!(
        get(collector.port(), &same).json(),
        json!({"revision": revision, "datapoints": 16})
    );
    // Duplicates change nothing a page shows.
    assert_eq!(post_batch(collector.port(), &scenario()[0]).status, 200);
    assert!(get(collector.port(), &same).json().get("html").is_none());
    // A new session does.
    let new_day = batch(
        "phone-1",
        vec![session_start(500, "m500", Some("maya"), DAY0 + 5.0 * DAY)],
    );
    assert_eq!(post_batch(collector.port(), &new_day).status, 200);
    let changed = get(collector.port(), &same).json();
    assert_ne!(changed["revision"], revision);
    assert!(changed["html"]
        .as_str()
        .unwrap()
        .contains("id=\"metric-sessions\" data-value=\"7\""));
}

#[test]
fn user_controlled_strings_are_escaped() {
    let collector = Collector::start().unwrap();
    let evil = "<script>alert(1)</script>";
    let mut start = session_start(1, "<b>s</b>", Some(evil), 1.0);
    start["data"] = json!({"app_version": "<i>9</i>", "os_name": "<u>os</u>"});
    let body = batch(
        "\"><img src=x onerror=alert(2)>",
        vec![start, custom_event(2, "<i>ev</i>", None, Some(evil))],
    );
    assert_eq!(post_batch(collector.port(), &body).status, 200);
    let overview = get(collector.port(), "/").text();
    let user_page = get(
        collector.port(),
        "/user?device=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E&user=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    );
    assert_eq!(user_page.status, 200);
    for html in [overview.clone(), user_page.text()] {
        assert!(!html.contains(evil));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>s</b>") && !html.contains("<i>"));
        assert!(!html.contains("<u>os</u>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
    assert_eq!(
        sessions_cell(&overview, "&lt;script&gt;alert(1)&lt;/script&gt;"),
        Some(1)
    );
}

const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Waits for chromium, killing it (and failing) if it outlives `BROWSER_TIMEOUT`.
fn wait_bounded(child: &mut std::process::Child, profile: &Path) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(profile);
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find_chromium() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let fixed = PathBuf::from("/usr/bin/chromium");
        fixed.is_file().then_some(fixed)
    })
}

/// `chromium --headless --dump-dom`, killed if it outlives `BROWSER_TIMEOUT`.
fn dump_dom(chromium: &PathBuf, url: &str, extra_args: &[&str]) -> String {
    let profile = fresh_profile_dir();
    std::fs::create_dir_all(&profile).unwrap();
    let mut child = Command::new(chromium)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra_args)
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    // Read on a thread so a large DOM cannot fill the pipe and stall the browser.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        dom
    });
    let status = wait_bounded(&mut child, &profile);
    let dom = reader.join().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "chromium exited with {status}");
    dom
}

/// A new, empty Chromium profile directory, distinct for parallel tests and repeated runs.
fn fresh_profile_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "stint-chromium-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Chromium, or `None` when the run opted out with `STINT_SKIP_BROWSER=1`. A missing browser
/// is a failure otherwise: the delivery issue requires this check.
fn chromium_or_skip() -> Option<PathBuf> {
    if std::env::var("STINT_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("STINT_SKIP_BROWSER=1: skipping the headless Chromium check");
        return None;
    }
    Some(find_chromium().expect(
        "chromium not found on PATH or at /usr/bin/chromium; install Debian's `chromium` \
         package (apt-get install -y chromium) or set STINT_SKIP_BROWSER=1",
    ))
}

/// `chromium --headless --screenshot`: writes `path` (PNG) and checks it is one.
fn screenshot(chromium: &PathBuf, url: &str, path: &Path) {
    let profile = fresh_profile_dir();
    std::fs::create_dir_all(&profile).unwrap();
    let _ = std::fs::remove_file(path);
    let mut child = Command::new(chromium)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", path.display()))
        .args(["--window-size=1280,900", "--hide-scrollbars", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let status = wait_bounded(&mut child, &profile);
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "chromium exited with {status}");
    let png = std::fs::read(path).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

/// Where screenshots go: the workspace's `target/`, for people to look at.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn headless_chromium_sees_the_session_count_and_the_chart_bars() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let collector = collector_with_scenario();
    let url = format!("{}{MAYA_PAGE}", collector.url());

    let dom = dump_dom(&chromium, &url, &[]);
    assert_eq!(metric(&dom, "metric-sessions"), Some(6), "DOM:\n{dom}");
    assert_eq!(
        bars(&dom, "chart-sessions-per-day", "data-day"),
        days(&[
            ("2025-11-24", 2),
            ("2025-11-25", 0),
            ("2025-11-26", 3),
            ("2025-11-27", 1)
        ])
    );
    assert_eq!(bars(&dom, "chart-session-length", "data-bucket").len(), 8);
    screenshot(&chromium, &url, &target_dir().join("dashboard-user.png"));

    let overview = format!("{}/", collector.url());
    let dom = dump_dom(&chromium, &overview, &[]);
    assert_eq!(sessions_cell(&dom, "maya"), Some(6), "DOM:\n{dom}");
    assert_eq!(bars(&dom, "chart-sessions-per-day", "data-day").len(), 4);
    screenshot(
        &chromium,
        &overview,
        &target_dir().join("dashboard-overview.png"),
    );
}

#[test]
fn the_pages_update_themselves_when_new_sessions_arrive() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let collector = collector_with_scenario();
    // A fourth day for Maya, after the page was first rendered: the live refresh (virtual time
    // lets its one-second poll run) must bring the new count and the new bar.
    post_batch(
        collector.port(),
        &batch(
            "phone-1",
            vec![start_with_context(
                400,
                "m400",
                "maya",
                DAY0 + 4.0 * DAY,
                "2.5.0",
                ("Android", "15"),
            )],
        ),
    );
    let url = format!("{}{MAYA_PAGE}", collector.url());
    let dom = dump_dom(&chromium, &url, &["--virtual-time-budget=5000"]);
    assert!(
        dom.contains("<div id=\"live\" data-rendered=\"live\">"),
        "the live refresh did not run:\n{dom}"
    );
    assert_eq!(metric(&dom, "metric-sessions"), Some(7));
    assert_eq!(
        bars(&dom, "chart-sessions-per-day", "data-day").last(),
        Some(&("2025-11-28".to_string(), 1))
    );
    assert!(dom.contains("<td class=\"app-version\">2.5.0</td><td class=\"os\">Android 15</td>"));

    // A search survives the live refresh.
    let dom = dump_dom(
        &chromium,
        &format!("{}/?q=leo", collector.url()),
        &["--virtual-time-budget=5000"],
    );
    assert!(
        dom.contains("<div id=\"live\" data-rendered=\"live\">"),
        "{dom}"
    );
    assert!(user_row(&dom, "maya").is_none(), "{dom}");
    assert!(!user_row(&dom, "leo").unwrap().contains("hidden"), "{dom}");
    assert!(dom.contains("<span id=\"users-shown\">1</span>"), "{dom}");
}

#[test]
fn headless_chromium_scopes_the_pages_to_one_app() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let collector = collector_with_scenario();
    // Maya, on the same phone, in a second app ("game-b"): two sessions on one day. Under the
    // scenario's key ("test-key") she has six; the same user id under two apps is two users.
    let mut other = batch(
        "phone-1",
        vec![
            start_with_context(
                500,
                "g1",
                "maya",
                DAY0 + 10.0 * DAY,
                "9.0",
                ("Android", "14"),
            ),
            start_with_context(
                502,
                "g2",
                "maya",
                DAY0 + 10.0 * DAY + 60.0,
                "9.0",
                ("Android", "14"),
            ),
        ],
    );
    other["api_key"] = json!("game-b");
    assert_eq!(post_batch(collector.port(), &other).status, 200);

    // Every app: two Maya rows, and both apps to choose from.
    let all = dump_dom(&chromium, &format!("{}/", collector.url()), &[]);
    assert_eq!(
        all.matches("<tr class=\"user\" data-user-id=\"maya\"")
            .count(),
        2,
        "{all}"
    );
    assert!(all.contains("data-app=\"game-b\""), "{all}");
    assert!(all.contains("data-app=\"test-key\""), "{all}");
    assert_eq!(metric(&all, "metric-users"), Some(3));

    // One app, after the live refresh has re-rendered the page (virtual time runs the poll).
    let scoped_url = format!("{}/?app=game-b", collector.url());
    let scoped = dump_dom(&chromium, &scoped_url, &["--virtual-time-budget=5000"]);
    assert!(
        scoped.contains("<div id=\"live\" data-rendered=\"live\">"),
        "{scoped}"
    );
    assert_eq!(metric(&scoped, "metric-users"), Some(1), "{scoped}");
    assert_eq!(metric(&scoped, "metric-sessions"), Some(2), "{scoped}");
    assert_eq!(sessions_cell(&scoped, "maya"), Some(2), "{scoped}");
    assert!(user_row(&scoped, "leo").is_none(), "{scoped}");
    assert_eq!(
        bars(&scoped, "chart-sessions-per-day", "data-day"),
        days(&[("2025-12-04", 2)])
    );
    assert!(
        scoped.contains("data-app=\"game-b\" href=\"/?app=game-b\" aria-current=\"page\""),
        "{scoped}"
    );
    // Her row links to her usage in that app, which counts that app's sessions only.
    assert!(
        scoped.contains("href=\"/user?app=game-b&amp;device=phone-1&amp;user=maya\""),
        "{scoped}"
    );
    let usage = dump_dom(
        &chromium,
        &format!(
            "{}/user?app=game-b&device=phone-1&user=maya",
            collector.url()
        ),
        &["--virtual-time-budget=5000"],
    );
    assert!(
        usage.contains("<div id=\"live\" data-rendered=\"live\">"),
        "{usage}"
    );
    assert_eq!(metric(&usage, "metric-sessions"), Some(2), "{usage}");
    let original = dump_dom(
        &chromium,
        &format!(
            "{}/user?app=test-key&device=phone-1&user=maya",
            collector.url()
        ),
        &[],
    );
    assert_eq!(metric(&original, "metric-sessions"), Some(6), "{original}");
    // The sessions table names the device id.
    assert!(
        original.contains("<code class=\"device-id\">phone-1</code>"),
        "{original}"
    );
}
