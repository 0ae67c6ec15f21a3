//! A file mapped into memory, read-write and shared: a store to it is in the page cache at once,
//! so it survives the process being killed without a system call per write.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

pub struct MappedFile {
    ptr: *mut u8,
    len: usize,
    _file: File,
}

// The mapping is plain memory owned by this value; access goes through &self / &mut self.
unsafe impl Send for MappedFile {}
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Opens (creating 0600 if missing) and maps `path`, growing it to at least `len` bytes with
    /// real disk blocks, so a full disk fails here instead of as SIGBUS on a later store.
    pub fn open(path: &Path, len: usize) -> io::Result<MappedFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let current = file.metadata()?.len() as usize;
        let len = len.max(current);
        if current < len {
            reserve(&file, len)?;
        }
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh shared mapping of a file we hold open, at least `len` bytes long.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MappedFile {
            ptr: ptr.cast(),
            len,
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

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is valid for `len` bytes for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// Faults every page in now, so later stores into it cost no page fault (~200 ns each).
    pub fn prefault(&mut self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            const MADV_POPULATE_WRITE: libc::c_int = 23; // Linux 5.14+
                                                         // SAFETY: advising on our own live mapping.
            if unsafe { libc::madvise(self.ptr.cast(), self.len, MADV_POPULATE_WRITE) } == 0 {
                return;
            }
        }
        let page = 4096;
        for offset in (0..self.len).step_by(page) {
            // SAFETY: within the mapping; rewriting a byte with itself changes nothing.
            unsafe {
                let byte = self.ptr.add(offset);
                byte.write_volatile(byte.read_volatile());
            }
        }
    }

    /// Makes the mapped bytes durable against power loss (msync).
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: syncing our own live mapping.
        if unsafe { libc::msync(self.ptr.cast(), self.len, libc::MS_SYNC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in `open`; no view outlives `self`.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn reserve(file: &File, len: usize) -> io::Result<()> {
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate: fall back to a sparse size.
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len as u64),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn reserve(file: &File, len: usize) -> io::Result<()> {
    file.set_len(len as u64)
}
