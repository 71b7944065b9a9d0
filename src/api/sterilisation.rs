//! `/api/v1/clinics/{clinic}/sterilisers`, `/cycles`, `/packs`, `/spore-tests`,
//! `/air-removal-tests`.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::clinics::ReasonRequest;
use crate::api::problem::{Conflicting, Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidQuery;
use crate::api::{PageQuery, ValidJson};
use crate::db;
use crate::error::{AppError, AppResult, Problem};
use crate::records::AmendmentRequest;
use crate::sterilisation::model::{
    AirRemovalInput, CycleInput, SporeResultCorrection, SporeResultInput, SporeTestInput,
    SteriliserInput,
};
use crate::sterilisation::store::{LogFilter, TimeCursor};
use crate::sterilisation::usecases::{self, *};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_sterilisers)
        .service(create_steriliser)
        .service(get_steriliser)
        .service(amend_steriliser)
        .service(take_out_of_service)
        .service(return_to_service)
        .service(list_cycles)
        .service(create_cycle)
        .service(get_cycle)
        .service(amend_cycle)
        .service(get_pack)
        .service(pack_label)
        .service(list_spore_tests)
        .service(create_spore_test)
        .service(get_spore_test)
        .service(record_spore_result)
        .service(correct_spore_result)
        .service(amend_spore_test)
        .service(list_air_removal_tests)
        .service(create_air_removal_test)
        .service(get_air_removal_test)
        .service(amend_air_removal_test);
}

/// Filters of the sterilisation logs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only this steriliser's records.
    pub steriliser_id: Option<String>,
    /// From this time (RFC 3339), inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Until this time (RFC 3339), exclusive.
    pub to: Option<DateTime<Utc>>,
    /// The records as they stood at this moment (RFC 3339, not in the future): later records,
    /// amendments and readings left out. Now when absent.
    pub at: Option<DateTime<Utc>>,
}

fn log_filter(page: &PageQuery, query: LogQuery) -> AppResult<LogFilter> {
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if to <= from {
            return Err(AppError::invalid("to", "must be after from"));
        }
    }
    let after =
        match &page.cursor {
            None => None,
            Some(c) => Some(TimeCursor::decode(c).ok_or_else(|| {
                AppError::invalid("cursor", "is not a cursor from a previous page")
            })?),
        };
    Ok(LogFilter {
        steriliser_id: query.steriliser_id,
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
        after,
        limit: page.limit()?,
        at: crate::api::query::standing_at(query.at)?,
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SteriliserList {
    pub items: Vec<SteriliserView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CyclePage {
    pub items: Vec<CycleView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SporeTestPage {
    pub items: Vec<SporeTestView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AirRemovalPage {
    pub items: Vec<AirRemovalView>,
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Sterilisers

/// The clinic's sterilisers with their service status.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    responses((status = 200, body = SteriliserList), NotFound))]
#[get("/sterilisers")]
async fn list_sterilisers(
    state: web::Data<AppState>,
    access: ClinicAccess,
) -> AppResult<web::Json<SteriliserList>> {
    let clinic = access.clinic_id.clone();
    let items = db::run(&state.pool, move |conn| {
        usecases::list_sterilisers(conn, &clinic)
    })
    .await?;
    Ok(web::Json(SteriliserList { items }))
}

/// Register a steriliser (owner only). Its serial number must be unique in the clinic.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = SteriliserInput,
    responses(
        (status = 201, body = SteriliserView),
        Forbidden,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Serial number already registered"),
        Unprocessable,
    ))]
#[post("/sterilisers")]
async fn create_steriliser(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<SteriliserInput>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::create_steriliser(conn, &ctx, &clinic, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// A steriliser, its status and its history of amendments.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Steriliser id")),
    responses((status = 200, body = SteriliserView), NotFound))]
#[get("/sterilisers/{id}")]
async fn get_steriliser(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<SteriliserView>> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::get_steriliser(conn, &clinic, &id)
        })
        .await?,
    ))
}

/// Correct a steriliser record (owner only): a new version with a reason; the old one stays.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Steriliser id")),
    request_body = AmendmentRequest,
    responses(
        (status = 201, body = SteriliserView),
        Forbidden,
        NotFound,
        Unprocessable,
    ))]
#[post("/sterilisers/{id}/amendments")]
async fn amend_steriliser(
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
        usecases::amend_steriliser(conn, &ctx, &clinic, &id, &req)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Take a steriliser out of service (owner only); it then runs only empty test cycles.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Steriliser id")),
    request_body = ReasonRequest,
    responses(
        (status = 200, body = SteriliserView),
        Forbidden,
        NotFound,
        Conflicting,
    ))]
#[post("/sterilisers/{id}/out-of-service")]
async fn take_out_of_service(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<ReasonRequest>,
) -> AppResult<web::Json<SteriliserView>> {
    access.require_owner()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, reason) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?.reason,
    );
    let profiles = state.profiles.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::set_in_service(conn, &profiles, &ctx, &clinic, &id, false, &reason)
        })
        .await?,
    ))
}

/// Return a steriliser to service (owner only). After a positive spore test this needs passing
/// spore tests on loads run after the failure: as many consecutive empty-chamber tests as the
/// clinic's jurisdiction asks for requalification (three where it follows CDC and AAMI ST79),
/// else one. Only an owner lifts a quarantine, also after a laboratory corrects the positive.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Steriliser id")),
    request_body = ReasonRequest,
    responses(
        (status = 200, body = SteriliserView),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Already in service, or no passing retest yet"),
    ))]
#[post("/sterilisers/{id}/return-to-service")]
async fn return_to_service(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<ReasonRequest>,
) -> AppResult<web::Json<SteriliserView>> {
    access.require_owner()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, reason) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?.reason,
    );
    let profiles = state.profiles.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::set_in_service(conn, &profiles, &ctx, &clinic, &id, true, &reason)
        })
        .await?,
    ))
}

// ---------------------------------------------------------------------------------------------
// Cycles and packs

/// The cycle log, newest first, with each load's packs and derived outcome.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery, LogQuery),
    responses((status = 200, body = CyclePage), NotFound, Unprocessable))]
#[get("/cycles")]
async fn list_cycles(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
    query: ValidQuery<LogQuery>,
) -> AppResult<web::Json<CyclePage>> {
    let (page, query) = crate::api::query::both(page, query)?;
    let filter = log_filter(&page, query)?;
    let clinic = access.clinic_id.clone();
    let profiles = state.profiles.clone();
    let (items, next_cursor) = db::run(&state.pool, move |conn| {
        usecases::list_cycles(conn, &profiles, &clinic, &filter)
    })
    .await?;
    Ok(web::Json(CyclePage { items, next_cursor }))
}

/// Record a sterilisation cycle and the packs of its load (owners and technicians). The outcome
/// is derived from the indicators; each pack gets a code for its label.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = CycleInput,
    responses(
        (status = 201, body = CycleView),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown steriliser"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Cycle number already recorded, or steriliser out of service"),
        Unprocessable,
    ))]
#[post("/cycles")]
async fn create_cycle(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<serde_json::Value>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let input = CycleInput::from_json(body.into_inner()?)?;
    let (ctx, clinic) = (access.audit_context(), access.clinic_id.clone());
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::create_cycle(conn, &profiles, &ctx, &clinic, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// A cycle with its packs, indicators, warnings and history.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Cycle id")),
    responses((status = 200, body = CycleView), NotFound))]
#[get("/cycles/{id}")]
async fn get_cycle(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<CycleView>> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    let profiles = state.profiles.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::get_cycle(conn, &profiles, &clinic, &id)
        })
        .await?,
    ))
}

/// Correct a cycle record (owners and technicians): a new version with a reason.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Cycle id")),
    request_body = AmendmentRequest,
    responses(
        (status = 201, body = CycleView),
        Forbidden,
        NotFound,
        Conflicting,
        Unprocessable,
    ))]
#[post("/cycles/{id}/amendments")]
async fn amend_cycle(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<AmendmentRequest>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, req) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        usecases::amend_cycle(conn, &profiles, &ctx, &clinic, &id, &req)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// A pack by the code on its label, with its state: pending, released, quarantined, expired, used.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("code" = String, Path, description = "Pack code, e.g. K7M-2QX (case, spaces and dashes do not matter)")),
    responses((status = 200, body = PackView), NotFound))]
#[get("/packs/{code}")]
async fn get_pack(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<PackView>> {
    let (_, code) = path.into_inner();
    let clinic = access.clinic_id.clone();
    let profiles = state.profiles.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::get_pack(conn, &profiles, &clinic, &code)
        })
        .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LabelQuery {
    /// The label stock: `62x29` (the default) or `54x25` millimetres.
    #[param(value_type = Option<String>, pattern = "^(62x29|54x25)$")]
    pub size: Option<crate::sterilisation::label::LabelSize>,
}

/// The printable label of a pack (SVG, 62 × 29 or 54 × 25 mm): a QR code holding the pack code,
/// the cycle number, the sterilisation date, the operator's initials and the use-by date, each
/// line sized to fit.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("code" = String, Path, description = "Pack code"), LabelQuery),
    responses((status = 200, content_type = "image/svg+xml", body = String), NotFound, Unprocessable))]
#[get("/packs/{code}/label")]
async fn pack_label(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    query: ValidQuery<LabelQuery>,
) -> AppResult<HttpResponse> {
    let size = query.into_inner()?.size.unwrap_or_default();
    let (_, code) = path.into_inner();
    let clinic = access.clinic_id.clone();
    let profiles = state.profiles.clone();
    let svg = db::run(&state.pool, move |conn| {
        let pack = usecases::get_pack(conn, &profiles, &clinic, &code)?;
        let row = crate::clinics::store::find(conn, &clinic)?.ok_or(AppError::NoSuch("clinic"))?;
        let timezone = crate::clinics::context::time_zone(&row)?;
        crate::sterilisation::label::pack_label_svg(&pack, timezone, size)
            .map_err(AppError::internal)
    })
    .await?;
    Ok(HttpResponse::Ok().content_type("image/svg+xml").body(svg))
}

// ---------------------------------------------------------------------------------------------
// Spore tests

/// Spore tests, newest first, with their results.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery, LogQuery),
    responses((status = 200, body = SporeTestPage), NotFound, Unprocessable))]
#[get("/spore-tests")]
async fn list_spore_tests(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
    query: ValidQuery<LogQuery>,
) -> AppResult<web::Json<SporeTestPage>> {
    let (page, query) = crate::api::query::both(page, query)?;
    let filter = log_filter(&page, query)?;
    let clinic = access.clinic_id.clone();
    let (items, next_cursor) = db::run(&state.pool, move |conn| {
        usecases::list_spore_tests(conn, &clinic, &filter)
    })
    .await?;
    Ok(web::Json(SporeTestPage { items, next_cursor }))
}

/// Record a spore test placed in a load (owners and technicians); its result comes later.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = SporeTestInput,
    responses(
        (status = 201, body = SporeTestView),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown steriliser or cycle"),
        Unprocessable,
    ))]
#[post("/spore-tests")]
async fn create_spore_test(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<SporeTestInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::create_spore_test(conn, &ctx, &clinic, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// A spore test, its result and its history.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Spore test id")),
    responses((status = 200, body = SporeTestView), NotFound))]
#[get("/spore-tests/{id}")]
async fn get_spore_test(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<SporeTestView>> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::get_spore_test(conn, &clinic, &id)
        })
        .await?,
    ))
}

/// Record the result (owners and technicians): negative = pass, positive = fail. A valid positive
/// quarantines the steriliser and every pack back to its last negative test. One result per test.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Spore test id")),
    request_body = SporeResultInput,
    responses(
        (status = 201, body = SporeTestView),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The test already has a result"),
        Unprocessable,
    ))]
#[post("/spore-tests/{id}/result")]
async fn record_spore_result(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<SporeResultInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        crate::reactions::run(conn, &profiles, &ctx, |conn| {
            usecases::record_spore_result(conn, &ctx, &clinic, &id, input)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Correct a recorded reading on the laboratory's word (owners and technicians), with the
/// laboratory's reference and a reason; every earlier reading stays as a version. A correction
/// to a valid positive quarantines the steriliser and its look-back from now, as a new positive
/// does. A correction away from a positive lifts nothing: only an owner returns the steriliser to
/// service, with a reason.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Spore test id")),
    request_body = SporeResultCorrection,
    responses(
        (status = 201, body = SporeTestView),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The test has no result to correct yet"),
        Unprocessable,
    ))]
#[post("/spore-tests/{id}/result/corrections")]
async fn correct_spore_result(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<SporeResultCorrection>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        crate::reactions::run(conn, &profiles, &ctx, |conn| {
            usecases::correct_spore_result(conn, &ctx, &clinic, &id, input)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Correct a spore test record (owners and technicians): a new version with a reason.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Spore test id")),
    request_body = AmendmentRequest,
    responses(
        (status = 201, body = SporeTestView),
        Forbidden,
        NotFound,
        Unprocessable,
    ))]
#[post("/spore-tests/{id}/amendments")]
async fn amend_spore_test(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<AmendmentRequest>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, req) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::amend_spore_test(conn, &ctx, &clinic, &id, &req)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

// ---------------------------------------------------------------------------------------------
// Air-removal tests

/// Air-removal (Bowie-Dick, helix, electronic), automatic control and air-leakage tests, newest
/// first.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery, LogQuery),
    responses((status = 200, body = AirRemovalPage), NotFound, Unprocessable))]
#[get("/air-removal-tests")]
async fn list_air_removal_tests(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
    query: ValidQuery<LogQuery>,
) -> AppResult<web::Json<AirRemovalPage>> {
    let (page, query) = crate::api::query::both(page, query)?;
    let filter = log_filter(&page, query)?;
    let clinic = access.clinic_id.clone();
    let (items, next_cursor) = db::run(&state.pool, move |conn| {
        usecases::list_air_removal(conn, &clinic, &filter)
    })
    .await?;
    Ok(web::Json(AirRemovalPage { items, next_cursor }))
}

/// Record a routine steriliser test (owners and technicians): an air-removal test or an
/// air-leakage test of a pre-vacuum steriliser, or an automatic control test of any steriliser
/// (HTM 01-05 asks for one each day and an air-leakage test each week).
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = AirRemovalInput,
    responses(
        (status = 201, body = AirRemovalView),
        Forbidden,
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown steriliser"),
        Unprocessable,
    ))]
#[post("/air-removal-tests")]
async fn create_air_removal_test(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<AirRemovalInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::create_air_removal(conn, &ctx, &clinic, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// An air-removal test and its history.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Air-removal test id")),
    responses((status = 200, body = AirRemovalView), NotFound))]
#[get("/air-removal-tests/{id}")]
async fn get_air_removal_test(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<AirRemovalView>> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::get_air_removal(conn, &clinic, &id)
        })
        .await?,
    ))
}

/// Correct an air-removal test record (owners and technicians): a new version with a reason.
#[utoipa::path(tag = "sterilisation", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Air-removal test id")),
    request_body = AmendmentRequest,
    responses(
        (status = 201, body = AirRemovalView),
        Forbidden,
        NotFound,
        Unprocessable,
    ))]
#[post("/air-removal-tests/{id}/amendments")]
async fn amend_air_removal_test(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<AmendmentRequest>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, req) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::amend_air_removal(conn, &ctx, &clinic, &id, &req)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}
