//! `/api/v1/clinics/{clinic}` and its members.

use actix_web::{get, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Conflicting, Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidJson;
use crate::auth::store::{self as accounts, MembershipRow, UserRow};
use crate::auth::{check_email, normalise_email, Role};
use crate::clinics::invitations::{self, InvitationView, NewInvitation};
use crate::clinics::model::{ClinicView, SettingsView};
use crate::clinics::usecases::{self, MemberChange};
use crate::db;
use crate::error::{AppError, AppResult, FieldError, Problem};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(get_clinic)
        .service(list_members)
        .service(get_member)
        .service(add_member)
        .service(change_role)
        .service(deactivate_member)
        .service(reactivate_member)
        .service(set_works_on_clients)
        .service(get_settings)
        .service(update_settings);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsRequest {
    /// Days a sterilised pack stays usable (1–3650), or null for an event-related policy.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>, required = true, minimum = 1, maximum = 3650)]
    pub pack_shelf_life_days: Option<Option<i32>>,
}

/// Tells a field sent as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i32>>, D::Error> {
    Option::<i32>::deserialize(d).map(Some)
}

/// The clinic's settings (every member): its pack shelf life beside the jurisdiction's limit and
/// source, its time zone and its jurisdiction.
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses(
        (status = 200, body = SettingsView),
        NotFound,
    ))]
#[get("/settings")]
async fn get_settings(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<SettingsView>> {
    let clinic_id = access.clinic_id.clone();
    let profiles = state.profiles.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::settings(conn, &profiles, &clinic_id)
        })
        .await?,
    ))
}

/// Change the clinic's settings (owner only). New packs follow the new shelf life; packs already
/// made keep theirs. Answers the settings as they now stand.
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    request_body = SettingsRequest,
    responses(
        (status = 200, body = SettingsView),
        Forbidden,
        Unprocessable,
    ))]
#[put("/settings")]
async fn update_settings(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<SettingsRequest>,
) -> AppResult<web::Json<SettingsView>> {
    access.require_owner()?;
    let days = body.into_inner()?.pack_shelf_life_days.ok_or_else(|| {
        AppError::invalid(
            "pack_shelf_life_days",
            "is required (a number of days, or null for an event-related policy)",
        )
    })?;
    let ctx = access.audit_context();
    let clinic_id = access.clinic_id.clone();
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::set_pack_shelf_life(conn, &profiles, &ctx, &clinic_id, days)?;
        usecases::settings(conn, &profiles, &clinic_id)
    })
    .await?;
    Ok(web::Json(view))
}

/// The clinic: name, time zone, jurisdiction profile.
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses(
        (status = 200, body = ClinicView),
        NotFound,
    ))]
#[get("")]
async fn get_clinic(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<ClinicView>> {
    let clinic_id = access.clinic_id.clone();
    let row = db::run(&state.pool, move |conn| {
        Ok(crate::clinics::store::find(conn, &clinic_id)?)
    })
    .await?
    .ok_or(AppError::NoSuch("clinic"))?;
    Ok(web::Json(row.into()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// A deactivated member keeps their history but can no longer reach the clinic.
    pub active: bool,
    /// Practitioner rules (credentials, eligibility) apply to them.
    pub works_on_clients: bool,
    #[schema(value_type = String, format = DateTime)]
    pub member_since: chrono::DateTime<chrono::Utc>,
}

impl MemberView {
    fn new(m: MembershipRow, u: UserRow) -> Self {
        Self {
            role: m.role(),
            user_id: u.id,
            email: u.email,
            display_name: u.display_name,
            active: m.active,
            works_on_clients: m.works_on_clients,
            member_since: db::to_utc(m.created_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<MemberView>,
}

/// Staff and their roles.
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses((status = 200, body = MemberList), NotFound))]
#[get("/members")]
async fn list_members(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<MemberList>> {
    let clinic_id = access.clinic_id.clone();
    let rows = db::run(&state.pool, move |conn| {
        Ok(accounts::members_of(conn, &clinic_id)?)
    })
    .await?;
    Ok(web::Json(MemberList {
        items: rows
            .into_iter()
            .map(|(m, u)| MemberView::new(m, u))
            .collect(),
    }))
}

/// One member.
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("user" = String, Path, description = "User id")),
    responses((status = 200, body = MemberView), NotFound))]
#[get("/members/{user}")]
async fn get_member(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<MemberView>> {
    let (_, user_id) = path.into_inner();
    let clinic_id = access.clinic_id.clone();
    let (m, u) = db::run(&state.pool, move |conn| {
        Ok(accounts::find_member(conn, &clinic_id, &user_id)?)
    })
    .await?
    .ok_or(AppError::NoSuch("member"))?;
    Ok(web::Json(MemberView::new(m, u)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    #[schema(example = "tech@clinic.example")]
    pub email: String,
    /// The name to show if the email has no account yet (an existing account keeps its own).
    #[schema(min_length = 1)]
    pub display_name: Option<String>,
    /// `owner` or `technician`; inspectors get a grant at `/inspectors` instead.
    #[schema(value_type = String, pattern = "^(owner|technician)$")]
    pub role: Role,
    /// For an owner: whether they work on clients (technicians always do). Default false.
    #[serde(default)]
    pub works_on_clients: bool,
    /// Not accepted: members choose their own password from the invitation.
    #[schema(ignore)]
    pub password: Option<String>,
}

/// Invite someone to the clinic's staff (owner only). The answer is the same whether or not the
/// email has an account: the person is mailed a one-time token and joins when they accept it
/// (a new account chooses its password then; an existing one confirms with its own).
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = AddMemberRequest,
    responses(
        (status = 202, body = InvitationView, description = "Invited; they join on accepting"),
        Forbidden,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Already a member"),
        Unprocessable,
    ))]
#[post("/members")]
async fn add_member(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<AddMemberRequest>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let req = body.into_inner()?;
    let email = normalise_email(&req.email);
    let mut errors = Vec::new();
    if let Err(reason) = check_email(&email) {
        errors.push(FieldError::new("email", reason));
    }
    let display_name = req.display_name.map(|n| n.trim().to_owned());
    match display_name.as_deref() {
        Some("") => errors.push(FieldError::new("display_name", "must not be empty")),
        Some(n) if n.chars().count() > 200 => errors.push(FieldError::new(
            "display_name",
            "must be at most 200 characters",
        )),
        _ => {}
    }
    if req.password.is_some() {
        errors.push(FieldError::new(
            "password",
            "is chosen by the member from their invitation, not by the owner",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let ctx = access.audit_context();
    let clinic_id = access.clinic_id.clone();
    let public_url = state.settings.mail.public_url.clone();
    let view = db::run(&state.pool, move |conn| {
        invitations::invite(
            conn,
            &ctx,
            &clinic_id,
            NewInvitation {
                email,
                display_name,
                role: req.role,
                works_on_clients: req.works_on_clients,
            },
            &public_url,
        )
    })
    .await?;
    Ok(HttpResponse::Accepted().json(view))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PracticeRequest {
    /// Whether this owner works on clients (so practitioner credentials are required of them).
    pub works_on_clients: bool,
    /// Why; kept in the audit trail.
    pub reason: String,
}

/// Say whether an owner works on clients (owner only). Technicians always do.
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("user" = String, Path, description = "User id")),
    request_body = PracticeRequest,
    responses(
        (status = 200, body = MemberView),
        Forbidden,
        NotFound,
        Conflicting,
        Unprocessable,
    ))]
#[post("/members/{user}/works-on-clients")]
async fn set_works_on_clients(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<PracticeRequest>,
) -> AppResult<web::Json<MemberView>> {
    access.require_owner()?;
    let req = body.into_inner()?;
    let reason = reason(ReasonRequest { reason: req.reason })?;
    let change = MemberChange::WorksOnClients {
        works: req.works_on_clients,
        reason,
    };
    apply_change(state, access, path.into_inner().1, change).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    /// `owner` or `technician`.
    #[schema(value_type = String, pattern = "^(owner|technician)$")]
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// Why; kept in the audit trail.
    pub reason: String,
}

fn reason(r: ReasonRequest) -> AppResult<String> {
    let reason = r.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid("reason", "is required"));
    }
    if reason.chars().count() > 2000 {
        return Err(AppError::invalid(
            "reason",
            "must be at most 2000 characters",
        ));
    }
    Ok(reason)
}

async fn apply_change(
    state: web::Data<AppState>,
    access: ClinicAccess,
    user_id: String,
    change: MemberChange,
) -> AppResult<web::Json<MemberView>> {
    access.require_owner()?;
    let ctx = access.audit_context();
    let clinic_id = access.clinic_id.clone();
    let (m, u) = db::run(&state.pool, move |conn| {
        usecases::change_member(conn, &ctx, &clinic_id, &user_id, change)
    })
    .await?;
    Ok(web::Json(MemberView::new(m, u)))
}

/// Change a member's role (owner only). The last active owner cannot be demoted.
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("user" = String, Path, description = "User id")),
    request_body = ChangeRoleRequest,
    responses(
        (status = 200, body = MemberView),
        Forbidden,
        NotFound,
        Conflicting,
    ))]
#[post("/members/{user}/role")]
async fn change_role(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<ChangeRoleRequest>,
) -> AppResult<web::Json<MemberView>> {
    access.require_owner()?;
    let (_, user_id) = path.into_inner();
    apply_change(
        state,
        access,
        user_id,
        MemberChange::Role(body.into_inner()?.role),
    )
    .await
}

/// Deactivate a member (owner only): their next request to this clinic is refused. Accounts are
/// never deleted; the history stays.
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("user" = String, Path, description = "User id")),
    request_body = ReasonRequest,
    responses(
        (status = 200, body = MemberView),
        Forbidden,
        NotFound,
        Conflicting,
    ))]
#[post("/members/{user}/deactivate")]
async fn deactivate_member(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<ReasonRequest>,
) -> AppResult<web::Json<MemberView>> {
    access.require_owner()?;
    let (_, user_id) = path.into_inner();
    let reason = reason(body.into_inner()?)?;
    apply_change(state, access, user_id, MemberChange::Deactivate { reason }).await
}

/// Reactivate a deactivated member (owner only).
#[utoipa::path(tag = "clinics", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("user" = String, Path, description = "User id")),
    request_body = ReasonRequest,
    responses(
        (status = 200, body = MemberView),
        Forbidden,
        NotFound,
        Conflicting,
    ))]
#[post("/members/{user}/reactivate")]
async fn reactivate_member(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<ReasonRequest>,
) -> AppResult<web::Json<MemberView>> {
    access.require_owner()?;
    let (_, user_id) = path.into_inner();
    let reason = reason(body.into_inner()?)?;
    apply_change(state, access, user_id, MemberChange::Reactivate { reason }).await
}
