//! Text for people: HTML escaping and UTC dates, times and durations. The bottom of the
//! collector's modules (the store, the charts, the pages and the log all use it; it uses none).

/// Days since 1970-01-01 as "YYYY-MM-DD".
pub fn format_day(day: i64) -> String {
    let (year, month, day) = civil_from_days(day);
    format!("{year:04}-{month:02}-{day:02}")
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

/// A log line's time: "2026-12-04T16:50:07.123Z" (RFC 3339, UTC, milliseconds).
pub fn utc_timestamp(at: std::time::SystemTime) -> String {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let whole = since.as_secs() as i64;
    let (year, month, day) = civil_from_days(whole.div_euclid(86_400));
    let secs_of_day = whole.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        since.subsec_millis()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_days_and_durations_for_people() {
        assert_eq!(format_time(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_764_190_000.999), "2025-11-26 20:46:40 UTC");
        assert_eq!(format_time(951_782_400.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_day(20_418), "2025-11-26");
        assert_eq!(format_duration(12.34), "12.3 s");
        assert_eq!(format_duration(123.333), "2 min 03 s");
        assert_eq!(format_duration(3723.0), "1 h 02 min 03 s");
    }

    #[test]
    fn log_timestamps_are_rfc3339_utc() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_764_190_000_042);
        assert_eq!(utc_timestamp(at), "2025-11-26T20:46:40.042Z");
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
