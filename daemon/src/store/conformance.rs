//! The contract of [`Store`], as one suite every backend runs (`store_conformance!`). A new
//! backend is done when it passes all of it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::{Store, StoreError};
use crate::record::UserRecord;

/// A fresh, empty backend, and a way to make one record unreadable as a fault would.
pub trait Harness: Sync {
    fn store(&self) -> &dyn Store;
    /// Leave `user` with a record that exists but cannot be read.
    fn make_unreadable(&self, user: &str);
    /// A second store on the same backend, as a second daemon would open it; `None` for a
    /// backend one daemon owns.
    fn second_daemon(&self) -> Option<Box<dyn Store + '_>> {
        None
    }
}

/// Long enough for a thread that is not blocked to finish; a blocked one never does.
const PATIENCE: Duration = Duration::from_secs(20);

fn record(grace_started: u64) -> UserRecord {
    UserRecord {
        grace_started: Some(grace_started),
        ..UserRecord::new()
    }
}

/// Store `record` for `user` in one transaction.
pub(crate) fn put(store: &dyn Store, user: &str, record: &UserRecord) {
    store.begin(user).unwrap().commit(Some(record)).unwrap();
}

pub fn an_absent_user_is_not_enrolled(harness: &dyn Harness) {
    let store = harness.store();
    assert_eq!(store.load("alice").unwrap(), None);
    assert_eq!(store.begin("alice").unwrap().current().unwrap(), &None);
    assert_eq!(store.users().unwrap(), Vec::<String>::new());
}

pub fn a_commit_is_what_later_reads_see(harness: &dyn Harness) {
    let store = harness.store();
    put(store, "alice", &record(1));
    assert_eq!(store.load("alice").unwrap(), Some(record(1)));
    let transaction = store.begin("alice").unwrap();
    assert_eq!(transaction.current().unwrap(), &Some(record(1)));
    transaction.commit(Some(&record(2))).unwrap();
    assert_eq!(store.load("alice").unwrap(), Some(record(2)));
    put(store, "bob", &record(3));
    assert_eq!(store.users().unwrap(), ["alice", "bob"]);
}

pub fn a_dropped_transaction_changes_nothing(harness: &dyn Harness) {
    let store = harness.store();
    put(store, "alice", &record(1));
    let transaction = store.begin("alice").unwrap();
    drop(transaction);
    assert_eq!(store.load("alice").unwrap(), Some(record(1)));
    assert_eq!(store.begin("bob").unwrap().current().unwrap(), &None);
    assert_eq!(store.users().unwrap(), ["alice"]);
}

pub fn committing_none_removes_the_record(harness: &dyn Harness) {
    let store = harness.store();
    put(store, "alice", &record(1));
    store.begin("alice").unwrap().commit(None).unwrap();
    assert_eq!(store.load("alice").unwrap(), None);
    assert_eq!(store.users().unwrap(), Vec::<String>::new());
    // Removing what is not there is not an error.
    store.begin("alice").unwrap().commit(None).unwrap();
    put(store, "alice", &record(2));
    assert_eq!(store.load("alice").unwrap(), Some(record(2)));
}

pub fn invalid_names_are_refused(harness: &dyn Harness) {
    let store = harness.store();
    for name in ["../evil", "a/b", "", ".hidden", "-x"] {
        assert!(
            matches!(store.load(name), Err(StoreError::InvalidName)),
            "{name:?}"
        );
        assert!(
            matches!(store.begin(name), Err(StoreError::InvalidName)),
            "{name:?}"
        );
    }
}

pub fn an_unreadable_record_is_an_error_never_absent(harness: &dyn Harness) {
    let store = harness.store();
    put(store, "carol", &record(1));
    harness.make_unreadable("carol");
    assert!(store.load("carol").is_err());
    let transaction = store.begin("carol").unwrap();
    assert!(transaction.current().is_err());
    assert_eq!(store.users().unwrap(), ["carol"]);
    // What an admin reset does: the unreadable record is replaced.
    transaction.commit(Some(&record(2))).unwrap();
    assert_eq!(store.load("carol").unwrap(), Some(record(2)));
}

/// Every field comes back as committed: a backend that keeps fields in columns must lose
/// none (a dropped `last_step` replays codes, dropped `attempts` undo a lockout).
pub fn every_field_survives_a_commit(harness: &dyn Harness) {
    use crate::record::{LastUse, OneTimeCode, SkewMatch, SourceAttempts};
    let store = harness.store();
    let code = |expires_at| OneTimeCode {
        hash: crate::backup::BackupCodeHashes {
            digits: 6,
            salt: "11".repeat(16),
            hashes: vec!["cd".repeat(32)],
        },
        expires_at,
    };
    let mut full = super::tests::sample_record(42);
    full.attempts.consecutive_failures = 3;
    full.attempts.last_failure = 90;
    full.attempts.locked_until = 100;
    full.attempts.last_lock = 80;
    full.attempts.locks = 2;
    full.attempts.sources.push(SourceAttempts {
        source: "remote:192.0.2.7".into(),
        failures: 3,
        last_failure: 90,
        last_skew: Some(SkewMatch {
            seconds: -60,
            step: 7,
        }),
    });
    full.delivery_enabled = true;
    full.sends = vec![70, 75];
    full.no_grace = true;
    full.last_success = Some(LastUse {
        time: 60,
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
    });
    full.temporary_code = Some(code(200));
    full.sent_code = Some(code(300));
    full.replace_without_code_until = 400;
    if let Some(enrollment) = full.enrollment.as_mut() {
        enrollment.totp.window = Some(3);
    }
    put(store, "alice", &full);
    assert_eq!(store.load("alice").unwrap(), Some(full.clone()));
    assert_eq!(
        store.begin("alice").unwrap().current().unwrap(),
        &Some(full)
    );
}

/// Many writers counting on one record, as daemons counting failures do: none is lost.
pub fn concurrent_transactions_lose_no_update(harness: &dyn Harness) {
    const THREADS: u32 = 4;
    const EACH: u32 = 20;
    let store = harness.store();
    put(store, "alice", &UserRecord::new());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..EACH {
                    let transaction = store.begin("alice").unwrap();
                    let mut record = transaction.current().unwrap().clone().unwrap();
                    std::thread::yield_now();
                    record.attempts.failures_since_success += 1;
                    transaction.commit(Some(&record)).unwrap();
                }
            });
        }
    });
    let record = store.load("alice").unwrap().unwrap();
    assert_eq!(record.attempts.failures_since_success, THREADS * EACH);
}

/// Many logins racing to spend one single-use value (a TOTP step, a backup code): one wins.
pub fn a_single_use_value_is_spent_once(harness: &dyn Harness) {
    let store = harness.store();
    put(store, "alice", &UserRecord::new());
    let spent = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let transaction = store.begin("alice").unwrap();
                let mut record = transaction.current().unwrap().clone().unwrap();
                if record.grace_started.is_none() {
                    record.grace_started = Some(1);
                    std::thread::yield_now();
                    transaction.commit(Some(&record)).unwrap();
                    spent.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(spent.load(Ordering::SeqCst), 1);
}

/// Logins racing on a user who has no record yet (an enrollment, a first failure): their
/// transactions serialize too, so exactly one sees no record.
pub fn a_new_user_is_created_once(harness: &dyn Harness) {
    let store = harness.store();
    let created = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let transaction = store.begin("dave").unwrap();
                if transaction.current().unwrap().is_none() {
                    std::thread::sleep(Duration::from_millis(20));
                    transaction.commit(Some(&record(1))).unwrap();
                    created.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(created.load(Ordering::SeqCst), 1);
    assert_eq!(store.users().unwrap(), ["dave"]);
}

/// Two daemons on one shared backend: a transaction through one waits for a transaction
/// through the other, reads what it committed, and a removal shows as absent on both.
pub fn a_second_daemon_waits_for_the_first(harness: &dyn Harness) {
    let Some(second) = harness.second_daemon() else {
        return;
    };
    let (first, second) = (harness.store(), &*second);
    put(first, "alice", &record(1));
    let second_began = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let held = first.begin("alice").unwrap();
        let waiter = scope.spawn(|| {
            let transaction = second.begin("alice").unwrap();
            second_began.store(true, Ordering::SeqCst);
            transaction.current().unwrap().clone()
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !second_began.load(Ordering::SeqCst),
            "both daemons held alice"
        );
        held.commit(Some(&record(2))).unwrap();
        assert_eq!(waiter.join().unwrap(), Some(record(2)));
    });
    second.begin("alice").unwrap().commit(None).unwrap();
    assert_eq!(first.load("alice").unwrap(), None);
    assert_eq!(first.begin("alice").unwrap().current().unwrap(), &None);
    assert_eq!(first.users().unwrap(), Vec::<String>::new());
}

pub fn a_transaction_waits_for_one_on_the_same_user(harness: &dyn Harness) {
    let store = harness.store();
    put(store, "alice", &record(1));
    let second_began = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let first = store.begin("alice").unwrap();
        let waiter = scope.spawn(|| {
            let second = store.begin("alice").unwrap();
            second_began.store(true, Ordering::SeqCst);
            // It reads what the first committed, not what was there when it asked.
            second.current().unwrap().clone()
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(!second_began.load(Ordering::SeqCst), "both held alice");
        first.commit(Some(&record(2))).unwrap();
        assert_eq!(waiter.join().unwrap(), Some(record(2)));
    });
}

pub fn other_users_and_reads_never_wait(harness: &dyn Harness) {
    let store = harness.store();
    put(store, "alice", &record(1));
    std::thread::scope(|scope| {
        let held = store.begin("alice").unwrap();
        let (done, finished) = mpsc::channel();
        scope.spawn(move || {
            put(store, "bob", &record(2));
            let read = store.load("alice").unwrap();
            let _ = done.send(read);
        });
        let read = finished
            .recv_timeout(PATIENCE)
            .expect("bob waited on alice");
        assert_eq!(read, Some(record(1)), "a read sees the last commit");
        drop(held);
    });
    assert_eq!(store.load("bob").unwrap(), Some(record(2)));
}

/// One `#[test]` per check of the contract, for the backend `$harness` makes.
macro_rules! store_conformance {
    // `$harness` is an `Option`: `None` skips every check (a backend not available here).
    (optional $harness:expr) => {
        $crate::store::conformance::store_conformance!(@list $harness);
    };
    ($harness:expr) => {
        $crate::store::conformance::store_conformance!(@list Some($harness));
    };
    (@list $harness:expr) => {
        $crate::store::conformance::store_conformance!(@each $harness;
            an_absent_user_is_not_enrolled,
            a_commit_is_what_later_reads_see,
            a_dropped_transaction_changes_nothing,
            committing_none_removes_the_record,
            invalid_names_are_refused,
            an_unreadable_record_is_an_error_never_absent,
            every_field_survives_a_commit,
            concurrent_transactions_lose_no_update,
            a_single_use_value_is_spent_once,
            a_new_user_is_created_once,
            a_second_daemon_waits_for_the_first,
            a_transaction_waits_for_one_on_the_same_user,
            other_users_and_reads_never_wait,
        );
    };
    (@each $harness:expr; $($check:ident),+ $(,)?) => {
        mod store_contract {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $check() {
                    if let Some(harness) = $harness {
                        $crate::store::conformance::$check(&harness);
                    }
                }
            )+
        }
    };
}

pub(crate) use store_conformance;
