//! The sterilisation use cases: each runs in one write transaction that writes the record and its
//! audit event together, and returns the view a handler or a page shows.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::model::*;
use super::store::{self, *};
use crate::audit::{self, AuditContext};
use crate::auth::{store as accounts, Role};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::events::{DomainEvent, WithEvents};
use crate::jurisdiction::profiles::Profiles;
use crate::records::*;

// ---------------------------------------------------------------------------------------------
// Shared pieces

// ---------------------------------------------------------------------------------------------
// Sterilisers

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

fn steriliser_fields(row: &SteriliserRow) -> SteriliserInput {
    SteriliserInput {
        make: row.make.clone(),
        model: row.model.clone(),
        serial_number: row.serial_number.clone(),
        kind: SteriliserKind::parse(&row.kind),
        chamber_litres: row.chamber_litres,
        location: row.location.clone(),
        installed_on: row.installed_on,
    }
}

fn steriliser_view(row: &SteriliserRow, status: Option<&StatusChangeRow>) -> SteriliserView {
    let in_service = status.is_none_or(|s| s.in_service);
    SteriliserView {
        id: row.id.clone(),
        version: row.version,
        fields: steriliser_fields(row),
        in_service,
        quarantined: is_quarantined(status),
        status_reason: status.map(|s| s.reason.clone()),
        status_changed_at: status.map(|s| to_utc(s.changed_at)),
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by.clone(),
        history: Vec::new(),
    }
}

fn steriliser_row(
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
        kind: f.kind.as_str().to_owned(),
        chamber_litres: f.chamber_litres,
        location: f.location.clone(),
        installed_on: f.installed_on,
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    }
}

/// The current steriliser, or the field-naming 404 a missing or foreign one gets.
fn existing_steriliser(
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
    validated(input.validate(crate::clock::now().date_naive()))?;
    audit::audited(conn, clinic_id, |conn| {
        if store::serial_taken(conn, clinic_id, &input.serial_number, None)? {
            return Err(AppError::Conflict(format!(
                "serial_number: the clinic already has a steriliser with serial number {}",
                input.serial_number
            )));
        }
        let row = steriliser_row(db::new_id(), 1, clinic_id, &input, ctx, None);
        store::insert_steriliser(conn, &row)?;
        let view = steriliser_view(&row, None);
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
        let current = store::find_steriliser(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
        let mut fields: SteriliserInput =
            apply_changes(&steriliser_fields(&current), &req.changes, &[])?;
        fields.normalise();
        validated(fields.validate(crate::clock::now().date_naive()))?;
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
        let view = steriliser_view(&row, status.as_ref());
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
    let row = store::find_steriliser(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
    let status = store::current_status(conn, clinic_id, id)?;
    let mut view = steriliser_view(&row, status.as_ref());
    view.history = history(
        store::steriliser_history(conn, clinic_id, id)?
            .into_iter()
            .map(|r| {
                (
                    r.version,
                    r.recorded_at,
                    r.recorded_by.clone(),
                    r.amendment_reason.clone(),
                    steriliser_fields(&r),
                )
            })
            .collect(),
    );
    Ok(view)
}

pub fn list_sterilisers(conn: &mut DbConn, clinic_id: &str) -> AppResult<Vec<SteriliserView>> {
    let rows = store::list_sterilisers(conn, clinic_id)?;
    rows.iter()
        .map(|row| {
            let status = store::current_status(conn, clinic_id, &row.id)?;
            Ok(steriliser_view(row, status.as_ref()))
        })
        .collect()
}

/// Takes a steriliser out of service, or returns it. A steriliser quarantined by a positive spore
/// test returns only after a valid negative spore test on a load run after the failed one.
pub fn set_in_service(
    conn: &mut DbConn,
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
        let row = store::find_steriliser(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
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
            let tests = store::read_tests_of_steriliser(conn, clinic_id, id)?;
            if lookback_windows(&tests).iter().any(|w| w.1.is_none()) {
                return Err(AppError::Conflict(
                    "a spore test of this steriliser was positive: record a passing (negative) spore test \
                     on a load run after the failure before returning it to service"
                        .into(),
                ));
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
        let view = steriliser_view(&row, Some(&change));
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

// ---------------------------------------------------------------------------------------------
// Cycles and packs

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MechanicalView {
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackView {
    /// The code printed on the label; type it or scan its QR code.
    pub code: String,
    pub cycle_id: String,
    pub cycle_number: i64,
    pub steriliser_id: String,
    pub contents: String,
    pub indicator: Option<ChemicalIndicator>,
    pub sterilised_at: DateTime<Utc>,
    pub operator_initials: String,
    /// None under an event-related shelf-life policy.
    pub expires_at: Option<DateTime<Utc>>,
    pub state: PackState,
    pub state_reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CycleView {
    pub id: String,
    pub version: i32,
    #[serde(flatten)]
    pub fields: CycleFields,
    pub operator_initials: String,
    pub mechanical: MechanicalView,
    /// The load's chemical indicator and every pack's passed.
    pub chemical_passed: bool,
    pub biological: Biological,
    /// Derived, never typed in: pass only if every indicator passed.
    pub outcome: Outcome,
    /// Things an inspector would ask about, e.g. a gap in cycle numbers.
    pub warnings: Vec<String>,
    pub packs: Vec<PackView>,
    pub spore_test_ids: Vec<String>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<VersionView>,
}

fn cycle_fields(row: &CycleRow) -> CycleFields {
    CycleFields {
        steriliser_id: row.steriliser_id.clone(),
        cycle_number: row.cycle_number,
        program: Program {
            name: row.program_name.clone(),
            temperature_c: row.program_temperature_c,
            hold_minutes: row.program_hold_minutes,
        },
        started_at: to_utc(row.started_at),
        finished_at: to_utc(row.finished_at),
        peak_temperature_c: row.peak_temperature_c,
        peak_pressure_kpa: row.peak_pressure_kpa,
        hold_minutes: row.hold_minutes,
        operator_id: Some(row.operator_id.clone()),
        load_indicator: ChemicalIndicator {
            indicator_type: row.load_indicator_type,
            passed: row.load_indicator_passed,
        },
        notes: row.notes.clone(),
    }
}

fn cycle_row(
    id: String,
    version: i32,
    clinic_id: &str,
    f: &CycleFields,
    operator_id: &str,
    ctx: &AuditContext,
    reason: Option<String>,
) -> CycleRow {
    CycleRow {
        id,
        version,
        clinic_id: clinic_id.to_owned(),
        steriliser_id: f.steriliser_id.clone(),
        cycle_number: f.cycle_number,
        program_name: f.program.name.clone(),
        program_temperature_c: f.program.temperature_c,
        program_hold_minutes: f.program.hold_minutes,
        started_at: f.started_at.naive_utc(),
        finished_at: f.finished_at.naive_utc(),
        peak_temperature_c: f.peak_temperature_c,
        peak_pressure_kpa: f.peak_pressure_kpa,
        hold_minutes: f.hold_minutes,
        operator_id: operator_id.to_owned(),
        load_indicator_type: f.load_indicator.indicator_type,
        load_indicator_passed: f.load_indicator.passed,
        notes: f.notes.clone(),
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    }
}

fn mechanical(f: &CycleFields) -> MechanicalView {
    let passed = f.mechanical_passed();
    let detail = if passed {
        format!(
            "reached {} °C for {} min against a program minimum of {} °C for {} min",
            f.peak_temperature_c, f.hold_minutes, f.program.temperature_c, f.program.hold_minutes
        )
    } else if f.peak_temperature_c < f.program.temperature_c {
        format!(
            "peak {} °C is below the program's {} °C",
            f.peak_temperature_c, f.program.temperature_c
        )
    } else {
        format!(
            "held {} min, less than the program's {} min",
            f.hold_minutes, f.program.hold_minutes
        )
    };
    MechanicalView { passed, detail }
}

/// The operator must be an active owner or technician of the clinic.
fn check_operator(conn: &mut DbConn, clinic_id: &str, operator_id: &str) -> AppResult<()> {
    match accounts::find_member(conn, clinic_id, operator_id)? {
        Some((m, _)) if m.active && m.role() != Role::Inspector => Ok(()),
        _ => Err(AppError::invalid(
            "operator_id",
            "is not an active owner or technician of this clinic",
        )),
    }
}

/// Names by user id, for operator initials on cycles and labels.
fn staff_names(conn: &mut DbConn, clinic_id: &str) -> AppResult<HashMap<String, String>> {
    Ok(accounts::members_of(conn, clinic_id)?
        .into_iter()
        .map(|(_, u)| (u.id, u.display_name))
        .collect())
}

/// Builds full views of cycles with their packs, tests and derived states, in a few queries.
fn cycle_views(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    rows: Vec<CycleRow>,
) -> AppResult<Vec<CycleView>> {
    cycle_views_counting_use(conn, profiles, clinic_id, rows, true)
}

/// `count_use: false` judges packs as if nobody had opened them yet (a session about to start
/// judges the very packs it has opened).
fn cycle_views_counting_use(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    rows: Vec<CycleRow>,
    count_use: bool,
) -> AppResult<Vec<CycleView>> {
    // The spore-test interval of the clinic's jurisdiction, in its time zone (rule 1).
    let context = crate::clinics::context::load(conn, profiles, clinic_id)?;
    let tz = context.tz;
    let interval = context.profile.sterilisation.spore_test_interval_days.value;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let packs = store::packs_of_cycles(conn, clinic_id, &ids)?;
    let tests = store::spore_tests_of_cycles(conn, clinic_id, &ids)?;
    let names = staff_names(conn, clinic_id)?;
    let codes: Vec<String> = packs.iter().map(|p| p.code.clone()).collect();
    let used = if count_use {
        store::opened_pack_codes(conn, clinic_id, &codes)?
    } else {
        Vec::new()
    };
    let mut windows: HashMap<String, Vec<Window>> = HashMap::new();
    let mut negatives: HashMap<String, Vec<chrono::NaiveDateTime>> = HashMap::new();
    for row in &rows {
        if !windows.contains_key(&row.steriliser_id) {
            let read = store::read_tests_of_steriliser(conn, clinic_id, &row.steriliser_id)?;
            windows.insert(row.steriliser_id.clone(), lookback_windows(&read));
            negatives.insert(
                row.steriliser_id.clone(),
                read.iter()
                    .filter(|t| t.valid && t.result == SporeResult::Negative)
                    .map(|t| t.cycle_started_at)
                    .collect(),
            );
        }
    }
    let now = db::now();
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let fields = cycle_fields(&row);
        let own_tests: Vec<&(SporeTestRow, Option<SporeResultRow>)> =
            tests.iter().filter(|(t, _)| t.cycle_id == row.id).collect();
        // With several tests in one load, a positive outweighs a pending, which outweighs a negative.
        let biological = own_tests
            .iter()
            .map(|(_, r)| biological(true, r.as_ref().map(|r| (r.result(), r.valid()))))
            .max_by_key(|b| match b {
                Biological::Positive => 4,
                Biological::Invalid => 3,
                Biological::Pending => 2,
                Biological::Negative => 1,
                Biological::None => 0,
            })
            .unwrap_or(Biological::None);
        let own_packs: Vec<&PackRow> = packs.iter().filter(|p| p.cycle_id == row.id).collect();
        let mech = mechanical(&fields);
        let chemical_passed = row.load_indicator_passed
            && own_packs.iter().all(|p| p.indicator_passed != Some(false));
        let outcome = cycle_outcome(
            mech.passed,
            row.load_indicator_passed,
            own_packs.iter().map(|p| p.indicator_passed != Some(false)),
            biological,
        );
        let previous =
            store::previous_cycle_number(conn, clinic_id, &row.steriliser_id, row.cycle_number)?;
        let warnings: Vec<String> = cycle_number_gap(row.cycle_number, previous)
            .into_iter()
            .collect();
        let initials = initials(names.get(&row.operator_id).map_or("", String::as_str));
        let lookback = windows.get(&row.steriliser_id).cloned().unwrap_or_default();
        let overdue = run_while_overdue(
            row.started_at,
            negatives
                .get(&row.steriliser_id)
                .map_or(&[][..], Vec::as_slice),
            interval,
            tz,
        );
        let pack_views = own_packs
            .iter()
            .map(|p| {
                let expires_at = p
                    .shelf_life_days
                    .map(|d| row.finished_at + Duration::days(i64::from(d)));
                let (state, state_reason) = pack_state(
                    &PackFacts {
                        used: used.contains(&p.code),
                        cycle_outcome: outcome,
                        cycle_started_at: row.started_at,
                        biological,
                        lookback: lookback.clone(),
                        expires_at,
                        run_while_overdue: overdue,
                    },
                    now,
                );
                PackView {
                    code: p.code.clone(),
                    cycle_id: row.id.clone(),
                    cycle_number: row.cycle_number,
                    steriliser_id: row.steriliser_id.clone(),
                    contents: p.contents.clone(),
                    indicator: p.indicator_type.zip(p.indicator_passed).map(|(t, passed)| {
                        ChemicalIndicator {
                            indicator_type: t,
                            passed,
                        }
                    }),
                    sterilised_at: to_utc(row.finished_at),
                    operator_initials: initials.clone(),
                    expires_at: expires_at.map(to_utc),
                    state,
                    state_reason,
                }
            })
            .collect();
        views.push(CycleView {
            id: row.id.clone(),
            version: row.version,
            fields,
            operator_initials: initials,
            mechanical: mech,
            chemical_passed,
            biological,
            outcome,
            warnings,
            packs: pack_views,
            spore_test_ids: own_tests.iter().map(|(t, _)| t.id.clone()).collect(),
            recorded_at: to_utc(row.recorded_at),
            recorded_by: row.recorded_by.clone(),
            history: Vec::new(),
        });
    }
    Ok(views)
}

fn one_cycle_view(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    row: CycleRow,
) -> AppResult<CycleView> {
    cycle_views(conn, profiles, clinic_id, vec![row])?
        .pop()
        .ok_or(AppError::NotFound)
}

fn unique_pack_code(conn: &mut DbConn, clinic_id: &str, taken: &[String]) -> AppResult<String> {
    // 30 random bits per code: a collision is rare, so a few tries always suffice.
    for _ in 0..20 {
        let code = new_pack_code();
        if !taken.contains(&code) && !store::code_taken(conn, clinic_id, &code)? {
            return Ok(code);
        }
    }
    Err(AppError::internal("could not find a free pack code"))
}

pub fn create_cycle(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    mut input: CycleInput,
) -> AppResult<CycleView> {
    input.fields.normalise();
    for pack in &mut input.packs {
        pack.contents = pack.contents.trim().to_owned();
    }
    validated(input.validate(crate::clock::now()))?;
    audit::audited(conn, clinic_id, |conn| {
        let f = &input.fields;
        existing_steriliser(conn, clinic_id, &f.steriliser_id, "steriliser_id")?;
        let operator_id = f
            .operator_id
            .clone()
            .or_else(|| ctx.actor.id().map(str::to_owned))
            .ok_or_else(|| AppError::invalid("operator_id", "is required"))?;
        check_operator(conn, clinic_id, &operator_id)?;
        let status = store::current_status(conn, clinic_id, &f.steriliser_id)?;
        if status.as_ref().is_some_and(|s| !s.in_service) && !input.packs.is_empty() {
            return Err(AppError::Conflict(
                "the steriliser is out of service: it may only run empty test cycles (no packs) until it returns to service".into(),
            ));
        }
        if store::cycle_number_taken(conn, clinic_id, &f.steriliser_id, f.cycle_number, None)? {
            return Err(AppError::Conflict(format!(
                "cycle_number: cycle {} is already recorded for this steriliser",
                f.cycle_number
            )));
        }
        let id = db::new_id();
        let row = cycle_row(id.clone(), 1, clinic_id, f, &operator_id, ctx, None);
        store::insert_cycle(conn, &row)?;
        let shelf_life =
            crate::clinics::store::find(conn, clinic_id)?.and_then(|c| c.pack_shelf_life_days);
        let mut codes: Vec<String> = Vec::new();
        let mut packs = Vec::with_capacity(input.packs.len());
        for pack in &input.packs {
            let code = unique_pack_code(conn, clinic_id, &codes)?;
            codes.push(code.clone());
            packs.push(PackRow {
                id: db::new_id(),
                clinic_id: clinic_id.to_owned(),
                cycle_id: id.clone(),
                code,
                contents: pack.contents.clone(),
                indicator_type: pack.indicator.map(|i| i.indicator_type),
                indicator_passed: pack.indicator.map(|i| i.passed),
                shelf_life_days: shelf_life,
                created_at: db::now(),
            });
        }
        store::insert_packs(conn, &packs)?;
        let view = one_cycle_view(conn, profiles, clinic_id, row)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event("cycle.recorded", "cycle", &id, payload(&view), None),
        )?;
        Ok(view)
    })
}

pub fn amend_cycle(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<CycleView> {
    let reason = req.reason()?;
    audit::audited(conn, clinic_id, |conn| {
        let current = store::find_cycle(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
        let mut fields: CycleFields = apply_changes(&cycle_fields(&current), &req.changes, &[])?;
        fields.normalise();
        // An amendment corrects a past record, so "now" is not the time the load ran.
        validated(fields.validate(crate::clock::now()))?;
        existing_steriliser(
            conn,
            clinic_id,
            &fields.steriliser_id,
            "changes.steriliser_id",
        )?;
        let operator_id = fields
            .operator_id
            .clone()
            .unwrap_or_else(|| current.operator_id.clone());
        check_operator(conn, clinic_id, &operator_id).map_err(|_| {
            AppError::invalid(
                "changes.operator_id",
                "is not an active owner or technician of this clinic",
            )
        })?;
        if store::cycle_number_taken(
            conn,
            clinic_id,
            &fields.steriliser_id,
            fields.cycle_number,
            Some(id),
        )? {
            return Err(AppError::Conflict(format!(
                "cycle_number: cycle {} is already recorded for this steriliser",
                fields.cycle_number
            )));
        }
        let row = cycle_row(
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &fields,
            &operator_id,
            ctx,
            Some(reason.clone()),
        );
        store::insert_cycle(conn, &row)?;
        let view = one_cycle_view(conn, profiles, clinic_id, row)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event("cycle.amended", "cycle", id, payload(&view), Some(reason)),
        )?;
        Ok(view)
    })
}

pub fn get_cycle(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    id: &str,
) -> AppResult<CycleView> {
    let row = store::find_cycle(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
    let mut view = one_cycle_view(conn, profiles, clinic_id, row)?;
    view.history = history(
        store::cycle_history(conn, clinic_id, id)?
            .into_iter()
            .map(|r| {
                (
                    r.version,
                    r.recorded_at,
                    r.recorded_by.clone(),
                    r.amendment_reason.clone(),
                    cycle_fields(&r),
                )
            })
            .collect(),
    );
    Ok(view)
}

pub fn list_cycles(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    filter: &LogFilter,
) -> AppResult<(Vec<CycleView>, Option<String>)> {
    let mut rows = store::list_cycles(
        conn,
        clinic_id,
        &LogFilter {
            limit: filter.limit + 1,
            ..filter.clone()
        },
    )?;
    let next = next_cursor(&mut rows, filter.limit, |r| TimeCursor {
        at: r.started_at,
        id: r.id.clone(),
    });
    Ok((cycle_views(conn, profiles, clinic_id, rows)?, next))
}

/// A pack as it would be if it had not been opened: what a session checks before it starts.
pub fn pack_before_use(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    code: &str,
) -> AppResult<PackView> {
    let pack = store::find_pack(conn, clinic_id, code)?.ok_or(AppError::NotFound)?;
    let cycle = store::find_cycle(conn, clinic_id, &pack.cycle_id)?.ok_or(AppError::NotFound)?;
    cycle_views_counting_use(conn, profiles, clinic_id, vec![cycle], false)?
        .pop()
        .and_then(|c| c.packs.into_iter().find(|p| p.code == code))
        .ok_or(AppError::NotFound)
}

pub fn get_pack(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    typed_code: &str,
) -> AppResult<PackView> {
    let code = normalise_pack_code(typed_code).ok_or(AppError::NotFound)?;
    let pack = store::find_pack(conn, clinic_id, &code)?.ok_or(AppError::NotFound)?;
    let cycle = store::find_cycle(conn, clinic_id, &pack.cycle_id)?.ok_or(AppError::NotFound)?;
    one_cycle_view(conn, profiles, clinic_id, cycle)?
        .packs
        .into_iter()
        .find(|p| p.code == code)
        .ok_or(AppError::NotFound)
}

// ---------------------------------------------------------------------------------------------
// Spore tests

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SporeResultView {
    pub result: SporeResult,
    pub control_result: ControlResult,
    pub read_at: DateTime<Utc>,
    pub lab_reference: Option<String>,
    pub recorded_by: Option<String>,
    pub recorded_at: DateTime<Utc>,
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
}

fn spore_fields(row: &SporeTestRow) -> SporeTestInput {
    SporeTestInput {
        steriliser_id: row.steriliser_id.clone(),
        cycle_id: row.cycle_id.clone(),
        bi_product: row.bi_product.clone(),
        bi_lot: row.bi_lot.clone(),
        placed_at: to_utc(row.placed_at),
        incubation: match (row.incubation.as_str(), row.posted_on, row.lab_deadline) {
            ("mail_in", Some(posted_on), Some(lab_deadline)) => Incubation::MailIn {
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

fn spore_row(
    id: String,
    version: i32,
    clinic_id: &str,
    f: &SporeTestInput,
    ctx: &AuditContext,
    reason: Option<String>,
) -> SporeTestRow {
    let (incubation, hours, posted_on, lab_name, lab_deadline) = match &f.incubation {
        Incubation::InHouse { hours } => ("in_house", Some(*hours), None, None, None),
        Incubation::MailIn {
            posted_on,
            lab_name,
            lab_deadline,
        } => (
            "mail_in",
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

fn spore_view(
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
        result: result.map(|r| SporeResultView {
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
        }),
        fields,
        warnings,
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by.clone(),
        history: Vec::new(),
    }
}

/// The steriliser and the cycle must exist in the clinic, and the cycle must be one of its loads.
fn check_spore_links(
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
        let test = store::find_spore_test(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
        if store::find_spore_result(conn, clinic_id, id)?.is_some() {
            return Err(AppError::Conflict(
                "this spore test already has a result; a reading is recorded once and cannot be replaced"
                    .into(),
            ));
        }
        validated(input.validate(to_utc(test.placed_at), crate::clock::now()))?;
        let result = SporeResultRow {
            spore_test_id: id.to_owned(),
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
        };
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
            let reason = format!(
                "spore test {id} read positive at {}",
                audit::chain::format_time(result.read_at)
            );
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
            events.push(DomainEvent::SporeTestPositive {
                clinic_id: clinic_id.to_owned(),
                spore_test_id: id.to_owned(),
                summary: format!(
                    "The spore test placed {} in steriliser {} read positive at {} (control grew); the steriliser is out of service until a retest passes.",
                    audit::chain::format_time(test.placed_at),
                    test.steriliser_id,
                    audit::chain::format_time(result.read_at)
                ),
            });
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
        let current = store::find_spore_test(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
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
    let row = store::find_spore_test(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
    let result = store::find_spore_result(conn, clinic_id, id)?;
    let mut view = spore_view(&row, result.as_ref(), crate::clock::now().date_naive());
    view.history = history(
        store::spore_test_history(conn, clinic_id, id)?
            .into_iter()
            .map(|r| {
                (
                    r.version,
                    r.recorded_at,
                    r.recorded_by.clone(),
                    r.amendment_reason.clone(),
                    spore_fields(&r),
                )
            })
            .collect(),
    );
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
    let today = crate::clock::now().date_naive();
    let with_results = store::attach_results(conn, clinic_id, rows)?;
    Ok((
        with_results
            .iter()
            .map(|(t, r)| spore_view(t, r.as_ref(), today))
            .collect(),
        next,
    ))
}

// ---------------------------------------------------------------------------------------------
// Air-removal tests

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

fn air_fields(row: &AirRemovalRow) -> AirRemovalInput {
    AirRemovalInput {
        steriliser_id: row.steriliser_id.clone(),
        performed_at: to_utc(row.performed_at),
        test_type: AirRemovalTestType::parse(&row.test_type),
        passed: row.passed,
        notes: row.notes.clone(),
    }
}

fn air_view(row: &AirRemovalRow) -> AirRemovalView {
    AirRemovalView {
        id: row.id.clone(),
        version: row.version,
        fields: air_fields(row),
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by.clone(),
        history: Vec::new(),
    }
}

fn air_row(
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
        test_type: f.test_type.as_str().to_owned(),
        passed: f.passed,
        notes: f.notes.clone(),
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    }
}

/// Air-removal tests only make sense for sterilisers that remove air by vacuum.
fn check_pre_vacuum(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
    field: &str,
) -> AppResult<()> {
    let s = existing_steriliser(conn, clinic_id, steriliser_id, field)?;
    if SteriliserKind::parse(&s.kind) != SteriliserKind::PreVacuum {
        return Err(AppError::invalid(field, "is not a pre-vacuum steriliser: air-removal tests apply to pre-vacuum sterilisers only"));
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
        check_pre_vacuum(conn, clinic_id, &input.steriliser_id, "steriliser_id")?;
        let row = air_row(db::new_id(), 1, clinic_id, &input, ctx, None);
        store::insert_air_removal(conn, &row)?;
        let view = air_view(&row);
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
        let current = store::find_air_removal(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
        let mut fields: AirRemovalInput = apply_changes(&air_fields(&current), &req.changes, &[])?;
        fields.normalise();
        validated(fields.validate(crate::clock::now()))?;
        check_pre_vacuum(
            conn,
            clinic_id,
            &fields.steriliser_id,
            "changes.steriliser_id",
        )?;
        let row = air_row(
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &fields,
            ctx,
            Some(reason.clone()),
        );
        store::insert_air_removal(conn, &row)?;
        let view = air_view(&row);
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
    let row = store::find_air_removal(conn, clinic_id, id)?.ok_or(AppError::NotFound)?;
    let mut view = air_view(&row);
    view.history = history(
        store::air_removal_history(conn, clinic_id, id)?
            .into_iter()
            .map(|r| {
                (
                    r.version,
                    r.recorded_at,
                    r.recorded_by.clone(),
                    r.amendment_reason.clone(),
                    air_fields(&r),
                )
            })
            .collect(),
    );
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
    Ok((rows.iter().map(air_view).collect(), next))
}
