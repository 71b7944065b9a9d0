//! `report.pdf`: the export read as a document — a cover with the readiness summary, the
//! registers and logs of the period as tables (failures highlighted), and a last page naming the
//! chain head and the signing key. Times in the clinic's time zone.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use diesel::prelude::*;

use super::pages::{for_each_page, PAGE};
use super::pdf::{render, str_lit as s};
use crate::clinics::store::ClinicRow;
use crate::compliance::lookback::{compute, Trigger};
use crate::compliance::rules::Facts;
use crate::compliance::rules::Severity;
use crate::compliance::view::ComplianceView;
use crate::db::schema::{
    air_removal_tests, cycles, incident_closures, incidents, lot_recalls, lots, spore_test_results,
    spore_tests, sterilisers,
};
use crate::db::DbConn;
use crate::error::AppResult;
use crate::jurisdiction::profiles::Profile;
use crate::jurisdiction::profiles::Profiles;
use crate::records::{current, current_by};
use crate::sterilisation::model::{ControlResult, SporeResult};

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

/// A moment as the clinic reads it: `YYYY-MM-DD HH:MM` in its time zone.
pub fn local(t: NaiveDateTime, tz: Tz) -> String {
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

/// A moment to the second, with the zone named: `2026-11-30 15:34:07 GMT (Europe/London)`.
pub fn exact(t: NaiveDateTime, tz: Tz) -> String {
    format!(
        "{} ({})",
        t.and_utc()
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %Z"),
        tz.name()
    )
}

/// Counts per (local month, steriliser serial), in order.
type Months<T> = std::collections::BTreeMap<(String, String), T>;

fn month(t: NaiveDateTime, tz: Tz) -> String {
    t.and_utc().with_timezone(&tz).format("%Y-%m").to_string()
}

fn count_cell(n: usize) -> String {
    if n > 0 {
        red(&n.to_string())
    } else {
        s("0")
    }
}

/// A two-column table of names and values, without a header row.
fn kv_table(rows: Vec<Vec<String>>) -> String {
    let mut out = "#table(columns: 2,\n".to_owned();
    for row in rows {
        out.push_str(&row.join(", "));
        out.push_str(",\n");
    }
    out.push_str(")\n");
    out
}

/// `n` and the noun, singular or plural: "1 warning", "2 warnings".
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A table, or where it has no rows a sentence that says so.
fn table_or(columns: &[&str], rows: Vec<Vec<String>>, empty: &str) -> String {
    if rows.is_empty() {
        format!("#{}\n\n", s(empty))
    } else {
        table(columns, rows)
    }
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
    let crate::clinics::context::ClinicContext {
        clinic,
        tz,
        profile,
    } = crate::clinics::context::load(conn, profiles, r.clinic_id)?;
    let c = r.clinic_id;
    let (view, facts) = (r.view, r.facts);

    let mut m = String::new();
    m.push_str("#set document(title: \"Audit report\")\n");
    m.push_str("#set page(paper: \"a4\", margin: (x: 1.5cm, y: 1.8cm), footer: context align(right, text(8pt, counter(page).display(\"1 / 1\", both: true))))\n");
    m.push_str("#set text(font: \"Libertinus Serif\", size: 9pt)\n");
    m.push_str("#set table(stroke: 0.4pt + luma(160), inset: 3.5pt)\n");
    m.push_str("#show heading: set block(above: 1.4em, below: 0.8em)\n");

    let none = HashMap::new();
    let doc = Doc {
        c,
        tz,
        profile,
        clinic: &clinic,
        view,
        facts,
        serial: &none,
    };
    cover(&mut m, r, &doc)?;
    let serial = steriliser_register(&mut m, conn, r, &doc)?;
    let doc = Doc {
        serial: &serial,
        ..doc
    };
    cycle_log(&mut m, conn, r, &doc)?;
    spore_tests(&mut m, conn, r, &doc)?;
    air_removal_tests(&mut m, conn, r, &doc)?;
    lots(&mut m, conn, r, &doc)?;
    staff(&mut m, &doc)?;
    client_sessions(&mut m, conn, r, &doc)?;
    incidents(&mut m, conn, r, &doc)?;
    verification(&mut m, r)?;
    render(m)
}

/// What every section of the report reads: the clinic's context and the view it was judged by.
#[derive(Clone, Copy)]
struct Doc<'a> {
    c: &'a str,
    tz: Tz,
    profile: &'a Profile,
    clinic: &'a ClinicRow,
    view: &'a ComplianceView,
    facts: &'a Facts,
    serial: &'a HashMap<String, String>,
}

/// Cover.
fn cover(m: &mut String, r: &ReportInput<'_>, d: &Doc<'_>) -> AppResult<()> {
    let Doc {
        tz,
        profile,
        clinic,
        view,
        ..
    } = *d;
    m.push_str(&format!(
        "#align(center)[#v(3cm) #text(22pt, weight: \"bold\", \"Audit report\") #v(0.6cm) #text(15pt, {}) #v(0.3cm) #text(11pt, {})]\n#v(1.2cm)\n",
        s(&clinic.name),
        s(&crate::clinics::context::period_in_words(r.from, r.to, tz))
    ));
    let count = |sev: Severity| view.findings.iter().filter(|f| f.severity == sev).count();
    m.push_str(&kv_table(vec![
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
            s(&crate::clinics::context::period_in_words(r.from, r.to, tz)),
        ],
        vec![
            s("Readiness at the period's end"),
            s(&format!(
                "{}, {}, {} (judged as the records stood at {}, {} UTC)",
                plural(count(Severity::Blocker), "blocker"),
                plural(count(Severity::Warning), "warning"),
                plural(count(Severity::Info), "note"),
                exact(r.judged_at, tz),
                crate::audit::chain::format_time(r.judged_at)
            )),
        ],
        vec![s("Export created"), s(&local(r.created_at, tz))],
    ]));
    if !view.findings.is_empty() {
        m.push_str("== Findings at the period's end\n");
        m.push_str(&table(
            &["Severity", "Finding", "Due", "Reference"],
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
                        s(&f.message),
                        s(f.due_local.as_deref().unwrap_or("")),
                        s(&f.reference),
                    ]
                })
                .collect(),
        ));
    }
    Ok(())
}

/// Sterilisers.
fn steriliser_register(
    m: &mut String,
    conn: &mut DbConn,
    r: &ReportInput<'_>,
    d: &Doc<'_>,
) -> AppResult<HashMap<String, String>> {
    use crate::db::schema::steriliser_status_changes as changes;
    let Doc { c, facts, tz, .. } = *d;
    // Every time a steriliser went out of service or came back in the period, and why.
    let mut spans: HashMap<String, Vec<String>> = HashMap::new();
    for (steriliser, in_service, cause, reason, at) in changes::table
        .filter(changes::clinic_id.eq(c))
        .filter(changes::changed_at.ge(r.from))
        .filter(changes::changed_at.lt(r.to))
        .select((
            changes::steriliser_id,
            changes::in_service,
            changes::cause,
            changes::reason,
            changes::changed_at,
        ))
        .order(changes::changed_at.asc())
        .load::<(String, bool, String, String, NaiveDateTime)>(conn)?
    {
        let what = match (in_service, cause.as_str()) {
            // The spore test's own row says the rest; its id and UTC time are no help here.
            (false, "spore_test_positive") => {
                format!("quarantined {} (positive spore test)", local(at, tz))
            }
            (false, _) => format!("out of service {} ({reason})", local(at, tz)),
            (true, _) => format!("back in service {} ({reason})", local(at, tz)),
        };
        spans.entry(steriliser).or_default().push(what);
    }
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
    m.push_str(&table_or(
        &[
            "Make and model",
            "Serial",
            "Kind",
            "Location",
            "Out of service in the period",
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
                    match spans.get(&x.id) {
                        Some(events) => red(&events.join("; ")),
                        None => s("no"),
                    },
                    status,
                ]
            })
            .collect(),
        "No sterilisers are registered.",
    ));
    Ok(serial)
}

/// Cycle log. Rows are read a page at a time and only monthly counts and the failures are
/// kept, so the document (and typst's memory while laying it out) grows with the number of
/// months and of failures, not with the number of loads; every load is in cycles.csv.
fn cycle_log(m: &mut String, conn: &mut DbConn, r: &ReportInput<'_>, d: &Doc<'_>) -> AppResult<()> {
    let Doc { c, tz, serial, .. } = *d;
    m.push_str("= Cycle log\n");
    let mut months: Months<(usize, i64, i64, usize)> = Months::new();
    let mut failed_loads: Vec<(NaiveDateTime, Vec<String>)> = Vec::new();
    let mut total = 0usize;
    for_each_page(
        |after| {
            let mut q = cycles::table
                .filter(cycles::clinic_id.eq(c))
                .filter(current("cycles"))
                .filter(cycles::started_at.ge(r.from))
                .filter(cycles::started_at.lt(r.to))
                .select(crate::sterilisation::store::CycleRow::as_select())
                .order(cycles::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(cycles::id.gt(a.to_owned()));
            }
            Ok(q.load::<crate::sterilisation::store::CycleRow>(conn)?)
        },
        |l| l.id.clone(),
        |l| {
            total += 1;
            let physics = l.peak_temperature_c >= l.program_temperature_c
                && l.hold_minutes >= l.program_hold_minutes;
            let passed = physics && l.load_indicator_passed;
            let ser = serial.get(&l.steriliser_id).cloned().unwrap_or_default();
            let e =
                months
                    .entry((month(l.started_at, tz), ser))
                    .or_insert((0, i64::MAX, i64::MIN, 0));
            e.0 += 1;
            e.1 = e.1.min(l.cycle_number);
            e.2 = e.2.max(l.cycle_number);
            if !passed {
                e.3 += 1;
                failed_loads.push((
                    l.started_at,
                    vec![
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
                    ],
                ));
            }
            Ok(())
        },
    )?;
    failed_loads.sort_by_key(|x| x.0);
    m.push_str(&format!(
        "{} in the period typed in, {} failed; every load is in cycles.csv.\n\n",
        plural(total, "load"),
        failed_loads.len()
    ));
    let (imported, warned) =
        crate::sterilisation::device_records::count_imported(conn, c, r.from, r.to)?;
    m.push_str(&if imported == 0 {
        "No cycle was imported from a steriliser's own files for the period.\n\n".to_owned()
    } else {
        format!(
            "{} imported from the sterilisers' own files, {} with a check that found something; every one is in imported_cycles.csv, and the files themselves are in device-files/ under their SHA-256.\n\n",
            plural(imported as usize, "cycle"),
            warned
        )
    });
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
            failed_loads.into_iter().map(|(_, row)| row).collect(),
        ));
    }
    m.push_str("== Loads by month\n");
    m.push_str(&table_or(
        &["Month", "Steriliser", "Loads", "Cycle numbers", "Failed"],
        months
            .into_iter()
            .map(|((month, ser), (n, lo, hi, failed))| {
                vec![
                    s(&month),
                    s(&ser),
                    s(&n.to_string()),
                    s(&format!("{lo}–{hi}")),
                    count_cell(failed),
                ]
            })
            .collect(),
        "No loads in this period.",
    ));
    Ok(())
}

/// What followed a positive spore test, in order: read, steriliser quarantined, who the
/// look-back reached, the passing retest, back in service (or still out).
fn failure_timeline(conn: &mut DbConn, c: &str, id: &str, tz: Tz) -> AppResult<String> {
    use crate::db::schema::steriliser_status_changes as changes;
    let store = crate::sterilisation::store::find_spore_test(conn, c, id)?;
    let result = crate::sterilisation::store::find_spore_result(conn, c, id)?;
    let mut steps = Vec::new();
    if let Some(r) = &result {
        steps.push(format!("read positive {}", local(r.read_at, tz)));
    }
    let quarantined: Option<(String, NaiveDateTime)> = changes::table
        .filter(changes::clinic_id.eq(c))
        .filter(changes::spore_test_id.eq(id))
        .filter(changes::in_service.eq(false))
        .select((changes::steriliser_id, changes::changed_at))
        .order(changes::changed_at.asc())
        .first(conn)
        .optional()?;
    if let Some((_, at)) = &quarantined {
        steps.push(format!("steriliser quarantined {}", local(*at, tz)));
    }
    let l = compute(conn, c, &Trigger::SporeTest(id.to_owned()))?;
    steps.push(format!(
        "look-back reached {}, {} and {} (clients to notify)",
        plural(l.cycle_ids.len(), "load"),
        plural(l.packs.len(), "pack"),
        plural(l.sessions.len(), "session")
    ));
    if let Some(test) = &store {
        // The first passing test on a load run after the failed one.
        let failed_start: Option<NaiveDateTime> = cycles::table
            .filter(cycles::id.eq(&test.cycle_id))
            .select(cycles::started_at)
            .first(conn)
            .optional()?;
        if let Some(start) = failed_start {
            let retest: Option<NaiveDateTime> = spore_tests::table
                .inner_join(
                    spore_test_results::table.on(spore_test_results::spore_test_id
                        .eq(spore_tests::id)
                        .and(current_by("spore_test_results", "spore_test_id"))),
                )
                .inner_join(cycles::table.on(cycles::id.eq(spore_tests::cycle_id)))
                .filter(spore_tests::clinic_id.eq(c))
                .filter(spore_tests::steriliser_id.eq(&test.steriliser_id))
                .filter(current("spore_tests"))
                .filter(cycles::started_at.gt(start))
                .filter(spore_test_results::result.eq(SporeResult::Negative.as_db()))
                .filter(spore_test_results::control_result.eq(ControlResult::Growth.as_db()))
                .select(spore_test_results::read_at)
                .order(spore_test_results::read_at.asc())
                .first(conn)
                .optional()?;
            match retest {
                Some(at) => steps.push(format!("retest negative {}", local(at, tz))),
                None => steps.push("no passing retest yet".into()),
            }
        }
    }
    if let Some((steriliser, at)) = quarantined {
        let back: Option<(NaiveDateTime, String)> = changes::table
            .filter(changes::clinic_id.eq(c))
            .filter(changes::steriliser_id.eq(&steriliser))
            .filter(changes::in_service.eq(true))
            .filter(changes::changed_at.gt(at))
            .select((changes::changed_at, changes::reason))
            .order(changes::changed_at.asc())
            .first(conn)
            .optional()?;
        steps.push(match back {
            Some((at, reason)) => format!("back in service {} (\"{reason}\")", local(at, tz)),
            None => "still out of service".into(),
        });
    }
    Ok(steps.join("; "))
}

/// Spore tests: every positive, invalid or unread test in full with its look-back, the
/// negatives counted by month (every test is in spore_tests.csv).
fn spore_tests(
    m: &mut String,
    conn: &mut DbConn,
    r: &ReportInput<'_>,
    d: &Doc<'_>,
) -> AppResult<()> {
    let Doc { c, tz, serial, .. } = *d;
    m.push_str("= Spore tests\n");
    // placed, negative, positive, invalid, not read
    let mut months: Months<[usize; 5]> = Months::new();
    let mut exceptions: Vec<(NaiveDateTime, String, String, String, bool)> = Vec::new();
    for_each_page(
        |after| {
            let mut q = spore_tests::table
                .left_join(
                    spore_test_results::table.on(spore_test_results::spore_test_id
                        .eq(spore_tests::id)
                        .and(current_by("spore_test_results", "spore_test_id"))),
                )
                .filter(spore_tests::clinic_id.eq(c))
                .filter(current("spore_tests"))
                .filter(spore_tests::placed_at.ge(r.from))
                .filter(spore_tests::placed_at.lt(r.to))
                .select((
                    crate::sterilisation::store::SporeTestRow::as_select(),
                    Option::<crate::sterilisation::store::SporeResultRow>::as_select(),
                ))
                .order(spore_tests::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(spore_tests::id.gt(a.to_owned()));
            }
            Ok(q.load::<(
                crate::sterilisation::store::SporeTestRow,
                Option<crate::sterilisation::store::SporeResultRow>,
            )>(conn)?)
        },
        |(t, _)| t.id.clone(),
        |(t, res)| {
            let ser = serial.get(&t.steriliser_id).cloned().unwrap_or_default();
            let e = months
                .entry((month(t.placed_at, tz), ser))
                .or_insert([0; 5]);
            e[0] += 1;
            let (slot, result, failed) = match res {
                None => (4, "not read", false),
                Some(x) if !x.valid() => (3, "invalid (control did not grow)", false),
                Some(x) if x.result() == SporeResult::Positive => (2, "positive", true),
                Some(_) => (1, "negative", false),
            };
            e[slot] += 1;
            if slot != 1 {
                exceptions.push((
                    t.placed_at,
                    t.id.clone(),
                    t.steriliser_id.clone(),
                    format!("{} · {}", t.bi_product, result),
                    failed,
                ));
            }
            Ok(())
        },
    )?;
    exceptions.sort_by_key(|x| x.0);
    let totals = months.values().fold([0usize; 5], |mut acc, v| {
        for (a, x) in acc.iter_mut().zip(v) {
            *a += x;
        }
        acc
    });
    m.push_str(&format!(
        "{} tests placed in the period: {} negative, {} positive, {} invalid, {} not read.\n\n",
        totals[0], totals[1], totals[2], totals[3], totals[4]
    ));
    if !exceptions.is_empty() {
        m.push_str("== Positive, invalid and unread tests\n");
        let mut rows = Vec::new();
        for (placed, id, steriliser, what, failed) in exceptions {
            let lookback = if failed {
                red(&failure_timeline(conn, c, &id, tz)?)
            } else {
                s("")
            };
            rows.push(vec![
                s(&local(placed, tz)),
                s(serial.get(&steriliser).map_or("", String::as_str)),
                if failed { red(&what) } else { s(&what) },
                lookback,
            ]);
        }
        m.push_str(&table(
            &[
                "Placed",
                "Steriliser",
                "Indicator and result",
                "What followed",
            ],
            rows,
        ));
    }
    m.push_str("== Spore tests by month\n");
    m.push_str(&table_or(
        &[
            "Month",
            "Steriliser",
            "Placed",
            "Negative",
            "Positive",
            "Invalid",
            "Not read",
        ],
        months
            .into_iter()
            .map(|((month, ser), n)| {
                vec![
                    s(&month),
                    s(&ser),
                    s(&n[0].to_string()),
                    s(&n[1].to_string()),
                    count_cell(n[2]),
                    count_cell(n[3]),
                    s(&n[4].to_string()),
                ]
            })
            .collect(),
        "No spore tests were placed in this period.",
    ));
    Ok(())
}

/// Air-removal tests: failures in full, the rest counted by month (every test is in
/// air_removal_tests.csv).
fn air_removal_tests(
    m: &mut String,
    conn: &mut DbConn,
    r: &ReportInput<'_>,
    d: &Doc<'_>,
) -> AppResult<()> {
    let Doc { c, tz, serial, .. } = *d;
    m.push_str("= Air-removal tests\n");
    let mut months: Months<(usize, usize)> = Months::new();
    let mut failed_air: Vec<(NaiveDateTime, Vec<String>)> = Vec::new();
    for_each_page(
        |after| {
            let mut q = air_removal_tests::table
                .filter(air_removal_tests::clinic_id.eq(c))
                .filter(current("air_removal_tests"))
                .filter(air_removal_tests::performed_at.ge(r.from))
                .filter(air_removal_tests::performed_at.lt(r.to))
                .select(crate::sterilisation::store::AirRemovalRow::as_select())
                .order(air_removal_tests::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(air_removal_tests::id.gt(a.to_owned()));
            }
            Ok(q.load::<crate::sterilisation::store::AirRemovalRow>(conn)?)
        },
        |a| a.id.clone(),
        |a| {
            let e = months
                .entry((
                    month(a.performed_at, tz),
                    serial.get(&a.steriliser_id).cloned().unwrap_or_default(),
                ))
                .or_insert((0, 0));
            e.0 += 1;
            if !a.passed {
                e.1 += 1;
                failed_air.push((
                    a.performed_at,
                    vec![
                        s(&local(a.performed_at, tz)),
                        s(serial.get(&a.steriliser_id).map_or("", String::as_str)),
                        s(&a.test_type.replace('_', "-")),
                        red("FAIL"),
                    ],
                ));
            }
            Ok(())
        },
    )?;
    failed_air.sort_by_key(|x| x.0);
    m.push_str(&format!(
        "{} tests in the period, {} failed.\n\n",
        months.values().map(|v| v.0).sum::<usize>(),
        failed_air.len()
    ));
    if !failed_air.is_empty() {
        m.push_str(&table(
            &["Performed", "Steriliser", "Test", "Result"],
            failed_air.into_iter().map(|(_, row)| row).collect(),
        ));
    }
    m.push_str(&table_or(
        &["Month", "Steriliser", "Tests", "Failed"],
        months
            .into_iter()
            .map(|((month, ser), (n, failed))| {
                vec![s(&month), s(&ser), s(&n.to_string()), count_cell(failed)]
            })
            .collect(),
        "No air-removal, automatic control or air-leakage tests in this period.",
    ));
    Ok(())
}

/// Lots: recalls in full, the rest counted by kind (every lot is in lots.csv), then what
/// was on the shelf at the period's end.
fn lots(m: &mut String, conn: &mut DbConn, r: &ReportInput<'_>, d: &Doc<'_>) -> AppResult<()> {
    let Doc { c, tz, facts, .. } = *d;
    m.push_str("= Lots and recalls\n");
    // lots, expired within the period, recalled
    let mut kinds: std::collections::BTreeMap<String, [usize; 3]> =
        std::collections::BTreeMap::new();
    let mut recalled: Vec<(NaiveDateTime, String, Vec<String>)> = Vec::new();
    for_each_page(
        |after| {
            let mut q = lots::table
                .left_join(lot_recalls::table.on(lot_recalls::lot_id.eq(lots::id)))
                .filter(lots::clinic_id.eq(c))
                .filter(current("lots"))
                .filter(lots::recorded_at.lt(r.to))
                .filter(lots::expiry_date.ge(r.from.date()))
                .select((
                    crate::lots::store::LotRow::as_select(),
                    Option::<crate::lots::store::RecallRow>::as_select(),
                ))
                .order(lots::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(lots::id.gt(a.to_owned()));
            }
            Ok(q.load::<(
                crate::lots::store::LotRow,
                Option<crate::lots::store::RecallRow>,
            )>(conn)?)
        },
        |(l, _)| l.id.clone(),
        |(l, rc)| {
            let kind = l.kind.replace('_', " ");
            let e = kinds.entry(kind.clone()).or_insert([0; 3]);
            e[0] += 1;
            e[1] += usize::from(l.expiry_date < r.to.date());
            if let Some(rc) = rc.as_ref().filter(|rc| rc.recalled_at < r.to) {
                e[2] += 1;
                recalled.push((
                    rc.recalled_at,
                    l.id.clone(),
                    vec![
                        s(&kind),
                        s(&format!("{} {}", l.manufacturer, l.product_name)),
                        s(&l.lot_number),
                        s(&l.received_on.to_string()),
                        red(&format!(
                            "recalled {}: {} ({})",
                            local(rc.recalled_at, tz),
                            rc.reason,
                            rc.reference
                        )),
                    ],
                ));
            }
            Ok(())
        },
    )?;
    recalled.sort_by_key(|x| x.0);
    m.push_str(&table_or(
        &[
            "Kind",
            "Lots held in the period",
            "Expired in it",
            "Recalled",
        ],
        kinds
            .into_iter()
            .map(|(kind, n)| {
                vec![
                    s(&kind),
                    s(&n[0].to_string()),
                    s(&n[1].to_string()),
                    count_cell(n[2]),
                ]
            })
            .collect(),
        "No lots were held in this period.",
    ));
    if !recalled.is_empty() {
        m.push_str("== Recalls\n");
        let mut rows = Vec::new();
        for (_, lot, mut row) in recalled {
            // Who the lot reached: the sessions that recorded it, and so their clients.
            let l = compute(conn, c, &Trigger::Lot(lot))?;
            let clients: std::collections::BTreeSet<&str> =
                l.sessions.iter().map(|x| x.client_id.as_str()).collect();
            row.push(s(&format!(
                "{} and {} to notify",
                plural(l.sessions.len(), "session"),
                plural(clients.len(), "client")
            )));
            rows.push(row);
        }
        m.push_str(&table(
            &["Kind", "Product", "Lot", "Received", "Recall", "Reached"],
            rows,
        ));
    }
    if !facts.lots.is_empty() {
        m.push_str(
            "== Lots at the period's end (in stock, or expired or recalled in the last 90 days)\n",
        );
        m.push_str(&table(
            &["Lot", "Expires", "Status"],
            facts
                .lots
                .iter()
                .map(|l| {
                    let status = format!("{:?}", l.status).to_lowercase();
                    vec![
                        s(&l.label),
                        s(&l.expiry_date.to_string()),
                        if l.status == crate::lots::model::LotStatus::Usable {
                            s(&status)
                        } else {
                            red(&status)
                        },
                    ]
                })
                .collect(),
        ));
    }
    Ok(())
}

/// Staff.
fn staff(m: &mut String, d: &Doc<'_>) -> AppResult<()> {
    let Doc { facts, .. } = *d;
    m.push_str("= Staff and credentials at the period's end\n");
    m.push_str(&table_or(
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
        "No members work on clients.",
    ));
    Ok(())
}

/// Client sessions: counted by month, and every start an owner made despite a refusal in full
/// (when, by whom, for which technician, why). Clients appear by pseudonymous id.
fn client_sessions(
    m: &mut String,
    conn: &mut DbConn,
    r: &ReportInput<'_>,
    d: &Doc<'_>,
) -> AppResult<()> {
    use crate::db::schema::{session_completions, session_starts, sessions, users};
    let Doc { c, tz, .. } = *d;
    m.push_str("= Client sessions\n");
    // planned, started, completed, started despite a refusal
    let mut months: std::collections::BTreeMap<String, [usize; 4]> = Default::default();
    let mut overridden: Vec<(NaiveDateTime, Vec<String>)> = Vec::new();
    type Row = (
        String,
        String,
        String,
        NaiveDateTime,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        Option<(String, Option<String>)>,
    );
    for_each_page(
        |after| {
            let mut q = sessions::table
                .left_join(session_starts::table.on(session_starts::session_id.eq(sessions::id)))
                .left_join(
                    session_completions::table.on(session_completions::session_id.eq(sessions::id)),
                )
                .filter(sessions::clinic_id.eq(c))
                .filter(sessions::planned_at.ge(r.from))
                .filter(sessions::planned_at.lt(r.to))
                .select((
                    sessions::id,
                    sessions::client_id,
                    sessions::technician_id,
                    sessions::planned_at,
                    session_starts::started_at.nullable(),
                    session_completions::completed_at.nullable(),
                ))
                .order(sessions::id.asc())
                .limit(PAGE)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(sessions::id.gt(a.to_owned()));
            }
            type Base = (
                String,
                String,
                String,
                NaiveDateTime,
                Option<NaiveDateTime>,
                Option<NaiveDateTime>,
            );
            let rows = q.load::<Base>(conn)?;
            let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
            // The starts made despite a refusal, with who made them.
            let overrides: HashMap<String, (String, Option<String>)> = session_starts::table
                .filter(session_starts::session_id.eq_any(&ids))
                .filter(session_starts::override_reason.is_not_null())
                .select((
                    session_starts::session_id,
                    session_starts::override_reason,
                    session_starts::started_by,
                ))
                .load::<(String, Option<String>, Option<String>)>(conn)?
                .into_iter()
                .filter_map(|(id, reason, by)| reason.map(|r| (id, (r, by))))
                .collect();
            Ok(rows
                .into_iter()
                .map(|r| {
                    let o = overrides.get(&r.0).cloned();
                    (r.0, r.1, r.2, r.3, r.4, r.5, o)
                })
                .collect::<Vec<Row>>())
        },
        |row| row.0.clone(),
        |(_, client, technician, planned, started, completed, over)| {
            let e = months.entry(month(*planned, tz)).or_insert([0; 4]);
            e[0] += 1;
            e[1] += usize::from(started.is_some());
            e[2] += usize::from(completed.is_some());
            if let (Some(at), Some((reason, by))) = (started, over) {
                e[3] += 1;
                overridden.push((
                    *at,
                    vec![
                        local(*at, tz),
                        by.clone().unwrap_or_default(),
                        technician.clone(),
                        client.clone(),
                        reason.clone(),
                    ],
                ));
            }
            Ok(())
        },
    )?;
    // Names for the people in the overridden starts.
    let ids: Vec<String> = overridden
        .iter()
        .flat_map(|(_, row)| [row[1].clone(), row[2].clone()])
        .collect();
    let names: HashMap<String, String> = users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::display_name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    m.push_str(&table_or(
        &[
            "Month",
            "Planned",
            "Started",
            "Completed",
            "Started despite a refusal",
        ],
        months
            .into_iter()
            .map(|(month, n)| {
                vec![
                    s(&month),
                    s(&n[0].to_string()),
                    s(&n[1].to_string()),
                    s(&n[2].to_string()),
                    count_cell(n[3]),
                ]
            })
            .collect(),
        "No client sessions in this period.",
    ));
    if !overridden.is_empty() {
        overridden.sort_by_key(|x| x.0);
        m.push_str("== Sessions started despite a refusal\n");
        m.push_str(&table(
            &[
                "Started",
                "By",
                "Technician",
                "Client (pseudonymous id)",
                "Why",
            ],
            overridden
                .into_iter()
                .map(|(_, row)| {
                    vec![
                        s(&row[0]),
                        s(&name(&row[1])),
                        s(&name(&row[2])),
                        s(&row[3]),
                        red(&row[4]),
                    ]
                })
                .collect(),
        ));
    }
    Ok(())
}

/// Incidents.
fn incidents(m: &mut String, conn: &mut DbConn, r: &ReportInput<'_>, d: &Doc<'_>) -> AppResult<()> {
    let Doc { c, tz, profile, .. } = *d;
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
    let mut rows = Vec::new();
    for (i, closed) in &inc {
        let required = crate::incidents::usecases::required_at(conn, profile, tz, i, r.judged_at)?;
        let open: Vec<String> = required
            .iter()
            .filter(|f| f.done_at.is_none())
            .map(|f| {
                format!(
                    "{} {}{}",
                    f.kind.as_db().replace('_', " "),
                    crate::clinics::context::due_in_words(f.due, tz),
                    if f.due <= r.judged_at {
                        " (OVERDUE)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        let overdue = open.iter().any(|o| o.contains("OVERDUE"));
        rows.push(vec![
            s(&local(i.occurred_at, tz)),
            s(&i.kind.replace('_', " ")),
            s(&i.location),
            s(&crate::incidents::usecases::people_in_words(
                conn, &i.people,
            )?),
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
    m.push_str(&table_or(
        &[
            "Occurred",
            "Kind",
            "Where",
            "Who",
            "Follow-ups",
            "Still due",
            "State",
        ],
        rows,
        "No incidents in this period.",
    ));
    Ok(())
}

/// Last page: what this report stands on.
fn verification(m: &mut String, r: &ReportInput<'_>) -> AppResult<()> {
    m.push_str("#pagebreak()\n= Verification\n");
    m.push_str(&kv_table(vec![
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
    ]));
    m.push_str("\nEvery file of this export is listed with its SHA-256 in manifest.json, which is signed with the key above. VERIFY.txt, in the same zip, says step by step how to check the files, the signature and the key's fingerprint with the standard tools sha256sum and openssl.\n");
    Ok(())
}
