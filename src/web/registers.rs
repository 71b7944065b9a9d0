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

struct SessionLine {
    href: String,
    planned: String,
    client: String,
    procedure: String,
    technician: String,
    state: (&'static str, &'static str),
}

#[derive(Template)]
#[template(path = "sessions.html", config = "src/web/askama.toml")]
struct SessionsPage {
    chrome: Chrome,
    rows: Vec<SessionLine>,
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
            .map(|v| SessionLine {
                href: format!("/clinics/{c}/sessions/{}", v.id),
                planned: at_in_words(v.planned_at, tz),
                client: match (&v.client_name, details) {
                    (Some(n), true) => n.clone(),
                    _ => format!("Client {}", short(&v.client_id)),
                },
                procedure: v.procedure.clone(),
                technician: v.technician_name.clone().unwrap_or_default(),
                state: state_in_words(v.status),
            })
            .collect(),
    })
}

struct IncidentLine {
    href: String,
    at: String,
    kind: String,
    location: String,
    to_do: Vec<String>,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "incidents.html", config = "src/web/askama.toml")]
struct IncidentsPage {
    chrome: Chrome,
    may_report: bool,
    rows: Vec<IncidentLine>,
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
            .map(|v| IncidentLine {
                href: format!("/clinics/{c}/incidents/{}", v.id),
                at: at_in_words(v.fields.occurred_at, tz),
                kind: v.fields.kind.as_db().replace('_', " "),
                location: v.fields.location.clone(),
                to_do: v
                    .required_follow_ups
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
                overdue: v.overdue,
            })
            .collect(),
    })
}
