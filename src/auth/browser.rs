//! Signed-in browsers (the pages). The cookie carries a random 256-bit id; only its SHA-256 is
//! kept, so a copy of the database signs no one in. A session ends when its user signs out, after
//! an idle spell, at an absolute limit, or as soon as the account's token version moves on (a
//! password change or a deactivation), which is checked on every request.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::store::{self, UserRow};
use super::token;
use crate::db::schema::browser_sessions;
use crate::db::{self, DbConn};
use crate::error::AppResult;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = browser_sessions)]
struct SessionRow {
    id_hash: String,
    user_id: String,
    token_version: i64,
    csrf_token: String,
    created_at: NaiveDateTime,
    last_seen_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
}

/// How long a browser session lasts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Limits {
    pub fn from_settings(auth: &crate::config::AuthSettings) -> Self {
        Self {
            idle: Duration::minutes(i64::try_from(auth.browser_idle_minutes).unwrap_or(30)),
            absolute: Duration::hours(i64::try_from(auth.browser_absolute_hours).unwrap_or(12)),
        }
    }
}

/// A new session: the cookie's value (shown once, never stored) and its CSRF token.
pub struct Opened {
    pub cookie: String,
    pub csrf_token: String,
}

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct Signed {
    pub user: UserRow,
    pub csrf_token: String,
}

/// Why a cookie no longer signs anyone in; the page says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No such session (never was, or signed out).
    Unknown,
    Idle,
    Absolute,
    /// The password changed or the account was deactivated since sign-in.
    AccountChanged,
}

pub fn open(conn: &mut DbConn, user: &UserRow) -> AppResult<Opened> {
    let cookie = token::new_refresh_token();
    let csrf_token = token::new_refresh_token();
    let now = db::now();
    diesel::insert_into(browser_sessions::table)
        .values(SessionRow {
            id_hash: token::hash_refresh_token(&cookie),
            user_id: user.id.clone(),
            token_version: user.token_version,
            csrf_token: csrf_token.clone(),
            created_at: now,
            last_seen_at: now,
            ended_at: None,
        })
        .execute(conn)?;
    Ok(Opened { cookie, csrf_token })
}

/// The session a cookie names, if it is still live; its idle clock restarts.
pub fn resume(conn: &mut DbConn, limits: Limits, cookie: &str) -> AppResult<Result<Signed, Ended>> {
    let hash = token::hash_refresh_token(cookie);
    let row: Option<SessionRow> = browser_sessions::table
        .find(&hash)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row.filter(|r| r.ended_at.is_none()) else {
        return Ok(Err(Ended::Unknown));
    };
    let now = db::now();
    let ended = if now - row.created_at >= limits.absolute {
        Some(Ended::Absolute)
    } else if now - row.last_seen_at >= limits.idle {
        Some(Ended::Idle)
    } else {
        None
    };
    let user = store::find_user(conn, &row.user_id)?;
    let (ended, user) = match (ended, user) {
        (Some(why), _) => (Some(why), None),
        (None, Some(u)) if u.active && u.token_version == row.token_version => (None, Some(u)),
        (None, _) => (Some(Ended::AccountChanged), None),
    };
    if let Some(why) = ended {
        end_hash(conn, &hash)?;
        return Ok(Err(why));
    }
    let Some(user) = user else {
        return Ok(Err(Ended::Unknown));
    };
    // Touch at most once a minute: the idle clock needs no finer grain, and a page's requests
    // should not each write.
    if now - row.last_seen_at >= Duration::minutes(1) {
        diesel::update(browser_sessions::table.find(&hash))
            .set(browser_sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Ok(Signed {
        user,
        csrf_token: row.csrf_token,
    }))
}

fn end_hash(conn: &mut DbConn, hash: &str) -> AppResult<()> {
    diesel::update(
        browser_sessions::table
            .find(hash)
            .filter(browser_sessions::ended_at.is_null()),
    )
    .set(browser_sessions::ended_at.eq(db::now()))
    .execute(conn)?;
    Ok(())
}

/// Signs a browser out (an unknown cookie is no error).
pub fn close(conn: &mut DbConn, cookie: &str) -> AppResult<()> {
    end_hash(conn, &token::hash_refresh_token(cookie))
}
