//! Importing cycle records from a steriliser's own files: every file kept byte for byte under its
//! SHA-256 (once per clinic), each cycle read from it recorded with the checks on the record
//! itself, and the whole upload in one transaction with one audit event; reading the imported
//! cycles back with the checks against the device's sequence and the hand-typed cycle of the same
//! number, if any.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::existing_steriliser;
use crate::audit::{self, AuditContext};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult, FieldError};
use crate::jurisdiction::profiles::Profiles;
use crate::records::*;
use crate::sterilisation::device_records::{self as store, *};
use crate::sterilisation::import::checks::{self, ImportedOutcome, Neighbour, Warning};
use crate::sterilisation::import::parsers::{self, CsvMapping, Detection, ParserScore};
use crate::sterilisation::import::{
    units, CycleKind, DeviceResult, ParsedCycle, RawFile, Unreadable, VendorCheck,
};

/// What happened to one file of an upload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileOutcome {
    /// The name as uploaded, with its folder inside a zip.
    pub name: String,
    pub sha256: String,
    /// `recorded`: kept, and its cycles recorded; `already_imported`: the same bytes were
    /// imported before (nothing recorded again); `kept_not_read`: kept as evidence but not read
    /// (a binary curve file); `unknown_format`: kept, but no parser recognised it.
    pub status: String,
    /// The parser that read it.
    pub format: Option<String>,
    /// The imported cycles read from it.
    pub cycle_ids: Vec<String>,
    /// The parts of the file that could not be read as a cycle, each with its line and reason.
    pub unreadable: Vec<Unreadable>,
    /// For an unknown format: how close each parser came (0–100; 50 is needed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tried: Vec<ParserScore>,
}

/// The outcome of an upload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// None when nothing new was kept (every file was imported before).
    pub import_id: Option<String>,
    pub steriliser_id: String,
    pub files: Vec<FileOutcome>,
    pub cycles_recorded: usize,
    pub files_already_imported: usize,
    /// The new cycles and what the checks on each record found.
    pub cycles: Vec<ImportedCycleSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportedCycleSummary {
    pub id: String,
    pub cycle_number: i64,
    pub started_at: DateTime<Utc>,
    pub outcome: ImportedOutcome,
    pub warnings: Vec<Warning>,
}

/// The device's own check code: kept, never called valid.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VendorCheckView {
    pub scheme: String,
    pub value: String,
    /// Always `not_verifiable`: the makers do not publish how their codes are made.
    pub status: String,
}

/// A value that differs between a hand-typed cycle and the device's record of it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Difference {
    pub field: String,
    pub typed: String,
    pub device: String,
}

/// The steriliser's own record of a typed cycle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceRecordLink {
    pub imported_cycle_id: String,
    pub outcome: ImportedOutcome,
    /// Empty when every value agrees.
    pub differences: Vec<Difference>,
}

/// The imported record with the typed cycle's steriliser and number, if any (the first imported,
/// should the device's number repeat).
pub fn device_record_of(
    conn: &mut DbConn,
    clinic_id: &str,
    typed: &crate::sterilisation::store::CycleRow,
) -> AppResult<Option<DeviceRecordLink>> {
    let found =
        store::cycles_numbered(conn, clinic_id, &typed.steriliser_id, &[typed.cycle_number])?;
    Ok(found
        .iter()
        .min_by_key(|d| d.recorded_at)
        .map(|d| DeviceRecordLink {
            imported_cycle_id: d.id.clone(),
            outcome: outcome_of(&d.outcome),
            differences: differences(typed, d),
        }))
}

/// The hand-typed cycle with the same steriliser and number.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TypedLink {
    pub cycle_id: String,
    /// Empty when every value agrees.
    pub differences: Vec<Difference>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceFileView {
    pub id: String,
    pub name: String,
    pub sha256: String,
}

/// A cycle as the steriliser recorded it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportedCycleView {
    pub id: String,
    /// Always `import`: read from the device's file, not typed.
    pub source: String,
    pub steriliser_id: String,
    pub cycle_number: i64,
    pub kind: CycleKind,
    pub program: String,
    pub format: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The device's clock as it wrote it (no zone: read in the clinic's).
    pub started_local: String,
    pub set_temperature_c: Option<f64>,
    pub set_hold_minutes: Option<f64>,
    /// The plateau's highest temperature, °C.
    pub peak_temperature_c: Option<f64>,
    /// Absolute chamber pressure at that temperature, kPa.
    pub peak_pressure_kpa: Option<f64>,
    pub hold_minutes: Option<f64>,
    pub device_result: DeviceResult,
    pub outcome: ImportedOutcome,
    pub serial: Option<String>,
    pub vendor_check: Option<VendorCheckView>,
    /// The record's checks and the checks against the device's other cycles.
    pub warnings: Vec<Warning>,
    pub file: DeviceFileView,
    pub typed_cycle: Option<TypedLink>,
    /// The parsed record: phases, samples with the device's own text, notes. Only when one cycle
    /// is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<ParsedCycle>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn kind_str(k: CycleKind) -> &'static str {
    match k {
        CycleKind::Load => "load",
        CycleKind::AirRemovalTest => "air_removal_test",
        CycleKind::VacuumTest => "vacuum_test",
    }
}

fn kind_of(s: &str) -> CycleKind {
    match s {
        "air_removal_test" => CycleKind::AirRemovalTest,
        "vacuum_test" => CycleKind::VacuumTest,
        _ => CycleKind::Load,
    }
}

fn result_str(r: DeviceResult) -> &'static str {
    match r {
        DeviceResult::Passed => "passed",
        DeviceResult::Failed => "failed",
        DeviceResult::NotStated => "not_stated",
    }
}

fn result_of(s: &str) -> DeviceResult {
    match s {
        "passed" => DeviceResult::Passed,
        "failed" => DeviceResult::Failed,
        _ => DeviceResult::NotStated,
    }
}

fn outcome_str(o: ImportedOutcome) -> &'static str {
    match o {
        ImportedOutcome::Pass => "pass",
        ImportedOutcome::Fail => "fail",
        ImportedOutcome::NotStated => "not_stated",
    }
}

fn outcome_of(s: &str) -> ImportedOutcome {
    match s {
        "pass" => ImportedOutcome::Pass,
        "fail" => ImportedOutcome::Fail,
        _ => ImportedOutcome::NotStated,
    }
}

/// The plateau's highest temperature and the pressure beside it.
fn peak(c: &ParsedCycle) -> (Option<f64>, Option<f64>) {
    let plateau = checks::plateau(c);
    let top = plateau
        .iter()
        .filter_map(|s| Some((s.temperature_c.as_ref()?.value, s)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match (top, &c.reported_max) {
        (Some((t, s)), _) => (Some(t), s.pressure_kpa.as_ref().map(|p| p.value)),
        (None, Some((t, p))) => (t.as_ref().map(|r| r.value), p.as_ref().map(|r| r.value)),
        (None, None) => (None, None),
    }
}

/// The steriliser's saved CSV mapping, if it has one.
pub fn csv_mapping(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_id: &str,
) -> AppResult<Option<CsvMapping>> {
    store::current_mapping(conn, clinic_id, steriliser_id)?
        .map(|row| {
            serde_json::from_str(&row.mapping)
                .map_err(|e| AppError::internal(format!("stored CSV mapping unreadable: {e}")))
        })
        .transpose()
}

/// Saves how a steriliser's CSV files are read (a new version each time).
pub fn save_csv_mapping(
    conn: &mut DbConn,
    ctx: &AuditContext,
    clinic_id: &str,
    steriliser_id: &str,
    mapping: CsvMapping,
) -> AppResult<CsvMapping> {
    validated(mapping.validate())?;
    audit::audited(conn, clinic_id, |conn| {
        existing_steriliser(conn, clinic_id, steriliser_id, "steriliser_id")?;
        let version =
            store::current_mapping(conn, clinic_id, steriliser_id)?.map_or(1, |r| r.version + 1);
        let text = serde_json::to_string(&mapping).map_err(AppError::internal)?;
        store::insert_mapping(
            conn,
            &CsvMappingRow {
                steriliser_id: steriliser_id.to_owned(),
                version,
                clinic_id: clinic_id.to_owned(),
                mapping: text,
                recorded_by: ctx.actor.id().map(str::to_owned),
                recorded_at: db::now(),
            },
        )?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "steriliser.csv_mapping_saved",
                "steriliser",
                steriliser_id,
                payload(&mapping),
                None,
            ),
        )?;
        Ok(mapping)
    })
}

struct Prepared {
    file: RawFile,
    sha256: String,
    detection: Option<Detection>,
}

/// Imports the files of one upload for one steriliser (a zip already unpacked into them).
pub fn import_files(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    steriliser_id: &str,
    files: Vec<RawFile>,
) -> AppResult<ImportReport> {
    if files.is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(
            "files",
            "send at least one file: a cycle record, several, or a zip of the card",
        )]));
    }
    // Everything is read and parsed before the write transaction, which then only writes.
    let steriliser = existing_steriliser(conn, clinic_id, steriliser_id, "steriliser_id")?;
    let tz = crate::clinics::context::load(conn, profiles, clinic_id)?.tz;
    let mapping = csv_mapping(conn, clinic_id, steriliser_id)?;
    let hashes: Vec<String> = files.iter().map(|f| sha256_hex(&f.bytes)).collect();
    let known: HashSet<String> = store::files_with_hashes(conn, clinic_id, &hashes)?
        .into_iter()
        .map(|(h, _, _)| h)
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut prepared = Vec::with_capacity(files.len());
    for (file, sha256) in files.into_iter().zip(hashes) {
        // A file already kept (or twice in this upload) is recognised and not read again.
        let fresh = !known.contains(&sha256) && seen.insert(sha256.clone());
        let detection = fresh.then(|| parsers::detect(&file, mapping.as_ref()));
        prepared.push(Prepared {
            file,
            sha256,
            detection,
        });
    }
    // An upload in which nothing could be read at all is refused, naming what was tried.
    let unknown: Vec<FieldError> = prepared
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match &p.detection {
            Some(Detection::Unknown { tried }) => Some(FieldError::new(
                format!("files[{i}]"),
                format!(
                    "\"{}\" is in no format Aseptic reads; tried {}",
                    p.file.name,
                    tried
                        .iter()
                        .map(|t| format!("{} ({}/100)", t.description, t.score))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            _ => None,
        })
        .collect();
    let any_read = prepared.iter().any(|p| {
        matches!(&p.detection, Some(Detection::Read { parsed, .. }) if !parsed.cycles.is_empty())
    });
    let any_known = prepared.iter().any(|p| p.detection.is_none());
    if !any_read && !any_known {
        let mut errors = unknown;
        for (i, p) in prepared.iter().enumerate() {
            if let Some(Detection::Read { parsed, format, .. }) = &p.detection {
                for u in &parsed.unreadable {
                    errors.push(FieldError::new(
                        format!("files[{i}]"),
                        format!(
                            "\"{}\" ({format}), line {}: {}",
                            p.file.name, u.line, u.reason
                        ),
                    ));
                }
            }
        }
        if errors.is_empty() {
            errors.push(FieldError::new(
                "files",
                "no cycle record was found in the upload (binary curve files are kept only \
                 beside their text record)",
            ));
        }
        return Err(AppError::Validation(errors));
    }

    let now = db::now();
    let import_id = db::new_id();
    let mut outcomes = Vec::with_capacity(prepared.len());
    let mut file_rows = Vec::new();
    let mut cycle_rows = Vec::new();
    let mut summaries = Vec::new();
    for p in prepared {
        let Some(detection) = p.detection else {
            outcomes.push(FileOutcome {
                name: p.file.name,
                sha256: p.sha256,
                status: "already_imported".into(),
                format: None,
                cycle_ids: Vec::new(),
                unreadable: Vec::new(),
                tried: Vec::new(),
            });
            continue;
        };
        let file_id = db::new_id();
        let (status, format, encoding, parsed, tried) = match detection {
            Detection::Read {
                format,
                encoding,
                parsed,
            } => ("recorded", Some(format), Some(encoding), parsed, Vec::new()),
            Detection::Binary => ("kept_not_read", None, None, Default::default(), Vec::new()),
            Detection::Unknown { tried } => {
                ("unknown_format", None, None, Default::default(), tried)
            }
        };
        let mut ids = Vec::new();
        for c in &parsed.cycles {
            let id = db::new_id();
            let started = units::place(c.started_local, tz);
            let finished = c.finished_local.map(|f| units::place(f, tz));
            let fingerprint = checks::fingerprint(c);
            let warnings = checks::check_record(&checks::Candidate {
                cycle: c,
                started,
                finished,
                fingerprint: fingerprint.clone(),
                registered_serial: &steriliser.serial_number,
            });
            let outcome = checks::outcome(c, &warnings);
            let (peak_t, peak_p) = peak(c);
            summaries.push(ImportedCycleSummary {
                id: id.clone(),
                cycle_number: c.cycle_number,
                started_at: to_utc(started.utc),
                outcome,
                warnings: warnings.clone(),
            });
            cycle_rows.push(ImportedCycleRow {
                id: id.clone(),
                clinic_id: clinic_id.to_owned(),
                steriliser_id: steriliser_id.to_owned(),
                file_id: file_id.clone(),
                import_id: import_id.clone(),
                format: c.format.clone(),
                cycle_number: c.cycle_number,
                kind: kind_str(c.kind).to_owned(),
                program_name: c.program.clone(),
                started_at: started.utc,
                finished_at: finished.map(|f| f.utc),
                set_temperature_c: c.set_temperature_c.as_ref().map(|r| r.value),
                set_hold_seconds: c.set_hold_s.as_ref().map(|r| r.value),
                peak_temperature_c: peak_t,
                peak_pressure_kpa: peak_p,
                hold_seconds: c.hold_s,
                device_result: result_str(c.result).to_owned(),
                outcome: outcome_str(outcome).to_owned(),
                serial: c.serial.clone().or_else(|| c.name_fields.serial.clone()),
                fingerprint,
                vendor_check: c.vendor_check.as_ref().map(|v| v.value.clone()),
                detail: serde_json::to_string(c).map_err(AppError::internal)?,
                warnings: serde_json::to_string(&warnings).map_err(AppError::internal)?,
                recorded_by: ctx.actor.id().map(str::to_owned),
                recorded_at: now,
            });
            ids.push(id);
        }
        file_rows.push(DeviceFileRow {
            id: file_id,
            clinic_id: clinic_id.to_owned(),
            steriliser_id: steriliser_id.to_owned(),
            import_id: import_id.clone(),
            sha256: p.sha256.clone(),
            name: p.file.name.clone(),
            size_bytes: p.file.bytes.len() as i64,
            format: format.map(str::to_owned),
            encoding: encoding.map(str::to_owned),
            content: p.file.bytes,
            uploaded_at: now,
        });
        outcomes.push(FileOutcome {
            name: p.file.name,
            sha256: p.sha256,
            status: status.into(),
            format: format.map(str::to_owned),
            cycle_ids: ids,
            unreadable: parsed.unreadable,
            tried,
        });
    }
    let already = outcomes
        .iter()
        .filter(|o| o.status == "already_imported")
        .count();
    let mut report = ImportReport {
        import_id: None,
        steriliser_id: steriliser_id.to_owned(),
        cycles_recorded: cycle_rows.len(),
        files_already_imported: already,
        files: outcomes,
        cycles: summaries,
    };
    if file_rows.is_empty() {
        return Ok(report);
    }
    audit::audited(conn, clinic_id, |conn| {
        // Another upload of the same files may have committed since they were read.
        let taken = store::files_with_hashes(
            conn,
            clinic_id,
            &file_rows
                .iter()
                .map(|f| f.sha256.clone())
                .collect::<Vec<_>>(),
        )?;
        if !taken.is_empty() {
            return Err(AppError::Conflict(
                "the same files were imported by another upload a moment ago: nothing was recorded; send the upload again to see what is new".into(),
            ));
        }
        report.import_id = Some(import_id.clone());
        let unreadable: Vec<&FileOutcome> = report
            .files
            .iter()
            .filter(|f| !f.unreadable.is_empty() || f.status == "unknown_format")
            .collect();
        store::insert_import(
            conn,
            &ImportRow {
                id: import_id.clone(),
                clinic_id: clinic_id.to_owned(),
                steriliser_id: steriliser_id.to_owned(),
                files: file_rows.len() as i32,
                cycles: cycle_rows.len() as i32,
                already_imported: already as i32,
                unreadable: serde_json::to_string(&unreadable).map_err(AppError::internal)?,
                imported_by: ctx.actor.id().map(str::to_owned),
                imported_at: now,
            },
        )?;
        for f in &file_rows {
            store::insert_file(conn, f)?;
        }
        store::insert_cycles(conn, &cycle_rows)?;
        // The chain names every file by its hash and every cycle by its number: the evidence
        // cannot be swapped afterwards without breaking it.
        audit::append(
            conn,
            clinic_id,
            ctx,
            event(
                "cycles.imported",
                "steriliser",
                steriliser_id,
                serde_json::json!({
                    "import_id": import_id,
                    "files": file_rows.iter().map(|f| serde_json::json!({
                        "id": f.id, "name": f.name, "sha256": f.sha256, "format": f.format,
                    })).collect::<Vec<_>>(),
                    "cycles": cycle_rows.iter().map(|c| serde_json::json!({
                        "id": c.id, "cycle_number": c.cycle_number, "file_id": c.file_id,
                        "outcome": c.outcome,
                    })).collect::<Vec<_>>(),
                    "already_imported": already,
                }),
                None,
            ),
        )?;
        Ok(report)
    })
}

fn neighbour(e: &SequenceEntry) -> Neighbour {
    Neighbour {
        id: e.id.clone(),
        cycle_number: e.cycle_number,
        started: e.started_at,
        finished: e.finished_at,
        fingerprint: e.fingerprint.clone(),
        vendor_check: e.vendor_check.clone(),
    }
}

/// The sequence warnings of each cycle, by id, among its steriliser's imported cycles.
pub fn sequence_warnings(
    conn: &mut DbConn,
    clinic_id: &str,
    steriliser_ids: &[String],
) -> AppResult<HashMap<String, Vec<Warning>>> {
    let entries = store::sequence(conn, clinic_id, steriliser_ids)?;
    let mut by_steriliser: HashMap<&str, Vec<Neighbour>> = HashMap::new();
    for e in &entries {
        by_steriliser
            .entry(e.steriliser_id.as_str())
            .or_default()
            .push(neighbour(e));
    }
    let mut out = HashMap::new();
    for list in by_steriliser.values() {
        for me in list {
            let w = checks::check_sequence(me, list);
            if !w.is_empty() {
                out.insert(me.id.clone(), w);
            }
        }
    }
    Ok(out)
}

fn differences(
    typed: &crate::sterilisation::store::CycleRow,
    d: &ImportedCycleRow,
) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut num = |field: &str, typed: f64, device: Option<f64>, tolerance: f64, unit: &str| {
        if let Some(device) = device {
            if (typed - device).abs() > tolerance {
                out.push(Difference {
                    field: field.to_owned(),
                    typed: format!("{typed:.1} {unit}"),
                    device: format!("{device:.1} {unit}"),
                });
            }
        }
    };
    num(
        "program.temperature_c",
        typed.program_temperature_c,
        d.set_temperature_c,
        0.5,
        "°C",
    );
    num(
        "program.hold_minutes",
        typed.program_hold_minutes,
        d.set_hold_seconds.map(|s| s / 60.0),
        0.1,
        "min",
    );
    num(
        "peak_temperature_c",
        typed.peak_temperature_c,
        d.peak_temperature_c,
        0.5,
        "°C",
    );
    num(
        "peak_pressure_kpa",
        typed.peak_pressure_kpa,
        d.peak_pressure_kpa,
        10.0,
        "kPa",
    );
    num(
        "hold_minutes",
        typed.hold_minutes,
        d.hold_seconds.map(|s| s as f64 / 60.0),
        0.5,
        "min",
    );
    let mut time =
        |field: &str, typed: chrono::NaiveDateTime, device: Option<chrono::NaiveDateTime>| {
            if let Some(device) = device {
                if (typed - device).num_seconds().abs() > 300 {
                    out.push(Difference {
                        field: field.to_owned(),
                        typed: to_utc(typed).to_rfc3339(),
                        device: to_utc(device).to_rfc3339(),
                    });
                }
            }
        };
    time("started_at", typed.started_at, Some(d.started_at));
    time("finished_at", typed.finished_at, d.finished_at);
    out
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn view(
    row: ImportedCycleRow,
    file: DeviceFileView,
    sequence: Vec<Warning>,
    typed: Option<&crate::sterilisation::store::CycleRow>,
    with_detail: bool,
) -> AppResult<ImportedCycleView> {
    let mut warnings: Vec<Warning> =
        serde_json::from_str(&row.warnings).map_err(AppError::internal)?;
    warnings.extend(sequence);
    let detail: ParsedCycle = serde_json::from_str(&row.detail).map_err(AppError::internal)?;
    let typed_cycle = typed.map(|t| TypedLink {
        cycle_id: t.id.clone(),
        differences: differences(t, &row),
    });
    Ok(ImportedCycleView {
        source: "import".into(),
        steriliser_id: row.steriliser_id,
        cycle_number: row.cycle_number,
        kind: kind_of(&row.kind),
        program: row.program_name,
        format: row.format,
        started_at: to_utc(row.started_at),
        finished_at: row.finished_at.map(to_utc),
        started_local: detail.started_local.format("%Y-%m-%d %H:%M:%S").to_string(),
        set_temperature_c: row.set_temperature_c,
        set_hold_minutes: row.set_hold_seconds.map(|s| round2(s / 60.0)),
        peak_temperature_c: row.peak_temperature_c,
        peak_pressure_kpa: row.peak_pressure_kpa,
        hold_minutes: row.hold_seconds.map(|s| round2(s as f64 / 60.0)),
        device_result: result_of(&row.device_result),
        outcome: outcome_of(&row.outcome),
        serial: row.serial,
        vendor_check: detail
            .vendor_check
            .clone()
            .map(|VendorCheck { scheme, value }| VendorCheckView {
                scheme,
                value,
                status: "not_verifiable".into(),
            }),
        warnings,
        file,
        typed_cycle,
        detail: with_detail.then_some(detail),
        recorded_at: to_utc(row.recorded_at),
        recorded_by: row.recorded_by,
        id: row.id,
    })
}

fn views(
    conn: &mut DbConn,
    clinic_id: &str,
    rows: Vec<ImportedCycleRow>,
    with_detail: bool,
) -> AppResult<Vec<ImportedCycleView>> {
    let sterilisers: Vec<String> = rows
        .iter()
        .map(|r| r.steriliser_id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut sequence = sequence_warnings(conn, clinic_id, &sterilisers)?;
    let file_ids: Vec<String> = rows.iter().map(|r| r.file_id.clone()).collect();
    let files: HashMap<String, DeviceFileView> = files_named(conn, clinic_id, &file_ids)?;
    let typed = crate::sterilisation::store::cycles_by_number(
        conn,
        clinic_id,
        &rows
            .iter()
            .map(|r| (r.steriliser_id.clone(), r.cycle_number))
            .collect::<Vec<_>>(),
    )?;
    rows.into_iter()
        .map(|r| {
            let file = files.get(&r.file_id).cloned().unwrap_or(DeviceFileView {
                id: r.file_id.clone(),
                name: String::new(),
                sha256: String::new(),
            });
            let seq = sequence.remove(&r.id).unwrap_or_default();
            let t = typed
                .iter()
                .find(|t| t.steriliser_id == r.steriliser_id && t.cycle_number == r.cycle_number);
            view(r, file, seq, t, with_detail)
        })
        .collect()
}

fn files_named(
    conn: &mut DbConn,
    clinic_id: &str,
    ids: &[String],
) -> AppResult<HashMap<String, DeviceFileView>> {
    use crate::db::schema::device_files as f;
    use diesel::prelude::*;
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        for (id, name, sha256) in f::table
            .filter(f::clinic_id.eq(clinic_id))
            .filter(f::id.eq_any(chunk))
            .select((f::id, f::name, f::sha256))
            .load::<(String, String, String)>(conn)?
        {
            out.insert(id.clone(), DeviceFileView { id, name, sha256 });
        }
    }
    Ok(out)
}

pub fn get_imported_cycle(
    conn: &mut DbConn,
    clinic_id: &str,
    id: &str,
) -> AppResult<ImportedCycleView> {
    let row = store::find_cycle(conn, clinic_id, id)?.ok_or(AppError::NoSuch("imported cycle"))?;
    views(conn, clinic_id, vec![row], true)?
        .pop()
        .ok_or(AppError::NoSuch("imported cycle"))
}

pub fn list_imported_cycles(
    conn: &mut DbConn,
    clinic_id: &str,
    filter: &ImportedFilter,
) -> AppResult<(Vec<ImportedCycleView>, Option<String>)> {
    let mut rows = store::list_cycles(
        conn,
        clinic_id,
        &ImportedFilter {
            limit: filter.limit + 1,
            ..filter.clone()
        },
    )?;
    let next = next_cursor(&mut rows, filter.limit, |r| TimeCursor {
        at: r.started_at,
        id: r.id.clone(),
    });
    Ok((views(conn, clinic_id, rows, false)?, next))
}

/// An imported cycle whose checks found something.
#[derive(Debug, Clone)]
pub struct WarnedCycle {
    pub id: String,
    pub steriliser_id: String,
    pub cycle_number: i64,
    pub warnings: Vec<Warning>,
}

/// The imported cycles that started between `since` and `at`, as recorded by `at`, whose checks
/// (on the record, and against the device's other cycles of the window) found something.
pub fn imported_cycles_warned(
    conn: &mut DbConn,
    clinic_id: &str,
    since: chrono::NaiveDateTime,
    at: chrono::NaiveDateTime,
) -> AppResult<Vec<WarnedCycle>> {
    let entries = store::window(conn, clinic_id, since, at)?;
    let mut by_steriliser: HashMap<&str, Vec<Neighbour>> = HashMap::new();
    for e in &entries {
        by_steriliser
            .entry(e.steriliser_id.as_str())
            .or_default()
            .push(Neighbour {
                id: e.id.clone(),
                cycle_number: e.cycle_number,
                started: e.started_at,
                finished: e.finished_at,
                fingerprint: e.fingerprint.clone(),
                vendor_check: e.vendor_check.clone(),
            });
    }
    let mut out = Vec::new();
    for e in &entries {
        let mut warnings: Vec<Warning> =
            serde_json::from_str(&e.warnings).map_err(AppError::internal)?;
        if let Some(list) = by_steriliser.get(e.steriliser_id.as_str()) {
            if let Some(me) = list.iter().find(|n| n.id == e.id) {
                warnings.extend(checks::check_sequence(me, list));
            }
        }
        if !warnings.is_empty() {
            out.push(WarnedCycle {
                id: e.id.clone(),
                steriliser_id: e.steriliser_id.clone(),
                cycle_number: e.cycle_number,
                warnings,
            });
        }
    }
    Ok(out)
}

/// A device file as it was uploaded: its name and its bytes, unchanged.
pub fn device_file(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<DeviceFileRow> {
    store::find_file(conn, clinic_id, id)?.ok_or(AppError::NoSuch("device file"))
}
