//! Judging a response: what the collector's answer means for the batch (glean-core's
//! `upload/result.rs`), and when it asks to be left alone (`Retry-After`).

use std::time::{Duration, SystemTime};

/// How a delivery attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the batch is acknowledged.
    Delivered,
    /// Network error, timeout, 408, 429, 5xx, 3xx: send the same batch again later.
    Retry {
        /// What went wrong, for the log.
        reason: String,
        /// The server's `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
    /// 413: send smaller batches.
    TooLarge,
    /// Other 4xx: something in the batch is rejected; bisect to find it.
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// 401/403: the API key is refused; keep everything.
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
}

/// What an HTTP status means for the batch sent.
pub fn judge(status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        401 | 403 => Outcome::Unauthorized { status },
        413 => Outcome::TooLarge,
        408 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("HTTP {status}"),
            retry_after,
        },
        400..=499 => Outcome::Rejected { status },
        _ => Outcome::Retry {
            reason: format!("unexpected HTTP {status}"),
            retry_after,
        },
    }
}

/// The longest wait a `Retry-After` imposes: a day.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// `Retry-After`: delay-seconds or an HTTP date, in any of the three forms RFC 9110 asks
/// recipients to accept (IMF-fixdate, RFC 850, asctime), through httpdate.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_judged_as_the_contract_says() {
        assert_eq!(judge(200, None), Outcome::Delivered);
        assert_eq!(judge(204, None), Outcome::Delivered);
        assert_eq!(judge(401, None), Outcome::Unauthorized { status: 401 });
        assert_eq!(judge(403, None), Outcome::Unauthorized { status: 403 });
        assert_eq!(judge(413, None), Outcome::TooLarge);
        assert_eq!(judge(400, None), Outcome::Rejected { status: 400 });
        assert_eq!(judge(422, None), Outcome::Rejected { status: 422 });
        for retry in [408, 429, 500, 503, 302] {
            assert!(
                matches!(judge(retry, None), Outcome::Retry { .. }),
                "{retry}"
            );
        }
    }

    /// 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
    const EXAMPLE: u64 = 784_111_777;

    #[test]
    fn retry_after_takes_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn retry_after_takes_the_three_date_forms_of_rfc_9110() {
        let example = SystemTime::UNIX_EPOCH + Duration::from_secs(EXAMPLE);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
            "Sunday, 06-Nov-94 08:49:37 GMT", // RFC 850 (obsolete)
            "Sun Nov  6 08:49:37 1994",       // ANSI C asctime (obsolete)
        ] {
            assert_eq!(
                httpdate::parse_http_date(form).ok(),
                Some(example),
                "{form}"
            );
            assert_eq!(
                parse_retry_after(form),
                Some(Duration::ZERO),
                "in the past: {form}"
            );
        }
    }

    #[test]
    fn a_future_date_waits_until_then_at_most_a_day() {
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let wait = parse_retry_after(&httpdate::fmt_http_date(in_a_minute)).unwrap();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        let next_year = SystemTime::now() + Duration::from_secs(366 * 86_400);
        let capped = parse_retry_after(&httpdate::fmt_http_date(next_year));
        assert_eq!(capped, Some(MAX_RETRY_AFTER));
    }
}
