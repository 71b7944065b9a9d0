//! The HTTP surface: the application factory, middleware, the JSON extractor, paging and the
//! OpenAPI document. Domain modules own their handlers; this module puts them together.

pub mod idempotency;
pub mod json;
pub mod middleware;
pub mod ops;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, Error};
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

pub use json::ValidJson;
pub use middleware::RequestId;

use crate::error::{AppError, FieldError};
use crate::state::AppState;

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
    tags(
        (name = "auth", description = "Log in, refresh and log out; the caller's own account"),
        (name = "clinics", description = "Clinics and their members"),
        (name = "audit", description = "The clinic's tamper-evident audit chain"),
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
    pub limit: Option<i64>,
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
        .service(
            scope::scope("/api/v1")
                .configure(crate::auth::routes::routes)
                .service(
                    scope::scope("/clinics/{clinic}")
                        .configure(crate::clinics::routes::routes)
                        .configure(crate::audit::routes::routes),
                ),
        )
        .split_for_parts();
    app.service(SwaggerUi::new("/api/docs/{_:.*}").url("/api/openapi.json", openapi))
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(AppError::NotFound)
        }))
        .wrap(actix_web::middleware::from_fn(idempotency::idempotency))
        .wrap(actix_web::middleware::from_fn(middleware::observe))
}
