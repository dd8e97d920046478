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

use crate::config_file::ConfigError;

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
    /// `[photos]`: where the gates' uploaded photos are kept (disk or an S3-compatible store)
    /// and for how long (default 90 days).
    #[serde(default)]
    pub photos: crate::central::photos::PhotosConfig,
    /// `[notify]`: e-mail (SMTP) and the group robot webhook for hosts, applicants and
    /// visitors. Default: nothing is sent.
    #[serde(default)]
    pub notify: crate::central::notify::NotifyConfig,
    /// `[passes]`: where the visitor-pass keys are and whether the server may start without
    /// one. Default: `<data_dir>/pki/pass-keys`, not required.
    #[serde(default)]
    pub passes: crate::central::passes::PassesConfig,
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
    /// Minutes without a request after which a sign-in ends. Default 30.
    #[serde(default = "default_session_idle_minutes")]
    pub session_idle_minutes: u32,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client.
    /// Default none: the socket peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The campus's and organisation's names and abbreviations: refused as the base of a
    /// password, like the user name and "gatehouse". Default none.
    #[serde(default)]
    pub site_words: Vec<String>,
}

fn default_session_idle_minutes() -> u32 {
    30
}

/// Parses one `trusted_proxies` entry: an address (one host) or a CIDR range.
fn parse_proxy(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("a valid default")
}
/// The site's time zone when `server.timezone` is not set.
pub const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn default_timezone() -> String {
    DEFAULT_TIMEZONE.name().into()
}
fn default_session_hours() -> u32 {
    12
}

impl ServerConfig {
    /// Reads, parses, applies environment overrides and validates.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let mut config: ServerConfig = crate::config_file::read(path)?;
        config.apply_env(crate::config_file::process_env)?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `DATABASE_URL` / `GATEHOUSE_DATABASE_URL` and `GATEHOUSE_LISTEN`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(url) = var("GATEHOUSE_DATABASE_URL").or_else(|| var("DATABASE_URL")) {
            self.server.database_url = Some(Secret::new(url));
        }
        if let Some(listen) = crate::config_file::listen_override(&var, "GATEHOUSE_LISTEN")? {
            self.server.listen = listen;
        }
        self.photos.apply_env(&var);
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "server.timezone: unknown time zone {:?}",
                self.server.timezone
            )));
        }
        if !(1..=168).contains(&self.server.session_hours) {
            return Err(ConfigError::Invalid(
                "server.session_hours must be 1-168".into(),
            ));
        }
        if !(1..=1440).contains(&self.server.session_idle_minutes) {
            return Err(ConfigError::Invalid(
                "server.session_idle_minutes must be 1-1440".into(),
            ));
        }
        if let Some(bad) = self
            .server
            .trusted_proxies
            .iter()
            .find(|p| parse_proxy(p).is_none())
        {
            return Err(ConfigError::Invalid(format!(
                "server.trusted_proxies: {bad:?} is not an IP address or a CIDR range"
            )));
        }
        self.photos.validate().map_err(ConfigError::Invalid)?;
        if let Some(url) = &self.server.database_url {
            let u = url.expose();
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres:")
                || u.starts_with("postgresql:"))
            {
                return Err(ConfigError::Invalid(
                    "server.database_url must start with sqlite:// or postgres://".into(),
                ));
            }
        }
        Ok(())
    }

    /// The sign-in and session settings the API runs with.
    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            trusted_proxies: self
                .server
                .trusted_proxies
                .iter()
                .filter_map(|p| parse_proxy(p))
                .collect(),
            idle_ms: i64::from(self.server.session_idle_minutes) * 60_000,
            site_words: self.server.site_words.clone(),
        }
    }

    /// The site's time zone (`server.timezone`, checked by [`ServerConfig::validate`]): the
    /// centre's days, hours and local times are its.
    pub fn site_tz(&self) -> chrono_tz::Tz {
        self.server.timezone.parse().unwrap_or(DEFAULT_TIMEZONE)
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

/// Sign-in and session settings from `server.toml`.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Reverse proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A session unused this long ends (`server.session_idle_minutes`, default 30).
    pub idle_ms: i64,
    /// The campus's and organisation's names and abbreviations, refused as password bases
    /// (`server.site_words`).
    pub site_words: Vec<String>,
}

impl Default for AuthSettings {
    fn default() -> AuthSettings {
        AuthSettings {
            trusted_proxies: Vec::new(),
            idle_ms: 30 * 60_000,
            site_words: Vec::new(),
        }
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
        assert_eq!(
            documented.server.session_idle_minutes,
            minimal.server.session_idle_minutes
        );
        assert_eq!(
            documented.server.trusted_proxies,
            minimal.server.trusted_proxies
        );
        assert_eq!(documented.server.site_words, minimal.server.site_words);
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges_and_refuse_anything_else() {
        let config = parse(
            "[server]\ndata_dir = \"/x\"\ntrusted_proxies = [\"10.0.0.1\", \"192.168.0.0/16\", \"::1\"]\n",
        );
        config.validate().unwrap();
        let nets = config.auth_settings().trusted_proxies;
        assert_eq!(nets.len(), 3);
        assert!(nets[1].contains(&"192.168.4.5".parse::<std::net::IpAddr>().unwrap()));
        let bad = parse("[server]\ndata_dir = \"/x\"\ntrusted_proxies = [\"proxy.local\"]\n");
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.contains("trusted_proxies") && err.contains("proxy.local"),
            "{err}"
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
    fn the_documented_photos_section_states_the_real_defaults_and_validates() {
        let documented: ServerConfig =
            toml::from_str(include_str!("../../examples/server.toml")).unwrap();
        documented.validate().unwrap();
        let minimal = parse("[server]\ndata_dir = \"/x\"\n");
        assert_eq!(documented.photos, minimal.photos);
        let mut s3 = parse(
            "[server]\ndata_dir = \"/x\"\n[photos]\nbackend = \"s3\"\n[photos.s3]\n\
             bucket = \"b\"\naccess_key_id = \"k\"\nsecret_access_key = \"file-secret\"\n",
        );
        s3.apply_env(|k| (k == "GATEHOUSE_S3_SECRET_ACCESS_KEY").then(|| "env-secret".into()))
            .unwrap();
        s3.validate().unwrap();
        let key = s3.photos.s3.as_ref().unwrap().secret_access_key.clone();
        assert_eq!(key.unwrap().expose(), "env-secret");
        let shown = format!("{s3:?}");
        assert!(!shown.contains("secret\""), "secrets never print: {shown}");
        let bad = parse("[server]\ndata_dir = \"/x\"\n[photos]\nbackend = \"s3\"\n");
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("[photos.s3]"), "{err}");
    }

    #[test]
    fn the_site_time_zone_is_the_configured_one_and_an_unknown_zone_is_refused() {
        let minimal = parse("[server]\ndata_dir = \"/x\"\n");
        assert_eq!(minimal.site_tz(), chrono_tz::Asia::Shanghai);
        let urumqi = parse("[server]\ndata_dir = \"/x\"\ntimezone = \"Asia/Urumqi\"\n");
        urumqi.validate().unwrap();
        assert_eq!(urumqi.site_tz(), chrono_tz::Asia::Urumqi);
        let bad = parse("[server]\ndata_dir = \"/x\"\ntimezone = \"Mars/Olympus\"\n");
        let err = bad.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "configuration: server.timezone: unknown time zone \"Mars/Olympus\""
        );
    }

    #[test]
    fn an_unknown_key_is_refused() {
        assert!(toml::from_str::<ServerConfig>("[server]\ndata_dir = \"/x\"\nport = 1\n").is_err());
    }
}
