//! Clients queries: the rows and how they are read and written. Every write takes the
//! transaction it runs in.

use super::ClientInput;
use crate::audit::AuditContext;
use crate::db::schema::clients;
use crate::db::{self, DbConn};
use crate::error::AppResult;
use crate::records::*;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: String,
    pub version: i32,
    pub clinic_id: String,
    pub name: String,
    pub contact: String,
    pub date_of_birth: NaiveDate,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub amendment_reason: Option<String>,
}

pub fn insert(
    conn: &mut DbConn,
    id: String,
    version: i32,
    clinic_id: &str,
    f: &ClientInput,
    ctx: &AuditContext,
    reason: Option<String>,
) -> AppResult<ClientRow> {
    let row = ClientRow {
        id,
        version,
        clinic_id: clinic_id.to_owned(),
        name: f.name.clone(),
        contact: f.contact.clone(),
        date_of_birth: f.date_of_birth,
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    };
    diesel::insert_into(clients::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

/// The audit chain gets the id and version only: personal data stays in the clients table, so
/// it can be erased without breaking the chain.
pub fn audit_payload(r: &ClientRow) -> serde_json::Value {
    serde_json::json!({"id": r.id, "version": r.version})
}

pub fn find(conn: &mut DbConn, clinic_id: &str, id: &str) -> QueryResult<Option<ClientRow>> {
    clients::table
        .filter(clients::clinic_id.eq(clinic_id))
        .filter(clients::id.eq(id))
        .filter(current("clients"))
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

/// The current versions of several clients, in one statement.
pub fn find_many(
    conn: &mut DbConn,
    clinic_id: &str,
    ids: &[String],
) -> QueryResult<Vec<ClientRow>> {
    clients::table
        .filter(clients::clinic_id.eq(clinic_id))
        .filter(clients::id.eq_any(ids))
        .filter(current("clients"))
        .select(ClientRow::as_select())
        .load(conn)
}

crate::records::versioned_rows!(ClientRow);
