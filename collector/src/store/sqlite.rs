//! The SQLite store: datapoints de-duplicated by id, and per (app, device, user) session
//! statistics kept in tables as each new datapoint arrives, so the dashboard's
//! queries stay small however many datapoints there are. `docs/collector.md` explains the schema.
//!
//! One connection, used by one thread at a time (the caller holds it behind a mutex): SQLite
//! allows one writer anyway, and a batch is one transaction, so a batch is stored whole or not at
//! all and concurrent uploads never interleave inside one.

use super::{new_datapoints, BatchChanges, Database, IngestOutcome, Reader, Store, StoreResult};
use crate::batch::Batch;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

mod bulk;
mod checkpoint;
mod raw;
mod reader;
use checkpoint::Checkpointer;
use raw::{inline_surviving_raw, recount_custom_events};

/// The schema, created on first open. Every statement is idempotent so reopening a database
/// from an earlier run keeps its data.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS datapoints (
    seq        INTEGER PRIMARY KEY,          -- arrival order
    id         BLOB NOT NULL UNIQUE,         -- the SDK's UUID, 16 bytes: de-duplication
    device_id  TEXT NOT NULL,
    user_id    TEXT,                         -- NULL: anonymous
    app        TEXT NOT NULL DEFAULT '',     -- the API key it arrived under
    name       TEXT NOT NULL,                -- ss, se, ce
    time       REAL NOT NULL,                -- Unix seconds
    session_id TEXT,
    raw        TEXT NOT NULL,                -- the datapoint exactly as received (JSON), or ''
    body       INTEGER,                      -- ... when it is `idx` of this body's events
    idx        INTEGER
);
CREATE TABLE IF NOT EXISTS bodies (            -- each batch's request body, once, as received
    body_pk INTEGER PRIMARY KEY,
    gzip    INTEGER NOT NULL,                  -- 1: gzip, as the SDK sent it; 0: JSON text
    bytes   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user_pk    INTEGER PRIMARY KEY,          -- order of first appearance
    device_id  TEXT NOT NULL,
    user_id    TEXT,
    app        TEXT NOT NULL DEFAULT ''
);
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

/// Run after [`SCHEMA`] and the column upgrade: indexes on columns a database from before apps
/// lacked. Deletion by device and retention scan the datapoints instead of indexing them: they
/// are rare, and every index is paid for by every insert.
const INDEXES: &str = "
DROP INDEX IF EXISTS users_by_key;
CREATE INDEX IF NOT EXISTS users_by_app_key ON users (app, device_id, user_id);
";

pub struct SqliteStore {
    conn: Connection,
    /// Cached so that polling a count never scans the table.
    datapoint_count: usize,
    received_total: usize,
    revision: u64,
    /// (app, device, user) -> `users.user_pk`, filled as rows are looked up.
    user_keys: HashMap<UserKey, i64>,
    /// What the open group's stored batches add to the caches once it commits.
    pending: Pending,
    /// The datapoints' insert for a full chunk of [`ROWS_PER_INSERT`] rows, its values bound
    /// without copies; `None` only while dropping (it goes before the connection).
    insert_full: Option<bulk::BulkInsert>,
    /// A file database's checkpoints (none in memory: no WAL).
    checkpointer: Option<Checkpointer>,
}

/// The open group's changes to [`SqliteStore`]'s caches.
#[derive(Default)]
struct Pending {
    new: usize,
    received: usize,
    users: Vec<(UserKey, i64)>,
}

type UserKey = (String, String, Option<String>);

impl SqliteStore {
    pub fn open(database: &Database) -> StoreResult<SqliteStore> {
        let conn = match database {
            Database::Memory => open_memory()?,
            Database::File(path) => open_file(path)?,
            Database::Postgres(_) => {
                return Err(super::StoreError(
                    "not a SQLite database (a PostgreSQL URL)".into(),
                ))
            }
        };
        conn.execute_batch(SCHEMA)?;
        // A database from before apps: the column is added, its rows belong to the app "".
        // From before bodies: every row keeps its raw text.
        for (table, column, declaration) in [
            ("datapoints", "app", "TEXT NOT NULL DEFAULT ''"),
            ("users", "app", "TEXT NOT NULL DEFAULT ''"),
            ("datapoints", "body", "INTEGER"),
            ("datapoints", "idx", "INTEGER"),
        ] {
            let has_column: bool = conn.query_row(
                &format!(
                    "SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = '{column}'"
                ),
                [],
                |row| row.get(0),
            )?;
            if !has_column {
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
                ))?;
            }
        }
        conn.execute_batch(INDEXES)?;
        // A database from before binary ids (their index was twice the size): converted once.
        let text_ids: bool = conn.query_row(
            "SELECT COALESCE((SELECT typeof(id) = 'text' FROM datapoints ORDER BY seq LIMIT 1), 0)",
            [],
            |row| row.get(0),
        )?;
        if text_ids {
            conn.execute_batch(
                "UPDATE datapoints SET id = unhex(replace(id, '-', '')) WHERE typeof(id) = 'text'",
            )?;
        }
        let checkpointer = match database {
            Database::File(path) => Some(Checkpointer::start(&conn, path, WAL_CHECKPOINT_PAGES)?),
            _ => None,
        };
        let insert_full =
            bulk::BulkInsert::prepare(&conn, &insert_datapoints_sql(ROWS_PER_INSERT))?;
        let datapoint_count: i64 =
            conn.query_row("SELECT COUNT(*) FROM datapoints", [], |row| row.get(0))?;
        let received_total: i64 = conn.query_row(
            "SELECT value FROM counters WHERE name = 'received_total'",
            [],
            |row| row.get(0),
        )?;
        Ok(SqliteStore {
            conn,
            datapoint_count: datapoint_count as usize,
            received_total: received_total as usize,
            revision: 0,
            user_keys: HashMap::new(),
            pending: Pending::default(),
            insert_full: Some(insert_full),
            checkpointer,
        })
    }

    /// After a deletion: caches from the database, derived rows that lost their datapoints gone.
    fn after_delete(&mut self, deleted: usize) -> StoreResult<usize> {
        self.after_commit();
        self.user_keys.clear();
        self.datapoint_count =
            self.conn
                .query_row("SELECT COUNT(*) FROM datapoints", [], |row| {
                    row.get::<_, i64>(0)
                })? as usize;
        self.revision += u64::from(deleted > 0);
        Ok(deleted)
    }

    fn after_commit(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.after_commit();
        }
    }

    /// A full chunk of datapoints inserted through [`bulk::BulkInsert`]: the same values, in
    /// the same order, as the rusqlite path below binds.
    fn insert_full_chunk(
        &self,
        app: &str,
        batch: &Batch,
        body: Option<i64>,
        start: usize,
        chunk: &[crate::batch::Datapoint],
    ) -> StoreResult<Option<usize>> {
        use bulk::Value;
        let Some(insert) = self
            .insert_full
            .as_ref()
            .filter(|_| chunk.len() == ROWS_PER_INSERT)
        else {
            return Ok(None);
        };
        fn text(text: Option<&str>) -> Value<'_> {
            text.map_or(Value::Null, Value::Text)
        }
        let mut values = Vec::with_capacity(3 + chunk.len() * 7);
        values.extend([
            Value::Text(&batch.device_id),
            Value::Text(app),
            body.map_or(Value::Null, Value::Integer),
        ]);
        for (index, datapoint) in (start..).zip(chunk) {
            values.extend([
                Value::Blob(&datapoint.id_bytes),
                text(datapoint.user_id.as_deref()),
                Value::Text(datapoint.name()),
                Value::Real(datapoint.time),
                text(datapoint.session_id.as_deref()),
                Value::Text(if body.is_some() { "" } else { &datapoint.raw }),
                body.map_or(Value::Null, |_| Value::Integer(index as i64)),
            ]);
        }
        insert.execute(&values).map(Some)
    }

    /// One batch inside the open transaction: its outcome, and the user rows it looked up or
    /// created (for the cache, once committed).
    fn write_batch(
        &self,
        app: &str,
        batch: &Batch,
    ) -> StoreResult<(IngestOutcome, Vec<(UserKey, i64)>)> {
        let device = batch.device_id.as_str();
        let tx = &self.conn;
        let events = &batch.events;
        // New rows get the rowids after the largest (SQLite's rule without AUTOINCREMENT), so
        // `seq > before` names this batch's rows: no RETURNING (a temporary table per
        // statement) and, when every datapoint is new, no query at all.
        let before: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM datapoints")?
            .query_row([], |row| row.get(0))?;
        // The body once (as sent: gzip is about a tenth of the JSON) rather than each
        // datapoint's text: most of the bytes written, and a copy of each when bound.
        let body: Option<i64> = match &batch.body {
            Some(body) => {
                tx.prepare_cached("INSERT INTO bodies (gzip, bytes) VALUES (?1, ?2)")?
                    .execute(params![body.gzip, body.bytes])?;
                Some(tx.last_insert_rowid())
            }
            None => None,
        };
        let no_raw = "";
        let mut inserted = 0;
        for (start, chunk) in events
            .chunks(ROWS_PER_INSERT)
            .enumerate()
            .map(|(n, chunk)| (n * ROWS_PER_INSERT, chunk))
        {
            if let Some(changed) = self.insert_full_chunk(app, batch, body, start, chunk)? {
                inserted += changed;
                continue;
            }
            let mut statement = tx.prepare_cached(&insert_datapoints_sql(chunk.len()))?;
            let names: Vec<&str> = chunk.iter().map(|datapoint| datapoint.name()).collect();
            let indexes: Vec<Option<i64>> = (start..start + chunk.len())
                .map(|index| body.map(|_| index as i64))
                .collect();
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(3 + chunk.len() * 7);
            values.extend([&batch.device_id as &dyn rusqlite::ToSql, &app, &body]);
            for ((datapoint, name), index) in chunk.iter().zip(&names).zip(&indexes) {
                values.extend([
                    &datapoint.id_bytes as &dyn rusqlite::ToSql,
                    &datapoint.user_id,
                    name,
                    &datapoint.time,
                    &datapoint.session_id,
                    if body.is_some() {
                        &no_raw as &dyn rusqlite::ToSql
                    } else {
                        &datapoint.raw
                    },
                    index,
                ]);
            }
            inserted += statement.execute(values.as_slice())?;
        }
        if let Some(body) = body.filter(|_| inserted < events.len()) {
            // Some datapoints were duplicates: their copies in the body would outlive their
            // rows (deletion and retention find a body through its rows), so the new rows take
            // their text inline and the body goes. Rare: the SDK re-sends whole batches. The
            // new rows are `seq > before` (a range of the rowid: `body` has no index).
            let rows = if inserted == 0 {
                Vec::new()
            } else {
                tx.prepare_cached("SELECT seq, idx FROM datapoints WHERE seq > ?1")?
                    .query_map([before], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            let mut inline = tx.prepare_cached(
                "UPDATE datapoints SET raw = ?2, body = NULL, idx = NULL WHERE seq = ?1",
            )?;
            for (seq, idx) in rows {
                let raw = usize::try_from(idx).ok().and_then(|idx| events.get(idx));
                inline.execute(params![seq, raw.map(|datapoint| datapoint.raw.as_str())])?;
            }
            tx.prepare_cached("DELETE FROM bodies WHERE body_pk = ?1")?
                .execute([body])?;
        }
        let new = if inserted == events.len() && tx.last_insert_rowid() == before + inserted as i64
        {
            events.iter().zip(before + 1..).collect()
        } else {
            let seq_of = tx
                .prepare_cached("SELECT id, seq FROM datapoints WHERE seq > ?1")?
                .query_map([before], |row| {
                    Ok((row.get::<_, [u8; 16]>(0)?, row.get(1)?))
                })?
                .collect::<rusqlite::Result<HashMap<_, i64>>>()?;
            new_datapoints(events.iter().map(|d| (d, d.id_bytes)), seq_of)
        };
        let outcome = IngestOutcome {
            new: new.len(),
            duplicates: batch.events.len() - new.len(),
        };
        let changes = BatchChanges::of(&new);

        let existing: BTreeSet<String> = if changes.sessions.is_empty() {
            BTreeSet::new()
        } else {
            let ids = serde_json::to_string(&changes.sessions.keys().collect::<Vec<_>>())
                .map_err(|e| super::StoreError(e.to_string()))?;
            let mut statement = tx.prepare_cached(
                "SELECT session_id FROM sessions
                 WHERE device_id = ?1 AND session_id IN (SELECT value FROM json_each(?2))",
            )?;
            let found = statement
                .query_map(params![device, ids], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            found
        };
        let mut new_users = Vec::new();
        let mut user_pks: HashMap<Option<&str>, i64> = HashMap::new();
        for user in changes.users_needed(&existing) {
            let key = (
                app.to_string(),
                batch.device_id.clone(),
                user.map(String::from),
            );
            let pk = match self.user_keys.get(&key) {
                Some(&pk) => pk,
                None => {
                    let pk = user_pk(tx, &key)?;
                    new_users.push((key, pk));
                    pk
                }
            };
            user_pks.insert(user, pk);
        }
        let pk_of = |user: Option<&str>| user_pks.get(&user).copied().unwrap_or(0);

        let mut upsert = tx.prepare_cached(
            "INSERT INTO sessions AS s (device_id, session_id, user_pk, first_seq, started_at,
                 start_day, ended_at, duration, starts, ends, ended_time, app_version, os_name,
                 os_version, device_model, arch, locale)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT (device_id, session_id) DO UPDATE SET
                 started_at = iif(excluded.starts > 0, excluded.started_at, s.started_at),
                 start_day = iif(excluded.starts > 0, excluded.start_day, s.start_day),
                 app_version = iif(excluded.starts > 0, excluded.app_version, s.app_version),
                 os_name = iif(excluded.starts > 0, excluded.os_name, s.os_name),
                 os_version = iif(excluded.starts > 0, excluded.os_version, s.os_version),
                 device_model = iif(excluded.starts > 0, excluded.device_model, s.device_model),
                 arch = iif(excluded.starts > 0, excluded.arch, s.arch),
                 locale = iif(excluded.starts > 0, excluded.locale, s.locale),
                 starts = s.starts + excluded.starts,
                 ended_at = iif(excluded.ends > 0, excluded.ended_at, s.ended_at),
                 duration = iif(excluded.ends > 0, excluded.duration, s.duration),
                 ends = s.ends + excluded.ends,
                 ended_time = s.ended_time + excluded.ended_time",
        )?;
        for (id, change) in &changes.sessions {
            let (owner, first_seq) = change.first.unwrap_or((None, 0));
            let [app_version, os_name, os_version, device_model, arch, locale] =
                change.context_values();
            upsert.execute(params![
                device,
                id,
                pk_of(owner),
                first_seq,
                change.started_at,
                change.start_day(),
                change.ended_at,
                change.duration,
                change.starts,
                change.ends,
                change.ended_time,
                app_version,
                os_name,
                os_version,
                device_model,
                arch,
                locale,
            ])?;
        }
        drop(upsert);
        for ((user, name), count) in &changes.custom {
            tx.prepare_cached(
                "INSERT INTO custom_events (user_pk, name, count) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_pk, name) DO UPDATE SET count = count + excluded.count",
            )?
            .execute(params![pk_of(*user), name, count])?;
        }
        Ok((outcome, new_users))
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Finalized before the connection closes (which refuses to with a statement open).
        self.insert_full = None;
    }
}

impl Store for SqliteStore {
    fn begin_group(&mut self) -> StoreResult<()> {
        self.pending = Pending::default();
        Ok(self.conn.execute_batch("BEGIN")?)
    }

    fn ingest_in_group(&mut self, app: &str, batch: &Batch) -> StoreResult<IngestOutcome> {
        // Cached: `execute_batch` would parse the statement again for every batch.
        self.conn.prepare_cached("SAVEPOINT batch")?.execute([])?;
        match self.write_batch(app, batch) {
            Ok((outcome, users)) => {
                self.conn.prepare_cached("RELEASE batch")?.execute([])?;
                self.pending.new += outcome.new;
                self.pending.received += batch.events.len();
                self.pending.users.extend(users);
                Ok(outcome)
            }
            Err(error) => {
                self.conn
                    .execute_batch("ROLLBACK TO batch; RELEASE batch")?;
                Err(error)
            }
        }
    }

    fn commit_group(&mut self) -> StoreResult<()> {
        let pending = std::mem::take(&mut self.pending);
        // One update of the counter per group, not per batch.
        let committed = self
            .conn
            .prepare_cached("UPDATE counters SET value = value + ?1 WHERE name = 'received_total'")
            .and_then(|mut statement| statement.execute([pending.received as i64]))
            .and_then(|_| self.conn.execute_batch("COMMIT"));
        if let Err(error) = committed {
            // Nothing of the group stays; a failed COMMIT may have ended the transaction already.
            if !self.conn.is_autocommit() {
                self.conn.execute_batch("ROLLBACK")?;
            }
            return Err(error.into());
        }
        self.after_commit();
        // Only what the database now holds goes into the caches.
        self.user_keys.extend(pending.users);
        self.datapoint_count += pending.new;
        self.revision += u64::from(pending.new > 0);
        self.received_total += pending.received;
        Ok(())
    }

    fn reset(&mut self) -> StoreResult<()> {
        self.conn.execute_batch(
            "BEGIN;
             DELETE FROM datapoints; DELETE FROM bodies; DELETE FROM sessions;
             DELETE FROM custom_events;
             DELETE FROM users; UPDATE counters SET value = 0;
             COMMIT;",
        )?;
        self.after_commit();
        self.user_keys.clear();
        self.datapoint_count = 0;
        self.revision += 1;
        self.received_total = 0;
        Ok(())
    }

    fn delete_device(&mut self, device_id: &str) -> StoreResult<usize> {
        let tx = self.conn.transaction()?;
        // A batch is one device's: its body goes with its datapoints.
        tx.execute(
            "DELETE FROM bodies WHERE body_pk IN (SELECT body FROM datapoints WHERE device_id = ?1)",
            [device_id],
        )?;
        let deleted = tx.execute("DELETE FROM datapoints WHERE device_id = ?1", [device_id])?;
        tx.execute("DELETE FROM sessions WHERE device_id = ?1", [device_id])?;
        tx.execute(
            "DELETE FROM custom_events
             WHERE user_pk IN (SELECT user_pk FROM users WHERE device_id = ?1)",
            [device_id],
        )?;
        tx.execute("DELETE FROM users WHERE device_id = ?1", [device_id])?;
        tx.commit()?;
        self.after_delete(deleted)
    }

    fn delete_before(&mut self, cutoff: f64) -> StoreResult<usize> {
        let tx = self.conn.transaction()?;
        inline_surviving_raw(&tx, cutoff)?;
        let deleted = tx.execute("DELETE FROM datapoints WHERE time < ?1", [cutoff])?;
        if deleted > 0 {
            // The statistics are rebuilt from what remains: a session goes with its datapoints,
            // custom event counts are counted again, users left with nothing go.
            tx.execute_batch(
                "DELETE FROM sessions WHERE NOT EXISTS (
                     SELECT 1 FROM datapoints d
                     WHERE d.device_id = sessions.device_id AND d.session_id = sessions.session_id
                       AND d.name IN ('ss', 'se'));",
            )?;
            recount_custom_events(&tx)?;
            tx.execute_batch(
                "DELETE FROM users WHERE NOT EXISTS (
                     SELECT 1 FROM datapoints d WHERE d.device_id = users.device_id
                         AND d.app = users.app AND d.user_id IS users.user_id)
                   AND user_pk NOT IN (SELECT user_pk FROM sessions);",
            )?;
        }
        tx.commit()?;
        self.after_delete(deleted)
    }

    fn revision(&self) -> u64 {
        self.revision
    }

    fn datapoint_count(&self) -> usize {
        self.datapoint_count
    }

    fn received_total(&self) -> usize {
        self.received_total
    }

    fn reader(&self) -> &dyn Reader {
        &self.conn
    }
}

/// Opens a second connection for reading, when the database is a file: in WAL mode it reads
/// the last committed state while the writer goes on, so a dashboard never holds up ingest.
pub fn open_reader(database: &Database) -> StoreResult<Option<Connection>> {
    match database {
        Database::File(path) => {
            let conn = open_file(path)?;
            conn.pragma_update(None, "query_only", true)?;
            Ok(Some(conn))
        }
        _ => Ok(None),
    }
}

/// Rows per multi-row insert: 6 parameters each (and the batch's device and app, bound once),
/// far below SQLite's limit (32,766), and few distinct statements to cache (a full chunk and
/// the rest).
const ROWS_PER_INSERT: usize = 100;

fn insert_datapoints_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO datapoints (id, device_id, user_id, app, name, time, session_id, raw, body, \
         idx) VALUES ",
    );
    for row in 0..rows {
        let p = 3 + row * 7;
        if row > 0 {
            sql.push(',');
        }
        let [id, user, name, time, session, raw, idx] = std::array::from_fn(|k| p + 1 + k);
        sql.push_str(&format!(
            "(?{id},?1,?{user},?2,?{name},?{time},?{session},?{raw},?3,?{idx})"
        ));
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    sql
}

impl rusqlite::ToSql for crate::batch::RawText {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.as_str().to_sql()
    }
}

/// A private database in memory, as a file in SQLite's `memdb` VFS rather than `:memory:`: a
/// `:memory:` database lives in its page cache, which SQLite sweeps whole at every commit, so
/// each batch cost more as the database grew (1,000,000 datapoints delivered by the SDK: 30 s,
/// a fifth of it in `pcache1TruncateUnsafe`). A name without a leading `/` is private to the
/// connection; memdb caps it at 1 GiB.
fn open_memory() -> rusqlite::Result<Connection> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        "file:stint-collector?vfs=memdb",
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The savepoints' statement journal too (see `writer_pragmas`).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

fn open_file(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Another process on the same file (a second collector, sqlite3) waits instead of failing.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL: readers never block the writer; NORMAL: a commit survives a killed process (the
    // WAL is in the OS's hands), and a power loss may lose the last commits, never corrupt.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    writer_pragmas(&conn)?;
    Ok(conn)
}

/// Ingest speed: the datapoint id index outgrows SQLite's default 2 MB page cache within a few
/// hundred thousand rows, after which every insert reads index pages back from the file; and a
/// checkpoint every 1,000 WAL pages writes the same hot index pages out again and again.
/// And each batch's savepoint copies every page it first touches into a statement journal, a
/// temporary file by default: a write syscall per page.
fn writer_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
}

/// The writer's page cache (KiB): 64 MiB.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Pages in the WAL before a checkpoint (4 KiB pages: about 64 MiB), which a file store's
/// writer leaves to its `Checkpointer`'s thread.
const WAL_CHECKPOINT_PAGES: i64 = 16 * 1024;

/// The row of (app, device, user), created on first sight.
fn user_pk(tx: &Connection, (app, device_id, user_id): &UserKey) -> rusqlite::Result<i64> {
    let found = tx
        .prepare_cached(
            "SELECT user_pk FROM users WHERE app = ?1 AND device_id = ?2 AND user_id IS ?3",
        )?
        .query_row(params![app, device_id, user_id], |row| row.get(0))
        .optional()?;
    if let Some(pk) = found {
        return Ok(pk);
    }
    tx.prepare_cached("INSERT INTO users (app, device_id, user_id) VALUES (?1, ?2, ?3)")?
        .execute(params![app, device_id, user_id])?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{validate, SessionContext};
    use crate::store::{users_json, DayCount, SessionSummary, LAST_SESSIONS_SHOWN};
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    fn id(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn memory() -> SqliteStore {
        SqliteStore::open(&Database::Memory).unwrap()
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

    #[test]
    fn memory_databases_are_private_and_roll_back() {
        let mut first = memory();
        let second = memory();
        first
            .ingest("k", &batch("dev", vec![ss(1, "s1", Some("a"), 1.0)]))
            .unwrap();
        assert_eq!(first.reader().datapoints().unwrap().len(), 1);
        assert_eq!(second.reader().datapoints().unwrap().len(), 0);
        // A failed transaction leaves nothing behind (memdb keeps its journal in memory).
        first
            .conn
            .execute_batch("BEGIN; DELETE FROM datapoints; ROLLBACK;")
            .unwrap();
        assert_eq!(first.reader().datapoints().unwrap().len(), 1);
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
            .ingest(
                "k",
                &batch(
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
                ),
            )
            .unwrap();
        let users = store.reader().users(None).unwrap();
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
        let first = store.ingest("k", &batch("dev", events.clone())).unwrap();
        let second = store.ingest("k", &batch("dev", events)).unwrap();
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
        let users = store.reader().users(None).unwrap();
        assert_eq!((users[0].sessions, users[0].total_time), (1, 1.0));
    }

    #[test]
    fn an_end_is_credited_to_the_user_the_session_started_under() {
        let mut store = memory();
        store
            .ingest(
                "k",
                &batch(
                    "dev",
                    vec![ss(1, "s1", None, 1.0), se(2, "s1", Some("bob"), 9.0, 8.0)],
                ),
            )
            .unwrap();
        let users = store.reader().users(None).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].user_id, None);
        assert_eq!((users[0].sessions, users[0].sessions_ended), (1, 1));
        assert_eq!(users[0].total_time, 8.0);
    }

    #[test]
    fn an_end_before_its_start_still_forms_one_session() {
        let mut store = memory();
        store
            .ingest("k", &batch("dev", vec![se(2, "s1", Some("a"), 9.0, 8.0)]))
            .unwrap();
        store
            .ingest("k", &batch("dev", vec![ss(1, "s1", Some("a"), 1.0)]))
            .unwrap();
        let user = &store.reader().users(None).unwrap()[0];
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
        store.ingest("k", &batch("dev1", many)).unwrap();
        store
            .ingest("k", &batch("dev2", vec![ss(100, "s0", Some("a"), 1.0)]))
            .unwrap();
        let users = store.reader().users(None).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].sessions, 25);
        assert_eq!(users[0].last_sessions.len(), LAST_SESSIONS_SHOWN);
        assert_eq!(users[0].last_sessions[0].session_id, "s24");
        assert_eq!(users[1].sessions, 1);
        let json = users_json(store.reader(), None).unwrap();
        assert_eq!(json["users"][1]["device_id"], "dev2");
        assert_eq!(json["users"][0]["last_sessions"][0]["end"], Value::Null);
    }

    #[test]
    fn the_session_keeps_the_context_of_its_start() {
        let mut store = memory();
        let mut start = ss(1, "s1", Some("a"), 1.0);
        start["data"] = json!({"app_version": "3.1.0", "os_name": "iOS", "os_version": "17.5",
                               "device_model": "iPhone15,2", "arch": "arm64", "locale": "fr-FR"});
        store.ingest("k", &batch("dev", vec![start])).unwrap();
        let session = &store.reader().users(None).unwrap()[0].last_sessions[0];
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
            .ingest(
                "k",
                &batch(
                    "dev",
                    vec![
                        ss(1, "a1", Some("a"), 10.0 * day + 5.0),
                        ss(2, "a2", Some("a"), 10.0 * day + 500.0),
                        ss(3, "b1", Some("b"), 10.0 * day + 900.0),
                        ss(4, "a3", Some("a"), 12.0 * day),
                        se(5, "a3", Some("a"), 12.0 * day + 45.0, 45.0),
                        se(6, "a1", Some("a"), 10.0 * day + 7200.0, 7195.0),
                    ],
                ),
            )
            .unwrap();
        let days = store.reader().days(None).unwrap();
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
            .user_usage(None, "dev", Some("a"))
            .unwrap()
            .unwrap();
        assert_eq!(usage.days.iter().map(|d| d.sessions).sum::<u64>(), 3);
        // 45 s falls in "30 s–1 min", 7195 s in the last bucket.
        assert_eq!(usage.duration_histogram, [0, 0, 1, 0, 0, 0, 0, 1]);
        assert!(store
            .reader()
            .user_usage(None, "dev", Some("nobody"))
            .unwrap()
            .is_none());
        assert!(store
            .reader()
            .user_usage(None, "dev", None)
            .unwrap()
            .is_none());
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
        store.ingest("k", &batch("dev", events)).unwrap();
        let reader = store.reader();
        let (users, matching) = reader.overview_users(None, "", 3).unwrap();
        assert_eq!(matching, 6);
        let names: Vec<_> = users.iter().map(|u| u.user_id.as_deref()).collect();
        assert_eq!(names, [Some("user4"), Some("user3"), Some("user2")]);
        assert_eq!(users[0].last_sessions.len(), 1);
        assert_eq!(users[0].sessions, 1);
        let (users, matching) = reader.overview_users(None, " USER1 ", 10).unwrap();
        assert_eq!((users.len(), matching), (1, 1));
        // The anonymous row (no sessions) sorts last and is found by "anonymous".
        let (users, _) = reader.overview_users(None, "anon", 10).unwrap();
        assert_eq!(users[0].user_id, None);
        assert_eq!(users[0].custom_events["x"], 1);
        assert_eq!(reader.overview_users(None, "DEV", 10).unwrap().1, 6);
    }

    #[test]
    fn a_file_database_keeps_everything_across_reopening() {
        let dir = std::env::temp_dir().join(format!("stint-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("reopen.db");
        let _ = std::fs::remove_file(&path);
        let database = Database::File(path.clone());
        {
            let mut store = SqliteStore::open(&database).unwrap();
            store
                .ingest(
                    "k",
                    &batch(
                        "dev",
                        vec![ss(1, "s1", Some("a"), 1.0), ce(2, "x", Some("a"))],
                    ),
                )
                .unwrap();
            store
                .ingest("k", &batch("dev", vec![ss(1, "s1", Some("a"), 1.0)]))
                .unwrap();
        }
        let mut store = SqliteStore::open(&database).unwrap();
        assert_eq!((store.datapoint_count(), store.received_total()), (2, 3));
        // A datapoint stored before the restart is still a duplicate after it.
        let again = store
            .ingest("k", &batch("dev", vec![ce(2, "x", Some("a"))]))
            .unwrap();
        assert_eq!(again.duplicates, 1);
        let users = store.reader().users(None).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].custom_events["x"], 1);
        store.reset().unwrap();
        assert_eq!(store.reader().users(None).unwrap().len(), 0);
        assert_eq!(store.received_total(), 0);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_same_user_under_two_apps_is_two_users() {
        let mut store = memory();
        let events = |first: u32| {
            vec![
                ss(first, &format!("s{first}"), Some("alice"), 86_400.0),
                ce(first + 1, "buy", Some("alice")),
            ]
        };
        store.ingest("app-a", &batch("dev", events(1))).unwrap();
        store.ingest("app-b", &batch("dev", events(10))).unwrap();
        store
            .ingest(
                "app-b",
                &batch("dev2", vec![ss(20, "s20", Some("bob"), 1.0)]),
            )
            .unwrap();
        let reader = store.reader();
        assert_eq!(reader.apps().unwrap(), ["app-a", "app-b"]);
        assert_eq!(reader.users(None).unwrap().len(), 3);
        let a = reader.users(Some("app-a")).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].sessions, a[0].custom_events["buy"]), (1, 1));
        assert_eq!(reader.users(Some("app-b")).unwrap().len(), 2);
        assert_eq!(reader.users(Some("nope")).unwrap().len(), 0);
        assert_eq!(reader.days(Some("app-a")).unwrap()[0].sessions, 1);
        assert_eq!(
            reader
                .days(None)
                .unwrap()
                .iter()
                .map(|d| d.sessions)
                .sum::<u64>(),
            3
        );
        let usage = reader
            .user_usage(Some("app-b"), "dev", Some("alice"))
            .unwrap()
            .unwrap();
        assert_eq!(usage.summary.last_sessions[0].session_id, "s10");
        assert!(reader
            .user_usage(Some("app-a"), "dev2", Some("bob"))
            .unwrap()
            .is_none());
        let (users, matching) = reader.overview_users(Some("app-b"), "", 10).unwrap();
        assert_eq!((users.len(), matching), (2, 2));
        // The raw datapoints keep their app in the table.
        let apps: Vec<String> = store
            .conn
            .prepare("SELECT app FROM datapoints ORDER BY seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(apps, ["app-a", "app-a", "app-b", "app-b", "app-b"]);
    }

    #[test]
    fn deleting_a_device_removes_its_datapoints_and_statistics() {
        let mut store = memory();
        store
            .ingest(
                "k",
                &batch(
                    "gone",
                    vec![
                        ss(1, "s1", Some("a"), 1.0),
                        ce(2, "x", Some("a")),
                        se(3, "s1", Some("a"), 2.0, 1.0),
                    ],
                ),
            )
            .unwrap();
        store
            .ingest("k", &batch("kept", vec![ss(4, "s2", Some("a"), 1.0)]))
            .unwrap();
        let before = store.revision();
        assert_eq!(store.delete_device("gone").unwrap(), 3);
        assert!(store.revision() > before);
        assert_eq!(store.datapoint_count(), 1);
        let users = store.reader().users(None).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].device_id, "kept");
        assert_eq!(store.delete_device("gone").unwrap(), 0);
        // Sent again after the deletion, the datapoints count as new.
        let again = store
            .ingest("k", &batch("gone", vec![ss(1, "s1", Some("a"), 1.0)]))
            .unwrap();
        assert_eq!(again.new, 1);
    }

    #[test]
    fn retention_deletes_old_datapoints_and_rebuilds_what_they_made() {
        let mut store = memory();
        store
            .ingest(
                "k",
                &batch(
                    "dev",
                    vec![
                        ss(1, "old", Some("a"), 100.0),
                        se(2, "old", Some("a"), 160.0, 60.0),
                        ce(3, "x", Some("a")), // time 5.0: old
                        ss(4, "new", Some("a"), 10_000.0),
                        json!({"id": id(5), "name": "ce", "time": 10_001.0, "session_id": null,
                               "user_id": "a", "data": {"n": "y"}}),
                        ss(6, "s-b", Some("b"), 50.0),
                    ],
                ),
            )
            .unwrap();
        assert_eq!(store.delete_before(1_000.0).unwrap(), 4);
        assert_eq!(store.datapoint_count(), 2);
        let users = store.reader().users(None).unwrap();
        assert_eq!(users.len(), 1, "b had only old datapoints");
        assert_eq!((users[0].sessions, users[0].sessions_ended), (1, 0));
        assert_eq!(users[0].total_time, 0.0);
        assert_eq!(
            users[0].custom_events,
            BTreeMap::from([("y".to_string(), 1)])
        );
        assert_eq!(store.delete_before(1_000.0).unwrap(), 0);
    }

    #[test]
    fn a_database_from_before_apps_is_upgraded() {
        let dir = std::env::temp_dir().join(format!("stint-store-upgrade-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.db");
        let _ = std::fs::remove_file(&path);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE datapoints (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
                     device_id TEXT NOT NULL, user_id TEXT, name TEXT NOT NULL, time REAL NOT NULL,
                     session_id TEXT, raw TEXT NOT NULL);
                 CREATE TABLE users (user_pk INTEGER PRIMARY KEY, device_id TEXT NOT NULL, user_id TEXT);
                 CREATE INDEX users_by_key ON users (device_id, user_id);
                 INSERT INTO users (device_id, user_id) VALUES ('dev', 'a');",
            )
            .unwrap();
        }
        let mut store = SqliteStore::open(&Database::File(path.clone())).unwrap();
        assert_eq!(store.reader().apps().unwrap(), [""]);
        store
            .ingest("new-app", &batch("dev", vec![ss(1, "s", Some("a"), 1.0)]))
            .unwrap();
        assert_eq!(store.reader().apps().unwrap(), ["", "new-app"]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failing_batch_in_a_group_leaves_nothing_and_the_others_are_stored_once() {
        let mut store = memory();
        // Fails a batch after its datapoints are in: at its session's row.
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON sessions WHEN NEW.session_id = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
            )
            .unwrap();
        store.begin_group().unwrap();
        let first = batch(
            "a",
            vec![ss(1, "s1", Some("a"), 1.0), ss(2, "s2", Some("a"), 2.0)],
        );
        assert_eq!(store.ingest_in_group("k", &first).unwrap().new, 2);
        let poisoned = batch(
            "b",
            vec![ss(3, "s3", None, 3.0), ss(4, "poison", None, 4.0)],
        );
        let error = store.ingest_in_group("k", &poisoned).unwrap_err();
        assert!(error.0.contains("poisoned"), "{error}");
        // Overlaps the first batch (id 2) and the failed one (id 3, not stored).
        let last = batch(
            "a",
            vec![ss(2, "s2", Some("a"), 2.0), ss(3, "s3", Some("a"), 3.0)],
        );
        let outcome = store.ingest_in_group("k", &last).unwrap();
        assert_eq!((outcome.new, outcome.duplicates), (1, 1));
        assert_eq!(store.datapoint_count(), 0, "counted before the commit");
        store.commit_group().unwrap();
        assert_eq!((store.datapoint_count(), store.received_total()), (3, 4));
        let ids: Vec<Value> = store
            .reader()
            .datapoints()
            .unwrap()
            .iter()
            .map(|d| d["id"].clone())
            .collect();
        assert_eq!(ids, [json!(id(1)), json!(id(2)), json!(id(3))]);
        let users = store.reader().users(None).unwrap();
        assert_eq!(users.len(), 1, "nothing of device b");
        assert_eq!(users[0].sessions, 3);
        // And what was committed is what a fresh count finds.
        let rows: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM datapoints", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
    }

    #[test]
    fn text_ids_of_an_older_database_become_binary_and_still_deduplicate() {
        let dir = std::env::temp_dir().join(format!("stint-store-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.db");
        let _ = std::fs::remove_file(&path);
        {
            let mut store = SqliteStore::open(&Database::File(path.clone())).unwrap();
            store
                .ingest("k", &batch("dev", vec![ss(1, "s", Some("a"), 1.0)]))
                .unwrap();
            // As an earlier version stored it.
            store
                .conn
                .execute("UPDATE datapoints SET id = ?1", [id(1)])
                .unwrap();
        }
        let mut store = SqliteStore::open(&Database::File(path.clone())).unwrap();
        let kind: String = store
            .conn
            .query_row("SELECT typeof(id) FROM datapoints", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kind, "blob");
        let outcome = store
            .ingest("k", &batch("dev", vec![ss(1, "s", Some("a"), 1.0)]))
            .unwrap();
        assert_eq!((outcome.new, outcome.duplicates), (0, 1));
        assert_eq!(store.datapoint_count(), 1);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A batch as it arrives over HTTP: with its body, gzipped or not.
    fn wire_batch(device: &str, events: Vec<Value>, gzip: bool) -> Batch {
        use std::io::Write;
        let json = serde_json::to_vec(&json!({"api_key": "k", "device_id": device,
            "sdk_version": "stint/0.1.0", "time": 0.0, "events": events}))
        .unwrap();
        let bytes = if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&json).unwrap();
            encoder.finish().unwrap()
        } else {
            json.clone()
        };
        let (_, batch) = crate::batch::read_batch(json.clone());
        Batch {
            body: Some(crate::batch::WireBody { bytes, gzip }),
            ..batch.unwrap()
        }
    }

    fn count(store: &SqliteStore, sql: &str) -> i64 {
        store.conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn a_batch_with_its_body_keeps_the_body_once_and_reads_back_every_datapoint() {
        let mut store = memory();
        let first = vec![
            ss(1, "s1", Some("a"), 1.0),
            ce(2, "x", Some("a")),
            se(3, "s1", Some("a"), 2.0, 1.0),
        ];
        store
            .ingest("k", &wire_batch("dev", first.clone(), true))
            .unwrap();
        // Half duplicates, plain JSON: the new row keeps its text inline and the body goes,
        // so no body holds a copy of a datapoint stored elsewhere. Then only duplicates: no
        // body kept for it either.
        let second = vec![ce(2, "x", Some("a")), ce(4, "y", None)];
        let outcome = store
            .ingest("k", &wire_batch("dev", second, false))
            .unwrap();
        assert_eq!((outcome.new, outcome.duplicates), (1, 1));
        assert_eq!(count(&store, "SELECT COUNT(*) FROM bodies"), 1);
        let outcome = store
            .ingest("k", &wire_batch("dev", first.clone(), true))
            .unwrap();
        assert_eq!(outcome.new, 0);
        // And one without a body (not from HTTP) keeps its text in the row.
        store
            .ingest("k", &batch("dev", vec![ce(5, "z", None)]))
            .unwrap();
        assert_eq!(count(&store, "SELECT COUNT(*) FROM bodies"), 1);
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM datapoints WHERE raw = ''"),
            3
        );
        let expected: Vec<Value> = first
            .into_iter()
            .chain([ce(4, "y", None), ce(5, "z", None)])
            .collect();
        assert_eq!(store.reader().datapoints().unwrap(), expected);
        let users = store.reader().users(None).unwrap();
        assert_eq!(users[0].custom_events["x"], 1);

        assert_eq!(store.delete_device("dev").unwrap(), 5);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM bodies"), 0);
        assert!(store.reader().datapoints().unwrap().is_empty());
    }

    /// SQLite virtual machine steps `work` takes on `store`'s connection (in hundreds).
    fn vm_steps(store: &mut SqliteStore, work: impl FnOnce(&mut SqliteStore)) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let steps = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&steps);
        store.conn.progress_handler(
            100,
            Some(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                false
            }),
        );
        work(store);
        store.conn.progress_handler(100, None::<fn() -> bool>);
        steps.load(Ordering::Relaxed)
    }

    #[test]
    fn a_batch_with_duplicates_costs_the_same_however_many_datapoints_are_stored() {
        let mut store = memory();
        let resent = |n: u32| wire_batch("dev", vec![ce(n, "x", None), ce(n + 1, "y", None)], true);
        store.ingest("k", &resent(1)).unwrap();
        let half = wire_batch("dev", vec![ce(1, "x", None), ce(3, "z", None)], true);
        let small = vm_steps(&mut store, |store| {
            assert_eq!(store.ingest("k", &resent(1)).unwrap().duplicates, 2);
        });
        let small_half = vm_steps(&mut store, |store| {
            assert_eq!(store.ingest("k", &half).unwrap().new, 1);
        });
        let many: Vec<Value> = (10..20_010).map(|n| ce(n, "x", None)).collect();
        store.ingest("k", &wire_batch("other", many, true)).unwrap();
        // The same two re-sent (and a half re-sent) against 10,000 times as many rows: no step
        // may visit every row (the body's rows are found by their `seq`, not by a scan).
        let large = vm_steps(&mut store, |store| {
            assert_eq!(store.ingest("k", &resent(1)).unwrap().duplicates, 2);
        });
        let half = wire_batch("dev", vec![ce(3, "z", None), ce(4, "w", None)], true);
        let large_half = vm_steps(&mut store, |store| {
            assert_eq!(store.ingest("k", &half).unwrap().new, 1);
        });
        assert!(
            large <= small + 5,
            "{large} against {small} (hundreds of steps)"
        );
        assert!(
            large_half <= small_half + 5,
            "{large_half} against {small_half} (hundreds of steps)"
        );
        assert_eq!(
            store.reader().datapoints().unwrap().len(),
            4 + 20_000,
            "each once"
        );
    }

    #[test]
    fn full_chunks_and_the_rest_store_the_same_rows_with_or_without_a_body() {
        let mut store = memory();
        // 250 datapoints: two full chunks of 100 (bound in place) and 50 (through rusqlite);
        // every other one anonymous, custom events without a session.
        let events = |first: u32| -> Vec<Value> {
            (first..first + 250)
                .map(|n| {
                    let user = (n % 2 == 0).then_some("u");
                    if n % 3 == 0 {
                        ce(n, "x", user)
                    } else {
                        ss(n, &format!("s{n}"), user, f64::from(n))
                    }
                })
                .collect()
        };
        let plain = events(1);
        let outcome = store.ingest("k", &batch("dev", plain.clone())).unwrap();
        assert_eq!((outcome.new, outcome.duplicates), (250, 0));
        let wire = events(1000);
        store
            .ingest("k", &wire_batch("dev", wire.clone(), true))
            .unwrap();
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM datapoints WHERE body IS NULL"),
            250
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM datapoints WHERE user_id IS NULL"
            ),
            250
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM datapoints WHERE session_id IS NULL"
            ),
            2 * 83
        );
        assert_eq!(
            count(
                &store,
                "SELECT MAX(idx) FROM datapoints WHERE body IS NOT NULL"
            ),
            249
        );
        let expected: Vec<Value> = plain.iter().chain(&wire).cloned().collect();
        assert_eq!(store.reader().datapoints().unwrap(), expected);
        // The same again, half of it new: the full chunks count their duplicates too.
        let mut again = wire[..150].to_vec();
        again.extend(events(2000)[..150].iter().cloned());
        let outcome = store.ingest("k", &wire_batch("dev", again, true)).unwrap();
        assert_eq!((outcome.new, outcome.duplicates), (150, 150));
        assert_eq!(store.datapoint_count(), 650);
        let users = store.reader().users(None).unwrap();
        // Starts: 167 + 167 + the new half's 100 (its 50 custom events aside).
        assert_eq!(users.iter().map(|u| u.sessions).sum::<u64>(), 434);
    }

    #[test]
    fn retention_keeps_nothing_of_a_deleted_datapoint_in_a_body() {
        let mut store = memory();
        let old_and_new = vec![
            ss(1, "old", Some("a"), 100.0),
            ce(2, "x", Some("a")), // time 5.0: old
            ss(3, "new", Some("a"), 10_000.0),
            json!({"id": id(4), "name": "ce", "time": 10_001.0, "session_id": null,
                   "user_id": "a", "data": {"n": "kept"}}),
        ];
        store
            .ingest("k", &wire_batch("dev", old_and_new.clone(), true))
            .unwrap();
        store
            .ingest("k", &wire_batch("dev", vec![ce(5, "gone", None)], false))
            .unwrap();
        let body: Vec<u8> = store
            .conn
            .query_row("SELECT bytes FROM bodies WHERE gzip = 0", [], |r| r.get(0))
            .unwrap();
        assert!(String::from_utf8(body).unwrap().contains("gone"));

        assert_eq!(store.delete_before(1_000.0).unwrap(), 3);
        // The survivors of the first body hold their own text now; both bodies are gone.
        assert_eq!(count(&store, "SELECT COUNT(*) FROM bodies"), 0);
        assert_eq!(
            store.reader().datapoints().unwrap(),
            old_and_new[2..].to_vec()
        );
        let users = store.reader().users(None).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(
            users[0].custom_events,
            BTreeMap::from([("kept".to_string(), 1)])
        );
        let all_text: String = store
            .conn
            .query_row("SELECT group_concat(raw, '') FROM datapoints", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(!all_text.contains("\"x\"") && !all_text.contains("gone"));
    }
}
