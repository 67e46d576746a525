//! Where each user's record lives, as `[storage]` says: the break-glass users (`local_users`)
//! and every user of a host without a fleet in the local files, everyone else in the fleet's
//! database.
//!
//! A fleet problem never stops the daemon: an unusable key file, password file or CA file,
//! a database that does not answer, a schema it does not support or a fleet key that is not
//! the database's each leave the fleet [`FleetState::Broken`] or its breaker open. That is
//! logged once, every fleet user is refused as unavailable (never "not enrolled"), and the
//! break-glass users go on logging in from the files. A SIGHUP builds the fleet again.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use twofactor_config::StorageConfig;

use crate::log::{EventLog, Line};
use crate::record::UserRecord;
use crate::seal::FleetKeys;
use crate::store::postgres::Connector;
use crate::store::{PostgresStore, Store, StoreError, Transaction};

/// The fleet side of a host, as last configured.
#[derive(Debug)]
pub enum FleetState {
    /// `backend = "files"`: no user is in a fleet.
    None,
    /// The database, behind its breaker.
    Database(PostgresStore),
    /// The configuration cannot reach a database at all until it is fixed: why.
    Broken(String),
}

struct Routing {
    fleet: Arc<FleetState>,
    /// Whose records stay in the files, when there is a fleet.
    local_users: BTreeSet<String>,
    /// The section that built `fleet`: a reload with the same one keeps it.
    built_from: StorageConfig,
}

/// The daemon's store: routes each user to the files or the fleet.
pub struct Stores {
    local: Arc<dyn Store>,
    routing: RwLock<Routing>,
    log: Arc<dyn EventLog>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Stores")
            .field("fleet", &self.fleet())
            .finish_non_exhaustive()
    }
}

/// How the daemon reaches the database: set by [`connector_for`] in production, by tests
/// to reach their own server.
pub type MakeConnector = dyn Fn(&StorageConfig) -> Result<Box<Connector>, String> + Send + Sync;

impl Stores {
    /// The stores `storage` asks for, over the local files `local`. Never fails: a fleet
    /// that cannot be reached is logged and refused per user.
    pub fn new(local: Arc<dyn Store>, storage: &StorageConfig, log: Arc<dyn EventLog>) -> Stores {
        Stores::with_connector(local, storage, log, &connector_for)
    }

    pub fn with_connector(
        local: Arc<dyn Store>,
        storage: &StorageConfig,
        log: Arc<dyn EventLog>,
        make_connector: &MakeConnector,
    ) -> Stores {
        let routing = Routing {
            fleet: Arc::new(build_fleet(storage, &log, make_connector)),
            local_users: storage.local_users.iter().cloned().collect(),
            built_from: storage.clone(),
        };
        Stores {
            local,
            routing: RwLock::new(routing),
            log,
        }
    }

    fn routing(&self) -> std::sync::RwLockReadGuard<'_, Routing> {
        self.routing
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn fleet(&self) -> Arc<FleetState> {
        self.routing().fleet.clone()
    }

    /// After a SIGHUP: a changed `[storage]`, or a fleet that was broken, is built again;
    /// an unchanged working one is kept, with its connections and its breaker.
    pub fn reconfigure(&self, storage: &StorageConfig) {
        self.reconfigure_with(storage, &connector_for);
    }

    pub fn reconfigure_with(&self, storage: &StorageConfig, make_connector: &MakeConnector) {
        {
            let routing = self.routing();
            let broken = matches!(*routing.fleet, FleetState::Broken(_));
            if routing.built_from == *storage && !broken {
                return;
            }
        }
        let fleet = Arc::new(build_fleet(storage, &self.log, make_connector));
        let mut routing = self
            .routing
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *routing = Routing {
            fleet,
            local_users: storage.local_users.iter().cloned().collect(),
            built_from: storage.clone(),
        };
    }

    /// The fleet's state, if `user`'s record is the fleet's.
    fn fleet_of(&self, user: &str) -> Option<Arc<FleetState>> {
        let routing = self.routing();
        match *routing.fleet {
            FleetState::None => None,
            _ if routing.local_users.contains(user) => None,
            _ => Some(routing.fleet.clone()),
        }
    }
}

fn unavailable(reason: &str) -> StoreError {
    StoreError::Unavailable {
        reason: reason.to_owned(),
    }
}

impl Store for Stores {
    fn load(&self, user: &str) -> Result<Option<UserRecord>, StoreError> {
        match self.fleet_of(user).as_deref() {
            None | Some(FleetState::None) => self.local.load(user),
            Some(FleetState::Database(database)) => database.load(user),
            Some(FleetState::Broken(reason)) => Err(unavailable(reason)),
        }
    }

    fn begin(&self, user: &str) -> Result<Box<dyn Transaction + '_>, StoreError> {
        match self.fleet_of(user).as_deref() {
            None | Some(FleetState::None) => self.local.begin(user),
            Some(FleetState::Database(database)) => database.begin_owned(user),
            Some(FleetState::Broken(reason)) => Err(unavailable(reason)),
        }
    }

    /// The break-glass users from the files, and everyone in the fleet. An unreachable
    /// fleet is an error, not a shorter list.
    fn users(&self) -> Result<Vec<String>, StoreError> {
        let (fleet, local_users) = {
            let routing = self.routing();
            (routing.fleet.clone(), routing.local_users.clone())
        };
        let mut users = self.local.users()?;
        match &*fleet {
            FleetState::None => return Ok(users),
            FleetState::Database(database) => {
                users.retain(|user| local_users.contains(user));
                users.extend(database.users()?);
            }
            FleetState::Broken(reason) => return Err(unavailable(reason)),
        }
        users.sort();
        users.dedup();
        Ok(users)
    }

    fn clock_offset(&self) -> i64 {
        match &*self.fleet() {
            FleetState::Database(database) => database.clock_offset(),
            FleetState::None | FleetState::Broken(_) => 0,
        }
    }
}

/// The fleet `storage` describes, or why there is none. A problem is logged here, once.
fn build_fleet(
    storage: &StorageConfig,
    log: &Arc<dyn EventLog>,
    make_connector: &MakeConnector,
) -> FleetState {
    if !storage.is_fleet() {
        return FleetState::None;
    }
    match open_parts(storage, make_connector) {
        Ok((connector, keys)) => {
            FleetState::Database(PostgresStore::start(connector, keys, log.clone()))
        }
        Err(problem) => {
            log.warning(
                Line::new("fleet-unusable")
                    .field("error", &problem)
                    .field(
                        "effect",
                        "fleet logins are denied; the local_users log in from the local files",
                    )
                    .as_str(),
            );
            FleetState::Broken(problem)
        }
    }
}

/// This host's name in logs and rows: `host_name`, else the system's.
pub fn host_name(storage: &StorageConfig) -> String {
    if let Some(name) = &storage.host_name {
        return name.clone();
    }
    nix::unistd::gethostname()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// `--check-config --connect`: connect as the daemon would, and say what was found, one
/// fact per line; or the first problem.
pub fn check_connection(storage: &StorageConfig) -> Result<Vec<String>, String> {
    let (connector, keys) = open_parts(storage, &connector_for)?;
    let key_ids = keys.key_ids();
    let log: Arc<dyn EventLog> = Arc::new(crate::log::StderrLog);
    let store =
        PostgresStore::open_with(connector, keys, log).map_err(|error| error.to_string())?;
    let report = store.report().map_err(|error| error.to_string())?;
    let tls = match (&report.tls_version, storage.tls) {
        (Some(version), mode) => format!("TLS {version} ({})", mode.as_str()),
        (None, mode) => format!("no TLS ({})", mode.as_str()),
    };
    Ok(vec![
        format!("database: connected as role {}, {tls}", report.role),
        format!(
            "database: schema version {} (this twofactord writes {})",
            report.schema_version,
            crate::store::postgres::schema::CURRENT_VERSION
        ),
        format!(
            "fleet key: the database's key id {} is in the key file ({} key{})",
            report.key_id.unwrap_or_default(),
            key_ids.len(),
            if key_ids.len() == 1 { "" } else { "s" }
        ),
        format!(
            "database: {}",
            if report.read_only {
                "READ-ONLY (a standby): logins would fail"
            } else {
                "writable"
            }
        ),
    ])
}

/// What the fleet needs from this host's files, checked: the connector and the keys.
pub fn open_parts(
    storage: &StorageConfig,
    make_connector: &MakeConnector,
) -> Result<(Box<Connector>, FleetKeys), String> {
    let problems = storage.problems();
    if !problems.is_empty() {
        return Err(format!("[storage]: {}", problems.join("; ")));
    }
    let key_path = storage
        .key_path()
        .ok_or_else(|| "[storage] needs secret_key_file".to_owned())?;
    let keys = FleetKeys::load(&key_path).map_err(|error| error.to_string())?;
    let connector = make_connector(storage)?;
    Ok((connector, keys))
}

/// The connector `[storage]` describes: its url, password file and TLS.
pub fn connector_for(storage: &StorageConfig) -> Result<Box<Connector>, String> {
    use twofactor_config::TlsMode;
    let url = storage.url.as_deref().unwrap_or_default();
    let mut config: postgres::Config = url
        .parse()
        .map_err(|error| format!("[storage] url: {error}"))?;
    if let Some(path) = storage.password_path() {
        let password = read_password_file(path)?;
        config.password(password.as_bytes());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(crate::store::postgres::CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(crate::store::postgres::TCP_USER_TIMEOUT);
    }
    match storage.tls {
        TlsMode::Disable => Ok(Box::new(move || config.connect(postgres::NoTls))),
        mode => Err(format!(
            "tls = {:?} is not supported by this build of twofactord",
            mode.as_str()
        )),
    }
}

fn read_password_file(path: &std::path::Path) -> Result<zeroize::Zeroizing<String>, String> {
    let shown = path.display();
    let resolved = twofactor_config::file_safety::check_root_only_file(path)
        .map_err(|reason| format!("refusing the password file {shown}: {reason}"))?;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(resolved)
            .map_err(|error| format!("cannot read the password file {shown}: {error}"))?,
    );
    Ok(zeroize::Zeroizing::new(
        text.lines().next().unwrap_or_default().to_owned(),
    ))
}

#[cfg(test)]
mod tests;
