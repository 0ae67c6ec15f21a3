//! What the collector has accepted, in SQLite: datapoints de-duplicated by id, and per (device,
//! user) session statistics kept in tables as each new datapoint arrives, so the dashboard's
//! queries stay small however many datapoints there are. `docs/collector.md` explains the schema.
//!
//! One connection, used by one thread at a time (the caller holds it behind a mutex): SQLite
//! allows one writer anyway, and a batch is one transaction, so a batch is stored whole or not at
//! all and concurrent uploads never interleave inside one.

use crate::batch::{Batch, Kind, SessionContext, CONTEXT_KEYS};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// How many sessions a user lists, most recent first.
pub const LAST_SESSIONS_SHOWN: usize = 20;

/// Upper bounds (exclusive, seconds) of the session-length histogram's buckets; the last bucket
/// is everything from the final bound on.
pub const DURATION_BUCKETS: [(f64, &str); 7] = [
    (10.0, "< 10 s"),
    (30.0, "10–30 s"),
    (60.0, "30 s–1 min"),
    (300.0, "1–5 min"),
    (900.0, "5–15 min"),
    (1800.0, "15–30 min"),
    (3600.0, "30–60 min"),
];
pub const LAST_BUCKET_LABEL: &str = "≥ 1 h";

/// The schema, created on first open. Every statement is idempotent so reopening a database
/// from an earlier run keeps its data.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS datapoints (
    seq        INTEGER PRIMARY KEY,          -- arrival order
    id         TEXT NOT NULL UNIQUE,         -- the SDK's UUID: de-duplication
    device_id  TEXT NOT NULL,
    user_id    TEXT,                         -- NULL: anonymous
    name       TEXT NOT NULL,                -- ss, se, ce
    time       REAL NOT NULL,                -- Unix seconds
    session_id TEXT,
    raw        TEXT NOT NULL                 -- the datapoint exactly as received (JSON)
);
CREATE TABLE IF NOT EXISTS users (
    user_pk    INTEGER PRIMARY KEY,          -- order of first appearance
    device_id  TEXT NOT NULL,
    user_id    TEXT
);
CREATE INDEX IF NOT EXISTS users_by_key ON users (device_id, user_id);
CREATE TABLE IF NOT EXISTS sessions (
    device_id    TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    user_pk      INTEGER NOT NULL REFERENCES users (user_pk),  -- who it started under
    first_seq    INTEGER NOT NULL,           -- its first datapoint's arrival
    started_at   REAL,                       -- ss time; NULL until the ss arrives
    start_day    INTEGER,                    -- its UTC day, days since 1970-01-01
    ended_at     REAL,                       -- se time; NULL while open
    duration     REAL,                       -- se data.d
    starts       INTEGER NOT NULL DEFAULT 0, -- ss datapoints received
    ends         INTEGER NOT NULL DEFAULT 0, -- se datapoints received
    ended_time   REAL NOT NULL DEFAULT 0,    -- sum of their data.d
    app_version  TEXT,
    os_name      TEXT,
    os_version   TEXT,
    device_model TEXT,
    arch         TEXT,
    locale       TEXT,
    PRIMARY KEY (device_id, session_id)
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_pk, start_day);
CREATE INDEX IF NOT EXISTS sessions_by_day ON sessions (start_day, user_pk);
CREATE TABLE IF NOT EXISTS custom_events (
    user_pk INTEGER NOT NULL REFERENCES users (user_pk),
    name    TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (user_pk, name)
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('received_total', 0);
";

#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub session_id: String,
    /// `None` when the `se` arrived but its `ss` has not (yet).
    pub start: Option<f64>,
    /// `None` while the session is open.
    pub end: Option<f64>,
    pub duration: Option<f64>,
    /// From the `ss` datapoint's `data`.
    pub context: SessionContext,
}

impl SessionSummary {
    /// "Android 14", "Linux", or `None` when the SDK sent no OS.
    pub fn os(&self) -> Option<String> {
        match (&self.context.os_name, &self.context.os_version) {
            (Some(name), Some(version)) => Some(format!("{name} {version}")),
            (Some(name), None) => Some(name.clone()),
            (None, Some(version)) => Some(version.clone()),
            (None, None) => None,
        }
    }

    pub fn to_json(&self) -> Value {
        // The keys the `ss` datapoint carried, and no others.
        let context: serde_json::Map<String, Value> = CONTEXT_KEYS
            .iter()
            .zip(self.context.values())
            .filter_map(|(key, field)| Some((key.to_string(), json!(field?))))
            .collect();
        json!({
            "session_id": self.session_id,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "context": context,
        })
    }
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
            "last_sessions": self.last_sessions.iter().map(SessionSummary::to_json).collect::<Vec<_>>(),
            "custom_events": self.custom_events,
        })
    }
}

/// One day of a per-day chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub sessions: u64,
    /// Distinct (device, user) rows with a session started that day.
    pub active_users: u64,
}

/// Everything the per-user "App Usage" page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct UserUsage {
    pub summary: UserSummary,
    /// Sessions started per day, only days with sessions.
    pub days: Vec<DayCount>,
    /// Ended sessions per [`DURATION_BUCKETS`] bucket, then the last bucket.
    pub duration_histogram: [u64; DURATION_BUCKETS.len() + 1],
}

impl UserUsage {
    pub fn to_json(&self) -> Value {
        json!({
            "user": self.summary.to_json(),
            "sessions_per_day": days_json(&self.days),
            "duration_histogram": bucket_labels().iter().zip(self.duration_histogram)
                .map(|(label, count)| json!({"bucket": label, "sessions": count}))
                .collect::<Vec<_>>(),
        })
    }
}

/// The histogram's labels in order.
pub fn bucket_labels() -> Vec<&'static str> {
    DURATION_BUCKETS
        .iter()
        .map(|(_, label)| *label)
        .chain([LAST_BUCKET_LABEL])
        .collect()
}

fn bucket_of(duration: f64) -> usize {
    DURATION_BUCKETS
        .iter()
        .position(|(bound, _)| duration < *bound)
        .unwrap_or(DURATION_BUCKETS.len())
}

pub fn days_json(days: &[DayCount]) -> Value {
    json!(days
        .iter()
        .map(
            |d| json!({"day": crate::dashboard::format_day(d.day), "sessions": d.sessions,
                        "active_users": d.active_users})
        )
        .collect::<Vec<_>>())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOutcome {
    pub new: usize,
    pub duplicates: usize,
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A private in-memory database, gone when the collector stops (tests, quickstart).
    Memory,
    /// A file, created if missing, kept across restarts.
    File(std::path::PathBuf),
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Memory => f.write_str("in memory (kept until exit)"),
            Database::File(path) => write!(f, "{}", path.display()),
        }
    }
}

pub struct Store {
    conn: Connection,
    /// Cached so that polling a count never scans the table.
    datapoint_count: usize,
    received_total: usize,
    /// Counts the changes a page could show (a batch with new datapoints, a reset).
    revision: u64,
    /// (device, user) -> `users.user_pk`, filled as rows are looked up.
    user_keys: HashMap<(String, Option<String>), i64>,
}

impl Store {
    pub fn open(database: &Database) -> rusqlite::Result<Store> {
        let conn = match database {
            Database::Memory => Connection::open_in_memory()?,
            Database::File(path) => open_file(path)?,
        };
        conn.execute_batch(SCHEMA)?;
        let datapoint_count: i64 =
            conn.query_row("SELECT COUNT(*) FROM datapoints", [], |row| row.get(0))?;
        let received_total: i64 = conn.query_row(
            "SELECT value FROM counters WHERE name = 'received_total'",
            [],
            |row| row.get(0),
        )?;
        Ok(Store {
            conn,
            datapoint_count: datapoint_count as usize,
            received_total: received_total as usize,
            revision: 0,
            user_keys: HashMap::new(),
        })
    }

    /// Applies every datapoint not seen before, in one transaction; a re-sent datapoint
    /// changes nothing but `received_total`.
    pub fn ingest(&mut self, batch: &Batch) -> rusqlite::Result<IngestOutcome> {
        let mut outcome = IngestOutcome {
            new: 0,
            duplicates: 0,
        };
        let mut new_users = Vec::new();
        let tx = self.conn.transaction()?;
        for datapoint in &batch.events {
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO datapoints
                        (id, device_id, user_id, name, time, session_id, raw)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    datapoint.id,
                    batch.device_id,
                    datapoint.user_id,
                    datapoint.name(),
                    datapoint.time,
                    datapoint.session_id,
                    datapoint.raw,
                ])?;
            if inserted == 0 {
                outcome.duplicates += 1;
                continue;
            }
            outcome.new += 1;
            let seq = tx.last_insert_rowid();
            let key = (batch.device_id.clone(), datapoint.user_id.clone());
            let mut user_for_key = |tx: &Transaction| -> rusqlite::Result<i64> {
                if let Some(&pk) = self.user_keys.get(&key) {
                    return Ok(pk);
                }
                if let Some(&(_, pk)) = new_users.iter().find(|(k, _)| *k == key) {
                    return Ok(pk);
                }
                let pk = user_pk(tx, &key.0, key.1.as_deref())?;
                new_users.push((key.clone(), pk));
                Ok(pk)
            };
            match datapoint.kind {
                Kind::SessionStart | Kind::SessionEnd => {
                    let session_id = datapoint.session_id.as_deref().unwrap_or_default();
                    // The owner is whoever the session's first datapoint came under: an end
                    // is credited to the user the session started under, so one user's
                    // sessions, ended sessions and total time agree even if the user changed
                    // mid-session.
                    let owner = tx
                        .prepare_cached(
                            "SELECT user_pk FROM sessions WHERE device_id = ?1 AND session_id = ?2",
                        )?
                        .query_row(params![batch.device_id, session_id], |row| {
                            row.get::<_, i64>(0)
                        })
                        .optional()?;
                    if owner.is_none() {
                        let owner = user_for_key(&tx)?;
                        tx.prepare_cached(
                            "INSERT INTO sessions (device_id, session_id, user_pk, first_seq)
                             VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![
                            batch.device_id,
                            session_id,
                            owner,
                            seq
                        ])?;
                    }
                    if datapoint.kind == Kind::SessionStart {
                        let [app_version, os_name, os_version, device_model, arch, locale] =
                            datapoint.context.values();
                        tx.prepare_cached(
                            "UPDATE sessions SET started_at = ?3, start_day = ?10,
                                starts = starts + 1, app_version = ?4, os_name = ?5,
                                os_version = ?6, device_model = ?7, arch = ?8, locale = ?9
                             WHERE device_id = ?1 AND session_id = ?2",
                        )?
                        .execute(params![
                            batch.device_id,
                            session_id,
                            datapoint.time,
                            app_version,
                            os_name,
                            os_version,
                            device_model,
                            arch,
                            locale,
                            day_of(datapoint.time),
                        ])?;
                    } else {
                        let duration = datapoint.duration.unwrap_or(0.0);
                        tx.prepare_cached(
                            "UPDATE sessions SET ended_at = ?3, duration = ?4, ends = ends + 1,
                                ended_time = ended_time + ?4
                             WHERE device_id = ?1 AND session_id = ?2",
                        )?
                        .execute(params![
                            batch.device_id,
                            session_id,
                            datapoint.time,
                            duration
                        ])?;
                    }
                }
                Kind::Custom => {
                    let user_pk = user_for_key(&tx)?;
                    tx.prepare_cached(
                        "INSERT INTO custom_events (user_pk, name, count) VALUES (?1, ?2, 1)
                         ON CONFLICT (user_pk, name) DO UPDATE SET count = count + 1",
                    )?
                    .execute(params![
                        user_pk,
                        datapoint.custom_name.as_deref().unwrap_or_default()
                    ])?;
                }
            }
        }
        tx.prepare_cached("UPDATE counters SET value = value + ?1 WHERE name = 'received_total'")?
            .execute([batch.events.len() as i64])?;
        tx.commit()?;
        // Only what the database now holds goes into the caches.
        self.user_keys.extend(new_users);
        self.datapoint_count += outcome.new;
        self.revision += u64::from(outcome.new > 0);
        self.received_total += batch.events.len();
        Ok(outcome)
    }

    /// Deletes everything (`POST /admin/reset`).
    pub fn reset(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch(
            "BEGIN;
             DELETE FROM datapoints; DELETE FROM sessions; DELETE FROM custom_events;
             DELETE FROM users; UPDATE counters SET value = 0;
             COMMIT;",
        )?;
        self.user_keys.clear();
        self.datapoint_count = 0;
        self.revision += 1;
        self.received_total = 0;
        Ok(())
    }

    /// Changes when what the pages show may have changed (not when only duplicates arrived).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn datapoint_count(&self) -> usize {
        self.datapoint_count
    }

    /// Datapoints in accepted batches, duplicates included.
    pub fn received_total(&self) -> usize {
        self.received_total
    }

    /// The read side on the writer's own connection (an in-memory database has no other).
    pub fn reader(&self) -> Reader<'_> {
        Reader { conn: &self.conn }
    }
}

/// Opens a second connection for reading, when the database is a file: in WAL mode it reads
/// the last committed state while the writer goes on, so a dashboard never holds up ingest.
pub fn open_reader(database: &Database) -> rusqlite::Result<Option<Connection>> {
    match database {
        Database::Memory => Ok(None),
        Database::File(path) => {
            let conn = open_file(path)?;
            conn.pragma_update(None, "query_only", true)?;
            Ok(Some(conn))
        }
    }
}

/// The UTC day of a Unix time, days since 1970-01-01 (floored, also before 1970).
fn day_of(time: f64) -> i64 {
    (time / 86_400.0).floor() as i64
}

/// Every query the pages and the API make, on whichever connection reads.
pub struct Reader<'a> {
    conn: &'a Connection,
}

impl<'a> Reader<'a> {
    pub fn new(conn: &'a Connection) -> Reader<'a> {
        Reader { conn }
    }

    /// De-duplicated datapoints in arrival order, exactly as received.
    pub fn datapoints(&self) -> rusqlite::Result<Vec<Value>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT raw FROM datapoints ORDER BY seq")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|raw| {
            let raw = raw?;
            serde_json::from_str(&raw).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
            })
        })
        .collect()
    }

    /// Every (device, user) row in order of first appearance, with its sessions and events.
    pub fn users(&self) -> rusqlite::Result<Vec<UserSummary>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT user_pk, device_id, user_id FROM users ORDER BY user_pk")?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<Vec<(i64, String, Option<String>)>>>()?;
        rows.into_iter()
            .map(|(pk, device_id, user_id)| self.summary(pk, device_id, user_id))
            .collect()
    }

    /// The body of `GET /api/users`.
    pub fn users_json(&self) -> rusqlite::Result<Value> {
        let users = self.users()?;
        Ok(json!({ "users": users.iter().map(UserSummary::to_json).collect::<Vec<_>>() }))
    }

    fn summary(
        &self,
        user_pk: i64,
        device_id: String,
        user_id: Option<String>,
    ) -> rusqlite::Result<UserSummary> {
        let (sessions, sessions_ended, total_time): (i64, i64, f64) = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(starts), 0), COALESCE(SUM(ends), 0),
                        COALESCE(SUM(ended_time), 0.0)
                 FROM sessions WHERE user_pk = ?1",
            )?
            .query_row([user_pk], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        let last_sessions = self.last_sessions(user_pk, LAST_SESSIONS_SHOWN)?;
        let custom_events = self.custom_events(user_pk)?;
        Ok(UserSummary {
            device_id,
            user_id,
            sessions: sessions as u64,
            sessions_ended: sessions_ended as u64,
            total_time,
            last_sessions,
            custom_events,
        })
    }

    /// Most recent first by start time; a session known only by its end sorts by that; ties
    /// fall back to arrival order.
    fn last_sessions(&self, user_pk: i64, limit: usize) -> rusqlite::Result<Vec<SessionSummary>> {
        self.conn
            .prepare_cached(
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

    fn custom_events(&self, user_pk: i64) -> rusqlite::Result<BTreeMap<String, u64>> {
        self.conn
            .prepare_cached("SELECT name, count FROM custom_events WHERE user_pk = ?1")?
            .query_map([user_pk], |row| {
                Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
            })?
            .collect()
    }

    /// Sessions started per day and the users active that day, across all users; only days
    /// with sessions, oldest first.
    pub fn days(&self) -> rusqlite::Result<Vec<DayCount>> {
        self.day_counts(None)
    }

    fn day_counts(&self, user_pk: Option<i64>) -> rusqlite::Result<Vec<DayCount>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT start_day, COUNT(*), COUNT(DISTINCT user_pk)
             FROM sessions
             WHERE start_day IS NOT NULL AND (?1 IS NULL OR user_pk = ?1)
             GROUP BY start_day ORDER BY start_day",
        )?;
        let rows = statement.query_map([user_pk], |row| {
            Ok(DayCount {
                day: row.get(0)?,
                sessions: row.get::<_, i64>(1)? as u64,
                active_users: row.get::<_, i64>(2)? as u64,
            })
        })?;
        rows.collect()
    }

    /// The "App Usage" of one (device, user) row, or `None` if it never sent anything.
    pub fn user_usage(
        &self,
        device_id: &str,
        user_id: Option<&str>,
    ) -> rusqlite::Result<Option<UserUsage>> {
        let Some(pk) = self
            .conn
            .prepare_cached("SELECT user_pk FROM users WHERE device_id = ?1 AND user_id IS ?2")?
            .query_row(params![device_id, user_id], |row| row.get::<_, i64>(0))
            .optional()?
        else {
            return Ok(None);
        };
        let summary = self.summary(pk, device_id.to_string(), user_id.map(String::from))?;
        let days = self.day_counts(Some(pk))?;
        let mut duration_histogram = [0; DURATION_BUCKETS.len() + 1];
        let mut statement = self.conn.prepare_cached(
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

    /// The users the overview lists: those matching `query` (a case-insensitive part of the
    /// user id, "anonymous" or the device id; "" for all), most recently active first, at most
    /// `limit`, each with its latest session only; and how many match in all.
    pub fn overview_users(
        &self,
        query: &str,
        limit: usize,
    ) -> rusqlite::Result<(Vec<UserSummary>, usize)> {
        let query = query.trim().to_lowercase();
        const MATCHES: &str = "(?1 = '' OR instr(lower(COALESCE(u.user_id, 'anonymous')), ?1) > 0
                                OR instr(lower(u.device_id), ?1) > 0)";
        let matching: i64 = self
            .conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM users u WHERE {MATCHES}"))?
            .query_row([&query], |row| row.get(0))?;
        let rows = self
            .conn
            .prepare_cached(&format!(
                "WITH totals AS (
                     SELECT user_pk, SUM(starts) AS starts, SUM(ends) AS ends,
                            SUM(ended_time) AS ended_time,
                            MAX(COALESCE(started_at, ended_at)) AS last_active
                     FROM sessions GROUP BY user_pk)
                 SELECT u.user_pk, u.device_id, u.user_id, COALESCE(t.starts, 0),
                        COALESCE(t.ends, 0), COALESCE(t.ended_time, 0.0)
                 FROM users u LEFT JOIN totals t ON t.user_pk = u.user_pk
                 WHERE {MATCHES}
                 ORDER BY t.last_active DESC NULLS LAST, u.user_pk
                 LIMIT ?2"
            ))?
            .query_map(params![query, limit as i64], |row| {
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
                user.last_sessions = self.last_sessions(pk, 1)?;
                user.custom_events = self.custom_events(pk)?;
                Ok(user)
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((users, matching as usize))
    }
}

fn open_file(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Another process on the same file (a second collector, sqlite3) waits instead of failing.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL: readers never block the writer; NORMAL: a commit survives a killed process (the
    // WAL is in the OS's hands), and a power loss may lose the last commits, never corrupt.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// The row of (device, user), created on first sight.
fn user_pk(tx: &Transaction, device_id: &str, user_id: Option<&str>) -> rusqlite::Result<i64> {
    let found = tx
        .prepare_cached("SELECT user_pk FROM users WHERE device_id = ?1 AND user_id IS ?2")?
        .query_row(params![device_id, user_id], |row| row.get(0))
        .optional()?;
    if let Some(pk) = found {
        return Ok(pk);
    }
    tx.prepare_cached("INSERT INTO users (device_id, user_id) VALUES (?1, ?2)")?
        .execute(params![device_id, user_id])?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate;

    fn id(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn memory() -> Store {
        Store::open(&Database::Memory).unwrap()
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
        let mut store = memory();
        store
            .ingest(&batch(
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
            ))
            .unwrap();
        let users = store.reader().users().unwrap();
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
                duration: Some(60.0),
                context: SessionContext::default(),
            }
        );
        assert_eq!(users[1].user_id, None);
        assert_eq!(users[1].sessions, 1);
    }

    #[test]
    fn a_resent_datapoint_counts_once() {
        let mut store = memory();
        let events = vec![
            ss(1, "s1", Some("a"), 1.0),
            se(2, "s1", Some("a"), 2.0, 1.0),
        ];
        let first = store.ingest(&batch("dev", events.clone())).unwrap();
        let second = store.ingest(&batch("dev", events)).unwrap();
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
        assert_eq!(store.reader().datapoints().unwrap().len(), 2);
        assert_eq!(store.datapoint_count(), 2);
        assert_eq!(store.received_total(), 4);
        let users = store.reader().users().unwrap();
        assert_eq!((users[0].sessions, users[0].total_time), (1, 1.0));
    }

    #[test]
    fn an_end_is_credited_to_the_user_the_session_started_under() {
        let mut store = memory();
        store
            .ingest(&batch(
                "dev",
                vec![ss(1, "s1", None, 1.0), se(2, "s1", Some("bob"), 9.0, 8.0)],
            ))
            .unwrap();
        let users = store.reader().users().unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].user_id, None);
        assert_eq!((users[0].sessions, users[0].sessions_ended), (1, 1));
        assert_eq!(users[0].total_time, 8.0);
    }

    #[test]
    fn an_end_before_its_start_still_forms_one_session() {
        let mut store = memory();
        store
            .ingest(&batch("dev", vec![se(2, "s1", Some("a"), 9.0, 8.0)]))
            .unwrap();
        store
            .ingest(&batch("dev", vec![ss(1, "s1", Some("a"), 1.0)]))
            .unwrap();
        let user = &store.reader().users().unwrap()[0];
        assert_eq!(user.last_sessions.len(), 1);
        assert_eq!(user.last_sessions[0].start, Some(1.0));
        assert_eq!(user.last_sessions[0].end, Some(9.0));
    }

    #[test]
    fn devices_are_kept_apart_and_the_list_is_capped() {
        let mut store = memory();
        let many: Vec<Value> = (0..25)
            .map(|i| ss(i, &format!("s{i}"), Some("a"), f64::from(i)))
            .collect();
        store.ingest(&batch("dev1", many)).unwrap();
        store
            .ingest(&batch("dev2", vec![ss(100, "s0", Some("a"), 1.0)]))
            .unwrap();
        let users = store.reader().users().unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].sessions, 25);
        assert_eq!(users[0].last_sessions.len(), LAST_SESSIONS_SHOWN);
        assert_eq!(users[0].last_sessions[0].session_id, "s24");
        assert_eq!(users[1].sessions, 1);
        let json = store.reader().users_json().unwrap();
        assert_eq!(json["users"][1]["device_id"], "dev2");
        assert_eq!(json["users"][0]["last_sessions"][0]["end"], Value::Null);
    }

    #[test]
    fn the_session_keeps_the_context_of_its_start() {
        let mut store = memory();
        let mut start = ss(1, "s1", Some("a"), 1.0);
        start["data"] = json!({"app_version": "3.1.0", "os_name": "iOS", "os_version": "17.5",
                               "device_model": "iPhone15,2", "arch": "arm64", "locale": "fr-FR"});
        store.ingest(&batch("dev", vec![start])).unwrap();
        let session = &store.reader().users().unwrap()[0].last_sessions[0];
        assert_eq!(session.context.app_version.as_deref(), Some("3.1.0"));
        assert_eq!(session.os().as_deref(), Some("iOS 17.5"));
        let json = session.to_json();
        assert_eq!(json["context"]["device_model"], "iPhone15,2");
        assert_eq!(json["context"]["locale"], "fr-FR");
        assert_eq!(json["context"].as_object().unwrap().len(), 6);
    }

    #[test]
    fn days_count_sessions_and_distinct_active_users() {
        let mut store = memory();
        let day = 86_400.0;
        store
            .ingest(&batch(
                "dev",
                vec![
                    ss(1, "a1", Some("a"), 10.0 * day + 5.0),
                    ss(2, "a2", Some("a"), 10.0 * day + 500.0),
                    ss(3, "b1", Some("b"), 10.0 * day + 900.0),
                    ss(4, "a3", Some("a"), 12.0 * day),
                    se(5, "a3", Some("a"), 12.0 * day + 45.0, 45.0),
                    se(6, "a1", Some("a"), 10.0 * day + 7200.0, 7195.0),
                ],
            ))
            .unwrap();
        let days = store.reader().days().unwrap();
        assert_eq!(
            days,
            [
                DayCount {
                    day: 10,
                    sessions: 3,
                    active_users: 2
                },
                DayCount {
                    day: 12,
                    sessions: 1,
                    active_users: 1
                },
            ]
        );
        let usage = store
            .reader()
            .user_usage("dev", Some("a"))
            .unwrap()
            .unwrap();
        assert_eq!(usage.days.iter().map(|d| d.sessions).sum::<u64>(), 3);
        // 45 s falls in "30 s–1 min", 7195 s in the last bucket.
        assert_eq!(usage.duration_histogram, [0, 0, 1, 0, 0, 0, 0, 1]);
        assert!(store
            .reader()
            .user_usage("dev", Some("nobody"))
            .unwrap()
            .is_none());
        assert!(store.reader().user_usage("dev", None).unwrap().is_none());
    }

    #[test]
    fn the_overview_lists_the_most_recently_active_matching_users() {
        let mut store = memory();
        let events: Vec<Value> = (0..5)
            .map(|i| {
                ss(
                    i,
                    &format!("s{i}"),
                    Some(&format!("user{i}")),
                    f64::from(100 * i),
                )
            })
            .chain([ce(50, "x", None)])
            .collect();
        store.ingest(&batch("dev", events)).unwrap();
        let reader = store.reader();
        let (users, matching) = reader.overview_users("", 3).unwrap();
        assert_eq!(matching, 6);
        let names: Vec<_> = users.iter().map(|u| u.user_id.as_deref()).collect();
        assert_eq!(names, [Some("user4"), Some("user3"), Some("user2")]);
        assert_eq!(users[0].last_sessions.len(), 1);
        assert_eq!(users[0].sessions, 1);
        let (users, matching) = reader.overview_users(" USER1 ", 10).unwrap();
        assert_eq!((users.len(), matching), (1, 1));
        // The anonymous row (no sessions) sorts last and is found by "anonymous".
        let (users, _) = reader.overview_users("anon", 10).unwrap();
        assert_eq!(users[0].user_id, None);
        assert_eq!(users[0].custom_events["x"], 1);
        assert_eq!(reader.overview_users("DEV", 10).unwrap().1, 6);
    }

    #[test]
    fn a_file_database_keeps_everything_across_reopening() {
        let dir = std::env::temp_dir().join(format!("stint-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("reopen.db");
        let _ = std::fs::remove_file(&path);
        let database = Database::File(path.clone());
        {
            let mut store = Store::open(&database).unwrap();
            store
                .ingest(&batch(
                    "dev",
                    vec![ss(1, "s1", Some("a"), 1.0), ce(2, "x", Some("a"))],
                ))
                .unwrap();
            store
                .ingest(&batch("dev", vec![ss(1, "s1", Some("a"), 1.0)]))
                .unwrap();
        }
        let mut store = Store::open(&database).unwrap();
        assert_eq!((store.datapoint_count(), store.received_total()), (2, 3));
        // A datapoint stored before the restart is still a duplicate after it.
        let again = store
            .ingest(&batch("dev", vec![ce(2, "x", Some("a"))]))
            .unwrap();
        assert_eq!(again.duplicates, 1);
        let users = store.reader().users().unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].custom_events["x"], 1);
        store.reset().unwrap();
        assert_eq!(store.reader().users().unwrap().len(), 0);
        assert_eq!(store.received_total(), 0);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
