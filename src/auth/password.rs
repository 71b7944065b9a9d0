//! Passwords: argon2id at OWASP's minimum parameters or stronger, stored as PHC strings.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::FieldError;

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

pub const MIN_LENGTH: usize = 12;
/// Long passphrases are welcome; the cap only stops a megabyte "password" from tying up a core.
pub const MAX_LENGTH: usize = 1024;

/// A few passwords long enough to pass the length rule that attackers try first.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456789abc",
    "password1234",
    "password12345",
    "passwordpassword",
    "qwertyuiop123",
    "qwertyuiopasdf",
    "iloveyou1234",
    "aaaaaaaaaaaa",
    "abc123abc123",
    "letmein12345",
    "welcome12345",
    "changeme1234",
    "administrator",
    "111111111111",
    "000000000000",
];

fn argon2() -> Argon2<'static> {
    // The parameters are constants known to be valid.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy; the reason names what to change.
pub fn check_policy(password: &str, email: &str) -> Result<(), FieldError> {
    let length = password.chars().count();
    let reason = if length < MIN_LENGTH {
        Some(format!("must be at least {MIN_LENGTH} characters"))
    } else if length > MAX_LENGTH {
        Some(format!("must be at most {MAX_LENGTH} characters"))
    } else if password.trim().is_empty() {
        Some("must not be only white space".to_owned())
    } else if COMMON.contains(&password.to_lowercase().as_str()) {
        Some("is too common; choose a passphrase of several words".to_owned())
    } else if password.eq_ignore_ascii_case(email) {
        Some("must not be your email address".to_owned())
    } else {
        None
    };
    match reason {
        Some(r) => Err(FieldError::new("password", r)),
        None => Ok(()),
    }
}

pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// The stored "hash" of an account invited but not yet accepted: no password matches it.
pub const NO_PASSWORD_YET: &str = "!invited";

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    /// Correct, but hashed below today's policy: store a new hash.
    CorrectButWeakHash,
    Wrong,
}

/// Checks `password` against `stored`, or against `dummy` when there is no usable hash (no
/// account, or an invited account that has no password yet), so every failed login costs one
/// full hash and its timing tells nothing about which accounts exist.
pub fn verify_or_dummy(password: &str, stored: Option<&str>, dummy: &str) -> Verdict {
    let checked = hash_to_check(stored, dummy);
    let verdict = verify(password, checked);
    if std::ptr::eq(checked, dummy) {
        Verdict::Wrong
    } else {
        verdict
    }
}

/// The stored hash when it is a real one, else the dummy.
fn hash_to_check<'a>(stored: Option<&'a str>, dummy: &'a str) -> &'a str {
    stored
        .filter(|s| PasswordHash::new(s).is_ok())
        .unwrap_or(dummy)
}

pub fn verify(password: &str, stored: &str) -> Verdict {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verdict::Wrong;
    };
    if argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verdict::Wrong;
    }
    let strong = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() >= MEMORY_KIB && p.t_cost() >= ITERATIONS && p.p_cost() >= PARALLELISM
        });
    if strong {
        Verdict::Correct
    } else {
        Verdict::CorrectButWeakHash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_without_a_usable_hash_costs_a_full_hash_all_the_same() {
        let dummy = hash("dummy").unwrap();
        let real = hash("correct horse battery staple").unwrap();
        assert!(std::ptr::eq(hash_to_check(None, &dummy), dummy.as_str()));
        assert!(std::ptr::eq(
            hash_to_check(Some(NO_PASSWORD_YET), &dummy),
            dummy.as_str()
        ));
        assert!(std::ptr::eq(
            hash_to_check(Some(&real), &dummy),
            real.as_str()
        ));
        // The dummy's own password never logs anyone in.
        assert_eq!(
            verify_or_dummy("dummy", Some(NO_PASSWORD_YET), &dummy),
            Verdict::Wrong
        );
        assert_eq!(
            verify_or_dummy("correct horse battery staple", Some(&real), &dummy),
            Verdict::Correct
        );
    }

    #[test]
    fn hashes_are_argon2id_at_owasp_strength_and_verify() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(verify("correct horse battery staple", &h), Verdict::Correct);
        assert_eq!(verify("correct horse battery stapler", &h), Verdict::Wrong);
        assert_eq!(verify("anything", "not a hash"), Verdict::Wrong);
    }

    #[test]
    fn weaker_hashes_are_flagged_for_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(
            b"correct horse battery staple",
            &SaltString::generate(&mut OsRng),
        )
        .unwrap()
        .to_string();
        assert_eq!(
            verify("correct horse battery staple", &weak),
            Verdict::CorrectButWeakHash
        );
    }

    #[test]
    fn policy_boundaries() {
        assert!(check_policy("elevenchars", "a@b.c").is_err());
        assert!(check_policy("twelve chars", "a@b.c").is_ok());
        assert!(check_policy(&"x".repeat(MAX_LENGTH), "a@b.c").is_ok());
        assert!(check_policy(&"x".repeat(MAX_LENGTH + 1), "a@b.c").is_err());
        assert!(check_policy("Password1234", "a@b.c").is_err());
        assert!(check_policy("            ", "a@b.c").is_err());
        assert!(check_policy("owner@clinic.example", "owner@clinic.example").is_err());
        // Multi-byte characters count as characters, not bytes.
        assert!(check_policy("ééééééééééé", "a@b.c").is_err());
    }
}
