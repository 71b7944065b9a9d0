//! Sessions queries: the rows and how they are read and written. Every write takes the
//! transaction it runs in.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;

use crate::checklists::model::ChecklistItem;
use crate::db::schema::{
    session_answers, session_completions, session_lots, session_packs, session_starts, sessions,
};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub clinic_id: String,
    pub client_id: String,
    pub technician_id: String,
    pub station: String,
    pub procedure_name: String,
    pub planned_at: NaiveDateTime,
    pub template_id: String,
    pub template_version: i32,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_answers)]
pub struct AnswerRow {
    pub id: String,
    pub clinic_id: String,
    pub session_id: String,
    pub item_key: String,
    pub answer: String,
    pub answered_at: NaiveDateTime,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_packs)]
pub struct PackUseRow {
    pub session_id: String,
    pub pack_code: String,
    pub clinic_id: String,
    pub snapshot: String,
    pub added_by: Option<String>,
    pub added_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_lots)]
pub struct LotUseRow {
    pub session_id: String,
    pub lot_id: String,
    pub clinic_id: String,
    pub lot_version: i32,
    pub snapshot: String,
    pub added_by: Option<String>,
    pub added_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_starts)]
pub struct StartRow {
    pub session_id: String,
    pub clinic_id: String,
    pub started_at: NaiveDateTime,
    pub started_by: Option<String>,
    pub override_reason: Option<String>,
    pub refusals: String,
    pub technician_snapshot: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_completions)]
pub struct CompletionRow {
    pub session_id: String,
    pub clinic_id: String,
    pub completed_at: NaiveDateTime,
    pub completed_by: Option<String>,
    pub notes: Option<String>,
}

pub fn find(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<SessionRow> {
    sessions::table
        .filter(sessions::clinic_id.eq(clinic_id))
        .filter(sessions::id.eq(id))
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NoSuch("session"))
}

pub fn start_of(conn: &mut DbConn, id: &str) -> QueryResult<Option<StartRow>> {
    session_starts::table
        .find(id)
        .select(StartRow::as_select())
        .first(conn)
        .optional()
}

pub fn completion_of(conn: &mut DbConn, id: &str) -> QueryResult<Option<CompletionRow>> {
    session_completions::table
        .find(id)
        .select(CompletionRow::as_select())
        .first(conn)
        .optional()
}

pub fn template_items(conn: &mut DbConn, s: &SessionRow) -> AppResult<Vec<ChecklistItem>> {
    let row = crate::checklists::store::find(
        conn,
        &s.clinic_id,
        &s.template_id,
        Some(s.template_version),
    )?
    .ok_or_else(|| AppError::internal("session template version missing"))?;
    Ok(crate::checklists::usecases::fields(&row).items)
}

pub fn latest_answers(conn: &mut DbConn, id: &str) -> QueryResult<HashMap<String, Value>> {
    let rows: Vec<AnswerRow> = session_answers::table
        .filter(session_answers::session_id.eq(id))
        .select(AnswerRow::as_select())
        .order((
            session_answers::recorded_at.asc(),
            session_answers::id.asc(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.item_key,
                serde_json::from_str(&r.answer).unwrap_or(Value::Null),
            )
        })
        .collect())
}

/// Each session planned in `[from, to)`: when, and whether its start overrode refusals (the
/// sessions-per-day chart).
pub fn planned_between(
    conn: &mut DbConn,
    clinic_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, bool)>> {
    use crate::db::schema::{session_starts, sessions};
    sessions::table
        .left_join(session_starts::table.on(session_starts::session_id.eq(sessions::id)))
        .filter(sessions::clinic_id.eq(clinic_id))
        .filter(sessions::planned_at.ge(from))
        .filter(sessions::planned_at.lt(to))
        .select((
            sessions::planned_at,
            session_starts::override_reason.nullable().is_not_null(),
        ))
        .load(conn)
}
