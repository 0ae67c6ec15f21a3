//! What the collector has accepted: datapoints de-duplicated by id, and per (device, user)
//! session statistics derived from them. Pure data, no I/O.

use crate::batch::{Batch, Kind};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// How many sessions a user row lists, most recent first.
pub const LAST_SESSIONS_SHOWN: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserKey {
    pub device_id: String,
    /// `None` for an anonymous user.
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub session_id: String,
    /// `None` when the `se` arrived but its `ss` has not (yet).
    pub start: Option<f64>,
    /// `None` while the session is open.
    pub end: Option<f64>,
    pub duration: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserSummary {
    pub device_id: String,
    pub user_id: Option<String>,
    /// `ss` datapoints received.
    pub sessions: u64,
    /// `se` datapoints received.
    pub sessions_ended: u64,
    /// Sum of `se` durations, in seconds.
    pub total_time: f64,
    pub last_sessions: Vec<SessionSummary>,
    pub custom_events: BTreeMap<String, u64>,
}

impl UserSummary {
    pub fn to_json(&self) -> Value {
        json!({
            "device_id": self.device_id,
            "user_id": self.user_id,
            "sessions": self.sessions,
            "sessions_ended": self.sessions_ended,
            "total_time": self.total_time,
            "last_sessions": self.last_sessions.iter().map(|s| json!({
                "session_id": s.session_id,
                "start": s.start,
                "end": s.end,
                "duration": s.duration,
            })).collect::<Vec<_>>(),
            "custom_events": self.custom_events,
        })
    }
}

#[derive(Debug, Default)]
struct UserStats {
    sessions: u64,
    sessions_ended: u64,
    total_time: f64,
    custom_events: BTreeMap<String, u64>,
    /// Indices into `Store::sessions`, in arrival order.
    session_indices: Vec<usize>,
}

#[derive(Debug)]
struct Session {
    session_id: String,
    start: Option<f64>,
    end: Option<f64>,
    duration: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOutcome {
    pub new: usize,
    pub duplicates: usize,
}

#[derive(Debug, Default)]
pub struct Store {
    seen_ids: HashSet<String>,
    datapoints: Vec<Value>,
    received_total: usize,
    /// In order of first appearance, so listings are stable.
    users: Vec<(UserKey, UserStats)>,
    user_index: HashMap<UserKey, usize>,
    sessions: Vec<Session>,
    /// (device_id, session_id) -> (index into `sessions`, index into `users` of its owner).
    session_index: HashMap<(String, String), (usize, usize)>,
}

impl Store {
    /// Applies every datapoint not seen before; a re-sent datapoint changes nothing.
    pub fn ingest(&mut self, batch: &Batch) -> IngestOutcome {
        let mut outcome = IngestOutcome {
            new: 0,
            duplicates: 0,
        };
        for datapoint in &batch.events {
            self.received_total += 1;
            if !self.seen_ids.insert(datapoint.id.clone()) {
                outcome.duplicates += 1;
                continue;
            }
            outcome.new += 1;
            self.datapoints.push(datapoint.raw.clone());
            let key = UserKey {
                device_id: batch.device_id.clone(),
                user_id: datapoint.user_id.clone(),
            };
            match datapoint.kind {
                Kind::SessionStart => {
                    let session_id = datapoint.session_id.clone().unwrap_or_default();
                    let (session, owner) = self.session_for(&key, &session_id);
                    self.sessions[session].start = Some(datapoint.time);
                    self.users[owner].1.sessions += 1;
                }
                Kind::SessionEnd => {
                    let session_id = datapoint.session_id.clone().unwrap_or_default();
                    let duration = datapoint.duration.unwrap_or(0.0);
                    // Credited to the user the session started under, so that one row's
                    // sessions, ended sessions and total time agree even if the user changed
                    // mid-session.
                    let (session, owner) = self.session_for(&key, &session_id);
                    self.sessions[session].end = Some(datapoint.time);
                    self.sessions[session].duration = Some(duration);
                    let stats = &mut self.users[owner].1;
                    stats.sessions_ended += 1;
                    stats.total_time += duration;
                }
                Kind::Custom => {
                    let user = self.user_for(&key);
                    let name = datapoint.custom_name.clone().unwrap_or_default();
                    *self.users[user].1.custom_events.entry(name).or_insert(0) += 1;
                }
            }
        }
        outcome
    }

    fn user_for(&mut self, key: &UserKey) -> usize {
        if let Some(&index) = self.user_index.get(key) {
            return index;
        }
        self.users.push((key.clone(), UserStats::default()));
        self.user_index.insert(key.clone(), self.users.len() - 1);
        self.users.len() - 1
    }

    /// The session with this id on this device, created under `key` if unseen.
    fn session_for(&mut self, key: &UserKey, session_id: &str) -> (usize, usize) {
        let lookup = (key.device_id.clone(), session_id.to_string());
        if let Some(&found) = self.session_index.get(&lookup) {
            return found;
        }
        let owner = self.user_for(key);
        self.sessions.push(Session {
            session_id: session_id.to_string(),
            start: None,
            end: None,
            duration: None,
        });
        let found = (self.sessions.len() - 1, owner);
        self.users[owner].1.session_indices.push(found.0);
        self.session_index.insert(lookup, found);
        found
    }

    /// De-duplicated datapoints in arrival order.
    pub fn datapoints(&self) -> &[Value] {
        &self.datapoints
    }

    /// Datapoints in accepted batches, duplicates included.
    pub fn received_total(&self) -> usize {
        self.received_total
    }

    pub fn users(&self) -> Vec<UserSummary> {
        self.users
            .iter()
            .map(|(key, stats)| {
                let mut sessions: Vec<(usize, &Session)> = stats
                    .session_indices
                    .iter()
                    .map(|&i| (i, &self.sessions[i]))
                    .collect();
                // Most recent first by start time; a session known only by its end sorts by
                // that; ties fall back to arrival order.
                let recency = |s: &Session| s.start.or(s.end).unwrap_or(f64::NEG_INFINITY);
                sessions
                    .sort_by(|(ia, a), (ib, b)| recency(b).total_cmp(&recency(a)).then(ib.cmp(ia)));
                UserSummary {
                    device_id: key.device_id.clone(),
                    user_id: key.user_id.clone(),
                    sessions: stats.sessions,
                    sessions_ended: stats.sessions_ended,
                    total_time: stats.total_time,
                    last_sessions: sessions
                        .into_iter()
                        .take(LAST_SESSIONS_SHOWN)
                        .map(|(_, s)| SessionSummary {
                            session_id: s.session_id.clone(),
                            start: s.start,
                            end: s.end,
                            duration: s.duration,
                        })
                        .collect(),
                    custom_events: stats.custom_events.clone(),
                }
            })
            .collect()
    }

    /// The body of `GET /api/users`.
    pub fn users_json(&self) -> Value {
        json!({ "users": self.users().iter().map(UserSummary::to_json).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate;

    fn id(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn batch(device: &str, events: Vec<Value>) -> Batch {
        validate(
            &json!({"api_key": "k", "device_id": device, "sdk_version": "stint/0.1.0",
                         "time": 0.0, "events": events}),
        )
        .unwrap()
    }

    fn ss(n: u32, session: &str, user: Option<&str>, time: f64) -> Value {
        json!({"id": id(n), "name": "ss", "time": time, "session_id": session, "user_id": user,
               "data": {}})
    }

    fn se(n: u32, session: &str, user: Option<&str>, time: f64, d: f64) -> Value {
        json!({"id": id(n), "name": "se", "time": time, "session_id": session, "user_id": user,
               "data": {"d": d}})
    }

    fn ce(n: u32, name: &str, user: Option<&str>) -> Value {
        json!({"id": id(n), "name": "ce", "time": 5.0, "session_id": null, "user_id": user,
               "data": {"n": name}})
    }

    #[test]
    fn counts_sessions_time_and_custom_events_per_user() {
        let mut store = Store::default();
        store.ingest(&batch(
            "dev",
            vec![
                ss(1, "s1", Some("alice"), 100.0),
                ce(2, "level_up", Some("alice")),
                se(3, "s1", Some("alice"), 160.0, 60.0),
                ss(4, "s2", Some("alice"), 200.0),
                ce(5, "level_up", Some("alice")),
                ce(6, "buy", Some("alice")),
                ss(7, "s3", None, 50.0),
            ],
        ));
        let users = store.users();
        assert_eq!(users.len(), 2);
        let alice = &users[0];
        assert_eq!((alice.sessions, alice.sessions_ended), (2, 1));
        assert_eq!(alice.total_time, 60.0);
        assert_eq!(alice.custom_events["level_up"], 2);
        assert_eq!(alice.custom_events["buy"], 1);
        // Most recent first; the open session has no end.
        assert_eq!(alice.last_sessions[0].session_id, "s2");
        assert_eq!(alice.last_sessions[0].end, None);
        assert_eq!(
            alice.last_sessions[1],
            SessionSummary {
                session_id: "s1".into(),
                start: Some(100.0),
                end: Some(160.0),
                duration: Some(60.0)
            }
        );
        assert_eq!(users[1].user_id, None);
        assert_eq!(users[1].sessions, 1);
    }

    #[test]
    fn a_resent_datapoint_counts_once() {
        let mut store = Store::default();
        let events = vec![
            ss(1, "s1", Some("a"), 1.0),
            se(2, "s1", Some("a"), 2.0, 1.0),
        ];
        let first = store.ingest(&batch("dev", events.clone()));
        let second = store.ingest(&batch("dev", events));
        assert_eq!(
            first,
            IngestOutcome {
                new: 2,
                duplicates: 0
            }
        );
        assert_eq!(
            second,
            IngestOutcome {
                new: 0,
                duplicates: 2
            }
        );
        assert_eq!(store.datapoints().len(), 2);
        assert_eq!(store.received_total(), 4);
        let users = store.users();
        assert_eq!((users[0].sessions, users[0].total_time), (1, 1.0));
    }

    #[test]
    fn an_end_is_credited_to_the_user_the_session_started_under() {
        let mut store = Store::default();
        store.ingest(&batch(
            "dev",
            vec![ss(1, "s1", None, 1.0), se(2, "s1", Some("bob"), 9.0, 8.0)],
        ));
        let users = store.users();
        assert_eq!(users.len(), 1);
        assert_eq!((users[0].sessions, users[0].sessions_ended), (1, 1));
        assert_eq!(users[0].total_time, 8.0);
    }

    #[test]
    fn an_end_before_its_start_still_forms_one_session() {
        let mut store = Store::default();
        store.ingest(&batch("dev", vec![se(2, "s1", Some("a"), 9.0, 8.0)]));
        store.ingest(&batch("dev", vec![ss(1, "s1", Some("a"), 1.0)]));
        let user = &store.users()[0];
        assert_eq!(user.last_sessions.len(), 1);
        assert_eq!(user.last_sessions[0].start, Some(1.0));
        assert_eq!(user.last_sessions[0].end, Some(9.0));
    }

    #[test]
    fn devices_are_kept_apart_and_the_list_is_capped() {
        let mut store = Store::default();
        let many: Vec<Value> = (0..25)
            .map(|i| ss(i, &format!("s{i}"), Some("a"), f64::from(i)))
            .collect();
        store.ingest(&batch("dev1", many));
        store.ingest(&batch("dev2", vec![ss(100, "s0", Some("a"), 1.0)]));
        let users = store.users();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].sessions, 25);
        assert_eq!(users[0].last_sessions.len(), LAST_SESSIONS_SHOWN);
        assert_eq!(users[0].last_sessions[0].session_id, "s24");
        assert_eq!(users[1].sessions, 1);
        let json = store.users_json();
        assert_eq!(json["users"][1]["device_id"], "dev2");
        assert_eq!(json["users"][0]["last_sessions"][0]["end"], Value::Null);
    }
}
