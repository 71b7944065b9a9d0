//! Signing in and out of the pages, with the API's accounts and the same throttle.

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::chrome::{state, Assets, Browser, COOKIE};
use super::forms::{self, BrowserPost};
use super::{html, see_other, PageError};
use crate::auth::{browser, normalise_email, password, usecases};
use crate::db;
use crate::error::AppError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/sign-in", web::get().to(sign_in_page))
        .route("/sign-in", web::post().to(sign_in))
        .route("/sign-out", web::post().to(sign_out))
        .route("/clinics", web::get().to(choose_clinic))
        .route("/invitations/accept", web::get().to(invitation_page))
        .route("/invitations/accept", web::post().to(accept_invitation));
}

/// The sign-in page's address, bringing the person back to `next` and saying why they are there.
pub fn sign_in_path(next: &str, why: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if next != "/" && safe_next(next) {
        query.append_pair("next", next);
    }
    if why != "signed-out" {
        query.append_pair("ended", why);
    }
    match query.finish() {
        q if q.is_empty() => "/sign-in".to_owned(),
        q => format!("/sign-in?{q}"),
    }
}

/// Only a path on this server: never another site (`//evil.example`) after signing in.
fn safe_next(next: &str) -> bool {
    next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')
}

#[derive(Template)]
#[template(path = "sign_in.html", config = "src/web/askama.toml")]
struct SignInPage {
    assets: Assets,
    next: String,
    email: String,
    notice: Option<&'static str>,
    error: Option<String>,
    insecure: bool,
}

fn ended_notice(why: &str) -> Option<&'static str> {
    match why {
        "idle" => Some("You were signed out after a while without using the pages. Sign in again to carry on where you were."),
        "expired" => Some("Your sign-in lasts 12 hours at most. Sign in again to carry on where you were."),
        "account-changed" => Some("Your password was changed or your account was deactivated, so you were signed out."),
        "signed-out-now" => Some("You are signed out."),
        "invitation-accepted" => Some("Your invitation is accepted. Sign in with your email address and password."),
        _ => None,
    }
}

/// Whether the browser will refuse a `Secure` cookie: plain HTTP. On loopback that is a developer
/// or a demo and the cookie goes without `Secure`; anywhere else the page says to use HTTPS.
fn plain_http(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "http"
}

fn loopback(req: &HttpRequest) -> bool {
    let info = req.connection_info();
    let host = info.host();
    let name = host
        .rsplit_once(':')
        .map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
        .trim_start_matches('[')
        .trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn sign_in_page(req: HttpRequest) -> Result<HttpResponse, PageError> {
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let next = query
        .get("next")
        .filter(|n| safe_next(n))
        .cloned()
        .unwrap_or_default();
    html(
        StatusCode::OK,
        &SignInPage {
            assets: Assets::get(),
            next,
            email: String::new(),
            notice: query.get("ended").and_then(|w| ended_notice(w)),
            error: None,
            insecure: plain_http(&req) && !loopback(&req),
        },
    )
}

/// A sign-in or invitation form posted from another site (login CSRF: signing the victim's
/// browser in as someone else) is refused; it has no session token to check yet.
fn from_this_site(req: &HttpRequest) -> Result<(), PageError> {
    let headers = req.headers();
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Err(PageError::Forgery);
    }
    let origin = headers
        .get(actix_web::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if let Some(origin) = origin.filter(|o| *o != "null") {
        let host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if host != req.connection_info().host() {
            return Err(PageError::Forgery);
        }
    }
    Ok(())
}

async fn sign_in(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, PageError> {
    from_this_site(&req)?;
    let state = state(&req)?;
    let fields = forms::Fields::parse(&body);
    let email = normalise_email(fields.get("email"));
    let password_text = fields.get("password").to_owned();
    let next = Some(fields.get("next").to_owned())
        .filter(|n| safe_next(n))
        .unwrap_or_default();
    let again = |error: String, status: StatusCode| {
        html(
            status,
            &SignInPage {
                assets: Assets::get(),
                next: next.clone(),
                email: email.clone(),
                notice: None,
                error: Some(error),
                insecure: plain_http(&req) && !loopback(&req),
            },
        )
    };
    if email.is_empty() || password_text.is_empty() {
        return again(
            "Enter your email address and your password.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    if password_text.chars().count() > password::MAX_LENGTH {
        return again(
            "The email or password is wrong.".into(),
            StatusCode::UNAUTHORIZED,
        );
    }
    if let Err(retry) = state
        .login_limiter
        .attempt(&crate::api::auth::client_address(&req, &state), &email)
    {
        let mut response = again(
            format!("Too many attempts. Wait {retry} seconds, then try again."),
            StatusCode::TOO_MANY_REQUESTS,
        )?;
        response.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(retry),
        );
        return Ok(response);
    }
    let (st, email_used) = (state.clone(), email.clone());
    let signed = db::run(&state.pool, move |conn| {
        let user =
            usecases::authenticate(conn, &st.dummy_password_hash, &email_used, &password_text)?;
        let opened = browser::open(conn, &user)?;
        let memberships = crate::auth::store::memberships_of(conn, &user.id)?;
        Ok((opened, memberships))
    })
    .await;
    let (opened, memberships) = match signed {
        Ok(found) => found,
        Err(AppError::Unauthorized(_)) => {
            return again(
                "The email or password is wrong.".into(),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => return Err(e.into()),
    };
    let active: Vec<_> = memberships.into_iter().filter(|(m, _)| m.active).collect();
    let location = if !next.is_empty() {
        next
    } else {
        match active.as_slice() {
            [(m, _)] => super::home_of(&m.clinic_id, m.role()),
            _ => "/clinics".to_owned(),
        }
    };
    let cookie = Cookie::build(COOKIE, opened.cookie)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(!(plain_http(&req) && loopback(&req)))
        .finish();
    let mut response = see_other(&location);
    response
        .add_cookie(&cookie)
        .map_err(|e| AppError::internal(e.to_string()))?;
    Ok(response)
}

async fn sign_out(req: HttpRequest, post: BrowserPost) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let _ = post.browser;
    if let Some(cookie) = req.cookie(COOKIE).map(|c| c.value().to_owned()) {
        db::run(&state.pool, move |conn| browser::close(conn, &cookie)).await?;
    }
    let mut response = see_other("/sign-in?ended=signed-out-now");
    let mut gone = Cookie::build(COOKIE, "").path("/").finish();
    gone.make_removal();
    gone.set_max_age(CookieAge::ZERO);
    response
        .add_cookie(&gone)
        .map_err(|e| AppError::internal(e.to_string()))?;
    Ok(response)
}

async fn root(req: HttpRequest) -> Result<HttpResponse, PageError> {
    match Browser::resolve(&req).await {
        Ok(browser) => Ok(see_other(&match browser.memberships.as_slice() {
            [(m, _)] => super::home_of(&m.clinic_id, m.role()),
            _ => "/clinics".to_owned(),
        })),
        Err(PageError::SignIn { .. }) => Ok(see_other("/sign-in")),
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "clinics.html", config = "src/web/askama.toml")]
struct ClinicsPage {
    assets: Assets,
    user_name: String,
    csrf: String,
    clinics: Vec<(String, String, &'static str, String)>,
}

async fn choose_clinic(browser: Browser) -> Result<HttpResponse, PageError> {
    let clinics = browser
        .memberships
        .iter()
        .map(|(m, name)| {
            (
                m.clinic_id.clone(),
                name.clone(),
                super::chrome::role_in_words(m.role()),
                super::home_of(&m.clinic_id, m.role()),
            )
        })
        .collect();
    super::ok(&ClinicsPage {
        assets: Assets::get(),
        user_name: browser.user.display_name,
        csrf: browser.csrf,
        clinics,
    })
}

#[derive(Template)]
#[template(path = "invitation.html", config = "src/web/askama.toml")]
struct InvitationPage {
    assets: Assets,
    token: String,
    email: String,
    sets_password: bool,
    error: Option<String>,
}

/// The page an invitation's link opens: a new account chooses its password, an existing one
/// proves it; both then sign in.
async fn invitation_page(req: HttpRequest) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let token =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("token").cloned())
            .unwrap_or_default();
    let lookup = token.trim().to_owned();
    let open = db::run(&state.pool, move |conn| {
        crate::clinics::invitations::find_open(conn, &lookup)
    })
    .await;
    match open {
        Ok(open) => super::ok(&InvitationPage {
            assets: Assets::get(),
            email: open.user.email.clone(),
            sets_password: open.sets_password(),
            token,
            error: None,
        }),
        Err(AppError::Validation(_)) => Err(PageError::App(AppError::Conflict(
            "this invitation link has been used already or has expired: ask the clinic for a new one"
                .into(),
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn accept_invitation(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, PageError> {
    from_this_site(&req)?;
    let state = state(&req)?;
    let fields = forms::Fields::parse(&body);
    let token = fields.get("token").to_owned();
    let given = fields.get("password").to_owned();
    if let Err(retry) = state
        .login_limiter
        .attempt_from(&crate::api::auth::client_address(&req, &state))
    {
        return Err(AppError::TooManyRequests {
            retry_after_secs: retry,
        }
        .into());
    }
    let lookup = token.clone();
    let open = db::run(&state.pool, move |conn| {
        crate::clinics::invitations::find_open(conn, &lookup)
    })
    .await
    .map_err(|_| {
        AppError::Conflict(
            "this invitation link has been used already or has expired: ask the clinic for a new one"
                .into(),
        )
    })?;
    let (email, sets_password) = (open.user.email.clone(), open.sets_password());
    let hashed = web::block(move || open.password_hash(&given))
        .await
        .map_err(AppError::internal)?;
    let new_hash = match hashed {
        Ok(h) => h,
        Err(AppError::Validation(errors)) => {
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                &InvitationPage {
                    assets: Assets::get(),
                    token,
                    email,
                    sets_password,
                    error: errors.first().map(|e| super::capitalise(&e.reason)),
                },
            )
        }
        Err(e) => return Err(e.into()),
    };
    let spend = token.clone();
    db::run(&state.pool, move |conn| {
        crate::clinics::invitations::accept(conn, &spend, new_hash.as_deref())
    })
    .await?;
    Ok(see_other("/sign-in?ended=invitation-accepted"))
}
