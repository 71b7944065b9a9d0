//! The outbox: every message is a row first, written in the transaction of whatever caused it;
//! the worker claims due rows, delivers them and records how it went.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, AuditContext, NewEvent};
use crate::db::schema::{mail_keys, mail_outbox, mail_resends};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mail_outbox)]
pub struct OutboxRow {
    pub id: String,
    pub clinic_id: String,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    pub export_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub finished_at: Option<NaiveDateTime>,
}

/// The kind of message that carries a one-time invitation token: its body is blanked once the
/// message is delivered or given up on, so the outbox does not keep a usable secret (the
/// invitations table keeps only the token's hash).
pub const INVITATION: &str = "invitation";

const BLANKED: &str = "(an invitation with a one-time token; the text is not kept after delivery)";

fn blank_invitation(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::update(
        mail_outbox::table
            .filter(mail_outbox::id.eq(id))
            .filter(mail_outbox::kind.eq(INVITATION)),
    )
    .set(mail_outbox::body_text.eq(BLANKED))
    .execute(conn)?;
    Ok(())
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub clinic_id: String,
    /// `summary`, `authority`, `reminder`, `invitation`.
    pub kind: &'static str,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// Attach this export's report.pdf (the message waits while the export is being built).
    pub export_id: Option<String>,
}

/// Queues a message. Call it inside the transaction that records its cause: the two commit or
/// roll back together.
pub fn enqueue(conn: &mut DbConn, mail: NewMail) -> QueryResult<OutboxRow> {
    let now = db::now();
    let row = OutboxRow {
        id: db::new_id(),
        clinic_id: mail.clinic_id,
        kind: mail.kind.to_owned(),
        recipient: mail.recipient,
        subject: mail.subject,
        body_text: mail.body_text,
        body_html: mail.body_html,
        export_id: mail.export_id,
        created_at: now,
        state: MailState::Pending.as_db().into(),
        attempts: 0,
        next_attempt_at: now,
        claimed_until: None,
        last_error: None,
        finished_at: None,
    };
    diesel::insert_into(mail_outbox::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

/// Takes the key of a clinic's message set for a period; false when it was already taken (by
/// this worker earlier or by another instance). Inside a transaction, a second taker waits for
/// the first to commit and then gets false, so the messages behind a key are queued once.
pub fn take_key(conn: &mut DbConn, clinic_id: &str, kind: &str, period: &str) -> QueryResult<bool> {
    let values = (
        mail_keys::clinic_id.eq(clinic_id),
        mail_keys::kind.eq(kind),
        mail_keys::period.eq(period),
        mail_keys::created_at.eq(db::now()),
    );
    // `on_conflict` does not compile on the multi-connection: one arm per backend.
    let inserted = match conn {
        DbConn::Postgres(pg) => diesel::insert_into(mail_keys::table)
            .values(values)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConn::Sqlite(lite) => diesel::insert_or_ignore_into(mail_keys::table)
            .values(values)
            .execute(lite)?,
    };
    Ok(inserted == 1)
}

/// Claims up to `limit` due messages for `lease`: no other worker takes them meanwhile. On
/// PostgreSQL rows locked by another claimer are skipped (`FOR UPDATE SKIP LOCKED`); SQLite has a
/// single writer, and the claim is one immediate transaction.
pub fn claim_due(conn: &mut DbConn, lease: Duration, limit: i64) -> QueryResult<Vec<OutboxRow>> {
    let now = db::now();
    let due = mail_outbox::table
        .filter(mail_outbox::state.eq(MailState::Pending.as_db()))
        .filter(mail_outbox::next_attempt_at.le(now))
        .filter(
            mail_outbox::claimed_until
                .is_null()
                .or(mail_outbox::claimed_until.lt(now)),
        )
        .order((mail_outbox::next_attempt_at.asc(), mail_outbox::id.asc()))
        .select(mail_outbox::id)
        .limit(limit);
    db::write_transaction(conn, |conn| {
        let ids: Vec<String> = match conn {
            DbConn::Postgres(pg) => due.for_update().skip_locked().load(pg)?,
            DbConn::Sqlite(lite) => due.load(lite)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(mail_outbox::table.filter(mail_outbox::id.eq_any(&ids)))
            .set(mail_outbox::claimed_until.eq(now + lease))
            .execute(conn)?;
        mail_outbox::table
            .filter(mail_outbox::id.eq_any(&ids))
            .order((mail_outbox::next_attempt_at.asc(), mail_outbox::id.asc()))
            .select(OutboxRow::as_select())
            .load(conn)
    })
}

pub fn mark_sent(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    let now = db::now();
    diesel::update(
        mail_outbox::table
            .filter(mail_outbox::id.eq(id))
            .filter(mail_outbox::state.eq(MailState::Pending.as_db())),
    )
    .set((
        mail_outbox::state.eq(MailState::Sent.as_db()),
        mail_outbox::attempts.eq(mail_outbox::attempts + 1),
        mail_outbox::finished_at.eq(now),
        mail_outbox::claimed_until.eq(None::<NaiveDateTime>),
        mail_outbox::last_error.eq(None::<String>),
    ))
    .execute(conn)?;
    blank_invitation(conn, id)
}

/// Puts a message back for later without counting an attempt (its attachment is not built yet).
pub fn defer(conn: &mut DbConn, id: &str, until: NaiveDateTime) -> QueryResult<()> {
    diesel::update(mail_outbox::table.filter(mail_outbox::id.eq(id)))
        .set((
            mail_outbox::next_attempt_at.eq(until),
            mail_outbox::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn mark_retry(
    conn: &mut DbConn,
    id: &str,
    error: &str,
    next: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(
        mail_outbox::table
            .filter(mail_outbox::id.eq(id))
            .filter(mail_outbox::state.eq(MailState::Pending.as_db())),
    )
    .set((
        mail_outbox::attempts.eq(mail_outbox::attempts + 1),
        mail_outbox::next_attempt_at.eq(next),
        mail_outbox::claimed_until.eq(None::<NaiveDateTime>),
        mail_outbox::last_error.eq(error),
    ))
    .execute(conn)?;
    Ok(())
}

/// Gives up on a message, and says so in the clinic's audit chain: an inspector who never got a
/// summary can see why.
pub fn mark_failed(conn: &mut DbConn, row: &OutboxRow, error: &str) -> AppResult<()> {
    db::write_transaction(conn, |conn| {
        let n = diesel::update(
            mail_outbox::table
                .filter(mail_outbox::id.eq(&row.id))
                .filter(mail_outbox::state.eq(MailState::Pending.as_db())),
        )
        .set((
            mail_outbox::state.eq(MailState::Failed.as_db()),
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
            mail_outbox::finished_at.eq(db::now()),
            mail_outbox::claimed_until.eq(None::<NaiveDateTime>),
            mail_outbox::last_error.eq(error),
        ))
        .execute(conn)?;
        blank_invitation(conn, &row.id)?;
        if n == 1 {
            audit::append(
                conn,
                &row.clinic_id,
                &AuditContext {
                    actor: audit::Actor::System,
                    request_id: None,
                },
                NewEvent {
                    action: "mail.failed",
                    entity_kind: "mail",
                    entity_id: row.id.clone(),
                    payload: json!({"kind": row.kind, "recipient": row.recipient, "subject": row.subject, "attempts": row.attempts + 1}),
                    reason: Some(error.to_owned()),
                },
            )?;
        }
        Ok::<_, AppError>(())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailState {
    /// Queued or being retried.
    Pending,
    Sent,
    /// Given up after the retry period, or refused for good by the server.
    Failed,
}

crate::db::stored::stored_as!(MailState, "mail state", {
    Pending => "pending",
    Sent => "sent",
    Failed => "failed",
});

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MailView {
    pub id: String,
    /// The Message-ID header, the same on every attempt.
    pub message_id: String,
    /// `summary`, `authority`, `reminder` or `invitation`.
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub state: MailState,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (pending messages).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The export whose report.pdf is attached.
    pub export_id: Option<String>,
}

pub fn message_id(id: &str, domain: &str) -> String {
    format!("<{id}@{domain}>")
}

pub fn view(r: OutboxRow, domain: &str) -> AppResult<MailView> {
    let state = MailState::from_db(&r.state)?;
    Ok(MailView {
        message_id: message_id(&r.id, domain),
        id: r.id,
        kind: r.kind,
        recipient: r.recipient,
        subject: r.subject,
        state,
        attempts: r.attempts,
        created_at: to_utc(r.created_at),
        next_attempt_at: (state == MailState::Pending).then(|| to_utc(r.next_attempt_at)),
        finished_at: r.finished_at.map(to_utc),
        last_error: r.last_error,
        export_id: r.export_id,
    })
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MailFilter {
    /// `pending`, `sent` or `failed`.
    #[param(pattern = "^(pending|sent|failed)$")]
    pub state: Option<String>,
    /// The id of the last message of the previous page (newest first).
    pub before: Option<String>,
    /// At most 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The clinic's messages, newest first.
pub fn list(
    conn: &mut DbConn,
    clinic_id: &str,
    filter: &MailFilter,
    domain: &str,
) -> AppResult<Vec<MailView>> {
    let mut q = mail_outbox::table
        .filter(mail_outbox::clinic_id.eq(clinic_id))
        .select(OutboxRow::as_select())
        .order(mail_outbox::id.desc())
        .limit(filter.limit.unwrap_or(50))
        .into_boxed();
    if let Some(state) = &filter.state {
        q = q.filter(mail_outbox::state.eq(state.clone()));
    }
    if let Some(before) = &filter.before {
        q = q.filter(mail_outbox::id.lt(before.clone()));
    }
    q.load(conn)?.into_iter().map(|r| view(r, domain)).collect()
}

/// Queues a message given up on again, as a new message (its own Message-ID and retry period),
/// and records which failure it answers, in one transaction with its audit event.
pub fn resend(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    id: &str,
) -> AppResult<OutboxRow> {
    audit::audited(conn, clinic_id, |conn| {
        let failed: OutboxRow = mail_outbox::table
            .filter(mail_outbox::clinic_id.eq(clinic_id))
            .filter(mail_outbox::id.eq(id))
            .select(OutboxRow::as_select())
            .first(conn)
            .optional()?
            .ok_or(AppError::NoSuch("mail"))?;
        if failed.state != MailState::Failed.as_db() {
            return Err(AppError::Conflict(format!(
                "only a message given up on can be resent; this one is {}",
                failed.state
            )));
        }
        if failed.kind == INVITATION {
            return Err(AppError::Conflict(
                "an invitation's one-time token is not kept: revoke the grant and grant again"
                    .into(),
            ));
        }
        let already: Option<String> = mail_resends::table
            .find(id)
            .select(mail_resends::resent_id)
            .first(conn)
            .optional()?;
        if let Some(again) = already {
            return Err(AppError::Conflict(format!(
                "this message was already resent as {again}"
            )));
        }
        let kind: &'static str = match failed.kind.as_str() {
            "summary" => "summary",
            "authority" => "authority",
            _ => "reminder",
        };
        let row = enqueue(
            conn,
            NewMail {
                clinic_id: clinic_id.to_owned(),
                kind,
                recipient: failed.recipient.clone(),
                subject: failed.subject.clone(),
                body_text: failed.body_text.clone(),
                body_html: failed.body_html.clone(),
                export_id: failed.export_id.clone(),
            },
        )?;
        diesel::insert_into(mail_resends::table)
            .values((
                mail_resends::failed_id.eq(id),
                mail_resends::clinic_id.eq(clinic_id),
                mail_resends::resent_id.eq(&row.id),
                mail_resends::resent_by.eq(ctx.actor.id()),
                mail_resends::resent_at.eq(db::now()),
            ))
            .execute(conn)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            NewEvent {
                action: "mail.resent",
                entity_kind: "mail",
                entity_id: id.to_owned(),
                payload: json!({"resent_as": row.id, "recipient": row.recipient, "subject": row.subject}),
                reason: None,
            },
        )?;
        Ok(row)
    })
}

/// Messages of the clinic given up on by `at`: a compliance finding until they are dealt with.
pub fn failed_by(
    conn: &mut DbConn,
    clinic_id: &str,
    at: NaiveDateTime,
) -> QueryResult<Vec<(String, String, String)>> {
    mail_outbox::table
        .filter(mail_outbox::clinic_id.eq(clinic_id))
        .filter(mail_outbox::state.eq(MailState::Failed.as_db()))
        .filter(mail_outbox::finished_at.le(at))
        .filter(mail_outbox::created_at.gt(at - Duration::days(30)))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            mail_resends::table
                .filter(mail_resends::failed_id.eq(mail_outbox::id))
                .filter(mail_resends::resent_at.le(at)),
        )))
        .select((
            mail_outbox::kind,
            mail_outbox::recipient,
            mail_outbox::subject,
        ))
        .order(mail_outbox::id.asc())
        .load(conn)
}
