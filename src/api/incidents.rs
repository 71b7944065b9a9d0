//! `/api/v1/clinics/{clinic}/incidents`: report, follow up, close.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidQuery;
use crate::api::{PageQuery, ValidJson};
use crate::db;
use crate::error::{AppError, AppResult, Problem};
use crate::incidents::model::IncidentInput;
use crate::incidents::usecases::{self, CloseInput, FollowUpInput, IncidentView};
use crate::records::{AmendmentRequest, TimeCursor};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_incidents)
        .service(report_incident)
        .service(get_incident)
        .service(add_follow_up)
        .service(close_incident)
        .service(amend_incident);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentPage {
    pub items: Vec<IncidentView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentQuery {
    /// Only incidents with a follow-up past due.
    pub overdue: Option<bool>,
    /// The records as they stood at this moment (RFC 3339, not in the future): later records,
    /// amendments and readings left out. Now when absent.
    pub at: Option<DateTime<Utc>>,
}

type Path2 = web::Path<(String, String)>;

/// Incidents, latest first, with their follow-ups and what is overdue.
#[utoipa::path(tag = "incidents", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery, IncidentQuery),
    responses((status = 200, body = IncidentPage), NotFound, Unprocessable))]
#[get("/incidents")]
async fn list_incidents(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
    query: ValidQuery<IncidentQuery>,
) -> AppResult<web::Json<IncidentPage>> {
    let (page, query) = crate::api::query::both(page, query)?;
    let limit = page.limit()?;
    let after =
        match &page.cursor {
            None => None,
            Some(c) => Some(TimeCursor::decode(c).ok_or_else(|| {
                AppError::invalid("cursor", "is not a cursor from a previous page")
            })?),
        };
    let overdue = query.overdue.unwrap_or(false);
    let at = crate::api::query::standing_at(query.at)?;
    let clinic = access.clinic_id.clone();
    let profiles = state.profiles.clone();
    let (items, next_cursor) = db::run(&state.pool, move |conn| {
        usecases::list(conn, &profiles, &clinic, after, limit, overdue, at)
    })
    .await?;
    Ok(web::Json(IncidentPage { items, next_cursor }))
}

/// Report an incident (owners and technicians). Its required follow-ups and due dates are derived
/// from its kind.
#[utoipa::path(tag = "incidents", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = IncidentInput,
    responses((status = 201, body = IncidentView), Forbidden, (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown session or person"), Unprocessable))]
#[post("/incidents")]
async fn report_incident(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<IncidentInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::report(conn, &profiles, &ctx, &clinic, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// An incident with its follow-ups, closure and history.
#[utoipa::path(tag = "incidents", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Incident id")),
    responses((status = 200, body = IncidentView), NotFound))]
#[get("/incidents/{id}")]
async fn get_incident(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
) -> AppResult<web::Json<IncidentView>> {
    let (_, id) = path.into_inner();
    let (clinic, profiles) = (access.clinic_id.clone(), state.profiles.clone());
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::get(conn, &profiles, &clinic, &id)
        })
        .await?,
    ))
}

/// Record a follow-up (owners and technicians): evaluation offered, written opinion, report to
/// the authority, or another step.
#[utoipa::path(tag = "incidents", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Incident id")),
    request_body = FollowUpInput,
    responses((status = 201, body = IncidentView), NotFound, (status = 409, body = Problem, content_type = "application/problem+json", description = "Closed"), Unprocessable))]
#[post("/incidents/{id}/follow-ups")]
async fn add_follow_up(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
    body: ValidJson<FollowUpInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::add_follow_up(conn, &profiles, &ctx, &clinic, &id, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Close an incident (owner only) once every required follow-up is done.
#[utoipa::path(tag = "incidents", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Incident id")),
    request_body = CloseInput,
    responses((status = 201, body = IncidentView), Forbidden, NotFound, (status = 409, body = Problem, content_type = "application/problem+json", description = "Already closed, or follow-ups outstanding")))]
#[post("/incidents/{id}/close")]
async fn close_incident(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
    body: ValidJson<CloseInput>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::close(conn, &profiles, &ctx, &clinic, &id, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Correct an incident record (owners and technicians): a new version with a reason.
#[utoipa::path(tag = "incidents", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Incident id")),
    request_body = AmendmentRequest,
    responses((status = 201, body = IncidentView), Forbidden, NotFound, Unprocessable))]
#[post("/incidents/{id}/amendments")]
async fn amend_incident(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
    body: ValidJson<AmendmentRequest>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, req) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::amend(conn, &profiles, &ctx, &clinic, &id, &req)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}
