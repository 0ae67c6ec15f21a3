//! The PostgreSQL store's queries for the pages and the API, on the reader's own connection.

use super::PostgresReader;
use crate::batch::SessionContext;
use crate::store::{
    bucket_of, AppFilter, DayCount, Reader, SessionSummary, StoreError, StoreResult, UserSummary,
    UserUsage, DURATION_BUCKETS, LAST_SESSIONS_SHOWN,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// `($1::text IS NULL OR u.app = $1)`: the app filter, on the users row `u`.
const IN_APP: &str = "($1::text IS NULL OR u.app = $1)";

impl Reader for PostgresReader {
    fn datapoints(&self) -> StoreResult<Vec<Value>> {
        let rows = self
            .0
            .borrow_mut()
            .query("SELECT raw FROM datapoints ORDER BY seq", &[])?;
        rows.iter()
            .map(|row| {
                serde_json::from_str(row.get::<_, &str>(0))
                    .map_err(|e| StoreError(format!("a stored datapoint is not JSON: {e}")))
            })
            .collect()
    }

    fn apps(&self) -> StoreResult<Vec<String>> {
        let rows = self
            .0
            .borrow_mut()
            .query("SELECT DISTINCT app FROM users ORDER BY app", &[])?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn users(&self, app: AppFilter) -> StoreResult<Vec<UserSummary>> {
        let rows = self.0.borrow_mut().query(
            &format!(
                "SELECT user_pk, device_id, user_id FROM users u WHERE {IN_APP} ORDER BY user_pk"
            ),
            &[&app],
        )?;
        rows.iter()
            .map(|row| self.summary(row.get(0), row.get(1), row.get(2)))
            .collect()
    }

    fn days(&self, app: AppFilter) -> StoreResult<Vec<DayCount>> {
        self.day_counts(app, None)
    }

    fn user_usage(
        &self,
        app: AppFilter,
        device_id: &str,
        user_id: Option<&str>,
    ) -> StoreResult<Option<UserUsage>> {
        let found = self.0.borrow_mut().query_opt(
            &format!(
                "SELECT user_pk FROM users u
                 WHERE {IN_APP} AND device_id = $2 AND user_id IS NOT DISTINCT FROM $3
                 ORDER BY user_pk LIMIT 1"
            ),
            &[&app, &device_id, &user_id],
        )?;
        let Some(pk) = found.map(|row| row.get::<_, i64>(0)) else {
            return Ok(None);
        };
        let summary = self.summary(pk, device_id.to_string(), user_id.map(String::from))?;
        let days = self.day_counts(None, Some(pk))?;
        let mut duration_histogram = [0; DURATION_BUCKETS.len() + 1];
        for row in self.0.borrow_mut().query(
            "SELECT duration FROM sessions WHERE user_pk = $1 AND duration IS NOT NULL",
            &[&pk],
        )? {
            duration_histogram[bucket_of(row.get(0))] += 1;
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
            "{IN_APP} AND ($2 = '' OR strpos(lower(COALESCE(u.user_id, 'anonymous')), $2) > 0
                          OR strpos(lower(u.device_id), $2) > 0)"
        );
        let matching: i64 = self
            .0
            .borrow_mut()
            .query_one(
                &format!("SELECT COUNT(*) FROM users u WHERE {matches}"),
                &[&app, &query],
            )?
            .get(0);
        let rows = self.0.borrow_mut().query(
            &format!(
                "WITH totals AS (
                     SELECT user_pk, SUM(starts) AS starts, SUM(ends) AS ends,
                            SUM(ended_time) AS ended_time,
                            MAX(COALESCE(started_at, ended_at)) AS last_active
                     FROM sessions GROUP BY user_pk)
                 SELECT u.user_pk, u.device_id, u.user_id, COALESCE(t.starts, 0)::int8,
                        COALESCE(t.ends, 0)::int8, COALESCE(t.ended_time, 0)::float8
                 FROM users u LEFT JOIN totals t ON t.user_pk = u.user_pk
                 WHERE {matches}
                 ORDER BY t.last_active DESC NULLS LAST, u.user_pk
                 LIMIT $3"
            ),
            &[&app, &query, &(limit as i64)],
        )?;
        let users = rows
            .iter()
            .map(|row| {
                let pk: i64 = row.get(0);
                Ok(UserSummary {
                    device_id: row.get(1),
                    user_id: row.get(2),
                    sessions: row.get::<_, i64>(3) as u64,
                    sessions_ended: row.get::<_, i64>(4) as u64,
                    total_time: row.get(5),
                    last_sessions: self.last_sessions(pk, 1)?,
                    custom_events: self.custom_events(pk)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((users, matching as usize))
    }
}

impl PostgresReader {
    fn summary(
        &self,
        user_pk: i64,
        device_id: String,
        user_id: Option<String>,
    ) -> StoreResult<UserSummary> {
        let row = self.0.borrow_mut().query_one(
            "SELECT COALESCE(SUM(starts), 0)::int8, COALESCE(SUM(ends), 0)::int8,
                    COALESCE(SUM(ended_time), 0)::float8
             FROM sessions WHERE user_pk = $1",
            &[&user_pk],
        )?;
        Ok(UserSummary {
            device_id,
            user_id,
            sessions: row.get::<_, i64>(0) as u64,
            sessions_ended: row.get::<_, i64>(1) as u64,
            total_time: row.get(2),
            last_sessions: self.last_sessions(user_pk, LAST_SESSIONS_SHOWN)?,
            custom_events: self.custom_events(user_pk)?,
        })
    }

    fn last_sessions(&self, user_pk: i64, limit: usize) -> StoreResult<Vec<SessionSummary>> {
        let rows = self.0.borrow_mut().query(
            "SELECT session_id, started_at, ended_at, duration, app_version, os_name,
                    os_version, device_model, arch, locale
             FROM sessions WHERE user_pk = $1
             ORDER BY COALESCE(started_at, ended_at) DESC NULLS LAST, first_seq DESC LIMIT $2",
            &[&user_pk, &(limit as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|row| SessionSummary {
                session_id: row.get(0),
                start: row.get(1),
                end: row.get(2),
                duration: row.get(3),
                context: SessionContext {
                    app_version: row.get(4),
                    os_name: row.get(5),
                    os_version: row.get(6),
                    device_model: row.get(7),
                    arch: row.get(8),
                    locale: row.get(9),
                },
            })
            .collect())
    }

    fn custom_events(&self, user_pk: i64) -> StoreResult<BTreeMap<String, u64>> {
        let rows = self.0.borrow_mut().query(
            "SELECT name, count FROM custom_events WHERE user_pk = $1",
            &[&user_pk],
        )?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), row.get::<_, i64>(1) as u64))
            .collect())
    }

    fn day_counts(&self, app: AppFilter, user_pk: Option<i64>) -> StoreResult<Vec<DayCount>> {
        let rows = self.0.borrow_mut().query(
            &format!(
                "SELECT s.start_day, COUNT(*), COUNT(DISTINCT s.user_pk)
                 FROM sessions s JOIN users u ON u.user_pk = s.user_pk
                 WHERE s.start_day IS NOT NULL AND {IN_APP} AND ($2::int8 IS NULL OR s.user_pk = $2)
                 GROUP BY s.start_day ORDER BY s.start_day"
            ),
            &[&app, &user_pk],
        )?;
        Ok(rows
            .iter()
            .map(|row| DayCount {
                day: row.get(0),
                sessions: row.get::<_, i64>(1) as u64,
                active_users: row.get::<_, i64>(2) as u64,
            })
            .collect())
    }
}
