//! Queries for what was imported from the sterilisers themselves: uploads, the device files kept
//! as evidence, the cycles read from them, and each steriliser's CSV mapping.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{csv_mappings, cycle_imports, device_files, imported_cycles};
use crate::db::DbConn;
use crate::records::TimeCursor;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = cycle_imports)]
pub struct ImportRow {
    pub id: String,
    pub clinic_id: String,
    pub steriliser_id: String,
    pub files: i32,
    pub cycles: i32,
    pub already_imported: i32,
    pub unreadable: String,
    pub imported_by: Option<String>,
    pub imported_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = device_files)]
pub struct DeviceFileRow {
    pub id: String,
    pub clinic_id: String,
    pub steriliser_id: String,
    pub import_id: String,
    pub sha256: String,
    pub name: String,
    pub size_bytes: i64,
    pub format: Option<String>,
    pub encoding: Option<String>,
    pub content: Vec<u8>,
    pub uploaded_at: NaiveDateTime,
}

/// A device file without its content, for lists.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = device_files)]
pub struct DeviceFileEntry {
    pub id: String,
    pub steriliser_id: String,
    pub sha256: String,
    pub name: String,
    pub size_bytes: i64,
    pub format: Option<String>,
    pub uploaded_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = imported_cycles)]
pub struct ImportedCycleRow {
    pub id: String,
    pub clinic_id: String,
    pub steriliser_id: String,
    pub file_id: String,
    pub import_id: String,
    pub format: String,
    pub cycle_number: i64,
    pub kind: String,
    pub program_name: String,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub set_temperature_c: Option<f64>,
    pub set_hold_seconds: Option<f64>,
    pub peak_temperature_c: Option<f64>,
    pub peak_pressure_kpa: Option<f64>,
    pub hold_seconds: Option<i64>,
    pub device_result: String,
    pub outcome: String,
    pub serial: Option<String>,
    pub fingerprint: Option<String>,
    pub vendor_check: Option<String>,
    pub detail: String,
    pub warnings: String,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
}

/// What the sequence checks read of a steriliser's imported cycles.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = imported_cycles)]
pub struct SequenceEntry {
    pub id: String,
    pub steriliser_id: String,
    pub cycle_number: i64,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub fingerprint: Option<String>,
    pub vendor_check: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = csv_mappings)]
pub struct CsvMappingRow {
    pub steriliser_id: String,
    pub version: i32,
    pub clinic_id: String,
    pub mapping: String,
    pub recorded_by: Option<String>,
    pub recorded_at: NaiveDateTime,
}

pub fn insert_import(conn: &mut DbConn, row: &ImportRow) -> QueryResult<()> {
    diesel::insert_into(cycle_imports::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn insert_file(conn: &mut DbConn, row: &DeviceFileRow) -> QueryResult<()> {
    diesel::insert_into(device_files::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn insert_cycles(conn: &mut DbConn, rows: &[ImportedCycleRow]) -> QueryResult<()> {
    // One statement per row: SQLite caps the bound parameters of a statement, and an upload of a
    // whole card holds thousands of cycles.
    for r in rows {
        diesel::insert_into(imported_cycles::table)
            .values(r)
            .execute(conn)?;
    }
    Ok(())
}

/// The files of this clinic already kept, by hash, among `hashes`: (hash, file id, steriliser).
pub fn files_with_hashes(
    conn: &mut DbConn,
    clinic_id: &str,
    hashes: &[String],
) -> QueryResult<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for chunk in hashes.chunks(500) {
        out.extend(
            device_files::table
                .filter(device_files::clinic_id.eq(clinic_id))
                .filter(device_files::sha256.eq_any(chunk))
                .select((
                    device_files::sha256,
                    device_files::id,
                    device_files::steriliser_id,
                ))
                .load::<(String, String, String)>(conn)?,
        );
    }
    Ok(out)
}

pub fn sequence(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_ids: &[String],
) -> QueryResult<Vec<SequenceEntry>> {
    imported_cycles::table
        .filter(imported_cycles::clinic_id.eq(clinic_id))
        .filter(imported_cycles::steriliser_id.eq_any(steriliser_ids))
        .select(SequenceEntry::as_select())
        .order((
            imported_cycles::steriliser_id,
            imported_cycles::cycle_number,
        ))
        .load(conn)
}

pub fn find_cycle(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
) -> QueryResult<Option<ImportedCycleRow>> {
    imported_cycles::table
        .filter(imported_cycles::clinic_id.eq(clinic_id))
        .filter(imported_cycles::id.eq(id))
        .select(ImportedCycleRow::as_select())
        .first(conn)
        .optional()
}

/// Imported cycles of one steriliser carrying these numbers.
pub fn cycles_numbered(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
    numbers: &[i64],
) -> QueryResult<Vec<ImportedCycleRow>> {
    imported_cycles::table
        .filter(imported_cycles::clinic_id.eq(clinic_id))
        .filter(imported_cycles::steriliser_id.eq(steriliser_id))
        .filter(imported_cycles::cycle_number.eq_any(numbers))
        .select(ImportedCycleRow::as_select())
        .load(conn)
}

#[derive(Debug, Clone, Default)]
pub struct ImportedFilter {
    pub steriliser_id: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    pub after: Option<TimeCursor>,
    pub limit: i64,
    /// Only the cycles recorded by then.
    pub at: Option<NaiveDateTime>,
}

pub fn list_cycles(
    conn: &mut DbConn,
    clinic_id: &str,
    f: &ImportedFilter,
) -> QueryResult<Vec<ImportedCycleRow>> {
    let mut q = imported_cycles::table
        .filter(imported_cycles::clinic_id.eq(clinic_id))
        .select(ImportedCycleRow::as_select())
        .order((
            imported_cycles::started_at.desc(),
            imported_cycles::id.desc(),
        ))
        .limit(f.limit)
        .into_boxed();
    if let Some(s) = &f.steriliser_id {
        q = q.filter(imported_cycles::steriliser_id.eq(s.clone()));
    }
    if let Some(from) = f.from {
        q = q.filter(imported_cycles::started_at.ge(from));
    }
    if let Some(to) = f.to {
        q = q.filter(imported_cycles::started_at.lt(to));
    }
    if let Some(at) = f.at {
        q = q.filter(imported_cycles::recorded_at.le(at));
    }
    if let Some(c) = &f.after {
        q = q.filter(
            imported_cycles::started_at
                .lt(c.at)
                .or(imported_cycles::started_at
                    .eq(c.at)
                    .and(imported_cycles::id.lt(c.id.clone()))),
        );
    }
    q.load(conn)
}

pub fn find_file(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
) -> QueryResult<Option<DeviceFileRow>> {
    device_files::table
        .filter(device_files::clinic_id.eq(clinic_id))
        .filter(device_files::id.eq(id))
        .select(DeviceFileRow::as_select())
        .first(conn)
        .optional()
}

/// The files of a period, without their content: those of the cycles that started in it, and
/// those that hold no cycle (a curve file, a file no parser read) uploaded in it.
pub fn files_of_period(
    conn: &mut DbConn,
    clinic_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<DeviceFileEntry>> {
    let of_cycles = imported_cycles::table
        .filter(imported_cycles::clinic_id.eq(clinic_id))
        .filter(imported_cycles::started_at.ge(from))
        .filter(imported_cycles::started_at.lt(to))
        .filter(imported_cycles::recorded_at.lt(to))
        .select(imported_cycles::file_id);
    let mut out: Vec<DeviceFileEntry> = device_files::table
        .filter(device_files::clinic_id.eq(clinic_id))
        .filter(device_files::id.eq_any(of_cycles))
        .select(DeviceFileEntry::as_select())
        .load(conn)?;
    let with_cycles = imported_cycles::table
        .filter(imported_cycles::clinic_id.eq(clinic_id))
        .select(imported_cycles::file_id);
    out.extend(
        device_files::table
            .filter(device_files::clinic_id.eq(clinic_id))
            .filter(device_files::uploaded_at.ge(from))
            .filter(device_files::uploaded_at.lt(to))
            .filter(diesel::dsl::not(device_files::id.eq_any(with_cycles)))
            .select(DeviceFileEntry::as_select())
            .load::<DeviceFileEntry>(conn)?,
    );
    out.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    Ok(out)
}

pub fn file_content(conn: &mut DbConn, clinic_id: &str, id: &str) -> QueryResult<Vec<u8>> {
    device_files::table
        .filter(device_files::clinic_id.eq(clinic_id))
        .filter(device_files::id.eq(id))
        .select(device_files::content)
        .first(conn)
}

/// How many cycles of a period were imported, and how many of them the checks on the record
/// found something in.
pub fn count_imported(
    conn: &mut DbConn,
    clinic_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<(i64, i64)> {
    let period = || {
        imported_cycles::table
            .filter(imported_cycles::clinic_id.eq(clinic_id))
            .filter(imported_cycles::started_at.ge(from))
            .filter(imported_cycles::started_at.lt(to))
            .filter(imported_cycles::recorded_at.lt(to))
    };
    let all = period().count().get_result(conn)?;
    let warned = period()
        .filter(imported_cycles::warnings.ne("[]"))
        .count()
        .get_result(conn)?;
    Ok((all, warned))
}

pub fn current_mapping(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
) -> QueryResult<Option<CsvMappingRow>> {
    csv_mappings::table
        .filter(csv_mappings::clinic_id.eq(clinic_id))
        .filter(csv_mappings::steriliser_id.eq(steriliser_id))
        .order(csv_mappings::version.desc())
        .select(CsvMappingRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_mapping(conn: &mut DbConn, row: &CsvMappingRow) -> QueryResult<()> {
    diesel::insert_into(csv_mappings::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// What the compliance view reads of the imported cycles of a window: the row's own warnings
/// and what the sequence checks need, for the cycles recorded by `at`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = imported_cycles)]
pub struct WindowEntry {
    pub id: String,
    pub steriliser_id: String,
    pub cycle_number: i64,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub fingerprint: Option<String>,
    pub vendor_check: Option<String>,
    pub warnings: String,
}

pub fn window(
    conn: &mut DbConn,
    clinic_id: &str,
    since: NaiveDateTime,
    at: NaiveDateTime,
) -> QueryResult<Vec<WindowEntry>> {
    imported_cycles::table
        .filter(imported_cycles::clinic_id.eq(clinic_id))
        .filter(imported_cycles::started_at.ge(since))
        .filter(imported_cycles::started_at.le(at))
        .filter(imported_cycles::recorded_at.le(at))
        .select(WindowEntry::as_select())
        .order((
            imported_cycles::steriliser_id,
            imported_cycles::cycle_number,
        ))
        .load(conn)
}
