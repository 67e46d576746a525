//! Targets that reach the file store: a user name, and a stored record.

use std::os::unix::fs::PermissionsExt;

use twofactord::record::UserRecord;
use twofactord::store::{FileStore, Store, StoreError};

/// A fresh, empty store of the daemon's own kind.
fn empty_store() -> (tempfile::TempDir, FileStore) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = FileStore::open(&dir.path().join("state")).expect("a new store opens");
    (dir, store)
}

/// A user name from the bus: valid names never leave the store's directory, invalid ones
/// never reach the file system.
pub fn user_name(data: &[u8]) {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let (_dir, store) = empty_store();
    let valid = twofactor_proto::is_valid_username(name);
    if valid {
        assert!(
            !name.contains('/') && name != "." && name != "..",
            "{name:?}"
        );
        assert!(name.len() <= twofactor_proto::MAX_USERNAME_LEN);
    }
    match store.load(name) {
        Ok(None) => assert!(valid, "{name:?} reached the store"),
        Err(StoreError::InvalidName) => assert!(!valid, "{name:?} refused"),
        other => panic!("{name:?} in an empty store: {other:?}"),
    }
}

/// A record file as the daemon reads it from `users/NAME.toml`; what it accepts survives a
/// save and a load unchanged.
pub fn record(data: &[u8]) {
    let (_dir, store) = empty_store();
    let path = _dir.path().join("state/users/fuzz.toml");
    std::fs::write(&path, data).expect("write the record");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let Ok(Some(record)) = store.load("fuzz") else {
        return;
    };
    exercise(&record);
    store
        .begin("fuzz")
        .and_then(|transaction| transaction.commit(Some(&record)))
        .expect("an accepted record can be saved");
    let again = store.load("fuzz").expect("a saved record loads");
    assert_eq!(
        again.as_ref(),
        Some(&record),
        "a save and a load change nothing"
    );
}

/// The record's own questions, at instants around the ones it names.
fn exercise(record: &UserRecord) {
    let _ = record.is_empty();
    let _ = record.is_enrolled();
    for now in [0, 1_800_000_000, u64::MAX] {
        let _ = record.live_temporary_code(now);
    }
    if let Some(enrollment) = &record.enrollment {
        let _ = enrollment.totp.params();
        let _ = enrollment.backup_codes.remaining();
    }
}
