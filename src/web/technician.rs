//! At the station: today's sessions and the technician's eligibility, a session's checklist,
//! packs and lots with every reason it may not start yet, and reporting an incident.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::Value;

use super::chrome::{state, Chrome, ClinicPage};
use super::forms::{refusal, Errors, Posted};
use super::{html, see_other, PageError};
use crate::auth::Role;
use crate::checklists::model::AnswerKind;
use crate::clinics::context::at_in_words;
use crate::db;
use crate::error::{AppError, FieldError};
use crate::sessions::model::{
    Answer, AnswersInput, CompleteInput, LotUse, PackRemoval, PackUse, SessionState, StartInput,
};
use crate::sessions::usecases::{self as sessions, Readiness, TraceView};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clinics/{clinic}", web::get().to(clinic_home))
        .route("/clinics/{clinic}/today", web::get().to(today))
        .route("/clinics/{clinic}/sessions/{id}", web::get().to(session))
        .route(
            "/clinics/{clinic}/sessions/{id}/answers",
            web::post().to(answer),
        )
        .route(
            "/clinics/{clinic}/sessions/{id}/packs",
            web::post().to(add_pack),
        )
        .route(
            "/clinics/{clinic}/sessions/{id}/pack-removals",
            web::post().to(set_pack_aside),
        )
        .route(
            "/clinics/{clinic}/sessions/{id}/lots",
            web::post().to(add_lot),
        )
        .route(
            "/clinics/{clinic}/sessions/{id}/start",
            web::post().to(start),
        )
        .route(
            "/clinics/{clinic}/sessions/{id}/complete",
            web::post().to(complete),
        );
}

async fn clinic_home(page: ClinicPage) -> HttpResponse {
    see_other(&super::home_of(page.clinic_id(), page.role()))
}

pub fn state_in_words(state: SessionState) -> (&'static str, &'static str) {
    match state {
        SessionState::Planned => ("Planned", "plain"),
        SessionState::InProgress => ("In progress", "warn"),
        SessionState::Completed => ("Completed", "ok"),
    }
}

struct SessionRow {
    href: String,
    time: String,
    client: String,
    procedure: String,
    station: String,
    technician: String,
    mine: bool,
    state: &'static str,
    state_class: &'static str,
}

struct Eligibility {
    may_work: bool,
    reasons: Vec<String>,
    warnings: Vec<String>,
}

#[derive(Template)]
#[template(path = "today.html", config = "src/web/askama.toml")]
struct TodayPage {
    chrome: Chrome,
    day: String,
    sessions: Vec<SessionRow>,
    eligibility: Option<Eligibility>,
}

fn client_label(view: &TraceView, details: bool) -> String {
    match (&view.client_name, details) {
        (Some(name), true) => name.clone(),
        _ => format!("Client {}", short(&view.client_id)),
    }
}

/// The last eight characters of an id: enough to tell records apart on a page.
pub fn short(id: &str) -> &str {
    let cut = id.len().saturating_sub(8);
    id.get(cut..).unwrap_or(id)
}

async fn today(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let (clinic, profiles, me, role) = (
        page.clinic_id().to_owned(),
        state.profiles.clone(),
        page.browser.user.id.clone(),
        page.role(),
    );
    let tz = page.tz;
    let (day, views, eligibility) = db::run(&state.pool, move |conn| {
        let day = crate::clinics::context::today(conn, &clinic)?;
        let (views, _) = sessions::list(
            conn,
            &profiles,
            &clinic,
            &sessions::SessionFilter {
                date: Some(day),
                ..Default::default()
            },
            None,
            200,
        )?;
        // Whether the viewer may work on clients today: technicians always, owners who do.
        let works = crate::auth::store::find_member(conn, &clinic, &me)?
            .is_some_and(|(m, _)| m.role() != Role::Inspector && m.works_on_clients);
        let eligibility = if works {
            Some(crate::credentials::usecases::member_eligibility(
                conn,
                &profiles,
                role,
                &me,
                &clinic,
                &me,
                crate::clock::now(),
            )?)
        } else {
            None
        };
        Ok((day, views, eligibility))
    })
    .await?;
    let details = page.access.client_details;
    let me = &page.browser.user.id;
    let mut sessions: Vec<SessionRow> = views
        .iter()
        .map(|v| {
            let (state, state_class) = state_in_words(v.status);
            SessionRow {
                href: format!("/clinics/{}/sessions/{}", page.clinic_id(), v.id),
                time: v.planned_at.with_timezone(&tz).format("%H:%M").to_string(),
                client: client_label(v, details),
                procedure: v.procedure.clone(),
                station: v.station.clone(),
                technician: v.technician_name.clone().unwrap_or_default(),
                mine: &v.technician_id == me,
                state,
                state_class,
            }
        })
        .collect();
    sessions.sort_by(|a, b| a.time.cmp(&b.time));
    super::ok(&TodayPage {
        chrome: page.chrome("Today"),
        day: format!("{} ({})", day.format("%A %-d %B %Y"), tz.name()),
        sessions,
        eligibility: eligibility.map(|e| Eligibility {
            may_work: e.eligibility.eligible && e.blocked_by.is_none(),
            reasons: e
                .blocked_by
                .into_iter()
                .chain(e.eligibility.reasons.into_iter().map(|r| r.message))
                .map(|m| super::capitalise(&m))
                .collect(),
            warnings: e
                .eligibility
                .warnings
                .iter()
                .map(|m| super::capitalise(m))
                .collect(),
        }),
    })
}

struct ItemLine {
    key: String,
    text: String,
    kind: &'static str,
    required: bool,
    done: bool,
    answered: bool,
    /// The answer as shown (and as the field is filled again).
    value: String,
    unit: String,
    min: String,
    error: Option<String>,
}

struct PackLine {
    code: String,
    from: String,
    state: String,
    state_class: &'static str,
    reason: String,
}

struct SetAsideLine {
    code: String,
    at: String,
    reason: String,
}

struct LotLine {
    label: String,
    expires: String,
    status: String,
    status_class: &'static str,
}

#[derive(Template)]
#[template(path = "session.html", config = "src/web/askama.toml")]
struct SessionPage {
    chrome: Chrome,
    base: String,
    session_id: String,
    title: String,
    client: String,
    procedure: String,
    station: String,
    planned: String,
    technician: String,
    state: &'static str,
    state_class: &'static str,
    planned_state: bool,
    in_progress: bool,
    may_write: bool,
    is_owner: bool,
    checklist: Vec<ItemLine>,
    packs: Vec<PackLine>,
    set_aside: Vec<SetAsideLine>,
    lots: Vec<LotLine>,
    readiness: Option<Readiness>,
    started: Option<String>,
    overridden: Vec<String>,
    override_reason: Option<String>,
    completed: Option<String>,
    notes: Option<String>,
    errors: Errors,
    values: HashMap<String, String>,
    focus: String,
    /// An unknown lot scanned: what the box says, for the owner to record it.
    new_lot: Option<NewLotOffer>,
}

struct NewLotOffer {
    text: String,
    href: Option<String>,
}

impl SessionPage {
    fn value(&self, name: &str) -> String {
        self.values.get(name).cloned().unwrap_or_default()
    }

    fn error(&self, name: &str) -> Option<String> {
        self.errors.of(name).map(str::to_owned)
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        // 60, not 60.0: as the technician typed it.
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) =>
        {
            format!("{}", n.as_f64().unwrap_or_default() as i64)
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn badge_of(state: &str) -> &'static str {
    match state {
        "released" | "usable" => "ok",
        "pending" => "warn",
        _ => "bad",
    }
}

/// What a page shows again after a refused form: the errors and what was typed.
#[derive(Default)]
struct Feedback {
    errors: Errors,
    values: HashMap<String, String>,
    focus: String,
    new_lot: Option<NewLotOffer>,
}

async fn render_session(
    req: &HttpRequest,
    page: &ClinicPage,
    id: String,
    feedback: Feedback,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let state = state(req)?;
    let (clinic, profiles, ctx) = (
        page.clinic_id().to_owned(),
        state.profiles.clone(),
        page.access.audit_context(),
    );
    let (view, readiness, names) = db::run(&state.pool, move |conn| {
        let view = sessions::trace(conn, &clinic, &id)?;
        let readiness = match view.status {
            SessionState::Planned => Some(sessions::readiness(
                conn, &profiles, &ctx, &clinic, &view.id,
            )?),
            _ => None,
        };
        let names: HashMap<String, String> = crate::auth::store::members_of(conn, &clinic)?
            .into_iter()
            .map(|(_, u)| (u.id, u.display_name))
            .collect();
        Ok((view, readiness, names))
    })
    .await?;
    let tz = page.tz;
    let name_of = |id: &Option<String>| {
        id.as_ref()
            .and_then(|i| names.get(i).cloned())
            .unwrap_or_else(|| "someone".to_owned())
    };
    let (state_words, state_class) = state_in_words(view.status);
    let checklist = view
        .checklist
        .iter()
        .map(|line| {
            let value = line.answer.as_ref().map(text_of).unwrap_or_default();
            let lot_label = (line.item.answer == AnswerKind::Lot && !value.is_empty())
                .then(|| {
                    view.lots
                        .iter()
                        .find(|l| l.get("id").and_then(Value::as_str) == Some(value.as_str()))
                        .map(lot_label)
                })
                .flatten();
            ItemLine {
                key: line.item.key.clone(),
                text: line.item.text.clone(),
                kind: match line.item.answer {
                    AnswerKind::Tick => "tick",
                    AnswerKind::Number => "number",
                    AnswerKind::Lot => "lot",
                    AnswerKind::Text => "text",
                },
                required: line.item.required,
                done: line.done,
                answered: line.answer.is_some(),
                value: lot_label.unwrap_or(value),
                unit: line.item.unit.clone().unwrap_or_default(),
                min: line.item.min.map(|m| m.to_string()).unwrap_or_default(),
                error: feedback
                    .errors
                    .of(&format!("item.{}", line.item.key))
                    .map(str::to_owned),
            }
        })
        .collect();
    let packs = view
        .packs
        .iter()
        .map(|p| {
            let state = p
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            PackLine {
                code: p.get("code").map(text_of).unwrap_or_default(),
                from: format!(
                    "load {}",
                    p.get("cycle_number").map(text_of).unwrap_or_default()
                ),
                state_class: badge_of(&state),
                state,
                reason: p.get("state_reason").map(text_of).unwrap_or_default(),
            }
        })
        .collect();
    let lots = view
        .lots
        .iter()
        .map(|l| {
            let status = l.get("status").map(text_of).unwrap_or_default();
            LotLine {
                label: lot_label(l),
                expires: l.get("expires_on").map(text_of).unwrap_or_default(),
                status_class: badge_of(&status),
                status,
            }
        })
        .collect();
    let title = format!(
        "{} for {}",
        view.procedure,
        client_label(&view, page.access.client_details)
    );
    let body = SessionPage {
        chrome: page.chrome("Today"),
        base: format!("/clinics/{}/sessions/{}", page.clinic_id(), view.id),
        session_id: view.id.clone(),
        client: client_label(&view, page.access.client_details),
        procedure: view.procedure.clone(),
        station: view.station.clone(),
        planned: at_in_words(view.planned_at, tz),
        technician: view.technician_name.clone().unwrap_or_default(),
        state: state_words,
        state_class,
        planned_state: view.status == SessionState::Planned,
        in_progress: view.status == SessionState::InProgress,
        may_write: page.role() != Role::Inspector,
        is_owner: page.role() == Role::Owner,
        checklist,
        packs,
        set_aside: view
            .removed_packs
            .iter()
            .map(|r| SetAsideLine {
                code: r.code.clone(),
                at: format!(
                    "{} by {}",
                    at_in_words(r.set_aside_at, tz),
                    name_of(&r.set_aside_by)
                ),
                reason: r.reason.clone(),
            })
            .collect(),
        lots,
        readiness,
        started: view.start.as_ref().map(|s| {
            format!(
                "{} by {}",
                at_in_words(s.started_at, tz),
                name_of(&s.started_by)
            )
        }),
        overridden: view
            .start
            .as_ref()
            .map(|s| {
                s.overridden_refusals
                    .iter()
                    .map(|e| super::capitalise(&e.reason))
                    .collect()
            })
            .unwrap_or_default(),
        override_reason: view.start.as_ref().and_then(|s| s.override_reason.clone()),
        completed: view.completion.as_ref().map(|c| {
            format!(
                "{} by {}",
                at_in_words(c.completed_at, tz),
                name_of(&c.completed_by)
            )
        }),
        notes: view.completion.as_ref().and_then(|c| c.notes.clone()),
        title,
        errors: feedback.errors,
        values: feedback.values,
        focus: feedback.focus,
        new_lot: feedback.new_lot,
    };
    html(status, &body)
}

fn lot_label(l: &Value) -> String {
    format!(
        "{} {}, lot {}",
        l.get("manufacturer").map(text_of).unwrap_or_default(),
        l.get("product_name").map(text_of).unwrap_or_default(),
        l.get("lot_number").map(text_of).unwrap_or_default()
    )
}

async fn session(
    req: HttpRequest,
    page: ClinicPage,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let focus = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("focus").cloned())
        .unwrap_or_default();
    render_session(
        &req,
        &page,
        id,
        Feedback {
            focus,
            ..Default::default()
        },
        StatusCode::OK,
    )
    .await
}

/// Runs a session's use case for a form; a refusal shows the session again with the reasons
/// beside the fields (`fields` are the names the form shows), anything else is the error page.
async fn session_action<F>(
    req: HttpRequest,
    posted: Posted,
    id: String,
    fields: &[&str],
    focus: &str,
    work: F,
) -> Result<HttpResponse, PageError>
where
    F: FnOnce(
            &mut crate::db::DbConn,
            &crate::audit::AuditContext,
            &str,
        ) -> Result<TraceView, AppError>
        + Send
        + 'static,
{
    let state = state(&req)?;
    let page = posted.page;
    let (ctx, clinic, sid) = (
        page.access.audit_context(),
        page.clinic_id().to_owned(),
        id.clone(),
    );
    let outcome = db::run(&state.pool, move |conn| work(conn, &ctx, &clinic)).await;
    match outcome {
        Ok(_) => {
            let mut location = format!("/clinics/{}/sessions/{sid}", page.clinic_id());
            if !focus.is_empty() {
                location.push_str("?focus=");
                location.push_str(focus);
            }
            Ok(see_other(&location))
        }
        Err(e) => {
            let new_lot = match &e {
                // A lot the clinic has not recorded (the lot form's field is `code`).
                AppError::NotFoundField(_) if focus == "lot" => {
                    Some(new_lot_offer(&page, posted.fields.get("code")))
                }
                _ => None,
            };
            let errors = refusal(e, fields)?;
            render_session(
                &req,
                &page,
                id,
                Feedback {
                    errors,
                    values: posted.fields.values(),
                    focus: focus.to_owned(),
                    new_lot,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// A scanned box whose lot is not recorded: what the code says, and for an owner the form to
/// record it with those values filled in.
fn new_lot_offer(page: &ClinicPage, text: &str) -> NewLotOffer {
    let today = crate::clock::now().with_timezone(&page.tz).date_naive();
    let parsed = crate::lots::gs1::parse(text, today).ok();
    let words = match &parsed {
        Some(scan) => {
            let mut parts = Vec::new();
            if let Some(g) = &scan.gtin {
                parts.push(format!("product GTIN {g}"));
            }
            if let Some(l) = &scan.lot {
                parts.push(format!("lot {l}"));
            }
            if let Some(e) = &scan.expiry {
                parts.push(format!("use by {}", e.format("%-d %B %Y")));
            }
            format!("The box's code reads: {}.", parts.join(", "))
        }
        None => format!("No recorded lot has the number {text}."),
    };
    let href = (page.role() == Role::Owner).then(|| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("barcode", text);
        format!("/clinics/{}/lots/new?{}", page.clinic_id(), q.finish())
    });
    NewLotOffer { text: words, href }
}

type SessionPath = web::Path<(String, String)>;

async fn answer(
    req: HttpRequest,
    posted: Posted,
    path: SessionPath,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let key = posted.fields.get("item_key").to_owned();
    let raw = posted.fields.get("value").to_owned();
    let field = format!("item.{key}");
    let sid = id.clone();
    let fields = [field.as_str()];
    session_action(req, posted, id, &fields, "", move |conn, ctx, clinic| {
        // The item's kind says how to read the field: a tick's true/false, a number, text.
        let s = crate::sessions::store::find(conn, clinic, &sid)?;
        let items = crate::sessions::store::template_items(conn, &s)?;
        let item = items
            .iter()
            .find(|i| i.key == key)
            .ok_or_else(|| AppError::invalid(format!("item.{key}"), "is not on this checklist"))?;
        let value = match item.answer {
            AnswerKind::Tick => Value::Bool(raw == "true"),
            AnswerKind::Number => match raw.replace(',', ".").parse::<f64>() {
                Ok(n) if n.is_finite() => serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                _ => {
                    return Err(AppError::invalid(
                        format!("item.{key}"),
                        match &item.unit {
                            Some(unit) => format!("enter a number of {unit}"),
                            None => "enter a number".to_owned(),
                        },
                    ))
                }
            },
            AnswerKind::Lot | AnswerKind::Text => Value::String(raw.clone()),
        };
        sessions::answer(conn, ctx, clinic, &sid, one_answer(&key, value))
            .map_err(|e| rename_fields(e, "answers[0].value", &format!("item.{key}")))
    })
    .await
}

fn one_answer(key: &str, value: Value) -> AnswersInput {
    AnswersInput {
        answers: vec![Answer {
            item_key: key.to_owned(),
            value,
            answered_at: None,
        }],
    }
}

/// The use case names the JSON field; the page names its own.
fn rename_fields(e: AppError, from: &str, to: &str) -> AppError {
    let rename = |mut f: FieldError| {
        if f.field == from {
            f.field = to.to_owned();
        }
        f
    };
    match e {
        AppError::Validation(v) => AppError::Validation(v.into_iter().map(rename).collect()),
        AppError::NotFoundField(f) => AppError::NotFoundField(rename(f)),
        other => other,
    }
}

async fn add_pack(
    req: HttpRequest,
    posted: Posted,
    path: SessionPath,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let code = posted.fields.get("code").to_owned();
    let profiles = state(&req)?.profiles.clone();
    let sid = id.clone();
    session_action(
        req,
        posted,
        id,
        &["code"],
        "pack",
        move |conn, ctx, clinic| {
            if code.is_empty() {
                return Err(AppError::invalid(
                    "code",
                    "scan or type the code on the pack's label",
                ));
            }
            sessions::add_pack(conn, &profiles, ctx, clinic, &sid, PackUse { code })
        },
    )
    .await
}

async fn set_pack_aside(
    req: HttpRequest,
    posted: Posted,
    path: SessionPath,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let input = PackRemoval {
        code: posted.fields.get("code").to_owned(),
        reason: posted.fields.get("reason").to_owned(),
    };
    let sid = id.clone();
    session_action(
        req,
        posted,
        id,
        &["reason"],
        "pack",
        move |conn, ctx, clinic| sessions::remove_pack(conn, ctx, clinic, &sid, input),
    )
    .await
}

async fn add_lot(
    req: HttpRequest,
    posted: Posted,
    path: SessionPath,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let text = posted.fields.get("code").to_owned();
    let sid = id.clone();
    session_action(
        req,
        posted,
        id,
        &["code", "barcode", "lot_number", "lot_id"],
        "lot",
        move |conn, ctx, clinic| {
            if text.is_empty() {
                return Err(AppError::invalid(
                    "code",
                    "scan the code on the box, or type the lot number printed on it",
                ));
            }
            let r = crate::lots::usecases::reference_of_text(&text);
            let input = LotUse {
                lot_id: r.lot_id,
                lot_number: r.lot_number,
                manufacturer: r.manufacturer,
                gtin: r.gtin,
                barcode: r.barcode,
            };
            sessions::add_lot(conn, ctx, clinic, &sid, input).map_err(|e| {
                rename_fields(rename_fields(e, "barcode", "code"), "lot_number", "code")
            })
        },
    )
    .await
}

async fn start(
    req: HttpRequest,
    posted: Posted,
    path: SessionPath,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let input = StartInput {
        override_reason: posted.fields.opt("override_reason"),
    };
    let (profiles, role, sid) = (
        state(&req)?.profiles.clone(),
        posted.page.role(),
        id.clone(),
    );
    session_action(
        req,
        posted,
        id,
        &["override_reason"],
        "",
        move |conn, ctx, clinic| sessions::start(conn, &profiles, ctx, role, clinic, &sid, input),
    )
    .await
}

async fn complete(
    req: HttpRequest,
    posted: Posted,
    path: SessionPath,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let input = CompleteInput {
        notes: posted.fields.opt("notes"),
    };
    let sid = id.clone();
    session_action(req, posted, id, &["notes"], "", move |conn, ctx, clinic| {
        sessions::complete(conn, ctx, clinic, &sid, input)
    })
    .await
}
