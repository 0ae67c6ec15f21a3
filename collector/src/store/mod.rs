//! What the collector has accepted, behind two traits so that the server and the pages do not
//! care where it lives: [`Store`] (the writer: ingest, deletion, counters) and [`Reader`] (every
//! query the pages and the API make). [`sqlite`] keeps it in one file or in memory, [`postgres`] in a server that several
//! collectors can share; `docs/collector.md`
//! explains the schema.
//!
//! Every datapoint is stored with its app (the API key it arrived under); a user is a (app, device,
//! user id) triple, so the same user id under two apps is two users.

pub mod postgres;
pub mod sqlite;

use crate::batch::{Batch, Datapoint, Kind, SessionContext, CONTEXT_KEYS};
use crate::text::format_day;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

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

pub(crate) fn bucket_of(duration: f64) -> usize {
    DURATION_BUCKETS
        .iter()
        .position(|(bound, _)| duration < *bound)
        .unwrap_or(DURATION_BUCKETS.len())
}

pub fn days_json(days: &[DayCount]) -> Value {
    json!(days
        .iter()
        .map(|d| json!({"day": format_day(d.day), "sessions": d.sessions,
                        "active_users": d.active_users}))
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
    /// A PostgreSQL server, by its `postgres://` (or `postgresql://`) URL.
    Postgres(String),
}

impl Database {
    /// `:memory:`, a `postgres://` or `postgresql://` URL, or else a SQLite file path.
    pub fn parse(text: &str) -> Database {
        if text == ":memory:" {
            Database::Memory
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Database::Postgres(text.to_string())
        } else {
            Database::File(text.into())
        }
    }
}

/// The reading side a collector uses beside its store, when the store offers one of its own.
pub type SeparateReader = Box<dyn Reader + Send>;

/// Opens (creating the schema if needed) the store for `database`, and a separate reader when
/// the database allows reads beside the writer.
pub fn open(database: &Database) -> StoreResult<(Box<dyn Store>, Option<SeparateReader>)> {
    match database {
        Database::Memory | Database::File(_) => {
            let store = sqlite::SqliteStore::open(database)?;
            let reader =
                sqlite::open_reader(database)?.map(|conn| Box::new(conn) as SeparateReader);
            Ok((Box::new(store), reader))
        }
        Database::Postgres(_) => {
            let store = postgres::PostgresStore::open(database)?;
            let reader = postgres::PostgresReader::open(database)?;
            Ok((Box::new(store), Some(Box::new(reader) as SeparateReader)))
        }
    }
}

/// Ingest writers beside the store on PostgreSQL: each its own connection and transaction, so
/// one batch's round trips and commit (a WAL flush) overlap the next's, as with several
/// collectors on one database. SQLite has one writer: none.
pub const POSTGRES_INGEST_WRITERS: usize = 4;

/// The extra writers ingest may use beside the store [`open`] returned.
pub fn open_ingest_writers(database: &Database) -> StoreResult<Vec<Box<dyn Store>>> {
    match database {
        Database::Memory | Database::File(_) => Ok(Vec::new()),
        Database::Postgres(_) => (0..POSTGRES_INGEST_WRITERS)
            .map(|_| Ok(Box::new(postgres::PostgresStore::open(database)?) as Box<dyn Store>))
            .collect(),
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Memory => f.write_str("in memory (kept until exit)"),
            Database::File(path) => write!(f, "{}", path.display()),
            // The URL without its password.
            Database::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// The UTC day of a Unix time, days since 1970-01-01 (floored, also before 1970).
pub fn day_of(time: f64) -> i64 {
    (time / 86_400.0).floor() as i64
}

/// A database failure, as the message the API answers with (500) and the CLI prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError(error.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which app the pages show: one, or all of them together.
pub type AppFilter<'a> = Option<&'a str>;

/// The writing side. One instance per collector, used by one thread at a time (the server holds
/// it behind a mutex). Batches are written in groups (group commit): one transaction for every
/// batch queued behind the writer, each batch under a savepoint of its own, so a batch is stored
/// whole or not at all and a failing batch leaves the others of its group in place. PostgreSQL's
/// store commits each batch alone, within `ingest_in_group`.
pub trait Store: Send {
    /// Applies every datapoint not seen before (by id) under `app`; a re-sent datapoint changes
    /// nothing but `received_total`. One batch in a group of its own (the server groups them
    /// through `server::Writer`; the stores' unit tests call this).
    #[cfg(test)]
    fn ingest(&mut self, app: &str, batch: &Batch) -> StoreResult<IngestOutcome> {
        self.begin_group()?;
        let outcome = self.ingest_in_group(app, batch);
        self.commit_group()?;
        outcome
    }
    /// Opens a group's transaction.
    fn begin_group(&mut self) -> StoreResult<()>;
    /// [`Store::ingest`] inside the open group: on an error, nothing of this batch stays and
    /// the group goes on.
    fn ingest_in_group(&mut self, app: &str, batch: &Batch) -> StoreResult<IngestOutcome>;
    /// Commits the open group (its batches are stored from now on); on an error none of them is.
    fn commit_group(&mut self) -> StoreResult<()>;
    /// Deletes everything (`POST /admin/reset`).
    fn reset(&mut self) -> StoreResult<()>;
    /// Deletes every datapoint of a device (and what was derived from them); returns how many.
    fn delete_device(&mut self, device_id: &str) -> StoreResult<usize>;
    /// Deletes the datapoints whose time is before `cutoff` (Unix seconds); returns how many.
    fn delete_before(&mut self, cutoff: f64) -> StoreResult<usize>;
    /// Changes when what the pages show may have changed (not when only duplicates arrived).
    fn revision(&self) -> u64;
    fn datapoint_count(&self) -> usize;
    /// Datapoints in accepted batches, duplicates included.
    fn received_total(&self) -> usize;
    /// The read side on the writer's own connection.
    fn reader(&self) -> &dyn Reader;
}

/// Every query the pages and the API make.
pub trait Reader {
    /// De-duplicated datapoints in arrival order, exactly as received.
    fn datapoints(&self) -> StoreResult<Vec<Value>>;
    /// The apps (API keys) that sent anything, sorted.
    fn apps(&self) -> StoreResult<Vec<String>>;
    /// Every user row of `app` (all apps: `None`) in order of first appearance, with its
    /// sessions and events.
    fn users(&self, app: AppFilter) -> StoreResult<Vec<UserSummary>>;
    /// Sessions started per day and the users active that day; only days with sessions, oldest
    /// first.
    fn days(&self, app: AppFilter) -> StoreResult<Vec<DayCount>>;
    /// The "App Usage" of one user on a device, or `None` if it never sent anything. With
    /// `app: None`, the first app in which that (device, user) appeared.
    fn user_usage(
        &self,
        app: AppFilter,
        device_id: &str,
        user_id: Option<&str>,
    ) -> StoreResult<Option<UserUsage>>;
    /// The users the overview lists: those matching `query` (a case-insensitive part of the user
    /// id, "anonymous" or the device id; "" for all), most recently active first, at most
    /// `limit`, each with its latest session only; and how many match in all.
    fn overview_users(
        &self,
        app: AppFilter,
        query: &str,
        limit: usize,
    ) -> StoreResult<(Vec<UserSummary>, usize)>;
}

/// The body of `GET /api/users`.
pub fn users_json(reader: &dyn Reader, app: AppFilter) -> StoreResult<Value> {
    let users = reader.users(app)?;
    Ok(json!({ "users": users.iter().map(UserSummary::to_json).collect::<Vec<_>>() }))
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`, for logs and errors.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// What a batch does to one session, summed in arrival order.
#[derive(Default)]
pub(crate) struct SessionChange<'a> {
    /// The user and arrival (`seq`) of its first new datapoint: the owner, if the row is new.
    pub first: Option<(Option<&'a str>, i64)>,
    pub starts: i64,
    pub ends: i64,
    pub ended_time: f64,
    /// The last start's time and context; the last end's time and length.
    pub started_at: Option<f64>,
    pub context: Option<&'a SessionContext>,
    pub ended_at: Option<f64>,
    pub duration: Option<f64>,
}

impl<'a> SessionChange<'a> {
    /// `start_day` for the row, when this batch starts the session.
    pub fn start_day(&self) -> Option<i64> {
        self.started_at.map(day_of)
    }

    /// The context columns a start sets (all `None` without a start: they are left as they are).
    pub fn context_values(&self) -> [Option<&'a str>; 6] {
        self.context.map_or([None; 6], |context| context.values())
    }
}

/// What a batch's new datapoints change, summed, so that a store writes each session and each
/// (user, custom event) once per batch instead of once per datapoint.
#[derive(Default)]
pub(crate) struct BatchChanges<'a> {
    pub sessions: BTreeMap<&'a str, SessionChange<'a>>,
    /// (user, event name) -> how many.
    pub custom: BTreeMap<(Option<&'a str>, &'a str), i64>,
    /// The arrival of each custom event sender's first new custom event.
    custom_senders: BTreeMap<Option<&'a str>, i64>,
}

impl<'a> BatchChanges<'a> {
    /// From the new datapoints in arrival order, each with its `seq`.
    pub fn of(new: &[(&'a Datapoint, i64)]) -> BatchChanges<'a> {
        let mut changes = BatchChanges::default();
        for (datapoint, seq) in new {
            let user = datapoint.user_id.as_deref();
            if datapoint.kind == Kind::Custom {
                let name = datapoint.custom_name.as_deref().unwrap_or_default();
                *changes.custom.entry((user, name)).or_default() += 1;
                changes.custom_senders.entry(user).or_insert(*seq);
                continue;
            }
            let id = datapoint.session_id.as_deref().unwrap_or_default();
            let change = changes.sessions.entry(id).or_default();
            change.first.get_or_insert((user, *seq));
            if datapoint.kind == Kind::SessionStart {
                change.starts += 1;
                change.started_at = Some(datapoint.time);
                change.context = Some(&datapoint.context);
            } else {
                let duration = datapoint.duration.unwrap_or(0.0);
                change.ends += 1;
                change.ended_time += duration;
                change.ended_at = Some(datapoint.time);
                change.duration = Some(duration);
            }
        }
        changes
    }

    /// The users whose row this batch needs, in order of first appearance (the order user rows
    /// are numbered in): the owners of sessions new to the store (the end of a session credits
    /// whoever it started under) and the senders of custom events.
    pub fn users_needed(&self, existing: &BTreeSet<String>) -> Vec<Option<&'a str>> {
        let mut needed: Vec<(i64, Option<&'a str>)> = self
            .sessions
            .iter()
            .filter(|(id, _)| !existing.contains(**id))
            .filter_map(|(_, change)| change.first.map(|(user, seq)| (seq, user)))
            .chain(self.custom_senders.iter().map(|(user, seq)| (*seq, *user)))
            .collect();
        needed.sort_unstable();
        let mut seen = BTreeSet::new();
        needed.retain(|(_, user)| seen.insert(*user));
        needed.into_iter().map(|(_, user)| user).collect()
    }
}

/// The datapoints of a batch that are new, in body order (a repeated id counts once, at its
/// first occurrence), given each with its id as the store keys it and the `seq` the store gave
/// each new id.
pub(crate) fn new_datapoints<'a, K: std::hash::Hash + Eq>(
    datapoints: impl Iterator<Item = (&'a Datapoint, K)>,
    mut seq_of: std::collections::HashMap<K, i64>,
) -> Vec<(&'a Datapoint, i64)> {
    datapoints
        .filter_map(|(d, id)| seq_of.remove(&id).map(|seq| (d, seq)))
        .collect()
}
