//! The clinic's registers as pages: sterilisers, the cycle log with a new-cycle form and a sheet
//! of pack labels, spore and air-removal tests, lots, staff and their credentials. Staff see the
//! forms; an inspector reads the same registers with none of them.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::de::DeserializeOwned;

use super::as_of::AsOf;
use super::chrome::{state, Chrome, ClinicPage};
use super::form_view::FormView;
use super::forms::{local_now, refusal, to_json, Errors, Fields, Kind, Posted};
use super::{html, see_other, PageError};
use crate::auth::Role;
use crate::clinics::context::at_in_words;
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult};
use crate::sterilisation::model::{Biological, Outcome, PackState};
use crate::sterilisation::store::LogFilter;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clinics/{clinic}/sterilisers", web::get().to(sterilisers))
        .route(
            "/clinics/{clinic}/sterilisers",
            web::post().to(add_steriliser),
        )
        .route("/clinics/{clinic}/cycles", web::get().to(cycles))
        .route("/clinics/{clinic}/cycles", web::post().to(add_cycle))
        .route(
            "/clinics/{clinic}/cycles/{id}/labels",
            web::get().to(labels),
        )
        .route("/clinics/{clinic}/spore-tests", web::get().to(tests))
        .route(
            "/clinics/{clinic}/spore-tests",
            web::post().to(place_spore_test),
        )
        .route(
            "/clinics/{clinic}/spore-tests/{id}/result",
            web::post().to(read_spore_test),
        )
        .route(
            "/clinics/{clinic}/air-removal-tests",
            web::post().to(add_air_removal),
        )
        .route("/clinics/{clinic}/lots", web::get().to(lots))
        .route("/clinics/{clinic}/lots/new", web::get().to(new_lot))
        .route("/clinics/{clinic}/lots", web::post().to(receive_lot))
        .route(
            "/clinics/{clinic}/lots/{id}/recall",
            web::post().to(recall_lot),
        )
        .route("/clinics/{clinic}/staff", web::get().to(staff))
        .route(
            "/clinics/{clinic}/credentials",
            web::post().to(add_credential),
        )
        .route(
            "/clinics/{clinic}/credentials/{id}/verify",
            web::post().to(verify_credential),
        );
}

/// A refused form: which one, what was sent, and why.
pub struct Refused {
    pub form: String,
    pub fields: Fields,
    pub errors: Errors,
}

/// Fills `form` from a refusal aimed at it.
pub fn refill(form: FormView, refused: Option<&Refused>) -> FormView {
    match refused {
        Some(r) if r.form == form.id => form.refused(&r.fields, &r.errors),
        _ => form,
    }
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// Runs a form's use case; success goes to `back`, a refusal shows the page again through
/// `again` with the reasons beside the fields of form `form_id`.
pub async fn submit<T, F, R, Fut>(
    req: HttpRequest,
    posted: Posted,
    form_id: &str,
    spec: &[(&str, Kind)],
    back: String,
    work: F,
    again: R,
) -> Result<HttpResponse, PageError>
where
    T: DeserializeOwned + Send + 'static,
    F: FnOnce(
            &mut DbConn,
            &ClinicPage,
            &crate::jurisdiction::profiles::Profiles,
            T,
        ) -> AppResult<()>
        + Send
        + 'static,
    R: FnOnce(HttpRequest, ClinicPage, Option<Refused>) -> Fut,
    Fut: std::future::Future<Output = Result<HttpResponse, PageError>>,
{
    let state = state(&req)?;
    let (json, mut early) = to_json(&posted.fields, spec, posted.page.tz);
    let parsed = crate::input::from_value::<T>(json, "");
    let outcome = match parsed {
        Ok(input) if early.is_empty() => {
            let (page, profiles) = (posted.page.clone(), state.profiles.clone());
            db::run(&state.pool, move |conn| work(conn, &page, &profiles, input)).await
        }
        Ok(_) => Err(AppError::Validation(early)),
        Err(AppError::Validation(mut v)) => {
            v.append(&mut early);
            Err(AppError::Validation(v))
        }
        Err(other) => Err(other),
    };
    match outcome {
        Ok(()) => Ok(see_other(&back)),
        Err(e) => {
            let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            let errors = refusal(e, &names)?;
            again(
                req,
                posted.page,
                Some(Refused {
                    form: form_id.to_owned(),
                    fields: posted.fields,
                    errors,
                }),
            )
            .await
        }
    }
}

fn badge(class: &'static str, words: impl Into<String>) -> (String, &'static str) {
    (words.into(), class)
}

fn pack_badge(state: PackState) -> (String, &'static str) {
    match state {
        PackState::Released => badge("ok", "released"),
        PackState::Pending => badge("warn", "pending"),
        PackState::Quarantined => badge("bad", "quarantined"),
        PackState::Expired => badge("bad", "expired"),
        PackState::Used => badge("plain", "used"),
    }
}

fn biological_badge(b: Biological) -> (String, &'static str) {
    match b {
        Biological::Negative => badge("ok", "negative"),
        Biological::Positive => badge("bad", "positive"),
        Biological::Pending => badge("warn", "incubating"),
        Biological::Invalid => badge("bad", "invalid: repeat it"),
        Biological::None => badge("plain", "none"),
    }
}

// ------------------------------------------------------------------------------------------------
// Sterilisers

#[derive(Template)]
#[template(path = "sterilisers.html", config = "src/web/askama.toml")]
struct SterilisersPage {
    chrome: Chrome,
    rows: Vec<SteriliserLine>,
    forms: Vec<FormView>,
}

struct SteriliserLine {
    id: String,
    name: String,
    kind: String,
    location: String,
    status: (String, &'static str),
    reason: String,
}

fn steriliser_form(page: &ClinicPage) -> FormView {
    FormView::new(
        "new-steriliser",
        "Register a steriliser",
        format!("/clinics/{}/sterilisers", page.clinic_id()),
        "Register",
        &page.browser.csrf,
    )
    .text("make", "Make", "For example W&H")
    .text("model", "Model", "For example Lisa 500")
    .text(
        "serial_number",
        "Serial number",
        "As on the plate on the machine",
    )
    .select(
        "kind",
        "Type",
        "",
        vec![
            ("pre_vacuum".into(), "Pre-vacuum (class B)".into()),
            ("gravity".into(), "Gravity displacement (class N)".into()),
            ("other".into(), "Other".into()),
        ],
    )
    .number("chamber_litres", "Chamber size in litres", "Optional")
    .text("location", "Where it stands", "Optional")
    .date("installed_on", "Installed on", "Optional")
}

async fn render_sterilisers(
    req: HttpRequest,
    page: ClinicPage,
    refused: Option<Refused>,
) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let clinic = page.clinic_id().to_owned();
    let list = db::run(&state.pool, move |conn| {
        crate::sterilisation::usecases::list_sterilisers(conn, &clinic)
    })
    .await?;
    let forms = if page.role() == Role::Owner {
        vec![refill(steriliser_form(&page), refused.as_ref())]
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
        &SterilisersPage {
            chrome: page.chrome("Sterilisers"),
            rows: list
                .into_iter()
                .map(|s| SteriliserLine {
                    name: format!(
                        "{} {} ({})",
                        s.fields.make, s.fields.model, s.fields.serial_number
                    ),
                    kind: serde_json::to_value(s.fields.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(|k| k.replace('_', "-")))
                        .unwrap_or_default(),
                    location: s.fields.location.clone().unwrap_or_default(),
                    status: if s.quarantined {
                        badge("bad", "quarantined")
                    } else if s.in_service {
                        badge("ok", "in service")
                    } else {
                        badge("warn", "out of service")
                    },
                    reason: s.status_reason.clone().unwrap_or_default(),
                    id: s.id,
                })
                .collect(),
            forms,
        },
    )
}

async fn sterilisers(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    render_sterilisers(req, page, None).await
}

async fn add_steriliser(req: HttpRequest, posted: Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_owner()?;
    let back = format!("/clinics/{}/sterilisers", posted.page.clinic_id());
    submit(
        req,
        posted,
        "new-steriliser",
        &[
            ("make", Kind::Text),
            ("model", Kind::Text),
            ("serial_number", Kind::Text),
            ("kind", Kind::Text),
            ("chamber_litres", Kind::Number),
            ("location", Kind::Text),
            ("installed_on", Kind::Text),
        ],
        back,
        |conn, page, _, input| {
            crate::sterilisation::usecases::create_steriliser(
                conn,
                &page.access.audit_context(),
                page.clinic_id(),
                input,
            )
            .map(drop)
        },
        render_sterilisers,
    )
    .await
}

// ------------------------------------------------------------------------------------------------
// Cycles

#[derive(Template)]
#[template(path = "cycles.html", config = "src/web/askama.toml")]
struct CyclesPage {
    chrome: Chrome,
    as_of: AsOf,
    rows: Vec<CycleLine>,
    pack: Option<(String, String, (String, &'static str), String)>,
    forms: Vec<FormView>,
}

struct CycleLine {
    id: String,
    number: i64,
    steriliser: String,
    started: String,
    program: String,
    outcome: (String, &'static str),
    packs: Vec<(String, (String, &'static str))>,
    warnings: Vec<String>,
    labels: String,
}

fn cycle_form(page: &ClinicPage, sterilisers: Vec<(String, String)>) -> FormView {
    FormView::new(
        "new-cycle",
        "Record a load",
        format!("/clinics/{}/cycles", page.clinic_id()),
        "Record the load",
        &page.browser.csrf,
    )
    .select("steriliser_id", "Steriliser", "", sterilisers)
    .whole("cycle_number", "Cycle number", "The steriliser's own counter, as on its printout")
    .text("program.name", "Program", "For example 134 °C / 3.5 min")
    .number("program.temperature_c", "Program temperature, °C", "")
    .number("program.hold_minutes", "Program hold time, minutes", "")
    .time("started_at", "Started", "")
    .time("finished_at", "Finished", "")
    .number("peak_temperature_c", "Highest temperature reached, °C", "From the printout")
    .number("peak_pressure_kpa", "Pressure at that temperature, kPa absolute", "From the printout")
    .number("hold_minutes", "Time held at temperature, minutes", "From the printout")
    .select(
        "load_indicator.type",
        "The load's chemical indicator",
        "ISO 11140-1 type",
        (1..=6)
            .rev()
            .map(|t| (t.to_string(), format!("Type {t}")))
            .collect(),
    )
    .tick("load_indicator.passed", "The indicator changed as it should (passed)", "")
    .textarea("packs", "Packs in the load", "One line per pack: what is in it, for example \"4 grips, 2 tips\". Each gets a label code.")
    .textarea("notes", "Notes", "Optional")
    .with("program.name", "134 °C / 3.5 min")
    .with("program.temperature_c", "134")
    .with("program.hold_minutes", "3.5")
    .with("started_at", local_now(page.tz))
    .with("finished_at", local_now(page.tz))
    .with("load_indicator.passed", "yes")
}

async fn render_cycles(
    req: HttpRequest,
    page: ClinicPage,
    refused: Option<Refused>,
) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let as_of = AsOf::read(&req, &page).await?;
    let at = as_of.standing();
    let q = query(&req);
    let (clinic, profiles) = (page.clinic_id().to_owned(), state.profiles.clone());
    let steriliser = q.get("steriliser").cloned().filter(|s| !s.is_empty());
    let pack_code = q.get("pack").cloned().filter(|s| !s.is_empty());
    let (views, names, pack) = db::run(&state.pool, move |conn| {
        let (views, _) = crate::sterilisation::usecases::list_cycles(
            conn,
            &profiles,
            &clinic,
            &LogFilter {
                steriliser_id: steriliser,
                limit: 100,
                at,
                ..Default::default()
            },
        )?;
        let names: HashMap<String, String> =
            crate::sterilisation::store::list_sterilisers(conn, &clinic)?
                .into_iter()
                .map(|s| (s.id.clone(), s.name()))
                .collect();
        let pack = match pack_code {
            Some(code) => Some(crate::sterilisation::usecases::get_pack(
                conn, &profiles, &clinic, &code,
            )?),
            None => None,
        };
        Ok((views, names, pack))
    })
    .await?;
    let tz = page.tz;
    let c = page.clinic_id().to_owned();
    let forms = if page.role() == Role::Inspector || as_of.is_past() {
        Vec::new()
    } else {
        let options = names.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vec![refill(cycle_form(&page, options), refused.as_ref())]
    };
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        as_of.status()
    };
    html(
        status,
        &CyclesPage {
            chrome: page.chrome("Cycles"),
            as_of,
            pack: pack.map(|p| {
                (
                    p.code.clone(),
                    format!(
                        "load {} of {}",
                        p.cycle_number,
                        names.get(&p.steriliser_id).cloned().unwrap_or_default()
                    ),
                    pack_badge(p.state),
                    p.state_reason.clone(),
                )
            }),
            rows: views
                .into_iter()
                .map(|v| CycleLine {
                    labels: format!("/clinics/{c}/cycles/{}/labels", v.id),
                    number: v.fields.cycle_number,
                    steriliser: names
                        .get(&v.fields.steriliser_id)
                        .cloned()
                        .unwrap_or_default(),
                    started: at_in_words(v.fields.started_at, tz),
                    program: v.fields.program.name.clone(),
                    outcome: match v.outcome {
                        Outcome::Pass => badge("ok", "passed"),
                        Outcome::Fail => badge("bad", "failed"),
                    },
                    packs: v
                        .packs
                        .iter()
                        .map(|p| (p.code.clone(), pack_badge(p.state)))
                        .collect(),
                    warnings: v.warnings.iter().map(|w| super::capitalise(w)).collect(),
                    id: v.id,
                })
                .collect(),
            forms,
        },
    )
}

async fn cycles(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    render_cycles(req, page, None).await
}

async fn add_cycle(req: HttpRequest, mut posted: Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_staff()?;
    let back = format!("/clinics/{}/cycles", posted.page.clinic_id());
    // One line per pack.
    let packs: Vec<serde_json::Value> = posted
        .fields
        .get("packs")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::json!({"contents": l}))
        .collect();
    posted.fields = posted.fields.clone();
    let spec = [
        ("steriliser_id", Kind::Text),
        ("cycle_number", Kind::Number),
        ("program.name", Kind::Text),
        ("program.temperature_c", Kind::Number),
        ("program.hold_minutes", Kind::Number),
        ("started_at", Kind::LocalTime),
        ("finished_at", Kind::LocalTime),
        ("peak_temperature_c", Kind::Number),
        ("peak_pressure_kpa", Kind::Number),
        ("hold_minutes", Kind::Number),
        ("load_indicator.type", Kind::Number),
        ("load_indicator.passed", Kind::Tick),
        ("notes", Kind::Text),
    ];
    let (mut json, early) = to_json(&posted.fields, &spec, posted.page.tz);
    if let Some(o) = json.as_object_mut() {
        o.insert("packs".into(), serde_json::Value::Array(packs));
    }
    let state = state(&req)?;
    let outcome = match crate::sterilisation::model::CycleInput::from_json(json) {
        Ok(input) if early.is_empty() => {
            let (ctx, clinic, profiles) = (
                posted.page.access.audit_context(),
                posted.page.clinic_id().to_owned(),
                state.profiles.clone(),
            );
            db::run(&state.pool, move |conn| {
                crate::sterilisation::usecases::create_cycle(conn, &profiles, &ctx, &clinic, input)
            })
            .await
            .map(drop)
        }
        Ok(_) => Err(AppError::Validation(early)),
        Err(AppError::Validation(mut v)) => {
            v.extend(early);
            Err(AppError::Validation(v))
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(see_other(&back)),
        Err(e) => {
            let mut names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            names.push("packs");
            let errors = refusal(e, &names)?;
            render_cycles(
                req,
                posted.page,
                Some(Refused {
                    form: "new-cycle".into(),
                    fields: posted.fields,
                    errors,
                }),
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "labels.html", config = "src/web/askama.toml")]
struct LabelsPage {
    chrome: Chrome,
    number: i64,
    labels: Vec<(String, String)>,
}

async fn labels(
    req: HttpRequest,
    page: ClinicPage,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let state = state(&req)?;
    let (clinic, profiles) = (page.clinic_id().to_owned(), state.profiles.clone());
    let view = db::run(&state.pool, move |conn| {
        crate::sterilisation::usecases::get_cycle(conn, &profiles, &clinic, &id)
    })
    .await?;
    let size = crate::sterilisation::label::LabelSize::default();
    let labels = view
        .packs
        .iter()
        .map(|p| {
            crate::sterilisation::label::pack_label_svg(p, page.tz, size)
                .map(|svg| (p.code.clone(), svg))
                .map_err(|e| AppError::internal(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    super::ok(&LabelsPage {
        chrome: page.chrome("Cycles"),
        number: view.fields.cycle_number,
        labels,
    })
}

// ------------------------------------------------------------------------------------------------
// Spore and air-removal tests

#[derive(Template)]
#[template(path = "tests.html", config = "src/web/askama.toml")]
struct TestsPage {
    chrome: Chrome,
    as_of: AsOf,
    spore: Vec<SporeLine>,
    air: Vec<(String, String, String, (String, &'static str))>,
    forms: Vec<FormView>,
}

struct SporeLine {
    id: String,
    steriliser: String,
    placed: String,
    product: String,
    outcome: (String, &'static str),
    read: String,
    form: Option<FormView>,
}

fn read_form(page: &ClinicPage, id: &str) -> FormView {
    FormView::new(
        &format!("read-{id}"),
        "Read the result",
        format!("/clinics/{}/spore-tests/{id}/result", page.clinic_id()),
        "Record the result",
        &page.browser.csrf,
    )
    .select(
        "result",
        "The test vial",
        "",
        vec![
            (
                "negative".into(),
                "No growth (negative: the load was sterilised)".into(),
            ),
            (
                "positive".into(),
                "Growth (positive: the load failed)".into(),
            ),
        ],
    )
    .select(
        "control_result",
        "The control vial",
        "The unprocessed control must grow, or the reading proves nothing",
        vec![
            ("growth".into(), "Growth (as it should)".into()),
            ("no_growth".into(), "No growth (the test is invalid)".into()),
        ],
    )
    .time("read_at", "Read at", "")
    .text(
        "lab_reference",
        "Laboratory's report number",
        "For a mail-in test",
    )
    .with("read_at", local_now(page.tz))
}

fn place_form(
    page: &ClinicPage,
    loads: Vec<(String, String)>,
    sterilisers: Vec<(String, String)>,
) -> FormView {
    FormView::new(
        "new-spore-test",
        "Place a spore test",
        format!("/clinics/{}/spore-tests", page.clinic_id()),
        "Record it",
        &page.browser.csrf,
    )
    .select("steriliser_id", "Steriliser", "", sterilisers)
    .select("cycle_id", "The load it rides in", "", loads)
    .text("bi_product", "Indicator product", "For example Attest 1292")
    .text("bi_lot", "Indicator lot", "")
    .time("placed_at", "Placed at", "")
    .select(
        "incubation.kind",
        "Incubated",
        "",
        vec![
            ("in_house".into(), "In the clinic's own incubator".into()),
            ("mail_in".into(), "Posted to a laboratory".into()),
        ],
    )
    .number(
        "incubation.hours",
        "Incubation, hours",
        "In the clinic's own incubator",
    )
    .date(
        "incubation.posted_on",
        "Posted on",
        "Posted to a laboratory",
    )
    .text(
        "incubation.lab_name",
        "Laboratory",
        "Posted to a laboratory",
    )
    .date(
        "incubation.lab_deadline",
        "The laboratory reports by",
        "Posted to a laboratory",
    )
    .with("placed_at", local_now(page.tz))
    .with("incubation.hours", "24")
}

fn air_form(page: &ClinicPage, sterilisers: Vec<(String, String)>) -> FormView {
    FormView::new(
        "new-air-removal-test",
        "Record an air-removal or daily test",
        format!("/clinics/{}/air-removal-tests", page.clinic_id()),
        "Record it",
        &page.browser.csrf,
    )
    .select("steriliser_id", "Steriliser", "", sterilisers)
    .select(
        "test_type",
        "Test",
        "",
        vec![
            ("bowie_dick".into(), "Bowie-Dick".into()),
            ("helix".into(), "Helix (hollow load)".into()),
            ("automatic_control".into(), "Automatic control test".into()),
            ("air_leakage".into(), "Air-leakage test".into()),
            ("other".into(), "Other".into()),
        ],
    )
    .time("performed_at", "Run at", "")
    .tick(
        "passed",
        "It passed (uniform colour change, or the machine's pass)",
        "",
    )
    .text("notes", "Notes", "Optional")
    .with("performed_at", local_now(page.tz))
    .with("passed", "yes")
}

async fn render_tests(
    req: HttpRequest,
    page: ClinicPage,
    refused: Option<Refused>,
) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let as_of = AsOf::read(&req, &page).await?;
    let at = as_of.standing();
    let (clinic, profiles) = (page.clinic_id().to_owned(), state.profiles.clone());
    let (spore, air, names, loads) = db::run(&state.pool, move |conn| {
        let filter = LogFilter {
            limit: 100,
            at,
            ..Default::default()
        };
        let (spore, _) = crate::sterilisation::usecases::list_spore_tests(conn, &clinic, &filter)?;
        let (air, _) = crate::sterilisation::usecases::list_air_removal(conn, &clinic, &filter)?;
        let names: Vec<(String, String)> =
            crate::sterilisation::store::list_sterilisers(conn, &clinic)?
                .into_iter()
                .map(|s| (s.id.clone(), s.name()))
                .collect();
        let (cycles, _) = crate::sterilisation::usecases::list_cycles(
            conn,
            &profiles,
            &clinic,
            &LogFilter {
                limit: 30,
                ..Default::default()
            },
        )?;
        Ok((spore, air, names, cycles))
    })
    .await?;
    let tz = page.tz;
    let name_of = |id: &str| {
        names
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let writes = page.role() != Role::Inspector && !as_of.is_past();
    let load_options: Vec<(String, String)> = loads
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                format!(
                    "Load {} of {}, {}",
                    c.fields.cycle_number,
                    name_of(&c.fields.steriliser_id),
                    at_in_words(c.fields.started_at, tz)
                ),
            )
        })
        .collect();
    let forms = if writes {
        vec![
            refill(
                place_form(&page, load_options, names.clone()),
                refused.as_ref(),
            ),
            refill(air_form(&page, names.clone()), refused.as_ref()),
        ]
    } else {
        Vec::new()
    };
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        as_of.status()
    };
    html(
        status,
        &TestsPage {
            chrome: page.chrome("Spore tests"),
            as_of,
            spore: spore
                .into_iter()
                .map(|t| SporeLine {
                    steriliser: name_of(&t.fields.steriliser_id),
                    placed: at_in_words(t.fields.placed_at, tz),
                    product: format!("{}, lot {}", t.fields.bi_product, t.fields.bi_lot),
                    outcome: biological_badge(t.outcome),
                    read: t
                        .result
                        .as_ref()
                        .map(|r| at_in_words(r.read_at, tz))
                        .unwrap_or_default(),
                    form: (writes && t.result.is_none())
                        .then(|| refill(read_form(&page, &t.id), refused.as_ref())),
                    id: t.id,
                })
                .collect(),
            air: air
                .into_iter()
                .map(|a| {
                    (
                        name_of(&a.fields.steriliser_id),
                        at_in_words(a.fields.performed_at, tz),
                        serde_json::to_value(a.fields.test_type)
                            .ok()
                            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                            .unwrap_or_default(),
                        if a.fields.passed {
                            badge("ok", "passed")
                        } else {
                            badge("bad", "failed")
                        },
                    )
                })
                .collect(),
            forms,
        },
    )
}

async fn tests(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    render_tests(req, page, None).await
}

async fn place_spore_test(req: HttpRequest, mut posted: Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_staff()?;
    let back = format!("/clinics/{}/spore-tests", posted.page.clinic_id());
    // Each way of incubating has its own fields; only the chosen one's are sent.
    let mail_in = posted.fields.get("incubation.kind") == "mail_in";
    if posted.fields.get("incubation.kind").is_empty() {
        posted.fields.set("incubation.kind", "in_house");
    }
    let mut spec = vec![
        ("steriliser_id", Kind::Text),
        ("cycle_id", Kind::Text),
        ("bi_product", Kind::Text),
        ("bi_lot", Kind::Text),
        ("placed_at", Kind::LocalTime),
        ("incubation.kind", Kind::Text),
    ];
    if mail_in {
        spec.extend([
            ("incubation.posted_on", Kind::Text),
            ("incubation.lab_name", Kind::Text),
            ("incubation.lab_deadline", Kind::Text),
        ]);
    } else {
        spec.push(("incubation.hours", Kind::Number));
    }
    submit(
        req,
        posted,
        "new-spore-test",
        &spec,
        back,
        |conn, page, _, input| {
            crate::sterilisation::usecases::create_spore_test(
                conn,
                &page.access.audit_context(),
                page.clinic_id(),
                input,
            )
            .map(drop)
        },
        render_tests,
    )
    .await
}

async fn read_spore_test(
    req: HttpRequest,
    posted: Posted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    posted.page.access.require_staff()?;
    let (_, id) = path.into_inner();
    let back = format!("/clinics/{}/spore-tests", posted.page.clinic_id());
    let form = format!("read-{id}");
    submit(
        req,
        posted,
        &form,
        &[
            ("result", Kind::Text),
            ("control_result", Kind::Text),
            ("read_at", Kind::LocalTime),
            ("lab_reference", Kind::Text),
        ],
        back,
        move |conn, page, profiles, input| {
            let ctx = page.access.audit_context();
            crate::reactions::run(conn, profiles, &ctx, |conn| {
                crate::sterilisation::usecases::record_spore_result(
                    conn,
                    &ctx,
                    page.clinic_id(),
                    &id,
                    input,
                )
            })
            .map(drop)
        },
        render_tests,
    )
    .await
}

async fn add_air_removal(req: HttpRequest, posted: Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_staff()?;
    let back = format!("/clinics/{}/spore-tests#air", posted.page.clinic_id());
    submit(
        req,
        posted,
        "new-air-removal-test",
        &[
            ("steriliser_id", Kind::Text),
            ("test_type", Kind::Text),
            ("performed_at", Kind::LocalTime),
            ("passed", Kind::Tick),
            ("notes", Kind::Text),
        ],
        back,
        |conn, page, _, input| {
            crate::sterilisation::usecases::create_air_removal(
                conn,
                &page.access.audit_context(),
                page.clinic_id(),
                input,
            )
            .map(drop)
        },
        render_tests,
    )
    .await
}

// ------------------------------------------------------------------------------------------------
// Lots

#[derive(Template)]
#[template(path = "lots.html", config = "src/web/askama.toml")]
struct LotsPage {
    chrome: Chrome,
    as_of: AsOf,
    rows: Vec<LotLine>,
    forms: Vec<FormView>,
}

struct LotLine {
    id: String,
    label: String,
    kind: String,
    expires: String,
    status: (String, &'static str),
    recall: Option<String>,
    form: Option<FormView>,
}

fn lot_form(page: &ClinicPage) -> FormView {
    FormView::new(
        "new-lot",
        "Record a lot received",
        format!("/clinics/{}/lots", page.clinic_id()),
        "Record the lot",
        &page.browser.csrf,
    )
    .select(
        "kind",
        "What it is",
        "",
        vec![
            ("needle_cartridge".into(), "Needle cartridges".into()),
            ("pigment".into(), "Pigment or ink".into()),
            ("other".into(), "Other single-use supply".into()),
        ],
    )
    .text("manufacturer", "Manufacturer", "")
    .text("product_name", "Product", "")
    .text(
        "product_code",
        "Product code",
        "Optional: configuration or catalogue number",
    )
    .scan("gtin", "GTIN", "From the box's barcode (01); optional")
    .text("lot_number", "Lot number", "As printed on the box (10)")
    .date("expiry_date", "Use by", "(17)")
    .select(
        "sterilisation_method",
        "Sterilised by",
        "",
        vec![
            ("ethylene_oxide".into(), "Ethylene oxide (EO)".into()),
            ("gamma".into(), "Gamma irradiation".into()),
            ("e_beam".into(), "Electron beam".into()),
            ("not_sterile".into(), "Not sterile".into()),
        ],
    )
    .text("supplier", "Supplier", "Optional")
    .date("received_on", "Received on", "")
    .whole("quantity_received", "Quantity received", "")
    .with(
        "received_on",
        crate::clock::now()
            .with_timezone(&page.tz)
            .date_naive()
            .to_string(),
    )
}

fn recall_form(page: &ClinicPage, id: &str) -> FormView {
    FormView::new(
        &format!("recall-{id}"),
        "Recall this lot",
        format!("/clinics/{}/lots/{id}/recall", page.clinic_id()),
        "Recall",
        &page.browser.csrf,
    )
    .text("reason", "Why", "For example the manufacturer's notice")
    .text("reference", "Notice or recall number", "")
}

async fn render_lots(
    req: HttpRequest,
    page: ClinicPage,
    refused: Option<Refused>,
    prefill: Option<FormView>,
) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let as_of = AsOf::read(&req, &page).await?;
    let at = as_of.standing();
    let clinic = page.clinic_id().to_owned();
    let list = db::run(&state.pool, move |conn| {
        Ok(crate::lots::usecases::list_lots(
            conn,
            &clinic,
            &crate::lots::store::LotFilter {
                limit: 200,
                at,
                ..Default::default()
            },
        )?
        .0)
    })
    .await?;
    let owner = page.role() == Role::Owner && !as_of.is_past();
    let writes = page.role() != Role::Inspector && !as_of.is_past();
    let forms = if writes {
        vec![refill(
            prefill.unwrap_or_else(|| lot_form(&page)),
            refused.as_ref(),
        )]
    } else {
        Vec::new()
    };
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        as_of.status()
    };
    html(
        status,
        &LotsPage {
            chrome: page.chrome("Lots"),
            as_of,
            rows: list
                .into_iter()
                .map(|l| {
                    let status = serde_json::to_value(l.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let class = if status == "usable" { "ok" } else { "bad" };
                    LotLine {
                        label: format!(
                            "{} {}, lot {}",
                            l.fields.manufacturer, l.fields.product_name, l.fields.lot_number
                        ),
                        kind: l.fields.kind.label().to_owned(),
                        expires: l.fields.expiry_date.format("%-d %B %Y").to_string(),
                        status: (status, class),
                        recall: l.recall.as_ref().map(|r| {
                            format!(
                                "Recalled {}: {} ({})",
                                at_in_words(r.recalled_at, page.tz),
                                r.reason,
                                r.reference
                            )
                        }),
                        form: (owner && l.recall.is_none())
                            .then(|| refill(recall_form(&page, &l.id), refused.as_ref())),
                        id: l.id,
                    }
                })
                .collect(),
            forms,
        },
    )
}

async fn lots(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    render_lots(req, page, None, None).await
}

/// The receive form filled from a scanned box: GTIN, lot number and use-by date.
async fn new_lot(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    page.access.require_staff()?;
    let q = query(&req);
    let mut form = lot_form(&page).opened();
    if let Some(code) = q.get("barcode").filter(|c| !c.trim().is_empty()) {
        let today = crate::clock::now().with_timezone(&page.tz).date_naive();
        let scan = crate::lots::gs1::parse(code, today)
            .map_err(|e| AppError::invalid("barcode", e.to_string()))?;
        if let Some(g) = scan.gtin {
            form = form.with("gtin", g);
        }
        if let Some(l) = scan.lot {
            form = form.with("lot_number", l);
        }
        if let Some(e) = scan.expiry {
            form = form.with("expiry_date", e.to_string());
        }
    }
    render_lots(req, page, None, Some(form)).await
}

async fn receive_lot(req: HttpRequest, posted: Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_staff()?;
    let back = format!("/clinics/{}/lots", posted.page.clinic_id());
    submit(
        req,
        posted,
        "new-lot",
        &[
            ("kind", Kind::Text),
            ("manufacturer", Kind::Text),
            ("product_name", Kind::Text),
            ("product_code", Kind::Text),
            ("gtin", Kind::Text),
            ("lot_number", Kind::Text),
            ("expiry_date", Kind::Text),
            ("sterilisation_method", Kind::Text),
            ("supplier", Kind::Text),
            ("received_on", Kind::Text),
            ("quantity_received", Kind::Number),
        ],
        back,
        |conn, page, _, input| {
            crate::lots::usecases::receive_lot(
                conn,
                &page.access.audit_context(),
                page.clinic_id(),
                input,
            )
            .map(drop)
        },
        |req, page, refused| render_lots(req, page, refused, None),
    )
    .await
}

async fn recall_lot(
    req: HttpRequest,
    posted: Posted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    posted.page.access.require_owner()?;
    let (_, id) = path.into_inner();
    let back = format!("/clinics/{}/lots#lot-{id}", posted.page.clinic_id());
    let form = format!("recall-{id}");
    submit(
        req,
        posted,
        &form,
        &[("reason", Kind::Text), ("reference", Kind::Text)],
        back,
        move |conn, page, profiles, input: crate::lots::usecases::RecallRequest| {
            let ctx = page.access.audit_context();
            crate::reactions::run(conn, profiles, &ctx, |conn| {
                crate::lots::usecases::recall_lot(conn, &ctx, page.clinic_id(), &id, &input)
            })
            .map(drop)
        },
        |req, page, refused| render_lots(req, page, refused, None),
    )
    .await
}

// ------------------------------------------------------------------------------------------------
// Staff and credentials

#[derive(Template)]
#[template(path = "staff.html", config = "src/web/askama.toml")]
struct StaffPage {
    chrome: Chrome,
    as_of: AsOf,
    members: Vec<MemberLine>,
    forms: Vec<FormView>,
}

struct MemberLine {
    id: String,
    name: String,
    role: &'static str,
    eligibility: Option<(bool, Vec<String>)>,
    credentials: Vec<CredentialLine>,
}

struct CredentialLine {
    amend: String,
    what: String,
    expires: String,
    verified: Option<String>,
    verify: Option<String>,
}

fn credential_form(page: &ClinicPage, members: Vec<(String, String)>) -> FormView {
    FormView::new(
        "new-credential",
        "Record a credential",
        format!("/clinics/{}/credentials", page.clinic_id()),
        "Record it",
        &page.browser.csrf,
    )
    .select("user_id", "Whose", "", members)
    .select(
        "kind",
        "What",
        "",
        [
            crate::jurisdiction::kinds::CredentialKind::BloodbornePathogenTraining,
            crate::jurisdiction::kinds::CredentialKind::HepatitisB,
            crate::jurisdiction::kinds::CredentialKind::FirstAidCpr,
            crate::jurisdiction::kinds::CredentialKind::Licence,
            crate::jurisdiction::kinds::CredentialKind::InfectionControl,
            crate::jurisdiction::kinds::CredentialKind::SmpPmuTraining,
        ]
        .iter()
        .map(|k| (k.as_db().to_owned(), super::capitalise(k.label())))
        .collect(),
    )
    .text("issuer", "Issued by", "Optional")
    .text("number", "Certificate or licence number", "Optional")
    .date("issued_on", "Issued on", "")
    .date(
        "expires_on",
        "Expires on",
        "Leave empty if it does not expire",
    )
    .select(
        "hepatitis_b_status",
        "Hepatitis B status",
        "Only for hepatitis B",
        vec![
            (String::new(), "Not hepatitis B".into()),
            ("offered".into(), "Offered, series not complete".into()),
            ("vaccinated".into(), "Vaccinated".into()),
            ("immune_by_titre".into(), "Immune by titre".into()),
            ("declined".into(), "Declined (signed declination)".into()),
            ("contraindicated".into(), "Contraindicated".into()),
        ],
    )
    .date("declined_on", "Declination signed on", "Only when declined")
}

async fn render_staff(
    req: HttpRequest,
    page: ClinicPage,
    refused: Option<Refused>,
) -> Result<HttpResponse, PageError> {
    let state = state(&req)?;
    let (clinic, profiles, caller, role) = (
        page.clinic_id().to_owned(),
        state.profiles.clone(),
        page.browser.user.id.clone(),
        page.role(),
    );
    let tz = page.tz;
    let as_of = AsOf::read(&req, &page).await?;
    let (at, moment) = (as_of.standing(), as_of.at.unwrap_or_else(crate::clock::now));
    let members = db::run(&state.pool, move |conn| {
        let mut out = Vec::new();
        for (m, u) in crate::auth::store::members_of(conn, &clinic)? {
            // Members of the clinic at that moment, as the lists stood then.
            let then = at.unwrap_or_else(db::now);
            if m.created_at > then || !m.active_at(then) {
                continue;
            }
            // A technician sees their own record; owners and inspectors everyone's.
            if role == Role::Technician && u.id != caller {
                continue;
            }
            let works = m.role() != Role::Inspector && m.works_on_clients;
            let eligibility = if works {
                Some(crate::credentials::usecases::member_eligibility(
                    conn,
                    &profiles,
                    Role::Owner,
                    &caller,
                    &clinic,
                    &u.id,
                    moment,
                )?)
            } else {
                None
            };
            let credentials = crate::credentials::usecases::list(
                conn,
                Role::Owner,
                &caller,
                &clinic,
                &crate::credentials::store::CredentialFilter {
                    user_id: Some(u.id.clone()),
                    limit: 100,
                    at,
                    ..Default::default()
                },
            )?
            .0;
            out.push((m, u, eligibility, credentials));
        }
        Ok(out)
    })
    .await?;
    let owner = page.role() == Role::Owner && !as_of.is_past();
    let c = page.clinic_id().to_owned();
    let names: Vec<(String, String)> = members
        .iter()
        .filter(|(m, _, _, _)| m.role() != Role::Inspector)
        .map(|(_, u, _, _)| (u.id.clone(), u.display_name.clone()))
        .collect();
    let forms = if page.role() == Role::Inspector || as_of.is_past() {
        Vec::new()
    } else {
        vec![refill(credential_form(&page, names), refused.as_ref())]
    };
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        as_of.status()
    };
    html(
        status,
        &StaffPage {
            chrome: page.chrome("Staff"),
            as_of,
            members: members
                .into_iter()
                .map(|(m, u, e, creds)| MemberLine {
                    name: u.display_name.clone(),
                    role: super::chrome::role_in_words(m.role()),
                    eligibility: e.map(|e| {
                        (
                            e.eligibility.eligible && e.blocked_by.is_none(),
                            e.blocked_by
                                .into_iter()
                                .chain(e.eligibility.reasons.into_iter().map(|r| r.message))
                                .chain(e.eligibility.warnings)
                                .map(|m| super::capitalise(&m))
                                .collect(),
                        )
                    }),
                    credentials: creds
                        .into_iter()
                        .map(|cr| CredentialLine {
                            amend: format!("/clinics/{c}/credentials/{}/amend", cr.id),
                            what: format!(
                                "{}{}",
                                super::capitalise(cr.fields.kind.label()),
                                cr.fields
                                    .number
                                    .as_ref()
                                    .map(|n| format!(" {n}"))
                                    .unwrap_or_default()
                            ),
                            expires: cr
                                .fields
                                .expires_on
                                .map(|d| d.format("%-d %B %Y").to_string())
                                .unwrap_or_else(|| "does not expire".into()),
                            verified: cr
                                .verification
                                .as_ref()
                                .map(|v| at_in_words(v.verified_at, tz)),
                            verify: (owner && cr.verification.is_none())
                                .then(|| format!("/clinics/{c}/credentials/{}/verify", cr.id)),
                        })
                        .collect(),
                    id: u.id,
                })
                .collect(),
            forms,
        },
    )
}

async fn staff(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    render_staff(req, page, None).await
}

async fn add_credential(req: HttpRequest, posted: Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_staff()?;
    let back = format!("/clinics/{}/staff", posted.page.clinic_id());
    submit(
        req,
        posted,
        "new-credential",
        &[
            ("user_id", Kind::Text),
            ("kind", Kind::Text),
            ("issuer", Kind::Text),
            ("number", Kind::Text),
            ("issued_on", Kind::Text),
            ("expires_on", Kind::Text),
            ("hepatitis_b_status", Kind::Text),
            ("declined_on", Kind::Text),
        ],
        back,
        |conn, page, _, input| {
            crate::credentials::usecases::submit(
                conn,
                &page.access.audit_context(),
                page.role(),
                page.clinic_id(),
                input,
            )
            .map(drop)
        },
        render_staff,
    )
    .await
}

async fn verify_credential(
    req: HttpRequest,
    posted: Posted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    posted.page.access.require_owner()?;
    let (_, id) = path.into_inner();
    let state = state(&req)?;
    let (ctx, clinic) = (
        posted.page.access.audit_context(),
        posted.page.clinic_id().to_owned(),
    );
    db::run(&state.pool, move |conn| {
        crate::credentials::usecases::verify(conn, &ctx, &clinic, &id)
    })
    .await?;
    Ok(see_other(&format!(
        "/clinics/{}/staff",
        posted.page.clinic_id()
    )))
}
