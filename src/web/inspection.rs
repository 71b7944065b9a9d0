//! Inspection: the owner's inspector grants, the exports (request, state, the zip and its
//! report), sending the summary, the mail log, and the audit trail with its verification. An
//! inspector reads the exports and the trail, and may ask for an export of a period in the grant.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::chrome::{state, Chrome, ClinicPage};
use super::form_view::FormView;
use super::forms::Kind;
use super::records::{submit, Refused};
use super::{html, PageError};
use crate::auth::Role;
use crate::clinics::context::{at_in_words, period_in_words};
use crate::db;
use crate::error::AppError;
use crate::exports::usecases::ExportState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clinics/{clinic}/inspection", web::get().to(inspection))
        .route("/clinics/{clinic}/inspectors", web::post().to(grant))
        .route(
            "/clinics/{clinic}/inspectors/{id}/revoke",
            web::post().to(revoke),
        )
        .route("/clinics/{clinic}/exports", web::post().to(request_export))
        .route(
            "/clinics/{clinic}/exports/{id}/download",
            web::get().to(download),
        )
        .route(
            "/clinics/{clinic}/exports/{id}/report.pdf",
            web::get().to(report),
        )
        .route("/clinics/{clinic}/exports/{id}/send", web::post().to(send))
        .route(
            "/clinics/{clinic}/mail/settings",
            web::post().to(mail_settings),
        );
}

struct GrantLine {
    who: String,
    period: String,
    status: (String, &'static str),
    purpose: String,
    revoke: Option<FormView>,
}

struct ExportLine {
    id: String,
    period: String,
    requested: String,
    state: (String, &'static str),
    ready: bool,
    sha256: String,
    send: Option<FormView>,
}

struct MailLine {
    at: String,
    to: String,
    subject: String,
    state: (String, &'static str),
    error: String,
}

#[derive(Template)]
#[template(path = "inspection.html", config = "src/web/askama.toml")]
struct InspectionPage {
    chrome: Chrome,
    owner: bool,
    grants: Vec<GrantLine>,
    exports: Vec<ExportLine>,
    building: bool,
    mail: Vec<MailLine>,
    events: Vec<(i64, String, String, String, String)>,
    verification: Option<(bool, String)>,
    forms: Vec<FormView>,
}

fn grant_form(page: &ClinicPage) -> FormView {
    let today = crate::clock::now().with_timezone(&page.tz).date_naive();
    FormView::new(
        "new-grant",
        "Give an inspector read-only access",
        format!("/clinics/{}/inspectors", page.clinic_id()),
        "Grant access",
        &page.browser.csrf,
    )
    .email(
        "email",
        "The inspector's email",
        "A new inspector is mailed an invitation to set a password",
    )
    .text("display_name", "Their name", "Optional")
    .time("valid_from", "From", "")
    .time("valid_until", "Until", "")
    .text(
        "purpose",
        "Purpose",
        "For example \"annual inspection 2026\"",
    )
    .tick(
        "client_details",
        "Show clients' names and contacts",
        "Only for an investigation that needs them; a purpose is then required",
    )
    .with("valid_from", super::forms::local_now(page.tz))
    .with(
        "valid_until",
        format!("{}T18:00", today + chrono::Duration::days(14)),
    )
}

fn export_form(page: &ClinicPage) -> FormView {
    let today = crate::clock::now().with_timezone(&page.tz).date_naive();
    FormView::new(
        "new-export",
        "Ask for a signed export",
        format!("/clinics/{}/exports", page.clinic_id()),
        "Ask for the export",
        &page.browser.csrf,
    )
    .date("first_day", "First day", "")
    .date("last_day", "Last day", "Included")
    .with(
        "first_day",
        (today - chrono::Duration::days(30)).to_string(),
    )
    .with("last_day", today.to_string())
}

async fn render(
    req: HttpRequest,
    page: ClinicPage,
    refused: Option<Refused>,
) -> Result<HttpResponse, PageError> {
    page.access.require_owner_or_inspector()?;
    let state = state(&req)?;
    let owner = page.role() == Role::Owner;
    let verify = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.contains_key("verify"))
        .unwrap_or(false);
    let (clinic, domain) = (
        page.clinic_id().to_owned(),
        crate::mail::worker::domain(&state.settings),
    );
    let (grants, exports, mail, events, verification, names) = db::run(&state.pool, move |conn| {
        let grants = if owner {
            crate::inspectors::usecases::list(conn, &clinic)?
        } else {
            Vec::new()
        };
        let exports = crate::exports::usecases::list(conn, &clinic)?;
        let settings = if owner {
            Some(crate::outbox::settings::get(conn, &clinic)?)
        } else {
            None
        };
        let mail = if owner {
            crate::outbox::queue::list(
                conn,
                &clinic,
                &crate::outbox::queue::MailFilter {
                    limit: Some(50),
                    ..Default::default()
                },
                &domain,
            )?
        } else {
            Vec::new()
        };
        let events = crate::audit::store::list(
            conn,
            &clinic,
            &crate::audit::store::EventFilter {
                newest_first: true,
                ..Default::default()
            },
            30,
        )?;
        let verification = if verify {
            Some(crate::audit::store::verify(conn, &clinic)?)
        } else {
            None
        };
        let names: HashMap<String, String> = crate::auth::store::members_of(conn, &clinic)?
            .into_iter()
            .map(|(_, u)| (u.id, u.display_name))
            .collect();
        Ok((
            grants,
            exports,
            (mail, settings),
            events,
            verification,
            names,
        ))
    })
    .await?;
    let (mail, settings) = mail;
    let tz = page.tz;
    let c = page.clinic_id().to_owned();
    let mut forms = Vec::new();
    if owner {
        forms.push(super::records::refill(grant_form(&page), refused.as_ref()));
    }
    forms.push(super::records::refill(export_form(&page), refused.as_ref()));
    if let Some(settings) = settings {
        forms.push(super::records::refill(
            settings_form(&page, &settings),
            refused.as_ref(),
        ));
    }
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = InspectionPage {
        chrome: page.chrome(if owner { "Inspection" } else { "Exports" }),
        owner,
        building: exports.iter().any(|e| e.state == ExportState::Building),
        grants: grants
            .into_iter()
            .map(|g| {
                let status = serde_json::to_value(g.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let class = if status == "active" { "ok" } else { "plain" };
                GrantLine {
                    who: format!("{} ({})", g.display_name, g.email),
                    period: format!(
                        "{} to {}",
                        at_in_words(g.valid_from, tz),
                        at_in_words(g.valid_until, tz)
                    ),
                    purpose: g.purpose.clone().unwrap_or_default(),
                    revoke: (g.revoked_at.is_none() && status != "ended").then(|| {
                        super::records::refill(
                            FormView::new(
                                &format!("revoke-{}", g.id),
                                "Revoke this access now",
                                format!("/clinics/{c}/inspectors/{}/revoke", g.id),
                                "Revoke",
                                &page.browser.csrf,
                            )
                            .text("reason", "Why", ""),
                            refused.as_ref(),
                        )
                    }),
                    status: (status.replace('_', " "), class),
                }
            })
            .collect(),
        exports: exports
            .into_iter()
            .map(|e| {
                let (words, class) = match e.state {
                    ExportState::Building => ("being built", "warn"),
                    ExportState::Ready => ("ready", "ok"),
                    ExportState::Failed => ("failed", "bad"),
                };
                ExportLine {
                    period: period_in_words(e.from.naive_utc(), e.to.naive_utc(), tz),
                    requested: format!(
                        "{} by {}",
                        at_in_words(e.requested_at, tz),
                        e.requested_by
                            .as_ref()
                            .and_then(|id| names.get(id).cloned())
                            .unwrap_or_else(|| "an inspector".to_owned())
                    ),
                    state: (words.to_owned(), class),
                    ready: e.state == ExportState::Ready,
                    sha256: e.sha256.clone().unwrap_or_default(),
                    send: (owner && e.state == ExportState::Ready).then(|| {
                        super::records::refill(
                            FormView::new(
                                &format!("send-{}", e.id),
                                "Mail its summary and report to an inspector",
                                format!("/clinics/{c}/exports/{}/send", e.id),
                                "Send",
                                &page.browser.csrf,
                            )
                            .email("to", "To", ""),
                            refused.as_ref(),
                        )
                    }),
                    id: e.id,
                }
            })
            .collect(),
        mail: mail
            .into_iter()
            .map(|m| {
                let state = serde_json::to_value(m.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let class = match state.as_str() {
                    "sent" => "ok",
                    "failed" => "bad",
                    _ => "warn",
                };
                MailLine {
                    at: at_in_words(m.created_at, tz),
                    to: m.recipient,
                    subject: m.subject,
                    state: (state, class),
                    error: m.last_error.unwrap_or_default(),
                }
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| {
                (
                    e.seq,
                    at_in_words(crate::db::to_utc(e.recorded_at), tz),
                    e.actor_id
                        .as_ref()
                        .and_then(|id| names.get(id).cloned())
                        .unwrap_or(e.actor_kind),
                    e.action.replace(['.', '_'], " "),
                    e.reason.unwrap_or_default(),
                )
            })
            .collect(),
        verification: verification.map(|v| match v.first_break {
            None => (
                true,
                format!(
                    "Intact: all {} events check out, up to event {} ({}…).",
                    v.events_checked,
                    v.head_seq,
                    &v.head_hash[..v.head_hash.len().min(16)]
                ),
            ),
            Some(b) => (
                false,
                format!(
                    "Broken at event {}: {}. Tell whoever runs this service at once.",
                    b.seq, b.reason
                ),
            ),
        }),
        forms,
    };
    html(status, &body)
}

async fn inspection(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    render(req, page, None).await
}

async fn grant(req: HttpRequest, posted: super::Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_owner()?;
    let back = format!("/clinics/{}/inspection#grants", posted.page.clinic_id());
    let public_url = state(&req)?.settings.mail.public_url.clone();
    submit(
        req,
        posted,
        "new-grant",
        &[
            ("email", Kind::Text),
            ("display_name", Kind::Text),
            ("valid_from", Kind::LocalTime),
            ("valid_until", Kind::LocalTime),
            ("purpose", Kind::Text),
            ("client_details", Kind::Tick),
        ],
        back,
        move |conn, page, _, input| {
            crate::inspectors::usecases::grant(
                conn,
                &page.access.audit_context(),
                page.clinic_id(),
                input,
                &public_url,
            )
            .map(drop)
        },
        render,
    )
    .await
}

async fn revoke(
    req: HttpRequest,
    posted: super::Posted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    posted.page.access.require_owner()?;
    let (_, id) = path.into_inner();
    let back = format!("/clinics/{}/inspection#grants", posted.page.clinic_id());
    let form = format!("revoke-{id}");
    submit(
        req,
        posted,
        &form,
        &[("reason", Kind::Text)],
        back,
        move |conn, page, _, input| {
            crate::inspectors::usecases::revoke(
                conn,
                &page.access.audit_context(),
                page.clinic_id(),
                &id,
                input,
            )
            .map(drop)
        },
        render,
    )
    .await
}

async fn request_export(
    req: HttpRequest,
    posted: super::Posted,
) -> Result<HttpResponse, PageError> {
    posted.page.access.require_owner_or_inspector()?;
    let state = state(&req)?;
    let (json, early) = super::forms::to_json(
        &posted.fields,
        &[("first_day", Kind::Text), ("last_day", Kind::Text)],
        posted.page.tz,
    );
    let outcome = match crate::input::from_value(json, "") {
        Ok(input) if early.is_empty() => {
            crate::api::exports::request_and_build(&state, &posted.page.access, input)
                .await
                .map(drop)
        }
        Ok(_) => Err(AppError::Validation(early)),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(super::see_other(&format!(
            "/clinics/{}/inspection#exports",
            posted.page.clinic_id()
        ))),
        Err(e) => {
            let errors = super::forms::refusal(e, &["first_day", "last_day"])?;
            render(
                req,
                posted.page,
                Some(Refused {
                    form: "new-export".into(),
                    fields: posted.fields,
                    errors,
                }),
            )
            .await
        }
    }
}

async fn ready_export(
    req: &HttpRequest,
    page: &ClinicPage,
    id: String,
) -> Result<crate::exports::usecases::ExportView, PageError> {
    page.access.require_owner_or_inspector()?;
    let state = state(req)?;
    let clinic = page.clinic_id().to_owned();
    let view = db::run(&state.pool, move |conn| {
        crate::exports::usecases::get(conn, &clinic, &id)
    })
    .await?;
    if view.state != ExportState::Ready {
        return Err(AppError::Conflict(
            "the export is not ready yet: reload the page in a moment".into(),
        )
        .into());
    }
    Ok(view)
}

async fn download(
    req: HttpRequest,
    page: ClinicPage,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let view = ready_export(&req, &page, id.clone()).await?;
    let state = state(&req)?;
    let mut response = crate::api::exports::zip_response(&state, page.clinic_id(), &id, &view)?;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The export's report, taken out of its zip: what an inspector reads first.
async fn report(
    req: HttpRequest,
    page: ClinicPage,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (_, id) = path.into_inner();
    let view = ready_export(&req, &page, id.clone()).await?;
    let state = state(&req)?;
    let file = crate::exports::usecases::file_path(
        &state.settings.exports.dir,
        page.clinic_id(),
        &view.id,
    );
    let pdf = web::block(move || -> Result<Vec<u8>, String> {
        use std::io::Read;
        let f = std::fs::File::open(file).map_err(|e| e.to_string())?;
        let mut zip = zip::ZipArchive::new(f).map_err(|e| e.to_string())?;
        let mut entry = zip.by_name("report.pdf").map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        entry.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    })
    .await
    .map_err(AppError::internal)?
    .map_err(|_| AppError::Conflict("the export's file is gone: ask for it again".into()))?;
    Ok(super::secured(HttpResponse::Ok())
        .content_type("application/pdf")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"aseptic-report-{id}.pdf\""),
        ))
        .body(pdf))
}

async fn send(
    req: HttpRequest,
    posted: super::Posted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    posted.page.access.require_owner()?;
    let (_, id) = path.into_inner();
    let state = state(&req)?;
    let back = format!("/clinics/{}/inspection#mail", posted.page.clinic_id());
    let form = format!("send-{id}");
    let public_url = state.settings.mail.public_url.clone();
    #[derive(serde::Deserialize)]
    struct To {
        to: String,
    }
    submit(
        req,
        posted,
        &form,
        &[("to", Kind::Text)],
        back,
        move |conn, page, profiles, input: To| {
            crate::mail::usecases::send_now(
                conn,
                profiles,
                &page.access.audit_context(),
                page.clinic_id(),
                &id,
                &input.to,
                &public_url,
            )
            .map(drop)
        },
        render,
    )
    .await
}

fn settings_form(
    page: &ClinicPage,
    current: &crate::outbox::settings::MailSettingsView,
) -> FormView {
    let (frequency, day, time) = match &current.summary {
        Some(s) => (
            serde_json::to_value(s.frequency)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            s.day.to_string(),
            s.time.clone(),
        ),
        None => ("none".to_owned(), "1".to_owned(), "08:00".to_owned()),
    };
    FormView::new(
        "mail-settings",
        "Mail settings",
        format!("/clinics/{}/mail/settings", page.clinic_id()),
        "Save the settings",
        &page.browser.csrf,
    )
    .select(
        "summary.frequency",
        "Audit summary",
        "Mailed to the clinic's inspectors and the addresses below",
        vec![
            ("none".into(), "None".into()),
            ("weekly".into(), "Weekly".into()),
            ("monthly".into(), "Monthly".into()),
        ],
    )
    .whole(
        "summary.day",
        "On day",
        "Weekly: 1 (Monday) to 7 (Sunday); monthly: 1 to 28",
    )
    .text("summary.time", "At", &format!("HH:MM, {}", page.tz.name()))
    .textarea("recipients", "Also to", "One address per line")
    .email(
        "authority_email",
        "The health authority's address",
        "For what the jurisdiction says to report at once",
    )
    .with("summary.frequency", frequency)
    .with("summary.day", day)
    .with("summary.time", time)
    .with("recipients", current.recipients.join("\n"))
    .with(
        "authority_email",
        current.authority_email.clone().unwrap_or_default(),
    )
}

async fn mail_settings(req: HttpRequest, posted: super::Posted) -> Result<HttpResponse, PageError> {
    posted.page.access.require_owner()?;
    let back = format!(
        "/clinics/{}/inspection#mail-settings",
        posted.page.clinic_id()
    );
    let f = &posted.fields;
    let mut body = serde_json::json!({
        "recipients": f.get("recipients").lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>(),
        "authority_email": f.opt("authority_email"),
    });
    if f.get("summary.frequency") != "none" {
        let day = f.get("summary.day");
        body["summary"] = serde_json::json!({
            "frequency": f.get("summary.frequency"),
            "day": day.parse::<u32>().map_or(serde_json::Value::String(day.to_owned()), serde_json::Value::from),
            "time": f.get("summary.time"),
        });
    }
    let state = state(&req)?;
    let outcome =
        match crate::input::from_sent::<crate::outbox::settings::MailSettingsInput>(body, "") {
            Ok(input) => {
                let (ctx, clinic) = (
                    posted.page.access.audit_context(),
                    posted.page.clinic_id().to_owned(),
                );
                db::run(&state.pool, move |conn| {
                    crate::outbox::settings::put(conn, &ctx, &clinic, &input)
                })
                .await
                .map(drop)
            }
            Err(e) => Err(e),
        };
    match outcome {
        Ok(()) => Ok(super::see_other(&back)),
        Err(e) => {
            let errors = super::forms::refusal(
                e,
                &[
                    "summary.frequency",
                    "summary.day",
                    "summary.time",
                    "recipients",
                    "authority_email",
                ],
            )?;
            render(
                req,
                posted.page,
                Some(Refused {
                    form: "mail-settings".into(),
                    fields: posted.fields,
                    errors,
                }),
            )
            .await
        }
    }
}
