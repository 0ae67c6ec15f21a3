//! The dashboard page. Rendered on the server so that the numbers are in the first response
//! (a `--dump-dom` check sees them without waiting for scripts), then refreshed every second by
//! inline JavaScript that rebuilds the same markup from `GET /api/users`.
//!
//! Stable hooks for tests: each user is `<tr class="user" data-user-id=".." data-device-id="..">`
//! (`data-user-id=""` for anonymous users) with cells `td.sessions`, `td.sessions-ended`,
//! `td.total-time`, `td.custom-events`, and one `tr.session` per listed session with
//! `td.start`, `td.end`, `td.duration`. The `tbody#users` carries `data-rendered="server"` or,
//! after the first refresh, `data-rendered="live"`.

use crate::store::{SessionSummary, UserSummary};

pub fn render(users: &[UserSummary], datapoints: usize) -> String {
    let mut rows = String::new();
    for user in users {
        rows.push_str(&user_row(user));
    }
    if users.is_empty() {
        rows.push_str(EMPTY_ROW);
    }
    PAGE.replace("{{ROWS}}", &rows)
        .replace("{{DATAPOINTS}}", &datapoints.to_string())
}

const EMPTY_ROW: &str =
    "<tr class=\"empty\"><td colspan=\"7\">No data yet: point the SDK at this collector.</td></tr>";

fn user_row(user: &UserSummary) -> String {
    let user_id = user.user_id.as_deref().unwrap_or("");
    let shown_user = match &user.user_id {
        Some(id) => escape(id),
        None => "<em>anonymous</em>".to_string(),
    };
    let mut sessions = String::new();
    for session in &user.last_sessions {
        sessions.push_str(&session_row(session));
    }
    format!(
        "<tr class=\"user\" data-user-id=\"{uid}\" data-device-id=\"{dev}\">\
<td class=\"device\">{dev}</td><td class=\"user-id\">{shown_user}</td>\
<td class=\"sessions\">{sessions_count}</td><td class=\"sessions-ended\">{ended}</td>\
<td class=\"total-time\" data-seconds=\"{total}\">{total_text}</td>\
<td class=\"custom-events\">{custom}</td>\
<td class=\"last-sessions\"><table class=\"sessions-list\">{sessions}</table></td></tr>\n",
        uid = escape(user_id),
        dev = escape(&user.device_id),
        sessions_count = user.sessions,
        ended = user.sessions_ended,
        total = user.total_time,
        total_text = format_duration(user.total_time),
        custom = escape(&format_custom_events(user)),
    )
}

fn session_row(session: &SessionSummary) -> String {
    format!(
        "<tr class=\"session{open}\" data-session-id=\"{id}\"><td class=\"start\">{start}</td>\
<td class=\"end\">{end}</td><td class=\"duration\">{duration}</td></tr>",
        open = if session.end.is_none() { " open" } else { "" },
        id = escape(&session.session_id),
        start = session.start.map_or("?".into(), format_time),
        end = session.end.map_or("open".into(), format_time),
        duration = session.duration.map_or("—".into(), format_duration),
    )
}

fn format_custom_events(user: &UserSummary) -> String {
    user.custom_events
        .iter()
        .map(|(name, count)| format!("{name}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Escapes text for element content and double- or single-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// "12.3 s", "2 min 03 s", "1 h 02 min 03 s" (same as `fmtDuration` in the page script).
pub fn format_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let whole = seconds.floor() as u64;
    let (hours, minutes, secs) = (whole / 3600, whole / 60 % 60, whole % 60);
    if hours == 0 {
        format!("{minutes} min {secs:02} s")
    } else {
        format!("{hours} h {minutes:02} min {secs:02} s")
    }
}

/// Unix seconds as "YYYY-MM-DD HH:MM:SS UTC", truncated to the second (same as `fmtTime`).
pub fn format_time(unix_seconds: f64) -> String {
    let whole = unix_seconds.floor() as i64;
    let (days, secs_of_day) = (whole.div_euclid(86_400), whole.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stint collector</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; background: #fafafa; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  #status { color: #666; margin-bottom: 1rem; }
  #status.offline { color: #b00020; }
  table#table { border-collapse: collapse; width: 100%; background: #fff; }
  #table > thead th { text-align: left; border-bottom: 2px solid #ccc; padding: .4rem .6rem; }
  #table > tbody > tr > td { border-bottom: 1px solid #e5e5e5; padding: .4rem .6rem; vertical-align: top; }
  td.sessions, td.sessions-ended, td.total-time { font-variant-numeric: tabular-nums; text-align: right; }
  table.sessions-list { border-collapse: collapse; font-size: 12px; }
  table.sessions-list td { padding: 0 .6rem 0 0; white-space: nowrap; }
  table.sessions-list td.start, table.sessions-list td.end { min-width: 11.5em; }
  tr.session.open td.end { color: #0a7d28; font-weight: 600; }
  tr.empty td { color: #666; font-style: italic; }
</style>
</head>
<body>
<h1>Stint collector</h1>
<div id="status">Datapoints received: <span id="datapoints">{{DATAPOINTS}}</span> · <span id="updated">rendered by the server</span></div>
<table id="table">
<thead><tr><th>Device</th><th>User</th><th>Sessions</th><th>Ended</th><th>Total time</th><th>Custom events</th><th>Last sessions (start, end, duration)</th></tr></thead>
<tbody id="users" data-rendered="server">
{{ROWS}}</tbody>
</table>
<script>
"use strict";
(function () {
  function fmtDuration(s) {
    if (s < 60) return s.toFixed(1) + " s";
    var whole = Math.floor(s), h = Math.floor(whole / 3600), m = Math.floor(whole / 60) % 60, sec = whole % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return h === 0 ? m + " min " + pad(sec) + " s" : h + " h " + pad(m) + " min " + pad(sec) + " s";
  }
  function fmtTime(t) {
    return new Date(Math.floor(t) * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }
  // Built with textContent only: user-controlled strings never reach innerHTML.
  function cell(row, cls, text) {
    var td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }
  function userRow(u) {
    var tr = document.createElement("tr");
    tr.className = "user";
    tr.dataset.userId = u.user_id === null ? "" : u.user_id;
    tr.dataset.deviceId = u.device_id;
    cell(tr, "device", u.device_id);
    var who = cell(tr, "user-id", u.user_id === null ? "" : u.user_id);
    if (u.user_id === null) {
      var em = document.createElement("em");
      em.textContent = "anonymous";
      who.appendChild(em);
    }
    cell(tr, "sessions", String(u.sessions));
    cell(tr, "sessions-ended", String(u.sessions_ended));
    cell(tr, "total-time", fmtDuration(u.total_time)).dataset.seconds = String(u.total_time);
    cell(tr, "custom-events", Object.keys(u.custom_events).sort().map(function (k) {
      return k + ": " + u.custom_events[k];
    }).join(", "));
    var list = document.createElement("table");
    list.className = "sessions-list";
    u.last_sessions.forEach(function (s) {
      var sr = document.createElement("tr");
      sr.className = s.end === null ? "session open" : "session";
      sr.dataset.sessionId = s.session_id;
      cell(sr, "start", s.start === null ? "?" : fmtTime(s.start));
      cell(sr, "end", s.end === null ? "open" : fmtTime(s.end));
      cell(sr, "duration", s.duration === null ? "\u2014" : fmtDuration(s.duration));
      list.appendChild(sr);
    });
    cell(tr, "last-sessions", "").appendChild(list);
    return tr;
  }
  function render(data) {
    var body = document.createElement("tbody");
    body.id = "users";
    body.dataset.rendered = "live";
    data.users.forEach(function (u) { body.appendChild(userRow(u)); });
    if (data.users.length === 0) {
      var tr = document.createElement("tr");
      tr.className = "empty";
      cell(tr, "", "No data yet: point the SDK at this collector.").colSpan = 7;
      body.appendChild(tr);
    }
    var old = document.getElementById("users");
    old.parentNode.replaceChild(body, old);
  }
  function refresh() {
    Promise.all([
      fetch("/api/users", { cache: "no-store" }).then(function (r) { return r.json(); }),
      fetch("/api/stats", { cache: "no-store" }).then(function (r) { return r.json(); })
    ]).then(function (results) {
      render(results[0]);
      document.getElementById("datapoints").textContent = String(results[1].datapoints);
      document.getElementById("status").className = "";
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    }).catch(function () {
      document.getElementById("status").className = "offline";
      document.getElementById("updated").textContent = "collector unreachable, retrying";
    }).then(function () { setTimeout(refresh, 1000); });
  }
  setTimeout(refresh, 1000);
})();
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;
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
                },
                SessionSummary {
                    session_id: "s1".into(),
                    start: Some(1_764_190_000.123),
                    end: Some(1_764_190_123.456),
                    duration: Some(123.333),
                },
            ],
            custom_events: BTreeMap::from([("level_up".to_string(), 2)]),
        }
    }

    #[test]
    fn formats_times_and_durations_for_people() {
        assert_eq!(format_time(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_764_190_000.999), "2025-11-26 20:46:40 UTC");
        assert_eq!(format_time(951_782_400.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_duration(12.34), "12.3 s");
        assert_eq!(format_duration(123.333), "2 min 03 s");
        assert_eq!(format_duration(3723.0), "1 h 02 min 03 s");
    }

    #[test]
    fn renders_a_row_per_user_with_stable_hooks() {
        let page = render(&[user(Some("alice")), user(None)], 7);
        assert!(page.contains("<tr class=\"user\" data-user-id=\"alice\" data-device-id=\"dev\">"));
        assert!(page.contains("<td class=\"sessions\">3</td>"));
        assert!(page.contains("<td class=\"end\">open</td>"));
        assert!(page.contains("<td class=\"duration\">2 min 03 s</td>"));
        assert!(page.contains("<td class=\"custom-events\">level_up: 2</td>"));
        assert!(page.contains("data-user-id=\"\""));
        assert!(page.contains("<span id=\"datapoints\">7</span>"));
        assert!(!page.contains("{{"));
    }

    #[test]
    fn escapes_user_controlled_text() {
        let mut hostile = user(Some("<script>alert('x')</script>\"&"));
        hostile.device_id = "\"><img src=x>".into();
        let page = render(&[hostile], 0);
        assert!(!page.contains("<script>alert"));
        assert!(!page.contains("<img src=x>"));
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"));
    }

    #[test]
    fn says_so_when_there_is_no_data() {
        assert!(render(&[], 0).contains("class=\"empty\""));
    }
}
