//! Cycles and the packs they make: logging, correcting and reading loads, and packs by their code.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::audit::{self, AuditContext};
use crate::auth::{store as accounts, Role};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::jurisdiction::profiles::Profiles;
use crate::records::*;
use crate::sterilisation::model::*;
use crate::sterilisation::store::{self, *};

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
    /// When the shelf life ends: the next clinic-local midnight after the last day of use
    /// (exclusive). None under an event-related shelf-life policy.
    pub expires_at: Option<DateTime<Utc>>,
    /// The last clinic-local day the pack may be used, as its label prints it.
    pub use_by: Option<chrono::NaiveDate>,
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
    /// The steriliser's own record of this cycle (same steriliser and number), imported from its
    /// file, with every value that differs from what was typed. Shown on one cycle, not in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_record: Option<super::DeviceRecordLink>,
}

pub(super) fn cycle_fields(row: &CycleRow) -> CycleFields {
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

pub(super) fn cycle_row(
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

pub(super) fn mechanical(f: &CycleFields) -> MechanicalView {
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
pub(super) fn check_operator(
    conn: &mut DbConn,
    clinic_id: &str,
    operator_id: &str,
) -> AppResult<()> {
    match accounts::find_member(conn, clinic_id, operator_id)? {
        Some((m, _)) if m.active && m.role() != Role::Inspector => Ok(()),
        _ => Err(AppError::invalid(
            "operator_id",
            "is not an active owner or technician of this clinic",
        )),
    }
}

/// Names by user id, for operator initials on cycles and labels.
pub(super) fn staff_names(
    conn: &mut DbConn,
    clinic_id: &str,
) -> AppResult<HashMap<String, String>> {
    Ok(accounts::members_of(conn, clinic_id)?
        .into_iter()
        .map(|(_, u)| (u.id, u.display_name))
        .collect())
}

/// Builds full views of cycles with their packs, tests and derived states, in a few queries.
pub(super) fn cycle_views(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    rows: Vec<CycleRow>,
) -> AppResult<Vec<CycleView>> {
    cycle_views_counting_use(conn, profiles, clinic_id, rows, true, None)
}

/// The packs of the loads being shown: read, or, for a load just recorded, the rows just
/// written (nobody can have opened them yet).
enum Packs {
    Read { count_use: bool },
    JustWritten(Vec<PackRow>),
}

/// `count_use: false` judges packs as if nobody had opened them yet (a session about to start
/// judges the very packs it has opened). With `at`, the loads are judged as the records stood
/// then (now when absent).
pub(super) fn cycle_views_counting_use(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    rows: Vec<CycleRow>,
    count_use: bool,
    at: Option<NaiveDateTime>,
) -> AppResult<Vec<CycleView>> {
    views_of(
        conn,
        profiles,
        clinic_id,
        rows,
        Packs::Read { count_use },
        at,
    )
}

fn views_of(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    rows: Vec<CycleRow>,
    packs: Packs,
    at: Option<NaiveDateTime>,
) -> AppResult<Vec<CycleView>> {
    let context = crate::clinics::context::load(conn, profiles, clinic_id)?;
    let rules = gate::load_rules(context.profile, context.tz);
    let now = at.unwrap_or_else(db::now);
    let (packs, used) = match packs {
        Packs::JustWritten(packs) => (packs, HashSet::new()),
        Packs::Read { count_use } => {
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            let packs = store::packs_of_cycles(conn, clinic_id, &ids)?;
            let codes: Vec<String> = packs.iter().map(|p| p.code.clone()).collect();
            let used: HashSet<String> = if count_use {
                store::used_pack_codes(conn, clinic_id, &codes, now)?
                    .into_iter()
                    .collect()
            } else {
                HashSet::new()
            };
            (packs, used)
        }
    };
    let names = staff_names(conn, clinic_id)?;
    let judged_from = rows.iter().map(|r| r.started_at).min().unwrap_or(now);
    let sterilisers = gate::sterilisers_at(conn, clinic_id, context.profile, now, judged_from)?;
    let judged = gate::judge_loads(
        conn,
        clinic_id,
        &rules,
        &sterilisers,
        &rows,
        &packs,
        &used,
        now,
    )?;
    // Each steriliser's numbers around the listed loads, to flag gaps before each one.
    let mut numbers: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut spans: HashMap<&str, (i64, i64)> = HashMap::new();
    for row in &rows {
        let span = spans
            .entry(row.steriliser_id.as_str())
            .or_insert((row.cycle_number, row.cycle_number));
        *span = (span.0.min(row.cycle_number), span.1.max(row.cycle_number));
    }
    for (steriliser, (lowest, highest)) in spans {
        let around = store::cycle_numbers_around(conn, clinic_id, steriliser, lowest, highest, at)?;
        numbers.insert(steriliser, around);
    }
    let mut views = Vec::with_capacity(rows.len());
    for row in &rows {
        let fields = cycle_fields(row);
        let Some(load) = judged.get(&row.id) else {
            continue;
        };
        let (biological, outcome) = (load.biological, load.outcome);
        let own_packs: Vec<&PackRow> = packs.iter().filter(|p| p.cycle_id == row.id).collect();
        let mech = mechanical(&fields);
        let chemical_passed = row.load_indicator_passed
            && own_packs.iter().all(|p| p.indicator_passed != Some(false));
        let previous = numbers
            .get(row.steriliser_id.as_str())
            .and_then(|n| n.iter().rev().find(|n| **n < row.cycle_number).copied());
        let warnings: Vec<String> = cycle_number_gap(row.cycle_number, previous)
            .into_iter()
            .collect();
        let initials = initials(names.get(&row.operator_id).map_or("", String::as_str));
        let pack_views = own_packs
            .iter()
            .filter_map(|p| {
                let facts = load.packs.get(&p.code)?;
                let (state, state_reason) = pack_state(facts, now);
                Some(PackView {
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
                    expires_at: facts.expires_at.map(to_utc),
                    use_by: facts.expires_at.map(|t| {
                        (t - chrono::Duration::microseconds(1))
                            .and_utc()
                            .with_timezone(&context.tz)
                            .date_naive()
                    }),
                    state,
                    state_reason,
                })
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
            spore_test_ids: load.spore_test_ids.clone(),
            recorded_at: to_utc(row.recorded_at),
            recorded_by: row.recorded_by.clone(),
            history: Vec::new(),
            device_record: None,
        });
    }
    Ok(views)
}

pub(super) fn one_cycle_view(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    row: CycleRow,
) -> AppResult<CycleView> {
    cycle_views(conn, profiles, clinic_id, vec![row])?
        .pop()
        .ok_or(AppError::NoSuch("cycle"))
}

/// Codes for `count` new packs, none already on a pack of the clinic: drawn together and checked
/// in one statement. With 30 random bits per code a redraw is rare, so a few rounds always do.
pub(super) fn unique_pack_codes(
    conn: &mut DbConn,
    clinic_id: &str,
    count: usize,
) -> AppResult<Vec<String>> {
    let mut codes: Vec<String> = Vec::with_capacity(count);
    for _ in 0..20 {
        let mut fresh: Vec<String> = Vec::with_capacity(count - codes.len());
        while codes.len() + fresh.len() < count {
            let code = new_pack_code();
            if !codes.contains(&code) && !fresh.contains(&code) {
                fresh.push(code);
            }
        }
        if fresh.is_empty() {
            return Ok(codes);
        }
        let taken = store::codes_taken(conn, clinic_id, &fresh)?;
        codes.extend(fresh.into_iter().filter(|c| !taken.contains(c)));
    }
    Err(AppError::internal("could not find free pack codes"))
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
        let context = crate::clinics::context::load(conn, profiles, clinic_id)?;
        let shelf_life = effective_shelf_life(
            context.clinic.pack_shelf_life_days,
            context.profile.sterilisation.pack_shelf_life_days.value,
        );
        let codes = unique_pack_codes(conn, clinic_id, input.packs.len())?;
        let mut packs = Vec::with_capacity(input.packs.len());
        for (pack, code) in input.packs.iter().zip(codes) {
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
        // The answer is built from the rows just written, not read back.
        let view = views_of(
            conn,
            profiles,
            clinic_id,
            vec![row],
            Packs::JustWritten(packs),
            None,
        )?
        .pop()
        .ok_or(AppError::NoSuch("cycle"))?;
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
        let current = store::find_cycle(conn, clinic_id, id)?.ok_or(AppError::NoSuch("cycle"))?;
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
    let row = store::find_cycle(conn, clinic_id, id)?.ok_or(AppError::NoSuch("cycle"))?;
    // Compared with the typed values as they stand: the current version's row.
    let device_record = super::device_record_of(conn, clinic_id, &row)?;
    let mut view = one_cycle_view(conn, profiles, clinic_id, row)?;
    view.history = history_of(&store::cycle_history(conn, clinic_id, id)?, |r| {
        Ok(cycle_fields(r))
    })?;
    view.device_record = device_record;
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
    Ok((
        cycle_views_counting_use(conn, profiles, clinic_id, rows, true, filter.at)?,
        next,
    ))
}

/// A pack as it would be if it had not been opened: what a session checks before it starts.
pub fn pack_before_use(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    code: &str,
) -> AppResult<PackView> {
    let pack = store::find_pack(conn, clinic_id, code)?.ok_or(AppError::NoSuch("pack"))?;
    let cycle =
        store::find_cycle(conn, clinic_id, &pack.cycle_id)?.ok_or(AppError::NoSuch("pack"))?;
    cycle_views_counting_use(conn, profiles, clinic_id, vec![cycle], false, None)?
        .pop()
        .and_then(|c| c.packs.into_iter().find(|p| p.code == code))
        .ok_or(AppError::NoSuch("pack"))
}

pub fn get_pack(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    typed_code: &str,
) -> AppResult<PackView> {
    let code = normalise_pack_code(typed_code).ok_or(AppError::NoSuch("pack"))?;
    let pack = store::find_pack(conn, clinic_id, &code)?.ok_or(AppError::NoSuch("pack"))?;
    let cycle =
        store::find_cycle(conn, clinic_id, &pack.cycle_id)?.ok_or(AppError::NoSuch("pack"))?;
    one_cycle_view(conn, profiles, clinic_id, cycle)?
        .packs
        .into_iter()
        .find(|p| p.code == code)
        .ok_or(AppError::NoSuch("pack"))
}
