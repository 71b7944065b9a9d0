//! What happens around every request: a request id, a JSON log line, metrics, and the guarantee
//! that every error body is a problem document.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpResponse};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use super::problem::status_problem;
use crate::api::state::AppState;
use crate::db;
use crate::error::PROBLEM_CONTENT_TYPE;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the current request, in request extensions; also echoed as `x-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A caller's own id is kept when it is short and plain, so logs can be joined across services.
fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let plain = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    plain.then(|| value.to_owned())
}

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide metrics recorder (several apps in one test process share it).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".to_owned()),
                    &[
                        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    ],
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("db_statements_per_request".to_owned()),
                    &[1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0],
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request_id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let authenticated = req.headers().contains_key(header::AUTHORIZATION);
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
    let started = Instant::now();

    // Handlers' and extractors' errors arrive here as responses; an `Err` can only come from an
    // inner middleware, and actix renders it.
    // One pooled connection serves the whole request, the caller's check and the work alike,
    // taken on its first use and back in the pool once the answer is ready.
    let request_conn = req
        .app_data::<web::Data<AppState>>()
        .map(|state| db::RequestConn::lazy(state.pool.clone()));
    let res = match (control_characters(&req), &request_conn) {
        (Some(refusal), _) => req.error_response(refusal),
        (None, Some(conn)) => conn
            .scope(next.call(req))
            .instrument(span.clone())
            .await?
            .map_into_boxed_body(),
        (None, None) => next
            .call(req)
            .instrument(span.clone())
            .await?
            .map_into_boxed_body(),
    };
    let statements = request_conn.map_or(0, |conn| {
        conn.release();
        conn.statements()
    });
    let mut res = into_problem(res);
    harden(res.headers_mut(), &path, authenticated);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }

    let status = res.status().as_u16();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .record(elapsed);
    #[allow(clippy::cast_precision_loss)] // a request sends far fewer than 2^52 statements
    metrics::histogram!("db_statements_per_request", "method" => method, "route" => route.clone())
        .record(statements as f64);
    span.in_scope(|| {
        tracing::info!(status, route = %route, duration_ms = elapsed * 1000.0, statements, "request finished");
    });
    Ok(res)
}

/// A control character (NUL and the like) in the path names no record, and in the query no
/// filter: refused before anything reads it, as text in a body is. (PostgreSQL cannot even
/// compare text that holds a NUL.)
fn control_characters(req: &ServiceRequest) -> Option<crate::error::AppError> {
    use crate::error::{AppError, FieldError};
    let has_control = |text: &str| text.chars().any(char::is_control);
    let path_segments = form_urlencoded::parse(req.path().as_bytes());
    if path_segments
        .into_iter()
        .any(|(k, v)| has_control(&k) || has_control(&v))
    {
        return Some(AppError::NotFound);
    }
    let errors: Vec<FieldError> = form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, v)| has_control(k) || has_control(v))
        .map(|(k, _)| {
            FieldError::new(
                k.chars().filter(|c| !c.is_control()).collect::<String>(),
                "contains a control character that is not text; remove it",
            )
        })
        .collect();
    (!errors.is_empty()).then_some(AppError::Validation(errors))
}

/// The API answers data, never a page: nothing in it may run, load or be framed.
const API_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// Swagger UI loads its own script, styles and images from this server and fetches the document
/// from it; its bundle sets inline styles.
const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Security headers on every response that has not set its own; `no-store` on every answer to an authenticated request
/// (client data, look-back CSVs and export zips must not linger in shared or browser caches).
fn harden(headers: &mut header::HeaderMap, path: &str, authenticated: bool) {
    let policy = if path.starts_with("/api/docs") {
        DOCS_POLICY
    } else {
        API_POLICY
    };
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, policy),
    ] {
        // A page (web/) sets its own policy: its scripts and styles come from this server.
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if authenticated {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
}

/// Rewrites an error response that is not already a problem document or a page (actix's own 404
/// and 405, an extractor's plain-text error) into one, keeping the headers a client needs.
fn into_problem(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    // A problem document already, or a page's own error page (web/), which a person reads.
    let already = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes())
            || v.as_bytes().starts_with(b"text/html")
    });
    if already {
        return res;
    }
    let (req, old) = res.into_parts();
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = old.headers().get(&name) {
            builder.insert_header((name, v.clone()));
        }
    }
    let body = serde_json::to_string(&status_problem(status)).unwrap_or_default();
    ServiceResponse::new(req, builder.body(body))
}
