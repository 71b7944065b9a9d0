//! The mail URL setting: where messages go and how securely. Read by the configuration check at
//! start-up and by the mail transport.

use std::path::PathBuf;

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
