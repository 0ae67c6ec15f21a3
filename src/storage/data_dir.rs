//! The data directory: created 0700, locked to one process, holding the device id, the
//! session state and the journal.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ids::IdGenerator;

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
        let path = self.path.join("device_id");
        if let Ok(text) = fs::read_to_string(&path) {
            let id = text.trim();
            if id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Ok(id.to_owned());
            }
        }
        let id = ids.uuid();
        write_durably(&path, id.as_bytes())
            .map_err(|e| Error::storage("cannot write the device id", e))?;
        Ok(id)
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

/// Writes a whole file so a crash leaves either the old or the new content.
fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}
