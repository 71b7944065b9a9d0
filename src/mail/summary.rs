//! The audit summary an inspector receives: readiness at the period's end, what failed in the
//! period and how far each failure's look-back reaches, what is about to expire and what is
//! overdue, with a link to the period's signed export (whose report.pdf is attached).

use chrono::NaiveDateTime;
use diesel::dsl::not;
use diesel::prelude::*;

use crate::compliance::lookback::{compute, Trigger};
use crate::compliance::rules::{Finding, Rule, Severity};
use crate::db::schema::{
    air_removal_tests, cycles, incident_closures, incidents, sessions, spore_test_results,
    spore_tests,
};
use crate::db::{to_utc, DbConn};
use crate::error::AppResult;
use crate::exports::report::local;
use crate::jurisdiction::profiles::Profiles;
use crate::records::{current, current_by};

pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// "1 load", "2 loads".
pub fn count_of(n: impl TryInto<i64> + Copy, noun: &str) -> String {
    let n: i64 = n.try_into().unwrap_or(i64::MAX);
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A section of the summary: a heading and lines, written once for both bodies.
struct Section {
    heading: String,
    lines: Vec<String>,
}

pub struct SummaryInput<'a> {
    pub clinic_id: &'a str,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub export_id: &'a str,
    pub public_url: &'a str,
}

pub fn compose(
    conn: &mut DbConn,
    profiles: &Profiles,
    input: &SummaryInput<'_>,
) -> AppResult<Composed> {
    let c = input.clinic_id;
    let crate::clinics::context::ClinicContext {
        clinic,
        tz,
        profile,
    } = crate::clinics::context::load(conn, profiles, c)?;
    let profile_name = profile.name.clone();
    // Judged at the moment the attached export's report is judged at (the period's end, or the
    // export's request for a running period), and named to the second: a summary composed or
    // sent later still says what was true then, and says when that was.
    let requested_at: NaiveDateTime = crate::db::schema::exports::table
        .find(input.export_id)
        .select(crate::db::schema::exports::requested_at)
        .first(conn)?;
    let at = to_utc(crate::exports::bundle::judgement_moment(
        input.to,
        requested_at,
        clinic.created_at,
    ));
    let view = crate::compliance::view::view(conn, profiles, c, Some(at))?;
    let (from, to) = (input.from, input.to);

    let PeriodCounts {
        loads,
        failed_loads,
        air,
        read,
        session_count,
        incident_rows,
    } = period_counts(conn, c, from, to)?;

    let mut sections = Vec::new();
    let count = |sev: Severity| view.findings.iter().filter(|f| f.severity == sev).count();
    sections.push(Section {
        heading: format!(
            "Readiness at {}",
            crate::exports::report::exact(at.naive_utc(), tz)
        ),
        lines: vec![
            format!(
                "{}, {}, {}",
                count_of(count(Severity::Blocker), "blocker"),
                count_of(count(Severity::Warning), "warning"),
                count_of(count(Severity::Info), "note")
            ),
            format!(
                "Judged as the records stood at {} UTC; the compliance view with at={} shows the same findings. Later records are not counted here.",
                crate::audit::chain::format_time(at.naive_utc()),
                crate::audit::chain::format_time(at.naive_utc())
            ),
        ],
    });

    let mut period = vec![
        format!("{}, {failed_loads} failed", count_of(loads, "load")),
        format!(
            "{}, {} failed",
            count_of(air.len(), "air-removal test"),
            air.iter().filter(|p| !**p).count()
        ),
    ];
    let positives: Vec<&(String, NaiveDateTime, String, String)> = read
        .iter()
        .filter(|(_, _, result, control)| {
            crate::sterilisation::model::is_valid_positive(result, control)
        })
        .collect();
    period.push(format!(
        "{} read, {} positive",
        count_of(read.len(), "spore test"),
        positives.len()
    ));
    for (id, placed, _, _) in positives {
        let l = compute(conn, c, &Trigger::SporeTest(id.clone()))?;
        period.push(format!(
            "POSITIVE spore test placed {}: look-back reaches {}, {} and {}",
            local(*placed, tz),
            count_of(l.cycle_ids.len(), "load"),
            count_of(l.packs.len(), "pack"),
            count_of(l.sessions.len(), "session")
        ));
    }
    period.push(count_of(session_count, "client session"));
    let open = incident_rows.iter().filter(|(_, _, c)| c.is_none()).count();
    period.push(format!(
        "{}, {} still open",
        count_of(incident_rows.len(), "incident"),
        open
    ));
    sections.push(Section {
        heading: format!(
            "The period, {} to {} ({})",
            local(from, tz),
            local(to, tz),
            clinic.timezone
        ),
        lines: period,
    });

    sections.extend(finding_sections(&view.findings, tz));

    let link = format!(
        "{}/api/v1/clinics/{c}/exports/{}/download",
        input.public_url.trim_end_matches('/'),
        input.export_id
    );
    let subject = format!(
        "Audit summary: {} — {}",
        clinic.name,
        crate::clinics::context::period_in_words(from, to, tz)
    );
    let title = format!(
        "Audit summary for {}{}",
        clinic.name,
        clinic
            .registration_number
            .as_deref()
            .map(|r| format!(" (registration {r})"))
            .unwrap_or_default()
    );
    let (text, html) = bodies(&title, &profile_name, &sections, &link);
    Ok(Composed {
        subject,
        text,
        html,
    })
}

/// What happened in the period, counted for the summary.
struct PeriodCounts {
    loads: i64,
    failed_loads: i64,
    air: Vec<bool>,
    read: Vec<(String, NaiveDateTime, String, String)>,
    session_count: i64,
    incident_rows: Vec<(String, String, Option<NaiveDateTime>)>,
}

fn period_counts(
    conn: &mut DbConn,
    c: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<PeriodCounts> {
    let loads: i64 = cycles::table
        .filter(cycles::clinic_id.eq(c))
        .filter(current("cycles"))
        .filter(cycles::started_at.ge(from))
        .filter(cycles::started_at.lt(to))
        .count()
        .get_result(conn)?;
    let failed_loads: i64 = cycles::table
        .filter(cycles::clinic_id.eq(c))
        .filter(current("cycles"))
        .filter(cycles::started_at.ge(from))
        .filter(cycles::started_at.lt(to))
        .filter(
            cycles::peak_temperature_c
                .lt(cycles::program_temperature_c)
                .or(cycles::hold_minutes.lt(cycles::program_hold_minutes))
                .or(not(cycles::load_indicator_passed)),
        )
        .count()
        .get_result(conn)?;
    let air: Vec<bool> = air_removal_tests::table
        .filter(air_removal_tests::clinic_id.eq(c))
        .filter(current("air_removal_tests"))
        .filter(air_removal_tests::performed_at.ge(from))
        .filter(air_removal_tests::performed_at.lt(to))
        .select(air_removal_tests::passed)
        .load(conn)?;
    let read: Vec<(String, NaiveDateTime, String, String)> = spore_tests::table
        .inner_join(
            spore_test_results::table.on(spore_test_results::spore_test_id.eq(spore_tests::id)),
        )
        .filter(spore_tests::clinic_id.eq(c))
        .filter(current("spore_tests"))
        .filter(current_by("spore_test_results", "spore_test_id"))
        .filter(spore_test_results::read_at.ge(from))
        .filter(spore_test_results::read_at.lt(to))
        .select((
            spore_tests::id,
            spore_tests::placed_at,
            spore_test_results::result,
            spore_test_results::control_result,
        ))
        .order(spore_tests::placed_at.asc())
        .load(conn)?;
    let session_count: i64 = sessions::table
        .filter(sessions::clinic_id.eq(c))
        .filter(sessions::planned_at.ge(from))
        .filter(sessions::planned_at.lt(to))
        .count()
        .get_result(conn)?;
    let incident_rows: Vec<(String, String, Option<NaiveDateTime>)> = incidents::table
        .left_join(incident_closures::table.on(incident_closures::incident_id.eq(incidents::id)))
        .filter(incidents::clinic_id.eq(c))
        .filter(current("incidents"))
        .filter(incidents::occurred_at.ge(from))
        .filter(incidents::occurred_at.lt(to))
        .select((
            incidents::id,
            incidents::kind,
            incident_closures::closed_at.nullable(),
        ))
        .load(conn)?;
    Ok(PeriodCounts {
        loads,
        failed_loads,
        air,
        read,
        session_count,
        incident_rows,
    })
}

/// What is blocking, what expires soon, and the rest, each finding with its due time.
fn finding_sections(findings: &[Finding], tz: chrono_tz::Tz) -> Vec<Section> {
    let mut out = Vec::new();
    let line = |f: &Finding| match f.due {
        Some(due) => format!("{} (due {})", f.message, local(due.naive_utc(), tz)),
        None => f.message.clone(),
    };
    let overdue: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker)
        .map(line)
        .collect();
    out.push(Section {
        heading: "Overdue or blocking".into(),
        lines: if overdue.is_empty() {
            vec!["nothing".into()]
        } else {
            overdue
        },
    });
    let expiring: Vec<String> = findings
        .iter()
        .filter(|f| {
            f.rule == Rule::LotExpiring
                || (f.rule == Rule::TechnicianEligibility && f.severity == Severity::Warning)
        })
        .map(line)
        .collect();
    out.push(Section {
        heading: "Expiring within 30 days (credentials and lots)".into(),
        lines: if expiring.is_empty() {
            vec!["nothing".into()]
        } else {
            expiring
        },
    });
    let other: Vec<String> = findings
        .iter()
        .filter(|f| {
            f.severity != Severity::Blocker
                && f.rule != Rule::LotExpiring
                && f.rule != Rule::TechnicianEligibility
        })
        .map(line)
        .collect();
    if !other.is_empty() {
        out.push(Section {
            heading: "Other warnings and notes".into(),
            lines: other,
        });
    }
    out
}

/// The plain-text and HTML bodies, from the same sections.
fn bodies(title: &str, profile_name: &str, sections: &[Section], link: &str) -> (String, String) {
    let mut text = format!("{title}\nJurisdiction profile: {profile_name}\n");
    let mut html = format!(
        "<!DOCTYPE html><html><body style=\"font-family: sans-serif\"><h1>{}</h1><p>Jurisdiction profile: {}</p>",
        escape(title),
        escape(profile_name)
    );
    for s in sections {
        text.push_str(&format!("\n{}\n", s.heading));
        html.push_str(&format!("<h2>{}</h2><ul>", escape(&s.heading)));
        for l in &s.lines {
            text.push_str(&format!("- {l}\n"));
            html.push_str(&format!("<li>{}</li>", escape(l)));
        }
        html.push_str("</ul>");
    }
    let closing = "The period's report.pdf and the export's signed manifest.json are attached. The link opens the signed export (CSV files, the audit chain and a manifest signed with this installation's key) once you are signed in: owners, and inspectors while their access runs, send their access token with the request. The export's VERIFY.txt says step by step how to check it with sha256sum and openssl.";
    text.push_str(&format!("\nSigned export: {link}\n\n{closing}\n"));
    html.push_str(&format!(
        "<p>Signed export: <a href=\"{0}\">{0}</a></p><p>{1}</p></body></html>",
        escape(link),
        escape(closing)
    ));
    (text, html)
}
