//! Per-user exclusive locks inside one process: what serializes a user's transactions in a
//! store that one daemon owns. Users never wait on each other.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};

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
