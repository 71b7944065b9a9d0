//! Clinics queries: the rows and how they are read and written. Every write takes the
//! transaction it runs in.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::clinics;
use crate::db::DbConn;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clinics)]
pub struct ClinicRow {
    pub id: String,
    pub name: String,
    pub timezone: String,
    pub jurisdiction: String,
    pub address: Option<String>,
    pub registration_number: Option<String>,
    pub created_at: NaiveDateTime,
    /// Shelf life of sterilised packs in days; none for an event-related policy.
    pub pack_shelf_life_days: Option<i32>,
}

pub fn find(conn: &mut DbConn, clinic_id: &str) -> QueryResult<Option<ClinicRow>> {
    clinics::table
        .find(clinic_id)
        .select(ClinicRow::as_select())
        .first(conn)
        .optional()
}

/// How many clinics this installation holds (the service says how to make one when none).
pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    clinics::table.count().get_result(conn)
}
