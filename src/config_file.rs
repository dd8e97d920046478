//! Reading a TOML configuration file, for the gate (`gate.toml`) and the centre (`server.toml`)
//! alike: the file read, its text parsed into the caller's typed configuration with the line of
//! a refused key named, the process environment read for overrides, and the one error type that
//! says which file or key is at fault.
//!
//! What it never does: know a configuration's keys, defaults or rules (each side's `config`
//! module does), or read an environment variable the caller did not name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration was refused; each message names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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

/// Reads the file at `path` and parses it as `T` (a parse error names the file and the line).
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        ConfigError::Parse { message, .. } => ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        },
        other => other,
    })
}

/// Parses TOML text as `T`; a refusal says on which line (`line 3: unknown field ...`) and names
/// no file.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: PathBuf::new(),
        message: e
            .span()
            .map(|s| format!("line {}: ", line_of(text, s.start)))
            .unwrap_or_default()
            + e.message().trim_end(),
    })
}

/// The process environment, as the `var` argument of the configurations' `apply_env`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The listen address the environment variable `name` overrides, if it is set; a value that is
/// not `ADDRESS:PORT` is refused naming the variable.
pub fn listen_override(
    var: impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(listen) = var(name) else {
        return Ok(None);
    };
    listen
        .parse()
        .map(Some)
        .map_err(|_| ConfigError::Invalid(format!("{name} {listen:?} is not ADDRESS:PORT")))
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_key_is_named_with_its_line() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Config {
            a: u32,
        }
        let err = parse::<Config>("a = 1\n\nb = 2\n").unwrap_err().to_string();
        assert!(err.contains("line 3: unknown field `b`"), "{err}");
    }

    #[test]
    fn a_listen_override_that_is_not_an_address_names_its_variable() {
        let var = |v: &'static str| move |_: &str| Some(v.to_string());
        assert_eq!(
            listen_override(var("127.0.0.1:9"), "X").unwrap(),
            Some("127.0.0.1:9".parse().unwrap())
        );
        let err = listen_override(var("nine"), "X").unwrap_err().to_string();
        assert_eq!(err, "configuration: X \"nine\" is not ADDRESS:PORT");
        assert_eq!(listen_override(|_: &str| None, "X").unwrap(), None);
    }
}
