//! `report.pdf`: the export read as a document — a cover with the readiness summary, the
//! registers and logs of the period as tables (failures highlighted), and a last page naming the
//! chain head and the signing key. Times in the clinic's time zone.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use diesel::prelude::*;

use super::pdf::{render, str_lit as s};
use crate::compliance::lookback::{compute, Trigger};
use crate::compliance::profiles::Profiles;
use crate::compliance::rules::Severity;
use crate::db::schema::{
    air_removal_tests, cycles, incident_closures, incident_follow_ups, incidents, lot_recalls,
    lots, spore_test_results, spore_tests, sterilisers,
};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::incidents::model::{required_follow_ups, IncidentKind};
use crate::records::current;

pub struct ReportInput<'a> {
    pub clinic_id: &'a str,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub judged_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub head_hash: &'a str,
    pub key_fingerprint: &'a str,
    /// The compliance view at `judged_at` and the facts it judged (computed once per export).
    pub view: &'a crate::compliance::view::ComplianceView,
    pub facts: &'a crate::compliance::rules::Facts,
}

fn local(t: NaiveDateTime, tz: Tz) -> String {
    t.and_utc()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn red(text: &str) -> String {
    format!(
        "text(fill: rgb(\"#b00020\"), weight: \"bold\", {})",
        s(text)
    )
}

fn table(columns: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut out = format!(
        "#table(columns: {}, table.header({}),\n",
        columns.len(),
        columns
            .iter()
            .map(|c| format!("strong({})", s(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for row in rows {
        out.push_str(&row.join(", "));
        out.push_str(",\n");
    }
    out.push_str(")\n");
    out
}

pub fn build(conn: &mut DbConn, profiles: &Profiles, r: &ReportInput<'_>) -> AppResult<Vec<u8>> {
    let clinic = crate::clinics::store::find(conn, r.clinic_id)?.ok_or(AppError::NotFound)?;
    let tz: Tz = clinic.timezone.parse().unwrap_or(chrono_tz::UTC);
    let profile = profiles
        .get(&clinic.jurisdiction)
        .or_else(|| profiles.get("baseline"))
        .ok_or_else(|| AppError::internal("no baseline profile"))?;
    let c = r.clinic_id;
    let (view, facts) = (r.view, r.facts);

    let mut m = String::new();
    m.push_str("#set document(title: \"Audit report\")\n");
    m.push_str("#set page(paper: \"a4\", margin: (x: 1.5cm, y: 1.8cm), footer: context align(right, text(8pt, counter(page).display(\"1 / 1\", both: true))))\n");
    m.push_str("#set text(font: \"Libertinus Serif\", size: 9pt)\n");
    m.push_str("#set table(stroke: 0.4pt + luma(160), inset: 3.5pt)\n");
    m.push_str("#show heading: set block(above: 1.4em, below: 0.8em)\n");

    // Cover.
    m.push_str(&format!(
        "#align(center)[#v(3cm) #text(22pt, weight: \"bold\", \"Audit report\") #v(0.6cm) #text(15pt, {}) #v(0.3cm) #text(11pt, {})]\n#v(1.2cm)\n",
        s(&clinic.name),
        s(&format!(
            "{} to {} ({})",
            local(r.from, tz),
            local(r.to, tz),
            clinic.timezone
        ))
    ));
    let count = |sev: Severity| view.findings.iter().filter(|f| f.severity == sev).count();
    m.push_str(&table(
        &["", ""],
        vec![
            vec![s("Clinic"), s(&clinic.name)],
            vec![
                s("Registration"),
                s(clinic
                    .registration_number
                    .as_deref()
                    .unwrap_or("not recorded")),
            ],
            vec![
                s("Address"),
                s(clinic.address.as_deref().unwrap_or("not recorded")),
            ],
            vec![
                s("Jurisdiction profile"),
                s(&format!("{} ({})", profile.name, profile.id)),
            ],
            vec![
                s("Period"),
                s(&format!("{} to {}", local(r.from, tz), local(r.to, tz))),
            ],
            vec![
                s("Readiness at the period's end"),
                s(&format!(
                    "{} blockers, {} warnings, {} notes (judged {})",
                    count(Severity::Blocker),
                    count(Severity::Warning),
                    count(Severity::Info),
                    local(r.judged_at, tz)
                )),
            ],
            vec![s("Export created"), s(&local(r.created_at, tz))],
        ],
    ));
    if !view.findings.is_empty() {
        m.push_str("== Findings at the period's end\n");
        m.push_str(&table(
            &["Severity", "Rule", "Finding"],
            view.findings
                .iter()
                .map(|f| {
                    let sev = format!("{:?}", f.severity).to_lowercase();
                    vec![
                        if f.severity == Severity::Blocker {
                            red(&sev)
                        } else {
                            s(&sev)
                        },
                        s(&f.rule),
                        s(&f.message),
                    ]
                })
                .collect(),
        ));
    }

    // Sterilisers.
    m.push_str("#pagebreak()\n= Steriliser register\n");
    let sters: Vec<crate::sterilisation::store::SteriliserRow> = sterilisers::table
        .filter(sterilisers::clinic_id.eq(c))
        .filter(current("sterilisers"))
        .select(crate::sterilisation::store::SteriliserRow::as_select())
        .order(sterilisers::serial_number.asc())
        .load(conn)?;
    let serial: HashMap<String, String> = sters
        .iter()
        .map(|x| (x.id.clone(), x.serial_number.clone()))
        .collect();
    m.push_str(&table(
        &[
            "Make and model",
            "Serial",
            "Kind",
            "Location",
            "Status at the period's end",
        ],
        sters
            .iter()
            .map(|x| {
                let f = facts.sterilisers.iter().find(|f| f.id == x.id);
                let status = match f {
                    Some(f) if f.quarantined => red("quarantined (positive spore test)"),
                    Some(f) if !f.in_service => s("out of service"),
                    _ => s("in service"),
                };
                vec![
                    s(&format!("{} {}", x.make, x.model)),
                    s(&x.serial_number),
                    s(&x.kind.replace('_', "-")),
                    s(x.location.as_deref().unwrap_or("")),
                    status,
                ]
            })
            .collect(),
    ));

    // Cycle log.
    m.push_str("= Cycle log\n");
    let loads: Vec<crate::sterilisation::store::CycleRow> = cycles::table
        .filter(cycles::clinic_id.eq(c))
        .filter(current("cycles"))
        .filter(cycles::started_at.ge(r.from))
        .filter(cycles::started_at.lt(r.to))
        .select(crate::sterilisation::store::CycleRow::as_select())
        .order((cycles::started_at.asc(), cycles::id.asc()))
        .load(conn)?;
    // Day by day (the load-by-load log is cycles.csv), then every failed load in full: an
    // inspector reads it, and the document stays small whatever the period.
    let mut days: std::collections::BTreeMap<(String, String), (usize, i64, i64, usize)> =
        std::collections::BTreeMap::new();
    let mut failed_loads = Vec::new();
    for l in &loads {
        let physics = l.peak_temperature_c >= l.program_temperature_c
            && l.hold_minutes >= l.program_hold_minutes;
        let passed = physics && l.load_indicator_passed;
        let day = l
            .started_at
            .and_utc()
            .with_timezone(&tz)
            .date_naive()
            .to_string();
        let ser = serial.get(&l.steriliser_id).cloned().unwrap_or_default();
        let e = days.entry((day, ser)).or_insert((0, i64::MAX, i64::MIN, 0));
        e.0 += 1;
        e.1 = e.1.min(l.cycle_number);
        e.2 = e.2.max(l.cycle_number);
        if !passed {
            e.3 += 1;
            failed_loads.push(vec![
                s(&local(l.started_at, tz)),
                s(serial.get(&l.steriliser_id).map_or("", String::as_str)),
                s(&l.cycle_number.to_string()),
                s(&l.program_name),
                s(&format!(
                    "{:.1} °C / {:.1} min",
                    l.peak_temperature_c, l.hold_minutes
                )),
                s(&format!(
                    "type {} {}",
                    l.load_indicator_type,
                    if l.load_indicator_passed {
                        "passed"
                    } else {
                        "FAILED"
                    }
                )),
                red(if physics {
                    "indicator failed"
                } else {
                    "physics below program"
                }),
            ]);
        }
    }
    m.push_str(&format!(
        "{} loads in the period, {} failed; every load is in cycles.csv.\n\n",
        loads.len(),
        failed_loads.len()
    ));
    if !failed_loads.is_empty() {
        m.push_str("== Failed loads\n");
        m.push_str(&table(
            &[
                "Started",
                "Steriliser",
                "No.",
                "Program",
                "Reached",
                "Indicator",
                "Why",
            ],
            failed_loads,
        ));
    }
    m.push_str("== Loads by day\n");
    m.push_str(&table(
        &["Day", "Steriliser", "Loads", "Cycle numbers", "Failed"],
        days.into_iter()
            .map(|((day, ser), (n, lo, hi, failed))| {
                vec![
                    s(&day),
                    s(&ser),
                    s(&n.to_string()),
                    s(&format!("{lo}–{hi}")),
                    if failed > 0 {
                        red(&failed.to_string())
                    } else {
                        s("0")
                    },
                ]
            })
            .collect(),
    ));

    // Spore and air-removal tests.
    m.push_str("= Spore tests\n");
    let tests: Vec<(
        crate::sterilisation::store::SporeTestRow,
        Option<crate::sterilisation::store::SporeResultRow>,
    )> = spore_tests::table
        .left_join(
            spore_test_results::table.on(spore_test_results::spore_test_id.eq(spore_tests::id)),
        )
        .filter(spore_tests::clinic_id.eq(c))
        .filter(current("spore_tests"))
        .filter(spore_tests::placed_at.ge(r.from))
        .filter(spore_tests::placed_at.lt(r.to))
        .select((
            crate::sterilisation::store::SporeTestRow::as_select(),
            Option::<crate::sterilisation::store::SporeResultRow>::as_select(),
        ))
        .order(spore_tests::placed_at.asc())
        .load(conn)?;
    let mut rows = Vec::new();
    for (t, res) in &tests {
        let (result, failed) = match res {
            None => ("not read".to_owned(), false),
            Some(x) if !x.valid() => ("invalid (control did not grow)".to_owned(), false),
            Some(x) => (x.result.clone(), x.result == "positive"),
        };
        let lookback = if failed {
            let l = compute(conn, c, &Trigger::SporeTest(t.id.clone()))?;
            format!(
                "look-back: {} loads, {} packs, {} sessions",
                l.cycle_ids.len(),
                l.packs.len(),
                l.sessions.len()
            )
        } else {
            String::new()
        };
        rows.push(vec![
            s(&local(t.placed_at, tz)),
            s(serial.get(&t.steriliser_id).map_or("", String::as_str)),
            s(&t.bi_product),
            if failed { red(&result) } else { s(&result) },
            if failed { red(&lookback) } else { s("") },
        ]);
    }
    m.push_str(&table(
        &["Placed", "Steriliser", "Indicator", "Result", "Look-back"],
        rows,
    ));
    m.push_str("= Air-removal tests\n");
    let air: Vec<crate::sterilisation::store::AirRemovalRow> = air_removal_tests::table
        .filter(air_removal_tests::clinic_id.eq(c))
        .filter(current("air_removal_tests"))
        .filter(air_removal_tests::performed_at.ge(r.from))
        .filter(air_removal_tests::performed_at.lt(r.to))
        .select(crate::sterilisation::store::AirRemovalRow::as_select())
        .order(air_removal_tests::performed_at.asc())
        .load(conn)?;
    let failed_air = air.iter().filter(|a| !a.passed).count();
    m.push_str(&format!(
        "{} tests in the period, {} failed.\n\n",
        air.len(),
        failed_air
    ));
    // Failures in full, the rest counted by month (every test is in air_removal_tests.csv).
    let mut months: std::collections::BTreeMap<(String, String), (usize, usize)> =
        std::collections::BTreeMap::new();
    for a in &air {
        let month = a
            .performed_at
            .and_utc()
            .with_timezone(&tz)
            .format("%Y-%m")
            .to_string();
        let e = months
            .entry((
                month,
                serial.get(&a.steriliser_id).cloned().unwrap_or_default(),
            ))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 += usize::from(!a.passed);
    }
    if failed_air > 0 {
        m.push_str(&table(
            &["Performed", "Steriliser", "Test", "Result"],
            air.iter()
                .filter(|a| !a.passed)
                .map(|a| {
                    vec![
                        s(&local(a.performed_at, tz)),
                        s(serial.get(&a.steriliser_id).map_or("", String::as_str)),
                        s(&a.test_type.replace('_', "-")),
                        red("FAIL"),
                    ]
                })
                .collect(),
        ));
    }
    m.push_str(&table(
        &["Month", "Steriliser", "Tests", "Failed"],
        months
            .into_iter()
            .map(|((month, ser), (n, failed))| {
                vec![
                    s(&month),
                    s(&ser),
                    s(&n.to_string()),
                    if failed > 0 {
                        red(&failed.to_string())
                    } else {
                        s("0")
                    },
                ]
            })
            .collect(),
    ));

    // Lots and recalls.
    m.push_str("= Lots and recalls\n");
    let lot_rows: Vec<(
        crate::lots::store::LotRow,
        Option<crate::lots::store::RecallRow>,
    )> = lots::table
        .left_join(lot_recalls::table.on(lot_recalls::lot_id.eq(lots::id)))
        .filter(lots::clinic_id.eq(c))
        .filter(current("lots"))
        .filter(lots::recorded_at.lt(r.to))
        .filter(lots::expiry_date.ge(r.from.date()))
        .select((
            crate::lots::store::LotRow::as_select(),
            Option::<crate::lots::store::RecallRow>::as_select(),
        ))
        .order(lots::received_on.asc())
        .load(conn)?;
    m.push_str(&table(
        &["Kind", "Product", "Lot", "Received", "Expires", "Recall"],
        lot_rows
            .iter()
            .map(|(l, rc)| {
                vec![
                    s(&l.kind.replace('_', " ")),
                    s(&format!("{} {}", l.manufacturer, l.product_name)),
                    s(&l.lot_number),
                    s(&l.received_on.to_string()),
                    s(&l.expiry_date.to_string()),
                    match rc {
                        Some(rc) => red(&format!(
                            "recalled {}: {} ({})",
                            local(rc.recalled_at, tz),
                            rc.reason,
                            rc.reference
                        )),
                        None => s(""),
                    },
                ]
            })
            .collect(),
    ));

    // Staff.
    m.push_str("= Staff and credentials at the period's end\n");
    m.push_str(&table(
        &[
            "Member",
            "May work on clients",
            "Missing, expired or unverified",
            "Expiring soon",
        ],
        facts
            .staff
            .iter()
            .map(|st| {
                let reasons: Vec<String> = st
                    .eligibility
                    .reasons
                    .iter()
                    .map(|x| x.message.clone())
                    .collect();
                vec![
                    s(&st.name),
                    if st.eligibility.eligible {
                        s("yes")
                    } else {
                        red("no")
                    },
                    s(&reasons.join("; ")),
                    s(&st.eligibility.warnings.join("; ")),
                ]
            })
            .collect(),
    ));

    // Incidents.
    m.push_str("= Incidents\n");
    let inc: Vec<(crate::incidents::store::IncidentRow, Option<NaiveDateTime>)> = incidents::table
        .left_join(incident_closures::table.on(incident_closures::incident_id.eq(incidents::id)))
        .filter(incidents::clinic_id.eq(c))
        .filter(current("incidents"))
        .filter(incidents::occurred_at.ge(r.from))
        .filter(incidents::occurred_at.lt(r.to))
        .select((
            crate::incidents::store::IncidentRow::as_select(),
            incident_closures::closed_at.nullable(),
        ))
        .order(incidents::occurred_at.asc())
        .load(conn)?;
    let days = profile
        .incident_report_working_days
        .value
        .unwrap_or(crate::incidents::store::DEFAULT_REPORT_WORKING_DAYS);
    let mut rows = Vec::new();
    for (i, closed) in &inc {
        let done: Vec<String> = incident_follow_ups::table
            .filter(incident_follow_ups::incident_id.eq(&i.id))
            .filter(incident_follow_ups::recorded_at.le(r.judged_at))
            .select(incident_follow_ups::kind)
            .load(conn)?;
        let required = required_follow_ups(IncidentKind::parse(&i.kind), i.occurred_at, tz, days);
        let open: Vec<String> = required
            .iter()
            .filter(|(k, _)| !done.iter().any(|d| d == k.as_str()))
            .map(|(k, due)| {
                format!(
                    "{} due {}{}",
                    k.as_str().replace('_', " "),
                    local(*due, tz),
                    if *due < r.judged_at { " (OVERDUE)" } else { "" }
                )
            })
            .collect();
        let overdue = open.iter().any(|o| o.contains("OVERDUE"));
        rows.push(vec![
            s(&local(i.occurred_at, tz)),
            s(&i.kind.replace('_', " ")),
            s(&i.location),
            s(&format!(
                "{} of {} done",
                required.len() - open.len(),
                required.len()
            )),
            if overdue {
                red(&open.join("; "))
            } else {
                s(&open.join("; "))
            },
            s(&closed
                .map(|t| format!("closed {}", local(t, tz)))
                .unwrap_or_else(|| "open".into())),
        ]);
    }
    m.push_str(&table(
        &[
            "Occurred",
            "Kind",
            "Where",
            "Follow-ups",
            "Still due",
            "State",
        ],
        rows,
    ));

    // Last page: what this report stands on.
    m.push_str("#pagebreak()\n= Verification\n");
    m.push_str(&table(
        &["", ""],
        vec![
            vec![
                s("Audit events in this export"),
                s(&match (r.first_seq, r.last_seq) {
                    (Some(a), Some(b)) => format!("{a} to {b}"),
                    _ => "none in the period".into(),
                }),
            ],
            vec![
                s("Chain head (hash of the last event)"),
                format!("raw({})", s(r.head_hash)),
            ],
            vec![
                s("Signing key fingerprint (SHA-256)"),
                format!("raw({})", s(r.key_fingerprint)),
            ],
        ],
    ));
    m.push_str("\nEvery file of this export is listed with its SHA-256 in manifest.json, which is signed with the key above. See docs/export-format.md, or run: aseptic verify-export FILE.zip\n");
    render(m)
}
