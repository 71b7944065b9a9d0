//! Layered settings: the embedded `config/default.toml` < `config/default.toml` on disk <
//! `config/$ASEPTIC_ENV.toml` < `ASEPTIC__SECTION__KEY` environment variables; `DATABASE_URL` wins
//! for the database.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod mail_url;

/// The defaults ship inside the binary so it starts from any directory (a container, a service unit).
const EMBEDDED_DEFAULTS: &str = include_str!("../../config/default.toml");

/// The JWT secret in `config/default.toml`; production refuses to run with it.
pub const DEVELOPMENT_JWT_SECRET: &str = "aseptic-development-secret-do-not-use-in-production";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// A value that must never reach a log line or a terminal.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `development` unless `ASEPTIC_ENV` says otherwise.
    #[serde(skip)]
    pub environment: String,
    /// Where the configuration files were read from (jurisdiction profiles live below it).
    #[serde(skip)]
    pub config_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub exports: ExportSettings,
    pub imports: ImportSettings,
    pub mail: MailSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    pub json_limit_bytes: usize,
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Holds credentials for PostgreSQL, so it is a secret too.
    pub url: Secret,
    pub pool_size: u32,
    pub acquire_timeout_secs: u64,
    pub sqlite_busy_timeout_ms: u64,
    pub connect_timeout_secs: u64,
    pub statement_timeout_secs: u64,
    pub ready_timeout_secs: u64,
}

impl DatabaseSettings {
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: std::time::Duration::from_secs(self.connect_timeout_secs),
            statement: std::time::Duration::from_secs(self.statement_timeout_secs),
        }
    }
}

/// How long the database may take before the service stops waiting for it.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To open a connection, handshake included (a server that accepts and never answers).
    pub connect: std::time::Duration,
    /// For any one request's database work; PostgreSQL also cancels a statement running longer.
    pub statement: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: std::time::Duration::from_secs(5),
            statement: std::time::Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// A separate listener for `/metrics` only; empty for none.
    pub bind: String,
    /// When set, `/metrics` also answers on the main listener to `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    pub leeway_secs: u64,
    pub login_per_address_burst: u32,
    pub login_per_address_per_minute: u32,
    pub login_per_account_burst: u32,
    pub login_per_account_per_minute: u32,
    /// A browser session ends after this many minutes without a request.
    pub browser_idle_minutes: u64,
    /// And this many hours after sign-in, however busy.
    pub browser_absolute_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExportSettings {
    pub signing_key_path: String,
    /// Where built export zips are kept.
    pub dir: String,
}

/// Limits on cycle-record uploads from sterilisers.
#[derive(Debug, Clone, Deserialize)]
pub struct ImportSettings {
    /// Largest upload body (one file, several, or a zip of a card).
    pub upload_limit_bytes: usize,
    /// Largest single file, and largest file inside a zip once unpacked.
    pub file_limit_bytes: u64,
    /// Everything a zip unpacks to.
    pub unpacked_limit_bytes: u64,
    /// Files in one upload.
    pub files_limit: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    /// `file://dir`, `smtp://host:port[?tls=required|opportunistic]` or `smtps://host:port`.
    pub url: Secret,
    pub from: String,
    pub public_url: String,
    pub timeout_secs: u64,
    pub give_up_after_hours: u64,
    pub retry_base_ms: u64,
    pub poll_interval_ms: u64,
    pub worker: bool,
    /// From ASEPTIC_SMTP_USERNAME / ASEPTIC_SMTP_PASSWORD, never from a file.
    #[serde(skip)]
    pub username: Option<Secret>,
    #[serde(skip)]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub level: String,
    pub format: String,
}

impl Settings {
    /// Reads settings the way the binary does: from `./config` (or `ASEPTIC_CONFIG_DIR`) and the
    /// process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let dir = std::env::var("ASEPTIC_CONFIG_DIR").unwrap_or_else(|_| "config".to_owned());
        let environment = std::env::var("ASEPTIC_ENV").unwrap_or_else(|_| "development".to_owned());
        let env_vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(Path::new(&dir), &environment, &env_vars)
    }

    /// Reads settings from an explicit directory, environment name and variable list, so tests can
    /// build settings without touching the process environment.
    pub fn load_from(
        dir: &Path,
        environment: &str,
        env_vars: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let overrides: config::Map<String, String> = env_vars
            .iter()
            .filter(|(k, _)| k.starts_with("ASEPTIC__"))
            .cloned()
            .collect();
        let on_disk_default: PathBuf = dir.join("default.toml");
        let per_env: PathBuf = dir.join(format!("{environment}.toml"));
        let mut settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from(on_disk_default).required(false))
            .add_source(config::File::from(per_env).required(false))
            .add_source(
                config::Environment::with_prefix("ASEPTIC")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(overrides)),
            )
            .build()?
            .try_deserialize()?;
        settings.environment = environment.to_owned();
        settings.config_dir = dir.to_path_buf();
        if let Some((_, url)) = env_vars.iter().find(|(k, _)| k == "DATABASE_URL") {
            if !url.trim().is_empty() {
                settings.database.url = Secret::new(url.trim());
            }
        }
        let var = |name: &str| {
            env_vars
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| Secret::new(v.clone()))
        };
        settings.mail.username = var("ASEPTIC_SMTP_USERNAME");
        settings.mail.password = var("ASEPTIC_SMTP_PASSWORD");
        settings.validate()?;
        Ok(settings)
    }

    pub fn is_production(&self) -> bool {
        self.environment == "production"
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.auth.leeway_secs > 30 {
            return invalid("auth.leeway_secs must be at most 30");
        }
        if self.auth.access_token_ttl_secs == 0 || self.auth.access_token_ttl_secs > 900 {
            return invalid("auth.access_token_ttl_secs must be between 1 and 900 (15 minutes)");
        }
        if self.auth.jwt_secret.expose().len() < 32 {
            return invalid("auth.jwt_secret must be at least 32 bytes long");
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size must be at least 1");
        }
        for (name, value) in [
            (
                "database.connect_timeout_secs",
                self.database.connect_timeout_secs,
            ),
            (
                "database.statement_timeout_secs",
                self.database.statement_timeout_secs,
            ),
            (
                "database.ready_timeout_secs",
                self.database.ready_timeout_secs,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
            }
        }
        if self
            .metrics
            .token
            .as_ref()
            .is_some_and(|t| !t.expose().is_empty() && t.expose().len() < 16)
        {
            return invalid("metrics.token must be at least 16 characters (or empty for none)");
        }
        for (name, value) in [
            (
                "auth.login_per_address_burst",
                self.auth.login_per_address_burst,
            ),
            (
                "auth.login_per_address_per_minute",
                self.auth.login_per_address_per_minute,
            ),
            (
                "auth.login_per_account_burst",
                self.auth.login_per_account_burst,
            ),
            (
                "auth.login_per_account_per_minute",
                self.auth.login_per_account_per_minute,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
            }
        }
        if !(1..=24 * 60).contains(&self.auth.browser_idle_minutes) {
            return invalid("auth.browser_idle_minutes must be between 1 and 1440");
        }
        if !(1..=7 * 24).contains(&self.auth.browser_absolute_hours) {
            return invalid("auth.browser_absolute_hours must be between 1 and 168");
        }
        if self.mail.timeout_secs == 0 || self.mail.timeout_secs > 10 {
            return invalid("mail.timeout_secs must be between 1 and 10");
        }
        if self.mail.give_up_after_hours == 0 {
            return invalid("mail.give_up_after_hours must be at least 1");
        }
        if let Err(e) = mail_url::parse_url(self.mail.url.expose()) {
            return Err(ConfigError::Invalid(format!("mail.url: {e}")));
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return invalid(
                "mail.from must be an address, e.g. \"Aseptic <aseptic@clinic.example>\"",
            );
        }
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            return invalid("log.format must be \"json\" or \"pretty\"");
        }
        if self.is_production() {
            if self.auth.jwt_secret.expose() == DEVELOPMENT_JWT_SECRET {
                return invalid(
                    "refusing to start in production with the development JWT secret: \
                     set ASEPTIC__AUTH__JWT_SECRET",
                );
            }
            if mail_url::tls_unstated(self.mail.url.expose()) {
                return invalid(
                    "refusing to start in production with mail.url smtp:// that does not say \
                     ?tls=required (or opportunistic, or none for a relay on a private network)",
                );
            }
            let key = self.exports.signing_key_path.trim();
            if key.is_empty() {
                return invalid(
                    "refusing to start in production without an export signing key: \
                     set ASEPTIC__EXPORTS__SIGNING_KEY_PATH",
                );
            }
            // A missing file is created at first start; something else in its place is not.
            if Path::new(key).exists() && !Path::new(key).is_file() {
                return Err(ConfigError::Invalid(format!(
                    "refusing to start in production: export signing key {key} is not a file"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_complete_and_safe() {
        let s = Settings::load_from(Path::new("/nonexistent"), "development", &[]).unwrap();
        assert_eq!(s.database.url.expose(), "sqlite://data/aseptic.db");
        assert_eq!(s.auth.access_token_ttl_secs, 900);
        assert!(s.auth.leeway_secs <= 30);
    }

    #[test]
    fn environment_variables_override_and_database_url_wins() {
        let s = Settings::load_from(
            Path::new("/nonexistent"),
            "development",
            &vars(&[
                ("ASEPTIC__SERVER__WORKERS", "3"),
                ("ASEPTIC__DATABASE__URL", "sqlite://from-aseptic.db"),
                ("DATABASE_URL", "postgres://db/aseptic"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.workers, 3);
        assert_eq!(s.database.url.expose(), "postgres://db/aseptic");
    }

    #[test]
    fn production_refuses_the_development_secret() {
        let err = Settings::load_from(Path::new("/nonexistent"), "production", &[]).unwrap_err();
        assert!(err.to_string().contains("development JWT secret"), "{err}");
    }

    #[test]
    fn production_refuses_to_start_without_a_signing_key() {
        let err = Settings::load_from(
            Path::new("/nonexistent"),
            "production",
            &vars(&[(
                "ASEPTIC__AUTH__JWT_SECRET",
                "a-production-secret-of-more-than-32-bytes",
            )]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("export signing key"), "{err}");
    }

    #[test]
    fn mail_settings_are_checked_at_start() {
        let load = |env: &str, pairs: &[(&str, &str)]| {
            let mut all = vec![
                (
                    "ASEPTIC__AUTH__JWT_SECRET",
                    "a-production-secret-of-more-than-32-bytes",
                ),
                ("ASEPTIC__EXPORTS__SIGNING_KEY_PATH", "/run/secrets/key.pem"),
            ];
            all.extend_from_slice(pairs);
            Settings::load_from(Path::new("/nonexistent"), env, &vars(&all))
        };
        let err = load(
            "production",
            &[("ASEPTIC__MAIL__URL", "smtp://relay.example:587")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("?tls=required"), "{err}");
        assert!(load(
            "production",
            &[(
                "ASEPTIC__MAIL__URL",
                "smtp://relay.example:587?tls=required"
            )]
        )
        .is_ok());
        assert!(load(
            "development",
            &[("ASEPTIC__MAIL__URL", "smtp://127.0.0.1:1025")]
        )
        .is_ok());
        let err = load("development", &[("ASEPTIC__MAIL__TIMEOUT_SECS", "60")]).unwrap_err();
        assert!(err.to_string().contains("mail.timeout_secs"), "{err}");
        let err = load("development", &[("ASEPTIC__MAIL__URL", "mailto:x")]).unwrap_err();
        assert!(err.to_string().contains("mail.url"), "{err}");
        let err = load("development", &[("ASEPTIC__MAIL__FROM", "not an address")]).unwrap_err();
        assert!(err.to_string().contains("mail.from"), "{err}");
        let s = load(
            "development",
            &[
                ("ASEPTIC_SMTP_USERNAME", "aseptic"),
                ("ASEPTIC_SMTP_PASSWORD", "hunter2-but-long"),
            ],
        )
        .unwrap();
        assert_eq!(s.mail.username.as_ref().unwrap().expose(), "aseptic");
        assert!(
            !format!("{s:?}").contains("hunter2"),
            "the SMTP password is never printed"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = Settings::load_from(Path::new("/nonexistent"), "development", &[]).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains(DEVELOPMENT_JWT_SECRET));
        assert!(!printed.contains("sqlite://data"));
    }
}
