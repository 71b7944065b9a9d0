//! Invitations: the way a new account sets its first password, and an account joins a clinic's
//! staff. Only a token's SHA-256 is kept; the token itself is mailed once.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::Role;
use crate::db::schema::invitations;
use crate::db::{self, DbConn};

/// An invitation link stays usable this long.
pub const INVITATION_DAYS: i64 = 7;

/// A staff membership an invitation carries: the clinic, the role, whether they work on clients.
pub type StaffOffer<'a> = (&'a str, Role, bool);

/// Records a new invitation for `user_id` (with the staff membership it offers, if any) and
/// returns its one-time token, shown once, and when it expires. Only the token's hash is kept.
pub fn record(
    conn: &mut DbConn,
    user_id: &str,
    offer: Option<StaffOffer<'_>>,
    invited_by: Option<&str>,
) -> QueryResult<(String, NaiveDateTime)> {
    let token = crate::auth::token::new_refresh_token();
    let now = db::now();
    let expires = now + Duration::days(INVITATION_DAYS);
    diesel::insert_into(invitations::table)
        .values((
            invitations::token_hash.eq(hash_token(&token)),
            invitations::user_id.eq(user_id),
            invitations::created_at.eq(now),
            invitations::expires_at.eq(expires),
            invitations::clinic_id.eq(offer.map(|o| o.0)),
            invitations::role.eq(offer.map(|o| o.1.as_db())),
            invitations::works_on_clients.eq(offer.map(|o| o.2)),
            invitations::invited_by.eq(invited_by),
        ))
        .execute(conn)?;
    Ok((token, expires))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
