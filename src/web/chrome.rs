//! Who is at the browser, and the frame every page shares (header, clinic switcher, navigation).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use chrono_tz::Tz;

use super::PageError;
use crate::api::extract::{admit, AuthUser, ClinicAccess, Visit};
use crate::api::state::AppState;
use crate::api::RequestId;
use crate::auth::browser::{self, Ended};
use crate::auth::store::{self as accounts, MembershipRow, UserRow};
use crate::auth::Role;
use crate::db;
use crate::error::AppError;

pub const COOKIE: &str = "aseptic_session";

/// A signed-in browser: its user, the session's CSRF token, and the clinics the user belongs to.
#[derive(Debug, Clone)]
pub struct Browser {
    pub user: UserRow,
    pub csrf: String,
    pub memberships: Vec<(MembershipRow, String)>,
}

pub(super) fn state(req: &HttpRequest) -> Result<web::Data<AppState>, PageError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| PageError::App(AppError::internal("application state missing")))
}

/// The page to come back to after signing in: this page for a read; for a form post, the page
/// the form was on (its Referer, when it is one of ours).
fn come_back_to(req: &HttpRequest) -> String {
    if req.method() == Method::GET {
        return match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        };
    }
    req.headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| {
            let after_scheme = r.split_once("://")?.1;
            let (host, path) = after_scheme.split_at(after_scheme.find('/')?);
            (host == req.connection_info().host()).then(|| path.to_owned())
        })
        .unwrap_or_else(|| "/".to_owned())
}

fn ended_in_words(why: Ended) -> &'static str {
    match why {
        Ended::Unknown => "signed-out",
        Ended::Idle => "idle",
        Ended::Absolute => "expired",
        Ended::AccountChanged => "account-changed",
    }
}

impl Browser {
    pub(super) async fn resolve(req: &HttpRequest) -> Result<Self, PageError> {
        let state = state(req)?;
        let next = come_back_to(req);
        let Some(cookie) = req.cookie(COOKIE).map(|c| c.value().to_owned()) else {
            return Err(PageError::SignIn {
                next,
                why: "signed-out",
            });
        };
        let limits = browser::Limits::from_settings(&state.settings.auth);
        let found = db::run(&state.pool, move |conn| {
            match browser::resume(conn, limits, &cookie)? {
                Ok(signed) => {
                    let memberships = accounts::memberships_of(conn, &signed.user.id)?;
                    Ok(Ok((signed, memberships)))
                }
                Err(why) => Ok(Err(why)),
            }
        })
        .await?;
        match found {
            Ok((signed, memberships)) => Ok(Self {
                user: signed.user,
                csrf: signed.csrf_token,
                memberships: memberships.into_iter().filter(|(m, _)| m.active).collect(),
            }),
            Err(why) => Err(PageError::SignIn {
                next,
                why: ended_in_words(why),
            }),
        }
    }
}

impl FromRequest for Browser {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Self::resolve(&req).await })
    }
}

/// A page of one clinic (`{clinic}` in the path), for a member of it: the same admission as the
/// API's (an inspector only while a grant runs, and only to read).
#[derive(Debug, Clone)]
pub struct ClinicPage {
    pub browser: Browser,
    pub access: ClinicAccess,
    pub clinic_name: String,
    pub tz: Tz,
}

impl ClinicPage {
    pub(super) async fn resolve(req: &HttpRequest) -> Result<Self, PageError> {
        let browser = Browser::resolve(req).await?;
        let state = state(req)?;
        let clinic_id = req
            .match_info()
            .get("clinic")
            .ok_or_else(|| AppError::internal("page has no {clinic} segment"))?
            .to_owned();
        let membership = browser
            .memberships
            .iter()
            .find(|(m, _)| m.clinic_id == clinic_id)
            .map(|(m, _)| m.clone());
        let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
        let method = req.method().clone();
        // Asking for an export of the records is reading them.
        let export_request = method == Method::POST
            && req
                .path()
                .trim_end_matches('/')
                .ends_with(&format!("/clinics/{clinic_id}/exports"));
        let access = admit(
            &state,
            AuthUser {
                user: browser.user.clone(),
                request_id,
            },
            membership,
            clinic_id.clone(),
            Visit {
                method: method.as_str(),
                reads: matches!(method, Method::GET | Method::HEAD) || export_request,
                path: req.path(),
                query: req.query_string(),
            },
        )
        .await?;
        let profiles = state.profiles.clone();
        let (clinic_name, tz) = db::run(&state.pool, move |conn| {
            let context = crate::clinics::context::load(conn, &profiles, &clinic_id)?;
            Ok((context.clinic.name, context.tz))
        })
        .await?;
        Ok(Self {
            browser,
            access,
            clinic_name,
            tz,
        })
    }

    pub fn clinic_id(&self) -> &str {
        &self.access.clinic_id
    }

    pub fn role(&self) -> Role {
        self.access.role
    }

    /// The frame of a page of this clinic, with `current` marked in the navigation.
    pub fn chrome(&self, current: &str) -> Chrome {
        let c = self.clinic_id();
        let mut nav: Vec<(&str, String)> = Vec::new();
        let links: &[(&str, &str)] = match self.role() {
            Role::Technician => &[
                ("Today", "today"),
                ("Sessions", "sessions"),
                ("Cycles", "cycles"),
                ("Spore tests", "spore-tests"),
                ("Lots", "lots"),
                ("Staff", "staff"),
                ("Report an incident", "incidents/new"),
            ],
            Role::Owner => &[
                ("Dashboard", "dashboard"),
                ("Today", "today"),
                ("Sessions", "sessions"),
                ("Cycles", "cycles"),
                ("Sterilisers", "sterilisers"),
                ("Spore tests", "spore-tests"),
                ("Lots", "lots"),
                ("Staff", "staff"),
                ("Incidents", "incidents"),
                ("Inspection", "inspection"),
            ],
            Role::Inspector => &[
                ("Registers", "registers"),
                ("Compliance", "dashboard"),
                ("Cycles", "cycles"),
                ("Spore tests", "spore-tests"),
                ("Lots", "lots"),
                ("Staff", "staff"),
                ("Incidents", "incidents"),
                ("Exports", "inspection"),
            ],
        };
        nav.extend(
            links
                .iter()
                .map(|(label, path)| (*label, format!("/clinics/{c}/{path}"))),
        );
        Chrome {
            user_name: self.browser.user.display_name.clone(),
            csrf: self.browser.csrf.clone(),
            clinic_id: c.to_owned(),
            clinic_name: self.clinic_name.clone(),
            role: role_in_words(self.role()),
            zone: self.tz.name().to_owned(),
            clinics: clinics_of(&self.browser),
            nav: nav
                .into_iter()
                .map(|(label, href)| NavLink {
                    current: label == current,
                    label,
                    href,
                })
                .collect(),
            assets: Assets::get(),
        }
    }
}

impl FromRequest for ClinicPage {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Self::resolve(&req).await })
    }
}

pub fn role_in_words(role: Role) -> &'static str {
    match role {
        Role::Owner => "Owner",
        Role::Technician => "Technician",
        Role::Inspector => "Inspector",
    }
}

fn clinics_of(browser: &Browser) -> Vec<ClinicChoice> {
    browser
        .memberships
        .iter()
        .map(|(m, name)| ClinicChoice {
            id: m.clinic_id.clone(),
            name: name.clone(),
            role: role_in_words(m.role()),
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct NavLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

#[derive(Debug, Clone)]
pub struct ClinicChoice {
    pub id: String,
    pub name: String,
    pub role: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Assets {
    pub css: &'static str,
    pub js: &'static str,
    pub htmx: &'static str,
}

impl Assets {
    pub fn get() -> Self {
        Self {
            css: super::assets::path("app.css"),
            js: super::assets::path("app.js"),
            htmx: super::assets::path("htmx.min.js"),
        }
    }
}

/// What the shared frame (`base.html`) shows.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub user_name: String,
    pub csrf: String,
    pub clinic_id: String,
    pub clinic_name: String,
    pub role: &'static str,
    /// The clinic's IANA zone, named wherever times are shown.
    pub zone: String,
    pub clinics: Vec<ClinicChoice>,
    pub nav: Vec<NavLink>,
    pub assets: Assets,
}

impl Chrome {
    pub fn switches(&self) -> bool {
        self.clinics.len() > 1
    }
}
