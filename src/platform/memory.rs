//! Memory-mapped files: faulting pages in ahead of the stores that need them, how a mapping is
//! made durable, and reserving disk blocks for one. Only Linux and Android have
//! `MADV_POPULATE_WRITE` (5.14+) and `posix_fallocate`; elsewhere pages are touched and files
//! only grown.

use std::fs::File;
use std::io;

/// The page size the prefault loop steps by (a larger real page only makes it touch more).
pub(crate) const PAGE: usize = 4096;

/// Whether fsync on a mapped file's descriptor writes back the pages dirtied through a shared
/// mapping (as msync does), so the sync can run on a duplicate descriptor with no lock held.
/// True on Linux and Android; elsewhere the mapping itself is flushed.
pub(crate) const FSYNC_WRITES_BACK_MAPPINGS: bool =
    cfg!(any(target_os = "linux", target_os = "android"));

/// Not in the libc crate for every target; the value is the kernel's ABI.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// Asks the kernel to fault `len` bytes at `start` in for writing, without writing them.
/// `Unsupported` where it cannot (not Linux or Android, or a kernel before 5.14); another error
/// if the range is not (or no longer) mapped writable.
///
/// # Safety
/// `start..start + len` is a range of this process's address space that a file mapping of
/// its own covers or covered: the kernel checks the range, and populating never changes a byte
/// of whatever is mapped there.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) unsafe fn populate_write(start: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: advice only (the caller's contract); MADV_POPULATE_WRITE changes no contents.
    if unsafe { libc::madvise(start.cast(), len, MADV_POPULATE_WRITE) } == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        // An advice this kernel does not know.
        Some(libc::EINVAL) => Err(io::ErrorKind::Unsupported.into()),
        _ => Err(error),
    }
}

/// See the Linux version: no such advice here.
///
/// # Safety
/// None needed; `unsafe` only to match the Linux version's signature.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) unsafe fn populate_write(_start: *mut u8, _len: usize) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Faults every page of `bytes` (a shared file mapping's, or `AnonPages`) in for writing now,
/// so later stores into it cost no page fault: by `populate_write` where the kernel can,
/// otherwise by rewriting one byte per page with itself.
pub(crate) fn prefault(bytes: &mut [u8]) {
    // SAFETY: the range is exactly `bytes`, live memory of ours.
    if unsafe { populate_write(bytes.as_mut_ptr(), bytes.len()) }.is_ok() {
        return;
    }
    for byte in bytes.iter_mut().step_by(PAGE) {
        let byte: *mut u8 = byte;
        // SAFETY: `byte` comes from a live `&mut u8`; a volatile store of the byte's own value
        // changes nothing, and cannot be optimised away as a plain store of it could.
        unsafe { byte.write_volatile(byte.read_volatile()) };
    }
}

/// Not in the libc crate for every target; the value is the kernel's ABI.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MADV_POPULATE_READ: libc::c_int = 22;

/// Faults every page of `bytes` (a file mapping about to be read through) in for reading with
/// one system call, where the kernel can (Linux and Android 5.14+): a recovery that reads
/// megabytes of segments then takes no page fault per 4 KB. Best effort: elsewhere, or if the
/// kernel refuses, the reads fault the pages in one by one as before.
pub(crate) fn populate_read(bytes: &[u8]) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: advice only, on exactly `bytes`, live memory of ours; MADV_POPULATE_READ changes
    // no contents.
    unsafe {
        libc::madvise(
            bytes.as_ptr() as *mut libc::c_void,
            bytes.len(),
            MADV_POPULATE_READ,
        );
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = bytes;
}

/// Drops the whole pages inside `bytes` (part of a shared file mapping) from this process's
/// resident set: their contents stay in the file and the page cache, and a later access faults
/// them back in. For buffers and segments a drained backlog no longer needs: file-backed pages
/// count as resident for as long as they stay mapped, dirty or not. Advice only, so best effort;
/// a partial page at either end is kept. Never for anonymous memory, whose contents it discards.
pub(crate) fn release_file_pages(bytes: &[u8]) {
    let start = (bytes.as_ptr() as usize).next_multiple_of(PAGE);
    let end = (bytes.as_ptr() as usize + bytes.len()) / PAGE * PAGE;
    if end <= start {
        return;
    }
    #[cfg(unix)]
    // SAFETY: `start..end` lies within `bytes`, live memory of ours that (the caller's contract)
    // maps a file shared: MADV_DONTNEED only unmaps its pages, whose contents the file keeps
    // (dirty ones are still written back), and the next access maps them again.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
    }
    #[cfg(not(unix))]
    let _ = (start, end);
}

/// Gives the allocator's free memory back to the system, where the allocator keeps it (glibc:
/// freed request bodies stay resident until trimmed; only the main arena's top is trimmed).
/// Costs a walk of the heap: for the worker once a backlog has drained, never for a call.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's to the system; it is
    // thread-safe and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Anonymous memory of its own mapping, not from `malloc`: for structures that grow and
/// shrink by large steps (the journal's index), so that neither their growth nor their freeing
/// moves the allocator's heap or its thresholds. Reads as zeros when fresh; unmapped on drop.
pub(crate) struct AnonPages(memmap2::MmapMut);

impl AnonPages {
    /// Maps `len` bytes (page-aligned; not faulted in).
    pub(crate) fn new(len: usize) -> io::Result<AnonPages> {
        memmap2::MmapMut::map_anon(len).map(AnonPages)
    }

    /// Faults every page in now (`prefault`), so later stores into them cost no page fault.
    pub(crate) fn fault_in(&mut self) {
        prefault(&mut self.0);
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// Gives `file` `len` bytes with disk blocks behind them, so that a full disk fails here
/// rather than as SIGBUS on a later store into its mapping.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn reserve(file: &File, len: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off_t::try_from(len) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "mapping too large",
        ));
    };
    // SAFETY: a plain system call on a descriptor that `file` keeps open for its duration; it
    // reads no memory of ours.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate: fall back to a sparse size.
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len as u64),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Elsewhere the file is only grown to `len` (std has no portable fallocate): where the
/// filesystem makes that sparse, a full disk shows up when pages are written back, not here.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn reserve(file: &File, len: usize) -> io::Result<()> {
    file.set_len(len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefault_keeps_every_byte() {
        let mut bytes: Vec<u8> = (0..3 * PAGE + 17).map(|i| (i % 251) as u8).collect();
        let before = bytes.clone();
        prefault(&mut bytes);
        assert_eq!(bytes, before);
    }

    /// The resident kB of this process's mapping that starts at `start` (/proc/self/smaps).
    #[cfg(target_os = "linux")]
    fn resident_kb(start: *const u8) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let head = format!("{:x}-", start as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
        lines
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("the mapping is listed")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn released_file_pages_leave_the_resident_set_and_keep_their_bytes() {
        let dir = std::env::temp_dir().join(format!("stint-release-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("f"))
            .unwrap();
        file.set_len(64 * PAGE as u64).unwrap();
        // SAFETY: a file of this test's own, mapped once.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&file).unwrap() };
        for (i, byte) in map.iter_mut().enumerate() {
            *byte = (i % 251) as u8; // dirty, never synced
        }
        assert!(resident_kb(map.as_ptr()) >= 64 * 4);
        // Not page-aligned at either end: the partial pages stay.
        release_file_pages(&map[100..62 * PAGE + 5]);
        let left = resident_kb(map.as_ptr());
        assert!(left <= 4 * 4, "{left} kB still resident");
        assert!(map.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        drop(map);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn anonymous_pages_read_as_zeros_and_keep_what_is_stored() {
        let mut pages = AnonPages::new(3 * PAGE).unwrap();
        assert_eq!(pages.bytes().len(), 3 * PAGE);
        assert!(pages.bytes().iter().all(|&b| b == 0));
        pages.bytes_mut()[PAGE + 1] = 7;
        pages.fault_in();
        assert_eq!(pages.bytes()[PAGE + 1], 7);
        assert_eq!(pages.bytes().iter().filter(|&&b| b != 0).count(), 1);
    }

    #[test]
    fn trimming_the_heap_keeps_live_allocations() {
        let kept: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 10_000]).collect();
        drop((0..64).map(|_| vec![1u8; 100_000]).collect::<Vec<_>>());
        trim_heap();
        assert!(kept
            .iter()
            .enumerate()
            .all(|(i, v)| v.iter().all(|&b| b == i as u8)));
    }

    #[test]
    fn reserve_grows_a_file_to_the_length() {
        let dir = std::env::temp_dir().join(format!("stint-reserve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        reserve(&file, 3 * PAGE).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 3 * PAGE as u64);
        drop(file);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
