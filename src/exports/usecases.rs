//! Export requests and their outcomes; the zips themselves are files under `exports.dir`.

use super::store::*;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::bundle;
use super::ExportKey;
use crate::audit::{self, AuditContext, NewEvent};
use crate::db::schema::{export_results, exports};
use crate::db::{self, to_utc, DbConn};
use crate::error::{AppError, AppResult, FieldError};
use crate::jurisdiction::profiles::Profiles;

/// The period to export, given one way: a clinic-local calendar month, an ISO week, the first
/// and last clinic-local day, or two instants.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// A clinic-local calendar month, `YYYY-MM`.
    pub month: Option<String>,
    /// A clinic-local ISO week, `YYYY-Www` (Monday to Sunday).
    pub week: Option<String>,
    /// The first clinic-local day of the period (with `last_day`).
    pub first_day: Option<NaiveDate>,
    /// The last clinic-local day of the period, included (with `first_day`).
    pub last_day: Option<NaiveDate>,
    /// Start of the period (inclusive), an instant (with `to`).
    pub from: Option<DateTime<Utc>>,
    /// End of the period (exclusive), an instant (with `from`).
    pub to: Option<DateTime<Utc>>,
}

impl ExportInput {
    /// The period as UTC instants, from the clinic's local midnights where it is given in days.
    pub fn period(
        &self,
        tz: chrono_tz::Tz,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), Vec<FieldError>> {
        use crate::clinics::context::end_of_day;
        let days = |first: NaiveDate, last: NaiveDate| {
            (
                to_utc(end_of_day(first - Duration::days(1), tz)),
                to_utc(end_of_day(last, tz)),
            )
        };
        let ways = [
            self.month.is_some(),
            self.week.is_some(),
            self.first_day.is_some() || self.last_day.is_some(),
            self.from.is_some() || self.to.is_some(),
        ];
        if ways.iter().filter(|w| **w).count() != 1 {
            return Err(vec![FieldError::new(
                "period",
                "give the period one way: month (YYYY-MM), week (YYYY-Www), first_day and last_day (YYYY-MM-DD), or from and to",
            )]);
        }
        if let Some(month) = &self.month {
            let first =
                NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| {
                    vec![FieldError::new(
                        "month",
                        "must be a month as YYYY-MM, e.g. 2026-10",
                    )]
                })?;
            let next = first
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(first + Duration::days(31));
            return Ok(days(first, next - Duration::days(1)));
        }
        if let Some(week) = &self.week {
            let parsed = week
                .split_once("-W")
                .and_then(|(y, w)| Some((y.parse::<i32>().ok()?, w.parse::<u32>().ok()?)))
                .and_then(|(y, w)| NaiveDate::from_isoywd_opt(y, w, chrono::Weekday::Mon));
            let monday = parsed.ok_or_else(|| {
                vec![FieldError::new(
                    "week",
                    "must be an ISO week as YYYY-Www, e.g. 2026-W47",
                )]
            })?;
            return Ok(days(monday, monday + Duration::days(6)));
        }
        match (self.first_day, self.last_day, self.from, self.to) {
            (Some(first), Some(last), _, _) => Ok(days(first, last)),
            (_, _, Some(from), Some(to)) => Ok((from, to)),
            (Some(_), None, _, _) => Err(vec![FieldError::new(
                "last_day",
                "is required with first_day",
            )]),
            (None, Some(_), _, _) => Err(vec![FieldError::new(
                "first_day",
                "is required with last_day",
            )]),
            (_, _, Some(_), None) => Err(vec![FieldError::new("to", "is required with from")]),
            _ => Err(vec![FieldError::new("from", "is required with to")]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    Building,
    Ready,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportView {
    pub id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub state: ExportState,
    pub requested_by: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// SHA-256 of the zip, once ready.
    pub sha256: Option<String>,
    pub bytes: Option<i64>,
    /// The hash of the last audit event in the export.
    pub chain_head: Option<String>,
    pub error: Option<String>,
}

fn view(e: ExportRow, r: Option<ResultRow>) -> ExportView {
    ExportView {
        id: e.id,
        from: to_utc(e.period_from),
        to: to_utc(e.period_to),
        state: match &r {
            None => ExportState::Building,
            Some(r) if r.succeeded => ExportState::Ready,
            Some(_) => ExportState::Failed,
        },
        requested_by: e.requested_by,
        requested_at: to_utc(e.requested_at),
        finished_at: r.as_ref().map(|r| to_utc(r.finished_at)),
        sha256: r.as_ref().and_then(|r| r.sha256.clone()),
        bytes: r.as_ref().and_then(|r| r.bytes),
        chain_head: r.as_ref().and_then(|r| r.chain_head.clone()),
        error: r.and_then(|r| r.error),
    }
}

pub fn file_path(dir: &str, clinic_id: &str, id: &str) -> PathBuf {
    Path::new(dir).join(clinic_id).join(format!("{id}.zip"))
}

/// Records an export request after checking its period against the clinic's retention.
pub fn request(
    conn: &mut DbConn,
    profiles: &Profiles,
    ctx: &AuditContext,
    clinic_id: &str,
    input: &ExportInput,
) -> AppResult<ExportView> {
    let clinic = crate::clinics::store::find(conn, clinic_id)?.ok_or(AppError::NoSuch("clinic"))?;
    let tz = crate::clinics::context::time_zone(&clinic)?;
    let (from, to) = input.period(tz).map_err(AppError::Validation)?;
    let (from, to) = (db::truncate(from.naive_utc()), db::truncate(to.naive_utc()));
    let now = db::now();
    let years = profiles
        .get(&clinic.jurisdiction)
        .and_then(|p| p.sterilisation.record_retention_years.value)
        .unwrap_or(3);
    let mut errors = Vec::new();
    if to <= from {
        errors.push(FieldError::new("to", "must be after from"));
    } else if to - from > Duration::days(366 * i64::from(years)) {
        errors.push(FieldError::new(
            "to",
            format!("the period is longer than the {years} years the jurisdiction keeps records; export it in parts"),
        ));
    }
    if from > now {
        errors.push(FieldError::new("from", "is in the future"));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    audit::audited(conn, clinic_id, |conn| {
        let row = ExportRow {
            id: db::new_id(),
            clinic_id: clinic_id.to_owned(),
            period_from: from,
            period_to: to,
            requested_by: ctx.actor.id().map(str::to_owned),
            requested_at: now,
        };
        diesel::insert_into(exports::table)
            .values(&row)
            .execute(conn)?;
        audit::append(
            conn,
            clinic_id,
            ctx,
            NewEvent {
                action: "export.requested",
                entity_kind: "export",
                entity_id: row.id.clone(),
                payload: json!({"from": audit::chain::format_time(from), "to": audit::chain::format_time(to)}),
                reason: None,
            },
        )?;
        Ok(view(row, None))
    })
}

/// Builds the zip of a requested export and records the outcome (in the audit chain too).
pub fn build(
    conn: &mut DbConn,
    profiles: &Profiles,
    key: &ExportKey,
    dir: &str,
    clinic_id: &str,
    id: &str,
) -> AppResult<ExportView> {
    let e = find(conn, clinic_id, id)?;
    let path = file_path(dir, clinic_id, id);
    let partial = path.with_extension("zip.partial");
    let outcome = (|| -> AppResult<(bundle::Manifest, String, i64)> {
        let file = crate::files::create_private(&partial).map_err(AppError::internal)?;
        let manifest = bundle::build(
            conn,
            profiles,
            key,
            clinic_id,
            e.period_from,
            e.period_to,
            e.requested_at,
            std::io::BufWriter::new(file),
        )?;
        let mut f = std::fs::File::open(&partial).map_err(AppError::internal)?;
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let bytes = std::io::copy(&mut f, &mut hasher).map_err(AppError::internal)?;
        std::fs::rename(&partial, &path).map_err(AppError::internal)?;
        Ok((
            manifest,
            hex::encode(sha2::Digest::finalize(hasher)),
            i64::try_from(bytes).unwrap_or(i64::MAX),
        ))
    })();
    let result = match &outcome {
        Ok((manifest, sha, bytes)) => ResultRow {
            export_id: id.to_owned(),
            clinic_id: clinic_id.to_owned(),
            succeeded: true,
            sha256: Some(sha.clone()),
            bytes: Some(*bytes),
            chain_head: Some(manifest.chain.head_hash.clone()),
            error: None,
            finished_at: db::now(),
        },
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            tracing::error!(export = id, error = %err, "export failed");
            ResultRow {
                export_id: id.to_owned(),
                clinic_id: clinic_id.to_owned(),
                succeeded: false,
                sha256: None,
                bytes: None,
                chain_head: None,
                error: Some("the export could not be built; request it again".into()),
                finished_at: db::now(),
            }
        }
    };
    audit::audited(conn, clinic_id, |conn| {
        diesel::insert_into(export_results::table)
            .values(&result)
            .execute(conn)?;
        audit::append(
            conn,
            clinic_id,
            &AuditContext {
                actor: audit::Actor::System,
                request_id: None,
            },
            NewEvent {
                action: if result.succeeded {
                    "export.built"
                } else {
                    "export.failed"
                },
                entity_kind: "export",
                entity_id: id.to_owned(),
                payload: json!({"sha256": result.sha256, "bytes": result.bytes, "chain_head": result.chain_head}),
                reason: None,
            },
        )?;
        Ok::<_, AppError>(())
    })?;
    Ok(view(e, Some(result)))
}

pub fn get(conn: &mut DbConn, clinic_id: &str, id: &str) -> AppResult<ExportView> {
    let e = find(conn, clinic_id, id)?;
    let r = export_results::table
        .find(id)
        .select(ResultRow::as_select())
        .first(conn)
        .optional()?;
    Ok(view(e, r))
}

pub fn list(conn: &mut DbConn, clinic_id: &str) -> AppResult<Vec<ExportView>> {
    let rows: Vec<(ExportRow, Option<ResultRow>)> = exports::table
        .left_join(export_results::table.on(export_results::export_id.eq(exports::id)))
        .filter(exports::clinic_id.eq(clinic_id))
        .select((ExportRow::as_select(), Option::<ResultRow>::as_select()))
        .order(exports::requested_at.desc())
        .limit(200)
        .load(conn)?;
    Ok(rows.into_iter().map(|(e, r)| view(e, r)).collect())
}

/// Builds every unfinished export: an acknowledged request survives a restart.
pub fn resume(
    pool: &crate::db::Pool,
    profiles: &Profiles,
    key: &ExportKey,
    dir: &str,
) -> AppResult<usize> {
    let mut conn = pool.get().map_err(AppError::internal)?;
    let pending = unfinished(&mut conn)?;
    for (clinic, id) in &pending {
        build(&mut conn, profiles, key, dir, clinic, id)?;
    }
    Ok(pending.len())
}
