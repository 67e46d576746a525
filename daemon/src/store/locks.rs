//! Per-user exclusive locks inside one process: what serializes a user's transactions in a
//! store that one daemon owns. Users never wait on each other.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::{StoreError, Transaction};
use crate::record::UserRecord;

#[derive(Debug, Default)]
pub struct UserLocks {
    held: Mutex<HashSet<String>>,
    released: Condvar,
}

/// Held until dropped.
#[derive(Debug)]
pub struct UserLock<'a> {
    locks: &'a UserLocks,
    user: String,
}

impl UserLocks {
    fn held(&self) -> MutexGuard<'_, HashSet<String>> {
        // A panic under a lock must not wedge every later login: the set is plain data.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wait until no one holds `user`, then hold it.
    pub fn acquire(&self, user: &str) -> UserLock<'_> {
        let mut held = self.held();
        while held.contains(user) {
            held = self
                .released
                .wait(held)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        held.insert(user.to_owned());
        UserLock {
            locks: self,
            user: user.to_owned(),
        }
    }
}

impl Drop for UserLock<'_> {
    fn drop(&mut self) {
        self.locks.held().remove(&self.user);
        // Waiters for other users wake too, see theirs still held or free, and go on.
        self.locks.released.notify_all();
    }
}

/// How a store that locks in this process writes a committed record (`None`: removes it).
pub trait Writer: Sync {
    fn write(&self, user: &str, record: Option<&UserRecord>) -> Result<(), StoreError>;
}

/// A transaction of a store that locks in this process: the record read under the lock,
/// written by the store at commit.
pub struct LocalTransaction<'a, W: Writer> {
    writer: &'a W,
    user: String,
    current: Result<Option<UserRecord>, StoreError>,
    _lock: UserLock<'a>,
}

impl<'a, W: Writer> LocalTransaction<'a, W> {
    pub fn new(
        writer: &'a W,
        user: &str,
        current: Result<Option<UserRecord>, StoreError>,
        lock: UserLock<'a>,
    ) -> Self {
        LocalTransaction {
            writer,
            user: user.to_owned(),
            current,
            _lock: lock,
        }
    }
}

impl<W: Writer> std::fmt::Debug for LocalTransaction<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTransaction")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl<W: Writer> Transaction for LocalTransaction<'_, W> {
    fn current(&self) -> Result<&Option<UserRecord>, &StoreError> {
        self.current.as_ref()
    }

    fn commit(self: Box<Self>, record: Option<&UserRecord>) -> Result<(), StoreError> {
        self.writer.write(&self.user, record)
    }
}
