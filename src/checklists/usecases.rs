//! Checklist template queries and use cases. A change makes a new version; sessions keep the
//! version they were run with.

use super::store::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{default_template, TemplateInput};
use crate::audit::{self, AuditContext};
use crate::db::schema::checklist_templates as templates;
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::records::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateView {
    pub id: String,
    pub version: i32,
    #[serde(flatten)]
    pub fields: TemplateInput,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<VersionView>,
}

pub fn fields(row: &TemplateRow) -> TemplateInput {
    TemplateInput {
        name: row.name.clone(),
        items: serde_json::from_str(&row.items).unwrap_or_default(),
    }
}

fn view(row: &TemplateRow) -> TemplateView {
    TemplateView {
        id: row.id.clone(),
        version: row.version,
        fields: fields(row),
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by.clone(),
        history: Vec::new(),
    }
}

/// Called in the transaction that creates a clinic.
pub fn create_default(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
) -> AppResult<TemplateView> {
    let row = insert(
        conn,
        db::new_id(),
        1,
        clinic_id,
        &default_template(),
        ctx,
        None,
    )?;
    let v = view(&row);
    audit::append(
        conn,
        clinic_id,
        ctx,
        event("checklist.created", "checklist", &row.id, payload(&v), None),
    )?;
    Ok(v)
}

pub fn create(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    input: TemplateInput,
) -> AppResult<TemplateView> {
    validated(input.validate())?;
    audit::audited(conn, clinic_id, |conn| {
        let row = insert(conn, db::new_id(), 1, clinic_id, &input, ctx, None)?;
        let v = view(&row);
        audit::append(
            conn,
            clinic_id,
            ctx,
            event("checklist.created", "checklist", &row.id, payload(&v), None),
        )?;
        Ok(v)
    })
}

pub fn amend(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<TemplateView> {
    let reason = req.reason()?;
    audit::audited(conn, clinic_id, |conn| {
        let current =
            find(conn, clinic_id, id, None)?.ok_or(AppError::NoSuch("checklist template"))?;
        let f: TemplateInput = apply_changes(&fields(&current), &req.changes, &[])?;
        validated(f.validate())?;
        let row = insert(
            conn,
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &f,
            ctx,
            Some(reason.clone()),
        )?;
        let v = view(&row);
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "checklist.amended",
                "checklist",
                id,
                payload(&v),
                Some(reason),
            ),
        )?;
        Ok(v)
    })
}

pub fn get(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<TemplateView> {
    let row = find(conn, clinic_id, id, None)?.ok_or(AppError::NoSuch("checklist template"))?;
    let mut v = view(&row);
    let versions: Vec<TemplateRow> = templates::table
        .filter(templates::clinic_id.eq(clinic_id))
        .filter(templates::id.eq(id))
        .select(TemplateRow::as_select())
        .order(templates::version.asc())
        .load(conn)?;
    v.history = history_of(&versions, |r| Ok(fields(r)))?;
    Ok(v)
}

pub fn list(conn: &mut DbConn, clinic_id: &str) -> AppResult<Vec<TemplateView>> {
    let rows: Vec<TemplateRow> = templates::table
        .filter(templates::clinic_id.eq(clinic_id))
        .filter(current("checklist_templates"))
        .select(TemplateRow::as_select())
        .order(templates::id.desc())
        .load(conn)?;
    Ok(rows.iter().map(view).collect())
}
