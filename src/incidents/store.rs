//! Incidents queries: the rows and how they are read and written. Every write takes the
//! transaction it runs in.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{incident_closures, incident_follow_ups, incidents};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::records::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = incidents)]
pub struct IncidentRow {
    pub id: String,
    pub version: i32,
    pub clinic_id: String,
    pub kind: String,
    pub occurred_at: NaiveDateTime,
    pub location: String,
    pub session_id: Option<String>,
    pub people: String,
    pub description: String,
    pub immediate_actions: String,
    pub sharps_device_type: Option<String>,
    pub sharps_device_brand: Option<String>,
    pub sharps_work_area: Option<String>,
    pub sharps_how: Option<String>,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub amendment_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = incident_follow_ups)]
pub struct FollowUpRow {
    pub id: String,
    pub clinic_id: String,
    pub incident_id: String,
    pub kind: String,
    pub note: String,
    pub done_at: NaiveDateTime,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = incident_closures)]
pub struct ClosureRow {
    pub incident_id: String,
    pub clinic_id: String,
    pub closed_at: NaiveDateTime,
    pub closed_by: Option<String>,
    pub summary: String,
}

pub fn find(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<IncidentRow> {
    incidents::table
        .filter(incidents::clinic_id.eq(clinic_id))
        .filter(incidents::id.eq(id))
        .filter(current("incidents"))
        .select(IncidentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NoSuch("incident"))
}

crate::records::versioned_rows!(IncidentRow);
