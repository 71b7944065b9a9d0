//! Queries on sterilisation records. Amendable records are rows keyed by (id, version) that are
//! never updated: reads pick the highest version, history reads them all.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{ControlResult, ReadTest, SporeResult};
use crate::db::schema::{
    air_removal_tests, cycles, packs, spore_test_results, spore_tests, steriliser_status_changes,
    sterilisers,
};
use crate::db::DbConn;
pub use crate::records::{current, current_by, standing, TimeCursor};

/// Filters shared by the sterilisation logs.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub steriliser_id: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    pub after: Option<TimeCursor>,
    pub limit: i64,
    /// The records as they stood at this moment (later records and amendments left out);
    /// now when absent.
    pub at: Option<NaiveDateTime>,
}

// ---------------------------------------------------------------------------------------------
// Sterilisers

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sterilisers)]
pub struct SteriliserRow {
    pub id: String,
    pub version: i32,
    pub clinic_id: String,
    pub make: String,
    pub model: String,
    pub serial_number: String,
    pub kind: String,
    pub chamber_litres: Option<f64>,
    pub location: Option<String>,
    pub installed_on: Option<chrono::NaiveDate>,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub amendment_reason: Option<String>,
}

impl SteriliserRow {
    /// How staff name the machine: "W&H Lisa 500 (LS-0042)".
    pub fn name(&self) -> String {
        format!("{} {} ({})", self.make, self.model, self.serial_number)
    }
}

pub fn insert_steriliser(conn: &mut DbConn, row: &SteriliserRow) -> QueryResult<()> {
    diesel::insert_into(sterilisers::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_steriliser(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
) -> QueryResult<Option<SteriliserRow>> {
    sterilisers::table
        .filter(sterilisers::clinic_id.eq(clinic_id))
        .filter(sterilisers::id.eq(id))
        .filter(current("sterilisers"))
        .select(SteriliserRow::as_select())
        .first(conn)
        .optional()
}

pub fn list_sterilisers(conn: &mut DbConn, clinic_id: &str) -> QueryResult<Vec<SteriliserRow>> {
    sterilisers::table
        .filter(sterilisers::clinic_id.eq(clinic_id))
        .filter(current("sterilisers"))
        .select(SteriliserRow::as_select())
        .order((
            sterilisers::make.asc(),
            sterilisers::model.asc(),
            sterilisers::id.asc(),
        ))
        .load(conn)
}

pub fn steriliser_history(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
) -> QueryResult<Vec<SteriliserRow>> {
    sterilisers::table
        .filter(sterilisers::clinic_id.eq(clinic_id))
        .filter(sterilisers::id.eq(id))
        .select(SteriliserRow::as_select())
        .order(sterilisers::version.asc())
        .load(conn)
}

/// Whether another steriliser of the clinic currently carries this serial number.
pub fn serial_taken(
    conn: &mut DbConn,
    clinic_id: &str,
    serial: &str,
    except_id: Option<&str>,
) -> QueryResult<bool> {
    let mut query = sterilisers::table
        .filter(sterilisers::clinic_id.eq(clinic_id))
        .filter(sterilisers::serial_number.eq(serial))
        .filter(current("sterilisers"))
        .into_boxed();
    if let Some(id) = except_id {
        query = query.filter(sterilisers::id.ne(id));
    }
    Ok(query.count().get_result::<i64>(conn)? > 0)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = steriliser_status_changes)]
pub struct StatusChangeRow {
    pub id: String,
    pub clinic_id: String,
    pub steriliser_id: String,
    pub in_service: bool,
    pub cause: String,
    pub reason: String,
    pub spore_test_id: Option<String>,
    pub changed_by: Option<String>,
    pub changed_at: NaiveDateTime,
}

pub fn insert_status_change(conn: &mut DbConn, row: &StatusChangeRow) -> QueryResult<()> {
    diesel::insert_into(steriliser_status_changes::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// The latest status change of a steriliser; none means in service since it was registered.
pub fn current_status(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
) -> QueryResult<Option<StatusChangeRow>> {
    steriliser_status_changes::table
        .filter(steriliser_status_changes::clinic_id.eq(clinic_id))
        .filter(steriliser_status_changes::steriliser_id.eq(steriliser_id))
        .select(StatusChangeRow::as_select())
        .order((
            steriliser_status_changes::changed_at.desc(),
            steriliser_status_changes::id.desc(),
        ))
        .first(conn)
        .optional()
}

// ---------------------------------------------------------------------------------------------
// Cycles and packs

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = cycles)]
pub struct CycleRow {
    pub id: String,
    pub version: i32,
    pub clinic_id: String,
    pub steriliser_id: String,
    pub cycle_number: i64,
    pub program_name: String,
    pub program_temperature_c: f64,
    pub program_hold_minutes: f64,
    pub started_at: NaiveDateTime,
    pub finished_at: NaiveDateTime,
    pub peak_temperature_c: f64,
    pub peak_pressure_kpa: f64,
    pub hold_minutes: f64,
    pub operator_id: String,
    pub load_indicator_type: i32,
    pub load_indicator_passed: bool,
    pub notes: Option<String>,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub amendment_reason: Option<String>,
}

pub fn insert_cycle(conn: &mut DbConn, row: &CycleRow) -> QueryResult<()> {
    diesel::insert_into(cycles::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_cycle(conn: &mut DbConn, clinic_id: &str, id: &str) -> QueryResult<Option<CycleRow>> {
    cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .filter(cycles::id.eq(id))
        .filter(current("cycles"))
        .select(CycleRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_cycles(
    conn: &mut DbConn,
    clinic_id: &str,
    ids: &[String],
) -> QueryResult<Vec<CycleRow>> {
    cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .filter(cycles::id.eq_any(ids))
        .filter(current("cycles"))
        .select(CycleRow::as_select())
        .load(conn)
}

/// The current typed cycles carrying these (steriliser, number) pairs.
pub fn cycles_by_number(
    conn: &mut DbConn,
    clinic_id: &str,
    pairs: &[(String, i64)],
) -> QueryResult<Vec<CycleRow>> {
    let mut out = Vec::new();
    let sterilisers: std::collections::BTreeSet<&str> =
        pairs.iter().map(|(s, _)| s.as_str()).collect();
    for steriliser in sterilisers {
        let numbers: Vec<i64> = pairs
            .iter()
            .filter(|(s, _)| s == steriliser)
            .map(|(_, n)| *n)
            .collect();
        for chunk in numbers.chunks(500) {
            out.extend(
                cycles::table
                    .filter(cycles::clinic_id.eq(clinic_id))
                    .filter(cycles::steriliser_id.eq(steriliser))
                    .filter(cycles::cycle_number.eq_any(chunk))
                    .filter(current("cycles"))
                    .select(CycleRow::as_select())
                    .load::<CycleRow>(conn)?,
            );
        }
    }
    Ok(out)
}

pub fn cycle_history(conn: &mut DbConn, clinic_id: &str, id: &str) -> QueryResult<Vec<CycleRow>> {
    cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .filter(cycles::id.eq(id))
        .select(CycleRow::as_select())
        .order(cycles::version.asc())
        .load(conn)
}

pub fn list_cycles(
    conn: &mut DbConn,
    clinic_id: &str,
    f: &LogFilter,
) -> QueryResult<Vec<CycleRow>> {
    let mut query = cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .select(CycleRow::as_select())
        .order((cycles::started_at.desc(), cycles::id.desc()))
        .limit(f.limit)
        .into_boxed();
    query = standing(query, "cycles", f.at);
    if let Some(s) = &f.steriliser_id {
        query = query.filter(cycles::steriliser_id.eq(s.clone()));
    }
    if let Some(from) = f.from {
        query = query.filter(cycles::started_at.ge(from));
    }
    if let Some(to) = f.to {
        query = query.filter(cycles::started_at.lt(to));
    }
    if let Some(c) = &f.after {
        query = query.filter(
            cycles::started_at
                .lt(c.at)
                .or(cycles::started_at.eq(c.at).and(cycles::id.lt(c.id.clone()))),
        );
    }
    query.load(conn)
}

/// Whether another cycle of this steriliser currently carries this number.
pub fn cycle_number_taken(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
    number: i64,
    except_id: Option<&str>,
) -> QueryResult<bool> {
    let mut query = cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .filter(cycles::steriliser_id.eq(steriliser_id))
        .filter(cycles::cycle_number.eq(number))
        .filter(current("cycles"))
        .into_boxed();
    if let Some(id) = except_id {
        query = query.filter(cycles::id.ne(id));
    }
    Ok(query.count().get_result::<i64>(conn)? > 0)
}

/// The steriliser's cycle numbers standing at `at` (now when absent) from `lowest` to
/// `highest`, with the one just below `lowest`: enough to find the number before each of them
/// in two statements, however many are listed.
pub fn cycle_numbers_around(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
    lowest: i64,
    highest: i64,
    at: Option<NaiveDateTime>,
) -> QueryResult<Vec<i64>> {
    let query = cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .filter(cycles::steriliser_id.eq(steriliser_id))
        .filter(cycles::cycle_number.between(lowest, highest))
        .select(cycles::cycle_number)
        .into_boxed();
    let mut numbers: Vec<i64> = standing(query, "cycles", at).load(conn)?;
    numbers.extend(previous_cycle_number(
        conn,
        clinic_id,
        steriliser_id,
        lowest,
        at,
    )?);
    numbers.sort_unstable();
    numbers.dedup();
    Ok(numbers)
}

/// The highest cycle number of the steriliser below `number`, to spot missing records. Walks
/// the number index downwards and stops at the first row standing at `at` (now when absent).
pub fn previous_cycle_number(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
    number: i64,
    at: Option<NaiveDateTime>,
) -> QueryResult<Option<i64>> {
    let query = cycles::table
        .filter(cycles::clinic_id.eq(clinic_id))
        .filter(cycles::steriliser_id.eq(steriliser_id))
        .filter(cycles::cycle_number.lt(number))
        .select(cycles::cycle_number)
        .order(cycles::cycle_number.desc())
        .into_boxed();
    standing(query, "cycles", at).first(conn).optional()
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = packs)]
pub struct PackRow {
    pub id: String,
    pub clinic_id: String,
    pub cycle_id: String,
    pub code: String,
    pub contents: String,
    pub indicator_type: Option<i32>,
    pub indicator_passed: Option<bool>,
    pub shelf_life_days: Option<i32>,
    pub created_at: NaiveDateTime,
}

/// Which of `codes` are already on a pack of the clinic.
pub fn codes_taken(
    conn: &mut DbConn,
    clinic_id: &str,
    codes: &[String],
) -> QueryResult<Vec<String>> {
    packs::table
        .filter(packs::clinic_id.eq(clinic_id))
        .filter(packs::code.eq_any(codes))
        .select(packs::code)
        .load(conn)
}

/// A load's packs in one statement. Each value is bound (a missing one as NULL, never as
/// DEFAULT), which lets SQLite take several rows in one INSERT too.
pub fn insert_packs(conn: &mut DbConn, rows: &[PackRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                packs::id.eq(&r.id),
                packs::clinic_id.eq(&r.clinic_id),
                packs::cycle_id.eq(&r.cycle_id),
                packs::code.eq(&r.code),
                packs::contents.eq(&r.contents),
                packs::indicator_type.eq(r.indicator_type),
                packs::indicator_passed.eq(r.indicator_passed),
                packs::shelf_life_days.eq(r.shelf_life_days),
                packs::created_at.eq(r.created_at),
            )
        })
        .collect();
    let insert = diesel::insert_into(packs::table).values(&values);
    match conn {
        DbConn::Sqlite(c) => insert.execute(c)?,
        DbConn::Postgres(c) => insert.execute(c)?,
    };
    Ok(())
}

pub fn packs_of_cycles(
    conn: &mut DbConn,
    clinic_id: &str,
    cycle_ids: &[String],
) -> QueryResult<Vec<PackRow>> {
    packs::table
        .filter(packs::clinic_id.eq(clinic_id))
        .filter(packs::cycle_id.eq_any(cycle_ids))
        .select(PackRow::as_select())
        .order((packs::cycle_id.asc(), packs::id.asc()))
        .load(conn)
}

/// Which of these loads carried packs: a spore test in any other load ran in an empty chamber.
pub fn loads_with_packs(
    conn: &mut DbConn,
    clinic_id: &str,
    cycle_ids: &[String],
) -> QueryResult<std::collections::HashSet<String>> {
    if cycle_ids.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    Ok(packs::table
        .filter(packs::clinic_id.eq(clinic_id))
        .filter(packs::cycle_id.eq_any(cycle_ids))
        .select(packs::cycle_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

pub fn find_pack(conn: &mut DbConn, clinic_id: &str, code: &str) -> QueryResult<Option<PackRow>> {
    packs::table
        .filter(packs::clinic_id.eq(clinic_id))
        .filter(packs::code.eq(code))
        .select(PackRow::as_select())
        .first(conn)
        .optional()
}

// ---------------------------------------------------------------------------------------------
// Spore tests

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = spore_tests)]
pub struct SporeTestRow {
    pub id: String,
    pub version: i32,
    pub clinic_id: String,
    pub steriliser_id: String,
    pub cycle_id: String,
    pub bi_product: String,
    pub bi_lot: String,
    pub placed_at: NaiveDateTime,
    pub incubation: String,
    pub incubation_hours: Option<f64>,
    pub posted_on: Option<chrono::NaiveDate>,
    pub lab_name: Option<String>,
    pub lab_deadline: Option<chrono::NaiveDate>,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub amendment_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = spore_test_results)]
pub struct SporeResultRow {
    pub spore_test_id: String,
    /// 1 for the reading as first recorded; each laboratory correction adds the next.
    pub version: i32,
    pub clinic_id: String,
    pub result: String,
    pub control_result: String,
    pub read_at: NaiveDateTime,
    pub lab_reference: Option<String>,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    /// Why the laboratory corrected the reading (versions after the first).
    pub correction_reason: Option<String>,
}

impl SporeResultRow {
    /// Fail-safe: a result that does not read as negative counts as growth.
    pub fn result(&self) -> SporeResult {
        match SporeResult::from_db(&self.result) {
            Ok(SporeResult::Negative) => SporeResult::Negative,
            _ => SporeResult::Positive,
        }
    }

    /// A test whose control vial did not grow proves nothing.
    pub fn valid(&self) -> bool {
        matches!(
            ControlResult::from_db(&self.control_result),
            Ok(ControlResult::Growth)
        )
    }
}

pub fn insert_spore_test(conn: &mut DbConn, row: &SporeTestRow) -> QueryResult<()> {
    diesel::insert_into(spore_tests::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_spore_test(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
) -> QueryResult<Option<SporeTestRow>> {
    spore_tests::table
        .filter(spore_tests::clinic_id.eq(clinic_id))
        .filter(spore_tests::id.eq(id))
        .filter(current("spore_tests"))
        .select(SporeTestRow::as_select())
        .first(conn)
        .optional()
}

pub fn spore_test_history(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
) -> QueryResult<Vec<SporeTestRow>> {
    spore_tests::table
        .filter(spore_tests::clinic_id.eq(clinic_id))
        .filter(spore_tests::id.eq(id))
        .select(SporeTestRow::as_select())
        .order(spore_tests::version.asc())
        .load(conn)
}

pub fn list_spore_tests(
    conn: &mut DbConn,
    clinic_id: &str,
    f: &LogFilter,
) -> QueryResult<Vec<SporeTestRow>> {
    let mut query = spore_tests::table
        .filter(spore_tests::clinic_id.eq(clinic_id))
        .select(SporeTestRow::as_select())
        .order((spore_tests::placed_at.desc(), spore_tests::id.desc()))
        .limit(f.limit)
        .into_boxed();
    query = standing(query, "spore_tests", f.at);
    if let Some(s) = &f.steriliser_id {
        query = query.filter(spore_tests::steriliser_id.eq(s.clone()));
    }
    if let Some(from) = f.from {
        query = query.filter(spore_tests::placed_at.ge(from));
    }
    if let Some(to) = f.to {
        query = query.filter(spore_tests::placed_at.lt(to));
    }
    if let Some(c) = &f.after {
        query = query.filter(
            spore_tests::placed_at.lt(c.at).or(spore_tests::placed_at
                .eq(c.at)
                .and(spore_tests::id.lt(c.id.clone()))),
        );
    }
    query.load(conn)
}

/// These spore tests with their results, as read now or, given a moment, as read by then.
pub fn attach_results(
    conn: &mut DbConn,
    clinic_id: &str,
    tests: Vec<SporeTestRow>,
    at: Option<NaiveDateTime>,
) -> QueryResult<Vec<(SporeTestRow, Option<SporeResultRow>)>> {
    let ids: Vec<String> = tests.iter().map(|t| t.id.clone()).collect();
    let query = spore_test_results::table
        .filter(spore_test_results::clinic_id.eq(clinic_id))
        .filter(spore_test_results::spore_test_id.eq_any(&ids))
        .select(SporeResultRow::as_select())
        .into_boxed();
    let results: Vec<SporeResultRow> = match at {
        None => query.filter(current_by("spore_test_results", "spore_test_id")),
        Some(at) => query.filter(crate::records::as_of_by(
            "spore_test_results",
            "spore_test_id",
            at,
        )),
    }
    .load(conn)?;
    Ok(tests
        .into_iter()
        .map(|t| {
            let r = results.iter().find(|r| r.spore_test_id == t.id).cloned();
            (t, r)
        })
        .collect())
}

pub fn insert_spore_result(conn: &mut DbConn, row: &SporeResultRow) -> QueryResult<()> {
    diesel::insert_into(spore_test_results::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_spore_result(
    conn: &mut DbConn,
    clinic_id: &str,
    spore_test_id: &str,
) -> QueryResult<Option<SporeResultRow>> {
    spore_test_results::table
        .filter(spore_test_results::clinic_id.eq(clinic_id))
        .filter(spore_test_results::spore_test_id.eq(spore_test_id))
        .filter(current_by("spore_test_results", "spore_test_id"))
        .select(SporeResultRow::as_select())
        .first(conn)
        .optional()
}

/// Every version of a spore test's reading, the first first.
pub fn spore_result_history(
    conn: &mut DbConn,
    clinic_id: &str,
    spore_test_id: &str,
) -> QueryResult<Vec<SporeResultRow>> {
    spore_test_results::table
        .filter(spore_test_results::clinic_id.eq(clinic_id))
        .filter(spore_test_results::spore_test_id.eq(spore_test_id))
        .select(SporeResultRow::as_select())
        .order(spore_test_results::version.asc())
        .load(conn)
}

/// Every read spore test of a steriliser, placed by the start of the load it rode in: what the
/// look-back windows are computed from.
pub fn read_tests_of_steriliser(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
) -> QueryResult<Vec<ReadTest>> {
    let rows: Vec<(String, String, String, NaiveDateTime)> = spore_tests::table
        .inner_join(
            spore_test_results::table.on(spore_test_results::spore_test_id.eq(spore_tests::id)),
        )
        .inner_join(cycles::table.on(cycles::id.eq(spore_tests::cycle_id)))
        .filter(spore_tests::clinic_id.eq(clinic_id))
        .filter(spore_tests::steriliser_id.eq(steriliser_id))
        .filter(current("spore_tests"))
        .filter(current_by("spore_test_results", "spore_test_id"))
        .filter(current("cycles"))
        .select((
            cycles::id,
            spore_test_results::result,
            spore_test_results::control_result,
            cycles::started_at,
        ))
        .load(conn)?;
    let loaded = loads_with_packs(
        conn,
        clinic_id,
        &rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
    )?;
    Ok(rows
        .into_iter()
        .map(|(cycle, result, control, started)| {
            ReadTest::from_db(&result, &control, started, !loaded.contains(&cycle))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Air-removal tests

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = air_removal_tests)]
pub struct AirRemovalRow {
    pub id: String,
    pub version: i32,
    pub clinic_id: String,
    pub steriliser_id: String,
    pub performed_at: NaiveDateTime,
    pub test_type: String,
    pub passed: bool,
    pub notes: Option<String>,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub amendment_reason: Option<String>,
}

pub fn insert_air_removal(conn: &mut DbConn, row: &AirRemovalRow) -> QueryResult<()> {
    diesel::insert_into(air_removal_tests::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_air_removal(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
) -> QueryResult<Option<AirRemovalRow>> {
    air_removal_tests::table
        .filter(air_removal_tests::clinic_id.eq(clinic_id))
        .filter(air_removal_tests::id.eq(id))
        .filter(current("air_removal_tests"))
        .select(AirRemovalRow::as_select())
        .first(conn)
        .optional()
}

pub fn air_removal_history(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
) -> QueryResult<Vec<AirRemovalRow>> {
    air_removal_tests::table
        .filter(air_removal_tests::clinic_id.eq(clinic_id))
        .filter(air_removal_tests::id.eq(id))
        .select(AirRemovalRow::as_select())
        .order(air_removal_tests::version.asc())
        .load(conn)
}

pub fn list_air_removal(
    conn: &mut DbConn,
    clinic_id: &str,
    f: &LogFilter,
) -> QueryResult<Vec<AirRemovalRow>> {
    let mut query = air_removal_tests::table
        .filter(air_removal_tests::clinic_id.eq(clinic_id))
        .select(AirRemovalRow::as_select())
        .order((
            air_removal_tests::performed_at.desc(),
            air_removal_tests::id.desc(),
        ))
        .limit(f.limit)
        .into_boxed();
    query = standing(query, "air_removal_tests", f.at);
    if let Some(s) = &f.steriliser_id {
        query = query.filter(air_removal_tests::steriliser_id.eq(s.clone()));
    }
    if let Some(from) = f.from {
        query = query.filter(air_removal_tests::performed_at.ge(from));
    }
    if let Some(to) = f.to {
        query = query.filter(air_removal_tests::performed_at.lt(to));
    }
    if let Some(c) = &f.after {
        query = query.filter(
            air_removal_tests::performed_at
                .lt(c.at)
                .or(air_removal_tests::performed_at
                    .eq(c.at)
                    .and(air_removal_tests::id.lt(c.id.clone()))),
        );
    }
    query.load(conn)
}

/// A session's pack that was not set aside before the start (one set aside never left the shelf).
#[diesel::dsl::auto_type]
fn not_set_aside() -> _ {
    diesel::dsl::not(diesel::dsl::exists(
        crate::db::schema::session_pack_removals::table
            .filter(
                crate::db::schema::session_pack_removals::session_id
                    .eq(crate::db::schema::session_packs::session_id),
            )
            .filter(
                crate::db::schema::session_pack_removals::pack_code
                    .eq(crate::db::schema::session_packs::pack_code),
            ),
    ))
}

/// Which of these pack codes were opened in a client session (a pack is single-use, so an
/// opened pack reads `used`). Sessions record the opening; the pack's state is derived here.
/// Of `codes`, the packs scanned into a session and not set aside from it before its start.
pub fn opened_pack_codes(
    conn: &mut DbConn,
    clinic_id: &str,
    codes: &[String],
) -> QueryResult<Vec<String>> {
    use crate::db::schema::session_packs;
    session_packs::table
        .filter(session_packs::clinic_id.eq(clinic_id))
        .filter(session_packs::pack_code.eq_any(codes))
        .filter(not_set_aside())
        .select(session_packs::pack_code)
        .load(conn)
}

/// Of `codes`, the packs opened in a session that had started by `at`: a pack scanned into a
/// session whose start was refused is still on the shelf.
pub fn used_pack_codes(
    conn: &mut DbConn,
    clinic_id: &str,
    codes: &[String],
    at: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    use crate::db::schema::{session_packs, session_starts};
    session_packs::table
        .inner_join(
            session_starts::table.on(session_starts::session_id.eq(session_packs::session_id)),
        )
        .filter(session_packs::clinic_id.eq(clinic_id))
        .filter(session_packs::pack_code.eq_any(codes))
        .filter(session_starts::started_at.le(at))
        .filter(not_set_aside())
        .select(session_packs::pack_code)
        .load(conn)
}

/// The packs opened in a session that started between `from` and `at`, by the sessions' start
/// times (an index holds them with the session), for the packs of recent loads: reading a long
/// list of codes pack by pack cost more than the view's every other query together.
pub fn packs_opened_between(
    conn: &mut DbConn,
    clinic_id: &str,
    from: NaiveDateTime,
    at: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    use crate::db::schema::{session_packs, session_starts};
    session_starts::table
        .inner_join(
            session_packs::table.on(session_packs::session_id.eq(session_starts::session_id)),
        )
        .filter(session_starts::clinic_id.eq(clinic_id))
        .filter(session_starts::started_at.ge(from))
        .filter(session_starts::started_at.le(at))
        .filter(not_set_aside())
        .select(session_packs::pack_code)
        .load(conn)
}

crate::records::versioned_rows!(SteriliserRow, CycleRow, SporeTestRow, AirRemovalRow);
