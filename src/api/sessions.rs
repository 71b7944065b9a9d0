//! `/api/v1/clinics/{clinic}/sessions`: plan, run the checklist, record packs and lots, start,
//! complete, and read the whole trace.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Conflicting, Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidQuery;
use crate::api::{PageQuery, ValidJson};
use crate::db;
use crate::error::{AppError, AppResult, Problem};
use crate::records::TimeCursor;
use crate::sessions::model::{
    AnswersInput, CompleteInput, LotUse, PackRemoval, PackUse, SessionInput, SessionState,
    StartInput,
};
use crate::sessions::usecases::{self, Readiness, TraceView};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_sessions)
        .service(create_session)
        .service(get_session)
        .service(answer_checklist)
        .service(add_pack)
        .service(set_pack_aside)
        .service(add_lot)
        .service(session_readiness)
        .service(start_session)
        .service(complete_session);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionPage {
    pub items: Vec<TraceView>,
    pub next_cursor: Option<String>,
}

type Path2 = web::Path<(String, String)>;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// Only this technician's sessions (their user id).
    pub technician_id: Option<String>,
    /// Only sessions planned on this clinic-local date (YYYY-MM-DD).
    pub date: Option<chrono::NaiveDate>,
    /// Only sessions that stand here: planned, in_progress or completed.
    pub state: Option<SessionState>,
}

/// Sessions, latest planned first; filtered by technician, clinic-local date and state.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery, SessionQuery),
    responses((status = 200, body = SessionPage), NotFound, Unprocessable))]
#[get("/sessions")]
async fn list_sessions(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
    query: ValidQuery<SessionQuery>,
) -> AppResult<web::Json<SessionPage>> {
    let (page, query) = crate::api::query::both(page, query)?;
    let limit = page.limit()?;
    let after =
        match &page.cursor {
            None => None,
            Some(c) => Some(TimeCursor::decode(c).ok_or_else(|| {
                AppError::invalid("cursor", "is not a cursor from a previous page")
            })?),
        };
    let filter = usecases::SessionFilter {
        technician_id: query.technician_id,
        date: query.date,
        state: query.state,
    };
    let clinic = access.clinic_id.clone();
    let profiles = state.profiles.clone();
    let (items, next_cursor) = db::run(&state.pool, move |conn| {
        usecases::list(conn, &profiles, &clinic, &filter, after, limit)
    })
    .await?;
    let items = if access.client_details {
        items
    } else {
        items.into_iter().map(TraceView::pseudonymous).collect()
    };
    Ok(web::Json(SessionPage { items, next_cursor }))
}

/// Plan a client session (owners and technicians) with the clinic's checklist template.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = SessionInput,
    responses((status = 201, body = TraceView), Forbidden, (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown client, technician or checklist"), Unprocessable))]
#[post("/sessions")]
async fn create_session(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<SessionInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::create(conn, &ctx, &clinic, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// The session's full trace: client, technician and their credentials as they stood, checklist
/// answers, packs with their cycles and spore tests, lots with expiry.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Session id")),
    responses((status = 200, body = TraceView), NotFound))]
#[get("/sessions/{id}")]
async fn get_session(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
) -> AppResult<web::Json<TraceView>> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    let view = db::run(&state.pool, move |conn| usecases::trace(conn, &clinic, &id)).await?;
    Ok(web::Json(if access.client_details {
        view
    } else {
        view.pseudonymous()
    }))
}

/// Answer checklist items (before the start). A later answer to the same item replaces the
/// earlier one in the checklist; both stay in the record.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Session id")),
    request_body = AnswersInput,
    responses((status = 201, body = TraceView), NotFound, (status = 409, body = Problem, content_type = "application/problem+json", description = "Already started"), Unprocessable))]
#[post("/sessions/{id}/answers")]
async fn answer_checklist(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
    body: ValidJson<AnswersInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::answer(conn, &ctx, &clinic, &id, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Record a sterilised pack opened for the session, by the code on its label.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Session id")),
    request_body = PackUse,
    responses((status = 201, body = TraceView), (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown pack"), Conflicting, Unprocessable))]
#[post("/sessions/{id}/packs")]
async fn add_pack(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
    body: ValidJson<PackUse>,
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
        usecases::add_pack(conn, &profiles, &ctx, &clinic, &id, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Set a pack aside before the start: one that may not be used, or scanned by mistake. The scan
/// stays on the record with who set it aside, when and why; the pack no longer counts for the
/// start, the look-back or as opened.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Session id")),
    request_body = PackRemoval,
    responses((status = 201, body = TraceView), (status = 404, body = Problem, content_type = "application/problem+json", description = "No such pack in this session"), Conflicting, Forbidden, Unprocessable))]
#[post("/sessions/{id}/pack-removals")]
async fn set_pack_aside(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
    body: ValidJson<PackRemoval>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::remove_pack(conn, &ctx, &clinic, &id, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Whether the session may start now, with every reason it may not (the start's own judgement,
/// without starting it).
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Readiness), NotFound, (status = 409, body = Problem, content_type = "application/problem+json", description = "Already started")))]
#[get("/sessions/{id}/readiness")]
async fn session_readiness(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
) -> AppResult<web::Json<Readiness>> {
    let (_, id) = path.into_inner();
    let (ctx, clinic) = (access.audit_context(), access.clinic_id.clone());
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::readiness(conn, &profiles, &ctx, &clinic, &id)
    })
    .await?;
    Ok(web::Json(view))
}

/// Record a lot used in the session, by id or by the scanned barcode of its box.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Session id")),
    request_body = LotUse,
    responses((status = 201, body = TraceView), (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown lot"), Conflicting, Unprocessable))]
#[post("/sessions/{id}/lots")]
async fn add_lot(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
    body: ValidJson<LotUse>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::add_lot(conn, &ctx, &clinic, &id, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Start the session: refused (409) with every reason at once when a required item is not done,
/// a pack is not released, a lot is expired or recalled, the technician is not eligible, a
/// steriliser is quarantined or the client is under age. An owner may override with a reason.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Session id")),
    request_body = StartInput,
    responses((status = 201, body = TraceView), Forbidden, NotFound, (status = 409, body = Problem, content_type = "application/problem+json", description = "Refused (with reasons) or already started")))]
#[post("/sessions/{id}/start")]
async fn start_session(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
    body: ValidJson<StartInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, role, clinic, input) = (
        access.audit_context(),
        access.role,
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::start(conn, &profiles, &ctx, role, &clinic, &id, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Record the end of the session and any notes.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Session id")),
    request_body = CompleteInput,
    responses((status = 201, body = TraceView), NotFound, (status = 409, body = Problem, content_type = "application/problem+json", description = "Not started, or already complete")))]
#[post("/sessions/{id}/complete")]
async fn complete_session(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: Path2,
    body: ValidJson<CompleteInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::complete(conn, &ctx, &clinic, &id, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}
