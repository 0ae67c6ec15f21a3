//! The data directory: created 0700, locked to one process, holding the device id, the
//! session state and the journal.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ids::IdGenerator;

const DEVICE_ID: &str = "device_id";
/// The user's tracking choice (`stint_set_tracking_enabled`): "enabled" or "disabled".
const TRACKING: &str = "tracking";

pub struct DataDir {
    pub path: PathBuf,
    /// Held open for as long as this process uses the directory; closing it unlocks.
    _lock: File,
}

impl DataDir {
    pub fn open(path: &Path) -> Result<DataDir, Error> {
        create_private_dir(path).map_err(|e| {
            Error::storage(&format!("cannot create dataDirectory {}", shown(path)), e)
        })?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path.join("lock"))
            .map_err(|e| Error::storage(&format!("cannot use dataDirectory {}", shown(path)), e))?;
        // SAFETY: plain syscall on an open descriptor.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock {
                return Err(Error::DataDirectoryLocked(format!(
                    "dataDirectory {} is in use by another process (or another Stint instance)",
                    shown(path)
                )));
            }
            return Err(Error::storage("cannot lock dataDirectory", error));
        }
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The device id: random, created once per data directory.
    pub fn device_id(&self, ids: &mut IdGenerator) -> Result<String, Error> {
        let path = self.path.join(DEVICE_ID);
        if let Ok(text) = fs::read_to_string(&path) {
            let id = text.trim();
            if id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Ok(id.to_owned());
            }
        }
        let id = ids.uuid();
        write_file(&path, id.as_bytes(), true)
            .map_err(|e| Error::storage("cannot write the device id", e))?;
        Ok(id)
    }

    /// Replaces the device id (data wiped). Written to the page cache only, so the caller
    /// never waits on the disk: it survives the process being killed, and `sync_small_files`
    /// (on the worker) makes it durable.
    pub fn replace_device_id(&self, id: &str) -> io::Result<()> {
        write_file(&self.path.join(DEVICE_ID), id.as_bytes(), false)
    }

    /// The user's saved tracking choice, if any.
    pub fn tracking_choice(&self) -> Option<bool> {
        match fs::read(self.path.join(TRACKING)).ok()?.as_slice() {
            b"enabled" => Some(true),
            b"disabled" => Some(false),
            _ => None,
        }
    }

    /// Saves the tracking choice: page cache only, like `replace_device_id`.
    pub fn save_tracking_choice(&self, enabled: bool) -> io::Result<()> {
        let text: &[u8] = if enabled { b"enabled" } else { b"disabled" };
        write_file(&self.path.join(TRACKING), text, false)
    }

    /// Makes the device id, the tracking choice and their renames durable.
    pub fn sync_small_files(&self) -> io::Result<()> {
        for name in [DEVICE_ID, TRACKING] {
            match File::open(self.path.join(name)) {
                Ok(file) => file.sync_all()?,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        sync_dir(&self.path)
    }

    pub fn journal(&self) -> PathBuf {
        self.path.join("journal")
    }

    pub fn lanes(&self) -> PathBuf {
        self.path.join("lanes")
    }

    pub fn session_state(&self) -> PathBuf {
        self.path.join("session")
    }
}

/// Creates `path` and its missing parents 0700, whatever the umask: what Stint keeps there
/// (the journal, the lanes) is the host's and carries its API key.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// A path in a message: long ones are shortened so that a hostile option cannot flood the log.
fn shown(path: &Path) -> String {
    crate::options::shown_text(&path.display().to_string())
}

/// Writes a whole file so a crash leaves either the old or the new content; `durable` syncs it
/// before returning (otherwise it is in the page cache: safe from a kill, not a power loss).
fn write_file(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    fs::rename(&temporary, path)?;
    if durable {
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Makes renames in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
