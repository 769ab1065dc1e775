//! What the two server backends (PostgreSQL, MySQL/MariaDB) share when connecting: a first
//! connection that waits a bounded time and says exactly why it failed, the migrations run
//! on it, and the pool settings.

use std::time::Duration;

use sqlx::{
    Acquire, Connection, Database,
    migrate::{Migrate, Migrator},
    pool::PoolOptions,
};

use super::StoreError;

/// How long the first connection may take before we give up on the server.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write may wait for a pooled connection (or a new one) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections per process: enough for the busiest `--workers` to write while others read.
const MAX_CONNECTIONS: u32 = 16;

/// Opens one connection to check the server, the login and the database — failing with the
/// driver's own reason, not a pool timeout, and within [`CONNECT_TIMEOUT`] — applies
/// `migrator` on it and closes it.
pub(crate) async fn check_and_migrate<C>(
    options: &<C as Connection>::Options,
    target: &str,
    migrator: &Migrator,
) -> Result<(), StoreError>
where
    C: Connection + Migrate,
    for<'a> &'a mut C: Acquire<'a, Connection = &'a mut C>,
{
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, C::connect_with(options)).await {
        Err(_) => return Err(StoreError::connect_timed_out(target, CONNECT_TIMEOUT)),
        Ok(connected) => connected.map_err(|e| StoreError::from_connect(target, e))?,
    };
    migrator
        .run(&mut conn)
        .await
        .map_err(|e| StoreError::migrate(target, e))?;
    // The migrations are in; a failing goodbye changes nothing.
    let _ = conn.close().await;
    Ok(())
}

/// Pool settings shared by the server backends.
pub(crate) fn pool_options<DB: Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}
