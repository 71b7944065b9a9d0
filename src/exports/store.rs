//! Exports queries: the rows and how they are read and written. Every write takes the
//! transaction it runs in.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{export_results, exports};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = exports)]
pub struct ExportRow {
    pub id: String,
    pub clinic_id: String,
    pub period_from: NaiveDateTime,
    pub period_to: NaiveDateTime,
    pub requested_by: Option<String>,
    pub requested_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = export_results)]
pub struct ResultRow {
    pub export_id: String,
    pub clinic_id: String,
    pub succeeded: bool,
    pub sha256: Option<String>,
    pub bytes: Option<i64>,
    pub chain_head: Option<String>,
    pub error: Option<String>,
    pub finished_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<ExportRow> {
    exports::table
        .filter(exports::clinic_id.eq(clinic_id))
        .filter(exports::id.eq(id))
        .select(ExportRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NoSuch("export"))
}

/// Exports requested but never finished (the service stopped while building them).
pub fn unfinished(conn: &mut DbConn) -> AppResult<Vec<(String, String)>> {
    let done = export_results::table.filter(export_results::export_id.eq(exports::id));
    Ok(exports::table
        .filter(diesel::dsl::not(diesel::dsl::exists(done)))
        .select((exports::clinic_id, exports::id))
        .order(exports::requested_at.asc())
        .load(conn)?)
}
