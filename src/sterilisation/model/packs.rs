//! Packs: their state, derived from their load, its spore tests and their use, and their codes.

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackState {
    /// Its load carried a spore test that has not been read yet.
    Pending,
    /// Fit to use.
    Released,
    /// Must not be used: the load failed, or a failed spore test reaches back to it.
    Quarantined,
    /// Past its shelf life.
    Expired,
    /// Opened for a client.
    Used,
}

/// A relocation or a return from repair: the steriliser must pass a spore test run after it
/// before its loads are released again.
#[derive(Debug, Clone, PartialEq)]
pub struct TestEvent {
    pub at: NaiveDateTime,
    pub what: String,
}

/// What a steriliser's own record says about the loads it runs, as the records stood at a
/// moment: read spore tests, its latest relocation or repair, its passing air-removal tests.
#[derive(Debug, Clone)]
pub struct SteriliserRecord {
    pub pre_vacuum: bool,
    /// Read spore tests, each with the start of the load it rode in.
    pub reads: Vec<ReadTest>,
    pub last_event: Option<TestEvent>,
    /// Every load's start and finish: the hours of operation between spore tests.
    pub loads: Vec<(NaiveDateTime, NaiveDateTime)>,
    /// When each passing air-removal test was performed.
    pub air_removal_passes: Vec<NaiveDateTime>,
    /// When each passing automatic control test was performed.
    pub automatic_control_passes: Vec<NaiveDateTime>,
    /// When each passing air-leakage test was performed.
    pub air_leakage_passes: Vec<NaiveDateTime>,
    /// The earliest load start this record can judge: older tests and routine passes may have
    /// been left unread.
    pub complete_from: NaiveDateTime,
}

impl Default for SteriliserRecord {
    /// An empty record that can judge any load.
    fn default() -> Self {
        Self {
            pre_vacuum: false,
            reads: Vec::new(),
            last_event: None,
            loads: Vec::new(),
            air_removal_passes: Vec::new(),
            automatic_control_passes: Vec::new(),
            air_leakage_passes: Vec::new(),
            complete_from: NaiveDateTime::MIN,
        }
    }
}

impl SteriliserRecord {
    /// The starts of the loads whose spore test read a valid negative.
    pub fn negatives(&self) -> Vec<NaiveDateTime> {
        self.reads
            .iter()
            .filter(|t| t.valid && t.result == SporeResult::Negative)
            .map(|t| t.cycle_started_at)
            .collect()
    }

    /// Hours of operation (load durations) from the last passing test before `until` up to it.
    pub fn hours_since_negative(&self, until: NaiveDateTime) -> f64 {
        let since = self.negatives().into_iter().filter(|n| *n < until).max();
        self.loads
            .iter()
            .filter(|(start, _)| *start < until && since.is_none_or(|s| *start >= s))
            .map(|(start, finish)| (*finish - *start).num_seconds().max(0) as f64 / 3600.0)
            .sum()
    }
}

/// The profile's rules a load is judged by, in the clinic's time zone.
#[derive(Debug, Clone, Copy)]
pub struct LoadRules {
    pub spore_test_interval_days: Option<u32>,
    pub spore_test_after_events: bool,
    pub daily_air_removal_test: bool,
    pub load_indicator_min_type: Option<i32>,
    /// A spore test is due after this many hours of operation (Florida: 40).
    pub spore_test_operating_hours: Option<u32>,
    /// Consecutive empty-chamber negatives that requalify a steriliser (1 where the profile asks
    /// for no more).
    pub requalification_spore_tests: u32,
    pub daily_automatic_control_test: bool,
    pub weekly_air_leakage_test: bool,
    pub tz: chrono_tz::Tz,
}

/// Why a steriliser could not release loads when one ran.
#[derive(Debug, Clone, PartialEq)]
pub enum Unqualified {
    /// No passing spore test on record at all.
    NeverTested,
    /// Relocated or repaired (`what` says which), without the passing tests (`tests`
    /// consecutive, in an empty chamber where more than one) that requalify it since.
    SinceEvent { what: String, tests: u32 },
}

impl Unqualified {
    pub fn reason(&self) -> String {
        match self {
            Self::NeverTested => "its steriliser has no passing spore test on record".into(),
            Self::SinceEvent { what, tests } if *tests > 1 => format!(
                "its steriliser was {what} and has not passed {tests} consecutive spore tests in an empty chamber since"
            ),
            Self::SinceEvent { what, .. } => {
                format!("its steriliser was {what} and has not passed a spore test since")
            }
        }
    }
}

/// What the steriliser's record and the profile say of one load, beyond its own indicators.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadChecks {
    /// The load ran after the steriliser's spore test fell overdue, and no test in a load started
    /// at or after it has read negative yet.
    pub run_while_overdue: bool,
    /// Why the steriliser was not qualified when the load ran (never spore-tested, or relocated
    /// or repaired with no passing test since), while that is still so.
    pub unqualified: Option<Unqualified>,
    /// A pre-vacuum load with no passing air-removal test earlier the same clinic-local day.
    pub without_air_removal: bool,
    /// A load with no passing automatic control test earlier the same clinic-local day.
    pub without_automatic_control: bool,
    /// A pre-vacuum load with no passing air-leakage test in the seven clinic-local days up to
    /// it.
    pub without_air_leakage: bool,
    /// The load's chemical indicator type, and the lowest type the profile accepts.
    pub indicator_below: Option<(i32, i32)>,
}

/// Judges one load against its steriliser's record and the profile.
pub fn load_checks(
    load_started: NaiveDateTime,
    load_indicator_type: i32,
    record: &SteriliserRecord,
    rules: &LoadRules,
) -> LoadChecks {
    debug_assert!(
        load_started >= record.complete_from,
        "a load judged against a record read from a later start"
    );
    let negatives = record.negatives();
    let local = |t: NaiveDateTime| t.and_utc().with_timezone(&rules.tz).date_naive();
    let unqualified =
        if !rules.spore_test_after_events && rules.spore_test_interval_days.is_none() {
            None
        } else {
            match &record.last_event {
                // Relocated or repaired before this load ran: held until a test run after the event
                // passes.
                Some(e) if rules.spore_test_after_events && e.at <= load_started => {
                    (!requalified_after(&record.reads, e.at, rules.requalification_spore_tests))
                        .then(|| Unqualified::SinceEvent {
                            what: e.what.clone(),
                            tests: rules.requalification_spore_tests,
                        })
                }
                _ => negatives.is_empty().then_some(Unqualified::NeverTested),
            }
        };
    // The record holds every test the steriliser ever passed; only those of the last day or
    // week can count, so the rest are passed over by their UTC time before any time-zone
    // arithmetic (a local day lasts at most 25 hours), keeping a load's judgement as cheap in
    // the third year as in the first.
    let load_day = local(load_started);
    let passed_on_load_day = |passes: &[NaiveDateTime]| {
        passes.iter().any(|p| {
            *p <= load_started
                && load_started - *p <= chrono::Duration::hours(26)
                && local(*p) == load_day
        })
    };
    let without_air_removal = record.pre_vacuum
        && rules.daily_air_removal_test
        && !passed_on_load_day(&record.air_removal_passes);
    let without_automatic_control =
        rules.daily_automatic_control_test && !passed_on_load_day(&record.automatic_control_passes);
    let week_from = load_day - chrono::Days::new(6);
    let without_air_leakage = record.pre_vacuum
        && rules.weekly_air_leakage_test
        && !record.air_leakage_passes.iter().any(|p| {
            *p <= load_started
                && load_started - *p <= chrono::Duration::days(8)
                && local(*p) >= week_from
        });
    LoadChecks {
        // Overdue by the calendar, or by hours of operation: a load started once the steriliser
        // had run its hours since the last passing test waits for the next one.
        run_while_overdue: run_while_overdue(
            load_started,
            &negatives,
            rules.spore_test_interval_days,
            rules.tz,
        ) || rules.spore_test_operating_hours.is_some_and(|limit| {
            !negatives.is_empty()
                && record.hours_since_negative(load_started) >= f64::from(limit)
                && !negatives.iter().any(|n| *n >= load_started)
        }),
        unqualified,
        without_air_removal,
        without_automatic_control,
        without_air_leakage,
        indicator_below: rules
            .load_indicator_min_type
            .filter(|min| load_indicator_type < *min)
            .map(|min| (load_indicator_type, min)),
    }
}

/// Everything a pack's state depends on.
#[derive(Debug, Clone)]
pub struct PackFacts {
    pub used: bool,
    pub cycle_outcome: Outcome,
    pub cycle_started_at: NaiveDateTime,
    pub biological: Biological,
    pub lookback: Vec<Window>,
    pub expires_at: Option<NaiveDateTime>,
    pub checks: LoadChecks,
}

/// Why a pack is in its state: picks the rule (and its source) a finding about it cites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackCause {
    Used,
    LoadFailed,
    LookBack,
    IndicatorBelowProfile,
    NoAirRemovalTest,
    NoAutomaticControlTest,
    NoAirLeakageTest,
    SteriliserNotQualified,
    RunWhileOverdue,
    ShelfLifeOver,
    SporeTestUnread,
    Released,
}

/// The pack's state and why: the one judgement of whether a pack may be used, shared by the
/// pack views, the session start and the compliance view. Used beats everything (it is history);
/// then quarantine (reprocess it); then a hold until a spore test passes; then expiry; then a
/// spore test of its own load still incubating.
pub fn pack_judgement(f: &PackFacts, now: NaiveDateTime) -> (PackState, String, PackCause) {
    if f.used {
        return (
            PackState::Used,
            "opened for a client session".into(),
            PackCause::Used,
        );
    }
    if f.cycle_outcome == Outcome::Fail {
        return (
            PackState::Quarantined,
            "its load failed an indicator: reprocess it".into(),
            PackCause::LoadFailed,
        );
    }
    if f.lookback.iter().any(|w| in_window(f.cycle_started_at, w)) {
        return (
            PackState::Quarantined,
            "a positive spore test reaches back to its load: reprocess it".into(),
            PackCause::LookBack,
        );
    }
    if let Some((found, min)) = f.checks.indicator_below {
        return (
            PackState::Quarantined,
            format!("its load's chemical indicator is type {found}; the jurisdiction requires type {min} or higher: reprocess it"),
            PackCause::IndicatorBelowProfile,
        );
    }
    if f.checks.without_air_removal {
        return (
            PackState::Quarantined,
            "its load ran without a passing air-removal test before it that day: reprocess it"
                .into(),
            PackCause::NoAirRemovalTest,
        );
    }
    if f.checks.without_automatic_control {
        return (
            PackState::Quarantined,
            "its load ran without a passing automatic control test before it that day: reprocess it"
                .into(),
            PackCause::NoAutomaticControlTest,
        );
    }
    if f.checks.without_air_leakage {
        return (
            PackState::Quarantined,
            "its load ran without a passing air-leakage test in the week before it: reprocess it"
                .into(),
            PackCause::NoAirLeakageTest,
        );
    }
    if let Some(why) = &f.checks.unqualified {
        return (
            PackState::Pending,
            format!("{}: hold it until one passes", why.reason()),
            PackCause::SteriliserNotQualified,
        );
    }
    if f.checks.run_while_overdue {
        return (
            PackState::Pending,
            "its load ran while the steriliser's spore test was overdue: hold it until a spore test of that steriliser reads negative".into(),
            PackCause::RunWhileOverdue,
        );
    }
    if let Some(expiry) = f.expires_at {
        if expiry <= now {
            return (
                PackState::Expired,
                "past its shelf life: reprocess it".into(),
                PackCause::ShelfLifeOver,
            );
        }
    }
    match f.biological {
        Biological::Pending => (
            PackState::Pending,
            "its load's spore test has not been read".into(),
            PackCause::SporeTestUnread,
        ),
        Biological::Invalid => (
            PackState::Pending,
            "its load's spore test was invalid (control did not grow); repeat it".into(),
            PackCause::SporeTestUnread,
        ),
        _ => (
            PackState::Released,
            "all indicators passed".into(),
            PackCause::Released,
        ),
    }
}

/// The pack's state and why, as [`pack_judgement`] gives it.
pub fn pack_state(f: &PackFacts, now: NaiveDateTime) -> (PackState, String) {
    let (state, reason, _) = pack_judgement(f, now);
    (state, reason)
}

/// The shelf life a new pack is given: the clinic's own limit, never longer than the
/// jurisdiction's.
pub fn effective_shelf_life(clinic: Option<i32>, jurisdiction: Option<u32>) -> Option<i32> {
    let jurisdiction = jurisdiction.and_then(|d| i32::try_from(d).ok());
    match (clinic, jurisdiction) {
        (Some(c), Some(j)) => Some(c.min(j)),
        (c, j) => c.or(j),
    }
}

/// The end of a pack's shelf life: the end of the clinic-local day `days` after the day its
/// load finished, whatever the clock does in between.
pub fn pack_expiry(finished_at: NaiveDateTime, days: u32, tz: chrono_tz::Tz) -> NaiveDateTime {
    let day =
        finished_at.and_utc().with_timezone(&tz).date_naive() + Duration::days(i64::from(days));
    crate::clinics::context::end_of_day(day, tz)
}

/// A load started after its steriliser's spore test fell due (the end of the
/// clinic-local day `interval_days` after the last negative test's load) is not releasable until
/// a spore test in a load started at or after it reads negative. A steriliser with no negative
/// test yet is left to rule 2 (a test after installation), not judged here.
pub fn run_while_overdue(
    load_started: NaiveDateTime,
    negatives: &[NaiveDateTime],
    interval_days: Option<u32>,
    tz: chrono_tz::Tz,
) -> bool {
    let Some(days) = interval_days else {
        return false;
    };
    let Some(last) = negatives.iter().filter(|t| **t < load_started).max() else {
        return false;
    };
    let due_day = last.and_utc().with_timezone(&tz).date_naive() + Duration::days(i64::from(days));
    if load_started < crate::clinics::context::end_of_day(due_day, tz) {
        return false;
    }
    !negatives.iter().any(|t| *t >= load_started)
}

/// Crockford base 32 without the letters people misread (I, L, O, U).
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A short code to print on the pack and type back: `XXX-XXX` (30 bits).
pub fn new_pack_code() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(7);
    for i in 0..6 {
        if i == 3 {
            code.push('-');
        }
        code.push(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char);
    }
    code
}

/// Accepts a typed code with any case, spaces or dashes, and the usual misreadings.
pub fn normalise_pack_code(typed: &str) -> Option<String> {
    let chars: Vec<char> = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if chars.len() != 6 || !chars.iter().all(|c| CODE_ALPHABET.contains(&(*c as u8))) {
        return None;
    }
    Some(format!(
        "{}-{}",
        chars[..3].iter().collect::<String>(),
        chars[3..].iter().collect::<String>()
    ))
}

/// Initials for the pack label, e.g. "Sam Q. Tech" → "SQT".
pub fn initials(name: &str) -> String {
    name.split(|c: char| c.is_whitespace() || c == '.' || c == '-' || c == '@')
        .filter_map(|w| w.chars().next())
        .filter(|c| c.is_alphabetic())
        .take(4)
        .flat_map(char::to_uppercase)
        .collect()
}
