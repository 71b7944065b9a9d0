//! Inspectors queries: the rows and how they are read and written. Every write takes the
//! transaction it runs in.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{inspector_grant_revocations, inspector_grants};
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = inspector_grants)]
pub struct GrantRow {
    pub id: String,
    pub clinic_id: String,
    pub user_id: String,
    pub valid_from: NaiveDateTime,
    pub valid_until: NaiveDateTime,
    pub purpose: Option<String>,
    pub granted_by: Option<String>,
    pub granted_at: NaiveDateTime,
    /// Clients' names, contacts and dates of birth are shown (an investigation); otherwise
    /// clients appear by their pseudonymous id only.
    pub client_details: bool,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = inspector_grant_revocations)]
pub struct RevocationRow {
    pub grant_id: String,
    pub clinic_id: String,
    pub reason: String,
    pub revoked_by: Option<String>,
    pub revoked_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<GrantRow> {
    inspector_grants::table
        .filter(inspector_grants::clinic_id.eq(clinic_id))
        .filter(inspector_grants::id.eq(id))
        .select(GrantRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NoSuch("inspector grant"))
}

/// The grant that lets this inspector in now, if any.
pub fn active_grant(
    conn: &mut DbConn,
    clinic_id: &str,
    user_id: &str,
) -> QueryResult<Option<(String, bool)>> {
    let now = db::now();
    let revoked = inspector_grant_revocations::table
        .filter(inspector_grant_revocations::grant_id.eq(inspector_grants::id));
    inspector_grants::table
        .filter(inspector_grants::clinic_id.eq(clinic_id))
        .filter(inspector_grants::user_id.eq(user_id))
        .filter(inspector_grants::valid_from.le(now))
        .filter(inspector_grants::valid_until.gt(now))
        .filter(diesel::dsl::not(diesel::dsl::exists(revoked)))
        .select((inspector_grants::id, inspector_grants::client_details))
        .order(inspector_grants::client_details.desc())
        .first(conn)
        .optional()
}
