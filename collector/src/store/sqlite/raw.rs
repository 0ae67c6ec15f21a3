//! Each datapoint's text as received: in its row (`raw`), or `idx` of the `events` of its
//! batch's body, kept once per batch in `bodies`. Reading and retention live here.

use super::super::{StoreError, StoreResult};
use crate::batch::WireBody;
use rusqlite::{params, Connection, Row};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;

/// Resolves rows of `(raw, body, idx, ...)` to their text. The last body decoded is kept: the
/// rows of one body come together.
#[derive(Default)]
pub(super) struct RawTexts {
    body: Option<(i64, Vec<Box<RawValue>>)>,
    inline: String,
}

impl RawTexts {
    pub fn get<'s>(&'s mut self, conn: &Connection, row: &Row) -> StoreResult<&'s str> {
        let Some(body) = row.get::<_, Option<i64>>(1)? else {
            self.inline = row.get(0)?;
            return Ok(&self.inline);
        };
        if self.body.as_ref().map(|(pk, _)| *pk) != Some(body) {
            let (gzip, bytes) = conn
                .prepare_cached("SELECT gzip, bytes FROM bodies WHERE body_pk = ?1")?
                .query_row([body], |row| Ok((row.get(0)?, row.get(1)?)))?;
            let events = WireBody { bytes, gzip }
                .events()
                .map_err(|e| StoreError(format!("stored body {body}: {}", e.message)))?;
            self.body = Some((body, events));
        }
        let idx: i64 = row.get(2)?;
        self.body
            .as_ref()
            .and_then(|(_, events)| events.get(usize::try_from(idx).ok()?))
            .map(|event| event.get())
            .ok_or_else(|| StoreError(format!("stored body {body} has no datapoint {idx}")))
    }
}

/// Before retention deletes the datapoints older than `cutoff`: the rows that stay but share a
/// body with deleted ones take their text into the row, and those bodies go, so nothing of a
/// deleted datapoint is kept.
pub(super) fn inline_surviving_raw(tx: &Connection, cutoff: f64) -> StoreResult<()> {
    let affected: Vec<i64> = tx
        .prepare("SELECT DISTINCT body FROM datapoints WHERE time < ?1 AND body IS NOT NULL")?
        .query_map([cutoff], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if affected.is_empty() {
        return Ok(());
    }
    let affected = serde_json::to_string(&affected).map_err(|e| StoreError(e.to_string()))?;
    let mut surviving = Vec::new();
    {
        let mut select = tx.prepare(
            "SELECT raw, body, idx, seq FROM datapoints
             WHERE time >= ?1 AND body IN (SELECT value FROM json_each(?2)) ORDER BY body",
        )?;
        let mut rows = select.query(params![cutoff, affected])?;
        let mut texts = RawTexts::default();
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(3)?;
            surviving.push((seq, texts.get(tx, row)?.to_string()));
        }
    }
    let mut update =
        tx.prepare("UPDATE datapoints SET raw = ?2, body = NULL, idx = NULL WHERE seq = ?1")?;
    for (seq, raw) in surviving {
        update.execute(params![seq, raw])?;
    }
    tx.execute(
        "DELETE FROM bodies WHERE body_pk IN (SELECT value FROM json_each(?1))",
        [affected],
    )?;
    Ok(())
}

/// The custom event counts, counted again from the datapoints that remain.
pub(super) fn recount_custom_events(tx: &Connection) -> StoreResult<()> {
    let mut counts: BTreeMap<(i64, String), i64> = BTreeMap::new();
    {
        let mut select = tx.prepare(
            "SELECT d.raw, d.body, d.idx, u.user_pk
             FROM datapoints d JOIN users u ON u.app = d.app AND u.device_id = d.device_id
                 AND u.user_id IS d.user_id
             WHERE d.name = 'ce' ORDER BY d.body",
        )?;
        let mut rows = select.query([])?;
        let mut texts = RawTexts::default();
        while let Some(row) = rows.next()? {
            let user_pk: i64 = row.get(3)?;
            let datapoint: Value = serde_json::from_str(texts.get(tx, row)?)
                .map_err(|e| StoreError(format!("a stored datapoint is not JSON: {e}")))?;
            if let Some(name) = datapoint["data"]["n"].as_str() {
                *counts.entry((user_pk, name.to_string())).or_default() += 1;
            }
        }
    }
    tx.execute("DELETE FROM custom_events", [])?;
    let mut insert =
        tx.prepare("INSERT INTO custom_events (user_pk, name, count) VALUES (?1, ?2, ?3)")?;
    for ((user_pk, name), count) in counts {
        insert.execute(params![user_pk, name, count])?;
    }
    Ok(())
}
