//! What can go wrong with the database, said so that a person knows what to fix — and never
//! with the password.

/// A failed store operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The server could not be reached (down, wrong host or port, network).
    #[error(
        "cannot connect to {target}: {detail}; check that the server runs and DATABASE_URL names the right host and port"
    )]
    Connect { target: String, detail: String },
    /// The server refused the user or password.
    #[error("{target} refused the login: check the user and password in DATABASE_URL")]
    AccessDenied { target: String },
    /// The database named in the URL does not exist.
    #[error("{target} does not exist: create it (CREATE DATABASE …) or fix the name in DATABASE_URL")]
    MissingDatabase { target: String },
    /// The schema could not be created or upgraded.
    #[error("cannot prepare the schema of {target}: {detail}")]
    Migrate { target: String, detail: String },
    /// A statement failed.
    #[error("{operation} failed on {target}: {detail}")]
    Query {
        target: String,
        operation: &'static str,
        detail: String,
    },
    /// The statement lost a lock conflict (deadlock, serialization failure, busy database)
    /// and was rolled back: running it again may succeed.
    #[error("{operation} on {target} collided with another writer and was rolled back: {detail}")]
    Busy {
        target: String,
        operation: &'static str,
        detail: String,
    },
    /// Stored data that does not read back as it should.
    #[error("{target} holds an unreadable value in {what}: {detail}")]
    Corrupt {
        target: String,
        what: &'static str,
        detail: String,
    },
}

impl StoreError {
    /// Whether trying again later may succeed (the server was unreachable, or it chose this
    /// transaction as the loser of a lock conflict); configuration mistakes are final.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Connect { .. } | StoreError::Busy { .. })
    }

    /// Classifies a driver error raised while connecting: the login refused, the database
    /// missing, or the server unreachable. Never includes the password (the driver's
    /// messages name the user at most).
    pub(crate) fn from_connect(target: &str, err: sqlx::Error) -> StoreError {
        let target = target.to_string();
        if let Some(db) = err.as_database_error() {
            let refusal = match db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                // MySQL/MariaDB report a SQLSTATE shared by unrelated errors; the number is precise.
                Some(my) => mysql_refusal(my.number()),
                None => db.code().as_deref().and_then(postgres_refusal),
            };
            match refusal {
                Some(Refusal::Login) => return StoreError::AccessDenied { target },
                Some(Refusal::MissingDatabase) => return StoreError::MissingDatabase { target },
                None if is_missing_database(db.message()) => return StoreError::MissingDatabase { target },
                None => {}
            }
        }
        StoreError::Connect {
            target,
            detail: describe(&err),
        }
    }

    /// The server did not complete the login within `after`.
    pub(crate) fn connect_timed_out(target: &str, after: std::time::Duration) -> StoreError {
        StoreError::Connect {
            target: target.to_string(),
            detail: format!("no answer within {} s", after.as_secs()),
        }
    }

    /// The migrations could not be applied.
    pub(crate) fn migrate(target: &str, err: sqlx::migrate::MigrateError) -> StoreError {
        StoreError::Migrate {
            target: target.to_string(),
            detail: err.to_string(),
        }
    }

    /// Wraps a driver error raised by `operation`.
    pub(crate) fn query(target: &str, operation: &'static str, err: sqlx::Error) -> StoreError {
        let target = target.to_string();
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => StoreError::Connect {
                target,
                detail: describe(&err),
            },
            other if is_lock_conflict(&other) => StoreError::Busy {
                target,
                operation,
                detail: describe(&other),
            },
            other => StoreError::Query {
                target,
                operation,
                detail: describe(&other),
            },
        }
    }
}

/// Why a server turned a connection away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Login,
    MissingDatabase,
}

/// MySQL/MariaDB error numbers met while connecting.
fn mysql_refusal(number: u16) -> Option<Refusal> {
    match number {
        // ER_ACCESS_DENIED_ERROR (wrong user or password), ER_DBACCESS_DENIED_ERROR (no right
        // to that database), ER_ACCESS_DENIED_NO_PASSWORD_ERROR (e.g. unix_socket auth).
        1045 | 1044 | 1698 => Some(Refusal::Login),
        // ER_BAD_DB_ERROR.
        1049 => Some(Refusal::MissingDatabase),
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs met while connecting.
fn postgres_refusal(code: &str) -> Option<Refusal> {
    match code {
        // invalid_password; invalid_authorization_specification (unknown role, no pg_hba entry).
        "28P01" | "28000" => Some(Refusal::Login),
        // invalid_catalog_name.
        "3D000" => Some(Refusal::MissingDatabase),
        _ => None,
    }
}

/// A deadlock, a serialization failure or a lock wait that timed out: the statement lost a
/// race and may succeed when run again.
fn is_lock_conflict(err: &sqlx::Error) -> bool {
    let Some(db) = err.as_database_error() else {
        return false;
    };
    match db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
        Some(my) => matches!(my.number(), 1213 | 1205),
        // serialization_failure, deadlock_detected, lock_not_available; SQLITE_BUSY/LOCKED.
        None => matches!(
            db.code().as_deref(),
            Some("40001" | "40P01" | "55P03" | "5" | "6" | "261" | "517")
        ),
    }
}

fn is_missing_database(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("database") && m.contains("does not exist")) || m.contains("unknown database")
}

/// The driver's message, with the chain of causes.
fn describe(err: &sqlx::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_refusals_by_code() {
        // TC0 MariaDB, wrong password: "ERROR 1045 (28000): Access denied for user
        // 'root'@'127.0.0.1' (using password: YES)". TC1 unknown database: "ERROR 1049 (42000):
        // Unknown database 'nope'" — the same SQLSTATE as a syntax error, hence the number.
        let mysql: &[(u16, Option<Refusal>)] = &[
            (1045, Some(Refusal::Login)),
            (1044, Some(Refusal::Login)),
            (1698, Some(Refusal::Login)),
            (1049, Some(Refusal::MissingDatabase)),
            (1064, None),
            (2013, None),
        ];
        for (number, want) in mysql {
            assert_eq!(mysql_refusal(*number), *want, "{number}");
        }
        // TC2 PostgreSQL: 'password authentication failed for user "app"' (28P01), 'role
        // "app" does not exist' (28000), 'database "nope" does not exist' (3D000).
        let postgres: &[(&str, Option<Refusal>)] = &[
            ("28P01", Some(Refusal::Login)),
            ("28000", Some(Refusal::Login)),
            ("3D000", Some(Refusal::MissingDatabase)),
            ("53300", None),
            ("42601", None),
        ];
        for (code, want) in postgres {
            assert_eq!(postgres_refusal(code), *want, "{code}");
        }
    }

    #[test]
    fn only_reachability_and_lock_conflicts_are_retryable() {
        let target = || "database 'k' on db:5432".to_string();
        let refused = StoreError::from_connect(
            "database 'k' on db:5432",
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        );
        assert!(matches!(refused, StoreError::Connect { .. }) && refused.is_retryable());
        assert!(
            refused
                .to_string()
                .starts_with("cannot connect to database 'k' on db:5432: "),
            "{refused}"
        );
        let timed_out =
            StoreError::connect_timed_out("database 'k' on db:5432", std::time::Duration::from_secs(10));
        assert_eq!(
            timed_out.to_string(),
            "cannot connect to database 'k' on db:5432: no answer within 10 s; check that the server runs \
             and DATABASE_URL names the right host and port"
        );
        let busy = StoreError::Busy {
            target: target(),
            operation: "writing klines",
            detail: "deadlock".into(),
        };
        assert!(busy.is_retryable());
        for final_error in [
            StoreError::AccessDenied { target: target() },
            StoreError::MissingDatabase { target: target() },
            StoreError::query(
                "database 'k' on db:5432",
                "reading klines",
                sqlx::Error::RowNotFound,
            ),
        ] {
            assert!(!final_error.is_retryable(), "{final_error:?}");
            assert!(
                final_error.to_string().contains("database 'k' on db:5432"),
                "{final_error}"
            );
        }
    }
}
