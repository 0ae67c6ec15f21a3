//! What differs between operating systems, in one place: where an app's data lives by default,
//! randomness, how files are made private and durable, memory-mapped files (prefault, sync,
//! disk reservation), and the device context a session start carries. Everything above this module is the
//! same code on Linux, Android, Apple platforms and Windows.

pub(crate) mod context;
mod data_home;
mod fs;
mod memory;
mod random;

pub(crate) use data_home::data_home;
pub(crate) use fs::{create_private_dir, private_file, sync_directory, write_all_at};
pub(crate) use memory::{
    populate_read, populate_write, prefault, release_file_pages, reserve, trim_heap, AnonPages,
    FSYNC_WRITES_BACK_MAPPINGS, PAGE,
};
pub(crate) use random::fill_random;
