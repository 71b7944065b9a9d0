//! `/api/v1/clinics/{clinic}/audit/*`: read and verify the chain.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Forbidden, NotFound};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::PageQuery;
use crate::api::ValidQuery;
use crate::audit::chain::ChainBreak;
use crate::audit::store::{self, AuditEventRow, EventFilter};
use crate::db;
use crate::error::{AppError, AppResult};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_events).service(verify_chain);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    /// UTC with exactly six fractional digits and `Z`: the very characters the hash covers.
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T09:30:00.123000Z")]
    pub recorded_at: String,
    /// `user`, `operator` (command line) or `system`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    /// What happened, e.g. `member.added`.
    pub action: String,
    pub entity_kind: String,
    pub entity_id: String,
    /// The record's content as it was written.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditEventRow> for AuditEventView {
    fn from(r: AuditEventRow) -> Self {
        Self {
            payload: r.payload_json(),
            seq: r.seq,
            recorded_at: crate::audit::chain::format_time(r.recorded_at),
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            action: r.action,
            entity_kind: r.entity_kind,
            entity_id: r.entity_id,
            reason: r.reason,
            request_id: r.request_id,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEventPage {
    pub items: Vec<AuditEventView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events recorded at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only events recorded before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Only events about this kind of record, e.g. `member`.
    pub entity_kind: Option<String>,
    /// Only events about this record.
    pub entity_id: Option<String>,
    /// `asc` (the default) lists from the oldest event, `desc` from the newest; pass the same
    /// order with each page's cursor.
    #[param(inline)]
    pub order: Option<EventOrder>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventOrder {
    Asc,
    Desc,
}

/// The clinic's audit events in chain order, oldest first or (`order=desc`) newest first
/// (owners and inspectors).
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery, EventQuery),
    responses(
        (status = 200, body = AuditEventPage),
        Forbidden,
        NotFound,
    ))]
#[get("/audit/events")]
async fn list_events(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
    query: ValidQuery<EventQuery>,
) -> AppResult<web::Json<AuditEventPage>> {
    access.require_owner_or_inspector()?;
    let (page, query) = crate::api::query::both(page, query)?;
    let limit = page.limit()?;
    let after_seq =
        match &page.cursor {
            None => None,
            Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                AppError::invalid("cursor", "is not a cursor from a previous page")
            })?),
        };
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if to <= from {
            return Err(AppError::invalid("to", "must be after from"));
        }
    }
    let filter = EventFilter {
        after_seq,
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
        entity_kind: query.entity_kind,
        entity_id: query.entity_id,
        newest_first: query.order == Some(EventOrder::Desc),
    };
    let clinic_id = access.clinic_id.clone();
    // One extra row tells whether there is a next page.
    let mut rows = db::run(&state.pool, move |conn| {
        Ok(store::list(conn, &clinic_id, &filter, limit + 1)?)
    })
    .await?;
    let next_cursor = crate::records::cut_page(&mut rows, limit, |r| r.seq.to_string());
    Ok(web::Json(AuditEventPage {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// What verifying the chain found. Named apart from a credential's verification.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = ChainVerification)]
pub struct VerificationView {
    /// True when every event's hash recomputes and every link and the head match.
    pub valid: bool,
    pub events_checked: u64,
    pub head_seq: i64,
    pub head_hash: String,
    /// The first problem found, if any.
    pub first_break: Option<ChainBreak>,
}

/// Recompute every hash of the clinic's chain and check every link (owners and inspectors).
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses(
        (status = 200, body = VerificationView),
        Forbidden,
        NotFound,
    ))]
#[get("/audit/verify")]
async fn verify_chain(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<VerificationView>> {
    access.require_owner_or_inspector()?;
    let clinic_id = access.clinic_id.clone();
    let v = db::run(&state.pool, move |conn| {
        Ok(store::verify(conn, &clinic_id)?)
    })
    .await?;
    Ok(web::Json(VerificationView {
        valid: v.first_break.is_none(),
        events_checked: v.events_checked,
        head_seq: v.head_seq,
        head_hash: v.head_hash,
        first_break: v.first_break,
    }))
}
