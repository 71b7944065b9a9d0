//! `/api/v1/clinics/{clinic}/inspectors` and accepting an invitation.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::auth::client_address;
use crate::api::problem::{Conflicting, Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidJson;
use crate::clinics::invitations;
use crate::db;
use crate::error::{AppError, AppResult, Problem};
use crate::inspectors::usecases::{self, GrantInput, GrantView, RevokeInput};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(grant).service(revoke);
}

pub fn account_routes(cfg: &mut ServiceConfig) {
    cfg.service(accept_invitation);
}

/// The clinic's inspector grants, newest first, with their status (owner only).
#[utoipa::path(tag = "inspectors", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses((status = 200, body = Vec<GrantView>), Forbidden, NotFound))]
#[get("/inspectors")]
async fn list(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<Vec<GrantView>>> {
    access.require_owner()?;
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| usecases::list(conn, &clinic)).await?,
    ))
}

/// Grant an inspector read-only access to this clinic for a period (owner only). A new account
/// is created with an invitation, mailed to them and also in this answer.
#[utoipa::path(tag = "inspectors", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    request_body = GrantInput,
    responses((status = 201, body = GrantView), Forbidden,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The person is staff of this clinic"),
        Unprocessable))]
#[post("/inspectors")]
async fn grant(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<GrantInput>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let (ctx, clinic) = (access.audit_context(), access.clinic_id.clone());
    let input = body.into_inner()?;
    let public_url = state.settings.mail.public_url.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::grant(conn, &ctx, &clinic, input, &public_url)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// End a grant now, with a reason (owner only).
#[utoipa::path(tag = "inspectors", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Grant id")),
    request_body = RevokeInput,
    responses((status = 200, body = GrantView), NotFound,
        Conflicting))]
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
    let input = body.into_inner()?;
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::revoke(conn, &ctx, &clinic, &id, input)
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

/// Accept an invitation with its mailed token: a new account chooses its password, an existing
/// account gives its current one; a staff invitation then joins the clinic. Throttled per
/// address like login; an unknown token is refused before any password is hashed.
#[utoipa::path(tag = "auth", request_body = AcceptInvitation,
    responses((status = 204, description = "Accepted: log in with the password"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Already a member"),
        Unprocessable,
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many attempts; see Retry-After")))]
#[post("/auth/invitations/accept")]
async fn accept_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidJson<AcceptInvitation>,
) -> AppResult<HttpResponse> {
    let AcceptInvitation { token, password } = body.into_inner()?;
    let token = token.trim().to_owned();
    state
        .login_limiter
        .attempt_from(&client_address(&req, &state))
        .map_err(|retry_after_secs| AppError::TooManyRequests { retry_after_secs })?;
    let (lookup_token, pool) = (token.clone(), state.pool.clone());
    let open = db::run(&pool, move |conn| {
        invitations::find_open(conn, &lookup_token)
    })
    .await?;
    // Hashing takes tens of milliseconds: off the event loop.
    let new_hash = web::block(move || open.password_hash(&password))
        .await
        .map_err(AppError::internal)??;
    db::run(&state.pool, move |conn| {
        invitations::accept(conn, &token, new_hash.as_deref())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
