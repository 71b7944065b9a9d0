//! Queries on users, memberships and refresh tokens.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::Role;
use crate::db::schema::{clinics, memberships, refresh_tokens, users};
use crate::db::{self, DbConn};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub active: bool,
    pub token_version: i64,
    pub created_at: NaiveDateTime,
    pub password_changed_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    pub id: String,
    pub clinic_id: String,
    pub user_id: String,
    pub role: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Practitioner rules (credentials, eligibility) apply to this member.
    pub works_on_clients: bool,
}

impl MembershipRow {
    pub fn role(&self) -> Role {
        // The column has a CHECK constraint; an unknown value is read as the least privileged.
        Role::from_db(&self.role).unwrap_or(Role::Inspector)
    }

    /// Whether the membership was active at `at`. The row keeps only its latest state, so a
    /// member deactivated by a change after `at` counts as active then, and one reactivated
    /// after `at` as active throughout (the audit chain has the exact history).
    pub fn active_at(&self, at: NaiveDateTime) -> bool {
        self.active || self.updated_at > at
    }
}

pub fn find_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(user_id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_user_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
}

pub fn insert_user(conn: &mut DbConn, new: &NewUser<'_>) -> QueryResult<UserRow> {
    let now = db::now();
    let row = UserRow {
        id: db::new_id(),
        email: new.email.to_owned(),
        display_name: new.display_name.to_owned(),
        password_hash: new.password_hash.to_owned(),
        active: true,
        token_version: 1,
        created_at: now,
        password_changed_at: now,
    };
    diesel::insert_into(users::table)
        .values((
            users::id.eq(&row.id),
            users::email.eq(&row.email),
            users::display_name.eq(&row.display_name),
            users::password_hash.eq(&row.password_hash),
            users::active.eq(row.active),
            users::token_version.eq(row.token_version),
            users::created_at.eq(row.created_at),
            users::password_changed_at.eq(row.password_changed_at),
        ))
        .execute(conn)?;
    Ok(row)
}

/// Replaces a stored hash with a stronger one of the same password; tokens stay valid.
pub fn upgrade_hash(conn: &mut DbConn, user_id: &str, new_hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::password_hash.eq(new_hash))
        .execute(conn)?;
    Ok(())
}

/// Sets a new password and ends every session of the user: outstanding access tokens fail on
/// their next request (token version) and refresh tokens are revoked.
pub fn change_password(conn: &mut DbConn, user_id: &str, new_hash: &str) -> QueryResult<()> {
    let now = db::now();
    diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(new_hash),
            users::token_version.eq(users::token_version + 1),
            users::password_changed_at.eq(now),
        ))
        .execute(conn)?;
    revoke_all_refresh_tokens(conn, user_id)?;
    Ok(())
}

/// Every membership of a user, with the clinic's name.
pub fn memberships_of(
    conn: &mut DbConn,
    user_id: &str,
) -> QueryResult<Vec<(MembershipRow, String)>> {
    memberships::table
        .inner_join(clinics::table)
        .filter(memberships::user_id.eq(user_id))
        .select((MembershipRow::as_select(), clinics::name))
        .order(memberships::created_at.asc())
        .load(conn)
}

pub fn members_of(
    conn: &mut DbConn,
    clinic_id: &str,
) -> QueryResult<Vec<(MembershipRow, UserRow)>> {
    memberships::table
        .inner_join(users::table)
        .filter(memberships::clinic_id.eq(clinic_id))
        .select((MembershipRow::as_select(), UserRow::as_select()))
        .order(memberships::created_at.asc())
        .load(conn)
}

pub fn find_member(
    conn: &mut DbConn,
    clinic_id: &str,
    user_id: &str,
) -> QueryResult<Option<(MembershipRow, UserRow)>> {
    memberships::table
        .inner_join(users::table)
        .filter(memberships::clinic_id.eq(clinic_id))
        .filter(memberships::user_id.eq(user_id))
        .select((MembershipRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()
}

/// `works_on_clients` counts for owners only: technicians always work on clients, inspectors never.
pub fn insert_membership(
    conn: &mut DbConn,
    clinic_id: &str,
    user_id: &str,
    role: Role,
    works_on_clients: bool,
) -> QueryResult<MembershipRow> {
    let now = db::now();
    let row = MembershipRow {
        id: db::new_id(),
        clinic_id: clinic_id.to_owned(),
        user_id: user_id.to_owned(),
        role: role.as_db().to_owned(),
        active: true,
        created_at: now,
        updated_at: now,
        works_on_clients: role.works_on_clients(works_on_clients),
    };
    diesel::insert_into(memberships::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

pub fn update_membership(
    conn: &mut DbConn,
    membership_id: &str,
    role: Role,
    active: bool,
    works_on_clients: bool,
) -> QueryResult<MembershipRow> {
    diesel::update(memberships::table.find(membership_id))
        .set((
            memberships::role.eq(role.as_db()),
            memberships::active.eq(active),
            memberships::works_on_clients.eq(role.works_on_clients(works_on_clients)),
            memberships::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    memberships::table
        .find(membership_id)
        .select(MembershipRow::as_select())
        .first(conn)
}

/// Active owners of a clinic, so the last one cannot lock everybody out.
pub fn active_owner_count(conn: &mut DbConn, clinic_id: &str) -> QueryResult<i64> {
    memberships::table
        .filter(memberships::clinic_id.eq(clinic_id))
        .filter(memberships::role.eq(Role::Owner.as_db()))
        .filter(memberships::active.eq(true))
        .count()
        .get_result(conn)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert_refresh_token(
    conn: &mut DbConn,
    user_id: &str,
    family_id: &str,
    token_hash: &str,
    ttl_days: u64,
) -> QueryResult<()> {
    let now = db::now();
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(db::new_id()),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::family_id.eq(family_id),
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::created_at.eq(now),
            refresh_tokens::expires_at.eq(now + Duration::days(ttl_days as i64)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_refresh_token(
    conn: &mut DbConn,
    token_hash: &str,
) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()
}

pub fn mark_refresh_token_used(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    // The `used_at IS NULL` guard makes a concurrent second use of one token lose the race.
    diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(db::now()))
    .execute(conn)
}

pub fn revoke_refresh_family(conn: &mut DbConn, family_id: &str) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(db::now()))
    .execute(conn)
}

pub fn revoke_all_refresh_tokens(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(db::now()))
    .execute(conn)
}
