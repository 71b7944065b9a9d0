//! The registers' index (an inspector's first page), and the lists of sessions and incidents.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::as_of::AsOf;
use super::chrome::{state, Chrome, ClinicPage};
use super::form_view::FormView;
use super::forms::{local_now, Kind, Posted};
use super::records::{refill, submit, Refused};
use super::technician::{short, state_in_words};
use super::{html, PageError};
use crate::auth::Role;
use crate::clinics::context::{at_in_words, due_in_words};
use crate::db;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clinics/{clinic}/registers", web::get().to(registers))
        .route("/clinics/{clinic}/sessions", web::get().to(sessions))
        .route("/clinics/{clinic}/sessions", web::post().to(plan_session))
        .route("/clinics/{clinic}/clients", web::post().to(add_client))
        .route("/clinics/{clinic}/incidents", web::get().to(incidents));
}

#[derive(Template)]
#[template(path = "registers.html", config = "src/web/askama.toml")]
struct RegistersPage {
    chrome: Chrome,
    as_of: AsOf,
    inspector: bool,
    links: Vec<(String, &'static str, &'static str)>,
}

/// The registers that read "as of" a chosen day keep it in their links.
const READ_AS_OF: [&str; 6] = [
    "dashboard",
    "cycles",
    "spore-tests",
    "lots",
    "staff",
    "incidents",
];

async fn registers(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    let as_of = AsOf::read(&req, &page).await?;
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
    let keep = as_of.query();
    let links = links
        .into_iter()
        .map(|(href, title, what)| {
            let reads_as_of = READ_AS_OF.iter().any(|r| href.ends_with(&format!("/{r}")));
            match reads_as_of {
                true => (format!("{href}{keep}"), title, what),
                false => (href, title, what),
            }
        })
        .collect();
    super::html(
        as_of.status(),
        &RegistersPage {
            chrome: page.chrome("Registers"),
            inspector: page.role() == Role::Inspector,
            as_of,
            links,
        },
    )
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
    forms: Vec<FormView>,
}

fn plan_form(
    page: &ClinicPage,
    clients: Vec<(String, String)>,
    technicians: Vec<(String, String)>,
) -> FormView {
    FormView::new(
        "new-session",
        "Plan a client session",
        format!("/clinics/{}/sessions", page.clinic_id()),
        "Plan it",
        &page.browser.csrf,
    )
    .select(
        "client_id",
        "Client",
        "Not listed? Add them below first",
        clients,
    )
    .select("technician_id", "Technician", "", technicians)
    .text("station", "Station", "For example \"Chair 2\"")
    .text(
        "procedure",
        "Procedure",
        "For example \"SMP session 2 of 3, crown\"",
    )
    .time("planned_at", "When", &format!("In {}", page.tz.name()))
    .with("planned_at", local_now(page.tz))
    .with("technician_id", page.browser.user.id.clone())
}

fn client_form(page: &ClinicPage) -> FormView {
    FormView::new(
        "new-client",
        "Add a client",
        format!("/clinics/{}/clients", page.clinic_id()),
        "Add the client",
        &page.browser.csrf,
    )
    .text("name", "Name", "")
    .text(
        "contact",
        "Phone or email",
        "To reach them if a recall or look-back concerns them",
    )
    .date("date_of_birth", "Date of birth", "")
}

async fn render_sessions(
    req: HttpRequest,
    page: ClinicPage,
    refused: Option<Refused>,
) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let (clinic, profiles) = (page.clinic_id().to_owned(), state.profiles.clone());
    let writes = page.role() != Role::Inspector;
    let ((views, _), clients, staff) = db::run(&state.pool, move |conn| {
        let views = crate::sessions::usecases::list(
            conn,
            &profiles,
            &clinic,
            &Default::default(),
            None,
            100,
        )?;
        let clients = if writes {
            crate::clients::usecases::list(conn, &clinic, None, 500)?.0
        } else {
            Vec::new()
        };
        let staff: Vec<(String, String)> = crate::auth::store::members_of(conn, &clinic)?
            .into_iter()
            .filter(|(m, _)| m.active && m.role() != Role::Inspector && m.works_on_clients)
            .map(|(_, u)| (u.id, u.display_name))
            .collect();
        Ok((views, clients, staff))
    })
    .await?;
    let (tz, c, details) = (
        page.tz,
        page.clinic_id().to_owned(),
        page.access.client_details,
    );
    let forms = if writes {
        let clients = clients
            .into_iter()
            .map(|cl| {
                (
                    cl.id.clone(),
                    format!(
                        "{} (born {})",
                        cl.fields.name,
                        cl.fields.date_of_birth.format("%-d %B %Y")
                    ),
                )
            })
            .collect();
        vec![
            refill(plan_form(&page, clients, staff), refused.as_ref()),
            refill(client_form(&page), refused.as_ref()),
        ]
    } else {
        Vec::new()
    };
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html(
        status,
        &SessionsPage {
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
            forms,
        },
    )
}

async fn sessions(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    render_sessions(req, page, None).await
}

async fn plan_session(req: HttpRequest, posted: Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_staff()?;
    let back = format!("/clinics/{}/sessions", posted.page.clinic_id());
    submit(
        req,
        posted,
        "new-session",
        &[
            ("client_id", Kind::Text),
            ("technician_id", Kind::Text),
            ("station", Kind::Text),
            ("procedure", Kind::Text),
            ("planned_at", Kind::LocalTime),
        ],
        back,
        |conn, page, _, input| {
            crate::sessions::usecases::create(
                conn,
                &page.access.audit_context(),
                page.clinic_id(),
                input,
            )
            .map(drop)
        },
        render_sessions,
    )
    .await
}

async fn add_client(req: HttpRequest, posted: Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_staff()?;
    let back = format!("/clinics/{}/sessions#new-session", posted.page.clinic_id());
    submit(
        req,
        posted,
        "new-client",
        &[
            ("name", Kind::Text),
            ("contact", Kind::Text),
            ("date_of_birth", Kind::Text),
        ],
        back,
        |conn, page, _, input| {
            crate::clients::usecases::create(
                conn,
                &page.access.audit_context(),
                page.clinic_id(),
                input,
            )
            .map(drop)
        },
        render_sessions,
    )
    .await
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
    as_of: AsOf,
    may_report: bool,
    rows: Vec<IncidentLine>,
}

async fn incidents(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let as_of = AsOf::read(&req, &page).await?;
    let at = as_of.standing();
    let (clinic, profiles) = (page.clinic_id().to_owned(), state.profiles.clone());
    let (views, _) = db::run(&state.pool, move |conn| {
        crate::incidents::usecases::list(conn, &profiles, &clinic, None, 100, false, at)
    })
    .await?;
    let (tz, c) = (page.tz, page.clinic_id().to_owned());
    super::html(
        as_of.status(),
        &IncidentsPage {
            chrome: page.chrome("Incidents"),
            may_report: page.role() != Role::Inspector && !as_of.is_past(),
            as_of,
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
        },
    )
}
