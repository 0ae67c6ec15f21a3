//! Fault injection for `POST /api/v3/data`, so that client tests can stage a misbehaving
//! server. Counters (`*_next`) are consumed one per request, at most one counter per request.

use crate::batch::Batch;
use serde_json::{json, Map, Value};

/// Where `redirect_next` points when no `redirect_location` is set: another loopback host
/// on which nothing listens, so a client that follows the redirect fails visibly.
pub const DEFAULT_REDIRECT_LOCATION: &str = "http://127.0.0.2:9/api/v3/data";

/// Size of the `huge_body_next` response body.
pub const HUGE_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Faults applied to `POST /api/v3/data`. Zero/`None`/`false` everywhere (the `Default`) means
/// a well-behaved server.
///
/// Per-request faults are tried in this order and the first with a non-zero counter is
/// consumed: `drop_next`, `hang_next`/`hang_all`, `garbage_next`, `redirect_next`,
/// `endless_body_next`, `huge_body_next`, `fail_next`. Only when none applies is the batch
/// validated and checked against `max_events_per_batch` and `reject_event_name`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Answer the next N requests with `fail_status`.
    pub fail_next: u32,
    /// Status for `fail_next` (e.g. 500, 429, 413, 401, 408); 0 means 500.
    pub fail_status: u16,
    /// `Retry-After` value sent with `fail_next` answers: seconds or an HTTP date.
    pub retry_after: Option<String>,
    /// 400 for any batch with a datapoint whose `name`, or custom event name (`data.n`),
    /// equals this.
    pub reject_event_name: Option<String>,
    /// 413 for any batch with more datapoints than this.
    pub max_events_per_batch: Option<usize>,
    /// Read the next N requests and never answer; the connection stays open until the client
    /// closes it or the collector stops.
    pub hang_next: u32,
    /// Like `hang_next`, for every request until cleared.
    pub hang_all: bool,
    /// Read the next N requests, then close the connection without a response.
    pub drop_next: u32,
    /// Answer the next N requests with bytes that are not HTTP, then close.
    pub garbage_next: u32,
    /// Answer the next N requests with a 307 to `redirect_location`.
    pub redirect_next: u32,
    /// Target of `redirect_next`; `None` means [`DEFAULT_REDIRECT_LOCATION`].
    pub redirect_location: Option<String>,
    /// Answer the next N requests with `hostile_status` and a body that never ends (until the
    /// client closes, the collector stops, or 1 GiB has been sent).
    pub endless_body_next: u32,
    /// Answer the next N requests with `hostile_status` and a 10 MB body.
    pub huge_body_next: u32,
    /// Status line of `endless_body_next`/`huge_body_next` answers; 0 means 200. With a 2xx
    /// status a valid batch is stored, as a real server would have done.
    pub hostile_status: u16,
    /// Store a valid batch even though a per-request fault loses the answer: simulates a
    /// server that committed the data and then failed to say so (the client re-sends, and
    /// de-duplication must absorb it).
    pub commit_before_fault: bool,
    /// Wait this long before answering each request (slow-server tests).
    pub response_delay_ms: u64,
}

/// What the server does with one request, decided by [`Faults::take_request_fault`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RequestFault {
    Drop,
    Hang,
    Garbage,
    Redirect(String),
    EndlessBody(u16),
    HugeBody(u16),
    Fail {
        status: u16,
        retry_after: Option<String>,
    },
}

impl RequestFault {
    /// Short name kept in the request log.
    pub fn name(&self) -> &'static str {
        match self {
            RequestFault::Drop => "drop",
            RequestFault::Hang => "hang",
            RequestFault::Garbage => "garbage",
            RequestFault::Redirect(_) => "redirect",
            RequestFault::EndlessBody(_) => "endless_body",
            RequestFault::HugeBody(_) => "huge_body",
            RequestFault::Fail { .. } => "fail",
        }
    }

    /// The HTTP status the client sees; 0 when it gets no (parseable) response.
    pub fn status(&self) -> u16 {
        match self {
            RequestFault::Drop | RequestFault::Hang | RequestFault::Garbage => 0,
            RequestFault::Redirect(_) => 307,
            RequestFault::EndlessBody(status) | RequestFault::HugeBody(status) => *status,
            RequestFault::Fail { status, .. } => *status,
        }
    }
}

fn take(counter: &mut u32) -> bool {
    if *counter == 0 {
        return false;
    }
    *counter -= 1;
    true
}

fn or_default(status: u16, default: u16) -> u16 {
    if status == 0 {
        default
    } else {
        status
    }
}

impl Faults {
    /// Consumes and returns the per-request fault for the next request, if any.
    pub(crate) fn take_request_fault(&mut self) -> Option<RequestFault> {
        if take(&mut self.drop_next) {
            return Some(RequestFault::Drop);
        }
        if self.hang_all || take(&mut self.hang_next) {
            return Some(RequestFault::Hang);
        }
        if take(&mut self.garbage_next) {
            return Some(RequestFault::Garbage);
        }
        if take(&mut self.redirect_next) {
            let location = self.redirect_location.clone();
            return Some(RequestFault::Redirect(
                location.unwrap_or_else(|| DEFAULT_REDIRECT_LOCATION.into()),
            ));
        }
        if take(&mut self.endless_body_next) {
            return Some(RequestFault::EndlessBody(or_default(
                self.hostile_status,
                200,
            )));
        }
        if take(&mut self.huge_body_next) {
            return Some(RequestFault::HugeBody(or_default(self.hostile_status, 200)));
        }
        if take(&mut self.fail_next) {
            return Some(RequestFault::Fail {
                status: or_default(self.fail_status, 500),
                retry_after: self.retry_after.clone(),
            });
        }
        None
    }

    /// The status and message for a valid batch these faults refuse, if they do.
    pub(crate) fn batch_rejection(&self, batch: &Batch) -> Option<(u16, String)> {
        if let Some(limit) = self.max_events_per_batch {
            if batch.events.len() > limit {
                return Some((
                    413,
                    format!(
                        "batch of {} datapoints exceeds the limit of {limit}",
                        batch.events.len()
                    ),
                ));
            }
        }
        let poison = self.reject_event_name.as_deref()?;
        batch
            .events
            .iter()
            .find(|e| e.name() == poison || e.custom_name.as_deref() == Some(poison))
            .map(|e| (400, format!("datapoint {} is rejected ({poison:?})", e.id)))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "fail_next": self.fail_next,
            "fail_status": self.fail_status,
            "retry_after": self.retry_after,
            "reject_event_name": self.reject_event_name,
            "max_events_per_batch": self.max_events_per_batch,
            "hang_next": self.hang_next,
            "hang_all": self.hang_all,
            "drop_next": self.drop_next,
            "garbage_next": self.garbage_next,
            "redirect_next": self.redirect_next,
            "redirect_location": self.redirect_location,
            "endless_body_next": self.endless_body_next,
            "huge_body_next": self.huge_body_next,
            "hostile_status": self.hostile_status,
            "commit_before_fault": self.commit_before_fault,
            "response_delay_ms": self.response_delay_ms,
        })
    }

    /// Parses the admin endpoint's body; absent fields keep their default, unknown ones are
    /// an error so that a typo does not silently disable a test's fault.
    pub fn from_json(value: &Value) -> Result<Faults, String> {
        let object = value.as_object().ok_or("faults must be a JSON object")?;
        let mut faults = Faults::default();
        for (name, field) in object {
            match name.as_str() {
                "fail_next" => faults.fail_next = count(field, name)?,
                "fail_status" => faults.fail_status = status(field, name)?,
                "retry_after" => faults.retry_after = text(field, name)?,
                "reject_event_name" => faults.reject_event_name = text(field, name)?,
                "max_events_per_batch" => {
                    faults.max_events_per_batch = match field {
                        Value::Null => None,
                        _ => Some(number(field, name)? as usize),
                    }
                }
                "hang_next" => faults.hang_next = count(field, name)?,
                "hang_all" => faults.hang_all = flag(field, name)?,
                "drop_next" => faults.drop_next = count(field, name)?,
                "garbage_next" => faults.garbage_next = count(field, name)?,
                "redirect_next" => faults.redirect_next = count(field, name)?,
                "redirect_location" => faults.redirect_location = text(field, name)?,
                "endless_body_next" => faults.endless_body_next = count(field, name)?,
                "huge_body_next" => faults.huge_body_next = count(field, name)?,
                "hostile_status" => faults.hostile_status = status(field, name)?,
                "commit_before_fault" => faults.commit_before_fault = flag(field, name)?,
                "response_delay_ms" => faults.response_delay_ms = number(field, name)?,
                other => {
                    let known: Vec<String> = Faults::default()
                        .to_json()
                        .as_object()
                        .map(Map::keys)
                        .into_iter()
                        .flatten()
                        .cloned()
                        .collect();
                    return Err(format!(
                        "unknown fault {other:?}; known: {}",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(faults)
    }
}

fn number(value: &Value, name: &str) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("{name}: expected a non-negative integer"))
}

fn count(value: &Value, name: &str) -> Result<u32, String> {
    u32::try_from(number(value, name)?).map_err(|_| format!("{name}: too large"))
}

fn status(value: &Value, name: &str) -> Result<u16, String> {
    match number(value, name)? {
        0 => Ok(0),
        code @ 100..=599 => Ok(code as u16),
        _ => Err(format!("{name}: expected an HTTP status (100-599)")),
    }
}

fn flag(value: &Value, name: &str) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("{name}: expected true or false"))
}

fn text(value: &Value, name: &str) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(format!("{name}: expected a string or null")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate;

    #[test]
    fn counters_are_consumed_one_request_at_a_time() {
        let mut faults = Faults {
            drop_next: 1,
            fail_next: 2,
            fail_status: 429,
            retry_after: Some("2".into()),
            ..Faults::default()
        };
        assert_eq!(faults.take_request_fault(), Some(RequestFault::Drop));
        let fail = Some(RequestFault::Fail {
            status: 429,
            retry_after: Some("2".into()),
        });
        assert_eq!(faults.take_request_fault(), fail);
        assert_eq!(faults.take_request_fault(), fail);
        assert_eq!(faults.take_request_fault(), None);
        assert_eq!(faults.fail_next, 0);
    }

    #[test]
    fn defaults_fill_unset_statuses_and_locations() {
        let mut faults = Faults {
            fail_next: 1,
            redirect_next: 1,
            huge_body_next: 1,
            ..Faults::default()
        };
        assert_eq!(
            faults.take_request_fault(),
            Some(RequestFault::Redirect(DEFAULT_REDIRECT_LOCATION.into()))
        );
        assert_eq!(
            faults.take_request_fault(),
            Some(RequestFault::HugeBody(200))
        );
        assert_eq!(faults.take_request_fault().unwrap().status(), 500);
    }

    #[test]
    fn hang_all_lasts_until_cleared() {
        let mut faults = Faults {
            hang_all: true,
            ..Faults::default()
        };
        for _ in 0..3 {
            assert_eq!(faults.take_request_fault(), Some(RequestFault::Hang));
        }
    }

    #[test]
    fn rejects_exactly_the_batches_holding_the_poison() {
        let faults = Faults {
            reject_event_name: Some("poison".into()),
            max_events_per_batch: Some(2),
            ..Faults::default()
        };
        let batch = |names: &[&str]| {
            let events: Vec<Value> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    json!({"id": format!("00000000-0000-4000-8000-{i:012}"), "name": "ce",
                           "time": 1.0, "session_id": null, "user_id": null, "data": {"n": n}})
                })
                .collect();
            validate(
                &json!({"api_key": "k", "device_id": "d", "sdk_version": "stint/1",
                             "time": 1.0, "events": events}),
            )
            .unwrap()
        };
        assert_eq!(faults.batch_rejection(&batch(&["ok", "ok"])), None);
        assert_eq!(
            faults.batch_rejection(&batch(&["ok", "poison"])).unwrap().0,
            400
        );
        assert_eq!(
            faults.batch_rejection(&batch(&["a", "b", "c"])).unwrap().0,
            413
        );
        let by_kind = Faults {
            reject_event_name: Some("ce".into()),
            ..Faults::default()
        };
        assert!(by_kind.batch_rejection(&batch(&["x"])).is_some());
    }

    #[test]
    fn json_round_trips_and_refuses_typos() {
        let faults = Faults {
            fail_next: 3,
            fail_status: 503,
            retry_after: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
            max_events_per_batch: Some(10),
            hang_all: true,
            commit_before_fault: true,
            response_delay_ms: 5,
            ..Faults::default()
        };
        assert_eq!(Faults::from_json(&faults.to_json()).unwrap(), faults);
        assert_eq!(Faults::from_json(&json!({})).unwrap(), Faults::default());
        assert!(Faults::from_json(&json!({"fail_nxt": 1}))
            .unwrap_err()
            .contains("fail_next"));
        assert!(Faults::from_json(&json!({"fail_status": 99})).is_err());
        assert!(Faults::from_json(&json!({"hang_all": 1})).is_err());
    }
}
