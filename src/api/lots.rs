//! `/api/v1/clinics/{clinic}/lots`: received lots, barcode scanning, recalls.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::problem::{Conflicting, Forbidden, NotFound, Unprocessable};
use crate::api::state::AppState;
use crate::api::ClinicAccess;
use crate::api::ValidQuery;
use crate::api::{PageQuery, ValidJson};
use crate::db;
use crate::error::{AppError, AppResult, Problem};
use crate::lots::gs1::{self, Scan};
use crate::lots::model::{LotInput, LotKind};
use crate::lots::store::LotFilter;
use crate::lots::usecases::{self, LotView, RecallRequest, WithdrawalRequest};
use crate::records::AmendmentRequest;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_lots)
        .service(receive_lot)
        .service(parse_barcode)
        .service(get_lot)
        .service(amend_lot)
        .service(recall_lot)
        .service(withdraw_lot);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LotQuery {
    pub kind: Option<LotKind>,
    /// Received on or after this date.
    pub from: Option<NaiveDate>,
    /// Received before this date.
    pub to: Option<NaiveDate>,
    /// The records as they stood at this moment (RFC 3339, not in the future): later records,
    /// amendments and readings left out. Now when absent.
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LotPage {
    pub items: Vec<LotView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BarcodeRequest {
    /// Exactly what the scanner typed, including any group separators (ASCII 29).
    #[schema(example = "(01)09506000134352(17)270531(10)ABC123")]
    pub text: String,
}

/// Lots received by the clinic, newest first.
#[utoipa::path(tag = "lots", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), PageQuery, LotQuery),
    responses((status = 200, body = LotPage), NotFound, Unprocessable))]
#[get("/lots")]
async fn list_lots(
    state: web::Data<AppState>,
    access: ClinicAccess,
    page: ValidQuery<PageQuery>,
    query: ValidQuery<LotQuery>,
) -> AppResult<web::Json<LotPage>> {
    let (page, query) = crate::api::query::both(page, query)?;
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if to <= from {
            return Err(AppError::invalid("to", "must be after from"));
        }
    }
    let filter = LotFilter {
        kind: query.kind.map(|k| k.as_db().to_owned()),
        received_from: query.from,
        received_to: query.to,
        after_id: page.id_cursor()?,
        limit: page.limit()?,
        at: crate::api::query::standing_at(query.at)?,
    };
    let clinic = access.clinic_id.clone();
    let (items, next_cursor) = db::run(&state.pool, move |conn| {
        usecases::list_lots(conn, &clinic, &filter)
    })
    .await?;
    Ok(web::Json(LotPage { items, next_cursor }))
}

/// Record a received lot (owners and technicians). A lot number is unique per manufacturer and
/// product in the clinic.
#[utoipa::path(tag = "lots", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    request_body = LotInput,
    responses(
        (status = 201, body = LotView),
        Forbidden,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Lot already recorded"),
        Unprocessable,
    ))]
#[post("/lots")]
async fn receive_lot(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<LotInput>,
) -> AppResult<HttpResponse> {
    access.require_staff()?;
    let (ctx, clinic, input) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::receive_lot(conn, &ctx, &clinic, input)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Read a scanned GS1 barcode (GS1-128 or DataMatrix, with or without parentheses): GTIN (01),
/// expiry (17), lot (10) and serial (21). Nothing is stored.
#[utoipa::path(tag = "lots", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id")),
    request_body = BarcodeRequest,
    responses((status = 200, body = Scan), (status = 422, body = Problem, content_type = "application/problem+json", description = "Not a well-formed GS1 element string")))]
#[post("/lots/parse-barcode")]
async fn parse_barcode(
    state: web::Data<AppState>,
    access: ClinicAccess,
    body: ValidJson<BarcodeRequest>,
) -> AppResult<web::Json<Scan>> {
    let text = body.into_inner()?.text;
    // Whether the printed expiry has passed is judged on the clinic's own date.
    let clinic = access.clinic_id.clone();
    let today = db::run(&state.pool, move |conn| {
        crate::clinics::context::today(conn, &clinic)
    })
    .await?;
    let scan = gs1::parse(&text, today).map_err(|e| AppError::invalid("text", e.to_string()))?;
    Ok(web::Json(scan))
}

/// A lot, its status (usable, expired, recalled), its recall and its history.
#[utoipa::path(tag = "lots", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Lot id")),
    responses((status = 200, body = LotView), NotFound))]
#[get("/lots/{id}")]
async fn get_lot(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<LotView>> {
    let (_, id) = path.into_inner();
    let clinic = access.clinic_id.clone();
    Ok(web::Json(
        db::run(&state.pool, move |conn| {
            usecases::get_lot(conn, &clinic, &id)
        })
        .await?,
    ))
}

/// Correct a lot record (owners and technicians): a new version with a reason.
#[utoipa::path(tag = "lots", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Lot id")),
    request_body = AmendmentRequest,
    responses(
        (status = 201, body = LotView),
        Forbidden,
        NotFound,
        Conflicting,
        Unprocessable,
    ))]
#[post("/lots/{id}/amendments")]
async fn amend_lot(
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
        usecases::amend_lot(conn, &ctx, &clinic, &id, &req)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Recall a lot (owner only) with the reason and the manufacturer's or regulator's reference. A
/// recalled lot can no longer be used in a session.
#[utoipa::path(tag = "lots", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Lot id")),
    request_body = RecallRequest,
    responses(
        (status = 201, body = LotView),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Already recalled"),
        Unprocessable,
    ))]
#[post("/lots/{id}/recall")]
async fn recall_lot(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<RecallRequest>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, req) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let profiles = state.profiles.clone();
    let view = db::run(&state.pool, move |conn| {
        crate::reactions::run(conn, &profiles, &ctx, |conn| {
            usecases::recall_lot(conn, &ctx, &clinic, &id, &req)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Record that a lot's remaining stock was taken off the shelf (returned to the supplier or
/// destroyed), owner only, with what happened to it. A recalled or expired lot then stops being
/// a finding, and the lot can no longer be used in a session. Recorded once; never undone.
#[utoipa::path(tag = "lots", security(("bearer" = [])),
    params(("clinic" = String, Path, description = "Clinic id"), ("id" = String, Path, description = "Lot id")),
    request_body = WithdrawalRequest,
    responses(
        (status = 201, body = LotView),
        Forbidden,
        NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Already withdrawn"),
        Unprocessable,
    ))]
#[post("/lots/{id}/withdraw")]
async fn withdraw_lot(
    state: web::Data<AppState>,
    access: ClinicAccess,
    path: web::Path<(String, String)>,
    body: ValidJson<WithdrawalRequest>,
) -> AppResult<HttpResponse> {
    access.require_owner()?;
    let (_, id) = path.into_inner();
    let (ctx, clinic, req) = (
        access.audit_context(),
        access.clinic_id.clone(),
        body.into_inner()?,
    );
    let view = db::run(&state.pool, move |conn| {
        usecases::withdraw_lot(conn, &ctx, &clinic, &id, &req)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}
