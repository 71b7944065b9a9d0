//! `/api/v1/auth/*` and `/api/v1/me`.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::state::AppState;
use crate::api::AuthUser;
use crate::api::ValidJson;
use crate::auth::password::{self, Verdict};
use crate::auth::store::{self, UserRow};
use crate::auth::{normalise_email, token, Role};
use crate::db;
use crate::error::{AppError, AppResult, FieldError, Problem};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(login)
        .service(refresh)
        .service(logout)
        .service(me)
        .service(change_password);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "owner@clinic.example")]
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer`, valid for `expires_in` seconds.
    pub access_token: String,
    /// Opaque; exchange it at `/auth/refresh` for a new pair. Single use.
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

const BAD_CREDENTIALS: &str = "the email or password is wrong";
const BAD_REFRESH: &str = "the refresh token is invalid, expired or already used; log in again";

pub fn client_address(req: &HttpRequest, state: &AppState) -> String {
    let info = req.connection_info();
    let address = if state.settings.server.trust_forwarded_for {
        info.realip_remote_addr()
    } else {
        info.peer_addr()
    };
    let address = address.unwrap_or("unknown");
    // The port changes with every connection; throttle the host.
    match address.parse::<std::net::SocketAddr>() {
        Ok(sock) => sock.ip().to_string(),
        Err(_) => address.to_owned(),
    }
}

/// Issues an access token and a new refresh token in a new family (a login) or an existing one
/// (a rotation).
fn issue_pair(
    conn: &mut db::DbConn,
    state: &AppState,
    user: &UserRow,
    family_id: Option<&str>,
) -> AppResult<TokenResponse> {
    let access_token = state
        .tokens
        .issue(&user.id, user.token_version)
        .map_err(AppError::internal)?;
    let refresh_token = token::new_refresh_token();
    let family = family_id.map(str::to_owned).unwrap_or_else(db::new_id);
    store::insert_refresh_token(
        conn,
        &user.id,
        &family,
        &token::hash_refresh_token(&refresh_token),
        state.tokens.refresh_ttl_days,
    )?;
    Ok(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl_secs,
    })
}

/// Log in with email and password.
#[utoipa::path(tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = TokenResponse),
    (status = 401, body = Problem, content_type = "application/problem+json", description = "Wrong email or password"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
    (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many attempts; see Retry-After"),
))]
#[post("/auth/login")]
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidJson<LoginRequest>,
) -> AppResult<web::Json<TokenResponse>> {
    let LoginRequest { email, password } = body.into_inner()?;
    let email = normalise_email(&email);
    let mut missing = Vec::new();
    if email.is_empty() {
        missing.push(FieldError::new("email", "is required"));
    }
    if password.is_empty() {
        missing.push(FieldError::new("password", "is required"));
    }
    if !missing.is_empty() {
        return Err(AppError::Validation(missing));
    }
    if password.chars().count() > password::MAX_LENGTH {
        return Err(AppError::Unauthorized(BAD_CREDENTIALS));
    }
    state
        .login_limiter
        .attempt(&client_address(&req, &state), &email)
        .map_err(|retry_after_secs| AppError::TooManyRequests { retry_after_secs })?;

    let st = state.clone();
    let pair = db::run(&state.pool, move |conn| {
        let user = store::find_user_by_email(conn, &email)?;
        // An unknown account is checked against a dummy hash, so it costs what a wrong password
        // costs and the answer does not reveal which emails have accounts.
        let verdict = password::verify_or_dummy(
            &password,
            user.as_ref().map(|u| u.password_hash.as_str()),
            &st.dummy_password_hash,
        );
        let user = match (user, verdict) {
            (Some(u), Verdict::Correct | Verdict::CorrectButWeakHash) if u.active => {
                if verdict == Verdict::CorrectButWeakHash {
                    let stronger = password::hash(&password).map_err(AppError::internal)?;
                    store::upgrade_hash(conn, &u.id, &stronger)?;
                }
                u
            }
            _ => return Err(AppError::Unauthorized(BAD_CREDENTIALS)),
        };
        issue_pair(conn, &st, &user, None)
    })
    .await?;
    Ok(web::Json(pair))
}

enum RefreshOutcome {
    Issued(TokenResponse),
    Refused,
}

/// Exchange a refresh token for a new pair. Each refresh token works once; presenting a used one
/// again revokes its whole family (it was probably stolen).
#[utoipa::path(tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, body = TokenResponse),
    (status = 401, body = Problem, content_type = "application/problem+json"),
))]
#[post("/auth/refresh")]
async fn refresh(
    state: web::Data<AppState>,
    body: ValidJson<RefreshRequest>,
) -> AppResult<web::Json<TokenResponse>> {
    let token_hash = token::hash_refresh_token(body.into_inner()?.refresh_token.trim());
    let st = state.clone();
    let outcome = db::run(&state.pool, move |conn| {
        db::write_transaction(conn, |conn| {
            let Some(row) = store::find_refresh_token(conn, &token_hash)? else {
                return Ok(RefreshOutcome::Refused);
            };
            if row.revoked_at.is_some() || row.used_at.is_some() {
                store::revoke_refresh_family(conn, &row.family_id)?;
                return Ok(RefreshOutcome::Refused);
            }
            if row.expires_at <= db::now() {
                return Ok(RefreshOutcome::Refused);
            }
            let user = store::find_user(conn, &row.user_id)?.filter(|u| u.active);
            let Some(user) = user else {
                return Ok(RefreshOutcome::Refused);
            };
            if store::mark_refresh_token_used(conn, &row.id)? != 1 {
                store::revoke_refresh_family(conn, &row.family_id)?;
                return Ok(RefreshOutcome::Refused);
            }
            issue_pair(conn, &st, &user, Some(&row.family_id)).map(RefreshOutcome::Issued)
        })
    })
    .await?;
    match outcome {
        RefreshOutcome::Issued(pair) => Ok(web::Json(pair)),
        RefreshOutcome::Refused => Err(AppError::Unauthorized(BAD_REFRESH)),
    }
}

/// End a session: the refresh token and every token rotated from it stop working. Access tokens
/// already issued expire on their own within 15 minutes.
#[utoipa::path(tag = "auth", request_body = RefreshRequest, responses(
    (status = 204, description = "Logged out (also when the token was already unknown)"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
#[post("/auth/logout")]
async fn logout(
    state: web::Data<AppState>,
    body: ValidJson<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let token_hash = token::hash_refresh_token(body.into_inner()?.refresh_token.trim());
    db::run(&state.pool, move |conn| {
        if let Some(row) = store::find_refresh_token(conn, &token_hash)? {
            store::revoke_refresh_family(conn, &row.family_id)?;
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipView {
    pub clinic_id: String,
    pub clinic_name: String,
    pub role: Role,
    pub active: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub memberships: Vec<MembershipView>,
}

/// The signed-in user and the clinics they belong to.
#[utoipa::path(tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = MeResponse),
    (status = 401, body = Problem, content_type = "application/problem+json"),
))]
#[get("/me")]
async fn me(state: web::Data<AppState>, caller: AuthUser) -> AppResult<web::Json<MeResponse>> {
    let user_id = caller.id().to_owned();
    let memberships = db::run(&state.pool, move |conn| {
        Ok(store::memberships_of(conn, &user_id)?)
    })
    .await?;
    Ok(web::Json(MeResponse {
        id: caller.user.id,
        email: caller.user.email,
        display_name: caller.user.display_name,
        memberships: memberships
            .into_iter()
            .map(|(m, clinic_name)| MembershipView {
                role: m.role(),
                clinic_id: m.clinic_id,
                clinic_name,
                active: m.active,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// Change your password. Every other session ends: access tokens issued before stop working on
/// their next request and refresh tokens are revoked.
#[utoipa::path(tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest, responses(
    (status = 204, description = "Changed; log in again"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json"),
))]
#[post("/me/password")]
async fn change_password(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: ValidJson<ChangePasswordRequest>,
) -> AppResult<HttpResponse> {
    let ChangePasswordRequest {
        current_password,
        new_password,
    } = body.into_inner()?;
    password::check_policy(&new_password, &caller.user.email).map_err(|mut e| {
        e.field = "new_password".to_owned();
        AppError::Validation(vec![e])
    })?;
    let user_id = caller.id().to_owned();
    let stored_hash = caller.user.password_hash;
    // Hashing takes tens of milliseconds: keep it off the event loop, with the query.
    db::run(&state.pool, move |conn| {
        if password::verify(&current_password, &stored_hash) == Verdict::Wrong {
            return Err(AppError::invalid("current_password", "is wrong"));
        }
        let new_hash = password::hash(&new_password).map_err(AppError::internal)?;
        db::write_transaction(conn, |conn| {
            Ok(store::change_password(conn, &user_id, &new_hash)?)
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
