use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::log::MemoryLog;
use crate::store::MemoryStore;
use crate::store::conformance;
use crate::store::tests::sample_record;

fn fleet_section(key_file: &std::path::Path) -> StorageConfig {
    let text = format!(
        "[storage]\nbackend = \"postgres\"\nurl = \"postgresql://nobody@127.0.0.1:1/none\"\n\
         tls = \"disable\"\nsecret_key_file = {:?}\nlocal_users = [\"root\", \"breakglass\"]\n",
        key_file.display().to_string()
    );
    twofactor_config::Config::parse(&text, "test")
        .unwrap()
        .storage
}

fn key_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

struct Host {
    local: Arc<MemoryStore>,
    log: Arc<MemoryLog>,
    stores: Stores,
}

fn host(storage: &StorageConfig) -> Host {
    let local = Arc::new(MemoryStore::default());
    conformance::put(local.as_ref(), "breakglass", &sample_record(1));
    conformance::put(local.as_ref(), "alice", &sample_record(2));
    let log = Arc::new(MemoryLog::default());
    let stores = Stores::new(local.clone(), storage, log.clone());
    Host { local, log, stores }
}

fn is_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Unavailable { .. }))
}

#[test]
fn without_a_fleet_every_user_is_in_the_files() {
    let host = host(&StorageConfig::default());
    assert_eq!(host.stores.load("alice").unwrap(), Some(sample_record(2)));
    assert_eq!(host.stores.users().unwrap(), ["alice", "breakglass"]);
    assert!(host.log.lines().is_empty());
}

#[test]
fn a_missing_key_file_denies_the_fleet_and_serves_the_break_glass_users() {
    let dir = key_dir();
    let host = host(&fleet_section(&dir.path().join("absent.key")));
    assert_eq!(
        host.stores.load("breakglass").unwrap(),
        Some(sample_record(1))
    );
    conformance::put(&host.stores, "breakglass", &sample_record(5));
    assert_eq!(
        host.local.load("breakglass").unwrap(),
        Some(sample_record(5))
    );
    // alice has a record in the files from before fleet mode: it is never read now.
    assert!(is_unavailable(host.stores.load("alice")));
    assert!(is_unavailable(host.stores.begin("carol").map(|_| ())));
    assert!(is_unavailable(host.stores.users()));
    let lines = host.log.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("fleet-unusable") && lines[0].contains("absent.key"));
}

#[test]
fn an_unreachable_database_denies_the_fleet_fast_and_logs_once() {
    let dir = key_dir();
    let key_file = dir.path().join("secret.key");
    crate::seal::write_new_key_file(&key_file).unwrap();
    let host = host(&fleet_section(&key_file));
    let started = std::time::Instant::now();
    for _ in 0..10 {
        assert!(is_unavailable(host.stores.load("alice")));
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(host.stores.load("root").unwrap(), None);
    let lines = host.log.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("fleet-unavailable"), "{lines:?}");
}

#[test]
fn a_reload_builds_a_broken_fleet_again_and_keeps_a_working_section() {
    let dir = key_dir();
    let key_file = dir.path().join("secret.key");
    let storage = fleet_section(&key_file);
    let host = host(&storage);
    assert!(matches!(*host.stores.fleet(), FleetState::Broken(_)));
    crate::seal::write_new_key_file(&key_file).unwrap();
    host.stores.reconfigure(&storage);
    assert!(matches!(*host.stores.fleet(), FleetState::Database(_)));
    let before = Arc::as_ptr(&host.stores.fleet());
    host.stores.reconfigure(&storage);
    assert_eq!(Arc::as_ptr(&host.stores.fleet()), before);
    // Back to files: alice's local record is served again.
    host.stores.reconfigure(&StorageConfig::default());
    assert_eq!(host.stores.load("alice").unwrap(), Some(sample_record(2)));
}

#[test]
fn tls_other_than_disable_is_refused_until_built() {
    let dir = key_dir();
    let mut storage = fleet_section(&dir.path().join("secret.key"));
    storage.tls = twofactor_config::TlsMode::VerifyFull;
    assert!(connector_for(&storage).is_err());
}
