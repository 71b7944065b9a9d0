//! Where messages go: `.eml` files in a folder (the default, no server needed) or an SMTP relay
//! configured by URL, with connect and command time-outs of at most 10 s.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};

use crate::config::MailSettings;

pub use crate::config::mail_url::{parse_url, tls_unstated, Target, TlsMode};

/// Why a delivery failed, and whether trying again could help.
#[derive(Debug)]
pub struct SendError {
    /// The server refused the message for good (a 5xx reply): retrying cannot help.
    pub permanent: bool,
    pub message: String,
}

pub enum Transport {
    Files(PathBuf),
    Smtp(Box<SmtpTransport>),
}

impl Transport {
    pub fn from_settings(settings: &MailSettings) -> Result<Self, String> {
        match parse_url(settings.url.expose())? {
            Target::Files(dir) => Ok(Self::Files(dir)),
            Target::Smtp {
                host,
                port,
                tls,
                user,
                password,
            } => {
                let params =
                    || TlsParameters::new(host.clone()).map_err(|e| format!("TLS for {host}: {e}"));
                let tls = match tls {
                    TlsMode::None => Tls::None,
                    TlsMode::Opportunistic => Tls::Opportunistic(params()?),
                    TlsMode::Required => Tls::Required(params()?),
                    TlsMode::Wrapper => Tls::Wrapper(params()?),
                };
                let mut builder = SmtpTransport::builder_dangerous(host.clone())
                    .port(port)
                    .tls(tls)
                    .timeout(Some(Duration::from_secs(
                        settings.timeout_secs.clamp(1, 10),
                    )));
                let user = settings
                    .username
                    .as_ref()
                    .map(|s| s.expose().to_owned())
                    .or(user);
                let password = settings
                    .password
                    .as_ref()
                    .map(|s| s.expose().to_owned())
                    .or(password);
                if let Some(user) = user {
                    builder =
                        builder.credentials(Credentials::new(user, password.unwrap_or_default()));
                }
                Ok(Self::Smtp(Box::new(builder.build())))
            }
        }
    }

    /// Delivers one message. `id` names the file in the folder transport, so a retry after a
    /// crash replaces the file instead of adding a second copy.
    pub fn send(&self, id: &str, message: &Message) -> Result<(), SendError> {
        match self {
            Self::Files(dir) => {
                let transient = |e: std::io::Error| SendError {
                    permanent: false,
                    message: format!("cannot write to {}: {e}", dir.display()),
                };
                let path = dir.join(format!("{id}.eml"));
                let partial = dir.join(format!("{id}.eml.partial"));
                crate::files::create_private(&partial)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, &message.formatted()))
                    .map_err(transient)?;
                std::fs::rename(&partial, &path).map_err(transient)?;
                Ok(())
            }
            Self::Smtp(smtp) => smtp.send(message).map(|_| ()).map_err(|e| SendError {
                permanent: e.is_permanent(),
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_transport_and_its_tls() {
        assert_eq!(
            parse_url("file://data/outbox").unwrap(),
            Target::Files(PathBuf::from("data/outbox"))
        );
        let smtp = |url| match parse_url(url).unwrap() {
            Target::Smtp {
                host,
                port,
                tls,
                user,
                password,
            } => (host, port, tls, user, password),
            Target::Files(_) => panic!("files"),
        };
        assert_eq!(
            smtp("smtp://mail.example:587?tls=required"),
            ("mail.example".into(), 587, TlsMode::Required, None, None)
        );
        assert_eq!(
            smtp("smtp://relay.example?tls=opportunistic").2,
            TlsMode::Opportunistic
        );
        assert_eq!(
            smtp("smtps://u:p@mail.example"),
            (
                "mail.example".into(),
                465,
                TlsMode::Wrapper,
                Some("u".into()),
                Some("p".into())
            )
        );
        assert_eq!(smtp("smtp://127.0.0.1:2525").2, TlsMode::None);
        for bad in [
            "mail.example",
            "http://x",
            "smtp://",
            "smtp://h:port",
            "smtps://h?tls=none",
            "smtp://h?tls=maybe",
            "file://",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
