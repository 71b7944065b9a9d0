//! Sterilisers: registering, correcting, reading, and taking out of or returning to service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, AuditContext};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::records::*;
use crate::sterilisation::model::*;
use crate::sterilisation::store::{self, *};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SteriliserView {
    pub id: String,
    pub version: i32,
    #[serde(flatten)]
    pub fields: SteriliserInput,
    /// False while out of service (maintenance, or a positive spore test).
    pub in_service: bool,
    /// Out of service because a spore test was positive; a passing retest must follow.
    pub quarantined: bool,
    pub status_reason: Option<String>,
    pub status_changed_at: Option<DateTime<Utc>>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<VersionView>,
}

/// Out of service because of a positive spore test (not for maintenance).
pub fn is_quarantined(status: Option<&StatusChangeRow>) -> bool {
    status.is_some_and(|s| !s.in_service && s.cause == "spore_test_positive")
}

pub(super) fn steriliser_fields(row: &SteriliserRow) -> AppResult<SteriliserInput> {
    Ok(SteriliserInput {
        make: row.make.clone(),
        model: row.model.clone(),
        serial_number: row.serial_number.clone(),
        kind: SteriliserKind::from_db(&row.kind)?,
        chamber_litres: row.chamber_litres,
        location: row.location.clone(),
        installed_on: row.installed_on,
    })
}

pub(super) fn steriliser_view(
    row: &SteriliserRow,
    status: Option<&StatusChangeRow>,
) -> AppResult<SteriliserView> {
    let in_service = status.is_none_or(|s| s.in_service);
    Ok(SteriliserView {
        id: row.id.clone(),
        version: row.version,
        fields: steriliser_fields(row)?,
        in_service,
        quarantined: is_quarantined(status),
        status_reason: status.map(|s| s.reason.clone()),
        status_changed_at: status.map(|s| to_utc(s.changed_at)),
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by.clone(),
        history: Vec::new(),
    })
}

pub(super) fn steriliser_row(
    id: String,
    version: i32,
    clinic_id: &str,
    f: &SteriliserInput,
    ctx: &AuditContext,
    reason: Option<String>,
) -> SteriliserRow {
    SteriliserRow {
        id,
        version,
        clinic_id: clinic_id.to_owned(),
        make: f.make.clone(),
        model: f.model.clone(),
        serial_number: f.serial_number.clone(),
        kind: f.kind.as_db().to_owned(),
        chamber_litres: f.chamber_litres,
        location: f.location.clone(),
        installed_on: f.installed_on,
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    }
}

/// The current steriliser, or the field-naming 404 a missing or foreign one gets.
pub(super) fn existing_steriliser(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
    field: &str,
) -> AppResult<SteriliserRow> {
    store::find_steriliser(conn, clinic_id, id)?.ok_or_else(|| not_found(field, "steriliser"))
}

pub fn create_steriliser(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    mut input: SteriliserInput,
) -> AppResult<SteriliserView> {
    input.normalise();
    validated(input.validate(crate::clinics::context::today(conn, clinic_id)?))?;
    audit::audited(conn, clinic_id, |conn| {
        if store::serial_taken(conn, clinic_id, &input.serial_number, None)? {
            return Err(AppError::Conflict(format!(
                "serial_number: the clinic already has a steriliser with serial number {}",
                input.serial_number
            )));
        }
        let row = steriliser_row(db::new_id(), 1, clinic_id, &input, ctx, None);
        store::insert_steriliser(conn, &row)?;
        let view = steriliser_view(&row, None)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "steriliser.registered",
                "steriliser",
                &row.id,
                payload(&view),
                None,
            ),
        )?;
        Ok(view)
    })
}

pub fn amend_steriliser(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<SteriliserView> {
    let reason = req.reason()?;
    audit::audited(conn, clinic_id, |conn| {
        let current =
            store::find_steriliser(conn, clinic_id, id)?.ok_or(AppError::NoSuch("steriliser"))?;
        let mut fields: SteriliserInput =
            apply_changes(&steriliser_fields(&current)?, &req.changes, &[])?;
        fields.normalise();
        validated(fields.validate(crate::clinics::context::today(conn, clinic_id)?))?;
        if store::serial_taken(conn, clinic_id, &fields.serial_number, Some(id))? {
            return Err(AppError::Conflict(
                "serial_number: another steriliser of the clinic has this serial number".into(),
            ));
        }
        let row = steriliser_row(
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &fields,
            ctx,
            Some(reason.clone()),
        );
        store::insert_steriliser(conn, &row)?;
        let status = store::current_status(conn, clinic_id, id)?;
        let view = steriliser_view(&row, status.as_ref())?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "steriliser.amended",
                "steriliser",
                id,
                payload(&view),
                Some(reason),
            ),
        )?;
        Ok(view)
    })
}

pub fn get_steriliser(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<SteriliserView> {
    let row = store::find_steriliser(conn, clinic_id, id)?.ok_or(AppError::NoSuch("steriliser"))?;
    let status = store::current_status(conn, clinic_id, id)?;
    let mut view = steriliser_view(&row, status.as_ref())?;
    view.history = history_of(
        &store::steriliser_history(conn, clinic_id, id)?,
        steriliser_fields,
    )?;
    Ok(view)
}

pub fn list_sterilisers(conn: &mut DbConn, clinic_id: &str) -> AppResult<Vec<SteriliserView>> {
    let rows = store::list_sterilisers(conn, clinic_id)?;
    rows.iter()
        .map(|row| {
            let status = store::current_status(conn, clinic_id, &row.id)?;
            steriliser_view(row, status.as_ref())
        })
        .collect()
}

/// Takes a steriliser out of service, or returns it. A steriliser quarantined by a positive spore
/// test returns only once spore tests on loads run after the failed one requalify it (as many
/// consecutive empty-chamber negatives as the profile asks, else one negative).
pub fn set_in_service(
    conn: &mut DbConn,
    profiles: &crate::jurisdiction::profiles::Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    in_service: bool,
    reason: &str,
) -> AppResult<SteriliserView> {
    let reason = reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid("reason", "is required"));
    }
    audit::audited(conn, clinic_id, |conn| {
        let row =
            store::find_steriliser(conn, clinic_id, id)?.ok_or(AppError::NoSuch("steriliser"))?;
        let status = store::current_status(conn, clinic_id, id)?;
        let currently = status.as_ref().is_none_or(|s| s.in_service);
        if currently == in_service {
            return Err(AppError::Conflict(if in_service {
                "the steriliser is already in service".into()
            } else {
                "the steriliser is already out of service".into()
            }));
        }
        if in_service {
            let context = crate::clinics::context::load(conn, profiles, clinic_id)?;
            let needed = context
                .profile
                .sterilisation
                .requalification_spore_tests
                .value
                .unwrap_or(1)
                .max(1);
            let tests = store::read_tests_of_steriliser(conn, clinic_id, id)?;
            let last_positive = tests
                .iter()
                .filter(|t| t.valid && t.result == SporeResult::Positive)
                .map(|t| t.cycle_started_at)
                .max();
            if let Some(failed) = last_positive {
                if !requalified_after(&tests, failed, needed) {
                    return Err(AppError::Conflict(if needed > 1 {
                        format!(
                            "a spore test of this steriliser was positive: it returns to service after {needed} consecutive \
                             passing (negative) spore tests in an empty chamber, on loads run after the failure ({})",
                            context.profile.sterilisation.requalification_spore_tests.source
                        )
                    } else {
                        "a spore test of this steriliser was positive: record a passing (negative) spore test \
                         on a load run after the failure before returning it to service"
                            .into()
                    }));
                }
            }
        }
        let change = StatusChangeRow {
            id: db::new_id(),
            clinic_id: clinic_id.to_owned(),
            steriliser_id: id.to_owned(),
            in_service,
            cause: "manual".into(),
            reason: reason.clone(),
            spore_test_id: None,
            changed_by: ctx.actor.id().map(str::to_owned),
            changed_at: db::now(),
        };
        store::insert_status_change(conn, &change)?;
        let view = steriliser_view(&row, Some(&change))?;
        let action = if in_service {
            "steriliser.returned_to_service"
        } else {
            "steriliser.taken_out_of_service"
        };
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(action, "steriliser", id, payload(&view), Some(reason)),
        )?;
        Ok(view)
    })
}
