//! The datapoints' full-chunk insert, its values bound where they lie: rusqlite binds every
//! text and blob as `SQLITE_TRANSIENT`, so SQLite copied each (an allocation, a copy and a
//! free per value: a tenth of the single writer's time, 3,500 values a batch of 500). Here
//! they are bound `SQLITE_STATIC`, valid for the one `execute` that binds them.

use super::super::{StoreError, StoreResult};
use rusqlite::{ffi, Connection};
use std::ffi::{c_char, c_int, CStr};
use std::ptr::NonNull;

/// A value to bind, borrowed.
pub(super) enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

pub(super) struct BulkInsert {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
}

// SAFETY: the statement is used only through the `SqliteStore` that owns it and its connection,
// which one thread at a time uses (behind the server's writer lock); SQLite is built threadsafe,
// and a connection may move between threads, as rusqlite's `Connection` (which is `Send`) does.
unsafe impl Send for BulkInsert {}

impl BulkInsert {
    /// Prepares `sql` on `conn`. The statement must be dropped before `conn` closes.
    pub fn prepare(conn: &Connection, sql: &str) -> StoreResult<BulkInsert> {
        // SAFETY: the handle is valid while `conn` is open; the statement is finalized (drop)
        // before it closes, as `SqliteStore`'s `Drop` ensures.
        let db = unsafe { conn.handle() };
        let db = NonNull::new(db).ok_or_else(|| StoreError("no database handle".into()))?;
        let length = c_int::try_from(sql.len()).map_err(|e| StoreError(e.to_string()))?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `sql` is `length` bytes (no terminator needed with a length); `stmt` is
        // written by SQLite; the tail pointer may be null.
        let code = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast::<c_char>(),
                length,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if code != ffi::SQLITE_OK {
            return Err(error(db));
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| StoreError("an empty statement".into()))?;
        Ok(BulkInsert { stmt, db })
    }

    /// Runs the statement with `values` bound to ?1, ?2, ... in order; returns the rows it
    /// changed. The values are not copied: bound only for this call, cleared before it returns.
    pub fn execute(&self, values: &[Value]) -> StoreResult<usize> {
        let stmt = self.stmt.as_ptr();
        let mut result = Ok(());
        for (index, value) in (1..).zip(values) {
            let length = match *value {
                Value::Text(text) => c_int::try_from(text.len()),
                Value::Blob(bytes) => c_int::try_from(bytes.len()),
                _ => Ok(0),
            };
            let Ok(length) = length else {
                result = Err(StoreError("a value too large to bind".into()));
                break;
            };
            // SAFETY: `stmt` is a live statement; each pointer is valid for `length` bytes
            // until the bindings are cleared below, before `values` can go.
            let code = unsafe {
                match *value {
                    Value::Null => ffi::sqlite3_bind_null(stmt, index),
                    Value::Integer(n) => ffi::sqlite3_bind_int64(stmt, index, n),
                    Value::Real(x) => ffi::sqlite3_bind_double(stmt, index, x),
                    Value::Text(text) => ffi::sqlite3_bind_text(
                        stmt,
                        index,
                        text.as_ptr().cast::<c_char>(),
                        length,
                        ffi::SQLITE_STATIC(),
                    ),
                    Value::Blob(bytes) => ffi::sqlite3_bind_blob(
                        stmt,
                        index,
                        bytes.as_ptr().cast(),
                        length,
                        ffi::SQLITE_STATIC(),
                    ),
                }
            };
            if code != ffi::SQLITE_OK {
                result = Err(error(self.db));
                break;
            }
        }
        let changes = result.and_then(|()| {
            // SAFETY: a live statement, every parameter bound.
            let code = unsafe { ffi::sqlite3_step(stmt) };
            match code {
                ffi::SQLITE_DONE => {
                    // SAFETY: the statement's own connection.
                    Ok(unsafe { ffi::sqlite3_changes(self.db.as_ptr()) } as usize)
                }
                _ => Err(error(self.db)),
            }
        });
        // SAFETY: a live statement; after this no binding refers to `values`.
        unsafe {
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
        }
        changes
    }
}

impl Drop for BulkInsert {
    fn drop(&mut self) {
        // SAFETY: prepared by `prepare`, finalized once, here.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The connection's last error.
fn error(db: NonNull<ffi::sqlite3>) -> StoreError {
    // SAFETY: a live connection; SQLite returns a NUL-terminated message it owns, copied here.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) };
    StoreError(message.to_string_lossy().into_owned())
}
