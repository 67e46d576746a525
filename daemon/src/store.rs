//! Storage of user records behind a small trait, so a shared backend can implement the same
//! contract (see `conformance`).
//!
//! Every change is a [`Transaction`]: the user's record is read under that user's exclusive
//! lock, and the new value is committed durably, or nothing changes. [`FileStore`]: one TOML
//! file per user, root-owned, 0600, written atomically and durably (temp file, fsync, rename,
//! fsync of the directory) before the commit returns.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

use crate::record::UserRecord;

#[cfg(test)]
pub(crate) mod conformance;
mod dirfd;
mod locks;
#[cfg(any(test, feature = "test-doubles"))]
mod memory;
pub mod postgres;

use dirfd::{errno_error, unsafe_path};
pub use locks::{LocalTransaction, UserLock, UserLocks};
#[cfg(any(test, feature = "test-doubles"))]
pub use memory::MemoryStore;
pub use postgres::PostgresStore;

/// Largest user file read; real ones are well under 2 KiB.
const MAX_RECORD_BYTES: u64 = 64 * 1024;
const RECORD_SUFFIX: &str = ".toml";
const TEMP_PREFIX: &str = ".tmp";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error(
        "{path} was written by a newer twofactord: record version {version}, and this one reads \
         versions up to {supported}; the user's logins are refused until a twofactord that reads \
         version {version} is installed again (resetting the user would delete the record)"
    )]
    NewerVersion {
        path: String,
        version: u32,
        supported: u32,
    },
    #[error("{path} is unsafe: {reason}")]
    Unsafe { path: String, reason: String },
    #[error("{path} vanished: the user had a record and the daemon did not remove it")]
    Vanished { path: String },
    #[error("invalid user name")]
    InvalidName,
    /// The store cannot be reached at all (a shared backend that is down): deny at once.
    #[error("the store is unavailable: {reason}")]
    Unavailable { reason: String },
    /// Another writer changed the record since this transaction read it: run it again.
    #[error("the record changed under this transaction")]
    Conflict,
}

/// Where user records live.
///
/// The contract, which `conformance` checks for every backend:
/// - `Ok(None)` means not enrolled. Any doubt (unreadable, corrupt, vanished) is an error,
///   never `None`.
/// - A transaction holds the user's record exclusively, against every other transaction on
///   that user through any daemon sharing the backend, until it commits or is dropped.
///   Transactions on different users never wait on each other.
/// - `commit` is durable before it returns; a dropped transaction changes nothing.
pub trait Store: Send + Sync {
    /// The record as last committed, without taking the user's lock: for reading only.
    fn load(&self, user: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Take `user`'s lock (waiting for any transaction on that user) and read the record.
    fn begin(&self, user: &str) -> Result<Box<dyn Transaction + '_>, StoreError>;
    /// Names of all users with a record (readable or not), sorted.
    fn users(&self) -> Result<Vec<String>, StoreError>;
    /// The store's clock minus this host's, in seconds: a shared store's clock is the one
    /// every host counts TOTP steps and stored times by.
    fn clock_offset(&self) -> i64 {
        0
    }
}

/// One user's record, held exclusively until [`Transaction::commit`] or drop.
pub trait Transaction: Send {
    /// The record as it stood when the lock was taken: an unreadable one is an error here,
    /// so that a caller such as an admin reset can still replace it.
    fn current(&self) -> Result<&Option<UserRecord>, &StoreError>;
    /// Store `record` durably (`None`: remove it) and release the lock.
    fn commit(self: Box<Self>, record: Option<&UserRecord>) -> Result<(), StoreError>;
}

/// Records as files under `<state dir>/users/`, reached only through a descriptor of that
/// directory opened at start.
#[derive(Debug)]
pub struct FileStore {
    dir: OwnedFd,
    /// For messages only: no operation goes through this path.
    path: PathBuf,
    owner: u32,
    /// Users with a record, seen at open, load or save: a missing file for one of them is
    /// a deletion behind our back, not an unenrolled user.
    known: Mutex<HashSet<String>>,
    /// One daemon owns the directory, so a lock in this process serializes each user.
    locks: UserLocks,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
thread_local! {
    /// Tests set this to make the next temp-file write fail after that many bytes.
    static FAIL_WRITE_AFTER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

impl FileStore {
    /// Open (creating if needed) the store under `state_dir`, which must be a directory owned
    /// by this process's user, reached through directories only root (or this user) can
    /// change; it and `users/` are made 0700.
    pub fn open(state_dir: &Path) -> Result<FileStore, StoreError> {
        let owner = nix::unistd::geteuid().as_raw();
        let dir = dirfd::open_users_dir(state_dir, owner)?;
        let store = FileStore {
            dir,
            path: state_dir.join("users"),
            owner,
            known: Mutex::new(HashSet::new()),
            locks: UserLocks::default(),
        };
        store.remove_stale_temp_files();
        let users = store.list()?;
        store.known_users().extend(users);
        Ok(store)
    }

    fn file_name(user: &str) -> Result<String, StoreError> {
        if !twofactor_proto::is_valid_username(user) {
            return Err(StoreError::InvalidName);
        }
        Ok(format!("{user}{RECORD_SUFFIX}"))
    }

    fn known_users(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Temp files of writes cut short by a crash; the records themselves are intact.
    fn remove_stale_temp_files(&self) {
        for name in dirfd::entries(&self.dir).unwrap_or_default() {
            if name.as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes()) {
                let _ = unlinkat(&self.dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        fsync(&self.dir).map_err(|errno| errno_error(&self.path, errno))
    }

    /// Creates `name` (which must not exist) 0600 and writes `text` to it durably.
    fn write_new(&self, name: &str, text: &[u8]) -> Result<(), StoreError> {
        let path = self.path.join(name);
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.dir, name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(|errno| errno_error(&path, errno))?;
        let mut file = File::from(fd);
        let written = Self::write_durably(&mut file, text);
        if written.is_err() {
            let _ = unlinkat(&self.dir, name, UnlinkatFlags::NoRemoveDir);
        }
        written.map_err(io_error(&path))
    }

    fn write_durably(file: &mut File, text: &[u8]) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(limit) = FAIL_WRITE_AFTER.with(|fail| fail.take()) {
            file.write_all(&text[..limit.min(text.len())])?;
            return Err(std::io::Error::other("write failure injected by a test"));
        }
        file.write_all(text)?;
        file.sync_all()
    }
}

impl FileStore {
    fn read(&self, user: &str) -> Result<Option<UserRecord>, StoreError> {
        let name = Self::file_name(user)?;
        let path = self.path.join(&name);
        let shown = || path.display().to_string();
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let mut file = match openat(&self.dir, name.as_str(), flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::ENOENT) if self.known_users().contains(user) => {
                return Err(StoreError::Vanished { path: shown() });
            }
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(unsafe_path(&path, "is a symbolic link")),
            Err(errno) => return Err(errno_error(&path, errno)),
        };
        let meta = file.metadata().map_err(io_error(&path))?;
        let unsafe_because = if !meta.file_type().is_file() {
            Some("not a regular file".to_string())
        } else if meta.uid() != self.owner {
            Some(format!("owned by uid {}, not {}", meta.uid(), self.owner))
        } else if meta.mode() & 0o077 != 0 {
            Some(format!(
                "mode {:o} is open to group or others",
                meta.mode() & 0o777
            ))
        } else if meta.len() > MAX_RECORD_BYTES {
            Some(format!("{} bytes is too large", meta.len()))
        } else {
            None
        };
        if let Some(reason) = unsafe_because {
            return Err(unsafe_path(&path, reason));
        }
        let mut text = zeroize::Zeroizing::new(String::new());
        Read::by_ref(&mut file)
            .take(MAX_RECORD_BYTES)
            .read_to_string(&mut text)
            .map_err(|error| StoreError::Corrupt {
                path: shown(),
                reason: error.to_string(),
            })?;
        let record = UserRecord::from_text(&text).map_err(|error| error.at(&path))?;
        self.known_users().insert(user.to_owned());
        Ok(Some(record))
    }

    fn save(&self, user: &str, record: &UserRecord) -> Result<(), StoreError> {
        let name = Self::file_name(user)?;
        let path = self.path.join(&name);
        let text = record.to_text().map_err(|error| error.at(&path))?;
        // A new file in the same directory, renamed over the record: readers see the old
        // record or the new one, never half of one.
        let temp = format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>());
        self.write_new(&temp, text.as_bytes())?;
        if let Err(errno) = renameat(&self.dir, temp.as_str(), &self.dir, name.as_str()) {
            let _ = unlinkat(&self.dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(errno_error(&path, errno));
        }
        self.known_users().insert(user.to_owned());
        self.sync_dir()
    }

    fn remove(&self, user: &str) -> Result<bool, StoreError> {
        let name = Self::file_name(user)?;
        // Held across the unlink, so a concurrent load never sees the file gone but the
        // user still known.
        let mut known = self.known_users();
        let removed = match unlinkat(&self.dir, name.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) => true,
            Err(Errno::ENOENT) => false,
            Err(errno) => return Err(errno_error(&self.path.join(&name), errno)),
        };
        // Asked for: from now on a missing file means not enrolled.
        known.remove(user);
        drop(known);
        if removed {
            self.sync_dir()?;
        }
        Ok(removed)
    }

    fn list(&self) -> Result<Vec<String>, StoreError> {
        let names = dirfd::entries(&self.dir).map_err(|errno| errno_error(&self.path, errno))?;
        let mut users = Vec::new();
        for name in names {
            if let Some(user) = name.to_str().and_then(|n| n.strip_suffix(RECORD_SUFFIX))
                && twofactor_proto::is_valid_username(user)
            {
                users.push(user.to_owned());
            }
        }
        users.sort();
        Ok(users)
    }
}

impl Store for FileStore {
    fn load(&self, user: &str) -> Result<Option<UserRecord>, StoreError> {
        self.read(user)
    }

    fn begin(&self, user: &str) -> Result<Box<dyn Transaction + '_>, StoreError> {
        Self::file_name(user)?;
        let lock = self.locks.acquire(user);
        Ok(Box::new(LocalTransaction::new(
            self,
            user,
            self.read(user),
            lock,
        )))
    }

    fn users(&self) -> Result<Vec<String>, StoreError> {
        self.list()
    }
}

impl locks::Writer for FileStore {
    fn write(&self, user: &str, record: Option<&UserRecord>) -> Result<(), StoreError> {
        match record {
            Some(record) => self.save(user, record),
            None => self.remove(user).map(|_| ()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
