//! The registers' index (an inspector's first page), and the lists of sessions and incidents.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::chrome::{state, Chrome, ClinicPage};
use super::technician::{short, state_in_words};
use super::PageError;
use crate::auth::Role;
use crate::clinics::context::{at_in_words, due_in_words};
use crate::db;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clinics/{clinic}/registers", web::get().to(registers))
        .route("/clinics/{clinic}/sessions", web::get().to(sessions))
        .route("/clinics/{clinic}/incidents", web::get().to(incidents));
}

#[derive(Template)]
#[template(path = "registers.html", config = "src/web/askama.toml")]
struct RegistersPage {
    chrome: Chrome,
    inspector: bool,
    links: Vec<(String, &'static str, &'static str)>,
}

async fn registers(page: ClinicPage) -> Result<HttpResponse, PageError> {
    let c = page.clinic_id().to_owned();
    let links = vec![
        (format!("/clinics/{c}/dashboard"), "Compliance", "What the rules of the clinic's jurisdiction find, now or as of a date, with failures and whom they reach"),
        (format!("/clinics/{c}/sterilisers"), "Sterilisers", "Each machine and whether it is in service"),
        (format!("/clinics/{c}/cycles"), "Cycle log", "Every load, its indicators, its outcome and its packs"),
        (format!("/clinics/{c}/spore-tests"), "Spore and air-removal tests", "Biological indicators and their readings; Bowie-Dick and daily tests"),
        (format!("/clinics/{c}/lots"), "Lots and recalls", "Needle cartridges, pigments and supplies, with expiry and recalls"),
        (format!("/clinics/{c}/staff"), "Staff eligibility", "Who may work on clients, and their credentials"),
        (format!("/clinics/{c}/sessions"), "Client sessions", "Each session's checklist, packs, lots and start"),
        (format!("/clinics/{c}/incidents"), "Incidents", "Sharps injuries, exposures, reactions and their follow-ups"),
        (format!("/clinics/{c}/inspection"), "Exports and the audit trail", "Signed exports to download, and the chain's verification"),
    ];
    super::ok(&RegistersPage {
        chrome: page.chrome("Registers"),
        inspector: page.role() == Role::Inspector,
        links,
    })
}

#[derive(Template)]
#[template(path = "sessions.html", config = "src/web/askama.toml")]
struct SessionsPage {
    chrome: Chrome,
    rows: Vec<(
        String,
        String,
        String,
        String,
        String,
        (&'static str, &'static str),
    )>,
}

async fn sessions(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let (clinic, profiles) = (page.clinic_id().to_owned(), state.profiles.clone());
    let (views, _) = db::run(&state.pool, move |conn| {
        crate::sessions::usecases::list(conn, &profiles, &clinic, &Default::default(), None, 100)
    })
    .await?;
    let (tz, c, details) = (
        page.tz,
        page.clinic_id().to_owned(),
        page.access.client_details,
    );
    super::ok(&SessionsPage {
        chrome: page.chrome("Sessions"),
        rows: views
            .into_iter()
            .map(|v| {
                (
                    format!("/clinics/{c}/sessions/{}", v.id),
                    at_in_words(v.planned_at, tz),
                    match (&v.client_name, details) {
                        (Some(n), true) => n.clone(),
                        _ => format!("Client {}", short(&v.client_id)),
                    },
                    v.procedure.clone(),
                    v.technician_name.clone().unwrap_or_default(),
                    state_in_words(v.status),
                )
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "incidents.html", config = "src/web/askama.toml")]
struct IncidentsPage {
    chrome: Chrome,
    may_report: bool,
    rows: Vec<(String, String, String, String, Vec<String>, bool)>,
}

async fn incidents(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let (clinic, profiles) = (page.clinic_id().to_owned(), state.profiles.clone());
    let (views, _) = db::run(&state.pool, move |conn| {
        crate::incidents::usecases::list(conn, &profiles, &clinic, None, 100, false)
    })
    .await?;
    let (tz, c) = (page.tz, page.clinic_id().to_owned());
    super::ok(&IncidentsPage {
        chrome: page.chrome("Incidents"),
        may_report: page.role() != Role::Inspector,
        rows: views
            .into_iter()
            .map(|v| {
                (
                    format!("/clinics/{c}/incidents/{}", v.id),
                    at_in_words(v.fields.occurred_at, tz),
                    v.fields.kind.as_db().replace('_', " "),
                    v.fields.location.clone(),
                    v.required_follow_ups
                        .iter()
                        .filter(|r| {
                            serde_json::to_value(r.status)
                                .ok()
                                .and_then(|s| s.as_str().map(|s| s != "done"))
                                .unwrap_or(true)
                        })
                        .map(|r| {
                            format!(
                                "{} {}",
                                r.kind.as_db().replace('_', " "),
                                due_in_words(r.due.naive_utc(), tz)
                            )
                        })
                        .collect(),
                    v.overdue,
                )
            })
            .collect(),
    })
}
