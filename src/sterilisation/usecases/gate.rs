//! Whether a pack may be used, as the records stood at a moment. This is the one place that
//! gathers what a pack's state depends on; the pack views, the session start and the compliance
//! view all judge packs through it, so none of them can release what another holds.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{
    air_removal_tests, cycles, spore_test_results, spore_tests, steriliser_status_changes,
    sterilisers,
};
use crate::db::DbConn;
use crate::error::AppResult;
use crate::jurisdiction::profiles::Profile;
use crate::records::{as_of, as_of_by};
use crate::sterilisation::model::*;
use crate::sterilisation::store::{CycleRow, PackRow, StatusChangeRow, SteriliserRow};

/// A steriliser as it stood at a moment: its versions and status changes so far, and what its
/// record says about the loads it runs.
#[derive(Debug, Clone)]
pub struct SteriliserAt {
    pub versions: Vec<SteriliserRow>,
    pub statuses: Vec<StatusChangeRow>,
    pub record: SteriliserRecord,
}

impl SteriliserAt {
    pub fn current(&self) -> Option<&SteriliserRow> {
        self.versions.last()
    }

    pub fn status(&self) -> Option<&StatusChangeRow> {
        self.statuses.last()
    }
}

/// The rules of the clinic's profile a load is judged by.
pub fn load_rules(profile: &Profile, tz: chrono_tz::Tz) -> LoadRules {
    let s = &profile.sterilisation;
    LoadRules {
        spore_test_interval_days: s.spore_test_interval_days.value,
        spore_test_after_events: s.spore_test_after_events.value == Some(true),
        daily_air_removal_test: s.daily_air_removal_test.value == Some(true),
        load_indicator_min_type: s.load_indicator_min_type.value,
        spore_test_operating_hours: s.spore_test_operating_hours.value,
        requalification_spore_tests: requalification_tests(profile),
        daily_automatic_control_test: s.daily_automatic_control_test.value == Some(true),
        weekly_air_leakage_test: s.weekly_air_leakage_test.value == Some(true),
        tz,
    }
}

/// Consecutive passing tests that requalify a steriliser after a relocation or repair (one
/// where the profile asks for no more).
fn requalification_tests(profile: &Profile) -> u32 {
    profile
        .sterilisation
        .requalification_spore_tests
        .value
        .unwrap_or(1)
        .max(1)
}

/// How far before the first load to be judged a steriliser's spore tests and loads are read at
/// first. A passing test in that quarter answers every rule for later loads (the interval, the
/// hours of operation, a positive test's look-back); only a steriliser without one, or with a
/// relocation or repair not yet requalified within it, has its older record read as well.
/// Without the bound every load written read the steriliser's whole history to judge itself,
/// and a clinic's writes slowed as its years of records grew.
const RECORD_REACH_DAYS: i64 = 92;

/// Every steriliser of the clinic as it stood at `at`, with the record a judgement of any load
/// started at or after `judged_from` needs (older tests and routine passes are left out). Where
/// the profile wants spore tests read by a laboratory, an in-house negative reading is not a
/// pass (an in-house positive still fails).
pub fn sterilisers_at(
    conn: &mut DbConn,
    clinic_id: &str,
    profile: &Profile,
    at: NaiveDateTime,
    judged_from: NaiveDateTime,
) -> AppResult<BTreeMap<String, SteriliserAt>> {
    let versions: Vec<SteriliserRow> = sterilisers::table
        .filter(sterilisers::clinic_id.eq(clinic_id))
        .filter(sterilisers::recorded_at.le(at))
        .select(SteriliserRow::as_select())
        .order((sterilisers::id.asc(), sterilisers::version.asc()))
        .load(conn)?;
    let statuses: Vec<StatusChangeRow> = steriliser_status_changes::table
        .filter(steriliser_status_changes::clinic_id.eq(clinic_id))
        .filter(steriliser_status_changes::changed_at.le(at))
        .select(StatusChangeRow::as_select())
        .order((
            steriliser_status_changes::changed_at.asc(),
            steriliser_status_changes::id.asc(),
        ))
        .load(conn)?;
    let mut out: BTreeMap<String, SteriliserAt> = BTreeMap::new();
    for v in versions {
        out.entry(v.id.clone())
            .or_insert_with(|| SteriliserAt {
                versions: Vec::new(),
                statuses: Vec::new(),
                record: SteriliserRecord {
                    complete_from: judged_from,
                    ..SteriliserRecord::default()
                },
            })
            .versions
            .push(v);
    }
    for s in statuses {
        if let Some(at) = out.get_mut(&s.steriliser_id) {
            at.statuses.push(s);
        }
    }
    for s in out.values_mut() {
        s.record.pre_vacuum = match s.current() {
            Some(c) => SteriliserKind::from_db(&c.kind)? == SteriliserKind::PreVacuum,
            None => false,
        };
        let versions: Vec<&SteriliserRow> = s.versions.iter().collect();
        let statuses: Vec<&StatusChangeRow> = s.statuses.iter().collect();
        s.record.last_event = last_test_event(&versions, &statuses);
    }

    let reach = days_before(judged_from, RECORD_REACH_DAYS);
    let history = History {
        clinic_id,
        profile,
        at,
    };
    history.add(conn, &mut out, reach, None)?;
    let needed = requalification_tests(profile);
    let short: Vec<String> = out
        .iter()
        .filter(|(_, s)| {
            let passed_before = s.record.negatives().iter().any(|n| *n < judged_from);
            let requalified = s.record.last_event.as_ref().is_none_or(|e| {
                reach.is_none_or(|r| e.at >= r) || requalified_after(&s.record.reads, e.at, needed)
            });
            !(passed_before && requalified)
        })
        .map(|(id, _)| id.clone())
        .collect();
    if let (Some(reach), false) = (reach, short.is_empty()) {
        history.add(conn, &mut out, None, Some((reach, &short)))?;
    }

    // Routine tests count for the load's own day or week: a local day is at most 25 hours, a
    // week of local days at most eight days.
    let mut routine = air_removal_tests::table
        .filter(air_removal_tests::clinic_id.eq(clinic_id))
        .filter(as_of("air_removal_tests", at))
        .filter(air_removal_tests::passed.eq(true))
        .filter(air_removal_tests::performed_at.le(at))
        .select((
            air_removal_tests::steriliser_id,
            air_removal_tests::performed_at,
            air_removal_tests::test_type,
        ))
        .into_boxed();
    if let Some(from) = days_before(judged_from, 8) {
        routine = routine.filter(air_removal_tests::performed_at.ge(from));
    }
    let routine: Vec<(String, NaiveDateTime, String)> = routine.load(conn)?;
    for (id, performed, kind) in routine {
        let Some(at) = out.get_mut(&id) else {
            continue;
        };
        match AirRemovalTestType::from_db(&kind)? {
            AirRemovalTestType::AutomaticControl => {
                at.record.automatic_control_passes.push(performed)
            }
            AirRemovalTestType::AirLeakage => at.record.air_leakage_passes.push(performed),
            k if k.removes_air() => at.record.air_removal_passes.push(performed),
            _ => {}
        }
    }
    Ok(out)
}

/// `days` before `t`, or none where that falls before the first year of the calendar (a
/// period asked from the beginning of time): PostgreSQL cannot hold such a moment.
fn days_before(t: NaiveDateTime, days: i64) -> Option<NaiveDateTime> {
    t.checked_sub_signed(Duration::days(days))
        .filter(|b| chrono::Datelike::year(b) >= 1)
}

/// Reads a span of the sterilisers' spore tests and loads into their records.
struct History<'a> {
    clinic_id: &'a str,
    profile: &'a Profile,
    at: NaiveDateTime,
}

impl History<'_> {
    /// The tests read by `at` on loads started from `from`, and before `until` for the listed
    /// sterilisers only where given; with the loads of the same span where the profile counts
    /// hours of operation.
    fn add(
        &self,
        conn: &mut DbConn,
        out: &mut BTreeMap<String, SteriliserAt>,
        from: Option<NaiveDateTime>,
        until: Option<(NaiveDateTime, &[String])>,
    ) -> AppResult<()> {
        let (clinic_id, at) = (self.clinic_id, self.at);
        let lab_only = self
            .profile
            .sterilisation
            .spore_test_read_by_laboratory
            .value
            == Some(true);
        // Every spore test read by `at`, its reading as it stood then, with the load it rode in.
        let mut query = spore_tests::table
            .inner_join(
                spore_test_results::table.on(spore_test_results::spore_test_id.eq(spore_tests::id)),
            )
            .inner_join(cycles::table.on(cycles::id.eq(spore_tests::cycle_id)))
            .filter(spore_tests::clinic_id.eq(clinic_id))
            .filter(as_of("spore_tests", at))
            .filter(as_of("cycles", at))
            .filter(as_of_by("spore_test_results", "spore_test_id", at))
            .select((
                spore_tests::id,
                spore_tests::steriliser_id,
                spore_test_results::result,
                spore_test_results::control_result,
                cycles::started_at,
                cycles::id,
                spore_tests::incubation,
            ))
            .into_boxed();
        if let Some(from) = from {
            query = query.filter(cycles::started_at.ge(from));
        }
        if let Some((until, ids)) = until {
            query = query
                .filter(cycles::started_at.lt(until))
                .filter(spore_tests::steriliser_id.eq_any(ids));
        }
        let reads: Vec<(
            String,
            String,
            String,
            String,
            NaiveDateTime,
            String,
            String,
        )> = query.load(conn)?;
        // Requalification counts only tests in an empty chamber: the test loads that carried
        // packs.
        let loaded = crate::sterilisation::store::loads_with_packs(
            conn,
            clinic_id,
            &reads.iter().map(|r| r.5.clone()).collect::<Vec<_>>(),
        )?;
        // Tests once read as a valid positive, and when: a laboratory's correction to negative
        // does not lift the quarantine on its own; it holds until an owner returns the
        // steriliser to service.
        let tests: Vec<&str> = reads.iter().map(|r| r.0.as_str()).collect();
        let mut once_positive: HashMap<String, NaiveDateTime> = HashMap::new();
        if !tests.is_empty() {
            for (test, recorded) in spore_test_results::table
                .filter(spore_test_results::clinic_id.eq(clinic_id))
                .filter(spore_test_results::spore_test_id.eq_any(&tests))
                .filter(spore_test_results::recorded_at.le(at))
                .filter(spore_test_results::result.eq(SporeResult::Positive.as_db()))
                .filter(spore_test_results::control_result.eq(ControlResult::Growth.as_db()))
                .select((
                    spore_test_results::spore_test_id,
                    spore_test_results::recorded_at,
                ))
                .load::<(String, NaiveDateTime)>(conn)?
            {
                let first = once_positive.entry(test).or_insert(recorded);
                *first = (*first).min(recorded);
            }
        }
        for (test, id, result, control, started, cycle, incubation) in reads {
            let Some(steriliser) = out.get_mut(&id) else {
                continue;
            };
            let mut read = ReadTest::from_db(&result, &control, started, !loaded.contains(&cycle));
            let held = once_positive.get(&test).is_some_and(|positive| {
                !steriliser
                    .statuses
                    .iter()
                    .any(|s| s.in_service && s.changed_at >= *positive)
            });
            if read.result == SporeResult::Negative && held {
                read = ReadTest::from_db(
                    SporeResult::Positive.as_db(),
                    ControlResult::Growth.as_db(),
                    started,
                    read.empty_chamber,
                );
            }
            if lab_only && incubation != Incubation::MAIL_IN && read.result == SporeResult::Negative
            {
                continue;
            }
            steriliser.record.reads.push(read);
        }
        // Every load's hours matter only where the profile counts hours of operation:
        // elsewhere this would read the clinic's cycle log on every pack judgement for nothing.
        if self
            .profile
            .sterilisation
            .spore_test_operating_hours
            .value
            .is_none()
        {
            return Ok(());
        }
        let mut query = cycles::table
            .filter(cycles::clinic_id.eq(clinic_id))
            .filter(as_of("cycles", at))
            .filter(cycles::started_at.le(at))
            .select((
                cycles::steriliser_id,
                cycles::started_at,
                cycles::finished_at,
            ))
            .into_boxed();
        if let Some(from) = from {
            query = query.filter(cycles::started_at.ge(from));
        }
        if let Some((until, ids)) = until {
            query = query
                .filter(cycles::started_at.lt(until))
                .filter(cycles::steriliser_id.eq_any(ids));
        }
        for (id, started, finished) in query.load::<(String, NaiveDateTime, NaiveDateTime)>(conn)? {
            if let Some(at) = out.get_mut(&id) {
                at.record.loads.push((started, finished));
            }
        }
        Ok(())
    }
}

/// The latest relocation or return from repair, each of which needs a passing spore test before
/// loads are released again. A return from a positive test's quarantine is not one: its passing
/// retest came first.
pub fn last_test_event(
    versions: &[&SteriliserRow],
    statuses: &[&StatusChangeRow],
) -> Option<TestEvent> {
    let moved = versions
        .windows(2)
        .filter(|w| w[0].location != w[1].location)
        .map(|w| TestEvent {
            at: w[1].recorded_at,
            what: format!(
                "relocated to {}",
                w[1].location.as_deref().unwrap_or("an unrecorded place")
            ),
        })
        .next_back();
    let repaired = statuses
        .windows(2)
        .filter(|w| !w[0].in_service && w[0].cause != "spore_test_positive" && w[1].in_service)
        .map(|w| TestEvent {
            at: w[1].changed_at,
            what: format!("returned to service after \"{}\"", w[0].reason),
        })
        .next_back();
    [moved, repaired].into_iter().flatten().max_by_key(|e| e.at)
}

/// A spore test of a load: its id, the load's id, and its result and control result if they
/// had been read by the moment judged.
type LoadTest = (String, String, Option<(String, String)>);

/// A load judged as the records stood at a moment: its biological result, its outcome, and the
/// facts each of its packs is judged on.
#[derive(Debug, Clone)]
pub struct JudgedLoad {
    /// The load's own spore tests, as the records stood.
    pub spore_test_ids: Vec<String>,
    pub biological: Biological,
    pub outcome: Outcome,
    pub packs: HashMap<String, PackFacts>,
}

/// Judges `loads` and their `packs` as the records stood at `at`. `used` holds the codes of the
/// packs opened in a session that had started by then.
#[allow(clippy::too_many_arguments)]
pub fn judge_loads(
    conn: &mut DbConn,
    clinic_id: &str,
    rules: &LoadRules,
    sterilisers: &BTreeMap<String, SteriliserAt>,
    loads: &[CycleRow],
    packs: &[PackRow],
    used: &HashSet<String>,
    at: NaiveDateTime,
) -> AppResult<HashMap<String, JudgedLoad>> {
    let tests = load_tests(conn, clinic_id, loads, at)?;
    let mut packs_of: HashMap<&str, Vec<&PackRow>> = HashMap::new();
    for p in packs {
        packs_of.entry(p.cycle_id.as_str()).or_default().push(p);
    }
    let empty = SteriliserRecord::default();
    let mut out = HashMap::new();
    for load in loads {
        let own_tests = tests.get(load.id.as_str()).map_or(&[][..], Vec::as_slice);
        let own = packs_of
            .get(load.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        let (biological, outcome) = load_outcome(load, own_tests, own);
        let record = sterilisers
            .get(&load.steriliser_id)
            .map_or(&empty, |s| &s.record);
        let lookback = lookback_windows(&record.reads);
        let checks = load_checks(load.started_at, load.load_indicator_type, record, rules);
        let packs = own
            .iter()
            .map(|p| {
                let facts = PackFacts {
                    used: used.contains(&p.code),
                    cycle_outcome: outcome,
                    cycle_started_at: load.started_at,
                    biological,
                    lookback: lookback.clone(),
                    expires_at: p
                        .shelf_life_days
                        .and_then(|d| u32::try_from(d).ok())
                        .map(|d| pack_expiry(load.finished_at, d, rules.tz)),
                    checks: checks.clone(),
                };
                (p.code.clone(), facts)
            })
            .collect();
        out.insert(
            load.id.clone(),
            JudgedLoad {
                spore_test_ids: own_tests.iter().map(|(id, _, _)| id.clone()).collect(),
                biological,
                outcome,
                packs,
            },
        );
    }
    Ok(out)
}

/// Each load's own spore tests, read or not by `at`, by load id.
fn load_tests(
    conn: &mut DbConn,
    clinic_id: &str,
    loads: &[CycleRow],
    at: NaiveDateTime,
) -> AppResult<HashMap<String, Vec<LoadTest>>> {
    let ids: Vec<&str> = loads.iter().map(|c| c.id.as_str()).collect();
    let tests: Vec<LoadTest> = spore_tests::table
        .left_join(
            spore_test_results::table.on(spore_test_results::spore_test_id
                .eq(spore_tests::id)
                .and(as_of_by("spore_test_results", "spore_test_id", at))),
        )
        .filter(spore_tests::clinic_id.eq(clinic_id))
        .filter(spore_tests::cycle_id.eq_any(&ids))
        .filter(as_of("spore_tests", at))
        .select((
            spore_tests::id,
            spore_tests::cycle_id,
            (
                spore_test_results::result,
                spore_test_results::control_result,
            )
                .nullable(),
        ))
        .load(conn)?;
    let mut by_load: HashMap<String, Vec<LoadTest>> = HashMap::new();
    for t in tests {
        by_load.entry(t.1.clone()).or_default().push(t);
    }
    Ok(by_load)
}

/// A load's biological result and outcome from its own tests and packs: the one reading of
/// whether a load passed, for the gate and for anything that only counts passes and failures.
fn load_outcome(
    load: &CycleRow,
    own_tests: &[LoadTest],
    own_packs: &[&PackRow],
) -> (Biological, Outcome) {
    // With several tests in one load, a positive outweighs an invalid, which outweighs a
    // pending, which outweighs a negative.
    let biological = own_tests
        .iter()
        .map(|(_, _, read)| {
            let read = read.as_ref().map(|(r, c)| {
                let t = ReadTest::from_db(r, c, load.started_at, false);
                (t.result, t.valid)
            });
            crate::sterilisation::model::biological(true, read)
        })
        .max_by_key(|b| match b {
            Biological::Positive => 4,
            Biological::Invalid => 3,
            Biological::Pending => 2,
            Biological::Negative => 1,
            Biological::None => 0,
        })
        .unwrap_or(Biological::None);
    let mechanical = load.peak_temperature_c >= load.program_temperature_c
        && load.hold_minutes >= load.program_hold_minutes;
    let outcome = cycle_outcome(
        mechanical,
        load.load_indicator_passed,
        own_packs.iter().map(|p| p.indicator_passed != Some(false)),
        biological,
    );
    (biological, outcome)
}

/// Each load started in `[from, to)`: its steriliser, when, and whether it passed. Only what
/// counting passes and failures needs (the dashboard's chart), without judging its packs.
pub fn load_outcomes(
    conn: &mut DbConn,
    clinic_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<Vec<(String, NaiveDateTime, Outcome)>> {
    let loads = crate::sterilisation::store::list_cycles(
        conn,
        clinic_id,
        &crate::sterilisation::store::LogFilter {
            from: Some(from),
            to: Some(to),
            limit: i64::MAX,
            ..Default::default()
        },
    )?;
    let ids: Vec<String> = loads.iter().map(|c| c.id.clone()).collect();
    let packs = crate::sterilisation::store::packs_of_cycles(conn, clinic_id, &ids)?;
    let mut packs_of: HashMap<&str, Vec<&PackRow>> = HashMap::new();
    for p in &packs {
        packs_of.entry(p.cycle_id.as_str()).or_default().push(p);
    }
    let tests = load_tests(conn, clinic_id, &loads, crate::db::now())?;
    Ok(loads
        .iter()
        .map(|load| {
            let own_tests = tests.get(load.id.as_str()).map_or(&[][..], Vec::as_slice);
            let own = packs_of
                .get(load.id.as_str())
                .map_or(&[][..], Vec::as_slice);
            let (_, outcome) = load_outcome(load, own_tests, own);
            (load.steriliser_id.clone(), load.started_at, outcome)
        })
        .collect())
}
