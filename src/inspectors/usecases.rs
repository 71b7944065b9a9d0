//! Inspector grants: read-only access to one clinic for a period, granted and revoked by an owner,
//! checked on every request. Grants and revocations are append-only facts in the audit chain.

use super::store::*;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{self, AuditContext, NewEvent};
use crate::auth::{check_email, normalise_email, store as accounts, Role};
use crate::clinics::store::ClinicRow;
use crate::db::schema::{inspector_grant_revocations, inspector_grants, users};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult, FieldError};

/// A password hash no password matches: the account waits for its invitation to be accepted.
const INVITED: &str = crate::auth::password::NO_PASSWORD_YET;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// The inspector's email; an account is created (with an invitation) if there is none.
    pub email: String,
    /// For a new account.
    pub display_name: Option<String>,
    /// When access begins; now when left out.
    pub valid_from: Option<DateTime<Utc>>,
    /// When access ends.
    pub valid_until: DateTime<Utc>,
    /// E.g. "annual inspection 2026".
    pub purpose: Option<String>,
    /// Show this inspector clients' contact details (for an investigation that needs them; a
    /// purpose is then required). Without it clients appear by pseudonymous id only.
    #[serde(default)]
    pub client_details: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Upcoming,
    Active,
    Expired,
    Revoked,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    /// Give this to the inspector once; it is not shown again. They set a password with it at
    /// `POST /api/v1/auth/invitations/accept`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub purpose: Option<String>,
    pub status: GrantStatus,
    pub granted_by: Option<String>,
    pub granted_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<String>,
    /// Whether clients' contact details are shown to this inspector.
    pub client_details: bool,
    /// Only in the answer that created a new account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation: Option<Invitation>,
}

pub fn status(g: &GrantRow, revoked: bool, now: NaiveDateTime) -> GrantStatus {
    if revoked {
        GrantStatus::Revoked
    } else if now < g.valid_from {
        GrantStatus::Upcoming
    } else if now >= g.valid_until {
        GrantStatus::Expired
    } else {
        GrantStatus::Active
    }
}

fn view(
    g: GrantRow,
    revocation: Option<RevocationRow>,
    email: String,
    display_name: String,
) -> GrantView {
    GrantView {
        status: status(&g, revocation.is_some(), db::now()),
        id: g.id,
        user_id: g.user_id,
        email,
        display_name,
        valid_from: to_utc(g.valid_from),
        valid_until: to_utc(g.valid_until),
        purpose: g.purpose,
        granted_by: g.granted_by,
        granted_at: to_utc(g.granted_at),
        client_details: g.client_details,
        revoked_at: revocation.as_ref().map(|r| to_utc(r.revoked_at)),
        revoke_reason: revocation.map(|r| r.reason),
        invitation: None,
    }
}

fn event(action: &'static str, g: &GrantRow, reason: Option<String>) -> NewEvent {
    NewEvent {
        action,
        entity_kind: "inspector_grant",
        entity_id: g.id.clone(),
        payload: json!({
            "grant_id": g.id,
            "user_id": g.user_id,
            "valid_from": audit::chain::format_time(g.valid_from),
            "valid_until": audit::chain::format_time(g.valid_until),
            "purpose": g.purpose,
            "client_details": g.client_details,
        }),
        reason,
    }
}

/// Grants an inspector read-only access to the clinic for a period.
/// A new account's invitation is mailed to the inspector (`public_url` is where they accept it)
/// in the same transaction, and is in this answer too, for the owner to pass on.
pub fn grant(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    input: GrantInput,
    public_url: &str,
) -> AppResult<GrantView> {
    let email = normalise_email(&input.email);
    let mut errors = Vec::new();
    if let Err(reason) = check_email(&email) {
        errors.push(FieldError::new("email", reason));
    }
    let now = db::now();
    let from = input
        .valid_from
        .map(|t| db::truncate(t.naive_utc()))
        .unwrap_or(now);
    let until = db::truncate(input.valid_until.naive_utc());
    if until <= from {
        errors.push(FieldError::new("valid_until", "must be after valid_from"));
    } else if until <= now {
        errors.push(FieldError::new("valid_until", "is in the past"));
    } else if until - from > Duration::days(366) {
        errors.push(FieldError::new(
            "valid_until",
            "a grant lasts at most a year; grant again for longer",
        ));
    }
    let purpose = input
        .purpose
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    if input.client_details && purpose.is_none() {
        errors.push(FieldError::new(
            "purpose",
            "is required when the grant shows clients' contact details: say which investigation needs them",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    audit::audited(conn, clinic_id, |conn| {
        let (user, invitation) = match accounts::find_user_by_email(conn, &email)? {
            Some(user) => (user, None),
            None => {
                let name = input
                    .display_name
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&email)
                    .to_owned();
                let user = accounts::insert_user(
                    conn,
                    &accounts::NewUser {
                        email: &email,
                        display_name: &name,
                        password_hash: INVITED,
                    },
                )?;
                let (token, expires) =
                    crate::auth::invitations::record(conn, &user.id, None, None)?;
                (
                    user,
                    Some(Invitation {
                        token,
                        expires_at: to_utc(expires),
                    }),
                )
            }
        };
        match accounts::find_member(conn, clinic_id, &user.id)? {
            Some((m, _)) if m.role() != Role::Inspector => {
                return Err(AppError::Conflict(format!(
                    "{email} is a member of this clinic as {}: staff cannot also inspect it",
                    m.role
                )));
            }
            Some(_) => {}
            None => {
                accounts::insert_membership(conn, clinic_id, &user.id, Role::Inspector, false)?;
            }
        }
        let row = GrantRow {
            id: db::new_id(),
            clinic_id: clinic_id.to_owned(),
            user_id: user.id.clone(),
            valid_from: from,
            valid_until: until,
            purpose,
            granted_by: ctx.actor.id().map(str::to_owned),
            granted_at: now,
            client_details: input.client_details,
        };
        diesel::insert_into(inspector_grants::table)
            .values(&row)
            .execute(conn)?;
        audit::append(conn, clinic_id, ctx, event("inspector.granted", &row, None))?;
        if let Some(inv) = &invitation {
            let clinic =
                crate::clinics::store::find(conn, clinic_id)?.ok_or(AppError::NoSuch("clinic"))?;
            crate::outbox::enqueue(
                conn,
                crate::outbox::NewMail {
                    clinic_id: clinic_id.to_owned(),
                    kind: crate::outbox::INVITATION,
                    recipient: user.email.clone(),
                    subject: format!("Inspector access to {}", clinic.name),
                    body_text: invitation_text(&clinic, &row, inv, public_url),
                    body_html: None,
                    export_id: None,
                },
            )?;
        }
        let mut v = view(row, None, user.email, user.display_name);
        v.invitation = invitation;
        Ok(v)
    })
}

/// The invitation an inspector reads: the access in the clinic's own times (with the zone), and
/// the exact steps to set a password and sign in.
fn invitation_text(clinic: &ClinicRow, g: &GrantRow, inv: &Invitation, public_url: &str) -> String {
    let tz = crate::clinics::context::time_zone(clinic).unwrap_or(chrono_tz::UTC);
    let local = |t: NaiveDateTime| {
        t.and_utc()
            .with_timezone(&tz)
            .format("%A %-d %B %Y, %H:%M %Z")
            .to_string()
    };
    let base = public_url.trim_end_matches('/');
    format!(
        "You have been given read-only access to the infection-control records of {name}{purpose}.\n\n\
         Your access runs from {from} to {until} ({tz} time).\n\n\
         1. Choose your password before {expires} ({tz} time) on this page; the link works once:\n\n   \
         {base}/invitations/accept?token={token}\n\n\
         2. Sign in at {base}/sign-in with this email address and that password. There you can read \
         the clinic's registers, its compliance view and its audit trail, and download or ask for \
         signed exports.\n\n\
         From a terminal instead, the same token works once with:\n\n   \
         curl -s {base}/api/v1/auth/invitations/accept -H 'content-type: application/json' \\\n     \
         -d '{{\"token\": \"{token}\", \"password\": \"a passphrase of your own, 12 characters or more\"}}'\n\n\
         and sign in with:\n\n   \
         curl -s {base}/api/v1/auth/login -H 'content-type: application/json' \\\n     \
         -d '{{\"email\": \"<this address>\", \"password\": \"<your passphrase>\"}}'\n\n   \
         The answer holds an access token; send it as \"Authorization: Bearer <token>\".\n\n\
         Then read the clinic's records, or ask for a signed export of any period:\n\n   \
         {base}/api/v1/clinics/{clinic_id}/compliance\n   \
         {base}/api/v1/clinics/{clinic_id}/exports  (POST {{\"month\": \"YYYY-MM\"}})\n\n\
         Download links in the clinic's summary mails work for you once you are signed in.\n\n\
         If you did not expect this message, ignore it: nothing happens without the token.\n",
        name = clinic.name,
        purpose = g
            .purpose
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default(),
        from = local(g.valid_from),
        until = local(g.valid_until),
        expires = local(inv.expires_at.naive_utc()),
        token = inv.token,
        clinic_id = clinic.id,
    )
}

/// Ends a grant before its time.
pub fn revoke(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
    input: RevokeInput,
) -> AppResult<GrantView> {
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid("reason", "is required"));
    }
    audit::audited(conn, clinic_id, |conn| {
        let g = find(conn, clinic_id, id)?;
        let already = inspector_grant_revocations::table
            .find(id)
            .select(RevocationRow::as_select())
            .first(conn)
            .optional()?;
        if already.is_some() {
            return Err(AppError::Conflict("the grant is already revoked".into()));
        }
        let row = RevocationRow {
            grant_id: g.id.clone(),
            clinic_id: clinic_id.to_owned(),
            reason: reason.clone(),
            revoked_by: ctx.actor.id().map(str::to_owned),
            revoked_at: db::now(),
        };
        diesel::insert_into(inspector_grant_revocations::table)
            .values(&row)
            .execute(conn)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event("inspector.revoked", &g, Some(reason)),
        )?;
        let user = accounts::find_user(conn, &g.user_id)?.ok_or(AppError::NoSuch("inspector"))?;
        Ok(view(g, Some(row), user.email, user.display_name))
    })
}

/// Every grant of the clinic, newest first.
pub fn list(conn: &mut DbConn, clinic_id: &str) -> AppResult<Vec<GrantView>> {
    let rows: Vec<(GrantRow, (String, String))> = inspector_grants::table
        .inner_join(users::table.on(users::id.eq(inspector_grants::user_id)))
        .filter(inspector_grants::clinic_id.eq(clinic_id))
        .select((GrantRow::as_select(), (users::email, users::display_name)))
        .order(inspector_grants::granted_at.desc())
        .load(conn)?;
    let revocations: Vec<RevocationRow> = inspector_grant_revocations::table
        .filter(inspector_grant_revocations::clinic_id.eq(clinic_id))
        .select(RevocationRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(g, (email, name))| {
            let r = revocations.iter().find(|r| r.grant_id == g.id).cloned();
            view(g, r, email, name)
        })
        .collect())
}

/// Records an inspector's read in the clinic's audit chain.
pub fn record_read(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    grant_id: &str,
    method: &str,
    path: &str,
    query: &str,
) -> AppResult<()> {
    audit::audited(conn, clinic_id, |conn| {
        audit::append(
            conn,
            clinic_id,
            ctx,
            NewEvent {
                action: "inspector.read",
                entity_kind: "inspector_grant",
                entity_id: grant_id.to_owned(),
                payload: json!({"method": method, "path": path, "query": query}),
                reason: None,
            },
        )?;
        Ok(())
    })
}

/// The addresses of the clinic's inspectors whose grant is running now (summary recipients).
pub fn active_inspector_emails(conn: &mut DbConn, clinic_id: &str) -> AppResult<Vec<String>> {
    let mut emails: Vec<String> = list(conn, clinic_id)?
        .into_iter()
        .filter(|g| g.status == GrantStatus::Active)
        .map(|g| g.email)
        .collect();
    emails.sort();
    emails.dedup();
    Ok(emails)
}
