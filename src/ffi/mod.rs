//! The C API. Each export checks its arguments, crosses one panic boundary (`boundary::call`)
//! and hands over to the Rust API; nothing else happens here.

pub mod boundary;
pub mod types;

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;
use std::time::Duration;

use boundary::{call, optional_str_arg, str_arg};
pub use types::*;

use crate::clock::seconds;
use crate::dispatch::{self, LogLevel, SessionChange, SessionNotice};
use crate::error::Error;
use crate::input;
use crate::instance;
use crate::options::MAX_OPTIONS_BYTES;

/// The size of the buffer stint_get_session_id() needs: a UUID and its NUL.
pub const STINT_SESSION_ID_BUFFER_LEN: usize = 37;

/// Starts Stint: opens (creating 0700) the data directory, recovers queued datapoints and the
/// saved session (ending it if it expired while the app was away), and starts the worker.
///
/// `api_key`: 1-256 bytes, no control characters; copied. `options_json`: a JSON object of
/// options (see the README) or NULL for defaults; copied. On any error nothing is initialized.
/// Returns STINT_STATUS_ALREADY_INITIALIZED if already running, STINT_STATUS_DATA_DIRECTORY_LOCKED
/// if another process uses the data directory.
///
/// # Safety
/// Each pointer is NULL or points to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn stint_initialize(
    api_key: *const c_char,
    options_json: *const c_char,
) -> StintStatus {
    call(|| {
        // SAFETY: the caller's contract (# Safety above): NULL or a NUL-terminated string.
        let api_key = unsafe { str_arg(api_key, "api_key", input::MAX_API_KEY_BYTES) }?;
        // SAFETY: as above.
        let options = unsafe { optional_str_arg(options_json, "options_json", MAX_OPTIONS_BYTES) }?;
        instance::initialize(api_key, options)
    })
}

/// Stops Stint: tries to deliver queued datapoints for at most `timeout_ms`, makes everything
/// durable, and stops the worker. Records no datapoint: an open session continues if the app
/// comes back within the timeout. Afterwards stint_initialize() may be called again.
/// Returns STINT_STATUS_TIMEOUT if datapoints stay queued (they are kept for the next run).
#[no_mangle]
pub extern "C" fn stint_shutdown(timeout_ms: u32) -> StintStatus {
    call(|| instance::shutdown(Duration::from_millis(timeout_ms.into())))
}

/// The app came to the foreground: starts a session unless one is open (after ending an
/// expired one); otherwise only activity.
#[no_mangle]
pub extern "C" fn stint_open_session() -> StintStatus {
    call(|| instance::with(|tracker| tracker.open_session()))
}

/// The app went to the background: activity on the open session, records nothing. Never waits
/// on the disk: the worker makes the state durable against power loss within a second. Not an
/// error without a session.
#[no_mangle]
pub extern "C" fn stint_close_session() -> StintStatus {
    call(|| instance::with(|tracker| tracker.close_session()))
}

/// Sets the current user (`user_id`: 1-997 bytes UTF-8; copied). A different user ends the
/// open session now and starts a new one for the new user; the same user is only activity.
///
/// # Safety
/// `user_id` is NULL or points to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn stint_change_user(user_id: *const c_char) -> StintStatus {
    call(|| {
        // SAFETY: the caller's contract (# Safety above): NULL or a NUL-terminated string.
        let user_id = unsafe { str_arg(user_id, "user_id", input::MAX_USER_ID_BYTES) }?;
        let user_id = input::UserId::new(user_id)?;
        instance::with(|tracker| tracker.change_user(user_id))
    })
}

/// Records a custom event (`ce`) in the open session, if any; does not start one.
/// `name`: 1-255 bytes UTF-8. `properties_json`: a JSON object of at most 50 KB, or NULL.
/// Both are copied.
///
/// # Safety
/// Each pointer is NULL or points to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn stint_log_custom_event(
    name: *const c_char,
    properties_json: *const c_char,
) -> StintStatus {
    boundary::call_inline(|| {
        // SAFETY: the caller's contract (# Safety above): NULL or a NUL-terminated string.
        let name = unsafe { str_arg(name, "name", input::MAX_EVENT_NAME_BYTES) }?;
        // SAFETY: as above.
        let properties = unsafe {
            optional_str_arg(
                properties_json,
                "properties_json",
                input::MAX_PROPERTIES_BYTES,
            )
        }?;
        let event = input::CustomEvent::new(name, properties)?;
        instance::with(|tracker| tracker.log_custom_event(event))
    })
}

/// Asks the worker to deliver queued datapoints now. Never blocks.
#[no_mangle]
pub extern "C" fn stint_request_immediate_data_flush() -> StintStatus {
    call(|| instance::with(|tracker| tracker.request_flush()))
}

/// Blocks until every datapoint recorded before the call is delivered, or `timeout_ms` passes
/// (STINT_STATUS_TIMEOUT; the data stays queued). Without a `baseUrl` it only makes data
/// durable (fsync).
#[no_mangle]
pub extern "C" fn stint_flush(timeout_ms: u32) -> StintStatus {
    call(|| instance::current()?.flush(Duration::from_millis(timeout_ms.into())))
}

/// Copies the open session's id, NUL-terminated, into `buffer` (at least
/// STINT_SESSION_ID_BUFFER_LEN = 37 bytes); "" if no session is open. `buffer` is untouched on
/// error.
///
/// # Safety
/// `buffer` is NULL or points to `buffer_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn stint_get_session_id(
    buffer: *mut c_char,
    buffer_len: usize,
) -> StintStatus {
    call(|| {
        check_id_buffer(buffer, buffer_len)?;
        let id = instance::with(|tracker| tracker.session_id())?;
        // SAFETY: checked non-NULL; the caller provides `buffer_len` bytes.
        unsafe { boundary::copy_truncated(id.as_deref().unwrap_or(""), buffer, buffer_len) };
        Ok(())
    })
}

/// Enables or disables tracking; the choice is saved in the data directory and survives
/// restarts (it wins over the `requireConsent` option). Disabling drops the open session
/// without recording its end and deletes every undelivered datapoint, on disk too; while
/// disabled, stint_open_session(), stint_close_session(), stint_change_user() and
/// stint_log_custom_event() return STINT_STATUS_OK and record nothing, and nothing is sent.
/// Enabling returns to normal: the next stint_open_session() starts a new session.
/// Never waits on the disk or the network.
#[no_mangle]
pub extern "C" fn stint_set_tracking_enabled(enabled: bool) -> StintStatus {
    call(|| instance::with(|tracker| tracker.set_tracking_enabled(enabled)))
}

/// Writes the current tracking choice to `*out_enabled`, which is untouched on error.
///
/// # Safety
/// `out_enabled` is NULL or points to a writable bool.
#[no_mangle]
pub unsafe extern "C" fn stint_get_tracking_enabled(out_enabled: *mut bool) -> StintStatus {
    call(|| {
        if out_enabled.is_null() {
            return Err(Error::InvalidArgument(
                "out_enabled must not be NULL".into(),
            ));
        }
        let enabled = instance::with(|tracker| tracker.tracking_enabled())?;
        // SAFETY: checked non-NULL; the caller provides a writable bool.
        unsafe { out_enabled.write(enabled) };
        Ok(())
    })
}

/// Deletes every undelivered datapoint, the saved session, the user and the device id, on
/// disk too, and goes on with a new device id, no user and no session. Nothing recorded
/// before the call is sent after it returns (a request already in flight may complete). The
/// tracking choice is kept. Never waits on the disk or the network.
#[no_mangle]
pub extern "C" fn stint_wipe_data() -> StintStatus {
    call(|| instance::with(|tracker| tracker.wipe_data()))
}

/// Copies the device id (a UUID, random per data directory, new after stint_wipe_data()),
/// NUL-terminated, into `buffer` (at least STINT_SESSION_ID_BUFFER_LEN = 37 bytes), e.g. for a
/// deletion request. `buffer` is untouched on error.
///
/// # Safety
/// `buffer` is NULL or points to `buffer_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn stint_get_device_id(
    buffer: *mut c_char,
    buffer_len: usize,
) -> StintStatus {
    call(|| {
        check_id_buffer(buffer, buffer_len)?;
        let id = instance::with(|tracker| tracker.device_id())?;
        // SAFETY: checked non-NULL; the caller provides `buffer_len` bytes.
        unsafe { boundary::copy_truncated(&id, buffer, buffer_len) };
        Ok(())
    })
}

/// Allows (true) or stops (false) network requests; not saved: each stint_initialize() starts
/// with the network enabled. While false no request starts (one in flight may finish),
/// recording goes on, and stint_flush() returns STINT_STATUS_TIMEOUT at once.
#[no_mangle]
pub extern "C" fn stint_set_network_enabled(enabled: bool) -> StintStatus {
    call(|| instance::with(|tracker| tracker.set_network_enabled(enabled)))
}

/// An id buffer's checks: not NULL, room for a UUID and its NUL.
fn check_id_buffer(buffer: *mut c_char, buffer_len: usize) -> Result<(), Error> {
    if buffer.is_null() {
        return Err(Error::InvalidArgument("buffer must not be NULL".into()));
    }
    if buffer_len < STINT_SESSION_ID_BUFFER_LEN {
        return Err(Error::InvalidArgument(format!(
            "buffer_len must be at least {STINT_SESSION_ID_BUFFER_LEN}, got {buffer_len}"
        )));
    }
    Ok(())
}

/// Fills `*out_stats`. `out_stats` is untouched on error.
///
/// # Safety
/// `out_stats` is NULL or points to a writable StintStats.
#[no_mangle]
pub unsafe extern "C" fn stint_get_stats(out_stats: *mut StintStats) -> StintStatus {
    call(|| {
        if out_stats.is_null() {
            return Err(Error::InvalidArgument("out_stats must not be NULL".into()));
        }
        let stats = instance::with(|tracker| tracker.stats())?;
        let out = StintStats {
            sessions_started: stats.sessions_started,
            sessions_ended: stats.sessions_ended,
            datapoints_recorded: stats.datapoints_recorded,
            datapoints_pending: stats.datapoints_pending,
            datapoints_delivered: stats.datapoints_delivered,
            datapoints_dropped: stats.datapoints_dropped,
        };
        // SAFETY: checked non-NULL; the caller provides a StintStats.
        unsafe { out_stats.write(out) };
        Ok(())
    })
}

/// Copies the message of the latest failing call on this thread into `buffer`, NUL-terminated
/// and truncated to fit; returns its full length in bytes (0 if no call has failed). With a
/// NULL `buffer` or `buffer_len` 0 it only returns the length.
///
/// # Safety
/// `buffer` is NULL or points to `buffer_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn stint_last_error_message(buffer: *mut c_char, buffer_len: usize) -> usize {
    // SAFETY: the caller provides `buffer_len` bytes at `buffer` (or NULL).
    std::panic::catch_unwind(|| unsafe { boundary::copy_last_error(buffer, buffer_len) })
        .unwrap_or(0)
}

/// Sets the session listener (NULL unsets). `user_data` is passed back untouched. May be set
/// before stint_initialize() and stays across stint_shutdown(). Once this returns, the
/// previous listener is never called again (from inside a listener: once that call returns).
/// To guarantee that, it waits for a listener call running on the library thread to finish:
/// do not hold a lock that your listener takes while calling this.
///
/// # Safety
/// `listener` (if not NULL) and `user_data` stay valid, and are safe to use from any thread,
/// for as long as they are registered: until a later stint_set_session_listener() replaces them
/// and returns.
#[no_mangle]
pub unsafe extern "C" fn stint_set_session_listener(
    listener: StintSessionListener,
    user_data: *mut c_void,
) -> StintStatus {
    call(|| {
        let user_data = UserData(user_data);
        dispatch::set_session_listener(listener.map(|listener| {
            Arc::new(move |notice: &SessionNotice| {
                let user_data = &user_data;
                call_listener(listener, notice, user_data.0)
            }) as dispatch::SessionListener
        }));
        Ok(())
    })
}

/// Sets the log handler (NULL unsets: messages go to stderr). Messages at or above the
/// `logLevel` option (default "warn") are passed, on a library thread. Never includes the API key.
///
/// # Safety
/// `handler` (if not NULL) and `user_data` stay valid, and are safe to use from any thread,
/// for as long as they are registered: until a later stint_set_log_handler() replaces them and
/// returns.
#[no_mangle]
pub unsafe extern "C" fn stint_set_log_handler(
    handler: StintLogHandler,
    user_data: *mut c_void,
) -> StintStatus {
    call(|| {
        let user_data = UserData(user_data);
        dispatch::set_log_handler(handler.map(|handler| {
            Arc::new(move |level: LogLevel, message: &str| {
                let user_data = &user_data;
                let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
                let level = match level {
                    LogLevel::Error | LogLevel::Off => StintLogLevel::Error,
                    LogLevel::Warn => StintLogLevel::Warn,
                    LogLevel::Info => StintLogLevel::Info,
                    LogLevel::Debug => StintLogLevel::Debug,
                };
                // SAFETY: the host registered this function with this user data.
                unsafe { handler(level, message.as_ptr(), user_data.0) }
            }) as dispatch::LogHandler
        }));
        Ok(())
    })
}

/// The library version, e.g. "0.1.0". Static; never free it.
#[no_mangle]
pub extern "C" fn stint_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The host's opaque pointer; the host is responsible for its thread safety.
struct UserData(*mut c_void);
// SAFETY: the pointer is never dereferenced here, only handed back to the host's callback, and
// the header states that callbacks run on a library thread: the host made it safe to share.
unsafe impl Send for UserData {}
// SAFETY: as for Send: shared only to be passed back to the host.
unsafe impl Sync for UserData {}

fn call_listener(
    listener: unsafe extern "C" fn(*const StintSessionEvent, *mut c_void),
    notice: &SessionNotice,
    user_data: *mut c_void,
) {
    let session_id = CString::new(notice.session_id.as_str()).unwrap_or_default();
    let user_id = notice
        .user_id
        .as_deref()
        .map(|u| CString::new(u).unwrap_or_default());
    let event = StintSessionEvent {
        kind: match notice.change {
            SessionChange::Started => StintSessionEventKind::Started,
            SessionChange::Ended => StintSessionEventKind::Ended,
        },
        session_id: session_id.as_ptr(),
        user_id: user_id.as_ref().map_or(std::ptr::null(), |u| u.as_ptr()),
        start_time: seconds(notice.start),
        end_time: notice.end.map_or(0.0, seconds),
    };
    // SAFETY: the host registered this function with this user data; `event` outlives the call.
    unsafe { listener(&event, user_data) }
}
