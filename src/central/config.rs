//! The central server's configuration: one TOML file (`server.toml`; every key documented in
//! `examples/server.toml`), with environment overrides for what differs per deployment:
//! `DATABASE_URL` (or `GATEHOUSE_DATABASE_URL`) and `GATEHOUSE_LISTEN`.
//!
//! The database URL may carry a password, so it is held in a [`Secret`] that never prints.
//! Unknown keys are errors. This module opens nothing.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A string that must never reach a log or an error message.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    #[error("configuration file {path} cannot be read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub server: ServerSection,
    /// `[retention]`: how long passage events are kept (at least 365 days; default 365).
    #[serde(default)]
    pub retention: crate::central::retention::RetentionConfig,
    /// `[sync]`: the gates' mutual-TLS port. Absent: no gate can sync.
    #[serde(default)]
    pub sync: Option<SyncSection>,
}

/// `[sync]`: the port gates sync on, over mutual TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    /// Address and port of the sync endpoints. Default 0.0.0.0:8443.
    #[serde(default = "default_sync_listen")]
    pub listen: SocketAddr,
    /// The site CA certificate (PEM): gate certificates must chain to it.
    pub ca: PathBuf,
    /// The server's certificate and key (PEM), from `gatehouse pki issue-server`.
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn default_sync_listen() -> SocketAddr {
    "0.0.0.0:8443".parse().expect("a valid default")
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address and port of the admin API and web pages. Default 127.0.0.1:8080.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the SQLite database (and later the site PKI) lives.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: `central.db` in `data_dir`.
    #[serde(default)]
    pub database_url: Option<Secret>,
    /// The site's time zone. Default Asia/Shanghai.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Hours a sign-in lasts. Default 12.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
    /// Mark session cookies `Secure` (set when the site is served over HTTPS). Default false.
    #[serde(default)]
    pub secure_cookies: bool,
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("a valid default")
}
fn default_timezone() -> String {
    "Asia/Shanghai".into()
}
fn default_session_hours() -> u32 {
    12
}

impl ServerConfig {
    /// Reads, parses, applies environment overrides and validates.
    pub fn load(path: &Path) -> Result<ServerConfig, ServerConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: ServerConfig =
            toml::from_str(&text).map_err(|e| ServerConfigError::Parse {
                path: path.to_path_buf(),
                message: e
                    .span()
                    .map(|s| format!("line {}: ", crate::gate::config::line_of(&text, s.start)))
                    .unwrap_or_default()
                    + e.message().trim_end(),
            })?;
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `DATABASE_URL` / `GATEHOUSE_DATABASE_URL` and `GATEHOUSE_LISTEN`.
    pub fn apply_env(
        &mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ServerConfigError> {
        if let Some(url) = var("GATEHOUSE_DATABASE_URL").or_else(|| var("DATABASE_URL")) {
            self.server.database_url = Some(Secret::new(url));
        }
        if let Some(listen) = var("GATEHOUSE_LISTEN") {
            self.server.listen = listen.parse().map_err(|_| {
                ServerConfigError::Invalid(format!(
                    "GATEHOUSE_LISTEN {listen:?} is not ADDRESS:PORT"
                ))
            })?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ServerConfigError> {
        if self.server.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ServerConfigError::Invalid(format!(
                "server.timezone: unknown time zone {:?}",
                self.server.timezone
            )));
        }
        if !(1..=168).contains(&self.server.session_hours) {
            return Err(ServerConfigError::Invalid(
                "server.session_hours must be 1-168".into(),
            ));
        }
        if let Some(url) = &self.server.database_url {
            let u = url.expose();
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres:")
                || u.starts_with("postgresql:"))
            {
                return Err(ServerConfigError::Invalid(
                    "server.database_url must start with sqlite:// or postgres://".into(),
                ));
            }
        }
        Ok(())
    }

    /// The database URL to connect to.
    pub fn database_url(&self) -> Secret {
        self.server.database_url.clone().unwrap_or_else(|| {
            Secret::new(format!(
                "sqlite://{}?mode=rwc",
                self.server.data_dir.join("central.db").display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ServerConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_database_url_defaults_to_sqlite_in_the_data_dir_and_env_overrides_it() {
        let mut config = parse("[server]\ndata_dir = \"/var/lib/gatehouse\"\n");
        assert_eq!(
            config.database_url().expose(),
            "sqlite:///var/lib/gatehouse/central.db?mode=rwc"
        );
        config
            .apply_env(|k| (k == "DATABASE_URL").then(|| "postgres://u:pw@db/gh".to_string()))
            .unwrap();
        assert_eq!(config.database_url().expose(), "postgres://u:pw@db/gh");
        assert_eq!(
            format!("{config:?}").matches("pw").count(),
            0,
            "secrets never print"
        );
    }

    #[test]
    fn the_documented_example_parses_with_the_real_defaults() {
        let documented: ServerConfig =
            toml::from_str(include_str!("../../examples/server.toml")).unwrap();
        let minimal = parse("[server]\ndata_dir = \"/x\"\n");
        assert_eq!(documented.server.listen, minimal.server.listen);
        assert_eq!(documented.server.timezone, minimal.server.timezone);
        assert_eq!(
            documented.server.session_hours,
            minimal.server.session_hours
        );
        assert_eq!(
            documented.server.secure_cookies,
            minimal.server.secure_cookies
        );
    }

    #[test]
    fn the_documented_sync_section_states_the_real_default() {
        let documented: ServerConfig =
            toml::from_str(include_str!("../../examples/server.toml")).unwrap();
        let minimal =
            parse("[server]\ndata_dir = \"/x\"\n[sync]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n");
        assert_eq!(
            documented.sync.unwrap().listen,
            minimal.sync.unwrap().listen
        );
        assert!(parse("[server]\ndata_dir = \"/x\"\n").sync.is_none());
    }

    #[test]
    fn an_unknown_key_is_refused() {
        assert!(toml::from_str::<ServerConfig>("[server]\ndata_dir = \"/x\"\nport = 1\n").is_err());
    }
}
