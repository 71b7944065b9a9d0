//! `/api/v1/clinics/{clinic}/inspectors` and accepting an invitation.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::store::{self, GrantInput, GrantView, RevokeInput};
use crate::api::ValidJson;
use crate::auth::{password, ClinicAccess};
use crate::db;
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(grant).service(revoke);
}

pub fn account_routes(cfg: &mut ServiceConfig) {
    cfg.service(accept_invitation);
}

/// The clinic's inspector grants, newest first, with their status (owner only).
#[utoipa::path(tag = "inspectors", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses((status = 200, body = Vec<GrantView>), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/inspectors")]
async fn list(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<Vec<GrantView>>> {
    access.require_owner()?;
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| store::list(conn, &clinic)).await?,
    ))
}

/// Grant an inspector read-only access to this clinic for a period (owner only). A new account
/// is created with an invitation, mailed to them and also in this answer.
#[utoipa::path(tag = "inspectors", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    request_body = GrantInput,
    responses((status = 201, body = GrantView), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The person is staff of this clinic"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/inspectors")]
async fn grant(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<GrantInput>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let (ctx, clinic) = (access.audit_context(), access.clinic_id.clone());
    let input = body.into_inner();
    let public_url = state.settings.mail.public_url.clone();
    let view = db::run(&state.pool, move |conn| {
        store::grant(conn, &ctx, &clinic, input, &public_url)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// End a grant now, with a reason (owner only).
#[utoipa::path(tag = "inspectors", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Grant id")),
    request_body = RevokeInput,
    responses((status = 200, body = GrantView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
#[post("/inspectors/{id}/revoke")]
async fn revoke(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<RevokeInput>,
) -> AppResult<web::Json<GrantView>> {
    access.require_owner()?;
    let (ctx, clinic, id) = (
        access.audit_context(),
        access.clinic_id.clone(),
        path.into_inner().1,
    );
    let input = body.into_inner();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            store::revoke(conn, &ctx, &clinic, &id, input)
        })
        .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    pub token: String,
    pub password: String,
}

/// Set the password of an invited account with the invitation's token (once, before it expires).
#[utoipa::path(tag = "auth", request_body = AcceptInvitation,
    responses((status = 204, description = "The password is set: log in with it"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/auth/invitations/accept")]
async fn accept_invitation(
    state: web::Data<AppState>,
    body: ValidJson<AcceptInvitation>,
) -> AppResult<HttpResponse> {
    let AcceptInvitation {
        token,
        password: new,
    } = body.into_inner();
    let token = token.trim().to_owned();
    let hash = web::block(move || -> AppResult<String> {
        // The email is not known before the token is checked; the policy's other rules apply.
        password::check_policy(&new, "").map_err(|e| {
            AppError::Validation(vec![crate::error::FieldError::new("password", e.reason)])
        })?;
        password::hash(&new).map_err(AppError::internal)
    })
    .await
    .map_err(AppError::internal)??;
    db::run(&state.pool, move |conn| {
        store::accept_invitation(conn, &token, &hash)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
