//! Versioned migrations, embedded in the binary, applied in order under an advisory lock by a
//! role that owns the schema; the daemon only checks that the version is one it supports.

use postgres::Client;

/// Every migration, in order: `MIGRATIONS[i]` makes version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("schema/0001_users.sql"),
    include_str!("schema/0002_sealed_secrets.sql"),
];

/// The schema this daemon writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;
/// The oldest schema this daemon still works on.
/// Version 2 moved the secret into `sealed_secret`: a daemon that seals needs it.
pub const OLDEST_SUPPORTED: u32 = 2;

/// Serializes `upgrade_schema` across hosts (an arbitrary constant: "2fa schema").
const UPGRADE_LOCK: i64 = 0x2fa5_c4e3;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the database has no twofactor schema: run `twofactord storage upgrade-schema`")]
    Missing,
    #[error(
        "the database schema is version {found}, older than {OLDEST_SUPPORTED}: run \
         `twofactord storage upgrade-schema`"
    )]
    Older { found: u32 },
    #[error(
        "the database schema is version {found}, newer than {CURRENT_VERSION}, the newest this \
         twofactord knows: install the twofactord that upgraded it"
    )]
    Newer { found: u32 },
    #[error("database error: {0}")]
    Database(#[from] postgres::Error),
}

fn version_of(client: &mut Client) -> Result<Option<u32>, postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let version: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_version", &[])?
        .get(0);
    Ok(Some(version.unwrap_or(0).max(0) as u32))
}

/// The schema's version, if this daemon can work on it.
pub fn check_schema(client: &mut Client) -> Result<u32, SchemaError> {
    match version_of(client)? {
        None | Some(0) => Err(SchemaError::Missing),
        Some(found) if found > CURRENT_VERSION => Err(SchemaError::Newer { found }),
        Some(found) if found < OLDEST_SUPPORTED => Err(SchemaError::Older { found }),
        Some(found) => Ok(found),
    }
}

/// Apply every migration the database lacks, each in its own transaction; returns the
/// version before and after. Hosts running it at once wait for each other.
pub fn upgrade_schema(client: &mut Client) -> Result<(u32, u32), SchemaError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&UPGRADE_LOCK])?;
    let upgraded = apply_missing(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&UPGRADE_LOCK]);
    let versions = upgraded?;
    unlocked?;
    Ok(versions)
}

fn apply_missing(client: &mut Client) -> Result<(u32, u32), SchemaError> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let before = version_of(client)?.unwrap_or(0);
    if before > CURRENT_VERSION {
        return Err(SchemaError::Newer { found: before });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(before as usize) {
        let version = index as i32 + 1;
        let mut transaction = client.transaction()?;
        transaction.batch_execute(migration)?;
        transaction.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )?;
        transaction.commit()?;
    }
    Ok((before, CURRENT_VERSION))
}
