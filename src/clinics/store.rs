//! Clinics queries: the rows and how they are read and written. Every write takes the
//! transaction it runs in.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::auth::store::{MembershipRow, UserRow};
use crate::db::schema::{clinics, memberships, users};
use crate::db::{self, DbConn};

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

/// The clinic, read once per request: the caller's check already read it (see [`find_access`]),
/// and the use cases of the request ask for it again.
pub fn find(conn: &mut DbConn, clinic_id: &str) -> QueryResult<Option<ClinicRow>> {
    if let Some(row) = db::recall::<ClinicRow>(&memo_key(clinic_id)) {
        return Ok(Some(row));
    }
    let row = clinics::table
        .find(clinic_id)
        .select(ClinicRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(row) = &row {
        db::remember(memo_key(clinic_id), row.clone());
    }
    Ok(row)
}

fn memo_key(clinic_id: &str) -> String {
    format!("clinic:{clinic_id}")
}

/// The clinic's row changed in this request: the next read asks the database.
pub fn changed(clinic_id: &str) {
    db::forget(&memo_key(clinic_id));
}

/// The caller, their membership of the clinic and the clinic, in one statement: what every
/// request to a clinic's routes checks first. Read on every request, never kept longer, so a
/// password change, a deactivation or an ended membership counts on the very next request on
/// every instance.
pub fn find_access(
    conn: &mut DbConn,
    user_id: &str,
    clinic_id: &str,
) -> QueryResult<Option<(UserRow, Option<MembershipRow>)>> {
    let found: Option<(UserRow, Option<MembershipRow>, Option<ClinicRow>)> = users::table
        .left_join(
            memberships::table.on(memberships::user_id
                .eq(users::id)
                .and(memberships::clinic_id.eq(clinic_id.to_owned()))),
        )
        .left_join(clinics::table.on(clinics::id.eq(memberships::clinic_id)))
        .filter(users::id.eq(user_id))
        .select((
            UserRow::as_select(),
            Option::<MembershipRow>::as_select(),
            Option::<ClinicRow>::as_select(),
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(|(user, membership, clinic)| {
        if let Some(clinic) = clinic {
            db::remember(memo_key(clinic_id), clinic);
        }
        (user, membership)
    }))
}

/// How many clinics this installation holds (the service says how to make one when none).
pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    clinics::table.count().get_result(conn)
}
