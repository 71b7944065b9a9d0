//! `/api/v1/clinics/{clinic}/lookbacks`.

use actix_web::{get, http::header, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidQuery;
use crate::compliance::lookback::{self, Lookback};
use crate::compliance::readiness::ReadinessView;
use crate::compliance::view::ComplianceView;
use crate::db;
use crate::error::{AppError, AppResult, Problem};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(lookbacks)
        .service(compliance_now)
        .service(readiness);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComplianceQuery {
    /// RFC 3339 moment: judge the records as they stood then (later amendments do not count).
    /// Leave out for now.
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub at: Option<String>,
}

impl ComplianceQuery {
    fn moment(&self) -> AppResult<Option<DateTime<Utc>>> {
        self.at
            .as_deref()
            .map(|text| {
                DateTime::parse_from_rfc3339(text.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        AppError::invalid(
                            "at",
                            "must be an RFC 3339 time with an offset, e.g. 2026-03-03T17:00:00Z",
                        )
                    })
            })
            .transpose()
    }
}

/// Ready for an inspection? The compliance view's findings, what falls due in the next 30 days,
/// each steriliser's latest spore and air-removal tests, positive spore tests and recalled lots
/// of the last year with the sessions their look-backs reach, and mail given up on; now or as of
/// `at`. Owners and inspectors.
#[utoipa::path(tag = "compliance", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ComplianceQuery),
    responses((status = 200, body = ReadinessView),
        NotFound, Forbidden,
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`at` malformed, in the future or before the clinic existed")))]
#[get("/readiness")]
async fn readiness(
    state: web::Data<AppState>,
    access: ClinicAccess,
    query: ValidQuery<ComplianceQuery>,
) -> AppResult<web::Json<ReadinessView>> {
    access.require_owner_or_inspector()?;
    let at = query.into_inner()?.moment()?;
    let (clinic, profiles, caller) = (
        access.clinic_id.clone(),
        state.profiles.clone(),
        access.user_id().to_owned(),
    );
    let mut view = db::run(&state.pool, move |conn| {
        crate::compliance::readiness::dashboard(conn, &profiles, &clinic, &caller, at)
    })
    .await?;
    if !access.client_details {
        for f in &mut view.failures {
            f.lookback = f.lookback.clone().pseudonymous();
        }
    }
    Ok(web::Json(view))
}

/// Is the clinic compliant right now, or was it at `at`? Findings from every rule of its
/// jurisdiction profile, most severe first, with counts by severity and the audit-chain event
/// the view stands on.
#[utoipa::path(tag = "compliance", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ComplianceQuery),
    responses((status = 200, body = ComplianceView),
        NotFound,
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`at` malformed, in the future or before the clinic existed")))]
#[get("/compliance")]
async fn compliance_now(
    state: web::Data<AppState>,
    access: ClinicAccess,
    query: ValidQuery<ComplianceQuery>,
) -> AppResult<web::Json<ComplianceView>> {
    let query = query.into_inner()?;
    let at = query.moment()?;
    let (clinic, profiles) = (access.clinic_id.clone(), state.profiles.clone());
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            crate::compliance::view::view(conn, &profiles, &clinic, at)
        })
        .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookbackQuery {
    /// A spore test: for a positive one, every load back to the last negative test.
    pub spore_test: Option<String>,
    /// A cycle (load).
    pub cycle: Option<String>,
    /// A lot: every session that used it.
    pub lot: Option<String>,
    /// A steriliser, with `from` and `to`.
    pub steriliser: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// `csv` for one row per session reached (also chosen by `Accept: text/csv`).
    pub format: Option<String>,
}

/// Every pack and every client session a failed spore test, a load, a recalled lot or a span of
/// a steriliser's loads reaches, with the client's contact for notification. JSON, or CSV.
#[utoipa::path(tag = "compliance", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), LookbackQuery),
    responses(
        (status = 200, body = Lookback),
        (status = 200, content_type = "text/csv", body = String, description = "One row per session reached"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown trigger"),
        Unprocessable,
    ))]
#[get("/lookbacks")]
async fn lookbacks(
    req: HttpRequest,
    state: web::Data<AppState>,
    access: ClinicAccess,
    query: ValidQuery<LookbackQuery>,
) -> AppResult<HttpResponse> {
    let query = query.into_inner()?;
    let q = query;
    let csv = q.format.as_deref() == Some("csv")
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv"));
    let trigger = lookback::trigger_from(
        q.spore_test,
        q.cycle,
        q.lot,
        q.steriliser,
        q.from.map(|t| t.naive_utc()),
        q.to.map(|t| t.naive_utc()),
    )?;
    let clinic = access.clinic_id.clone();
    let result = db::run(&state.pool, move |conn| {
        lookback::compute(conn, &clinic, &trigger)
    })
    .await?;
    let result = if access.client_details {
        result
    } else {
        result.pseudonymous()
    };
    Ok(if csv {
        HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(lookback::to_csv(&result))
    } else {
        HttpResponse::Ok().json(result)
    })
}
