//! Credential use cases: submit, correct, verify, read, and a member's eligibility.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::*;
use super::store::{self, CredentialFilter, CredentialRow, VerificationRow};
use crate::audit::{self, AuditContext};
use crate::auth::{store as accounts, Role};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};
use crate::jurisdiction::profiles::Profiles;
use crate::records::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerificationView {
    pub verified_by: String,
    pub verified_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CredentialView {
    pub id: String,
    pub version: i32,
    #[serde(flatten)]
    pub fields: CredentialInput,
    /// An owner's verification of this version; an unverified credential does not count.
    pub verification: Option<VerificationView>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<VersionView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EligibilityView {
    pub user_id: String,
    pub at: DateTime<Utc>,
    /// The day in the clinic's time zone the rule was evaluated for.
    pub on: NaiveDate,
    #[serde(flatten)]
    pub eligibility: Eligibility,
    /// Set when the person may not work whatever their credentials (deactivated, inspector).
    pub blocked_by: Option<String>,
    pub requirements: Vec<Requirement>,
}

fn fields(row: &CredentialRow) -> AppResult<CredentialInput> {
    Ok(CredentialInput {
        user_id: row.user_id.clone(),
        kind: CredentialKind::from_db(&row.kind)?,
        issuer: row.issuer.clone(),
        number: row.number.clone(),
        issued_on: row.issued_on,
        expires_on: row.expires_on,
        hepatitis_b_status: row
            .hepatitis_b_status
            .as_deref()
            .map(HepatitisBStatus::from_db)
            .transpose()?,
        declined_on: row.declined_on,
    })
}

fn row(
    id: String,
    version: i32,
    clinic_id: &str,
    f: &CredentialInput,
    ctx: &AuditContext,
    reason: Option<String>,
) -> CredentialRow {
    CredentialRow {
        id,
        version,
        clinic_id: clinic_id.to_owned(),
        user_id: f.user_id.clone(),
        kind: f.kind.as_db().to_owned(),
        issuer: f.issuer.clone(),
        number: f.number.clone(),
        issued_on: f.issued_on,
        expires_on: f.expires_on,
        hepatitis_b_status: f.hepatitis_b_status.map(|s| s.as_db().to_owned()),
        declined_on: f.declined_on,
        recorded_by: ctx.actor.id().map(str::to_owned),
        recorded_at: db::now(),
        amendment_reason: reason,
    }
}

fn view(row: &CredentialRow, verifications: &[VerificationRow]) -> AppResult<CredentialView> {
    Ok(CredentialView {
        id: row.id.clone(),
        version: row.version,
        fields: fields(row)?,
        verification: verifications
            .iter()
            .find(|v| v.credential_id == row.id && v.credential_version == row.version)
            .map(|v| VerificationView {
                verified_by: v.verified_by.clone(),
                verified_at: to_utc(v.verified_at),
            }),
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by.clone(),
        history: Vec::new(),
    })
}

/// Who may act on whose credentials: owners on anyone's; technicians on their own only.
fn may_act_for(caller_role: Role, caller_id: &str, user_id: &str) -> AppResult<()> {
    match caller_role {
        Role::Owner => Ok(()),
        Role::Technician if caller_id == user_id => Ok(()),
        Role::Technician => Err(AppError::Forbidden(
            "technicians may submit and correct only their own credentials",
        )),
        Role::Inspector => Err(AppError::Forbidden("inspectors have read-only access")),
    }
}

/// The credential holder must be a member of this clinic; anyone else looks like nobody.
fn check_holder(conn: &mut DbConn, clinic_id: &str, user_id: &str, field: &str) -> AppResult<()> {
    match accounts::find_member(conn, clinic_id, user_id)? {
        Some((m, _)) if m.role() != Role::Inspector => Ok(()),
        Some(_) => Err(AppError::invalid(
            field,
            "inspectors do not hold practitioner credentials here",
        )),
        None => Err(not_found(field, "member")),
    }
}

pub fn submit(
    conn: &mut DbConn,
    ctx: &AuditContext,
    role: Role,
    clinic_id: &str,
    mut input: CredentialInput,
) -> AppResult<CredentialView> {
    input.normalise();
    let caller = ctx.actor.id().unwrap_or_default().to_owned();
    may_act_for(role, &caller, &input.user_id)?;
    validated(input.validate(crate::clinics::context::today(conn, clinic_id)?))?;
    audit::audited(conn, clinic_id, |conn| {
        check_holder(conn, clinic_id, &input.user_id, "user_id")?;
        let row = row(db::new_id(), 1, clinic_id, &input, ctx, None);
        store::insert(conn, &row)?;
        let view = view(&row, &[])?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "credential.submitted",
                "credential",
                &row.id,
                payload(&view),
                None,
            ),
        )?;
        Ok(view)
    })
}

pub fn amend(
    conn: &mut DbConn,
    ctx: &AuditContext,
    role: Role,
    clinic_id: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<CredentialView> {
    let reason = req.reason()?;
    let caller = ctx.actor.id().unwrap_or_default().to_owned();
    audit::audited(conn, clinic_id, |conn| {
        let current = store::find(conn, clinic_id, id)?.ok_or(AppError::NoSuch("credential"))?;
        if role == Role::Technician && current.user_id != caller {
            return Err(AppError::NoSuch("credential"));
        }
        may_act_for(role, &caller, &current.user_id)?;
        // A credential stays with its holder; a wrong holder is a new credential.
        let mut f: CredentialInput = apply_changes(&fields(&current)?, &req.changes, &["user_id"])?;
        f.normalise();
        validated(f.validate(crate::clinics::context::today(conn, clinic_id)?))?;
        let row = row(
            id.to_owned(),
            current.version + 1,
            clinic_id,
            &f,
            ctx,
            Some(reason.clone()),
        );
        store::insert(conn, &row)?;
        let view = view(&row, &[])?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "credential.amended",
                "credential",
                id,
                payload(&view),
                Some(reason),
            ),
        )?;
        Ok(view)
    })
}

/// An owner verifies the current version (who and when). Verifying it twice is a conflict.
pub fn verify(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
) -> AppResult<CredentialView> {
    audit::audited(conn, clinic_id, |conn| {
        let current = store::find(conn, clinic_id, id)?.ok_or(AppError::NoSuch("credential"))?;
        let existing = store::verifications_of(conn, clinic_id, &[id.to_owned()], None)?;
        if existing
            .iter()
            .any(|v| v.credential_version == current.version)
        {
            return Err(AppError::Conflict(
                "this version of the credential is already verified".into(),
            ));
        }
        let verification = VerificationRow {
            credential_id: id.to_owned(),
            credential_version: current.version,
            clinic_id: clinic_id.to_owned(),
            verified_by: ctx.actor.id().unwrap_or_default().to_owned(),
            verified_at: db::now(),
        };
        store::insert_verification(conn, &verification)?;
        let view = view(&current, &[verification])?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "credential.verified",
                "credential",
                id,
                payload(&view),
                None,
            ),
        )?;
        Ok(view)
    })
}

pub fn get(
    conn: &mut DbConn,
    role: Role,
    caller: &str,
    clinic_id: &str,
    id: &str,
) -> AppResult<CredentialView> {
    let row = store::find(conn, clinic_id, id)?.ok_or(AppError::NoSuch("credential"))?;
    // Credentials include health status: a technician sees only their own.
    if role == Role::Technician && row.user_id != caller {
        return Err(AppError::NoSuch("credential"));
    }
    let verifications = store::verifications_of(conn, clinic_id, &[id.to_owned()], None)?;
    let mut v = view(&row, &verifications)?;
    v.history = history_of(&store::history(conn, clinic_id, id)?, fields)?;
    Ok(v)
}

pub fn list(
    conn: &mut DbConn,
    role: Role,
    caller: &str,
    clinic_id: &str,
    filter: &CredentialFilter,
) -> AppResult<(Vec<CredentialView>, Option<String>)> {
    let mut filter = CredentialFilter {
        limit: filter.limit + 1,
        ..filter.clone()
    };
    if role == Role::Technician {
        filter.user_id = Some(caller.to_owned());
    }
    let limit = filter.limit - 1;
    let mut rows = store::list(conn, clinic_id, &filter)?;
    let next = cut_page(&mut rows, limit, |r| r.id.clone());
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let verifications = store::verifications_of(conn, clinic_id, &ids, filter.at)?;
    Ok((
        rows.iter()
            .map(|r| view(r, &verifications))
            .collect::<AppResult<_>>()?,
        next,
    ))
}

/// Whether `user_id` may work on a client at `at`, judged on the clinic-local day.
pub fn member_eligibility(
    conn: &mut DbConn,
    profiles: &Profiles,
    role: Role,
    caller: &str,
    clinic_id: &str,
    user_id: &str,
    at: DateTime<Utc>,
) -> AppResult<EligibilityView> {
    if role == Role::Technician && user_id != caller {
        return Err(AppError::Forbidden(
            "technicians may check only their own eligibility",
        ));
    }
    let (membership, _) =
        accounts::find_member(conn, clinic_id, user_id)?.ok_or(AppError::NoSuch("member"))?;
    let context = crate::clinics::context::load(conn, profiles, clinic_id)?;
    let on = at.with_timezone(&context.tz).date_naive();
    // The clinic's jurisdiction profile says which credentials count.
    let requirements = context.profile.requirements();
    // Judged on the records as they stood at `at`: a credential recorded or verified later
    // did not count then.
    let moment = db::truncate(at.naive_utc());
    let rows = store::of_user_as_of(conn, clinic_id, user_id, moment)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let verifications = store::verifications_of(conn, clinic_id, &ids, Some(moment))?;
    let facts: Vec<CredentialFact> = rows
        .iter()
        .map(|r| {
            r.fact(
                verifications
                    .iter()
                    .any(|v| v.credential_id == r.id && v.credential_version == r.version),
            )
        })
        .collect::<AppResult<_>>()?;
    let mut eligibility = eligibility(&requirements, &facts, on);
    let blocked_by = if !membership.active_at(moment) {
        Some("the member is deactivated".to_owned())
    } else if membership.role() == Role::Inspector {
        Some("inspectors do not work on clients".to_owned())
    } else if !membership.works_on_clients {
        Some("the member does not work on clients".to_owned())
    } else {
        None
    };
    if blocked_by.is_some() {
        eligibility.eligible = false;
    }
    Ok(EligibilityView {
        user_id: user_id.to_owned(),
        at,
        on,
        eligibility,
        blocked_by,
        requirements,
    })
}
