//! Where messages go: `.eml` files in a folder (the default, no server needed) or an SMTP relay
//! configured by URL, with connect and command time-outs of at most 10 s.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};

use crate::config::MailSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text: only for a relay on loopback.
    None,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// STARTTLS or nothing: no credentials or mail cross in the clear.
    Required,
    /// TLS from the first byte (smtps, port 465).
    Wrapper,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Files(PathBuf),
    Smtp {
        host: String,
        port: u16,
        tls: TlsMode,
        user: Option<String>,
        password: Option<String>,
    },
}

/// True when an `smtp://` URL leaves TLS unsaid (`?tls=` absent): production refuses that, so
/// mail never crosses a network in the clear by accident.
pub fn tls_unstated(url: &str) -> bool {
    url.starts_with("smtp://") && !url.contains("tls=")
}

/// Parses `file://dir`, `smtp://[user:pass@]host[:port][?tls=none|opportunistic|required]` or
/// `smtps://[user:pass@]host[:port]`.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("must start with file://, smtp:// or smtps://")?;
    match scheme {
        "file" => {
            if rest.is_empty() {
                return Err("file:// needs a folder, e.g. file://data/outbox".into());
            }
            Ok(Target::Files(PathBuf::from(rest)))
        }
        "smtp" | "smtps" => {
            let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
            let authority = authority.trim_end_matches('/');
            let (userinfo, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| format!("port {p:?} is not a number"))?,
                    ),
                ),
                None => (hostport, None),
            };
            if host.is_empty() {
                return Err("the SMTP URL needs a host".into());
            }
            let mut tls = if scheme == "smtps" {
                TlsMode::Wrapper
            } else {
                TlsMode::None
            };
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("tls", "required")) if scheme == "smtp" => tls = TlsMode::Required,
                    Some(("tls", "opportunistic")) if scheme == "smtp" => {
                        tls = TlsMode::Opportunistic
                    }
                    Some(("tls", "none")) if scheme == "smtp" => tls = TlsMode::None,
                    _ => {
                        return Err(format!(
                            "unknown option {pair:?}: smtp:// takes tls=required, opportunistic or none"
                        ))
                    }
                }
            }
            let (user, password) = match userinfo {
                Some(u) => match u.split_once(':') {
                    Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
                    None => (Some(u.to_owned()), None),
                },
                None => (None, None),
            };
            let port = port.unwrap_or(match tls {
                TlsMode::Wrapper => 465,
                TlsMode::Required | TlsMode::Opportunistic => 587,
                TlsMode::None => 25,
            });
            Ok(Target::Smtp {
                host: host.to_owned(),
                port,
                tls,
                user,
                password,
            })
        }
        other => Err(format!(
            "unknown scheme {other:?}: use file://, smtp:// or smtps://"
        )),
    }
}

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
