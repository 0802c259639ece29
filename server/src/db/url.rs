//! The `database_url` setting: which engine, where, and a password that never prints.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyConnectOptions;

use super::Engine;

/// `sqlite://path` or `postgres://user:password@host:port/database`. `Debug` and `Display`
/// show it with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Takes a URL of either engine; anything else is refused with a plain reason.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let url = Self(raw.trim().to_owned());
        url.check()?;
        Ok(url)
    }

    /// Checks the scheme and, for PostgreSQL, that the URL parses (without echoing it).
    pub fn check(&self) -> anyhow::Result<()> {
        if self.0.starts_with("sqlite:") {
            if self.sqlite_path().is_none() {
                bail!("database_url must name a file: sqlite://path/to/unlock.db");
            }
            return Ok(());
        }
        if self.0.starts_with("postgres://") || self.0.starts_with("postgresql://") {
            let url = url::Url::parse(&self.0)
                .map_err(|_| anyhow::anyhow!("database_url is not a valid postgres:// URL"))?;
            if url.host_str().is_none_or(str::is_empty) {
                bail!("database_url must name the PostgreSQL host: postgres://user@host:5432/db");
            }
            return Ok(());
        }
        bail!("database_url must start with sqlite:// or postgres://")
    }

    /// Which engine the URL names.
    pub fn engine(&self) -> Engine {
        if self.0.starts_with("sqlite:") {
            Engine::Sqlite
        } else {
            Engine::Postgres
        }
    }

    /// The SQLite file, for a `sqlite:` URL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.0.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }

    /// Options for a SQLite connection opened in `mode` (`ro`, `rw` or `rwc`).
    pub(super) fn sqlite_options(&self, mode: &str) -> anyhow::Result<AnyConnectOptions> {
        let (base, query) = self.0.split_once('?').unwrap_or((&self.0, ""));
        let mut params: Vec<&str> = query
            .split('&')
            .filter(|param| !param.is_empty() && !param.starts_with("mode="))
            .collect();
        let mode = format!("mode={mode}");
        params.push(&mode);
        AnyConnectOptions::from_str(&format!("{base}?{}", params.join("&")))
            .with_context(|| format!("parse database_url {self}"))
    }

    /// Options for a connection of the URL's engine.
    pub(super) fn any_options(&self) -> anyhow::Result<AnyConnectOptions> {
        match self.engine() {
            Engine::Sqlite => self.sqlite_options("rwc"),
            // sqlx's own parse error can quote the URL: say only that it failed.
            Engine::Postgres => AnyConnectOptions::from_str(&self.0)
                .map_err(|_| anyhow::anyhow!("parse database_url {self}")),
        }
    }

    /// The URL itself, password included; for handing to a client such as `pg_dump`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                f.write_str(url.as_str())
            }
            Ok(_) => f.write_str(&self.0),
            // Unparseable: it might still hold a password somewhere, so show only the scheme.
            Err(_) => {
                let scheme = self.0.split(':').next().unwrap_or_default();
                write!(f, "{scheme}://***")
            }
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_prints() {
        let url =
            DatabaseUrl::parse("postgres://unlock:hunter2@db.example.org:5432/unlock").unwrap();
        for printed in [format!("{url}"), format!("{url:?}")] {
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(printed.contains("db.example.org"), "{printed}");
        }
        let error = DatabaseUrl::parse("postgres://unlock:hunter2@/unlock").unwrap_err();
        assert!(!format!("{error:#}").contains("hunter2"));
        let error = DatabaseUrl(String::from("postgres://u:hunter2@[::1")).any_options();
        assert!(!format!("{:#}", error.unwrap_err()).contains("hunter2"));
    }

    #[test]
    fn engines_are_told_apart_and_other_schemes_refused() {
        let sqlite = DatabaseUrl::parse("sqlite://var/unlock.db").unwrap();
        assert_eq!(sqlite.engine(), Engine::Sqlite);
        assert_eq!(sqlite.sqlite_path(), Some(PathBuf::from("var/unlock.db")));
        let pg = DatabaseUrl::parse("postgresql://u@127.0.0.1:5433/unlock").unwrap();
        assert_eq!(pg.engine(), Engine::Postgres);
        assert!(DatabaseUrl::parse("mysql://u@host/db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }
}
