//! Compliance rules: pure functions from a clinic's facts, its jurisdiction profile and a moment
//! to findings. Nothing here reads or writes the database; `view` gathers the facts.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::credentials::model::Eligibility;
use crate::incidents::model::end_of_day;
use crate::jurisdiction::profiles::Profile;
use crate::lots::model::{LotKind, LotStatus};
use crate::sterilisation::model::{pack_judgement, PackCause, PackState, Unqualified};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Work must stop until this is fixed.
    Blocker,
    Warning,
    Info,
}

/// Which rule a finding comes from: a closed set, so a reader (the summary mail, the report) can
/// select findings by rule without matching on spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    FailedSporeTest,
    SporeTestInterval,
    SporeTestUnread,
    SporeTestAfterEvent,
    LoadRelease,
    PackShelfLife,
    SessionLots,
    DailyAirRemoval,
    DailyAutomaticControl,
    WeeklyAirLeakage,
    LotRecalled,
    LotExpired,
    LotExpiring,
    TechnicianEligibility,
    IncidentFollowUp,
    MailDelivery,
    AuthorityAddress,
    ImportedRecordChecks,
}

impl Rule {
    /// Every rule, in the order the documentation lists them.
    pub const ALL: [Rule; 18] = [
        Rule::FailedSporeTest,
        Rule::SporeTestInterval,
        Rule::SporeTestUnread,
        Rule::SporeTestAfterEvent,
        Rule::LoadRelease,
        Rule::PackShelfLife,
        Rule::SessionLots,
        Rule::DailyAirRemoval,
        Rule::DailyAutomaticControl,
        Rule::WeeklyAirLeakage,
        Rule::LotRecalled,
        Rule::LotExpired,
        Rule::LotExpiring,
        Rule::TechnicianEligibility,
        Rule::IncidentFollowUp,
        Rule::MailDelivery,
        Rule::AuthorityAddress,
        Rule::ImportedRecordChecks,
    ];

    /// The rule's name as the API and the exports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailedSporeTest => "failed_spore_test",
            Self::SporeTestInterval => "spore_test_interval",
            Self::SporeTestUnread => "spore_test_unread",
            Self::SporeTestAfterEvent => "spore_test_after_event",
            Self::LoadRelease => "load_release",
            Self::PackShelfLife => "pack_shelf_life",
            Self::SessionLots => "session_lots",
            Self::DailyAirRemoval => "daily_air_removal",
            Self::DailyAutomaticControl => "daily_automatic_control",
            Self::WeeklyAirLeakage => "weekly_air_leakage",
            Self::LotRecalled => "lot_recalled",
            Self::LotExpired => "lot_expired",
            Self::LotExpiring => "lot_expiring",
            Self::TechnicianEligibility => "technician_eligibility",
            Self::IncidentFollowUp => "incident_follow_up",
            Self::MailDelivery => "mail_delivery",
            Self::AuthorityAddress => "authority_address",
            Self::ImportedRecordChecks => "imported_record_checks",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// What the finding is about, e.g. `steriliser:<id>`.
    pub subject: String,
    pub message: String,
    /// The regulation or guidance behind the rule.
    pub reference: String,
    pub due: Option<chrono::DateTime<chrono::Utc>>,
    /// The due time as a person in the clinic reads it, with the zone named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_local: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SteriliserFacts {
    pub id: String,
    pub label: String,
    pub pre_vacuum: bool,
    pub in_service: bool,
    pub quarantined: bool,
    /// Start of the load that carried the latest valid negative spore test.
    pub last_negative_spore_test: Option<NaiveDateTime>,
    /// Start of the load that carried the latest spore test placed after that and not read yet
    /// (incubating): a test run in time meets the interval while it incubates.
    pub incubating_spore_test: Option<NaiveDateTime>,
    pub loads_today: bool,
    /// Loads run today with no passing air-removal test before them that day.
    pub loads_today_without_air_removal: usize,
    pub air_removal_passed_today: bool,
    /// Loads run today with no passing automatic control test before them that day.
    pub loads_today_without_automatic_control: usize,
    pub automatic_control_passed_today: bool,
    /// Loads run today with no passing air-leakage test in the week up to them.
    pub loads_today_without_air_leakage: usize,
    /// A passing air-leakage test in the seven clinic-local days up to today.
    pub air_leakage_passed_this_week: bool,
    /// The latest relocation or repair, which needs a passing spore test after it.
    pub last_event: Option<TestEvent>,
    /// Spore tests run after that event have requalified the steriliser (as many consecutive
    /// empty-chamber negatives as the profile asks, else one).
    pub requalified_since_event: bool,
    /// Hours of operation since the load of the last passing spore test.
    pub hours_since_negative: f64,
}

pub use crate::sterilisation::model::TestEvent;

/// A pack on the shelf: made, not yet opened in a session that started.
#[derive(Debug, Clone)]
pub struct StockPackFacts {
    pub code: String,
    pub cycle_id: String,
    pub cycle_number: i64,
    /// What the one pack judgement (`sterilisation::model::pack_state`) takes.
    pub facts: crate::sterilisation::model::PackFacts,
}

#[derive(Debug, Clone)]
pub struct SessionLotFacts {
    pub session_id: String,
    pub kinds: Vec<LotKind>,
}

#[derive(Debug, Clone)]
pub struct LotFacts {
    pub id: String,
    pub label: String,
    pub status: LotStatus,
    pub expiry_date: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct StaffFacts {
    pub user_id: String,
    pub name: String,
    pub eligibility: Eligibility,
}

#[derive(Debug, Clone)]
pub struct FollowUpFacts {
    pub incident_id: String,
    /// The incident as a person recognises it: what, where and when (clinic-local).
    pub incident: String,
    pub kind: crate::incidents::model::FollowUpKind,
    pub due: NaiveDateTime,
    pub done: bool,
}

/// Everything the rules look at, as of one moment.
#[derive(Debug, Clone)]
pub struct CredentialExpiryFacts {
    pub credential_id: String,
    pub member: String,
    pub kind: crate::credentials::model::CredentialKind,
    pub expires_on: NaiveDate,
}

#[derive(Debug, Clone, Default)]
pub struct MailFacts {
    /// (kind, recipient, subject) of messages given up on in the last 30 days.
    pub failed: Vec<(String, String, String)>,
    /// Events the profile says to report at once, with no authority address to send them to.
    pub authority_missing: Vec<crate::jurisdiction::profiles::AuthorityEvent>,
}

#[derive(Debug, Clone)]
pub struct Facts {
    pub now: NaiveDateTime,
    /// The clinic-local date of `now`.
    pub today: NaiveDate,
    /// The clinic's time zone: deadlines fall at the end of a local day.
    pub tz: chrono_tz::Tz,
    pub sterilisers: Vec<SteriliserFacts>,
    pub lots: Vec<LotFacts>,
    pub staff: Vec<StaffFacts>,
    pub follow_ups: Vec<FollowUpFacts>,
    pub stock: Vec<StockPackFacts>,
    pub sessions_missing_lots: Vec<SessionLotFacts>,
    /// Credentials of active staff that have not expired, with their expiry (for reminders).
    pub credential_expiries: Vec<CredentialExpiryFacts>,
    pub mail: MailFacts,
    /// Cycles imported from the sterilisers' files in the last 90 days whose checks found
    /// something.
    pub imported_cycles: Vec<ImportedCycleFacts>,
}

/// An imported cycle whose record does not add up, with what each check found.
#[derive(Debug, Clone)]
pub struct ImportedCycleFacts {
    pub id: String,
    pub steriliser: String,
    pub cycle_number: i64,
    /// (check, message, evidence)
    pub warnings: Vec<(String, String, String)>,
}

/// ISO 17665-1 asks that every cycle's process record be reviewed against its specification
/// before release; EN 13060 and EN 285 set the saturated-steam agreement the checks use.
const RECORD_REVIEW: &str = "ISO 17665-1:2006, 9.4 and 10 (review of each cycle's process record against the specified values); EN 13060 and EN 285 (saturated steam: measured and calculated temperature within 2 K)";

/// Imported cycle records that do not add up: each must be looked into and explained.
pub fn imported_cycles(f: &Facts) -> Vec<Finding> {
    f.imported_cycles
        .iter()
        .map(|c| {
            let what: Vec<String> = c
                .warnings
                .iter()
                .map(|(_, message, evidence)| format!("{message} ({evidence})"))
                .collect();
            finding(
                Rule::ImportedRecordChecks,
                Severity::Warning,
                format!("imported_cycle:{}", c.id),
                format!(
                    "cycle {} of {} as the device recorded it does not add up: {}",
                    c.cycle_number,
                    c.steriliser,
                    what.join("; ")
                ),
                RECORD_REVIEW,
                None,
            )
        })
        .collect()
}

fn utc(t: NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    crate::db::to_utc(t)
}

fn finding(
    rule: Rule,
    severity: Severity,
    subject: String,
    message: String,
    reference: &str,
    due: Option<NaiveDateTime>,
) -> Finding {
    Finding {
        rule,
        severity,
        subject,
        message,
        reference: reference.into(),
        due: due.map(utc),
        due_local: None,
    }
}

/// Spore-test interval per steriliser and quarantine after a failure, as the profile sets them.
pub fn spore_tests(p: &Profile, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let source = &p.sterilisation.spore_test_interval_days.source;
    for s in &f.sterilisers {
        let subject = format!("steriliser:{}", s.id);
        if s.quarantined {
            out.push(finding(Rule::FailedSporeTest, Severity::Blocker, subject.clone(), format!("{} is quarantined after a positive spore test: retest, and reprocess the look-back packs", s.label), &p.sterilisation.failed_spore_test_recall.source, None));
            continue;
        }
        if !s.in_service {
            continue;
        }
        let Some(days) = p.sterilisation.spore_test_interval_days.value else {
            continue;
        };
        match s.last_negative_spore_test {
            None => out.push(finding(
                Rule::SporeTestInterval,
                Severity::Blocker,
                subject,
                if p.sterilisation.spore_test_read_by_laboratory.value == Some(true) {
                    format!(
                        "{} has no passing spore test read by a laboratory on record",
                        s.label
                    )
                } else {
                    format!("{} has no passing spore test on record", s.label)
                },
                source,
                None,
            )),
            Some(last) => {
                // Due by the end of the clinic-local day `days` after the tested load's day,
                // however long the days in between (23 or 25 hours across a clock change).
                let due_day = last.and_utc().with_timezone(&f.tz).date_naive()
                    + Duration::days(i64::from(days));
                let due = end_of_day(due_day, f.tz);
                let local = |t: NaiveDateTime| t.and_utc().with_timezone(&f.tz).date_naive();
                let incubating = s.incubating_spore_test.filter(|t| *t > last);
                // A test placed by the due day meets the interval while it incubates; one left
                // unread for a week has been forgotten.
                if let Some(placed) = incubating.filter(|t| local(*t) <= due_day) {
                    if f.now - placed > Duration::days(7) {
                        out.push(finding(
                            Rule::SporeTestUnread,
                            Severity::Warning,
                            subject,
                            format!(
                                "{}'s spore test placed {} has no result recorded after 7 days",
                                s.label,
                                local(placed)
                            ),
                            source,
                            None,
                        ));
                    }
                    continue;
                }
                let hours = p.sterilisation.spore_test_operating_hours.value;
                if let Some(limit) = hours.filter(|h| s.hours_since_negative >= f64::from(*h)) {
                    if incubating.is_none() {
                        out.push(finding(
                            Rule::SporeTestInterval,
                            Severity::Blocker,
                            subject,
                            format!(
                                "{} has run {:.0} hours since its last passing spore test (one is due every {limit} hours of operation): test it before releasing more loads",
                                s.label, s.hours_since_negative
                            ),
                            &p.sterilisation.spore_test_operating_hours.source,
                            None,
                        ));
                        continue;
                    }
                }
                if f.now >= due {
                    out.push(finding(
                        Rule::SporeTestInterval,
                        Severity::Blocker,
                        subject,
                        format!(
                            "{}'s spore test is overdue (every {days} days; due {due_day}){}",
                            s.label,
                            incubating
                                .map(|t| format!("; the test placed {} is incubating", local(t)))
                                .unwrap_or_default()
                        ),
                        source,
                        Some(due),
                    ));
                } else if f.today >= due_day {
                    out.push(finding(
                        Rule::SporeTestInterval,
                        Severity::Warning,
                        subject,
                        format!("{}'s spore test is due today", s.label),
                        source,
                        Some(due),
                    ));
                }
            }
        }
    }
    out
}

/// A passing spore test after relocation or repair, before loads are released (rule 2).
pub fn spore_tests_after_events(p: &Profile, f: &Facts) -> Vec<Finding> {
    if p.sterilisation.spore_test_after_events.value != Some(true) {
        return Vec::new();
    }
    let source = &p.sterilisation.spore_test_after_events.source;
    f.sterilisers
        .iter()
        .filter(|s| s.in_service && !s.quarantined)
        .filter_map(|s| {
            let event = s.last_event.as_ref()?;
            let needed = p
                .sterilisation
                .requalification_spore_tests
                .value
                .unwrap_or(1);
            (!s.requalified_since_event).then(|| {
                finding(
                    Rule::SporeTestAfterEvent,
                    Severity::Blocker,
                    format!("steriliser:{}", s.id),
                    if needed > 1 {
                        format!(
                            "{} was {}: release no loads until {needed} consecutive spore tests in an empty chamber, run after that, pass",
                            s.label, event.what
                        )
                    } else {
                        format!(
                            "{} was {}: release no loads until a spore test run after that passes",
                            s.label, event.what
                        )
                    },
                    source,
                    None,
                )
            })
        })
        .collect()
}

/// Packs on the shelf that must not be used, judged by the same function as the pack views and
/// the session start (`pack_judgement`): every pack the start would refuse is a blocker here,
/// with the rule and source of the reason it is held.
pub fn stock(p: &Profile, f: &Facts) -> Vec<Finding> {
    let st = &p.sterilisation;
    let mut out = Vec::new();
    for pack in &f.stock {
        let (state, reason, cause) = pack_judgement(&pack.facts, f.now);
        let (rule, source) = match cause {
            PackCause::Used | PackCause::Released => continue,
            PackCause::LoadFailed | PackCause::IndicatorBelowProfile => {
                (Rule::LoadRelease, &st.load_indicator_min_type.source)
            }
            PackCause::LookBack => (Rule::FailedSporeTest, &st.failed_spore_test_recall.source),
            PackCause::NoAirRemovalTest => {
                (Rule::DailyAirRemoval, &st.daily_air_removal_test.source)
            }
            PackCause::NoAutomaticControlTest => (
                Rule::DailyAutomaticControl,
                &st.daily_automatic_control_test.source,
            ),
            PackCause::NoAirLeakageTest => {
                (Rule::WeeklyAirLeakage, &st.weekly_air_leakage_test.source)
            }
            PackCause::SteriliserNotQualified
                if matches!(
                    pack.facts.checks.unqualified,
                    Some(Unqualified::SinceEvent { .. })
                ) =>
            {
                (
                    Rule::SporeTestAfterEvent,
                    &st.spore_test_after_events.source,
                )
            }
            PackCause::SteriliserNotQualified
            | PackCause::RunWhileOverdue
            | PackCause::SporeTestUnread => {
                (Rule::SporeTestInterval, &st.spore_test_interval_days.source)
            }
            PackCause::ShelfLifeOver => (Rule::PackShelfLife, &st.pack_shelf_life_days.source),
        };
        let due = (state == PackState::Expired)
            .then_some(pack.facts.expires_at)
            .flatten();
        out.push(finding(
            rule,
            Severity::Blocker,
            format!("pack:{}", pack.code),
            format!(
                "pack {} from load {} must not be used: {reason}",
                pack.code, pack.cycle_number
            ),
            source,
            due,
        ));
    }
    out
}

/// The lot kinds of `required` that are not among `recorded`.
pub fn missing_lot_kinds(required: &[LotKind], recorded: &[LotKind]) -> Vec<LotKind> {
    required
        .iter()
        .filter(|k| !recorded.contains(k))
        .copied()
        .collect()
}

/// Sessions that started without a lot of each kind the profile requires (rule 7).
pub fn session_lots(p: &Profile, f: &Facts) -> Vec<Finding> {
    f.sessions_missing_lots
        .iter()
        .map(|s| {
            let kinds: Vec<&str> = s.kinds.iter().map(|k| k.label()).collect();
            finding(
                Rule::SessionLots,
                Severity::Warning,
                format!("session:{}", s.session_id),
                format!(
                    "the session started without a recorded {}",
                    kinds.join(" or ")
                ),
                &p.lots_recorded_per_session.source,
                None,
            )
        })
        .collect()
}

/// A routine test of a steriliser that must pass before its loads: what it is called, how often,
/// and which of a steriliser's facts say whether it was done.
struct RoutineTest {
    rule: Rule,
    name: &'static str,
    /// "today's first load", "the next load": when it must have passed by.
    before: &'static str,
    vacuum_only: bool,
    loads_without: fn(&SteriliserFacts) -> usize,
    passed: fn(&SteriliserFacts) -> bool,
}

/// A load run without the test is a blocker (its packs are quarantined, and stay so on the
/// shelf); a test still to do before the next load is information.
fn routine_test(
    t: &RoutineTest,
    asked: &crate::jurisdiction::profiles::Sourced<bool>,
    f: &Facts,
) -> Vec<Finding> {
    if asked.value != Some(true) {
        return Vec::new();
    }
    f.sterilisers
        .iter()
        .filter(|s| s.in_service && (s.pre_vacuum || !t.vacuum_only))
        .filter_map(|s| {
            let subject = format!("steriliser:{}", s.id);
            let without = (t.loads_without)(s);
            if without > 0 {
                Some(finding(
                    t.rule,
                    Severity::Blocker,
                    subject,
                    format!(
                        "{} ran {without} load(s) today without a passing {} before them: run the test before the next load, and reprocess those loads' packs",
                        s.label, t.name
                    ),
                    &asked.source,
                    None,
                ))
            } else if !(t.passed)(s) && !s.loads_today {
                Some(finding(
                    t.rule,
                    Severity::Info,
                    subject,
                    format!("{} needs a passing {} before {}", s.label, t.name, t.before),
                    &asked.source,
                    None,
                ))
            } else {
                None
            }
        })
        .collect()
}

/// Daily air-removal test before the first load of a pre-vacuum steriliser.
pub fn air_removal(p: &Profile, f: &Facts) -> Vec<Finding> {
    let test = RoutineTest {
        rule: Rule::DailyAirRemoval,
        name: "air-removal test",
        before: "today's first load",
        vacuum_only: true,
        loads_without: |s| s.loads_today_without_air_removal,
        passed: |s| s.air_removal_passed_today,
    };
    routine_test(&test, &p.sterilisation.daily_air_removal_test, f)
}

/// HTM 01-05: a daily automatic control test of every steriliser before the first load, and a
/// weekly air-leakage test of vacuum sterilisers.
pub fn htm_routine_tests(p: &Profile, f: &Facts) -> Vec<Finding> {
    let control = RoutineTest {
        rule: Rule::DailyAutomaticControl,
        name: "automatic control test",
        before: "today's first load",
        vacuum_only: false,
        loads_without: |s| s.loads_today_without_automatic_control,
        passed: |s| s.automatic_control_passed_today,
    };
    let leakage = RoutineTest {
        rule: Rule::WeeklyAirLeakage,
        name: "air-leakage test (within the last seven days)",
        before: "the next load",
        vacuum_only: true,
        loads_without: |s| s.loads_today_without_air_leakage,
        passed: |s| s.air_leakage_passed_this_week,
    };
    let mut out = routine_test(&control, &p.sterilisation.daily_automatic_control_test, f);
    out.extend(routine_test(
        &leakage,
        &p.sterilisation.weekly_air_leakage_test,
        f,
    ));
    out
}

/// Lots in stock that are recalled, expired or about to expire (rule 7).
pub fn lots(p: &Profile, f: &Facts) -> Vec<Finding> {
    let reference = p.lot_expiry_and_recall.source.as_str();
    f.lots
        .iter()
        .filter_map(|l| {
            let subject = format!("lot:{}", l.id);
            match l.status {
                LotStatus::Recalled => Some(finding(
                    Rule::LotRecalled,
                    Severity::Blocker,
                    subject,
                    format!(
                        "{} is recalled: do not use it; quarantine the stock",
                        l.label
                    ),
                    reference,
                    None,
                )),
                LotStatus::Expired => Some(finding(
                    Rule::LotExpired,
                    Severity::Blocker,
                    subject,
                    format!("{} expired on {}: do not use it", l.label, l.expiry_date),
                    reference,
                    None,
                )),
                LotStatus::Usable if l.expiry_date - f.today <= Duration::days(30) => {
                    Some(finding(
                        Rule::LotExpiring,
                        Severity::Info,
                        subject,
                        format!("{} expires on {}", l.label, l.expiry_date),
                        reference,
                        Some(end_of_day(l.expiry_date, f.tz)),
                    ))
                }
                LotStatus::Usable | LotStatus::Withdrawn => None,
            }
        })
        .collect()
}

/// Technician eligibility, with 30-day warnings, each citing that credential's source in the
/// clinic's profile.
pub fn staff(p: &Profile, f: &Facts) -> Vec<Finding> {
    let source_of = |kind: crate::credentials::model::CredentialKind| {
        p.required_credentials
            .iter()
            .find(|c| c.kind == kind)
            .map_or("", |c| c.source.as_str())
    };
    let mut out = Vec::new();
    for s in &f.staff {
        let subject = format!("member:{}", s.user_id);
        for r in &s.eligibility.reasons {
            out.push(finding(
                Rule::TechnicianEligibility,
                Severity::Blocker,
                subject.clone(),
                format!("{}: {}", s.name, r.message),
                source_of(r.kind),
                None,
            ));
        }
        for w in &s.eligibility.warnings {
            // A warning starts with the credential's label ("bloodborne-pathogen training lapses…").
            let source = p
                .required_credentials
                .iter()
                .find(|c| w.starts_with(c.kind.label()))
                .map_or("", |c| c.source.as_str());
            out.push(finding(
                Rule::TechnicianEligibility,
                Severity::Warning,
                subject.clone(),
                format!("{}: {w}", s.name),
                source,
                None,
            ));
        }
    }
    out
}

/// Incident follow-ups, graded by what must happen: one past its deadline (or due at once, like
/// an exposure's medical evaluation) is a blocker; one due by the end of today a warning; one due
/// later information. The reference is the rule behind that follow-up in the clinic's profile.
pub fn incidents(p: &Profile, f: &Facts) -> Vec<Finding> {
    use crate::incidents::model::FollowUpKind;
    f.follow_ups
        .iter()
        .filter(|u| !u.done)
        .map(|u| {
            let overdue = f.now >= u.due;
            // Due by the end of today: the due instant is at or before the next local midnight.
            let today = u.due <= crate::clinics::context::end_of_day(f.today, f.tz);
            let severity = if overdue {
                Severity::Blocker
            } else if today {
                Severity::Warning
            } else {
                Severity::Info
            };
            let (what, reference) = match u.kind {
                FollowUpKind::EvaluationOffered => (
                    "the confidential medical evaluation must be offered to the exposed person now",
                    "29 CFR 1910.1030(f)(3): post-exposure evaluation and follow-up made available immediately",
                ),
                FollowUpKind::WrittenOpinion => (
                    "the clinician's written opinion must be given to the exposed person",
                    "29 CFR 1910.1030(f)(5): the healthcare professional's written opinion within 15 days of the evaluation's completion",
                ),
                FollowUpKind::AuthorityReport => (
                    "the report to the authority must be made",
                    p.incident_report_working_days.source.as_str(),
                ),
                FollowUpKind::EvaluationCompleted | FollowUpKind::Other => {
                    ("a follow-up must be recorded", "")
                }
            };
            finding(
                Rule::IncidentFollowUp,
                severity,
                format!("incident:{}", u.incident_id),
                format!(
                    "{}: {what} ({} {})",
                    u.incident,
                    if overdue { "overdue; it was due" } else { "due" },
                    crate::clinics::context::due_in_words(u.due, f.tz)
                ),
                reference,
                Some(u.due),
            )
        })
        .collect()
}

/// Mail that could not be delivered, and an authority address the profile needs but the clinic
/// has not given.
pub fn mail(p: &Profile, f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for (kind, recipient, subject) in &f.mail.failed {
        out.push(finding(
            Rule::MailDelivery,
            Severity::Warning,
            format!("mail:{recipient}"),
            format!("{kind} mail to {recipient} could not be delivered: {subject}"),
            if kind == "authority" {
                p.notify_authority_of.source.as_str()
            } else {
                "The clinic's mail settings: summaries and reports go to the addresses set there"
            },
            None,
        ));
    }
    if !f.mail.authority_missing.is_empty() {
        let events: Vec<String> = f
            .mail
            .authority_missing
            .iter()
            .map(|e| match e {
                crate::jurisdiction::profiles::AuthorityEvent::PositiveSporeTest => {
                    "a positive spore test".to_owned()
                }
                crate::jurisdiction::profiles::AuthorityEvent::LotRecall => {
                    "a lot recall".to_owned()
                }
            })
            .collect();
        out.push(finding(
            Rule::AuthorityAddress,
            Severity::Warning,
            "mail_settings".into(),
            format!(
                "the jurisdiction requires reporting {} to the authority at once, but no authority address is set",
                events.join(", ")
            ),
            &p.notify_authority_of.source,
            None,
        ));
    }
    out
}

/// Every rule, most severe first.
pub fn evaluate(p: &Profile, f: &Facts) -> Vec<Finding> {
    let mut all = Vec::new();
    all.extend(spore_tests(p, f));
    all.extend(spore_tests_after_events(p, f));
    all.extend(air_removal(p, f));
    all.extend(htm_routine_tests(p, f));
    all.extend(stock(p, f));
    all.extend(session_lots(p, f));
    all.extend(lots(p, f));
    all.extend(staff(p, f));
    all.extend(incidents(p, f));
    all.extend(mail(p, f));
    all.extend(imported_cycles(f));
    for finding in &mut all {
        finding.due_local = finding
            .due
            .map(|d| crate::clinics::context::due_in_words(d.naive_utc(), f.tz));
    }
    all.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.rule.as_str().cmp(b.rule.as_str()))
            .then(a.subject.cmp(&b.subject))
    });
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jurisdiction::profiles::Profiles;
    use crate::sterilisation::model::{pack_state, Biological, LoadChecks, Outcome, PackFacts};

    fn at(d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    fn steriliser(last: Option<NaiveDateTime>) -> SteriliserFacts {
        SteriliserFacts {
            id: "s".into(),
            label: "Lisa".into(),
            pre_vacuum: true,
            in_service: true,
            quarantined: false,
            last_negative_spore_test: last,
            incubating_spore_test: None,
            loads_today: false,
            loads_today_without_air_removal: 0,
            air_removal_passed_today: true,
            loads_today_without_automatic_control: 0,
            automatic_control_passed_today: true,
            loads_today_without_air_leakage: 0,
            air_leakage_passed_this_week: true,
            last_event: None,
            requalified_since_event: false,
            hours_since_negative: 0.0,
        }
    }

    fn facts(now: NaiveDateTime, s: SteriliserFacts) -> Facts {
        Facts {
            now,
            today: now.date(),
            tz: chrono_tz::UTC,
            sterilisers: vec![s],
            lots: vec![],
            staff: vec![],
            follow_ups: vec![],
            stock: vec![],
            sessions_missing_lots: vec![],
            imported_cycles: vec![],
            credential_expiries: vec![],
            mail: MailFacts::default(),
        }
    }

    #[test]
    fn spore_test_interval_boundaries() {
        let profiles = Profiles::load(None).unwrap();
        let baseline = profiles.get("baseline").unwrap(); // every 7 days
        let last = at(1, 9);
        // The day before the due day: nothing; the due day: warning; the day after: blocker.
        assert!(spore_tests(baseline, &facts(at(7, 23), steriliser(Some(last)))).is_empty());
        assert_eq!(
            spore_tests(baseline, &facts(at(8, 0), steriliser(Some(last))))[0].severity,
            Severity::Warning
        );
        assert_eq!(
            spore_tests(baseline, &facts(at(8, 23), steriliser(Some(last))))[0].severity,
            Severity::Warning
        );
        assert_eq!(
            spore_tests(baseline, &facts(at(9, 0), steriliser(Some(last))))[0].severity,
            Severity::Blocker
        );
        // A test placed on the due day meets the interval while it incubates overnight; one
        // placed the day after does not, and one never read is flagged after a week.
        let incubating = |placed| SteriliserFacts {
            incubating_spore_test: Some(placed),
            ..steriliser(Some(last))
        };
        assert!(spore_tests(baseline, &facts(at(9, 7), incubating(at(8, 21)))).is_empty());
        assert!(spore_tests(baseline, &facts(at(8, 22), incubating(at(8, 21)))).is_empty());
        let late = spore_tests(baseline, &facts(at(9, 12), incubating(at(9, 10))));
        assert_eq!(late[0].severity, Severity::Blocker);
        assert!(
            late[0].message.contains("incubating"),
            "{}",
            late[0].message
        );
        let forgotten = spore_tests(baseline, &facts(at(16, 22), incubating(at(8, 21))));
        assert_eq!(forgotten[0].rule, Rule::SporeTestUnread);
        assert_eq!(forgotten[0].severity, Severity::Warning);
        // California allows 30 days.
        let ca = profiles.get("us-ca").unwrap();
        assert!(spore_tests(ca, &facts(at(20, 9), steriliser(Some(last)))).is_empty());
        // England sets no periodic test.
        assert!(spore_tests(
            profiles.get("gb-eng").unwrap(),
            &facts(at(30, 9), steriliser(None))
        )
        .is_empty());
        assert_eq!(
            spore_tests(baseline, &facts(at(2, 9), steriliser(None)))[0].severity,
            Severity::Blocker
        );
    }

    fn london(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        // A clinic-local wall-clock time in London, as UTC.
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
            .and_local_timezone(chrono_tz::Europe::London)
            .unwrap()
            .naive_utc()
    }

    fn london_facts(now: NaiveDateTime, s: SteriliserFacts) -> Facts {
        let tz = chrono_tz::Europe::London;
        Facts {
            today: now.and_utc().with_timezone(&tz).date_naive(),
            tz,
            ..facts(now, s)
        }
    }

    #[test]
    fn spore_test_interval_across_the_autumn_clock_change() {
        // Clocks go back in London on Sunday 25 October 2026. A test read on a load of Tuesday
        // 20 October is due by the end of Tuesday 27 October, local time.
        let profiles = Profiles::load(None).unwrap();
        let baseline = profiles.get("baseline").unwrap();
        let last = london(2026, 10, 20, 10, 0);
        let judge = |now| spore_tests(baseline, &london_facts(now, steriliser(Some(last))));
        assert!(
            judge(london(2026, 10, 26, 23, 59)).is_empty(),
            "the day before"
        );
        assert_eq!(
            judge(london(2026, 10, 27, 0, 1))[0].severity,
            Severity::Warning
        );
        // 23:30 local on the due day is 7 days and 14.5 hours after the load: still due, not
        // overdue, although more than 7 × 24 hours have passed.
        assert_eq!(
            judge(london(2026, 10, 27, 23, 30))[0].severity,
            Severity::Warning
        );
        assert_eq!(
            judge(london(2026, 10, 27, 23, 30))[0].due,
            Some(utc(london(2026, 10, 28, 0, 0))),
            "the end of the local day is the next local midnight, exclusive"
        );
        assert_eq!(
            judge(london(2026, 10, 28, 0, 1))[0].severity,
            Severity::Blocker
        );
    }

    #[test]
    fn spore_test_interval_across_the_spring_clock_change() {
        // Clocks go forward on Sunday 29 March 2026: that local day has 23 hours.
        let profiles = Profiles::load(None).unwrap();
        let baseline = profiles.get("baseline").unwrap();
        let last = london(2026, 3, 22, 0, 30); // 00:30 GMT
        let judge = |now| spore_tests(baseline, &london_facts(now, steriliser(Some(last))));
        assert!(judge(london(2026, 3, 28, 23, 59)).is_empty());
        assert_eq!(
            judge(london(2026, 3, 29, 0, 30))[0].severity,
            Severity::Warning
        );
        assert_eq!(
            judge(london(2026, 3, 29, 23, 59))[0].severity,
            Severity::Warning
        );
        assert_eq!(
            judge(london(2026, 3, 30, 0, 0))[0].severity,
            Severity::Blocker
        );
    }

    #[test]
    fn a_local_day_is_23_or_25_hours_across_a_clock_change() {
        use crate::compliance::facts::local_day;
        let tz = chrono_tz::Europe::London;
        let (day, start, end) = local_day(london(2026, 3, 29, 12, 0), tz);
        assert_eq!(day, NaiveDate::from_ymd_opt(2026, 3, 29).unwrap());
        assert_eq!(end - start, Duration::hours(23));
        let (_, start, end) = local_day(london(2026, 10, 25, 12, 0), tz);
        assert_eq!(end - start, Duration::hours(25));
        // 23:30 UTC on 31 March is already 1 April in London.
        let late = NaiveDate::from_ymd_opt(2026, 3, 31)
            .unwrap()
            .and_hms_opt(23, 30, 0)
            .unwrap();
        assert_eq!(
            local_day(late, tz).0,
            NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()
        );
    }

    #[test]
    fn lots_expire_by_the_clinic_local_day() {
        let tz = chrono_tz::Europe::London;
        let expiry = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
        let profiles = Profiles::load(None).unwrap();
        let p = profiles.get("baseline").unwrap();
        let judge = |now: NaiveDateTime| {
            let today = now.and_utc().with_timezone(&tz).date_naive();
            let mut f = london_facts(now, steriliser(None));
            f.lots = vec![LotFacts {
                id: "l".into(),
                label: "lot L".into(),
                status: crate::lots::model::lot_status(expiry, false, today),
                expiry_date: expiry,
            }];
            lots(p, &f).into_iter().map(|x| x.rule).collect::<Vec<_>>()
        };
        assert_eq!(judge(london(2026, 3, 30, 12, 0)), [Rule::LotExpiring]);
        assert_eq!(judge(london(2026, 3, 31, 23, 59)), [Rule::LotExpiring]);
        // 23:30 UTC on 31 March is 00:30 on 1 April in London: expired there.
        let late = NaiveDate::from_ymd_opt(2026, 3, 31)
            .unwrap()
            .and_hms_opt(23, 30, 0)
            .unwrap();
        assert_eq!(judge(late), [Rule::LotExpired]);
    }

    #[test]
    fn a_relocation_or_repair_needs_a_spore_test_after_it() {
        let profiles = Profiles::load(None).unwrap();
        let baseline = profiles.get("baseline").unwrap();
        let moved = SteriliserFacts {
            last_event: Some(TestEvent {
                at: at(5, 12),
                what: "relocated to Decon room".into(),
            }),
            ..steriliser(Some(at(5, 11)))
        };
        let found = spore_tests_after_events(baseline, &facts(at(5, 13), moved.clone()));
        assert_eq!(found[0].rule, Rule::SporeTestAfterEvent);
        assert_eq!(found[0].severity, Severity::Blocker);
        let retested = SteriliserFacts {
            last_negative_spore_test: Some(at(5, 13)),
            requalified_since_event: true,
            ..moved.clone()
        };
        assert!(spore_tests_after_events(baseline, &facts(at(6, 9), retested)).is_empty());
        // England relies on engineering tests after repair, not spore tests.
        let england = profiles.get("gb-eng").unwrap();
        assert!(spore_tests_after_events(england, &facts(at(5, 13), moved)).is_empty());
    }

    fn pack(expires_at: Option<NaiveDateTime>) -> StockPackFacts {
        StockPackFacts {
            code: "ABC-234".into(),
            cycle_id: "c".into(),
            cycle_number: 7,
            facts: PackFacts {
                used: false,
                cycle_outcome: Outcome::Pass,
                cycle_started_at: at(9, 9),
                biological: Biological::None,
                lookback: vec![],
                expires_at,
                checks: LoadChecks::default(),
            },
        }
    }

    #[test]
    fn every_pack_the_start_would_refuse_is_a_blocker_on_the_shelf() {
        let profiles = Profiles::load(None).unwrap();
        let baseline = profiles.get("baseline").unwrap();
        let mut f = facts(at(10, 12), steriliser(Some(at(9, 9))));
        let judge = |f: &Facts, p: &Profile| {
            stock(p, f)
                .into_iter()
                .map(|x| (x.rule, x.severity))
                .collect::<Vec<_>>()
        };
        // Shelf life: the moment of expiry is already past it (the end of a day is exclusive).
        f.stock = vec![pack(Some(at(10, 12) + Duration::microseconds(1)))];
        assert!(judge(&f, baseline).is_empty());
        f.stock = vec![pack(Some(at(10, 12)))];
        assert_eq!(
            judge(&f, baseline),
            [(Rule::PackShelfLife, Severity::Blocker)]
        );
        let mut failed = pack(Some(at(1, 0)));
        failed.facts.cycle_outcome = Outcome::Fail;
        f.stock = vec![failed];
        assert_eq!(
            judge(&f, baseline),
            [(Rule::LoadRelease, Severity::Blocker)],
            "a rejected load outweighs its shelf life"
        );
        let mut held = pack(None);
        held.facts.checks.run_while_overdue = true;
        f.stock = vec![held];
        assert_eq!(
            judge(&f, baseline),
            [(Rule::SporeTestInterval, Severity::Blocker)]
        );
        let mut untested = pack(None);
        untested.facts.checks.without_air_removal = true;
        f.stock = vec![untested];
        assert_eq!(
            judge(&f, baseline),
            [(Rule::DailyAirRemoval, Severity::Blocker)]
        );
        // Each pack's state and the view agree: anything but released is a blocker.
        for p in &f.stock {
            assert_ne!(pack_state(&p.facts, f.now).0, PackState::Released);
        }
    }

    #[test]
    fn sessions_without_a_required_lot_kind_are_found() {
        let required = [LotKind::NeedleCartridge, LotKind::Pigment];
        assert_eq!(
            missing_lot_kinds(&required, &[LotKind::NeedleCartridge]),
            [LotKind::Pigment]
        );
        assert!(
            missing_lot_kinds(&required, &[LotKind::Pigment, LotKind::NeedleCartridge]).is_empty()
        );
        assert!(missing_lot_kinds(&[], &[]).is_empty());
    }

    #[test]
    fn air_removal_before_the_first_load() {
        let profiles = Profiles::load(None).unwrap();
        let p = profiles.get("baseline").unwrap();
        let missing = SteriliserFacts {
            air_removal_passed_today: false,
            ..steriliser(Some(at(1, 9)))
        };
        assert_eq!(
            air_removal(p, &facts(at(2, 7), missing.clone()))[0].severity,
            Severity::Info
        );
        let loaded = SteriliserFacts {
            loads_today: true,
            loads_today_without_air_removal: 1,
            ..missing
        };
        assert_eq!(
            air_removal(p, &facts(at(2, 9), loaded.clone()))[0].severity,
            Severity::Blocker
        );
        // A pass recorded after the day's first load does not clear that load.
        let passed_late = SteriliserFacts {
            air_removal_passed_today: true,
            ..loaded.clone()
        };
        assert_eq!(
            air_removal(p, &facts(at(2, 10), passed_late))[0].severity,
            Severity::Blocker
        );
        let gravity = SteriliserFacts {
            pre_vacuum: false,
            ..loaded
        };
        assert!(air_removal(p, &facts(at(2, 9), gravity)).is_empty());
    }

    #[test]
    fn follow_ups_are_graded_by_what_must_happen() {
        use crate::incidents::model::FollowUpKind;
        let profiles = Profiles::load(None).unwrap();
        let p = profiles.get("baseline").unwrap();
        let mut f = facts(at(10, 12), steriliser(Some(at(9, 9))));
        f.follow_ups = vec![FollowUpFacts {
            incident: "the sharps injury at Chair 1 on Monday 2 November 2026".into(),
            incident_id: "i".into(),
            kind: FollowUpKind::WrittenOpinion,
            due: at(12, 12),
            done: false,
        }];
        assert_eq!(incidents(p, &f)[0].severity, Severity::Info, "due later");
        f.now = at(12, 9);
        f.today = f.now.date();
        assert_eq!(incidents(p, &f)[0].severity, Severity::Warning, "due today");
        f.now = at(12, 13);
        assert_eq!(incidents(p, &f)[0].severity, Severity::Blocker, "overdue");
        assert!(incidents(p, &f)[0].reference.contains("1910.1030(f)(5)"));
        // An evaluation is due at once: not done is a blocker straight away.
        f.follow_ups = vec![FollowUpFacts {
            incident: "the sharps injury at Chair 1 on Monday 2 November 2026".into(),
            incident_id: "i".into(),
            kind: FollowUpKind::EvaluationOffered,
            due: at(12, 12),
            done: false,
        }];
        assert_eq!(incidents(p, &f)[0].severity, Severity::Blocker);
        f.follow_ups[0].done = true;
        assert!(incidents(p, &f).is_empty());
    }

    #[test]
    fn florida_counts_hours_of_operation_since_the_last_passing_test() {
        let profiles = Profiles::load(None).unwrap();
        let florida = profiles.get("us-fl").unwrap();
        let baseline = profiles.get("baseline").unwrap();
        let worked = SteriliserFacts {
            pre_vacuum: false,
            hours_since_negative: 41.0,
            ..steriliser(Some(at(9, 9)))
        };
        let f = facts(at(10, 12), worked);
        let found = spore_tests(florida, &f);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].severity, Severity::Blocker);
        assert!(found[0].reference.contains("40 hours"), "{found:?}");
        assert!(
            spore_tests(baseline, &f).is_empty(),
            "the baseline counts days only"
        );
    }
}
