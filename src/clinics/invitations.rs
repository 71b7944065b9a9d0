//! Inviting someone to a clinic's staff, and accepting an invitation.
//!
//! An owner names an email and a role; the answer is the same whether or not the email has an
//! account, so adding staff cannot be used to learn who has one. Nobody joins a clinic until the
//! person behind the email accepts with the mailed token: a new account chooses its password
//! then, an existing account proves it is theirs with its current password.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::usecases::member_event;
use crate::audit::{self, Actor, AuditContext, NewEvent};
use crate::auth::invitations::{hash_token, record as record_invitation};
use crate::auth::store::{self as accounts, UserRow};
use crate::auth::{password, Role};
use crate::db::schema::invitations;
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};

/// What an owner asked for.
pub struct NewInvitation {
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub works_on_clients: bool,
}

/// The answer to an invitation: the same for an email with or without an account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    pub email: String,
    pub role: Role,
    /// Practitioner rules apply to them once they join (always for technicians).
    pub works_on_clients: bool,
    /// `invited`: the person joins when they accept the mailed invitation.
    pub status: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: DateTime<Utc>,
}

const UNUSABLE: &str = "is unknown, used or expired: ask the clinic for a new invitation";

/// Records the invitation, its audit event and its mail in one transaction.
pub fn invite(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    new: NewInvitation,
    public_url: &str,
) -> AppResult<InvitationView> {
    if new.role == Role::Inspector {
        return Err(AppError::invalid(
            "role",
            "inspectors are given a time-limited grant at /inspectors, not a membership",
        ));
    }
    let works = new.role.works_on_clients(new.works_on_clients);
    audit::audited(conn, clinic_id, |conn| {
        let clinic = super::store::find(conn, clinic_id)?.ok_or(AppError::NoSuch("clinic"))?;
        let user = match accounts::find_user_by_email(conn, &new.email)? {
            Some(user) => {
                super::usecases::ensure_not_member(conn, clinic_id, &user.id)?;
                user
            }
            None => accounts::insert_user(
                conn,
                &accounts::NewUser {
                    email: &new.email,
                    display_name: &new
                        .display_name
                        .clone()
                        .unwrap_or_else(|| crate::auth::name_from_email(&new.email)),
                    password_hash: password::NO_PASSWORD_YET,
                },
            )?,
        };
        let has_password = user.password_hash != password::NO_PASSWORD_YET;
        let (token, expires) = record_invitation(
            conn,
            &user.id,
            Some((clinic_id, new.role, works)),
            ctx.actor.id(),
        )?;
        let view = InvitationView {
            email: new.email.clone(),
            role: new.role,
            works_on_clients: works,
            status: "invited".to_owned(),
            expires_at: to_utc(expires),
        };
        audit::append(
            conn,
            clinic_id,
            ctx,
            NewEvent {
                action: "member.invited",
                entity_kind: "invitation",
                entity_id: hash_token(&token)[..16].to_owned(),
                payload: json!({
                    "email": view.email,
                    "role": view.role.as_db(),
                    "works_on_clients": works,
                    "expires_at": audit::chain::format_time(expires),
                }),
                reason: None,
            },
        )?;
        crate::outbox::enqueue(
            conn,
            crate::outbox::NewMail {
                clinic_id: clinic_id.to_owned(),
                kind: crate::outbox::INVITATION,
                recipient: user.email.clone(),
                subject: format!("Invitation to join {}", clinic.name),
                body_text: invitation_text(
                    &clinic.name,
                    new.role,
                    has_password,
                    &token,
                    expires,
                    public_url,
                ),
                body_html: None,
                export_id: None,
            },
        )?;
        Ok(view)
    })
}

fn invitation_text(
    clinic: &str,
    role: Role,
    has_password: bool,
    token: &str,
    expires: NaiveDateTime,
    public_url: &str,
) -> String {
    let password = if has_password {
        "the password you already sign in with"
    } else {
        "a passphrase of your own (at least 12 characters)"
    };
    // Short lines, so the token reaches the reader (and a copy-paste) in one piece.
    format!(
        "You have been invited to join {clinic} as {}.\n\n\
         To accept, open this link before {} (it works once):\n\n  \
         {}/invitations/accept?token={token}\n\n\
         or send the one-time token from a program:\n\n  \
         POST {}/api/v1/auth/invitations/accept\n  \
         {{\"token\": \"{token}\",\n   \
         \"password\": \"...\"}}\n\n\
         where the password is {password}.\n\n\
         Nothing changes until you accept. If you did not expect this message, ignore it.\n",
        role.as_db(),
        expires.format("%Y-%m-%d %H:%M UTC"),
        public_url.trim_end_matches('/'),
        public_url.trim_end_matches('/'),
    )
}

/// An open invitation: unused and unexpired.
pub struct OpenInvitation {
    pub user: UserRow,
    /// The clinic it joins, for a staff invitation; none for an inspector's new account.
    pub clinic_id: Option<String>,
}

impl OpenInvitation {
    /// Whether accepting sets the account's first password (else it proves the current one).
    pub fn sets_password(&self) -> bool {
        self.user.password_hash == password::NO_PASSWORD_YET
    }

    /// The password given with the acceptance: a new account's first one, checked against the
    /// policy and hashed (slow: call it off the event loop); an existing account's, proved.
    pub fn password_hash(&self, given: &str) -> AppResult<Option<String>> {
        if self.sets_password() {
            password::check_policy(given, &self.user.email).map_err(|e| {
                AppError::Validation(vec![crate::error::FieldError::new("password", e.reason)])
            })?;
            return password::hash(given).map(Some).map_err(AppError::internal);
        }
        match password::verify(given, &self.user.password_hash) {
            password::Verdict::Wrong => Err(AppError::invalid(
                "password",
                "is not the password of the account this invitation was sent to",
            )),
            _ => Ok(None),
        }
    }
}

type InvitationRow = (
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

fn open_row(conn: &mut DbConn, token: &str) -> AppResult<InvitationRow> {
    let row: Option<InvitationRow> = invitations::table
        .find(hash_token(token))
        .select((
            invitations::user_id,
            invitations::expires_at,
            invitations::used_at,
            invitations::clinic_id,
            invitations::role,
            invitations::works_on_clients,
        ))
        .first(conn)
        .optional()?;
    let now = db::now();
    row.filter(|r| r.2.is_none() && r.1 > now)
        .ok_or_else(|| AppError::invalid("token", UNUSABLE))
}

/// Looks a token up before any password is hashed, so an unknown token costs one query.
pub fn find_open(conn: &mut DbConn, token: &str) -> AppResult<OpenInvitation> {
    let row = open_row(conn, token)?;
    let user = accounts::find_user(conn, &row.0)?
        .filter(|u| u.active)
        .ok_or_else(|| AppError::invalid("token", UNUSABLE))?;
    Ok(OpenInvitation {
        user,
        clinic_id: row.3,
    })
}

/// Spends the invitation: sets the first password when `new_hash` is given, and joins the clinic
/// named in it, with the membership's audit event, in one transaction.
pub fn accept(conn: &mut DbConn, token: &str, new_hash: Option<&str>) -> AppResult<String> {
    db::write_transaction(conn, |conn| {
        let (user_id, _, _, clinic_id, role, works) = open_row(conn, token)?;
        diesel::update(invitations::table.find(hash_token(token)))
            .set(invitations::used_at.eq(db::now()))
            .execute(conn)?;
        if let Some(hash) = new_hash {
            accounts::change_password(conn, &user_id, hash)?;
        }
        let role = role.as_deref().map(Role::from_db).transpose()?;
        let (Some(clinic_id), Some(role)) = (clinic_id, role) else {
            return Ok(user_id);
        };
        let user = accounts::find_user(conn, &user_id)?.ok_or(AppError::NoSuch("invitation"))?;
        if accounts::find_member(conn, &clinic_id, &user_id)?.is_some() {
            return Err(AppError::Conflict(
                "you are already a member of this clinic".to_owned(),
            ));
        }
        let membership =
            accounts::insert_membership(conn, &clinic_id, &user_id, role, works.unwrap_or(false))?;
        let ctx = AuditContext {
            actor: Actor::User(user_id.clone()),
            request_id: None,
        };
        audit::append(
            conn,
            &clinic_id,
            &ctx,
            member_event("member.added", &membership, &user, None),
        )?;
        Ok(user_id)
    })
}
