//! `DATABASE_URL`: which backend, and how to name it without its password.

use std::{fmt, str::FromStr};

/// The database engines we store klines in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite (the default): `sqlite://binance-klines.db`.
    Sqlite,
    /// PostgreSQL: `postgres://user:pass@host:5432/db`.
    Postgres,
    /// MySQL or MariaDB: `mysql://user:pass@host:3306/db` (`mariadb://` is accepted).
    MySql,
}

impl Backend {
    /// Lower-case name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// A parsed `DATABASE_URL`. Its `Display` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    /// The URL handed to the driver (secret: may hold a password).
    connect: String,
    /// `scheme://user@host:port/db` or `sqlite://path`, safe to print.
    redacted: String,
    /// Host (or file path) and database name, for error messages.
    target: String,
}

impl DatabaseUrl {
    /// Which engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with its password, for the driver only.
    pub fn expose_secret(&self) -> &str {
        &self.connect
    }

    /// "database `test` on 127.0.0.1:5432", or "SQLite file `binance-klines.db`".
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The same URL with another database name (tests create their own databases).
    pub fn with_database(&self, name: &str) -> DatabaseUrl {
        let mut url = url::Url::parse(&self.connect).expect("validated at parse time");
        url.set_path(&format!("/{name}"));
        url.as_str().parse().expect("still valid")
    }

    /// The database name (or SQLite path).
    pub fn database_name(&self) -> String {
        match self.backend {
            Backend::Sqlite => sqlite_path(&self.connect).to_string(),
            _ => url::Url::parse(&self.connect)
                .map(|u| u.path().trim_start_matches('/').to_string())
                .unwrap_or_default(),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted)
    }
}

/// A `DATABASE_URL` we cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid DATABASE_URL '{shown}': {reason}; use sqlite://FILE, postgres://USER:PASS@HOST:5432/DB or mysql://USER:PASS@HOST:3306/DB"
)]
pub struct DatabaseUrlError {
    /// The URL with any password removed.
    shown: String,
    reason: &'static str,
}

fn sqlite_path(url: &str) -> &str {
    let rest = url.trim_start_matches("sqlite:");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    rest.split('?').next().unwrap_or(rest)
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let fail = |reason| DatabaseUrlError {
            shown: redact_any(s),
            reason,
        };
        let scheme = s.split(':').next().unwrap_or("").to_ascii_lowercase();
        if scheme == "sqlite" {
            let path = sqlite_path(s);
            if path.is_empty() {
                return Err(fail("the SQLite file name is missing"));
            }
            let shown = if path == ":memory:" {
                "SQLite in memory".to_string()
            } else {
                format!("SQLite file {path}")
            };
            return Ok(DatabaseUrl {
                backend: Backend::Sqlite,
                connect: s.to_string(),
                redacted: s.to_string(),
                target: shown,
            });
        }
        let backend = match scheme.as_str() {
            "postgres" | "postgresql" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::MySql,
            "" => return Err(fail("it has no scheme")),
            _ => return Err(fail("unknown scheme")),
        };
        let mut url = url::Url::parse(s).map_err(|_| fail("it is not a valid URL"))?;
        if backend == Backend::MySql && scheme == "mariadb" {
            // sqlx speaks the MySQL protocol under the mysql scheme.
            let rest = &s[s.find(':').unwrap_or(0)..];
            url = url::Url::parse(&format!("mysql{rest}")).map_err(|_| fail("it is not a valid URL"))?;
        }
        let host = url.host_str().unwrap_or("").to_string();
        if host.is_empty() {
            return Err(fail("the host is missing"));
        }
        let db = url.path().trim_start_matches('/').to_string();
        if db.is_empty() {
            return Err(fail("the database name is missing (…/DBNAME)"));
        }
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let connect = url.as_str().to_string();
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        shown.set_query(None);
        Ok(DatabaseUrl {
            backend,
            connect,
            redacted: shown.as_str().to_string(),
            target: format!("database '{db}' on {host}{port}"),
        })
    }
}

/// Removes a password from anything URL-shaped, for error messages about bad URLs.
fn redact_any(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => s.to_string(),
        // Unparsable: cut anything between "://" and "@" to be safe.
        Err(_) => match (s.find("://"), s.rfind('@')) {
            (Some(a), Some(b)) if b > a => format!("{}***{}", &s[..a + 3], &s[b..]),
            _ => s.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_by_scheme_and_no_password_in_sight() {
        let cases: &[(&str, Backend, &str, &str)] = &[
            (
                "sqlite://binance-klines.db",
                Backend::Sqlite,
                "sqlite://binance-klines.db",
                "SQLite file binance-klines.db",
            ),
            (
                "sqlite:data/k.db?mode=rwc",
                Backend::Sqlite,
                "sqlite:data/k.db?mode=rwc",
                "SQLite file data/k.db",
            ),
            (
                "postgres://app:s3cret@db.internal:5432/market",
                Backend::Postgres,
                "postgres://app@db.internal:5432/market",
                "database 'market' on db.internal:5432",
            ),
            (
                "postgresql://app:s3cret@db/market?sslmode=require",
                Backend::Postgres,
                "postgresql://app@db/market",
                "database 'market' on db",
            ),
            (
                "mysql://root:s3cret@127.0.0.1:3306/test",
                Backend::MySql,
                "mysql://root@127.0.0.1:3306/test",
                "database 'test' on 127.0.0.1:3306",
            ),
            (
                "mariadb://root:s3cret@127.0.0.1/test",
                Backend::MySql,
                "mysql://root@127.0.0.1/test",
                "database 'test' on 127.0.0.1",
            ),
        ];
        for (input, backend, shown, target) in cases {
            let url: DatabaseUrl = input.parse().unwrap();
            assert_eq!(url.backend(), *backend, "{input}");
            assert_eq!(url.to_string(), *shown, "{input}");
            assert_eq!(format!("{url:?}"), format!("DatabaseUrl({shown})"));
            assert_eq!(url.target(), *target, "{input}");
            assert!(!url.to_string().contains("s3cret"));
        }
        let url: DatabaseUrl = "mariadb://root:pw@h/test".parse().unwrap();
        assert!(url.expose_secret().starts_with("mysql://root:pw@h"));
    }

    #[test]
    fn bad_urls_are_explained_without_the_password() {
        for bad in [
            "oracle://u:s3cret@h/db",
            "postgres://u:s3cret@h",
            "mysql://u:s3cret@/db",
            "/var/lib/k.db",
            "sqlite://",
        ] {
            let err = bad.parse::<DatabaseUrl>().unwrap_err().to_string();
            assert!(!err.contains("s3cret"), "{err}");
            assert!(err.contains("sqlite://FILE"), "{err}");
        }
    }

    #[test]
    fn tests_can_point_at_their_own_database() {
        let url: DatabaseUrl = "postgres://postgres@127.0.0.1:5432/test".parse().unwrap();
        let other = url.with_database("bx_test_123");
        assert_eq!(other.database_name(), "bx_test_123");
        assert_eq!(other.target(), "database 'bx_test_123' on 127.0.0.1:5432");
    }
}
