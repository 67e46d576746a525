//! Storage of user records behind a small trait, so a shared backend for fleets can come later.
//!
//! [`FileStore`]: one TOML file per user, root-owned, 0600, written atomically and durably
//! (temp file, fsync, rename, fsync of the directory) before the daemon replies.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::record::{RECORD_VERSION, UserRecord};

/// Largest user file read; real ones are well under 2 KiB.
const MAX_RECORD_BYTES: u64 = 64 * 1024;
const RECORD_SUFFIX: &str = ".toml";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{path} is unsafe: {reason}")]
    Unsafe { path: String, reason: String },
    #[error("invalid user name")]
    InvalidName,
}

/// Where user records live. Implementations must make `save` durable before returning.
pub trait Store: Send + Sync {
    /// `Ok(None)`: not enrolled. Any doubt is an error, never `None`.
    fn load(&self, user: &str) -> Result<Option<UserRecord>, StoreError>;
    fn save(&self, user: &str, record: &UserRecord) -> Result<(), StoreError>;
    /// Whether there was a record; removing an absent one is not an error.
    fn remove(&self, user: &str) -> Result<bool, StoreError>;
    /// Names of all users with a record (readable or not), sorted.
    fn users(&self) -> Result<Vec<String>, StoreError>;
}

/// Records as files under `<state dir>/users/`.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    owner: u32,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl FileStore {
    /// Open (creating if needed) the store under `state_dir`, which must be a directory owned
    /// by this process's user and not accessible to group or others; it is made 0700.
    pub fn open(state_dir: &Path) -> Result<FileStore, StoreError> {
        let owner = nix::unistd::geteuid().as_raw();
        let dir = state_dir.join("users");
        for path in [state_dir, dir.as_path()] {
            match fs::symlink_metadata(path) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    fs::DirBuilder::new()
                        .mode(0o700)
                        .create(path)
                        .map_err(io_error(path))?;
                }
                Err(error) => return Err(io_error(path)(error)),
                Ok(meta) => {
                    if !meta.is_dir() {
                        return Err(StoreError::Unsafe {
                            path: path.display().to_string(),
                            reason: "not a directory".into(),
                        });
                    }
                    if meta.uid() != owner {
                        return Err(StoreError::Unsafe {
                            path: path.display().to_string(),
                            reason: format!("owned by uid {}, not {owner}", meta.uid()),
                        });
                    }
                }
            }
            fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_error(path))?;
        }
        let store = FileStore { dir, owner };
        store.remove_stale_temp_files();
        Ok(store)
    }

    fn path_of(&self, user: &str) -> Result<PathBuf, StoreError> {
        if !twofactor_proto::is_valid_username(user) {
            return Err(StoreError::InvalidName);
        }
        Ok(self.dir.join(format!("{user}{RECORD_SUFFIX}")))
    }

    /// Temp files of writes cut short by a crash; the records themselves are intact.
    fn remove_stale_temp_files(&self) {
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(".tmp") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(&self.dir))
    }
}

impl Store for FileStore {
    fn load(&self, user: &str) -> Result<Option<UserRecord>, StoreError> {
        let path = self.path_of(user)?;
        let shown = || path.display().to_string();
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
                return Err(StoreError::Unsafe {
                    path: shown(),
                    reason: "is a symbolic link".into(),
                });
            }
            Err(error) => return Err(io_error(&path)(error)),
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
            return Err(StoreError::Unsafe {
                path: shown(),
                reason,
            });
        }
        let mut text = zeroize::Zeroizing::new(String::new());
        Read::by_ref(&mut file)
            .take(MAX_RECORD_BYTES)
            .read_to_string(&mut text)
            .map_err(|error| StoreError::Corrupt {
                path: shown(),
                reason: error.to_string(),
            })?;
        let record: UserRecord = toml::from_str(&text).map_err(|error| StoreError::Corrupt {
            path: shown(),
            reason: error.message().to_string(),
        })?;
        if record.version != RECORD_VERSION {
            return Err(StoreError::Corrupt {
                path: shown(),
                reason: format!("unknown version {}", record.version),
            });
        }
        // Parameters no enrollment or import can have would break the code check.
        if let Some(enrollment) = &record.enrollment {
            let totp = &enrollment.totp;
            let window_ok = totp.window.is_none_or(|window| window <= 10);
            if !(6..=8).contains(&totp.digits) || !(15..=120).contains(&totp.period) || !window_ok {
                return Err(StoreError::Corrupt {
                    path: shown(),
                    reason: "TOTP parameters out of range".into(),
                });
            }
        }
        Ok(Some(record))
    }

    fn save(&self, user: &str, record: &UserRecord) -> Result<(), StoreError> {
        let path = self.path_of(user)?;
        let text = zeroize::Zeroizing::new(toml::to_string(record).map_err(|error| {
            StoreError::Corrupt {
                path: path.display().to_string(),
                reason: error.to_string(),
            }
        })?);
        // tempfile creates with O_EXCL and mode 0600 in the same directory, so rename is atomic.
        let mut temp = tempfile::Builder::new()
            .prefix(".tmp")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(io_error(&self.dir))?;
        temp.write_all(text.as_bytes()).map_err(io_error(&path))?;
        temp.as_file().sync_all().map_err(io_error(&path))?;
        temp.persist(&path)
            .map_err(|error| io_error(&path)(error.error))?;
        self.sync_dir()
    }

    fn remove(&self, user: &str) -> Result<bool, StoreError> {
        let path = self.path_of(user)?;
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir().map(|()| true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(io_error(&path)(error)),
        }
    }

    fn users(&self) -> Result<Vec<String>, StoreError> {
        let mut users = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(user) = name.strip_suffix(RECORD_SUFFIX)
                && twofactor_proto::is_valid_username(user)
            {
                users.push(user.to_owned());
            }
        }
        users.sort();
        Ok(users)
    }
}

/// An in-memory store for unit tests of the logic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<String, UserRecord>>,
    /// Users whose records are "unreadable".
    pub broken: Mutex<Vec<String>>,
}

impl Store for MemoryStore {
    fn load(&self, user: &str) -> Result<Option<UserRecord>, StoreError> {
        if self
            .broken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .any(|b| b == user)
        {
            return Err(StoreError::Corrupt {
                path: user.to_owned(),
                reason: "broken for the test".into(),
            });
        }
        Ok(self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(user)
            .cloned())
    }

    fn save(&self, user: &str, record: &UserRecord) -> Result<(), StoreError> {
        // Like a rename over the file: whatever was unreadable is replaced.
        self.broken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|b| b != user);
        self.records
            .lock()
            .map_err(|_| StoreError::InvalidName)?
            .insert(user.to_owned(), record.clone());
        Ok(())
    }

    fn remove(&self, user: &str) -> Result<bool, StoreError> {
        let mut broken = self
            .broken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let was_broken = broken.iter().any(|b| b == user);
        broken.retain(|b| b != user);
        let removed = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(user);
        Ok(removed.is_some() || was_broken)
    }

    fn users(&self) -> Result<Vec<String>, StoreError> {
        let records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut users: Vec<String> = records.keys().cloned().collect();
        for broken in self
            .broken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            if !users.contains(broken) {
                users.push(broken.clone());
            }
        }
        users.sort();
        Ok(users)
    }
}

#[cfg(test)]
mod tests;
