//! An in-memory store for tests of the logic (and the fuzz driver), held to the same
//! contract as the real ones (`conformance`).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::locks::Writer;
use super::{LocalTransaction, Store, StoreError, Transaction, UserLocks};
use crate::record::UserRecord;

#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<String, UserRecord>>,
    /// Users whose records are "unreadable".
    pub broken: Mutex<Vec<String>>,
    locks: UserLocks,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryStore {
    fn read(&self, user: &str) -> Result<Option<UserRecord>, StoreError> {
        if !twofactor_proto::is_valid_username(user) {
            return Err(StoreError::InvalidName);
        }
        if lock(&self.broken).iter().any(|b| b == user) {
            return Err(StoreError::Corrupt {
                path: user.to_owned(),
                reason: "broken for the test".into(),
            });
        }
        Ok(lock(&self.records).get(user).cloned())
    }
}

impl Store for MemoryStore {
    fn load(&self, user: &str) -> Result<Option<UserRecord>, StoreError> {
        self.read(user)
    }

    fn begin(&self, user: &str) -> Result<Box<dyn Transaction + '_>, StoreError> {
        if !twofactor_proto::is_valid_username(user) {
            return Err(StoreError::InvalidName);
        }
        let lock = self.locks.acquire(user);
        Ok(Box::new(LocalTransaction::new(
            self,
            user,
            self.read(user),
            lock,
        )))
    }

    fn users(&self) -> Result<Vec<String>, StoreError> {
        let mut users: Vec<String> = lock(&self.records).keys().cloned().collect();
        for broken in lock(&self.broken).iter() {
            if !users.contains(broken) {
                users.push(broken.clone());
            }
        }
        users.sort();
        Ok(users)
    }
}

impl Writer for MemoryStore {
    fn write(&self, user: &str, record: Option<&UserRecord>) -> Result<(), StoreError> {
        // Like a rename over the file: whatever was unreadable is replaced.
        lock(&self.broken).retain(|b| b != user);
        let mut records = lock(&self.records);
        match record {
            Some(record) => records.insert(user.to_owned(), record.clone()),
            None => records.remove(user),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    impl conformance::Harness for MemoryStore {
        fn store(&self) -> &dyn Store {
            self
        }

        fn make_unreadable(&self, user: &str) {
            lock(&self.broken).push(user.to_owned());
        }
    }

    conformance::store_conformance!(MemoryStore::default());
}
