//! Who is calling, and what they may do in the clinic named in the path.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::RequestId;
use crate::api::state::AppState;
use crate::audit::{Actor, AuditContext};
use crate::auth::store::{self, UserRow};
use crate::auth::Role;
use crate::db;
use crate::error::AppError;

/// Left in the request's extensions once the caller has been authenticated and, for a clinic's
/// routes, found to be a member: a replayed idempotent answer is given only to such a caller.
#[derive(Debug, Clone, Copy)]
pub struct Authorised;

/// A caller with a valid access token whose account is active and whose token predates no
/// password change or deactivation.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: UserRow,
    pub request_id: Option<String>,
}

impl AuthUser {
    pub fn id(&self) -> &str {
        &self.user.id
    }

    pub fn audit_context(&self) -> AuditContext {
        AuditContext {
            actor: Actor::User(self.user.id.clone()),
            request_id: self.request_id.clone(),
        }
    }
}

/// A member of the clinic in the path `{clinic}`. Anyone else gets 404, exactly as for a clinic
/// that does not exist, so clinic ids cannot be probed.
#[derive(Debug, Clone)]
pub struct ClinicAccess {
    pub caller: AuthUser,
    pub clinic_id: String,
    pub role: Role,
    /// Whether clients' names, contacts and dates of birth may be shown: to staff, and to an
    /// inspector only when their grant says so. Everyone else sees clients by pseudonymous id.
    pub client_details: bool,
}

impl ClinicAccess {
    pub fn user_id(&self) -> &str {
        self.caller.id()
    }

    pub fn audit_context(&self) -> AuditContext {
        self.caller.audit_context()
    }

    /// Owner-only routes.
    pub fn require_owner(&self) -> Result<(), AppError> {
        match self.role {
            Role::Owner => Ok(()),
            _ => Err(AppError::Forbidden(
                "only an owner of this clinic may do this",
            )),
        }
    }

    /// Routes that change records: owners and technicians, never inspectors.
    pub fn require_staff(&self) -> Result<(), AppError> {
        match self.role {
            Role::Owner | Role::Technician => Ok(()),
            Role::Inspector => Err(AppError::Forbidden("inspectors have read-only access")),
        }
    }

    /// Routes for owners and inspectors (the audit trail, exports).
    pub fn require_owner_or_inspector(&self) -> Result<(), AppError> {
        match self.role {
            Role::Owner | Role::Inspector => Ok(()),
            Role::Technician => Err(AppError::Forbidden(
                "only owners and inspectors may do this",
            )),
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, AppError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(AppError::Unauthorized(
            "send an access token as Authorization: Bearer <token>",
        ))?
        .to_str()
        .map_err(|_| AppError::Unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = value.split_once(' ').ok_or(AppError::Unauthorized(
        "the Authorization header must be Bearer <token>",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "the Authorization header must be Bearer <token>",
        ));
    }
    Ok(token.trim().to_owned())
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))
}

fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

const INVALID_TOKEN: &str = "the access token is invalid or expired; log in again";

fn check_user(user: &UserRow, token_version: i64) -> Result<(), AppError> {
    if !user.active || user.token_version != token_version {
        return Err(AppError::Unauthorized(INVALID_TOKEN));
    }
    Ok(())
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    /// The token's claims read as [`Bearer`] reads them, then the account checked as
    /// [`AccountCheck::authenticate`] checks it: one rule for both.
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parsed = state(req).and_then(|state| {
            Bearer::from_request(req, payload)
                .into_inner()
                .map(|b| (state, b))
        });
        Box::pin(async move {
            let (state, bearer) = parsed?;
            let account = bearer.account();
            let caller = db::run(&state.pool, move |conn| account.authenticate(conn)).await?;
            bearer.authorised();
            Ok(caller)
        })
    }
}

/// A caller whose access token is valid, not yet checked against their account: for a handler
/// whose own database work begins with that check ([`AccountCheck::authenticate`]), so the check
/// and the work take one trip to the blocking pool instead of two.
pub struct Bearer {
    check: AccountCheck,
    req: HttpRequest,
}

/// What the handler's database work checks first (see [`Bearer`]).
#[derive(Clone)]
pub struct AccountCheck {
    claims: crate::auth::token::Claims,
    request_id: Option<String>,
}

impl AccountCheck {
    /// The account behind the token, checked exactly as [`AuthUser`] is: it must exist, be
    /// active and predate no password change or deactivation.
    pub fn authenticate(&self, conn: &mut db::DbConn) -> Result<AuthUser, AppError> {
        let user = store::find_user(conn, &self.claims.sub)?
            .ok_or(AppError::Unauthorized(INVALID_TOKEN))?;
        check_user(&user, self.claims.ver)?;
        Ok(AuthUser {
            user,
            request_id: self.request_id.clone(),
        })
    }
}

impl Bearer {
    pub fn account(&self) -> AccountCheck {
        self.check.clone()
    }

    /// Marks the request as made by an authenticated caller, once the check passed.
    pub fn authorised(&self) {
        self.req.extensions_mut().insert(Authorised);
    }
}

impl FromRequest for Bearer {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let claims = state(req)?
                .tokens
                .check(&bearer(req)?)
                .map_err(|_| AppError::Unauthorized(INVALID_TOKEN))?;
            Ok(Self {
                check: AccountCheck {
                    claims,
                    request_id: request_id(req),
                },
                req: req.clone(),
            })
        })())
    }
}

impl FromRequest for ClinicAccess {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = (|| {
            let state = state(req)?;
            let claims = state
                .tokens
                .check(&bearer(req)?)
                .map_err(|_| AppError::Unauthorized(INVALID_TOKEN))?;
            let clinic_id = req
                .match_info()
                .get("clinic")
                .ok_or_else(|| AppError::internal("route has no {clinic} segment"))?
                .to_owned();
            Ok::<_, AppError>((state, claims, clinic_id))
        })();
        let request_id = request_id(req);
        let marked = req.clone();
        let method = req.method().clone();
        let (path, query) = (req.path().to_owned(), req.query_string().to_owned());
        Box::pin(async move {
            let (state, claims, clinic_id) = parsed?;
            let (user_id, clinic) = (claims.sub.clone(), clinic_id.clone());
            let (user, membership) = db::run(&state.pool, move |conn| {
                Ok(crate::clinics::store::find_access(conn, &user_id, &clinic)?)
            })
            .await?
            .ok_or(AppError::Unauthorized(INVALID_TOKEN))?;
            check_user(&user, claims.ver)?;
            // Inspectors read, never write; asking for an export of the records is reading them.
            let export_request = method == Method::POST
                && path
                    .trim_end_matches('/')
                    .ends_with(&format!("/clinics/{clinic_id}/exports"));
            let access = admit(
                &state,
                AuthUser { user, request_id },
                membership,
                clinic_id,
                Visit {
                    method: method.as_str(),
                    reads: matches!(method, Method::GET | Method::HEAD) || export_request,
                    path: &path,
                    query: &query,
                },
            )
            .await?;
            marked.extensions_mut().insert(Authorised);
            Ok(access)
        })
    }
}

/// What a request does, as far as an inspector's access cares.
pub struct Visit<'a> {
    pub method: &'a str,
    /// Reads the records (or asks for an export of them) rather than changing them.
    pub reads: bool,
    pub path: &'a str,
    pub query: &'a str,
}

/// Whether an authenticated user may act in a clinic, for the API and the pages alike: an active
/// membership (anyone else is told there is no such clinic, so ids cannot be probed); for an
/// inspector, a read while a grant runs, and the read itself goes on the clinic's record.
pub async fn admit(
    state: &AppState,
    caller: AuthUser,
    membership: Option<store::MembershipRow>,
    clinic_id: String,
    visit: Visit<'_>,
) -> Result<ClinicAccess, AppError> {
    let membership = membership
        .filter(|m| m.active)
        .ok_or(AppError::NoSuch("clinic"))?;
    let mut access = ClinicAccess {
        role: membership.role(),
        caller,
        clinic_id,
        client_details: membership.role() != Role::Inspector,
    };
    if access.role == Role::Inspector {
        if !visit.reads {
            return Err(AppError::Forbidden("inspectors have read-only access"));
        }
        let (ctx, clinic, user) = (
            access.audit_context(),
            access.clinic_id.clone(),
            access.user_id().to_owned(),
        );
        let (method, path, query) = (
            visit.method.to_owned(),
            visit.path.to_owned(),
            visit.query.to_owned(),
        );
        access.client_details = db::run(&state.pool, move |conn| {
            let (grant, client_details) =
                crate::inspectors::store::active_grant(conn, &clinic, &user)?.ok_or(
                    AppError::Forbidden(
                        "your inspection access to this clinic is not active (ended, revoked or not yet begun)",
                    ),
                )?;
            crate::inspectors::usecases::record_read(
                conn, &ctx, &clinic, &grant, &method, &path, &query,
            )?;
            Ok(client_details)
        })
        .await?;
    }
    Ok(access)
}
