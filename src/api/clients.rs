//! `/api/v1/clinics/{clinic}/clients`.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidQuery;
use crate::api::{PageQuery, ValidJson};
use crate::clients::usecases::{self, ClientAnswer, ClientView};
use crate::clients::ClientInput;
use crate::db;
use crate::error::AppResult;
use crate::records::AmendmentRequest;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_clients)
        .service(create_client)
        .service(get_client)
        .service(amend_client);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientAnswer>,
    pub next_cursor: Option<String>,
}

/// Clients, newest first.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery),
    responses((status = 200, body = ClientPage), NotFound))]
#[get("/clients")]
async fn list_clients(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
) -> AppResult<web::Json<ClientPage>> {
    let page = page.into_inner()?;
    let limit = page.limit()?;
    let (clinic, cursor) = (access.clinic_id.clone(), page.id_cursor()?);
    let (items, next_cursor) = db::run(&state.pool, move |conn| {
        usecases::list(conn, &clinic, cursor, limit)
    })
    .await?;
    let items = items
        .into_iter()
        .map(|c| c.for_caller(access.client_details))
        .collect();
    Ok(web::Json(ClientPage { items, next_cursor }))
}

/// Register a client (owners and technicians).
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = ClientInput,
    responses((status = 201, body = ClientView), Forbidden, Unprocessable))]
#[post("/clients")]
async fn create_client(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<ClientInput>,
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

/// A client and the history of their record; inspectors see the pseudonymous id only, unless
/// their grant includes clients' contact details.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Client id")),
    responses((status = 200, body = ClientAnswer), NotFound))]
#[get("/clients/{id}")]
async fn get_client(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<ClientAnswer>> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    let view = db::run(&state.pool, move |conn| usecases::get(conn, &clinic, &id)).await?;
    Ok(web::Json(view.for_caller(access.client_details)))
}

/// Correct a client record (owners and technicians): a new version with a reason.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Client id")),
    request_body = AmendmentRequest,
    responses((status = 201, body = ClientView), Forbidden, NotFound, Unprocessable))]
#[post("/clients/{id}/amendments")]
async fn amend_client(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<AmendmentRequest>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, req) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::amend(conn, &ctx, &clinic, &id, &req)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}
