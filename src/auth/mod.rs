//! Accounts and access: passwords, tokens, login throttling, and the extractors that decide who
//! may call what. This module owns the `users`, `memberships` and `refresh_tokens` tables.

pub mod browser;
pub mod invitations;
pub mod password;
pub mod ratelimit;
pub mod store;
pub mod token;
pub mod usecases;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a member may do in a clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages the clinic: staff, sterilisers, lots, settings; reads everything.
    Owner,
    /// Records the daily work: cycles, checklists, sessions, incidents.
    Technician,
    /// Reads the clinic's records and audit trail; never writes.
    Inspector,
}

crate::db::stored::stored_as!(Role, "role", {
    Owner => "owner",
    Technician => "technician",
    Inspector => "inspector",
});

impl Role {
    /// Whether a member of this role works on clients, given what an owner said of themself:
    /// technicians always do, inspectors never, owners as they choose.
    pub fn works_on_clients(self, owner_says: bool) -> bool {
        match self {
            Self::Technician => true,
            Self::Inspector => false,
            Self::Owner => owner_says,
        }
    }
}

/// Lower-cased and trimmed, so `Owner@Clinic.example ` and `owner@clinic.example` are one account.
pub fn normalise_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A name to show for someone who gave none: the part of the email before the `@`, split at
/// dots, dashes, underscores and plus signs and capitalised ("sam.taylor@…" reads "Sam Taylor"),
/// so labels and lists never print an email address as a person's name.
pub fn name_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let words: Vec<String> = local
        .split(['.', '-', '_', '+'])
        .filter(|w| !w.is_empty() && w.chars().any(char::is_alphabetic))
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect();
    if words.is_empty() {
        "Clinic owner".to_owned()
    } else {
        words.join(" ")
    }
}

/// A deliberately plain check: one `@`, something on each side, a dot in the domain, no spaces.
/// Deliverability is proven by mail, not by a regular expression.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    if email.is_empty() {
        return Err("is required");
    }
    if email.len() > 254 {
        return Err("must be at most 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces");
    }
    let mut parts = email.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None)
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(())
        }
        _ => Err("is not an email address"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(check_email("owner@clinic.example").is_ok());
        for bad in [
            "",
            "owner",
            "owner@",
            "@clinic.example",
            "a@b",
            "a b@c.d",
            "a@b@c.d",
            "a@.b",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalise_email(" Owner@Clinic.Example "),
            "owner@clinic.example"
        );
    }
}

#[cfg(test)]
mod name_tests {
    use super::name_from_email;

    #[test]
    fn a_name_is_derived_from_the_email_never_the_email_itself() {
        assert_eq!(name_from_email("sam.taylor@ink.example"), "Sam Taylor");
        assert_eq!(
            name_from_email("jo_smith+studio@ink.example"),
            "Jo Smith Studio"
        );
        assert_eq!(name_from_email("owner@ink.example"), "Owner");
        assert_eq!(name_from_email("123@ink.example"), "Clinic owner");
    }
}
