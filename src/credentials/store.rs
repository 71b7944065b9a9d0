//! Queries on credentials and their verifications.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::credentials::model::{CredentialFact, CredentialKind, HepatitisBStatus};
use crate::db::schema::{credential_verifications, credentials};
use crate::db::DbConn;
use crate::error::AppResult;
use crate::records::{current, standing};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credentials)]
pub struct CredentialRow {
    pub id: String,
    pub version: i32,
    pub clinic_id: String,
    pub user_id: String,
    pub kind: String,
    pub issuer: Option<String>,
    pub number: Option<String>,
    pub issued_on: Option<NaiveDate>,
    pub expires_on: Option<NaiveDate>,
    pub hepatitis_b_status: Option<String>,
    pub declined_on: Option<NaiveDate>,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub amendment_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = credential_verifications)]
pub struct VerificationRow {
    pub credential_id: String,
    pub credential_version: i32,
    pub clinic_id: String,
    pub verified_by: String,
    pub verified_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct CredentialFilter {
    pub user_id: Option<String>,
    pub kind: Option<String>,
    pub after_id: Option<String>,
    pub limit: i64,
    /// The credentials as they stood at this moment (later records, amendments and
    /// verifications left out); now when absent.
    pub at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConn, row: &CredentialRow) -> QueryResult<()> {
    diesel::insert_into(credentials::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, clinic_id: &str, id: &str) -> QueryResult<Option<CredentialRow>> {
    credentials::table
        .filter(credentials::clinic_id.eq(clinic_id))
        .filter(credentials::id.eq(id))
        .filter(current("credentials"))
        .select(CredentialRow::as_select())
        .first(conn)
        .optional()
}

pub fn history(conn: &mut DbConn, clinic_id: &str, id: &str) -> QueryResult<Vec<CredentialRow>> {
    credentials::table
        .filter(credentials::clinic_id.eq(clinic_id))
        .filter(credentials::id.eq(id))
        .select(CredentialRow::as_select())
        .order(credentials::version.asc())
        .load(conn)
}

pub fn list(
    conn: &mut DbConn,
    clinic_id: &str,
    f: &CredentialFilter,
) -> QueryResult<Vec<CredentialRow>> {
    let mut query = credentials::table
        .filter(credentials::clinic_id.eq(clinic_id))
        .select(CredentialRow::as_select())
        .order(credentials::id.desc())
        .limit(f.limit)
        .into_boxed();
    query = standing(query, "credentials", f.at);
    if let Some(user) = &f.user_id {
        query = query.filter(credentials::user_id.eq(user.clone()));
    }
    if let Some(kind) = &f.kind {
        query = query.filter(credentials::kind.eq(kind.clone()));
    }
    if let Some(after) = &f.after_id {
        query = query.filter(credentials::id.lt(after.clone()));
    }
    query.load(conn)
}

pub fn of_user(
    conn: &mut DbConn,
    clinic_id: &str,
    user_id: &str,
) -> QueryResult<Vec<CredentialRow>> {
    credentials::table
        .filter(credentials::clinic_id.eq(clinic_id))
        .filter(credentials::user_id.eq(user_id))
        .filter(current("credentials"))
        .select(CredentialRow::as_select())
        .load(conn)
}

/// A member's credentials as they stood at `at`: the version current then, none recorded later.
pub fn of_user_as_of(
    conn: &mut DbConn,
    clinic_id: &str,
    user_id: &str,
    at: NaiveDateTime,
) -> QueryResult<Vec<CredentialRow>> {
    credentials::table
        .filter(credentials::clinic_id.eq(clinic_id))
        .filter(credentials::user_id.eq(user_id))
        .filter(crate::records::as_of("credentials", at))
        .select(CredentialRow::as_select())
        .load(conn)
}

pub fn insert_verification(conn: &mut DbConn, row: &VerificationRow) -> QueryResult<()> {
    diesel::insert_into(credential_verifications::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Verifications of the given credentials (of any version; callers match the version), made by
/// `by` if given.
pub fn verifications_of(
    conn: &mut DbConn,
    clinic_id: &str,
    ids: &[String],
    by: Option<NaiveDateTime>,
) -> QueryResult<Vec<VerificationRow>> {
    let mut query = credential_verifications::table
        .filter(credential_verifications::clinic_id.eq(clinic_id))
        .filter(credential_verifications::credential_id.eq_any(ids))
        .select(VerificationRow::as_select())
        .into_boxed();
    if let Some(by) = by {
        query = query.filter(credential_verifications::verified_at.le(by));
    }
    query.load(conn)
}

crate::records::versioned_rows!(CredentialRow);

impl CredentialRow {
    /// What the eligibility rule takes from this version of a credential. A declination counts
    /// from the day it was signed.
    pub fn fact(&self, verified: bool) -> AppResult<CredentialFact> {
        Ok(CredentialFact {
            id: self.id.clone(),
            kind: CredentialKind::from_db(&self.kind)?,
            hepatitis_b_status: self
                .hepatitis_b_status
                .as_deref()
                .map(HepatitisBStatus::from_db)
                .transpose()?,
            issued_on: self.issued_on.or(self.declined_on),
            expires_on: self.expires_on,
            verified,
        })
    }
}
