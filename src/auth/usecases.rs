//! What accounts do: log in, rotate a refresh token, log out, change a password.

use super::password::{self, Verdict};
use super::store::{self, UserRow};
use super::token::{self, TokenKeys};
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult};

pub const BAD_CREDENTIALS: &str = "the email or password is wrong";
pub const BAD_REFRESH: &str = "the refresh token is invalid, expired or already used; log in again";

/// An access token and a single-use refresh token.
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
}

/// Issues an access token and a new refresh token in a new family (a login) or an existing one
/// (a rotation).
fn issue_pair(
    conn: &mut DbConn,
    tokens: &TokenKeys,
    user: &UserRow,
    family_id: Option<&str>,
) -> AppResult<TokenPair> {
    let access_token = tokens
        .issue(&user.id, user.token_version)
        .map_err(AppError::internal)?;
    let refresh_token = token::new_refresh_token();
    let family = family_id.map(str::to_owned).unwrap_or_else(db::new_id);
    store::insert_refresh_token(
        conn,
        &user.id,
        &family,
        &token::hash_refresh_token(&refresh_token),
        tokens.refresh_ttl_days,
    )?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        expires_in: tokens.access_ttl_secs,
    })
}

/// Checks the password (an unknown or not yet accepted account against `dummy_hash`, so every
/// failed login costs the same) and issues a pair; a hash below today's policy is replaced.
pub fn login(
    conn: &mut DbConn,
    tokens: &TokenKeys,
    dummy_hash: &str,
    email: &str,
    password: &str,
) -> AppResult<TokenPair> {
    let user = authenticate(conn, dummy_hash, email, password)?;
    issue_pair(conn, tokens, &user, None)
}

/// The account an email and password belong to, for the API's login and the pages' sign-in
/// alike: an unknown or inactive account costs what a wrong password does.
pub fn authenticate(
    conn: &mut DbConn,
    dummy_hash: &str,
    email: &str,
    password: &str,
) -> AppResult<UserRow> {
    let user = store::find_user_by_email(conn, email)?;
    let verdict = password::verify_or_dummy(
        password,
        user.as_ref().map(|u| u.password_hash.as_str()),
        dummy_hash,
    );
    let user = match (user, verdict) {
        (Some(u), Verdict::Correct | Verdict::CorrectButWeakHash) if u.active => {
            if verdict == Verdict::CorrectButWeakHash {
                let stronger = password::hash(password).map_err(AppError::internal)?;
                store::upgrade_hash(conn, &u.id, &stronger)?;
            }
            u
        }
        _ => return Err(AppError::Unauthorized(BAD_CREDENTIALS)),
    };
    Ok(user)
}

enum RefreshOutcome {
    Issued(TokenPair),
    Refused,
}

/// Exchanges a refresh token (by its hash) for a new pair. Each works once; presenting a used
/// one again revokes its whole family (it was probably stolen).
pub fn refresh(conn: &mut DbConn, tokens: &TokenKeys, token_hash: &str) -> AppResult<TokenPair> {
    let outcome = db::write_transaction(conn, |conn| {
        let Some(row) = store::find_refresh_token(conn, token_hash)? else {
            return Ok(RefreshOutcome::Refused);
        };
        if row.revoked_at.is_some() || row.used_at.is_some() {
            store::revoke_refresh_family(conn, &row.family_id)?;
            return Ok(RefreshOutcome::Refused);
        }
        if row.expires_at <= db::now() {
            return Ok(RefreshOutcome::Refused);
        }
        let user = store::find_user(conn, &row.user_id)?.filter(|u| u.active);
        let Some(user) = user else {
            return Ok(RefreshOutcome::Refused);
        };
        if store::mark_refresh_token_used(conn, &row.id)? != 1 {
            store::revoke_refresh_family(conn, &row.family_id)?;
            return Ok(RefreshOutcome::Refused);
        }
        issue_pair(conn, tokens, &user, Some(&row.family_id)).map(RefreshOutcome::Issued)
    })?;
    match outcome {
        RefreshOutcome::Issued(pair) => Ok(pair),
        RefreshOutcome::Refused => Err(AppError::Unauthorized(BAD_REFRESH)),
    }
}

/// Ends a session: the refresh token's family stops working (an unknown token is no error).
pub fn logout(conn: &mut DbConn, token_hash: &str) -> AppResult<()> {
    if let Some(row) = store::find_refresh_token(conn, token_hash)? {
        store::revoke_refresh_family(conn, &row.family_id)?;
    }
    Ok(())
}

/// Changes a password after checking the current one; every other session ends.
pub fn change_password(
    conn: &mut DbConn,
    user_id: &str,
    stored_hash: &str,
    current: &str,
    new: &str,
) -> AppResult<()> {
    if password::verify(current, stored_hash) == Verdict::Wrong {
        return Err(AppError::invalid("current_password", "is wrong"));
    }
    let new_hash = password::hash(new).map_err(AppError::internal)?;
    db::write_transaction(conn, |conn| {
        Ok(store::change_password(conn, user_id, &new_hash)?)
    })
}
