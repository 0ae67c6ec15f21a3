//! The PostgreSQL store (15 or later): the same tables as SQLite's, for collectors that share one
//! database (stateless collectors behind a load balancer). Each batch is one transaction of a
//! fixed handful of statements whatever its size, pipelined into three round trips (BEGIN to
//! COMMIT, no savepoint): the datapoints go in as arrays (`UNNEST`), new
//! ones are told apart by `ON CONFLICT (id) DO NOTHING RETURNING`, and the per-session and
//! per-user statistics are summed in Rust and applied as array upserts. Two collectors storing
//! the same batch at once store it once: the second transaction waits on the first's unique
//! keys, then finds them taken.
//!
//! Counts and the revision are rows of `counters`, so every collector sharing the database sees
//! the same: each count the sum of its row (`datapoints`) and of its shards (`datapoints#3`),
//! which ingest adds to, a shard per connection (its server process id modulo
//! [`COUNTER_SHARDS`]). One row for everyone made every commit queue behind the one before: the
//! row stays locked through the commit's WAL flush.

mod reader;

use super::{
    new_datapoints, BatchChanges, Database, IngestOutcome, Reader, SessionChange, Store,
    StoreError, StoreResult,
};
use crate::batch::{Batch, Kind};
use futures_util::future::{join, join3, join4};
use postgres::{Client, NoTls, Statement};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use tokio::runtime::Runtime;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS datapoints (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    device_id  TEXT NOT NULL,
    user_id    TEXT,
    app        TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL,
    time       DOUBLE PRECISION NOT NULL,
    session_id TEXT,
    raw        TEXT NOT NULL
);
-- No B-tree on device_id or time: with one, each row cost one more index insert (as on SQLite,
-- deleting a device scans). BRIN: retention reads only the oldest blocks, near-free at ingest.
DROP INDEX IF EXISTS datapoints_by_device;
DROP INDEX IF EXISTS datapoints_by_time;
CREATE INDEX IF NOT EXISTS datapoints_by_time_range ON datapoints USING brin (time);
CREATE TABLE IF NOT EXISTS users (
    user_pk    BIGSERIAL PRIMARY KEY,
    app        TEXT NOT NULL DEFAULT '',
    device_id  TEXT NOT NULL,
    user_id    TEXT,
    UNIQUE NULLS NOT DISTINCT (app, device_id, user_id)
);
CREATE TABLE IF NOT EXISTS sessions (
    device_id    TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    user_pk      BIGINT NOT NULL REFERENCES users (user_pk),
    first_seq    BIGINT NOT NULL,
    started_at   DOUBLE PRECISION,
    start_day    BIGINT,
    ended_at     DOUBLE PRECISION,
    duration     DOUBLE PRECISION,
    starts       BIGINT NOT NULL DEFAULT 0,
    ends         BIGINT NOT NULL DEFAULT 0,
    ended_time   DOUBLE PRECISION NOT NULL DEFAULT 0,
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
    user_pk BIGINT NOT NULL REFERENCES users (user_pk),
    name    TEXT NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (user_pk, name)
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value)
    VALUES ('received_total', 0), ('datapoints', 0), ('revision', 0)
    ON CONFLICT (name) DO NOTHING;
";

/// Shards of each count that ingest adds to.
pub const COUNTER_SHARDS: u32 = 16;

/// The statements of a batch, prepared once per connection.
struct Prepared {
    insert_datapoints: Statement,
    existing_sessions: Statement,
    insert_users: Statement,
    select_users: Statement,
    upsert_sessions: Statement,
    upsert_custom_events: Statement,
    add_counters: Statement,
}

pub struct PostgresStore {
    /// Drives `client`'s connection on the calling thread while a call waits (as the synchronous
    /// `postgres` client does inside), so that a batch's statements can be in flight together.
    runtime: Runtime,
    client: tokio_postgres::Client,
    prepared: Prepared,
    /// The pages' queries, and the counts, on a connection of their own.
    reader: PostgresReader,
}

/// A connection for queries. `RefCell`: the client needs `&mut` for a query, the `Reader` trait
/// hands out `&self`, and one thread at a time uses it (the server holds it behind a mutex).
pub struct PostgresReader(RefCell<Client>);

// Plain TCP or a Unix socket: TLS to the database is the proxy's or the network's job
// (docs/collector.md).
fn connect(url: &str) -> StoreResult<Client> {
    Client::connect(url, NoTls).map_err(|error| connect_error(url, error))
}

fn connect_error(url: &str, error: postgres::Error) -> StoreError {
    StoreError(format!(
        "cannot connect to {}: {}",
        super::redact_password(url),
        StoreError::from(error)
    ))
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> StoreError {
        // The server's own message ("database \"x\" does not exist"), not just "db error".
        StoreError(match error.as_db_error() {
            Some(db) => format!("PostgreSQL: {}", db.message()),
            None => match std::error::Error::source(&error) {
                Some(cause) => format!("PostgreSQL: {error}: {cause}"),
                None => format!("PostgreSQL: {error}"),
            },
        })
    }
}

impl PostgresStore {
    pub fn open(database: &Database) -> StoreResult<PostgresStore> {
        let Database::Postgres(url) = database else {
            return Err(StoreError("not a PostgreSQL URL".into()));
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| StoreError(format!("cannot start the PostgreSQL client: {error}")))?;
        let (client, connection) = runtime
            .block_on(tokio_postgres::connect(url, NoTls))
            .map_err(|error| connect_error(url, error))?;
        // Once the connection fails, every call on `client` does too.
        runtime.spawn(connection);
        // Collectors starting together must not race on CREATE TABLE IF NOT EXISTS.
        runtime.block_on(client.batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(73571); {SCHEMA} COMMIT;"
        )))?;
        let prepare = |sql: &str| runtime.block_on(client.prepare(sql));
        let prepared = Prepared {
            insert_datapoints: prepare(
                "INSERT INTO datapoints (id, device_id, user_id, app, name, time, session_id, raw)
                 SELECT id, $1, user_id, $2, name, time, session_id, raw
                 FROM UNNEST($3::text[], $4::text[], $5::text[], $6::float8[], $7::text[],
                             $8::text[]) AS t (id, user_id, name, time, session_id, raw)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id, seq",
            )?,
            existing_sessions: prepare(
                "SELECT session_id FROM sessions WHERE device_id = $1 AND session_id = ANY($2)",
            )?,
            insert_users: prepare(
                "INSERT INTO users (app, device_id, user_id)
                 SELECT $1, $2, user_id FROM UNNEST($3::text[]) AS t (user_id)
                 ON CONFLICT (app, device_id, user_id) DO NOTHING",
            )?,
            select_users: prepare(
                "SELECT user_pk, user_id FROM users
                 WHERE app = $1 AND device_id = $2 AND (user_id = ANY($3) OR ($4 AND user_id IS NULL))",
            )?,
            upsert_sessions: prepare(
                "INSERT INTO sessions AS s (device_id, session_id, user_pk, first_seq, started_at,
                     start_day, ended_at, duration, starts, ends, ended_time, app_version, os_name,
                     os_version, device_model, arch, locale)
                 SELECT $1, * FROM UNNEST($2::text[], $3::int8[], $4::int8[], $5::float8[],
                     $6::int8[], $7::float8[], $8::float8[], $9::int8[], $10::int8[],
                     $11::float8[], $12::text[], $13::text[], $14::text[], $15::text[],
                     $16::text[], $17::text[])
                 ON CONFLICT (device_id, session_id) DO UPDATE SET
                     started_at = CASE WHEN EXCLUDED.starts > 0 THEN EXCLUDED.started_at ELSE s.started_at END,
                     start_day = CASE WHEN EXCLUDED.starts > 0 THEN EXCLUDED.start_day ELSE s.start_day END,
                     app_version = CASE WHEN EXCLUDED.starts > 0 THEN EXCLUDED.app_version ELSE s.app_version END,
                     os_name = CASE WHEN EXCLUDED.starts > 0 THEN EXCLUDED.os_name ELSE s.os_name END,
                     os_version = CASE WHEN EXCLUDED.starts > 0 THEN EXCLUDED.os_version ELSE s.os_version END,
                     device_model = CASE WHEN EXCLUDED.starts > 0 THEN EXCLUDED.device_model ELSE s.device_model END,
                     arch = CASE WHEN EXCLUDED.starts > 0 THEN EXCLUDED.arch ELSE s.arch END,
                     locale = CASE WHEN EXCLUDED.starts > 0 THEN EXCLUDED.locale ELSE s.locale END,
                     starts = s.starts + EXCLUDED.starts,
                     ended_at = CASE WHEN EXCLUDED.ends > 0 THEN EXCLUDED.ended_at ELSE s.ended_at END,
                     duration = CASE WHEN EXCLUDED.ends > 0 THEN EXCLUDED.duration ELSE s.duration END,
                     ends = s.ends + EXCLUDED.ends,
                     ended_time = s.ended_time + EXCLUDED.ended_time",
            )?,
            upsert_custom_events: prepare(
                "INSERT INTO custom_events AS c (user_pk, name, count)
                 SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[])
                 ON CONFLICT (user_pk, name) DO UPDATE SET count = c.count + EXCLUDED.count",
            )?,
            add_counters: prepare(
                "INSERT INTO counters AS c (name, value)
                 SELECT name || '#' || (pg_backend_pid() % COUNTER_SHARDS), value
                 FROM (VALUES ('received_total', $1::int8), ('datapoints', $2::int8),
                              ('revision', $3::int8)) AS t (name, value)
                 ON CONFLICT (name) DO UPDATE SET value = c.value + EXCLUDED.value"
                    .replace("COUNTER_SHARDS", &COUNTER_SHARDS.to_string())
                    .as_str(),
            )?,
        };
        Ok(PostgresStore {
            runtime,
            client,
            prepared,
            reader: PostgresReader::open(database)?,
        })
    }
}

impl PostgresReader {
    pub fn open(database: &Database) -> StoreResult<PostgresReader> {
        let Database::Postgres(url) = database else {
            return Err(StoreError("not a PostgreSQL URL".into()));
        };
        Ok(PostgresReader(RefCell::new(connect(url)?)))
    }

    fn counter(&self, name: &str) -> usize {
        // A count the pages poll: an unreachable database shows as 0 until it is back.
        self.0
            .borrow_mut()
            .query_one(
                "SELECT COALESCE(SUM(value), 0)::int8 FROM counters
                 WHERE name = $1 OR name LIKE $1 || '#%'",
                &[&name],
            )
            .map_or(0, |row| row.get::<_, i64>(0) as usize)
    }
}

impl PostgresStore {
    /// One batch, a transaction of its own, in three round trips whatever its size: the
    /// statements that need nothing from one another's answers go out together (tokio-postgres
    /// pipelines the futures polled together, sent in the order first polled). Each statement
    /// answers on its own: after a failed one the rest fail too and COMMIT rolls back.
    fn write_batch(&self, app: &str, batch: &Batch) -> StoreResult<IngestOutcome> {
        let (p, client) = (&self.prepared, &self.client);
        let events = &batch.events;
        let ids: Vec<&str> = events.iter().map(|d| d.id.as_str()).collect();
        let user_ids: Vec<Option<&str>> = events.iter().map(|d| d.user_id.as_deref()).collect();
        let names: Vec<&str> = events.iter().map(|d| d.name()).collect();
        let times: Vec<f64> = events.iter().map(|d| d.time).collect();
        let session_ids: Vec<Option<&str>> =
            events.iter().map(|d| d.session_id.as_deref()).collect();
        let raws: Vec<&str> = events.iter().map(|d| d.raw.as_str()).collect();
        // Which of the sessions the batch's starts and ends name are stored already: asked
        // with the insert, as only the sessions upsert (last) changes that table.
        let named: BTreeSet<&str> = events
            .iter()
            .filter(|d| d.kind != Kind::Custom)
            .map(|d| d.session_id.as_deref().unwrap_or_default())
            .collect();
        let named: Vec<&str> = named.into_iter().collect();
        let (begun, inserted, existing) = self.runtime.block_on(join3(
            client.batch_execute("BEGIN"),
            client.query(
                &p.insert_datapoints,
                &[
                    &batch.device_id,
                    &app,
                    &ids,
                    &user_ids,
                    &names,
                    &times,
                    &session_ids,
                    &raws,
                ],
            ),
            client.query(&p.existing_sessions, &[&batch.device_id, &named]),
        ));
        begun?;
        let inserted = inserted?;
        let seq_of: HashMap<&str, i64> = inserted
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let new = new_datapoints(events.iter().map(|d| (d, d.id.as_str())), seq_of);
        let outcome = IngestOutcome {
            new: new.len(),
            duplicates: events.len() - new.len(),
        };
        let changes = BatchChanges::of(&new);
        let sessions = &changes.sessions;
        let custom = &changes.custom;
        let existing: BTreeSet<String> = existing?.iter().map(|row| row.get(0)).collect();

        let needed = changes.users_needed(&existing);
        let mut user_pks: HashMap<Option<String>, i64> = HashMap::new();
        if !needed.is_empty() {
            let named: Vec<&str> = needed.iter().flatten().copied().collect();
            let anonymous = needed.contains(&None);
            let (created, found) = self.runtime.block_on(join(
                client.execute(&p.insert_users, &[&app, &batch.device_id, &needed]),
                client.query(
                    &p.select_users,
                    &[&app, &batch.device_id, &named, &anonymous],
                ),
            ));
            created?;
            for row in found? {
                user_pks.insert(row.get(1), row.get(0));
            }
        }
        let pk_of =
            |user: Option<&str>| user_pks.get(&user.map(String::from)).copied().unwrap_or(0);

        let mut columns = SessionColumns::default();
        for (id, change) in sessions {
            let (owner, first_seq) = change.first.unwrap_or((None, 0));
            columns.push(id, pk_of(owner), first_seq, change);
        }
        let c = &columns;
        let pks: Vec<i64> = custom.keys().map(|(user, _)| pk_of(*user)).collect();
        let event_names: Vec<&str> = custom.keys().map(|(_, name)| *name).collect();
        let counts: Vec<i64> = custom.values().copied().collect();
        let (upserted, counted, added, committed) = self.runtime.block_on(join4(
            async {
                if sessions.is_empty() {
                    return Ok(0);
                }
                client
                    .execute(
                        &p.upsert_sessions,
                        &[
                            &batch.device_id,
                            &c.ids,
                            &c.owners,
                            &c.first_seqs,
                            &c.started_at,
                            &c.start_days,
                            &c.ended_at,
                            &c.durations,
                            &c.starts,
                            &c.ends,
                            &c.ended_time,
                            &c.context[0],
                            &c.context[1],
                            &c.context[2],
                            &c.context[3],
                            &c.context[4],
                            &c.context[5],
                        ],
                    )
                    .await
            },
            async {
                if custom.is_empty() {
                    return Ok(0);
                }
                client
                    .execute(&p.upsert_custom_events, &[&pks, &event_names, &counts])
                    .await
            },
            client.execute(
                &p.add_counters,
                &[
                    &(events.len() as i64),
                    &(outcome.new as i64),
                    &i64::from(outcome.new > 0),
                ],
            ),
            client.batch_execute("COMMIT"),
        ));
        upserted?;
        counted?;
        added?;
        committed?;
        Ok(outcome)
    }
}

/// PostgreSQL does not group: each batch is a transaction of its own, committed with its last
/// statements (writers side by side commit more than grouping did: docs/performance.md), so a
/// batch needs no savepoint and a group's begin and commit have nothing left to do.
impl Store for PostgresStore {
    fn begin_group(&mut self) -> StoreResult<()> {
        Ok(())
    }

    fn ingest_in_group(&mut self, app: &str, batch: &Batch) -> StoreResult<IngestOutcome> {
        let written = self.write_batch(app, batch);
        if written.is_err() {
            // A failed statement leaves the transaction aborted, or a failed round trip open:
            // end it, nothing of it stays (with none open, ROLLBACK only warns).
            let _ = self.runtime.block_on(self.client.batch_execute("ROLLBACK"));
        }
        written
    }

    fn commit_group(&mut self) -> StoreResult<()> {
        Ok(())
    }

    fn reset(&mut self) -> StoreResult<()> {
        self.runtime.block_on(self.client.batch_execute(
            "BEGIN;
             TRUNCATE datapoints, sessions, custom_events, users;
             UPDATE counters SET value = CASE WHEN name LIKE 'revision%' THEN value + 1 ELSE 0 END;
             COMMIT;",
        ))?;
        Ok(())
    }

    fn delete_device(&mut self, device_id: &str) -> StoreResult<usize> {
        let client = &mut self.client;
        self.runtime.block_on(async {
            let tx = client.transaction().await?;
            let deleted = tx
                .execute("DELETE FROM datapoints WHERE device_id = $1", &[&device_id])
                .await?;
            tx.execute("DELETE FROM sessions WHERE device_id = $1", &[&device_id])
                .await?;
            tx.execute(
                "DELETE FROM custom_events
                 WHERE user_pk IN (SELECT user_pk FROM users WHERE device_id = $1)",
                &[&device_id],
            )
            .await?;
            tx.execute("DELETE FROM users WHERE device_id = $1", &[&device_id])
                .await?;
            count_deleted(&tx, deleted).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(deleted as usize)
        })
    }

    fn delete_before(&mut self, cutoff: f64) -> StoreResult<usize> {
        let client = &mut self.client;
        self.runtime.block_on(async {
            let tx = client.transaction().await?;
            let deleted = tx
                .execute("DELETE FROM datapoints WHERE time < $1", &[&cutoff])
                .await?;
            if deleted > 0 {
                // As in SQLite: the statistics are rebuilt from what remains.
                tx.batch_execute(
                    "DELETE FROM sessions s WHERE NOT EXISTS (
                         SELECT 1 FROM datapoints d
                         WHERE d.device_id = s.device_id AND d.session_id = s.session_id
                           AND d.name IN ('ss', 'se'));
                     DELETE FROM custom_events;
                     INSERT INTO custom_events (user_pk, name, count)
                         SELECT u.user_pk, (d.raw::jsonb) -> 'data' ->> 'n', COUNT(*)
                         FROM datapoints d JOIN users u ON u.app = d.app AND u.device_id = d.device_id
                             AND u.user_id IS NOT DISTINCT FROM d.user_id
                         WHERE d.name = 'ce' GROUP BY 1, 2;
                     DELETE FROM users u WHERE NOT EXISTS (
                         SELECT 1 FROM datapoints d WHERE d.device_id = u.device_id
                             AND d.app = u.app AND d.user_id IS NOT DISTINCT FROM u.user_id)
                       AND user_pk NOT IN (SELECT user_pk FROM sessions);",
                )
                .await?;
            }
            count_deleted(&tx, deleted).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(deleted as usize)
        })
    }

    fn revision(&self) -> u64 {
        self.reader.counter("revision") as u64
    }

    fn datapoint_count(&self) -> usize {
        self.reader.counter("datapoints")
    }

    fn received_total(&self) -> usize {
        self.reader.counter("received_total")
    }

    fn reader(&self) -> &dyn Reader {
        &self.reader
    }
}

async fn count_deleted(tx: &tokio_postgres::Transaction<'_>, deleted: u64) -> StoreResult<()> {
    tx.execute(
        "UPDATE counters SET value = value + CASE name
             WHEN 'datapoints' THEN -$1::int8 WHEN 'revision' THEN $2::int8 ELSE 0 END",
        &[&(deleted as i64), &i64::from(deleted > 0)],
    )
    .await?;
    Ok(())
}

/// The sessions upsert's arrays.
#[derive(Default)]
struct SessionColumns<'a> {
    ids: Vec<&'a str>,
    owners: Vec<i64>,
    first_seqs: Vec<i64>,
    started_at: Vec<Option<f64>>,
    start_days: Vec<Option<i64>>,
    ended_at: Vec<Option<f64>>,
    durations: Vec<Option<f64>>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    ended_time: Vec<f64>,
    context: [Vec<Option<&'a str>>; 6],
}

impl<'a> SessionColumns<'a> {
    fn push(&mut self, id: &'a str, owner: i64, first_seq: i64, change: &SessionChange<'a>) {
        self.ids.push(id);
        self.owners.push(owner);
        self.first_seqs.push(first_seq);
        self.started_at.push(change.started_at);
        self.start_days.push(change.start_day());
        self.ended_at.push(change.ended_at);
        self.durations.push(change.duration);
        self.starts.push(change.starts);
        self.ends.push(change.ends);
        self.ended_time.push(change.ended_time);
        for (column, value) in self.context.iter_mut().zip(change.context_values()) {
            column.push(value);
        }
    }
}
