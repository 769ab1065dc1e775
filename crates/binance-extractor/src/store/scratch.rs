//! Throwaway databases for tests and benchmarks: a fresh, uniquely named database on a
//! PostgreSQL or MySQL/MariaDB server — or a fresh SQLite file — dropped when done.
//!
//! ```no_run
//! # async fn demo() -> Result<(), binance_extractor::store::StoreError> {
//! use binance_extractor::store::{DatabaseUrl, Store, scratch::ScratchDatabase};
//! let server: DatabaseUrl = "postgres://postgres@127.0.0.1:5432/test".parse().unwrap();
//! let db = ScratchDatabase::create(&server).await?; // database bx_<random> on that server
//! let store = Store::connect(db.url()).await?;
//! // … use it …
//! store.close().await;
//! db.drop_database().await?;
//! # Ok(()) }
//! ```

use std::path::PathBuf;

use sqlx::{AssertSqlSafe, Connection, mysql::MySqlConnection, postgres::PgConnection};

use super::{Backend, DatabaseUrl, StoreError, server::CONNECT_TIMEOUT};

/// A database that exists only until [`ScratchDatabase::drop_database`].
#[derive(Debug)]
pub struct ScratchDatabase {
    /// The new database.
    url: DatabaseUrl,
    /// The database we connected to for creating it (servers only).
    admin: DatabaseUrl,
}

impl ScratchDatabase {
    /// Creates `bx_<random>` on the server of `server` (a URL of any database there that the
    /// user may connect to, with the right to create databases). For SQLite, a new file
    /// `bx_<random>.db` in the folder of `server`'s file.
    pub async fn create(server: &DatabaseUrl) -> Result<ScratchDatabase, StoreError> {
        let name = format!("bx_{:016x}", fastrand::u64(..));
        let url = match server.backend() {
            Backend::Sqlite => {
                let file = PathBuf::from(server.database_name()).with_file_name(format!("{name}.db"));
                format!("sqlite://{}", file.display())
                    .parse()
                    .map_err(|e: super::DatabaseUrlError| StoreError::Connect {
                        target: server.target().to_string(),
                        detail: e.to_string(),
                    })?
            }
            Backend::Postgres | Backend::MySql => {
                admin_execute(server, &format!("CREATE DATABASE {name}")).await?;
                server.with_database(&name)
            }
        };
        Ok(ScratchDatabase {
            url,
            admin: server.clone(),
        })
    }

    /// Where the new database is.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Drops the database (PostgreSQL: closing any connection still open to it), or deletes
    /// the SQLite file with its journal.
    pub async fn drop_database(self) -> Result<(), StoreError> {
        let name = self.url.database_name();
        match self.url.backend() {
            Backend::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{name}{suffix}"));
                }
                Ok(())
            }
            Backend::Postgres => {
                admin_execute(
                    &self.admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await
            }
            Backend::MySql => admin_execute(&self.admin, &format!("DROP DATABASE IF EXISTS {name}")).await,
        }
    }
}

/// Runs one statement on a fresh connection to `server`.
async fn admin_execute(server: &DatabaseUrl, statement: &str) -> Result<(), StoreError> {
    let target = server.target();
    let fail = |e| StoreError::query(target, "managing a scratch database", e);
    let statement = statement.to_string();
    let connect = async {
        match server.backend() {
            Backend::Postgres => execute_once::<PgConnection>(server.expose_secret(), statement).await,
            Backend::MySql => execute_once::<MySqlConnection>(server.expose_secret(), statement).await,
            Backend::Sqlite => Ok(()),
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Err(_) => Err(StoreError::connect_timed_out(target, CONNECT_TIMEOUT)),
        Ok(result) => result.map_err(fail),
    }
}

async fn execute_once<C>(url: &str, statement: String) -> Result<(), sqlx::Error>
where
    C: Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    let mut conn = C::connect(url).await?;
    sqlx::raw_sql(AssertSqlSafe(statement)).execute(&mut conn).await?;
    conn.close().await
}
