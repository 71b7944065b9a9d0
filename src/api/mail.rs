//! `/clinics/{clinic}/mail`: the clinic's messages and their delivery, its mail settings, and
//! sending an export's summary to an inspector now.

use actix_web::{get, post, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidJson;
use crate::api::ValidQuery;
use crate::db;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::outbox::settings::{self, MailSettingsInput, MailSettingsView};
use crate::outbox::{self, MailFilter, MailView};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_mail)
        .service(get_settings)
        .service(put_settings)
        .service(send_export)
        .service(resend);
}

/// Queue a message that was given up on again, as a new message (owner only). The failure stops
/// being a finding of the compliance view.
#[utoipa::path(tag = "mail", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Message id")),
    responses((status = 202, body = MailView),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Not failed, already resent, or an invitation")))]
#[post("/mail/{id}/resend")]
async fn resend(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let (ctx, clinic, id, domain) = (
        access.audit_context(),
        access.clinic_id.clone(),
        path.into_inner().1,
        crate::mail::worker::domain(&state.settings),
    );
    let view = db::run(&state.pool, move |conn| {
        outbox::resend(conn, &ctx, &clinic, &id).and_then(|row| outbox::view(row, &domain))
    })
    .await?;
    Ok(HttpResponse::Accepted().json(view))
}

/// The clinic's messages, newest first, with their delivery state (owner only).
#[utoipa::path(tag = "mail", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), MailFilter),
    responses((status = 200, body = Vec<MailView>),
        Forbidden,
        NotFound,
        Unprocessable))]
#[get("/mail")]
async fn list_mail(
    state: web::Data<AppState>,
    access: ClinicAccess,
    query: ValidQuery<MailFilter>,
) -> AppResult<web::Json<Vec<MailView>>> {
    access.require_owner()?;
    let query = query.into_inner()?;
    let filter = query;
    let mut errors = Vec::new();
    if let Some(s) = &filter.state {
        if outbox::MailState::from_db(s).is_err() {
            errors.push(FieldError::new("state", "must be pending, sent or failed"));
        }
    }
    if filter.limit.is_some_and(|l| !(1..=200).contains(&l)) {
        errors.push(FieldError::new("limit", "must be between 1 and 200"));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let (clinic, domain) = (
        access.clinic_id.clone(),
        crate::mail::worker::domain(&state.settings),
    );
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            outbox::list(conn, &clinic, &filter, &domain)
        })
        .await?,
    ))
}

/// The clinic's mail settings: summary schedule, added recipients, authority address.
#[utoipa::path(tag = "mail", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses((status = 200, body = MailSettingsView),
        Forbidden,
        NotFound))]
#[get("/mail/settings")]
async fn get_settings(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<MailSettingsView>> {
    access.require_owner()?;
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| settings::get(conn, &clinic)).await?,
    ))
}

/// Replaces the clinic's mail settings (owner only). The summary goes out on schedule to the
/// clinic's inspectors and the added recipients, in the clinic's time zone.
#[utoipa::path(tag = "mail", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    request_body = MailSettingsInput,
    responses((status = 200, body = MailSettingsView),
        Forbidden,
        (status = 422, body = Problem, content_type = "application/problem+json", description = "An invalid address, or an impossible day or time")))]
#[put("/mail/settings")]
async fn put_settings(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<MailSettingsInput>,
) -> AppResult<web::Json<MailSettingsView>> {
    access.require_owner()?;
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            settings::put(conn, &ctx, &clinic, &input)
        })
        .await?,
    ))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    /// An inspector of this clinic (running grant), or an address the owner added to the mail
    /// settings' recipients.
    pub to: String,
}

/// Sends the export's audit summary, with its report.pdf, to an inspector now (owner only).
#[utoipa::path(tag = "mail", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Export id")),
    request_body = SendInput,
    responses((status = 202, body = MailView),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The export failed"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Not an address, or not an inspector of this clinic nor an added recipient")))]
#[post("/exports/{id}/send")]
async fn send_export(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<SendInput>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let (ctx, clinic, id, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        path.into_inner().1,
        body.into_inner()?,
    );
    let (profiles, public_url, domain) = (
        state.profiles.clone(),
        state.settings.mail.public_url.clone(),
        crate::mail::worker::domain(&state.settings),
    );
    let view = db::run(&state.pool, move |conn| {
        crate::mail::usecases::send_now(conn, &profiles, &ctx, &clinic, &id, &input.to, &public_url)
            .and_then(|row| outbox::view(row, &domain))
    })
    .await?;
    Ok(HttpResponse::Accepted().json(view))
}
