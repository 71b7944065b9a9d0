//! `/api/v1/clinics/{clinic}/checklists`: setup checklist templates.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidJson;
use crate::checklists::model::TemplateInput;
use crate::checklists::usecases::{self, TemplateView};
use crate::db;
use crate::error::AppResult;
use crate::records::AmendmentRequest;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_templates)
        .service(create_template)
        .service(get_template)
        .service(amend_template);
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TemplateList {
    pub items: Vec<TemplateView>,
}

/// The clinic's checklist templates (current versions, newest first; new sessions use the first).
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses((status = 200, body = TemplateList), NotFound))]
#[get("/checklists")]
async fn list_templates(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<TemplateList>> {
    let clinic = access.clinic_id.clone();
    let items = db::run(&state.pool, move |conn| usecases::list(conn, &clinic)).await?;
    Ok(web::Json(TemplateList { items }))
}

/// Define a checklist template (owner only).
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = TemplateInput,
    responses((status = 201, body = TemplateView), Forbidden, Unprocessable))]
#[post("/checklists")]
async fn create_template(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<TemplateInput>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
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

/// A template's current version and its history.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Template id")),
    responses((status = 200, body = TemplateView), NotFound))]
#[get("/checklists/{id}")]
async fn get_template(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<TemplateView>> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| usecases::get(conn, &clinic, &id)).await?,
    ))
}

/// Change a template (owner only): a new version; sessions keep the version they used.
#[utoipa::path(tag = "sessions", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Template id")),
    request_body = AmendmentRequest,
    responses((status = 201, body = TemplateView), Forbidden, NotFound, Unprocessable))]
#[post("/checklists/{id}/amendments")]
async fn amend_template(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<AmendmentRequest>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
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
