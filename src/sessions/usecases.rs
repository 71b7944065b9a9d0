//! Session queries and use cases. A session's facts (answers, packs and lots used, the start, the
//! completion) are append-only rows; packs, lots and the technician's credentials are copied into
//! the session as they stood when used, so the trace does not change when those records are
//! amended later.

use super::store::*;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::model::*;
use crate::audit::{self, AuditContext};
use crate::auth::{store as accounts, Role};
use crate::checklists::model::{check_answer, AnswerKind, ChecklistItem};
use crate::db::schema::{
    session_answers, session_completions, session_lots, session_pack_removals, session_packs,
    session_starts, sessions,
};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult, FieldError};
use crate::records::{event, not_found, validated, TimeCursor};

fn not_started(conn: &mut DbConn, id: &str) -> AppResult<()> {
    if start_of(conn, id)?.is_some() {
        return Err(AppError::Conflict(
            "the session has started; its setup can no longer change".into(),
        ));
    }
    Ok(())
}

fn audit_session(
    conn: &mut DbConn,
    ctx: &AuditContext,
    s: &SessionRow,
    action: &'static str,
    payload: Value,
    reason: Option<String>,
) -> AppResult<()> {
    audit::append(
        conn,
        &s.clinic_id,
        ctx,
        event(action, "session", &s.id, payload, reason),
    )?;
    Ok(())
}

pub fn create(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    input: SessionInput,
) -> AppResult<TraceView> {
    validated(input.validate())?;
    let id = audit::audited(conn, clinic_id, |conn| {
        crate::clients::store::find(conn, clinic_id, &input.client_id)?
            .ok_or_else(|| not_found("client_id", "client"))?;
        let technician_id = input
            .technician_id
            .clone()
            .or_else(|| ctx.actor.id().map(str::to_owned))
            .ok_or_else(|| AppError::invalid("technician_id", "is required"))?;
        match accounts::find_member(conn, clinic_id, &technician_id)? {
            Some((m, _)) if m.works_on_clients => {}
            Some((m, _)) if m.role() == Role::Owner => {
                return Err(AppError::invalid(
                    "technician_id",
                    "this owner does not work on clients; an owner who does says so on their membership first",
                ))
            }
            Some(_) => {
                return Err(AppError::invalid(
                    "technician_id",
                    "inspectors do not work on clients",
                ))
            }
            None => return Err(not_found("technician_id", "member")),
        }
        let template = match &input.checklist_id {
            Some(t) => crate::checklists::store::find(conn, clinic_id, t, None)?
                .ok_or_else(|| not_found("checklist_id", "checklist"))?,
            None => crate::checklists::store::newest(conn, clinic_id)?.ok_or_else(|| {
                AppError::invalid("checklist_id", "the clinic has no checklist template yet")
            })?,
        };
        let row = SessionRow {
            id: db::new_id(),
            clinic_id: clinic_id.to_owned(),
            client_id: input.client_id.clone(),
            technician_id,
            station: input.station.trim().to_owned(),
            procedure_name: input.procedure.trim().to_owned(),
            planned_at: db::truncate(input.planned_at.naive_utc()),
            template_id: template.id.clone(),
            template_version: template.version,
            created_by: ctx.actor.id().map(str::to_owned),
            created_at: db::now(),
        };
        diesel::insert_into(sessions::table)
            .values(&row)
            .execute(conn)?;
        audit_session(
            conn,
            ctx,
            &row,
            "session.planned",
            json!({
                "client_id": row.client_id, "technician_id": row.technician_id, "station": row.station,
                "procedure": row.procedure_name, "planned_at": audit::chain::format_time(row.planned_at),
                "checklist_id": row.template_id, "checklist_version": row.template_version,
            }),
            None,
        )?;
        Ok(row.id)
    })?;
    trace(conn, clinic_id, &id)
}

pub fn answer(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: AnswersInput,
) -> AppResult<TraceView> {
    if input.answers.is_empty() {
        return Err(AppError::invalid("answers", "give at least one answer"));
    }
    audit::audited(conn, clinic_id, |conn| {
        let s = find(conn, clinic_id, id)?;
        not_started(conn, id)?;
        let items = template_items(conn, &s)?;
        let mut errors = Vec::new();
        let mut resolved: HashMap<usize, Value> = HashMap::new();
        for (i, a) in input.answers.iter().enumerate() {
            match items.iter().find(|it| it.key == a.item_key) {
                None => errors.push(FieldError::new(
                    format!("answers[{i}].item_key"),
                    format!(
                        "is not an item of this session's checklist (version {})",
                        s.template_version
                    ),
                )),
                Some(item) => {
                    if let Err(reason) = check_answer(item, &a.value) {
                        errors.push(FieldError::new(format!("answers[{i}].value"), reason));
                    } else if item.answer == AnswerKind::Lot {
                        // A lot id, the lot number on the box or the scanned code: the answer
                        // keeps the lot's id.
                        let text = a.value.as_str().unwrap_or_default();
                        let lot_id = crate::lots::usecases::resolve_text(
                            conn,
                            clinic_id,
                            text,
                            &format!("answers[{i}].value"),
                        )?;
                        resolved.insert(i, Value::String(lot_id));
                    }
                    if a.answered_at
                        .is_some_and(|t| t > crate::clock::now() + chrono::Duration::minutes(1))
                    {
                        errors.push(FieldError::new(
                            format!("answers[{i}].answered_at"),
                            "must not be in the future",
                        ));
                    }
                }
            }
        }
        validated(errors)?;
        let mut answers = input.answers.clone();
        for (i, lot_id) in resolved {
            answers[i].value = lot_id;
        }
        for a in &answers {
            let row = AnswerRow {
                id: db::new_id(),
                clinic_id: clinic_id.to_owned(),
                session_id: id.to_owned(),
                item_key: a.item_key.clone(),
                answer: a.value.to_string(),
                answered_at: a
                    .answered_at
                    .map_or_else(db::now, |t| db::truncate(t.naive_utc())),
                recorded_by: ctx.actor.id().map(str::to_owned),
                recorded_at: db::now(),
            };
            diesel::insert_into(session_answers::table)
                .values(&row)
                .execute(conn)?;
        }
        audit_session(
            conn,
            ctx,
            &s,
            "session.checklist_answered",
            json!({"answers": answers}),
            None,
        )?;
        Ok(())
    })?;
    trace(conn, clinic_id, id)
}

pub fn add_pack(
    conn: &mut DbConn,
    profiles: &crate::jurisdiction::profiles::Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: PackUse,
) -> AppResult<TraceView> {
    audit::audited(conn, clinic_id, |conn| {
        let s = find(conn, clinic_id, id)?;
        not_started(conn, id)?;
        let pack = crate::sterilisation::usecases::get_pack(conn, profiles, clinic_id, &input.code)
            .map_err(|e| match e {
                AppError::NotFound | AppError::NoSuch(_) => not_found("code", "pack"),
                other => other,
            })?;
        if removed_codes(conn, id)?.contains(&pack.code) {
            return Err(AppError::Conflict(format!(
                "pack {} was set aside from this session; take another pack",
                pack.code
            )));
        }
        if !crate::sterilisation::store::opened_pack_codes(
            conn,
            clinic_id,
            std::slice::from_ref(&pack.code),
        )?
        .is_empty()
        {
            return Err(AppError::Conflict(format!(
                "pack {} was already opened for a session; packs are single-use",
                pack.code
            )));
        }
        let snapshot = serde_json::to_value(&pack).map_err(AppError::internal)?;
        let row = PackUseRow {
            session_id: id.to_owned(),
            pack_code: pack.code.clone(),
            clinic_id: clinic_id.to_owned(),
            snapshot: snapshot.to_string(),
            added_by: ctx.actor.id().map(str::to_owned),
            added_at: db::now(),
        };
        diesel::insert_into(session_packs::table)
            .values(&row)
            .execute(conn)?;
        audit_session(
            conn,
            ctx,
            &s,
            "session.pack_used",
            json!({"pack": snapshot}),
            None,
        )?;
        Ok(())
    })?;
    trace(conn, clinic_id, id)
}

pub fn add_lot(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: LotUse,
) -> AppResult<TraceView> {
    audit::audited(conn, clinic_id, |conn| {
        let s = find(conn, clinic_id, id)?;
        not_started(conn, id)?;
        let reference = crate::lots::usecases::LotReference {
            lot_id: input.lot_id.clone(),
            lot_number: input.lot_number.clone(),
            manufacturer: input.manufacturer.clone(),
            gtin: input.gtin.clone(),
            barcode: input.barcode.clone(),
        };
        let field = match (&input.barcode, &input.lot_number) {
            (Some(_), _) => "barcode",
            (None, Some(_)) => "lot_number",
            _ => "lot_id",
        };
        let lot_id = crate::lots::usecases::resolve(conn, clinic_id, &reference, field)?;
        let lot =
            crate::lots::usecases::get_lot(conn, clinic_id, &lot_id).map_err(|e| match e {
                AppError::NotFound | AppError::NoSuch(_) => not_found("lot_id", "lot"),
                other => other,
            })?;
        let already: i64 = session_lots::table
            .filter(session_lots::session_id.eq(id))
            .filter(session_lots::lot_id.eq(&lot_id))
            .count()
            .get_result(conn)?;
        if already > 0 {
            return Err(AppError::Conflict(
                "this lot is already recorded for the session".into(),
            ));
        }
        let mut snapshot = serde_json::to_value(&lot).map_err(AppError::internal)?;
        if let Some(obj) = snapshot.as_object_mut() {
            obj.remove("history");
        }
        let row = LotUseRow {
            session_id: id.to_owned(),
            lot_id: lot_id.clone(),
            clinic_id: clinic_id.to_owned(),
            lot_version: lot.version,
            snapshot: snapshot.to_string(),
            added_by: ctx.actor.id().map(str::to_owned),
            added_at: db::now(),
        };
        diesel::insert_into(session_lots::table)
            .values(&row)
            .execute(conn)?;
        audit_session(
            conn,
            ctx,
            &s,
            "session.lot_used",
            json!({"lot": snapshot}),
            None,
        )?;
        Ok(())
    })?;
    trace(conn, clinic_id, id)
}

/// The packs of a session set aside before its start.
fn removed_codes(conn: &mut DbConn, id: &str) -> QueryResult<Vec<String>> {
    session_pack_removals::table
        .filter(session_pack_removals::session_id.eq(id))
        .select(session_pack_removals::pack_code)
        .load(conn)
}

/// Sets a pack aside before the start (one that may not be used, or scanned by mistake): the scan
/// stays on the session's record with who set it aside, when and why, and the pack no longer
/// counts for the start, the look-back or as opened.
pub fn remove_pack(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: PackRemoval,
) -> AppResult<TraceView> {
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid(
            "reason",
            "is required: say why the pack is set aside",
        ));
    }
    if reason.chars().count() > 500 {
        return Err(AppError::invalid(
            "reason",
            "must be at most 500 characters",
        ));
    }
    let code = crate::sterilisation::model::normalise_pack_code(&input.code)
        .ok_or(AppError::NoSuch("pack"))?;
    audit::audited(conn, clinic_id, |conn| {
        let s = find(conn, clinic_id, id)?;
        not_started(conn, id)?;
        let in_session: i64 = session_packs::table
            .filter(session_packs::session_id.eq(id))
            .filter(session_packs::pack_code.eq(&code))
            .count()
            .get_result(conn)?;
        if in_session == 0 || removed_codes(conn, id)?.contains(&code) {
            return Err(AppError::NoSuch("pack in this session"));
        }
        diesel::insert_into(session_pack_removals::table)
            .values((
                session_pack_removals::session_id.eq(id),
                session_pack_removals::pack_code.eq(&code),
                session_pack_removals::clinic_id.eq(clinic_id),
                session_pack_removals::removed_by.eq(ctx.actor.id()),
                session_pack_removals::removed_at.eq(db::now()),
                session_pack_removals::reason.eq(&reason),
            ))
            .execute(conn)?;
        audit_session(
            conn,
            ctx,
            &s,
            "session.pack_set_aside",
            json!({"pack_code": code}),
            Some(reason.clone()),
        )?;
        Ok(())
    })?;
    trace(conn, clinic_id, id)
}

/// Whether the session may start now, and every reason it may not, as the start itself would
/// judge it (the same facts and rule), without starting it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub may_start: bool,
    /// Every reason, each naming the thing: the pack, the lot, the checklist item, the credential.
    pub refusals: Vec<FieldError>,
    /// Whether an owner may start despite the refusals, with a written reason.
    pub owner_may_override: bool,
}

pub fn readiness(
    conn: &mut DbConn,
    profiles: &crate::jurisdiction::profiles::Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
) -> AppResult<Readiness> {
    let s = find(conn, clinic_id, id)?;
    if start_of(conn, id)?.is_some() {
        return Err(AppError::Conflict("the session has already started".into()));
    }
    let (facts, _) = start_facts(conn, profiles, ctx, clinic_id, &s)?;
    let refusals = refusals(&facts);
    Ok(Readiness {
        may_start: refusals.is_empty(),
        owner_may_override: absolute_refusals(&facts).is_empty(),
        refusals,
    })
}

/// Starts the session if nothing forbids it; otherwise refuses with every reason, unless an owner
/// overrides with a written reason, which is audited and stays on the session.
pub fn start(
    conn: &mut DbConn,
    profiles: &crate::jurisdiction::profiles::Profiles,
    ctx: &AuditContext,
    role: Role,
    clinic_id: &str,
    id: &str,
    input: StartInput,
) -> AppResult<TraceView> {
    let override_reason = input
        .override_reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    audit::audited(conn, clinic_id, |conn| {
        let s = find(conn, clinic_id, id)?;
        if start_of(conn, id)?.is_some() {
            return Err(AppError::Conflict("the session has already started".into()));
        }
        let (facts, technician_snapshot) = start_facts(conn, profiles, ctx, clinic_id, &s)?;
        let refused = refusals(&facts);
        if !absolute_refusals(&facts).is_empty() {
            return Err(AppError::Refused(refused));
        }
        if !refused.is_empty() {
            match (&override_reason, role) {
                (None, _) => return Err(AppError::Refused(refused)),
                (Some(_), Role::Owner) => {}
                (Some(_), _) => {
                    return Err(AppError::Forbidden(
                        "only an owner may start a session despite refusals",
                    ))
                }
            }
        }
        let row = StartRow {
            session_id: id.to_owned(),
            clinic_id: clinic_id.to_owned(),
            started_at: db::now(),
            started_by: ctx.actor.id().map(str::to_owned),
            override_reason: if refused.is_empty() {
                None
            } else {
                override_reason.clone()
            },
            refusals: serde_json::to_string(&refused).map_err(AppError::internal)?,
            technician_snapshot: technician_snapshot.to_string(),
        };
        diesel::insert_into(session_starts::table)
            .values(&row)
            .execute(conn)?;
        let action = if refused.is_empty() {
            "session.started"
        } else {
            "session.started_with_override"
        };
        audit_session(
            conn,
            ctx,
            &s,
            action,
            json!({"refusals": refused, "technician": technician_snapshot}),
            row.override_reason.clone(),
        )?;
        Ok(())
    })?;
    trace(conn, clinic_id, id)
}

/// What the start is judged on: the checklist and its answers, each pack and lot as it stands
/// apart from this session, the technician's eligibility now, the client's age. Also the
/// technician's record as it stood, kept with the start.
fn start_facts(
    conn: &mut DbConn,
    profiles: &crate::jurisdiction::profiles::Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    s: &SessionRow,
) -> AppResult<(StartFacts, Value)> {
    let items = template_items(conn, s)?;
    let answers: HashMap<String, Value> = latest_answers(conn, &s.id)?;
    let removed = removed_codes(conn, &s.id)?;
    let uses: Vec<PackUseRow> = session_packs::table
        .filter(session_packs::session_id.eq(&s.id))
        .select(PackUseRow::as_select())
        .load(conn)?
        .into_iter()
        .filter(|u| !removed.contains(&u.pack_code))
        .collect();
    let context = crate::clinics::context::load(conn, profiles, clinic_id)?;
    let mut packs = Vec::new();
    for u in &uses {
        // This very session opened the pack: judge it as it stands apart from that.
        let pack = crate::sterilisation::usecases::pack_before_use(
            conn,
            profiles,
            clinic_id,
            &u.pack_code,
        )?;
        // Only the status is needed, not the steriliser's whole view and history.
        let status =
            crate::sterilisation::store::current_status(conn, clinic_id, &pack.steriliser_id)?;
        let quarantined = crate::sterilisation::usecases::is_quarantined(status.as_ref());
        let steriliser =
            crate::sterilisation::store::find_steriliser(conn, clinic_id, &pack.steriliser_id)?
                .map_or_else(|| "a steriliser".to_owned(), |r| r.name());
        packs.push(PackFact {
            from: format!("load {} of {steriliser}", pack.cycle_number),
            code: pack.code,
            state: pack.state,
            reason: pack.state_reason,
            quarantined,
        });
    }
    let lot_ids: Vec<String> = session_lots::table
        .filter(session_lots::session_id.eq(&s.id))
        .select(session_lots::lot_id)
        .load(conn)?;
    let mut lots = Vec::new();
    let mut kinds = Vec::new();
    for lot_id in lot_ids {
        let lot = crate::lots::usecases::get_lot(conn, clinic_id, &lot_id)?;
        kinds.push(lot.fields.kind);
        lots.push((
            lot_id,
            format!(
                "lot {} of {} {}",
                lot.fields.lot_number, lot.fields.manufacturer, lot.fields.product_name
            ),
            lot.status,
        ));
    }
    let caller = ctx.actor.id().unwrap_or_default().to_owned();
    let eligibility = crate::credentials::usecases::member_eligibility(
        conn,
        profiles,
        Role::Owner,
        &caller,
        clinic_id,
        &s.technician_id,
        crate::clock::now(),
    )?;
    let credentials = crate::credentials::usecases::list(
        conn,
        Role::Owner,
        &caller,
        clinic_id,
        &crate::credentials::store::CredentialFilter {
            user_id: Some(s.technician_id.clone()),
            limit: 100,
            ..Default::default()
        },
    )?
    .0;
    let client = crate::clients::store::find(conn, clinic_id, &s.client_id)?
        .ok_or(AppError::NoSuch("client"))?;
    let facts = StartFacts {
        items,
        answers,
        packs,
        lots,
        eligibility: eligibility.eligibility.clone(),
        blocked_by: eligibility.blocked_by.clone(),
        client_age: crate::clients::age_on(
            client.date_of_birth,
            crate::clinics::context::today(conn, clinic_id)?,
        ),
        minimum_age: context
            .profile
            .minimum_client_age
            .value
            .and_then(|years| i32::try_from(years).ok())
            .map(|years| MinimumAge {
                years,
                absolute: context.profile.minimum_client_age_absolute.value == Some(true),
                source: context.profile.minimum_client_age.source.clone(),
            }),
        missing_lot_kinds: crate::compliance::rules::missing_lot_kinds(
            context
                .profile
                .lots_recorded_per_session
                .value
                .as_deref()
                .unwrap_or_default(),
            &kinds,
        ),
    };
    let technician_snapshot = json!({"eligibility": eligibility, "credentials": credentials});
    Ok((facts, technician_snapshot))
}

pub fn complete(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: CompleteInput,
) -> AppResult<TraceView> {
    let notes = input
        .notes
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if notes.as_ref().is_some_and(|n| n.chars().count() > 5000) {
        return Err(AppError::invalid(
            "notes",
            "must be at most 5000 characters",
        ));
    }
    audit::audited(conn, clinic_id, |conn| {
        let s = find(conn, clinic_id, id)?;
        if start_of(conn, id)?.is_none() {
            return Err(AppError::Conflict("the session has not started".into()));
        }
        if completion_of(conn, id)?.is_some() {
            return Err(AppError::Conflict("the session is already complete".into()));
        }
        let row = CompletionRow {
            session_id: id.to_owned(),
            clinic_id: clinic_id.to_owned(),
            completed_at: db::now(),
            completed_by: ctx.actor.id().map(str::to_owned),
            notes: notes.clone(),
        };
        diesel::insert_into(session_completions::table)
            .values(&row)
            .execute(conn)?;
        audit_session(
            conn,
            ctx,
            &s,
            "session.completed",
            json!({"notes": notes}),
            None,
        )?;
        Ok(())
    })?;
    trace(conn, clinic_id, id)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChecklistLine {
    #[serde(flatten)]
    pub item: ChecklistItem,
    /// A tick (true), a number or a text, as the item asks; absent until answered.
    #[schema(value_type = Option<serde_json::Value>)]
    pub answer: Option<Value>,
    pub answered_at: Option<DateTime<Utc>>,
    pub done: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackSetAside {
    pub code: String,
    pub set_aside_at: DateTime<Utc>,
    pub set_aside_by: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StartView {
    pub started_at: DateTime<Utc>,
    pub started_by: Option<String>,
    /// The refusals an owner overrode, if any.
    pub override_reason: Option<String>,
    pub overridden_refusals: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompletionView {
    pub completed_at: DateTime<Utc>,
    pub completed_by: Option<String>,
    pub notes: Option<String>,
}

/// A session's full trace: who, for whom, the checklist as answered, and the packs, lots and
/// credentials as they stood when used.
impl TraceView {
    /// The session as someone without access to clients' details reads it: the client by
    /// pseudonymous id only.
    pub fn pseudonymous(mut self) -> Self {
        self.client_name = None;
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TraceView {
    pub id: String,
    pub status: SessionState,
    pub client_id: String,
    pub client_name: Option<String>,
    pub technician_id: String,
    pub technician_name: Option<String>,
    pub station: String,
    pub procedure: String,
    pub planned_at: DateTime<Utc>,
    pub checklist_id: String,
    pub checklist_version: i32,
    pub checklist: Vec<ChecklistLine>,
    /// Each pack as it stood when opened (its cycle, outcome and spore-test state).
    #[schema(value_type = Vec<Object>)]
    pub packs: Vec<Value>,
    /// Packs scanned in and set aside before the start, with who, when and why.
    pub removed_packs: Vec<PackSetAside>,
    /// Each lot as it stood when used (number, expiry, status, recall).
    #[schema(value_type = Vec<Object>)]
    pub lots: Vec<Value>,
    pub start: Option<StartView>,
    /// The technician's eligibility and credentials as they stood at the start.
    #[schema(value_type = Option<Object>)]
    pub technician_at_start: Option<Value>,
    pub completion: Option<CompletionView>,
}

pub fn trace(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<TraceView> {
    let s = find(conn, clinic_id, id)?;
    traces(conn, clinic_id, vec![s])?
        .pop()
        .ok_or(AppError::NoSuch("session"))
}

/// The traces of several sessions, each part read for all of them at once: a page of fifty
/// sessions costs the same dozen statements as one.
pub fn traces(
    conn: &mut DbConn,
    clinic_id: &str,
    sessions: Vec<SessionRow>,
) -> AppResult<Vec<TraceView>> {
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = sessions.iter().map(|s| s.id.clone()).collect();
    let mut templates: HashMap<(String, i32), Vec<ChecklistItem>> = HashMap::new();
    for s in &sessions {
        if let std::collections::hash_map::Entry::Vacant(slot) =
            templates.entry((s.template_id.clone(), s.template_version))
        {
            slot.insert(template_items(conn, s)?);
        }
    }
    let answer_rows: Vec<AnswerRow> = session_answers::table
        .filter(session_answers::clinic_id.eq(clinic_id))
        .filter(session_answers::session_id.eq_any(&ids))
        .select(AnswerRow::as_select())
        .order((
            session_answers::recorded_at.asc(),
            session_answers::id.asc(),
        ))
        .load(conn)?;
    let mut removals: HashMap<String, Vec<PackSetAside>> = HashMap::new();
    for (session, code, at, by, reason) in session_pack_removals::table
        .filter(session_pack_removals::clinic_id.eq(clinic_id))
        .filter(session_pack_removals::session_id.eq_any(&ids))
        .select((
            session_pack_removals::session_id,
            session_pack_removals::pack_code,
            session_pack_removals::removed_at,
            session_pack_removals::removed_by,
            session_pack_removals::reason,
        ))
        .order(session_pack_removals::removed_at.asc())
        .load::<(
            String,
            String,
            chrono::NaiveDateTime,
            Option<String>,
            String,
        )>(conn)?
    {
        removals.entry(session).or_default().push(PackSetAside {
            code,
            set_aside_at: to_utc(at),
            set_aside_by: by,
            reason,
        });
    }
    let mut packs: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (session, code, snapshot) in session_packs::table
        .filter(session_packs::clinic_id.eq(clinic_id))
        .filter(session_packs::session_id.eq_any(&ids))
        .select((
            session_packs::session_id,
            session_packs::pack_code,
            session_packs::snapshot,
        ))
        .order(session_packs::added_at.asc())
        .load::<(String, String, String)>(conn)?
    {
        packs.entry(session).or_default().push((code, snapshot));
    }
    let mut lots: HashMap<String, Vec<Value>> = HashMap::new();
    for (session, snapshot) in session_lots::table
        .filter(session_lots::clinic_id.eq(clinic_id))
        .filter(session_lots::session_id.eq_any(&ids))
        .select((session_lots::session_id, session_lots::snapshot))
        .order(session_lots::added_at.asc())
        .load::<(String, String)>(conn)?
    {
        lots.entry(session)
            .or_default()
            .push(serde_json::from_str(&snapshot).unwrap_or(Value::Null));
    }
    let mut starts: HashMap<String, StartRow> = session_starts::table
        .filter(session_starts::clinic_id.eq(clinic_id))
        .filter(session_starts::session_id.eq_any(&ids))
        .select(StartRow::as_select())
        .load::<StartRow>(conn)?
        .into_iter()
        .map(|r| (r.session_id.clone(), r))
        .collect();
    let mut completions: HashMap<String, CompletionRow> = session_completions::table
        .filter(session_completions::clinic_id.eq(clinic_id))
        .filter(session_completions::session_id.eq_any(&ids))
        .select(CompletionRow::as_select())
        .load::<CompletionRow>(conn)?
        .into_iter()
        .map(|r| (r.session_id.clone(), r))
        .collect();
    let client_ids: Vec<String> = sessions.iter().map(|s| s.client_id.clone()).collect();
    let client_names: HashMap<String, String> =
        crate::clients::store::find_many(conn, clinic_id, &client_ids)?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
    let staff: HashMap<String, String> = accounts::members_of(conn, clinic_id)?
        .into_iter()
        .map(|(_, u)| (u.id, u.display_name))
        .collect();

    let mut views = Vec::with_capacity(sessions.len());
    for s in sessions {
        let items = templates
            .get(&(s.template_id.clone(), s.template_version))
            .cloned()
            .unwrap_or_default();
        let mut latest: HashMap<&str, &AnswerRow> = HashMap::new();
        for a in answer_rows.iter().filter(|a| a.session_id == s.id) {
            latest.insert(a.item_key.as_str(), a);
        }
        let checklist = items
            .into_iter()
            .map(|item| {
                let a = latest.get(item.key.as_str());
                let value = a.map(|a| serde_json::from_str(&a.answer).unwrap_or(Value::Null));
                let done = value
                    .as_ref()
                    .is_some_and(|v| crate::checklists::model::completes(&item, v));
                ChecklistLine {
                    answered_at: a.map(|a| to_utc(a.answered_at)),
                    answer: value,
                    done,
                    item,
                }
            })
            .collect();
        let removed_packs = removals.remove(&s.id).unwrap_or_default();
        let packs: Vec<Value> = packs
            .remove(&s.id)
            .unwrap_or_default()
            .iter()
            .filter(|(code, _)| !removed_packs.iter().any(|r| &r.code == code))
            .map(|(_, snapshot)| serde_json::from_str(snapshot).unwrap_or(Value::Null))
            .collect();
        let start = starts.remove(&s.id);
        let completion = completions.remove(&s.id);
        let status = SessionState::of(start.is_some(), completion.is_some());
        views.push(TraceView {
            id: s.id.clone(),
            status,
            client_name: client_names.get(&s.client_id).cloned(),
            client_id: s.client_id,
            technician_name: staff.get(&s.technician_id).cloned(),
            technician_id: s.technician_id,
            station: s.station,
            procedure: s.procedure_name,
            planned_at: to_utc(s.planned_at),
            checklist_id: s.template_id,
            checklist_version: s.template_version,
            checklist,
            packs,
            removed_packs,
            lots: lots.remove(&s.id).unwrap_or_default(),
            technician_at_start: start
                .as_ref()
                .map(|st| serde_json::from_str(&st.technician_snapshot).unwrap_or(Value::Null)),
            start: start.map(|st| StartView {
                started_at: to_utc(st.started_at),
                started_by: st.started_by,
                override_reason: st.override_reason,
                overridden_refusals: serde_json::from_str(&st.refusals).unwrap_or_default(),
            }),
            completion: completion.map(|c| CompletionView {
                completed_at: to_utc(c.completed_at),
                completed_by: c.completed_by,
                notes: c.notes,
            }),
        });
    }
    Ok(views)
}

/// Which sessions a list holds: by technician, by the clinic-local day they are planned for, by
/// where they stand.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub technician_id: Option<String>,
    /// A clinic-local date: the sessions planned between its local midnights.
    pub date: Option<chrono::NaiveDate>,
    pub state: Option<SessionState>,
}

pub fn list(
    conn: &mut DbConn,
    profiles: &crate::jurisdiction::profiles::Profiles,
    clinic_id: &str,
    filter: &SessionFilter,
    after: Option<TimeCursor>,
    limit: i64,
) -> AppResult<(Vec<TraceView>, Option<String>)> {
    let mut query = sessions::table
        .filter(sessions::clinic_id.eq(clinic_id))
        .select(SessionRow::as_select())
        .order((sessions::planned_at.desc(), sessions::id.desc()))
        .limit(limit + 1)
        .into_boxed();
    if let Some(t) = &filter.technician_id {
        query = query.filter(sessions::technician_id.eq(t.clone()));
    }
    if let Some(day) = filter.date {
        let tz = crate::clinics::context::load(conn, profiles, clinic_id)?.tz;
        // From the local midnight that begins the day to the one that ends it.
        let from = crate::clinics::context::end_of_day(day - chrono::Duration::days(1), tz);
        let to = crate::clinics::context::end_of_day(day, tz);
        query = query
            .filter(sessions::planned_at.ge(from))
            .filter(sessions::planned_at.lt(to));
    }
    let started = session_starts::table
        .filter(session_starts::session_id.eq(sessions::id))
        .select(session_starts::session_id);
    let completed = session_completions::table
        .filter(session_completions::session_id.eq(sessions::id))
        .select(session_completions::session_id);
    match filter.state {
        Some(SessionState::Planned) => {
            query = query.filter(diesel::dsl::not(diesel::dsl::exists(started)));
        }
        Some(SessionState::InProgress) => {
            query = query
                .filter(diesel::dsl::exists(started))
                .filter(diesel::dsl::not(diesel::dsl::exists(completed)));
        }
        Some(SessionState::Completed) => {
            query = query.filter(diesel::dsl::exists(completed));
        }
        None => {}
    }
    if let Some(c) = after {
        query = query.filter(
            sessions::planned_at
                .lt(c.at)
                .or(sessions::planned_at.eq(c.at).and(sessions::id.lt(c.id))),
        );
    }
    let mut rows = query.load(conn)?;
    let next = crate::records::next_cursor(&mut rows, limit, |r| TimeCursor {
        at: r.planned_at,
        id: r.id.clone(),
    });
    Ok((traces(conn, clinic_id, rows)?, next))
}
