//! `/api/v1/auth/*` and `/api/v1/me`.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::extract::Bearer;
use crate::api::problem::{Unauthenticated, Unprocessable};
use crate::api::state::AppState;
use crate::api::AuthUser;
use crate::api::ValidJson;
use crate::auth::password;
use crate::auth::store;
use crate::auth::usecases::{self, TokenPair, BAD_CREDENTIALS};
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
    #[schema(example = "owner@clinic.example", min_length = 1)]
    pub email: String,
    #[schema(min_length = 1)]
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

impl From<TokenPair> for TokenResponse {
    fn from(p: TokenPair) -> Self {
        Self {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            token_type: "Bearer",
            expires_in: p.expires_in,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

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

/// Log in with email and password.
#[utoipa::path(tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = TokenResponse),
    (status = 401, body = Problem, content_type = "application/problem+json", description = "Wrong email or password"),
    Unprocessable,
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
        usecases::login(conn, &st.tokens, &st.dummy_password_hash, &email, &password)
    })
    .await?;
    Ok(web::Json(pair.into()))
}

/// Exchange a refresh token for a new pair. Each refresh token works once; presenting a used one
/// again revokes its whole family (it was probably stolen).
#[utoipa::path(tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, body = TokenResponse),
    Unauthenticated,
))]
#[post("/auth/refresh")]
async fn refresh(
    state: web::Data<AppState>,
    body: ValidJson<RefreshRequest>,
) -> AppResult<web::Json<TokenResponse>> {
    let token_hash = token::hash_refresh_token(body.into_inner()?.refresh_token.trim());
    let st = state.clone();
    let pair = db::run(&state.pool, move |conn| {
        usecases::refresh(conn, &st.tokens, &token_hash)
    })
    .await?;
    Ok(web::Json(pair.into()))
}

/// End a session: the refresh token and every token rotated from it stop working. Access tokens
/// already issued expire on their own within 15 minutes.
#[utoipa::path(tag = "auth", request_body = RefreshRequest, responses(
    (status = 204, description = "Logged out (also when the token was already unknown)"),
    Unprocessable,
))]
#[post("/auth/logout")]
async fn logout(
    state: web::Data<AppState>,
    body: ValidJson<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let token_hash = token::hash_refresh_token(body.into_inner()?.refresh_token.trim());
    db::run(&state.pool, move |conn| usecases::logout(conn, &token_hash)).await?;
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
    Unauthenticated,
))]
#[get("/me")]
async fn me(state: web::Data<AppState>, bearer: Bearer) -> AppResult<web::Json<MeResponse>> {
    // The account is checked first, in the same database work that reads the memberships.
    let account = bearer.account();
    let (caller, memberships) = db::run(&state.pool, move |conn| {
        let caller = account.authenticate(conn)?;
        let memberships = store::memberships_of(conn, caller.id())?;
        Ok((caller, memberships))
    })
    .await?;
    bearer.authorised();
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
    #[schema(min_length = 1)]
    pub current_password: String,
    /// At least 12 characters.
    #[schema(min_length = 12, max_length = 1024)]
    pub new_password: String,
}

/// Change your password. Every other session ends: access tokens issued before stop working on
/// their next request and refresh tokens are revoked.
#[utoipa::path(tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest, responses(
    (status = 204, description = "Changed; log in again"),
    Unauthenticated,
    Unprocessable,
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
    let (user_id, stored_hash) = (caller.id().to_owned(), caller.user.password_hash);
    db::run(&state.pool, move |conn| {
        usecases::change_password(
            conn,
            &user_id,
            &stored_hash,
            &current_password,
            &new_password,
        )
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
