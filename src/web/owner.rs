//! The owner's readiness dashboard: what an inspector would find, what falls due, the failures
//! and whom they reach, as of now or a past date; with charts where a person would rather look.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Datelike, Duration, NaiveDate};

use super::as_of::AsOf;
use super::charts::{self, Column, Dot, Tone};
use super::chrome::{state, Chrome, ClinicPage};
use super::PageError;
use crate::clinics::context::at_in_words;
use crate::compliance::readiness::{self, ReadinessView};
use crate::compliance::rules::Severity;
use crate::db;
use crate::sterilisation::model::{Biological, Outcome};
use crate::sterilisation::store::LogFilter;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clinics/{clinic}/dashboard", web::get().to(dashboard))
        .route(
            "/clinics/{clinic}/lookbacks.csv",
            web::get().to(lookback_csv),
        );
}

/// Where a finding's subject is recorded, as a page.
pub fn subject_href(clinic_id: &str, subject: &str) -> Option<String> {
    let (kind, id) = subject.split_once(':')?;
    let c = clinic_id;
    Some(match kind {
        "steriliser" => format!("/clinics/{c}/sterilisers#steriliser-{id}"),
        "pack" => format!("/clinics/{c}/cycles?pack={id}"),
        "session" => format!("/clinics/{c}/sessions/{id}"),
        "lot" => format!("/clinics/{c}/lots#lot-{id}"),
        "member" => format!("/clinics/{c}/staff#member-{id}"),
        "incident" => format!("/clinics/{c}/incidents/{id}"),
        "mail" => format!("/clinics/{c}/inspection#mail"),
        _ => return None,
    })
}

struct FindingLine {
    message: String,
    reference: String,
    due: Option<String>,
    href: Option<String>,
}

struct Group {
    title: &'static str,
    advice: &'static str,
    class: &'static str,
    findings: Vec<FindingLine>,
}

struct ClientToCall {
    name: String,
    contact: String,
    planned: String,
    via: String,
}

struct FailureLine {
    what: String,
    packs: usize,
    sessions: usize,
    /// The first of them; the CSV has every one.
    clients: Vec<ClientToCall>,
    csv: String,
}

/// How many of a look-back's sessions the page lists; the CSV holds them all.
const CLIENTS_SHOWN: usize = 50;

struct TestsLine {
    steriliser: String,
    spore: String,
    spore_class: &'static str,
    air: String,
    air_class: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard.html", config = "src/web/askama.toml")]
struct DashboardPage {
    chrome: Chrome,
    as_of: AsOf,
    blockers: usize,
    warnings: usize,
    groups: Vec<Group>,
    due_soon: Vec<(String, String, Option<String>)>,
    tests: Vec<TestsLine>,
    failures: Vec<FailureLine>,
    set_aside: Vec<(String, String, String, String)>,
    mail: Vec<(String, String, String)>,
    charts: Vec<(String, String)>,
    chain: String,
}

fn biological_words(b: Biological) -> (&'static str, &'static str) {
    match b {
        Biological::Negative => ("negative", "ok"),
        Biological::Positive => ("positive", "bad"),
        Biological::Pending => ("incubating", "warn"),
        Biological::Invalid => ("invalid: repeat it", "bad"),
        Biological::None => ("none", "plain"),
    }
}

async fn dashboard(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    page.access.require_owner_or_inspector()?;
    let state = state(&req)?;
    let tz = page.tz;
    let as_of = AsOf::read(&req, &page).await?;
    let at = as_of.at;
    let standing = as_of.standing();
    let (clinic, profiles, caller) = (
        page.clinic_id().to_owned(),
        state.profiles.clone(),
        page.browser.user.id.clone(),
    );
    let (view, cycles, spore, per_day, names) = db::run(&state.pool, move |conn| {
        let view = readiness::dashboard(conn, &profiles, &clinic, &caller, at)?;
        let moment = view.compliance.at.naive_utc();
        // Whether each load passed is all the chart needs: not every pack judged.
        let outcomes = crate::sterilisation::usecases::gate::load_outcomes(
            conn,
            &clinic,
            moment - Duration::weeks(12),
            moment,
        )?;
        let mut cycles = Vec::new();
        let mut spore = Vec::new();
        for s in crate::sterilisation::store::list_sterilisers(conn, &clinic)? {
            cycles.push((
                s.name(),
                outcomes
                    .iter()
                    .filter(|(steriliser, _, _)| *steriliser == s.id)
                    .map(|(_, started, outcome)| (*started, *outcome))
                    .collect::<Vec<_>>(),
            ));
            let (t, _) = crate::sterilisation::usecases::list_spore_tests(
                conn,
                &clinic,
                &LogFilter {
                    steriliser_id: Some(s.id.clone()),
                    from: Some(moment - Duration::days(365)),
                    to: Some(moment),
                    limit: 2000,
                    at: standing,
                    ..Default::default()
                },
            )?;
            spore.push((s.name(), t));
        }
        let per_day = crate::sessions::store::planned_between(
            conn,
            &clinic,
            moment - Duration::days(30),
            moment,
        )?;
        let names: HashMap<String, String> = crate::auth::store::members_of(conn, &clinic)?
            .into_iter()
            .map(|(_, u)| (u.id, u.display_name))
            .collect();
        Ok((view, cycles, spore, per_day, names))
    })
    .await?;
    let moment = view.compliance.at;
    let c = page.clinic_id().to_owned();
    let details = page.access.client_details;
    let ReadinessView {
        compliance,
        due_soon,
        sterilisers,
        failures,
        set_aside,
        mail_given_up,
    } = view;
    let groups = [
        (
            Severity::Blocker,
            "Must be put right before work goes on",
            "Stop the work each one names, and do what it says.",
            "bad",
        ),
        (
            Severity::Warning,
            "To put right soon",
            "Each says what to do and by when.",
            "warn",
        ),
        (Severity::Info, "For your information", "", "plain"),
    ]
    .into_iter()
    .map(|(severity, title, advice, class)| Group {
        title,
        advice,
        class,
        findings: compliance
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| FindingLine {
                message: super::capitalise(&f.message),
                reference: f.reference.clone(),
                due: f.due_local.clone(),
                href: subject_href(&c, &f.subject),
            })
            .collect(),
    })
    .collect();

    // Loads per week, the last twelve weeks, failed loads marked.
    let mut charts_out = Vec::new();
    let monday = |d: NaiveDate| d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let last_week = monday(moment.with_timezone(&tz).date_naive());
    for (name, views) in &cycles {
        let mut weeks: BTreeMap<NaiveDate, (u32, u32)> = (0..12)
            .map(|i| (last_week - Duration::weeks(11 - i), (0, 0)))
            .collect();
        for (started, outcome) in views {
            let week = monday(started.and_utc().with_timezone(&tz).date_naive());
            if let Some(w) = weeks.get_mut(&week) {
                w.0 += 1;
                if *outcome == Outcome::Fail {
                    w.1 += 1;
                }
            }
        }
        let columns: Vec<Column> = weeks
            .iter()
            .map(|(week, (total, failed))| Column {
                label: week.format("%-d %b").to_string(),
                total: *total,
                marked: *failed,
            })
            .collect();
        let title = format!("Loads per week, {name}");
        charts_out.push((title.clone(), charts::bars(&title, "failed", &columns)));
    }
    for (name, tests) in &spore {
        let start = moment - Duration::days(365);
        let span = (moment - start).num_seconds().max(1) as f64;
        let dots: Vec<Dot> = tests
            .iter()
            .map(|t| {
                let (words, _) = biological_words(t.outcome);
                Dot {
                    at: (t.fields.placed_at - start).num_seconds() as f64 / span,
                    label: format!(
                        "{}: {words}",
                        t.fields.placed_at.with_timezone(&tz).format("%-d %b %Y")
                    ),
                    tone: match t.outcome {
                        Biological::Negative => Tone::Good,
                        Biological::Positive | Biological::Invalid => Tone::Bad,
                        _ => Tone::Neutral,
                    },
                }
            })
            .collect();
        let title = format!("Spore tests over the last year, {name}");
        charts_out.push((
            title.clone(),
            charts::timeline(
                &title,
                &start.with_timezone(&tz).format("%b %Y").to_string(),
                &moment.with_timezone(&tz).format("%b %Y").to_string(),
                &dots,
            ),
        ));
    }
    {
        let end = moment.with_timezone(&tz).date_naive();
        let mut days: BTreeMap<NaiveDate, (u32, u32)> = (0..30)
            .map(|i| (end - Duration::days(29 - i), (0, 0)))
            .collect();
        for (planned, overridden) in &per_day {
            let day = planned.and_utc().with_timezone(&tz).date_naive();
            if let Some(d) = days.get_mut(&day) {
                d.0 += 1;
                if *overridden {
                    d.1 += 1;
                }
            }
        }
        let columns: Vec<Column> = days
            .iter()
            .map(|(day, (total, overridden))| Column {
                label: day.format("%-d %b").to_string(),
                total: *total,
                marked: *overridden,
            })
            .collect();
        let title = "Client sessions per day, the last 30 days".to_owned();
        charts_out.push((
            title.clone(),
            charts::bars(&title, "started by an owner despite refusals", &columns),
        ));
    }

    let name_of = |id: &Option<String>| {
        id.as_ref()
            .and_then(|i| names.get(i).cloned())
            .unwrap_or_else(|| "someone".to_owned())
    };
    let status = as_of.status();
    let body = DashboardPage {
        chrome: page.chrome(if page.role() == crate::auth::Role::Inspector {
            "Compliance"
        } else {
            "Dashboard"
        }),
        as_of,
        blockers: compliance.summary.blocker,
        warnings: compliance.summary.warning,
        groups,
        due_soon: due_soon
            .iter()
            .map(|d| {
                (
                    super::capitalise(&d.what),
                    d.due_local.clone(),
                    subject_href(&c, &d.subject),
                )
            })
            .collect(),
        tests: sterilisers
            .iter()
            .map(|s| {
                let (spore_words, spore_class) = s
                    .last_spore_test_outcome
                    .map_or(("none recorded", "bad"), biological_words);
                let (air_words, air_class) = match s.last_air_removal_passed {
                    Some(true) => ("passed", "ok"),
                    Some(false) => ("failed", "bad"),
                    None => ("none recorded", "plain"),
                };
                TestsLine {
                    steriliser: s.steriliser.clone(),
                    spore: match s.last_spore_test_placed_at {
                        Some(t) => format!("{}: {spore_words}", at_in_words(t, tz)),
                        None => spore_words.to_owned(),
                    },
                    spore_class,
                    air: match s.last_air_removal_at {
                        Some(t) => format!("{}: {air_words}", at_in_words(t, tz)),
                        None => air_words.to_owned(),
                    },
                    air_class,
                }
            })
            .collect(),
        failures: failures
            .into_iter()
            .map(|f| {
                let lookback = if details {
                    f.lookback
                } else {
                    f.lookback.pseudonymous()
                };
                FailureLine {
                    what: f.what,
                    packs: lookback.packs.len(),
                    sessions: lookback.sessions.len(),
                    clients: lookback
                        .sessions
                        .iter()
                        .take(CLIENTS_SHOWN)
                        .map(|s| ClientToCall {
                            name: s.client_name.clone().unwrap_or_else(|| {
                                format!("Client {}", super::technician::short(&s.client_id))
                            }),
                            contact: s.client_contact.clone().unwrap_or_default(),
                            planned: at_in_words(s.planned_at, tz),
                            via: s.via.clone(),
                        })
                        .collect(),
                    csv: format!("/clinics/{c}/lookbacks.csv?{}={}", f.trigger, f.trigger_id),
                }
            })
            .collect(),
        set_aside: set_aside
            .iter()
            .map(|s| {
                (
                    s.pack_code.clone(),
                    s.reason.clone(),
                    format!(
                        "{} by {}",
                        at_in_words(s.set_aside_at, tz),
                        name_of(&s.set_aside_by)
                    ),
                    format!("/clinics/{c}/sessions/{}", s.session_id),
                )
            })
            .collect(),
        mail: mail_given_up
            .iter()
            .map(|m| {
                (
                    m.kind.replace('_', " "),
                    m.recipient.clone(),
                    m.subject.clone(),
                )
            })
            .collect(),
        charts: charts_out,
        chain: compliance
            .chain
            .as_ref()
            .map(|p| {
                format!(
                    "audit event {} ({}…)",
                    p.seq,
                    &p.hash[..p.hash.len().min(12)]
                )
            })
            .unwrap_or_default(),
    };
    super::html(status, &body)
}

/// A look-back's sessions as CSV, for calling clients: the API's CSV, through the page's sign-in.
async fn lookback_csv(req: HttpRequest, page: ClinicPage) -> Result<HttpResponse, PageError> {
    page.access.require_owner_or_inspector()?;
    let state = state(&req)?;
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let trigger = crate::compliance::lookback::trigger_from(
        query.get("spore_test").cloned(),
        query.get("cycle").cloned(),
        query.get("lot").cloned(),
        None,
        None,
        None,
    )?;
    let clinic = page.clinic_id().to_owned();
    let result = db::run(&state.pool, move |conn| {
        crate::compliance::lookback::compute(conn, &clinic, &trigger)
    })
    .await?;
    let result = if page.access.client_details {
        result
    } else {
        result.pseudonymous()
    };
    Ok(super::secured(HttpResponse::Ok())
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"lookback-{}-{}.csv\"",
                result.trigger,
                super::technician::short(&result.trigger_id)
            ),
        ))
        .body(crate::compliance::lookback::to_csv(&result)))
}
