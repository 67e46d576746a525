use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use super::*;
use crate::backup::BackupCodeHashes;
use crate::record::{AttemptState, Enrollment, RECORD_VERSION, TotpEnrollment};
use crate::secret::Secret;
use twofactor_config::Algorithm;

pub(crate) fn sample_record(last_step: u64) -> UserRecord {
    UserRecord {
        version: RECORD_VERSION,
        enrollment: Some(Enrollment {
            totp: TotpEnrollment {
                secret: Secret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap(),
                algorithm: Algorithm::Sha1,
                digits: 6,
                period: 30,
                enrolled_at: 1_700_000_000,
                last_step: Some(last_step),
                window: None,
            },
            backup_codes: BackupCodeHashes {
                digits: 10,
                salt: "00".repeat(16),
                hashes: vec!["ab".repeat(32)],
            },
        }),
        attempts: AttemptState {
            failures_since_success: 2,
            ..AttemptState::default()
        },
        grace_started: Some(5),
        ..UserRecord::default()
    }
}

fn store() -> (tempfile::TempDir, FileStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(&dir.path().join("state")).unwrap();
    (dir, store)
}

#[test]
fn round_trip_with_strict_modes() {
    let (dir, store) = store();
    assert_eq!(store.load("alice").unwrap(), None);
    store.save("alice", &sample_record(7)).unwrap();
    assert_eq!(store.load("alice").unwrap(), Some(sample_record(7)));
    store.save("alice", &sample_record(8)).unwrap();
    assert_eq!(store.load("alice").unwrap(), Some(sample_record(8)));
    let state = dir.path().join("state");
    assert_eq!(fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        fs::metadata(state.join("users")).unwrap().mode() & 0o777,
        0o700
    );
    let file = state.join("users/alice.toml");
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    assert_eq!(store.users().unwrap(), vec!["alice".to_string()]);
    // No temp files left behind.
    assert_eq!(fs::read_dir(state.join("users")).unwrap().count(), 1);
}

#[test]
fn remove_is_idempotent() {
    let (_dir, store) = store();
    store.save("bob", &sample_record(1)).unwrap();
    assert!(store.remove("bob").unwrap());
    assert!(!store.remove("bob").unwrap());
    assert_eq!(store.load("bob").unwrap(), None);
}

#[test]
fn names_that_could_escape_are_refused_before_any_path() {
    let (_dir, store) = store();
    for name in ["../evil", "a/b", "", ".hidden", "-x"] {
        assert!(
            matches!(store.load(name), Err(StoreError::InvalidName)),
            "{name}"
        );
        assert!(matches!(
            store.save(name, &sample_record(1)),
            Err(StoreError::InvalidName)
        ));
    }
}

fn users_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state/users")
}

#[test]
fn a_symlink_is_never_followed() {
    let (dir, store) = store();
    let target = dir.path().join("elsewhere.toml");
    fs::write(&target, toml::to_string(&sample_record(1)).unwrap()).unwrap();
    symlink(&target, users_dir(&dir).join("mallory.toml")).unwrap();
    assert!(matches!(
        store.load("mallory"),
        Err(StoreError::Unsafe { .. })
    ));
}

#[test]
fn corrupt_or_truncated_is_an_error_not_unenrolled() {
    let (dir, store) = store();
    store.save("carol", &sample_record(1)).unwrap();
    let path = users_dir(&dir).join("carol.toml");
    let full = fs::read_to_string(&path).unwrap();
    let zero_period = full.replace("period = 30", "period = 0");
    let nine_digits = full.replace("digits = 6", "digits = 9");
    for broken in [
        &full[..full.len() / 2],
        "garbage = [",
        "",
        "version = 0\n",
        zero_period.as_str(),
        nine_digits.as_str(),
    ] {
        fs::write(&path, broken).unwrap();
        let result = store.load("carol");
        assert!(
            matches!(result, Err(StoreError::Corrupt { .. })),
            "{broken:?}: {result:?}"
        );
    }
    // Other users are unaffected.
    store.save("dave", &sample_record(2)).unwrap();
    assert!(store.load("dave").unwrap().is_some());
}

#[test]
fn unsafe_modes_and_owners_are_refused() {
    let (dir, store) = store();
    store.save("erin", &sample_record(1)).unwrap();
    let path = users_dir(&dir).join("erin.toml");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(store.load("erin"), Err(StoreError::Unsafe { .. })));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(store.load("erin").is_ok());
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        assert!(matches!(store.load("erin"), Err(StoreError::Unsafe { .. })));
    }
}

#[test]
fn a_directory_in_place_of_a_record_is_refused() {
    let (dir, store) = store();
    fs::create_dir(users_dir(&dir).join("frank.toml")).unwrap();
    assert!(store.load("frank").is_err());
}

#[test]
fn stale_temp_files_are_removed_at_open() {
    let (dir, store) = store();
    store.save("gina", &sample_record(1)).unwrap();
    fs::write(users_dir(&dir).join(".tmpXYZ"), "half a write").unwrap();
    drop(store);
    let store = FileStore::open(&dir.path().join("state")).unwrap();
    assert_eq!(fs::read_dir(users_dir(&dir)).unwrap().count(), 1);
    assert!(store.load("gina").unwrap().is_some());
}

#[test]
fn open_tightens_a_loose_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
    FileStore::open(&state).unwrap();
    assert_eq!(fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
}

#[test]
fn the_secret_is_stored_only_as_base32_in_its_file() {
    let (dir, store) = store();
    store.save("hana", &sample_record(1)).unwrap();
    let text = fs::read_to_string(users_dir(&dir).join("hana.toml")).unwrap();
    assert!(
        text.contains("secret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\""),
        "{text}"
    );
}

#[test]
fn an_imported_80_bit_secret_reads_back() {
    let (_dir, store) = store();
    let mut record = sample_record(1);
    if let Some(enrollment) = record.enrollment.as_mut() {
        enrollment.totp.secret = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
    }
    store.save("ivan", &record).unwrap();
    assert_eq!(store.load("ivan").unwrap(), Some(record));
}

#[test]
fn swapping_the_users_directory_after_open_does_not_redirect_the_store() {
    let (dir, store) = store();
    store.save("alice", &sample_record(3)).unwrap();
    let users = users_dir(&dir);
    fs::rename(&users, dir.path().join("state/users.real")).unwrap();
    fs::create_dir(&users).unwrap();
    assert_eq!(store.load("alice").unwrap(), Some(sample_record(3)));
    assert_eq!(store.users().unwrap(), vec!["alice".to_string()]);
    store.save("bob", &sample_record(4)).unwrap();
    assert_eq!(fs::read_dir(&users).unwrap().count(), 0);
    assert!(dir.path().join("state/users.real/bob.toml").exists());
}

#[test]
fn a_parent_writable_by_others_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("open");
    fs::create_dir(&parent).unwrap();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o777)).unwrap();
    let error = FileStore::open(&parent.join("state")).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, StoreError::Unsafe { .. }), "{message}");
    assert!(
        message.contains(&format!(
            "{} is unsafe: writable by group or others",
            parent.display()
        )),
        "{message}"
    );
    assert!(!parent.join("state").exists());
}

#[test]
fn a_sticky_parent_is_accepted_when_the_child_is_ours() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("sticky");
    fs::create_dir(&parent).unwrap();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o1777)).unwrap();
    let store = FileStore::open(&parent.join("state")).unwrap();
    store.save("alice", &sample_record(1)).unwrap();
    assert!(store.load("alice").unwrap().is_some());
}

#[test]
fn a_sticky_parent_is_refused_when_the_child_belongs_to_someone_else() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("sticky");
    fs::create_dir_all(parent.join("theirs")).unwrap();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o1777)).unwrap();
    let nobody = Some(nix::unistd::Uid::from_raw(65534));
    nix::unistd::chown(&parent.join("theirs"), nobody, None).unwrap();
    let message = FileStore::open(&parent.join("theirs/state"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("owned by uid 65534"), "{message}");
}

#[test]
fn a_symlink_on_the_state_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("real")).unwrap();
    symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    let message = FileStore::open(&dir.path().join("link/state"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("is a symbolic link"), "{message}");
}

#[test]
fn a_vanished_record_of_a_user_seen_is_an_error() {
    let (dir, store) = store();
    store.save("alice", &sample_record(1)).unwrap();
    fs::remove_file(users_dir(&dir).join("alice.toml")).unwrap();
    assert!(matches!(
        store.load("alice"),
        Err(StoreError::Vanished { .. })
    ));
    // Seen only in the listing at open, never loaded.
    store.save("bob", &sample_record(1)).unwrap();
    drop(store);
    let store = FileStore::open(&dir.path().join("state")).unwrap();
    fs::remove_file(users_dir(&dir).join("bob.toml")).unwrap();
    assert!(matches!(
        store.load("bob"),
        Err(StoreError::Vanished { .. })
    ));
    assert_eq!(store.load("carol").unwrap(), None);
}

#[test]
fn remove_then_load_is_not_enrolled() {
    let (_dir, store) = store();
    store.save("alice", &sample_record(1)).unwrap();
    assert!(store.load("alice").unwrap().is_some());
    assert!(store.remove("alice").unwrap());
    assert_eq!(store.load("alice").unwrap(), None);
    store.save("alice", &sample_record(2)).unwrap();
    assert_eq!(store.load("alice").unwrap(), Some(sample_record(2)));
}

fn temp_files(dir: &tempfile::TempDir) -> Vec<String> {
    fs::read_dir(users_dir(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tmp"))
        .collect()
}

#[test]
fn a_successful_save_leaves_no_temp_file() {
    let (dir, store) = store();
    for step in 0..5 {
        store.save("alice", &sample_record(step)).unwrap();
    }
    assert_eq!(temp_files(&dir), Vec::<String>::new());
}

#[test]
fn a_failed_write_keeps_the_old_record_and_no_temp_file() {
    let (dir, store) = store();
    store.save("alice", &sample_record(1)).unwrap();
    FAIL_WRITE_AFTER.with(|fail| fail.set(Some(10)));
    let result = store.save("alice", &sample_record(2));
    assert!(matches!(result, Err(StoreError::Io { .. })), "{result:?}");
    assert_eq!(store.load("alice").unwrap(), Some(sample_record(1)));
    assert_eq!(temp_files(&dir), Vec::<String>::new());
}

#[test]
fn a_failed_rename_leaves_no_temp_file() {
    let (dir, store) = store();
    fs::create_dir(users_dir(&dir).join("alice.toml")).unwrap();
    fs::write(users_dir(&dir).join("alice.toml/keep"), "x").unwrap();
    assert!(store.save("alice", &sample_record(1)).is_err());
    assert_eq!(temp_files(&dir), Vec::<String>::new());
}

struct FileHarness {
    dir: tempfile::TempDir,
    store: FileStore,
}

impl conformance::Harness for FileHarness {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn make_unreadable(&self, user: &str) {
        fs::write(
            users_dir(&self.dir).join(format!("{user}.toml")),
            "version = [",
        )
        .unwrap();
    }
}

fn file_harness() -> FileHarness {
    let (dir, store) = store();
    FileHarness { dir, store }
}

conformance::store_conformance!(super::file_harness());
