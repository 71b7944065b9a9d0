//! `/api/v1/clinics/{clinic}/credentials` and `/members/{user}/eligibility`.

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
use crate::credentials::model::{CredentialInput, CredentialKind};
use crate::credentials::store::CredentialFilter;
use crate::credentials::usecases::{self, CredentialView, EligibilityView};
use crate::db;
use crate::error::{AppResult, Problem};
use crate::records::AmendmentRequest;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_credentials)
        .service(submit_credential)
        .service(get_credential)
        .service(verify_credential)
        .service(amend_credential)
        .service(member_eligibility);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CredentialQuery {
    pub user_id: Option<String>,
    pub kind: Option<CredentialKind>,
    /// The records as they stood at this moment (RFC 3339, not in the future): later records,
    /// amendments and readings left out. Now when absent.
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CredentialPage {
    pub items: Vec<CredentialView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EligibilityQuery {
    /// The moment to judge (RFC 3339); now when absent. A past moment is judged on the
    /// credentials as they stood then; a future one on today's, for planning.
    pub at: Option<DateTime<Utc>>,
}

/// Credentials, newest first. Technicians see only their own.
#[utoipa::path(tag = "credentials", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery, CredentialQuery),
    responses((status = 200, body = CredentialPage), NotFound))]
#[get("/credentials")]
async fn list_credentials(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
    query: ValidQuery<CredentialQuery>,
) -> AppResult<web::Json<CredentialPage>> {
    let (page, query) = crate::api::query::both(page, query)?;
    let filter = CredentialFilter {
        user_id: query.user_id,
        kind: query.kind.map(|k| k.as_db().to_owned()),
        after_id: page.id_cursor()?,
        limit: page.limit()?,
        at: crate::api::query::standing_at(query.at)?,
    };
    let (role, caller, clinic) = (
        access.role,
        access.user_id().to_owned(),
        access.clinic_id.clone(),
    );
    let (items, next_cursor) = db::run(&state.pool, move |conn| {
        usecases::list(conn, role, &caller, &clinic, &filter)
    })
    .await?;
    Ok(web::Json(CredentialPage { items, next_cursor }))
}

/// Submit a credential: owners for any member, technicians for themselves. It counts once an
/// owner verifies it.
#[utoipa::path(tag = "credentials", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = CredentialInput,
    responses(
        (status = 201, body = CredentialView),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such member"),
        Unprocessable,
    ))]
#[post("/credentials")]
async fn submit_credential(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<CredentialInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (ctx, role, clinic, input) = (
        access.audit_context(),
        access.role,
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::submit(conn, &ctx, role, &clinic, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// A credential, its verification and its history.
#[utoipa::path(tag = "credentials", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Credential id")),
    responses((status = 200, body = CredentialView), NotFound))]
#[get("/credentials/{id}")]
async fn get_credential(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<CredentialView>> {
    let (_, id) = path.into_inner();
    let (role, caller, clinic) = (
        access.role,
        access.user_id().to_owned(),
        access.clinic_id.clone(),
    );
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::get(conn, role, &caller, &clinic, &id)
        })
        .await?,
    ))
}

/// Verify the current version of a credential (owner only).
#[utoipa::path(tag = "credentials", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Credential id")),
    responses(
        (status = 201, body = CredentialView),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Already verified"),
    ))]
#[post("/credentials/{id}/verify")]
async fn verify_credential(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic) = (access.audit_context(), access.clinic_id.clone());
    let view = db::run(&state.pool, move |conn| {
        usecases::verify(conn, &ctx, &clinic, &id)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Correct a credential (owners, or technicians for their own): a new, unverified version.
#[utoipa::path(tag = "credentials", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Credential id")),
    request_body = AmendmentRequest,
    responses(
        (status = 201, body = CredentialView),
        Forbidden,
        NotFound,
        Unprocessable,
    ))]
#[post("/credentials/{id}/amendments")]
async fn amend_credential(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<AmendmentRequest>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, role, clinic, req) = (
        access.audit_context(),
        access.role,
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::amend(conn, &ctx, role, &clinic, &id, &req)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// May this member work on a client at `at`, and if not, which credential is missing, expired
/// or unverified? Technicians may ask about themselves only.
#[utoipa::path(tag = "credentials", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("user" = String, Path, description = "User id"), EligibilityQuery),
    responses(
        (status = 200, body = EligibilityView),
        Forbidden,
        NotFound,
    ))]
#[get("/members/{user}/eligibility")]
async fn member_eligibility(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    query: ValidQuery<EligibilityQuery>,
) -> AppResult<web::Json<EligibilityView>> {
    let query = query.into_inner()?;
    let (_, user) = path.into_inner();
    let at = query.at.unwrap_or_else(Utc::now);
    let (role, caller, clinic) = (
        access.role,
        access.user_id().to_owned(),
        access.clinic_id.clone(),
    );
    let profiles = state.profiles.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::member_eligibility(conn, &profiles, role, &caller, &clinic, &user, at)
        })
        .await?,
    ))
}
