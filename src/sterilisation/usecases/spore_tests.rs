//! Spore tests: placing one in a load, recording its reading (a valid positive quarantines the
//! steriliser), correcting and reading them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::*;
use crate::audit::{self, AuditContext};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::events::{DomainEvent, WithEvents};
use crate::records::*;
use crate::sterilisation::model::*;
use crate::sterilisation::store::{self, *};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SporeResultView {
    /// 1 for the reading as first recorded; each laboratory correction adds the next.
    pub version: i32,
    pub result: SporeResult,
    pub control_result: ControlResult,
    pub read_at: DateTime<Utc>,
    pub lab_reference: Option<String>,
    pub recorded_by: Option<String>,
    pub recorded_at: DateTime<Utc>,
    /// Why the laboratory corrected the reading (versions after the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction_reason: Option<String>,
}

impl SporeResultView {
    fn of(r: &SporeResultRow) -> Self {
        Self {
            version: r.version,
            result: r.result(),
            control_result: if r.valid() {
                ControlResult::Growth
            } else {
                ControlResult::NoGrowth
            },
            read_at: to_utc(r.read_at),
            lab_reference: r.lab_reference.clone(),
            recorded_by: r.recorded_by.clone(),
            recorded_at: to_utc(r.recorded_at),
            correction_reason: r.correction_reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SporeTestView {
    pub id: String,
    pub version: i32,
    #[serde(flatten)]
    pub fields: SporeTestInput,
    pub result: Option<SporeResultView>,
    /// pending, negative (pass), positive (fail) or invalid (control did not grow).
    pub outcome: Biological,
    pub warnings: Vec<String>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<VersionView>,
    /// Every version of the reading, the first first, where a laboratory corrected it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub result_history: Vec<SporeResultView>,
}

pub(super) fn spore_fields(row: &SporeTestRow) -> SporeTestInput {
    SporeTestInput {
        steriliser_id: row.steriliser_id.clone(),
        cycle_id: row.cycle_id.clone(),
        bi_product: row.bi_product.clone(),
        bi_lot: row.bi_lot.clone(),
        placed_at: to_utc(row.placed_at),
        incubation: match (row.incubation.as_str(), row.posted_on, row.lab_deadline) {
            (Incubation::MAIL_IN, Some(posted_on), Some(lab_deadline)) => Incubation::MailIn {
                posted_on,
                lab_name: row.lab_name.clone().unwrap_or_default(),
                lab_deadline,
            },
            _ => Incubation::InHouse {
                hours: row.incubation_hours.unwrap_or(0.0),
            },
        },
    }
}

pub(super) fn spore_row(
    id: String,
    version: i32,
    clinic_id: &str,
    f: &SporeTestInput,
    ctx: &AuditContext,
    reason: Option<String>,
) -> SporeTestRow {
    let (incubation, hours, posted_on, lab_name, lab_deadline) = match &f.incubation {
        Incubation::InHouse { hours } => (Incubation::IN_HOUSE, Some(*hours), None, None, None),
        Incubation::MailIn {
            posted_on,
            lab_name,
            lab_deadline,
        } => (
            Incubation::MAIL_IN,
            None,
            Some(*posted_on),
            Some(lab_name.clone()),
            Some(*lab_deadline),
        ),
    };
    SporeTestRow {
        id,
        version,
        clinic_id: clinic_id.to_owned(),
        steriliser_id: f.steriliser_id.clone(),
        cycle_id: f.cycle_id.clone(),
        bi_product: f.bi_product.clone(),
        bi_lot: f.bi_lot.clone(),
        placed_at: f.placed_at.naive_utc(),
        incubation: incubation.to_owned(),
        incubation_hours: hours,
        posted_on,
        lab_name,
        lab_deadline,
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    }
}

pub(super) fn spore_view(
    row: &SporeTestRow,
    result: Option<&SporeResultRow>,
    today: chrono::NaiveDate,
) -> SporeTestView {
    let fields = spore_fields(row);
    let mut warnings = Vec::new();
    if result.is_none() {
        if let Incubation::MailIn { lab_deadline, .. } = &fields.incubation {
            if *lab_deadline < today {
                warnings.push(format!(
                    "the laboratory's deadline ({lab_deadline}) has passed without a result"
                ));
            }
        }
    }
    if result.is_some_and(|r| !r.valid()) {
        warnings
            .push("the control vial did not grow: the test is invalid and must be repeated".into());
    }
    SporeTestView {
        id: row.id.clone(),
        version: row.version,
        outcome: biological(true, result.map(|r| (r.result(), r.valid()))),
        result: result.map(SporeResultView::of),
        fields,
        warnings,
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by.clone(),
        history: Vec::new(),
        result_history: Vec::new(),
    }
}

fn result_row(
    id: &str,
    version: i32,
    clinic_id: &str,
    input: &SporeResultInput,
    ctx: &AuditContext,
    correction_reason: Option<String>,
) -> SporeResultRow {
    SporeResultRow {
        spore_test_id: id.to_owned(),
        version,
        clinic_id: clinic_id.to_owned(),
        result: input.result.as_db().into(),
        control_result: input.control_result.as_db().into(),
        read_at: db::truncate(input.read_at.naive_utc()),
        lab_reference: input
            .lab_reference
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        correction_reason,
    }
}

/// Takes the steriliser of a test that read (or was corrected to) a valid positive out of
/// service, in the caller's transaction, and reports it so its look-back and authority report
/// follow.
fn quarantine_for_positive(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    test: &SporeTestRow,
    result: &SporeResultRow,
) -> AppResult<DomainEvent> {
    let id = &test.id;
    let reason = if result.version > 1 {
        format!(
            "the laboratory corrected spore test {id} to positive (read {})",
            audit::chain::format_time(result.read_at)
        )
    } else {
        format!(
            "spore test {id} read positive at {}",
            audit::chain::format_time(result.read_at)
        )
    };
    let change = StatusChangeRow {
        id: db::new_id(),
        clinic_id: clinic_id.to_owned(),
        steriliser_id: test.steriliser_id.clone(),
        in_service: false,
        cause: "spore_test_positive".into(),
        reason: reason.clone(),
        spore_test_id: Some(id.to_owned()),
        changed_by: ctx.actor.id().map(str::to_owned),
        changed_at: db::now(),
    };
    store::insert_status_change(conn, &change)?;
    audit::append(
        conn,
        clinic_id,
        ctx,
        event(
            "steriliser.quarantined",
            "steriliser",
            &test.steriliser_id,
            json!({"spore_test_id": id, "in_service": false}),
            Some(reason),
        ),
    )?;
    Ok(DomainEvent::SporeTestPositive {
        clinic_id: clinic_id.to_owned(),
        spore_test_id: id.to_owned(),
        summary: format!(
            "The spore test placed {} in steriliser {} {} at {} (control grew); the steriliser is out of service until it passes its retests.",
            audit::chain::format_time(test.placed_at),
            test.steriliser_id,
            if result.version > 1 { "was corrected by the laboratory to positive, read" } else { "read positive" },
            audit::chain::format_time(result.read_at)
        ),
    })
}

/// The steriliser and the cycle must exist in the clinic, and the cycle must be one of its loads.
pub(super) fn check_spore_links(
    conn: &mut DbConn,
    clinic_id: &str,
    f: &SporeTestInput,
    prefix: &str,
) -> AppResult<()> {
    existing_steriliser(
        conn,
        clinic_id,
        &f.steriliser_id,
        &format!("{prefix}steriliser_id"),
    )?;
    let cycle = store::find_cycle(conn, clinic_id, &f.cycle_id)?
        .ok_or_else(|| not_found(&format!("{prefix}cycle_id"), "cycle"))?;
    if cycle.steriliser_id != f.steriliser_id {
        return Err(AppError::invalid(
            format!("{prefix}cycle_id"),
            "is a cycle of another steriliser",
        ));
    }
    Ok(())
}

pub fn create_spore_test(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    mut input: SporeTestInput,
) -> AppResult<SporeTestView> {
    input.normalise();
    validated(input.validate(crate::clock::now()))?;
    audit::audited(conn, clinic_id, |conn| {
        check_spore_links(conn, clinic_id, &input, "")?;
        let row = spore_row(db::new_id(), 1, clinic_id, &input, ctx, None);
        store::insert_spore_test(conn, &row)?;
        let view = spore_view(&row, None, crate::clock::now().date_naive());
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "spore_test.placed",
                "spore_test",
                &row.id,
                payload(&view),
                None,
            ),
        )?;
        Ok(view)
    })
}

/// Records the reading. A valid positive quarantines the steriliser in the same transaction; the
/// packs of its look-back window turn quarantined because their state is derived from it.
/// A positive valid reading quarantines the steriliser and reports `SporeTestPositive`; run it
/// through `reactions::run` so its look-back and authority report land in the same transaction.
pub fn record_spore_result(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: SporeResultInput,
) -> AppResult<WithEvents<SporeTestView>> {
    audit::audited(conn, clinic_id, |conn| {
        let mut events = Vec::new();
        let test =
            store::find_spore_test(conn, clinic_id, id)?.ok_or(AppError::NoSuch("spore test"))?;
        if store::find_spore_result(conn, clinic_id, id)?.is_some() {
            return Err(AppError::Conflict(
                "this spore test already has a result; a reading is recorded once and cannot be replaced"
                    .into(),
            ));
        }
        validated(input.validate(to_utc(test.placed_at), crate::clock::now()))?;
        let result = result_row(id, 1, clinic_id, &input, ctx, None);
        store::insert_spore_result(conn, &result)?;
        let view = spore_view(&test, Some(&result), crate::clock::now().date_naive());
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "spore_test.result_recorded",
                "spore_test",
                id,
                payload(&view),
                None,
            ),
        )?;
        if input.result == SporeResult::Positive && result.valid() {
            events.push(quarantine_for_positive(
                conn, ctx, clinic_id, &test, &result,
            )?);
        }
        Ok(WithEvents { view, events })
    })
}

/// A laboratory's correction of a reading, with its reason and the laboratory's reference. The
/// earlier readings stay as versions. A correction to a valid positive quarantines the
/// steriliser from now, with the look-back as for a new positive; a correction away from a
/// positive lifts nothing: the steriliser stays out of service until an owner returns it.
pub fn correct_spore_result(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: SporeResultCorrection,
) -> AppResult<WithEvents<SporeTestView>> {
    audit::audited(conn, clinic_id, |conn| {
        let test =
            store::find_spore_test(conn, clinic_id, id)?.ok_or(AppError::NoSuch("spore test"))?;
        let previous = store::find_spore_result(conn, clinic_id, id)?.ok_or_else(|| {
            AppError::Conflict(
                "this spore test has no result yet: record the reading first, then correct it"
                    .into(),
            )
        })?;
        let reading = input.reading();
        let mut errors = reading.validate(to_utc(test.placed_at), crate::clock::now());
        errors.extend(input.validate());
        let result = result_row(
            id,
            previous.version + 1,
            clinic_id,
            &reading,
            ctx,
            Some(input.reason.trim().to_owned()),
        );
        if errors.is_empty()
            && result.result == previous.result
            && result.control_result == previous.control_result
            && result.read_at == previous.read_at
            && result.lab_reference == previous.lab_reference
        {
            errors.push(crate::error::FieldError::new(
                "result",
                "is the same as the recorded reading: a correction must change the result, the control result, the read time or the laboratory's reference",
            ));
        }
        validated(errors)?;
        store::insert_spore_result(conn, &result)?;
        let mut view = spore_view(&test, Some(&result), crate::clock::now().date_naive());
        view.result_history = store::spore_result_history(conn, clinic_id, id)?
            .iter()
            .map(SporeResultView::of)
            .collect();
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "spore_test.result_corrected",
                "spore_test",
                id,
                payload(&view),
                Some(input.reason.trim().to_owned()),
            ),
        )?;
        let was_positive = previous.valid() && previous.result() == SporeResult::Positive;
        let mut events = Vec::new();
        if result.valid() && result.result() == SporeResult::Positive && !was_positive {
            events.push(quarantine_for_positive(
                conn, ctx, clinic_id, &test, &result,
            )?);
        }
        Ok(WithEvents { view, events })
    })
}

pub fn amend_spore_test(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<SporeTestView> {
    let reason = req.reason()?;
    audit::audited(conn, clinic_id, |conn| {
        let current =
            store::find_spore_test(conn, clinic_id, id)?.ok_or(AppError::NoSuch("spore test"))?;
        let mut fields: SporeTestInput = apply_changes(&spore_fields(&current), &req.changes, &[])?;
        fields.normalise();
        validated(fields.validate(crate::clock::now()))?;
        check_spore_links(conn, clinic_id, &fields, "changes.")?;
        let row = spore_row(
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &fields,
            ctx,
            Some(reason.clone()),
        );
        store::insert_spore_test(conn, &row)?;
        let result = store::find_spore_result(conn, clinic_id, id)?;
        let view = spore_view(&row, result.as_ref(), crate::clock::now().date_naive());
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "spore_test.amended",
                "spore_test",
                id,
                payload(&view),
                Some(reason),
            ),
        )?;
        Ok(view)
    })
}

pub fn get_spore_test(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<SporeTestView> {
    let row = store::find_spore_test(conn, clinic_id, id)?.ok_or(AppError::NoSuch("spore test"))?;
    let result = store::find_spore_result(conn, clinic_id, id)?;
    let mut view = spore_view(&row, result.as_ref(), crate::clock::now().date_naive());
    view.history = history_of(&store::spore_test_history(conn, clinic_id, id)?, |r| {
        Ok(spore_fields(r))
    })?;
    let readings = store::spore_result_history(conn, clinic_id, id)?;
    if readings.len() > 1 {
        view.result_history = readings.iter().map(SporeResultView::of).collect();
    }
    Ok(view)
}

pub fn list_spore_tests(
    conn: &mut DbConn,
    clinic_id: &str,
    filter: &LogFilter,
) -> AppResult<(Vec<SporeTestView>, Option<String>)> {
    let mut rows = store::list_spore_tests(
        conn,
        clinic_id,
        &LogFilter {
            limit: filter.limit + 1,
            ..filter.clone()
        },
    )?;
    let next = next_cursor(&mut rows, filter.limit, |r| TimeCursor {
        at: r.placed_at,
        id: r.id.clone(),
    });
    let today = filter
        .at
        .map_or_else(crate::clock::now, crate::db::to_utc)
        .date_naive();
    let with_results = store::attach_results(conn, clinic_id, rows, filter.at)?;
    Ok((
        with_results
            .iter()
            .map(|(t, r)| spore_view(t, r.as_ref(), today))
            .collect(),
        next,
    ))
}
