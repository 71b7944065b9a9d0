//! Errors as HTTP answers: every `AppError` becomes an RFC 9457 problem document with its status
//! and the headers a client needs (`Retry-After`, `WWW-Authenticate`), in this one place.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::error::{problem_type, AppError, Problem, PROBLEM_CONTENT_TYPE};

/// A problem response for a bare status (unknown route, wrong method) with no `AppError` behind it.
pub fn status_problem(status: StatusCode) -> Problem {
    let (slug, title) = match status {
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        StatusCode::UNAUTHORIZED => ("unauthenticated", "Authentication is required"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "The request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported-media-type",
            "The request body must be application/json",
        ),
        s if s.is_server_error() => ("internal", "Internal error"),
        _ => ("malformed-request", "The request could not be read"),
    };
    let detail = match status {
        StatusCode::NOT_FOUND => "no such resource".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "this resource does not accept that method".to_owned(),
        s => s.canonical_reason().unwrap_or("error").to_owned(),
    };
    Problem {
        type_: problem_type(slug),
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        errors: Vec::new(),
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            AppError::Internal(msg) | AppError::Misconfigured(msg) => {
                tracing::error!(error = %msg, "internal error")
            }
            AppError::Unavailable(msg) => tracing::warn!(error = %msg, "service unavailable"),
            _ => {}
        }
        let problem = self.problem();
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
        match self {
            AppError::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            AppError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "2"));
            }
            AppError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        response.body(serde_json::to_string(&problem).unwrap_or_default())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        Self::Internal(err.to_string())
    }
}

/// The problem responses the OpenAPI document shares: one type per status, named for what it
/// means, listed in a route's `responses(...)` instead of spelling the problem body out each time.
macro_rules! problem_responses {
    ($($name:ident => $status:literal, $description:literal;)+) => {$(
        #[doc = $description]
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                let content = utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                    .build();
                let response = utoipa::openapi::ResponseBuilder::new()
                    .description($description)
                    .content(PROBLEM_CONTENT_TYPE, content)
                    .build();
                std::collections::BTreeMap::from([($status.to_owned(), response.into())])
            }
        }
    )+};
}

problem_responses! {
    Unauthenticated => "401", "No valid access token: log in again";
    Forbidden => "403", "Your role does not allow this";
    NotFound => "404", "No such record in this clinic";
    Conflicting => "409", "The request conflicts with the records as they stand";
    TooLarge => "413", "The upload is beyond a size limit (or a zip would unpack beyond one)";
    Unprocessable => "422", "A field is missing or invalid: every field and reason is listed";
}
