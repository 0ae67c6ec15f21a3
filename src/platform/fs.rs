//! Private, durable files.
//!
//! On Unix what Stint creates is private by its mode bits, whatever the umask: directories
//! 0700, files 0600. On Windows there are no mode bits: privacy comes from where the files are.
//! The default data home, `%LOCALAPPDATA%`, is inside the user's profile, whose ACL grants the
//! user, SYSTEM and Administrators only, and new files and directories inherit that ACL. An
//! explicit `dataDirectory` on Windows gets the ACL of the directory it is created in: the host
//! chooses a private one.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `path` and its missing parents, private to the user (see the module doc): what Stint
/// keeps there (the journal, the lanes) is the host's and carries its API key.
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Options that create a file private to the user (0600 on Unix; see the module doc).
pub(crate) fn private_file() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes a rename or a new file in `dir` durable: the directory entry itself is synced.
#[cfg(unix)]
pub(crate) fn sync_directory(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Windows has nothing to sync here: std cannot open a directory as a file there, and NTFS
/// records a rename in its metadata log, which it commits on its own (a rename completed before
/// a power cut may still be undone: the old content then stays, never a torn one).
#[cfg(not(unix))]
pub(crate) fn sync_directory(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Writes all of `bytes` at `offset` without moving a shared cursor (pwrite on Unix).
#[cfg(unix)]
pub(crate) fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

/// Windows has no pwrite: `seek_write` writes at an offset (and moves the handle's cursor,
/// which nothing here reads), possibly in part, so it loops.
#[cfg(windows)]
pub(crate) fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    let (mut bytes, mut offset) = (bytes, offset);
    while !bytes.is_empty() {
        match file.seek_write(bytes, offset)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            written => {
                bytes = &bytes[written..];
                offset += written as u64;
            }
        }
    }
    Ok(())
}
