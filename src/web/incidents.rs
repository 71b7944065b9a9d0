//! Reporting an incident from the station, written for someone who may have just been hurt:
//! what to do now first, then the form; and the incident as recorded, with what is due.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::chrome::{state, Chrome, ClinicPage};
use super::forms::{refusal, Errors, Posted};
use super::{html, see_other, PageError};
use crate::clinics::context::{at_in_words, due_in_words, local_to_utc};
use crate::db;
use crate::error::AppError;
use crate::incidents::model::{IncidentInput, IncidentKind, Person, SharpsLog};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/clinics/{clinic}/incidents/new",
        web::get().to(new_incident),
    )
    .route("/clinics/{clinic}/incidents", web::post().to(report))
    .route("/clinics/{clinic}/incidents/{id}", web::get().to(incident))
    .route(
        "/clinics/{clinic}/incidents/{id}/follow-ups",
        web::post().to(add_follow_up),
    )
    .route(
        "/clinics/{clinic}/incidents/{id}/close",
        web::post().to(close),
    );
}

const KINDS: &[(&str, &str)] = &[
    ("sharps_injury", "A needle or sharp cut or pricked someone"),
    (
        "blood_body_fluid_exposure",
        "Blood or body fluid splashed into eyes, mouth or broken skin",
    ),
    ("adverse_reaction", "A client had a reaction"),
    (
        "suspected_infection",
        "A client reports a possible infection",
    ),
    ("equipment_failure", "Equipment failed"),
    ("spill", "A spill of blood, fluid or chemicals"),
];

#[derive(Template)]
#[template(path = "incident_new.html", config = "src/web/askama.toml")]
struct NewIncidentPage {
    chrome: Chrome,
    kinds: Vec<(&'static str, &'static str)>,
    errors: Errors,
    values: HashMap<String, String>,
    session_id: String,
}

impl NewIncidentPage {
    fn value(&self, name: &str) -> String {
        self.values.get(name).cloned().unwrap_or_default()
    }

    fn error(&self, name: &str) -> Option<String> {
        self.errors.of(name).map(str::to_owned)
    }

    fn checked(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| v == "yes")
    }
}

const FIELDS: &[&str] = &[
    "kind",
    "occurred_at",
    "location",
    "description",
    "immediate_actions",
    "sharps",
    "sharps.device_type",
    "sharps.device_brand",
    "sharps.work_area",
    "sharps.how_it_happened",
    "session_id",
];

async fn new_incident(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    if page.role() == crate::auth::Role::Inspector {
        return Err(AppError::Forbidden("inspectors have read-only access").into());
    }
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let session_id = query.get("session").cloned().unwrap_or_default();
    let mut values = HashMap::new();
    values.insert("kind".to_owned(), "sharps_injury".to_owned());
    values.insert(
        "occurred_at".to_owned(),
        crate::clock::now()
            .with_timezone(&page.tz)
            .format("%Y-%m-%dT%H:%M")
            .to_string(),
    );
    values.insert("injured_is_me".to_owned(), "yes".to_owned());
    if !session_id.is_empty() {
        let state = state(&req)?;
        let (clinic, sid) = (page.clinic_id().to_owned(), session_id.clone());
        let station = db::run(&state.pool, move |conn| {
            Ok(crate::sessions::store::find(conn, &clinic, &sid)?.station)
        })
        .await?;
        values.insert("location".to_owned(), station);
        values.insert("client_is_source".to_owned(), "yes".to_owned());
    }
    super::ok(&NewIncidentPage {
        chrome: page.chrome("Report an incident"),
        kinds: KINDS.to_vec(),
        errors: Errors::default(),
        values,
        session_id,
    })
}

async fn report(req: HttpRequest, posted: Posted) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let page = &posted.page;
    let f = &posted.fields;
    let mut problems = f.text_problems();
    let kind = IncidentKind::from_db(f.get("kind")).ok();
    if kind.is_none() {
        problems.push(crate::error::FieldError::new(
            "kind",
            "choose what happened",
        ));
    }
    let occurred_at =
        match chrono::NaiveDateTime::parse_from_str(f.get("occurred_at"), "%Y-%m-%dT%H:%M") {
            Ok(local) => match local_to_utc(local, page.tz) {
                Ok(t) => Some(t),
                Err(why) => {
                    problems.push(crate::error::FieldError::new("occurred_at", why));
                    None
                }
            },
            Err(_) => {
                problems.push(crate::error::FieldError::new(
                    "occurred_at",
                    "give the date and time it happened",
                ));
                None
            }
        };
    let session_id = f.opt("session_id");
    let mut people = Vec::new();
    if f.get("injured_is_me") == "yes" {
        people.push(Person {
            user_id: Some(page.browser.user.id.clone()),
            client_id: None,
            name: None,
            role: "injured".into(),
        });
    } else if let Some(name) = f.opt("injured_name") {
        people.push(Person {
            user_id: None,
            client_id: None,
            name: Some(name),
            role: "injured".into(),
        });
    }
    let outcome = match (kind, occurred_at) {
        (Some(kind), Some(occurred_at)) if problems.is_empty() => {
            let sharps = (kind == IncidentKind::SharpsInjury).then(|| SharpsLog {
                device_type: f.get("device_type").to_owned(),
                device_brand: f.opt("device_brand"),
                work_area: f.get("work_area").to_owned(),
                how_it_happened: f.get("how_it_happened").to_owned(),
            });
            let (ctx, clinic, profiles) = (
                page.access.audit_context(),
                page.clinic_id().to_owned(),
                state.profiles.clone(),
            );
            let client_is_source = f.get("client_is_source") == "yes";
            let input_base = (
                kind,
                occurred_at,
                f.get("location").to_owned(),
                f.get("description").to_owned(),
                f.get("immediate_actions").to_owned(),
            );
            db::run(&state.pool, move |conn| {
                let mut people = people;
                if let (true, Some(sid)) = (client_is_source, &session_id) {
                    let s = crate::sessions::store::find(conn, &clinic, sid)?;
                    people.push(Person {
                        user_id: None,
                        client_id: Some(s.client_id),
                        name: None,
                        role: "source".into(),
                    });
                }
                let (kind, occurred_at, location, description, immediate_actions) = input_base;
                crate::incidents::usecases::report(
                    conn,
                    &profiles,
                    &ctx,
                    &clinic,
                    IncidentInput {
                        kind,
                        occurred_at,
                        location,
                        session_id,
                        people,
                        description,
                        immediate_actions,
                        sharps,
                    },
                )
            })
            .await
        }
        _ => Err(AppError::Validation(problems)),
    };
    match outcome {
        Ok(view) => Ok(see_other(&format!(
            "/clinics/{}/incidents/{}",
            page.clinic_id(),
            view.id
        ))),
        Err(e) => {
            // The sharps fields are named without their prefix on the form.
            let e = match e {
                AppError::Validation(v) => AppError::Validation(
                    v.into_iter()
                        .map(|mut fe| {
                            if let Some(rest) = fe.field.strip_prefix("sharps.") {
                                fe.field = rest.to_owned();
                            }
                            fe
                        })
                        .collect(),
                ),
                other => other,
            };
            let mut fields: Vec<&str> = FIELDS.to_vec();
            fields.extend([
                "device_type",
                "device_brand",
                "work_area",
                "how_it_happened",
            ]);
            let errors = refusal(e, &fields)?;
            html(
                StatusCode::UNPROCESSABLE_ENTITY,
                &NewIncidentPage {
                    chrome: page.chrome("Report an incident"),
                    kinds: KINDS.to_vec(),
                    errors,
                    values: posted.fields.values(),
                    session_id: posted.fields.get("session_id").to_owned(),
                },
            )
        }
    }
}

#[derive(Template)]
#[template(path = "incident.html", config = "src/web/askama.toml")]
struct IncidentPage {
    chrome: Chrome,
    id: String,
    may_write: bool,
    forms: Vec<super::form_view::FormView>,
    kind: String,
    occurred: String,
    location: String,
    description: String,
    immediate_actions: String,
    sharps: Option<SharpsLog>,
    due: Vec<(String, String, String)>,
    done: Vec<(String, String, String)>,
    closed: Option<String>,
}

fn kind_words(kind: IncidentKind) -> String {
    let key = kind.as_db();
    KINDS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or_else(|| key.replace('_', " "), |(_, words)| (*words).to_owned())
}

fn follow_up_words(kind: crate::incidents::model::FollowUpKind) -> String {
    use crate::incidents::model::FollowUpKind as K;
    match kind {
        K::EvaluationOffered => "Confidential medical evaluation offered to the person exposed",
        K::EvaluationCompleted => "Medical evaluation completed",
        K::WrittenOpinion => "The clinician's written opinion given to the person exposed",
        K::AuthorityReport => "Written report to the health authority",
        K::Other => "Other follow-up",
    }
    .to_owned()
}

async fn incident(
    req: HttpRequest,
    page: ClinicPage,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    render_incident(req, page, id, None).await
}

fn follow_up_form(page: &ClinicPage, id: &str) -> super::form_view::FormView {
    use crate::incidents::model::FollowUpKind as K;
    super::form_view::FormView::new(
        "new-follow-up",
        "Record a follow-up",
        format!("/clinics/{}/incidents/{id}/follow-ups", page.clinic_id()),
        "Record it",
        &page.browser.csrf,
    )
    .select(
        "kind",
        "What was done",
        "",
        [
            K::EvaluationOffered,
            K::EvaluationCompleted,
            K::WrittenOpinion,
            K::AuthorityReport,
            K::Other,
        ]
        .iter()
        .map(|k| (k.as_db().to_owned(), follow_up_words(*k)))
        .collect(),
    )
    .textarea(
        "note",
        "Note",
        "For example who saw them and what was offered",
    )
    .time("done_at", "When", &format!("In {}", page.tz.name()))
    .with("done_at", super::forms::local_now(page.tz))
}

fn close_form(page: &ClinicPage, id: &str) -> super::form_view::FormView {
    super::form_view::FormView::new(
        "close-incident",
        "Close the incident",
        format!("/clinics/{}/incidents/{id}/close", page.clinic_id()),
        "Close it",
        &page.browser.csrf,
    )
    .textarea(
        "summary",
        "Summary",
        "What was done, and what changes so it does not happen again",
    )
}

async fn render_incident(
    req: HttpRequest,
    page: ClinicPage,
    id: String,
    refused: Option<super::records::Refused>,
) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let (clinic, profiles) = (page.clinic_id().to_owned(), state.profiles.clone());
    let view = db::run(&state.pool, move |conn| {
        crate::incidents::usecases::get(conn, &profiles, &clinic, &id)
    })
    .await?;
    let tz = page.tz;
    let may_write = page.role() != crate::auth::Role::Inspector;
    let mut forms = Vec::new();
    if may_write && view.closed_at.is_none() {
        forms.push(super::records::refill(
            follow_up_form(&page, &view.id),
            refused.as_ref(),
        ));
        if page.role() == crate::auth::Role::Owner {
            forms.push(super::records::refill(
                close_form(&page, &view.id),
                refused.as_ref(),
            ));
        }
    }
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    html(
        status,
        &IncidentPage {
            chrome: page.chrome("Incidents"),
            id: view.id.clone(),
            may_write,
            forms,
            kind: kind_words(view.fields.kind),
            occurred: at_in_words(view.fields.occurred_at, tz),
            location: view.fields.location.clone(),
            description: view.fields.description.clone(),
            immediate_actions: view.fields.immediate_actions.clone(),
            sharps: view.fields.sharps.clone(),
            due: view
                .required_follow_ups
                .iter()
                .map(|r| {
                    (
                        follow_up_words(r.kind),
                        due_in_words(r.due.naive_utc(), tz),
                        serde_json::to_value(r.status)
                            .ok()
                            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                            .unwrap_or_default(),
                    )
                })
                .collect(),
            done: view
                .follow_ups
                .iter()
                .map(|f| {
                    (
                        follow_up_words(f.kind),
                        at_in_words(f.done_at, tz),
                        f.note.clone(),
                    )
                })
                .collect(),
            closed: view.closed_at.map(|c| {
                format!(
                    "{}: {}",
                    at_in_words(c, tz),
                    view.closure_summary.unwrap_or_default()
                )
            }),
        },
    )
}

async fn add_follow_up(
    req: HttpRequest,
    posted: Posted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    posted.page.access.require_staff()?;
    let (_, id) = path.into_inner();
    let back = format!("/clinics/{}/incidents/{id}", posted.page.clinic_id());
    let again = id.clone();
    super::records::submit(
        req,
        posted,
        "new-follow-up",
        &[
            ("kind", super::forms::Kind::Text),
            ("note", super::forms::Kind::Text),
            ("done_at", super::forms::Kind::LocalTime),
        ],
        back,
        move |conn, page, profiles, input| {
            crate::incidents::usecases::add_follow_up(
                conn,
                profiles,
                &page.access.audit_context(),
                page.clinic_id(),
                &id,
                input,
            )
            .map(drop)
        },
        move |req, page, refused| render_incident(req, page, again, refused),
    )
    .await
}

async fn close(
    req: HttpRequest,
    posted: Posted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    posted.page.access.require_owner()?;
    let (_, id) = path.into_inner();
    let back = format!("/clinics/{}/incidents/{id}", posted.page.clinic_id());
    let again = id.clone();
    super::records::submit(
        req,
        posted,
        "close-incident",
        &[("summary", super::forms::Kind::Text)],
        back,
        move |conn, page, profiles, input| {
            crate::incidents::usecases::close(
                conn,
                profiles,
                &page.access.audit_context(),
                page.clinic_id(),
                &id,
                input,
            )
            .map(drop)
        },
        move |req, page, refused| render_incident(req, page, again, refused),
    )
    .await
}
