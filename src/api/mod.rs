//! The HTTP surface: the application factory, middleware, the JSON extractor, paging and the
//! OpenAPI document. Domain modules own their handlers; this module puts them together.

pub mod audit;
pub mod auth;
pub mod checklists;
pub mod clients;
pub mod clinics;
pub mod compliance;
pub mod contract;
pub mod credentials;
pub mod exports;
pub mod extract;
pub mod idempotency;
pub mod imports;
pub mod incidents;
pub mod inspectors;
pub mod json;
pub mod lots;
pub mod mail;
pub mod middleware;
pub mod ops;
pub mod problem;
pub mod query;
pub mod sessions;
pub mod state;
pub mod sterilisation;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, Error};
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

pub use extract::{AuthUser, ClinicAccess};
pub use json::ValidJson;
pub use middleware::RequestId;
pub use query::ValidQuery;

use crate::api::state::AppState;
use crate::error::{AppError, FieldError};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Aseptic API",
        description = "Infection-control and hygiene compliance records for SMP, PMU and tattoo \
                       clinics. Every error is an RFC 9457 problem document \
                       (application/problem+json). Creating requests accept an Idempotency-Key \
                       header.",
    ),
    modifiers(&BearerAuth),
    // The shared problem responses (api::problem) refer to it by name.
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    tags(
        (name = "auth", description = "Log in, refresh and log out; the caller's own account"),
        (name = "clinics", description = "Clinics and their members"),
        (name = "audit", description = "The clinic's tamper-evident audit chain"),
        (name = "sterilisation", description = "Sterilisers, cycles and packs, spore and air-removal tests"),
        (name = "lots", description = "Needle cartridges, pigments and supplies: lots, barcodes, recalls"),
        (name = "credentials", description = "Technicians' credentials and their eligibility to work"),
        (name = "sessions", description = "Checklist templates, clients and client sessions"),
        (name = "incidents", description = "Incidents, their follow-ups and closure"),
        (name = "compliance", description = "Look-back over packs and sessions"),
        (name = "inspectors", description = "Time-limited, read-only inspector grants"),
        (name = "exports", description = "Signed audit exports and the key that signs them"),
        (name = "mail", description = "The outbox, summary schedules and sending summaries to inspectors"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Cursor paging shared by every list: `limit` (1–500, default 100) and an opaque `cursor` taken
/// from the previous page's `next_cursor`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many records a page holds: 1 to 500, 100 when absent.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Opaque: the `next_cursor` of the previous page, as it was given.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub const MAX: i64 = 500;

    pub fn limit(&self) -> Result<i64, AppError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=Self::MAX).contains(&n) => Ok(n),
            Some(_) => Err(AppError::invalid(
                "limit",
                format!("must be between 1 and {}", Self::MAX),
            )),
        }
    }

    /// The cursor of a list paged by record id: the id of the previous page's last record.
    pub fn id_cursor(&self) -> Result<Option<String>, AppError> {
        match &self.cursor {
            None => Ok(None),
            Some(c) if uuid::Uuid::parse_str(c).is_ok() => Ok(Some(c.clone())),
            Some(_) => Err(AppError::invalid(
                "cursor",
                "is not a cursor from a previous page",
            )),
        }
    }
}

/// Every documented route, so a request that matches a path but not its method gets 405 with
/// `Allow` rather than 404.
pub struct RouteTable(Vec<(Vec<String>, Vec<&'static str>)>);

impl RouteTable {
    fn from_openapi(openapi: &utoipa::openapi::OpenApi) -> Self {
        let routes = openapi
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (path.split('/').map(str::to_owned).collect(), methods)
            })
            .collect();
        Self(routes)
    }

    fn allowed(&self, path: &str) -> Vec<&'static str> {
        let segments: Vec<&str> = path.split('/').collect();
        let matching: Vec<&(Vec<String>, Vec<&'static str>)> = self
            .0
            .iter()
            .filter(|(template, _)| {
                template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
            })
            .collect();
        // A literal segment wins over a parameter, as in routing: `/lots/parse-barcode` is that
        // resource, not the lot named "parse-barcode".
        let literals =
            |template: &Vec<String>| template.iter().filter(|t| !t.starts_with('{')).count();
        let most = matching.iter().map(|(t, _)| literals(t)).max().unwrap_or(0);
        let mut allowed: Vec<&'static str> = matching
            .into_iter()
            .filter(|(t, _)| literals(t) == most)
            .flat_map(|(_, methods)| methods.iter().copied())
            .collect();
        allowed.sort_unstable();
        allowed.dedup();
        allowed
    }
}

pub async fn unmatched(
    req: actix_web::HttpRequest,
    routes: web::Data<RouteTable>,
) -> Result<actix_web::HttpResponse, AppError> {
    let allowed = routes.allowed(req.path());
    if allowed.is_empty() {
        return Err(AppError::NotFound);
    }
    let status = actix_web::http::StatusCode::METHOD_NOT_ALLOWED;
    let mut problem = problem::status_problem(status);
    problem.detail = format!(
        "{} is not allowed here; use {}",
        req.method(),
        allowed.join(", ")
    );
    Ok(actix_web::HttpResponse::build(status)
        .insert_header((actix_web::http::header::ALLOW, allowed.join(", ")))
        .content_type(crate::error::PROBLEM_CONTENT_TYPE)
        .json(problem))
}

/// The application, as `main` serves it and as the tests start it.
pub fn build_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let limit = json::JsonLimit(state.settings.server.json_limit_bytes);
    let (app, openapi) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .app_data(state)
        .app_data(web::Data::new(limit))
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            AppError::Validation(vec![FieldError::new("query", err.to_string())]).into()
        }))
        .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .configure(exports::well_known)
        .service(
            scope::scope("/api/v1")
                .configure(auth::routes)
                .configure(inspectors::account_routes)
                .service(
                    scope::scope("/clinics/{clinic}")
                        .configure(clinics::routes)
                        .configure(audit::routes)
                        .configure(sterilisation::routes)
                        .configure(imports::routes)
                        .configure(lots::routes)
                        .configure(credentials::routes)
                        .configure(checklists::routes)
                        .configure(clients::routes)
                        .configure(sessions::routes)
                        .configure(incidents::routes)
                        .configure(compliance::routes)
                        .configure(inspectors::routes)
                        .configure(exports::routes)
                        .configure(mail::routes),
                ),
        )
        .split_for_parts();
    let routes = web::Data::new(RouteTable::from_openapi(&openapi));
    let document = contract::exact_document(&openapi);
    app.app_data(routes)
        .service(
            SwaggerUi::new("/api/docs/{_:.*}")
                .external_url_unchecked("/api/openapi.json", document)
                // No call to swagger.io's validator: the docs page talks to this server only.
                .config(
                    utoipa_swagger_ui::Config::new(["/api/openapi.json"]).validator_url("none"),
                ),
        )
        .route(
            "/api/docs",
            web::get().to(|| async {
                actix_web::HttpResponse::PermanentRedirect()
                    .insert_header((actix_web::http::header::LOCATION, "/api/docs/"))
                    .finish()
            }),
        )
        .default_service(web::to(unmatched))
        .wrap(actix_web::middleware::from_fn(idempotency::idempotency))
        .wrap(actix_web::middleware::from_fn(middleware::observe))
}
