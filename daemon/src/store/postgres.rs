//! Records in PostgreSQL, shared by every daemon of a fleet: one row per user, locked with
//! `SELECT … FOR UPDATE` for the length of a transaction, in the same text format as the
//! files (through the seam in `row`). Rows are never deleted: a removal marks the row.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls};

use super::{Store, StoreError, Transaction};
use crate::log::EventLog;
use crate::record::UserRecord;
use crate::seal::FleetKeys;

mod health;
mod row;
pub mod schema;

pub use health::{CLOCK_SKEW_LOGGED, Health, PROBE_INTERVAL};
pub use row::{StoredRecord, enrollment_id, from_row, sealing_key_id, to_row};
pub use schema::{SchemaError, check_schema, upgrade_schema};

/// How long a transaction waits for another host's hold on the same user: well under the
/// module's deadline, so a stuck holder costs one busy answer, not a hung login.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(2);
/// Any one statement; above the lock timeout, so a lock wait ends as a conflict.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_millis(2500);
/// Per host tried, unless the URL sets its own.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Unacknowledged data on a connection: a host gone from the network, unless the URL says.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(3);
/// A daemon that stops (crash, SIGSTOP) inside a transaction releases its users after this.
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for the next transaction.
const IDLE_CONNECTIONS: usize = 8;

pub type Connector = dyn Fn() -> Result<Client, postgres::Error> + Send + Sync;

/// The store on one database (a multi-host URL follows the writable one).
pub struct PostgresStore {
    database: Arc<Database>,
}

/// What the store and its probe thread share.
struct Database {
    connect: Box<Connector>,
    idle: Mutex<Vec<Client>>,
    keys: FleetKeys,
    health: Health,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PostgresStore")
            .field("up", &self.database.health.is_up())
            .finish_non_exhaustive()
    }
}

/// One connection's facts, for an administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseReport {
    pub tls: bool,
    pub tls_version: Option<String>,
    pub schema_version: u32,
    pub key_id: Option<String>,
    pub role: String,
    pub read_only: bool,
}

/// The store's error for a database error: what tells "try again" from "down".
pub fn database_error(error: &postgres::Error) -> StoreError {
    let Some(code) = error.code() else {
        // No SQLSTATE: refused, closed, timed out, or the protocol broke.
        return StoreError::Unavailable {
            reason: error.to_string(),
        };
    };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
    {
        return StoreError::Conflict;
    }
    // Everything else leaves the store unusable for now: too slow (57014), shutting down,
    // too many connections, a missing grant. The SQLSTATE says which.
    let message = error
        .as_db_error()
        .map_or("", |db_error| db_error.message());
    StoreError::Unavailable {
        reason: format!("{message} (SQLSTATE {})", code.code()),
    }
}

/// The connection is gone (the server restarted or ended it): a new one may work.
fn connection_lost(error: &postgres::Error) -> bool {
    match error.code() {
        None => true,
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
        }
    }
}

fn db(error: postgres::Error) -> StoreError {
    database_error(&error)
}

fn valid(user: &str) -> Result<(), StoreError> {
    if twofactor_proto::is_valid_username(user) {
        Ok(())
    } else {
        Err(StoreError::InvalidName)
    }
}

impl PostgresStore {
    /// The store at `config`, without TLS (`connect::connector` builds the connector the
    /// daemon uses). Fails if the database is down, its schema is not one this daemon
    /// supports, or `keys` is not the database's fleet key.
    pub fn open(
        mut config: postgres::Config,
        keys: FleetKeys,
        log: Arc<dyn EventLog>,
    ) -> Result<PostgresStore, StoreError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        PostgresStore::open_with(Box::new(move || config.connect(NoTls)), keys, log)
    }

    /// [`PostgresStore::start`], failing at once if the first connection fails: for the
    /// storage commands and `--check-config --connect`, which report and exit.
    pub fn open_with(
        connect: Box<Connector>,
        keys: FleetKeys,
        log: Arc<dyn EventLog>,
    ) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore::unconnected(connect, keys, log);
        let client = store.database.connect()?;
        store.database.give_back(client);
        Ok(store)
    }

    /// The daemon's store: never fails. If the database cannot be used now, the breaker
    /// opens (logged once) and a probe connects as soon as it can.
    pub fn start(
        connect: Box<Connector>,
        keys: FleetKeys,
        log: Arc<dyn EventLog>,
    ) -> PostgresStore {
        let store = PostgresStore::unconnected(connect, keys, log);
        match store.database.connect() {
            Ok(client) => store.database.give_back(client),
            // Logged once by the breaker, which keeps probing.
            Err(error) => drop(store.observe(Err::<(), _>(error))),
        }
        store
    }

    fn unconnected(
        connect: Box<Connector>,
        keys: FleetKeys,
        log: Arc<dyn EventLog>,
    ) -> PostgresStore {
        PostgresStore {
            database: Arc::new(Database {
                connect,
                idle: Mutex::new(Vec::new()),
                keys,
                health: Health::new(log),
            }),
        }
    }

    /// What `--check-config --connect` reports: a fresh connection's TLS, schema and key.
    pub fn report(&self) -> Result<DatabaseReport, StoreError> {
        let mut client = self.database.connect()?;
        let schema_version =
            check_schema(&mut client).map_err(|error| StoreError::Unavailable {
                reason: error.to_string(),
            })?;
        let row = client
            .query_one(
                "SELECT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()),
                        (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()),
                        (SELECT key_id FROM fleet_key),
                        current_user::text, pg_is_in_recovery()",
                &[],
            )
            .map_err(db)?;
        Ok(DatabaseReport {
            tls: row.get::<_, Option<bool>>(0).unwrap_or(false),
            tls_version: row.get(1),
            schema_version,
            key_id: row.get(2),
            role: row.get(3),
            read_only: row.get(4),
        })
    }

    /// Whether the database answered last time, and why not if it did not.
    pub fn health(&self) -> Result<(), StoreError> {
        self.database.health.check()
    }

    fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        Database::observe(&self.database, result)
    }

    /// Run `first` on a connection: an idle one if there is one, and if that one turns out
    /// dead (the server restarted since), once more on a new one. `first` must be the
    /// connection's first statement, so running it again is safe.
    fn with_client<T>(
        &self,
        mut first: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<(Client, T), StoreError> {
        self.database.health.check()?;
        let pooled = self.database.idle().pop();
        if let Some(mut client) = pooled {
            match first(&mut client) {
                Ok(value) => return Ok((client, value)),
                Err(error) if !connection_lost(&error) => return Err(db(error)),
                Err(_) => {}
            }
        }
        let mut client = self.database.connect()?;
        let value = first(&mut client).map_err(db)?;
        Ok((client, value))
    }

    fn read(
        &self,
        client: &mut Client,
        user: &str,
        query: &str,
    ) -> Result<Option<StoredRecord>, postgres::Error> {
        let Some(row) = client.query_opt(query, &[&user])? else {
            return Ok(None);
        };
        self.database.health.observe_clock(row.get(3));
        let encoding: Option<i16> = row.get(0);
        let bytes: Option<Vec<u8>> = row.get(1);
        let sealed_secret: Option<String> = row.get(2);
        Ok(encoding.zip(bytes).map(|(encoding, bytes)| StoredRecord {
            encoding,
            bytes: zeroize::Zeroizing::new(bytes),
            sealed_secret,
        }))
    }

    fn decode(
        &self,
        user: &str,
        stored: Option<StoredRecord>,
    ) -> Result<Option<UserRecord>, StoreError> {
        stored
            .map(|stored| from_row(user, &stored, &self.database.keys))
            .transpose()
    }

    /// [`Store::begin`], with a transaction that does not borrow the store: for a caller
    /// that holds the store only for a moment (a store swapped at SIGHUP).
    pub fn begin_owned(&self, user: &str) -> Result<Box<dyn Transaction>, StoreError> {
        let transaction = self.begin_transaction(user);
        self.observe(transaction)
            .map(|transaction| Box::new(transaction) as Box<dyn Transaction>)
    }

    fn begin_transaction(&self, user: &str) -> Result<PostgresTransaction, StoreError> {
        valid(user)?;
        let (client, ()) = self.with_client(|client| {
            client.batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = {}",
                LOCK_TIMEOUT.as_millis()
            ))
        })?;
        // Rolled back by its drop if anything below fails.
        let mut transaction = PostgresTransaction {
            database: self.database.clone(),
            client: Some(client),
            user: user.to_owned(),
            current: Ok(None),
        };
        let client = transaction.client()?;
        let mut stored = self.read(client, user, SELECT_FOR_UPDATE);
        if matches!(stored, Ok(None)) {
            client.execute(INSERT_PLACEHOLDER, &[&user]).map_err(db)?;
            stored = self.read(client, user, SELECT_FOR_UPDATE);
        }
        transaction.current = self.decode(user, stored.map_err(db)?);
        Ok(transaction)
    }
}

impl Database {
    /// Feed `result` to the breaker, starting a probe if it just opened.
    fn observe<T>(self: &Arc<Self>, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if self.health.observe(&result) {
            let database = self.clone();
            let spawned = std::thread::Builder::new()
                .name("twofactord-probe".into())
                .spawn(move || database.probe_until_up());
            if spawned.is_err() {
                // No thread: the next operation tries the database itself.
                self.health.recover();
            }
        }
        result
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Client>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new connection, checked: its timeouts set, the schema one this daemon supports,
    /// the fleet key the database's.
    fn connect(&self) -> Result<Client, StoreError> {
        let mut client = (self.connect)().map_err(db)?;
        client
            .batch_execute(&format!(
                "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}",
                STATEMENT_TIMEOUT.as_millis(),
                IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
            ))
            .map_err(db)?;
        check_schema(&mut client).map_err(|error| match error {
            SchemaError::Database(error) => db(error),
            other => StoreError::Unavailable {
                reason: other.to_string(),
            },
        })?;
        let database_seconds = check_fleet_key(&mut client, &self.keys)?;
        self.health.observe_clock(database_seconds);
        Ok(client)
    }

    fn give_back(&self, client: Client) {
        let mut idle = self.idle();
        if idle.len() < IDLE_CONNECTIONS && !client.is_closed() {
            idle.push(client);
        }
    }

    fn probe_until_up(&self) {
        loop {
            std::thread::sleep(PROBE_INTERVAL);
            if let Ok(client) = self.connect() {
                self.give_back(client);
                self.health.recover();
                return;
            }
        }
    }
}

/// Check that `keys` holds the key the database's rows are sealed with, recording this
/// host's sealing key if the database has none yet (a new fleet). Returns the database's
/// clock (Unix seconds).
pub fn check_fleet_key(client: &mut Client, keys: &FleetKeys) -> Result<f64, StoreError> {
    const READ: &str = "SELECT pg_is_in_recovery(), extract(epoch FROM clock_timestamp())::float8,
                               (SELECT key_id FROM fleet_key), (SELECT verifier FROM fleet_key)";
    let mut row = client.query_one(READ, &[]).map_err(db)?;
    if row.get::<_, bool>(0) {
        // Never verify against a replica: its replay watermark may be behind.
        return Err(StoreError::Unavailable {
            reason: "the database is a read-only standby; the url must name the primary \
                     (target_session_attrs=read-write)"
                .into(),
        });
    }
    if row.get::<_, Option<String>>(2).is_none() {
        let sealing = keys.sealing_key();
        client
            .execute(
                "INSERT INTO fleet_key (key_id, verifier) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&sealing.key_id().to_string(), &sealing.verifier()],
            )
            .map_err(db)?;
        row = client.query_one(READ, &[]).map_err(db)?;
    }
    let key_id: Option<String> = row.get(2);
    let verifier: Option<String> = row.get(3);
    keys.check_verifier(&key_id.unwrap_or_default(), &verifier.unwrap_or_default())
        .map_err(|mismatch| StoreError::Unavailable {
            reason: mismatch.to_string(),
        })?;
    Ok(row.get(1))
}

/// The row, and the database's clock, read in the same round trip.
const SELECT: &str = "SELECT record_encoding, record, sealed_secret,
     extract(epoch FROM clock_timestamp())::float8 FROM users WHERE name = $1";
const SELECT_FOR_UPDATE: &str = "SELECT record_encoding, record, sealed_secret,
     extract(epoch FROM clock_timestamp())::float8 FROM users WHERE name = $1 FOR UPDATE";
/// A user without a row has nothing to lock: a placeholder row (no record) gives two
/// transactions on a new user one row to wait on. Rolled back with its transaction.
const INSERT_PLACEHOLDER: &str = "INSERT INTO users (name) VALUES ($1) ON CONFLICT DO NOTHING";

impl Store for PostgresStore {
    fn load(&self, user: &str) -> Result<Option<UserRecord>, StoreError> {
        valid(user)?;
        let loaded = self
            .with_client(|client| self.read(client, user, SELECT))
            .map(|(client, stored)| {
                self.database.give_back(client);
                stored
            });
        self.observe(loaded.and_then(|stored| self.decode(user, stored)))
    }

    fn begin(&self, user: &str) -> Result<Box<dyn Transaction + '_>, StoreError> {
        self.begin_owned(user)
    }

    fn users(&self) -> Result<Vec<String>, StoreError> {
        let listed = self.with_client(|client| {
            client.query("SELECT name FROM users WHERE record IS NOT NULL", &[])
        });
        let (client, rows) = self.observe(listed)?;
        self.database.give_back(client);
        let mut users: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        users.sort();
        Ok(users)
    }

    fn clock_offset(&self) -> i64 {
        self.database.health.clock_offset()
    }
}

struct PostgresTransaction {
    database: Arc<Database>,
    /// `None` once committed, or after a failure left the connection unusable.
    client: Option<Client>,
    user: String,
    current: Result<Option<UserRecord>, StoreError>,
}

impl PostgresTransaction {
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        self.client.as_mut().ok_or_else(|| StoreError::Unavailable {
            reason: "the transaction's connection was lost".into(),
        })
    }

    fn write(&mut self, record: Option<&UserRecord>) -> Result<(), StoreError> {
        let stored = record
            .map(|record| to_row(&self.user, record, &self.database.keys))
            .transpose()?;
        let (encoding, bytes, sealed_secret) = match &stored {
            Some(stored) => (
                Some(stored.encoding),
                Some(stored.bytes.as_slice()),
                stored.sealed_secret.as_deref(),
            ),
            None => (None, None, None),
        };
        let user = self.user.clone();
        let client = self.client()?;
        client
            .execute(
                "UPDATE users SET record_encoding = $2, record = $3, sealed_secret = $4,
                     updated_at = now(),
                     removed_at = CASE WHEN $3::bytea IS NULL THEN now() END
                 WHERE name = $1",
                &[&user, &encoding, &bytes, &sealed_secret],
            )
            .map_err(db)?;
        client.batch_execute("COMMIT").map_err(db)
    }
}

impl Transaction for PostgresTransaction {
    fn current(&self) -> Result<&Option<UserRecord>, &StoreError> {
        self.current.as_ref()
    }

    fn commit(mut self: Box<Self>, record: Option<&UserRecord>) -> Result<(), StoreError> {
        let written = self.write(record);
        if written.is_ok()
            && let Some(client) = self.client.take()
        {
            self.database.give_back(client);
        }
        // On failure the drop rolls back whatever is left, or discards the connection.
        Database::observe(&self.database, written)
    }
}

impl Drop for PostgresTransaction {
    fn drop(&mut self) {
        if let Some(mut client) = self.client.take()
            && client.batch_execute("ROLLBACK").is_ok()
        {
            self.database.give_back(client);
        }
    }
}

#[cfg(test)]
mod tests;
