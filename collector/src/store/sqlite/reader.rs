//! The SQLite store's queries for the pages and the API, on the reader's own connection.

use super::raw::RawTexts;
use crate::batch::SessionContext;
use crate::store::{
    bucket_of, AppFilter, DayCount, Reader, SessionSummary, StoreError, StoreResult, UserSummary,
    UserUsage, DURATION_BUCKETS, LAST_SESSIONS_SHOWN,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::collections::BTreeMap;

/// `(?1 IS NULL OR u.app = ?1)`: the app filter of every query, on the users row `u`.
const IN_APP: &str = "(?1 IS NULL OR u.app = ?1)";

impl Reader for Connection {
    fn datapoints(&self) -> StoreResult<Vec<Value>> {
        let mut statement =
            self.prepare_cached("SELECT raw, body, idx FROM datapoints ORDER BY seq")?;
        let mut rows = statement.query([])?;
        let mut texts = RawTexts::default();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let raw = texts.get(self, row)?;
            out.push(
                serde_json::from_str(raw)
                    .map_err(|e| StoreError(format!("a stored datapoint is not JSON: {e}")))?,
            );
        }
        Ok(out)
    }

    fn apps(&self) -> StoreResult<Vec<String>> {
        Ok(self
            .prepare_cached("SELECT DISTINCT app FROM users ORDER BY app")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn users(&self, app: AppFilter) -> StoreResult<Vec<UserSummary>> {
        let rows = self
            .prepare_cached(&format!(
                "SELECT user_pk, device_id, user_id FROM users u WHERE {IN_APP} ORDER BY user_pk"
            ))?
            .query_map([app], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<Vec<(i64, String, Option<String>)>>>()?;
        rows.into_iter()
            .map(|(pk, device_id, user_id)| Ok(summary(self, pk, device_id, user_id)?))
            .collect()
    }

    fn days(&self, app: AppFilter) -> StoreResult<Vec<DayCount>> {
        Ok(day_counts(self, app, None)?)
    }

    fn user_usage(
        &self,
        app: AppFilter,
        device_id: &str,
        user_id: Option<&str>,
    ) -> StoreResult<Option<UserUsage>> {
        let Some(pk) = self
            .prepare_cached(&format!(
                "SELECT user_pk FROM users u WHERE {IN_APP} AND device_id = ?2 AND user_id IS ?3
                 ORDER BY user_pk LIMIT 1"
            ))?
            .query_row(params![app, device_id, user_id], |row| row.get::<_, i64>(0))
            .optional()?
        else {
            return Ok(None);
        };
        let summary = summary(self, pk, device_id.to_string(), user_id.map(String::from))?;
        let days = day_counts(self, None, Some(pk))?;
        let mut duration_histogram = [0; DURATION_BUCKETS.len() + 1];
        let mut statement = self.prepare_cached(
            "SELECT duration FROM sessions WHERE user_pk = ?1 AND duration IS NOT NULL",
        )?;
        for duration in statement.query_map([pk], |row| row.get::<_, f64>(0))? {
            duration_histogram[bucket_of(duration?)] += 1;
        }
        Ok(Some(UserUsage {
            summary,
            days,
            duration_histogram,
        }))
    }

    fn overview_users(
        &self,
        app: AppFilter,
        query: &str,
        limit: usize,
    ) -> StoreResult<(Vec<UserSummary>, usize)> {
        let query = query.trim().to_lowercase();
        let matches = format!(
            "{IN_APP} AND (?2 = '' OR instr(lower(COALESCE(u.user_id, 'anonymous')), ?2) > 0
                           OR instr(lower(u.device_id), ?2) > 0)"
        );
        let matching: i64 = self
            .prepare_cached(&format!("SELECT COUNT(*) FROM users u WHERE {matches}"))?
            .query_row(params![app, query], |row| row.get(0))?;
        let rows = self
            .prepare_cached(&format!(
                "WITH totals AS (
                     SELECT user_pk, SUM(starts) AS starts, SUM(ends) AS ends,
                            SUM(ended_time) AS ended_time,
                            MAX(COALESCE(started_at, ended_at)) AS last_active
                     FROM sessions GROUP BY user_pk)
                 SELECT u.user_pk, u.device_id, u.user_id, COALESCE(t.starts, 0),
                        COALESCE(t.ends, 0), COALESCE(t.ended_time, 0.0)
                 FROM users u LEFT JOIN totals t ON t.user_pk = u.user_pk
                 WHERE {matches}
                 ORDER BY t.last_active DESC NULLS LAST, u.user_pk
                 LIMIT ?3"
            ))?
            .query_map(params![app, query, limit as i64], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    UserSummary {
                        device_id: row.get(1)?,
                        user_id: row.get(2)?,
                        sessions: row.get::<_, i64>(3)? as u64,
                        sessions_ended: row.get::<_, i64>(4)? as u64,
                        total_time: row.get(5)?,
                        last_sessions: Vec::new(),
                        custom_events: BTreeMap::new(),
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let users = rows
            .into_iter()
            .map(|(pk, mut user)| {
                user.last_sessions = last_sessions(self, pk, 1)?;
                user.custom_events = custom_events(self, pk)?;
                Ok(user)
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((users, matching as usize))
    }
}

fn summary(
    conn: &Connection,
    user_pk: i64,
    device_id: String,
    user_id: Option<String>,
) -> rusqlite::Result<UserSummary> {
    let (sessions, sessions_ended, total_time): (i64, i64, f64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(starts), 0), COALESCE(SUM(ends), 0),
                    COALESCE(SUM(ended_time), 0.0)
             FROM sessions WHERE user_pk = ?1",
        )?
        .query_row([user_pk], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    Ok(UserSummary {
        device_id,
        user_id,
        sessions: sessions as u64,
        sessions_ended: sessions_ended as u64,
        total_time,
        last_sessions: last_sessions(conn, user_pk, LAST_SESSIONS_SHOWN)?,
        custom_events: custom_events(conn, user_pk)?,
    })
}

/// Most recent first by start time; a session known only by its end sorts by that; ties fall
/// back to arrival order.
fn last_sessions(
    conn: &Connection,
    user_pk: i64,
    limit: usize,
) -> rusqlite::Result<Vec<SessionSummary>> {
    conn.prepare_cached(
        "SELECT session_id, started_at, ended_at, duration, app_version, os_name,
                os_version, device_model, arch, locale
         FROM sessions WHERE user_pk = ?1
         ORDER BY COALESCE(started_at, ended_at) DESC, first_seq DESC LIMIT ?2",
    )?
    .query_map(params![user_pk, limit as i64], |row| {
        Ok(SessionSummary {
            session_id: row.get(0)?,
            start: row.get(1)?,
            end: row.get(2)?,
            duration: row.get(3)?,
            context: SessionContext {
                app_version: row.get(4)?,
                os_name: row.get(5)?,
                os_version: row.get(6)?,
                device_model: row.get(7)?,
                arch: row.get(8)?,
                locale: row.get(9)?,
            },
        })
    })?
    .collect()
}

fn custom_events(conn: &Connection, user_pk: i64) -> rusqlite::Result<BTreeMap<String, u64>> {
    conn.prepare_cached("SELECT name, count FROM custom_events WHERE user_pk = ?1")?
        .query_map([user_pk], |row| {
            Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
        })?
        .collect()
}

/// Per day, over the users of `app`, or of one user row.
fn day_counts(
    conn: &Connection,
    app: AppFilter,
    user_pk: Option<i64>,
) -> rusqlite::Result<Vec<DayCount>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT s.start_day, COUNT(*), COUNT(DISTINCT s.user_pk)
         FROM sessions s JOIN users u ON u.user_pk = s.user_pk
         WHERE s.start_day IS NOT NULL AND {IN_APP} AND (?2 IS NULL OR s.user_pk = ?2)
         GROUP BY s.start_day ORDER BY s.start_day"
    ))?;
    let rows = statement.query_map(params![app, user_pk], |row| {
        Ok(DayCount {
            day: row.get(0)?,
            sessions: row.get::<_, i64>(1)? as u64,
            active_users: row.get::<_, i64>(2)? as u64,
        })
    })?;
    rows.collect()
}
