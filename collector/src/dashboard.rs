//! The dashboard's pages, rendered on the server so that every number is in the first response
//! (a `--dump-dom` check sees it without waiting for scripts), then kept live by a small inline
//! script that polls `GET /api/live` every second and swaps in the re-rendered `#live`
//! fragment; the poll carries the revision it shows, and an unchanged one gets no fragment.
//!
//! - `/` (overview): sessions per day and daily active users across all users as charts, and
//!   the users with a search box (`?q=` filters on the server too).
//! - `/user?device=D&user=U` ("App Usage", `user` absent for an anonymous user): the Sessions
//!   metric in total and per day, session lengths, the latest sessions with app version and OS,
//!   and custom event counts.
//!
//! Stable hooks for tests: `#live[data-rendered="server"|"live"]`; charts are
//! `figure.chart#chart-sessions-per-day`, `#chart-daily-active-users`, `#chart-session-length`
//! with one `rect.bar` per bar carrying `data-day="YYYY-MM-DD"` (or `data-bucket`) and
//! `data-value`. Overview rows are `tr.user[data-user-id][data-device-id]` (`data-user-id=""`
//! for anonymous) with `td.sessions`, `td.sessions-ended`, `td.total-time[data-seconds]`,
//! `td.app-version`, `td.os`, `td.custom-events`; rows a search excludes carry `hidden`. The
//! App Usage page has `#metric-sessions[data-value]`, `tr.session` rows (`td.start`, `td.end`,
//! `td.duration`, `td.app-version`, `td.os`) and `tr.custom-event[data-name]` with `td.count`.

use crate::chart::{bar_chart, Bar};
use crate::store::{bucket_labels, DayCount, SessionSummary, UserSummary, UserUsage};
use crate::text::{escape, format_day, format_duration, format_time};
use std::fmt::Write;

/// How many days a per-day chart spans at most (the most recent ones).
pub const MAX_DAYS_SHOWN: i64 = 60;

/// How many users the overview lists at most (the most recently active that match the search).
pub const USERS_LISTED: usize = 200;

/// What the overview shows.
pub struct Overview<'a> {
    /// Every app (API key) that sent data, for the app selector.
    pub apps: &'a [String],
    /// The app shown; `None`: all of them.
    pub app: Option<&'a str>,
    /// The users listed: matching the search, most recently active first, each with its
    /// latest session only.
    pub users: &'a [UserSummary],
    /// How many users match the search in all.
    pub matching: usize,
    pub total_users: usize,
    pub days: &'a [DayCount],
    pub datapoints: usize,
    /// The search, as typed ("" for none).
    pub query: &'a str,
}

/// Which (device, user) an App Usage page is about.
pub struct UserKey<'a> {
    pub app: Option<&'a str>,
    pub device_id: &'a str,
    pub user_id: Option<&'a str>,
}

/// The overview page, whole.
pub fn overview_page(overview: &Overview) -> String {
    let search = format!(
        "<div class=\"search\"><label for=\"search\">Find a user</label> \
<input id=\"search\" type=\"search\" placeholder=\"user id or device id\" autocomplete=\"off\" \
value=\"{}\"> <span class=\"hint\"><span id=\"users-shown\">{}</span> shown</span></div>",
        escape(overview.query),
        overview
            .users
            .iter()
            .filter(|u| matches_query(u, overview.query))
            .count(),
    );
    page(
        "overview",
        "Stint collector",
        &format!("{}{search}", app_selector(overview.apps, overview.app)),
        &overview_fragment(overview),
    )
}

/// The live part of the overview (what `GET /api/live?view=overview` returns).
pub fn overview_fragment(overview: &Overview) -> String {
    let sessions: u64 = overview.days.iter().map(|d| d.sessions).sum();
    let mut html = String::new();
    let _ = write!(
        html,
        "<section class=\"metrics\">{}{}{}</section>",
        metric("metric-users", "Users", overview.total_users as u64, None),
        metric("metric-sessions", "Sessions", sessions, None),
        metric(
            "metric-datapoints",
            "Datapoints",
            overview.datapoints as u64,
            None
        ),
    );
    html.push_str("<section class=\"charts\">");
    html.push_str(&bar_chart(
        "chart-sessions-per-day",
        "Sessions per day (UTC)",
        "day",
        "sessions",
        &day_bars(overview.days, |d| d.sessions),
        "No sessions yet: the chart fills as session starts arrive",
    ));
    html.push_str(&bar_chart(
        "chart-daily-active-users",
        "Daily active users",
        "day",
        "users",
        &day_bars(overview.days, |d| d.active_users),
        "No sessions yet: a user is active on a day a session starts",
    ));
    html.push_str("</section>");
    html.push_str(
        "<h2>Users</h2><table class=\"list\" id=\"users-table\"><thead><tr><th>User</th>\
<th>Device</th><th class=\"num\">Sessions</th><th class=\"num\">Ended</th>\
<th class=\"num\">Total time</th><th>Last session</th><th>App version</th><th>OS</th>\
<th>Custom events</th></tr></thead><tbody id=\"users\">",
    );
    for user in overview.users {
        html.push_str(&user_row(
            overview.app,
            user,
            matches_query(user, overview.query),
        ));
    }
    if overview.matching > overview.users.len() {
        let _ = write!(
            html,
            "<tr class=\"more\"><td colspan=\"9\">{} more: the {} most recently active are \
listed; search to find the others.</td></tr>",
            overview.matching - overview.users.len(),
            overview.users.len()
        );
    }
    if overview.total_users == 0 {
        html.push_str(
            "<tr class=\"empty\"><td colspan=\"9\">No data yet: point the SDK at this \
collector.</td></tr>",
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// The apps as links, the one shown marked: `nav#apps` with `a.app[data-app]` (`data-app=""`
/// for all apps) and `aria-current="page"` on the selected one.
fn app_selector(apps: &[String], selected: Option<&str>) -> String {
    let mut html =
        String::from("<nav id=\"apps\" class=\"apps\"><span class=\"hint\">App:</span> ");
    let mut link = |key: Option<&str>, label: &str| {
        let href = match key {
            Some(key) => {
                let mut query = form_urlencoded::Serializer::new(String::new());
                query.append_pair("app", key);
                format!("/?{}", query.finish())
            }
            None => "/".to_string(),
        };
        let current = if key == selected {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            html,
            "<a class=\"app\" data-app=\"{}\" href=\"{}\"{current}>{}</a> ",
            escape(key.unwrap_or("")),
            escape(&href),
            label
        );
    };
    link(None, "All apps");
    for app in apps {
        let label = if app.is_empty() {
            "<em>no key</em>".to_string()
        } else {
            escape(app)
        };
        link(Some(app), &label);
    }
    html.push_str("</nav>");
    html
}

/// Case-insensitive substring of the user id (or "anonymous") or the device id.
pub fn matches_query(user: &UserSummary, query: &str) -> bool {
    let query = query.trim().to_lowercase();
    let user_id = user
        .user_id
        .as_deref()
        .unwrap_or("anonymous")
        .to_lowercase();
    query.is_empty() || user_id.contains(&query) || user.device_id.to_lowercase().contains(&query)
}

/// The link to a user's App Usage page (unescaped; escape it for an attribute).
pub fn user_link(app: Option<&str>, device_id: &str, user_id: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(app) = app {
        query.append_pair("app", app);
    }
    query.append_pair("device", device_id);
    if let Some(user_id) = user_id {
        query.append_pair("user", user_id);
    }
    format!("/user?{}", query.finish())
}

fn user_row(app: Option<&str>, user: &UserSummary, shown: bool) -> String {
    let latest = user.last_sessions.first();
    let name = match &user.user_id {
        Some(id) => escape(id),
        None => "<em>anonymous</em>".to_string(),
    };
    format!(
        "<tr class=\"user\" data-user-id=\"{uid}\" data-device-id=\"{dev}\"{hidden}>\
<td class=\"user-id\"><a href=\"{link}\">{name}</a></td><td class=\"device\">{dev}</td>\
<td class=\"sessions num\">{sessions}</td><td class=\"sessions-ended num\">{ended}</td>\
<td class=\"total-time num\" data-seconds=\"{total}\">{total_text}</td>\
<td class=\"last-session\">{last}</td><td class=\"app-version\">{app}</td><td class=\"os\">{os}</td>\
<td class=\"custom-events\">{custom}</td></tr>",
        uid = escape(user.user_id.as_deref().unwrap_or("")),
        dev = escape(&user.device_id),
        hidden = if shown { "" } else { " hidden" },
        link = escape(&user_link(app, &user.device_id, user.user_id.as_deref())),
        sessions = user.sessions,
        ended = user.sessions_ended,
        total = user.total_time,
        total_text = format_duration(user.total_time),
        last = latest
            .and_then(|s| s.start.or(s.end))
            .map_or("—".into(), format_time),
        app = escape(
            latest
                .and_then(|s| s.context.app_version.as_deref())
                .unwrap_or("—")
        ),
        os = escape(&latest.and_then(SessionSummary::os).unwrap_or("—".into())),
        custom = escape(
            &user
                .custom_events
                .iter()
                .map(|(name, count)| format!("{name}: {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// The App Usage page, whole.
pub fn user_page(key: &UserKey, usage: Option<&UserUsage>) -> String {
    let who = match key.user_id {
        Some(id) => escape(id),
        None => "anonymous user".into(),
    };
    let heading = format!(
        "<p class=\"crumbs\"><a href=\"{back}\">← All users</a></p><h1>App Usage: \
<span id=\"user-name\">{who}</span></h1><p class=\"device-line\">on device \
<code>{}</code></p>",
        escape(key.device_id),
        back = escape(&match key.app {
            Some(app) => format!(
                "/?{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("app", app)
                    .finish()
            ),
            None => "/".into(),
        }),
    );
    page("user", "App Usage · Stint", &heading, &user_fragment(usage))
}

/// The live part of the App Usage page (what `GET /api/live?view=user&...` returns).
pub fn user_fragment(usage: Option<&UserUsage>) -> String {
    let Some(usage) = usage else {
        return "<p class=\"empty\" id=\"no-data\">No data for this user yet. The page updates \
by itself when it arrives.</p>"
            .into();
    };
    let user = &usage.summary;
    let average = if user.sessions_ended == 0 {
        None
    } else {
        Some(user.total_time / user.sessions_ended as f64)
    };
    let custom_total: u64 = user.custom_events.values().sum();
    let mut html = String::new();
    let _ = write!(
        html,
        "<section class=\"metrics\">{}{}{}{}{}</section>",
        metric("metric-sessions", "Sessions", user.sessions, None),
        metric("metric-sessions-ended", "Ended", user.sessions_ended, None),
        metric(
            "metric-total-time",
            "Total time",
            user.total_time.round() as u64,
            Some(format_duration(user.total_time))
        ),
        metric(
            "metric-average-length",
            "Average length",
            average.map_or(0, |a| a.round() as u64),
            Some(average.map_or("—".into(), format_duration))
        ),
        metric("metric-custom-events", "Custom events", custom_total, None),
    );
    html.push_str("<section class=\"charts\">");
    html.push_str(&bar_chart(
        "chart-sessions-per-day",
        "Sessions per day (UTC)",
        "day",
        "sessions",
        &day_bars(&usage.days, |d| d.sessions),
        "No session start from this user yet",
    ));
    let buckets: Vec<Bar> = bucket_labels()
        .iter()
        .zip(usage.duration_histogram)
        .map(|(label, value)| Bar {
            key: (*label).into(),
            label: (*label).into(),
            value,
        })
        .collect();
    html.push_str(&bar_chart(
        "chart-session-length",
        "Session length (ended sessions)",
        "bucket",
        "sessions",
        &buckets,
        "No session has ended yet: a session's length is known when it ends",
    ));
    html.push_str("</section><h2>Latest sessions</h2>");
    html.push_str(
        "<table class=\"list\" id=\"sessions\"><thead><tr><th>Start</th><th>End</th>\
<th class=\"num\">Duration</th><th>App version</th><th>OS</th><th>Device</th></tr></thead><tbody>",
    );
    for session in &user.last_sessions {
        let _ =
            write!(
            html,
            "<tr class=\"session{open}\" data-session-id=\"{id}\"><td class=\"start\">{start}</td>\
<td class=\"end\">{end}</td><td class=\"duration num\">{duration}</td>\
<td class=\"app-version\">{app}</td><td class=\"os\">{os}</td><td class=\"device\"><code \
class=\"device-id\">{device}</code>{model}</td></tr>",
            open = if session.end.is_none() { " open" } else { "" },
            id = escape(&session.session_id),
            start = session.start.map_or("?".into(), format_time),
            end = session.end.map_or("open".into(), format_time),
            duration = session.duration.map_or("—".into(), format_duration),
            app = escape(session.context.app_version.as_deref().unwrap_or("—")),
            os = escape(&session.os().unwrap_or("—".into())),
            device = escape(&user.device_id),
            // The model, when the SDK knew it, after the id that a deletion request names.
            model = session.context.device_model.as_deref().map_or(String::new(), |model| {
                format!(" <span class=\"device-model\">{}</span>", escape(model))
            }),
        );
    }
    html.push_str("</tbody></table><h2>Custom events</h2>");
    if user.custom_events.is_empty() {
        html.push_str("<p class=\"empty\">No custom events.</p>");
    } else {
        html.push_str(
            "<table class=\"list narrow\" id=\"custom-events\"><thead><tr><th>Name</th>\
<th class=\"num\">Count</th></tr></thead><tbody>",
        );
        let mut events: Vec<(&String, &u64)> = user.custom_events.iter().collect();
        events.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (name, count) in events {
            let _ = write!(
                html,
                "<tr class=\"custom-event\" data-name=\"{n}\"><td class=\"name\">{n}</td>\
<td class=\"count num\">{count}</td></tr>",
                n = escape(name),
            );
        }
        html.push_str("</tbody></table>");
    }
    html
}

fn metric(id: &str, label: &str, value: u64, shown: Option<String>) -> String {
    format!(
        "<div class=\"metric\" id=\"{id}\" data-value=\"{value}\"><span class=\"label\">{label}\
</span><span class=\"value\">{shown}</span></div>",
        shown = shown.unwrap_or_else(|| value.to_string()),
    )
}

/// One bar per day from the first day with data to the last (at most [`MAX_DAYS_SHOWN`], the
/// most recent), days without data as zero bars so the time axis is even.
pub fn day_bars(days: &[DayCount], value: impl Fn(&DayCount) -> u64) -> Vec<Bar> {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Vec::new();
    };
    let start = first.day.max(last.day - MAX_DAYS_SHOWN + 1);
    let mut by_day = days.iter().peekable();
    (start..=last.day)
        .map(|day| {
            while by_day.peek().is_some_and(|d| d.day < day) {
                by_day.next();
            }
            let count = by_day
                .peek()
                .filter(|d| d.day == day)
                .map_or(0, |d| value(d));
            let key = format_day(day);
            Bar {
                label: key[5..].to_string(),
                key,
                value: count,
            }
        })
        .collect()
}

fn page(view: &str, title: &str, header: &str, live: &str) -> String {
    PAGE.replace("{{VIEW}}", view)
        .replace("{{TITLE}}", title)
        .replace("{{HEADER}}", header)
        .replace("{{LIVE}}", live)
}
const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #f4f5f7; }
  header.top { background: #1f2a44; color: #fff; padding: .6rem 1.5rem; display: flex; gap: 1rem; align-items: baseline; }
  header.top a { color: #fff; font-weight: 600; text-decoration: none; }
  #status { color: #c9d2e3; font-size: 12px; }
  #status.offline { color: #ffb4b4; }
  main { padding: 1rem 1.5rem 2rem; max-width: 1200px; }
  h1 { font-size: 1.4rem; margin: .2rem 0; }
  h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
  a { color: #2a52be; }
  .crumbs { margin: 0; font-size: 13px; }
  .device-line { margin: 0 0 .8rem; color: #555; }
  .metrics { display: flex; flex-wrap: wrap; gap: .8rem; margin: .6rem 0 1rem; }
  .metric { background: #fff; border-radius: 8px; padding: .6rem 1rem; min-width: 8.5rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  .metric .label { display: block; color: #666; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .metric .value { display: block; font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: .8rem; }
  figure.chart { margin: 0; background: #fff; border-radius: 8px; padding: .6rem .8rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  figure.chart figcaption { font-weight: 600; margin-bottom: .3rem; }
  figure.chart svg { width: 100%; height: auto; display: block; }
  rect.bar { fill: #4f6bed; }
  #chart-daily-active-users rect.bar { fill: #1e9e6a; }
  #chart-session-length rect.bar { fill: #e08a1e; }
  rect.bar:hover { opacity: .8; }
  line.axis { stroke: #999; } line.grid { stroke: #e3e3e3; stroke-dasharray: 3 3; }
  text.tick, text.label { font-size: 11px; fill: #666; } text.value { font-size: 11px; fill: #333; }
  text.empty { font-size: 14px; fill: #999; }
  .search { margin: .4rem 0 .2rem; }
  .search input { font: inherit; padding: .35rem .6rem; width: 18rem; border: 1px solid #bbb; border-radius: 6px; }
  .hint { color: #666; font-size: 12px; }
  table.list { border-collapse: collapse; width: 100%; background: #fff; border-radius: 8px; overflow: hidden; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  table.list.narrow { width: auto; min-width: 20rem; }
  table.list th { text-align: left; background: #eef0f4; padding: .45rem .7rem; font-weight: 600; }
  table.list td { border-top: 1px solid #eceef2; padding: .4rem .7rem; vertical-align: top; }
  .num { text-align: right; font-variant-numeric: tabular-nums; }
  tr.session.open td.end { color: #0a7d28; font-weight: 600; }
  .empty { color: #666; font-style: italic; }
</style>
</head>
<body data-view="{{VIEW}}">
<header class="top"><a href="/">Stint collector</a><span id="status">rendered by the server</span></header>
<main>
{{HEADER}}
<div id="live" data-rendered="server">{{LIVE}}</div>
</main>
<script>
"use strict";
(function () {
  var live = document.getElementById("live");
  // The search the shown fragment was rendered for (a new one needs a new fragment).
  var lastQuery = new URL(location.href).searchParams.get("q");
  var search = document.getElementById("search");
  var status = document.getElementById("status");
  function matches(row, query) {
    var user = row.dataset.userId === "" ? "anonymous" : row.dataset.userId;
    return query === "" || user.toLowerCase().indexOf(query) >= 0 ||
      row.dataset.deviceId.toLowerCase().indexOf(query) >= 0;
  }
  function applySearch() {
    if (!search) return;
    var query = search.value.trim().toLowerCase(), shown = 0;
    Array.prototype.forEach.call(document.querySelectorAll("tr.user"), function (row) {
      row.hidden = !matches(row, query);
      if (!row.hidden) shown += 1;
    });
    document.getElementById("users-shown").textContent = String(shown);
  }
  if (search) {
    search.addEventListener("input", function () {
      applySearch();
      var url = new URL(location.href);
      if (search.value) { url.searchParams.set("q", search.value); } else { url.searchParams.delete("q"); }
      history.replaceState(null, "", url);
    });
  }
  // What the shown fragment was rendered from: none yet, so the first poll re-renders.
  var revision = null;
  function refresh() {
    var url = new URL("/api/live" + location.search, location.href);
    url.searchParams.set("view", document.body.dataset.view);
    // The server answers without the fragment when the data has not changed since.
    if (revision !== null && url.searchParams.get("q") === lastQuery) {
      url.searchParams.set("revision", revision);
    }
    fetch(url, { cache: "no-store" }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    }).then(function (data) {
      // The fragment is rendered and escaped by the server, like the first response.
      if (typeof data.html === "string") {
        live.innerHTML = data.html;
        live.dataset.rendered = "live";
        applySearch();
      }
      revision = data.revision;
      lastQuery = url.searchParams.get("q");
      status.className = "";
      status.textContent = data.datapoints + " datapoints · updated " + new Date().toLocaleTimeString();
    }).catch(function () {
      status.className = "offline";
      status.textContent = "collector unreachable, retrying";
    }).then(function () { setTimeout(refresh, 1000); });
  }
  applySearch();
  setTimeout(refresh, 1000);
})();
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::SessionContext;
    use std::collections::BTreeMap;

    fn user(user_id: Option<&str>) -> UserSummary {
        UserSummary {
            device_id: "dev".into(),
            user_id: user_id.map(String::from),
            sessions: 3,
            sessions_ended: 2,
            total_time: 125.5,
            last_sessions: vec![
                SessionSummary {
                    session_id: "s2".into(),
                    start: Some(1_764_190_200.0),
                    end: None,
                    duration: None,
                    context: SessionContext {
                        app_version: Some("2.0.1".into()),
                        os_name: Some("Android".into()),
                        os_version: Some("14".into()),
                        ..SessionContext::default()
                    },
                },
                SessionSummary {
                    session_id: "s1".into(),
                    start: Some(1_764_190_000.123),
                    end: Some(1_764_190_123.456),
                    duration: Some(123.333),
                    context: SessionContext::default(),
                },
            ],
            custom_events: BTreeMap::from([("level_up".to_string(), 2)]),
        }
    }

    fn day(day: i64, sessions: u64) -> DayCount {
        DayCount {
            day,
            sessions,
            active_users: 1,
        }
    }

    #[test]
    fn the_overview_has_a_row_per_user_with_stable_hooks() {
        let users = [user(Some("alice")), user(None)];
        let page = overview_page(&Overview {
            apps: &[],
            app: None,
            users: &users,
            matching: users.len(),
            total_users: users.len(),
            days: &[day(20_418, 3)],
            datapoints: 7,
            query: "",
        });
        assert!(page.contains(
            "<tr class=\"user\" data-user-id=\"alice\" data-device-id=\"dev\"><td class=\"user-id\">\
<a href=\"/user?device=dev&amp;user=alice\">alice</a>"
        ));
        assert!(page.contains("<td class=\"sessions num\">3</td>"));
        assert!(
            page.contains("<td class=\"app-version\">2.0.1</td><td class=\"os\">Android 14</td>")
        );
        assert!(page.contains("<td class=\"custom-events\">level_up: 2</td>"));
        assert!(page.contains("href=\"/user?device=dev\"><em>anonymous</em>"));
        assert!(page.contains("data-day=\"2025-11-26\" data-value=\"3\""));
        assert!(page.contains("id=\"metric-datapoints\" data-value=\"7\""));
        assert!(!page.contains("class=\"more\""));
        let capped = overview_page(&Overview {
            apps: &[],
            app: None,
            users: &users,
            matching: 250,
            total_users: 300,
            days: &[],
            datapoints: 0,
            query: "",
        });
        assert!(capped.contains("id=\"metric-users\" data-value=\"300\""));
        assert!(capped.contains("248 more: the 2 most recently active are listed"));
        assert!(!page.contains("{{"));
    }

    #[test]
    fn a_search_hides_the_rows_it_excludes() {
        let users = [user(Some("alice")), user(Some("bob"))];
        let page = overview_page(&Overview {
            apps: &[],
            app: None,
            users: &users,
            matching: users.len(),
            total_users: users.len(),
            days: &[],
            datapoints: 0,
            query: "ALI",
        });
        assert!(page.contains("data-user-id=\"alice\" data-device-id=\"dev\">"));
        assert!(page.contains("data-user-id=\"bob\" data-device-id=\"dev\" hidden>"));
        assert!(page.contains("<span id=\"users-shown\">1</span>"));
        assert!(page.contains("value=\"ALI\""));
    }

    #[test]
    fn the_app_usage_page_shows_sessions_lengths_and_events() {
        let usage = UserUsage {
            summary: user(Some("alice")),
            days: vec![day(20_418, 2), day(20_420, 1)],
            duration_histogram: [0, 0, 0, 2, 0, 0, 0, 0],
        };
        let key = UserKey {
            app: None,
            device_id: "dev",
            user_id: Some("alice"),
        };
        let page = user_page(&key, Some(&usage));
        assert!(page.contains("id=\"metric-sessions\" data-value=\"3\""));
        // Three days, the middle one empty.
        let days: Vec<&str> = page
            .match_indices("data-day=\"")
            .map(|(i, _)| &page[i + 10..i + 20])
            .collect();
        assert_eq!(days, ["2025-11-26", "2025-11-27", "2025-11-28"]);
        assert!(page.contains("data-day=\"2025-11-27\" data-value=\"0\""));
        assert!(page.contains("data-bucket=\"1–5 min\" data-value=\"2\""));
        assert!(page.contains("<td class=\"end\">open</td>"));
        assert!(
            page.contains("<td class=\"app-version\">2.0.1</td><td class=\"os\">Android 14</td>")
        );
        assert!(page.contains("<td class=\"duration num\">2 min 03 s</td>"));
        assert!(page.contains("<tr class=\"custom-event\" data-name=\"level_up\">"));
        // The device column names the device id (what a deletion request needs).
        assert!(page.contains("<td class=\"device\"><code class=\"device-id\">dev</code></td>"));
        // No session has ended in the histogram's data? This one has: no blank note.
        assert!(!page.contains("No session has ended yet"));
        let none_ended = UserUsage {
            duration_histogram: [0; 8],
            ..usage.clone()
        };
        assert!(user_page(&key, Some(&none_ended)).contains("No session has ended yet"));
        assert!(user_page(&key, None).contains("id=\"no-data\""));
    }

    #[test]
    fn long_ranges_keep_the_most_recent_days() {
        let bars = day_bars(&[day(0, 1), day(500, 4)], |d| d.sessions);
        assert_eq!(bars.len(), MAX_DAYS_SHOWN as usize);
        assert_eq!(bars.last().unwrap().value, 4);
        assert!(bars[..bars.len() - 1].iter().all(|b| b.value == 0));
    }

    #[test]
    fn escapes_user_controlled_text() {
        let mut hostile = user(Some("<script>alert('x')</script>\"&"));
        hostile.device_id = "\"><img src=x>".into();
        hostile.last_sessions[0].context.app_version = Some("<b>1</b>".into());
        let users = [hostile.clone()];
        let page = overview_page(&Overview {
            apps: &[],
            app: None,
            users: &users,
            matching: users.len(),
            total_users: users.len(),
            days: &[],
            datapoints: 0,
            query: "\"><i>",
        });
        for text in [
            page,
            user_fragment(Some(&UserUsage {
                summary: hostile,
                days: vec![],
                duration_histogram: [0; 8],
            })),
        ] {
            assert!(!text.contains("<script>alert"));
            assert!(!text.contains("<img src=x>"));
            assert!(!text.contains("<b>1</b>") && !text.contains("<i>"));
        }
    }

    #[test]
    fn says_so_when_there_is_no_data() {
        let page = overview_page(&Overview {
            apps: &[],
            app: None,
            users: &[],
            matching: 0,
            total_users: 0,
            days: &[],
            datapoints: 0,
            query: "",
        });
        assert!(page.contains("class=\"empty\""));
        assert!(page.contains("No data yet"));
    }
}
