//! The data directory: created private, locked to one process, holding the device id, the
//! session state, the journal and the lanes (byte map: `format`, docs/format.md).
//!
//! The lock is what makes the memory maps sound (see `mapping`): while a `DataDir` lives, no
//! other process and no other Stint instance in this process opens the files below it.

use std::fs::{self, File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::format::{names, DEVICE_ID_LEN};
use crate::error::Error;
use crate::ids::IdGenerator;
use crate::platform::{create_private_dir, private_file, sync_directory};

/// A data directory, open and locked.
pub struct DataDir {
    /// Where it is.
    pub path: PathBuf,
    /// Held open and locked for as long as this process uses the directory; closing it unlocks.
    _lock: File,
}

impl DataDir {
    /// Creates (private) and locks the directory at `path`: `DataDirectoryLocked` if another
    /// process or Stint instance holds it.
    pub fn open(path: &Path) -> Result<DataDir, Error> {
        create_private_dir(path).map_err(|e| match file_in_the_way(path) {
            // The OS says "File exists" here; the cause that helps the host is the file.
            Some(file) => Error::storage(
                &format!("dataDirectory {} is not a directory", shown(path)),
                io::Error::new(
                    io::ErrorKind::NotADirectory,
                    if file == path {
                        "a file is in the way".to_owned()
                    } else {
                        format!("{} is a file", shown(file))
                    },
                ),
            ),
            None => Error::storage(&format!("cannot create dataDirectory {}", shown(path)), e),
        })?;
        let lock = private_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(names::LOCK))
            .map_err(|e| Error::storage(&format!("cannot use dataDirectory {}", shown(path)), e))?;
        // An advisory lock (flock on Unix, LockFileEx on Windows), released by the OS when the
        // process dies, however it dies: a killed app never leaves its directory locked.
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::DataDirectoryLocked(format!(
                    "dataDirectory {} is in use by another process (or another Stint instance)",
                    shown(path)
                )))
            }
            Err(TryLockError::Error(error)) => {
                return Err(Error::storage("cannot lock dataDirectory", error))
            }
        }
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The device id, random and created once per data directory, and whether it was created
    /// now. A new one is written to the page cache only, so `initialize` never waits on the
    /// disk: `sync_small_files` (on the worker) makes it durable. One that a power cut lost or
    /// tore before that sync is not valid here and is created anew.
    pub fn device_id(&self, ids: &mut IdGenerator) -> Result<(String, bool), Error> {
        let path = self.path.join(names::DEVICE_ID);
        if let Ok(text) = fs::read_to_string(&path) {
            let id = text.trim();
            if id.len() == DEVICE_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Ok((id.to_owned(), false));
            }
        }
        let id = ids.uuid();
        self.replace_device_id(&id)
            .map_err(|e| Error::storage("cannot write the device id", e))?;
        Ok((id, true))
    }

    /// Replaces the device id (data wiped). Written to the page cache only, so the caller
    /// never waits on the disk: it survives the process being killed, and `sync_small_files`
    /// (on the worker) makes it durable.
    pub fn replace_device_id(&self, id: &str) -> io::Result<()> {
        write_file(&self.path.join(names::DEVICE_ID), id.as_bytes())
    }

    /// The user's saved tracking choice, if any.
    pub fn tracking_choice(&self) -> Option<bool> {
        match fs::read(self.path.join(names::TRACKING)).ok()?.as_slice() {
            b"enabled" => Some(true),
            b"disabled" => Some(false),
            _ => None,
        }
    }

    /// Saves the tracking choice: page cache only, like `replace_device_id`.
    pub fn save_tracking_choice(&self, enabled: bool) -> io::Result<()> {
        let text: &[u8] = if enabled { b"enabled" } else { b"disabled" };
        write_file(&self.path.join(names::TRACKING), text)
    }

    /// Makes the device id, the tracking choice and their renames in `dir` (a data directory)
    /// durable; needs no lock.
    pub fn sync_small_files(dir: &Path) -> io::Result<()> {
        for name in [names::DEVICE_ID, names::TRACKING] {
            // Opened for writing: Windows' FlushFileBuffers refuses a read-only handle
            // ("Access denied"); nothing is written.
            match fs::OpenOptions::new().write(true).open(dir.join(name)) {
                Ok(file) => file.sync_all()?,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        sync_directory(dir)
    }

    /// The journal's directory.
    pub fn journal(&self) -> PathBuf {
        self.path.join(names::JOURNAL)
    }

    /// The lanes' directory.
    pub fn lanes(&self) -> PathBuf {
        self.path.join(names::LANES)
    }

    /// The saved session's file.
    pub fn session_state(&self) -> PathBuf {
        self.path.join(names::SESSION)
    }
}

/// A path in a message: long ones are shortened so that a hostile option cannot flood the log.
/// The path itself or the nearest ancestor that exists, if that is not a directory: where the OS
/// says only "File exists" or "Not a directory".
fn file_in_the_way(path: &Path) -> Option<&Path> {
    let existing = path.ancestors().find(|p| p.exists())?;
    (!existing.is_dir()).then_some(existing)
}

fn shown(path: &Path) -> String {
    crate::options::shown_text(&path.display().to_string())
}

/// Writes a whole file so a crash leaves either the old or the new content. Page cache only:
/// safe from a kill, and from a power loss once `DataDir::sync_small_files` has run.
fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension(names::TEMPORARY_EXTENSION);
    let mut file = private_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)?;
    file.write_all(bytes)?;
    drop(file); // closed before it is renamed (Windows)
    fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_data_directory_that_is_a_file_is_refused_as_not_a_directory() {
        let parent =
            std::env::temp_dir().join(format!("stint-data-dir-file-{}", std::process::id()));
        fs::create_dir_all(&parent).unwrap();
        let file = parent.join("a-file");
        fs::write(&file, b"not a directory").unwrap();
        let message = match DataDir::open(&file) {
            Err(error @ Error::Storage { .. }) => format!("{error}: {}", error.source().unwrap()),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a file was opened as a data directory"),
        };
        assert!(message.contains("is not a directory"), "{message}");
        assert!(message.contains("a-file"), "{message}");
        assert!(!message.contains("os error"), "{message}");
        // A file further up: named.
        let message = match DataDir::open(&file.join("below")) {
            Err(error @ Error::Storage { .. }) => format!("{error}: {}", error.source().unwrap()),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a directory was created below a file"),
        };
        assert!(message.contains("is not a directory"), "{message}");
        assert!(message.ends_with("a-file\" is a file"), "{message}");
        // A directory at the same place opens: the refusal was about the file.
        fs::remove_file(&file).unwrap();
        drop(DataDir::open(&file).unwrap());
        fs::remove_dir_all(&parent).unwrap();
    }
}
