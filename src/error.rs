//! One error type for the service, with the problem document (RFC 9457) each error is shown as;
//! the HTTP surface (`api::problem`) renders it.

use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct FieldError {
    /// Path of the field in the request, e.g. `email` or `items[2].text`.
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    /// A record of this kind is not in the clinic (or not visible to the caller): the answer
    /// names the kind, never whether such a record exists elsewhere.
    #[error("no such {0}")]
    NoSuch(&'static str),
    /// A record named in the body does not exist in this clinic (or belongs to another one: the
    /// answer is the same).
    #[error("not found: {0:?}")]
    NotFoundField(FieldError),
    #[error("conflict: {0}")]
    Conflict(String),
    /// An action the records forbid right now, with every reason at once (e.g. starting a
    /// session with an expired lot and an unticked item).
    #[error("refused")]
    Refused(Vec<FieldError>),
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    #[error("a request with this idempotency key is still in progress")]
    IdempotencyInFlight,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    /// An upload beyond a limit other than the body's size (a zip that unpacks too far).
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The server is not set up for what the request needs (a clinic's profile that is not
    /// installed): the detail says what, so the operator can fix it.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, reason)])
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    /// The stable `type` URI and title of each kind of problem. Clients branch on `type`.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::Validation(_) => ("validation", "The request has invalid fields"),
            Self::BadRequest(_) => ("malformed-request", "The request could not be read"),
            Self::Unauthorized(_) => ("unauthenticated", "Authentication is required"),
            Self::Forbidden(_) => ("forbidden", "Your role does not allow this"),
            Self::NotFound | Self::NoSuch(_) | Self::NotFoundField(_) => ("not-found", "Not found"),
            Self::Conflict(_) => ("conflict", "The request conflicts with existing records"),
            Self::Refused(_) => ("refused", "The records do not allow this now"),
            Self::IdempotencyMismatch => (
                "idempotency-key-reused",
                "Idempotency key reused with a different request",
            ),
            Self::IdempotencyInFlight => (
                "idempotency-key-in-flight",
                "The first request with this key is still running",
            ),
            Self::TooManyRequests { .. } => ("rate-limited", "Too many requests"),
            Self::PayloadTooLarge { .. } | Self::TooLarge(_) => {
                ("payload-too-large", "The request body is too large")
            }
            Self::UnsupportedMediaType => (
                "unsupported-media-type",
                "The request body must be application/json",
            ),
            Self::Unavailable(_) => ("unavailable", "The service is temporarily unavailable"),
            Self::Misconfigured(_) => (
                "misconfigured",
                "The server is not set up for this clinic's records",
            ),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Validation(errors) | Self::Refused(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.reason))
                .collect::<Vec<_>>()
                .join("; "),
            Self::BadRequest(msg)
            | Self::Conflict(msg)
            | Self::Misconfigured(msg)
            | Self::TooLarge(msg) => msg.clone(),
            Self::Unauthorized(msg) | Self::Forbidden(msg) => (*msg).to_owned(),
            Self::NotFound => "no such resource".to_owned(),
            Self::NoSuch("clinic") => "no such clinic, or you are not a member of it".to_owned(),
            Self::NoSuch(kind) => format!("no such {kind} in this clinic"),
            Self::NotFoundField(e) => format!("{}: {}", e.field, e.reason),
            Self::IdempotencyMismatch => {
                "this Idempotency-Key was first used with a different method, path or body"
                    .to_owned()
            }
            Self::IdempotencyInFlight => {
                "the first request with this Idempotency-Key has not finished; retry later"
                    .to_owned()
            }
            Self::TooManyRequests { retry_after_secs } => {
                format!("too many attempts; retry after {retry_after_secs} seconds")
            }
            Self::PayloadTooLarge { limit } => format!("the body exceeds {limit} bytes"),
            Self::UnsupportedMediaType => {
                "send the body as JSON with Content-Type: application/json".to_owned()
            }
            // Internals stay in the log, never in the response.
            Self::Unavailable(_) => "the database is busy or unreachable; retry shortly".to_owned(),
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

pub fn problem_type(slug: &str) -> String {
    format!("https://aseptic.dev/problems/{slug}")
}

impl AppError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) | Self::IdempotencyMismatch => 422,
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound | Self::NoSuch(_) | Self::NotFoundField(_) => 404,
            Self::Conflict(_) | Self::Refused(_) | Self::IdempotencyInFlight => 409,
            Self::TooManyRequests { .. } => 429,
            Self::PayloadTooLarge { .. } | Self::TooLarge(_) => 413,
            Self::UnsupportedMediaType => 415,
            Self::Unavailable(_) => 503,
            Self::Internal(_) | Self::Misconfigured(_) => 500,
        }
    }

    /// The problem document this error is shown as.
    pub fn problem(&self) -> Problem {
        let (slug, title) = self.kind();
        Problem {
            type_: problem_type(slug),
            title: title.to_owned(),
            status: self.status(),
            detail: self.detail(),
            errors: match self {
                Self::Validation(errors) | Self::Refused(errors) => errors.clone(),
                Self::NotFoundField(e) => vec![e.clone()],
                _ => Vec::new(),
            },
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => Self::NotFound,
            // Use cases check their natural keys first and say which field clashes; this is the
            // backstop for a race, and table or constraint names stay out of the response.
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Self::Conflict("a record with these values already exists".to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                Self::Unavailable("serialization failure".to_owned())
            }
            // The connection went away (a restart, a dropped link, a time-out): nothing was
            // committed, so the client may retry.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                ref info,
            ) => Self::Unavailable(info.message().to_owned()),
            Error::BrokenTransactionManager => {
                Self::Unavailable("the connection was lost mid-transaction".to_owned())
            }
            Error::DatabaseError(_, ref info) if is_connection_lost(info.message()) => {
                Self::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(_, ref info) if is_busy(info.message()) => {
                Self::Unavailable(info.message().to_owned())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

/// libpq's words for a connection that is gone, whatever error kind diesel files them under.
fn is_connection_lost(message: &str) -> bool {
    [
        "server closed the connection",
        "no connection to the server",
        "terminating connection",
        "connection to server",
        "could not receive data",
        "could not send data",
        "SSL SYSCALL",
        "canceling statement due to statement timeout",
    ]
    .iter()
    .any(|m| message.contains(m))
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database is busy")
}

impl From<r2d2::Error> for AppError {
    fn from(err: r2d2::Error) -> Self {
        Self::Unavailable(err.to_string())
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::Internal(err.to_string())
    }
}
