//! Liveness, readiness and metrics for whoever runs the service.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::state::AppState;
use crate::db;
use crate::error::{AppError, AppResult};

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Whether the service can take traffic. Named apart from a session's readiness to start.
#[derive(Serialize, ToSchema)]
#[schema(as = ServiceReadiness)]
pub struct Readiness {
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// The process is up and answering.
#[utoipa::path(tag = "operations", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// The database answers and can be written; a load balancer should route traffic here only when
/// this is 200. A database that stalls, is read-only or is unreachable gives 503 within
/// `database.ready_timeout_secs`.
#[utoipa::path(tag = "operations", responses(
    (status = 200, body = Readiness),
    (status = 503, body = crate::error::Problem, content_type = "application/problem+json"),
))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> AppResult<web::Json<Readiness>> {
    let (pool, backend) = (state.pool.clone(), state.backend.clone());
    let limit = std::time::Duration::from_secs(state.settings.database.ready_timeout_secs);
    db::bounded_by(limit, move || {
        let mut conn = pool.get()?;
        db::check_ready(&mut conn, &backend).map_err(|e| AppError::Unavailable(e.to_string()))
    })
    .await?;
    Ok(web::Json(Readiness {
        status: "ready",
        database: state.backend.name(),
    }))
}

fn prometheus_text() -> HttpResponse {
    let body = super::middleware::prometheus()
        .map(|h| h.render())
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// Prometheus text format: request counts and latencies by route and status. On the main
/// listener only with the `metrics.token` bearer token; without one configured it is not here
/// at all (it is served on `metrics.bind`, loopback by default).
#[utoipa::path(tag = "operations", security(("bearer" = [])), responses(
    (status = 200, content_type = "text/plain", body = String),
    (status = 401, body = crate::error::Problem, content_type = "application/problem+json"),
    (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
))]
#[get("/metrics")]
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let Some(token) = state
        .settings
        .metrics
        .token
        .as_ref()
        .map(|t| t.expose())
        .filter(|t| !t.is_empty())
    else {
        return Err(AppError::NotFound);
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(AppError::Unauthorized(
            "send the metrics token as Authorization: Bearer <token>",
        ));
    }
    Ok(prometheus_text())
}

/// The separate metrics listener's one route.
pub async fn metrics_open() -> HttpResponse {
    prometheus_text()
}
