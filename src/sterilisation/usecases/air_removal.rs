//! Air-removal (Bowie-Dick) tests of pre-vacuum sterilisers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::audit::{self, AuditContext};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::records::*;
use crate::sterilisation::model::*;
use crate::sterilisation::store::{self, *};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AirRemovalView {
    pub id: String,
    pub version: i32,
    #[serde(flatten)]
    pub fields: AirRemovalInput,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<VersionView>,
}

pub(super) fn air_fields(row: &AirRemovalRow) -> AppResult<AirRemovalInput> {
    Ok(AirRemovalInput {
        steriliser_id: row.steriliser_id.clone(),
        performed_at: to_utc(row.performed_at),
        test_type: AirRemovalTestType::from_db(&row.test_type)?,
        passed: row.passed,
        notes: row.notes.clone(),
    })
}

pub(super) fn air_view(row: &AirRemovalRow) -> AppResult<AirRemovalView> {
    Ok(AirRemovalView {
        id: row.id.clone(),
        version: row.version,
        fields: air_fields(row)?,
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by.clone(),
        history: Vec::new(),
    })
}

pub(super) fn air_row(
    id: String,
    version: i32,
    clinic_id: &str,
    f: &AirRemovalInput,
    ctx: &AuditContext,
    reason: Option<String>,
) -> AirRemovalRow {
    AirRemovalRow {
        id,
        version,
        clinic_id: clinic_id.to_owned(),
        steriliser_id: f.steriliser_id.clone(),
        performed_at: f.performed_at.naive_utc(),
        test_type: f.test_type.as_db().to_owned(),
        passed: f.passed,
        notes: f.notes.clone(),
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    }
}

/// Air-removal and air-leakage tests only make sense for sterilisers that remove air by vacuum;
/// an automatic control test applies to every steriliser.
pub(super) fn check_pre_vacuum(
    conn: &mut DbConn,
    clinic_id: &str,
    input: &AirRemovalInput,
    field: &str,
) -> AppResult<()> {
    let s = existing_steriliser(conn, clinic_id, &input.steriliser_id, field)?;
    if input.test_type != AirRemovalTestType::AutomaticControl
        && SteriliserKind::from_db(&s.kind)? != SteriliserKind::PreVacuum
    {
        return Err(AppError::invalid(field, "is not a pre-vacuum steriliser: air-removal and air-leakage tests apply to pre-vacuum sterilisers only"));
    }
    Ok(())
}

pub fn create_air_removal(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    mut input: AirRemovalInput,
) -> AppResult<AirRemovalView> {
    input.normalise();
    validated(input.validate(crate::clock::now()))?;
    audit::audited(conn, clinic_id, |conn| {
        check_pre_vacuum(conn, clinic_id, &input, "steriliser_id")?;
        let row = air_row(db::new_id(), 1, clinic_id, &input, ctx, None);
        store::insert_air_removal(conn, &row)?;
        let view = air_view(&row)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "air_removal_test.recorded",
                "air_removal_test",
                &row.id,
                payload(&view),
                None,
            ),
        )?;
        Ok(view)
    })
}

pub fn amend_air_removal(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<AirRemovalView> {
    let reason = req.reason()?;
    audit::audited(conn, clinic_id, |conn| {
        let current = store::find_air_removal(conn, clinic_id, id)?
            .ok_or(AppError::NoSuch("air-removal test"))?;
        let mut fields: AirRemovalInput = apply_changes(&air_fields(&current)?, &req.changes, &[])?;
        fields.normalise();
        validated(fields.validate(crate::clock::now()))?;
        check_pre_vacuum(conn, clinic_id, &fields, "changes.steriliser_id")?;
        let row = air_row(
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &fields,
            ctx,
            Some(reason.clone()),
        );
        store::insert_air_removal(conn, &row)?;
        let view = air_view(&row)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "air_removal_test.amended",
                "air_removal_test",
                id,
                payload(&view),
                Some(reason),
            ),
        )?;
        Ok(view)
    })
}

pub fn get_air_removal(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<AirRemovalView> {
    let row = store::find_air_removal(conn, clinic_id, id)?
        .ok_or(AppError::NoSuch("air-removal test"))?;
    let mut view = air_view(&row)?;
    view.history = history_of(
        &store::air_removal_history(conn, clinic_id, id)?,
        air_fields,
    )?;
    Ok(view)
}

pub fn list_air_removal(
    conn: &mut DbConn,
    clinic_id: &str,
    filter: &LogFilter,
) -> AppResult<(Vec<AirRemovalView>, Option<String>)> {
    let mut rows = store::list_air_removal(
        conn,
        clinic_id,
        &LogFilter {
            limit: filter.limit + 1,
            ..filter.clone()
        },
    )?;
    let next = next_cursor(&mut rows, filter.limit, |r| TimeCursor {
        at: r.performed_at,
        id: r.id.clone(),
    });
    Ok((rows.iter().map(air_view).collect::<AppResult<_>>()?, next))
}
