//! A file mapped into memory, read-write and shared (memmap2): a store to it is in the page
//! cache at once, so it survives the process being killed without a system call per write.
//!
//! Mapping a file is `unsafe` because another process (or another mapping in this one) could
//! change or truncate the file under us, which Rust's aliasing rules cannot see. Stint's
//! invariant: every mapped file lives in a data directory whose lock (`DataDir`, `File::try_lock`)
//! this process holds for as long as any mapping of it exists, and inside the process each file
//! is mapped by exactly one `MappedFile`. No other Stint instance, in this process or another,
//! opens the directory's files while the lock is held, so nothing else writes or truncates them.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

use crate::platform::{self, private_file, reserve};

/// One mapped file (see the module doc for who else may touch it: nobody).
pub struct MappedFile {
    map: MmapMut,
    /// Where it is: a lane buffer created on demand is removed by this name once emptied.
    path: PathBuf,
    /// Kept open for as long as the mapping (Windows flushes through it).
    _file: File,
}

impl MappedFile {
    /// Opens (creating it private if missing) and maps `path`, growing it to at least `len`
    /// bytes with real disk blocks, so a full disk fails here instead of as SIGBUS on a later
    /// store. The caller holds the data directory's lock.
    pub fn open(path: &Path, len: usize) -> io::Result<MappedFile> {
        let file = private_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let current = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large to map"))?;
        let len = len.max(current);
        if current < len {
            reserve(&file, len)?;
        }
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: the file is at least `len` bytes long (grown above, and nothing shrinks it),
        // and nothing outside this mapping reads or writes it while it lives: it is in a data
        // directory whose lock this process holds, and this is its only mapping (module doc).
        let map = unsafe { MmapOptions::new().len(len).map_mut(&file)? };
        Ok(MappedFile {
            map,
            path: path.to_owned(),
            _file: file,
        })
    }

    /// `open`, then `prefault`: for a file about to be written all through (a new segment, a
    /// lane), so that writing to it costs no page faults.
    pub fn open_prefaulted(path: &Path, len: usize) -> io::Result<MappedFile> {
        let mut map = MappedFile::open(path, len)?;
        map.prefault();
        Ok(map)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmaps and closes the file, then deletes it (it holds nothing wanted).
    pub fn remove(self) -> io::Result<()> {
        let path = self.path;
        drop((self.map, self._file)); // Windows deletes no file that is still mapped or open
        std::fs::remove_file(path)
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The mapped bytes, to write; a store is in the page cache (kill-safe) at once.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Faults every page in now, so later stores into it cost no page fault (~200 ns each).
    pub fn prefault(&mut self) {
        platform::prefault(&mut self.map);
    }

    /// Drops the whole pages of `range` from the process's resident set (`release_file_pages`):
    /// the bytes stay as they are, and the next access to them faults them back in.
    pub fn release(&self, range: std::ops::Range<usize>) {
        platform::release_file_pages(&self.map[range]);
    }

    /// Makes the mapping durable against power loss, now or through `later`.
    ///
    /// On Linux and Android a duplicate of the file's descriptor goes into `later`, to be
    /// fsynced by the worker with no lock held: there fsync writes back the pages dirtied
    /// through a shared mapping, exactly as msync does, so callers never wait behind a sync.
    /// Elsewhere the mapping is flushed now (msync; FlushViewOfFile and FlushFileBuffers on
    /// Windows), under whatever lock the caller holds.
    pub fn sync(&self, later: &mut Vec<Flusher>) -> io::Result<()> {
        if platform::FSYNC_WRITES_BACK_MAPPINGS {
            later.push(Flusher(self._file.try_clone()?));
            return Ok(());
        }
        self.map.flush()
    }
}

/// A mapped file's descriptor, to make it durable without its mapping (see `MappedFile::sync`).
pub struct Flusher(File);

impl Flusher {
    /// fsyncs the file's data.
    pub fn flush(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}
