//! The pages: server-rendered HTML over the same use cases as the API, for technicians at the
//! station, owners at a desk and inspectors reading. Signed-in browsers hold a server-side session
//! (`auth::browser`); every change is a form post carrying the session's CSRF token.

mod amend;
mod as_of;
pub mod assets;
mod charts;
mod chrome;
mod form_view;
mod forms;
mod incidents;
mod inspection;
mod owner;
mod records;
mod registers;
mod signin;
mod technician;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;

use crate::error::AppError;

pub use chrome::{Browser, Chrome, ClinicPage};
pub use forms::Posted;

/// The pages' routes; `lib.rs` adds them beside the API's.
pub fn routes(cfg: &mut web::ServiceConfig) {
    assets::routes(cfg);
    amend::routes(cfg);
    signin::routes(cfg);
    technician::routes(cfg);
    incidents::routes(cfg);
    inspection::routes(cfg);
    owner::routes(cfg);
    records::routes(cfg);
    registers::routes(cfg);
}

/// Headers every page carries: scripts, styles and images only from this server (no inline
/// script anywhere), never framed, never cached by a shared machine's browser.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
                       form-action 'self'; base-uri 'none'; object-src 'none'";

pub fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    builder
}

/// A rendered page with `status`.
pub fn html(status: StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    let body = page
        .render()
        .map_err(|e| PageError::App(AppError::internal(e)))?;
    Ok(secured(HttpResponse::build(status))
        .content_type("text/html; charset=utf-8")
        .body(body))
}

pub fn ok(page: &impl Template) -> Result<HttpResponse, PageError> {
    html(StatusCode::OK, page)
}

/// After a change, the page to see it on (post, redirect, get: a reload never repeats the post).
pub fn see_other(location: &str) -> HttpResponse {
    secured(HttpResponse::SeeOther())
        .insert_header((header::LOCATION, location))
        .finish()
}

/// What went wrong, as a page a person can read: never a stack trace or raw JSON.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or no longer): back to the sign-in page, which brings them back here.
    SignIn {
        next: String,
        why: &'static str,
    },
    /// The form's CSRF token is missing or not this session's.
    Forgery,
    /// No page at this address.
    NoPage,
    App(AppError),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn { why, .. } => write!(f, "sign in: {why}"),
            Self::Forgery => f.write_str("form without a valid CSRF token"),
            Self::NoPage => f.write_str("no such page"),
            Self::App(e) => write!(f, "{e}"),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html", config = "src/web/askama.toml")]
struct ErrorPage<'a> {
    assets: chrome::Assets,
    title: &'a str,
    message: String,
    reasons: Vec<String>,
    status: u16,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Forgery => StatusCode::FORBIDDEN,
            Self::NoPage => StatusCode::NOT_FOUND,
            Self::App(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (title, message, reasons) = match self {
            Self::SignIn { next, why } => {
                let location = signin::sign_in_path(next, why);
                // htmx follows HX-Redirect as a whole-page navigation.
                return secured(HttpResponse::SeeOther())
                    .insert_header((header::LOCATION, location.clone()))
                    .insert_header(("HX-Redirect", location))
                    .finish();
            }
            Self::Forgery => (
                "This form has expired",
                "The form was sent without this browser's security token, or with an old one, \
                 so nothing was recorded. Go back, reload the page and try again."
                    .to_owned(),
                Vec::new(),
            ),
            Self::NoPage => (
                "Not found",
                "There is no page at this address: it may be mistyped, or the link is old."
                    .to_owned(),
                Vec::new(),
            ),
            Self::App(e) => {
                if let AppError::Internal(msg) | AppError::Misconfigured(msg) = e {
                    tracing::error!(error = %msg, "page failed");
                }
                let problem = e.problem();
                let title = match e {
                    AppError::NoSuch(_) | AppError::NotFound => "Not found",
                    AppError::Forbidden(_) => "Not allowed",
                    AppError::Refused(_) | AppError::Conflict(_) => "Not done",
                    AppError::Unavailable(_) => "Try again in a moment",
                    AppError::Internal(_) | AppError::Misconfigured(_) => "Something went wrong",
                    _ => "Not done",
                };
                let message = match e {
                    AppError::Internal(_) => {
                        "The service could not finish this. Nothing was half-recorded; try again, \
                         and tell the clinic owner if it keeps happening."
                            .to_owned()
                    }
                    _ => capitalise(&problem.detail),
                };
                let reasons = problem.errors.iter().map(forms::reason_in_words).collect();
                (title, message, reasons)
            }
        };
        let page = ErrorPage {
            assets: chrome::Assets::get(),
            title,
            message,
            reasons,
            status: status.as_u16(),
        };
        let mut builder = secured(HttpResponse::build(status));
        if let Self::App(AppError::Unavailable(_)) = self {
            builder.insert_header((header::RETRY_AFTER, "2"));
        }
        match page.render() {
            Ok(body) => builder.content_type("text/html; charset=utf-8").body(body),
            Err(_) => builder
                .content_type("text/plain; charset=utf-8")
                .body(page.message),
        }
    }
}

pub fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Where `/` sends a signed-in person.
pub fn home_of(clinic_id: &str, role: crate::auth::Role) -> String {
    use crate::auth::Role;
    match role {
        Role::Technician => format!("/clinics/{clinic_id}/today"),
        Role::Owner => format!("/clinics/{clinic_id}/dashboard"),
        Role::Inspector => format!("/clinics/{clinic_id}/registers"),
    }
}

/// A path nothing answers: for a person's browser (a page's address, not the API's) a page that
/// says so; for a program, the API's problem document (with `Allow` for a wrong method).
pub async fn unmatched(
    req: actix_web::HttpRequest,
    routes: web::Data<crate::api::RouteTable>,
) -> Result<HttpResponse, actix_web::Error> {
    let wants_page = !req.path().starts_with("/api/")
        && !req.path().starts_with("/.well-known/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
    if wants_page {
        return Err(PageError::NoPage.into());
    }
    crate::api::unmatched(req, routes)
        .await
        .map_err(actix_web::Error::from)
}
