//! What every export goes through: panics caught, errors turned into status codes with a
//! message for stint_last_error_message(), and C strings checked.

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;
use crate::ffi::types::StintStatus;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs an export's body: `Ok` or the status of its error, and a panic becomes
/// `InternalError` instead of unwinding into C.
pub fn call(body: impl FnOnce() -> Result<(), Error>) -> StintStatus {
    let error = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return StintStatus::Ok,
        Ok(Err(error)) => error,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Error::Internal(format!("internal error (please report): {what}"))
        }
    };
    let status = status_of(&error);
    let message = error.to_string();
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = message);
    status
}

fn status_of(error: &Error) -> StintStatus {
    match error {
        Error::InvalidArgument(_) => StintStatus::InvalidArgument,
        Error::NotInitialized => StintStatus::NotInitialized,
        Error::AlreadyInitialized => StintStatus::AlreadyInitialized,
        Error::Storage(_) => StintStatus::StorageError,
        Error::DataDirectoryLocked(_) => StintStatus::DataDirectoryLocked,
        Error::Timeout(_) => StintStatus::Timeout,
        Error::Internal(_) => StintStatus::InternalError,
    }
}

/// Copies the last error message into `buffer`; returns its full length.
///
/// # Safety
/// `buffer` is NULL or points to `buffer_len` writable bytes.
pub unsafe fn copy_last_error(buffer: *mut c_char, buffer_len: usize) -> usize {
    LAST_ERROR
        // SAFETY: the caller's contract, passed on: `buffer` holds `buffer_len` bytes or is NULL.
        .try_with(|last| unsafe { copy_truncated(&last.borrow(), buffer, buffer_len) })
        .unwrap_or(0)
}

/// Copies `text` NUL-terminated into `buffer`, truncated to fit (never splitting a UTF-8
/// character); returns the full length of `text`.
///
/// # Safety
/// `buffer` is NULL or points to `buffer_len` writable bytes.
pub unsafe fn copy_truncated(text: &str, buffer: *mut c_char, buffer_len: usize) -> usize {
    if !buffer.is_null() && buffer_len > 0 {
        let mut len = text.len().min(buffer_len - 1);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        // SAFETY: the caller promises `buffer` holds `buffer_len` bytes; we write `len + 1`.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buffer.cast::<u8>(), len);
            *buffer.add(len) = 0;
        }
    }
    text.len()
}

/// Borrows a NUL-terminated UTF-8 argument, reading at most `max + 1` bytes of it.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string (or at least `max + 1` readable bytes).
pub unsafe fn str_arg<'a>(ptr: *const c_char, name: &str, max: usize) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::InvalidArgument(format!("{name} must not be NULL")));
    }
    // SAFETY: the caller's contract, passed on (the same as `optional_str_arg`'s).
    unsafe { optional_str_arg(ptr, name, max) }.map(|s| s.unwrap_or_default())
}

/// Like [`str_arg`], but NULL is allowed and gives `None`.
///
/// # Safety
/// As [`str_arg`].
pub unsafe fn optional_str_arg<'a>(
    ptr: *const c_char,
    name: &str,
    max: usize,
) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: strnlen reads no further than the NUL or max + 1 bytes.
    let len = unsafe { libc::strnlen(ptr, max + 1) };
    if len > max {
        return Err(Error::InvalidArgument(format!(
            "{name} is too long: at most {max} bytes"
        )));
    }
    // SAFETY: `len` bytes were just found readable.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes)
        .map(Some)
        .map_err(|e| Error::InvalidArgument(format!("{name} is not valid UTF-8 ({e})")))
}
