//! Incident queries and use cases. The incident is a versioned record; follow-ups and the
//! closure are append-only facts.

use super::store::*;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::*;
use crate::audit::{self, AuditContext};
use crate::db::schema::{incident_closures, incident_follow_ups, incidents};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult, FieldError};
use crate::jurisdiction::profiles::Profiles;
use crate::records::*;

/// A follow-up an incident requires, as the records stood at a moment: when it is due and when
/// it was done, if it was by then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequiredAt {
    pub kind: FollowUpKind,
    pub due: chrono::NaiveDateTime,
    pub done_at: Option<chrono::NaiveDateTime>,
}

/// The follow-ups `incident` requires as the records stood at `at`: the one reading of an
/// incident's deadlines that the incident view, the compliance view and the report share.
pub fn required_at(
    conn: &mut DbConn,
    profile: &crate::jurisdiction::profiles::Profile,
    tz: chrono_tz::Tz,
    incident: &IncidentRow,
    at: chrono::NaiveDateTime,
) -> AppResult<Vec<RequiredAt>> {
    let done: Vec<(String, chrono::NaiveDateTime)> = incident_follow_ups::table
        .filter(incident_follow_ups::clinic_id.eq(&incident.clinic_id))
        .filter(incident_follow_ups::incident_id.eq(&incident.id))
        .filter(incident_follow_ups::recorded_at.le(at))
        .select((incident_follow_ups::kind, incident_follow_ups::done_at))
        .load(conn)?;
    let first_done = |kind: FollowUpKind| {
        done.iter()
            .filter(|(k, _)| k == kind.as_db())
            .map(|(_, t)| *t)
            .min()
    };
    let known_at: chrono::NaiveDateTime = incidents::table
        .filter(incidents::clinic_id.eq(&incident.clinic_id))
        .filter(incidents::id.eq(&incident.id))
        .select(diesel::dsl::min(incidents::recorded_at))
        .first::<Option<chrono::NaiveDateTime>>(conn)?
        .unwrap_or(incident.recorded_at);
    let clock = FollowUpClock {
        occurred_at: incident.occurred_at,
        known_at,
        evaluation_completed_at: first_done(FollowUpKind::EvaluationCompleted),
    };
    let report = profile.report_rule();
    Ok(required_follow_ups(
        IncidentKind::from_db(&incident.kind)?,
        &clock,
        tz,
        report.as_ref(),
    )
    .into_iter()
    .map(|(kind, due)| RequiredAt {
        kind,
        due,
        done_at: first_done(kind),
    })
    .collect())
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpInput {
    pub kind: FollowUpKind,
    pub note: String,
    /// When it was done (defaults to now).
    pub done_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseInput {
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequiredFollowUp {
    pub kind: FollowUpKind,
    pub due: DateTime<Utc>,
    pub status: FollowUpStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FollowUpView {
    pub kind: FollowUpKind,
    pub note: String,
    pub done_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub version: i32,
    #[serde(flatten)]
    pub fields: IncidentInput,
    /// What this kind of incident requires, when, and whether it is done.
    pub required_follow_ups: Vec<RequiredFollowUp>,
    /// True when a required follow-up is past due.
    pub overdue: bool,
    pub follow_ups: Vec<FollowUpView>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closure_summary: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<VersionView>,
}

fn fields(r: &IncidentRow) -> AppResult<IncidentInput> {
    Ok(IncidentInput {
        kind: IncidentKind::from_db(&r.kind)?,
        occurred_at: to_utc(r.occurred_at),
        location: r.location.clone(),
        session_id: r.session_id.clone(),
        people: serde_json::from_str(&r.people).unwrap_or_default(),
        description: r.description.clone(),
        immediate_actions: r.immediate_actions.clone(),
        sharps: match (&r.sharps_device_type, &r.sharps_work_area, &r.sharps_how) {
            (Some(t), Some(a), Some(h)) => Some(SharpsLog {
                device_type: t.clone(),
                device_brand: r.sharps_device_brand.clone(),
                work_area: a.clone(),
                how_it_happened: h.clone(),
            }),
            _ => None,
        },
    })
}

fn row(
    id: String,
    version: i32,
    clinic_id: &str,
    f: &IncidentInput,
    ctx: &AuditContext,
    reason: Option<String>,
) -> AppResult<IncidentRow> {
    Ok(IncidentRow {
        id,
        version,
        clinic_id: clinic_id.to_owned(),
        kind: f.kind.as_db().to_owned(),
        occurred_at: db::truncate(f.occurred_at.naive_utc()),
        location: f.location.trim().to_owned(),
        session_id: f.session_id.clone(),
        people: serde_json::to_string(&f.people).map_err(AppError::internal)?,
        description: f.description.trim().to_owned(),
        immediate_actions: f.immediate_actions.trim().to_owned(),
        sharps_device_type: f.sharps.as_ref().map(|s| s.device_type.trim().to_owned()),
        sharps_device_brand: f.sharps.as_ref().and_then(|s| s.device_brand.clone()),
        sharps_work_area: f.sharps.as_ref().map(|s| s.work_area.trim().to_owned()),
        sharps_how: f
            .sharps
            .as_ref()
            .map(|s| s.how_it_happened.trim().to_owned()),
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    })
}

/// The clinic's time zone and its jurisdiction's reporting deadline for client infections.
fn view(conn: &mut DbConn, profiles: &Profiles, r: &IncidentRow) -> AppResult<IncidentView> {
    view_at(conn, profiles, r, None)
}

/// The incident as it stood at `at` (now when absent): follow-ups recorded and a closure made
/// by then, and what was due or overdue then.
fn view_at(
    conn: &mut DbConn,
    profiles: &Profiles,
    r: &IncidentRow,
    at: Option<NaiveDateTime>,
) -> AppResult<IncidentView> {
    let now = at.unwrap_or_else(db::now);
    let follow_ups: Vec<FollowUpRow> = incident_follow_ups::table
        .filter(incident_follow_ups::clinic_id.eq(&r.clinic_id))
        .filter(incident_follow_ups::incident_id.eq(&r.id))
        .filter(incident_follow_ups::recorded_at.le(now))
        .select(FollowUpRow::as_select())
        .order(incident_follow_ups::done_at.asc())
        .load(conn)?;
    let closure: Option<ClosureRow> = incident_closures::table
        .find(&r.id)
        .filter(incident_closures::closed_at.le(now))
        .select(ClosureRow::as_select())
        .first(conn)
        .optional()?;
    let context = crate::clinics::context::load(conn, profiles, &r.clinic_id)?;
    let required: Vec<RequiredFollowUp> = required_at(conn, context.profile, context.tz, r, now)?
        .into_iter()
        .map(|f| RequiredFollowUp {
            kind: f.kind,
            due: to_utc(f.due),
            status: follow_up_status(f.due, f.done_at, now),
        })
        .collect();
    Ok(IncidentView {
        id: r.id.clone(),
        version: r.version,
        fields: fields(r)?,
        overdue: required.iter().any(|f| f.status == FollowUpStatus::Overdue),
        required_follow_ups: required,
        follow_ups: follow_ups
            .iter()
            .map(|f| {
                Ok(FollowUpView {
                    kind: FollowUpKind::from_db(&f.kind)?,
                    note: f.note.clone(),
                    done_at: to_utc(f.done_at),
                    recorded_by: f.recorded_by.clone(),
                })
            })
            .collect::<AppResult<_>>()?,
        closed_at: closure.as_ref().map(|c| to_utc(c.closed_at)),
        closure_summary: closure.map(|c| c.summary),
        recorded_at: to_utc(r.recorded_at),
        recorded_by: r.recorded_by.clone(),
        history: Vec::new(),
    })
}

/// Linked records must exist in this clinic; anything else looks like nothing.
fn check_links(
    conn: &mut DbConn,
    clinic_id: &str,
    f: &IncidentInput,
    prefix: &str,
) -> AppResult<()> {
    if let Some(session) = &f.session_id {
        let exists: i64 = crate::db::schema::sessions::table
            .filter(crate::db::schema::sessions::clinic_id.eq(clinic_id))
            .filter(crate::db::schema::sessions::id.eq(session))
            .count()
            .get_result(conn)?;
        if exists == 0 {
            return Err(not_found(&format!("{prefix}session_id"), "session"));
        }
    }
    for (i, p) in f.people.iter().enumerate() {
        if let Some(user) = &p.user_id {
            if crate::auth::store::find_member(conn, clinic_id, user)?.is_none() {
                return Err(not_found(&format!("{prefix}people[{i}].user_id"), "member"));
            }
        }
        if let Some(client) = &p.client_id {
            if crate::clients::store::find(conn, clinic_id, client)?.is_none() {
                return Err(not_found(
                    &format!("{prefix}people[{i}].client_id"),
                    "client",
                ));
            }
        }
    }
    Ok(())
}

pub fn report(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    input: IncidentInput,
) -> AppResult<IncidentView> {
    validated(input.validate(crate::clock::now()))?;
    audit::audited(conn, clinic_id, |conn| {
        check_links(conn, clinic_id, &input, "")?;
        let r = row(db::new_id(), 1, clinic_id, &input, ctx, None)?;
        diesel::insert_into(incidents::table)
            .values(&r)
            .execute(conn)?;
        let v = view(conn, profiles, &r)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event("incident.reported", "incident", &r.id, payload(&v), None),
        )?;
        Ok(v)
    })
}

pub fn amend(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<IncidentView> {
    let reason = req.reason()?;
    audit::audited(conn, clinic_id, |conn| {
        let current = find(conn, clinic_id, id)?;
        let f: IncidentInput = apply_changes(&fields(&current)?, &req.changes, &[])?;
        validated(f.validate(crate::clock::now()))?;
        check_links(conn, clinic_id, &f, "changes.")?;
        let r = row(
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &f,
            ctx,
            Some(reason.clone()),
        )?;
        diesel::insert_into(incidents::table)
            .values(&r)
            .execute(conn)?;
        let v = view(conn, profiles, &r)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "incident.amended",
                "incident",
                id,
                payload(&v),
                Some(reason),
            ),
        )?;
        Ok(v)
    })
}

pub fn add_follow_up(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: FollowUpInput,
) -> AppResult<IncidentView> {
    let note = input.note.trim().to_owned();
    let mut errors = Vec::new();
    if note.is_empty() {
        errors.push(FieldError::new("note", "is required"));
    }
    if input
        .done_at
        .is_some_and(|t| t > crate::clock::now() + chrono::Duration::minutes(1))
    {
        errors.push(FieldError::new("done_at", "must not be in the future"));
    }
    validated(errors)?;
    audit::audited(conn, clinic_id, |conn| {
        let r = find(conn, clinic_id, id)?;
        if incident_closures::table
            .find(id)
            .count()
            .get_result::<i64>(conn)?
            > 0
        {
            return Err(AppError::Conflict("the incident is closed".into()));
        }
        if input.done_at.is_some_and(|t| t.naive_utc() < r.occurred_at) {
            return Err(AppError::invalid("done_at", "is before the incident"));
        }
        let f = FollowUpRow {
            id: db::new_id(),
            clinic_id: clinic_id.to_owned(),
            incident_id: id.to_owned(),
            kind: input.kind.as_db().to_owned(),
            note: note.clone(),
            done_at: input
                .done_at
                .map_or_else(db::now, |t| db::truncate(t.naive_utc())),
            recorded_by: ctx.actor.id().map(str::to_owned),
            recorded_at: db::now(),
        };
        diesel::insert_into(incident_follow_ups::table)
            .values(&f)
            .execute(conn)?;
        let v = view(conn, profiles, &r)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "incident.follow_up_recorded",
                "incident",
                id,
                serde_json::json!({"kind": f.kind, "note": note, "done_at": audit::chain::format_time(f.done_at)}),
                None,
            ),
        )?;
        Ok(v)
    })
}

/// Closes an incident once every required follow-up is done.
pub fn close(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: CloseInput,
) -> AppResult<IncidentView> {
    let summary = input.summary.trim().to_owned();
    if summary.is_empty() {
        return Err(AppError::invalid("summary", "is required"));
    }
    audit::audited(conn, clinic_id, |conn| {
        let r = find(conn, clinic_id, id)?;
        if incident_closures::table
            .find(id)
            .count()
            .get_result::<i64>(conn)?
            > 0
        {
            return Err(AppError::Conflict("the incident is already closed".into()));
        }
        let open: Vec<FieldError> = view(conn, profiles, &r)?
            .required_follow_ups
            .iter()
            .filter(|f| f.status != FollowUpStatus::Done)
            .map(|f| {
                FieldError::new(
                    format!("follow_ups.{}", f.kind.as_db()),
                    format!("is not done (due {})", f.due.to_rfc3339()),
                )
            })
            .collect();
        if !open.is_empty() {
            return Err(AppError::Refused(open));
        }
        let c = ClosureRow {
            incident_id: id.to_owned(),
            clinic_id: clinic_id.to_owned(),
            closed_at: db::now(),
            closed_by: ctx.actor.id().map(str::to_owned),
            summary: summary.clone(),
        };
        diesel::insert_into(incident_closures::table)
            .values(&c)
            .execute(conn)?;
        let v = view(conn, profiles, &r)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "incident.closed",
                "incident",
                id,
                serde_json::json!({"summary": summary}),
                None,
            ),
        )?;
        Ok(v)
    })
}

pub fn get(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    id: &str,
) -> AppResult<IncidentView> {
    let r = find(conn, clinic_id, id)?;
    let mut v = view(conn, profiles, &r)?;
    let versions: Vec<IncidentRow> = incidents::table
        .filter(incidents::clinic_id.eq(clinic_id))
        .filter(incidents::id.eq(id))
        .select(IncidentRow::as_select())
        .order(incidents::version.asc())
        .load(conn)?;
    v.history = history_of(&versions, fields)?;
    Ok(v)
}

pub fn list(
    conn: &mut DbConn,
    profiles: &Profiles,
    clinic_id: &str,
    after: Option<TimeCursor>,
    limit: i64,
    only_overdue: bool,
    at: Option<NaiveDateTime>,
) -> AppResult<(Vec<IncidentView>, Option<String>)> {
    let mut query = incidents::table
        .filter(incidents::clinic_id.eq(clinic_id))
        .select(IncidentRow::as_select())
        .order((incidents::occurred_at.desc(), incidents::id.desc()))
        .into_boxed();
    query = standing(query, "incidents", at);
    if let Some(c) = after {
        query = query.filter(
            incidents::occurred_at
                .lt(c.at)
                .or(incidents::occurred_at.eq(c.at).and(incidents::id.lt(c.id))),
        );
    }
    // Overdue is derived, so that filter reads on until the page is full.
    let rows: Vec<IncidentRow> = if only_overdue {
        query.load(conn)?
    } else {
        query.limit(limit + 1).load(conn)?
    };
    let mut picked: Vec<(IncidentRow, IncidentView)> = Vec::new();
    for r in rows {
        let v = view_at(conn, profiles, &r, at)?;
        if !only_overdue || v.overdue {
            picked.push((r, v));
            if picked.len() as i64 > limit {
                break;
            }
        }
    }
    let next = next_cursor(&mut picked, limit, |(r, _)| TimeCursor {
        at: r.occurred_at,
        id: r.id.clone(),
    });
    Ok((picked.into_iter().map(|(_, v)| v).collect(), next))
}

/// Who an incident involved, as the clinic knows them and anyone may read: members by name,
/// named people by the name recorded, a client as "a client" (inspectors read this too), each
/// with their role.
pub fn people_in_words(conn: &mut DbConn, people_json: &str) -> AppResult<String> {
    let people: Vec<super::model::Person> = serde_json::from_str(people_json).unwrap_or_default();
    let mut who = Vec::new();
    for p in &people {
        let name = match (&p.user_id, &p.client_id, &p.name) {
            (Some(user), _, _) => crate::auth::store::find_user(conn, user)?
                .map(|u| u.display_name)
                .unwrap_or_else(|| "a member".into()),
            (None, Some(_), _) => "a client".into(),
            (None, None, Some(name)) => name.clone(),
            (None, None, None) => continue,
        };
        who.push(format!("{name} ({})", p.role));
    }
    Ok(who.join(", "))
}
