//! Every change is one transaction: failures are committed, side effects come after the
//! commit, conflicts are run again, and a store that is down denies.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::programs::Notifier;
use crate::store::Transaction;

/// A store that counts its open transactions, and can refuse commits.
#[derive(Default)]
struct Watched {
    inner: MemoryStore,
    open: AtomicUsize,
    /// Commits still to refuse with `Conflict`.
    conflicts: AtomicUsize,
    unavailable: AtomicBool,
    /// `begin` reports `Conflict`, as a shared backend's lock timeout does.
    busy_at_begin: AtomicBool,
    begins: AtomicUsize,
    /// Runs once, right after the next commit (the user's lock released).
    after_commit: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

struct WatchedTransaction<'a> {
    inner: Option<Box<dyn Transaction + 'a>>,
    store: &'a Watched,
}

impl Store for Watched {
    fn load(&self, user: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner.load(user)
    }

    fn begin(&self, user: &str) -> Result<Box<dyn Transaction + '_>, StoreError> {
        if self.busy_at_begin.load(Ordering::SeqCst) {
            self.begins.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Conflict);
        }
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                reason: "down for the test".into(),
            });
        }
        let inner = self.inner.begin(user)?;
        self.open.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(WatchedTransaction {
            inner: Some(inner),
            store: self,
        }))
    }

    fn users(&self) -> Result<Vec<String>, StoreError> {
        self.inner.users()
    }
}

impl Drop for WatchedTransaction<'_> {
    fn drop(&mut self) {
        self.store.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Transaction for WatchedTransaction<'_> {
    fn current(&self) -> Result<&Option<UserRecord>, &StoreError> {
        match &self.inner {
            Some(inner) => inner.current(),
            None => Ok(&None),
        }
    }

    fn commit(self: Box<Self>, record: Option<&UserRecord>) -> Result<(), StoreError> {
        let refuse = self
            .store
            .conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            return Err(StoreError::Conflict);
        }
        let mut this = self;
        // Committed first; the count drops when `this` goes, after.
        let committed = match this.inner.take() {
            Some(inner) => inner.commit(record),
            None => Ok(()),
        };
        let hook = lock(&this.store.after_commit).take();
        if let Some(hook) = hook {
            hook();
        }
        committed
    }
}

/// Logs and notifications, each noting whether a transaction was open when it came.
struct Witness {
    store: Arc<Watched>,
    seen: AtomicUsize,
    under_lock: Mutex<Vec<String>>,
}

impl Witness {
    fn saw(&self, what: &str) {
        self.seen.fetch_add(1, Ordering::SeqCst);
        if self.store.open.load(Ordering::SeqCst) > 0 {
            lock(&self.under_lock).push(what.to_owned());
        }
    }
}

impl EventLog for Witness {
    fn info(&self, line: &str) {
        self.saw(line);
    }

    fn warning(&self, line: &str) {
        self.saw(line);
    }
}

impl Notifier for Witness {
    fn notify(&self, event: crate::programs::Event) {
        self.saw(event.name);
    }
}

fn watched_service(config: &str) -> (Arc<Watched>, Arc<Witness>, Service) {
    let store = Arc::new(Watched::default());
    let witness = Arc::new(Witness {
        store: store.clone(),
        seen: AtomicUsize::new(0),
        under_lock: Mutex::new(Vec::new()),
    });
    let accounts = FixedAccounts::default()
        .with("alice", 1001, &["alice", "staff"])
        .with("bob", 1002, &["bob", "wheel"]);
    let service = Service::new(
        Config::parse(config, "test").unwrap(),
        store.clone(),
        Arc::new(accounts),
        witness.clone(),
        "bastion".into(),
    )
    .with_notifier(witness.clone());
    (store, witness, service)
}

fn bus_identity(uid: u32, connection: &str) -> crate::identity::CallerIdentity {
    crate::identity::CallerIdentity {
        uid,
        peer: crate::identity::Peer::Bus(connection.into()),
    }
}

fn enroll_in(service: &Service, user: &str, uid: u32, now: u64) -> (Secret, Vec<String>) {
    let caller = service.caller(&bus_identity(uid, ":1.50")).unwrap();
    let offer = service
        .begin_enrollment(&caller, user, false, "", now)
        .unwrap();
    let secret = Secret::from_base32(&offer.secret_base32).unwrap();
    let codes = service
        .confirm_enrollment(&caller, user, &code(&secret, now), now)
        .unwrap();
    (secret, codes)
}

#[test]
fn logs_and_notifications_come_after_the_commit() {
    let (_store, witness, service) = watched_service(POLICY);
    let (secret, backup) = enroll_in(&service, "alice", 1001, T0);
    let alice = service.caller(&bus_identity(1001, ":1.51")).unwrap();
    let at = |n: u64| T0 + 30 * n;
    let login = |code: &str, now| service.verify(&root(), "alice", code, &ctx(), now).unwrap();
    assert_eq!(
        login(&code(&secret, at(1)), at(1)).outcome,
        VerifyOutcome::Accepted
    );
    assert_eq!(login(&backup[0], at(2)).outcome, VerifyOutcome::Accepted);
    let wrong = service.regenerate_backup_codes(&alice, "alice", "000000", at(3));
    assert!(matches!(wrong, Err(Error::WrongCode(_))), "{wrong:?}");
    let right = service.regenerate_backup_codes(&alice, "alice", &code(&secret, at(4)), at(4));
    assert!(right.is_ok(), "{right:?}");
    for n in 0..40 {
        login("000000", at(5) + 300 * n);
    }
    assert!(service.status("alice", at(200)).unwrap().locked);
    service.unlock_user(&root(), "alice").unwrap();
    service
        .issue_temporary_code(&root(), "bob", 600, at(300))
        .unwrap();
    service.reset_user(&root(), "alice", at(301)).unwrap();
    service.login_plan(&root(), "bob", &ctx(), at(302)).unwrap();
    assert!(witness.seen.load(Ordering::SeqCst) > 20);
    assert_eq!(*lock(&witness.under_lock), Vec::<String>::new());
}

#[test]
fn the_delivery_program_runs_with_no_lock_held() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let release = dir.path().join("release");
    let sender = dir.path().join("sender");
    std::fs::write(
        &sender,
        format!(
            "#!/bin/sh\nread code\ntouch {}\nwhile [ ! -e {} ]; do sleep 0.02; done\n",
            started.display(),
            release.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&sender, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (_store, _witness, service) =
        watched_service(&format!("[delivery]\ncommand = \"{}\"\n", sender.display()));
    enroll_in(&service, "alice", 1001, T0);
    service.set_delivery(&root(), "alice", true).unwrap();
    std::thread::scope(|scope| {
        let sending = scope.spawn(|| service.send_code(&root(), "alice", &ctx(), T0 + 1));
        while !started.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        // A login of the same user while the program runs.
        let (done, finished) = mpsc::channel();
        let service = &service;
        scope.spawn(move || {
            let _ = done.send(service.verify(&root(), "alice", "000000", &ctx(), T0 + 2));
        });
        let login = finished.recv_timeout(Duration::from_secs(5));
        std::fs::write(&release, "").unwrap();
        assert!(login.is_ok(), "the login waited for the delivery program");
        assert_eq!(
            sending.join().unwrap().unwrap(),
            crate::rules::SENT_CODE_SECONDS
        );
    });
}

#[test]
fn a_conflict_runs_the_change_again_and_spends_the_code_once() {
    let (store, _witness, service) = watched_service(POLICY);
    let (secret, _) = enroll_in(&service, "alice", 1001, T0);
    store.conflicts.store(2, Ordering::SeqCst);
    let code = code(&secret, T0 + 30);
    let first = service
        .verify(&root(), "alice", &code, &ctx(), T0 + 30)
        .unwrap();
    assert_eq!(first.outcome, VerifyOutcome::Accepted);
    let again = service
        .verify(&root(), "alice", &code, &ctx(), T0 + 31)
        .unwrap();
    assert_eq!(again.outcome, VerifyOutcome::Rejected);
    assert!(again.code_replayed);
    // A backend that never settles: refused, and nothing half-done stays.
    store.conflicts.store(usize::MAX, Ordering::SeqCst);
    let before = store.load("alice").unwrap();
    let busy = service.verify(&root(), "alice", "000000", &ctx(), T0 + 60);
    assert!(matches!(busy, Err(Error::Busy(_))), "{busy:?}");
    assert_eq!(store.load("alice").unwrap(), before);
}

#[test]
fn a_store_that_is_down_denies() {
    let (store, witness, service) = watched_service(POLICY);
    let (secret, _) = enroll_in(&service, "alice", 1001, T0);
    store.unavailable.store(true, Ordering::SeqCst);
    let login = service.verify(&root(), "alice", &code(&secret, T0 + 30), &ctx(), T0 + 30);
    assert!(matches!(login, Err(Error::Internal(_))), "{login:?}");
    let plan = service.login_plan(&root(), "alice", &ctx(), T0 + 30);
    assert!(matches!(plan, Err(Error::Internal(_))), "{plan:?}");
    assert!(witness.seen.load(Ordering::SeqCst) > 0);
}

#[test]
fn a_wrong_code_for_a_change_is_counted_though_the_change_is_refused() {
    let (store, _witness, service) = watched_service(POLICY);
    enroll_in(&service, "alice", 1001, T0);
    let alice = service.caller(&bus_identity(1001, ":1.51")).unwrap();
    for n in 1..=3u32 {
        let refused = service.disable(&alice, "alice", "000000", T0 + 100 * u64::from(n));
        assert!(refused.is_err());
        let failures = store
            .load("alice")
            .unwrap()
            .unwrap()
            .attempts
            .failures_since_success;
        assert_eq!(failures, n);
    }
    assert!(store.load("alice").unwrap().unwrap().is_enrolled());
}

#[test]
fn an_unreadable_record_is_logged_after_the_lock_is_released() {
    let (store, witness, service) = watched_service(POLICY);
    enroll_in(&service, "alice", 1001, T0);
    lock(&store.inner.broken).push("alice".into());
    let login = service.verify(&root(), "alice", "000000", &ctx(), T0 + 30);
    assert!(matches!(login, Err(Error::Internal(_))), "{login:?}");
    let plan = service.login_plan(&root(), "alice", &ctx(), T0 + 30);
    assert!(matches!(plan, Err(Error::Internal(_))), "{plan:?}");
    assert!(witness.seen.load(Ordering::SeqCst) > 0);
    assert_eq!(*lock(&witness.under_lock), Vec::<String>::new());
}

#[test]
fn a_reset_and_an_import_after_a_checked_replace_drop_its_pending_enrollment() {
    let (store, _witness, service) = watched_service(POLICY);
    let service = Arc::new(service);
    let (secret, _) = enroll_in(&service, "alice", 1001, T0);
    let alice = service.caller(&bus_identity(1001, ":1.51")).unwrap();
    let imported_secret = "KRUGS4ZANFZSAYJAORSXG5BAONSWG4TFOQQQ";
    let admin = service.clone();
    *lock(&store.after_commit) = Some(Box::new(move || {
        // Between the replace's check (its code spent and committed) and its return.
        admin.reset_user(&root(), "alice", T0 + 31).unwrap();
        let imported = twofactor_proto::ImportedEnrollment {
            secret_base32: imported_secret.into(),
            algorithm: twofactor_config::Algorithm::Sha1.into(),
            digits: 6,
            period: 30,
            window: 0,
            last_step: 0,
            scratch_codes: Vec::new(),
            source: "google-authenticator".into(),
            last_code: String::new(),
        };
        admin
            .import_enrollment(&root(), "alice", &imported, T0 + 31)
            .unwrap();
    }));
    let offer = service
        .begin_enrollment(&alice, "alice", true, &code(&secret, T0 + 30), T0 + 30)
        .unwrap();
    let new_secret = Secret::from_base32(&offer.secret_base32).unwrap();
    let confirmed =
        service.confirm_enrollment(&alice, "alice", &code(&new_secret, T0 + 32), T0 + 32);
    assert!(
        matches!(confirmed, Err(Error::NoPendingEnrollment(_))),
        "{confirmed:?}"
    );
    let stored = store.load("alice").unwrap().unwrap().enrollment.unwrap();
    assert_eq!(
        stored.totp.secret,
        Secret::from_base32(imported_secret).unwrap(),
        "the imported enrollment stands"
    );
}

#[test]
fn a_lock_not_had_in_time_is_busy_at_once() {
    let (store, _witness, service) = watched_service(POLICY);
    let (secret, _) = enroll_in(&service, "alice", 1001, T0);
    store.busy_at_begin.store(true, Ordering::SeqCst);
    let login = service.verify(&root(), "alice", &code(&secret, T0 + 30), &ctx(), T0 + 30);
    assert!(matches!(login, Err(Error::Busy(_))), "{login:?}");
    assert_eq!(store.begins.load(Ordering::SeqCst), 1, "no second wait");
}
