//! Checklists queries: the rows and how they are read and written. Every write takes the
//! transaction it runs in.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::TemplateInput;
use crate::audit::AuditContext;
use crate::db::schema::checklist_templates as templates;
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult};
use crate::records::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = templates)]
pub struct TemplateRow {
    pub id: String,
    pub version: i32,
    pub clinic_id: String,
    pub name: String,
    pub items: String,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub amendment_reason: Option<String>,
}

pub fn insert(
    conn: &mut DbConn,
    id: String,
    version: i32,
    clinic_id: &str,
    f: &TemplateInput,
    ctx: &AuditContext,
    reason: Option<String>,
) -> AppResult<TemplateRow> {
    let row = TemplateRow {
        id,
        version,
        clinic_id: clinic_id.to_owned(),
        name: f.name.trim().to_owned(),
        items: serde_json::to_string(&f.items).map_err(AppError::internal)?,
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    };
    diesel::insert_into(templates::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

/// A specific version, or the current one.
pub fn find(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
    version: Option<i32>,
) -> QueryResult<Option<TemplateRow>> {
    let query = templates::table
        .filter(templates::clinic_id.eq(clinic_id))
        .filter(templates::id.eq(id))
        .select(TemplateRow::as_select());
    match version {
        Some(v) => query
            .filter(templates::version.eq(v))
            .first(conn)
            .optional(),
        None => query
            .filter(current("checklist_templates"))
            .first(conn)
            .optional(),
    }
}

/// The clinic's most recently created template: the one new sessions use by default.
pub fn newest(conn: &mut DbConn, clinic_id: &str) -> QueryResult<Option<TemplateRow>> {
    templates::table
        .filter(templates::clinic_id.eq(clinic_id))
        .filter(current("checklist_templates"))
        .select(TemplateRow::as_select())
        .order(templates::id.desc())
        .first(conn)
        .optional()
}

crate::records::versioned_rows!(TemplateRow);
