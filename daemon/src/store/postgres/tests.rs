//! The conformance suite and the store's own checks against a real PostgreSQL, named by
//! `TWOFACTOR_TEST_POSTGRES_URL` (scripts/test starts one). Each test gets a schema of its
//! own. Without the variable the tests are skipped, except in CI, where they fail.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use super::schema::CURRENT_VERSION;
use super::*;
use crate::log::MemoryLog;
use crate::store::conformance;
use crate::store::tests::sample_record;

const URL_VARIABLE: &str = "TWOFACTOR_TEST_POSTGRES_URL";

fn test_url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{URL_VARIABLE} is unset in CI: scripts/test starts the test database")
        }
        _ => {
            eprintln!("skipped: {URL_VARIABLE} is unset (scripts/test-postgres starts a server)");
            None
        }
    }
}

/// A fresh schema on the test database, dropped at the end.
struct PostgresHarness {
    config: postgres::Config,
    admin: Mutex<Client>,
    schema: String,
    store: PostgresStore,
}

pub(crate) fn test_keys(byte: u8) -> FleetKeys {
    FleetKeys::new(crate::seal::FleetKey::from_bytes(&[byte; 32]), Vec::new())
}

fn open(config: postgres::Config) -> Result<PostgresStore, StoreError> {
    open_with_log(config, Arc::new(MemoryLog::default()))
}

fn open_with_log(
    config: postgres::Config,
    log: Arc<dyn crate::log::EventLog>,
) -> Result<PostgresStore, StoreError> {
    PostgresStore::open(config, test_keys(7), log)
}

fn connect(config: &postgres::Config) -> Client {
    config.connect(NoTls).expect("the test database")
}

impl PostgresHarness {
    fn new() -> Option<PostgresHarness> {
        Self::with_schema_applied(true)
    }

    fn with_schema_applied(applied: bool) -> Option<PostgresHarness> {
        let mut config: postgres::Config = test_url()?.parse().expect("a PostgreSQL URL");
        let schema = format!("twofactor_test_{:016x}", rand::random::<u64>());
        let mut admin = connect(&config);
        admin
            .batch_execute(&format!(
                "CREATE SCHEMA {schema}; SET search_path = {schema}"
            ))
            .unwrap();
        config.options(&format!("-c search_path={schema}"));
        // Tells this test's connections from those of the tests running beside it.
        config.application_name(&schema);
        if applied {
            upgrade_schema(&mut admin).unwrap();
        }
        let store = if applied {
            open(config.clone()).unwrap()
        } else {
            // Not opened: the tests of an absent schema open it themselves.
            PostgresStore::unconnected(
                Box::new(|| Err(postgres::Error::__private_api_timeout())),
                test_keys(7),
                Arc::new(MemoryLog::default()),
            )
        };
        Some(PostgresHarness {
            config,
            admin: Mutex::new(admin),
            schema,
            store,
        })
    }

    fn admin(&self) -> std::sync::MutexGuard<'_, Client> {
        self.admin
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for PostgresHarness {
    fn drop(&mut self) {
        self.store.database.idle().clear();
        let schema = self.schema.clone();
        let _ = self
            .admin()
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
    }
}

impl conformance::Harness for PostgresHarness {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn make_unreadable(&self, user: &str) {
        self.admin()
            .execute(
                "UPDATE users SET record = 'version = ['::bytea WHERE name = $1",
                &[&user],
            )
            .unwrap();
    }

    fn second_daemon(&self) -> Option<Box<dyn Store + '_>> {
        Some(Box::new(open(self.config.clone()).unwrap()))
    }
}

conformance::store_conformance!(optional super::PostgresHarness::new());

#[test]
fn a_removal_marks_the_row_and_keeps_no_record() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    let store = &harness.store;
    conformance::put(store, "alice", &sample_record(3));
    store.begin("alice").unwrap().commit(None).unwrap();
    let row = harness
        .admin()
        .query_one(
            "SELECT record IS NULL, removed_at IS NOT NULL FROM users WHERE name = 'alice'",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (true, true));
    // Enrolled again: the same row, no longer marked.
    conformance::put(store, "alice", &sample_record(4));
    let marked: bool = harness
        .admin()
        .query_one(
            "SELECT removed_at IS NOT NULL FROM users WHERE name = 'alice'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!marked);
    assert_eq!(store.load("alice").unwrap(), Some(sample_record(4)));
}

#[test]
fn a_dropped_transaction_on_a_new_user_leaves_no_row() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    drop(harness.store.begin("erin").unwrap());
    let rows: i64 = harness
        .admin()
        .query_one("SELECT count(*) FROM users", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}

#[test]
fn a_row_of_an_unknown_encoding_is_corrupt() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    conformance::put(&harness.store, "alice", &sample_record(1));
    harness
        .admin()
        .batch_execute("UPDATE users SET record_encoding = 9")
        .unwrap();
    assert!(matches!(
        harness.store.load("alice"),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_lock_held_too_long_is_a_conflict() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    let store = &harness.store;
    conformance::put(store, "alice", &sample_record(1));
    let _held = store.begin("alice").unwrap();
    let started = Instant::now();
    let refused = store.begin("alice").map(|_| ());
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    let waited = started.elapsed();
    assert!(
        waited >= LOCK_TIMEOUT && waited < LOCK_TIMEOUT * 2,
        "{waited:?}"
    );
}

#[test]
fn a_database_that_is_down_is_unavailable_at_once() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let mut config = postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(1)
        .user("nobody")
        .dbname("none");
    let started = Instant::now();
    assert!(matches!(open(config), Err(StoreError::Unavailable { .. })));
    assert!(started.elapsed() < CONNECT_TIMEOUT);
}

#[test]
fn a_store_reconnects_after_its_connections_were_killed() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    let store = &harness.store;
    conformance::put(store, "alice", &sample_record(1));
    // What a server restart does to every idle connection of the pool.
    harness
        .admin()
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = '{}'",
            harness.schema
        ))
        .unwrap();
    assert_eq!(store.load("alice").unwrap(), Some(sample_record(1)));
    conformance::put(store, "alice", &sample_record(2));
}

#[test]
fn the_schema_version_is_checked() {
    let Some(harness) = PostgresHarness::with_schema_applied(false) else {
        return;
    };
    let mut admin = harness.admin();
    assert!(matches!(
        check_schema(&mut admin),
        Err(SchemaError::Missing)
    ));
    assert!(matches!(
        open(harness.config.clone()),
        Err(StoreError::Unavailable { .. })
    ));
    assert_eq!(upgrade_schema(&mut admin).unwrap(), (0, CURRENT_VERSION));
    // Again: nothing to do.
    assert_eq!(
        upgrade_schema(&mut admin).unwrap(),
        (CURRENT_VERSION, CURRENT_VERSION)
    );
    assert_eq!(check_schema(&mut admin).unwrap(), CURRENT_VERSION);
    let newer = CURRENT_VERSION as i32 + 1;
    admin
        .execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&newer],
        )
        .unwrap();
    assert!(matches!(
        check_schema(&mut admin),
        Err(SchemaError::Newer { .. })
    ));
    assert!(matches!(
        upgrade_schema(&mut admin),
        Err(SchemaError::Newer { .. })
    ));
}

/// `cargo test --release -p twofactord store::postgres::tests::begin_and_commit_time --
/// --ignored --nocapture`: the median of one `begin` + `commit`, PostgreSQL against files.
#[test]
#[ignore = "a measurement, not a check"]
fn begin_and_commit_time() {
    const ROUNDS: usize = 200;
    fn median(store: &dyn Store) -> std::time::Duration {
        conformance::put(store, "alice", &sample_record(0));
        let mut times: Vec<_> = (0..ROUNDS as u64)
            .map(|step| {
                let started = Instant::now();
                let transaction = store.begin("alice").unwrap();
                transaction.commit(Some(&sample_record(step))).unwrap();
                started.elapsed()
            })
            .collect();
        times.sort();
        times[ROUNDS / 2]
    }
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = crate::store::FileStore::open(&dir.path().join("state")).unwrap();
    let on_postgres = median(&harness.store);
    let on_files = median(&files);
    println!(
        "begin+commit, median of {ROUNDS}: PostgreSQL {on_postgres:?}, files {on_files:?}, \
         ratio {:.2}",
        on_postgres.as_secs_f64() / on_files.as_secs_f64()
    );
}

#[test]
fn a_dump_of_the_rows_holds_no_secret_in_clear() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    let record = sample_record(3);
    conformance::put(&harness.store, "alice", &record);
    let secret = record.enrollment.unwrap().totp.secret;
    let row = harness
        .admin()
        .query_one(
            "SELECT convert_from(record, 'UTF8'), sealed_secret, record_encoding FROM users",
            &[],
        )
        .unwrap();
    let (text, sealed, encoding): (String, String, i16) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(encoding, 2);
    for column in [&text, &sealed] {
        assert!(!column.contains(secret.to_base32().as_str()), "{column}");
        assert!(
            !column.contains(&hex::encode(secret.as_bytes())),
            "{column}"
        );
    }
    assert_eq!(
        sealing_key_id(&sealed),
        Some(test_keys(7).sealing_key().key_id())
    );
}

#[test]
fn a_host_with_another_fleet_key_serves_no_fleet_user() {
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    conformance::put(&harness.store, "alice", &sample_record(3));
    let refused = PostgresStore::open(
        harness.config.clone(),
        test_keys(8),
        Arc::new(MemoryLog::default()),
    );
    let Err(StoreError::Unavailable { reason }) = refused else {
        panic!("a wrong key was accepted: {refused:?}");
    };
    assert!(reason.contains("fleet key"), "{reason}");
    // Started anyway, as the daemon does: every call refused, and one log line for all.
    let log = Arc::new(MemoryLog::default());
    let config = harness.config.clone();
    let started = PostgresStore::start(
        Box::new(move || config.connect(NoTls)),
        test_keys(8),
        log.clone(),
    );
    for _ in 0..3 {
        assert!(matches!(
            started.load("alice"),
            Err(StoreError::Unavailable { .. })
        ));
        assert!(started.begin("alice").is_err());
    }
    let lines = log.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("fleet-unavailable") && lines[0].contains("fleet key"));
    // A key file with the database's key second still opens every row.
    let rotated = FleetKeys::new(
        crate::seal::FleetKey::from_bytes(&[8; 32]),
        vec![crate::seal::FleetKey::from_bytes(&[7; 32])],
    );
    let store = PostgresStore::open(
        harness.config.clone(),
        rotated,
        Arc::new(MemoryLog::default()),
    )
    .unwrap();
    assert_eq!(store.load("alice").unwrap(), Some(sample_record(3)));
}

#[test]
fn the_breaker_refuses_at_once_while_down_and_closes_when_the_database_answers() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let Some(harness) = PostgresHarness::new() else {
        return;
    };
    conformance::put(&harness.store, "alice", &sample_record(3));
    let down = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let (config, is_down, counted) = (harness.config.clone(), down.clone(), attempts.clone());
    let log = Arc::new(MemoryLog::default());
    let store = PostgresStore::start(
        Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            if is_down.load(Ordering::SeqCst) {
                let mut nowhere = postgres::Config::new();
                nowhere.host("127.0.0.1").port(1).user("nobody");
                return nowhere.connect(NoTls);
            }
            config.connect(NoTls)
        }),
        test_keys(7),
        log.clone(),
    );
    assert_eq!(store.load("alice").unwrap(), Some(sample_record(3)));
    // The outage: new connections refused, the pooled ones killed.
    down.store(true, Ordering::SeqCst);
    store.database.idle().clear();
    let started = Instant::now();
    assert!(matches!(
        store.load("alice"),
        Err(StoreError::Unavailable { .. })
    ));
    let tried = attempts.load(Ordering::SeqCst);
    for _ in 0..20 {
        assert!(matches!(
            store.begin("alice").map(|_| ()),
            Err(StoreError::Unavailable { .. })
        ));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Only the probe tries the database, not each of the 20 calls.
    assert!(attempts.load(Ordering::SeqCst) <= tried + 2);
    down.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + PROBE_INTERVAL * 10;
    while store.load("alice").is_err() {
        assert!(Instant::now() < deadline, "no recovery");
        std::thread::sleep(PROBE_INTERVAL / 5);
    }
    let lines = log.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("fleet-unavailable") && lines[1].contains("fleet-available"));
}
