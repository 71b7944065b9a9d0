//! Correcting a record: its fields as they stand, a reason, and its history. Nothing is changed in
//! place: the use case keeps every version with its reason, as the API's amendments do. Only the
//! fields the person changed are sent.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::Value;

use super::chrome::{state, Chrome, ClinicPage};
use super::form_view::FormView;
use super::forms::{refusal, to_json, Errors, Kind, Posted};
use super::{html, see_other, PageError};
use crate::api::extract::ClinicAccess;
use crate::clinics::context::at_in_words;
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult, FieldError};
use crate::jurisdiction::profiles::Profiles;
use crate::records::AmendmentRequest;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/clinics/{clinic}/{kind}/{id}/amend",
        web::get().to(amend_page),
    )
    .route(
        "/clinics/{clinic}/{kind}/{id}/amendments",
        web::post().to(amend),
    );
}

/// How a field is shown and read back.
#[derive(Clone, Copy)]
enum Input {
    Text,
    Number,
    Whole,
    Date,
    Time,
    Tick,
}

/// An amendable kind of record: its page path, who may correct it (as in the API), the fields a
/// person may correct, and where its register is.
struct Amendable {
    slug: &'static str,
    noun: &'static str,
    owner_only: bool,
    fields: &'static [(&'static str, &'static str, Input)],
    register: &'static str,
}

const KINDS: &[Amendable] = &[
    Amendable {
        slug: "sterilisers",
        noun: "steriliser",
        owner_only: true,
        fields: &[
            ("make", "Make", Input::Text),
            ("model", "Model", Input::Text),
            ("serial_number", "Serial number", Input::Text),
            ("chamber_litres", "Chamber size in litres", Input::Number),
            ("location", "Where it stands", Input::Text),
            ("installed_on", "Installed on", Input::Date),
        ],
        register: "sterilisers",
    },
    Amendable {
        slug: "cycles",
        noun: "load",
        owner_only: false,
        fields: &[
            ("cycle_number", "Cycle number", Input::Whole),
            ("program.name", "Program", Input::Text),
            (
                "program.temperature_c",
                "Program temperature, °C",
                Input::Number,
            ),
            (
                "program.hold_minutes",
                "Program hold time, minutes",
                Input::Number,
            ),
            ("started_at", "Started", Input::Time),
            ("finished_at", "Finished", Input::Time),
            (
                "peak_temperature_c",
                "Highest temperature reached, °C",
                Input::Number,
            ),
            (
                "peak_pressure_kpa",
                "Pressure at that temperature, kPa absolute",
                Input::Number,
            ),
            (
                "hold_minutes",
                "Time held at temperature, minutes",
                Input::Number,
            ),
            (
                "load_indicator.type",
                "The load's chemical indicator type",
                Input::Whole,
            ),
            (
                "load_indicator.passed",
                "The load's indicator passed",
                Input::Tick,
            ),
            ("notes", "Notes", Input::Text),
        ],
        register: "cycles",
    },
    Amendable {
        slug: "spore-tests",
        noun: "spore test",
        owner_only: false,
        fields: &[
            ("bi_product", "Indicator product", Input::Text),
            ("bi_lot", "Indicator lot", Input::Text),
            ("placed_at", "Placed at", Input::Time),
        ],
        register: "spore-tests",
    },
    Amendable {
        slug: "air-removal-tests",
        noun: "air-removal test",
        owner_only: false,
        fields: &[
            ("performed_at", "Run at", Input::Time),
            ("passed", "It passed", Input::Tick),
            ("notes", "Notes", Input::Text),
        ],
        register: "spore-tests",
    },
    Amendable {
        slug: "lots",
        noun: "lot",
        owner_only: false,
        fields: &[
            ("manufacturer", "Manufacturer", Input::Text),
            ("product_name", "Product", Input::Text),
            ("product_code", "Product code", Input::Text),
            ("gtin", "GTIN", Input::Text),
            ("lot_number", "Lot number", Input::Text),
            ("expiry_date", "Use by", Input::Date),
            ("supplier", "Supplier", Input::Text),
            ("received_on", "Received on", Input::Date),
            ("quantity_received", "Quantity received", Input::Whole),
        ],
        register: "lots",
    },
    Amendable {
        slug: "credentials",
        noun: "credential",
        owner_only: false,
        fields: &[
            ("issuer", "Issued by", Input::Text),
            ("number", "Certificate or licence number", Input::Text),
            ("issued_on", "Issued on", Input::Date),
            ("expires_on", "Expires on", Input::Date),
        ],
        register: "staff",
    },
    Amendable {
        slug: "incidents",
        noun: "incident",
        owner_only: false,
        fields: &[
            ("occurred_at", "When it happened", Input::Time),
            ("location", "Where", Input::Text),
            ("description", "What happened", Input::Text),
            (
                "immediate_actions",
                "What was done straight away",
                Input::Text,
            ),
        ],
        register: "incidents",
    },
    Amendable {
        slug: "clients",
        noun: "client",
        owner_only: false,
        fields: &[
            ("name", "Name", Input::Text),
            ("contact", "Phone or email", Input::Text),
            ("date_of_birth", "Date of birth", Input::Date),
        ],
        register: "sessions",
    },
];

fn kind_of(slug: &str) -> Result<&'static Amendable, PageError> {
    KINDS
        .iter()
        .find(|k| k.slug == slug)
        .ok_or(PageError::App(AppError::NotFound))
}

fn allowed(kind: &Amendable, access: &ClinicAccess) -> AppResult<()> {
    if kind.owner_only {
        access.require_owner()
    } else {
        access.require_staff()
    }
}

/// The record as the use cases show it, as JSON (its fields at the top level, with `history`).
fn current(
    conn: &mut DbConn,
    profiles: &Profiles,
    access: &ClinicAccess,
    slug: &str,
    id: &str,
) -> AppResult<Value> {
    use crate::sterilisation::usecases as s;
    let c = access.clinic_id.as_str();
    let json = |v: Result<Value, serde_json::Error>| v.map_err(AppError::internal);
    match slug {
        "sterilisers" => json(serde_json::to_value(s::get_steriliser(conn, c, id)?)),
        "cycles" => json(serde_json::to_value(s::get_cycle(conn, profiles, c, id)?)),
        "spore-tests" => json(serde_json::to_value(s::get_spore_test(conn, c, id)?)),
        "air-removal-tests" => json(serde_json::to_value(s::get_air_removal(conn, c, id)?)),
        "lots" => json(serde_json::to_value(crate::lots::usecases::get_lot(
            conn, c, id,
        )?)),
        "credentials" => json(serde_json::to_value(crate::credentials::usecases::get(
            conn,
            access.role,
            access.user_id(),
            c,
            id,
        )?)),
        "incidents" => json(serde_json::to_value(crate::incidents::usecases::get(
            conn, profiles, c, id,
        )?)),
        "clients" => json(serde_json::to_value(crate::clients::usecases::get(
            conn, c, id,
        )?)),
        _ => Err(AppError::NotFound),
    }
}

fn apply(
    conn: &mut DbConn,
    profiles: &Profiles,
    access: &ClinicAccess,
    slug: &str,
    id: &str,
    req: &AmendmentRequest,
) -> AppResult<()> {
    use crate::sterilisation::usecases as s;
    let (ctx, c) = (access.audit_context(), access.clinic_id.as_str());
    match slug {
        "sterilisers" => s::amend_steriliser(conn, &ctx, c, id, req).map(drop),
        "cycles" => s::amend_cycle(conn, profiles, &ctx, c, id, req).map(drop),
        "spore-tests" => s::amend_spore_test(conn, &ctx, c, id, req).map(drop),
        "air-removal-tests" => s::amend_air_removal(conn, &ctx, c, id, req).map(drop),
        "lots" => crate::lots::usecases::amend_lot(conn, &ctx, c, id, req).map(drop),
        "credentials" => {
            crate::credentials::usecases::amend(conn, &ctx, access.role, c, id, req).map(drop)
        }
        "incidents" => {
            crate::incidents::usecases::amend(conn, profiles, &ctx, c, id, req).map(drop)
        }
        "clients" => crate::clients::usecases::amend(conn, &ctx, c, id, req).map(drop),
        _ => Err(AppError::NotFound),
    }
}

fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// A stored value as a form field shows it (times in the clinic's zone, to the minute).
fn shown(value: Option<&Value>, input: Input, tz: chrono_tz::Tz) -> String {
    match (value, input) {
        (None | Some(Value::Null), _) => String::new(),
        (Some(Value::Bool(b)), _) => {
            if *b {
                "yes".into()
            } else {
                String::new()
            }
        }
        (Some(Value::String(s)), Input::Time) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_else(|_| s.clone()),
        (Some(Value::String(s)), _) => s.clone(),
        (Some(Value::Number(n)), _) => match n.as_f64() {
            // 135, not 135.0: as a person writes it.
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        (Some(other), _) => other.to_string(),
    }
}

/// Whether a field as sent back equals the stored value: numbers by value, times to the minute
/// the form shows.
fn same(stored: Option<&Value>, sent: &Value) -> bool {
    match (stored, sent) {
        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Some(Value::String(a)), Value::String(b)) => {
            match (
                chrono::DateTime::parse_from_rfc3339(a),
                chrono::DateTime::parse_from_rfc3339(b),
            ) {
                (Ok(x), Ok(y)) => x.timestamp() / 60 == y.timestamp() / 60,
                _ => a == b,
            }
        }
        (Some(a), b) => a == b,
        (None, Value::Null) => true,
        (None, _) => false,
    }
}

#[derive(Template)]
#[template(path = "amend.html", config = "src/web/askama.toml")]
struct AmendPage {
    chrome: Chrome,
    noun: &'static str,
    register: String,
    form: FormView,
    history: Vec<HistoryLine>,
}

struct HistoryLine {
    version: i64,
    at: String,
    by: String,
    reason: String,
    changes: Vec<String>,
}

fn form_of(kind: &Amendable, page: &ClinicPage, id: &str, record: &Value) -> FormView {
    let mut form = FormView::new(
        "amend",
        &format!("Correct this {}", kind.noun),
        format!(
            "/clinics/{}/{}/{id}/amendments",
            page.clinic_id(),
            kind.slug
        ),
        "Record the correction",
        &page.browser.csrf,
    )
    .opened();
    for (path, label, input) in kind.fields {
        form = match input {
            Input::Text => form.text(path, label, ""),
            Input::Number => form.number(path, label, ""),
            Input::Whole => form.whole(path, label, ""),
            Input::Date => form.date(path, label, ""),
            Input::Time => form.time(path, label, &format!("In {}", page.tz.name())),
            Input::Tick => form.tick(path, label, ""),
        }
        .with(path, shown(at_path(record, path), *input, page.tz));
    }
    form.textarea(
        "reason",
        "Why it was wrong",
        "Required: kept with the record and in the audit trail",
    )
}

async fn render(
    req: &HttpRequest,
    page: &ClinicPage,
    kind: &'static Amendable,
    id: String,
    refused: Option<super::records::Refused>,
) -> Result<HttpResponse, PageError> {
    allowed(kind, &page.access)?;
    let state = state(req)?;
    let (profiles, access, slug, rid) = (
        state.profiles.clone(),
        page.access.clone(),
        kind.slug,
        id.clone(),
    );
    let (record, names) = db::run(&state.pool, move |conn| {
        let record = current(conn, &profiles, &access, slug, &rid)?;
        let names: std::collections::HashMap<String, String> =
            crate::auth::store::members_of(conn, &access.clinic_id)?
                .into_iter()
                .map(|(_, u)| (u.id, u.display_name))
                .collect();
        Ok((record, names))
    })
    .await?;
    let tz = page.tz;
    let history = record
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| HistoryLine {
            version: v.get("version").and_then(Value::as_i64).unwrap_or_default(),
            at: v
                .get("recorded_at")
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| at_in_words(t.with_timezone(&chrono::Utc), tz))
                .unwrap_or_default(),
            by: v
                .get("recorded_by")
                .and_then(Value::as_str)
                .and_then(|id| names.get(id).cloned())
                .unwrap_or_else(|| "someone".into()),
            reason: v
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("first recorded")
                .to_owned(),
            changes: v
                .get("changes")
                .and_then(Value::as_object)
                .map(|c| {
                    c.iter()
                        .map(|(field, change)| {
                            let label =
                                kind.fields.iter().find(|(p, _, _)| p == field).map_or_else(
                                    || field.replace('_', " "),
                                    |(_, l, _)| (*l).to_owned(),
                                );
                            format!(
                                "{label}: {} → {}",
                                shown(change.get("from"), Input::Text, tz),
                                shown(change.get("to"), Input::Text, tz)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let mut form = form_of(kind, page, &id, &record);
    let status = match refused {
        Some(r) => {
            form = form.refused(&r.fields, &r.errors);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        None => StatusCode::OK,
    };
    html(
        status,
        &AmendPage {
            chrome: page.chrome(""),
            noun: kind.noun,
            register: format!("/clinics/{}/{}", page.clinic_id(), kind.register),
            form,
            history,
        },
    )
}

async fn amend_page(
    req: HttpRequest,
    page: ClinicPage,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, PageError> {
    let (_, slug, id) = path.into_inner();
    render(&req, &page, kind_of(&slug)?, id, None).await
}

async fn amend(
    req: HttpRequest,
    posted: Posted,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, PageError> {
    let (_, slug, id) = path.into_inner();
    let kind = kind_of(&slug)?;
    allowed(kind, &posted.page.access)?;
    let state = state(&req)?;
    let spec: Vec<(&str, Kind)> = kind
        .fields
        .iter()
        .map(|(path, _, input)| {
            (
                *path,
                match input {
                    Input::Number | Input::Whole => Kind::Number,
                    Input::Time => Kind::LocalTime,
                    Input::Tick => Kind::Tick,
                    Input::Text | Input::Date => Kind::Text,
                },
            )
        })
        .collect();
    let (edited, early) = to_json(&posted.fields, &spec, posted.page.tz);
    let reason = posted.fields.get("reason").to_owned();
    let (profiles, access, rid) = (
        state.profiles.clone(),
        posted.page.access.clone(),
        id.clone(),
    );
    let outcome = if early.is_empty() {
        db::run(&state.pool, move |conn| {
            let record = current(conn, &profiles, &access, kind.slug, &rid)?;
            // Only what changed; a nested object (a cycle's program) goes whole, as the
            // amendment replaces top-level fields.
            let mut changes = serde_json::Map::new();
            if let Value::Object(fields) = &edited {
                for (key, value) in fields {
                    let differs = match value {
                        Value::Object(inner) => inner
                            .iter()
                            .any(|(k, v)| !same(at_path(&record, &format!("{key}.{k}")), v)),
                        v => !same(record.get(key), v),
                    };
                    if differs {
                        changes.insert(key.clone(), value.clone());
                    }
                }
            }
            if changes.is_empty() {
                return Err(AppError::Validation(vec![FieldError::new(
                    "",
                    "nothing was changed: correct at least one field",
                )]));
            }
            apply(
                conn,
                &profiles,
                &access,
                kind.slug,
                &rid,
                &AmendmentRequest {
                    reason,
                    changes: Value::Object(changes),
                },
            )
        })
        .await
    } else {
        Err(AppError::Validation(early))
    };
    match outcome {
        Ok(()) => Ok(see_other(&format!(
            "/clinics/{}/{}/{id}/amend",
            posted.page.clinic_id(),
            kind.slug
        ))),
        Err(e) => {
            // The use case names a corrected field `changes.<field>`; the form names it itself.
            let e = match e {
                AppError::Validation(v) => AppError::Validation(
                    v.into_iter()
                        .map(|mut f| {
                            if let Some(rest) = f.field.strip_prefix("changes.") {
                                f.field = rest.to_owned();
                            }
                            f
                        })
                        .collect(),
                ),
                other => other,
            };
            let mut names: Vec<&str> = kind.fields.iter().map(|(p, _, _)| *p).collect();
            names.push("reason");
            let errors: Errors = refusal(e, &names)?;
            render(
                &req,
                &posted.page,
                kind,
                id,
                Some(super::records::Refused {
                    form: "amend".into(),
                    fields: posted.fields,
                    errors,
                }),
            )
            .await
        }
    }
}
