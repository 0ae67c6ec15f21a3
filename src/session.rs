//! The session rules, all of them, as a pure state machine.
//!
//! `apply(state, action, now)` returns the datapoints the action produces and mutates the state.
//! No clock, no I/O, no locks: every rule is unit tested here with explicit timestamps.
//! Times are milliseconds since the Unix epoch.

use std::sync::Arc;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A session id: a UUID v4 in its 36-character text form.
pub type SessionId = Arc<str>;

/// A user id; shared, so a datapoint carries it without a copy.
pub type UserName = Arc<str>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// `sessionTimeoutInSeconds`, in milliseconds.
    pub session_timeout: Millis,
    /// `keepOpenWhileForeground`.
    pub keep_open_while_foreground: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSession {
    pub id: SessionId,
    pub start: Millis,
    pub last_activity: Millis,
}

/// Everything the rules look at. `user` and `session` survive restarts; `foreground` is
/// process-local and starts false.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    pub user: Option<UserName>,
    pub session: Option<OpenSession>,
    pub foreground: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    OpenSession,
    CloseSession,
    ChangeUser(&'a str),
    /// A custom event; its payload is the caller's business, the rules only place it.
    CustomEvent,
    /// No activity: only the expiry check (start-up, the background worker, queries).
    CheckExpiry,
}

/// What an action records, in order. The custom event, if any, is always last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Started {
        session_id: SessionId,
        user: Option<UserName>,
        time: Millis,
    },
    Ended {
        session_id: SessionId,
        user: Option<UserName>,
        start: Millis,
        time: Millis,
    },
    CustomEvent {
        session_id: Option<SessionId>,
        user: Option<UserName>,
        time: Millis,
    },
}

impl Record {
    /// The duration of an ended session (never negative).
    pub fn duration(start: Millis, end: Millis) -> Millis {
        (end - start).max(0)
    }
}

/// When the open session expires unless something happens first; `None` if it cannot expire.
pub fn expiry_deadline(state: &SessionState, rules: Rules) -> Option<Millis> {
    let session = state.session.as_ref()?;
    deadline(session.last_activity, state.foreground, rules)
}

/// Rule 2's deadline for a session last active at `last_activity`.
fn deadline(last_activity: Millis, foreground: bool, rules: Rules) -> Option<Millis> {
    if rules.keep_open_while_foreground && foreground {
        return None;
    }
    Some(last_activity.saturating_add(rules.session_timeout))
}

/// Whether the open session has expired by `now`.
fn expired(state: &SessionState, now: Millis, rules: Rules) -> bool {
    expiry_deadline(state, rules).is_some_and(|deadline| now >= deadline)
}

/// Applies `action` at `now`, pushing what it records onto `out`. `new_id` makes session ids.
pub fn apply(
    state: &mut SessionState,
    action: Action<'_>,
    now: Millis,
    rules: Rules,
    new_id: &mut dyn FnMut() -> SessionId,
    out: &mut Vec<Record>,
) {
    end_if_expired(state, now, rules, out);
    match action {
        Action::CheckExpiry => {}
        Action::OpenSession => {
            touch(state, now);
            if state.session.is_none() {
                start_session(state, now, new_id, out);
            }
            state.foreground = true;
        }
        Action::CloseSession => {
            touch(state, now);
            state.foreground = false;
        }
        Action::CustomEvent => {
            let time = touch(state, now);
            out.push(Record::CustomEvent {
                session_id: state.session.as_ref().map(|s| s.id.clone()),
                user: state.user.clone(),
                time,
            });
        }
        Action::ChangeUser(user) => {
            let time = touch(state, now);
            if state.user.as_deref() == Some(user) {
                return;
            }
            let ended = state.session.take();
            if let Some(session) = &ended {
                out.push(Record::Ended {
                    session_id: session.id.clone(),
                    user: state.user.clone(),
                    start: session.start,
                    time,
                });
            }
            state.user = Some(user.into());
            if ended.is_some() {
                start_session(state, time, new_id, out);
            }
        }
    }
}

/// Whether `apply` may record a datapoint or change anything but the open session's last
/// activity (the session, the user, foreground). When it returns false, `apply` only moves the
/// last activity forward; the engine then leaves its lanes alone (see `storage::lane`).
pub fn may_record_or_change(
    state: &SessionState,
    action: Action<'_>,
    now: Millis,
    rules: Rules,
) -> bool {
    expired(state, now, rules)
        || match action {
            Action::CheckExpiry => false,
            Action::OpenSession => state.session.is_none() || !state.foreground,
            Action::CloseSession => state.foreground,
            Action::ChangeUser(user) => state.user.as_deref() != Some(user),
            Action::CustomEvent => true,
        }
}

/// The custom event rule for a caller that knows only whether a session is open, foreground,
/// and the newest activity it has seen (a lane): the time to stamp on the event, or `None` when
/// the session may have expired, which only `apply`, with the whole state, decides.
pub fn custom_event_time(
    open: bool,
    foreground: bool,
    last_activity: Millis,
    now: Millis,
    rules: Rules,
) -> Option<Millis> {
    if !open {
        return Some(now);
    }
    if deadline(last_activity, foreground, rules).is_some_and(|deadline| now >= deadline) {
        return None;
    }
    Some(last_activity.max(now))
}

/// Rule 2: a session idle for at least the timeout ends at its last activity.
fn end_if_expired(state: &mut SessionState, now: Millis, rules: Rules, out: &mut Vec<Record>) {
    if !expired(state, now, rules) {
        return;
    }
    if let Some(session) = state.session.take() {
        out.push(Record::Ended {
            session_id: session.id,
            user: state.user.clone(),
            start: session.start,
            time: session.last_activity,
        });
    }
}

/// Rule 1 and rule 7: activity moves the open session's last activity forward, never back.
/// Returns the time to stamp on what this activity records.
fn touch(state: &mut SessionState, now: Millis) -> Millis {
    match &mut state.session {
        Some(session) => {
            session.last_activity = session.last_activity.max(now);
            session.last_activity
        }
        None => now,
    }
}

fn start_session(
    state: &mut SessionState,
    now: Millis,
    new_id: &mut dyn FnMut() -> SessionId,
    out: &mut Vec<Record>,
) {
    let id = new_id();
    out.push(Record::Started {
        session_id: id.clone(),
        user: state.user.clone(),
        time: now,
    });
    state.session = Some(OpenSession {
        id,
        start: now,
        last_activity: now,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Millis = 1_800_000;
    const RULES: Rules = Rules {
        session_timeout: T,
        keep_open_while_foreground: false,
    };
    const START: Millis = 1_764_190_000_123;

    struct Machine {
        state: SessionState,
        rules: Rules,
        next_id: u32,
    }

    impl Machine {
        fn new(rules: Rules) -> Self {
            Machine {
                state: SessionState::default(),
                rules,
                next_id: 0,
            }
        }

        fn at(&mut self, now: Millis, action: Action<'_>) -> Vec<Record> {
            let mut out = Vec::new();
            let counter = &mut self.next_id;
            let mut new_id = || {
                *counter += 1;
                format!("s{counter}").into()
            };
            apply(
                &mut self.state,
                action,
                now,
                self.rules,
                &mut new_id,
                &mut out,
            );
            out
        }

        fn session_id(&self) -> Option<&str> {
            self.state.session.as_ref().map(|s| &*s.id)
        }
    }

    fn started(id: &str, user: Option<&str>, time: Millis) -> Record {
        Record::Started {
            session_id: id.into(),
            user: user.map(Into::into),
            time,
        }
    }

    fn ended(id: &str, user: Option<&str>, start: Millis, time: Millis) -> Record {
        Record::Ended {
            session_id: id.into(),
            user: user.map(Into::into),
            start,
            time,
        }
    }

    #[test]
    fn first_open_starts_a_session_at_now() {
        let mut m = Machine::new(RULES);
        assert_eq!(
            m.at(START, Action::OpenSession),
            vec![started("s1", None, START)]
        );
        assert!(m.state.foreground);
        assert_eq!(m.state.session.as_ref().unwrap().last_activity, START);
    }

    #[test]
    fn open_on_an_open_session_is_only_activity() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        assert!(m.at(START + 5_000, Action::OpenSession).is_empty());
        let s = m.state.session.as_ref().unwrap();
        assert_eq!((s.start, s.last_activity), (START, START + 5_000));
    }

    #[test]
    fn returning_one_millisecond_before_timeout_continues_the_session() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        m.at(START + 10, Action::CloseSession);
        assert!(m.at(START + 10 + T - 1, Action::OpenSession).is_empty());
        assert_eq!(m.session_id(), Some("s1"));
    }

    #[test]
    fn returning_exactly_at_timeout_ends_at_last_activity_and_starts_anew() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        m.at(START + 10, Action::CloseSession);
        let now = START + 10 + T;
        assert_eq!(
            m.at(now, Action::OpenSession),
            vec![
                ended("s1", None, START, START + 10),
                started("s2", None, now)
            ]
        );
    }

    #[test]
    fn returning_long_after_timeout_ends_at_last_activity() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        m.at(START + 60_000, Action::CustomEvent);
        let out = m.at(START + 10 * T, Action::OpenSession);
        assert_eq!(out[0], ended("s1", None, START, START + 60_000));
        assert_eq!(Record::duration(START, START + 60_000), 60_000);
    }

    #[test]
    fn close_session_is_activity_and_records_nothing() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        assert!(m.at(START + 7, Action::CloseSession).is_empty());
        assert!(!m.state.foreground);
        assert_eq!(m.state.session.as_ref().unwrap().last_activity, START + 7);
    }

    #[test]
    fn close_session_without_a_session_is_harmless() {
        let mut m = Machine::new(RULES);
        assert!(m.at(START, Action::CloseSession).is_empty());
        assert_eq!(m.state, SessionState::default());
    }

    #[test]
    fn custom_event_without_a_session_has_no_session_and_starts_none() {
        let mut m = Machine::new(RULES);
        let out = m.at(START, Action::CustomEvent);
        assert_eq!(
            out,
            vec![Record::CustomEvent {
                session_id: None,
                user: None,
                time: START
            }]
        );
        assert!(m.state.session.is_none());
    }

    #[test]
    fn custom_event_carries_the_session_and_is_activity() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::ChangeUser("alice"));
        m.at(START, Action::OpenSession);
        let out = m.at(START + 100, Action::CustomEvent);
        assert_eq!(
            out,
            vec![Record::CustomEvent {
                session_id: Some("s1".into()),
                user: Some("alice".into()),
                time: START + 100
            }]
        );
        assert_eq!(m.state.session.as_ref().unwrap().last_activity, START + 100);
    }

    #[test]
    fn custom_event_after_expiry_ends_the_session_and_carries_null() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        let out = m.at(START + T, Action::CustomEvent);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], ended("s1", None, START, START));
        assert!(matches!(
            out[1],
            Record::CustomEvent {
                session_id: None,
                ..
            }
        ));
    }

    #[test]
    fn change_user_with_open_session_ends_it_now_and_starts_one_for_the_new_user() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        let now = START + 30_000;
        assert_eq!(
            m.at(now, Action::ChangeUser("alice")),
            vec![
                ended("s1", None, START, now),
                started("s2", Some("alice"), now)
            ]
        );
        assert_eq!(m.state.user.as_deref(), Some("alice"));
    }

    #[test]
    fn change_user_to_the_same_user_is_only_activity() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::ChangeUser("alice"));
        m.at(START, Action::OpenSession);
        assert!(m.at(START + 5, Action::ChangeUser("alice")).is_empty());
        assert_eq!(m.session_id(), Some("s1"));
        assert_eq!(m.state.session.as_ref().unwrap().last_activity, START + 5);
    }

    #[test]
    fn change_user_without_a_session_only_switches_user() {
        let mut m = Machine::new(RULES);
        assert!(m.at(START, Action::ChangeUser("bob")).is_empty());
        assert_eq!(m.state.user.as_deref(), Some("bob"));
        assert!(m.state.session.is_none());
    }

    #[test]
    fn change_user_after_expiry_ends_at_last_activity_and_opens_nothing() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        let out = m.at(START + T, Action::ChangeUser("bob"));
        assert_eq!(out, vec![ended("s1", None, START, START)]);
        assert!(m.state.session.is_none());
        assert_eq!(m.state.user.as_deref(), Some("bob"));
    }

    #[test]
    fn expiry_check_alone_records_the_same_end_as_the_next_call_would() {
        let mut by_worker = Machine::new(RULES);
        let mut by_call = Machine::new(RULES);
        for m in [&mut by_worker, &mut by_call] {
            m.at(START, Action::OpenSession);
            m.at(START + 500, Action::CloseSession);
        }
        let deadline = expiry_deadline(&by_worker.state, RULES).unwrap();
        assert_eq!(deadline, START + 500 + T);
        assert!(by_worker.at(deadline - 1, Action::CheckExpiry).is_empty());
        let worker_out = by_worker.at(deadline, Action::CheckExpiry);
        let call_out = by_call.at(deadline + 60_000, Action::OpenSession);
        assert_eq!(worker_out[0], call_out[0]);
        assert_eq!(worker_out[0], ended("s1", None, START, START + 500));
        assert!(by_worker.state.session.is_none());
    }

    #[test]
    fn check_expiry_is_not_activity() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        m.at(START + 1_000, Action::CheckExpiry);
        assert_eq!(m.state.session.as_ref().unwrap().last_activity, START);
    }

    #[test]
    fn keep_open_while_foreground_prevents_expiry_until_backgrounded() {
        let rules = Rules {
            keep_open_while_foreground: true,
            ..RULES
        };
        let mut m = Machine::new(rules);
        m.at(START, Action::OpenSession);
        assert_eq!(expiry_deadline(&m.state, rules), None);
        assert!(m.at(START + 5 * T, Action::OpenSession).is_empty());
        assert_eq!(m.session_id(), Some("s1"));
        m.at(START + 5 * T, Action::CloseSession);
        assert_eq!(expiry_deadline(&m.state, rules), Some(START + 6 * T));
        let out = m.at(START + 6 * T, Action::OpenSession);
        assert_eq!(out[0], ended("s1", None, START, START + 5 * T));
    }

    #[test]
    fn without_keep_open_a_foreground_session_still_expires() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        assert!(m.state.foreground);
        assert_eq!(m.at(START + T, Action::CheckExpiry).len(), 1);
    }

    #[test]
    fn clock_going_backwards_counts_as_no_time() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        m.at(START + 10_000, Action::CustomEvent);
        let out = m.at(START - 50_000, Action::CustomEvent);
        assert!(matches!(out[0], Record::CustomEvent { time, .. } if time == START + 10_000));
        assert_eq!(
            m.state.session.as_ref().unwrap().last_activity,
            START + 10_000
        );
        let out = m.at(START - 60_000, Action::ChangeUser("alice"));
        assert_eq!(out[0], ended("s1", None, START, START + 10_000));
        assert_eq!(out[1], started("s2", Some("alice"), START + 10_000));
    }

    #[test]
    fn durations_are_never_negative() {
        assert_eq!(Record::duration(START, START - 5), 0);
    }

    #[test]
    fn a_restored_session_continues_within_timeout_and_ends_at_last_activity_after() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        m.at(START + 1_000, Action::CloseSession);
        // A restart keeps user and session, not foreground.
        let restored = SessionState {
            foreground: false,
            ..m.state.clone()
        };
        let mut soon = Machine {
            state: restored.clone(),
            ..Machine::new(RULES)
        };
        assert!(soon
            .at(START + 1_000 + T - 1, Action::CheckExpiry)
            .is_empty());
        let mut late = Machine {
            state: restored,
            ..Machine::new(RULES)
        };
        assert_eq!(
            late.at(START + 3 * T, Action::CheckExpiry),
            vec![ended("s1", None, START, START + 1_000)]
        );
    }

    #[test]
    fn se_always_precedes_the_next_ss() {
        let mut m = Machine::new(RULES);
        m.at(START, Action::OpenSession);
        let out = m.at(START + T, Action::OpenSession);
        assert!(matches!(out[0], Record::Ended { .. }));
        assert!(matches!(out[1], Record::Started { .. }));
    }

    fn both_rules() -> [Rules; 2] {
        let keep_open = Rules {
            keep_open_while_foreground: true,
            ..RULES
        };
        [RULES, keep_open]
    }

    /// States that cover the rules' branches: no session, open in the foreground or not, with
    /// and without a user, with last activity at several distances from `now`.
    fn sample_states() -> Vec<SessionState> {
        let mut states = vec![SessionState::default()];
        for user in [None, Some("alice")] {
            for foreground in [false, true] {
                for idle in [0, 1, T - 1, T, 5 * T] {
                    states.push(SessionState {
                        user: user.map(Into::into),
                        session: Some(OpenSession {
                            id: "s0".into(),
                            start: START - 10 * T,
                            last_activity: START - idle,
                        }),
                        foreground,
                    });
                }
            }
        }
        states
    }

    #[test]
    fn when_may_record_or_change_says_no_only_the_last_activity_moves() {
        let actions = [
            Action::OpenSession,
            Action::CloseSession,
            Action::ChangeUser("alice"),
            Action::ChangeUser("bob"),
            Action::CustomEvent,
            Action::CheckExpiry,
        ];
        for rules in both_rules() {
            for state in sample_states() {
                for action in actions {
                    if may_record_or_change(&state, action, START, rules) {
                        continue;
                    }
                    let mut m = Machine {
                        state: state.clone(),
                        ..Machine::new(rules)
                    };
                    assert!(m.at(START, action).is_empty(), "{action:?} on {state:?}");
                    let mut expected = state.clone();
                    if let Some(session) = &mut expected.session {
                        session.last_activity = m.state.session.as_ref().unwrap().last_activity;
                        assert!(
                            session.last_activity >= state.session.as_ref().unwrap().last_activity
                        );
                    }
                    assert_eq!(m.state, expected, "{action:?} on {state:?}");
                }
            }
        }
    }

    #[test]
    fn custom_event_time_agrees_with_apply_or_defers_to_it() {
        for rules in both_rules() {
            for state in sample_states() {
                let open = state.session.as_ref();
                let time = custom_event_time(
                    open.is_some(),
                    state.foreground,
                    open.map_or(Millis::MIN, |s| s.last_activity),
                    START,
                    rules,
                );
                let mut m = Machine {
                    state: state.clone(),
                    ..Machine::new(rules)
                };
                let out = m.at(START, Action::CustomEvent);
                match time {
                    Some(time) => assert_eq!(
                        out,
                        vec![Record::CustomEvent {
                            session_id: open.map(|s| s.id.clone()),
                            user: state.user.clone(),
                            time,
                        }],
                        "{state:?}"
                    ),
                    // Deferred only where the session has in fact expired.
                    None => assert!(matches!(out[0], Record::Ended { .. }), "{state:?}"),
                }
            }
        }
    }
}
